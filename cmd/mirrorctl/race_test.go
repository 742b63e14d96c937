package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Issue 9, class 1, the race: while root's mirrorctl syncs alice's Docker
// credentials again and again, alice (a real process running as uid 4242)
// swaps her ~/.docker between real directories and links to root's
// directories and to one outside --root, swaps ~/.docker/config.json
// between a file and links to root's files, and replaces every temporary
// file mirrorctl creates in her directory with a link to /etc/passwd the
// moment she sees it. Afterwards no file but mirrorctl's targets (the
// engines' directories) changed owner, mode or content, under the root or
// outside it, no file of the engines' belongs to alice, and nothing in her
// home belongs to root.

// raceSyncs is how many syncs run while alice attacks.
const raceSyncs = 200

// attackerEnv makes TestMain the attacker (attack), in the home it names.
const attackerEnv = "MIRRORCTL_TEST_ATTACK_HOME"

// raceEnv=1 runs the race test: about 10 s on two cores, so it is left out
// of `go test ./...` and run by its own target.
const raceEnv = "MIRRORCTL_TEST_RACE"

func TestRaceUsersLinksDuringSyncs(t *testing.T) {
	if os.Getenv(raceEnv) != "1" {
		t.Skip("takes about 10 s: run with " + raceEnv + "=1")
	}
	requireRoot(t)
	start := time.Now()
	// Every directory on the way to the root must be open to alice, as
	// /home is on a node.
	base := openDir(t)
	h, _ := newAliceHostIn(t, filepath.Join(base, "root"))
	outside := filepath.Join(base, "outside")
	for name, mode := range map[string]os.FileMode{"victim": 0o644, "victim-secret": 0o600, "config.json": 0o644} {
		put(t, filepath.Join(outside, name), "{\"outside\": \""+name+"\"}\n", mode)
	}
	put(t, filepath.Join(h.root, "etc/victim-secret"), "root-only\n", 0o600)
	put(t, filepath.Join(h.root, "etc/cron.d/existing"), "* * * * * root true\n", 0o644)
	specs := []string{
		h.write("race-a.yaml", strings.Replace(aliceSpec, "puller", "puller-a", 1)),
		h.write("race-b.yaml", strings.Replace(aliceSpec, "puller", "puller-b", 1)),
	}
	victims := func(rel string) bool { // what the comparison leaves out
		return ownState(rel) || rel == "home" || rel == "home/alice" || strings.HasPrefix(rel, "home/alice/") || engineFile(rel)
	}
	before, outBefore := inodes(t, h.root, victims), inodes(t, outside, nil)

	// alice: the test binary, copied where she can run it.
	bin := filepath.Join(base, "mirrorctl.test")
	copyFile(t, os.Args[0], bin, 0o755)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), attackerEnv+"="+filepath.Join(h.root, "home/alice"))
	cmd.Args = append(cmd.Args,
		"dirs", "/etc", "/etc/cron.d", "/root/.docker", "../../root/.docker", "../../../../../../../../../etc", outside,
		"files", "/etc/passwd", "/etc/victim-secret", "/root/.docker/config.json", "../../../etc/passwd", filepath.Join(outside, "victim"))
	cmd.Dir = base
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: aliceUID, Gid: aliceGID, Groups: []uint32{}}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var report strings.Builder
	cmd.Stdout, cmd.Stderr = &report, &report
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopAlice := func() {
		stdin.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("alice: %v\n%s", err, report.String())
			}
		case <-time.After(guard):
			cmd.Process.Kill()
			t.Errorf("alice did not stop")
		}
	}
	outcomes := map[string]int{}
	for i := range raceSyncs {
		code, _, errOut := syncInProcess(h.root, specs[i%2], "--engines", "docker")
		outcomes[classify(code, errOut)]++
	}
	stopAlice()
	t.Logf("%d syncs in %v while alice attacked (%s): %v", raceSyncs, time.Since(start).Round(time.Millisecond), strings.TrimSpace(report.String()), outcomes)

	unchanged(t, "under the root", before, inodes(t, h.root, victims))
	unchanged(t, "outside the root", outBefore, inodes(t, outside, nil))
	for rel, desc := range inodes(t, h.root, nil) {
		owner := strings.Fields(desc)[1]
		switch {
		case strings.HasPrefix(rel, "home/alice/") && owner != fmt.Sprintf("%d:%d", aliceUID, aliceGID):
			t.Errorf("%s in alice's home belongs to %s", rel, owner)
		case engineFile(rel) && owner != "0:0":
			t.Errorf("%s belongs to %s", rel, owner)
		}
	}
	if outcomes["ok"] == 0 {
		t.Errorf("no sync succeeded: alice's attacks left no window, and the test checks nothing about writes in her home")
	}
}

