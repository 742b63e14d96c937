package engines

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mirrorctl/mirrorctl/spec"
)

func TestAddRegistryGroupsByFormatAndArguments(t *testing.T) {
	w := &warnList{engine: "x"}
	w.add(spec.Pos{Line: 1}, "before")
	for i := range 7 {
		w.addRegistry(spec.Pos{Line: 10 + i}, fmt.Sprintf("r%d", i), "dial_timeout %[2]s of %[1]s is not applied", "5s")
		if i == 0 {
			w.add(spec.Pos{Line: 2}, "between")
		}
	}
	w.addRegistry(spec.Pos{Line: 30}, "other", "dial_timeout %[2]s of %[1]s is not applied", "9s")
	w.addRegistry(spec.Pos{Line: 31}, "solo", "push of %[1]s is not applied")
	w.addRegistry(spec.Pos{Line: 32}, "p", "%[2]s%[3]s of %[1]s", "a", "bc")
	w.addRegistry(spec.Pos{Line: 33}, "q", "%[2]s%[3]s of %[1]s", "ab", "c")
	var got []string
	for _, x := range w.list {
		got = append(got, fmt.Sprintf("%d: %s", x.Pos.Line, x.Message))
	}
	want := []string{
		"1: before",
		`10: dial_timeout 5s of 7 registries ("r0", "r1", "r2", "r3", "r4" and 2 more) is not applied`,
		"2: between",
		`30: dial_timeout 9s of "other" is not applied`,
		`31: push of "solo" is not applied`,
		`32: abc of "p"`,
		`33: abc of "q"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, x := range w.list {
		if x.Engine != "x" {
			t.Errorf("warning %q has engine %q", x.Message, x.Engine)
		}
	}
}

// A trait many registries share is one warning per engine, not one per
// registry: 12 registries with a dial timeout, a rewrite and push.
func TestEnginesWarnOncePerSharedTrait(t *testing.T) {
	var b strings.Builder
	b.WriteString("mirrors:\n")
	for i := range 12 {
		fmt.Fprintf(&b, "  reg%02d.example.com:\n    endpoint: [\"https://mirror%02d.example.internal\"]\n"+
			"    dial_timeout: 5s\n    capabilities: [pull, resolve, push]\n    rewrite:\n      \"^a/(.*)\": \"b/$1\"\n", i, i)
	}
	s, err := spec.Parse("spec.yaml", []byte(b.String()), spec.Options{Engines: Sections()})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range All() {
		res, err := e.Render(s, Host{FS: hostTree()}, Detection{Engine: e.Name(), Managed: true, Version: "1.6.20"})
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		grouped := false
		for _, w := range res.Warnings {
			grouped = grouped || strings.Contains(w.Message, "12 registries")
			if n := strings.Count(w.Message, "reg0"); n > 1 && !strings.Contains(w.Message, "12 registries") {
				t.Errorf("%s: a warning names several registries without grouping them: %q", e.Name(), w.Message)
			}
			if strings.Contains(w.Message, "reg01.example.com") && !strings.Contains(w.Message, "12 registries") {
				t.Errorf("%s: reg01 has a warning of its own: %q", e.Name(), w.Message)
			}
		}
		if e.Name() != "crictl" && !grouped {
			t.Errorf("%s: no warning names the 12 registries: %q", e.Name(), res.Warnings)
		}
	}
}
