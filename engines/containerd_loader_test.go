package engines

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/google/go-cmp/cmp"
	"github.com/mirrorctl/mirrorctl/spec"
)

// loadedHost is what matters of a docker.RegistryHost containerd built
// from our certs.d.
type loadedHost struct {
	URL         string // scheme://host/path
	Caps        string // "pull,resolve", "all"
	CA          bool   // extra CA pool
	SkipVerify  bool
	ClientCerts int
	Auth        string // Authorization header
}

func capsString(c docker.HostCapabilities) string {
	all := docker.HostCapabilityPull | docker.HostCapabilityResolve | docker.HostCapabilityPush | docker.HostCapabilityReferrers
	if c == all {
		return "all"
	}
	var out []string
	for _, n := range []struct {
		c    docker.HostCapabilities
		name string
	}{{docker.HostCapabilityPull, "pull"}, {docker.HostCapabilityResolve, "resolve"}, {docker.HostCapabilityPush, "push"}} {
		if c&n.c != 0 {
			out = append(out, n.name)
		}
	}
	return strings.Join(out, ",")
}

func summarizeLoaded(t *testing.T, hosts []docker.RegistryHost) []loadedHost {
	t.Helper()
	var out []loadedHost
	for _, h := range hosts {
		l := loadedHost{URL: h.Scheme + "://" + h.Host + h.Path, Caps: capsString(h.Capabilities), Auth: h.Header.Get("Authorization")}
		if tr, ok := h.Client.Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
			l.CA = tr.TLSClientConfig.RootCAs != nil
			l.SkipVerify = tr.TLSClientConfig.InsecureSkipVerify
			l.ClientCerts = len(tr.TLSClientConfig.Certificates)
		}
		out = append(out, l)
	}
	return out
}

// TestContainerdLoadsHostsDir renders golden cases into a temporary
// certs.d and reads it back with containerd's own loader
// (core/remotes/docker/config ConfigureHosts, the code CRI and ctr use):
// the proof that containerd understands what we write, in the order we mean.
func TestContainerdLoadsHostsDir(t *testing.T) {
	const hub = "https://registry-1.docker.io/v2"
	pr := "pull,resolve"
	tests := []struct {
		golden   string
		registry string
		want     []loadedHost
	}{
		{"default_endpoint_only", "docker.io", []loadedHost{{URL: hub, Caps: "all"}}},
		{"hostname_only", "docker.io", []loadedHost{
			{URL: "https://registry.example.com/v2", Caps: pr}, {URL: hub, Caps: "all"}}},
		{"full_url_override_path", "docker.io", []loadedHost{
			{URL: "https://registry.example.com/prefix/v2", Caps: pr}, {URL: hub, Caps: "all"}}},
		{"override_path_without_v2", "registry.example.com", []loadedHost{
			{URL: "https://registry.example.com/project/registry", Caps: pr},
			{URL: "https://registry.example.com/v2", Caps: "all"}}},
		{"localhost_port_http", "docker.io", []loadedHost{
			{URL: "http://localhost:5000/v2", Caps: pr}, {URL: "http://127.0.0.1:5001/v2", Caps: pr}, {URL: hub, Caps: "all"}}},
		{"host_port", "quay.io", []loadedHost{
			{URL: "https://mirror.example.com:5000/v2", Caps: pr}, {URL: "https://quay.io/v2", Caps: "all"}}},
		{"last_endpoint_default", "docker.io", []loadedHost{
			{URL: "https://registry.example.com/v2", Caps: pr}, {URL: "https://registry.example.org/v2", Caps: pr}, {URL: hub, Caps: "all"}}},
		// upstream_fallback: false — the upstream is absent.
		{"upstream_fallback_false", "docker.io", []loadedHost{
			{URL: "https://a.example.com/v2", Caps: pr}, {URL: "https://b.example.com:5000/v2", Caps: pr}}},
		{"upstream_fallback_false", "quay.io", []loadedHost{
			{URL: "https://quay-mirror.example.com/v2/quay", Caps: pr}}},
		// "*" applies to any registry without a directory, which stays last.
		{"wildcard_mirror", "ghcr.io", []loadedHost{
			{URL: "https://registry.example.com/v2", Caps: pr}, {URL: "https://ghcr.io/v2", Caps: "all"}}},
		{"wildcard_config", "ghcr.io", []loadedHost{{URL: "https://ghcr.io/v2", Caps: "all", SkipVerify: true}}},
		{"tls_files", "docker.io", []loadedHost{
			{URL: "https://registry.example.com:5000/v2", Caps: pr, CA: true, ClientCerts: 1}, {URL: hub, Caps: "all"}}},
		{"tls_files", "registry.example.com:5000", []loadedHost{
			{URL: "https://registry.example.com:5000/v2", Caps: "all", CA: true, ClientCerts: 1}}},
		{"tls_files", "harbor.example.com", []loadedHost{{URL: "https://harbor.example.com/v2", Caps: "all", CA: true}}},
		{"credentials_header", "docker.io", []loadedHost{
			{URL: "https://registry.example.com/v2", Caps: pr, Auth: "Basic dXNlcjpwYXNz"},
			{URL: hub, Caps: "all", Auth: "Basic aHViOnNlY3JldA=="}}},
	}
	for _, tt := range tests {
		t.Run(tt.golden+"/"+tt.registry, func(t *testing.T) {
			root := renderCertsDir(t, tt.golden)
			hosts, err := config.ConfigureHosts(context.Background(), config.HostOptions{
				HostDir: config.HostDirFromRoot(root),
			})(tt.registry)
			if err != nil {
				t.Fatalf("ConfigureHosts: %v", err)
			}
			if diff := cmp.Diff(tt.want, summarizeLoaded(t, hosts)); diff != "" {
				t.Errorf("hosts containerd loads (-want +got):\n%s", diff)
			}
		})
	}
}

