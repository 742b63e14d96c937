package engines

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/spec"
)

// ctLine is one containers route in a line: the URL, "mirror", "then http"
// (insecure), the repository asked for when rewritten, and the credentials.
func ctLine(r Route) string {
	parts := []string{r.URL}
	if r.Mirror {
		parts = append(parts, "mirror")
	}
	if r.HTTPFallback {
		parts = append(parts, "then-http")
	}
	if r.Repository != "" {
		parts = append(parts, "repo="+r.Repository)
	}
	if r.Namespace != "" {
		parts = append(parts, "ns="+r.Namespace)
	}
	if r.Auth != nil {
		parts = append(parts, "auth="+r.Auth.Name+" via "+r.Auth.Via)
	}
	return strings.Join(parts, " ")
}

func ctLines(rs []Route) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, ctLine(r))
	}
	return out
}

func mapFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for p, d := range files {
		fsys[p] = &fstest.MapFile{Data: []byte(d), Mode: 0o644}
	}
	return fsys
}

func clientRoutes(t *testing.T, fsys fstest.MapFS, d Detection, s *spec.Spec, image string) []Routing {
	t.Helper()
	img, err := ParseImage(image)
	if err != nil {
		t.Fatal(err)
	}
	rts, err := NewContainers().(ClientRouter).ClientRoutes(context.Background(), img, Host{FS: fsys}, d, s)
	if err != nil {
		t.Fatalf("ClientRoutes: %v", err)
	}
	return rts
}

