package watch

import (
	"context"
	"log/slog"
	"time"

	"github.com/mirrorctl/mirrorctl/apply"
	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/spec"
	"github.com/mirrorctl/mirrorctl/state"
)

// Node applies a spec to the node through the one pipeline every sync
// uses (apply.Sync). Watch adds only its drift policy, as apply's Narrow.
type Node struct {
	// Apply are the options sync would pass; Trigger, Who, Down and Narrow
	// are set per call.
	Apply apply.Options
	Log   *slog.Logger
}

// Outcome is what one Sync did.
type Outcome struct {
	Result   *apply.Result // nil when it stopped before planning
	Warnings []engines.Warning
	// Repaired lists the drifted files this sync restored; GivenUp those it
	// stopped repairing (the fight cap).
	Repaired, GivenUp []string
	// Engines maps each planned path to its engine, for the metrics.
	Engines map[string]string
}

// Sync applies s. Cancelling ctx interrupts it as it interrupts `mirrorctl
// sync`: files being written are put back, owed activations stay recorded.
func (n *Node) Sync(ctx context.Context, s *spec.Spec, d *Drift, trigger string, down map[string]bool) (*Outcome, error) {
	out := &Outcome{Engines: map[string]string{}}
	o := n.Apply
	o.Trigger, o.Down, o.Log = "watch:"+trigger, down, n.Log
	o.Narrow = func(p *plan.Plan, st *state.State) (*plan.Plan, []string, error) {
		var narrowed *plan.Plan
		narrowed, out.Repaired, out.GivenUp = d.prepare(p, st, time.Now())
		return narrowed, out.Repaired, nil
	}
	res, err := apply.Sync(ctx, s, o)
	out.Result = res
	if res != nil && res.Plan != nil {
		out.Warnings = res.Plan.AllWarnings()
		for _, e := range res.Plan.Managed() {
			for _, c := range e.Changes {
				out.Engines[c.File.Path] = e.Detection.Engine
			}
		}
	}
	return out, err
}
