package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mirrorctl/mirrorctl/render"
)

// Sets returns every backup set, newest first. Directories that are not
// sets, such as the ".tmp-" leftovers of a Backup interrupted by a crash,
// are ignored. A set whose manifest does not parse is an error naming it.
func (s *Store) Sets() ([]*Set, error) {
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	sets := make([]*Set, 0, len(ids))
	for _, id := range ids {
		set, err := s.readSet(id)
		if err != nil {
			return nil, err
		}
		sets = append(sets, set)
	}
	return sets, nil
}

// Set returns the set with id; "" or "latest" is the newest.
func (s *Store) Set(id string) (*Set, error) {
	if id == "" || id == "latest" {
		ids, err := s.ids()
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("no backup sets in %s", s.backupsDir())
		}
		id = ids[0]
	}
	if !idPattern.MatchString(id) {
		return nil, fmt.Errorf("%q is not a backup set id (like 20261127T053200.123Z); `mirrorctl backups` lists them", id)
	}
	set, err := s.readSet(id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no backup set %s; `mirrorctl backups` lists them", id)
	}
	return set, err
}

// ids lists the set ids in the backups directory, newest first.
func (s *Store) ids() ([]string, error) {
	entries, err := os.ReadDir(s.backupsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing backups: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && idPattern.MatchString(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	sort.Slice(ids, func(i, j int) bool { return idLess(ids[j], ids[i]) })
	return ids, nil
}

func (s *Store) readSet(id string) (*Set, error) {
	dir := filepath.Join(s.backupsDir(), id)
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, fmt.Errorf("reading backup set: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("backup set %s is corrupt: parsing %s: %w", id, manifestName, err)
	}
	if m.ID != id {
		return nil, fmt.Errorf("backup set %s is corrupt: its manifest names %q", id, m.ID)
	}
	t, err := time.Parse(time.RFC3339Nano, m.Time)
	if err != nil {
		return nil, fmt.Errorf("backup set %s is corrupt: %w", id, err)
	}
	set := &Set{ID: id, Time: t, Reason: m.Reason}
	for _, j := range m.Files {
		f := Saved{Path: j.Path, Existed: j.Existed, UID: j.UID, GID: j.GID, SHA256: j.SHA256}
		if !path.IsAbs(f.Path) {
			return nil, fmt.Errorf("backup set %s is corrupt: %q is not an absolute path", id, f.Path)
		}
		if f.Existed {
			mode, err := strconv.ParseUint(j.Mode, 8, 32)
			if err != nil || mode&^0o7777 != 0 {
				return nil, fmt.Errorf("backup set %s is corrupt: mode %q of %s", id, j.Mode, f.Path)
			}
			f.Mode = fs.FileMode(mode)
		}
		set.Files = append(set.Files, f)
	}
	if m.StateSHA256 != "" {
		data, err := os.ReadFile(filepath.Join(dir, stateName))
		if err != nil {
			return nil, fmt.Errorf("backup set %s is corrupt: %w", id, err)
		}
		if sum(data) != m.StateSHA256 {
			return nil, fmt.Errorf("backup set %s is corrupt: %s does not match its sha256", id, stateName)
		}
		if set.State, err = parseState(data); err != nil {
			return nil, fmt.Errorf("backup set %s is corrupt: %s: %w", id, stateName, err)
		}
	}
	return set, nil
}

// RestoreFiles returns the files that put every path of set back as it was:
// the saved content for a file that existed, a removal for one that did not.
// Hand them to render.Plan and render.Apply. Every content is checked
// against the sha256 in the manifest; a mismatch means a corrupt backup and
// is an error, so nothing is restored from it.
//
// A restored file keeps its saved mode and owner when render creates it
// again (an existing file keeps its own: see render.File); a 0600 file is
// marked Secret so its diff is redacted. Files in a directory holding a
// hosts.toml share a Group, so a registry directory changes as one unit.
func (s *Store) RestoreFiles(set *Set) ([]render.File, error) {
	if !idPattern.MatchString(set.ID) {
		return nil, fmt.Errorf("%q is not a backup set id", set.ID)
	}
	dir := filepath.Join(s.backupsDir(), set.ID)
	registryDirs := map[string]bool{}
	for _, f := range set.Files {
		if path.Base(f.Path) == "hosts.toml" {
			registryDirs[path.Dir(f.Path)] = true
		}
	}
	files := make([]render.File, 0, len(set.Files))
	for _, f := range set.Files {
		rf := render.File{Path: f.Path}
		if registryDirs[path.Dir(f.Path)] {
			rf.Group = path.Dir(f.Path)
		}
		if !f.Existed {
			rf.Remove = true
			files = append(files, rf)
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, contentName(f.Path)))
		if err != nil {
			return nil, fmt.Errorf("backup set %s is corrupt: the saved %s: %w", set.ID, f.Path, err)
		}
		if sum(data) != f.SHA256 {
			return nil, fmt.Errorf("backup set %s is corrupt: the saved %s does not match its sha256", set.ID, f.Path)
		}
		rf.Data, rf.Mode, rf.ForceMode = data, f.Mode, true
		rf.Secret = f.Mode == 0o600
		rf.Owner = &render.Owner{UID: f.UID, GID: f.GID}
		files = append(files, rf)
	}
	return files, nil
}

// Prune removes all but the newest keep sets (keep >= 1), and the leftovers
// of Backups interrupted more than an hour ago. A set is renamed to a
// ".del-" name before its files go, so a crash midway never leaves a
// half-deleted set listed.
func (s *Store) Prune(keep int) error {
	if keep < 1 {
		return fmt.Errorf("pruning backups: keep %d sets: must be at least 1", keep)
	}
	ids, err := s.ids()
	if err != nil {
		return err
	}
	dir := s.backupsDir()
	for _, id := range ids[min(keep, len(ids)):] {
		if err := os.Rename(filepath.Join(dir, id), filepath.Join(dir, delPrefix+id)); err != nil {
			return fmt.Errorf("pruning backups: %w", err)
		}
	}
	if len(ids) > keep {
		if err := render.SyncDir(dir); err != nil {
			return fmt.Errorf("pruning backups: %w", err)
		}
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pruning backups: %w", err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		stale := strings.HasPrefix(name, delPrefix)
		if strings.HasPrefix(name, tmpPrefix) {
			// Younger ones may belong to a Backup still running in a
			// process that ignored the lock; leave them be.
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTmp {
				stale = true
			}
		}
		if stale {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				errs = append(errs, fmt.Errorf("pruning backups: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}
