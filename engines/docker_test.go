package engines

import (
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/credentials"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

func TestDockerDetect(t *testing.T) {
	for _, c := range []struct {
		name        string
		fs          fstest.MapFS
		spec        *spec.Spec
		exec        map[string]string
		wantFound   bool
		wantManaged bool
		wantVersion string
	}{
		{name: "nothing", fs: hostTree()},
		{
			name:      "debian_dockerd_in_sbin",
			fs:        hostTree(hostFile("usr/sbin/dockerd")),
			exec:      map[string]string{"/usr/sbin/dockerd": "Docker version 20.10.24+dfsg1, build 297e128\n"},
			wantFound: true, wantManaged: true, wantVersion: "20.10.24",
		},
		{
			name:      "unit_only",
			fs:        hostTree(hostUnit("docker.service")),
			wantFound: true, wantManaged: true,
		},
		{
			name:      "disabled",
			fs:        hostTree(hostFile("usr/bin/dockerd")),
			spec:      engineSpec("docker", spec.Off, nil),
			wantFound: true,
		},
		{
			name:        "forced_on",
			fs:          hostTree(),
			spec:        engineSpec("docker", spec.On, nil),
			wantManaged: true,
		},
		{
			name:      "spec_binary",
			fs:        hostTree(hostFile("opt/docker/dockerd")),
			spec:      engineSpec("docker", "", DockerSettings{Binary: "/opt/docker/dockerd"}),
			exec:      map[string]string{"/opt/docker/dockerd": "Docker version 28.2.2, build e6534b4"},
			wantFound: true, wantManaged: true, wantVersion: "28.2.2",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := Host{FS: c.fs}
			if c.exec != nil {
				h.Version = fakeExec(c.exec)
			}
			d := NewDocker().Detect(detectCtx, h, c.spec)
			if d.Found != c.wantFound || d.Managed != c.wantManaged || d.Version != c.wantVersion {
				t.Errorf("Detect = found %v managed %v version %q (%s), want %v %v %q",
					d.Found, d.Managed, d.Version, d.Reason, c.wantFound, c.wantManaged, c.wantVersion)
			}
			if d.Unit != "docker.service" || d.Socket != "/run/docker.sock" || d.Reason == "" {
				t.Errorf("Detect = unit %q socket %q reason %q", d.Unit, d.Socket, d.Reason)
			}
			if d.Config != "/etc/docker/daemon.json" || d.CertsDir != "/etc/docker/certs.d" || !cmp.Equal(d.Owns, certsDirOwns("/etc/docker/certs.d")) {
				t.Errorf("Config %q CertsDir %q Owns %q", d.Config, d.CertsDir, d.Owns)
			}
		})
	}
}

func TestDockerActivation(t *testing.T) {
	d := Detection{Unit: "docker.service", Socket: "/run/docker.sock", Config: "/etc/docker/daemon.json"}
	const mirrors = `{"registry-mirrors": ["https://m.example/"]}`
	for _, c := range []struct {
		name    string
		changed []render.Change
		want    Disruption
	}{
		{"nothing", nil, None},
		{"daemon_json", changed(mirrors, "/etc/docker/daemon.json"), Reload},
		{"daemon_json_and_certs", changed(mirrors, "/etc/docker/certs.d/r:5000/ca.crt", "/etc/docker/daemon.json"), Reload},
		{"certs_only", changed("x", "/etc/docker/certs.d/r:5000/ca.crt"), None},
		{"config_json_only", changed("{}", "/root/.docker/config.json"), None},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := NewDocker().Activation(c.changed, d)
			if a.Disruption != c.want || a.Unit != "docker.service" || a.Engine != "docker" {
				t.Errorf("Activation = %+v, want %v", a, c.want)
			}
			// The health check expects exactly the mirrors written.
			if c.want != None && (a.Probe.Docker == nil || !cmp.Equal(a.Probe.Docker.Mirrors, []string{"https://m.example/"}) || a.Probe.Docker.Socket != "/run/docker.sock") {
				t.Errorf("probe = %+v", a.Probe.Docker)
			}
		})
	}
	// A daemon.json elsewhere (engines.docker.daemon_json) is what counts,
	// and its mirrors are what the health check expects.
	custom := Detection{Config: "/srv/docker.json"}
	a := NewDocker().Activation(changed(mirrors, "/srv/docker.json"), custom)
	if a.Disruption != Reload || a.Unit != "docker.service" || a.Probe.Docker == nil || len(a.Probe.Docker.Mirrors) != 1 {
		t.Errorf("custom daemon.json: %+v", a)
	}
}

