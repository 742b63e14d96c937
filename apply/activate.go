package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/state"
	"github.com/mirrorctl/mirrorctl/systemd"
)

// reactivateTimeout bounds putting engines back after a failure, which runs
// even when the caller was cancelled.
const reactivateTimeout = 3 * time.Minute

// activateAll runs at most one action per engine, in plan order, and checks
// each activated engine's health. Each one done, or found not running, is
// no longer owed (next is updated). The first failure stops it: a
// *HealthError for an engine that failed, the context's error when
// interrupted (what is not done stays owed).
func (o Options) activateAll(ctx context.Context, due []*plan.Engine, next *state.State, res *Result) error {
	var bus systemd.Bus
	defer func() {
		if bus != nil {
			bus.Close()
		}
	}()
	for _, e := range due {
		a := e.Due()
		if o.Dial == nil {
			res.Pending = append(res.Pending, a)
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if bus == nil {
			b, err := o.Dial(ctx)
			if err != nil {
				return &HealthError{Engine: a.Engine, Err: fmt.Errorf("cannot %s %s: %w", a.Disruption, a.Unit, err)}
			}
			bus = b
		}
		err := activate(ctx, bus, a, false, o)
		if errors.Is(err, systemd.ErrNotRunning) {
			// Nothing was done and there is nothing to check: at boot the
			// engines start after mirrorctl-sync.service, with the new files.
			o.Log.Info("engine not running; it reads the new files when it starts", "engine", a.Engine, "unit", a.Unit)
			res.NotRunning = append(res.NotRunning, a)
			next.SetPending(a.Engine, engines.Activation{})
			continue
		}
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("interrupted while activating %s; it is still owed and the next sync performs it: %w", a.Engine, ctx.Err())
		}
		// From here the reload or restart happened (or was tried): it is
		// no longer owed, whatever the check says.
		next.SetPending(a.Engine, engines.Activation{})
		if err != nil {
			return &HealthError{Engine: a.Engine, Err: err}
		}
		res.Done = append(res.Done, a)
		if err := o.checkHealth(ctx, a); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted while checking %s after its %s; not verified: %w", a.Engine, a.Disruption, ctx.Err())
			}
			return &HealthError{Engine: a.Engine, Err: err}
		}
		o.Log.Info("healthy", "engine", a.Engine)
	}
	return nil
}

func activate(ctx context.Context, bus systemd.Bus, a engines.Activation, force bool, o Options) error {
	log := o.Log.With("engine", a.Engine, "reason", a.Reason)
	switch {
	case a.Disruption == engines.Reload:
		return systemd.Reload(ctx, bus, a.Unit, log)
	case a.Disruption == engines.Restart && force:
		return systemd.ForceRestart(ctx, bus, a.Unit, log)
	case a.Disruption == engines.Restart:
		return systemd.Restart(ctx, bus, a.Unit, log)
	}
	return nil
}

func (o Options) checkHealth(ctx context.Context, a engines.Activation) error {
	timeout := o.HealthTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if o.Health != nil {
		return o.Health(ctx, o.Root, a)
	}
	return a.Probe.Check(ctx, o.Root.Resolve)
}

// rollBack restores the backup set after a failed activation or health
// check and re-activates the engines whose activation was attempted, with
// what the restored files need. A restart is forced: the unit ran before
// mirrorctl restarted it, and a failed restart may have left it stopped.
func (o Options) rollBack(ctx context.Context, p *plan.Plan, set *state.Set, st *state.State, res *Result, he *HealthError) error {
	o.Log.Error("engine unhealthy; restoring backup set", "engine", he.Engine, "set", set.ID, "err", he.Err)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reactivateTimeout)
	defer cancel()
	restored, err := restore(ctx, o.Root, o.Store, set)
	if err != nil {
		he.Restored = err
		o.recordFailure(set, st, "failed", he)
		return he
	}
	defer o.recordFailure(set, st, "rolled back", he)
	attempted := append(slices.Clone(res.Done), engines.Activation{Engine: he.Engine})
	if o.Dial == nil {
		return he
	}
	bus, err := o.Dial(ctx)
	if err != nil {
		he.Restored = fmt.Errorf("re-activating after the restore: %w", err)
		return he
	}
	defer bus.Close()
	for _, e := range p.Managed() {
		if !slices.ContainsFunc(attempted, func(a engines.Activation) bool { return a.Engine == e.Detection.Engine }) {
			continue
		}
		var back []render.Change
		for _, c := range restored {
			if slices.Contains(e.ChangedPaths(), c.File.Path) {
				back = append(back, c)
			}
		}
		a := e.With(back).Activation
		if a.Disruption == engines.None {
			continue
		}
		err := activate(ctx, bus, a, true, o.withReason("restoring backup set "+set.ID))
		if err != nil && !errors.Is(err, systemd.ErrNotRunning) {
			he.Restored = fmt.Errorf("re-activating %s after the restore: %w", e.Detection.Engine, err)
			return he
		}
	}
	res.Written = nil
	return he
}

func (o Options) withReason(why string) Options {
	o.Log = o.Log.With("why", why)
	return o
}

// restore writes back every file of set. Groups (or lone files) that are
// only removed go first: they free the space the rewrites need on a full
// disk.
func restore(ctx context.Context, root *hostfs.Root, store *state.Store, set *state.Set) ([]render.Change, error) {
	files, err := store.RestoreFiles(set)
	if err != nil {
		return nil, err
	}
	changes, err := render.Plan(root, files)
	if err != nil {
		return nil, err
	}
	key := func(c render.Change) string {
		if c.File.Group != "" {
			return c.File.Group
		}
		return c.File.Path
	}
	writes := map[string]bool{}
	for _, c := range changes {
		if c.Changed() && c.Op != render.Delete {
			writes[key(c)] = true
		}
	}
	var first, rest []render.Change
	for _, c := range changes {
		if writes[key(c)] {
			rest = append(rest, c)
		} else {
			first = append(first, c)
		}
	}
	if err := render.Apply(ctx, root, first); err != nil {
		return nil, err
	}
	if err := render.Apply(ctx, root, rest); err != nil {
		return nil, err
	}
	return changes, nil
}
