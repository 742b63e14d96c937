package engines

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/tools/txtar"

	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

var update = flag.Bool("update", false, "rewrite the out/ and warnings sections of engines/testdata/*/*.txtar")

// A golden case is a txtar archive under testdata/<engine>/:
//
//	-- spec.yaml --            the spec (required)
//	-- detect.json --          the Detection to render with (optional; Managed is set for you)
//	-- detect --               instead: run Detect on in/ (optional), with
//	                           "version: <what every binary's --version prints>"
//	                           and the expected "image_store: <store>" lines
//	-- in/etc/... --           files already on the host
//	-- out/etc/... --          the exact set of files the engine must render
//	-- owned.json --           what state.json records of earlier syncs (Host.Owned; optional)
//	-- warnings --             expected warnings, one per line (optional)
//	-- error --                a substring the Render error must contain (optional)
//	-- pulls --                image -> pull sources, judged by containers/image (engines/containerstest)
//
// Any other file (secrets/x, certs/ca.crt) is readable by the spec loader
// relative to spec.yaml. A file rendered with Remove set appears as
// "-- remove/etc/... --" with empty content.
func TestGolden(t *testing.T) {
	for _, e := range All() {
		dir := filepath.Join("testdata", e.Name())
		cases, _ := filepath.Glob(filepath.Join(dir, "*.txtar"))
		for _, file := range cases {
			t.Run(e.Name()+"/"+strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
				runGolden(t, e, file)
			})
		}
	}
}

type goldenCase struct {
	arch     *txtar.Archive
	spec     *spec.Spec
	specErr  error
	det      Detection
	in       fstest.MapFS
	out      map[string]string
	warnings []string
	wantErr  string
	owned    map[string]render.Ownership
	// detect: Detect on in/ with every binary answering version.
	detect     bool
	version    string
	imageStore string
}

func loadGolden(t *testing.T, e Engine, file string) *goldenCase {
	t.Helper()
	arch, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	gc := &goldenCase{arch: arch, in: fstest.MapFS{}, out: map[string]string{}}
	aux := map[string][]byte{}
	var specData []byte
	for _, f := range arch.Files {
		switch {
		case f.Name == "spec.yaml":
			specData = f.Data
		case f.Name == "detect.json":
			if err := json.Unmarshal(f.Data, &gc.det); err != nil {
				t.Fatalf("detect.json: %v", err)
			}
		case f.Name == "owned.json":
			if err := json.Unmarshal(f.Data, &gc.owned); err != nil {
				t.Fatalf("owned.json: %v", err)
			}
		case f.Name == "warnings":
			for _, l := range strings.Split(strings.TrimSpace(string(f.Data)), "\n") {
				if l != "" {
					gc.warnings = append(gc.warnings, l)
				}
			}
		case f.Name == "detect":
			gc.detect = true
			for _, l := range strings.Split(strings.TrimSpace(string(f.Data)), "\n") {
				k, v, _ := strings.Cut(l, ":")
				switch strings.TrimSpace(k) {
				case "version":
					gc.version = strings.TrimSpace(v)
				case "image_store":
					gc.imageStore = strings.TrimSpace(v)
				default:
					t.Fatalf("detect: unknown line %q", l)
				}
			}
		case f.Name == "error":
			gc.wantErr = strings.TrimSpace(string(f.Data))
		case strings.HasPrefix(f.Name, "in/"):
			gc.in[strings.TrimPrefix(f.Name, "in/")] = &fstest.MapFile{Data: f.Data, Mode: 0o644}
		case strings.HasPrefix(f.Name, "out/"), strings.HasPrefix(f.Name, "remove/"):
			gc.out[f.Name] = string(f.Data)
		default:
			aux[path.Clean(f.Name)] = f.Data
		}
	}
	if specData == nil {
		t.Fatal("no spec.yaml section")
	}
	opts := spec.Options{
		Engines: Sections(),
		ReadFile: func(name string) ([]byte, error) {
			if b, ok := aux[path.Clean(name)]; ok {
				return b, nil
			}
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		},
		Glob:      func(string) ([]string, error) { return nil, nil },
		LookupEnv: func(k string) (string, bool) { return "env-" + k, true },
	}
	gc.spec, gc.specErr = spec.Parse("spec.yaml", specData, opts)
	if gc.specErr != nil {
		t.Fatalf("spec: %v", gc.specErr)
	}
	if gc.detect {
		h := Host{FS: gc.in, Version: func(context.Context, string, ...string) (string, error) { return gc.version, nil }}
		gc.det = e.Detect(context.Background(), h, gc.spec)
		if gc.det.ImageStore != gc.imageStore {
			t.Errorf("Detect: image store %q (%s), want %q", gc.det.ImageStore, gc.det.Reason, gc.imageStore)
		}
	}
	gc.det.Engine = e.Name()
	gc.det.Managed = true
	gc.det.Found = true
	return gc
}

