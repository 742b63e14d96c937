// Package apply carries a plan out on the node: it checks ownership, saves a
// backup set, writes the files atomically, records what it wrote, activates
// each engine with the least disruption, asks the engine whether it works,
// and puts everything back when it does not.
package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/state"
	"github.com/mirrorctl/mirrorctl/systemd"
)

// Options configure Run.
type Options struct {
	Root  string
	Store *state.Store
	// Dial connects to systemd. Nil leaves every reload and restart pending
	// (no systemd on this host, or --no-restart), and Result says which.
	Dial func(ctx context.Context) (systemd.Bus, error)
	// Adopt takes over files mirrorctl did not write instead of reporting
	// them as conflicts.
	Adopt bool
	// Keep is how many backup sets to retain.
	Keep int
	// Health judges an engine after its activation; nil means Check.
	Health func(ctx context.Context, root string, e *plan.Engine) error
	// HealthTimeout is how long an engine may take to come up and pass.
	HealthTimeout time.Duration
	// Reason is recorded in the backup set ("sync", "watch", "rollback 2026…").
	Reason string
	// Restoring, when set, is the ownership state to save after the files
	// are written (a rollback puts back the state of its backup set) instead
	// of recording the written files as mirrorctl's.
	Restoring *state.State
	Log       *slog.Logger
}

// Result says what Run did.
type Result struct {
	Written []string
	Done    []engines.Action
	// NotRunning lists actions not needed because the unit is stopped.
	NotRunning []engines.Action
	Pending    []engines.Action
	Conflicts  []state.Conflict
	BackupID   string

	attempted []*plan.Engine // engines whose activation was started
}

// ErrConflicts is returned (wrapped) when files were left alone because
// mirrorctl did not write them; everything else was applied.
var ErrConflicts = errors.New("files not written by mirrorctl were left alone")

// HealthError is returned when an engine failed its activation or health
// check; the backup set was restored.
type HealthError struct {
	Engine   string
	Err      error
	Restored error // nil when the rollback itself succeeded
}

func (e *HealthError) Error() string {
	msg := fmt.Sprintf("%s is unhealthy after the change: %v; ", e.Engine, e.Err)
	if e.Restored != nil {
		return msg + fmt.Sprintf("restoring the previous files ALSO failed: %v", e.Restored)
	}
	return msg + "the previous files were restored and the engine re-activated"
}

func (e *HealthError) Unwrap() error { return e.Err }

// Run applies p. The caller holds the store's lock.
func Run(ctx context.Context, p *plan.Plan, opts Options) (*Result, error) {
	log := opts.Log
	st, err := opts.Store.Load()
	if err != nil {
		return nil, err
	}
	res := &Result{}
	work := map[*plan.Engine][]render.Change{}
	var paths []string
	for _, e := range p.Managed() {
		changes, conflicts := excludeConflicts(opts.Root, e.Changes, st, opts.Adopt)
		res.Conflicts = append(res.Conflicts, conflicts...)
		if len(conflicts) > 0 {
			e.Changes = changes
			e.UpdateAction() // what is left may need less disruption
		}
		work[e] = changes
		for _, c := range changes {
			if c.Changed() {
				paths = append(paths, c.File.Path)
			}
		}
	}
	if len(paths) == 0 {
		// Nothing to write; still take over files that already hold our bytes.
		for e, changes := range work {
			st.Record(e.Detection.Engine, changes)
		}
		if err := opts.Store.Save(st); err != nil {
			return res, err
		}
		return res, conflictErr(res)
	}
	set, err := opts.Store.Backup(opts.Reason, paths, st)
	if err != nil {
		return res, fmt.Errorf("saving a backup before the change: %w", err)
	}
	res.BackupID = set.ID
	log.Info("backup saved", "set", set.ID, "files", len(paths))

	var touched []*plan.Engine
	for _, e := range p.Managed() {
		changes := work[e]
		if !slices.ContainsFunc(changes, render.Change.Changed) {
			st.Record(e.Detection.Engine, changes)
			continue
		}
		if err := render.Apply(opts.Root, changes); err != nil {
			err = fmt.Errorf("%s: %w", e.Detection.Engine, err)
			if _, rerr := restore(opts, set, false); rerr != nil {
				return res, fmt.Errorf("%w; restoring backup set %s ALSO failed: %v", err, set.ID, rerr)
			}
			res.Written = nil
			return res, fmt.Errorf("%w (every file was restored from backup set %s)", err, set.ID)
		}
		st.Record(e.Detection.Engine, changes)
		touched = append(touched, e)
		for _, c := range changes {
			if c.Changed() {
				res.Written = append(res.Written, c.File.Path)
				log.Info("wrote", "engine", e.Detection.Engine, "path", c.File.Path, "op", string(c.Op))
			}
		}
	}
	if opts.Restoring != nil {
		st = opts.Restoring
	}
	if err := opts.Store.Save(st); err != nil {
		if _, rerr := restore(opts, set, false); rerr != nil {
			return res, fmt.Errorf("%w; restoring backup set %s ALSO failed: %v", err, set.ID, rerr)
		}
		res.Written = nil
		return res, fmt.Errorf("%w (every file was restored from backup set %s)", err, set.ID)
	}
	if err := activateAll(ctx, opts, touched, res); err != nil {
		return res, rollBack(ctx, opts, set, res, err)
	}
	if err := opts.Store.Prune(opts.Keep); err != nil {
		log.Warn("pruning old backup sets", "err", err)
	}
	return res, conflictErr(res)
}

