// Package apply is mirrorctl's one pipeline. Sync (for `sync`, every
// `watch` trigger and the boot unit) and Rollback run the same steps: the
// lock, state loaded once, the plan with the ownership record, the backup
// set, atomic writes, the record of what was written and what is owed, at
// most one reload or restart per engine, the engine's own health check, and
// the restore of the backup set when it fails. Activations and probes come
// from the engines as data; this package knows no engine and no file name.
package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/engines/health"
	"github.com/mirrorctl/mirrorctl/hostexec"
	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/noop"
	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
	"github.com/mirrorctl/mirrorctl/state"
	"github.com/mirrorctl/mirrorctl/systemd"
)

// Options configure Sync and Rollback.
type Options struct {
	Root  *hostfs.Root
	Store *state.Store
	// Versions asks engine binaries their version (cached); nil leaves
	// versions unknown.
	Versions *hostexec.Versions
	// Only names the engines to manage (--engines); Engines overrides
	// engines.All() in tests.
	Only    []string
	Engines []engines.Engine
	// Down lists mirror endpoints found not answering (watch).
	Down map[string]bool
	// Dial connects to systemd. Nil leaves every reload and restart owed
	// (recorded in state.json, performed by the next sync that can) and
	// PendingWhy says why.
	Dial       func(ctx context.Context) (systemd.Bus, error)
	PendingWhy string
	// Adopt takes over files mirrorctl did not write instead of reporting
	// them as conflicts (never to delete them).
	Adopt bool
	// Health judges an engine after its activation; nil runs its probe.
	Health func(ctx context.Context, root *hostfs.Root, a engines.Activation) error
	// Applied says whether an engine's daemons already run with the files
	// written since a time (an owed activation done by hand); nil asks the
	// kernel and the daemons.
	Applied func(ctx context.Context, p health.Probe, since time.Time) bool
	// HealthTimeout is how long an engine may take to come up and pass.
	HealthTimeout time.Duration
	// LockTimeout is how long to wait for another mirrorctl.
	LockTimeout time.Duration
	// Trigger is recorded with the sync ("sync", "watch:drift", "boot").
	Trigger string
	// Narrow, when set, edits the plan before anything is written (watch's
	// drift policy); it may change st, which is saved with the rest.
	Narrow func(p *plan.Plan, st *state.State) (*plan.Plan, []string, error)
	// NoOp, when set, lets SyncFrom skip the plan while nothing a sync
	// that changed nothing read has changed, and keeps the record of such
	// a sync.
	NoOp *noop.Keeper
	Log  *slog.Logger
}

// Result says what a run did.
type Result struct {
	// Plan is what was planned (after conflicts were set aside).
	Plan       *plan.Plan
	Written    []string
	Done       []engines.Activation
	NotRunning []engines.Activation
	// Pending are activations left owed (recorded in state.json).
	Pending   []engines.Activation
	Conflicts []state.Conflict
	// Narrowed is what Narrow reported (the drift repaired or given up).
	Narrowed []string
	BackupID string
	// Replayed, when set, says the no-op record showed nothing changed:
	// nothing was planned (Plan is nil), and this is what the recorded
	// sync said.
	Replayed *noop.Replay
}

// quiet reports whether the run had nothing to do and nothing to say but
// warnings: no write, no activation, nothing owed, no conflict, no drift.
func (r *Result) quiet() bool {
	return len(r.Written) == 0 && len(r.Done) == 0 && len(r.NotRunning) == 0 && len(r.Pending) == 0 &&
		len(r.Conflicts) == 0 && len(r.Narrowed) == 0
}

// keepNoOp keeps the no-op record of a quiet run, its warnings masked.
func (o Options) keepNoOp(p *plan.Plan) {
	var warnings []engines.Warning
	for _, w := range p.AllWarnings() {
		w.Message = p.Redactor.String(w.Message)
		warnings = append(warnings, w)
	}
	why, err := o.NoOp.Keep(warnings, p.Detected())
	switch {
	case err != nil:
		o.Log.Warn("keeping the no-op record", "err", err)
	case why != "":
		o.Log.Debug("no no-op record kept", "why", why)
	}
}

// Changed reports whether the run wrote files or performed owed actions.
func (r *Result) Changed() bool { return len(r.Written) > 0 || len(r.Done) > 0 }

// ErrConflicts is returned (wrapped) when files were left alone because
// mirrorctl did not write them; everything else was applied.
var ErrConflicts = errors.New("files not written by mirrorctl were left alone")

// HealthError is returned when an engine failed its activation or health
// check; the backup set was restored.
type HealthError struct {
	Engine   string
	Err      error
	Restored error // nil when the rollback itself succeeded
}

