package watch

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/state"
)

// Drift repairs managed files that someone else changed, and stops fighting
// over a file after MaxFights repairs within Window (tailscale's
// checkForFileTrample does the same for resolv.conf): a configuration
// manager or a person who keeps rewriting the file wins, and the node says
// so instead of looping.
//
// A file has drifted when state.json says mirrorctl wrote it and the disk no
// longer holds those bytes (edited, or deleted), and the plan wants it back.
// A file mirrorctl never wrote is not drift: it stays a conflict, left alone
// unless --adopt.
type Drift struct {
	MaxFights int
	Window    time.Duration

	fights  map[string][]time.Time // host path -> repairs within Window
	givenUp map[string]bool

	mu      sync.Mutex
	managed map[string]bool // root-prefixed paths of the managed files, for the watcher
}

// NewDrift returns a Drift with the cap; maxFights < 1 means 1.
func NewDrift(maxFights int, window time.Duration) *Drift {
	return &Drift{MaxFights: max(maxFights, 1), Window: window, fights: map[string][]time.Time{}, givenUp: map[string]bool{}, managed: map[string]bool{}}
}

// Reset forgets the fights and repairs every file again: on SIGHUP, and when
// a new central config arrives.
func (d *Drift) Reset() {
	clear(d.fights)
	clear(d.givenUp)
}

// GivenUp lists the files no longer repaired, sorted.
func (d *Drift) GivenUp() []string {
	var out []string
	for p := range d.givenUp {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// drifted reports whether c restores a file mirrorctl wrote that someone
// else has since changed or removed.
func drifted(c render.Change, st *state.State) bool {
	e, ours := st.Files[c.File.Path]
	if !ours || !c.Changed() {
		return false
	}
	if c.Op == render.Create {
		return true // ours, and gone
	}
	return sha(c.Old) != e.SHA256
}

// prepare narrows p and edits st before anything is written: drifted files
// under the cap are reclaimed (st records their current bytes, so the
// pipeline sees a file it owns and backs the edit up before overwriting
// it), and files over the cap leave the plan with the rest of their group.
// It returns the new plan, the paths being repaired and those given up by
// this call.
func (d *Drift) prepare(p *plan.Plan, st *state.State, now time.Time) (*plan.Plan, []string, []string) {
	var repaired, newlyGivenUp []string
	out := p.Map(func(e *plan.Engine) *plan.Engine {
		dropGroups, dropPaths := map[string]bool{}, map[string]bool{}
		for _, c := range e.Changes {
			if !drifted(c, st) {
				continue
			}
			p := c.File.Path
			if !d.givenUp[p] && d.fight(p, now) {
				repaired = append(repaired, p)
				if c.Old != nil {
					ent := st.Files[p]
					ent.SHA256 = sha(c.Old)
					st.Files[p] = ent
				}
				continue
			}
			if !d.givenUp[p] {
				d.givenUp[p] = true
				newlyGivenUp = append(newlyGivenUp, p)
			}
			dropPaths[p] = true
			if c.File.Group != "" {
				dropGroups[c.File.Group] = true
			}
		}
		if len(dropPaths) == 0 {
			return e
		}
		// Files given up earlier but not drifted now (put back by hand)
		// need nothing; drop only what would be written.
		return e.Without(func(c render.Change) bool {
			return dropPaths[c.File.Path] || (c.File.Group != "" && dropGroups[c.File.Group])
		})
	})
	return out, repaired, newlyGivenUp
}

// fight counts one repair of path at now and reports whether it is allowed:
// at most MaxFights within Window.
func (d *Drift) fight(path string, now time.Time) bool {
	recent := d.fights[path][:0]
	for _, t := range d.fights[path] {
		if now.Sub(t) < d.Window {
			recent = append(recent, t)
		}
	}
	if len(recent) >= d.MaxFights {
		d.fights[path] = recent
		return false
	}
	d.fights[path] = append(recent, now)
	return true
}

// track records the managed files after a sync, for the watcher and dirty,
// and returns the directories to watch.
func (d *Drift) track(root *hostfs.Root, st *state.State) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.managed)
	dirs := map[string]bool{}
	for p := range st.Files {
		d.managed[root.Join(p)] = true
		dirs[root.Join(path.Dir(p))] = true
	}
	out := make([]string, 0, len(dirs))
	for dir := range dirs {
		out = append(out, dir)
	}
	return out
}

// matches says whether an event's path is a managed file (the watcher's
// filter: our directories, /etc among them, see plenty of other traffic).
func (d *Drift) matches(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.managed[filepath.Clean(name)]
}

// dirty reports whether some file in st no longer holds the bytes recorded,
// which is cheap enough to run on every event: no plan, no engine asked.
func dirty(root *hostfs.Root, st *state.State) bool {
	for p, e := range st.Files {
		b, err := root.ReadFile(p, hostfs.DefaultLimit)
		if err != nil || sha(b) != e.SHA256 {
			return true
		}
	}
	return false
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
