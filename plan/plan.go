// Package plan runs the engines over a spec and compares what they render
// with the disk: the files to change, the warnings, and the activation each
// engine needs. It is what `mirrorctl plan` prints and every sync applies.
// A plan is a value: narrowing it (conflicts, drift) returns a new one with
// the activations recomputed from what is left.
package plan

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/mirrorctl/mirrorctl/credentials"
	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/engines/health"
	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
	"github.com/mirrorctl/mirrorctl/state"
)

// Options select the host and the engines.
type Options struct {
	// Root is --root: every host path is resolved inside it.
	Root *hostfs.Root
	// Only names the engines to manage (--engines); they are managed even
	// when not detected. Empty means every detected, enabled engine.
	Only []string
	// Engines overrides engines.All(), for tests.
	Engines []engines.Engine
	// State is the ownership record. A file it lists that no engine renders
	// any more is planned for removal when it lies where its engine
	// manages files (Detection.Owns), and ignored with a warning otherwise.
	// Nil means a node mirrorctl never synced.
	State *state.State
	// Version asks a host binary its version (cached); nil leaves versions
	// unknown.
	Version func(ctx context.Context, bin string, args ...string) (string, error)
	// Down lists the mirror endpoints found not answering, for
	// engines.Host.Down (watch's mirror health); nil for one-shot commands.
	Down map[string]bool
	// Applied reports whether the daemons p asks already run with the
	// files written since (health.Probe.Applied: restarted since, or a
	// reload visible in the daemon's own answer); an owed activation so
	// done outside mirrorctl is forgotten. Nil keeps every owed activation.
	Applied func(ctx context.Context, p health.Probe, since time.Time) bool
	Log     *slog.Logger
}

// Engine is one engine's part of a plan.
type Engine struct {
	// Adapter is the engine that rendered it.
	Adapter   engines.Engine
	Detection engines.Detection
	Changes   []render.Change
	Warnings  []engines.Warning
	// Activation is what the changes need, from the engine.
	Activation engines.Activation
	// Owed is an activation an earlier sync wrote files for but did not
	// perform (--no-restart, no systemd, a crash); nil when none.
	Owed *engines.Activation
}

// HasChanges reports whether the engine has files to change.
func (e *Engine) HasChanges() bool {
	return slices.ContainsFunc(e.Changes, render.Change.Changed)
}

// Due is the activation to perform: what the changes need, folded with
// what is owed (the stronger wins). An owed activation is checked with the
// probe of the files as they are now, not as they were when it was owed.
func (e *Engine) Due() engines.Activation {
	a := e.Activation
	if e.Owed != nil && e.Owed.Disruption > a.Disruption {
		a = *e.Owed
		a.Probe = e.currentProbe()
	}
	// Owed from now when the new changes need an activation of their own;
	// otherwise from when the owed one's files were written.
	a.Since = time.Time{}
	if e.Owed != nil && e.Activation.Disruption == engines.None {
		a.Since = e.Owed.Since
	}
	a.Engine = e.Detection.Engine
	return a
}

// currentProbe is the probe for the engine's configuration as planned.
func (e *Engine) currentProbe() health.Probe {
	return e.Adapter.Activation(asWritten(e.Changes), e.Detection).Probe
}

