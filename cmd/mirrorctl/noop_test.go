package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A sync that finds nothing to do asks no engine binary its version again:
// the answers are in versions.json (hostexec) as long as the binaries are
// the same files. (TestNoOpSyncWritesNothing checks that it writes nothing.)
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
}
