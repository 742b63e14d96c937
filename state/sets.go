package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mirrorctl/mirrorctl/render"
)

// maxManifest bounds a set's manifest.
const maxManifest = 64 << 20

// Sets returns every backup set, newest first (the baseline is not one of
// them: see Baseline). Directories that are not sets, such as the ".tmp-"
// leftovers of a Backup interrupted by a crash, are ignored. A set whose
// manifest does not parse is an error naming it.
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

// Set returns the set with id; "" or "latest" is the newest successful one,
// "baseline" the baseline.
func (s *Store) Set(id string) (*Set, error) {
	switch id {
	case BaselineID:
		set, err := s.Baseline()
		if err == nil && set == nil {
			err = errors.New("no baseline: mirrorctl has not changed any file on this node")
		}
		return set, err
	case "", "latest":
		sets, err := s.Sets()
		if err != nil {
			return nil, err
		}
		for _, set := range sets {
			if !set.Failed {
				return set, nil
			}
		}
		return nil, fmt.Errorf("no backup sets in %s", s.backupsDir())
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
	entries, err := s.Root.ReadDir(s.backupsDir())
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
	dir := path.Join(s.backupsDir(), id)
	data, err := s.Root.ReadFile(path.Join(dir, manifestName), maxManifest)
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
	set := &Set{ID: id, Time: t, Reason: m.Reason, Failed: m.Status == "failed", Error: m.Error}
	for _, j := range m.Files {
		f := Saved{Path: j.Path, Existed: j.Existed, UID: j.UID, GID: j.GID, SHA256: j.SHA256, Group: j.Group, Primary: j.Primary}
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			return nil, fmt.Errorf("backup set %s is corrupt: %q is not a clean absolute path", id, f.Path)
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
		data, err := s.Root.ReadFile(path.Join(dir, stateName), maxState)
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
// A restored file keeps its saved mode and owner (root writes it with that
// owner; a file in a user's directory is written with the user's rights); a
// 0600 file is marked Secret so it is never shown line by line. Files keep
// their group and primary, so a registry directory changes as one unit.
func (s *Store) RestoreFiles(set *Set) ([]render.File, error) {
	if set.ID != BaselineID && !idPattern.MatchString(set.ID) {
		return nil, fmt.Errorf("%q is not a backup set id", set.ID)
	}
	dir := path.Join(s.backupsDir(), set.ID)
	files := make([]render.File, 0, len(set.Files))
	for _, f := range set.Files {
		rf := render.File{Path: f.Path, Group: f.Group, Primary: f.Primary}
		if !f.Existed {
			rf.Remove = true
			files = append(files, rf)
			continue
		}
		data, err := s.Root.ReadFile(path.Join(dir, contentName(f.Path)), maxSaved)
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

// Prune removes all but the newest keep successful sets and the newest keep
// failed ones (keep >= 1), so that failures never push a good set out; the
// baseline is never pruned. It also removes the leftovers of Backups
// interrupted more than an hour ago. A set is renamed to a ".del-" name
// before its files go, so a crash midway never leaves a half-deleted set
// listed.
func (s *Store) Prune(keep int) error {
	if keep < 1 {
		return fmt.Errorf("pruning backups: keep %d sets: must be at least 1", keep)
	}
	sets, err := s.Sets()
	if err != nil {
		return err
	}
	dir := s.backupsDir()
	var good, failed int
	renamed := false
	for _, set := range sets {
		n := &good
		if set.Failed {
			n = &failed
		}
		if *n++; *n <= keep {
			continue
		}
		if err := s.Root.Rename(dir, set.ID, delPrefix+set.ID); err != nil {
			return fmt.Errorf("pruning backups: %w", err)
		}
		renamed = true
	}
	if renamed {
		if err := s.Root.SyncDir(dir); err != nil {
			return fmt.Errorf("pruning backups: %w", err)
		}
	}
	entries, err := s.Root.ReadDir(dir)
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
			if err := s.Root.RemoveAll(path.Join(dir, name)); err != nil {
				errs = append(errs, fmt.Errorf("pruning backups: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}
