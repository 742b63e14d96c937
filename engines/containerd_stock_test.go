package engines

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	srvconfig "github.com/containerd/containerd/v2/cmd/containerd/server/config"
	"github.com/pelletier/go-toml/v2"
	"github.com/pmezard/go-difflib/difflib"

	"github.com/mirrorctl/mirrorctl/spec"
)

// stockConfig is a config.toml as shipped (testdata/containerd-config,
// README there): Debian 12's package file, and what each containerd's
// `config default` prints, with comments added by hand.
type stockConfig struct {
	file, version string
	schema        int
}

func stockConfigs() []stockConfig {
	return []stockConfig{
		{"debian12-containerd-1.6.20.toml", "1.6.20", 2},
		{"containerd-1.6.20-default.toml", "1.6.20", 2},
		{"containerd-2.0.14-default.toml", "2.0.14", 3},
		{"containerd-2.4.2-default.toml", "2.4.2", 4},
	}
}

const stockSpec = `mirrors:
  docker.io:
    endpoint:
      - https://mirror.example.com
configs:
  mirror.example.com:
    auth:
      username: user
      password: pass
engines:
  containerd:
    credentials: config
`

// renderStock renders spec text over one config.toml and returns the
// new config.toml and the whole result.
func renderStock(t *testing.T, conf []byte, version, specText string) ([]byte, Result) {
	t.Helper()
	s, err := spec.Parse("spec.yaml", []byte(specText), spec.Options{Engines: Sections()})
	if err != nil {
		t.Fatal(err)
	}
	h := Host{FS: fstest.MapFS{"etc/containerd/config.toml": {Data: conf}}}
	res, err := NewContainerd().Render(s, h, Detection{Version: version})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	for _, f := range res.Files {
		if f.Path == containerdConfigPath {
			return f.Data, res
		}
	}
	t.Fatal("config.toml not rendered")
	return nil, res
}

func readStock(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "containerd-config", file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestContainerdStockConfigsEditedInPlace: with a spec, every line of a
// stock config.toml outside the managed keys stays byte for byte and in
// order; the file decodes to the original plus exactly config_path and the
// auth table; containerd's own loader reads that config_path; rendering
// the result again changes nothing.
func TestContainerdStockConfigsEditedInPlace(t *testing.T) {
	const auth = "dXNlcjpwYXNz" // user:pass
	for _, sc := range stockConfigs() {
		t.Run(sc.file, func(t *testing.T) {
			in := readStock(t, sc.file)
			out, res := renderStock(t, in, sc.version, stockSpec)
			for _, w := range res.Warnings {
				if strings.Contains(w.Message, "rewritten as a whole") {
					t.Errorf("fell back to a whole rewrite: %s", w.Message)
				}
			}
			onlyManagedLinesChanged(t, in, out)

			// Semantics: the original plus config_path and the auth table.
			var want, got map[string]any
			if err := toml.Unmarshal(in, &want); err != nil {
				t.Fatal(err)
			}
			if err := toml.Unmarshal(out, &got); err != nil {
				t.Fatalf("output is not TOML: %v", err)
			}
			reg := []string{"plugins", registryPlugin(sc.schema), "registry"}
			applyToMap(want, set(containerdCertsDir, append(reg, "config_path")...))
			applyToMap(want, set(map[string]any{"auth": auth}, append(reg, "configs", "mirror.example.com", "auth")...))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decodes to something else than the original plus config_path and auth:\n%s", out)
			}

			cfg := loadContainerdConfig(t, out)
			if p := loadedString(cfg.Plugins, registryPlugin(sc.schema), "registry", "config_path"); p != containerdCertsDir {
				t.Errorf("containerd's loader reads config_path %q, want %q", p, containerdCertsDir)
			}
			if cfg.Version != sc.schema {
				t.Errorf("containerd's loader reads version %d, want %d", cfg.Version, sc.schema)
			}
			if sc.schema == 2 {
				checkWithContainerd16(t, out, auth)
			}

			again, _ := renderStock(t, out, sc.version, stockSpec)
			if string(again) != string(out) {
				t.Errorf("rendering the output again changed it:\n%s", again)
			}
		})
	}
}

