package spec

import (
	"strings"
	"testing"
)

func TestParseEndpoint(t *testing.T) {
	for raw, want := range map[string]struct {
		url, name string
		override  bool
	}{
		"m.example.com":                       {"https://m.example.com/v2", "m.example.com", false},
		"m.example.com:5000":                  {"https://m.example.com:5000/v2", "m.example.com:5000", false},
		"localhost:5000":                      {"http://localhost:5000/v2", "localhost:5000", false},
		"127.0.0.1:5000":                      {"http://127.0.0.1:5000/v2", "127.0.0.1:5000", false},
		"[::1]:5000":                          {"http://[::1]:5000/v2", "[::1]:5000", false},
		"localhost:443":                       {"https://localhost:443/v2", "localhost:443", false},
		"https://localhost:5000":              {"https://localhost:5000/v2", "localhost:5000", false},
		"docker.io":                           {"https://registry-1.docker.io/v2", "docker.io", false},
		"https://registry-1.docker.io/v2":     {"https://registry-1.docker.io/v2", "docker.io", false},
		"http://m.example.com/":               {"http://m.example.com/v2", "m.example.com", false},
		"https://n.example.com/repository/x/": {"https://n.example.com/repository/x/", "n.example.com", true},
		"https://n.example.com/repository/v2": {"https://n.example.com/repository/v2", "n.example.com", true},
	} {
		e, err := ParseEndpoint(raw)
		if err != nil || e.URL.String() != want.url || e.Name != want.name || e.OverridePath != want.override {
			t.Errorf("ParseEndpoint(%q) = %v %q %v, %v; want %q %q %v", raw, e.URL, e.Name, e.OverridePath, err, want.url, want.name, want.override)
		}
	}
}

// k3s uses each endpoint once after normalising, silently: any file k3s
// takes is a valid spec, and the duplicates are a note. http and https on
// the same port are two endpoints, for the spec as for the engines.
func TestEndpointNotes(t *testing.T) {
	s, err := Parse("spec.yaml", []byte(`mirrors:
  docker.io:
    endpoint:
      - m.example.com
      - https://m.example.com
      - https://m.example.com/v2
      - localhost:5000
      - https://localhost:5000
      - https://nexus.example.com:8443/repository/docker-proxy/
`), opts())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range s.Notes() {
		got = append(got, n.Pos.String()+" "+n.Message)
	}
	if len(got) != 3 {
		t.Fatalf("notes:\n%s", strings.Join(got, "\n"))
	}
	for i, want := range []string{
		`spec.yaml:5:9 endpoint "https://m.example.com" is the same as "m.example.com" at spec.yaml:4:9`,
		`spec.yaml:6:9 endpoint "https://m.example.com/v2" is the same as "m.example.com" at spec.yaml:4:9`,
		"spec.yaml:9:9 endpoint https://nexus.example.com:8443/repository/docker-proxy/ has a path that does not end in /v2: " +
			"containerd and k3s use it as the API root and request https://nexus.example.com:8443/repository/docker-proxy/<repository>/manifests/<tag>; " +
			"a registry behind a path usually serves https://nexus.example.com:8443/repository/docker-proxy/v2",
	} {
		if !strings.HasPrefix(got[i], want) {
			t.Errorf("note %d:\n got %s\nwant %s", i, got[i], want)
		}
	}
	if p := s.Mirrors["docker.io"].Endpoints; len(p) != 6 {
		t.Errorf("kept %d endpoints, want every one of the 6 (engines skip the duplicates)", len(p))
	}
}

// A registry name becomes a directory name (certs.d/<name>): anything that
// is a path element, or containerd's fallback directory, is refused, in
// the spec and for keys engines read from the host (CheckHost).
func TestCheckHostRefusesPathElements(t *testing.T) {
	for _, bad := range []string{".", "..", "_default", "_x", "a/b", "../../etc", "a..b", ".example.com", "example.com.", "", `a\b`, "reg:0", "reg:99999"} {
		if err := CheckHost(bad); err == nil {
			t.Errorf("CheckHost(%q) accepted it", bad)
		}
		if _, err := Parse("spec.yaml", []byte("mirrors:\n  \""+strings.ReplaceAll(bad, `\`, `\\`)+"\": {}\n"), opts()); err == nil {
			t.Errorf("a spec with the registry %q parsed", bad)
		}
	}
	for _, good := range []string{"docker.io", "registry.example.com:5000", "[fd00::1]:5000", "*", "my_registry", "localhost"} {
		if err := CheckHost(good); err != nil {
			t.Errorf("CheckHost(%q): %v", good, err)
		}
	}
}
