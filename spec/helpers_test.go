package spec

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mirrorctl/mirrorctl/credentials"
)

// testPassword is the one password the fixtures use, so tests can assert it
// never shows up where it must not.
const testPassword = "Pa55-w0rd!"

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// leakForms are the forms of testPassword that must never be printed.
func leakForms() []string {
	return []string{
		testPassword,
		"admin:" + testPassword,
		b64("admin:" + testPassword),
		b64("admin:" + testPassword + "\n"),
		b64(":" + testPassword),
		b64("admin" + testPassword),
		"tok-" + testPassword,
		"KEY-" + testPassword,
	}
}

// writeFiles writes name → content under a new temp dir and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	return writeFilesIn(t, t.TempDir(), files)
}

// writeFilesIn writes name → content under dir and returns dir, which
// exists only if files is not empty. Table tests use one temp dir with a
// subdirectory per case: on slow disks a directory each costs more than
// the case.
func writeFilesIn(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// envOpts resolves password_env from env only, never the real environment.
func envOpts(env map[string]string) Options {
	return Options{Engines: demoEngines(), LookupEnv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}}
}

// opts are the options of most tests: the demo engine's section is known.
func opts() Options { return Options{Engines: demoEngines()} }

// demo is an engine's settings as the spec tests see them: the engines'
// own readers live in package engines and are tested there.
type demo struct {
	Path, Unit, Mode string
	N                int
	List             []string
}

// demoEngines knows one engine, "demo", whose section reads every kind of
// value Section offers.
func demoEngines() map[string]SectionParser {
	return map[string]SectionParser{"demo": func(prev any, sec *Section) any {
		d, _ := prev.(demo)
		sec.Fields(
			Field{"path", func(v Value) { d.Path, _ = v.AbsPath("/etc/demo.conf") }},
			Field{"unit", func(v Value) { d.Unit, _ = v.Unit("demo.service") }},
			Field{"mode", func(v Value) { d.Mode, _ = v.Enum("fast", "slow") }},
			Field{"n", func(v Value) { d.N, _ = v.Int("write a number") }},
			Field{"list", func(v Value) { d.List, _, _ = v.Strings("write a list") }},
		)
		return d
	}}
}

// cmpSpec compares specs by secret values, leaving positions to the tests
// that are about them.
func cmpSpec() cmp.Options {
	return cmp.Options{
		cmp.Comparer(func(a, b credentials.Secret) bool { return a.Reveal() == b.Reveal() }),
		cmpopts.IgnoreTypes(Pos{}, []Pos(nil)),
		cmpopts.IgnoreFields(Spec{}, "Files"),
	}
}

func ptr[T any](v T) *T { return &v }
