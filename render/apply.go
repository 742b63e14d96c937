package render

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/google/renameio/v2"
)

// Apply makes the disk under root match the changes, one file at a time,
// each atomically: the new content goes to a temporary file in the same
// directory, is fsynced and renamed over the old one, and the directory is
// fsynced. A crash leaves every file either old or new.
//
// Within a Group, files are written before the file that names them
// (hosts.toml last) and removed after it (hosts.toml first), so an engine
// that reads the directory at any instant never finds a hosts.toml pointing
// at a file that is not there yet or any more.
func Apply(root string, changes []Change) error {
	for _, c := range orderForApply(changes) {
		if !c.Changed() {
			continue
		}
		var err error
		if c.Op == Delete {
			err = remove(root, c)
		} else {
			err = write(root, c)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func orderForApply(changes []Change) []Change {
	out := append([]Change(nil), changes...)
	// Files keep their places, except that a group's members are gathered at
	// the place of its first member and ordered by rank.
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
		primary := filepath.Base(c.File.Path) == "hosts.toml"
		switch {
		case c.Op == Delete && primary:
			return 0
		case c.Op == Delete:
			return 1
		case !primary:
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

func write(root string, c Change) error {
	p := HostPath(root, c.File.Path)
	dir := filepath.Dir(p)
	if err := MkdirAll(dir, 0o755, c.File.Owner); err != nil {
		return fmt.Errorf("writing %s: %w", c.File.Path, err)
	}
	target := p
	if resolved, err := filepath.EvalSymlinks(p); err == nil {
		target = resolved // replace what the symlink points at, keep the link
		dir = filepath.Dir(target)
	}
	pf, err := renameio.TempFile(dir, target)
	if err != nil {
		return fmt.Errorf("writing %s: %w", c.File.Path, err)
	}
	defer pf.Cleanup()
	if _, err := pf.Write(c.File.Data); err != nil {
		return fmt.Errorf("writing %s: %w", c.File.Path, err)
	}
	// Set the mode explicitly: the umask must not decide who reads a credential.
	if err := pf.Chmod(c.WantMode()); err != nil {
		return fmt.Errorf("writing %s: %w", c.File.Path, err)
	}
	if c.Old != nil {
		if err := keepOwner(pf.File, target); err != nil {
			return fmt.Errorf("writing %s: %w", c.File.Path, err)
		}
	} else if o := c.File.Owner; o != nil {
		if err := pf.Chown(o.UID, o.GID); err != nil {
			return fmt.Errorf("writing %s: %w", c.File.Path, err)
		}
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("writing %s: %w", c.File.Path, err)
	}
	return SyncDir(dir)
}

func keepOwner(f *os.File, oldPath string) error {
	fi, err := os.Stat(oldPath)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
		return err
	}
	return nil
}

func remove(root string, c Change) error {
	p := HostPath(root, c.File.Path)
	dir := filepath.Dir(p)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", c.File.Path, err)
	} else if err != nil {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return nil // its directory went with a sibling
		}
	}
	if err := SyncDir(dir); err != nil {
		return err
	}
	if c.File.Group != "" {
		// A registry directory that mirrorctl emptied goes too; a directory
		// holding anything else stays (Remove fails on a non-empty one).
		if err := os.Remove(dir); err == nil {
			return SyncDir(filepath.Dir(dir))
		}
	}
	return nil
}

// MkdirAll creates dir with perm and its missing parents with 0755, all owned
// by owner when set, fsyncing each parent so that a new directory entry
// survives a crash as well as the file in it. The mode is set explicitly:
// the umask must not decide who reads a directory of credentials.
func MkdirAll(dir string, perm fs.FileMode, owner *Owner) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if err := MkdirAll(filepath.Dir(dir), 0o755, owner); err != nil {
		return err
	}
	if err := os.Mkdir(dir, perm); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	if err := os.Chmod(dir, perm); err != nil {
		return err
	}
	if owner != nil {
		if err := os.Lchown(dir, owner.UID, owner.GID); err != nil {
			return err
		}
	}
	return SyncDir(filepath.Dir(dir))
}

// SyncDir fsyncs a directory, making the entries created or renamed in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
