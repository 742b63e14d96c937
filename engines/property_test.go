package engines

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	srvconfig "github.com/containerd/containerd/v2/cmd/containerd/server/config"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/pelletier/go-toml/v2"
	yamlv2 "go.yaml.in/yaml/v2"
	"gopkg.in/yaml.v3"

	"github.com/mirrorctl/mirrorctl/internal/testpki"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// TestRenderProperties renders random accepted specs with every engine on
// scratch host trees and checks what must hold for any spec:
//
//   - every path written or removed is the engine's own (its config file,
//     inside what it owns, or a user's ~/.docker/config.json for docker);
//   - every rendered file parses with the engine's own parser: hosts.toml
//     with containerd's ConfigureHosts (the code CRI and ctr use), which
//     also loads the TLS copies; config.toml with go-toml and, from
//     version 2, containerd 2.x's LoadConfig; daemon.json and config.json
//     with encoding/json; registries.yaml with yaml.v2 (the library k3s
//     reads it with) into wharfie's types, strictly; crictl.yaml with YAML;
//   - secrets appear only in files marked Secret;
//   - rendering again over the output changes no byte.
//
// The specs come from a seeded math/rand/v2 source: a failure names its
// seed and spec. MIRRORCTL_PROPERTY_N sets how many (200 by default),
// MIRRORCTL_PROPERTY_SEED the first seed.
func TestRenderProperties(t *testing.T) {
	n, seed := 200, uint64(1)
	if v, err := strconv.Atoi(os.Getenv("MIRRORCTL_PROPERTY_N")); err == nil {
		n = v
	}
	if v, err := strconv.ParseUint(os.Getenv("MIRRORCTL_PROPERTY_SEED"), 10, 64); err == nil {
		seed = v
	}
	trees := propertyTrees(t)
	scratch := t.TempDir()
	for i := range n {
		s := seed + uint64(i)
		rng := rand.New(rand.NewPCG(s, 0x6d6972726f726374))
		g := genSpec(rng)
		tree := trees[rng.IntN(len(trees))]
		ok := t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
			checkSpecProperties(t, g, tree, rng, filepath.Join(scratch, strconv.FormatUint(s, 10)))
		})
		if !ok {
			t.Logf("reproduce: MIRRORCTL_PROPERTY_SEED=%d MIRRORCTL_PROPERTY_N=1 go test ./engines -run TestRenderProperties\nhost tree %s\nspec:\n%s", s, tree.name, g.text)
		}
	}
}

// propertyTree is a host tree to render on, with the engine releases
// installed there ("" for any).
type propertyTree struct {
	name     string
	fs       fstest.MapFS
	versions map[string][]string
}

