// Package state keeps what mirrorctl remembers on the node, under
// /var/lib/mirrorctl: which files it owns and which entries it wrote in the
// files it shares (state.json), the actions it still owes the engines, the
// last sync, the backup sets taken before each change and the baseline
// (backups/), and the lock that keeps sync, rollback and watch from
// interleaving (lock). Everything goes through hostfs.
//
// Every write is atomic (temporary file, fsync, rename, fsync of the
// directory), so a crash leaves each file old or new, never torn. Nothing
// is written when nothing changed.
package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"time"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/render"
)

// HostDir is where mirrorctl keeps its own files, as a host path.
const HostDir = "/var/lib/mirrorctl"

// stateVersion is the State.Version this package writes; it reads 1 too.
const stateVersion = 2

// maxState bounds state.json (a node with 10,000 registries needs a few MB).
const maxState = 64 << 20

const stateName = "state.json"

// A Store is mirrorctl's directory on one host.
type Store struct {
	Root *hostfs.Root
	Dir  string // the host path HostDir
	// saved is the state.json content last read or written, so that Save
	// writes nothing when nothing changed.
	saved []byte
}

// Open returns the Store under root. It touches nothing on disk; the
// directory is created by the first write.
func Open(root *hostfs.Root) *Store {
	return &Store{Root: root, Dir: HostDir}
}

// An Entry is one file mirrorctl manages.
type Entry struct {
	Engine string `json:"engine"` // the engine that rendered it
	SHA256 string `json:"sha256"` // hex sha256 of the bytes written
	// Secret: the file holds credentials (never shown line by line).
	Secret bool `json:"secret,omitempty"`
	// Primary: the file names others of its directory (written last,
	// removed first).
	Primary bool `json:"primary,omitempty"`
	render.Ownership
}

// Record is what one sync, rollback or watch trigger did, for `status`.
// Only syncs that changed something, failed, or performed owed actions are
// recorded: a sync with nothing to do writes nothing.
type Record struct {
	Time    time.Time `json:"time"`
	Trigger string    `json:"trigger"` // sync, watch:<why>, rollback, boot
	// Outcome: "applied", "pending" (written, activation not done),
	// "failed" (nothing changed), "rolled back" (unhealthy, restored),
	// "conflicts" (applied but for files left alone).
	Outcome string   `json:"outcome"`
	Error   string   `json:"error,omitempty"`
	Backup  string   `json:"backup,omitempty"`
	Written []string `json:"written,omitempty"`
}

// State is the ownership record, state.json.
type State struct {
	Version int `json:"version"`
	// Files maps an absolute host path (not prefixed with --root) to what
	// mirrorctl wrote there.
	Files map[string]Entry `json:"files"`
	// Pending are activations written files still need (--no-restart, no
	// systemd, or a crash before they ran): the next sync performs them.
	Pending []engines.Activation `json:"pending,omitempty"`
	Last    *Record              `json:"last,omitempty"`
}

// New returns an empty State.
func New() *State { return &State{Version: stateVersion, Files: map[string]Entry{}} }

// Clone returns a deep copy of st (nil for nil).
func (st *State) Clone() *State {
	if st == nil {
		return nil
	}
	c := &State{Version: st.Version, Files: make(map[string]Entry, len(st.Files)), Pending: slices.Clone(st.Pending)}
	for k, v := range st.Files {
		v.Keys = slices.Clone(v.Keys)
		c.Files[k] = v
	}
	if st.Last != nil {
		l := *st.Last
		c.Last = &l
	}
	return c
}

// PendingFor returns the activation owed to engine, if any.
func (st *State) PendingFor(engine string) (engines.Activation, bool) {
	for _, a := range st.Pending {
		if a.Engine == engine {
			return a, true
		}
	}
	return engines.Activation{}, false
}

