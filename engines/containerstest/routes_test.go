package containerstest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/spec"
)

// TestRoutesMatchContainersImage generates registries.conf trees (the main
// file and drop-ins, some of which the library refuses) and root's auth
// files, and checks, for every tree and a set of image references, that the
// containers engine's routes are what containers/image computes on the same
// files: sysregistriesv2.FindRegistry of the name and
// PullSourcesFromReference (the sources in order), FindRegistry of each
// source's name for blocked, the source's insecure, and
// config.GetCredentialsForRef per source (the credentials the engine names
// must be the entry the library returns). MIRRORCTL_CROSSCHECK_N (trees,
// default 400) and MIRRORCTL_CROSSCHECK_SEED reproduce a run.
func TestRoutesMatchContainersImage(t *testing.T) {
	n, seed := envInt(t, "MIRRORCTL_CROSSCHECK_N", 400), envInt(t, "MIRRORCTL_CROSSCHECK_SEED", 1)
	var st stats
	for i := range n {
		r := rand.New(rand.NewPCG(uint64(seed), uint64(i)))
		tree := genTree(r)
		ok := t.Run(fmt.Sprintf("tree=%d", i), func(t *testing.T) { checkTree(t, tree, &st) })
		if !ok {
			t.Logf("reproduce: MIRRORCTL_CROSSCHECK_SEED=%d, tree %d:\n%s", seed, i, tree)
			if st.failed++; st.failed > 5 {
				t.Fatal("too many failures")
			}
		}
	}
	t.Logf("%d trees, %d references (and %d as CRI-O with a global_auth_file): %d refused files, %d failed rewrites, %d with a mirror, %d rewritten, %d insecure sources, %d blocked sources, %d all blocked, %d credentials found, %d lookups failing",
		n, st.cases, st.crio, st.refused, st.rewrite, st.mirrored, st.rewritten, st.insecure, st.blocked, st.allBlocked, st.creds, st.credErr)
	// The generator must reach every rule, or this test proves less than it says.
	for name, v := range map[string]int{"refused": st.refused, "rewrite": st.rewrite, "mirrored": st.mirrored, "rewritten": st.rewritten,
		"crio": st.crio, "insecure": st.insecure, "blocked": st.blocked, "allBlocked": st.allBlocked, "creds": st.creds, "credErr": st.credErr} {
		if v == 0 && n >= 100 {
			t.Errorf("no case of %s in %d trees", name, n)
		}
	}
}

