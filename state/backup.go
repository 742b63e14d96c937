package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mirrorctl/mirrorctl/render"
)

// A Set is one backup set: the prior content of every file one sync was
// about to change, taken before it changed any.
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
}

type manifest struct {
	ID          string      `json:"id"`
	Time        string      `json:"time"` // RFC 3339, UTC
	Reason      string      `json:"reason"`
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
}

const (
	idLayout     = "20060102T150405.000Z"
	manifestName = "manifest.json"
	stateName    = "state.json"
	tmpPrefix    = ".tmp-" // a set being built, or left by a crash
	delPrefix    = ".del-" // a set being pruned
	staleTmp     = time.Hour
)

var idPattern = regexp.MustCompile(`^\d{8}T\d{6}\.\d{3}Z(-[1-9]\d*)?$`)

func (s *Store) backupsDir() string { return filepath.Join(s.Dir, "backups") }

// contentName is the file in a set that holds the saved content of hostPath.
func contentName(hostPath string) string { return sum([]byte(hostPath)) }

// Backup saves the current content of paths (absolute host paths, resolved
// under Root) and st as a new Set. A missing file is saved as not existing;
// a directory or other non-regular file where a file is expected is an error,
// and nothing is written. The caller holds the Lock.
func (s *Store) Backup(reason string, paths []string, st *State) (*Set, error) {
	now := time.Now().UTC()
	// A copy: the caller goes on recording the files it writes in st, and
	// the set must keep the state as it was before them.
	set := &Set{Time: now, Reason: reason, State: st.Clone()}
	content := map[string][]byte{}
	for _, p := range paths {
		if _, dup := content[p]; dup {
			continue
		}
		saved, data, err := s.read(p)
		if err != nil {
			return nil, fmt.Errorf("backing up: %w", err)
		}
		set.Files = append(set.Files, saved)
		content[p] = data
	}
	if err := s.mkdir(); err != nil {
		return nil, fmt.Errorf("backing up: %w", err)
	}
	dir := s.backupsDir()
	if err := render.MkdirAll(dir, 0o700, nil); err != nil {
		return nil, fmt.Errorf("backing up: creating %s: %w", dir, err)
	}
	id, tmp, err := claimID(dir, now)
	if err != nil {
		return nil, fmt.Errorf("backing up: %w", err)
	}
	set.ID = id
	if err := writeSet(tmp, set, content); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("backing up: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, id)); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("backing up: %w", err)
	}
	if err := render.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("backing up: %w", err)
	}
	return set, nil
}

// read returns what Backup saves of one host path. Like render.Plan it
// follows a symlink to a regular file, since render.Apply writes through it.
func (s *Store) read(hostPath string) (Saved, []byte, error) {
	saved := Saved{Path: hostPath}
	if !path.IsAbs(hostPath) {
		return saved, nil, fmt.Errorf("%q is not an absolute path", hostPath)
	}
	full := render.HostPath(s.Root, hostPath)
	fi, err := os.Lstat(full)
	if errors.Is(err, fs.ErrNotExist) {
		return saved, nil, nil
	}
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		fi, err = os.Stat(full)
	}
	if err != nil {
		return saved, nil, err
	}
	if fi.IsDir() {
		return saved, nil, fmt.Errorf("%s is a directory, not a file", hostPath)
	}
	if !fi.Mode().IsRegular() {
		return saved, nil, fmt.Errorf("%s is not a regular file (%s)", hostPath, fi.Mode().Type())
	}
	data, err := os.ReadFile(full)
	if err != nil {
		return saved, nil, err
	}
	saved.Existed, saved.Mode, saved.SHA256 = true, fi.Mode().Perm(), sum(data)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		saved.UID, saved.GID = int(st.Uid), int(st.Gid)
	}
	return saved, data, nil
}

// claimID picks an unused id for a set taken at t and creates its temporary
// directory. Mkdir is the claim: it fails if the name is taken.
func claimID(dir string, t time.Time) (id, tmp string, err error) {
	base := t.Format(idLayout)
	for n := 0; ; n++ {
		id = base
		if n > 0 {
			id = base + "-" + strconv.Itoa(n)
		}
		if _, err := os.Lstat(filepath.Join(dir, id)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		tmp = filepath.Join(dir, tmpPrefix+id)
		switch err := os.Mkdir(tmp, 0o700); {
		case errors.Is(err, fs.ErrExist):
			continue
		case err != nil:
			return "", "", err
		}
		return id, tmp, os.Chmod(tmp, 0o700)
	}
}

func writeSet(dir string, set *Set, content map[string][]byte) error {
	m := manifest{ID: set.ID, Time: set.Time.Format(time.RFC3339Nano), Reason: set.Reason, Files: []savedJSON{}}
	for _, f := range set.Files {
		j := savedJSON{Path: f.Path, Existed: f.Existed}
		if f.Existed {
			j.Mode, j.UID, j.GID, j.SHA256 = fmt.Sprintf("%04o", f.Mode), f.UID, f.GID, f.SHA256
			if err := writeSynced(filepath.Join(dir, contentName(f.Path)), content[f.Path]); err != nil {
				return err
			}
		}
		m.Files = append(m.Files, j)
	}
	if set.State != nil {
		data, err := json.MarshalIndent(set.State, "", "  ")
		if err != nil {
			return err
		}
		m.StateSHA256 = sum(data)
		if err := writeSynced(filepath.Join(dir, stateName), data); err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(dir, manifestName), append(data, '\n')); err != nil {
		return err
	}
	return render.SyncDir(dir)
}

// writeSynced creates name with mode 0600 (it may hold credentials) and
// fsyncs it.
func writeSynced(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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
