package engines

import (
	"bytes"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// The registries.yaml schema, with the yaml tags of rancher/wharfie
// pkg/registries/types.go, which k3s and RKE2 parse with yaml.v2 (lenient:
// a misspelt key is silently ignored, so these tags must be exact). Note
// identity_token: toml and json spell it identitytoken, yaml does not.
type k3sRegistries struct {
	Mirrors map[string]k3sMirror `yaml:"mirrors,omitempty"`
	Configs map[string]k3sConfig `yaml:"configs,omitempty"`
}

type k3sMirror struct {
	Endpoints []string          `yaml:"endpoint,omitempty"`
	Rewrites  map[string]string `yaml:"rewrite,omitempty"`
}

type k3sConfig struct {
	Auth *k3sAuth `yaml:"auth,omitempty"`
	TLS  *k3sTLS  `yaml:"tls,omitempty"`
}

type k3sAuth struct {
	Username      string `yaml:"username,omitempty"`
	Password      string `yaml:"password,omitempty"`
	Auth          string `yaml:"auth,omitempty"`
	IdentityToken string `yaml:"identity_token,omitempty"`
}

type k3sTLS struct {
	CAFile             string `yaml:"ca_file,omitempty"`
	CertFile           string `yaml:"cert_file,omitempty"`
	KeyFile            string `yaml:"key_file,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty"`
}

// k3sRegistriesOf turns the spec into registries.yaml: endpoints exactly as
// written (k3s normalises them itself), secrets resolved, and TLS files
// pointing at copies under certsDir, which it also returns.
func k3sRegistriesOf(s *spec.Spec, certsDir string) (k3sRegistries, []render.File) {
	var r k3sRegistries
	var files []render.File
	if len(s.Mirrors) > 0 {
		r.Mirrors = map[string]k3sMirror{}
	}
	for reg, m := range s.Mirrors {
		r.Mirrors[reg] = k3sMirror{Endpoints: slices.Clone(m.Endpoints), Rewrites: maps.Clone(m.Rewrites)}
	}
	if len(s.Configs) > 0 {
		r.Configs = map[string]k3sConfig{}
	}
	for _, host := range slices.Sorted(maps.Keys(s.Configs)) {
		c := s.Configs[host]
		var out k3sConfig
		if a := c.Auth; a != nil {
			out.Auth = &k3sAuth{
				Username:      a.Username,
				Password:      a.Password.Reveal(),
				Auth:          a.Auth.Reveal(),
				IdentityToken: a.IdentityToken.Reveal(),
			}
		}
		if t := c.TLS; t != nil {
			dir := path.Join(certsDir, k3sCertDirName(host))
			group := "k3s:" + path.Join(path.Base(certsDir), k3sCertDirName(host))
			out.TLS = &k3sTLS{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, InsecureSkipVerify: t.InsecureSkipVerify}
			if len(t.CA) > 0 {
				out.TLS.CAFile = path.Join(dir, "ca.crt")
				files = append(files, render.File{Path: out.TLS.CAFile, Data: t.CA, Mode: 0o644, Group: group})
			}
			if len(t.Cert) > 0 {
				out.TLS.CertFile = path.Join(dir, "client.cert")
				files = append(files, render.File{Path: out.TLS.CertFile, Data: t.Cert, Mode: 0o644, Group: group})
			}
			if !t.Key.IsZero() {
				out.TLS.KeyFile = path.Join(dir, "client.key")
				files = append(files, render.File{Path: out.TLS.KeyFile, Data: []byte(t.Key.Reveal()), Mode: 0o600, Secret: true, Group: group})
			}
		}
		r.Configs[host] = out
	}
	return r, files
}

// k3sCertDirName is the directory for a configs host's TLS copies; "*"
// gets containerd's name for the default.
func k3sCertDirName(host string) string {
	if host == "*" {
		return "_default"
	}
	return host
}

// marshalK3s writes registries.yaml: our header, then the YAML with map
// keys sorted (yaml.v3 sorts them), so the bytes depend only on the spec.
func marshalK3s(r k3sRegistries) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(k3sHeader + "\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("k3s: encoding registries.yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("k3s: encoding registries.yaml: %w", err)
	}
	return b.Bytes(), nil
}

// staleK3sCerts removes the files under mirrorctl's own certs directory
// that the spec no longer names. The directory name says it is ours, so
// unlike registries.yaml it needs no header to be cleaned.
func staleK3sCerts(fsys fs.FS, certsDir string, keep []render.File) []render.File {
	wanted := map[string]bool{}
	for _, f := range keep {
		wanted[f.Path] = true
	}
	var out []render.File
	_ = fs.WalkDir(fsys, FSPath(certsDir), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		host := "/" + p
		if wanted[host] {
			return nil
		}
		rel := strings.TrimPrefix(path.Dir(host), path.Dir(certsDir)+"/")
		out = append(out, render.File{Path: host, Remove: true, Secret: true, Group: "k3s:" + rel})
		return nil
	})
	return out
}