type stats struct {
	cases, crio, refused, rewrite, mirrored, rewritten, insecure, blocked, allBlocked, creds, credErr, failed int
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// tree is a generated node: file contents by host path.
type tree map[string]string

func (tr tree) String() string {
	var b strings.Builder
	for _, p := range slices.Sorted(mapsKeys(tr)) {
		fmt.Fprintf(&b, "-- %s --\n%s\n", p, tr[p])
	}
	return b.String()
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

const (
	mainConf   = "/etc/containers/registries.conf"
	dropInDir  = "/etc/containers/registries.conf.d"
	runtimeRel = "run/containers/%d/auth.json"
)

var (
	prefixes  = []string{"", "", "docker.io", "docker.io/library", "docker.io/library/busybox", "quay.io", "quay.io/org", "*.example.com", "*.a.example.com", "reg.example.com:5000", "reg.example.com", "a.example.com", "mirror.example.net"}
	locations = []string{"", "docker.io", "docker.io/library", "quay.io", "quay.io/org", "mirror.example.net", "mirror.example.net/ns", "mirror.example.net:5000/a/b", "reg.example.com:5000", "a.example.com", "m2.example.org", "nodot/x"}
	mirrors   = []string{"m1.example.net", "m2.example.net:5000", "m3.example.net/hub", "mirror.example.net/ns", "localhost:5000", "quay.io", "reg.example.com:5000/cache"}
	pulls     = []string{"", "", "", "all", "digest-only", "tag-only"}
	images    = []string{"docker.io/library/busybox:latest", "docker.io/library/busybox@sha256:" + strings.Repeat("ab", 32), "docker.io/org/app:1",
		"quay.io/org/app:1", "quay.io/org/app@sha256:" + strings.Repeat("cd", 32), "quay.io/other/app:2", "a.example.com/x/y:1",
		"b.a.example.com/x:1", "example.com/x:1", "reg.example.com:5000/ns/app:2", "reg.example.com/x:1", "mirror.example.net/ns/x:1"}
	authHosts = []string{"docker.io", "quay.io", "m1.example.net", "m2.example.net:5000", "m3.example.net", "mirror.example.net", "localhost:5000", "reg.example.com:5000", "a.example.com"}
)

func pick[T any](r *rand.Rand, list []T) T { return list[r.IntN(len(list))] }

// genTree makes registries.conf, up to four drop-ins and root's auth files.
func genTree(r *rand.Rand) tree {
	tr := tree{"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"}
	tr[mainConf] = genConf(r)
	for _, name := range []string{"10-site.conf", "50-mirrorctl.conf", "60-override.conf", "shortnames.conf", "70-notconf.conf.bak"} {
		if r.IntN(3) == 0 {
			tr[path.Join(dropInDir, name)] = genConf(r)
		}
	}
	for _, f := range []struct {
		path   string
		legacy bool
	}{{"/run/containers/0/auth.json", false}, {"/root/.config/containers/auth.json", false}, {"/root/.docker/config.json", false}, {"/root/.dockercfg", true}} {
		if r.IntN(2) == 0 {
			tr[f.path] = genAuth(r, f.path, f.legacy)
		}
	}
	if r.IntN(2) == 0 { // CRI-O with a global_auth_file: that file only
		file := pick(r, []string{"/etc/crio/mirrorctl-auth.json", "/root/.config/containers/auth.json", "/run/containers/0/auth.json"})
		tr[crioDropIn] = fmt.Sprintf("[crio.image]\nglobal_auth_file = %q\n", file)
		if file == "/etc/crio/mirrorctl-auth.json" && r.IntN(4) > 0 {
			tr[file] = genAuth(r, file, false)
		}
	}
	return tr
}

const crioDropIn = "/etc/crio/crio.conf.d/50-mirrorctl.conf"

func genConf(r *rand.Rand) string {
	var b strings.Builder
	switch r.IntN(150) {
	case 0:
		return "[[registry]\n" // not TOML
	case 1:
		return "[registries.search]\nregistries = [\"docker.io\"]\n" // v1
	}
	if r.IntN(4) == 0 {
		fmt.Fprintf(&b, "unqualified-search-registries = [%q]\n", pick(r, []string{"docker.io", "quay.io"}))
	}
	if r.IntN(8) == 0 {
		b.WriteString("credential-helpers = [\"containers-auth.json\"]\n")
	}
	for range r.IntN(4) {
		b.WriteString("\n[[registry]]\n")
		key := "location"
		if r.IntN(25) == 0 {
			key = "Location" // decoders match keys without regard to case
		}
		p := pick(r, prefixes)
		if p != "" {
			fmt.Fprintf(&b, "prefix = %q\n", p)
		}
		loc := pick(r, locations[1:])
		if strings.HasPrefix(p, "*.") && r.IntN(2) == 0 || r.IntN(80) == 0 {
			loc = "" // only a wildcard prefix may go without a location
		}
		if r.IntN(200) == 0 {
			loc = "https://" + pick(r, locations) // refused: a scheme
		}
		if loc != "" {
			fmt.Fprintf(&b, "%s = %q\n", key, loc)
		}
		if r.IntN(8) == 0 {
			b.WriteString("insecure = true\n")
		}
		if r.IntN(10) == 0 {
			b.WriteString("blocked = true\n")
		}
		digestOnly := r.IntN(7) == 0
		if digestOnly {
			b.WriteString("mirror-by-digest-only = true\n")
		}
		for range r.IntN(4) {
			fmt.Fprintf(&b, "[[registry.mirror]]\nlocation = %q\n", pick(r, mirrors))
			if r.IntN(5) == 0 {
				b.WriteString("insecure = true\n")
			}
			if p := pick(r, pulls); p != "" && (!digestOnly || r.IntN(25) == 0) {
				fmt.Fprintf(&b, "pull-from-mirror = %q\n", p)
			}
			if r.IntN(12) == 0 {
				b.WriteString("namespace-proxy = \"quay.io\"\n")
			}
		}
	}
	return b.String()
}

// genAuth writes entries for random keys: hosts, namespaces, repositories
// and URL forms, mostly user:password, some that hold none, some tokens,
// rarely a value the library fails on. Keys that the library would only
// find by normalising are at most one per host (it picks among several at
// random).
func genAuth(r *rand.Rand, file string, legacy bool) string {
	if r.IntN(40) == 0 {
		return "{"
	}
	entries := map[string]map[string]string{}
	normalized := map[string]bool{}
	for i := range r.IntN(6) {
		h := pick(r, authHosts)
		var key string
		switch r.IntN(6) {
		case 0:
			key = h + "/" + pick(r, []string{"ns", "hub", "org", "library", "a"})
		case 1:
			key = h + "/" + pick(r, []string{"ns/x", "hub/library/busybox", "org/app", "library/busybox", "a/b/org/app"})
		case 2:
			key = "https://" + h + "/v1/"
			if h == "docker.io" {
				key = "https://index.docker.io/v1/"
			}
		case 3:
			if h == "docker.io" {
				key = pick(r, []string{"index.docker.io", "registry-1.docker.io"})
			} else {
				key = "http://" + h
			}
		default:
			key = h
		}
		if legacy || strings.Contains(key, "://") || strings.Contains(key, "index.docker.io") || strings.Contains(key, "registry-1.docker.io") {
			if normalized[h] {
				continue
			}
			normalized[h] = true
		}
		e := map[string]string{}
		switch r.IntN(12) {
		case 0:
			e["auth"] = base64.StdEncoding.EncodeToString([]byte("nocolon"))
		case 1:
			e["auth"] = base64.StdEncoding.EncodeToString([]byte("<token>:"))
			e["identitytoken"] = fmt.Sprintf("tok-%s-%d", path.Base(file), i)
		case 2:
			if r.IntN(3) == 0 {
				e["auth"] = "%%not base64"
				break
			}
			fallthrough
		default:
			e["auth"] = base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("u-%s-%d:p-%d", path.Base(file), i, i)))
		}
		entries[key] = e
	}
	var doc any = map[string]any{"auths": entries}
	if legacy {
		doc = entries
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return string(b)
}

// checkTree compares every image's routes in one tree.
func checkTree(t *testing.T, tr tree, st *stats) {
	root := t.TempDir()
	fsys := fstest.MapFS{}
	for p, data := range tr {
		disk := p
		if p == "/run/containers/0/auth.json" {
			disk = "/" + fmt.Sprintf(runtimeRel, os.Getuid()) // the library reads the caller's uid
		}
		full := filepath.Join(root, filepath.FromSlash(disk))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		fsys[engines.FSPath(p)] = &fstest.MapFile{Data: []byte(data), Mode: 0o644}
	}
	if err := os.MkdirAll(filepath.Join(root, dropInDir), 0o755); err != nil {
		t.Fatal(err)
	}
	// The library reads root's files under $HOME, and the runtime file
	// under RootForImplicitAbsolutePaths; nothing from the environment.
	t.Setenv("HOME", filepath.Join(root, "root"))
	for _, v := range []string{"XDG_CONFIG_HOME", "DOCKER_CONFIG", "XDG_RUNTIME_DIR", "REGISTRY_AUTH_FILE", "CONTAINERS_REGISTRIES_CONF"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	sys := &types.SystemContext{
		SystemRegistriesConfPath:     filepath.Join(root, mainConf),
		SystemRegistriesConfDirPath:  filepath.Join(root, dropInDir),
		RootForImplicitAbsolutePaths: root,
	}
	// CRI-O sets the library's AuthFilePath to its global_auth_file.
	var crio *types.SystemContext
	if conf, ok := tr[crioDropIn]; ok {
		file, _ := strconv.Unquote(strings.TrimSpace(strings.SplitN(conf, "=", 2)[1]))
		c := *sys
		c.AuthFilePath = filepath.Join(root, file)
		crio = &c
	}
	sysregistriesv2.InvalidateCache()
	for _, image := range images {
		st.cases++
		want := libraryRoutes(t, sys, image, st)
		got := engineRoutes(t, fsys, image, engines.Detection{Engine: "containers"})
		if got != want {
			t.Errorf("podman %s:\n engine  %s\n library %s", image, got, want)
		}
		if crio == nil {
			continue
		}
		st.crio++
		want = libraryRoutes(t, crio, image, &stats{})
		got = engineRoutes(t, fsys, image, engines.Detection{Engine: "containers", Unit: "crio.service"})
		if got != want {
			t.Errorf("crio %s:\n engine  %s\n library %s", image, got, want)
		}
	}
}

// libraryRoutes is what containers/image does, in the form engineRoutes
// prints: "FAIL cause" or the sources, "url [then-http] [repo=…] [ns=…]
// [creds user/password/token | creds-fail]", with "blocked" when every
// source is blocked.
func libraryRoutes(t *testing.T, sys *types.SystemContext, image string, st *stats) string {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := sysregistriesv2.FindRegistry(sys, ref.Name())
	if err != nil {
		st.refused++
		return "FAIL registries_conf_invalid"
	}
	if reg == nil {
		reg = &sysregistriesv2.Registry{Endpoint: sysregistriesv2.Endpoint{Location: ref.String()}, Prefix: ref.String()}
	}
	srcs, err := reg.PullSourcesFromReference(ref)
	if err != nil {
		st.rewrite++
		return "FAIL reference_rewrite_invalid"
	}
	var out []string
	blocked := 0
	for _, s := range srcs {
		phys := s.Reference
		if b, err := sysregistriesv2.FindRegistry(sys, phys.Name()); err != nil {
			t.Fatal(err)
		} else if b != nil && b.Blocked {
			blocked++
			st.blocked++
			continue
		}
		host := reference.Domain(phys)
		if host != reference.Domain(ref) {
			st.mirrored++
		}
		if host == "docker.io" {
			host = "registry-1.docker.io"
		}
		line := "https://" + host + "/v2"
		if s.Endpoint.Insecure {
			st.insecure++
			line += " then-http"
		}
		if p := reference.Path(phys); p != reference.Path(ref) {
			st.rewritten++
			line += " repo=" + p
		}
		if s.Endpoint.NamespaceProxy != "" {
			line += " ns=" + s.Endpoint.NamespaceProxy
		}
		creds, err := config.GetCredentialsForRef(sys, phys)
		switch {
		case err != nil:
			st.credErr++
			line += " creds-fail"
		case creds != (types.DockerAuthConfig{}):
			st.creds++
			line += fmt.Sprintf(" creds %s/%s/%s", creds.Username, creds.Password, creds.IdentityToken)
		}
		out = append(out, line)
	}
	if len(out) == 0 && blocked > 0 {
		st.allBlocked++
		return "FAIL registry_blocked"
	}
	return strings.Join(out, " | ")
}

// engineRoutes is the engine's routing for Podman as root, printed as
// libraryRoutes prints the library's; the credentials it names are read
// from the file and key it names.
func engineRoutes(t *testing.T, fsys fstest.MapFS, image string, d engines.Detection) string {
	img, err := engines.ParseImage(image)
	if err != nil {
		t.Fatal(err)
	}
	rts, err := engines.NewContainers().(engines.ClientRouter).ClientRoutes(context.Background(), img, engines.Host{FS: fsys}, d, &spec.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rts) != 1 {
		t.Fatalf("%d routings for one client", len(rts))
	}
	rt := rts[0]
	for _, f := range rt.Findings {
		switch f.Cause {
		case "registries_conf_invalid", "reference_rewrite_invalid", "registry_blocked":
			return "FAIL " + f.Cause
		}
	}
	credFail := map[string]bool{}
	for _, f := range rt.Findings {
		if f.Cause == "auth_file_invalid" {
			for _, r := range rt.Routes {
				if strings.Contains(f.Message, "for "+hostOf(r.URL)+" up") {
					credFail[r.URL] = true
				}
			}
		}
	}
	var out []string
	for _, r := range rt.Routes {
		line := r.URL
		if r.HTTPFallback {
			line += " then-http"
		}
		if r.Repository != "" {
			line += " repo=" + r.Repository
		}
		if r.Namespace != "" {
			line += " ns=" + r.Namespace
		}
		switch {
		case credFail[r.URL]:
			line += " creds-fail"
		case r.Auth != nil:
			line += " creds " + entryNamed(t, fsys, r.Auth)
		}
		out = append(out, line)
	}
	return strings.Join(out, " | ")
}

func hostOf(u string) string {
	h := strings.TrimSuffix(strings.TrimPrefix(u, "https://"), "/v2")
	if h == "registry-1.docker.io" {
		return "docker.io"
	}
	return h
}

// entryNamed reads the entry a RouteAuth names (`auths."key" (not the
// spec's)` via the file) and prints it as user/password/token.
func entryNamed(t *testing.T, fsys fstest.MapFS, a *engines.RouteAuth) string {
	rest, ok := strings.CutPrefix(a.Name, "auths.")
	if !ok {
		t.Fatalf("credentials named %q", a.Name)
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil {
		t.Fatalf("credentials named %q: %v", a.Name, err)
	}
	key, _ := strconv.Unquote(q)
	f := fsys[engines.FSPath(a.Via)]
	if f == nil {
		t.Fatalf("credentials via %q: no such file", a.Via)
	}
	var doc struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			IdentityToken string `json:"identitytoken"`
		} `json:"auths"`
	}
	if strings.HasSuffix(a.Via, ".dockercfg") {
		err = json.Unmarshal(f.Data, &doc.Auths)
	} else {
		err = json.Unmarshal(f.Data, &doc)
	}
	if err != nil {
		t.Fatal(err)
	}
	e := doc.Auths[key]
	raw, _ := base64.StdEncoding.DecodeString(e.Auth)
	user, pass, _ := strings.Cut(string(raw), ":")
	return fmt.Sprintf("%s/%s/%s", user, strings.Trim(pass, "\x00"), e.IdentityToken)
}
