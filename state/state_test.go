package state

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/internal/hosttest"
	"github.com/mirrorctl/mirrorctl/render"
)

func writeHost(t *testing.T, root, hostPath, data string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, hostPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func readHost(t *testing.T, root, hostPath string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, hostPath))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func permOf(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// plan is render.Plan that fails the test on error.
func plan(t *testing.T, root string, files ...render.File) []render.Change {
	t.Helper()
	changes, err := render.Plan(hosttest.Root(t, root), files)
	if err != nil {
		t.Fatal(err)
	}
	return changes
}

func TestSaveLoadRoundTrip(t *testing.T) {
	s := Open(hosttest.Root(t, t.TempDir()))
	st, err := s.Load()
	if err != nil {
		t.Fatalf("loading a missing state: %v", err)
	}
	if len(st.Files) != 0 || st.Files == nil {
		t.Fatalf("missing state: got %+v, want an empty map", st)
	}
	st.Files["/etc/containerd/certs.d/docker.io/hosts.toml"] = Entry{Engine: "containerd", SHA256: sum([]byte("x"))}
	if err := s.Save(st); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(st, got); d != "" {
		t.Fatalf("round trip (-saved +loaded):\n%s", d)
	}
	if m := permOf(t, s.Root.Join(s.Dir)); m != 0o700 {
		t.Errorf("state dir mode = %o, want 700", m)
	}
	if m := permOf(t, filepath.Join(s.Root.Join(s.Dir), "state.json")); m != 0o600 {
		t.Errorf("state.json mode = %o, want 600", m)
	}
}

func TestLoadUnparsableStateIsAnError(t *testing.T) {
	s := Open(hosttest.Root(t, t.TempDir()))
	for name, data := range map[string]string{
		"not_json":      "{\"version\": 1, \"files\": {",
		"wrong_version": `{"version": 7, "files": {}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.MkdirAll(s.Root.Join(s.Dir), 0o700); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(s.Root.Join(s.Dir), "state.json")
			if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			st, err := s.Load()
			if err == nil {
				t.Fatalf("Load = %+v, want an error", st)
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name %s", err, p)
			}
			if readHost(t, s.Root.Dir(), "/var/lib/mirrorctl/state.json") != data {
				t.Error("Load changed the unparsable state file")
			}
		})
	}
}

func TestRecord(t *testing.T) {
	root := t.TempDir()
	writeHost(t, root, "/etc/old", "old\n", 0o644)
	writeHost(t, root, "/etc/same", "same\n", 0o644)
	st := New()
	st.Files["/etc/old"] = Entry{Engine: "k3s", SHA256: sum([]byte("old\n"))}
	st.Files["/etc/never"] = Entry{Engine: "k3s", SHA256: sum([]byte("gone\n"))}
	changes := plan(t, root,
		render.File{Path: "/etc/new", Data: []byte("new\n")},
		render.File{Path: "/etc/same", Data: []byte("same\n")},
		render.File{Path: "/etc/old", Remove: true},
		render.File{Path: "/etc/never", Remove: true},
	)
	if err := render.Apply(context.Background(), hosttest.Root(t, root), changes); err != nil {
		t.Fatal(err)
	}
	st.Record("containerd", changes)
	want := map[string]Entry{
		"/etc/new":  {Engine: "containerd", SHA256: sum([]byte("new\n")), Ownership: render.Ownership{Created: true}},
		"/etc/same": {Engine: "containerd", SHA256: sum([]byte("same\n"))},
	}
	if d := cmp.Diff(want, st.Files); d != "" {
		t.Fatalf("state after Record (-want +got):\n%s", d)
	}
}

func TestConflicts(t *testing.T) {
	root := t.TempDir()
	const (
		foreign  = "/etc/containerd/certs.d/foreign.io/hosts.toml"
		ours     = "/etc/containerd/certs.d/ours.io/hosts.toml"
		edited   = "/etc/containerd/certs.d/edited.io/hosts.toml"
		gone     = "/etc/containerd/certs.d/gone.io/hosts.toml"
		alien    = "/etc/containerd/certs.d/alien.io/hosts.toml"
		daemon   = "/etc/docker/daemon.json"
		created  = "/etc/containerd/certs.d/new.io/hosts.toml"
		editedBy = "# edited by hand\n"
	)
	writeHost(t, root, foreign, "hand made\n", 0o644)
	writeHost(t, root, alien, "hand made\n", 0o644)
	writeHost(t, root, daemon, `{"debug": true}`, 0o644)
	st := New()
	first := plan(t, root,
		render.File{Path: ours, Data: []byte("v1\n")},
		render.File{Path: edited, Data: []byte("v1\n")},
		render.File{Path: gone, Data: []byte("v1\n")},
	)
	if err := render.Apply(context.Background(), hosttest.Root(t, root), first); err != nil {
		t.Fatal(err)
	}
	st.Record("containerd", first)
	writeHost(t, root, edited, editedBy, 0o644)

	changes := plan(t, root,
		render.File{Path: foreign, Data: []byte("v2\n")},
		render.File{Path: ours, Data: []byte("v2\n")},
		render.File{Path: edited, Data: []byte("v2\n")},
		render.File{Path: gone, Remove: true},
		render.File{Path: alien, Remove: true},
		render.File{Path: daemon, Data: []byte(`{"debug": true, "registry-mirrors": []}`), Merged: true},
		render.File{Path: created, Data: []byte("v2\n")},
	)
	got := st.Conflicts(changes)
	want := []Conflict{
		{Path: foreign, Reason: "exists and was not written by mirrorctl"},
		{Path: edited, Reason: "edited since mirrorctl wrote it"},
		{Path: alien, Reason: "exists and was not written by mirrorctl"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("conflicts (-want +got):\n%s", d)
	}

	// Not marked merged, the foreign daemon.json is a conflict too.
	for i := range changes {
		changes[i].File.Merged = false
	}
	got = st.Conflicts(changes)
	if len(got) != 4 || got[3].Path != daemon {
		t.Errorf("conflicts without merged: got %v, want daemon.json as the 4th", got)
	}
}

// files turns host paths into the files Backup saves.
func files(paths ...string) []render.File {
	var out []render.File
	for _, p := range paths {
		out = append(out, render.File{Path: p})
	}
	return out
}
