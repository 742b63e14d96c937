package engines

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/spec"
)

func TestParseImage(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"test:1.0", "docker.io/library/test:1.0"},
		{"user/app", "docker.io/user/app:latest"},
		{"index.docker.io/library/alpine:3", "docker.io/library/alpine:3"},
		{"registry.example.invalid/library/test:latest", "registry.example.invalid/library/test:latest"},
		{"127.0.0.1:5000/library/test", "127.0.0.1:5000/library/test:latest"},
		{"localhost/app", "localhost/app:latest"},
		{"quay.io/org/app@sha256:0123", "quay.io/org/app@sha256:0123"},
		{"gcr.io/a/b/c:v1", "gcr.io/a/b/c:v1"},
	} {
		got, err := ParseImage(tt.in)
		if err != nil || got.String() != tt.want {
			t.Errorf("ParseImage(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "http://x/y", "UPPER/case", "a b", "x.io/", "x.io//y", "img@nodigest"} {
		if img, err := ParseImage(bad); err == nil {
			t.Errorf("ParseImage(%q) = %v, want an error", bad, img)
		}
	}
}

// routeLine is what matters of a route in these tests.
type routeLine struct {
	URL    string
	Mirror bool
	Auth   string // name via (token realm or not)
}

func linesOf(rs []Route) []routeLine {
	out := []routeLine{}
	for _, r := range rs {
		l := routeLine{URL: r.URL, Mirror: r.Mirror}
		if a := r.Auth; a != nil {
			l.Auth = a.Name + " via " + a.Via
			if !a.Token {
				l.Auth += " (not to token realms)"
			}
		}
		out = append(out, l)
	}
	return out
}

func causesOf(fs []Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.Level.String()+" "+f.Cause)
	}
	return out
}

// renderedHost renders a golden case and returns the host as it is after a
// sync: the case's in/ files with the rendered ones written over them.
func renderedHost(t *testing.T, e Engine, golden string) (fstest.MapFS, *spec.Spec, Detection) {
	t.Helper()
	gc := loadGolden(t, e, filepath.Join("testdata", e.Name(), golden+".txtar"))
	res, err := e.Render(gc.spec, Host{FS: gc.in}, gc.det)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	fsys := fstest.MapFS{}
	for k, v := range gc.in {
		fsys[k] = v
	}
	for _, f := range res.Files {
		if f.Remove {
			delete(fsys, FSPath(f.Path))
			continue
		}
		fsys[FSPath(f.Path)] = &fstest.MapFile{Data: f.Data, Mode: 0o644}
	}
	return fsys, gc.spec, gc.det
}

