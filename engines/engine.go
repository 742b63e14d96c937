// Package engines renders a spec into each container engine's own files:
// containerd (config.toml + certs.d), Docker (daemon.json, certs.d,
// config.json), k3s/RKE2 (registries.yaml), crictl (crictl.yaml), and CRI-O
// with Podman, Buildah and Skopeo (registries.conf.d, certs.d, auth.json).
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
	"time"

	"github.com/mirrorctl/mirrorctl/engines/health"
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

// Activation is what one engine needs once its changed files are written,
// and how to prove it worked. Engines compute it from the changes; the code
// that carries it out knows no engine and no file.
type Activation struct {
	Engine     string     `json:"engine"`
	Unit       string     `json:"unit,omitempty"`
	Disruption Disruption `json:"disruption"`
	// Reason names what requires it, for people.
	Reason string `json:"reason,omitempty"`
	// Probe checks the engine after a reload or restart (its own socket,
	// the config it must now run with). Zero checks nothing.
	Probe health.Probe `json:"probe"`
	// Since is when the files needing it were written (set when it is
	// recorded as owed): a daemon started after it already reads them.
	Since time.Time `json:"since,omitzero"`
}

// Stronger returns whichever of a and b disrupts more (a on a tie), for
// folding a pending activation into a new one.
func (a Activation) Stronger(b Activation) Activation {
	if b.Disruption > a.Disruption {
		return b
	}
	return a
}

// UnmarshalText reads a Disruption's name.
func (d *Disruption) UnmarshalText(b []byte) error {
	switch string(b) {
	case "none":
		*d = None
	case "reload":
		*d = Reload
	case "restart":
		*d = Restart
	default:
		return fmt.Errorf("unknown disruption %q", b)
	}
	return nil
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
	Engine string `json:"name"`
	// Found says the engine is installed; Managed says mirrorctl will
	// render for it (found and not disabled, or forced on).
	Found   bool `json:"found"`
	Managed bool `json:"managed"`
	// Version is the engine's version ("1.6.20", "2.4.2") or "" if unknown.
	Version string `json:"version,omitempty"`
	// Reason explains Found/Managed in a few words, for the detect log line.
	Reason string `json:"reason,omitempty"`
	Unit   string `json:"unit,omitempty"`
	Socket string `json:"socket,omitempty"`
	// Config is the engine's main file (config.toml, daemon.json,
	// registries.yaml, crictl.yaml); CertsDir its per-registry directory.
	Config   string `json:"config,omitempty"`
	CertsDir string `json:"certs_dir,omitempty"`
	// Owns are path.Match patterns of the host paths (files, or
	// directories with everything below them) where mirrorctl may create
	// and remove whole files for this engine; literal paths are quoted
	// with globEscape. A file recorded in state.json outside
	// them is never removed.
	Owns []string `json:"owns,omitempty"`

	// Schema is the config.toml version containerd will be given.
	Schema int `json:"schema,omitempty"`
	// Distribution is "k3s" or "rke2".
	Distribution string `json:"distribution,omitempty"`
	// ImageStore is dockerd's image store: "classic" or "containerd".
	ImageStore string `json:"image_store,omitempty"`
	// CRIOConfig is the crio.conf.d drop-in mirrorctl owns (containers
	// engine; set only when CRI-O is installed): a change to it needs a
	// restart, where registries.conf.d needs a reload.
	CRIOConfig string `json:"crio_config,omitempty"`
}

// Host is the node as the engines see it.
type Host struct {
	// FS is the host's filesystem rooted at --root, read through the
	// confined layer (hostfs). fs.FS paths have no leading slash; use
	// FSPath to convert an absolute host path.
	FS fs.FS
	// Version asks a host binary its version (an absolute host path; the
	// answer is cached while the binary does not change). Nil means
	// versions come from sockets or stay unknown.
	Version func(ctx context.Context, bin string, args ...string) (string, error)
	// Resolve turns the host path of a daemon's socket into one mirrorctl
	// can dial, confined to the root (hostfs.Root.Resolve). Nil means no
	// daemon is asked anything.
	Resolve func(hostPath string) (string, error)
	// Down holds the mirror endpoints found not answering (mirrorctl
	// watch --probe-interval), keyed by endpoint URL. Only containerd
	// uses it: it leaves them out of hosts.toml, a live change. Engines
	// that would need a reload or a restart to follow it ignore it.
	Down map[string]bool
	// Owned is what mirrorctl recorded for this engine's files in earlier
	// syncs (state.json), by host path: an engine merging into a shared
	// file removes only the entries recorded there, and gives back the
	// shared files it no longer targets.
	Owned map[string]render.Ownership
}

// Result is an engine's rendering.
type Result struct {
	Files    []render.File
	Warnings []Warning
}

// An Engine turns a Spec into one container engine's config files.
type Engine interface {
	// Name is the stable short name used in flags, logs and testdata:
	// "containerd", "docker", "k3s", "crictl", "containers".
	Name() string
	// Detect reports whether the engine is installed on h and whether s
	// asks mirrorctl to manage it. It never fails: what it cannot find out
	// is left empty and explained in Reason.
	Detect(ctx context.Context, h Host, s *spec.Spec) Detection
	// Render returns every file the engine needs for s on a host where
	// Detect returned d. Files that merge with user content (daemon.json,
	// config.toml) are read from h.FS and carry the entries mirrorctl owns
	// in them (File.Keys); a shared file in h.Owned that the engine no
	// longer targets is returned with only its recorded entries removed. A
	// file that cannot be parsed is an error, never overwritten. Render
	// must be deterministic and must reproduce its own output byte for byte
	// when run on it again.
	Render(s *spec.Spec, h Host, d Detection) (Result, error)
	// ParseSettings reads the engine's engines.<name>: section of the spec
	// over prev (what earlier files set; nil at first) and returns the
	// engine's settings (see settings.go).
	ParseSettings(prev any, sec *spec.Section) any
	// Activation says what the engine needs after changes (all of them to
	// its own files, as planned against the disk), and the probe that
	// proves it worked. Plain data.
	Activation(changes []render.Change, d Detection) Activation
}

// All returns every engine mirrorctl knows, in the order they are applied.
func All() []Engine {
	return []Engine{NewContainerd(), NewDocker(), NewK3s(), NewCrictl(), NewContainers()}
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

// OwnsPath reports whether p, or a directory above it, matches one of
// d.Owns (path.Match patterns; literal paths are quoted with globEscape).
// "/" owns nothing.
func (d Detection) OwnsPath(p string) bool {
	p = path.Clean(p)
	for _, o := range d.Owns {
		if path.Clean(o) == "/" {
			continue // never "everything"
		}
		for q := p; q != "/" && q != "."; q = path.Dir(q) {
			if ok, err := path.Match(o, q); err == nil && ok {
				return true
			}
		}
	}
	return false
}
