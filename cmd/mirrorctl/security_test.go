package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// Issue 9, through the CLI: root's mirrorctl must not be turned against the
// node by what other users, files or state can change. Each test names the
// class it covers; SECURITY.md maps classes to tests.

// alice is an unprivileged user. The kernel judges by number, so a uid is
// enough for files; engines.docker.auth_users finds her in the root's
// /etc/passwd, which newAliceHost writes.
const aliceUID, aliceGID = 4242, 4242

const aliceSpec = `mirrors:
  docker.io:
    endpoint: ["https://nexus.example.internal:8443"]
configs:
  nexus.example.internal:8443:
    auth:
      username: puller
      password_file: secrets/nexus-password
engines:
  docker:
    auth_users: [alice]
`

// newAliceHost is newHost with alice's account and her home, /home/alice,
// hers and 0755, and a spec giving her Docker credentials. Every engine is
// healthy.
func newAliceHost(t *testing.T) (h *host, spec string) {
	t.Helper()
	return newAliceHostIn(t, "")
}

// newAliceHostIn is newAliceHost with the root at root ("" for anywhere).
func newAliceHostIn(t *testing.T, root string) (h *host, spec string) {
	t.Helper()
	requireRoot(t)
	h = newHost(t)
	if root != "" {
		if err := os.Rename(h.root, root); err != nil {
			t.Fatal(err)
		}
		h.root = root
	}
	h.healthy = func(string) error { return nil }
	f, err := os.OpenFile(filepath.Join(h.root, "etc/passwd"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "alice:x:%d:%d:Alice:/home/alice:/bin/sh\n", aliceUID, aliceGID)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(h.root, "home/alice")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, aliceUID, aliceGID); err != nil {
		t.Fatal(err)
	}
	return h, h.write("alice.yaml", aliceSpec)
}

// aliceLink makes the symbolic link link -> target as alice would: owned by
// her.
func aliceLink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, aliceUID, aliceGID); err != nil {
		t.Fatal(err)
	}
}

// aliceDir makes the directory dir (0755) as alice would.
func aliceDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, aliceUID, aliceGID); err != nil {
		t.Fatal(err)
	}
}