func propertyTrees(t *testing.T) []propertyTree {
	demo := fstest.MapFS{}
	root := "../testdata/demo/root"
	err := fs.WalkDir(os.DirFS(root), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join(root, p))
		demo[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	debian := fstest.MapFS{"usr/bin/containerd": {}, "usr/bin/crictl": {}, "run/containerd/containerd.sock": {},
		"etc/passwd":                 {Data: []byte("root:x:0:0:root:/root:/bin/bash\n")},
		"etc/containerd/config.toml": {Data: readStock(t, "debian12-containerd-1.6.20.toml")}}
	return []propertyTree{
		{"empty", fstest.MapFS{"etc/passwd": {Data: []byte("root:x:0:0:root:/root:/bin/bash\n")}}, map[string][]string{
			"containerd": {"", "1.6.20", "1.7.30", "2.0.14", "2.4.2"}, "docker": {"", "20.10.24", "27.3.1"}, "crictl": {"", "1.31.1", "1.37.0"}}},
		{"demo", demo, map[string][]string{"containerd": {"1.6.20"}, "docker": {"20.10.24"}, "crictl": {"1.31.1"}}},
		{"debian12", debian, map[string][]string{"containerd": {"1.6.20"}, "crictl": {"1.31.1"}}},
	}
}

// genSpec is a random spec the loader accepts, as text, with the files
// it names.
type generated struct {
	text    string
	files   map[string]string
	env     map[string]string
	secrets []string
}

var (
	propRegistries = []string{"docker.io", "quay.io", "ghcr.io", "registry.k8s.io", "registry.example.com:5000",
		"[fd00::1]:5000", "10.0.0.5:5000", "localhost:5000", "*", "index.docker.io"}
	propMirrorHosts = []string{"mirror.example.com", "mirror.example.com:8443", "nexus.example.internal",
		"localhost:5001", "127.0.0.1:5002", "[fd00::2]:5000", "10.1.2.3", "registry.example.com:5000"}
	propPaths  = []string{"", "/", "/v2", "/v2/", "/repository/docker-proxy/v2", "/prefix", "/a/b/v2"}
	propTricky = []string{"yes", "on", "NO", "true", "null", "~", "0123", "0x1F", "1e3", "1:20", "a: b", "#hash", "- dash",
		" lead", "trail ", "quo\"te", "*star", "&anchor", "!tag", "%pct", "@at", "`tick", "multi\nline", "=", "<<"}
)

func genSpec(rng *rand.Rand) generated {
	g := generated{files: map[string]string{}, env: map[string]string{}}
	secret := func() string {
		s := fmt.Sprintf("pw-%016x", rng.Uint64())
		g.secrets = append(g.secrets, s)
		return s
	}
	var b strings.Builder
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	regs := slices.Clone(propRegistries)
	rng.Shuffle(len(regs), func(i, j int) { regs[i], regs[j] = regs[j], regs[i] })
	regs = regs[:rng.IntN(5)]
	hostsSeen := map[string]bool{}
	if len(regs) > 0 {
		b.WriteString("mirrors:\n")
	}
	for _, reg := range regs {
		fmt.Fprintf(&b, "  %q:\n", reg)
		seen := map[string]bool{}
		var eps []string
		for range rng.IntN(4) {
			host, p := pick(propMirrorHosts), pick(propPaths)
			key := host + strings.TrimRight(p, "/")
			if strings.TrimRight(p, "/") == "" {
				key = host + "/v2"
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			hostsSeen[host] = true
			scheme := pick([]string{"", "https://", "http://"})
			eps = append(eps, strconv.Quote(scheme+host+p))
		}
		if len(eps) > 0 || rng.IntN(2) == 0 {
			fmt.Fprintf(&b, "    endpoint: [%s]\n", strings.Join(eps, ", "))
		}
		if rng.IntN(5) == 0 {
			b.WriteString("    rewrite:\n      \"^library/(.*)\": \"mirror/library/$1\"\n")
		}
		if rng.IntN(5) == 0 {
			fmt.Fprintf(&b, "    capabilities: %s\n", pick([]string{"[pull]", "[pull, resolve]", "[pull, resolve, push]"}))
		}
		if rng.IntN(6) == 0 {
			b.WriteString("    upstream_fallback: false\n")
		}
		if rng.IntN(6) == 0 {
			b.WriteString("    dial_timeout: 3s\n")
		}
	}
	// configs: for some of the registries and mirror hosts
	cands := append(slices.Clone(regs), slices.Sorted(maps.Keys(hostsSeen))...)
	cands = append(cands, pick(propRegistries))
	var cfgs []string
	for _, h := range cands {
		if rng.IntN(2) == 0 && !slices.Contains(cfgs, h) {
			cfgs = append(cfgs, h)
		}
	}
	if len(cfgs) > 0 {
		b.WriteString("configs:\n")
	}
	for i, h := range cfgs {
		fmt.Fprintf(&b, "  %q:\n", h)
		switch rng.IntN(7) {
		case 0:
			fmt.Fprintf(&b, "    auth: {username: puller, password: %q}\n", secret())
		case 6:
			// Passwords YAML 1.1 (k3s's yaml.v2) reads as something else
			// unless quoted.
			fmt.Fprintf(&b, "    auth: {username: %q, password: %q}\n", pick(propTricky), pick(propTricky))
		case 1:
			g.files[fmt.Sprintf("secrets/pw%d", i)] = secret() + "\n"
			fmt.Fprintf(&b, "    auth: {username: puller, password_file: secrets/pw%d}\n", i)
		case 2:
			g.env[fmt.Sprintf("PW%d", i)] = secret()
			fmt.Fprintf(&b, "    auth: {username: puller, password_env: PW%d}\n", i)
		case 3:
			fmt.Fprintf(&b, "    auth: {auth: %s}\n", base64.StdEncoding.EncodeToString([]byte("puller:"+secret())))
		case 4:
			fmt.Fprintf(&b, "    auth: {identity_token: %q}\n", secret())
		}
		var tls []string
		if rng.IntN(3) == 0 {
			tls = append(tls, "ca_file: certs/ca.crt")
		}
		if rng.IntN(3) == 0 {
			tls = append(tls, "cert_file: certs/client.crt", "key_file: certs/client.key")
		}
		if rng.IntN(4) == 0 {
			tls = append(tls, "insecure_skip_verify: true")
		}
		if len(tls) > 0 {
			fmt.Fprintf(&b, "    tls: {%s}\n", strings.Join(tls, ", "))
		}
	}
	g.files["certs/ca.crt"] = testpki.CA
	g.files["certs/client.crt"] = testpki.ClientCert
	g.files["certs/client.key"] = testpki.ClientKey
	for l := range strings.SplitSeq(testpki.ClientKey, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			g.secrets = append(g.secrets, l)
		}
	}

	var eng []string
	if rng.IntN(2) == 0 {
		eng = append(eng, "  containerd:\n    credentials: "+pick([]string{"auto", "config", "header"})+"\n")
	}
	if rng.IntN(2) == 0 {
		eng = append(eng, "  docker:\n    auth_users: [root]\n")
	}
	if rng.IntN(3) == 0 {
		eng = append(eng, fmt.Sprintf("  crictl:\n    timeout: %d\n", 1+rng.IntN(30)))
	}
	if rng.IntN(4) == 0 {
		eng = append(eng, "  k3s:\n    distribution: "+pick([]string{"k3s", "rke2"})+"\n")
	}
	if len(eng) > 0 {
		b.WriteString("engines:\n" + strings.Join(eng, ""))
	}
	g.text = b.String()
	return g
}

func (g generated) parse(t *testing.T) *spec.Spec {
	t.Helper()
	s, err := spec.Parse("/etc/mirrorctl/config.yaml", []byte(g.text), spec.Options{Engines: Sections(),
		ReadFile: func(name string) ([]byte, error) {
			if b, ok := g.files[strings.TrimPrefix(name, "/etc/mirrorctl/")]; ok {
				return []byte(b), nil
			}
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		},
		Glob: func(string) ([]string, error) { return nil, nil },
		LookupEnv: func(k string) (string, bool) {
			v, ok := g.env[k]
			return v, ok
		},
	})
	if err != nil {
		t.Fatalf("the generator wrote a spec the loader refuses: %v", err)
	}
	return s
}

func checkSpecProperties(t *testing.T, g generated, tree propertyTree, rng *rand.Rand, scratch string) {
	s := g.parse(t)
	// containerd's certs.d goes to a real directory, so that its loader can
	// read hosts.toml and the TLS copies it names.
	certsDir := filepath.Join(scratch, "certs.d")
	set := settingsOf[ContainerdSettings](s, "containerd")
	set.CertsDir = certsDir
	s.Engines["containerd"] = &spec.EngineSection{Enabled: Enabled(s, "containerd"), Settings: set}

	for _, e := range All() {
		h := Host{FS: tree.fs}
		d := e.Detect(context.Background(), h, s)
		d.Found, d.Managed = true, true
		if vs := tree.versions[e.Name()]; len(vs) > 0 {
			d.Version = vs[rng.IntN(len(vs))]
		}
		res, err := e.Render(s, h, d)
		if err != nil {
			t.Fatalf("%s %s: Render: %v", e.Name(), d.Version, err)
		}
		for _, f := range res.Files {
			if !ownPath(f.Path, d) {
				t.Errorf("%s writes %s, outside %s and %v", e.Name(), f.Path, d.Config, d.Owns)
			}
			for _, sec := range g.secrets {
				if !f.Remove && !f.Secret && strings.Contains(string(f.Data), sec) {
					t.Errorf("%s: %s holds a secret but is not marked Secret", e.Name(), f.Path)
				}
			}
			if !f.Remove {
				parseAsEngine(t, e.Name(), d, f)
			}
		}
		switch e.Name() {
		case "containerd":
			loadCertsDir(t, s, res, certsDir)
		case "k3s":
			checkK3sMeaning(t, s, res, d)
		}
		renderAgain(t, e, s, tree.fs, nil, d, res)
	}
}

// ownPath reports whether an engine may write p.
func ownPath(p string, d Detection) bool {
	if p == d.Config || d.Engine == "docker" && strings.HasSuffix(p, "/.docker/config.json") ||
		d.Engine == "containers" && strings.HasSuffix(p, "/.config/containers/auth.json") {
		return true
	}
	return d.OwnsPath(p)
}

// parseAsEngine parses one rendered file the way its engine reads it.
func parseAsEngine(t *testing.T, engine string, d Detection, f render.File) {
	t.Helper()
	switch base := path.Base(f.Path); {
	case base == "hosts.toml", base == "config.toml":
		var m map[string]any
		if err := toml.Unmarshal(f.Data, &m); err != nil {
			t.Fatalf("%s: %s is not TOML: %v\n%s", engine, f.Path, err, f.Data)
		}
		if base == "config.toml" {
			loadWithContainerd(t, f.Data)
		}
	case strings.HasSuffix(base, ".conf") && engine == "containers":
		var m map[string]any
		if err := toml.Unmarshal(f.Data, &m); err != nil {
			t.Fatalf("%s: %s is not TOML: %v\n%s", engine, f.Path, err, f.Data)
		}
		// The registries drop-in passes containers/image's checks (the model
		// engines/containerstest holds against the library).
		if strings.Contains(f.Path, "/registries.conf.d/") {
			if err := (&registriesConf{aliases: map[string]alias{}}).merge(f.Path, f.Data); err != nil {
				t.Fatalf("%s: containers/image would refuse %s: %v\n%s", engine, f.Path, err, f.Data)
			}
		}
	case base == "daemon.json", base == "config.json", base == "auth.json", base == "mirrorctl-auth.json":
		var m map[string]any
		if err := json.Unmarshal(f.Data, &m); err != nil {
			t.Fatalf("%s: %s is not a JSON object: %v\n%s", engine, f.Path, err, f.Data)
		}
	case base == "registries.yaml":
		var r wharfieRegistry
		if err := yamlv2.UnmarshalStrict(f.Data, &r); err != nil {
			t.Fatalf("%s: yaml.v2 (k3s's) does not read %s into wharfie's types: %v\n%s", engine, f.Path, err, f.Data)
		}
	case base == "crictl.yaml":
		var m map[string]any
		if err := yaml.Unmarshal(f.Data, &m); err != nil {
			t.Fatalf("%s: %s is not YAML: %v\n%s", engine, f.Path, err, f.Data)
		}
		for _, k := range []string{"runtime-endpoint", "image-endpoint"} {
			if v, _ := m[k].(string); !strings.HasPrefix(v, "unix://") {
				t.Fatalf("%s: %s is %v", f.Path, k, m[k])
			}
		}
	case base == "ca.crt", base == "client.cert":
		if !bytes.HasPrefix(f.Data, []byte("-----BEGIN CERTIFICATE-----")) || f.Secret {
			t.Fatalf("%s: %s is not a certificate copy", engine, f.Path)
		}
	case base == "client.key":
		if !f.Secret || f.Mode != 0o600 {
			t.Fatalf("%s: %s: Secret %v, mode %04o", engine, f.Path, f.Secret, f.Mode)
		}
	default:
		t.Fatalf("%s renders %s, which this test does not know", engine, f.Path)
	}
}

// loadWithContainerd loads a config.toml with containerd 2.x's loader
// (version 1 files are 1.x only).
func loadWithContainerd(t *testing.T, data []byte) {
	t.Helper()
	var v struct{ Version int }
	if toml.Unmarshal(data, &v) != nil || v.Version < 2 {
		return
	}
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg srvconfig.Config
	if err := srvconfig.LoadConfig(context.Background(), p, &cfg); err != nil {
		t.Fatalf("containerd's LoadConfig: %v\n%s", err, data)
	}
}

// loadCertsDir writes containerd's rendered certs.d under its real
// directory and has containerd's ConfigureHosts load every registry of
// the spec from it (and one the spec does not name, for "*"): no error,
// and the mirrors first.
func loadCertsDir(t *testing.T, s *spec.Spec, res Result, certsDir string) {
	t.Helper()
	if err := os.RemoveAll(certsDir); err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Files {
		if f.Remove || !strings.HasPrefix(f.Path, certsDir+"/") {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.Path, f.Data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	regs := append(slices.Sorted(maps.Keys(s.Mirrors)), "unnamed.example.com")
	for _, reg := range regs {
		if reg == "*" {
			continue
		}
		hosts, err := config.ConfigureHosts(context.Background(), config.HostOptions{HostDir: config.HostDirFromRoot(certsDir)})(reg)
		if err != nil {
			t.Fatalf("containerd's ConfigureHosts(%s): %v", reg, err)
		}
		if len(hosts) == 0 && s.Mirrors[reg] != nil && len(s.Mirrors[reg].Endpoints) > 0 {
			t.Fatalf("containerd loads no host for %s", reg)
		}
	}
}

// checkK3sMeaning reads registries.yaml as k3s does (yaml.v2 into wharfie's
// types) and compares it with the spec: endpoints, rewrites and
// credentials as written.
func checkK3sMeaning(t *testing.T, s *spec.Spec, res Result, d Detection) {
	t.Helper()
	f := fileAt(res, d.Config)
	if f == nil || f.Remove {
		return
	}
	var r wharfieRegistry
	if err := yamlv2.Unmarshal(f.Data, &r); err != nil {
		t.Fatalf("k3s: %v", err)
	}
	for reg, m := range s.Mirrors {
		got := r.Mirrors[reg]
		if !slices.Equal(got.Endpoints, m.Endpoints) || !maps.Equal(got.Rewrites, m.Rewrites) {
			t.Errorf("k3s reads mirrors %q as %+v, want %q %v", reg, got, m.Endpoints, m.Rewrites)
		}
	}
	for host, c := range s.Configs {
		if c.Auth == nil {
			continue
		}
		got := r.Configs[host].Auth
		if got == nil || got.Username != c.Auth.Username || got.Password != c.Auth.Password.Reveal() ||
			got.Auth != c.Auth.Auth.Reveal() || got.IdentityToken != c.Auth.IdentityToken.Reveal() {
			t.Errorf("k3s reads the credentials of %q otherwise than the spec gives them", host)
		}
	}
}
