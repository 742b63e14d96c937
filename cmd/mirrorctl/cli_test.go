package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/internal/hosttest"
	"github.com/mirrorctl/mirrorctl/systemd"
	"github.com/mirrorctl/mirrorctl/systemd/systemdtest"
)

// host is a scratch copy of testdata/demo/root (containerd 1.6 with a
// legacy mirrors block, Docker 20.10 with its own daemon.json, crictl) and a
// directory for specs and secrets beside it.
type host struct {
	t    testing.TB
	root string
	etc  string // spec directory (mirrorctl's own filesystem)
	rec  *systemdtest.Recorder
	// healthy, when set, judges health for tests that exercise activation
	// with the D-Bus recorder; nil runs the real checks against the root.
	healthy func(engine string) error
	specs   int
	// now is mirrorctl's clock; nil stops it when the tests began, so that
	// nothing a test writes is settled enough for a no-op record (tests of
	// the record move it on).
	now func() time.Time
}

// testsBegan is when this test binary started.
var testsBegan = time.Now()

func newHost(t testing.TB) *host {
	t.Helper()
	h := &host{t: t, root: filepath.Join(t.TempDir(), "root"), etc: t.TempDir(), rec: &systemdtest.Recorder{}}
	hosttest.CopyTree(t, "../../testdata/demo/root", h.root)
	hosttest.CopyTree(t, "../../testdata/demo/certs", filepath.Join(h.etc, "certs"))
	h.write("secrets/nexus-password", "s3cret-Pässword $1\n")
	return h
}

