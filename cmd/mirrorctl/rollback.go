package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mirrorctl/mirrorctl/apply"
	"github.com/mirrorctl/mirrorctl/state"
)

func newBackupsCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "backups",
		Short: "List the backup sets saved before each change (newest first), and the baseline",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store := state.Open(g.host)
			sets, err := store.Sets()
			if err != nil {
				return err
			}
			base, err := store.Baseline()
			if err != nil {
				return err
			}
			if base != nil {
				sets = append(sets, base)
			}
			if g.output == "json" {
				type jsonSet struct {
					ID     string   `json:"id"`
					Time   string   `json:"time"`
					Reason string   `json:"reason"`
					Failed bool     `json:"failed,omitempty"`
					Error  string   `json:"error,omitempty"`
					Files  []string `json:"files"`
				}
				out := []jsonSet{}
				for _, s := range sets {
					js := jsonSet{ID: s.ID, Time: s.Time.UTC().Format("2006-01-02T15:04:05Z"), Reason: s.Reason, Failed: s.Failed, Error: g.redactor.String(s.Error), Files: []string{}}
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
				reason := s.Reason
				if s.Failed {
					reason += " (failed)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, s.Time.UTC().Format("2006-01-02 15:04:05Z"), reason, strings.Join(paths, ","))
			}
			return tw.Flush()
		},
	}
}

func newRollbackCmd(g *globalFlags) *cobra.Command {
	var baseline bool
	cmd := &cobra.Command{
		Use:   "rollback [ID]",
		Short: "Restore a backup set (default: the newest successful one) atomically and re-activate the engines",
		Long: `rollback puts every file of a backup set back as it was before that change
(files that did not exist are removed), restores mirrorctl's ownership record,
then reloads or restarts the affected engines and checks their health. The
current files are backed up first, so a rollback can itself be rolled back.

With --baseline it restores every file mirrorctl ever changed to what it held
before mirrorctl first changed it (or removes it, if it did not exist): the
node as it was before mirrorctl. The baseline is never pruned.

` + exitCodesHelp,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			if baseline {
				if id != "" {
					return &exitError{code: exitInput, err: fmt.Errorf("give a backup set ID or --baseline, not both")}
				}
				id = state.BaselineID
			}
			return runRollback(cmd.Context(), g, id)
		},
	}
	cmd.Flags().BoolVar(&baseline, "baseline", false, "restore every file as it was before mirrorctl first changed it")
	return cmd
}

func runRollback(ctx context.Context, g *globalFlags, id string) error {
	// The spec, when there is one, says where units and sockets are; the
	// rollback itself does not depend on it.
	s, err := g.loadSpecOrDefaults()
	if err != nil {
		return err
	}
	o, err := g.applyOptions("rollback")
	if err != nil {
		return err
	}
	res, set, err := apply.Rollback(ctx, s, id, o)
	restored := ""
	if set != nil && err == nil {
		restored = set.ID
	}
	return report(g, res, o.PendingWhy, restored, err)
}
