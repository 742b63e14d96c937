package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

func newValidateCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check a spec: errors with file:line:column, and per-engine warnings for what an engine cannot express",
		Long: `validate loads the spec and its drop-ins strictly and renders it for the managed
engines (or those named by --engines) without writing anything. Errors name the
file, line and column and say what to write instead; warnings say what an
engine cannot express.

` + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runValidate(cmd.Context(), g)
		},
	}
}

func runValidate(ctx context.Context, g *globalFlags) error {
	p, err := buildPlan(ctx, g)
	if err != nil {
		return err
	}
	j, err := planJSON(p, false)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return writeJSON(g.stdout, struct {
			Valid    bool     `json:"valid"`
			Warnings []string `json:"warnings"`
		}{true, j.Warnings})
	}
	for _, w := range j.Warnings {
		fmt.Fprintln(g.stdout, "warning: "+w)
	}
	fmt.Fprintf(g.stdout, "%s: valid (%d warning(s))\n", g.configPath(), len(j.Warnings))
	return nil
}
