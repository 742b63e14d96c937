package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mirrorctl/mirrorctl/noop"
)

// What a sync logs at debug level when it did not plan, and when it did.
const (
	replayedLine = "not planning again"
	plannedLine  = "planning: the no-op record does not apply"
)

// settledHost is a host whose clock runs an hour ahead, so that every
// file the test writes counts as settled and a no-op keeps its record.
func settledHost(t *testing.T) *host {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	h.now = func() time.Time { return time.Now().Add(time.Hour) }
	return h
}

// firstSync runs the sync that writes the spec's files, taking over the
// demo's own.
func (h *host) firstSync(spec string, args ...string) {
	h.t.Helper()
	if code, out, errOut := h.run("", append([]string{"--config", spec}, append(args, "sync", "--adopt")...)...); code != exitOK || !strings.Contains(out, "wrote ") {
		h.t.Fatalf("first sync: exit %d\n%s%s", code, out, errOut)
	}
}

// syncs runs sync at debug level and reports whether it planned.
func (h *host) syncs(args ...string) (planned bool, code int, out, errOut string) {
	h.t.Helper()
	code, out, errOut = h.run("", append([]string{"--log-level", "debug"}, append(args, "sync")...)...)
	switch {
	case strings.Contains(errOut, replayedLine) == strings.Contains(errOut, plannedLine):
		h.t.Fatalf("sync neither planned nor replayed, or both: exit %d\n%s%s", code, out, errOut)
	}
	return strings.Contains(errOut, plannedLine), code, out, errOut
}

// recorded lists the paths the no-op record names, on this machine's
// filesystem, and for each whether all its attributes count (the record's
// "w") or only its identity, type, owner and mode ("i").
func recorded(t *testing.T, h *host) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(h.root, noop.Path))
	if err != nil {
		t.Fatalf("no record kept: %v", err)
	}
	out := map[string]bool{}
	root := ""
	for line := range strings.SplitSeq(string(data), "\n") {
		if q, ok := strings.CutPrefix(line, "root "); ok {
			root, _ = strconv.Unquote(q)
			continue
		}
		if f := strings.SplitN(line, " ", 10); len(f) == 10 {
			if p, err := strconv.Unquote(f[9]); err == nil {
				out[filepath.Join(root, p)] = f[0] == "w"
			}
		}
	}
	return out
}

// keptAndReplayed runs the syncs after a change: the first plans and keeps
// the record (the very first creates its directory, and the next keeps
// it), then one says nothing changed without planning. It returns what
// the last that planned and the one that did not printed.
func keptAndReplayed(t *testing.T, h *host, args ...string) (planned, replayed [2]string) {
	t.Helper()
	p, code, out, errOut := h.syncs(args...)
	if !p || code != exitOK {
		t.Fatalf("the first no-op: planned %v, exit %d\n%s%s", p, code, out, errOut)
	}
	if strings.Contains(errOut, "the next sync that changes nothing keeps the record") {
		if p, code, out, errOut = h.syncs(args...); !p || code != exitOK {
			t.Fatalf("the no-op after the record's directory was made: planned %v, exit %d\n%s%s", p, code, out, errOut)
		}
	}
	again, code, out2, errOut2 := h.syncs(args...)
	if again || code != exitOK {
		t.Fatalf("the next no-op planned again (exit %d): the record was not kept or not used\n%s%s\n(the one before:\n%s)", code, out2, errOut2, errOut)
	}
	return [2]string{out, errOut}, [2]string{out2, errOut2}
}