func TestDockerMirrorURL(t *testing.T) {
	for _, c := range []struct {
		ep, version, want string
		noted             bool
	}{
		{"mirror.example.com", "20.10.24", "https://mirror.example.com/", false},
		{"mirror.example.com:5000", "20.10.24", "https://mirror.example.com:5000/", false},
		{"localhost:5000", "20.10.24", "http://localhost:5000/", false},
		{"127.0.0.1:5000", "20.10.24", "http://127.0.0.1:5000/", false},
		{"[::1]:5000", "20.10.24", "http://[::1]:5000/", false},
		{"localhost:443", "20.10.24", "https://localhost:443/", false},
		{"https://m.example.com/v2", "20.10.24", "https://m.example.com/", false},
		{"https://m.example.com/v2/", "20.10.24", "https://m.example.com/", false},
		{"http://m.example.com/", "20.10.24", "http://m.example.com/", false},
		{"https://m.example.com/p/v2", "20.10.24", "", true},
		{"https://m.example.com/p/v2", "", "", true},
		{"https://m.example.com/p/v2", "25.0.0", "https://m.example.com/p/", false},
		{"https://m.example.com/p", "25.0.0", "https://m.example.com/p/", true},
		{"https://registry-1.docker.io", "25.0.0", "", false},
		{"https://m.example.com/?x=1", "25.0.0", "", true},
		{"ftp://m.example.com", "25.0.0", "", true},
	} {
		got, note := dockerMirrorURL(c.ep, c.version)
		if got != c.want || (note != "") != c.noted {
			t.Errorf("dockerMirrorURL(%q, %q) = %q, %q; want %q, noted %v", c.ep, c.version, got, note, c.want, c.noted)
		}
	}
}

func TestMergeInsecure(t *testing.T) {
	got := mergeInsecure([]string{"10.0.0.0/8", "http://a:5000", "b"}, []string{"a:5000", "c:1", "b", "c:1"})
	want := []string{"10.0.0.0/8", "http://a:5000", "b", "c:1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mergeInsecure (-want +got):\n%s", diff)
	}
}

func TestScanDockerUnit(t *testing.T) {
	for _, c := range []struct {
		name                   string
		fs                     fstest.MapFS
		wantMirror, wantInsecu bool
	}{
		{name: "no_unit", fs: hostTree()},
		{name: "stock_unit", fs: hostTree(hostFile("lib/systemd/system/docker.service",
			"[Service]\nExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\n"))},
		{name: "flag_in_unit", fs: hostTree(hostFile("usr/lib/systemd/system/docker.service",
			"[Service]\nExecStart=/usr/bin/dockerd --insecure-registry=10.0.0.0/8 --registry-mirror https://m\n")),
			wantMirror: true, wantInsecu: true},
		{name: "flag_outside_service_section", fs: hostTree(hostFile("lib/systemd/system/docker.service",
			"[Unit]\nDescription=--registry-mirror\n[Service]\nExecStart=/usr/bin/dockerd\n"))},
		{name: "dropin_resets_execstart", fs: hostTree(
			hostFile("lib/systemd/system/docker.service", "[Service]\nExecStart=/usr/bin/dockerd --registry-mirror=https://m\n"),
			hostFile("etc/systemd/system/docker.service.d/override.conf", "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd\n"))},
		{name: "environment_variable", fs: hostTree(hostFile("lib/systemd/system/docker.service",
			"[Service]\nEnvironment=\"OPTS=--insecure-registry r:5000\" OTHER=1\nExecStart=/usr/bin/dockerd ${OPTS}\n")),
			wantInsecu: true},
		{name: "environment_file_comment", fs: hostTree(
			hostFile("lib/systemd/system/docker.service", "[Service]\nEnvironmentFile=-/etc/default/docker\nExecStart=/usr/bin/dockerd $DOCKER_OPTS\n"),
			hostFile("etc/default/docker", "#DOCKER_OPTS=\"--registry-mirror=https://m\"\n"))},
		{name: "environment_file_missing", fs: hostTree(
			hostFile("lib/systemd/system/docker.service", "[Service]\nEnvironmentFile=-/etc/default/docker\nExecStart=/usr/bin/dockerd $DOCKER_OPTS\n"))},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := scanDockerUnit(c.fs, "docker.service")
			if f.mirror != c.wantMirror || f.insecure != c.wantInsecu {
				t.Errorf("scanDockerUnit = %+v, want mirror %v insecure %v", f, c.wantMirror, c.wantInsecu)
			}
		})
	}
}