func (h *host) write(rel, data string) string {
	h.t.Helper()
	p := filepath.Join(h.etc, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// run runs mirrorctl with --root and the recorder as systemd.
func (h *host) run(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	g := &globalFlags{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}
	g.dial = func(context.Context) (systemd.Bus, error) { return h.rec, nil }
	g.now = h.now
	if g.now == nil {
		g.now = func() time.Time { return testsBegan }
	}
	if h.healthy != nil {
		g.health = func(_ context.Context, _ *hostfs.Root, a engines.Activation) error { return h.healthy(a.Engine) }
	}
	code = runWith(context.Background(), g, append([]string{"--root", h.root}, args...))
	return code, out.String(), errb.String()
}

// snapshot maps every file under the root to its mode and content hash.
func (h *host) snapshot() map[string]string {
	h.t.Helper()
	// The lock file is mirrorctl's own and holds no content.
	return hosttest.Snapshot(h.t, h.root, func(rel string) bool { return rel == "var/lib/mirrorctl/lock" })
}

// ownership is state.json without the record of the last sync: what
// mirrorctl owns and owes, which a failed sync or a rollback must put back
// exactly (the record of the failure is new).
func (h *host) ownership() string {
	h.t.Helper()
	var st map[string]json.RawMessage
	if err := json.Unmarshal([]byte(h.read("/var/lib/mirrorctl/state.json")), &st); err != nil {
		h.t.Fatal(err)
	}
	delete(st, "last")
	b, _ := json.Marshal(st)
	return string(b)
}

func (h *host) read(hostPath string) string {
	h.t.Helper()
	return hosttest.Read(h.t, h.root, hostPath)
}

// spec writes a spec from the demo's shape with the given docker.io mirror,
// ghcr.io mirror and username.
func (h *host) spec(hubMirror, ghcrMirror, user string) string {
	h.specs++
	return h.write(fmt.Sprintf("spec-%d.yaml", h.specs), `mirrors:
  docker.io:
    endpoint: ["`+hubMirror+`"]
  ghcr.io:
    endpoint: ["`+ghcrMirror+`"]
configs:
  nexus.example.internal:
    auth:
      username: `+user+`
      password_file: secrets/nexus-password
  nexus.example.internal:8443:
    tls:
      ca_file: certs/nexus-ca.crt
engines:
  docker:
    auth_users: [root]
`)
}

func (h *host) calls() []systemdtest.Call {
	c := h.rec.Calls
	h.rec.Calls = nil
	return c
}

func call(verb, unit string) systemdtest.Call { return systemdtest.Call{Verb: verb, Unit: unit} }

func TestSyncActivatesOnlyWhatChanged(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	const hub, ghcr = "https://nexus.example.internal:8443", "https://nexus.example.internal/repository/docker-group/v2"
	specA := h.spec(hub, ghcr, "puller")

	steps := []struct {
		name      string
		spec      string
		wantCalls []systemdtest.Call
		wantOut   string
	}{
		{"first_sync_restarts_containerd_reloads_docker", specA,
			[]systemdtest.Call{call("try-restart", "containerd.service"), call("reload", "docker.service")}, "wrote "},
		{"same_spec_writes_and_restarts_nothing", specA, nil, "nothing to change"},
		{"hosts_toml_only_change_restarts_nothing", h.spec(hub, "https://ghcr-mirror.example.internal", "puller"), nil, "wrote "},
		{"credential_change_restarts_containerd_once", h.spec(hub, "https://ghcr-mirror.example.internal", "puller2"),
			[]systemdtest.Call{call("try-restart", "containerd.service")}, "wrote "},
		{"hub_mirror_change_reloads_docker_only", h.spec("https://hub-mirror.example.internal", "https://ghcr-mirror.example.internal", "puller2"),
			[]systemdtest.Call{call("reload", "docker.service")}, "wrote "},
	}
	for _, s := range steps {
		code, out, errOut := h.run("", "--config", s.spec, "sync", "--adopt")
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s%s", s.name, code, out, errOut)
		}
		if !strings.Contains(out, s.wantOut) {
			t.Errorf("%s: output lacks %q:\n%s", s.name, s.wantOut, out)
		}
		if d := cmp.Diff(s.wantCalls, h.calls()); d != "" {
			t.Errorf("%s: systemd calls (-want +got):\n%s", s.name, d)
		}
	}
}

func TestSyncRollsBackWhenTheRestartFails(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "puller")
	if code, out, errOut := h.run("", "--config", spec, "sync", "--adopt"); code != exitOK {
		t.Fatalf("first sync: exit %d\n%s%s", code, out, errOut)
	}
	h.calls()
	before, owned := h.snapshot(), h.ownership()
	h.rec.Results = map[string][]string{"containerd.service": {"failed"}}
	h.rec.States = map[string]systemd.UnitState{"containerd.service": {LoadState: "loaded", ActiveState: "active", Result: "exit-code"}}
	code, _, errOut := h.run("", "--config", h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "other-user"), "sync")
	if code != exitHealth {
		t.Fatalf("exit %d, want %d\n%s", code, exitHealth, errOut)
	}
	if !strings.Contains(errOut, "containerd is unhealthy after the change") || !strings.Contains(errOut, "previous files were restored") {
		t.Errorf("stderr does not say what happened:\n%s", errOut)
	}
	// The restart that failed is undone with a plain restart: the unit ran
	// before, and the failed restart may have left it stopped.
	want := []systemdtest.Call{call("try-restart", "containerd.service"), call("restart", "containerd.service")}
	if d := cmp.Diff(want, h.calls()); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
	after := h.snapshot()
	for path, v := range before {
		if strings.HasPrefix(path, "var/lib/mirrorctl/backups/") || path == "var/lib/mirrorctl/state.json" {
			continue // the backup sets grow; state.json records the failure
		}
		if after[path] != v {
			t.Errorf("%s not restored: %s -> %s", path, v, after[path])
		}
	}
	if got := h.ownership(); got != owned {
		t.Errorf("ownership not restored:\n%s\nwant\n%s", got, owned)
	}
}

