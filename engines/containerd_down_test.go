package engines

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/spec"
)

// downSpec: ghcr.io through two mirrors with the upstream last, quay.io
// through two mirrors and never itself; credentials for mirror a in
// config.toml (containerd 1.6: credentials: config).
func downSpec() *spec.Spec {
	no := false
	return &spec.Spec{
		Mirrors: mirrorMap(
			"ghcr.io", mirrorOf("https://a.example.com", "b.example.com:5000"),
			"quay.io", &spec.Mirror{Endpoints: []string{"https://c.example.com", "https://d.example.com/cache/v2"}, UpstreamFallback: &no},
		),
		Configs: map[string]*spec.Config{"a.example.com": ctrUserPass},
	}
}

const (
	epA = "https://a.example.com/v2"
	epB = "https://b.example.com:5000/v2"
	epC = "https://c.example.com/v2"
	epD = "https://d.example.com/cache/v2"
)

// renderDown renders downSpec on an empty 1.6 host with down, and returns
// the files by path ("" for a removal) and the warnings.
func renderDown(t *testing.T, down ...string) (map[string]string, []string) {
	t.Helper()
	h := Host{FS: fstest.MapFS{}}
	if len(down) > 0 {
		h.Down = map[string]bool{}
		for _, d := range down {
			h.Down[d] = true
		}
	}
	res, err := NewContainerd().Render(downSpec(), h, Detection{Version: "1.6.20"})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range res.Files {
		files[f.Path] = string(f.Data)
	}
	var warns []string
	for _, w := range res.Warnings {
		warns = append(warns, w.Message)
	}
	return files, warns
}

const (
	ghcrToml = "/etc/containerd/certs.d/ghcr.io/hosts.toml"
	quayToml = "/etc/containerd/certs.d/quay.io/hosts.toml"
	ctrToml  = "/etc/containerd/config.toml"
)

func TestContainerdLeavesDownMirrorsOut(t *testing.T) {
	all, allWarns := renderDown(t)
	for _, ep := range []string{epA, epB} {
		if !strings.Contains(all[ghcrToml], `[host."`+ep+`"]`) {
			t.Fatalf("nothing down: ghcr.io lacks %s:\n%s", ep, all[ghcrToml])
		}
	}
	if !strings.Contains(all[ctrToml], `configs."a.example.com".auth]`) {
		t.Fatalf("config.toml lacks a's credentials:\n%s", all[ctrToml])
	}
	tests := []struct {
		name      string
		down      []string
		ghcr      string // "" for no file
		quay      string
		warnsWith []string // substrings, one warning each, in order
	}{
		{name: "one of two down", down: []string{epA},
			ghcr: "server = \"https://ghcr.io/v2\"\n\n[host.\"" + epB + "\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
			quay: all[quayToml], warnsWith: []string{`"ghcr.io": ` + epA + ` not answering`}},
		{name: "all down with the upstream as fallback", down: []string{epA, epB},
			quay: all[quayToml], warnsWith: []string{`"ghcr.io": every mirror is down (` + epA + ", " + epB + "): pulls go to the registry itself"}},
		{name: "all down without fallback", down: []string{epC, epD},
			ghcr: all[ghcrToml], quay: all[quayToml], warnsWith: []string{`"quay.io": every mirror is down (` + epC + ", " + epD + ") and upstream_fallback is false: keeping them"}},
		{name: "the server mirror down without fallback", down: []string{epD},
			ghcr: all[ghcrToml], quay: "server = \"" + epC + "\"\ncapabilities = [\"pull\", \"resolve\"]\n\n[host]\n",
			warnsWith: []string{`"quay.io": ` + epD + ` not answering`}},
		{name: "an endpoint the spec does not list", down: []string{"https://z.example.com/v2"},
			ghcr: all[ghcrToml], quay: all[quayToml]},
	}
	body := func(s string) string { // without the ownership line
		if first, rest, ok := strings.Cut(s, "\n"); ok && strings.HasPrefix(first, hostsMarker) {
			return rest
		}
		return s
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, warns := renderDown(t, tt.down...)
			if files[ctrToml] != all[ctrToml] {
				t.Errorf("config.toml depends on Down (a restart):\n%s", files[ctrToml])
			}
			for _, c := range []struct{ path, want string }{{ghcrToml, tt.ghcr}, {quayToml, tt.quay}} {
				got, ok := files[c.path]
				switch {
				case c.want == "" && ok:
					t.Errorf("%s rendered:\n%s", c.path, got)
				case c.want != "" && !ok:
					t.Errorf("%s not rendered", c.path)
				case c.want != "" && body(got) != body(c.want):
					t.Errorf("%s (-want +got):\n%s", c.path, cmp.Diff(body(c.want), body(got)))
				}
			}
			extra := slices.DeleteFunc(slices.Clone(warns), func(w string) bool { return slices.Contains(allWarns, w) })
			if len(extra) != len(tt.warnsWith) {
				t.Fatalf("warnings beyond the usual: %q, want %d", extra, len(tt.warnsWith))
			}
			for i, sub := range tt.warnsWith {
				if !strings.Contains(extra[i], sub) {
					t.Errorf("warning %q lacks %q", extra[i], sub)
				}
			}
			again, warns2 := renderDown(t, tt.down...)
			if !cmp.Equal(files, again) || !slices.Equal(warns, warns2) {
				t.Error("not deterministic")
			}
		})
	}
}

// A registry left with no mirror loses its hosts.toml on a host where
// mirrorctl wrote one; it comes back when a mirror answers.
func TestContainerdAllDownRemovesTheFile(t *testing.T) {
	files, _ := renderDown(t)
	host := fstest.MapFS{}
	for p, data := range files {
		host[FSPath(p)] = &fstest.MapFile{Data: []byte(data), Mode: 0o644}
	}
	res, err := NewContainerd().Render(downSpec(), Host{FS: host, Down: map[string]bool{epA: true, epB: true}}, Detection{Version: "1.6.20"})
	if err != nil {
		t.Fatal(err)
	}
	var removed []string
	for _, f := range res.Files {
		if f.Remove {
			removed = append(removed, f.Path)
		}
	}
	if !slices.Equal(removed, []string{ghcrToml}) {
		t.Errorf("removed %q, want only ghcr.io's hosts.toml", removed)
	}
}

func TestMirrorEndpoints(t *testing.T) {
	s := downSpec()
	s.Mirrors["docker.io"] = mirrorOf("https://a.example.com", "docker.io") // a shared; docker.io itself is the server
	tlsB := &spec.TLS{InsecureSkipVerify: true}
	s.Configs["b.example.com:5000"] = &spec.Config{TLS: tlsB}
	got := MirrorEndpoints(s)
	want := []MirrorEndpoint{
		{URL: epA, Registries: []string{"docker.io", "ghcr.io"}},
		{URL: epB, Registries: []string{"ghcr.io"}, TLS: tlsB},
		{URL: epC, Registries: []string{"quay.io"}},
		{URL: epD, Registries: []string{"quay.io"}},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b *spec.TLS) bool { return a == b })); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if u := got[0].ProbeURL(); u != "https://a.example.com/v2/" {
		t.Errorf("ProbeURL %q", u)
	}
	if MirrorEndpoints(nil) != nil {
		t.Error("nil spec")
	}
}
