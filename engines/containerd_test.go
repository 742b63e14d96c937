package engines

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/pelletier/go-toml/v2"

	"github.com/mirrorctl/mirrorctl/engines/health"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// scriptExec writes an executable shell script at hostPath under a fresh
// root and returns a Version func that really runs binaries under that root.
func scriptExec(t *testing.T, hostPath, output string) func(context.Context, string, ...string) (string, error) {
	t.Helper()
	root := t.TempDir()
	p := filepath.Join(root, filepath.FromSlash(hostPath))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\n[ \"$1\" = --version ] || exit 2\necho '" + output + "'\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context, bin string, args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, filepath.Join(root, filepath.FromSlash(bin)), args...).Output()
		return string(out), err
	}
}

func TestContainerdDetect(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s), Mode: 0o755} }
	const debian16 = "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3"
	const v2 = "containerd github.com/containerd/containerd/v2 v2.4.2 1a2b3c4d"
	tests := []struct {
		name    string
		fs      fstest.MapFS
		toggle  spec.Toggle
		set     ContainerdSettings
		bin     string // where scriptExec puts the binary, if anywhere
		out     string // what it prints
		want    Detection
		noExtra bool
	}{
		{name: "not_installed", fs: fstest.MapFS{},
			want: Detection{Reason: "not installed"}},
		{name: "debian_binary_1_6", fs: fstest.MapFS{"usr/bin/containerd": file("")}, bin: "/usr/bin/containerd", out: debian16,
			want: Detection{Found: true, Managed: true, Version: "1.6.20", Reason: "binary /usr/bin/containerd v1.6.20"}},
		{name: "local_binary_2_x", fs: fstest.MapFS{"usr/local/bin/containerd": file("")}, bin: "/usr/local/bin/containerd", out: v2,
			want: Detection{Found: true, Managed: true, Version: "2.4.2", Reason: "binary /usr/local/bin/containerd v2.4.2"}},
		{name: "binary_prints_garbage", fs: fstest.MapFS{"usr/bin/containerd": file("")}, bin: "/usr/bin/containerd", out: "hello",
			want: Detection{Found: true, Managed: true, Reason: "binary /usr/bin/containerd (version unknown)"}},
		{name: "unit_file_only", fs: fstest.MapFS{"lib/systemd/system/containerd.service": file("[Unit]")},
			want: Detection{Found: true, Managed: true, Reason: "unit /lib/systemd/system/containerd.service"}},
		{name: "disabled_in_spec", fs: fstest.MapFS{"usr/bin/containerd": file("")}, toggle: spec.Off,
			want: Detection{Found: true, Reason: "disabled in spec"}},
		{name: "forced_on_not_installed", fs: fstest.MapFS{}, toggle: spec.On,
			want: Detection{Managed: true, Reason: "not installed; enabled in spec"}},
		{name: "existing_v3_config_unknown_version",
			fs:   fstest.MapFS{"usr/bin/containerd": file(""), "etc/containerd/config.toml": file("version = 3\n")},
			want: Detection{Found: true, Managed: true, Reason: "binary /usr/bin/containerd (version unknown)"}},
		{name: "custom_paths",
			fs:  fstest.MapFS{"opt/bin/containerd": file(""), "etc/systemd/system/ctrd.service": file("")},
			set: ContainerdSettings{Binary: "/opt/bin/containerd", Unit: "ctrd.service", Config: "/srv/ctrd.toml", CertsDir: "/srv/certs.d/", Socket: "/run/ctrd.sock"},
			bin: "/opt/bin/containerd", out: v2,
			want: Detection{Found: true, Managed: true, Version: "2.4.2", Reason: "binary /opt/bin/containerd v2.4.2"}},
	}
	schemas := map[string]int{
		"not_installed": 2, "debian_binary_1_6": 2, "local_binary_2_x": 3, "binary_prints_garbage": 2,
		"unit_file_only": 2, "disabled_in_spec": 2, "forced_on_not_installed": 2,
		"existing_v3_config_unknown_version": 3, "custom_paths": 3,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Host{FS: tt.fs}
			if tt.bin != "" {
				h.Version = scriptExec(t, tt.bin, tt.out)
			}
			s := engineSpec("containerd", tt.toggle, tt.set)
			got := NewContainerd().Detect(detectCtx, h, s)
			want := tt.want
			want.Engine, want.Unit, want.Socket = "containerd", "containerd.service", "/run/containerd/containerd.sock"
			want.Config, want.CertsDir = "/etc/containerd/config.toml", "/etc/containerd/certs.d"
			if tt.name == "custom_paths" {
				want.Unit, want.Socket, want.Config, want.CertsDir = "ctrd.service", "/run/ctrd.sock", "/srv/ctrd.toml", "/srv/certs.d"
			}
			want.Owns, want.Schema = certsDirOwns(want.CertsDir), schemas[tt.name]
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Detect (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseContainerdVersion(t *testing.T) {
	for out, want := range map[string]string{
		"containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n": "1.6.20",
		"containerd github.com/containerd/containerd/v2 v2.4.2 abcdef0":                 "2.4.2",
		"containerd containerd.io 1.7.27 05044ec0a9a75232cad458027ca83437aae3f4da":      "1.7.27",
		"containerd github.com/k3s-io/containerd v1.7.23-k3s2 6e0f8f3":                  "1.7.23",
		"containerd github.com/containerd/containerd v2.1":                              "2.1.0",
		"nonsense": "",
	} {
		if got := parseContainerdVersion(out); got != want {
			t.Errorf("%q: got %q, want %q", out, got, want)
		}
	}
}

// changed turns host paths into updates of those files with data.
func changed(data string, paths ...string) []render.Change {
	var out []render.Change
	for _, p := range paths {
		out = append(out, render.Change{Op: render.Update, Old: []byte("old"), File: render.File{Path: p, Data: []byte(data)}})
	}
	return out
}

func TestContainerdActivation(t *testing.T) {
	d := Detection{Unit: "containerd.service", Socket: "/run/containerd/containerd.sock", Config: "/etc/containerd/config.toml", CertsDir: "/etc/containerd/certs.d"}
	custom := Detection{Unit: "ctrd.service", Socket: "/run/ctrd.sock", Config: "/srv/ctrd.toml", CertsDir: "/srv/certs.d"}
	const config = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/srv/certs.d\"\n"
	probe := func(d Detection) health.Probe {
		return health.Probe{Containerd: &health.ContainerdProbe{Socket: d.Socket, ConfigPath: "/srv/certs.d"}}
	}
	tests := []struct {
		name    string
		d       Detection
		changed []render.Change
		want    Activation
	}{
		{"nothing_changed", d, nil, Activation{Disruption: None}},
		{"hosts_toml_only", d, changed("x", "/etc/containerd/certs.d/docker.io/hosts.toml", "/etc/containerd/certs.d/docker.io/ca.crt"),
			Activation{Disruption: None, Reason: "only certs.d changed (re-read on every pull)"}},
		{"config_toml", d, changed(config, "/etc/containerd/certs.d/docker.io/hosts.toml", "/etc/containerd/config.toml"),
			Activation{Disruption: Restart, Reason: "config.toml changed", Probe: probe(d)}},
		{"custom_config_path", custom, changed(config, "/srv/ctrd.toml"), Activation{Disruption: Restart, Reason: "config.toml changed", Probe: probe(custom)}},
		{"default_path_not_ours", custom, changed(config, "/srv/certs.d/x/hosts.toml"),
			Activation{Disruption: None, Reason: "only certs.d changed (re-read on every pull)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			want.Engine, want.Unit = "containerd", tt.d.Unit
			if diff := cmp.Diff(want, NewContainerd().Activation(tt.changed, tt.d)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestContainerdChooseSchema(t *testing.T) {
	const other = "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"overlayfs\"\n"
	tests := []struct {
		name     string
		file     string // config.toml, "" for none
		override int
		version  string
		want     int
		warn     string // substring
		err      string // substring
	}{
		{name: "no_file_1_6", version: "1.6.20", want: 2},
		{name: "no_file_2_0", version: "2.0.0", want: 3},
		{name: "no_file_2_4", version: "2.4.2", want: 3},
		{name: "no_file_unknown", want: 2, warn: "could not be detected"},
		{name: "file_v2_on_2_x_kept", file: "version = 2\n" + other, version: "2.4.2", want: 2},
		{name: "file_v4_on_2_3", file: "version = 4\n", version: "2.3.0", want: 4},
		{name: "file_v4_on_2_2_rewritten", file: "version = 4\n", version: "2.2.1", want: 3, warn: "does not load"},
		{name: "file_v3_on_1_7_rewritten", file: "version = 3\n" + other, version: "1.7.25", want: 2, warn: "does not load"},
		{name: "file_v3_unknown_kept", file: "version = 3\n", want: 3},
		{name: "override_wins", file: "version = 2\n", override: 3, version: "2.4.2", want: 3},
		{name: "override_too_new", override: 3, version: "1.7.25", err: "newer than containerd 1.7.25"},
		{name: "override_vs_other_settings", file: "version = 2\n" + other, override: 3, version: "2.4.2", err: "holds other plugin settings"},
		{name: "v1_layout_kept", file: "[plugins.cri]\n  sandbox_image = \"x\"\n", version: "1.6.20", want: 1},
		{name: "v1_layout_override", file: "disabled_plugins = [\"cri\"]\n", override: 2, err: "version 1 layout"},
		{name: "versionless_plain", file: "root = \"/var/lib/containerd\"\n", version: "2.4.2", want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			if tt.file != "" {
				fsys["etc/containerd/config.toml"] = &fstest.MapFile{Data: []byte(tt.file)}
			}
			c, err := readContainerdConfig(fsys, containerdConfigPath)
			if err != nil {
				t.Fatal(err)
			}
			got, warn, err := c.chooseSchema(tt.override, parseRelease(tt.version))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || !strings.Contains(warn, tt.warn) || (tt.warn == "") != (warn == "") {
				t.Errorf("got (%d, %q), want (%d, %q)", got, warn, tt.want, tt.warn)
			}
		})
	}
}

// TestContainerdFileAttributes checks what goldens do not show: modes,
// secrets and the per-directory groups.
func TestContainerdFileAttributes(t *testing.T) {
	type attrs struct {
		Mode   os.FileMode
		Secret bool
		Group  string
		Merged bool
	}
	got := func(golden string) map[string]attrs {
		e := NewContainerd()
		gc := loadGolden(t, e, filepath.Join("testdata", "containerd", golden+".txtar"))
		res, err := e.Render(gc.spec, Host{FS: gc.in}, gc.det)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]attrs{}
		for _, f := range res.Files {
			m[f.Path] = attrs{f.Mode, f.Secret, f.Group, f.Merged}
		}
		return m
	}
	const d = "/etc/containerd/certs.d/"
	want := map[string]attrs{
		"/etc/containerd/config.toml":               {0o644, false, "", true},
		d + "docker.io/hosts.toml":                  {0o644, false, "containerd:docker.io", false},
		d + "harbor.example.com/hosts.toml":         {0o644, false, "containerd:harbor.example.com", false},
		d + "harbor.example.com/ca.crt":             {0o644, false, "containerd:harbor.example.com", false},
		d + "registry.example.com:5000/hosts.toml":  {0o644, false, "containerd:registry.example.com:5000", false},
		d + "registry.example.com:5000/ca.crt":      {0o644, false, "containerd:registry.example.com:5000", false},
		d + "registry.example.com:5000/client.cert": {0o644, false, "containerd:registry.example.com:5000", false},
		d + "registry.example.com:5000/client.key":  {0o600, true, "containerd:registry.example.com:5000", false},
	}
	if diff := cmp.Diff(want, got("tls_files")); diff != "" {
		t.Errorf("tls_files (-want +got):\n%s", diff)
	}
	want = map[string]attrs{
		"/etc/containerd/config.toml":         {0o644, false, "", true},
		d + "docker.io/hosts.toml":            {0o600, true, "containerd:docker.io", false},
		d + "registry.example.com/hosts.toml": {0o600, true, "containerd:registry.example.com", false},
	}
	if diff := cmp.Diff(want, got("credentials_header")); diff != "" {
		t.Errorf("credentials_header (-want +got):\n%s", diff)
	}
	if a := got("mirror_creds")["/etc/containerd/config.toml"]; !a.Secret {
		t.Errorf("config.toml with auth is not secret: %+v", a)
	}
}

// TestContainerdConverges applies each golden's rendering to its host and
// renders again: the second run must ask for exactly the same files and
// remove nothing (migrated directories survive once config.toml is clean).
func TestContainerdConverges(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "containerd", "*.txtar"))
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			e := NewContainerd()
			gc := loadGolden(t, e, file)
			if gc.wantErr != "" {
				return
			}
			first, err := e.Render(gc.spec, Host{FS: gc.in}, gc.det)
			if err != nil {
				t.Fatal(err)
			}
			host := fstest.MapFS{}
			for k, v := range gc.in {
				host[k] = v
			}
			want := map[string]string{}
			for _, f := range first.Files {
				if f.Remove {
					delete(host, FSPath(f.Path))
					continue
				}
				host[FSPath(f.Path)] = &fstest.MapFile{Data: f.Data, Mode: 0o644}
				want[f.Path] = string(f.Data)
			}
			second, err := e.Render(gc.spec, Host{FS: host}, gc.det)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, f := range second.Files {
				if f.Remove {
					t.Errorf("second run removes %s", f.Path)
					continue
				}
				got[f.Path] = string(f.Data)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("second run differs (-first +second):\n%s", diff)
			}
		})
	}
}

func TestTomlQuote(t *testing.T) {
	for _, s := range []string{`plain`, `with "quotes" and \backslash`, "tab\tnew\nline\x00nul\x7fdel\x1besc", "ünïcode ✓"} {
		var got map[string]string
		if err := toml.Unmarshal([]byte("k = "+tomlQuote(s)+"\n"), &got); err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		if got["k"] != s {
			t.Errorf("round trip of %q gave %q", s, got["k"])
		}
	}
}