// renderCertsDir renders a golden case with certs_dir moved to a temporary
// directory, writes what lands there, and returns the directory.
func renderCertsDir(t *testing.T, golden string) string {
	t.Helper()
	e := NewContainerd()
	gc := loadGolden(t, e, filepath.Join("testdata", "containerd", golden+".txtar"))
	root := t.TempDir()
	set := settingsOf[ContainerdSettings](gc.spec, "containerd")
	set.CertsDir = root
	gc.spec.Engines["containerd"] = &spec.EngineSection{Enabled: Enabled(gc.spec, "containerd"), Settings: set}
	res, err := e.Render(gc.spec, Host{FS: gc.in}, gc.det)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	for _, f := range res.Files {
		if f.Remove || !strings.HasPrefix(f.Path, root+"/") {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.Path, f.Data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestContainerdNoServerLineAddsUpstream pins the containerd behaviour
// upstream_fallback: false is built on: a hosts.toml with mirrors and no
// server line still ends with the registry itself, so "no upstream" needs
// the last mirror as the server line.
func TestContainerdNoServerLineAddsUpstream(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "docker.io")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	hostsToml := "[host.\"https://mirror.example.com/v2\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(hostsToml), 0o644); err != nil {
		t.Fatal(err)
	}
	hosts, err := config.ConfigureHosts(context.Background(), config.HostOptions{HostDir: config.HostDirFromRoot(root)})("docker.io")
	if err != nil {
		t.Fatal(err)
	}
	want := []loadedHost{{URL: "https://mirror.example.com/v2", Caps: "pull,resolve"}, {URL: "https://registry-1.docker.io/v2", Caps: "all"}}
	if diff := cmp.Diff(want, summarizeLoaded(t, hosts)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestDockerStoreLoadsHostsDir renders Docker golden cases (the containerd
// image store) into a temporary certs.d and reads each registry back as
// dockerd 28+ does (moby daemon/hosts.go RegistryHosts): containerd's own
// hosts loader over the tree, then registry-mirrors from the rendered
// daemon.json merged in for docker.io only while the loader found a
// single host (mergeLegacyConfig).
func TestDockerStoreLoadsHostsDir(t *testing.T) {
	const hub = "https://registry-1.docker.io/v2"
	pr := "pull,resolve"
	nexusAuth := "Basic bm9kZS1wdWxsZXI6czNjcjp0IHBhc3M="
	tests := []struct {
		golden   string
		registry string
		want     []loadedHost
	}{
		// A mirror in docker.io's hosts.toml: registry-mirrors is ignored.
		{"containerd_store", "docker.io", []loadedHost{
			{URL: "https://nexus.example.internal:8443/v2", Caps: pr, CA: true, Auth: nexusAuth}, {URL: hub, Caps: "all"}}},
		{"containerd_store", "ghcr.io", []loadedHost{
			{URL: "https://nexus.example.internal:8443/repository/ghcr/v2", Caps: pr, CA: true, Auth: nexusAuth},
			{URL: "https://ghcr.io/v2", Caps: "all"}}},
		{"containerd_store", "quay.io", []loadedHost{
			{URL: "https://quay-cache.example.internal/quay", Caps: pr},
			{URL: "https://nexus.example.internal:8443/v2", Caps: pr, CA: true, Auth: nexusAuth}}},
		// "*" is _default, for any registry without a directory.
		{"containerd_store", "gcr.io", []loadedHost{
			{URL: "http://localhost:5000/v2", Caps: pr}, {URL: "https://gcr.io/v2", Caps: "all"}}},
		// The mirror's own registry: its TLS, no header (the client's login goes there).
		{"containerd_store", "nexus.example.internal:8443", []loadedHost{
			{URL: "https://nexus.example.internal:8443/v2", Caps: "all", CA: true}}},
		{"containerd_store_28_0", "registry.example.com:5000", []loadedHost{
			{URL: "https://mirror.example.com/v2", Caps: pr}, {URL: "https://registry.example.com:5000/v2", Caps: "all"}}},
		{"detect_29_default", "ghcr.io", []loadedHost{
			{URL: "https://ghcr-cache.example.com/v2", Caps: pr}, {URL: "https://ghcr.io/v2", Caps: "all"}}},
		// One host for docker.io: registry-mirrors (the same mirror) goes first.
		{"containerd_store_hub_single_mirror", "docker.io", []loadedHost{
			{URL: "https://hub-cache.example.com/v2", Caps: pr, Auth: "Basic cHVsbGVyOnB3"},
			{URL: "https://hub-cache.example.com/v2", Caps: pr, Auth: "Basic cHVsbGVyOnB3"}}},
	}
	for _, tt := range tests {
		t.Run(tt.golden+"/"+tt.registry, func(t *testing.T) {
			root, mirrors := renderDockerCertsDir(t, tt.golden)
			hosts, err := config.ConfigureHosts(context.Background(), config.HostOptions{
				HostDir: config.HostDirFromRoot(root),
			})(tt.registry)
			if err != nil {
				t.Fatalf("ConfigureHosts: %v", err)
			}
			got := summarizeLoaded(t, hosts)
			if tt.registry == "docker.io" && len(got) == 1 && len(mirrors) > 0 {
				got = append(legacyMirrorHosts(t, mirrors, got[0]), got[0])
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("hosts dockerd loads (-want +got):\n%s", diff)
			}
		})
	}
}

// legacyMirrorHosts is moby's mirrorsToRegistryHosts on loadedHost: each
// registry-mirrors URL becomes a copy of the registry's own host (its TLS
// and header) with that URL, /v2 appended, pull and resolve only.
func legacyMirrorHosts(t *testing.T, mirrors []string, base loadedHost) []loadedHost {
	t.Helper()
	var out []loadedHost
	for _, m := range mirrors {
		u, err := url.Parse(m)
		if err != nil || u.Host == "" {
			t.Fatalf("registry-mirrors entry %q", m)
		}
		p := strings.TrimSuffix(u.Path, "/")
		if !strings.HasSuffix(p, "/v2") {
			p = path.Join(p, "/v2")
		}
		h := base
		h.URL, h.Caps = u.Scheme+"://"+u.Host+p, "pull,resolve"
		out = append(out, h)
	}
	return out
}

// renderDockerCertsDir renders a Docker golden case with certs_dir moved
// to a temporary directory, writes what lands there, and returns the
// directory and the registry-mirrors of the rendered daemon.json.
func renderDockerCertsDir(t *testing.T, golden string) (string, []string) {
	t.Helper()
	e := NewDocker()
	gc := loadGolden(t, e, filepath.Join("testdata", "docker", golden+".txtar"))
	root := t.TempDir()
	set := settingsOf[DockerSettings](gc.spec, "docker")
	set.CertsDir = root
	if gc.spec.Engines == nil {
		gc.spec.Engines = spec.Engines{}
	}
	gc.spec.Engines["docker"] = &spec.EngineSection{Enabled: Enabled(gc.spec, "docker"), Settings: set}
	res, err := e.Render(gc.spec, Host{FS: gc.in}, gc.det)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	var mirrors []string
	for _, f := range res.Files {
		if f.Path == dockerDaemonJSON && !f.Remove {
			var d struct {
				Mirrors []string `json:"registry-mirrors"`
			}
			if err := json.Unmarshal(f.Data, &d); err != nil {
				t.Fatal(err)
			}
			mirrors = d.Mirrors
		}
		if f.Remove || !strings.HasPrefix(f.Path, root+"/") {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.Path, f.Data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root, mirrors
}
