// Package systemdtest provides a recording systemd.Bus for tests: the one
// place mirrorctl's tests fake anything.
package systemdtest

import (
	"context"
	"fmt"
	"sync"
	"syscall"

	"github.com/mirrorctl/mirrorctl/systemd"
)

// Call is one recorded Bus call, e.g. {"try-restart", "containerd.service"}.
type Call struct {
	Verb string
	Unit string
}

// Recorder records calls. Units are running unless States says otherwise;
// jobs succeed unless Results holds a queue of results for the unit.
type Recorder struct {
	mu sync.Mutex
	// Calls in order; state reads are not recorded.
	Calls []Call
	// States per unit; a missing unit is {loaded, active, running}.
	States map[string]systemd.UnitState
	// Results per unit: job results handed out in order, then "done".
	Results map[string][]string
	// NoReload lists units without ExecReload.
	NoReload map[string]bool
	// Err, when set, fails every job call.
	Err error
	// OnJob runs after every successful job call, e.g. to update States.
	OnJob func(verb, unit string)
}

var _ systemd.Bus = (*Recorder)(nil)

func (r *Recorder) record(verb, unit string) {
	r.Calls = append(r.Calls, Call{verb, unit})
}

func (r *Recorder) job(verb, unit string) (string, error) {
	r.mu.Lock()
	r.record(verb, unit)
	if r.Err != nil {
		r.mu.Unlock()
		return "", r.Err
	}
	result := "done"
	if q := r.Results[unit]; len(q) > 0 {
		result, r.Results[unit] = q[0], q[1:]
	}
	hook := r.OnJob
	r.mu.Unlock()
	if hook != nil {
		hook(verb, unit)
	}
	return result, nil
}

func (r *Recorder) TryRestartUnit(_ context.Context, unit string) (string, error) {
	return r.job("try-restart", unit)
}

func (r *Recorder) RestartUnit(_ context.Context, unit string) (string, error) {
	return r.job("restart", unit)
}

func (r *Recorder) ReloadUnit(_ context.Context, unit string) (string, error) {
	if r.NoReload[unit] {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.record("reload", unit)
		return "", fmt.Errorf("%w: %s", systemd.ErrNotApplicable, unit)
	}
	return r.job("reload", unit)
}

func (r *Recorder) ResetFailedUnit(_ context.Context, unit string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("reset-failed", unit)
	if st, ok := r.States[unit]; ok {
		st.Result = "success"
		r.States[unit] = st
	}
	return nil
}

func (r *Recorder) SignalMain(_ context.Context, unit string, sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("kill-main-"+sig.String(), unit)
	return nil
}

func (r *Recorder) Unit(_ context.Context, unit string) (systemd.UnitState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := r.States[unit]; ok {
		return st, nil
	}
	return systemd.UnitState{LoadState: "loaded", ActiveState: "active", SubState: "running", Result: "success", MainPID: 100}, nil
}

func (r *Recorder) Close() {}
