package engines

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"testing"
	"testing/fstest"

	"github.com/mirrorctl/mirrorctl/spec"
)

// Tiny host builders for detection tests:
//
//	hostTree(hostFile("usr/bin/dockerd"), hostUnit("docker.service"))
type hostOpt func(fstest.MapFS)

func hostTree(opts ...hostOpt) fstest.MapFS {
	m := fstest.MapFS{}
	for _, o := range opts {
		o(m)
	}
	return m
}

// hostFile adds a file (fs.FS path, no leading slash), with optional content.
func hostFile(p string, content ...string) hostOpt {
	return func(m fstest.MapFS) {
		data := ""
		if len(content) > 0 {
			data = content[0]
		}
		m[FSPath(p)] = &fstest.MapFile{Data: []byte(data), Mode: 0o644}
	}
}

// hostDir adds an empty directory.
func hostDir(p string) hostOpt {
	return func(m fstest.MapFS) { m[FSPath(p)] = &fstest.MapFile{Mode: fs.ModeDir | 0o755} }
}

// hostUnit installs a unit file where distribution packages put it.
func hostUnit(name string) hostOpt {
	return hostFile(path.Join("lib/systemd/system", name), "[Service]\nExecStart=/bin/true\n")
}

// fakeExec answers "<bin> --version" from a table.
// engineSpec is a spec whose engines.<name> section has toggle (auto when
// empty) and settings.
func engineSpec(name string, toggle spec.Toggle, settings any) *spec.Spec {
	if toggle == "" {
		toggle = spec.Auto
	}
	return &spec.Spec{Engines: spec.Engines{name: {Enabled: toggle, Settings: settings}}}
}

func fakeExec(out map[string]string) func(context.Context, string, ...string) (string, error) {
	return func(_ context.Context, bin string, args ...string) (string, error) {
		if o, ok := out[bin]; ok && len(args) == 1 && args[0] == "--version" {
			return o, nil
		}
		return "", errors.New("not found")
	}
}

func TestLeadingVersion(t *testing.T) {
	for in, want := range map[string]string{
		"Docker version 20.10.24+dfsg1, build 297e128":             "20.10.24",
		"Docker version 28.2.2, build e6534b4":                     "28.2.2",
		"crictl version v1.26.0":                                   "1.26.0",
		"k3s version v1.29.1+k3s1 (5dd33b2b)\ngo version go1.21.6": "1.29.1",
		"garbage": "",
	} {
		if got := leadingVersion(in); got != want {
			t.Errorf("leadingVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReleaseAtLeast(t *testing.T) {
	for _, c := range []struct {
		v          string
		maj, minor int
		want       bool
	}{
		{"25.0.0", 25, 0, true},
		{"24.0.9", 25, 0, false},
		{"20.10.24", 25, 0, false},
		{"28.5.2", 25, 0, true},
		{"1.36.0", 1, 37, false},
		{"1.37.0", 1, 37, true},
		{"2.0", 1, 37, true},
		{"", 1, 0, false},
	} {
		if got := releaseAtLeast(c.v, c.maj, c.minor); got != c.want {
			t.Errorf("releaseAtLeast(%q, %d, %d) = %v", c.v, c.maj, c.minor, got)
		}
	}
}

func TestFindUnitFilePrecedence(t *testing.T) {
	fsys := hostTree(
		hostUnit("docker.service"),
		hostFile("etc/systemd/system/docker.service", "[Service]\n"),
	)
	if got := findUnitFile(fsys, "docker.service"); got != "/etc/systemd/system/docker.service" {
		t.Errorf("findUnitFile = %q, want the /etc copy", got)
	}
	if got := findUnitFile(fsys, "containerd.service"); got != "" {
		t.Errorf("findUnitFile(missing) = %q", got)
	}
}

func TestUnitDropInsOrder(t *testing.T) {
	fsys := hostTree(
		hostFile("lib/systemd/system/docker.service.d/20-b.conf"),
		hostFile("lib/systemd/system/docker.service.d/10-a.conf"),
		hostFile("etc/systemd/system/docker.service.d/20-b.conf"), // hides the /lib one
		hostFile("etc/systemd/system/docker.service.d/notes.txt"),
	)
	got := unitDropIns(fsys, "docker.service")
	want := []string{"/lib/systemd/system/docker.service.d/10-a.conf", "/etc/systemd/system/docker.service.d/20-b.conf"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("unitDropIns = %q, want %q", got, want)
	}
}

func TestToggleManaged(t *testing.T) {
	for _, c := range []struct {
		t     spec.Toggle
		found bool
		want  bool
	}{
		{spec.Auto, true, true},
		{spec.Auto, false, false},
		{"", true, true},
		{spec.On, false, true},
		{spec.Off, true, false},
	} {
		if got, _ := toggleManaged(c.t, c.found); got != c.want {
			t.Errorf("toggleManaged(%q, %v) = %v", c.t, c.found, got)
		}
	}
}

func TestUnitName(t *testing.T) {
	for in, want := range map[string]string{"k3s-agent": "k3s-agent.service", "docker.service": "docker.service", "": ""} {
		if got := unitName(in); got != want {
			t.Errorf("unitName(%q) = %q", in, got)
		}
	}
}