func (e *HealthError) Error() string {
	msg := fmt.Sprintf("%s is unhealthy after the change: %v; ", e.Engine, e.Err)
	if e.Restored != nil {
		return msg + fmt.Sprintf("restoring the previous files ALSO failed: %v", e.Restored)
	}
	return msg + "the previous files were restored and the engine re-activated"
}

func (e *HealthError) Unwrap() error { return e.Err }

// Sync applies s to the node.
func Sync(ctx context.Context, s *spec.Spec, o Options) (*Result, error) {
	return SyncFrom(ctx, func() (*spec.Spec, error) { return s, nil }, o)
}

// SyncFrom applies the spec load returns to the node, unless the no-op
// record (o.NoOp) shows that nothing a sync which changed nothing read has
// changed since: then nothing is read, not even the spec. The record is
// checked before the lock is taken: it is replaced whole, and whatever a
// sync holding the lock writes changes entries the record lists, so that
// this one then plans, waiting for the lock as before.
func SyncFrom(ctx context.Context, load func() (*spec.Spec, error), o Options) (*Result, error) {
	if o.NoOp != nil {
		replay, why := o.NoOp.Fresh()
		if replay != nil {
			return &Result{Replayed: replay}, nil
		}
		o.Log.Debug("planning: the no-op record does not apply", "why", why)
		if err := o.NoOp.Start(); err != nil {
			return nil, err
		}
	}
	s, err := load()
	if err != nil {
		return nil, err
	}
	unlock, err := o.Store.Lock(ctx, o.LockTimeout)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := o.Store.Load()
	if err != nil {
		return nil, err
	}
	p, err := Plan(ctx, s, st, o)
	if err != nil {
		return nil, err
	}
	var narrowed []string
	if o.Narrow != nil {
		if p, narrowed, err = o.Narrow(p, st); err != nil {
			return nil, err
		}
	}
	p, conflicts := p.ExcludeConflicts(o.Root, st, o.Adopt)
	if o.NoOp != nil {
		// What the plan read is all a record may vouch for: the run's own
		// writes (and a changed sync's thousands of them) are not noted.
		o.NoOp.Planned()
	}
	res, err := run(ctx, p, st, o, runOptions{reason: o.Trigger})
	if res != nil {
		res.Conflicts, res.Narrowed = conflicts, narrowed
	}
	if o.NoOp != nil && err == nil && res.quiet() {
		o.keepNoOp(p)
	}
	switch {
	case err != nil || len(conflicts) == 0:
	case o.Adopt:
		// Only removals are left: adopting takes files over, never deletes.
		err = fmt.Errorf("%w: %d file(s) not removed; --adopt never removes a file mirrorctl did not write or that changed since", ErrConflicts, len(conflicts))
	default:
		err = fmt.Errorf("%w: %d file(s); re-run with --adopt to take them over", ErrConflicts, len(conflicts))
	}
	return res, err
}

