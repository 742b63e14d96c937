// Package engines renders a spec into each container engine's own files:
// containerd (config.toml + certs.d), Docker (daemon.json, certs.d,
// config.json), k3s/RKE2 (registries.yaml) and crictl (crictl.yaml).
// Engines read the host only through an fs.FS and never write or talk to
// systemd: package render writes, package systemd activates.
package engines

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// Disruption is what an engine needs after its files changed, least first.
type Disruption int

const (
	None    Disruption = iota // the engine re-reads the files by itself
	Reload                    // systemctl reload (SIGHUP for dockerd)
	Restart                   // systemctl restart
)

func (d Disruption) String() string {
	switch d {
	case Reload:
		return "reload"
	case Restart:
		return "restart"
	}
	return "none"
}

// MarshalText makes Disruption print as its name in JSON output.
func (d Disruption) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Action is what to do to one engine's unit after a sync changed its files.
type Action struct {
	Engine     string
	Unit       string
	Disruption Disruption
	// Reason names the changed file(s) that require it.
	Reason string
}

// Warning is something the spec asks for that an engine cannot express, or
// a risk found in the host's files. Warnings never stop a sync.
type Warning struct {
	Engine  string
	Pos     spec.Pos // where in the spec, when it comes from the spec
	Message string
}

func (w Warning) String() string {
	var b strings.Builder
	if p := w.Pos.String(); p != "" {
		b.WriteString(p + ": ")
	}
	b.WriteString(w.Engine + ": " + w.Message)
	return b.String()
}

// Detection is what Detect found out about one engine on the host.
type Detection struct {
	Engine string
	// Found says the engine is installed; Managed says mirrorctl will
	// render for it (found and not disabled, or forced on).
	Found   bool
	Managed bool
	// Version is the engine's version ("1.6.20", "2.4.2") or "" if unknown.
	Version string
	// Reason explains Found/Managed in a few words, for the detect log line.
	Reason string
	Unit   string
	Socket string
	// Paths are the config files and directories the engine owns.
	Paths []string
	// Extra carries engine-specific facts (e.g. "schema": "3").
	Extra map[string]string
}

// Host is the node as the engines see it.
type Host struct {
	// FS is the host's filesystem rooted at --root. fs.FS paths have no
	// leading slash; use FSPath to convert an absolute host path.
	FS fs.FS
	// Exec runs a host binary (an absolute host path, resolved under
	// --root) and returns its standard output; used only to ask an engine
	// its version. Nil means versions come from sockets or stay unknown.
	Exec func(ctx context.Context, bin string, args ...string) ([]byte, error)
	// Root is --root, to reach host sockets (filepath.Join(Root, socket))
	// when asking a running daemon; empty means daemons are not asked.
	Root string
	// Down holds the mirror endpoints found not answering (mirrorctl
	// watch --probe-interval), keyed by MirrorEndpoint.URL. Only containerd
	// uses it: it leaves them out of hosts.toml, a live change. Engines
	// that would need a reload or a restart to follow it ignore it.
	Down map[string]bool
}

// Result is an engine's rendering.
type Result struct {
	Files    []render.File
	Warnings []Warning
}

// An Engine turns a Spec into one container engine's config files.
type Engine interface {
	// Name is the stable short name used in flags, logs and testdata:
	// "containerd", "docker", "k3s", "crictl".
	Name() string
	// Detect reports whether the engine is installed on h and whether s
	// asks mirrorctl to manage it. It never fails: what it cannot find out
	// is left empty and explained in Reason.
	Detect(ctx context.Context, h Host, s *spec.Spec) Detection
	// Render returns every file the engine needs for s on a host where
	// Detect returned d. Files that merge with user content (daemon.json,
	// config.toml) are read from h.FS. A file that cannot be parsed is an
	// error, never overwritten. Render must be deterministic and must
	// reproduce its own output byte for byte when run on it again.
	Render(s *spec.Spec, h Host, d Detection) (Result, error)
	// Activation says what the engine needs after the given host paths
	// (all of them rendered by this engine) changed. Plain data.
	Activation(changed []string, d Detection) Action
}

// A Refiner is an engine whose activation depends on what changed inside a
// file, not only on which files changed. plan calls it after Activation.
type Refiner interface {
	RefineActivation(a Action, changes []render.Change, d Detection) Action
}

// All returns every engine mirrorctl knows, in the order they are applied.
func All() []Engine {
	return []Engine{NewContainerd(), NewDocker(), NewK3s(), NewCrictl()}
}

// FSPath converts an absolute host path to an fs.FS path.
func FSPath(hostPath string) string {
	p := strings.TrimPrefix(path.Clean("/"+hostPath), "/")
	if p == "" {
		return "."
	}
	return p
}

// readOptional reads a host file, returning (nil, false, nil) when it does not exist.
func readOptional(fsys fs.FS, hostPath string) ([]byte, bool, error) {
	b, err := fs.ReadFile(fsys, FSPath(hostPath))
	if err != nil {
		if isNotExist(err) {
			return nil, false, nil
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, false, fmt.Errorf("reading %s: %w", hostPath, err)
	}
	return b, true, nil
}

func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist)
}
