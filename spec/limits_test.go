package spec

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mergeBomb is a spec whose merge keys nest depth deep, each level merging
// the one below fan times: fan^depth mappings to walk from a file of a few
// hundred bytes. Every mapping is a valid mirror, so without a bound the
// spec is accepted (after walking all of them).
func mergeBomb(depth, fan int) string {
	var b strings.Builder
	b.WriteString("mirrors:\n  r0.example.com: &a0\n    endpoint: [m.example.com]\n")
	for i := 1; i <= depth; i++ {
		fmt.Fprintf(&b, "  r%d.example.com: &a%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), fan), ","))
	}
	return b.String()
}

// parseGuarded parses with a generous hang guard: the bound is asserted by
// counting (expanded), never by the clock.
func parseGuarded(t *testing.T, name, data string) (*parser, error) {
	t.Helper()
	type result struct {
		p   *parser
		err error
	}
	done := make(chan result, 1)
	go func() {
		p := newParser(name, opts().withDefaults())
		s := newSpec()
		p.document(s, []byte(data))
		var err error
		if len(p.errs) > 0 {
			err = p.errs.sorted()
		}
		done <- result{p, err}
	}()
	select {
	case r := <-done:
		return r.p, r.err
	case <-time.After(time.Minute):
		t.Fatal("the parser did not return within a minute: unbounded expansion")
		return nil, nil
	}
}

// TestMergeKeyBombIsRefused: the merge-key bomb of issue 9 (8 levels of
// `<<: [*a, *a, ...]`, 10^8 mappings from 600 bytes; 135 s and 2.4 GB before)
// is refused with one error at the alias that would cross the budget,
// naming it and its anchor, after expanding no more than the budget.
func TestMergeKeyBombIsRefused(t *testing.T) {
	bomb := mergeBomb(8, 10)
	if len(bomb) > 700 {
		t.Fatalf("the bomb is %d bytes; it is meant to be small", len(bomb))
	}
	p, err := parseGuarded(t, "bomb.yaml", bomb)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("want one error, got %v", err)
	}
	e := errs[0]
	if e.Pos.File != "bomb.yaml" || e.Pos.Line < 4 {
		t.Errorf("error at %s, want at an alias of the bomb", e.Pos)
	}
	if !strings.Contains(e.Msg, "alias *a") || !strings.Contains(e.Msg, "(anchor &a") || !strings.Contains(e.Msg, "expand to more than") {
		t.Errorf("message %q does not name the alias, its anchor and the bound", e.Msg)
	}
	if e.Hint == "" {
		t.Error("no hint")
	}
	if p.expanded > p.budget || p.budget > 10_000 {
		t.Errorf("expanded %d nodes with a budget of %d; want at most the minimum budget of a small file", p.expanded, p.budget)
	}
}

// TestSmallMergeBombIsRefused is the bomb at a size the parser walks in well
// under a second without a budget (5^5 = 3125 mappings merged): it must be
// refused all the same, not accepted.
func TestSmallMergeBombIsRefused(t *testing.T) {
	_, err := Parse("bomb.yaml", []byte(mergeBomb(5, 5)), opts())
	if err == nil || !strings.Contains(err.Error(), "expand to more than") {
		t.Fatalf("Parse = %v, want the expansion refused", err)
	}
}

// TestAliasFanOutIsRefused: plain aliases (no merge key) of one large
// mapping are expansions too: 300 registries sharing a mirror entry of 500
// rewrites walk 150,000 rewrites from a file of 15 KB.
func TestAliasFanOutIsRefused(t *testing.T) {
	var b strings.Builder
	b.WriteString("mirrors:\n  r0.example.com: &m\n    endpoint: [m.example.com]\n    rewrite:\n")
	for i := range 500 {
		fmt.Fprintf(&b, "      \"^r%d/(.*)\": \"x/$1\"\n", i)
	}
	for i := 1; i <= 300; i++ {
		fmt.Fprintf(&b, "  r%d.example.com: *m\n", i)
	}
	p, err := parseGuarded(t, "fan.yaml", b.String())
	if err == nil || !strings.Contains(err.Error(), "alias *m (anchor &m at fan.yaml:2:") {
		t.Fatalf("Parse = %v, want the fan-out refused at an alias *m", err)
	}
	if p.expanded > p.budget {
		t.Errorf("expanded %d nodes, budget %d", p.expanded, p.budget)
	}
}

// TestAnchorsWithinBudget: what people write with anchors (a shared mirror
// entry, a shared auth block merged into many hosts) stays far below the
// budget, also in a large file.
func TestAnchorsWithinBudget(t *testing.T) {
	var m, c strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&m, "  r%d.example.com: *nexus\n", i)
		fmt.Fprintf(&c, "  h%d.example.com:\n    <<: *cfg\n", i)
	}
	doc := "mirrors:\n  docker.io: &nexus\n    endpoint: [https://nexus.example.com/repository/docker-proxy/v2]\n    dial_timeout: 5s\n" + m.String() +
		"configs:\n  nexus.example.com: &cfg\n    auth: {username: admin, password: x}\n    tls: {insecure_skip_verify: true}\n" + c.String()
	s, err := Parse("big.yaml", []byte(doc), opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Mirrors) != 2001 || len(s.Configs) != 2001 || s.Configs["h7.example.com"].Auth.Username != "admin" {
		t.Errorf("got %d mirrors and %d configs", len(s.Mirrors), len(s.Configs))
	}
}

