package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/mirrorctl/mirrorctl/apply"
	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/spec"
)

type planFlags struct {
	exitCode bool
}

func newPlanCmd(g *globalFlags) *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what sync would change: a diff per file (secrets never shown) and the disruption per engine",
		Long: `plan renders the spec for every managed engine and compares it with the files on
disk. It writes nothing. Files that hold credentials are never shown line by
line: plan says they change, with their sizes. Reloads and restarts an earlier
sync left undone (--no-restart) are shown too: the next sync performs them.

With --exit-code it exits 3 when changes are pending (for drift checks).

` + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlan(cmd.Context(), g, f)
		},
	}
	cmd.Flags().BoolVar(&f.exitCode, "exit-code", false, "exit 3 when changes are pending")
	return cmd
}

// buildPlan loads the spec and state and builds the plan, writing nothing;
// shared by plan and validate.
func buildPlan(ctx context.Context, g *globalFlags) (*plan.Plan, error) {
	s, err := g.loadSpec()
	if err != nil {
		return nil, err
	}
	return planFor(ctx, g, s)
}

// planFor builds the plan for s as sync would, writing nothing (engine
// versions come from the cache, or from the binaries without being saved).
func planFor(ctx context.Context, g *globalFlags, s *spec.Spec) (*plan.Plan, error) {
	o, err := g.applyOptions("plan")
	if err != nil {
		return nil, err
	}
	st, err := o.Store.Load()
	if err != nil {
		return nil, err
	}
	p, err := apply.Plan(ctx, s, st, o)
	if err != nil {
		return nil, err
	}
	o.Log.Debug("detect: " + p.Detected())
	return p, nil
}

func runPlan(ctx context.Context, g *globalFlags, f planFlags) error {
	p, err := buildPlan(ctx, g)
	if err != nil {
		return err
	}
	if g.output == "json" {
		j, err := planJSON(p, true)
		if err != nil {
			return err
		}
		if err := writeJSON(g.stdout, j); err != nil {
			return err
		}
	} else if err := printPlanText(g.stdout, p, true); err != nil {
		return err
	}
	if f.exitCode && (p.HasChanges() || p.Owes()) {
		return &exitError{code: exitPending, err: errPending}
	}
	return nil
}
