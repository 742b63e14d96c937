package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/spec"
	"github.com/mirrorctl/mirrorctl/state"
)

func newStatusCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the engines, the files mirrorctl manages, the reloads and restarts it still owes, and the last sync",
		Long: `status reads mirrorctl's record on the node and detects the engines. It writes
nothing and needs no spec (with one, it shows how each engine is configured).
The last sync shown is the last one that changed something or failed: a sync
with nothing to do is not recorded, so that it writes nothing.

` + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStatus(cmd.Context(), g)
		},
	}
}

type jsonStatus struct {
	Engines []engines.Detection  `json:"engines"`
	Files   []jsonManaged        `json:"files"`
	Pending []engines.Activation `json:"pending"`
	Last    *state.Record        `json:"last_sync"`
}

type jsonManaged struct {
	Path   string   `json:"path"`
	Engine string   `json:"engine"`
	Shared bool     `json:"shared"`
	Keys   []string `json:"keys,omitempty"`
	// State: "ok", "edited" (no longer what mirrorctl wrote), "missing".
	State string `json:"state"`
}

func runStatus(ctx context.Context, g *globalFlags) error {
	s, err := g.loadSpecOrDefaults()
	if err != nil {
		return err
	}
	st, err := state.Open(g.host).Load()
	if err != nil {
		return err
	}
	p, err := plan.Build(ctx, s, plan.Options{Root: g.host, Only: g.engines, Engines: detectOnly(), State: st})
	if err != nil {
		return err
	}
	out := jsonStatus{Pending: orEmpty(st.Pending), Last: st.Last, Files: []jsonManaged{}}
	for _, e := range p.Engines {
		out.Engines = append(out.Engines, e.Detection)
	}
	for _, path := range slices.Sorted(maps.Keys(st.Files)) {
		e := st.Files[path]
		m := jsonManaged{Path: path, Engine: e.Engine, Shared: e.Merged, Keys: e.Keys, State: "ok"}
		data, err := g.host.ReadFile(path, 64<<20)
		switch {
		case err != nil:
			m.State = "missing"
		case state.Sum(data) != e.SHA256:
			m.State = "edited"
		}
		out.Files = append(out.Files, m)
	}
	if out.Last != nil {
		last := *out.Last
		last.Error = g.redactor.String(last.Error)
		out.Last = &last
	}
	if g.output == "json" {
		return writeJSON(g.stdout, out)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENGINE\tMANAGED\tVERSION\tUNIT\tCONFIG")
	for _, d := range out.Engines {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Engine, yesNo(d.Managed), dash(d.Version), dash(d.Unit), dash(d.Config))
	}
	tw.Flush()
	fmt.Fprintf(g.stdout, "\nmanaged files: %d\n", len(out.Files))
	tw = tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	for _, f := range out.Files {
		kind := "owned"
		if f.Shared {
			kind = fmt.Sprintf("shared (%d entries)", len(f.Keys))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Path, f.Engine, kind, f.State)
	}
	tw.Flush()
	if len(out.Pending) == 0 {
		fmt.Fprintln(g.stdout, "\npending: none")
	} else {
		fmt.Fprintln(g.stdout, "\npending (the next sync performs them):")
		for _, a := range out.Pending {
			fmt.Fprintf(g.stdout, "  %s: %s\n", a.Engine, describeAction(a))
		}
	}
	if l := out.Last; l != nil {
		fmt.Fprintf(g.stdout, "\nlast sync: %s %s: %s", l.Time.UTC().Format("2006-01-02 15:04:05Z"), l.Trigger, l.Outcome)
		if len(l.Written) > 0 {
			fmt.Fprintf(g.stdout, ", %d file(s) written", len(l.Written))
		}
		if l.Backup != "" {
			fmt.Fprintf(g.stdout, ", backup set %s", l.Backup)
		}
		fmt.Fprintln(g.stdout)
		if l.Error != "" {
			fmt.Fprintf(g.stdout, "  error: %s\n", l.Error)
		}
	} else {
		fmt.Fprintln(g.stdout, "\nlast sync: none recorded")
	}
	return nil
}

// detectOnly wraps every engine so that a plan only detects.
func detectOnly() []engines.Engine {
	var out []engines.Engine
	for _, e := range engines.All() {
		out = append(out, detectWrapper{e})
	}
	return out
}

type detectWrapper struct{ engines.Engine }

func (detectWrapper) Render(*spec.Spec, engines.Host, engines.Detection) (engines.Result, error) {
	return engines.Result{}, nil
}