// TestRoutesOfWhatSyncWrites: the routes each engine computes from the files
// mirrorctl renders are the spec's endpoints, in the spec's order, with the
// credentials named by their configs: key and sent where the engine sends
// them. containerd's are read back with containerd's own loader.
func TestRoutesOfWhatSyncWrites(t *testing.T) {
	const hub = "https://registry-1.docker.io/v2"
	tests := []struct {
		engine, golden, image string
		want                  []routeLine
		findings              []string
	}{
		{"containerd", "credentials_header", "busybox", []routeLine{
			{URL: "https://registry.example.com/v2", Mirror: true, Auth: `configs."registry.example.com" via hosts.toml header`},
			{URL: hub, Auth: `configs."docker.io" via hosts.toml header`}}, nil},
		{"containerd", "credentials_auto_1x", "busybox", []routeLine{
			{URL: "https://registry.example.com/v2", Mirror: true, Auth: `configs."registry.example.com" via config.toml registry.configs`},
			{URL: hub}}, nil},
		{"containerd", "upstream_fallback_false", "quay.io/org/app:1", []routeLine{
			{URL: "https://quay-mirror.example.com/v2/quay", Mirror: true}}, nil},
		{"containerd", "wildcard_mirror", "ghcr.io/org/app", []routeLine{
			{URL: "https://registry.example.com/v2", Mirror: true}, {URL: "https://ghcr.io/v2"}}, nil},
		{"containerd", "full_url_override_path", "busybox", []routeLine{
			{URL: "https://registry.example.com/prefix/v2", Mirror: true}, {URL: hub}}, nil},
		{"docker", "mirror_path_docker25", "busybox", []routeLine{
			{URL: "https://nexus.example.com/repository/docker-proxy/v2", Mirror: true},
			{URL: "https://harbor.example.com/proxy-cache/v2", Mirror: true}, {URL: hub}}, nil},
		{"docker", "non_hub_mirrors", "quay.io/org/app", []routeLine{{URL: "https://quay.io/v2"}}, []string{"FAIL docker_hub_only"}},
		{"k3s", "registries_secrets", "busybox", []routeLine{
			{URL: "https://mirror.example.com:5000/v2", Mirror: true, Auth: `configs."mirror.example.com:5000" via registries.yaml configs`},
			{URL: "https://nexus.example.com/repository/docker-proxy/v2", Mirror: true, Auth: `configs."nexus.example.com" via registries.yaml configs`},
			{URL: hub}}, []string{"INFO rewrites"}},
		{"k3s", "registries_secrets", "registry.example.org/app", []routeLine{
			{URL: "https://catch-all.example.com/v2", Mirror: true}, {URL: "https://registry.example.org/v2"}}, nil},
		// A configs: entry gives its registry a directory of its own, which
		// containerd prefers to _default: "*" no longer mirrors ghcr.io.
		{"k3s", "registries_secrets", "ghcr.io/org/app", []routeLine{
			{URL: "https://ghcr.io/v2", Auth: `configs."ghcr.io" via registries.yaml configs`}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.engine+"/"+tt.golden+"/"+tt.image, func(t *testing.T) {
			e := engineNamed(t, tt.engine)
			fsys, s, d := renderedHost(t, e, tt.golden)
			img, err := ParseImage(tt.image)
			if err != nil {
				t.Fatal(err)
			}
			rt, err := e.(Router).Routes(context.Background(), img, Host{FS: fsys}, d, s)
			if err != nil {
				t.Fatalf("Routes: %v", err)
			}
			if diff := cmp.Diff(tt.want, linesOf(rt.Routes)); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(append([]string{}, tt.findings...), causesOf(rt.Findings)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

func engineNamed(t *testing.T, name string) Engine {
	for _, e := range All() {
		if e.Name() == name {
			return e
		}
	}
	t.Fatalf("no engine %s", name)
	return nil
}

const basicUserPass = "Basic dXNlcjpwYXNz" // user:pass

func mustSpec(t *testing.T, y string) *spec.Spec {
	t.Helper()
	s, err := spec.Parse("spec.yaml", []byte(y), spec.Options{Engines: Sections(),
		ReadFile: func(n string) ([]byte, error) { return nil, errors.New("no files") }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestContainerdRoutesOfHandWrittenFiles covers the traps containerd
// leaves silent, on files mirrorctl did not write.
func TestContainerdRoutesOfHandWrittenFiles(t *testing.T) {
	v3 := func(registry string) string {
		return "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n" + registry
	}
	s := mustSpec(t, "configs:\n  mirror.example.com:\n    auth: {username: user, password: pass}\n")
	tests := []struct {
		name, version string
		files         map[string]string
		want          []routeLine
		findings      []string
	}{
		{"hosts.toml that does not parse falls back to the upstream", "2.4.2", map[string]string{
			"etc/containerd/config.toml":                  v3(`config_path = "/etc/containerd/certs.d"`),
			"etc/containerd/certs.d/docker.io/hosts.toml": "[host.\"https://mirror.example.com\"\n",
		}, []routeLine{{URL: "https://registry-1.docker.io/v2"}}, []string{"FAIL hosts_toml_invalid"}},
		{"a config_path list is ignored by the transfer service", "2.4.2", map[string]string{
			"etc/containerd/config.toml":                  v3(`config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"`),
			"etc/containerd/certs.d/docker.io/hosts.toml": "[host.\"https://mirror.example.com\"]\n",
		}, []routeLine{{URL: "https://registry-1.docker.io/v2"}}, []string{}},
		{"a config_path list is read in order by 1.6", "1.6.20", map[string]string{
			"etc/containerd/config.toml": "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/a:/b\"\n",
			"b/docker.io/hosts.toml":     "[host.\"https://mirror.example.com\"]\n",
		}, []routeLine{{URL: "https://mirror.example.com/v2", Mirror: true}, {URL: "https://registry-1.docker.io/v2"}}, []string{}},
		{"mirrors next to config_path: CRI does not load", "1.6.20", map[string]string{
			"etc/containerd/config.toml": "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n" +
				"[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\nendpoint = [\"https://m.example.com\"]\n",
		}, []routeLine{}, []string{"FAIL cri_mirrors_and_config_path"}},
		{"legacy mirrors: the path verbatim, then the registry", "1.6.20", map[string]string{
			"etc/containerd/config.toml": "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\nendpoint = [\"https://m.example.com\", \"https://n.example.com/repository/hub\"]\n",
		}, []routeLine{{URL: "https://m.example.com/v2", Mirror: true}, {URL: "https://n.example.com/repository/hub", Mirror: true},
			{URL: "https://registry-1.docker.io/v2"}}, []string{"INFO legacy_mirrors"}},
		{"a header that is not the spec's is named, not shown; 1.6 does not send it to token realms", "1.6.20", map[string]string{
			"etc/containerd/config.toml": "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n",
			"etc/containerd/certs.d/docker.io/hosts.toml": "[host.\"https://mirror.example.com\"]\n  [host.\"https://mirror.example.com\".header]\n    Authorization = \"Basic b2xkOnB3\"\n" +
				"[host.\"https://other.example.com\"]\n  [host.\"https://other.example.com\".header]\n    Authorization = \"" + basicUserPass + "\"\n",
		}, []routeLine{
			{URL: "https://mirror.example.com/v2", Mirror: true, Auth: "an Authorization header not from the spec via hosts.toml header (not to token realms)"},
			{URL: "https://other.example.com/v2", Mirror: true, Auth: `configs."mirror.example.com" via hosts.toml header (not to token realms)`},
			{URL: "https://registry-1.docker.io/v2"}}, []string{}},
		{"a CA file that is missing makes every pull fail", "2.4.2", map[string]string{
			"etc/containerd/config.toml":                  v3(`config_path = "/etc/containerd/certs.d"`),
			"etc/containerd/certs.d/docker.io/hosts.toml": "[host.\"https://mirror.example.com\"]\n  ca = \"/etc/containerd/certs.d/docker.io/nope.crt\"\n",
		}, []routeLine{}, []string{"FAIL hosts_unloadable"}},
		{"no config_path on 1.6: CRI reads no hosts.toml", "1.6.20", map[string]string{
			"etc/containerd/config.toml":                  "version = 2\n",
			"etc/containerd/certs.d/docker.io/hosts.toml": "[host.\"https://mirror.example.com\"]\n",
		}, []routeLine{{URL: "https://registry-1.docker.io/v2"}}, []string{}},
	}
	img, _ := ParseImage("busybox")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for p, d := range tt.files {
				fsys[p] = &fstest.MapFile{Data: []byte(d), Mode: 0o644}
			}
			d := Detection{Engine: "containerd", Version: tt.version, Found: true}
			rt, err := NewContainerd().(Router).Routes(context.Background(), img, Host{FS: fsys}, d, s)
			if err != nil {
				t.Fatalf("Routes: %v", err)
			}
			if diff := cmp.Diff(tt.want, linesOf(rt.Routes)); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.findings, causesOf(rt.Findings)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			for _, f := range rt.Findings {
				if strings.Contains(f.Message, "b2xkOnB3") || strings.Contains(f.Message, "dXNlcjpwYXNz") {
					t.Errorf("a finding shows a credential: %s", f.Message)
				}
			}
		})
	}
}

// TestContainerdInspectOffline: without a running daemon, Inspect still
// judges the files: a config_path list on 2.1+, hosts.toml that do not load.
func TestContainerdInspectOffline(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/containerd/config.toml":                  {Data: []byte("version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = '/etc/containerd/certs.d:/etc/docker/certs.d'\n")},
		"etc/containerd/certs.d/docker.io/hosts.toml": {Data: []byte("server = 42\n")},
		"etc/containerd/certs.d/quay.io/hosts.toml":   {Data: []byte("[host.\"https://m.example.com\"]\n")},
	}
	noSocket := func(string) (string, error) { return "", errors.New("no socket") }
	d := Detection{Engine: "containerd", Version: "2.4.2"}
	got := causesOf(NewContainerd().(Inspector).Inspect(context.Background(), Host{FS: fsys}, d, &spec.Spec{}, noSocket))
	want := []string{"FAIL config_path_list", "FAIL hosts_toml_invalid", "INFO daemon_not_running", "INFO ctr_ignores_cri"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// The same list on 1.6 is read as a list: nothing to say about it.
	d.Version = "1.6.20"
	fsys["etc/containerd/config.toml"] = &fstest.MapFile{Data: []byte("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = '/etc/containerd/certs.d:/etc/docker/certs.d'\n")}
	got = causesOf(NewContainerd().(Inspector).Inspect(context.Background(), Host{FS: fsys}, d, &spec.Spec{}, noSocket))
	want = []string{"FAIL hosts_toml_invalid", "INFO daemon_not_running", "INFO ctr_ignores_cri"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("1.6 (-want +got):\n%s", diff)
	}
}

// TestInspectStaleSocket: a socket file nobody listens on (a stopped
// daemon) is "not running", not a daemon that fails to answer.
func TestInspectStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	resolve := func(string) (string, error) { return sock, nil }
	for _, e := range []Engine{NewContainerd(), NewDocker(), NewContainers()} {
		d := Detection{Engine: e.Name()}
		if e.Name() == "containers" {
			d.Unit = crioUnit // CRI-O
		}
		got := causesOf(e.(Inspector).Inspect(context.Background(), Host{FS: fstest.MapFS{}}, d, &spec.Spec{}, resolve))
		if !slices.Contains(got, "INFO daemon_not_running") {
			t.Errorf("%s: %v, want INFO daemon_not_running", e.Name(), got)
		}
	}
}

// TestDockerContainerdStoreRoutes: with the containerd image store, dockerd
// reads hosts.toml under /etc/docker/certs.d for any registry, and
// registry-mirrors still serves Docker Hub.
func TestDockerContainerdStoreRoutes(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/docker/daemon.json":                    {Data: []byte(`{"registry-mirrors": ["https://hub-mirror.example.com"]}`)},
		"etc/docker/certs.d/quay.io/hosts.toml":     {Data: []byte("[host.\"https://mirror.example.com\"]\n  [host.\"https://mirror.example.com\".header]\n    Authorization = \"" + basicUserPass + "\"\n")},
		"etc/containerd/certs.d/ghcr.io/hosts.toml": {Data: []byte("[host.\"https://not-read.example.com\"]\n")},
	}
	s := mustSpec(t, "configs:\n  mirror.example.com:\n    auth: {username: user, password: pass}\n")
	d := Detection{Engine: "docker", Version: "29.1.0", ImageStore: "containerd"}
	for _, tt := range []struct {
		image string
		want  []routeLine
	}{
		{"quay.io/org/app", []routeLine{{URL: "https://mirror.example.com/v2", Mirror: true, Auth: `configs."mirror.example.com" via hosts.toml header`}, {URL: "https://quay.io/v2"}}},
		{"busybox", []routeLine{{URL: "https://hub-mirror.example.com/v2", Mirror: true}, {URL: "https://registry-1.docker.io/v2"}}},
		{"ghcr.io/org/app", []routeLine{{URL: "https://ghcr.io/v2"}}},
	} {
		img, _ := ParseImage(tt.image)
		rt, err := NewDocker().(Router).Routes(context.Background(), img, Host{FS: fsys}, d, s)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, linesOf(rt.Routes)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.image, diff)
		}
	}
}

// k3s's route names the spec's credentials only when registries.yaml holds
// the same ones, an identity token compared by value like a password (a
// stale token is not the spec's), found under any configs: key.
func TestK3sRouteCredentialsByValue(t *testing.T) {
	s := mustSpec(t, "configs:\n  m.example.com:\n    auth: {identity_token: tok-new}\n  n.example.com:\n    auth: {username: u, password: p}\n")
	img, _ := ParseImage("busybox")
	for _, tt := range []struct{ name, auth, key string }{
		{"the same token", "{identity_token: tok-new}", "m.example.com"},
		{"a stale token", "{identity_token: tok-old}", ""},
		{"another key's password", "{username: u, password: p}", "n.example.com"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			yaml := "mirrors:\n  docker.io:\n    endpoint: [\"https://m.example.com\"]\nconfigs:\n  m.example.com:\n    auth: " + tt.auth + "\n"
			fsys := fstest.MapFS{"etc/rancher/k3s/registries.yaml": &fstest.MapFile{Data: []byte(yaml), Mode: 0o600}}
			rt, err := NewK3s().(Router).Routes(context.Background(), img, Host{FS: fsys}, Detection{Engine: "k3s", Found: true}, s)
			if err != nil {
				t.Fatal(err)
			}
			if len(rt.Routes) == 0 || rt.Routes[0].Auth == nil {
				t.Fatalf("routes %+v: the mirror's credentials are not named", rt.Routes)
			}
			if a := rt.Routes[0].Auth; a.Key != tt.key || (tt.key == "") != strings.Contains(a.Name, "not the spec's") {
				t.Errorf("auth %+v: want the spec's key %q", a, tt.key)
			}
		})
	}
}

// doctor reads daemon.json as dockerd does: a BOM and an empty file are
// fine, and a broken file is told by line and column.
func TestDaemonMirrorsReadAsDockerd(t *testing.T) {
	for _, tt := range []struct{ data, want, err string }{
		{"\xef\xbb\xbf{\"registry-mirrors\": [\"https://m.example.com\"]}", "https://m.example.com", ""},
		{"", "", ""},
		{"{\"registry-mirrors\": [\"https://m.example.com\"],\n \"x\" 1}", "", "line 2, column 6"},
	} {
		fsys := fstest.MapFS{"etc/docker/daemon.json": &fstest.MapFile{Data: []byte(tt.data)}}
		got, err := daemonMirrors(Host{FS: fsys}, "/etc/docker/daemon.json")
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want one at %s", tt.data, err, tt.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != tt.want {
			t.Errorf("%q: %q, %v; want %q", tt.data, got, err, tt.want)
		}
	}
}