func TestParseJSONObject(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
	}{
		{"empty_file", "", "{}\n"},
		{"blank_file", " \n", "{}\n"},
		{"bom", "\xef\xbb\xbf{\"a\": 1}", "{\n  \"a\": 1\n}\n"},
		{"order_kept", `{"z": 1, "a": {"y": [1, 2]}, "m": "<&>"}`,
			"{\n  \"z\": 1,\n  \"a\": {\n    \"y\": [\n      1,\n      2\n    ]\n  },\n  \"m\": \"<&>\"\n}\n"},
		{"duplicate_last_wins_first_place", `{"a": 1, "b": 2, "a": 3}`, "{\n  \"a\": 3,\n  \"b\": 2\n}\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := parseJSONObject("/x.json", []byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(o.marshal()); got != c.want {
				t.Errorf("marshal = %q, want %q", got, c.want)
			}
		})
	}
	for _, bad := range []string{`{"a": }`, `[1]`, `"x"`, `{"a": 1} {}`, `{"a": 1`} {
		if _, err := parseJSONObject("/x.json", []byte(bad)); err == nil || !strings.Contains(err.Error(), "/x.json") {
			t.Errorf("parseJSONObject(%q) error = %v, want one naming the file", bad, err)
		}
	}
}

// config.json lands in the user's home, owned by the user: root-owned and
// 0600 it would be unreadable to them.
func TestDockerConfigJSONOwner(t *testing.T) {
	s := &spec.Spec{
		Configs: map[string]*spec.Config{"r.example.com": {Auth: &spec.Auth{Username: "u", Password: credentials.NewSecret("p")}}},
		Engines: engineSpec("docker", "", DockerSettings{AuthUsers: []string{"alice"}}).Engines,
	}
	h := Host{FS: hostTree(hostFile("etc/passwd", "alice:x:1000:1001::/home/alice:/bin/sh\n"))}
	res, err := NewDocker().Render(s, h, Detection{})
	if err != nil {
		t.Fatal(err)
	}
	want := []render.File{{
		Path:   "/home/alice/.docker/config.json",
		Data:   []byte("{\n  \"auths\": {\n    \"r.example.com\": {\n      \"auth\": \"dTpw\"\n    }\n  }\n}\n"),
		Mode:   0o600,
		Secret: true,
		Merged: true,
		Keys:   []string{"auths=r.example.com"},
		Owner:  &render.Owner{UID: 1000, GID: 1001},
	}}
	if diff := cmp.Diff(want, res.Files); diff != "" {
		t.Errorf("Render (-want +got):\n%s", diff)
	}
}

