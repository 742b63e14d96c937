package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/internal/hosttest"
	"github.com/mirrorctl/mirrorctl/state"
)

// The crash test runs a real mirrorctl process: the test binary itself, run
// again with crashChildEnv set, which makes TestMain act as
// main (the usual helper-process pattern; no separate build).
const crashChildEnv = "MIRRORCTL_TEST_RUN_AS_MIRRORCTL"

// TestMain is mirrorctl itself when crashChildEnv is set (with the
// arguments after "--"), so the crash and signal tests can kill or stop a
// real process without a separate build; otherwise it runs the tests.
func TestMain(m *testing.M) {
	hosttest.ServeIfDaemon()
	if home := os.Getenv(attackerEnv); home != "" {
		os.Exit(attack(home, os.Args[1:]))
	}
	if os.Getenv(crashChildEnv) == "1" {
		args := os.Args
		if i := slices.Index(args, "--"); i >= 0 {
			args = args[i+1:]
		}
		os.Exit(childMain(args))
	}
	os.Exit(m.Run())
}

// mirrorctlCmd returns a command that runs mirrorctl (this test binary,
// through TestMain) with args. Its temporary directory is tmp, so
// that a temporary file left by a kill stays in the test's own directories.
func mirrorctlCmd(tmp string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"--"}, args...)...)
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", "TMPDIR="+tmp)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Spec A and spec B differ in nearly every file mirrorctl writes: the
// hosts.toml of docker.io and ghcr.io change, quay.io's and the
// nexus.example.internal:8443 registry directory (hosts.toml and ca.crt) go
// away, registry.k8s.io's and hub-b's (hosts.toml and ca.crt) appear, the
// credentials in containerd's config.toml and root's config.json change and
// daemon.json names another Docker Hub mirror.
const (
	crashSpecA = `mirrors:
  docker.io:
    endpoint: ["https://nexus.example.internal:8443"]
  ghcr.io:
    endpoint: ["https://a-ghcr.example.internal"]
  quay.io:
    endpoint: ["https://a-quay.example.internal"]
configs:
  nexus.example.internal:
    auth:
      username: puller-a
      password_file: secrets/nexus-password
  nexus.example.internal:8443:
    tls:
      ca_file: certs/nexus-ca.crt
engines:
  docker:
    auth_users: [root]
`
	crashSpecB = `mirrors:
  docker.io:
    endpoint: ["https://hub-b.example.internal:5000"]
  ghcr.io:
    endpoint: ["https://b-ghcr.example.internal"]
  registry.k8s.io:
    endpoint: ["https://b-k8s.example.internal"]
configs:
  nexus.example.internal:
    auth:
      username: puller-b
      password_file: secrets/nexus-password
  hub-b.example.internal:5000:
    auth:
      username: hub-b
      password_file: secrets/nexus-password
    tls:
      ca_file: certs/nexus-ca.crt
engines:
  docker:
    auth_users: [root]
`
	crashPassword = "s3cret-Pässword $1" // what newHost puts in secrets/nexus-password
)

// crashIterations is how many sync processes the crash test kills.
const crashIterations = 200

// A fileTree is every file and directory under a root, by relative path.
type fileTree map[string]treeEntry

type treeEntry struct {
	dir  bool
	mode fs.FileMode // permission bits
	data string
}

func (e treeEntry) String() string {
	if e.dir {
		return "dir " + e.mode.String()
	}
	return fmt.Sprintf("%v %d bytes %q", e.mode, len(e.data), abbrevData(e.data))
}

func abbrevData(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// readTree reads every file and directory under root.
func readTree(root string) (fileTree, error) {
	n := fileTree{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			n[rel] = treeEntry{dir: true, mode: info.Mode().Perm()}
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n[rel] = treeEntry{mode: info.Mode().Perm(), data: string(b)}
		default:
			return fmt.Errorf("%s: unexpected file type %v", rel, info.Mode().Type())
		}
		return nil
	})
	return n, err
}

