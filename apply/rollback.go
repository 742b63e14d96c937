package apply

import (
	"context"
	"strings"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
	"github.com/mirrorctl/mirrorctl/state"
)

// Rollback puts back backup set id ("" for the newest successful one,
// state.BaselineID for every file as it was before mirrorctl first changed
// it) through the same steps as Sync: the current files are backed up
// first, so a rollback can itself be rolled back; the ownership record
// becomes the set's; the engines are re-activated and checked. s says
// where units and sockets are; the rollback does not depend on it rendering.
func Rollback(ctx context.Context, s *spec.Spec, id string, o Options) (*Result, *state.Set, error) {
	unlock, err := o.Store.Lock(ctx, o.LockTimeout)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	st, err := o.Store.Load()
	if err != nil {
		return nil, nil, err
	}
	set, err := o.Store.Set(id)
	if err != nil {
		return nil, nil, err
	}
	files, err := o.Store.RestoreFiles(set)
	if err != nil {
		return nil, set, err
	}
	p, err := restorePlan(ctx, s, st, set, files, o)
	if err != nil {
		return nil, set, err
	}
	restoring := set.State
	if set.ID == state.BaselineID || restoring == nil {
		restoring = state.New() // before mirrorctl, it owned nothing
	}
	res, err := run(ctx, p, st, o, runOptions{reason: "rollback to " + set.ID, restoring: restoring})
	return res, set, err
}

// restorePlan sorts the set's files by the engine that owns them (from the
// ownership records, else by where each engine keeps its files) into a
// plan. A file no engine claims is restored too, with no activation.
func restorePlan(ctx context.Context, s *spec.Spec, st *state.State, set *state.Set, files []render.File, o Options) (*plan.Plan, error) {
	all := o.Engines
	if all == nil {
		all = engines.All()
	}
	detectOnly := make([]engines.Engine, len(all))
	for i, e := range all {
		detectOnly[i] = noRender{e}
	}
	do := o
	do.Engines = detectOnly
	detected, err := Plan(ctx, s, st, do)
	if err != nil {
		return nil, err
	}
	owner := func(p string) string {
		for _, rec := range []*state.State{st, set.State} {
			if rec != nil {
				if e, ok := rec.Files[p]; ok {
					return e.Engine
				}
			}
		}
		for _, e := range detected.Engines {
			d := e.Detection
			for _, place := range append([]string{d.Config, d.CertsDir}, d.Owns...) {
				if place != "" && (p == place || strings.HasPrefix(p, strings.TrimSuffix(place, "/")+"/")) {
					return d.Engine
				}
			}
		}
		return ""
	}
	out := &plan.Plan{Spec: s, Redactor: detected.Redactor}
	claimed := map[string]bool{}
	for i, e := range all {
		d := detected.Engines[i].Detection
		var mine []render.File
		for _, f := range files {
			if owner(f.Path) == e.Name() {
				mine = append(mine, f)
				claimed[f.Path] = true
			}
		}
		pe := &plan.Engine{Adapter: e, Detection: d}
		pe.Detection.Managed = len(mine) > 0
		if len(mine) > 0 {
			changes, err := render.Plan(o.Root, mine)
			if err != nil {
				return nil, err
			}
			pe = pe.With(changes)
		}
		out.Engines = append(out.Engines, pe)
	}
	var rest []render.File
	for _, f := range files {
		if !claimed[f.Path] {
			rest = append(rest, f)
		}
	}
	if len(rest) > 0 {
		changes, err := render.Plan(o.Root, rest)
		if err != nil {
			return nil, err
		}
		d := engines.Detection{Engine: "unclaimed", Managed: true, Reason: "files of the backup set no engine claims"}
		pe := (&plan.Engine{Adapter: unclaimed{}, Detection: d}).With(changes)
		out.Engines = append(out.Engines, pe)
	}
	return out, nil
}

// noRender wraps an engine so that planning only detects: a rollback must
// not fail because the current spec does not render.
type noRender struct{ engines.Engine }

func (noRender) Render(*spec.Spec, engines.Host, engines.Detection) (engines.Result, error) {
	return engines.Result{}, nil
}

// unclaimed restores files no engine claims, with no activation.
type unclaimed struct{}

func (unclaimed) Name() string { return "unclaimed" }
func (unclaimed) Detect(context.Context, engines.Host, *spec.Spec) engines.Detection {
	return engines.Detection{}
}
func (unclaimed) Render(*spec.Spec, engines.Host, engines.Detection) (engines.Result, error) {
	return engines.Result{}, nil
}
func (unclaimed) ParseSettings(any, *spec.Section) any { return nil }
func (unclaimed) Activation([]render.Change, engines.Detection) engines.Activation {
	return engines.Activation{Engine: "unclaimed"}
}