func TestSyncRetriesOnceAfterStartLimitHit(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	h.rec.Results = map[string][]string{"containerd.service": {"failed"}}
	h.rec.States = map[string]systemd.UnitState{"containerd.service": {LoadState: "loaded", ActiveState: "failed", Result: "start-limit-hit"}}
	code, out, errOut := h.run("", "--config", h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u"), "sync", "--adopt", "--engines", "containerd")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	// The unit is already failed: try-restart would do nothing, so restart.
	want := []systemdtest.Call{call("restart", "containerd.service"), call("reset-failed", "containerd.service"), call("restart", "containerd.service")}
	if d := cmp.Diff(want, h.calls()); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
}

// The real health check, with no containerd answering under the root, must
// fail and put every file back.
func TestRealHealthCheckFailureRestoresFiles(t *testing.T) {
	h := newHost(t)
	before := h.snapshot()
	code, _, errOut := h.run("", "--config", h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u"),
		"sync", "--adopt", "--engines", "containerd", "--health-timeout", "300ms")
	if code != exitHealth {
		t.Fatalf("exit %d, want %d\n%s", code, exitHealth, errOut)
	}
	if !strings.Contains(errOut, "does not answer") {
		t.Errorf("stderr lacks the health failure:\n%s", errOut)
	}
	after := h.snapshot()
	for path, v := range before {
		if after[path] != v {
			t.Errorf("%s not restored", path)
		}
	}
}

func TestPlanExitCodeAndIdempotence(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	if code, _, errOut := h.run("", "--config", spec, "plan", "--exit-code"); code != exitPending {
		t.Fatalf("plan before sync: exit %d, want %d\n%s", code, exitPending, errOut)
	}
	if code, _, errOut := h.run("", "--config", spec, "sync", "--adopt"); code != exitOK {
		t.Fatalf("sync: exit %d\n%s", code, errOut)
	}
	before := h.snapshot()
	if code, out, errOut := h.run("", "--config", spec, "plan", "--exit-code"); code != exitOK {
		t.Fatalf("plan after sync: exit %d\n%s%s", code, out, errOut)
	}
	h.calls()
	if code, out, _ := h.run("", "--config", spec, "sync"); code != exitOK || !strings.Contains(out, "nothing to change") {
		t.Fatalf("second sync: exit %d: %s", code, out)
	}
	if d := cmp.Diff(before, h.snapshot()); d != "" {
		t.Errorf("second sync changed files:\n%s", d)
	}
	if c := h.calls(); len(c) != 0 {
		t.Errorf("second sync called systemd: %v", c)
	}
}

func TestConflictsAreLeftAlone(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	handMade := "# made by hand\nserver = \"https://ghcr.io\"\n[host.\"https://my-own-mirror.internal\"]\n  capabilities = [\"pull\"]\n"
	p := filepath.Join(h.root, "etc/containerd/certs.d/ghcr.io/hosts.toml")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(handMade), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := h.run("", "--config", h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u"), "sync")
	if code != exitConflict {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitConflict, out, errOut)
	}
	if got := h.read("/etc/containerd/certs.d/ghcr.io/hosts.toml"); got != handMade {
		t.Errorf("hand-made hosts.toml changed:\n%s", got)
	}
	if !strings.Contains(out, "conflict: /etc/containerd/certs.d/ghcr.io/hosts.toml") {
		t.Errorf("conflict not reported:\n%s", out)
	}
	// The foreign keys of daemon.json survive the merge.
	var daemon map[string]any
	if err := json.Unmarshal([]byte(h.read("/etc/docker/daemon.json")), &daemon); err != nil {
		t.Fatal(err)
	}
	if daemon["log-driver"] != "journald" || daemon["storage-driver"] != "overlay2" {
		t.Errorf("foreign daemon.json keys lost: %v", daemon)
	}
}

func TestRollbackRestoresThePreviousSet(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	specA := h.spec("https://nexus.example.internal:8443", "https://a.example.internal", "u")
	specB := h.spec("https://nexus.example.internal:8443", "https://b.example.internal", "u")
	if code, _, e := h.run("", "--config", specA, "sync", "--adopt"); code != exitOK {
		t.Fatal(e)
	}
	afterA, ownedA := h.snapshot(), h.ownership()
	if code, _, e := h.run("", "--config", specB, "sync"); code != exitOK {
		t.Fatal(e)
	}
	h.calls()
	code, out, errOut := h.run("", "--config", specB, "rollback")
	if code != exitOK {
		t.Fatalf("rollback: exit %d\n%s%s", code, out, errOut)
	}
	for path, v := range afterA {
		if strings.HasPrefix(path, "var/lib/mirrorctl/backups/") || path == "var/lib/mirrorctl/state.json" {
			continue
		}
		if got := h.snapshot()[path]; got != v {
			t.Errorf("%s after rollback: %s, want %s", path, got, v)
		}
	}
	if got := h.ownership(); got != ownedA {
		t.Errorf("ownership after rollback:\n%s\nwant\n%s", got, ownedA)
	}
	// Only hosts.toml changed between A and B: the rollback restarts nothing.
	if c := h.calls(); len(c) != 0 {
		t.Errorf("rollback of a hosts.toml change called systemd: %v", c)
	}
	code, out, _ = h.run("", "--config", specA, "--output", "json", "rollback")
	var rolled map[string]any
	if err := json.Unmarshal([]byte(out), &rolled); code != exitOK || err != nil {
		t.Errorf("rollback --output json: exit %d, %v:\n%s", code, err, out)
	}
	code, out, _ = h.run("", "backups")
	if code != exitOK || strings.Count(out, "\n") < 4 || !strings.Contains(out, "rollback to ") {
		t.Errorf("backups listing:\n%s", out)
	}
}

func TestAuthEncode(t *testing.T) {
	h := newHost(t)
	code, out, errOut := h.run("pa:ss $wörd\n", "auth", "encode", "user")
	if code != exitOK || out != "dXNlcjpwYTpzcyAkd8O2cmQ=" {
		t.Fatalf("exit %d, out %q, err %q", code, out, errOut)
	}
	if code, _, _ := h.run("", "auth", "encode", "user"); code != exitInput {
		t.Errorf("empty password: exit %d, want %d", code, exitInput)
	}
}

// A Docker-style certs.d/<host>/ directory made by hand (a CA, no hosts.toml)
// is not taken over: writing hosts.toml there would stop containerd reading
// the user's *.crt files.
func TestForeignRegistryDirectoryIsAConflict(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	ca := filepath.Join(h.root, "etc/containerd/certs.d/ghcr.io/ca.crt")
	if err := os.MkdirAll(filepath.Dir(ca), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, []byte("user CA\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := h.run("", "--config", h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u"), "sync")
	if code != exitConflict || !strings.Contains(out, "ghcr.io holds ca.crt, which mirrorctl did not write") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(h.root, "etc/containerd/certs.d/ghcr.io/hosts.toml")); !os.IsNotExist(err) {
		t.Errorf("hosts.toml written into the user's directory (err=%v)", err)
	}
	// The other registries were applied.
	if _, err := os.Stat(filepath.Join(h.root, "etc/containerd/certs.d/docker.io/hosts.toml")); err != nil {
		t.Errorf("docker.io hosts.toml not written: %v", err)
	}
}

