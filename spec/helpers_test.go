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
	return Options{LookupEnv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
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
