// Package plan runs the engines over a spec and compares what they render
// with the disk: the files to change, the warnings, and the activation each
// engine needs. It is what `mirrorctl plan` prints and `mirrorctl sync` applies.
package plan

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/mirrorctl/mirrorctl/credentials"
	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// Options select the host and the engines.
type Options struct {
	// Root is --root: every host path is resolved under it.
	Root string
	// Only names the engines to manage (--engines); they are managed even
	// when not detected. Empty means every detected, enabled engine.
	Only []string
	// Engines overrides engines.All(), for tests.
	Engines []engines.Engine
	// Owned maps each path mirrorctl wrote earlier (state.json) to the
	// engine that wrote it. Such a file that no engine renders any more is
	// planned for removal: a registry dropped from the spec takes its
	// hosts.toml and certificates with it, even after a crash.
	Owned map[string]string
	// Down lists the mirror endpoints found not answering, for
	// engines.Host.Down (watch's mirror health); nil for one-shot commands.
	Down map[string]bool
	Log  *slog.Logger
}

// Engine is one engine's part of a plan.
type Engine struct {
	// Adapter is the engine that rendered it.
	Adapter   engines.Engine
	Detection engines.Detection
	Changes   []render.Change
	Warnings  []engines.Warning
	// Action is what the engine needs once its changes are written; its
	// Disruption is None when nothing changed.
	Action engines.Action
}

// Pending reports whether the engine has files to change.
func (e *Engine) Pending() bool {
	return slices.ContainsFunc(e.Changes, render.Change.Changed)
}

// ChangedPaths lists the host paths the engine's changes touch.
func (e *Engine) ChangedPaths() []string {
	var out []string
	for _, c := range e.Changes {
		if c.Changed() {
			out = append(out, c.File.Path)
		}
	}
	return out
}

// Plan is the result of Build.
type Plan struct {
	Spec *spec.Spec
	// Engines holds every known engine in apply order, managed or not.
	Engines []*Engine
	// Redactor masks the spec's secrets in anything shown to a person.
	Redactor *credentials.Redactor
}

// Pending reports whether any managed engine has files to change.
func (p *Plan) Pending() bool {
	return slices.ContainsFunc(p.Engines, (*Engine).Pending)
}

// Managed returns the engines mirrorctl manages on this host.
func (p *Plan) Managed() []*Engine {
	var out []*Engine
	for _, e := range p.Engines {
		if e.Detection.Managed {
			out = append(out, e)
		}
	}
	return out
}

// Build detects the engines, renders s for the managed ones and compares
// the result with the disk. It writes nothing.
func Build(ctx context.Context, s *spec.Spec, opts Options) (*Plan, error) {
	all := opts.Engines
	if all == nil {
		all = engines.All()
	}
	if err := checkNames(opts.Only, all); err != nil {
		return nil, err
	}
	host := engines.Host{FS: os.DirFS(opts.Root), Root: opts.Root, Exec: hostExec(opts.Root), Down: opts.Down}
	p := &Plan{Spec: s, Redactor: credentials.NewRedactor(s.SecretValues()...)}
	owner := map[string]string{} // host path -> engine, to catch two engines writing one file
	for _, e := range all {
		h := host
		if !wanted(s, opts.Only, e.Name()) {
			h.Exec = nil // an engine we will not manage is not asked its version
		}
		d := e.Detect(ctx, h, s)
		d.Engine = e.Name()
		if len(opts.Only) > 0 {
			d.Managed = slices.Contains(opts.Only, e.Name())
			if d.Managed && !d.Found {
				d.Reason += "; forced by --engines"
			}
		}
		ep := &Engine{Adapter: e, Detection: d}
		p.Engines = append(p.Engines, ep)
		if !d.Managed {
			continue
		}
		res, err := e.Render(s, host, d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		for _, f := range res.Files {
			if other, dup := owner[f.Path]; dup {
				return nil, fmt.Errorf("%s and %s both render %s; give one of them another path in the spec", other, e.Name(), f.Path)
			}
			owner[f.Path] = e.Name()
		}
		ep.Warnings = res.Warnings
		if ep.Changes, err = render.Plan(opts.Root, res.Files); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		ep.UpdateAction()
	}
	if err := p.addOrphans(opts.Root, opts.Owned); err != nil {
		return nil, err
	}
	return p, nil
}

// addOrphans plans the removal of every file an engine wrote earlier that
// no engine renders now.
func (p *Plan) addOrphans(root string, owned map[string]string) error {
	rendered := map[string]bool{}
	for _, e := range p.Engines {
		for _, c := range e.Changes {
			rendered[c.File.Path] = true
		}
	}
	for _, e := range p.Managed() {
		var files []render.File
		for fp, engine := range owned {
			if engine == e.Detection.Engine && !rendered[fp] {
				files = append(files, render.File{Path: fp, Remove: true, Group: "orphan:" + path.Dir(fp)})
			}
		}
		if len(files) == 0 {
			continue
		}
		slices.SortFunc(files, func(a, b render.File) int { return strings.Compare(a.Path, b.Path) })
		changes, err := render.Plan(root, files)
		if err != nil {
			return fmt.Errorf("%s: %w", e.Detection.Engine, err)
		}
		e.Changes = append(e.Changes, changes...)
		e.UpdateAction()
	}
	return nil
}

// UpdateAction sets Action from the changes that are still pending, after
// the caller dropped some (conflicts) or built the changes itself (rollback).
func (e *Engine) UpdateAction() {
	e.Action = engines.Action{Engine: e.Detection.Engine}
	if e.Pending() {
		e.Action = e.Adapter.Activation(e.ChangedPaths(), e.Detection)
		if r, ok := e.Adapter.(engines.Refiner); ok {
			var changed []render.Change
			for _, c := range e.Changes {
				if c.Changed() {
					changed = append(changed, c)
				}
			}
			e.Action = r.RefineActivation(e.Action, changed, e.Detection)
		}
		e.Action.Engine = e.Detection.Engine
	}
}

// wanted reports whether the engine may be managed: named by --engines, or
// (without --engines) not disabled in the spec.
func wanted(s *spec.Spec, only []string, name string) bool {
	if len(only) > 0 {
		return slices.Contains(only, name)
	}
	t := map[string]spec.Toggle{
		"containerd": s.Engines.Containerd.Enabled,
		"docker":     s.Engines.Docker.Enabled,
		"k3s":        s.Engines.K3s.Enabled,
		"crictl":     s.Engines.Crictl.Enabled,
	}[name]
	return t != spec.Off
}

func checkNames(only []string, all []engines.Engine) error {
	var known []string
	for _, e := range all {
		known = append(known, e.Name())
	}
	for _, n := range only {
		if !slices.Contains(known, n) {
			return fmt.Errorf("--engines: unknown engine %q (known: %s)", n, strings.Join(known, ", "))
		}
	}
	return nil
}

// hostExec runs a host binary under root with a short timeout, to ask an
// engine its version. A binary that is missing or not executable is an error
// the engines treat as "version unknown".
func hostExec(root string) func(ctx context.Context, bin string, args ...string) ([]byte, error) {
	return func(ctx context.Context, bin string, args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, render.HostPath(root, bin), args...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
		return cmd.Output()
	}
}
