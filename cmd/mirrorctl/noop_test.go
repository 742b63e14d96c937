package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A sync that finds nothing to do asks no engine binary its version again:
// the answers are in versions.json (hostexec) as long as the binaries are
// the same files; a binary replaced is asked once, and its answer kept even
// when no file changes. (TestNoOpSyncWritesNothing checks that a sync with
// nothing to do and nothing new writes nothing.)
func TestNoopSyncRunsNoEngineBinary(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	ran := filepath.Join(t.TempDir(), "ran")
	for _, bin := range []string{"usr/bin/containerd", "usr/sbin/dockerd", "usr/bin/crictl"} {
		p := filepath.Join(h.root, bin)
		old, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// Each stand-in notes that it ran (outside the root), then answers.
		script := strings.Replace(string(old), "\necho ", "\necho "+bin+" >>"+ran+"\necho ", 1)
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	spec := h.spec("https://nexus.example.internal:8443", "https://nexus.example.internal/repository/docker-group/v2", "puller")
	if code, out, errOut := h.run("", "--config", spec, "sync", "--adopt"); code != exitOK || !strings.Contains(out, "wrote ") {
		t.Fatalf("first sync: exit %d\n%s%s", code, out, errOut)
	}
	asked, _ := os.ReadFile(ran)
	if len(asked) == 0 {
		t.Fatal("the first sync asked no engine its version: the stand-ins do not note their runs")
	}
	for i := range 2 {
		code, out, errOut := h.run("", "--config", spec, "sync")
		if code != exitOK || !strings.Contains(out, "nothing to change") {
			t.Fatalf("sync %d: exit %d\n%s%s", i+2, code, out, errOut)
		}
	}
	if again, _ := os.ReadFile(ran); string(again) != string(asked) {
		t.Errorf("a no-op sync ran engine binaries: %q", strings.TrimPrefix(string(again), string(asked)))
	}

	// An upgrade (containerd replaced, same answer, so no file changes):
	// the next sync asks the new binary once and keeps the answer; the
	// ones after ask nothing.
	p := filepath.Join(h.root, "usr/bin/containerd")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+".new", b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(ran, 0); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if code, out, errOut := h.run("", "--config", spec, "sync"); code != exitOK || !strings.Contains(out, "nothing to change") {
			t.Fatalf("sync %d after the upgrade: exit %d\n%s%s", i+1, code, out, errOut)
		}
	}
	if got, _ := os.ReadFile(ran); string(got) != "usr/bin/containerd\n" {
		t.Errorf("three syncs after the upgrade ran %q; want the new containerd once (its answer kept)", got)
	}
}
