package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/render"
)

// A Set is one backup set: the prior content of every file one sync was
// about to change, taken before it changed any. The baseline is a set too
// (ID "baseline"): the content of every path before mirrorctl first changed
// it, kept for ever.
//
// On disk it is backups/<ID>/ holding manifest.json, one 0600 file per saved
// content (named by the hex sha256 of its host path, so any path fits in one
// file name) and, when Backup was given one, state.json. The directory is
// built under a ".tmp-" name and renamed into place, so a set is listed
// whole or not at all.
type Set struct {
	ID     string // sortable by time: "20261127T053200.123Z", "-1", "-2"… on a clash
	Time   time.Time
	Reason string
	// Failed is set once the sync that took the set failed (and put the
	// files back): such a set never pushes a successful one out.
	Failed bool
	Error  string
	Files  []Saved
	// State is state.json as it was when the set was taken, so that a
	// rollback restores ownership along with the files. Nil if Backup was
	// given no State.
	State *State
}

// Saved describes one file in a Set.
type Saved struct {
	Path     string      // absolute host path
	Existed  bool        // false: the file did not exist, and restoring removes it
	Mode     fs.FileMode // permission bits, when Existed
	UID, GID int         // owner, when Existed
	SHA256   string      // hex sha256 of the saved content, when Existed
	// Group and Primary are the file's render.File group, so that a
	// restore changes a registry directory as one unit, in order.
	Group   string
	Primary bool
}

type manifest struct {
	ID          string      `json:"id"`
	Time        string      `json:"time"` // RFC 3339, UTC
	Reason      string      `json:"reason"`
	Status      string      `json:"status,omitempty"` // "failed"; empty when applied
	Error       string      `json:"error,omitempty"`
	Files       []savedJSON `json:"files"`
	StateSHA256 string      `json:"state_sha256,omitempty"` // of state.json, when saved
}

