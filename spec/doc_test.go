package spec_test

import (
	"os"
	"strings"
	"testing"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/spec"

	"github.com/mirrorctl/mirrorctl/internal/testpki"
)

// TestDocExamples: every complete YAML example in docs/spec.md is a valid
// spec, engine sections read by the engines themselves. Skeletons with
// <placeholders> are skipped; referenced files are stubbed.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/spec.md")
	if err != nil {
		t.Fatal(err)
	}
	// TLS files are real PEM: the loader checks what they hold.
	stub := func(name string) ([]byte, error) {
		switch {
		case strings.HasSuffix(name, ".key"):
			return []byte(testpki.ClientKey), nil
		case strings.HasSuffix(name, "ca.crt"):
			return []byte(testpki.CA), nil
		case strings.HasSuffix(name, ".crt"), strings.HasSuffix(name, ".cert"):
			return []byte(testpki.ClientCert), nil
		}
		return []byte("x"), nil
	}
	opts := spec.Options{Engines: engines.Sections(), ReadFile: stub}
	n := 0
	for i, block := range strings.Split(string(doc), "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if strings.Contains(block, "<") {
			continue
		}
		n++
		if _, err := spec.Parse("docs/spec.md", []byte(block), opts); err != nil {
			t.Errorf("example %d:\n%s\n%v", i+1, block, err)
		}
	}
	if n < 5 {
		t.Errorf("only %d examples checked; did the doc's code fences change?", n)
	}
}
