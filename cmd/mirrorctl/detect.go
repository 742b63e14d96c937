package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/hostexec"
	"github.com/mirrorctl/mirrorctl/plan"
)

func newDetectCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "detect",
		Short: "List the container engines found under --root and whether they will be managed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDetect(cmd.Context(), g)
		},
	}
}

func runDetect(ctx context.Context, g *globalFlags) error {
	s, err := g.loadSpecOrDefaults()
	if err != nil {
		return err
	}
	p, err := plan.Build(ctx, s, plan.Options{Root: g.host, Only: g.engines, Engines: detectOnly(), Version: hostexec.New(g.host).Version})
	if err != nil {
		return err
	}
	if g.output == "json" {
		out := []engines.Detection{}
		for _, e := range p.Engines {
			out = append(out, e.Detection)
		}
		return writeJSON(g.stdout, out)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENGINE\tFOUND\tMANAGED\tVERSION\tUNIT\tSOCKET\tPATHS\tREASON")
	for _, e := range p.Engines {
		d := e.Detection
		paths := strings.Join(nonEmpty(d.Config, d.CertsDir), ",")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Engine, yesNo(d.Found), yesNo(d.Managed), dash(d.Version),
			dash(d.Unit), dash(d.Socket), dash(paths), d.Reason)
	}
	return tw.Flush()
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
