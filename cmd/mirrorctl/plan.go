package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/state"
)

type planFlags struct {
	exitCode bool
}

func newPlanCmd(g *globalFlags) *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what sync would change: a diff per file (secrets redacted) and the disruption per engine",
		Long: `plan renders the spec for every managed engine and compares it with the files on
disk. It writes nothing. Secrets are redacted in every diff.

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

// buildPlan loads the spec and builds the plan; shared by plan, sync and validate.
func buildPlan(ctx context.Context, g *globalFlags) (*plan.Plan, error) {
	log, err := g.logger()
	if err != nil {
		return nil, err
	}
	s, err := g.loadSpec()
	if err != nil {
		return nil, err
	}
	st, err := state.Open(g.root).Load()
	if err != nil {
		return nil, err
	}
	owned := map[string]string{}
	for path, e := range st.Files {
		owned[path] = e.Engine
	}
	p, err := plan.Build(ctx, s, plan.Options{Root: g.root, Only: g.engines, Owned: owned, Log: log})
	if err != nil {
		return nil, err
	}
	log.Debug("detect: " + detectLine(p))
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
	if f.exitCode && p.Pending() {
		return &exitError{code: exitPending, err: errPending}
	}
	return nil
}
