package plan

import (
	"fmt"
	"path"
	"strings"

	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/state"
)

// ExcludeConflicts returns p without the changes to files mirrorctl does
// not own (with every other file of their group: a registry directory
// changes whole or not at all), and the conflicts. With adopt, writes over
// such files go ahead (they are backed up first); removals never do:
// mirrorctl deletes only what it wrote and nobody changed since.
func (p *Plan) ExcludeConflicts(root *hostfs.Root, st *state.State, adopt bool) (*Plan, []state.Conflict) {
	var all []state.Conflict
	out := p.Map(func(e *Engine) *Engine {
		conflicts := append(st.Conflicts(e.Changes), foreignDirs(root, e.Changes, st)...)
		if adopt {
			conflicts = removalsOnly(conflicts, e.Changes)
		}
		if len(conflicts) == 0 {
			return e
		}
		all = append(all, conflicts...)
		skipPath, skipGroup := map[string]bool{}, map[string]bool{}
		for _, cf := range conflicts {
			skipPath[cf.Path] = true
			for _, c := range e.Changes {
				if c.File.Path == cf.Path && c.File.Group != "" {
					skipGroup[c.File.Group] = true
				}
			}
		}
		return e.Without(func(c render.Change) bool {
			return skipPath[c.File.Path] || (c.File.Group != "" && skipGroup[c.File.Group])
		})
	})
	return out, all
}

// removalsOnly keeps the conflicts that would delete a file.
func removalsOnly(conflicts []state.Conflict, changes []render.Change) []state.Conflict {
	var out []state.Conflict
	for _, cf := range conflicts {
		for _, c := range changes {
			if c.File.Path == cf.Path && c.Op == render.Delete {
				out = append(out, cf)
				break
			}
		}
	}
	return out
}

// foreignDirs reports registry directories (groups) that mirrorctl would
// create files in although they already hold files it did not write: a
// hosts.toml dropped into a Docker-style certs.d/<host>/ directory would
// change how containerd reads the files already there (it stops scanning
// *.crt once hosts.toml exists).
func foreignDirs(root *hostfs.Root, changes []render.Change, st *state.State) []state.Conflict {
	var out []state.Conflict
	seen := map[string]bool{}
	for _, c := range changes {
		if c.File.Group == "" || c.Op != render.Create || seen[c.File.Group] {
			continue
		}
		seen[c.File.Group] = true
		dir := path.Dir(c.File.Path)
		entries, err := root.ReadDir(dir)
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
