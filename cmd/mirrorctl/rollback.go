package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mirrorctl/mirrorctl/apply"
	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
	"github.com/mirrorctl/mirrorctl/state"
)

func newBackupsCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "backups",
		Short: "List the backup sets saved before each change (newest first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sets, err := state.Open(g.root).Sets()
			if err != nil {
				return err
			}
			if g.output == "json" {
				type jsonSet struct {
					ID     string   `json:"id"`
					Time   string   `json:"time"`
					Reason string   `json:"reason"`
					Files  []string `json:"files"`
				}
				out := []jsonSet{}
				for _, s := range sets {
					js := jsonSet{ID: s.ID, Time: s.Time.UTC().Format("2006-01-02T15:04:05Z"), Reason: s.Reason}
					for _, f := range s.Files {
						js.Files = append(js.Files, f.Path)
					}
					out = append(out, js)
				}
				return writeJSON(g.stdout, out)
			}
			if len(sets) == 0 {
				fmt.Fprintln(g.stdout, "no backup sets")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tREASON\tFILES")
			for _, s := range sets {
				var paths []string
				for _, f := range s.Files {
					paths = append(paths, f.Path)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, s.Time.UTC().Format("2006-01-02 15:04:05Z"), s.Reason, strings.Join(paths, ","))
			}
			return tw.Flush()
		},
	}
}

func newRollbackCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rollback [ID]",
		Short: "Restore a backup set (default: the newest) atomically and re-activate the engines",
		Long: `rollback puts every file of a backup set back as it was before that change
(files that did not exist are removed), restores mirrorctl's ownership record,
then reloads or restarts the affected engines and checks their health. The
current files are backed up first, so a rollback can itself be rolled back.

` + exitCodesHelp,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			return g.withLock(cmd.Context(), "mirrorctl rollback", func() error {
				return runRollback(cmd.Context(), g, id)
			})
		},
	}
}

func runRollback(ctx context.Context, g *globalFlags, id string) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	store := state.Open(g.root)
	set, err := store.Set(id)
	if err != nil {
		return err
	}
	files, err := store.RestoreFiles(set)
	if err != nil {
		return err
	}
	// The spec, when there is one, says where units and sockets are; the
	// rollback itself does not depend on it.
	s, err := g.loadSpecOrDefaults()
	if err != nil {
		return err
	}
	p, err := restorePlan(ctx, g, s, set, files)
	if err != nil {
		return err
	}
	dial, why := g.systemdDial()
	res, err := apply.Run(ctx, p, apply.Options{
		Root: g.root, Store: store, Dial: dial, Adopt: true, Keep: s.Backups.Keep,
		Reason: "rollback to " + set.ID, Restoring: set.State, Log: log,
		Health: g.health, HealthTimeout: g.healthWait,
	})
	if res != nil {
		if g.output != "json" {
			fmt.Fprintf(g.stdout, "restored backup set %s\n", set.ID)
		}
		if rerr := reportSync(g, res, why, set.ID); rerr != nil && err == nil {
			err = rerr
		}
	}
	return applyExit(err)
}

// restorePlan sorts the set's files by the engine that owns them (from the
// ownership state, else by the paths each engine detected) into a plan.
func restorePlan(ctx context.Context, g *globalFlags, s *spec.Spec, set *state.Set, files []render.File) (*plan.Plan, error) {
	detected, err := plan.Build(ctx, s, plan.Options{Root: g.root, Only: g.engines, Engines: noRender(engines.All())})
	if err != nil {
		return nil, err
	}
	cur, err := state.Open(g.root).Load()
	if err != nil {
		return nil, err
	}
	owner := func(path string) string {
		for _, st := range []*state.State{cur, set.State} {
			if st != nil {
				if e, ok := st.Files[path]; ok {
					return e.Engine
				}
			}
		}
		for _, e := range detected.Engines {
			for _, p := range e.Detection.Paths {
				if path == p || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") {
					return e.Detection.Engine
				}
			}
		}
		return ""
	}
	p := &plan.Plan{Spec: s, Redactor: detected.Redactor}
	for i, eng := range engines.All() {
		d := detected.Engines[i].Detection
		var mine []render.File
		for _, f := range files {
			if owner(f.Path) == eng.Name() {
				mine = append(mine, f)
			}
		}
		pe := &plan.Engine{Adapter: eng, Detection: d}
		if len(mine) > 0 {
			pe.Detection.Managed = true
			if pe.Changes, err = render.Plan(g.root, mine); err != nil {
				return nil, err
			}
			pe.UpdateAction()
		} else {
			pe.Detection.Managed = false
		}
		p.Engines = append(p.Engines, pe)
	}
	return p, nil
}

// noRender wraps engines so that plan.Build only detects: a rollback must not
// fail because the current spec does not render.
func noRender(all []engines.Engine) []engines.Engine {
	out := make([]engines.Engine, len(all))
	for i, e := range all {
		out[i] = detectOnly{e}
	}
	return out
}

type detectOnly struct{ engines.Engine }

func (detectOnly) Render(*spec.Spec, engines.Host, engines.Detection) (engines.Result, error) {
	return engines.Result{}, nil
}
