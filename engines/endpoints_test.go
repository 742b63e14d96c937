package engines

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/credentials"
	"github.com/mirrorctl/mirrorctl/spec"
)

func TestNormalizeEndpoint(t *testing.T) {
	tests := []struct {
		in       string
		name     string
		url      string
		override bool
	}{
		{"registry.example.com", "registry.example.com", "https://registry.example.com/v2", false},
		{"https://registry.example.com", "registry.example.com", "https://registry.example.com/v2", false},
		{"https://registry.example.com/", "registry.example.com", "https://registry.example.com/v2", false},
		{"registry.example.com/v2", "registry.example.com", "https://registry.example.com/v2", false},
		{"registry.example.com/prefix/v2", "registry.example.com", "https://registry.example.com/prefix/v2", true},
		{"https://nexus/repository/docker-proxy", "nexus", "https://nexus/repository/docker-proxy", true},
		{"registry.example.com:443", "registry.example.com:443", "https://registry.example.com:443/v2", false},
		{"1.2.3.4", "1.2.3.4", "https://1.2.3.4/v2", false},
		{"1.2.3.4:5000", "1.2.3.4:5000", "https://1.2.3.4:5000/v2", false},
		{"localhost", "localhost", "https://localhost/v2", false},
		{"localhost:443", "localhost:443", "https://localhost:443/v2", false},
		{"localhost:5000", "localhost:5000", "http://localhost:5000/v2", false},
		{"https://localhost:5000", "localhost:5000", "https://localhost:5000/v2", false},
		{"127.0.0.1:5000", "127.0.0.1:5000", "http://127.0.0.1:5000/v2", false},
		{"127.0.0.2:5000", "127.0.0.2:5000", "http://127.0.0.2:5000/v2", false},
		{"[::1]:5000", "[::1]:5000", "http://[::1]:5000/v2", false},
		{"docker.io", "docker.io", "https://registry-1.docker.io/v2", false},
		{"https://registry-1.docker.io", "docker.io", "https://registry-1.docker.io/v2", false},
		{"http://mirror:8080", "mirror:8080", "http://mirror:8080/v2", false},
	}
	for _, tt := range tests {
		name, u, override, err := normalizeEndpoint(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if name != tt.name || u.String() != tt.url || override != tt.override {
			t.Errorf("%s: got (%s, %s, %v), want (%s, %s, %v)", tt.in, name, u, override, tt.name, tt.url, tt.override)
		}
	}
	if _, _, _, err := normalizeEndpoint("https:///v2"); err == nil {
		t.Error("an endpoint without a host was accepted")
	}
}

var ctrUserPass = &spec.Config{Auth: &spec.Auth{Username: "user", Password: credentials.NewSecret("pass")}}

func mirrorMap(kv ...any) map[string]*spec.Mirror {
	m := map[string]*spec.Mirror{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(*spec.Mirror)
	}
	return m
}

func mirrorOf(e ...string) *spec.Mirror { return &spec.Mirror{Endpoints: e} }

// summarize prints host lists compactly, keeping only the registries k3s
// keeps (endpointHasConfig): mirrors, or a server with credentials or TLS.
func summarize(hosts map[string]*registryHosts) map[string]string {
	out := map[string]string{}
	one := func(e *hostEndpoint) string {
		s := "-"
		if e.url != nil {
			s = e.url.String()
		}
		if e.overridePath {
			s += " override"
		}
		if e.credsKey != "" {
			s += " creds=" + e.credsKey
		}
		return s
	}
	for dir, rh := range hosts {
		if len(rh.hosts) == 0 && !rh.noUpstream && !rh.server.overridePath && rh.server.creds == nil {
			continue
		}
		parts := []string{"server " + one(rh.server)}
		for i := range rh.hosts {
			parts = append(parts, "host "+one(&rh.hosts[i]))
		}
		out[dir] = strings.Join(parts, " | ")
	}
	return out
}

// TestBuildRegistryHostsK3s replays k3s's Test_UnitGetHostConfigs
// (k3s-io/k3s:pkg/agent/containerd/config_test.go), without the embedded
// registry cases, which k3s adds itself.
func TestBuildRegistryHostsK3s(t *testing.T) {
	const hub = "https://registry-1.docker.io/v2"
	tests := []struct {
		name    string
		mirrors map[string]*spec.Mirror
		configs map[string]*spec.Config
		want    map[string]string
	}{
		{name: "no registries", want: map[string]string{}},
		{name: "registry with default endpoint", mirrors: mirrorMap("docker.io", mirrorOf()), want: map[string]string{}},
		{name: "default endpoint explicitly listed", mirrors: mirrorMap("docker.io", mirrorOf("docker.io")), want: map[string]string{}},
		{name: "default endpoint and creds", mirrors: mirrorMap("docker.io", mirrorOf()),
			configs: map[string]*spec.Config{"docker.io": ctrUserPass},
			want:    map[string]string{"docker.io": "server " + hub + " creds=docker.io"}},
		{name: "default endpoint explicitly listed and creds", mirrors: mirrorMap("docker.io", mirrorOf("docker.io")),
			configs: map[string]*spec.Config{"docker.io": ctrUserPass},
			want:    map[string]string{"docker.io": "server " + hub + " creds=docker.io"}},
		{name: "only creds", configs: map[string]*spec.Config{"docker.io": ctrUserPass},
			want: map[string]string{"docker.io": "server " + hub + " creds=docker.io"}},
		{name: "private registry with default endpoint", mirrors: mirrorMap("registry.example.com", mirrorOf()), want: map[string]string{}},
		{name: "private registry with only creds", configs: map[string]*spec.Config{"registry.example.com": ctrUserPass},
			want: map[string]string{"registry.example.com": "server https://registry.example.com/v2 creds=registry.example.com"}},
		{name: "full URL with override path", mirrors: mirrorMap("docker.io", mirrorOf("https://registry.example.com/prefix/v2")),
			want: map[string]string{"docker.io": "server " + hub + " | host https://registry.example.com/prefix/v2 override"}},
		{name: "hostname only with override path", mirrors: mirrorMap("docker.io", mirrorOf("registry.example.com/prefix/v2")),
			want: map[string]string{"docker.io": "server " + hub + " | host https://registry.example.com/prefix/v2 override"}},
		{name: "hostname only with default path", mirrors: mirrorMap("docker.io", mirrorOf("registry.example.com/v2")),
			want: map[string]string{"docker.io": "server " + hub + " | host https://registry.example.com/v2"}},
		{name: "hostname and port only", mirrors: mirrorMap("docker.io", mirrorOf("registry.example.com:443")),
			want: map[string]string{"docker.io": "server " + hub + " | host https://registry.example.com:443/v2"}},
		{name: "ip address only", mirrors: mirrorMap("docker.io", mirrorOf("1.2.3.4")),
			want: map[string]string{"docker.io": "server " + hub + " | host https://1.2.3.4/v2"}},
		{name: "duplicate endpoints in different formats",
			mirrors: mirrorMap("docker.io", mirrorOf("registry.example.com", "https://registry.example.com", "https://registry.example.com/v2")),
			want:    map[string]string{"docker.io": "server " + hub + " | host https://registry.example.com/v2"}},
		{name: "duplicate endpoints in different positions",
			mirrors: mirrorMap("docker.io", mirrorOf("https://registry.example.com", "https://registry.example.org", "https://registry.example.com")),
			want:    map[string]string{"docker.io": "server " + hub + " | host https://registry.example.com/v2 | host https://registry.example.org/v2"}},
		{name: "localhost and port only", mirrors: mirrorMap("docker.io", mirrorOf("localhost:5000")),
			want: map[string]string{"docker.io": "server " + hub + " | host http://localhost:5000/v2"}},
		{name: "loopback ip and port with scheme", mirrors: mirrorMap("docker.io", mirrorOf("https://127.0.0.1:5000")),
			want: map[string]string{"docker.io": "server " + hub + " | host https://127.0.0.1:5000/v2"}},
		{name: "mirror endpoint and mirror creds", mirrors: mirrorMap("docker.io", mirrorOf("https://registry.example.com/v2")),
			configs: map[string]*spec.Config{"registry.example.com": ctrUserPass},
			want: map[string]string{
				"docker.io":            "server " + hub + " | host https://registry.example.com/v2 creds=registry.example.com",
				"registry.example.com": "server https://registry.example.com/v2 creds=registry.example.com",
			}},
		{name: "mirror creds - override path without v2",
			mirrors: mirrorMap("docker.io", mirrorOf("https://registry.example.com/project/registry"),
				"registry.example.com", mirrorOf("https://registry.example.com/project/registry")),
			configs: map[string]*spec.Config{"registry.example.com": ctrUserPass},
			want: map[string]string{
				"docker.io":            "server " + hub + " | host https://registry.example.com/project/registry override creds=registry.example.com",
				"registry.example.com": "server https://registry.example.com/v2 creds=registry.example.com | host https://registry.example.com/project/registry override creds=registry.example.com",
			}},
		{name: "last endpoint equals the default", mirrors: mirrorMap("docker.io", mirrorOf("registry.example.com", "registry.example.org", "docker.io")),
			want: map[string]string{"docker.io": "server " + hub + " | host https://registry.example.com/v2 | host https://registry.example.org/v2"}},
		{name: "wildcard mirror endpoint - no endpoints", mirrors: mirrorMap("*", mirrorOf()), want: map[string]string{}},
		{name: "wildcard mirror endpoint - full URL", mirrors: mirrorMap("*", mirrorOf("https://registry.example.com/v2")),
			want: map[string]string{"_default": "server - | host https://registry.example.com/v2"}},
		{name: "wildcard config", configs: map[string]*spec.Config{"*": {Auth: ctrUserPass.Auth, TLS: &spec.TLS{InsecureSkipVerify: true}}},
			want: map[string]string{"_default": "server - creds=*"}},
		{name: "localhost registry on odd port", mirrors: mirrorMap("localhost:5000", mirrorOf()), want: map[string]string{}},
		{name: "localhost https endpoint on odd port with tls verification disabled",
			mirrors: mirrorMap("localhost:5000", mirrorOf("https://localhost:5000")),
			configs: map[string]*spec.Config{"localhost:5000": {TLS: &spec.TLS{InsecureSkipVerify: true}}},
			want:    map[string]string{"localhost:5000": "server http://localhost:5000/v2 creds=localhost:5000 | host https://localhost:5000/v2 creds=localhost:5000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hosts, warns := buildRegistryHosts(hostInputs{mirrors: tt.mirrors, configs: tt.configs})
			if len(warns) > 0 {
				t.Errorf("warnings: %v", warns)
			}
			if diff := cmp.Diff(tt.want, summarize(hosts)); diff != "" {
				t.Errorf("host lists (-want +got):\n%s", diff)
			}
		})
	}
}

// Without the upstream the last mirror becomes the server line, because a
// hosts.toml without one still ends with the registry itself.
func TestBuildRegistryHostsNoUpstream(t *testing.T) {
	no := false
	m := &spec.Mirror{Endpoints: []string{"https://a.example.com", "b.example.com:5000", "docker.io"}, UpstreamFallback: &no}
	hosts, _ := buildRegistryHosts(hostInputs{mirrors: mirrorMap("docker.io", m)})
	got := summarize(hosts)["docker.io"]
	want := "server https://registry-1.docker.io/v2 | host https://a.example.com/v2 | host https://b.example.com:5000/v2"
	if got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if rh := hosts["docker.io"]; !rh.noUpstream || rh.server.mirror == nil {
		t.Errorf("server is not the last mirror: %+v", rh.server)
	}
}
