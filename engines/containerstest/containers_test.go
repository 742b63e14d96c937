package containerstest

import (
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/BurntSushi/toml"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"
	"golang.org/x/tools/txtar"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/spec"
)

const dropIn = "/etc/containers/registries.conf.d/50-mirrorctl.conf"

// goldenCase is one engines/testdata/containers/*.txtar rendered by the
// engine, the way engines' TestGolden renders it.
type goldenCase struct {
	name  string
	spec  *spec.Spec
	in    fstest.MapFS
	out   map[string][]byte // host path -> content of every file rendered
	pulls string            // the "pulls" section
}

func loadCases(t *testing.T) []goldenCase {
	t.Helper()
	files, err := filepath.Glob("../testdata/containers/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	var out []goldenCase
	for _, file := range files {
		arch, err := txtar.ParseFile(file)
		if err != nil {
			t.Fatal(err)
		}
		gc := goldenCase{name: strings.TrimSuffix(filepath.Base(file), ".txtar"), in: fstest.MapFS{}, out: map[string][]byte{}}
		aux := map[string][]byte{}
		var specData []byte
		var det engines.Detection
		for _, f := range arch.Files {
			switch {
			case f.Name == "spec.yaml":
				specData = f.Data
			case f.Name == "pulls":
				gc.pulls = string(f.Data)
			case f.Name == "detect.json":
				if err := json.Unmarshal(f.Data, &det); err != nil {
					t.Fatalf("%s: detect.json: %v", file, err)
				}
			case strings.HasPrefix(f.Name, "in/"):
				gc.in[strings.TrimPrefix(f.Name, "in/")] = &fstest.MapFile{Data: f.Data, Mode: 0o644}
			default:
				aux[path.Clean(f.Name)] = f.Data
			}
		}
		gc.spec, err = spec.Parse("spec.yaml", specData, spec.Options{
			Engines: engines.Sections(),
			ReadFile: func(name string) ([]byte, error) {
				if b, ok := aux[path.Clean(name)]; ok {
					return b, nil
				}
				return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
			},
			Glob:      func(string) ([]string, error) { return nil, nil },
			LookupEnv: func(k string) (string, bool) { return "env-" + k, true },
		})
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		det.Engine, det.Found, det.Managed = "containers", true, true
		res, err := engines.NewContainers().Render(gc.spec, engines.Host{FS: gc.in}, det)
		if err != nil {
			t.Fatalf("%s: render: %v", file, err)
		}
		for _, f := range res.Files {
			if !f.Remove {
				gc.out[f.Path] = f.Data
			}
		}
		out = append(out, gc)
	}
	return out
}

// writeTree writes the case's input files and its rendered files under a
// temporary root and returns the root.
func writeTree(t *testing.T, gc goldenCase, withInput bool) string {
	t.Helper()
	root := t.TempDir()
	write := func(p string, data []byte) {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if withInput {
		for p, f := range gc.in {
			write(p, f.Data)
		}
	}
	for p, data := range gc.out {
		write(p, data)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc/containers/registries.conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A distribution ships registries.conf (containers/image wants it when
	// its path is given, as here); an empty one is what a node without one
	// amounts to.
	if _, err := os.Stat(filepath.Join(root, "etc/containers/registries.conf")); err != nil {
		write("/etc/containers/registries.conf", nil)
	}
	return root
}

// sysContext reads registries.conf and registries.conf.d under root only.
func sysContext(root string) *types.SystemContext {
	return &types.SystemContext{
		SystemRegistriesConfPath:    filepath.Join(root, "etc/containers/registries.conf"),
		SystemRegistriesConfDirPath: filepath.Join(root, "etc/containers/registries.conf.d"),
	}
}

// Every drop-in the engine writes loads in sysregistriesv2 on its own, and
// with no key that containers/image would not decode (it logs those at
// debug level and ignores them, so a misspelt key would silently do nothing).
func TestDropInLoads(t *testing.T) {
	for _, gc := range loadCases(t) {
		data, ok := gc.out[dropIn]
		if !ok {
			continue
		}
		t.Run(gc.name, func(t *testing.T) {
			var conf sysregistriesv2.V2RegistriesConf
			meta, err := toml.Decode(string(data), &conf)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if u := meta.Undecoded(); len(u) > 0 {
				t.Errorf("keys containers/image does not know: %v", u)
			}
			root := writeTree(t, goldenCase{out: map[string][]byte{dropIn: data}}, false)
			sysregistriesv2.InvalidateCache()
			if _, err := sysregistriesv2.TryUpdatingCache(sysContext(root)); err != nil {
				t.Fatalf("sysregistriesv2 refuses the drop-in: %v", err)
			}
		})
	}
}

// For a table of image references per case (the "pulls" section), the pull
// sources containers/image computes from registries.conf, the other
// drop-ins and mirrorctl's, in order and with their insecure flags, are
// what the spec means: the mirrors in spec order, then the registry itself.
func TestPullSources(t *testing.T) {
	n := 0
	for _, gc := range loadCases(t) {
		if gc.pulls == "" {
			continue
		}
		t.Run(gc.name, func(t *testing.T) {
			root := writeTree(t, gc, true)
			sys := sysContext(root)
			sysregistriesv2.InvalidateCache()
			for _, line := range strings.Split(strings.TrimSpace(gc.pulls), "\n") {
				n++
				img, want, ok := strings.Cut(line, " -> ")
				if !ok {
					t.Fatalf("pulls line %q: want IMAGE -> SOURCE[, SOURCE...]", line)
				}
				got, err := pullSources(sys, img)
				if err != nil {
					t.Fatalf("%s: %v", img, err)
				}
				if got != want {
					t.Errorf("%s:\n got %s\nwant %s", img, got, want)
				}
			}
		})
	}
	if n == 0 {
		t.Fatal("no pulls section in any case")
	}
}

// pullSources is "ref[ insecure], ..." as containers/image tries them.
func pullSources(sys *types.SystemContext, img string) (string, error) {
	ref, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		return "", err
	}
	reg, err := sysregistriesv2.FindRegistry(sys, ref.String())
	if err != nil {
		return "", err
	}
	if reg == nil {
		return ref.String(), nil // no table: the reference as it is
	}
	srcs, err := reg.PullSourcesFromReference(ref)
	if err != nil {
		return "", err
	}
	var out []string
	for _, s := range srcs {
		e := s.Reference.String()
		if s.Endpoint.Insecure {
			e += " insecure"
		}
		out = append(out, e)
	}
	return strings.Join(out, ", "), nil
}

// Every auth.json the engine writes (the users' and CRI-O's) gives
// containers/image's own credential lookup the spec's user and password
// for each configs host, Docker Hub under docker.io.
func TestAuthFiles(t *testing.T) {
	n := 0
	for _, gc := range loadCases(t) {
		for p, data := range gc.out {
			if !strings.HasSuffix(p, ".json") {
				continue
			}
			t.Run(gc.name+p, func(t *testing.T) {
				file := filepath.Join(t.TempDir(), "auth.json")
				if err := os.WriteFile(file, data, 0o600); err != nil {
					t.Fatal(err)
				}
				var helpers struct {
					CredHelpers map[string]string `json:"credHelpers"`
				}
				_ = json.Unmarshal(data, &helpers)
				for _, host := range slices.Sorted(maps.Keys(gc.spec.Configs)) {
					a := gc.spec.Configs[host].Auth
					if a == nil || host == "*" || (a.Username == "" && a.IdentityToken.IsZero()) {
						continue
					}
					if helpers.CredHelpers[host] != "" {
						continue // the engine warns: containers/image asks the helper
					}
					n++
					got, err := config.GetCredentials(&types.SystemContext{AuthFilePath: file}, host)
					if err != nil {
						t.Fatalf("%s: %v", host, err)
					}
					want := types.DockerAuthConfig{Username: a.Username, Password: a.Password.Reveal(), IdentityToken: a.IdentityToken.Reveal()}
					if !a.IdentityToken.IsZero() {
						want.Username = "<token>" // as the docker CLI writes a token login
					}
					if got != want {
						t.Errorf("%s: credentials %q/%d bytes/%d bytes, want %q/%d bytes/%d bytes", host,
							got.Username, len(got.Password), len(got.IdentityToken), want.Username, len(want.Password), len(want.IdentityToken))
					}
				}
			})
		}
	}
	if n == 0 {
		t.Fatal("no credentials checked")
	}
}
