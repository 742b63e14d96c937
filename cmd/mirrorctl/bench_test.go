package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// BenchmarkNoopSync is a sync of the demo tree that finds nothing to do, in
// process: spec loading, detection (which runs each engine binary's
// --version), rendering, planning, the lock and the state file.
func BenchmarkNoopSync(b *testing.B) {
	h := newHost(b)
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	if code, _, e := h.run("", "--config", spec, "sync", "--adopt", "--no-restart"); code != exitOK {
		b.Fatal(e)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var out, errb bytes.Buffer
		g := &globalFlags{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
		if code := runWith(context.Background(), g, []string{"--root", h.root, "--config", spec, "sync", "--no-restart"}); code != exitOK || !strings.Contains(out.String(), "nothing to change") {
			b.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
		}
	}
}
