package spec_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/tools/txtar"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/internal/testpki"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// The spec loader's fuzz target. Its seeds (testdata/fuzz/FuzzParse) are
// every spec the project ships or tests with: docs/spec.md's examples, the
// demo's, packaging's, the engines' goldens'; WRITE_FUZZ_SEEDS=1 go test
// ./spec -run TestWriteFuzzSeeds writes them again.

// The secrets the fuzzed specs can reach: a password_file's content, an
// environment variable's value and a TLS key. No error, and no rendered
// file that is not a secret, may ever hold one.
const (
	fuzzFileSecret = "fuzz-file-Secret-0xC0FFEE"
	fuzzEnvSecret  = "fuzz-env-Secret-0xBEEF"
)

func fuzzOptions() spec.Options {
	return spec.Options{
		Engines: engines.Sections(),
		ReadFile: func(name string) ([]byte, error) {
			switch base := path.Base(name); {
			case strings.HasSuffix(base, ".key"):
				return []byte(testpki.ClientKey), nil
			case strings.Contains(base, "ca"):
				return []byte(testpki.CA), nil
			case strings.HasSuffix(base, ".crt"), strings.HasSuffix(base, ".cert"), strings.HasSuffix(base, ".pem"):
				return []byte(testpki.ClientCert), nil
			case strings.Contains(name, "secret"), strings.Contains(name, "pass"), strings.HasSuffix(base, "pw"):
				return []byte(fuzzFileSecret + "\n"), nil
			}
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		},
		Glob:      func(string) ([]string, error) { return nil, nil },
		LookupEnv: func(string) (string, bool) { return fuzzEnvSecret, true },
	}
}

func fuzzSecrets() []string {
	out := []string{fuzzFileSecret, fuzzEnvSecret}
	for l := range strings.SplitSeq(testpki.ClientKey, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

// FuzzParse: any bytes given as a spec are accepted or refused, never a
// panic; a refusal is spec.Errors only (the references all resolve), at
// most MaxErrors+1 of them, each at a position in the file, none holding a
// secret; parsing the same bytes twice gives the same answer; aliases and
// merge keys never expand past the budget. An accepted spec names only
// valid hosts, and every engine renders it on an empty host either with an
// error or with files that hold secrets only when marked Secret, all
// inside the engine's own paths, rendering the same bytes over themselves.
func FuzzParse(f *testing.F) {
	f.Add([]byte("mirrors:\n  docker.io:\n    endpoint: [https://mirror.example.com]\n"))
	opts := fuzzOptions()
	secrets := fuzzSecrets()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		const name = "/etc/mirrorctl/config.yaml"
		s, err := spec.Parse(name, data, opts)
		s2, err2 := spec.Parse(name, data, opts)
		if fmt.Sprint(err) != fmt.Sprint(err2) || (s == nil) != (s2 == nil) {
			t.Fatalf("two parses differ: %v / %v", err, err2)
		}
		if expanded, budget := spec.Expansion(name, data, opts); expanded > budget {
			t.Fatalf("expanded %d nodes, over the budget of %d", expanded, budget)
		}
		if err != nil {
			checkErrors(t, name, data, err, secrets)
			return
		}
		if !slices.Equal(slices.Sorted(maps.Keys(s.Mirrors)), slices.Sorted(maps.Keys(s2.Mirrors))) ||
			!slices.Equal(s.SecretValues(), s2.SecretValues()) {
			t.Fatal("two parses give different specs")
		}
		for _, host := range append(slices.Collect(maps.Keys(s.Mirrors)), slices.Collect(maps.Keys(s.Configs))...) {
			if err := spec.CheckHost(host); err != nil {
				t.Fatalf("accepted host %q: %v", host, err)
			}
		}
		for _, e := range engines.All() {
			renderOnEmptyHost(t, e, s, secrets)
		}
	})
}

func checkErrors(t *testing.T, name string, data []byte, err error, secrets []string) {
	t.Helper()
	var errs spec.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("a refusal that is not spec.Errors: %T %v", err, err)
	}
	if len(errs) == 0 || len(errs) > spec.MaxErrors+1 {
		t.Fatalf("%d errors", len(errs))
	}
	lines := bytes.Count(data, []byte("\n")) + 1
	for _, e := range errs {
		if e.Pos.File != name || e.Pos.Line > lines || e.Pos.Line < 0 {
			t.Fatalf("error at %s, outside the file (%d lines): %v", e.Pos, lines, e)
		}
		for _, sec := range secrets {
			if strings.Contains(e.Error(), sec) {
				t.Fatalf("an error holds a secret: %v", e)
			}
		}
	}
}