// excludeConflicts drops changes to files mirrorctl does not own, with
// every other file of their group (a registry directory changes whole or
// not at all).
func excludeConflicts(root string, changes []render.Change, st *state.State, adopt bool) ([]render.Change, []state.Conflict) {
	merged := func(path string) bool {
		for _, c := range changes {
			if c.File.Path == path {
				return c.File.Merged
			}
		}
		return false
	}
	conflicts := append(st.Conflicts(changes, merged), foreignDirs(root, changes, st)...)
	if adopt || len(conflicts) == 0 {
		return changes, nil
	}
	skipPath, skipGroup := map[string]bool{}, map[string]bool{}
	for _, cf := range conflicts {
		skipPath[cf.Path] = true
		for _, c := range changes {
			if c.File.Path == cf.Path && c.File.Group != "" {
				skipGroup[c.File.Group] = true
			}
		}
	}
	var keep []render.Change
	for _, c := range changes {
		if skipPath[c.File.Path] || (c.File.Group != "" && skipGroup[c.File.Group]) {
			continue
		}
		keep = append(keep, c)
	}
	return keep, conflicts
}

func conflictErr(res *Result) error {
	if len(res.Conflicts) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d file(s); re-run with --adopt to take them over", ErrConflicts, len(res.Conflicts))
}

// foreignDirs reports registry directories (groups) that mirrorctl would
// create files in although they already hold files it did not write: a
// hosts.toml dropped into a Docker-style certs.d/<host>/ directory would
// change how containerd reads the files already there (it stops scanning
// *.crt once hosts.toml exists).
func foreignDirs(root string, changes []render.Change, st *state.State) []state.Conflict {
	var out []state.Conflict
	seen := map[string]bool{}
	for _, c := range changes {
		if c.File.Group == "" || c.Op != render.Create || seen[c.File.Group] {
			continue
		}
		seen[c.File.Group] = true
		dir := path.Dir(c.File.Path)
		entries, err := os.ReadDir(render.HostPath(root, dir))
		if err != nil {
			continue // no directory yet: nothing to conflict with
		}
		for _, ent := range entries {
			p := path.Join(dir, ent.Name())
			if _, ours := st.Files[p]; ours || strings.HasPrefix(ent.Name(), ".") || renderedHere(changes, p) {
				continue
			}
			out = append(out, state.Conflict{Path: c.File.Path, Reason: fmt.Sprintf("%s holds %s, which mirrorctl did not write", dir, ent.Name())})
			break
		}
	}
	return out
}

func renderedHere(changes []render.Change, p string) bool {
	for _, c := range changes {
		if c.File.Path == p && c.Op != render.Create {
			return true // exists and is being updated/kept: judged by st.Conflicts
		}
	}
	return false
}