func renderedSections(t *testing.T, res Result) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, f := range res.Files {
		if !path.IsAbs(f.Path) {
			t.Errorf("rendered path %q is not absolute", f.Path)
		}
		if f.Remove {
			got["remove"+f.Path] = ""
			continue
		}
		if _, dup := got["out"+f.Path]; dup {
			t.Errorf("%s rendered twice", f.Path)
		}
		got["out"+f.Path] = string(f.Data)
	}
	return got
}

func runGolden(t *testing.T, e Engine, file string) {
	gc := loadGolden(t, e, file)
	h := Host{FS: gc.in, Owned: gc.owned}
	res, err := e.Render(gc.spec, h, gc.det)
	if gc.wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), gc.wantErr) {
			t.Fatalf("Render error = %v, want it to contain %q", err, gc.wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	got := renderedSections(t, res)
	var gotWarn []string
	for _, w := range res.Warnings {
		gotWarn = append(gotWarn, w.String())
	}
	if *update {
		writeGolden(t, file, gc.arch, got, gotWarn)
		return
	}
	for name, want := range gc.out {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: not rendered", name)
			continue
		}
		if g != want {
			t.Errorf("%s differs:\n--- got ---\n%s\n--- want ---\n%s", name, g, want)
		}
	}
	for name := range got {
		if _, ok := gc.out[name]; !ok {
			t.Errorf("%s: rendered but not expected", name)
		}
	}
	if !slices.Equal(gotWarn, gc.warnings) {
		t.Errorf("warnings:\n got %q\nwant %q", gotWarn, gc.warnings)
	}

	// Idempotence: with our own output on disk, rendering again gives the same bytes.
	again := fstest.MapFS{}
	for k, v := range gc.in {
		again[k] = v
	}
	for _, f := range res.Files {
		if f.Remove {
			delete(again, FSPath(f.Path))
			continue
		}
		again[FSPath(f.Path)] = &fstest.MapFile{Data: f.Data, Mode: 0o644}
	}
	// What the first render owns is what state.json now records.
	owned := map[string]render.Ownership{}
	for _, f := range res.Files {
		if f.Merged && !f.Release && !f.Remove {
			owned[f.Path] = render.Ownership{Merged: true, Keys: f.Keys, Created: gc.owned[f.Path].Created || gc.in[FSPath(f.Path)] == nil}
		}
	}
	res2, err := e.Render(gc.spec, Host{FS: again, Owned: owned}, gc.det)
	if err != nil {
		t.Fatalf("re-render on own output: %v", err)
	}
	got2 := renderedSections(t, res2)
	for name, v := range got2 {
		if strings.HasPrefix(name, "remove/") {
			continue
		}
		if got["out"+strings.TrimPrefix(name, "out")] != v {
			t.Errorf("re-render on own output changed %s:\n%s", name, v)
		}
	}
}

func writeGolden(t *testing.T, file string, arch *txtar.Archive, got map[string]string, warns []string) {
	var keep []txtar.File
	for _, f := range arch.Files {
		if strings.HasPrefix(f.Name, "out/") || strings.HasPrefix(f.Name, "remove/") || f.Name == "warnings" {
			continue
		}
		keep = append(keep, f)
	}
	names := make([]string, 0, len(got))
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		keep = append(keep, txtar.File{Name: n, Data: []byte(got[n])})
	}
	if len(warns) > 0 {
		keep = append(keep, txtar.File{Name: "warnings", Data: []byte(strings.Join(warns, "\n") + "\n")})
	}
	arch.Files = keep
	var buf bytes.Buffer
	buf.Write(txtar.Format(arch))
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// detectCtx is for detection tests.
var detectCtx = context.Background()