// writeTree creates the tree n under root (which must not exist yet).
func writeTree(root string, n fileTree) error {
	paths := make([]string, 0, len(n))
	for p := range n {
		paths = append(paths, p)
	}
	sort.Strings(paths) // parents first
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	for _, p := range paths {
		e, full := n[p], filepath.Join(root, p)
		var err error
		if e.dir {
			err = os.Mkdir(full, e.mode)
		} else {
			err = os.WriteFile(full, []byte(e.data), e.mode)
		}
		if err == nil {
			err = os.Chmod(full, e.mode) // no umask
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ignoredInTree reports paths that are allowed to differ between runs: the
// backup sets (named by time) and the lock file (it holds the last pid).
func ignoredInTree(rel string) bool {
	rel = filepath.ToSlash(rel)
	return rel == "var/lib/mirrorctl/backups" || strings.HasPrefix(rel, "var/lib/mirrorctl/backups/") || rel == "var/lib/mirrorctl/lock" ||
		rel == "var/lib/mirrorctl/versions.json" // a cache, keyed by inode
}

// ownership is state.json as the crash test compares it: what mirrorctl
// owns and owes. The record of the last sync holds times and backup ids,
// and whether mirrorctl created a file it finds holding its bytes after a
// kill cannot be known, nor when an activation became owed: none is
// compared.
func ownership(data string) string {
	var st struct {
		Version int                       `json:"version"`
		Files   map[string]map[string]any `json:"files"`
		Pending []map[string]any          `json:"pending"`
	}
	if err := json.Unmarshal([]byte(data), &st); err != nil {
		return "unparsable: " + err.Error() + "\n" + data
	}
	for _, f := range st.Files {
		delete(f, "created")
	}
	for _, a := range st.Pending {
		delete(a, "since")
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	return string(b)
}

// engineReadable reports whether a leftover file's name could be read as
// configuration by an engine: the exact names mirrorctl writes, and the
// extensions containerd (certs.d without hosts.toml, imports) and dockerd
// (certs.d) load from a directory.
func engineReadable(name string) bool {
	switch name {
	case "hosts.toml", "daemon.json", "config.toml", "config.json", "crictl.yaml", "registries.yaml", "ca.crt", "client.cert", "client.key", "state.json":
		return true
	}
	for _, ext := range []string{".crt", ".cert", ".key", ".pem", ".toml", ".json", ".yaml", ".yml", ".conf"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// crashRig holds what every iteration shares.
type crashRig struct {
	base         *host
	specA, specB string
	treeA, treeB fileTree // after a full sync of A, and of A then B
	secrets      []string // what no leftover readable by others may contain
}

func (r *crashRig) syncInProcess(root, spec string, extra ...string) (int, string, string) {
	return syncInProcess(root, spec, extra...)
}

// syncInProcess runs `mirrorctl --root root --config spec sync extra...` in
// this process, as main does: no recorder and no health stand-in, so under
// a --root other than / every reload and restart stays pending.
func syncInProcess(root, spec string, extra ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	args := append([]string{"--root", root, "--config", spec, "--lock-timeout", "10s", "sync"}, extra...)
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// newCrashRig syncs spec A into a copy of the demo tree, and spec B after
// it into another copy, and keeps both trees.
func newCrashRig(t *testing.T) *crashRig {
	t.Helper()
	r := &crashRig{base: newHost(t)}
	r.specA = r.base.write("a.yaml", crashSpecA)
	r.specB = r.base.write("b.yaml", crashSpecB)
	r.secrets = []string{
		crashPassword,
		base64.StdEncoding.EncodeToString([]byte("puller-a:" + crashPassword)),
		base64.StdEncoding.EncodeToString([]byte("puller-b:" + crashPassword)),
		base64.StdEncoding.EncodeToString([]byte("hub-b:" + crashPassword)),
	}
	if code, out, errOut := r.syncInProcess(r.base.root, r.specA, "--adopt"); code != exitOK {
		t.Fatalf("sync A: exit %d\n%s%s", code, out, errOut)
	}
	var err error
	if r.treeA, err = readTree(r.base.root); err != nil {
		t.Fatal(err)
	}
	refB := filepath.Join(t.TempDir(), "root")
	if err := writeTree(refB, r.treeA); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := r.syncInProcess(refB, r.specB, "--adopt"); code != exitOK {
		t.Fatalf("sync B: exit %d\n%s%s", code, out, errOut)
	}
	if r.treeB, err = readTree(refB); err != nil {
		t.Fatal(err)
	}
	return r
}

type runTimes struct {
	mu     sync.Mutex
	recent []time.Duration // the latest 9
	seen   []time.Duration
}

func (rt *runTimes) add(d time.Duration) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.recent = append(rt.recent, d)
	if len(rt.recent) > 9 {
		rt.recent = rt.recent[1:]
	}
	rt.seen = append(rt.seen, d.Round(time.Millisecond))
}

// typical is the median of the latest runs: the kill window.
func (rt *runTimes) typical() time.Duration {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	s := slices.Clone(rt.recent)
	slices.Sort(s)
	return s[len(s)/2]
}

func (rt *runTimes) all() []time.Duration {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return slices.Clone(rt.seen)
}

// changingFiles lists the paths whose entry differs between A and B.
func (r *crashRig) changingFiles() []string {
	var out []string
	for p, a := range r.treeA {
		if ignoredInTree(p) {
			continue
		}
		if b, ok := r.treeB[p]; !ok || b != a {
			out = append(out, p)
		}
	}
	for p := range r.treeB {
		if _, ok := r.treeA[p]; !ok && !ignoredInTree(p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// fullRun syncs B into a copy of A in a child process, uninterrupted, and
// checks that the tree is the reference.
func (r *crashRig) fullRun(dir string) (time.Duration, error) {
	root := filepath.Join(dir, "root")
	if err := writeTree(root, r.treeA); err != nil {
		return 0, err
	}
	cmd := mirrorctlCmd(dir, "--root", root, "--config", r.specB, "sync", "--adopt")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("%v\n%s", err, out.String())
	}
	got, err := readTree(root)
	if err != nil {
		return d, err
	}
	if diff := diffTrees(r.treeB, got, nil); diff != "" {
		return d, fmt.Errorf("an uninterrupted sync process does not give the reference tree:\n%s", diff)
	}
	return d, nil
}

type crashOutcome struct {
	exited    bool // the process had finished before the kill
	newFiles  int  // changing files that hold B's entry after the kill
	leftovers int  // temporary files the kill left
}

// iteration starts sync B on a copy of A, kills it after delay, checks the
// tree, converges with a plain sync of B and checks the tree again.
func (r *crashRig) iteration(dir string, delay time.Duration, changing []string) (crashOutcome, error) {
	var o crashOutcome
	root := filepath.Join(dir, "root")
	if err := writeTree(root, r.treeA); err != nil {
		return o, err
	}
	cmd := mirrorctlCmd(dir, "--root", root, "--config", r.specB, "sync", "--adopt")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return o, err
	}
	time.Sleep(delay)
	killErr := cmd.Process.Kill()
	err := cmd.Wait()
	var ee *exec.ExitError
	switch {
	case errors.Is(killErr, os.ErrProcessDone) || err == nil:
		o.exited = true
		if err != nil {
			return o, fmt.Errorf("sync exited before the kill: %v\n%s", err, out.String())
		}
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			break
		}
		// The process may have exited on its own just before the kill.
		if ee.ExitCode() != 0 {
			return o, fmt.Errorf("sync failed before the kill: %v\n%s", err, out.String())
		}
		o.exited = true
	default:
		return o, fmt.Errorf("waiting for sync: %v", err)
	}

	// After the kill: every file is A's or B's.
	got, err := readTree(root)
	if err != nil {
		return o, err
	}
	var problems []string
	leftover := map[string]bool{}
	for p, e := range got {
		if ignoredInTree(p) {
			continue
		}
		a, inA := r.treeA[p]
		b, inB := r.treeB[p]
		if p == stateRel && inA && inB && (ownership(e.data) == ownership(a.data) || ownership(e.data) == ownership(b.data)) {
			continue // the record of the last sync differs by time
		}
		switch {
		case (inA && e == a) || (inB && e == b):
			if slices.Contains(changing, p) && inB && e == b {
				o.newFiles++
			}
		case !inA && !inB && !e.dir && strings.HasPrefix(filepath.Base(p), "."):
			// A temporary file of an atomic write (renameio: "." + name +
			// random digits) that the kill interrupted.
			leftover[p] = true
			o.leftovers++
			if name := filepath.Base(p); engineReadable(name) || engineReadable(strings.TrimPrefix(name, ".")) {
				problems = append(problems, fmt.Sprintf("leftover temporary file %s has a name an engine reads", p))
			}
			if e.mode&0o077 != 0 {
				for _, s := range r.secrets {
					if strings.Contains(e.data, s) {
						problems = append(problems, fmt.Sprintf("leftover temporary file %s holds a credential with mode %v", p, e.mode))
						break
					}
				}
			}
		case !inA && !inB:
			problems = append(problems, fmt.Sprintf("%s: neither in A nor in B: %v", p, e))
		default:
			problems = append(problems, fmt.Sprintf("%s: torn or a third content: %v\n    A: %v\n    B: %v", p, e, a, b))
		}
	}
	for p := range r.treeA {
		if _, ok := got[p]; ok || ignoredInTree(p) {
			continue
		}
		if _, inB := r.treeB[p]; inB {
			problems = append(problems, fmt.Sprintf("%s is missing: it exists in A and in B", p))
		} else {
			o.newFiles++ // removed, as B wants
		}
	}
	if hr, err := hostfs.Open(root); err != nil {
		problems = append(problems, fmt.Sprintf("opening the root: %v", err))
	} else {
		if _, err := state.Open(hr).Load(); err != nil {
			problems = append(problems, fmt.Sprintf("state after the kill: %v", err))
		}
		hr.Close()
	}
	if len(problems) > 0 {
		return o, fmt.Errorf("after the kill:\n  %s\nsync output:\n%s", strings.Join(problems, "\n  "), out.String())
	}

	// The next sync converges, with no conflict, to the reference tree.
	code, stdout, stderr := r.syncInProcess(root, r.specB)
	if code != exitOK || strings.Contains(stdout+stderr, "conflict") {
		return o, fmt.Errorf("the sync after the kill: exit %d\n%s%s", code, stdout, stderr)
	}
	got, err = readTree(root)
	if err != nil {
		return o, err
	}
	if diff := diffTrees(r.treeB, got, leftover); diff != "" {
		return o, fmt.Errorf("the sync after the kill does not converge to the reference tree (%d of %d changing files were new after the kill):\n%s\nits output:\n%s%s",
			o.newFiles, len(changing), diff, stdout, stderr)
	}
	return o, nil
}

// diffTrees describes how got differs from want, ignoring the backup sets,
// the lock file and the paths in skip.
func diffTrees(want, got fileTree, skip map[string]bool) string {
	var lines []string
	for p, w := range want {
		if ignoredInTree(p) {
			continue
		}
		g, ok := got[p]
		if ok && p == stateRel && g.mode == w.mode && ownership(g.data) == ownership(w.data) {
			continue
		}
		switch {
		case !ok:
			lines = append(lines, fmt.Sprintf("  missing %s (want %v)", p, w))
		case g != w:
			lines = append(lines, fmt.Sprintf("  %s: %v, want %v", p, g, w))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok && !ignoredInTree(p) && !skip[p] {
			lines = append(lines, fmt.Sprintf("  extra %s: %v", p, g))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// The two states below are what the crash loop finds most often when a
// kill lands late; each replays one deterministically, in process.

// A kill after every file of B was written but before state.json was saved
// leaves B's files with A's ownership record. The next sync must forget the
// files B removed, as a clean sync of B does.
func TestCrashBeforeStateSaveThenSyncForgetsRemovedFiles(t *testing.T) {
	r := newCrashRig(t)
	killed := maps.Clone(r.treeB)
	killed[stateRel] = r.treeA[stateRel]
	r.replay(t, killed)
}

// A kill inside render.Apply between the removal of a registry
// directory's hosts.toml (removed first, so containerd never reads one that
// names a missing file) and the removal of its ca.crt leaves the ca.crt
// behind. containerd loads the *.crt of a certs.d/<host>/ directory that
// has no hosts.toml, so the CA the spec no longer names stays trusted. The
// next sync must remove it.
func TestCrashBetweenRemovalsThenSyncRemovesTheRest(t *testing.T) {
	r := newCrashRig(t)
	const gone = "etc/containerd/certs.d/nexus.example.internal:8443/hosts.toml"
	if _, inA := r.treeA[gone]; !inA {
		t.Fatalf("%s is not in tree A", gone)
	}
	// containerd's files are applied in this order: config.toml, the
	// hosts.toml files B keeps or adds with their ca.crt, then the removals,
	// each directory's hosts.toml first. The kill came right after the first
	// removal; docker's and crictl's files and state.json are still A's.
	killed := maps.Clone(r.treeA)
	for p, e := range r.treeB {
		if strings.HasPrefix(p, "etc/containerd/") {
			killed[p] = e
		}
	}
	delete(killed, gone)
	for _, p := range []string{"etc/containerd/certs.d/quay.io", "etc/containerd/certs.d/quay.io/hosts.toml",
		"etc/containerd/certs.d/nexus.example.internal:8443", "etc/containerd/certs.d/nexus.example.internal:8443/ca.crt"} {
		killed[p] = r.treeA[p]
	}
	r.replay(t, killed)
}

const stateRel = "var/lib/mirrorctl/state.json"

// replay writes the tree a kill left, syncs B in process and expects the
// tree of a clean sync of B, state.json included.
func (r *crashRig) replay(t *testing.T, killed fileTree) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if err := writeTree(root, killed); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := r.syncInProcess(root, r.specB)
	if code != exitOK || strings.Contains(out+errOut, "conflict") {
		t.Fatalf("sync B: exit %d\n%s%s", code, out, errOut)
	}
	got, err := readTree(root)
	if err != nil {
		t.Fatal(err)
	}
	if diff := diffTrees(r.treeB, got, nil); diff != "" {
		t.Errorf("sync B after the kill does not converge to the tree of a clean sync of B:\n%s\nsync output:\n%s", diff, out)
	}
	if d := cmp.Diff(ownership(r.treeB[stateRel].data), ownership(got[stateRel].data)); d != "" {
		t.Errorf("state.json (-clean sync of B +after the kill):\n%s", d)
	}
}

// The premise of the crash test: the reference tree of a clean sync of B
// holds nothing of the registries B dropped (quay.io, and the TLS settings
// of nexus.example.internal:8443), in certs.d or in state.json: "removing a
// registry from the spec removes the files mirrorctl wrote for it".
func TestCrashReferenceSyncRemovesDroppedRegistries(t *testing.T) {
	r := newCrashRig(t)
	var st state.State
	if err := json.Unmarshal([]byte(r.treeB[stateRel].data), &st); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{
		"etc/containerd/certs.d/quay.io",
		"etc/containerd/certs.d/nexus.example.internal:8443",
		"etc/docker/certs.d/nexus.example.internal:8443",
	} {
		if _, inA := r.treeA[dir]; !inA {
			t.Fatalf("%s is not in tree A", dir)
		}
		for p := range r.treeB {
			if p == dir || strings.HasPrefix(p, dir+"/") {
				t.Errorf("a clean sync of B leaves %s", p)
			}
		}
		for p := range st.Files {
			if strings.HasPrefix(p, "/"+dir+"/") {
				t.Errorf("state.json of a clean sync of B still records %s", p)
			}
		}
	}
}