// The secret-bearing files are exactly the ones marked Secret, and each
// golden case's secrets appear in no other file.
func TestGoldenSecretsOnlyInSecretFiles(t *testing.T) {
	for _, e := range []Engine{NewDocker(), NewK3s(), NewCrictl()} {
		cases, _ := filepath.Glob("testdata/" + e.Name() + "/*.txtar")
		for _, file := range cases {
			gc := loadGolden(t, e, file)
			if gc.wantErr != "" {
				continue
			}
			res, err := e.Render(gc.spec, Host{FS: gc.in}, gc.det)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			secrets := specSecrets(gc.spec)
			for _, f := range res.Files {
				if f.Secret || f.Remove {
					continue
				}
				for _, sec := range secrets {
					if strings.Contains(string(f.Data), sec) {
						t.Errorf("%s: %s is not Secret but holds a secret", file, f.Path)
					}
				}
			}
		}
	}
}

// specSecrets lists every secret value a spec holds, in the forms engines write.
func specSecrets(s *spec.Spec) []string {
	var out []string
	add := func(sec credentials.Secret) {
		if v := sec.Reveal(); len(v) >= 4 {
			out = append(out, v)
		}
	}
	for _, c := range s.Configs {
		if a := c.Auth; a != nil {
			add(a.Password)
			add(a.Auth)
			add(a.IdentityToken)
			add(a.Basic())
		}
		if c.TLS != nil {
			add(c.TLS.Key)
		}
	}
	return out
}

// dockerd's reload applies only the keys daemon.json sets: a change that
// drops registry-mirrors (a rollback to a file that never had it) needs a
// restart, anything else a reload.
func TestDockerActivationRestartsForADroppedKey(t *testing.T) {
	d := Detection{Unit: "docker.service"}
	change := func(old, new string) []render.Change {
		return []render.Change{{Op: render.Update, Old: []byte(old), File: render.File{Path: "/etc/docker/daemon.json", Data: []byte(new)}}}
	}
	for _, c := range []struct {
		name    string
		changes []render.Change
		want    Disruption
	}{
		{"mirror_list_changed", change(`{"registry-mirrors": ["https://a/"]}`, `{"registry-mirrors": ["https://b/"]}`), Reload},
		{"mirrors_emptied", change(`{"registry-mirrors": ["https://a/"]}`, `{"registry-mirrors": []}`), Reload},
		{"mirrors_key_dropped", change(`{"registry-mirrors": ["https://a/"], "debug": true}`, `{"debug": true}`), Restart},
		{"empty_mirrors_key_dropped", change(`{"registry-mirrors": [], "debug": true}`, `{"debug": true}`), Reload},
		{"insecure_key_dropped", change(`{"insecure-registries": ["h:5000"]}`, `{}`), Restart},
		{"file_created", []render.Change{{Op: render.Create, File: render.File{Path: "/etc/docker/daemon.json", Data: []byte(`{}`)}}}, Reload},
	} {
		got := NewDocker().Activation(c.changes, d)
		if got.Disruption != c.want {
			t.Errorf("%s: %v (%s), want %v", c.name, got.Disruption, got.Reason, c.want)
		}
	}
}

// With the containerd image store a hosts.toml change is live: no reload,
// and the reason says why; daemon.json still reloads, with its mirrors
// checked.
func TestDockerActivationContainerdStore(t *testing.T) {
	d := Detection{Unit: "docker.service", Socket: "/run/docker.sock", Config: "/etc/docker/daemon.json", Version: "29.8.0", ImageStore: storeContainerd}
	a := NewDocker().Activation(changed("x", "/etc/docker/certs.d/ghcr.io/hosts.toml"), d)
	if a.Disruption != None || !strings.Contains(a.Reason, "containerd image store reads hosts.toml on every pull") {
		t.Errorf("hosts.toml only: %+v", a)
	}
	a = NewDocker().Activation(changed(`{"registry-mirrors": ["https://m.example/"]}`, "/etc/docker/certs.d/docker.io/hosts.toml", "/etc/docker/daemon.json"), d)
	if a.Disruption != Reload || a.Probe.Docker == nil || !cmp.Equal(a.Probe.Docker.Mirrors, []string{"https://m.example/"}) {
		t.Errorf("daemon.json and hosts.toml: %+v", a)
	}
}
