package render

import (
	"context"
	"fmt"
	"path"
	"sort"

	"github.com/mirrorctl/mirrorctl/hostfs"
)

// batch bounds how many temporary files are open and pending at once.
const batch = 256

// Apply makes the disk under root match the changes, each file atomically:
// its new content goes to a temporary file in the same directory, and is
// renamed over the old one once durable. A crash leaves every file either
// old or new. Durability is paid per batch, not per file: every temporary
// file of a batch is written first, one syncfs makes them durable, then the
// renames, then one fsync per directory.
//
// Within a Group, files are written before its Primary (the file naming
// them, made durable first) and removed after it, so an engine that reads
// the directory at any instant never finds the primary pointing at a file
// that is not there yet or any more. A group directory left empty goes too.
//
// Cancelling ctx stops Apply between files; what was written stays written
// (the caller restores its backup).
func Apply(ctx context.Context, root *hostfs.Root, changes []Change) error {
	// One resolution per directory, not per file and directory (see
	// hostfs.Root.WithDirCache); what Apply removes, the view forgets.
	root, release := root.WithDirCache()
	defer release()
	var todo []Change
	for _, c := range orderForApply(changes) {
		if c.Changed() {
			todo = append(todo, c)
		}
	}
	for len(todo) > 0 {
		n := min(batch, len(todo))
		// Never cut a group in two: its ordering holds within a batch.
		for n < len(todo) && todo[n].File.Group != "" && todo[n].File.Group == todo[n-1].File.Group {
			n++
		}
		if err := applyBatch(ctx, root, todo[:n]); err != nil {
			return err
		}
		todo = todo[n:]
	}
	return nil
}

func applyBatch(ctx context.Context, root *hostfs.Root, changes []Change) error {
	dirs := map[string]bool{}
	for _, c := range changes {
		if c.Op != Delete {
			dir := path.Dir(c.File.Path)
			if !dirs[dir] {
				if err := root.MkdirAll(dir, 0o755); err != nil {
					return fmt.Errorf("writing %s: %w", c.File.Path, err)
				}
				if err := root.RemoveStaleTemps(dir); err != nil {
					return err
				}
			}
			dirs[dir] = true
		}
	}
	staged := map[int]*hostfs.Staged{}
	var all []*hostfs.Staged
	abort := func() {
		for _, s := range staged {
			s.Abort()
		}
	}
	for i, c := range changes {
		if c.Op == Delete {
			continue
		}
		if err := ctx.Err(); err != nil {
			abort()
			return err
		}
		s, err := root.Stage(c.File.Path, c.File.Data, writeOptions(c))
		if err != nil {
			abort()
			return fmt.Errorf("writing %s: %w", c.File.Path, err)
		}
		staged[i] = s
		all = append(all, s)
	}
	if err := hostfs.Sync(all); err != nil {
		abort()
		return err
	}
	dirty := map[string]bool{}
	groupDone := map[string]bool{}    // a group's non-primary files were committed
	groupRemoved := map[string]bool{} // a group lost files: its directory may be empty
	for i, c := range changes {
		if err := ctx.Err(); err != nil {
			abort()
			return err
		}
		dir := path.Dir(c.File.Path)
		if c.Op == Delete {
			if err := root.Remove(c.File.Path); err != nil {
				abort()
				return fmt.Errorf("removing %s: %w", c.File.Path, err)
			}
			dirty[dir] = true
			if g := c.File.Group; g != "" {
				groupRemoved[g] = true
				if c.File.Primary {
					// The primary is gone for good before what it named goes.
					if err := root.SyncDir(dir); err != nil {
						abort()
						return err
					}
				}
			}
			continue
		}
		s := staged[i]
		if c.File.Primary && groupDone[c.File.Group] {
			// What the primary names is durably in place before it is.
			if err := root.SyncDir(s.Dir()); err != nil {
				abort()
				return err
			}
		}
		realDir := s.Dir()
		if err := s.Commit(); err != nil {
			delete(staged, i)
			abort()
			return fmt.Errorf("writing %s: %w", c.File.Path, err)
		}
		delete(staged, i)
		dirty[realDir] = true
		if c.File.Group != "" && !c.File.Primary {
			groupDone[c.File.Group] = true
		}
	}
	for _, dir := range sortedKeys(dirty) {
		if err := root.SyncDir(dir); err != nil {
			return err
		}
	}
	// A group directory mirrorctl emptied goes too; one holding anything
	// else stays.
	for _, c := range changes {
		if c.Op != Delete || c.File.Group == "" || !groupRemoved[c.File.Group] {
			continue
		}
		groupRemoved[c.File.Group] = false
		dir := path.Dir(c.File.Path)
		removed, err := root.RemoveDir(dir)
		if err != nil {
			return err
		}
		if removed {
			if err := root.SyncDir(path.Dir(dir)); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeOptions(c Change) hostfs.WriteOptions {
	o := hostfs.WriteOptions{Mode: c.WantMode()}
	switch {
	case c.File.ForceMode && c.File.Owner != nil:
		o.Owner = &hostfs.Owner{UID: c.File.Owner.UID, GID: c.File.Owner.GID}
	case c.OldOwner != nil:
		o.Owner = &hostfs.Owner{UID: c.OldOwner.UID, GID: c.OldOwner.GID}
	case c.File.Owner != nil:
		o.Owner = &hostfs.Owner{UID: c.File.Owner.UID, GID: c.File.Owner.GID}
	}
	return o
}

// orderForApply keeps files in their places, except that a group's members
// are gathered at the place of its first member: removals first (the
// primary before the rest), then writes (the rest before the primary).
func orderForApply(changes []Change) []Change {
	out := append([]Change(nil), changes...)
	slot := make(map[string]int)
	key := make([]int, len(out))
	for i, c := range out {
		key[i] = i
		if g := c.File.Group; g != "" {
			if first, ok := slot[g]; ok {
				key[i] = first
			} else {
				slot[g] = i
			}
		}
	}
	rank := func(c Change) int {
		switch {
		case c.Op == Delete && c.File.Primary:
			return 0
		case c.Op == Delete:
			return 1
		case !c.File.Primary:
			return 2
		}
		return 3
	}
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		if key[idx[a]] != key[idx[b]] {
			return key[idx[a]] < key[idx[b]]
		}
		return rank(out[idx[a]]) < rank(out[idx[b]])
	})
	sorted := make([]Change, len(out))
	for i, j := range idx {
		sorted[i] = out[j]
	}
	return sorted
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