type savedJSON struct {
	Path    string `json:"path"`
	Existed bool   `json:"existed"`
	Mode    string `json:"mode,omitempty"` // octal, as ls and chmod show it: "0644"
	UID     int    `json:"uid"`
	GID     int    `json:"gid"`
	SHA256  string `json:"sha256,omitempty"`
	Group   string `json:"group,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

const (
	idLayout     = "20060102T150405.000Z"
	manifestName = "manifest.json"
	tmpPrefix    = ".tmp-" // a set being built, or left by a crash
	delPrefix    = ".del-" // a set being pruned
	staleTmp     = time.Hour
	// BaselineID names the baseline set.
	BaselineID = "baseline"
	// maxSaved bounds one saved file (as the engines' files are bounded).
	maxSaved = hostfs.DefaultLimit
)

var idPattern = regexp.MustCompile(`^\d{8}T\d{6}\.\d{3}Z(-[1-9]\d*)?$`)

func (s *Store) backupsDir() string { return path.Join(s.Dir, "backups") }

// contentName is the file in a set that holds the saved content of hostPath.
func contentName(hostPath string) string { return sum([]byte(hostPath)) }

// Backup saves the current content of files' paths (absolute host paths,
// read through the root) and st as a new Set, and adds to the baseline every
// path it does not hold yet. A missing file is saved as not existing; a
// directory or other non-regular file where a file is expected is an error,
// and nothing is written. The caller holds the Lock.
func (s *Store) Backup(reason string, files []render.File, st *State) (*Set, error) {
	now := time.Now().UTC()
	// A copy: the caller goes on recording the files it writes in st, and
	// the set must keep the state as it was before them.
	set := &Set{Time: now, Reason: reason, State: st.Clone()}
	content := map[string][]byte{}
	for _, f := range files {
		if _, dup := content[f.Path]; dup {
			continue
		}
		saved, data, err := s.read(f)
		if err != nil {
			return nil, fmt.Errorf("backing up: %w", err)
		}
		set.Files = append(set.Files, saved)
		content[f.Path] = data
	}
	if err := s.mkdir(); err != nil {
		return nil, fmt.Errorf("backing up: %w", err)
	}
	dir := s.backupsDir()
	if err := s.Root.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("backing up: creating %s: %w", dir, err)
	}
	if err := s.extendBaseline(set, content); err != nil {
		return nil, fmt.Errorf("backing up the baseline: %w", err)
	}
	id, tmp, err := s.claimID(now)
	if err != nil {
		return nil, fmt.Errorf("backing up: %w", err)
	}
	set.ID = id
	if err := s.writeSet(tmp, set, content); err != nil {
		s.Root.RemoveAll(tmp)
		return nil, fmt.Errorf("backing up: %w", err)
	}
	if err := s.Root.Rename(dir, path.Base(tmp), id); err != nil {
		s.Root.RemoveAll(tmp)
		return nil, fmt.Errorf("backing up: %w", err)
	}
	if err := s.Root.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("backing up: %w", err)
	}
	return set, nil
}

// read returns what Backup saves of one file. Like render.Plan it follows a
// link to a regular file, since render.Apply writes through it.
func (s *Store) read(f render.File) (Saved, []byte, error) {
	saved := Saved{Path: f.Path, Group: f.Group, Primary: f.Primary}
	if !path.IsAbs(f.Path) {
		return saved, nil, fmt.Errorf("%q is not an absolute path", f.Path)
	}
	data, fi, err := s.Root.ReadFileInfo(f.Path, maxSaved)
	if errors.Is(err, fs.ErrNotExist) {
		return saved, nil, nil
	}
	if err != nil {
		return saved, nil, err
	}
	saved.Existed, saved.Mode, saved.SHA256 = true, fi.Mode().Perm(), sum(data)
	saved.UID, saved.GID, _ = hostfs.OwnerOf(fi)
	return saved, data, nil
}

// claimID picks an unused id for a set taken at t and creates its temporary
// directory. Mkdir is the claim: another id is tried if the name is taken.
func (s *Store) claimID(t time.Time) (id, tmp string, err error) {
	base := t.Format(idLayout)
	for n := 0; ; n++ {
		id = base
		if n > 0 {
			id = base + "-" + strconv.Itoa(n)
		}
		final := path.Join(s.backupsDir(), id)
		tmp = path.Join(s.backupsDir(), tmpPrefix+id)
		if s.Root.Exists(final) || s.Root.Exists(tmp) {
			continue
		}
		return id, tmp, s.Root.MkdirAll(tmp, 0o700)
	}
}

// writeSet writes a set's content files, state and manifest into dir, a
// batch at a time (the set exists only once dir is renamed into place).
func (s *Store) writeSet(dir string, set *Set, content map[string][]byte) error {
	m := manifestOf(set)
	var files []hostfs.FileData
	for _, f := range set.Files {
		if f.Existed {
			files = append(files, hostfs.FileData{Path: path.Join(dir, contentName(f.Path)), Data: content[f.Path]})
		}
	}
	if set.State != nil {
		data, err := encodeState(set.State)
		if err != nil {
			return err
		}
		m.StateSHA256 = sum(data)
		files = append(files, hostfs.FileData{Path: path.Join(dir, stateName), Data: data})
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	files = append(files, hostfs.FileData{Path: path.Join(dir, manifestName), Data: append(data, '\n')})
	if err := s.Root.WriteFiles(files, hostfs.WriteOptions{Mode: 0o600}); err != nil {
		return err
	}
	return s.Root.SyncDir(dir)
}

func manifestOf(set *Set) manifest {
	m := manifest{ID: set.ID, Time: set.Time.Format(time.RFC3339Nano), Reason: set.Reason, Error: set.Error, Files: []savedJSON{}}
	if set.Failed {
		m.Status = "failed"
	}
	for _, f := range set.Files {
		j := savedJSON{Path: f.Path, Existed: f.Existed, Group: f.Group, Primary: f.Primary}
		if f.Existed {
			j.Mode, j.UID, j.GID, j.SHA256 = fmt.Sprintf("%04o", f.Mode), f.UID, f.GID, f.SHA256
		}
		m.Files = append(m.Files, j)
	}
	return m
}

// MarkFailed records in set's manifest that the sync which took it failed,
// and why (err is shown by `mirrorctl backups`; pass it redacted).
func (s *Store) MarkFailed(set *Set, why string) error {
	set.Failed, set.Error = true, why
	dir := path.Join(s.backupsDir(), set.ID)
	m := manifestOf(set)
	if set.State != nil {
		data, err := encodeState(set.State)
		if err != nil {
			return err
		}
		m.StateSHA256 = sum(data)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return s.Root.WriteFile(path.Join(dir, manifestName), append(data, '\n'), hostfs.WriteOptions{Mode: 0o600})
}

// extendBaseline adds to the baseline every path of set it does not hold:
// the content a path had before mirrorctl first changed it, or its absence.
// The baseline only grows; its manifest is rewritten last, so a crash
// midway leaves it as it was (a content file without a manifest entry is
// overwritten next time).
func (s *Store) extendBaseline(set *Set, content map[string][]byte) error {
	base, err := s.Baseline()
	if err != nil {
		return err
	}
	have := map[string]bool{}
	if base == nil {
		base = &Set{ID: BaselineID, Time: set.Time, Reason: "before mirrorctl changed each file"}
	}
	for _, f := range base.Files {
		have[f.Path] = true
	}
	var added []Saved
	for _, f := range set.Files {
		if !have[f.Path] {
			added = append(added, f)
		}
	}
	if len(added) == 0 {
		return nil
	}
	dir := path.Join(s.backupsDir(), BaselineID)
	if err := s.Root.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var files []hostfs.FileData
	for _, f := range added {
		if f.Existed {
			files = append(files, hostfs.FileData{Path: path.Join(dir, contentName(f.Path)), Data: content[f.Path]})
		}
	}
	if err := s.Root.WriteFiles(files, hostfs.WriteOptions{Mode: 0o600}); err != nil {
		return err
	}
	if err := s.Root.SyncDir(dir); err != nil {
		return err
	}
	base.Files = append(base.Files, added...)
	data, err := json.MarshalIndent(manifestOf(base), "", "  ")
	if err != nil {
		return err
	}
	return s.Root.WriteFile(path.Join(dir, manifestName), append(data, '\n'), hostfs.WriteOptions{Mode: 0o600})
}

// Baseline returns the baseline set, or nil when mirrorctl never changed
// a file here.
func (s *Store) Baseline() (*Set, error) {
	set, err := s.readSet(BaselineID)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return set, err
}

// idLess orders ids by time, then by clash counter.
func idLess(a, b string) bool {
	ab, an := splitID(a)
	bb, bn := splitID(b)
	if ab != bb {
		return ab < bb
	}
	return an < bn
}

func splitID(id string) (string, int) {
	base, n, ok := strings.Cut(id, "-")
	if !ok {
		return base, 0
	}
	i, _ := strconv.Atoi(n)
	return base, i
}
