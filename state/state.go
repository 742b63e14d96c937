// Package state keeps what mirrorctl remembers on the node, under
// <root>/var/lib/mirrorctl: which files it owns (state.json), the backup sets
// taken before each sync (backups/), and the lock that keeps sync, rollback
// and watch from interleaving (lock).
//
// Every write is atomic (temporary file, fsync, rename, fsync of the
// directory), so a crash leaves each file old or new, never torn.
package state

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"

	"github.com/mirrorctl/mirrorctl/render"
)

// HostDir is where mirrorctl keeps its own files, as a host path.
const HostDir = "/var/lib/mirrorctl"

// stateVersion is the State.Version this package writes and reads.
const stateVersion = 1

// A Store is mirrorctl's directory on one host.
type Store struct {
	Root string // the --root every host path is resolved under
	Dir  string // <Root>/var/lib/mirrorctl
}

// Open returns the Store under root. It touches nothing on disk; the
// directory is created by the first write.
func Open(root string) *Store {
	return &Store{Root: root, Dir: render.HostPath(root, HostDir)}
}

// An Entry is one file mirrorctl manages.
type Entry struct {
	Engine string `json:"engine"` // the engine that rendered it
	SHA256 string `json:"sha256"` // hex sha256 of the bytes written
}

// State is the ownership record, state.json.
type State struct {
	Version int `json:"version"`
	// Files maps an absolute host path (not prefixed with --root) to what
	// mirrorctl wrote there.
	Files map[string]Entry `json:"files"`
}

// Clone returns a deep copy of st (nil for nil).
func (st *State) Clone() *State {
	if st == nil {
		return nil
	}
	c := &State{Version: st.Version, Files: make(map[string]Entry, len(st.Files))}
	for k, v := range st.Files {
		c.Files[k] = v
	}
	return c
}

// New returns an empty State.
func New() *State { return &State{Version: stateVersion, Files: map[string]Entry{}} }

func (s *Store) statePath() string { return filepath.Join(s.Dir, stateName) }

// Load reads state.json. A missing file is an empty State (a node mirrorctl
// has never synced). A file that does not parse is an error naming it: it is
// never reset silently, because an empty state would turn every file
// mirrorctl owns into a conflict, or worse, forget which files to remove.
func (s *Store) Load() (*State, error) {
	data, err := os.ReadFile(s.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return New(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	st, err := parseState(data)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w; fix it, or copy state.json from the newest set in %s", s.statePath(), err, s.backupsDir())
	}
	return st, nil
}

func parseState(data []byte) (*State, error) {
	st := New()
	if err := json.Unmarshal(data, st); err != nil {
		return nil, err
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("version %d, this mirrorctl reads version %d", st.Version, stateVersion)
	}
	if st.Files == nil {
		st.Files = map[string]Entry{}
	}
	return st, nil
}

// Save writes state.json atomically, mode 0600 in a 0700 directory.
func (s *Store) Save(st *State) error {
	out := *st
	out.Version = stateVersion
	data, err := json.MarshalIndent(&out, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding state: %w", err)
	}
	if err := s.mkdir(); err != nil {
		return err
	}
	if err := renameio.WriteFile(s.statePath(), append(data, '\n'), 0o600, renameio.WithStaticPermissions(0o600)); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	return render.SyncDir(s.Dir)
}

// Record notes what a successful render.Apply did: every file written, or
// found already holding the desired bytes (Keep), is owned by engine with
// the hash of those bytes; every file removed, or wanted removed and absent,
// leaves the map. Adopting Keep files is what lets a sync interrupted between
// Apply and Save converge: the next run finds the new bytes on disk, and a
// file that already is byte-for-byte what mirrorctl renders has nothing left
// of anyone else's to protect. Pass only the changes Apply made: a change
// left out (a conflict the user did not opt into) must not be recorded.
func (st *State) Record(engine string, changes []render.Change) {
	if st.Files == nil {
		st.Files = map[string]Entry{}
	}
	for _, c := range changes {
		if c.File.Remove {
			delete(st.Files, c.File.Path)
			continue
		}
		st.Files[c.File.Path] = Entry{Engine: engine, SHA256: sum(c.File.Data)}
	}
}

// A Conflict is a change that would overwrite or delete a file mirrorctl
// does not own.
type Conflict struct {
	Path   string // absolute host path
	Reason string // what is wrong, for the user
}

func (c Conflict) String() string { return c.Path + ": " + c.Reason }

// Conflicts lists the changes that would overwrite or delete an existing
// file (Op Update or Delete) that mirrorctl did not write, or that someone
// edited since it did (the bytes on disk, Change.Old, no longer hash to the
// recorded sha256). Creating a file is never a conflict.
//
// merged reports the shared files mirrorctl merges into rather than owns
// whole (daemon.json, containerd's config.toml, a user's config.json,
// crictl.yaml): merging keeps every key the user wrote, so such a file is
// never a conflict, whoever wrote or edited it last. Only files mirrorctl
// owns whole (hosts.toml and its certificates, registries.yaml) can
// conflict. A nil merged treats every file as owned whole.
func (st *State) Conflicts(changes []render.Change, merged func(path string) bool) []Conflict {
	var out []Conflict
	for _, c := range changes {
		if c.Op != render.Update && c.Op != render.Delete {
			continue
		}
		if c.Op == render.Delete && c.Old == nil {
			continue // already gone: only its empty directory is removed
		}
		p := c.File.Path
		if merged != nil && merged(p) {
			continue
		}
		e, ok := st.Files[p]
		switch {
		case !ok:
			out = append(out, Conflict{Path: p, Reason: "exists and was not written by mirrorctl"})
		case sum(c.Old) != e.SHA256:
			out = append(out, Conflict{Path: p, Reason: "edited since mirrorctl wrote it"})
		}
	}
	return out
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// mkdir creates s.Dir (0700) and any missing parent (0755).
func (s *Store) mkdir() error {
	if err := render.MkdirAll(s.Dir, 0o700, nil); err != nil {
		return fmt.Errorf("creating %s: %w", s.Dir, err)
	}
	return nil
}
