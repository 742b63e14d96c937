package engines

import (
	"context"
	"net/http"
	"os"
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