// SetPending records a as owed to its engine (replacing an earlier one),
// or, with a zero Disruption, clears what was owed. An activation without
// Since is owed from now.
func (st *State) SetPending(engine string, a engines.Activation) {
	st.Pending = slices.DeleteFunc(st.Pending, func(p engines.Activation) bool { return p.Engine == engine })
	if a.Disruption != engines.None {
		a.Engine = engine
		if a.Since.IsZero() {
			a.Since = time.Now().UTC().Truncate(time.Millisecond)
		}
		st.Pending = append(st.Pending, a)
		slices.SortFunc(st.Pending, func(a, b engines.Activation) int { return cmpString(a.Engine, b.Engine) })
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Store) statePath() string { return path.Join(s.Dir, stateName) }

// Load reads state.json. A missing file is an empty State (a node mirrorctl
// has never synced). A file that does not parse is an error naming it: it is
// never reset silently, because an empty state would turn every file
// mirrorctl owns into a conflict, or worse, forget which files to remove.
func (s *Store) Load() (*State, error) {
	data, err := s.Root.ReadFile(s.statePath(), maxState)
	if errors.Is(err, fs.ErrNotExist) {
		// Saving an empty state over no file writes nothing either.
		s.saved, _ = encodeState(New())
		return New(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	st, err := parseState(data)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w; fix it, or copy state.json from the newest set in %s", s.Root.Join(s.statePath()), err, s.Root.Join(s.backupsDir()))
	}
	s.saved = data
	return st, nil
}

func parseState(data []byte) (*State, error) {
	st := New()
	if err := json.Unmarshal(data, st); err != nil {
		return nil, err
	}
	switch st.Version {
	case 1, stateVersion: // version 1 lacks only what version 2 adds
	default:
		return nil, fmt.Errorf("version %d, this mirrorctl reads versions 1 and %d", st.Version, stateVersion)
	}
	if st.Files == nil {
		st.Files = map[string]Entry{}
	}
	for p := range st.Files {
		if !path.IsAbs(p) || path.Clean(p) != p {
			return nil, fmt.Errorf("%q is not a clean absolute path", p)
		}
	}
	st.Version = stateVersion
	return st, nil
}

func encodeState(st *State) ([]byte, error) {
	out := *st
	out.Version = stateVersion
	data, err := json.MarshalIndent(&out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding state: %w", err)
	}
	return append(data, '\n'), nil
}

// Save writes state.json atomically, mode 0600 in a 0700 directory, unless
// it would hold the bytes it already holds.
func (s *Store) Save(st *State) error {
	data, err := encodeState(st)
	if err != nil {
		return err
	}
	if s.saved != nil && bytes.Equal(data, s.saved) {
		return nil
	}
	if err := s.mkdir(); err != nil {
		return err
	}
	if err := s.Root.WriteFile(s.statePath(), data, hostfs.WriteOptions{Mode: 0o600}); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	s.saved = data
	return nil
}

// Record notes what a successful render.Apply did: every file written, or
// found already holding the desired bytes (Keep), is owned by engine with
// the hash of those bytes and, for a merged file, the entries mirrorctl now
// owns in it; every file removed, or wanted removed and absent, leaves the
// map. Adopting Keep files is what lets a sync interrupted between Apply
// and Save converge: the next run finds the new bytes on disk, and a file
// that already is byte-for-byte what mirrorctl renders has nothing left of
// anyone else's to protect. Pass only the changes Apply made: a change left
// out (a conflict the user did not opt into) must not be recorded.
func (st *State) Record(engine string, changes []render.Change) {
	if st.Files == nil {
		st.Files = map[string]Entry{}
	}
	for _, c := range changes {
		p := c.File.Path
		if c.File.Remove || c.File.Release {
			delete(st.Files, p)
			continue
		}
		prev, known := st.Files[p]
		if c.File.Merged && len(c.File.Keys) == 0 {
			delete(st.Files, p) // a shared file with nothing of mirrorctl's in it
			continue
		}
		e := Entry{Engine: engine, SHA256: sum(c.File.Data), Secret: c.File.Secret, Primary: c.File.Primary}
		e.Merged, e.Keys = c.File.Merged, slices.Clone(c.File.Keys)
		switch {
		case known:
			e.Created = prev.Created
		case c.Op == render.Create:
			e.Created = true
		}
		st.Files[p] = e
	}
}

// A Conflict is a change that would overwrite or delete a file mirrorctl
// does not own.
type Conflict struct {
	Path   string `json:"path"`   // absolute host path
	Reason string `json:"reason"` // what is wrong, for the user
}

func (c Conflict) String() string { return c.Path + ": " + c.Reason }

// Conflicts lists the changes that would overwrite or delete an existing
// file (Op Update or Delete) that mirrorctl did not write, or that someone
// edited since it did (the bytes on disk, Change.Old, no longer hash to the
// recorded sha256). Creating a file is never a conflict.
//
// Merged files (daemon.json, config.toml, a user's config.json,
// crictl.yaml) are never a conflict when updated: merging keeps every
// entry that is not mirrorctl's. Only files mirrorctl owns whole (hosts.toml
// and its certificates, registries.yaml) can conflict.
func (st *State) Conflicts(changes []render.Change) []Conflict {
	var out []Conflict
	for _, c := range changes {
		if c.Op != render.Update && c.Op != render.Delete {
			continue
		}
		if c.Op == render.Delete && c.Old == nil {
			continue // already gone: only its empty directory is removed
		}
		p := c.File.Path
		if c.File.Merged && c.Op == render.Update {
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

// Owned returns, for one engine, the ownership recorded for each of its files.
func (st *State) Owned(engine string) map[string]render.Ownership {
	out := map[string]render.Ownership{}
	for p, e := range st.Files {
		if e.Engine == engine {
			out[p] = e.Ownership
		}
	}
	return out
}

// Sum is the hex sha256 state.json records for content.
func Sum(data []byte) string { return sum(data) }

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// mkdir creates Dir (0700) and any missing parent (0755).
func (s *Store) mkdir() error {
	if err := s.Root.MkdirAll(path.Dir(s.Dir), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", s.Dir, err)
	}
	if err := s.Root.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", s.Dir, err)
	}
	return nil
}