// A broken JSON file is told by where, never by what the parser met: the
// byte it quotes may be a password's (config.json's auths).
func TestJSONErrorsQuoteNoContent(t *testing.T) {
	for _, data := range []string{`{"auths": {"r": {"auth": "pw"Zsecret"}}}`, `{"auths": {"r": {"auth": "pwZsecret`} {
		_, err := parseJSONObject("/root/.docker/config.json", []byte(data))
		if err == nil || strings.Contains(err.Error(), "Z") || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "line 1, column") {
			t.Errorf("%q: %v", data, err)
		}
	}
}

// A registry directory with more certificates than the loader's copy
// takes is said with its path, never read as a directory without its
// hosts.toml (which sorts after them).
func TestHostsLoadTooManyCertificates(t *testing.T) {
	fsys := fstest.MapFS{"etc/containerd/certs.d/docker.io/hosts.toml": {Data: []byte("[host.\"https://m.example.com\"]\n")}}
	for i := range maxCertFiles + 1 {
		fsys[fmt.Sprintf("etc/containerd/certs.d/docker.io/a%03d.crt", i)] = &fstest.MapFile{Data: []byte("x")}
	}
	_, err := loadHostsOf(context.Background(), fsys, []string{"/etc/containerd/certs.d"}, "docker.io", []string{"docker.io"})
	if err == nil || !strings.Contains(err.Error(), "/etc/containerd/certs.d/docker.io holds more than") {
		t.Fatalf("error %v, want the directory named", err)
	}
	delete(fsys, "etc/containerd/certs.d/docker.io/a000.crt")
	if _, err := loadHostsOf(context.Background(), fsys, []string{"/etc/containerd/certs.d"}, "docker.io", []string{"docker.io"}); err != nil {
		t.Fatalf("at the bound: %v", err)
	}
}