// renderOnEmptyHost renders with e managed on an empty host tree.
func renderOnEmptyHost(t *testing.T, e engines.Engine, s *spec.Spec, secrets []string) {
	t.Helper()
	host := fstest.MapFS{"etc/passwd": {Data: []byte("root:x:0:0::/root:/bin/sh\n")}}
	d := e.Detect(t.Context(), engines.Host{FS: host}, s)
	d.Found, d.Managed = true, true
	res, err := e.Render(s, engines.Host{FS: host}, d)
	for _, sec := range secrets {
		if err != nil && strings.Contains(err.Error(), sec) {
			t.Fatalf("%s: the error holds a secret: %v", e.Name(), err)
		}
	}
	if err != nil {
		return
	}
	again := maps.Clone(host)
	owned := map[string]render.Ownership{}
	first := map[string][]byte{}
	for _, f := range res.Files {
		if f.Remove {
			continue
		}
		if !inside(f.Path, d) {
			t.Fatalf("%s writes %s, outside its paths %s, %v", e.Name(), f.Path, d.Config, d.Owns)
		}
		for _, sec := range secrets {
			if !f.Secret && strings.Contains(string(f.Data), sec) {
				t.Fatalf("%s: %s holds a secret but is not marked Secret", e.Name(), f.Path)
			}
		}
		first[f.Path] = f.Data
		again[engines.FSPath(f.Path)] = &fstest.MapFile{Data: f.Data}
		if f.Merged && !f.Release {
			owned[f.Path] = render.Ownership{Merged: true, Keys: f.Keys, Created: host[engines.FSPath(f.Path)] == nil}
		}
	}
	res2, err := e.Render(s, engines.Host{FS: again, Owned: owned}, d)
	if err != nil {
		t.Fatalf("%s: rendering over its own output: %v", e.Name(), err)
	}
	for _, f := range res2.Files {
		if !f.Remove && !bytes.Equal(first[f.Path], f.Data) {
			t.Fatalf("%s: rendering over its own output changes %s:\n%s\n---\n%s", e.Name(), f.Path, first[f.Path], f.Data)
		}
	}
}

// inside reports whether an engine may write p: its config file, a path
// under what it owns, or a user's ~/.docker/config.json (docker) or
// ~/.config/containers/auth.json (containers).
func inside(p string, d engines.Detection) bool {
	if p == d.Config || strings.HasSuffix(p, "/.docker/config.json") && d.Engine == "docker" ||
		strings.HasSuffix(p, "/.config/containers/auth.json") && d.Engine == "containers" {
		return true
	}
	return d.OwnsPath(p)
}

// TestWriteFuzzSeeds writes FuzzParse's seeds; off unless WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("WRITE_FUZZ_SEEDS=1 writes the seeds")
	}
	seeds := map[string][]byte{}
	doc, err := os.ReadFile("../docs/spec.md")
	if err != nil {
		t.Fatal(err)
	}
	for i, block := range strings.Split(string(doc), "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		seeds[fmt.Sprintf("docs-spec-%02d", i+1)] = []byte(block)
	}
	for name, p := range map[string]string{"demo": "../testdata/demo/spec.yaml", "packaging-config": "../packaging/config.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		seeds[name] = b
	}
	goldens, _ := filepath.Glob("../engines/testdata/*/*.txtar")
	for _, g := range goldens {
		a, err := txtar.ParseFile(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range a.Files {
			if f.Name == "spec.yaml" {
				seeds["golden-"+filepath.Base(filepath.Dir(g))+"-"+strings.TrimSuffix(filepath.Base(g), ".txtar")] = f.Data
			}
		}
	}
	// Anchors and merge keys, within the budget and past it.
	seeds["anchors"] = []byte("mirrors:\n  docker.io: &m\n    endpoint: [https://m.example.com]\n  quay.io: *m\nconfigs:\n  a.example.com: &c\n    auth: {username: u, password_env: PW}\n  b.example.com:\n    <<: *c\n    tls: {ca_file: ca.crt, cert_file: client.crt, key_file: client.key}\n")
	var bomb strings.Builder
	bomb.WriteString("mirrors:\n  r0.example.com: &a0\n    endpoint: [m.example.com]\n")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&bomb, "  r%d.example.com: &a%d {<<: [*a%d, *a%d, *a%d, *a%d]}\n", i, i, i-1, i-1, i-1, i-1)
	}
	seeds["merge-bomb"] = []byte(bomb.String())
	dir := "testdata/fuzz/FuzzParse"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
