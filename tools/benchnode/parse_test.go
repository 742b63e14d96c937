package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/internal/testpki"
	"github.com/mirrorctl/mirrorctl/spec"
	"github.com/mirrorctl/mirrorctl/tools/benchnode/manifest"
)

func TestCountCalls(t *testing.T) {
	out := `100   execve("/bin/mirrorctl", ["mirrorctl"], 0x7ffd /* 3 vars */) = 0
101   flock(9</r/var/lib/mirrorctl/lock>, LOCK_EX|LOCK_NB) = 0
101   pwrite64(9</r/var/lib/mirrorctl/lock>, "pid=1"..., 55, 0) = 55
101   write(1</dev/null>, "nothing to change\n", 18) = 18
102   write(2<pipe:[1234]>, "warn"..., 4) = 4
102   write(7</r/etc/a.toml>, "x", 1 <unfinished ...>
103   fsync(7</r/etc/a.toml>) = 0
102   <... write resumed>) = 1
103   renameat(7</r/etc>, ".tmp", 7</r/etc>, "a.toml") = 0
103   unlinkat(7</r/etc>, "gone", 0) = -1 ENOENT (No such file or directory)
104   execve("/usr/bin/containerd", ["containerd", "--version"], 0x1 /* 2 vars */ <unfinished ...>
104   <... execve resumed>) = 0
104   syncfs(3</r>) = 0
`
	c, err := countCalls(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if c.exec != 1 || c.writes != 2 || c.syncs != 2 || c.renames != 1 || c.other != 0 {
		t.Errorf("exec %d writes %d syncs %d renames %d other %d; want 1 2 2 1 0", c.exec, c.writes, c.syncs, c.renames, c.other)
	}
	if strings.Join(c.written, ",") != "/r/var/lib/mirrorctl/lock,/r/etc/a.toml" || strings.Join(c.execs, ",") != "/usr/bin/containerd" {
		t.Errorf("written %v, execs %v", c.written, c.execs)
	}
}

func TestInputsOf(t *testing.T) {
	out := `100   read(3</proc/100/cgroup>, "0::/"..., 4096) = 5
100   read(7</r/etc/containerd/config.toml>, "version = 2"..., 512) = 512
101   getdents64(8</r/etc/containerd/certs.d>, 0xc000 /* 4 entries */, 8192 <unfinished ...>
100   read(7</r/etc/containerd/config.toml>, "", 512) = 0
101   <... getdents64 resumed>) = 112
101   getdents64(8</r/etc/containerd/certs.d>, 0xc000 /* 0 entries */, 8192) = 0
102   read(9</spec/config.yaml>, "mirrors:"..., 1024) = 1024
102   read(10</r/etc/missing>, 0xc000, 512) = -1 EISDIR (Is a directory)
102   read(11</rest/x>, "x", 1) = 1
`
	files, dirs, err := inputsOf(strings.NewReader(out), []string{"/r", "/spec/"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(files, ",") != "/r/etc/containerd/config.toml,/spec/config.yaml" || strings.Join(dirs, ",") != "/r/etc/containerd/certs.d" {
		t.Errorf("files %v, dirs %v", files, dirs)
	}
}

func TestParseInitTrace(t *testing.T) {
	clocks, _, total, done := parseInitTrace(strings.NewReader(`init internal/bytealg @0.008 ms, 0.004 ms clock, 0 bytes, 0 allocs
init runtime @0.10 ms, 0.50 ms clock, 0 bytes, 0 allocs
init github.com/x/y @3.0 ms, 1.5 ms clock, 2048 bytes, 10 allocs
mirrorctl e7f55ce
`))
	if clocks["github.com/x/y"] != 1500*time.Microsecond || total != 2004*time.Microsecond || done != 4500*time.Microsecond {
		t.Errorf("clocks %v total %v done %v", clocks, total, done)
	}
}

func TestManifestRoundTrip(t *testing.T) {
	in := []manifest.Entry{{Dir: true, Mode: 0o755, Path: "etc/x"}, {Mode: 0o600, Path: "etc/x/f", Data: []byte("data")}, {Mode: 0o644, Path: "etc/empty"}}
	out, err := manifest.Decode(manifest.Encode(in))
	if err != nil || len(out) != 3 || !out[0].Dir || out[1].Mode != 0o600 || string(out[1].Data) != "data" || out[2].Path != "etc/empty" || len(out[2].Data) != 0 {
		t.Errorf("round trip: %+v, %v", out, err)
	}
	if _, err := manifest.Decode(manifest.Encode(in)[:20]); err == nil {
		t.Error("a truncated manifest decoded")
	}
}

// TestWriteSpecLoads: a spec of more registries than one file may hold is
// written as drop-ins, each within the spec's size limit, and loads with
// every registry and its credentials and CA.
func TestWriteSpecLoads(t *testing.T) {
	for _, n := range []int{20, 2500} {
		dir := t.TempDir()
		if err := writeSpec(dir, n, []byte(testpki.CA)); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "conf.d", "*.yaml"))
		for _, f := range append(files, filepath.Join(dir, "config.yaml")) {
			if fi, err := os.Stat(f); err != nil || fi.Size() > spec.MaxFileSize {
				t.Errorf("%s: %v, size over the spec's limit", f, err)
			}
		}
		s, err := spec.Load(filepath.Join(dir, "config.yaml"), spec.Options{Engines: engines.Sections()})
		if err != nil {
			t.Fatalf("%d registries: %v", n, err)
		}
		if len(s.Mirrors) != n || len(s.Configs) != 2*n {
			t.Errorf("%d registries: loaded %d mirrors and %d configs", n, len(s.Mirrors), len(s.Configs))
		}
		last := s.Configs[fmt.Sprintf("mirror-b%d.example.internal", n)]
		if last == nil || last.Auth == nil || last.Auth.Username != fmt.Sprintf("puller%d", n) || last.TLS == nil {
			t.Errorf("%d registries: the last mirror's config is %+v", n, last)
		}
	}
}

// scenarioAt is a scenario whose every run took x times its floor's 1 ms.
func scenarioAt(name string, x float64) *scenario {
	var r pairResult
	for range 3 {
		r.thing = append(r.thing, sample{wall: time.Duration(x * float64(time.Millisecond))})
		r.floor = append(r.floor, sample{wall: time.Millisecond})
	}
	return &scenario{name: name, result: r}
}

// The window of starts for which both no-op targets hold, from the replay
// floors: the 3× target bounds the start from above, the 10× one from below.
func TestReplayBounds(t *testing.T) {
	rep := report{scenarios: []*scenario{
		scenarioAt("`mirrorctl version`", 4.77),
		scenarioAt("`version` of a program linking only sync's libraries", 1.75),
		scenarioAt("replay floor by stat, 20 registries", 2.16),
		scenarioAt("replay floor by stat, 1000 registries", 26.5),
		scenarioAt("replay floor by content, 20 registries", 3.63),
		scenarioAt("replay floor by content, 1000 registries", 77.9),
		scenarioAt(splitScenario("20 registries"), 2.9),
		scenarioAt(splitScenario("1000 registries"), 30.1),
	}}
	lines := rep.replayBounds()
	if len(lines) != 3 {
		t.Fatalf("%d lines: %q", len(lines), lines)
	}
	for _, want := range []string{"0.54 ≤ s ≤ 0.84", "mirrorctl's start: s = 3.77 (**outside**)", "the libraries floor's start: s = 0.75 (inside)"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("by stat: %q lacks %q", lines[0], want)
		}
	}
	for _, want := range []string{"No start meets both no-op targets: the 3× one needs s ≤ -0.63", "(**outside**)"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("by content: %q lacks %q", lines[1], want)
		}
	}
	for _, want := range []string{"`version` 1.75× (≤ 2×: **met**)", "no-op 20 registries 2.90× (≤ 3×: **met**)", "10.4× the 20-registry one (≤ 10×: **NOT met**)"} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("split design: %q lacks %q", lines[2], want)
		}
	}
}

// What each group of packages adds to the libraries floor's start, in the
// order the rows were measured.
func TestStartCosts(t *testing.T) {
	rep := report{scenarios: []*scenario{scenarioAt("no-op `sync`, 20 registries", 16)}}
	if line := rep.startCosts(); line != "" {
		t.Errorf("no libraries floor, yet %q", line)
	}
	rep.scenarios = append(rep.scenarios,
		scenarioAt(mirrorctlVersionScenario, 5),
		scenarioAt(librariesScenario+" sync's libraries", 1.75),
		scenarioAt(withScenario("probes"), 3),
		scenarioAt(withScenario("watch"), 2.25),
	)
	want := "In units of the minimal binary's start, the libraries floor 1.75×; built with probes 3.00× (+1.25), watch 2.25× (+0.50); `mirrorctl version` 5.00×."
	if line := rep.startCosts(); line != want {
		t.Errorf("got  %q\nwant %q", line, want)
	}
}