// TestSpecSizeIsBounded: a spec given as bytes (a central config fetched by
// watch, a file read by a caller's ReadFile) is refused over MaxFileSize
// before it is parsed, by Parse, LoadCentral and Serial alike.
func TestSpecSizeIsBounded(t *testing.T) {
	big := "mirrors: {}\n" + strings.Repeat("# padding\n", MaxFileSize/10+1)
	check := func(what string, err error) {
		t.Helper()
		var errs Errors
		if !errors.As(err, &errs) || len(errs) != 1 || !strings.Contains(errs[0].Msg, "more than the 1048576 bytes a spec file may have") {
			t.Errorf("%s: %v, want the size refused", what, err)
		}
	}
	_, err := Parse("big.yaml", []byte(big), opts())
	check("Parse", err)
	_, err = LoadCentral("https://config.example.com/big.yaml", []byte(big), t.TempDir(), opts())
	check("LoadCentral", err)
	_, err = Serial("big.yaml", []byte("serial: 3\n"+big))
	check("Serial", err)
	if _, err := Parse("ok.yaml", []byte(big[:MaxFileSize]), opts()); err != nil {
		t.Errorf("a spec of exactly MaxFileSize bytes: %v", err)
	}
}

// TestLoadNamesFilesTooLarge: a spec file or drop-in over MaxFileSize, as
// the reader reports it, is one of the spec's mistakes, named with the
// others and with the way out (drop-ins), not an I/O failure.
func TestLoadNamesFilesTooLarge(t *testing.T) {
	big := strings.Repeat("# padding\n", MaxFileSize/10+1)
	dir := writeFilesIn(t, t.TempDir(), map[string]string{
		"config.yaml":         big,
		"conf.d/10-big.yaml":  big,
		"conf.d/20-typo.yaml": "mirors: {}\n",
	})
	_, err := Load(filepath.Join(dir, "config.yaml"), opts())
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("Load = %v, want three mistakes", err)
	}
	for i, file := range []string{"config.yaml", "10-big.yaml"} {
		if e := errs[i]; filepath.Base(e.Pos.File) != file || !strings.Contains(e.Msg, "more than the 1048576 bytes") || !strings.Contains(e.Hint, "drop-ins") {
			t.Errorf("mistake %d = %v, want %s refused for its size with a hint", i, e, file)
		}
	}
	if !strings.Contains(errs[2].Error(), "mirors") {
		t.Errorf("the drop-in's own mistake is missing: %v", errs[2])
	}
}

// TestReferencedFileSizeIsBounded: a password_file or TLS file over
// MaxFileSize is refused, also when the caller's ReadFile does not bound it.
func TestReferencedFileSizeIsBounded(t *testing.T) {
	big := make([]byte, MaxFileSize+1)
	o := opts()
	o.ReadFile = func(string) ([]byte, error) { return big, nil }
	_, err := Parse("/etc/mirrorctl/config.yaml", []byte("configs:\n  r.example.com:\n    auth: {username: u, password_file: pw}\n    tls: {ca_file: ca.crt}\n"), o)
	if err == nil || strings.Count(err.Error(), "is larger than 1048576 bytes") != 2 {
		t.Errorf("Parse = %v, want both files refused", err)
	}
}

// TestErrorsAreBounded: a file with half a million mistakes reports the
// first hundred and says there are more, rather than building (and
// printing) every one; the same mistake reached through many aliases is
// one mistake.
func TestErrorsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("mirrors:\n  docker.io:\n    endpoint: [")
	for i := range 500 {
		fmt.Fprintf(&b, "\"ftp://m%d.example.com\",", i)
	}
	b.WriteString("]\n")
	_, err := Parse("many.yaml", []byte(b.String()), opts())
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != maxErrors+1 {
		t.Fatalf("got %d errors, want %d", len(errs), maxErrors+1)
	}
	if last := errs[len(errs)-1]; !strings.Contains(last.Msg, "more than 100 mistakes in this file") {
		t.Errorf("last error %q does not say there are more", last)
	}

	shared := "mirrors:\n  a.example.com: &bad\n    endpoint: [\"ftp://m.example.com\"]\n"
	for i := range 50 {
		shared += fmt.Sprintf("  r%d.example.com: *bad\n", i)
	}
	_, err = Parse("shared.yaml", []byte(shared), opts())
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Errorf("an anchor's mistake reached through 50 aliases: %d errors, want 1:\n%v", len(errs), err)
	}
}

// TestBombAfterManyMistakes: the expansion error is reported even when the
// file already holds more mistakes than are listed.
func TestBombAfterManyMistakes(t *testing.T) {
	var b strings.Builder
	b.WriteString("mirrors:\n  a.example.com:\n    endpoint: [")
	for i := range 150 {
		fmt.Fprintf(&b, "\"ftp://m%d.example.com\",", i)
	}
	b.WriteString("]\n" + strings.TrimPrefix(mergeBomb(8, 10), "mirrors:\n"))
	p, err := parseGuarded(t, "late.yaml", b.String())
	if err == nil || !strings.Contains(err.Error(), "expand to more than") || !strings.Contains(err.Error(), "more than 100 mistakes") {
		t.Fatalf("want the first mistakes, the cap and the expansion refused:\n%v", err)
	}
	if p.expanded > p.budget {
		t.Errorf("expanded %d nodes, budget %d", p.expanded, p.budget)
	}
}