// At boot mirrorctl-sync.service runs before the engines: a stopped unit is
// neither restarted nor health-checked (the real check would wait for a
// socket that cannot appear), and the sync succeeds.
func TestSyncLeavesStoppedEnginesAlone(t *testing.T) {
	h := newHost(t)
	stopped := systemd.UnitState{LoadState: "loaded", ActiveState: "inactive", Result: "success"}
	h.rec.States = map[string]systemd.UnitState{"containerd.service": stopped, "docker.service": stopped}
	code, out, errOut := h.run("", "--config", h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u"),
		"sync", "--adopt", "--health-timeout", "30s")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if c := h.calls(); len(c) != 0 {
		t.Errorf("systemd calls for stopped units: %v", c)
	}
	for _, want := range []string{"not running: containerd containerd.service", "not running: docker docker.service"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// Docker 29 with the containerd image store reads hosts.toml for every
// registry under /etc/docker/certs.d. A directory there made by hand (a
// CA, no hosts.toml) is not taken over either: with a hosts.toml, dockerd
// would stop reading the user's *.crt files. The other registries are
// written, and detect says which store it found.
func TestDockerContainerdStoreForeignDirectoryIsAConflict(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	dockerd := filepath.Join(h.root, "usr/sbin/dockerd")
	if err := os.WriteFile(dockerd, []byte("#!/bin/sh\necho 'Docker version 29.8.0, build 1'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The demo's daemon.json names overlay2, which keeps the classic store.
	daemon := filepath.Join(h.root, "etc/docker/daemon.json")
	if err := os.WriteFile(daemon, []byte(`{"log-driver": "journald"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(h.root, "etc/docker/certs.d/ghcr.io/ca.crt")
	if err := os.MkdirAll(filepath.Dir(ca), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, []byte("user CA\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	if code, out, errOut := h.run("", "--config", spec, "detect"); code != 0 || !strings.Contains(out, "image store containerd") {
		t.Fatalf("detect: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := h.run("", "--config", spec, "sync")
	if code != exitConflict || !strings.Contains(out, "/etc/docker/certs.d/ghcr.io holds ca.crt, which mirrorctl did not write") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(h.root, "etc/docker/certs.d/ghcr.io/hosts.toml")); !os.IsNotExist(err) {
		t.Errorf("hosts.toml written into the user's directory (err=%v)", err)
	}
	if got := h.read("/etc/docker/certs.d/docker.io/hosts.toml"); !strings.Contains(got, `[host."https://nexus.example.internal:8443/v2"]`) {
		t.Errorf("docker.io hosts.toml:\n%s", got)
	}
}