// TestContainerdStockConfigsEmptySpec: an empty spec leaves each stock
// file, Debian's first, byte for byte as it is.
func TestContainerdStockConfigsEmptySpec(t *testing.T) {
	for _, sc := range stockConfigs() {
		t.Run(sc.file, func(t *testing.T) {
			in := readStock(t, sc.file)
			out, res := renderStock(t, in, sc.version, "mirrors: {}\n")
			if string(out) != string(in) {
				t.Errorf("an empty spec changed config.toml:\n%s", out)
			}
			if len(res.Files) != 1 {
				t.Errorf("rendered %d files, want config.toml alone", len(res.Files))
			}
		})
	}
}

// onlyManagedLinesChanged diffs in and out line by line: every line
// removed or added must be config_path, mirrorctl's auth table and its
// marker, or a blank line around a new table.
func onlyManagedLinesChanged(t *testing.T, in, out []byte) {
	t.Helper()
	managed := func(l string) bool {
		s := strings.TrimSpace(l)
		return s == "" || strings.HasPrefix(s, "config_path = ") || strings.HasPrefix(l, authMarker) ||
			strings.HasSuffix(s, `.registry]`) || strings.HasSuffix(s, `.registry.configs."mirror.example.com".auth]`) ||
			s == `auth = "dXNlcjpwYXNz"` || s == `auth = 'dXNlcjpwYXNz'`
	}
	a, b := strings.SplitAfter(string(in), "\n"), strings.SplitAfter(string(out), "\n")
	changed := 0
	for _, op := range difflib.NewMatcher(a, b).GetOpCodes() {
		if op.Tag == 'e' {
			continue
		}
		for _, l := range append(a[op.I1:op.I2:op.I2], b[op.J1:op.J2]...) {
			changed++
			if !managed(l) {
				t.Errorf("line changed that mirrorctl does not manage: %q", l)
			}
		}
	}
	if changed == 0 || changed > 6 {
		t.Errorf("%d lines changed, want 1 to 6:\n%s", changed, out)
	}
}

// loadContainerdConfig loads data with containerd 2.x's own config loader.
func loadContainerdConfig(t *testing.T, data []byte) *srvconfig.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg srvconfig.Config
	if err := srvconfig.LoadConfig(context.Background(), p, &cfg); err != nil {
		t.Fatalf("containerd's LoadConfig: %v", err)
	}
	return &cfg
}

// loadedString walks containerd's undecoded plugin tables.
func loadedString(m map[string]any, keys ...string) string {
	for _, k := range keys[:len(keys)-1] {
		m, _ = m[k].(map[string]any)
	}
	s, _ := m[keys[len(keys)-1]].(string)
	return s
}

// checkWithContainerd16 asks the containerd 1.6 binary installed on this
// machine, when there is one, to load the file: `config dump` decodes it
// with 1.6's own loader and prints the CRI plugin's config.
func checkWithContainerd16(t *testing.T, data []byte, auth string) {
	t.Helper()
	const bin = "/usr/bin/containerd"
	ver, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.Contains(parseContainerdVersion(string(ver)), "1.6.") {
		t.Log("no containerd 1.6 installed: checked with go-toml and the 2.x loader only")
		return
	}
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	dump, err := exec.Command(bin, "--config", p, "config", "dump").CombinedOutput()
	if err != nil {
		t.Fatalf("containerd 1.6 refuses the file: %v\n%s", err, dump)
	}
	var got map[string]any
	if err := toml.Unmarshal(dump, &got); err != nil {
		t.Fatalf("config dump: %v", err)
	}
	plugins, _ := got["plugins"].(map[string]any)
	if p := loadedString(plugins, criV1Plugin, "registry", "config_path"); p != containerdCertsDir {
		t.Errorf("containerd 1.6 reads config_path %q, want %q", p, containerdCertsDir)
	}
	if a := loadedString(plugins, criV1Plugin, "registry", "configs", "mirror.example.com", "auth", "auth"); a != auth {
		t.Errorf("containerd 1.6 reads auth %q for mirror.example.com, want %q", a, auth)
	}
}
