package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/internal/hosttest"
	"github.com/mirrorctl/mirrorctl/systemd"
	"github.com/mirrorctl/mirrorctl/systemd/systemdtest"
)

// The tests of issue 10: one pipeline, nothing lost.

// Removing a registry's credentials removes mirrorctl's auths entry from
// root's config.json, and nothing else: the user's own entry, the file and
// ~/.docker stay.
func TestMergedFilesKeepTheUsersEntries(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	with := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "puller")
	if code, out, errOut := h.run("", "--config", with, "sync", "--adopt"); code != exitOK {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(h.read("/root/.docker/config.json"), "nexus.example.internal") {
		t.Fatal("the credentials were not written")
	}
	without := h.write("no-creds.yaml", `mirrors:
  docker.io:
    endpoint: ["https://nexus.example.internal:8443"]
engines:
  docker:
    auth_users: [root]
`)
	if code, out, errOut := h.run("", "--config", without, "sync"); code != exitOK {
		t.Fatalf("sync without credentials: exit %d\n%s%s", code, out, errOut)
	}
	var cfg struct {
		Auths map[string]any `json:"auths"`
	}
	if err := json.Unmarshal([]byte(h.read("/root/.docker/config.json")), &cfg); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	if _, ours := cfg.Auths["nexus.example.internal"]; ours || cfg.Auths["registry.internal.example"] == nil {
		t.Errorf("auths after the credentials went: %v; want only the user's registry.internal.example", cfg.Auths)
	}
	// daemon.json keeps its own keys through every sync.
	var daemon map[string]any
	json.Unmarshal([]byte(h.read("/etc/docker/daemon.json")), &daemon)
	if daemon["log-driver"] != "journald" || !slices.Contains(toStrings(daemon["insecure-registries"]), "10.20.0.0/16") {
		t.Errorf("daemon.json lost the user's keys: %v", daemon)
	}
}

func toStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// A user dropped from auth_users keeps their config.json, without
// mirrorctl's entry.
func TestDroppedAuthUserKeepsTheirFile(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	spec := func(users string) string {
		return h.write("users-"+users+".yaml", `mirrors:
  docker.io:
    endpoint: ["https://nexus.example.internal:8443"]
configs:
  nexus.example.internal:8443:
    auth: {username: u, password_file: secrets/nexus-password}
engines:
  docker:
    auth_users: [`+users+`]
`)
	}
	if code, out, errOut := h.run("", "--config", spec("root"), "sync", "--adopt"); code != exitOK {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := h.run("", "--config", spec(""), "sync"); code != exitOK {
		t.Fatalf("sync without root: exit %d\n%s%s", code, out, errOut)
	}
	got := h.read("/root/.docker/config.json")
	if strings.Contains(got, "nexus.example.internal") || !strings.Contains(got, "registry.internal.example") {
		t.Errorf("root's config.json after root left auth_users:\n%s", got)
	}
}

// A custom daemon.json path (engines.docker.daemon_json) is what the health
// check expects mirrors from; moving it gives back the old file with its
// other keys.
func TestCustomDaemonJSONHealthAndMove(t *testing.T) {
	h := newHost(t)
	var probed [][]string
	g := func(a engines.Activation) error {
		if a.Probe.Docker != nil {
			probed = append(probed, a.Probe.Docker.Mirrors)
		}
		return nil
	}
	spec := func(path string) string {
		return h.write(filepath.Base(path)+".yaml", `mirrors:
  docker.io:
    endpoint: ["https://nexus.example.internal:8443"]
engines:
  docker:
    daemon_json: `+path+`
`)
	}
	custom := filepath.Join(h.root, "etc/docker/custom.json")
	if err := os.WriteFile(custom, []byte(`{"log-level": "warn"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := h.runWithHealth(g, "--config", spec("/etc/docker/custom.json"), "sync", "--engines", "docker")
	if code != exitOK {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	if want := [][]string{{"https://nexus.example.internal:8443/"}}; !cmp.Equal(probed, want) {
		t.Errorf("health expected mirrors %q, want %q (from %s)", probed, want, custom)
	}
	// Back to the default path: custom.json loses only mirrorctl's key.
	if code, out, errOut := h.runWithHealth(g, "--config", spec("/etc/docker/daemon.json"), "sync", "--engines", "docker"); code != exitOK {
		t.Fatalf("sync back: exit %d\n%s%s", code, out, errOut)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(h.read("/etc/docker/custom.json")), &got); err != nil {
		t.Fatal(err)
	}
	if _, still := got["registry-mirrors"]; still || got["log-level"] != "warn" {
		t.Errorf("custom.json after the move: %v; want the user's log-level only", got)
	}
}

// runWithHealth is run with a health check that sees each activation.
func (h *host) runWithHealth(health func(engines.Activation) error, args ...string) (int, string, string) {
	var out, errb strings.Builder
	g := &globalFlags{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	g.dial = h.dialRecorder
	g.health = func(_ context.Context, _ *hostfs.Root, a engines.Activation) error { return health(a) }
	code := runWith(context.Background(), g, append([]string{"--root", h.root}, args...))
	return code, out.String(), errb.String()
}

// The files as they were before mirrorctl survive any number of failing
// syncs (which never push the good sets out either), and `rollback
// --baseline` puts them back.
func TestBaselineSurvivesFailingSyncs(t *testing.T) {
	h := newHost(t)
	before := h.snapshot()
	h.healthy = func(string) error { return nil }
	if code, out, errOut := h.run("", "--config", h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u"), "sync", "--adopt"); code != exitOK {
		t.Fatalf("good sync: exit %d\n%s%s", code, out, errOut)
	}
	h.healthy = func(engine string) error {
		if engine == "containerd" {
			return errors.New("CRI plugin failed to load")
		}
		return nil
	}
	for i := range 20 {
		// Each failing sync changes config.toml (a new password), so each
		// takes a backup set and restarts containerd, which fails.
		spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "user-"+string(rune('a'+i)))
		code, out, errOut := h.run("", "--config", spec, "--engines", "containerd", "sync")
		if code != exitHealth {
			t.Fatalf("failing sync %d: exit %d\n%s%s", i, code, out, errOut)
		}
		if strings.Contains(out, "nothing to change") {
			t.Fatalf("a failed sync says nothing to change:\n%s", out)
		}
		if i == 0 {
			code, out, _ := h.run("", "--config", spec, "--output", "json", "--engines", "containerd", "sync")
			var j jsonSync
			if err := json.Unmarshal([]byte(out), &j); err != nil || code != exitHealth || j.Error == "" || j.ExitCode != exitHealth {
				t.Errorf("JSON of a failed sync: exit %d, %+v, %v\n%s", code, j, err, out)
			}
		}
	}
	code, out, _ := h.run("", "backups", "--output", "json")
	var sets []struct {
		ID     string `json:"id"`
		Failed bool   `json:"failed"`
	}
	if err := json.Unmarshal([]byte(out), &sets); code != exitOK || err != nil {
		t.Fatalf("backups: exit %d, %v", code, err)
	}
	good := 0
	for _, s := range sets {
		if !s.Failed && s.ID != "baseline" {
			good++
		}
	}
	if good != 1 {
		t.Errorf("%d good sets kept after 20 failures, want the one good sync's", good)
	}
	h.healthy = func(string) error { return nil }
	if code, out, errOut := h.run("", "rollback", "--baseline"); code != exitOK {
		t.Fatalf("rollback --baseline: exit %d\n%s%s", code, out, errOut)
	}
	after := h.snapshot()
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s after rollback --baseline: %s, want %s", p, after[p], v)
		}
	}
	for p := range after {
		if _, had := before[p]; !had && !strings.HasPrefix(p, "var/lib/mirrorctl/") {
			t.Errorf("%s remains after rollback --baseline; it did not exist before mirrorctl", p)
		}
	}
}

// A restart left undone by --no-restart is remembered: plan and status
// show it, and the next sync performs it though no file changes.
func TestPendingRestartIsPerformedLater(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	code, out, errOut := h.run("", "--config", spec, "--no-restart", "sync", "--adopt")
	if code != exitOK || !strings.Contains(out, "pending: containerd restart") {
		t.Fatalf("sync --no-restart: exit %d\n%s%s", code, out, errOut)
	}
	if c := h.calls(); len(c) != 0 {
		t.Fatalf("--no-restart called systemd: %v", c)
	}
	// Still owed, and from the same time: another --no-restart run
	// writes nothing.
	before := statTree(t, h.root)
	if code, out, errOut := h.run("", "--config", spec, "--no-restart", "sync"); code != exitOK {
		t.Fatalf("second sync --no-restart: exit %d\n%s%s", code, out, errOut)
	}
	if d := cmp.Diff(before, statTree(t, h.root)); d != "" {
		t.Errorf("a second sync --no-restart with nothing to change wrote (-before +after):\n%s", d)
	}
	code, out, _ = h.run("", "--config", spec, "plan", "--exit-code")
	if code != exitPending || !strings.Contains(out, "owed from an earlier sync: restart containerd.service") {
		t.Errorf("plan after --no-restart: exit %d\n%s", code, out)
	}
	if code, out, _ := h.run("", "--config", spec, "status"); code != exitOK || !strings.Contains(out, "containerd: restart containerd.service") {
		t.Errorf("status after --no-restart: exit %d\n%s", code, out)
	}
	code, out, errOut = h.run("", "--config", spec, "sync")
	if code != exitOK {
		t.Fatalf("next sync: exit %d\n%s%s", code, out, errOut)
	}
	want := []systemdtest.Call{call("try-restart", "containerd.service"), call("reload", "docker.service")}
	if d := cmp.Diff(want, h.calls()); d != "" {
		t.Errorf("the next sync's calls (-want +got):\n%s", d)
	}
	if code, out, _ := h.run("", "--config", spec, "plan", "--exit-code"); code != exitOK {
		t.Errorf("plan after the owed restart: exit %d\n%s", code, out)
	}
}

// A restart owed by --no-restart and then done by hand (the daemons run
// with the files) is forgotten, not done again: plan reports nothing to
// do, and sync calls nothing and clears it from state.json. A daemon that
// was running before the files were written still owes it.
func TestOwedRestartDoneByHandIsForgotten(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	sockets := []string{filepath.Join(h.root, "run/containerd/containerd.sock"), filepath.Join(h.root, "run/docker.sock")}
	for _, s := range sockets {
		if err := os.MkdirAll(filepath.Dir(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Daemons running before the sync: this process listens.
	for _, s := range sockets {
		hosttest.Listen(t, s)
	}
	if code, out, errOut := h.run("", "--config", spec, "--no-restart", "sync", "--adopt"); code != exitOK || !strings.Contains(out, "pending: containerd restart") {
		t.Fatalf("sync --no-restart: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := h.run("", "--config", spec, "plan", "--exit-code"); code != exitPending {
		t.Fatalf("plan with the daemons not restarted: exit %d, want %d\n%s", code, exitPending, out)
	}

	// Restarted by hand: new processes listen. The kernel keeps a start
	// time in clock ticks (10 ms): a daemon started within the tick the
	// restart became owed cannot be told from one started before, so it
	// starts a few ticks later, as any restart by hand does.
	time.Sleep(30 * time.Millisecond)
	for _, s := range sockets {
		if err := os.Remove(s); err != nil {
			t.Fatal(err)
		}
	}
	hosttest.StartDaemon(t, sockets...)
	code, out, errOut := h.run("", "--config", spec, "plan", "--exit-code")
	if code != exitOK || !strings.Contains(errOut+out, "was done outside mirrorctl") {
		t.Errorf("plan after the restart by hand: exit %d, want %d\n%s%s", code, exitOK, out, errOut)
	}
	if code, out, errOut := h.run("", "--config", spec, "sync"); code != exitOK {
		t.Fatalf("sync after the restart by hand: exit %d\n%s%s", code, out, errOut)
	}
	if c := h.calls(); len(c) != 0 {
		t.Errorf("sync restarted what was done by hand: %v", c)
	}
	var st struct {
		Pending []map[string]any `json:"pending"`
	}
	if err := json.Unmarshal([]byte(hosttest.Read(t, h.root, "/var/lib/mirrorctl/state.json")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Pending) != 0 {
		t.Errorf("state.json still owes: %v", st.Pending)
	}
}

// A sync with nothing to do writes nothing: no file under the root
// changes, mirrorctl's own included.
func TestNoOpSyncWritesNothing(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	if code, out, errOut := h.run("", "--config", spec, "sync", "--adopt"); code != exitOK {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	before := statTree(t, h.root)
	if code, out, errOut := h.run("", "--config", spec, "sync"); code != exitOK || !strings.Contains(out, "nothing to change") {
		t.Fatalf("second sync: exit %d\n%s%s", code, out, errOut)
	}
	if d := cmp.Diff(before, statTree(t, h.root)); d != "" {
		t.Errorf("a no-op sync changed files (-before +after):\n%s", d)
	}
}

// statTree maps every entry under root to its inode, size and change time:
// a rewrite changes the inode (rename), a write the change time.
func statTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscallStat)
		rel, _ := filepath.Rel(root, p)
		out[rel] = statLine(st, info.Size())
		return nil
	})
	return out
}

// An empty spec, or one with every engine switched off, changes nothing on
// a node mirrorctl never touched.
func TestEmptySpecChangesNothing(t *testing.T) {
	for name, body := range map[string]string{
		"no registries": "mirrors: {}\n",
		"engines off":   "mirrors:\n  docker.io: {endpoint: [m.example.com]}\nengines:\n  containerd: {enabled: false}\n  docker: {enabled: false}\n  k3s: {enabled: false}\n  crictl: {enabled: false}\n",
	} {
		t.Run(name, func(t *testing.T) {
			h := newHost(t)
			before := h.snapshot()
			code, out, errOut := h.run("", "--config", h.write("empty.yaml", body), "sync")
			if code != exitOK {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			after := h.snapshot()
			if d := cmp.Diff(before, after); d != "" {
				t.Errorf("files changed (-before +after):\n%s", d)
			}
			if _, err := os.Stat(filepath.Join(h.root, "etc/crictl.yaml")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("crictl.yaml created: %v", err)
			}
		})
	}
}

// Any registries.yaml k3s takes is a valid spec: duplicate endpoints are
// de-duplicated with a warning, and a path that is probably a web UI path
// is named with the URL engines will request.
func TestK3sRegistriesYAMLIsAValidSpec(t *testing.T) {
	h := newHost(t)
	spec := h.write("k3s.yaml", `mirrors:
  docker.io:
    endpoint:
      - "https://nexus.example.internal:8443"
      - "nexus.example.internal:8443"
  ghcr.io:
    endpoint:
      - "https://nexus.example.internal:8443/repository/ghcr-proxy/"
`)
	code, out, errOut := h.run("", "--config", spec, "validate")
	if code != exitOK {
		t.Fatalf("validate: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		`endpoint "nexus.example.internal:8443" is the same as "https://nexus.example.internal:8443"`,
		"request https://nexus.example.internal:8443/repository/ghcr-proxy/<repository>/manifests/<tag>",
		"usually serves https://nexus.example.internal:8443/repository/ghcr-proxy/v2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate lacks %q:\n%s", want, out)
		}
	}
}

// -o json gives JSON on every outcome, errors included, with the exit code;
// a bad command line exits 2.
func TestJSONErrorsAndExitCodes(t *testing.T) {
	h := newHost(t)
	bad := h.write("bad.yaml", "mirrors:\n  docker.io:\n    endpoints: [m.example.com]\n")
	good := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"--config", bad, "validate"}, exitInput},
		{[]string{"--config", bad, "plan"}, exitInput},
		{[]string{"--config", bad, "sync"}, exitInput},
		{[]string{"--config", good, "--engines", "bogus", "plan"}, exitInput},
		{[]string{"--config", good, "--engines", "bogus", "sync"}, exitInput},
		{[]string{"--config", good, "rollback", "20991231T000000.000Z"}, exitFailure},
	} {
		code, out, errOut := h.run("", append([]string{"--output", "json"}, tt.args...)...)
		if code != tt.code {
			t.Errorf("%q: exit %d, want %d\n%s", tt.args, code, tt.code, errOut)
		}
		var j jsonError
		if err := json.Unmarshal([]byte(out), &j); err != nil || j.Error == "" || j.ExitCode != tt.code {
			t.Errorf("%q: stdout is not a JSON error: %v\n%s", tt.args, err, out)
		}
		if tt.args[1] == bad && (len(j.Problems) != 1 || j.Problems[0].Line != 3) {
			t.Errorf("%q: problems %+v, want the spec error at line 3", tt.args, j.Problems)
		}
	}
}

type syscallStat = syscall.Stat_t

func statLine(st *syscall.Stat_t, size int64) string {
	return fmt.Sprintf("ino %d size %d mtime %d ctime %d", st.Ino, size, st.Mtim.Nano(), st.Ctim.Nano())
}

func (h *host) dialRecorder(context.Context) (systemd.Bus, error) { return h.rec, nil }
