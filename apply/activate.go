package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/state"
	"github.com/mirrorctl/mirrorctl/systemd"
)

// activateAll runs at most one action per engine, in plan order, and checks
// each activated engine's health. The first failure stops it.
func activateAll(ctx context.Context, opts Options, touched []*plan.Engine, res *Result) error {
	var bus systemd.Bus
	defer func() {
		if bus != nil {
			bus.Close()
		}
	}()
	for _, e := range touched {
		a := e.Action
		if a.Disruption == engines.None {
			continue
		}
		if opts.Dial == nil {
			res.Pending = append(res.Pending, a)
			continue
		}
		if bus == nil {
			b, err := opts.Dial(ctx)
			if err != nil {
				return &HealthError{Engine: a.Engine, Err: fmt.Errorf("cannot %s %s: %w", a.Disruption, a.Unit, err)}
			}
			bus = b
		}
		err := activate(ctx, bus, a, opts)
		if errors.Is(err, systemd.ErrNotRunning) {
			// Nothing was done and there is nothing to check: at boot the
			// engines start after mirrorctl-sync.service, with the new files.
			opts.Log.Info("engine not running; it reads the new files when it starts", "engine", a.Engine, "unit", a.Unit)
			res.NotRunning = append(res.NotRunning, a)
			continue
		}
		res.attempted = append(res.attempted, e)
		if err != nil {
			return &HealthError{Engine: a.Engine, Err: err}
		}
		res.Done = append(res.Done, a)
		if err := checkHealth(ctx, opts, e); err != nil {
			return &HealthError{Engine: a.Engine, Err: err}
		}
		opts.Log.Info("healthy", "engine", a.Engine)
	}
	return nil
}

func activate(ctx context.Context, bus systemd.Bus, a engines.Action, opts Options) error {
	log := opts.Log.With("engine", a.Engine, "reason", a.Reason)
	switch a.Disruption {
	case engines.Reload:
		return systemd.Reload(ctx, bus, a.Unit, log)
	case engines.Restart:
		return systemd.Restart(ctx, bus, a.Unit, log)
	}
	return nil
}

func checkHealth(ctx context.Context, opts Options, e *plan.Engine) error {
	h := opts.Health
	if h == nil {
		h = Check
	}
	timeout := opts.HealthTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return h(ctx, opts.Root, e)
}

// rollBack restores the backup set after a failed activation or health
// check and re-activates the engines whose activation was attempted, with
// what the restored files need. A restart is forced: the unit ran before
// mirrorctl restarted it, and a failed restart may have left it stopped.
func rollBack(ctx context.Context, opts Options, set *state.Set, res *Result, cause error) error {
	he, ok := cause.(*HealthError)
	if !ok {
		he = &HealthError{Err: cause}
	}
	opts.Log.Error("engine unhealthy; restoring backup set", "engine", he.Engine, "set", set.ID, "err", he.Err)
	restored, err := restore(opts, set, true)
	if err != nil {
		he.Restored = err
		return he
	}
	if opts.Dial == nil || len(res.attempted) == 0 {
		return he
	}
	bus, err := opts.Dial(ctx)
	if err != nil {
		he.Restored = fmt.Errorf("re-activating after the restore: %w", err)
		return he
	}
	defer bus.Close()
	for _, e := range res.attempted {
		back := &plan.Engine{Adapter: e.Adapter, Detection: e.Detection}
		for _, c := range restored {
			if slices.Contains(e.ChangedPaths(), c.File.Path) {
				back.Changes = append(back.Changes, c)
			}
		}
		back.UpdateAction()
		a := back.Action
		log := opts.Log.With("engine", a.Engine, "reason", "restoring backup set "+set.ID)
		switch a.Disruption {
		case engines.Restart:
			err = systemd.ForceRestart(ctx, bus, a.Unit, log)
		case engines.Reload:
			err = systemd.Reload(ctx, bus, a.Unit, log)
		}
		if err != nil && !errors.Is(err, systemd.ErrNotRunning) {
			he.Restored = fmt.Errorf("re-activating %s after the restore: %w", e.Detection.Engine, err)
			return he
		}
	}
	return he
}

// restore writes back every file of set and the ownership state saved with it.
func restore(opts Options, set *state.Set, saveState bool) ([]render.Change, error) {
	files, err := opts.Store.RestoreFiles(set)
	if err != nil {
		return nil, err
	}
	changes, err := render.Plan(opts.Root, files)
	if err != nil {
		return nil, err
	}
	// Groups (or lone files) that are only removed go first: they free the
	// space the rewrites need on a full disk.
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
	if err := render.Apply(opts.Root, first); err != nil {
		return nil, err
	}
	if err := render.Apply(opts.Root, rest); err != nil {
		return nil, err
	}
	if saveState && set.State != nil {
		return changes, opts.Store.Save(set.State)
	}
	return changes, nil
}