// The property the record rests on: a change to anything a no-op read —
// every file, directory and link in the record, by content or by metadata
// alone — makes the next sync plan; and a file mirrorctl manages that was
// changed with its size and modification time kept is put back.
func TestNoOpRecordCoversEverythingASyncReads(t *testing.T) {
	t.Parallel()
	h := settledHost(t)
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	h.firstSync(spec)
	_, replayed := keptAndReplayed(t, h, "--config", spec)
	if !strings.Contains(replayed[0], "nothing to change") {
		t.Errorf("the replayed no-op said %q", replayed)
	}

	paths := recorded(t, h)
	// conf.d is missing: the spec's directory, whose change time moves
	// when it is made, stands for it.
	for _, want := range []string{spec, filepath.Join(h.etc, "secrets/nexus-password"), h.etc,
		filepath.Join(h.root, "var/lib/mirrorctl/state.json"), filepath.Join(h.root, "etc/containerd/config.toml"),
		filepath.Join(h.root, "etc/docker/daemon.json"), filepath.Join(h.root, "usr/bin/containerd"), h.root} {
		if _, ok := paths[want]; !ok {
			t.Errorf("the record does not name %s", want)
		}
	}
	if _, ok := paths[filepath.Join(h.root, noop.Dir)]; ok {
		t.Errorf("the record names its own directory: keeping it would make it stale")
	}

	mine := func(p string) bool {
		return p == h.root || p == h.etc || strings.HasPrefix(p, h.root+"/") || strings.HasPrefix(p, h.etc+"/")
	}
	// Every entry that counts whole, touched with its owner and mode kept
	// (only its change time moves), and every other with its mode changed,
	// makes the next sync plan.
	touched := 0
	for p, whole := range paths {
		if !mine(p) {
			continue // the directories above the test's own (/, /tmp) are not the test's to touch
		}
		fi, err := os.Lstat(p)
		must(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
		switch {
		case whole:
			must(t, os.Lchown(p, int(st.Uid), int(st.Gid)))
		case fi.Mode()&fs.ModeSymlink != 0:
			t.Errorf("%s, a link, does not count whole", p)
			continue
		default:
			must(t, os.Chmod(p, mode^0o001))
		}
		planned, code, out, errOut := h.syncs("--config", spec)
		if !planned {
			t.Errorf("after %s was touched (whole %v): not planned, exit %d\n%s%s", p, whole, code, out, errOut)
		}
		if !whole {
			must(t, os.Chmod(p, mode))
			settle(t, h, spec)
		}
		touched++
	}
	if touched < 10 {
		t.Fatalf("only %d recorded paths were the test's own", touched)
	}

	// Content changed behind a kept size and modification time: whatever
	// planning then says (a file of mirrorctl's changed by someone else is
	// a conflict, one it merges into and cannot parse is an error), the
	// sync plans; put back, the next sync finds nothing to do.
	for p := range paths {
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() || !mine(p) || fi.Size() == 0 {
			continue
		}
		old, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		changed := bytes.Clone(old)
		changed[len(changed)/2] ^= 0x01
		writeKeepingTimes(t, p, changed, fi)
		if planned, _, out, errOut := h.syncs("--config", spec); !planned {
			t.Errorf("after %s's content changed (size and mtime kept): not planned\n%s%s", p, out, errOut)
		}
		writeKeepingTimes(t, p, old, fi)
		if planned, code, out, errOut := h.syncs("--config", spec); !planned || code != exitOK {
			t.Fatalf("after %s was put back: planned %v, exit %d\n%s%s", p, planned, code, out, errOut)
		}
		if _, code, out, errOut := h.syncs("--config", spec); code != exitOK || !strings.Contains(out, "nothing to change") {
			t.Fatalf("the sync after that: exit %d\n%s%s", code, out, errOut)
		}
	}
	if planned, code, out, errOut := h.syncs("--config", spec); planned || code != exitOK {
		t.Errorf("the record was not kept again once everything was put back: planned %v, exit %d\n%s%s", planned, code, out, errOut)
	}
}

// Whatever the record lists, this is what makes it right: every entry of
// both trees (the root and the spec's directory), its content or its owner
// changed, either makes the sync plan, or is something planning would not
// act on either (plan --exit-code, which never uses the record, finds
// nothing to do).
func TestNoOpRecordReplaysOnlyWhatPlanningAgrees(t *testing.T) {
	t.Parallel()
	h := settledHost(t)
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	h.firstSync(spec)
	keptAndReplayed(t, h, "--config", spec)
	var all []string
	for _, top := range []string{h.root, h.etc} {
		filepath.WalkDir(top, func(p string, _ fs.DirEntry, err error) error {
			if err == nil && !strings.HasPrefix(p, filepath.Join(h.root, noop.Dir)) {
				all = append(all, p)
			}
			return err
		})
	}
	const nobody = 65534
	for _, p := range all {
		fi, err := os.Lstat(p)
		if err != nil {
			continue // removed by a sync since the walk
		}
		st := fi.Sys().(*syscall.Stat_t)
		changes := map[string][2]func(){
			"owner": {func() { must(t, os.Lchown(p, nobody, nobody)) }, func() { must(t, os.Lchown(p, int(st.Uid), int(st.Gid))) }},
		}
		if fi.Mode().IsRegular() && fi.Size() > 0 {
			old, err := os.ReadFile(p)
			must(t, err)
			changed := bytes.Clone(old)
			changed[len(changed)/2] ^= 0x01
			changes["content"] = [2]func(){func() { writeKeepingTimes(t, p, changed, fi) }, func() { writeKeepingTimes(t, p, old, fi) }}
		}
		for what, change := range changes {
			change[0]()
			if planned, _, _, _ := h.syncs("--config", spec); !planned {
				if code, out, errOut := h.run("", "--config", spec, "plan", "--exit-code"); code != exitOK {
					t.Errorf("%s of %s changed: the sync replayed the record, but planning finds (exit %d)\n%s%s", what, p, code, out, errOut)
				}
			}
			change[1]()
			settle(t, h, spec)
		}
	}
}

// settle syncs until a sync finds nothing to do (a change put back may
// need one sync to be repaired and one to be kept).
func settle(t *testing.T, h *host, spec string) {
	t.Helper()
	for range 3 {
		if _, code, out, _ := h.syncs("--config", spec); code == exitOK && strings.Contains(out, "nothing to change") {
			return
		}
	}
	_, code, out, errOut := h.syncs("--config", spec)
	t.Fatalf("no sync finds nothing to do: exit %d\n%s%s", code, out, errOut)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// writeKeepingTimes rewrites p in place and sets its access and
// modification times back to fi's.
func writeKeepingTimes(t *testing.T, p string, data []byte, fi fs.FileInfo) {
	t.Helper()
	if err := os.WriteFile(p, data, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// Nothing changed less than the settling time before the run can be
// vouched for (a second change within one tick of the filesystem's clock
// could leave its change time as recorded): a node whose files just
// changed keeps no record, and writes nothing for it.
func TestNoOpRecordNotKeptForUnsettledFiles(t *testing.T) {
	h := newHost(t) // the clock stands still when the tests began: every file is new
	h.healthy = func(string) error { return nil }
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	h.firstSync(spec)
	plansKeepingNoRecord(t, h, "changed less than", "--config", spec)
}

// plansKeepingNoRecord runs two syncs (args) that must plan and say want,
// and checks that neither kept a record.
func plansKeepingNoRecord(t *testing.T, h *host, want string, args ...string) {
	t.Helper()
	for range 2 {
		planned, code, out, errOut := h.syncs(args...)
		if !planned || code != exitOK || !strings.Contains(out+errOut, want) {
			t.Fatalf("no-op: planned %v, exit %d, want %q\n%s%s", planned, code, want, out, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(h.root, noop.Path)); !os.IsNotExist(err) {
		t.Errorf("a record was kept: %v", err)
	}
}

// The record belongs to one invocation and one environment: a
// password_env whose value changed is applied, a drop-in that came is read,
// another command line plans; how a sync reports is not the invocation.
func TestNoOpRecordKeyedByInvocationAndEnvironment(t *testing.T) {
	h := settledHost(t)
	t.Setenv("MIRRORCTL_TEST_PASSWORD", "first-secret")
	spec := h.write("env.yaml", `mirrors:
  docker.io:
    endpoint: ["https://nexus.example.internal:8443", "https://nexus.example.internal:8443"]
configs:
  nexus.example.internal:8443:
    auth:
      username: puller
      password_env: MIRRORCTL_TEST_PASSWORD
`)
	h.firstSync(spec)
	planned, replayed := keptAndReplayed(t, h, "--config", spec)
	if planned[0] != replayed[0] {
		t.Errorf("the replayed no-op printed\n%s\nplanning printed\n%s", replayed[0], planned[0])
	}
	// Its warnings (a duplicate endpoint in the spec among them) are said
	// again, the same, and without the secret.
	if !strings.Contains(planned[1], "is the same as") || warnLines(planned[1]) != warnLines(replayed[1]) {
		t.Errorf("warnings: planned\n%s\nreplayed\n%s", planned[1], replayed[1])
	}
	if strings.Contains(replayed[1], "first-secret") {
		t.Errorf("a replay printed the secret")
	}

	t.Setenv("MIRRORCTL_TEST_PASSWORD", "second-secret")
	p, code, out, errOut := h.syncs("--config", spec)
	if !p || code != exitOK || !strings.Contains(out, "wrote ") || !strings.Contains(errOut, "MIRRORCTL_TEST_PASSWORD changed") {
		t.Fatalf("after the environment changed: planned %v, exit %d\n%s%s", p, code, out, errOut)
	}

	keptAndReplayed(t, h, "--config", spec)
	// A drop-in that appears is read and applied.
	h.write("conf.d/extra.yaml", "mirrors:\n  quay.io:\n    endpoint: [\"https://nexus.example.internal:8443\"]\n")
	if p, code, out, errOut := h.syncs("--config", spec); !p || code != exitOK || !strings.Contains(out, "wrote ") {
		t.Fatalf("after a drop-in appeared: planned %v, exit %d\n%s%s", p, code, out, errOut)
	}

	keptAndReplayed(t, h, "--config", spec)
	// How a sync reports (JSON, the log's level and format) is not part of
	// the invocation: a record kept planning in text is replayed in JSON,
	// which prints what planning prints in JSON.
	replayedJSON, code, outJSON, errJSON := h.syncs("--config", spec, "-o", "json")
	if replayedJSON || code != exitOK {
		t.Fatalf("the no-op in JSON planned: exit %d\n%s%s", code, outJSON, errJSON)
	}
	touch(t, spec)
	if planned, code, out, errOut := h.syncs("--config", spec, "-o", "json"); !planned || out != outJSON || !strings.Contains(out, `"written": []`) {
		t.Errorf("JSON: replayed\n%s\nplanning printed (exit %d)\n%s%s", outJSON, code, out, errOut)
	}
	// Any other flag is: --engines plans, and keeps its own record.
	if planned, code, out, errOut := h.syncs("--config", spec, "--engines", "containerd,docker"); !planned || code != exitOK ||
		!strings.Contains(errOut, "kept by another binary, spec path or command line") {
		t.Errorf("--engines: planned %v, exit %d\n%s%s", planned, code, out, errOut)
	}
}

// touch moves p's change time, its content and times kept.
func touch(t *testing.T, p string) {
	t.Helper()
	fi, err := os.Stat(p)
	must(t, err)
	must(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
}

// warnLines are a log's WARN lines without their time.
func warnLines(log string) string {
	var out []string
	for line := range strings.SplitSeq(log, "\n") {
		if strings.Contains(line, "level=WARN") {
			_, rest, _ := strings.Cut(line, " ")
			out = append(out, rest)
		}
	}
	return strings.Join(out, "\n")
}

// A record that is not a whole regular file of mirrorctl's is not used,
// and reading it never hangs: a truncated one, one whose checksum does
// not match, a FIFO and a symlink in its place all make the sync plan.
func TestNoOpRecordDamagedOrSwappedIsIgnored(t *testing.T) {
	h := settledHost(t)
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	h.firstSync(spec)
	keptAndReplayed(t, h, "--config", spec)
	record := filepath.Join(h.root, noop.Path)
	good, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	lastEntry := bytes.LastIndex(good[:bytes.LastIndex(good, []byte("\nsum "))], []byte("\n"))
	for name, damage := range map[string]func() error{
		"cut after an entry": func() error { return os.WriteFile(record, good[:lastEntry+1], 0o600) },
		"an entry dropped, sum kept": func() error {
			return os.WriteFile(record, append(bytes.Clone(good[:lastEntry+1]), good[bytes.LastIndex(good, []byte("\nsum "))+1:]...), 0o600)
		},
		"a FIFO": func() error {
			os.Remove(record)
			return syscall.Mkfifo(record, 0o600)
		},
		"a symlink to a copy": func() error {
			copyPath := filepath.Join(t.TempDir(), "record")
			if err := os.WriteFile(copyPath, good, 0o600); err != nil {
				return err
			}
			os.Remove(record)
			return os.Symlink(copyPath, record)
		},
	} {
		if err := damage(); err != nil {
			t.Fatal(err)
		}
		planned, code, out, errOut := h.syncs("--config", spec)
		if !planned || code != exitOK || !strings.Contains(out, "nothing to change") {
			t.Errorf("%s: planned %v, exit %d\n%s%s", name, planned, code, out, errOut)
		}
		// The sync kept a good record again; damage that one next.
		if fi, err := os.Lstat(record); err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("%s: no regular record kept again: %v", name, err)
		}
		if good, err = os.ReadFile(record); err != nil {
			t.Fatal(err)
		}
		lastEntry = bytes.LastIndex(good[:bytes.LastIndex(good, []byte("\nsum "))], []byte("\n"))
	}
}

// A sync that leaves a reload or restart owed keeps no record: whether it
// is still owed depends on the daemons, not on files.
func TestNoOpRecordNotKeptWhileActivationsAreOwed(t *testing.T) {
	h := settledHost(t)
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	h.firstSync(spec, "--no-restart")
	plansKeepingNoRecord(t, h, "pending", "--config", spec, "--no-restart")
}

// An engine upgraded in place (the same inode rewritten, its modification
// time kept: only its change time tells) is asked its version again, and
// the files are rendered for the new one. The binary is only looked at,
// never read, so it is the resolution's own look that must be recorded.
func TestNoOpRecordSeesAnEngineUpgradedInPlace(t *testing.T) {
	h := settledHost(t)
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	h.firstSync(spec)
	keptAndReplayed(t, h, "--config", spec)
	bin := filepath.Join(h.root, "usr/bin/containerd")
	fi, err := os.Stat(bin)
	must(t, err)
	old, err := os.ReadFile(bin)
	must(t, err)
	upgraded := strings.Replace(string(old), "1.6.20~ds1 1.6.20~ds1-1+deb12u3", "2.0.0~ds1 2.0.0~ds1-1+deb13u1xx", 1)
	if len(upgraded) != len(old) || upgraded == string(old) {
		t.Fatalf("the stand-in changed shape:\n%s", old)
	}
	writeKeepingTimes(t, bin, []byte(upgraded), fi)
	if after, err := os.Stat(bin); err != nil || !os.SameFile(fi, after) {
		t.Fatalf("not rewritten in place: %v", err)
	}
	planned, code, out, errOut := h.syncs("--config", spec)
	if !planned || code != exitOK || !strings.Contains(errOut, "containerd=yes(2.0.0)") {
		t.Fatalf("after containerd was upgraded in place: planned %v, exit %d\n%s%s", planned, code, out, errOut)
	}
	// The answer kept (versions.json) changed the state directory as that
	// sync read it: the next keeps the record, and its replay says 2.0.0.
	_, replayed := keptAndReplayed(t, h, "--config", spec)
	if !strings.Contains(replayed[1], "containerd=yes(2.0.0)") {
		t.Errorf("the replay says\n%s", replayed[1])
	}
}

// A running dockerd's image store is asked over its socket, which may
// outlive the daemon (docker.socket); dockerd rewrites its pid file at
// every start, and a restart seen there makes the next sync plan.
func TestNoOpRecordSeesDockerdRestarted(t *testing.T) {
	h := settledHost(t)
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	pidFile := filepath.Join(h.root, "var/run/docker.pid")
	must(t, os.MkdirAll(filepath.Dir(pidFile), 0o755))
	must(t, os.WriteFile(pidFile, []byte("4242\n"), 0o644))
	h.firstSync(spec)
	keptAndReplayed(t, h, "--config", spec)
	if _, ok := recorded(t, h)[pidFile]; !ok {
		t.Fatalf("the record does not name %s", pidFile)
	}
	must(t, os.WriteFile(pidFile, []byte("4343\n"), 0o644)) // the same size, in place
	if planned, code, out, errOut := h.syncs("--config", spec); !planned || code != exitOK {
		t.Errorf("after dockerd's pid file was rewritten: planned %v, exit %d\n%s%s", planned, code, out, errOut)
	}
}
