package watch

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/mirrorctl/mirrorctl/apply"
	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/spec"
	"github.com/mirrorctl/mirrorctl/state"
)

// Node applies a spec to the node with exactly the steps of `mirrorctl
// sync`: the lock, plan.Build, apply.Run (ownership, backup set, atomic
// writes, at most one reload or restart per engine, health, rollback). Watch
// adds only drift repair in between.
type Node struct {
	Store *state.Store
	// Plan and Apply are the options sync would pass; Store, Keep, Reason
	// and Log are set per call.
	Plan  plan.Options
	Apply apply.Options
	// LockTimeout is how long to wait for another mirrorctl.
	LockTimeout time.Duration
	Log         *slog.Logger
}

// Outcome is what one Sync did.
type Outcome struct {
	Result   *apply.Result // nil when it stopped before apply.Run
	Warnings []engines.Warning
	// Repaired lists the drifted files this sync restored; GivenUp those it
	// stopped repairing (the fight cap).
	Repaired, GivenUp []string
	// Engines maps each planned path to its engine, for the metrics.
	Engines map[string]string
}

// Sync applies s. Cancelling ctx stops the wait for the lock, nothing else:
// once the lock is held the plan and apply.Run run to their end, so a
// SIGTERM never leaves a backup set without its writes and state.
func (n *Node) Sync(ctx context.Context, s *spec.Spec, d *Drift) (*Outcome, error) {
	unlock, err := n.Store.Lock(ctx, n.LockTimeout, "mirrorctl watch")
	if err != nil {
		return nil, err
	}
	defer unlock()
	ctx = context.WithoutCancel(ctx)

	popts := n.Plan
	popts.Log = n.Log
	p, err := plan.Build(ctx, s, popts)
	if err != nil {
		return nil, fmt.Errorf("planning: %w", err)
	}
	out := &Outcome{Engines: map[string]string{}}
	for _, e := range p.Managed() {
		out.Warnings = append(out.Warnings, e.Warnings...)
		for _, c := range e.Changes {
			out.Engines[c.File.Path] = e.Detection.Engine
		}
	}
	st, err := n.Store.Load()
	if err != nil {
		return out, err
	}
	var changed bool
	out.Repaired, out.GivenUp, changed = d.prepare(p, st, time.Now())
	if changed {
		if err := n.Store.Save(st); err != nil {
			return out, err
		}
	}
	aopts := n.Apply
	aopts.Store, aopts.Keep, aopts.Reason, aopts.Log = n.Store, s.Backups.Keep, "watch", n.Log
	if aopts.Root == "" {
		aopts.Root = n.Plan.Root
	}
	out.Result, err = apply.Run(ctx, p, aopts)
	return out, err
}