// engineFile reports whether rel (under the root) is where the Docker
// engine's files are: mirrorctl's targets, which the race test expects to
// change.
func engineFile(rel string) bool {
	return rel == "etc/docker" || strings.HasPrefix(rel, "etc/docker/")
}

// classify sums up a sync's outcome for the log.
func classify(code int, stderr string) string {
	switch {
	case code == exitOK:
		return "ok"
	case strings.Contains(stderr, "permission denied"):
		return "refused (permission denied)"
	case strings.Contains(stderr, "not valid JSON"):
		return "refused (not JSON)"
	case strings.Contains(stderr, "not a regular file"):
		return "refused (not a regular file)"
	case strings.Contains(stderr, "no such file"):
		return "refused (missing)"
	}
	if i := strings.LastIndex(stderr, "mirrorctl: "); i >= 0 {
		return fmt.Sprintf("exit %d: %.200s", code, stderr[i:])
	}
	return fmt.Sprintf("exit %d", code)
}

// attack is alice: it swaps her files and links until its standard input
// closes, then prints what it did. Every error is ignored: what the kernel
// refuses her is the point.
func attack(home string, args []string) int {
	var dirs, files []string
	cur := &dirs
	for _, a := range args {
		switch a {
		case "dirs":
			cur = &dirs
		case "files":
			cur = &files
		default:
			*cur = append(*cur, a)
		}
	}
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	docker := filepath.Join(home, ".docker")
	// The names her ~/.docker is swapped with: two real directories, then
	// a link to each of dirs.
	alts := []string{filepath.Join(home, ".real-0"), filepath.Join(home, ".real-1")}
	os.Mkdir(docker, 0o755)
	os.WriteFile(filepath.Join(docker, "config.json"), []byte("{}\n"), 0o600)
	for _, a := range alts {
		os.Mkdir(a, 0o755)
	}
	for i, d := range dirs {
		l := filepath.Join(home, fmt.Sprintf(".link-%d", i))
		os.Symlink(d, l)
		alts = append(alts, l)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	var swaps, files2, hijacks int
	for {
		select {
		case <-stop:
			fmt.Printf("alice: %d swaps of ~/.docker, %d of config.json, %d temporary files replaced", swaps, files2, hijacks)
			return 0
		default:
		}
		// Mostly watching for temporary files, so that many syncs get as
		// far as writing; a short pause leaves the cores to the syncs.
		time.Sleep(100 * time.Microsecond)
		switch rng.IntN(16) {
		case 0:
			// ~/.docker becomes another real directory (half the time:
			// syncs must get as far as writing) or a link.
			alt := alts[rng.IntN(2)]
			if rng.IntN(2) == 0 {
				alt = alts[2+rng.IntN(len(alts)-2)]
			}
			if unix.Renameat2(unix.AT_FDCWD, docker, unix.AT_FDCWD, alt, unix.RENAME_EXCHANGE) == nil {
				swaps++
			}
		case 1:
			// config.json becomes a link to one of files, or a real file.
			tmp := filepath.Join(docker, ".alice-tmp")
			os.Remove(tmp)
			var err error
			if rng.IntN(2) == 0 {
				err = os.Symlink(files[rng.IntN(len(files))], tmp)
			} else {
				err = os.WriteFile(tmp, []byte("{}\n"), 0o600)
			}
			if err == nil && os.Rename(tmp, filepath.Join(docker, "config.json")) == nil {
				files2++
			}
		default:
			// Every temporary file mirrorctl has made in ~/.docker is
			// replaced by a link to a file of root's.
			ents, _ := os.ReadDir(docker)
			for _, e := range ents {
				if !strings.HasPrefix(e.Name(), ".mirrorctl-tmp-") || !e.Type().IsRegular() {
					continue
				}
				l := filepath.Join(docker, ".alice-hijack")
				os.Remove(l)
				if os.Symlink(files[rng.IntN(len(files))], l) == nil && os.Rename(l, filepath.Join(docker, e.Name())) == nil {
					hijacks++
				}
			}
		}
	}
}

// openDir is a temporary directory every user may enter, as the
// directories above /home are.
func openDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{d, filepath.Dir(d)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// put writes a root-owned file with exactly mode, creating its directory.
func put(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	put(t, to, string(b), mode)
}
