package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/engines"
)

var update = flag.Bool("update", false, "rewrite doctor/testdata/golden/*")

// TestGoldenOutput runs doctor on a node with containerd 2.4 and dockerd
// 20.10 (classic store) against mirrors with typical faults, and compares
// the text and JSON reports with testdata/golden. Loopback ports are
// replaced by fixed ones of the same length; the clock is fixed, so no
// duration appears. `go test ./doctor -update` rewrites the goldens.
func TestGoldenOutput(t *testing.T) {
	var servers []string
	add := func(h string) string { servers = append(servers, h); return h }
	basic := add(serve(t, &fakeRegistry{t: t, auth: "basic", user: "testuser", pass: testPass, repos: map[string]bool{"library/test": true}}))
	realm := add(serve(t, &fakeRealm{user: "testuser", pass: testPass, anon: "deny"}))
	bearer := add(serve(t, &fakeRegistry{t: t, auth: "bearer", realm: "http://" + realm + "/token", repos: map[string]bool{"library/test": true}}))
	nexus := add(serve(t, &fakeRegistry{t: t, auth: "none", root: "/repository/hub/v2", repos: map[string]bool{"library/test": true}}))
	closed := add(closedPort(t))

	n := newNode(t)
	s := n.parse(fmt.Sprintf(`mirrors:
  docker.io:
    endpoint: ["http://%[4]s", "http://%[3]s/repository/hub/v2"]
  registry.example.invalid:
    endpoint: ["http://%[1]s"]
  quay.io:
    endpoint: ["http://%[3]s/repository/hub"]
  ghcr.io:
    endpoint: ["http://%[2]s"]
configs:
  %[1]q:
    auth: {username: testuser, password: %[5]q}
engines:
  docker: {enabled: true}
`, basic, bearer, nexus, closed, testPass))
	ctrd := containerdAt("2.4.2")
	dock := engines.Detection{Engine: "docker", Version: "20.10.24", Found: true, Managed: true}
	fsys := n.synced(engines.NewContainerd(), ctrd, nil)
	for p, f := range n.synced(engines.NewDocker(), dock, nil) {
		fsys[p] = f
	}
	imgs, err := DefaultImages(s, "library/test:latest")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{Spec: s, Images: imgs, Resolve: noDaemon, Proxy: noProxy,
		Now: func() time.Time { return fixedNow }, ProbeTimeout: 10 * time.Second,
		Targets: []Target{
			{Engine: engines.NewContainerd(), Detection: ctrd, Host: engines.Host{FS: fsys}},
			{Engine: engines.NewDocker(), Detection: dock, Host: engines.Host{FS: fsys}, Changes: 1},
		}})
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for i, h := range servers {
		ports = append(ports, h, fmt.Sprintf("127.0.0.1:%d", 50001+i))
	}
	norm := strings.NewReplacer(ports...)
	var text, js bytes.Buffer
	if err := WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(&js)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{"report.txt": norm.Replace(text.String()), "report.json": norm.Replace(js.String())} {
		file := filepath.Join("testdata", "golden", name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%v (run go test ./doctor -update)", err)
		}
		if diff := cmp.Diff(string(want), got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	if rep.OK || rep.ExitCode() != 1 {
		t.Errorf("a report with failures must exit 1: OK=%v", rep.OK)
	}
}
