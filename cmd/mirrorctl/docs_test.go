//go:build gendocs

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenDocs(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600") // 2026-01-01: a reproducible date
	man, compl := t.TempDir(), t.TempDir()
	var out, errb bytes.Buffer
	g := &globalFlags{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	if code := runWith(context.Background(), g, []string{"gen-docs", "--man", man, "--completions", compl}); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, page := range []string{"mirrorctl.1", "mirrorctl-sync.1", "mirrorctl-cloud-init.1", "mirrorctl-auth-encode.1", "mirrorctl-completion.1"} {
		b, err := os.ReadFile(filepath.Join(man, page))
		if err != nil {
			t.Errorf("no man page %s: %v", page, err)
			continue
		}
		if !strings.HasPrefix(string(b), ".nh\n.TH ") || !strings.Contains(string(b), `"Jan 2026"`) {
			t.Errorf("%s: not a man page with the SOURCE_DATE_EPOCH date:\n%.300s", page, b)
		}
	}
	if _, err := os.Stat(filepath.Join(man, "mirrorctl-gen-docs.1")); err == nil {
		t.Error("the hidden gen-docs command has a man page")
	}
	b, _ := os.ReadFile(filepath.Join(man, "mirrorctl.1"))
	if !strings.Contains(string(b), "Exit codes") {
		t.Error("mirrorctl.1 lacks the exit codes")
	}
	for name, want := range map[string]string{
		"mirrorctl":      "__start_mirrorctl",
		"_mirrorctl":     "#compdef mirrorctl",
		"mirrorctl.fish": "complete -c mirrorctl",
	} {
		b, err := os.ReadFile(filepath.Join(compl, name))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("completion %s lacks %q (%v)", name, want, err)
		}
	}
}

func TestGenDocsNeedsADirectory(t *testing.T) {
	var out, errb bytes.Buffer
	g := &globalFlags{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	if code := runWith(context.Background(), g, []string{"gen-docs"}); code != exitInput {
		t.Errorf("exit %d, want %d", code, exitInput)
	}
}