// countingFS counts the opens of each file.
type countingFS struct {
	fs.FS
	opens map[string]int
}

func (c countingFS) Open(name string) (fs.File, error) {
	c.opens[name]++
	return c.FS.Open(name)
}

// TestRoutesForReadsFilesOnce: doctor's default is one image per mirrored
// registry; an engine whose files are costly to read (k3s parses
// registries.yaml, containerd decodes config.toml) reads them once for all
// the images, and routes each image as Routes would alone.
func TestRoutesForReadsFilesOnce(t *testing.T) {
	for _, tt := range []struct{ engine, golden, config string }{
		{"containerd", "credentials_auto_1x", "etc/containerd/config.toml"},
		{"k3s", "registries_secrets", "etc/rancher/k3s/registries.yaml"},
		{"containers", "mirrors_crio", "etc/containers/registries.conf.d/50-mirrorctl.conf"},
	} {
		t.Run(tt.engine, func(t *testing.T) {
			e := engineNamed(t, tt.engine)
			fsys, s, d := renderedHost(t, e, tt.golden)
			var imgs []Image
			for _, name := range []string{"busybox", "quay.io/org/app:1", "ghcr.io/org/app", "registry.example.org/app", "busybox:1.36"} {
				img, err := ParseImage(name)
				if err != nil {
					t.Fatal(err)
				}
				imgs = append(imgs, img)
			}
			counted := countingFS{FS: fsys, opens: map[string]int{}}
			rts, err := e.(BatchRouter).RoutesFor(context.Background(), imgs, Host{FS: counted}, d, s)
			if err != nil {
				t.Fatal(err)
			}
			if n := counted.opens[tt.config]; n != 1 {
				t.Errorf("%s opened %d times for %d images, want once", tt.config, n, len(imgs))
			}
			if len(rts) != len(imgs) {
				t.Fatalf("%d routings for %d images", len(rts), len(imgs))
			}
			for i, img := range imgs {
				var alone []Routing
				if cr, ok := e.(ClientRouter); ok {
					alone, err = cr.ClientRoutes(context.Background(), img, Host{FS: fsys}, d, s)
				} else {
					var rt Routing
					rt, err = e.(Router).Routes(context.Background(), img, Host{FS: fsys}, d, s)
					alone = []Routing{rt}
				}
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(alone, rts[i]); diff != "" {
					t.Errorf("%s: RoutesFor differs from Routes (-alone +batch):\n%s", img, diff)
				}
			}
		})
	}
}
