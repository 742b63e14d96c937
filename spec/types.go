// Package spec is mirrorctl's input: a k3s/RKE2 registries.yaml (mirrors:
// and configs:) plus optional extensions, loaded strictly so that every
// mistake is reported with its file, line and column.
package spec

import (
	"fmt"
	"slices"
	"time"

	"github.com/mirrorctl/mirrorctl/credentials"
)

// Note is a warning about the spec itself, with its place.
type Note struct {
	Pos     Pos
	Message string
}

// Notes returns every note of s, in registry order.
func (s *Spec) Notes() []Note {
	var out []Note
	for _, r := range sortedNames(s.Mirrors) {
		out = append(out, s.Mirrors[r].Notes...)
	}
	return out
}

// Pos is a place in a spec file, for error and warning messages.
type Pos struct {
	File   string
	Line   int
	Column int
}

func (p Pos) String() string {
	if p.File == "" {
		return ""
	}
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Spec is the whole, merged and validated input. Registry names are the keys
// of registries.yaml: "docker.io", "registry.example.com:5000" or "*".
type Spec struct {
	// Mirrors maps a registry name to its mirror endpoints (k3s `mirrors:`).
	Mirrors map[string]*Mirror
	// Configs maps a host (a registry or a mirror endpoint host[:port], or
	// "*") to its credentials and TLS settings (k3s `configs:`).
	Configs map[string]*Config
	Engines Engines
	Backups Backups
	// Serial is the main document's serial: (0 when absent), a number that
	// grows with each central config published; `mirrorctl watch` refuses
	// a config whose serial is below the highest it applied. Extension.
	Serial int64
	// Files lists the files the spec was read from, main file first.
	Files []string
}

// Mirror is one registry's entry under `mirrors:`.
type Mirror struct {
	Pos Pos
	// Endpoints are the mirror URLs as written (k3s `endpoint:`), in order.
	Endpoints []string
	// EndpointPos is where each of Endpoints is written, for warnings.
	EndpointPos []Pos
	// Notes are what is accepted but worth a warning: endpoints k3s
	// de-duplicates, a path that is probably not the one meant.
	Notes []Note
	// Rewrites are k3s repository rewrites (regex -> replacement).
	Rewrites map[string]string
	// Capabilities for every mirror endpoint of this registry; nil means
	// the default ["pull", "resolve"]. Extension.
	Capabilities []string
	// UpstreamFallback says whether the registry itself is tried after its
	// mirrors. Nil means true (the k3s and containerd default). Extension.
	UpstreamFallback *bool
	// DialTimeout per endpoint; zero means the engine default. Extension.
	DialTimeout time.Duration
}

// TriesUpstream reports whether the upstream registry is the last resort.
func (m *Mirror) TriesUpstream() bool { return m.UpstreamFallback == nil || *m.UpstreamFallback }

// EffectiveCapabilities returns Capabilities or the default.
func (m *Mirror) EffectiveCapabilities() []string {
	if m.Capabilities == nil {
		return []string{"pull", "resolve"}
	}
	return m.Capabilities
}

// Config is one host's entry under `configs:`.
type Config struct {
	Pos  Pos
	Auth *Auth
	TLS  *TLS
}

// Auth holds resolved credentials. Exactly one form is set: Username with
// Password, Auth (base64 "user:pass"), or IdentityToken.
type Auth struct {
	Pos      Pos
	Username string
	Password credentials.Secret
	// Auth is base64("user:password") as written in the spec; when the spec
	// gave Username/Password this is empty (use Basic).
	Auth          credentials.Secret
	IdentityToken credentials.Secret
	// PasswordFile and PasswordEnv say where Password came from, if not
	// inline: the file read (resolved against the spec's directory) or the
	// environment variable. For messages; Password holds the value.
	PasswordFile string
	PasswordEnv  string
}

// Basic returns base64("user:password") without a newline, from whichever
// form the spec used, or a zero Secret for an identity token.
func (a *Auth) Basic() credentials.Secret {
	if !a.Auth.IsZero() {
		return a.Auth
	}
	if a.Username == "" && a.Password.IsZero() {
		return credentials.Secret{}
	}
	return credentials.BasicAuth(a.Username, a.Password)
}

// TLS is k3s's tls block. The files are read when the spec is loaded (from
// mirrorctl's own filesystem, relative to the spec file), and the engines
// write copies where each engine looks for them.
type TLS struct {
	Pos Pos
	// CAFile, CertFile and KeyFile are the files read, resolved against
	// the directory of the spec file that names them.
	CAFile             string
	CertFile           string
	KeyFile            string
	InsecureSkipVerify bool
	// CA, Cert and Key are the contents of the files above.
	CA   []byte
	Cert []byte
	Key  credentials.Secret
}

// Toggle is an engine's `enabled:` value.
type Toggle string

const (
	Auto Toggle = "auto" // manage the engine when it is detected (the default)
	On   Toggle = "true" // manage it even when it is not detected
	Off  Toggle = "false"
)

// Backups is the `backups:` extension.
type Backups struct {
	// Keep is how many backup sets to retain; 0 means the default (10).
	Keep int
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
