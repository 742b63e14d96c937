package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mirrorctl/mirrorctl/apply"
	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/noop"
	"github.com/mirrorctl/mirrorctl/spec"
	"github.com/mirrorctl/mirrorctl/state"
	"golang.org/x/sys/unix"
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
each engine at most once, as the engine says its changes need, and asks each
activated engine whether it works. When one does not, the backup set is
restored and the engine re-activated. A reload or restart left undone
(--no-restart, no systemd) is recorded and performed by the next sync. A
second run with the same spec writes nothing and restarts nothing.

Files mirrorctl did not write are left alone and reported (exit 5) unless
--adopt is given.

` + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSync(cmd, g, f)
		},
	}
	cmd.Flags().BoolVar(&f.adopt, "adopt", false, "take over files that mirrorctl did not write (they are backed up first; never deleted)")
	return cmd
}

func runSync(cmd *cobra.Command, g *globalFlags, f syncFlags) error {
	ctx := cmd.Context()
	o, err := g.applyOptions("sync")
	if err != nil {
		return err
	}
	o.Adopt = f.adopt
	load := g.loadSpec
	if o.NoOp, err = g.noOpKeeper(cmd); err != nil {
		o.Log.Debug("no no-op record for this run", "err", err)
	} else {
		load = func() (*spec.Spec, error) {
			// The loader lists conf.d with filepath.Glob: look at it through
			// mirrorctl's own root too, so that the record sees a drop-in
			// come or go (the directory's, or its parent's, times move).
			if abs, err := filepath.Abs(g.configPath()); err == nil {
				_, _ = g.own.Stat(filepath.Join(filepath.Dir(abs), "conf.d"))
			}
			return g.loadSpecWith(o.NoOp.LookupEnv)
		}
	}
	res, err := apply.SyncFrom(ctx, load, o)
	switch {
	case res != nil && res.Replayed != nil:
		o.Log.Debug("detect: " + res.Replayed.Detected)
		o.Log.Debug("nothing a sync read has changed since it found nothing to change; not planning again",
			"that_sync", res.Replayed.Kept.Local().Format(time.RFC3339))
		for _, w := range res.Replayed.Warnings {
			logWarning(o.Log, w)
		}
	case res != nil && res.Plan != nil:
		o.Log.Debug("detect: " + res.Plan.Detected())
		for _, w := range res.Plan.AllWarnings() {
			logWarning(o.Log, w)
		}
	}
	return report(g, res, o.PendingWhy, "", err)
}

// reportsOnly says whether a flag only says how a command reports: a
// no-op record kept under one of its values is replayed under any other.
func reportsOnly(flag string) bool {
	switch flag {
	case "output", "log-level", "log-format":
		return true
	}
	return false
}

// noOpKeeper is the no-op record's keeper for this sync, keyed by the
// invocation: the binary (another build or package is another program),
// the spec's absolute path, and every flag's value but those reportsOnly
// names.
func (g *globalFlags) noOpKeeper(cmd *cobra.Command) (*noop.Keeper, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Stat(exe, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", exe, err)
	}
	config, err := filepath.Abs(g.configPath())
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%q %d %d %d %d %d %q", exe, st.Dev, st.Ino, st.Size, st.Mtim.Nano(), st.Ctim.Nano(), config)
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if !reportsOnly(f.Name) {
			fmt.Fprintf(h, " --%s=%q", f.Name, f.Value.String())
		}
	})
	return noop.New(noop.Config{Store: g.host, Roots: []*hostfs.Root{g.host, g.own},
		Key: hex.EncodeToString(h.Sum(nil)), Now: g.now}), nil
}

// jsonSync is the JSON shape of sync and rollback output.
type jsonSync struct {
	Restored   string               `json:"restored,omitempty"`
	Written    []string             `json:"written"`
	Backup     string               `json:"backup,omitempty"`
	Done       []engines.Activation `json:"activated"`
	NotRunning []engines.Activation `json:"not_running"`
	Pending    []engines.Activation `json:"pending_activation"`
	PendingWhy string               `json:"pending_reason,omitempty"`
	Conflicts  []state.Conflict     `json:"conflicts"`
	Error      string               `json:"error,omitempty"`
	ExitCode   int                  `json:"exit_code"`
}

// report prints what a sync or rollback did, its error included (in JSON
// too), and returns the error with its exit code.
func report(g *globalFlags, res *apply.Result, pendingWhy, restored string, err error) error {
	err = applyExit(err)
	if res == nil {
		return err // nothing ran: the error alone says it (as JSON too)
	}
	if g.output == "json" {
		out := jsonSync{Restored: restored, Written: orEmpty(res.Written), Backup: res.BackupID,
			Done: orEmpty(res.Done), NotRunning: orEmpty(res.NotRunning), Pending: orEmpty(res.Pending),
			PendingWhy: pendingWhy, Conflicts: orEmpty(res.Conflicts)}
		if len(res.Pending) == 0 {
			out.PendingWhy = ""
		}
		if err != nil {
			out.Error, out.ExitCode = g.redactor.String(err.Error()), exitCodeOf(err)
		}
		if werr := writeJSON(g.stdout, out); werr != nil && err == nil {
			return werr
		}
		return silenced(err)
	}
	if restored != "" {
		fmt.Fprintf(g.stdout, "restored backup set %s\n", restored)
	}
	for _, c := range res.Conflicts {
		fmt.Fprintf(g.stdout, "conflict: %s\n", c)
	}
	switch {
	case len(res.Written) > 0:
		fmt.Fprintf(g.stdout, "wrote %d file(s); backup set %s\n", len(res.Written), res.BackupID)
	case err != nil:
		fmt.Fprintln(g.stdout, "nothing was changed")
	case len(res.Done) == 0 && len(res.Pending) == 0 && len(res.NotRunning) == 0:
		fmt.Fprintln(g.stdout, "nothing to change")
	}
	for _, a := range res.Done {
		fmt.Fprintf(g.stdout, "activated: %s %s\n", a.Engine, describeAction(a))
	}
	for _, a := range res.NotRunning {
		fmt.Fprintf(g.stdout, "not running: %s %s — it reads the new files when it starts\n", a.Engine, a.Unit)
	}
	for _, a := range res.Pending {
		fmt.Fprintf(g.stdout, "pending: %s %s — not done: %s; the next sync performs it\n", a.Engine, describeAction(a), pendingWhy)
	}
	return err
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