// Plan builds the plan for s against the node and st, as Sync would.
func Plan(ctx context.Context, s *spec.Spec, st *state.State, o Options) (*plan.Plan, error) {
	var version func(ctx context.Context, bin string, args ...string) (string, error)
	if o.Versions != nil {
		version = o.Versions.Version
	}
	applied := o.Applied
	if applied == nil {
		applied = func(ctx context.Context, p health.Probe, since time.Time) bool {
			return p.Applied(ctx, o.Root.Resolve, since)
		}
	}
	p, err := plan.Build(ctx, s, plan.Options{Root: o.Root, Only: o.Only, Engines: o.Engines, State: st,
		Version: version, Down: o.Down, Applied: applied, Log: o.Log})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// saveVersions keeps the engine versions asked for the next run (under the
// lock). It writes only when a binary was asked, because it is new since
// the last run (an upgrade): a node with nothing to do and nothing new gets
// nothing written, and one whose engine was upgraded writes the answer once
// instead of asking the binary again on every run. A sync that changes
// nothing saves it only on a node where mirrorctl manages files.
func (o Options) saveVersions() {
	if o.Versions == nil {
		return
	}
	if err := o.Versions.Save(); err != nil {
		o.Log.Warn("keeping engine versions for the next run", "err", err)
	}
}

// runOptions are what Sync and Rollback run differently.
type runOptions struct {
	reason string
	// restoring, when set, is the ownership state to keep once the files
	// are written (a rollback puts back the state of its set) instead of
	// recording the written files as mirrorctl's.
	restoring *state.State
}

// run carries p out: backup, write, record, activate, check, restore on
// failure. The caller holds the lock; st is state.json as loaded.
func run(ctx context.Context, p *plan.Plan, st *state.State, o Options, r runOptions) (*Result, error) {
	res := &Result{Plan: p}
	var files []render.File
	var changes []render.Change
	for _, e := range p.Managed() {
		for _, c := range e.Changes {
			if c.Changed() {
				files = append(files, c.File)
				changes = append(changes, c)
			}
		}
	}
	if len(changes) == 0 && (!p.Owes() || o.Dial == nil) {
		// Nothing to write, and nothing owed that can be done now (say
		// so). Still take over files that already hold our bytes, and
		// forget those already gone: Save writes nothing when that changes
		// nothing.
		next := st.Clone()
		for _, e := range p.Managed() {
			next.Record(e.Detection.Engine, e.Changes)
			// What is still owed stays owed; what the plan found done
			// outside mirrorctl is forgotten.
			due := e.Due()
			next.SetPending(e.Detection.Engine, due)
			if due.Disruption != engines.None {
				res.Pending = append(res.Pending, due)
			}
		}
		if len(next.Files) > 0 {
			// A node mirrorctl manages files on keeps what an upgraded
			// engine answered; a node it never touched gets nothing.
			o.saveVersions()
		}
		return res, o.Store.Save(next) // writes nothing when nothing changed
	}
	o.saveVersions()
	var set *state.Set
	if len(changes) > 0 {
		var err error
		if set, err = o.Store.Backup(r.reason, files, st); err != nil {
			return res, fmt.Errorf("saving a backup before the change: %w", err)
		}
		res.BackupID = set.ID
		o.Log.Info("backup saved", "set", set.ID, "files", len(files))
		if err := render.Apply(ctx, o.Root, changes); err != nil {
			return res, o.failWrite(ctx, set, st, res, err)
		}
		for _, c := range changes {
			res.Written = append(res.Written, c.File.Path)
			o.Log.Info("wrote", "path", c.File.Path, "op", string(c.Op))
		}
	}
	next := st.Clone()
	if r.restoring != nil {
		next = r.restoring.Clone()
		next.Pending = st.Pending
	} else {
		for _, e := range p.Managed() {
			next.Record(e.Detection.Engine, e.Changes)
		}
	}
	// What the engines need is owed until it is done: a crash from here on
	// leaves it in state.json for the next sync.
	var due []*plan.Engine
	for _, e := range p.Managed() {
		if a := e.Due(); a.Disruption != engines.None {
			next.SetPending(e.Detection.Engine, a)
			due = append(due, e)
		} else {
			next.SetPending(e.Detection.Engine, engines.Activation{})
		}
	}
	next.Last = &state.Record{Time: time.Now().UTC(), Trigger: r.reason, Outcome: "applied", Backup: res.BackupID, Written: res.Written}
	if err := o.Store.Save(next); err != nil {
		if set != nil {
			return res, o.failWrite(ctx, set, st, res, err)
		}
		return res, err
	}
	if err := o.activateAll(ctx, due, next, res); err != nil {
		var he *HealthError
		if errors.As(err, &he) && set != nil {
			return res, o.rollBack(ctx, p, set, st, res, he)
		}
		next.Last.Outcome, next.Last.Error = "interrupted", err.Error()
		return res, errors.Join(err, o.Store.Save(next))
	}
	if len(res.Pending) > 0 {
		next.Last.Outcome = "pending"
	}
	if err := o.Store.Save(next); err != nil {
		return res, err
	}
	if set != nil {
		if err := o.Store.Prune(p.Spec.Backups.Keep); err != nil {
			o.Log.Warn("pruning old backup sets", "err", err)
		}
	}
	return res, nil
}

// failWrite puts every file of set back after a failed write, records the
// failure, and returns the error saying so.
func (o Options) failWrite(ctx context.Context, set *state.Set, st *state.State, res *Result, cause error) error {
	res.Written = nil
	rctx := context.WithoutCancel(ctx) // a SIGTERM must not leave files half-restored
	if _, err := restore(rctx, o.Root, o.Store, set); err != nil {
		return fmt.Errorf("%w; restoring backup set %s ALSO failed: %v", cause, set.ID, err)
	}
	o.recordFailure(set, st, "failed", cause)
	return fmt.Errorf("%w (every file was restored from backup set %s)", cause, set.ID)
}

// recordFailure marks set failed and records the failed sync; st is the
// state the node is back on.
func (o Options) recordFailure(set *state.Set, st *state.State, outcome string, cause error) {
	if err := o.Store.MarkFailed(set, cause.Error()); err != nil {
		o.Log.Warn("marking the backup set failed", "set", set.ID, "err", err)
	}
	back := st.Clone()
	back.Last = &state.Record{Time: time.Now().UTC(), Trigger: set.Reason, Outcome: outcome, Error: cause.Error(), Backup: set.ID}
	if err := o.Store.Save(back); err != nil {
		o.Log.Warn("recording the failed sync", "err", err)
	}
}