// inodes describes every entry under dir, links not followed, by path
// relative to dir: type, permission bits, owner, and the content's hash or
// the link's target. Nothing but regular files is opened (a FIFO or a
// device under test must not be read by the test either). skip leaves out
// entries by relative path.
func inodes(t testing.TB, dir string, skip func(rel string) bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if skip != nil && skip(rel) {
			if d.IsDir() && skip(rel+"/") {
				return filepath.SkipDir // the whole tree
			}
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("%o %d:%d", st.Mode, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(sum[:8])
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case unix.S_IFCHR, unix.S_IFBLK:
			desc += fmt.Sprintf(" dev %d", st.Rdev)
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ownState leaves out mirrorctl's own directory, which every sync may
// change (state, backups, lock), and the directories above it, which it
// creates.
func ownState(rel string) bool {
	return rel == "var" || rel == "var/lib" || rel == "var/lib/mirrorctl" || strings.HasPrefix(rel, "var/lib/mirrorctl/")
}

// unchanged reports every entry of before that after lacks or describes
// otherwise, and every entry after adds, but directories root owns: a
// failed sync may leave an engine directory it created (certs.d) empty,
// which changes nothing anyone reads.
func unchanged(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, b := range before {
		if a, ok := after[p]; !ok || a != b {
			t.Errorf("%s: %s: %q -> %q", what, p, b, a)
		}
	}
	for p, a := range after {
		if _, ok := before[p]; !ok && !strings.HasPrefix(a, "40755 0:0") {
			t.Errorf("%s: %s appeared: %q", what, p, a)
		}
	}
}

// Class 1: a user's links in her own home cannot make root write, create or
// chown anything she could not herself. Each attack is a link alice makes
// in her home; sync must refuse with a clear error and leave every file of
// the root (owner, mode, content) and outside it as it was. The control
// case, a real ~/.docker, shows the sync does write there when nothing is
// wrong, as alice and 0600.
func TestUsersLinksCannotRedirectRootsWrites(t *testing.T) {
	outside := t.TempDir() // on the real filesystem, outside --root
	if err := os.WriteFile(filepath.Join(outside, "config.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		attack func(t *testing.T, h *host, home string)
		absent []string // host paths that must not appear under the root
	}{
		{"control_real_docker_dir", func(t *testing.T, h *host, home string) { aliceDir(t, filepath.Join(home, ".docker")) }, nil},
		{"docker_dir_linked_to_cron_d", func(t *testing.T, h *host, home string) {
			if err := os.MkdirAll(filepath.Join(h.root, "etc/cron.d"), 0o755); err != nil {
				t.Fatal(err)
			}
			aliceLink(t, "/etc/cron.d", filepath.Join(home, ".docker"))
		}, []string{"/etc/cron.d/config.json"}},
		{"docker_dir_linked_to_roots_docker_dir", func(t *testing.T, h *host, home string) {
			// root's config.json is JSON: merging into it would work.
			aliceLink(t, "../../root/.docker", filepath.Join(home, ".docker"))
		}, nil},
		{"config_json_linked_to_a_root_file", func(t *testing.T, h *host, home string) {
			aliceDir(t, filepath.Join(home, ".docker"))
			aliceLink(t, "/root/.docker/config.json", filepath.Join(home, ".docker/config.json"))
		}, nil},
		{"config_json_linked_to_etc_passwd", func(t *testing.T, h *host, home string) {
			aliceDir(t, filepath.Join(home, ".docker"))
			aliceLink(t, "/etc/passwd", filepath.Join(home, ".docker/config.json"))
		}, nil},
		{"docker_dir_linked_outside_the_root", func(t *testing.T, h *host, home string) {
			aliceLink(t, outside, filepath.Join(home, ".docker"))
		}, []string{outside}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, spec := newAliceHost(t)
			home := filepath.Join(h.root, "home/alice")
			tc.attack(t, h, home)
			before, outBefore := inodes(t, h.root, ownState), inodes(t, outside, nil)
			code, out, errOut := h.run("", "--config", spec, "sync")
			after := inodes(t, h.root, ownState)
			if d := cmp.Diff(outBefore, inodes(t, outside, nil)); d != "" {
				t.Errorf("files outside the root changed (-before +after):\n%s", d)
			}
			for _, p := range tc.absent {
				if _, err := os.Lstat(filepath.Join(h.root, p)); err == nil {
					t.Errorf("%s was created under the root", p)
				}
			}
			if tc.name == "control_real_docker_dir" {
				if code != exitOK {
					t.Fatalf("exit %d\n%s%s", code, out, errOut)
				}
				if got, want := after["home/alice/.docker/config.json"], fmt.Sprintf("100600 %d:%d", aliceUID, aliceGID); !strings.HasPrefix(got, want) {
					t.Errorf("alice's config.json: %q, want %q…", got, want)
				}
				return
			}
			if code == exitOK {
				t.Errorf("sync succeeded through alice's link\n%s%s", out, errOut)
			}
			if !strings.Contains(errOut, "/home/alice/.docker") {
				t.Errorf("the error does not name alice's file:\n%s", errOut)
			}
			unchanged(t, "under the root", before, after)
		})
	}
}

// Class 2: a FIFO where mirrorctl reads (alice's config.json) must fail the
// sync at once, naming the file and what it is, in a real process, and
// leave the lock free. On a mirrorctl that opens it for reading, the
// process hangs for ever holding the lock; the guard then tries SIGTERM
// and reports whether it helped.
func TestFIFOInAUsersHomeFailsFast(t *testing.T) {
	h, spec := newAliceHost(t)
	docker := filepath.Join(h.root, "home/alice/.docker")
	aliceDir(t, docker)
	fifo := filepath.Join(docker, "config.json")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(fifo, aliceUID, aliceGID); err != nil {
		t.Fatal(err)
	}
	before := inodes(t, h.root, ownState)
	code, stderr := runChild(t, nil, "--root", h.root, "--config", spec, "sync", "--no-restart")
	if code == exitOK {
		t.Errorf("sync succeeded with a FIFO for a config.json:\n%s", stderr)
	}
	for _, want := range []string{"/home/alice/.docker/config.json", "named pipe (FIFO)", "not a regular file"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	unchanged(t, "under the root", before, inodes(t, h.root, ownState))
	// The lock is free: a sync without the FIFO takes it at once.
	if err := os.Remove(fifo); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := h.run("", "--config", spec, "--lock-timeout", "0s", "sync"); code != exitOK {
		t.Errorf("the next sync: exit %d\n%s%s", code, out, errOut)
	}
}

// Class 2: a link to a character device (a /dev/zero made under the root
// with mknod) from places mirrorctl reads fails fast with "is a character
// device, not a regular file". The child runs with its address space capped
// so that a mirrorctl reading the device runs out of memory quickly
// instead of taking the machine's.
func TestDeviceLinksFailFast(t *testing.T) {
	for _, tc := range []struct{ name, link, path string }{
		{"daemon_json", "etc/docker/daemon.json", "/etc/docker/daemon.json"},
		{"users_config_json", "home/alice/.docker/config.json", "/home/alice/.docker/config.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, spec := newAliceHost(t)
			aliceDir(t, filepath.Join(h.root, "home/alice/.docker"))
			if err := os.MkdirAll(filepath.Join(h.root, "dev"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mknod(filepath.Join(h.root, "dev/zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(h.root, tc.link)
			if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if strings.HasPrefix(tc.link, "home/alice/") {
				aliceLink(t, "/dev/zero", link)
			} else if err := os.Symlink("/dev/zero", link); err != nil {
				t.Fatal(err)
			}
			before := inodes(t, h.root, ownState)
			code, stderr := runChild(t, []string{childMemEnv + "=1"}, "--root", h.root, "--config", spec, "sync", "--no-restart")
			if code == exitOK {
				t.Errorf("sync succeeded with a device for a file:\n%s", stderr)
			}
			for _, want := range []string{tc.path, "is a character device, not a regular file"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			unchanged(t, "under the root", before, inodes(t, h.root, ownState))
		})
	}
}

// Class 4: an absolute link inside --root means a path under the root, for
// reads and writes alike; the real / is never read or written. daemon.json
// is a link to /etc/hostname (whose real content is not JSON), and
// containerd's certs.d a link to a directory that exists nowhere yet.
func TestRootConfinesAbsoluteLinks(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	realHostname, hostnameErr := os.ReadFile("/etc/hostname")
	daemon := filepath.Join(h.root, "etc/docker/daemon.json")
	orig, err := os.ReadFile(daemon)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.root, "etc/hostname"), orig, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(daemon); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", daemon); err != nil {
		t.Fatal(err)
	}
	escape := fmt.Sprintf("/mirrorctl-escape-%d", time.Now().UnixNano())
	t.Cleanup(func() { os.RemoveAll(escape) })
	if err := os.Symlink(escape+"/certs.d", filepath.Join(h.root, "etc/containerd/certs.d")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := h.run("", "--config", h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u"), "sync")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if b, err := os.ReadFile("/etc/hostname"); string(b) != string(realHostname) || (err == nil) != (hostnameErr == nil) {
		t.Errorf("the real /etc/hostname changed")
	}
	if !strings.Contains(h.read("/etc/hostname"), "registry-mirrors") || !strings.Contains(h.read("/etc/hostname"), "journald") {
		t.Errorf("daemon.json's target under the root was not merged into:\n%s", h.read("/etc/hostname"))
	}
	if fi, err := os.Lstat(daemon); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the daemon.json link was replaced: %v", err)
	}
	if _, err := os.Lstat(escape); err == nil {
		t.Errorf("%s was created on the real /", escape)
	}
	if _, err := os.Stat(filepath.Join(h.root, escape, "certs.d/docker.io/hosts.toml")); err != nil {
		t.Errorf("hosts.toml not written under the root: %v", err)
	}
}

// Class 4: the lock file is never followed: a link there, to a file
// outside the root or under it, is refused and its target left as it was.
func TestLockFileLinkIsRefused(t *testing.T) {
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, target string }{{"outside_the_root", victim}, {"etc_passwd_under_the_root", "/etc/passwd"}} {
		target := tc.target
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			h.healthy = func(string) error { return nil }
			dir := filepath.Join(h.root, "var/lib/mirrorctl")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(dir, "lock")); err != nil {
				t.Fatal(err)
			}
			before, victimBefore := inodes(t, h.root, nil), inodes(t, filepath.Dir(victim), nil)
			code, out, errOut := h.run("", "--config", h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u"), "sync")
			if code == exitOK || !strings.Contains(errOut, "lock") || !strings.Contains(errOut, "symbolic link") {
				t.Errorf("exit %d, want a refusal naming the lock file as a link:\n%s%s", code, out, errOut)
			}
			if d := cmp.Diff(victimBefore, inodes(t, filepath.Dir(victim), nil)); d != "" {
				t.Errorf("the file outside the root changed (-before +after):\n%s", d)
			}
			if d := cmp.Diff(before, inodes(t, h.root, nil)); d != "" {
				t.Errorf("files under the root changed (-before +after):\n%s", d)
			}
		})
	}
}

// Class 5: state.json is an input like any other. Entries naming files
// outside where the engines manage files are ignored with a warning and
// never deleted, whatever sha256 they carry, whole files and shared
// (merged) ones alike; with --adopt a wrong sha256 deletes nothing either,
// inside the managed places too.
func TestStateEntriesCannotDeleteFiles(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	if code, out, errOut := h.run("", "--config", spec, "sync", "--adopt"); code != exitOK {
		t.Fatalf("first sync: exit %d\n%s%s", code, out, errOut)
	}
	victims := map[string]string{
		"/etc/shadow":            "root:$y$j9T$abcdefgh$ijklmnop:19700:0:99999:7:::\n",
		"/etc/gshadow":           "root:*::\n",
		"/etc/app/settings.json": "{\"auths\": {\"x.example\": {}}}\n",
		"/etc/containerd/certs.d/own.example/hosts.toml": "server = \"https://own.example\"\n",
		// Inside certs.d, but a name mirrorctl never writes.
		"/etc/docker/certs.d/own.example/backup.pem":    "-----BEGIN CERTIFICATE-----\n",
		"/etc/containerd/certs.d/own.example/notes.txt": "mine\n",
	}
	for p, data := range victims {
		full := filepath.Join(h.root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	sum := func(p string) string { s := sha256.Sum256([]byte(victims[p])); return hex.EncodeToString(s[:]) }
	const wrong = "0000000000000000000000000000000000000000000000000000000000000000"
	for _, tc := range []struct {
		name    string
		entries map[string]map[string]any
		args    []string
	}{
		{"matching_sha256", map[string]map[string]any{
			"/etc/shadow":            {"engine": "containerd", "sha256": sum("/etc/shadow")},
			"/etc/gshadow":           {"engine": "docker", "sha256": sum("/etc/gshadow"), "merged": true, "created": true, "keys": []string{"auths=x.example"}},
			"/etc/app/settings.json": {"engine": "docker", "sha256": sum("/etc/app/settings.json"), "merged": true, "created": true, "keys": []string{"auths=x.example"}},
			"/etc/docker/certs.d/own.example/backup.pem":    {"engine": "docker", "sha256": sum("/etc/docker/certs.d/own.example/backup.pem")},
			"/etc/containerd/certs.d/own.example/notes.txt": {"engine": "containerd", "sha256": sum("/etc/containerd/certs.d/own.example/notes.txt")},
		}, nil},
		{"adopt_wrong_sha256", map[string]map[string]any{
			"/etc/shadow":            {"engine": "docker", "sha256": wrong},
			"/etc/gshadow":           {"engine": "docker", "sha256": wrong, "merged": true, "created": true, "keys": []string{"auths=x.example"}},
			"/etc/app/settings.json": {"engine": "docker", "sha256": wrong, "merged": true, "created": true, "keys": []string{"auths=x.example"}},
			"/etc/containerd/certs.d/own.example/hosts.toml": {"engine": "containerd", "sha256": wrong, "primary": true},
		}, []string{"--adopt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			statePath := filepath.Join(h.root, "var/lib/mirrorctl/state.json")
			var st map[string]any
			if err := json.Unmarshal([]byte(readFile(t, statePath)), &st); err != nil {
				t.Fatal(err)
			}
			files := st["files"].(map[string]any)
			for p, e := range tc.entries {
				files[p] = e
			}
			b, _ := json.Marshal(st)
			if err := os.WriteFile(statePath, b, 0o600); err != nil {
				t.Fatal(err)
			}
			before := inodes(t, h.root, ownState)
			code, out, errOut := h.run("", append([]string{"--config", spec, "sync"}, tc.args...)...)
			if code != exitOK && code != exitConflict {
				t.Errorf("exit %d\n%s%s", code, out, errOut)
			}
			after := inodes(t, h.root, ownState)
			for p := range victims {
				rel := strings.TrimPrefix(p, "/")
				if after[rel] != before[rel] {
					t.Errorf("%s: %q -> %q", p, before[rel], after[rel])
				}
			}
			for p := range tc.entries {
				if strings.HasSuffix(p, "/hosts.toml") {
					// Inside the managed place: a removal --adopt does
					// not make, reported as a conflict.
					if !strings.Contains(out, "conflict: "+p) {
						t.Errorf("no conflict reported for %s:\n%s", p, out)
					}
					continue
				}
				if !strings.Contains(errOut, "state.json lists "+p) {
					t.Errorf("no warning about the state entry %s:\n%s", p, errOut)
				}
			}
		})
	}
}

// Class 7: plan, in text and JSON, never shows a client key, rotated or
// removed, nor any line of a password holding a newline (k3s's
// registries.yaml, containerd's and Docker's files): it says the file
// changed, with sizes.
func TestPlanNeverShowsKeysOrPasswords(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	key1, cert1 := clientKeyPair(t, "one")
	key2, cert2 := clientKeyPair(t, "two")
	h.write("tls/key1.pem", key1)
	h.write("tls/cert1.pem", cert1)
	h.write("tls/key2.pem", key2)
	h.write("tls/cert2.pem", cert2)
	const pw1, pw2 = "first-Half-of-pw1\nsecond-Half-of-pw1", "first-Half-of-pw2\nsecond-Half-of-pw2"
	h.write("secrets/pw1", pw1+"\n")
	h.write("secrets/pw2", pw2+"\n")
	specWith := func(name, pw, tls string) string {
		return h.write(name, `mirrors:
  docker.io:
    endpoint: ["https://nexus.example.internal:8443"]
configs:
  nexus.example.internal:8443:
    auth:
      username: puller
      password_file: secrets/`+pw+`
`+tls+`engines:
  docker:
    auth_users: [root]
`)
	}
	tlsWith := func(n string) string {
		return "    tls:\n      cert_file: tls/cert" + n + ".pem\n      key_file: tls/key" + n + ".pem\n"
	}
	engines := "containerd,docker,k3s"
	if code, out, errOut := h.run("", "--config", specWith("s1.yaml", "pw1", tlsWith("1")), "--engines", engines, "sync", "--adopt"); code != exitOK {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(h.read("/etc/docker/certs.d/nexus.example.internal:8443/client.key"), "PRIVATE KEY") {
		t.Fatal("the first sync wrote no client key; the test no longer exercises a key change")
	}
	var leaks []string
	for _, s := range []string{key1, key2, pw1, pw2} {
		for l := range strings.SplitSeq(s, "\n") {
			if l != "" {
				leaks = append(leaks, l)
			}
		}
	}
	for _, pw := range []string{pw1, pw2} {
		leaks = append(leaks, base64.StdEncoding.EncodeToString([]byte("puller:"+pw)))
	}
	for _, step := range []struct {
		name, spec string
		want       []string
	}{
		{"rotated", specWith("s2.yaml", "pw2", tlsWith("2")), []string{
			"/etc/docker/certs.d/nexus.example.internal:8443/client.key holds credentials: content not shown; content changed, ",
			"/etc/rancher/k3s/registries.yaml holds credentials: content not shown; content changed, "}},
		{"removed", specWith("s3.yaml", "pw1", ""), []string{
			"/etc/docker/certs.d/nexus.example.internal:8443/client.key holds credentials: content not shown; removed, was "}},
	} {
		for _, format := range []string{"text", "json"} {
			code, out, errOut := h.run("", "--config", step.spec, "--engines", engines, "--output", format, "plan")
			if code != exitOK {
				t.Errorf("%s, %s: exit %d\n%s", step.name, format, code, errOut)
			}
			got := out + errOut
			for _, w := range step.want {
				if format == "json" {
					w = strings.TrimSuffix(w, " ") // JSON escapes nothing here
				}
				if !strings.Contains(got, w) {
					t.Errorf("%s, %s: the plan lacks %q", step.name, format, w)
				}
			}
			for _, l := range leaks {
				if strings.Contains(got, l) || strings.Contains(got, strings.TrimSuffix(strings.TrimPrefix(mustJSON(l), `"`), `"`)) {
					t.Errorf("%s, %s: the plan shows a line of a key or password (%d bytes)", step.name, format, len(l))
				}
			}
		}
		if code, out, errOut := h.run("", "--config", step.spec, "--engines", engines, "sync", "--adopt"); code != exitOK {
			t.Fatalf("sync %s: exit %d\n%s%s", step.name, code, out, errOut)
		}
	}
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// clientKeyPair makes a PKCS#8 P-256 key and a self-signed client
// certificate for it, PEM-encoded.
func clientKeyPair(t *testing.T, cn string) (key, cert string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}))
}
