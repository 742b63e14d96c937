package engines

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mirrorctl/mirrorctl/spec"
)

// Registries whose mirrors dockerd ignores are named in one warning per
// reason, at the first one's line: 1,000 of them gave 1,000 lines a sync.
func TestDockerUnusedMirrorsWarnOnce(t *testing.T) {
	specOf := func(n int) *spec.Spec {
		var b strings.Builder
		b.WriteString("mirrors:\n  docker.io:\n    endpoint: [\"https://hub-mirror.example.internal\"]\n")
		for i := range n {
			fmt.Fprintf(&b, "  reg%02d.example.com:\n    endpoint: [\"https://mirror%02d.example.internal\"]\n", i, i)
		}
		s, err := spec.Parse("spec.yaml", []byte(b.String()), spec.Options{Engines: Sections()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, c := range []struct {
		name     string
		n        int
		store    string
		version  string
		want     []string // substrings of the one warning
		wantNot  []string
		wantLine int
	}{
		{"classic_one", 1, storeClassic, "20.10.24", []string{`classic image store`, `the mirrors of "reg00.example.com" are not used`}, nil, 4},
		{"classic_three", 3, storeClassic, "20.10.24", []string{`the mirrors of 3 registries ("reg00.example.com", "reg01.example.com", "reg02.example.com") are not used`}, []string{"more"}, 4},
		{"classic_many", 12, storeClassic, "20.10.24", []string{`the mirrors of 12 registries ("reg00.example.com", "reg01.example.com", "reg02.example.com", "reg03.example.com", "reg04.example.com" and 7 more) are not used`}, []string{"reg05"}, 4},
		{"containerd_store_before_28", 2, storeContainerd, "27.5.1", []string{`Docker 27.5.1 uses mirrors for Docker Hub only`, `the mirrors of 2 registries ("reg00.example.com", "reg01.example.com")`}, nil, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &warnList{engine: "docker"}
			mirrors := dockerHubMirrors(specOf(c.n), Detection{Version: c.version, ImageStore: c.store}, w)
			if len(mirrors) != 1 || mirrors[0] != "https://hub-mirror.example.internal/" {
				t.Errorf("registry-mirrors %q, want only Docker Hub's mirror", mirrors)
			}
			if len(w.list) != 1 {
				t.Fatalf("%d warnings, want 1: %q", len(w.list), w.list)
			}
			msg := w.list[0].Message
			for _, s := range c.want {
				if !strings.Contains(msg, s) {
					t.Errorf("warning %q lacks %q", msg, s)
				}
			}
			for _, s := range c.wantNot {
				if strings.Contains(msg, s) {
					t.Errorf("warning %q has %q", msg, s)
				}
			}
			if w.list[0].Pos.Line != c.wantLine {
				t.Errorf("warning at line %d, want %d (the first registry's)", w.list[0].Pos.Line, c.wantLine)
			}
		})
	}
}
