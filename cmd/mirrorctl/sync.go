package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mirrorctl/mirrorctl/apply"
	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/state"
)

type syncFlags struct {
	adopt bool
}

func newSyncCmd(g *globalFlags) *cobra.Command {
	var f syncFlags
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Apply the spec: back up, write atomically, reload or restart what changed, check health, roll back on failure",
		Long: `sync renders the spec for every managed engine, saves a backup set of every file
it is about to change, writes the changed files atomically, reloads or restarts
each engine at most once (containerd: nothing for certs.d, restart for
config.toml; Docker: reload; k3s/RKE2: restart), and asks each activated engine
whether it works. When one does not, the backup set is restored and the engine
re-activated. A second run with the same spec writes nothing and restarts nothing.

Files mirrorctl did not write are left alone and reported (exit 5) unless
--adopt is given.

` + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withLock(cmd.Context(), "mirrorctl sync", func() error {
				return runSync(cmd.Context(), g, f)
			})
		},
	}
	cmd.Flags().BoolVar(&f.adopt, "adopt", false, "take over files that mirrorctl did not write (they are backed up first)")
	return cmd
}

func runSync(ctx context.Context, g *globalFlags, f syncFlags) error {
	p, err := buildPlan(ctx, g)
	if err != nil {
		return err
	}
	log, _ := g.logger()
	for _, e := range p.Managed() {
		for _, w := range e.Warnings {
			logWarning(log, w)
		}
	}
	dial, why := g.systemdDial()
	res, err := apply.Run(ctx, p, apply.Options{
		Root:   g.root,
		Store:  state.Open(g.root),
		Dial:   dial,
		Adopt:  f.adopt,
		Keep:   p.Spec.Backups.Keep,
		Reason: "sync",
		Log:    log,
		Health: g.health, HealthTimeout: g.healthWait,
	})
	if res != nil {
		if rerr := reportSync(g, res, why, ""); rerr != nil && err == nil {
			err = rerr
		}
	}
	return applyExit(err)
}

func reportSync(g *globalFlags, res *apply.Result, pendingWhy, restored string) error {
	if g.output == "json" {
		type jsonAction struct {
			Engine     string `json:"engine"`
			Unit       string `json:"unit,omitempty"`
			Disruption string `json:"disruption"`
			Reason     string `json:"reason,omitempty"`
		}
		conv := func(as []engines.Action) []jsonAction {
			out := []jsonAction{}
			for _, a := range as {
				out = append(out, jsonAction{a.Engine, a.Unit, a.Disruption.String(), a.Reason})
			}
			return out
		}
		conflicts := []string{}
		for _, c := range res.Conflicts {
			conflicts = append(conflicts, c.String())
		}
		return writeJSON(g.stdout, struct {
			Restored   string       `json:"restored,omitempty"`
			Written    []string     `json:"written"`
			Backup     string       `json:"backup,omitempty"`
			Done       []jsonAction `json:"activated"`
			NotRunning []jsonAction `json:"not_running"`
			Pending    []jsonAction `json:"pending_activation"`
			PendingWhy string       `json:"pending_reason,omitempty"`
			Conflicts  []string     `json:"conflicts"`
		}{restored, append([]string{}, res.Written...), res.BackupID, conv(res.Done), conv(res.NotRunning), conv(res.Pending), pendingWhy, conflicts})
	}
	for _, c := range res.Conflicts {
		fmt.Fprintf(g.stdout, "conflict: %s\n", c)
	}
	if len(res.Written) == 0 {
		fmt.Fprintln(g.stdout, "nothing to change")
		return nil
	}
	fmt.Fprintf(g.stdout, "wrote %d file(s); backup set %s\n", len(res.Written), res.BackupID)
	for _, a := range res.Done {
		fmt.Fprintf(g.stdout, "activated: %s %s\n", a.Engine, describeAction(a))
	}
	for _, a := range res.NotRunning {
		fmt.Fprintf(g.stdout, "not running: %s %s — it reads the new files when it starts\n", a.Engine, a.Unit)
	}
	for _, a := range res.Pending {
		fmt.Fprintf(g.stdout, "pending: %s %s — not done: %s\n", a.Engine, describeAction(a), pendingWhy)
	}
	return nil
}