// asWritten presents every planned file as just written, so that an engine
// computes the probe for the whole of its configuration.
func asWritten(changes []render.Change) []render.Change {
	out := make([]render.Change, 0, len(changes))
	for _, c := range changes {
		if c.Op == render.Keep {
			c.Op, c.Old = render.Update, nil
		}
		out = append(out, c)
	}
	return out
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

// With returns a copy of e holding changes, its activation recomputed by
// the engine from them: the one place an activation is decided.
func (e *Engine) With(changes []render.Change) *Engine {
	out := *e
	out.Changes = changes
	out.Activation = engines.Activation{Engine: e.Detection.Engine}
	if out.HasChanges() {
		out.Activation = e.Adapter.Activation(changes, e.Detection)
		out.Activation.Engine = e.Detection.Engine
	}
	return &out
}

// Without returns a copy of e without the changes drop selects.
func (e *Engine) Without(drop func(render.Change) bool) *Engine {
	var keep []render.Change
	for _, c := range e.Changes {
		if !drop(c) {
			keep = append(keep, c)
		}
	}
	return e.With(keep)
}

// Plan is the result of Build.
type Plan struct {
	Spec *spec.Spec
	// Engines holds every known engine in apply order, managed or not.
	Engines []*Engine
	// Warnings are the plan's own: the spec's notes, state entries it ignored.
	Warnings []engines.Warning
	// Redactor masks the spec's secrets in anything shown to a person.
	Redactor *credentials.Redactor
}

// HasChanges reports whether any managed engine has files to change.
func (p *Plan) HasChanges() bool {
	return slices.ContainsFunc(p.Managed(), (*Engine).HasChanges)
}

// Owes reports whether any managed engine has an activation owed.
func (p *Plan) Owes() bool {
	return slices.ContainsFunc(p.Managed(), func(e *Engine) bool { return e.Owed != nil })
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

// Map returns a copy of p with every managed engine replaced by f's result.
func (p *Plan) Map(f func(*Engine) *Engine) *Plan {
	out := *p
	out.Engines = make([]*Engine, len(p.Engines))
	for i, e := range p.Engines {
		out.Engines[i] = e
		if e.Detection.Managed {
			out.Engines[i] = f(e)
		}
	}
	return &out
}

// AllWarnings are the plan's warnings and every managed engine's.
func (p *Plan) AllWarnings() []engines.Warning {
	out := slices.Clone(p.Warnings)
	for _, e := range p.Managed() {
		out = append(out, e.Warnings...)
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
	if err := CheckNames(opts.Only, all); err != nil {
		return nil, err
	}
	st := opts.State
	if st == nil {
		st = state.New()
	}
	// Detection and rendering read the same directories again and again:
	// one resolution each for the whole build (hostfs.Root.WithDirCache).
	root, release := opts.Root.WithDirCache()
	defer release()
	p := &Plan{Spec: s, Redactor: credentials.NewRedactor(s.SecretValues()...)}
	for _, n := range s.Notes() {
		p.Warnings = append(p.Warnings, engines.Warning{Engine: "spec", Pos: n.Pos, Message: n.Message})
	}
	owner := map[string]string{} // host path -> engine, to catch two engines writing one file
	for _, e := range all {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h := engines.Host{FS: root.FS(), Version: opts.Version, Resolve: opts.Root.Resolve, Down: opts.Down, Owned: st.Owned(e.Name())}
		if !wanted(s, opts.Only, e) {
			// An engine we will not manage is not asked its version, nor
			// is its daemon asked anything.
			h.Version, h.Resolve = nil, nil
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
		if a, ok := st.PendingFor(e.Name()); ok && d.Managed {
			ep.Owed = &a
		}
		p.Engines = append(p.Engines, ep)
		if !d.Managed {
			continue
		}
		res, err := e.Render(s, h, d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		for _, f := range res.Files {
			// Defence in depth: whatever names went into it, a file the
			// engine owns whole lies where the engine keeps its files.
			if !f.Merged && !d.OwnsPath(f.Path) {
				return nil, fmt.Errorf("%s: renders %s, outside the places it manages (%s); refusing to write it",
					e.Name(), f.Path, strings.Join(d.Owns, ", "))
			}
			if other, dup := owner[f.Path]; dup {
				return nil, fmt.Errorf("%s and %s both render %s; give one of them another path in the spec", other, e.Name(), f.Path)
			}
			owner[f.Path] = e.Name()
		}
		files, warns := orphans(e.Name(), d, res.Files, st)
		ep.Warnings = append(res.Warnings, warns...)
		changes, err := render.Plan(root, append(res.Files, files...))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		*ep = *ep.With(changes)
		if ep.Owed != nil && opts.Applied != nil && opts.Applied(ctx, ep.currentProbe(), ep.Owed.Since) {
			ep.Warnings = append(ep.Warnings, engines.Warning{Engine: e.Name(), Message: fmt.Sprintf(
				"the %s owed since %s was done outside mirrorctl: %s already runs with the files; forgetting it",
				ep.Owed.Disruption, ep.Owed.Since.Local().Format(time.RFC3339), describeUnit(ep.Owed))})
			ep.Owed = nil
		}
	}
	return p, nil
}

// describeUnit names an activation's unit, or its engine without one.
func describeUnit(a *engines.Activation) string {
	if a.Unit != "" {
		return a.Unit
	}
	return "the daemon"
}

// orphans plans the removal of every whole file an engine wrote earlier
// that it does not render now, where the engine manages files. A state
// entry elsewhere is never acted on: state.json is an input like any other.
func orphans(engine string, d engines.Detection, rendered []render.File, st *state.State) ([]render.File, []engines.Warning) {
	seen := map[string]bool{}
	for _, f := range rendered {
		seen[f.Path] = true
	}
	var files []render.File
	var warns []engines.Warning
	for fp, own := range st.Owned(engine) {
		if seen[fp] || own.Merged {
			continue // a shared file is the engine's to give back
		}
		if !d.OwnsPath(fp) {
			warns = append(warns, engines.Warning{Engine: engine, Message: fmt.Sprintf(
				"state.json lists %s, which is not where mirrorctl manages %s files (%s): ignored, never removed",
				fp, engine, strings.Join(d.Owns, ", "))})
			continue
		}
		e := st.Files[fp]
		files = append(files, render.File{Path: fp, Remove: true, Secret: e.Secret, Group: "orphan:" + path.Dir(fp), Primary: e.Primary})
	}
	slices.SortFunc(files, func(a, b render.File) int { return strings.Compare(a.Path, b.Path) })
	slices.SortFunc(warns, func(a, b engines.Warning) int { return strings.Compare(a.Message, b.Message) })
	return files, warns
}

// wanted reports whether the engine may be managed: named by --engines, or
// (without --engines) not disabled in the spec.
func wanted(s *spec.Spec, only []string, e engines.Engine) bool {
	if len(only) > 0 {
		return slices.Contains(only, e.Name())
	}
	return engines.Enabled(s, e.Name()) != spec.Off
}

// CheckNames checks --engines against the engines mirrorctl knows.
func CheckNames(only []string, all []engines.Engine) error {
	var known []string
	for _, e := range all {
		known = append(known, e.Name())
	}
	for _, n := range only {
		if !slices.Contains(known, n) {
			return &UsageError{fmt.Errorf("--engines: unknown engine %q (known: %s)", n, strings.Join(known, ", "))}
		}
	}
	return nil
}

// UsageError is a command-line mistake (exit code 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Detected is the one-line summary of detection every command logs, e.g.
// "containerd=yes(1.6.20) docker=no k3s=no crictl=yes".
func (p *Plan) Detected() string {
	var parts []string
	for _, e := range p.Engines {
		d := e.Detection
		s := d.Engine + "="
		switch {
		case d.Managed && d.Version != "":
			s += "yes(" + d.Version + ")"
		case d.Managed:
			s += "yes"
		case d.Found:
			s += "found,unmanaged"
		default:
			s += "no"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}