// TestContainersRoutesOfWhatSyncWrites: the routes computed from the files
// mirrorctl renders (and the files already there) are the spec's mirrors in
// order, then the registry, with the credentials named by their configs:
// key and the file each client reads them from.
func TestContainersRoutesOfWhatSyncWrites(t *testing.T) {
	const hub = "https://registry-1.docker.io/v2"
	tests := []struct {
		golden, image, who string
		want, findings     []string
	}{
		{"mirrors_crio", "busybox", "crio", []string{
			`https://127.0.0.1:5000/v2 mirror then-http auth=configs."127.0.0.1:5000" via /etc/crio/mirrorctl-auth.json`,
			"https://hub-mirror.example.com/v2 mirror",
			hub + ` auth=configs."docker.io" via /etc/crio/mirrorctl-auth.json`,
		}, []string{"INFO crio_global_auth_file", "INFO short_name_alias"}},
		{"mirrors_crio", "registry.example.invalid/app:1", "crio", []string{
			`https://127.0.0.1:5000/v2 mirror then-http auth=configs."127.0.0.1:5000" via /etc/crio/mirrorctl-auth.json`,
			"https://registry.example.invalid/v2",
		}, []string{"INFO crio_global_auth_file"}},
		// mirror-by-digest-only: a tag goes to the registry, a digest to the mirror.
		{"digest_only", "registry.example.invalid/app:1", "podman", []string{"https://registry.example.invalid/v2"}, []string{}},
		{"digest_only", "registry.example.invalid/app@sha256:" + strings.Repeat("ab", 32), "podman", []string{
			"https://digest-mirror.example.com/v2 mirror", "https://registry.example.invalid/v2"}, []string{}},
		// upstream_fallback: false: the last mirror is the location.
		{"no_fallback", "docker.io/grafana/grafana:1", "podman", []string{
			"https://a.example.com/v2 mirror", "https://b.example.com:5000/v2 mirror then-http"}, []string{}},
		// An identity token, in root's auth.json.
		{"podman_only", "quay.io/org/app", "podman", []string{
			`https://quay-mirror.example.com:8443/v2 mirror auth=configs."quay-mirror.example.com:8443" via /root/.config/containers/auth.json`,
			"https://quay.io/v2"}, []string{}},
		// registries.conf's longer prefix docker.io/library wins over
		// mirrorctl's docker.io; a later drop-in replaces mirrorctl's
		// docker.io; CRI-O reads the auth file a later crio.conf.d names.
		{"other_files", "docker.io/library/busybox:1", "crio", []string{hub}, []string{"INFO crio_global_auth_file", "WARN crio_auth_file_missing"}},
		{"other_files", "docker.io/grafana/grafana:1", "crio", []string{hub}, []string{"INFO crio_global_auth_file", "WARN crio_auth_file_missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden+"/"+tt.image, func(t *testing.T) {
			fsys, s, d := renderedHost(t, NewContainers(), tt.golden)
			rts := clientRoutes(t, fsys, d, s, tt.image)
			if len(rts) != 1 {
				t.Fatalf("%d routings, want 1 (%s)", len(rts), tt.who)
			}
			rt := rts[0]
			if rt.Who != tt.who {
				t.Errorf("who = %q, want %q", rt.Who, tt.who)
			}
			if diff := cmp.Diff(tt.want, ctLines(rt.Routes)); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.findings, causesOf(rt.Findings)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestContainersBothClients: with CRI-O and Podman on the node, each gets a
// routing of its own, the same hosts with the credentials each reads.
func TestContainersBothClients(t *testing.T) {
	fsys, s, d := renderedHost(t, NewContainers(), "mirrors_crio")
	fsys["usr/bin/podman"] = &fstest.MapFile{Data: []byte("#!"), Mode: 0o755}
	fsys["usr/bin/skopeo"] = &fstest.MapFile{Data: []byte("#!"), Mode: 0o755}
	rts := clientRoutes(t, fsys, d, s, "registry.example.invalid/app")
	var got []string
	for _, rt := range rts {
		got = append(got, rt.Who+": "+rt.Client+": "+strings.Join(ctLines(rt.Routes), " | "))
	}
	want := []string{
		`crio: ` + crioClientOf + `: https://127.0.0.1:5000/v2 mirror then-http auth=configs."127.0.0.1:5000" via /etc/crio/mirrorctl-auth.json | https://registry.example.invalid/v2`,
		`podman: ` + fmt.Sprintf(podmanClient, "podman, skopeo") + `: https://127.0.0.1:5000/v2 mirror then-http auth=configs."127.0.0.1:5000" via /root/.config/containers/auth.json | https://registry.example.invalid/v2`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestContainersRoutesOfHandWrittenFiles covers containers/image's rules on
// files mirrorctl did not write.
func TestContainersRoutesOfHandWrittenFiles(t *testing.T) {
	const (
		conf = "etc/containers/registries.conf"
		dir  = "etc/containers/registries.conf.d/"
		hub  = "https://registry-1.docker.io/v2"
		dgst = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	)
	tests := []struct {
		name, image string
		files       map[string]string
		want        []string
		findings    []string
	}{
		{"no table: the registry itself", "quay.io/org/app", nil, []string{"https://quay.io/v2"}, []string{}},
		{"a *.domain prefix without location: mirrors, then the registry", "a.example.com/x/y", map[string]string{
			conf: "[[registry]]\nprefix = \"*.example.com\"\n[[registry.mirror]]\nlocation = \"m.example.net\"\n",
		}, []string{"https://m.example.net/v2 mirror", "https://a.example.com/v2"}, []string{}},
		{"*.domain does not match the domain itself", "example.com/x", map[string]string{
			conf: "[[registry]]\nprefix = \"*.example.com\"\n[[registry.mirror]]\nlocation = \"m.example.net\"\n",
		}, []string{"https://example.com/v2"}, []string{}},
		{"prefix rewritten to a location with a namespace", "docker.io/library/busybox", map[string]string{
			conf: "[[registry]]\nprefix = \"docker.io/library\"\nlocation = \"mirror.example.com/hub\"\n",
		}, []string{"https://mirror.example.com/v2 mirror repo=hub/busybox"}, []string{}},
		{"the longest prefix wins", "docker.io/library/busybox", map[string]string{
			conf:              "[[registry]]\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"short.example.com\"\n",
			dir + "10-a.conf": "[[registry]]\nprefix = \"docker.io/library/busybox\"\nlocation = \"docker.io/library/busybox\"\n[[registry.mirror]]\nlocation = \"long.example.com/x\"\n",
		}, []string{"https://long.example.com/v2 mirror repo=x", hub}, []string{}},
		{"a later drop-in replaces a table with the same prefix whole", "quay.io/a/b", map[string]string{
			dir + "10-a.conf": "[[registry]]\nlocation = \"quay.io\"\n[[registry.mirror]]\nlocation = \"a.example.com\"\n",
			dir + "20-b.conf": "[[registry]]\nlocation = \"quay.io\"\n[[registry.mirror]]\nlocation = \"b.example.com\"\ninsecure = true\n",
			dir + "30-c.txt":  "[[registry]]\nlocation = \"quay.io\"\nblocked = true\n",
		}, []string{"https://b.example.com/v2 mirror then-http", "https://quay.io/v2"}, []string{}},
		{"in one file the first table of a prefix wins", "quay.io/a/b", map[string]string{
			conf: "[[registry]]\nlocation = \"quay.io\"\n[[registry.mirror]]\nlocation = \"first.example.com\"\n" +
				"[[registry]]\nlocation = \"quay.io\"\n[[registry.mirror]]\nlocation = \"second.example.com\"\n",
		}, []string{"https://first.example.com/v2 mirror", "https://quay.io/v2"}, []string{}},
		{"pull-from-mirror: digest-only skipped for a tag", "quay.io/a/b:1", map[string]string{
			conf: "[[registry]]\nlocation = \"quay.io\"\n[[registry.mirror]]\nlocation = \"d.example.com\"\npull-from-mirror = \"digest-only\"\n" +
				"[[registry.mirror]]\nlocation = \"t.example.com\"\npull-from-mirror = \"tag-only\"\n",
		}, []string{"https://t.example.com/v2 mirror", "https://quay.io/v2"}, []string{}},
		{"pull-from-mirror: tag-only skipped for a digest", "quay.io/a/b" + dgst, map[string]string{
			conf: "[[registry]]\nlocation = \"quay.io\"\n[[registry.mirror]]\nlocation = \"d.example.com\"\npull-from-mirror = \"digest-only\"\n" +
				"[[registry.mirror]]\nlocation = \"t.example.com\"\npull-from-mirror = \"tag-only\"\n",
		}, []string{"https://d.example.com/v2 mirror", "https://quay.io/v2"}, []string{}},
		{"namespace-proxy adds ?ns=", "quay.io/a/b", map[string]string{
			conf: "[[registry]]\nlocation = \"quay.io\"\n[[registry.mirror]]\nlocation = \"p.example.com\"\nnamespace-proxy = \"quay.io\"\n",
		}, []string{"https://p.example.com/v2 mirror ns=quay.io", "https://quay.io/v2"}, []string{}},
		{"a blocked registry without mirrors: every pull fails", "docker.io/library/busybox", map[string]string{
			dir + "50-mirrorctl.conf": "[[registry]]\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"m.example.com\"\n",
			dir + "60-block.conf":     "[[registry]]\nlocation = \"docker.io\"\nblocked = true\n",
		}, []string{}, []string{"FAIL registry_blocked"}},
		{"a blocked registry with mirrors: mirror only, no fallback", "docker.io/library/busybox", map[string]string{
			conf: "[[registry]]\nlocation = \"docker.io\"\nblocked = true\n[[registry.mirror]]\nlocation = \"m.example.com\"\n",
		}, []string{"https://m.example.com/v2 mirror"}, []string{"INFO blocked_source"}},
		{"a mirror under a blocked table is refused", "docker.io/library/busybox", map[string]string{
			conf: "[[registry]]\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"m.example.com\"\n" +
				"[[registry]]\nlocation = \"m.example.com\"\nblocked = true\n",
		}, []string{hub}, []string{"INFO blocked_source"}},
		{"a location with a scheme: the library refuses the files", "quay.io/a/b", map[string]string{
			dir + "10-a.conf": "[[registry]]\nlocation = \"https://quay.io\"\n",
		}, []string{}, []string{"FAIL registries_conf_invalid"}},
		{"one location, two insecure values", "quay.io/a/b", map[string]string{
			conf: "[[registry]]\nprefix = \"quay.io/a\"\nlocation = \"quay.io\"\n[[registry]]\nprefix = \"quay.io/b\"\nlocation = \"quay.io\"\ninsecure = true\n",
		}, []string{}, []string{"FAIL registries_conf_invalid"}},
		{"v1 format", "quay.io/a/b", map[string]string{conf: "[registries.search]\nregistries = [\"docker.io\"]\n"}, []string{}, []string{"FAIL registries_conf_invalid"}},
		{"pull-from-mirror with mirror-by-digest-only", "quay.io/a/b", map[string]string{
			conf: "[[registry]]\nlocation = \"quay.io\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m.example.com\"\npull-from-mirror = \"all\"\n",
		}, []string{}, []string{"FAIL registries_conf_invalid"}},
		{"a drop-in that is not TOML", "quay.io/a/b", map[string]string{dir + "10-a.conf": "[[registry]\n"}, []string{}, []string{"FAIL registries_conf_invalid"}},
		{"a wildcard prefix with a port", "quay.io/a/b", map[string]string{conf: "[[registry]]\nprefix = \"*.example.com:5000\"\n"}, []string{}, []string{"FAIL registries_conf_invalid"}},
		{"a rewrite that is not canonical fails the pull", "docker.io/library/busybox", map[string]string{
			conf: "[[registry]]\nprefix = \"docker.io/library\"\nlocation = \"docker.io\"\n",
		}, []string{}, []string{"FAIL reference_rewrite_invalid"}},
		{"root's own registries.conf replaces the system files", "quay.io/a/b", map[string]string{
			"root/.config/containers/registries.conf": "",
			dir + "50-mirrorctl.conf":                 "[[registry]]\nlocation = \"quay.io\"\n[[registry.mirror]]\nlocation = \"m.example.com\"\n",
		}, []string{"https://quay.io/v2"}, []string{}},
		{"root's registries.conf.d is read after the system's", "quay.io/a/b", map[string]string{
			dir + "50-mirrorctl.conf":                                "[[registry]]\nlocation = \"quay.io\"\n[[registry.mirror]]\nlocation = \"m.example.com\"\n",
			"root/.config/containers/registries.conf.d/00-mine.conf": "[[registry]]\nlocation = \"quay.io\"\n",
		}, []string{"https://quay.io/v2"}, []string{}},
		{"a short name: the alias", "busybox", map[string]string{
			dir + "shortnames.conf": "[aliases]\n\"busybox\" = \"quay.io/prometheus/busybox\"\n",
		}, []string{"https://quay.io/v2"}, []string{"INFO short_name_alias"}},
		{"a short name: root's alias cache first", "busybox", map[string]string{
			dir + "shortnames.conf":                        "[aliases]\n\"busybox\" = \"quay.io/prometheus/busybox\"\n",
			"var/cache/containers/short-name-aliases.conf": "[aliases]\n\"busybox\" = \"docker.io/library/busybox\"\n",
		}, []string{hub}, []string{"INFO short_name_alias"}},
		{"a short name: no search registries", "busybox", nil, []string{}, []string{"FAIL short_name_unresolvable"}},
		{"a short name: enforcing with two search registries", "busybox", map[string]string{
			conf: "unqualified-search-registries = [\"docker.io\", \"quay.io\"]\nshort-name-mode = \"enforcing\"\n",
		}, []string{}, []string{"FAIL short_name_ambiguous"}},
		{"a short name: another registry searched first", "busybox", map[string]string{
			conf:              "unqualified-search-registries = [\"docker.io\"]\n",
			dir + "10-a.conf": "unqualified-search-registries = [\"quay.io\", \"docker.io\"]\n",
		}, []string{hub}, []string{"WARN short_name_search"}},
		{"a short name: docker.io first", "busybox", map[string]string{
			conf: "unqualified-search-registries = [\"docker.io\", \"quay.io\"]\n",
		}, []string{hub}, []string{"INFO short_name_search"}},
		{"a client certificate without its key fails every connection", "quay.io/a/b", map[string]string{
			"etc/containers/certs.d/quay.io/client.cert": "x",
			"etc/containers/certs.d/quay.io/ca.crt":      "x",
		}, []string{"https://quay.io/v2"}, []string{"FAIL certs_d_invalid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rts := clientRoutes(t, mapFS(tt.files), Detection{Engine: "containers"}, &spec.Spec{}, tt.image)
			if len(rts) != 1 {
				t.Fatalf("%d routings, want 1", len(rts))
			}
			if diff := cmp.Diff(tt.want, ctLines(rts[0].Routes)); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.findings, causesOf(rts[0].Findings)); diff != "" {
				t.Errorf("findings (-want +got):\n%s\n%v", diff, rts[0].Findings)
			}
		})
	}
}

// TestContainersCredentials: per source, the entry of the rewritten name,
// then of each shorter namespace, then of the host, in the files in the
// order each client reads them; the spec's credentials are named by their
// configs: key, others by file and key, never by value.
func TestContainersCredentials(t *testing.T) {
	const (
		conf    = "etc/containers/registries.conf"
		runtime = "run/containers/0/auth.json"
		ours    = "root/.config/containers/auth.json"
		docker  = "root/.docker/config.json"
		old     = "b2xkOnN0YWxlLXB3" // old:stale-pw
		mine    = "bTpjb3JyZWN0LXB3" // m:correct-pw
	)
	mirrorConf := "[[registry]]\nlocation = \"quay.io\"\n[[registry.mirror]]\nlocation = \"m.example.com/ns\"\n"
	s := mustSpec(t, "configs:\n  m.example.com:\n    auth: {username: m, password: correct-pw}\n")
	entry := func(key, auth string) string { return fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, key, auth) }
	tests := []struct {
		name     string
		files    map[string]string
		want     string // the mirror route
		findings []string
	}{
		{"mirrorctl's file", map[string]string{ours: entry("m.example.com", mine)},
			`https://m.example.com/v2 mirror repo=ns/a/b auth=configs."m.example.com" via /root/.config/containers/auth.json`, []string{}},
		{"the most specific key", map[string]string{ours: `{"auths": {"m.example.com": {"auth": "` + mine + `"}, "m.example.com/ns/a": {"auth": "` + old + `"}}}`},
			`https://m.example.com/v2 mirror repo=ns/a/b auth=auths."m.example.com/ns/a" (not the spec's) via /root/.config/containers/auth.json`, []string{}},
		{"a stale podman login read first hides the spec's", map[string]string{runtime: entry("m.example.com", old), ours: entry("m.example.com", mine)},
			`https://m.example.com/v2 mirror repo=ns/a/b auth=auths."m.example.com" (not the spec's) via /run/containers/0/auth.json`, []string{"WARN auth_shadowed"}},
		{"an entry without user:password is skipped for the next file", map[string]string{runtime: entry("m.example.com", "bm9jb2xvbg=="), docker: entry("m.example.com", mine)},
			`https://m.example.com/v2 mirror repo=ns/a/b auth=configs."m.example.com" via /root/.docker/config.json`, []string{}},
		{"a URL key is normalised to the host", map[string]string{docker: entry("https://m.example.com/v1/", mine)},
			`https://m.example.com/v2 mirror repo=ns/a/b auth=configs."m.example.com" via /root/.docker/config.json`, []string{}},
		{"legacy ~/.dockercfg", map[string]string{"root/.dockercfg": fmt.Sprintf(`{"m.example.com": {"auth": %q}}`, mine)},
			`https://m.example.com/v2 mirror repo=ns/a/b auth=configs."m.example.com" via /root/.dockercfg`, []string{}},
		{"a credHelpers entry: the helper is asked", map[string]string{ours: `{"credHelpers": {"m.example.com": "pass"}, "auths": {"m.example.com": {"auth": "` + mine + `"}}}`},
			`https://m.example.com/v2 mirror repo=ns/a/b auth=docker-credential-pass (credHelpers."m.example.com", not checked) via /root/.config/containers/auth.json`, []string{}},
		{"registries.conf credential-helpers first", map[string]string{conf: "credential-helpers = [\"secretservice\", \"containers-auth.json\"]\n" + mirrorConf, ours: entry("m.example.com", mine)},
			`https://m.example.com/v2 mirror repo=ns/a/b auth=docker-credential-secretservice (not checked) via registries.conf credential-helpers`, []string{}},
		{"a file that is not JSON fails the source", map[string]string{runtime: "x-hunter2", ours: entry("m.example.com", mine)},
			`https://m.example.com/v2 mirror repo=ns/a/b`, []string{"FAIL auth_file_invalid", "FAIL auth_file_invalid"}}, // both sources
		{"an auth that is not base64 fails the source", map[string]string{ours: entry("m.example.com", "%%%")},
			`https://m.example.com/v2 mirror repo=ns/a/b`, []string{"FAIL auth_file_invalid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{conf: mirrorConf, "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"}
			for k, v := range tt.files {
				files[k] = v
			}
			rts := clientRoutes(t, mapFS(files), Detection{Engine: "containers"}, s, "quay.io/a/b")
			rt := rts[0]
			if len(rt.Routes) == 0 {
				t.Fatalf("no routes: %v", rt.Findings)
			}
			if got := ctLine(rt.Routes[0]); got != tt.want {
				t.Errorf("route\n got %s\nwant %s", got, tt.want)
			}
			if diff := cmp.Diff(tt.findings, causesOf(rt.Findings)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			out, _ := json.Marshal(rts)
			for _, secret := range []string{"correct-pw", "stale-pw", mine, old, "hunter2", `'x'`} {
				if strings.Contains(string(out), secret) {
					t.Errorf("the routing shows %q: %s", secret, out)
				}
			}
		})
	}
}
