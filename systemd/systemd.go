// Package systemd activates engine changes through systemd's D-Bus API:
// reload or restart a unit, wait for the job, and handle start limits. It is
// the only package that talks to systemd; tests use systemdtest.Recorder.
package systemd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"time"
)

// Bus is the part of systemd's API mirrorctl uses. Job methods wait for the
// job to finish and return its result ("done", "failed", "canceled",
// "timeout", "dependency", "skipped").
type Bus interface {
	TryRestartUnit(ctx context.Context, unit string) (string, error)
	RestartUnit(ctx context.Context, unit string) (string, error)
	ReloadUnit(ctx context.Context, unit string) (string, error)
	ResetFailedUnit(ctx context.Context, unit string) error
	// SignalMain sends sig to the unit's main process.
	SignalMain(ctx context.Context, unit string, sig syscall.Signal) error
	Unit(ctx context.Context, unit string) (UnitState, error)
	Close()
}

// UnitState is a unit's state as systemd reports it.
type UnitState struct {
	LoadState   string // "loaded", "not-found", …
	ActiveState string // "active", "inactive", "failed", "activating", …
	SubState    string
	// Result is the service's last result: "success", "exit-code",
	// "start-limit-hit", …
	Result  string
	MainPID uint32
}

// Running reports whether the unit runs (or is on its way).
func (s UnitState) Running() bool {
	switch s.ActiveState {
	case "active", "reloading", "activating":
		return true
	}
	return false
}

// ErrNotRunning is returned (wrapped) by Restart and Reload when they left a
// unit alone because it does not run: it reads the new files when it starts,
// and there is nothing to health-check (at boot, mirrorctl-sync.service runs
// before the engines).
var ErrNotRunning = errors.New("unit not running; it reads the new configuration when it starts")

// ErrNotApplicable is returned by Bus.ReloadUnit when the unit has no
// ExecReload; Reload then signals the main process itself.
var ErrNotApplicable = errors.New("reload not applicable to unit")

// CallTimeout bounds every D-Bus round trip and job wait: a wedged systemd
// must not wedge mirrorctl (tailscale's reconfigTimeout makes the same point).
const CallTimeout = 90 * time.Second

// Restart restarts a running unit and waits for it. A unit that is not
// running is left alone (ErrNotRunning): it reads the new files when it starts. A
// restart refused because the unit hit its start limit is retried once,
// after reset-failed, as a plain restart (try-restart does nothing to a
// unit that is no longer running; Debian's docker.service allows 3 starts
// a minute).
func Restart(ctx context.Context, bus Bus, unit string, log *slog.Logger) error {
	return restart(ctx, bus, unit, false, log)
}

// ForceRestart restarts a unit whether or not it runs now. Rollback uses it
// for a unit whose restart mirrorctl itself started: that unit was running
// before, and a failed restart may have left it stopped.
func ForceRestart(ctx context.Context, bus Bus, unit string, log *slog.Logger) error {
	return restart(ctx, bus, unit, true, log)
}

func restart(ctx context.Context, bus Bus, unit string, force bool, log *slog.Logger) error {
	st, err := state(ctx, bus, unit)
	if err != nil {
		return err
	}
	if !force && !st.Running() && st.Result != "start-limit-hit" {
		return fmt.Errorf("%s (%s): %w", unit, st.ActiveState, ErrNotRunning)
	}
	job := bus.TryRestartUnit
	if force || !st.Running() {
		job = bus.RestartUnit
	}
	for attempt := 0; ; attempt++ {
		result, err := call(ctx, func(ctx context.Context) (string, error) { return job(ctx, unit) })
		if err != nil {
			return fmt.Errorf("restarting %s: %w", unit, err)
		}
		if result == "done" {
			log.Info("restarted", "unit", unit)
			return nil
		}
		st, err := state(ctx, bus, unit)
		if err != nil {
			return err
		}
		if st.Result == "start-limit-hit" && attempt == 0 {
			log.Warn("start limit hit; resetting the unit and retrying once", "unit", unit)
			if err := callErr(ctx, func(ctx context.Context) error { return bus.ResetFailedUnit(ctx, unit) }); err != nil {
				return fmt.Errorf("resetting %s: %w", unit, err)
			}
			job = bus.RestartUnit
			continue
		}
		return fmt.Errorf("restarting %s: job %s (unit %s, result %s)", unit, result, st.ActiveState, st.Result)
	}
}

// Reload reloads a running unit (for dockerd, ExecReload sends SIGHUP). A
// unit without ExecReload gets SIGHUP on its main process instead. A unit
// that is not running is left alone (ErrNotRunning).
func Reload(ctx context.Context, bus Bus, unit string, log *slog.Logger) error {
	st, err := state(ctx, bus, unit)
	if err != nil {
		return err
	}
	if !st.Running() {
		return fmt.Errorf("%s (%s): %w", unit, st.ActiveState, ErrNotRunning)
	}
	result, err := call(ctx, func(ctx context.Context) (string, error) { return bus.ReloadUnit(ctx, unit) })
	if errors.Is(err, ErrNotApplicable) {
		log.Info("unit has no ExecReload; sending SIGHUP to its main process", "unit", unit)
		if err := callErr(ctx, func(ctx context.Context) error { return bus.SignalMain(ctx, unit, syscall.SIGHUP) }); err != nil {
			return fmt.Errorf("signalling %s: %w", unit, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reloading %s: %w", unit, err)
	}
	if result != "done" {
		return fmt.Errorf("reloading %s: job %s", unit, result)
	}
	log.Info("reloaded", "unit", unit)
	return nil
}

func state(ctx context.Context, bus Bus, unit string) (UnitState, error) {
	var st UnitState
	err := callErr(ctx, func(ctx context.Context) error {
		var err error
		st, err = bus.Unit(ctx, unit)
		return err
	})
	if err != nil {
		return st, fmt.Errorf("reading state of %s: %w", unit, err)
	}
	if st.LoadState == "not-found" {
		return st, fmt.Errorf("unit %s not found; set the unit name in the spec (engines.<engine>.unit)", unit)
	}
	return st, nil
}

func call(ctx context.Context, f func(context.Context) (string, error)) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	return f(ctx)
}

func callErr(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	return f(ctx)
}
