package engines

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/spec"
)

func parseSpec(t *testing.T, yaml string) (*spec.Spec, error) {
	t.Helper()
	return spec.Parse("spec.yaml", []byte(yaml), spec.Options{Engines: Sections()})
}

// Every key of every engine's section, read into its settings.
func TestSettingsParse(t *testing.T) {
	s, err := parseSpec(t, `engines:
  containerd:
    enabled: true
    config: /etc/containerd/config.toml
    certs_dir: /etc/containerd/certs.d/
    unit: containerd.service
    socket: /run/containerd/containerd.sock
    binary: /usr/local/bin/containerd
    schema: 3
    credentials: header
  docker:
    enabled: false
    daemon_json: /etc/docker/daemon.json
    certs_dir: /etc/docker/certs.d
    unit: docker.service
    socket: /var/run/docker.sock
    binary: /usr/bin/dockerd
    auth_users: [root, ci]
  k3s:
    enabled: auto
    distribution: rke2
    registries: /etc/rancher/rke2/registries.yaml
    unit: rke2-agent
  crictl:
    config: /etc/crictl.yaml
    endpoint: unix:///run/containerd/containerd.sock
    timeout: 10
  containers:
    drop_in: /etc/containers/registries.conf.d/60-mirrors.conf
    certs_dir: /etc/containers/certs.d
    auth_users: []
    crio_drop_in: /etc/crio/crio.conf.d/60-mirrors.conf
    crio_auth_file: /etc/crio/auth.json
    crio_unit: cri-o
    crio_socket: /var/run/crio/crio.sock
`)
	if err != nil {
		t.Fatal(err)
	}
	want := spec.Engines{
		"containerd": {Enabled: spec.On, Settings: ContainerdSettings{Config: "/etc/containerd/config.toml", CertsDir: "/etc/containerd/certs.d",
			Unit: "containerd.service", Socket: "/run/containerd/containerd.sock", Binary: "/usr/local/bin/containerd",
			Schema: 3, Credentials: "header"}},
		"docker": {Enabled: spec.Off, Settings: DockerSettings{DaemonJSON: "/etc/docker/daemon.json", CertsDir: "/etc/docker/certs.d",
			Unit: "docker.service", Socket: "/var/run/docker.sock", Binary: "/usr/bin/dockerd", AuthUsers: []string{"root", "ci"}}},
		"k3s":    {Enabled: spec.Auto, Settings: K3sSettings{Distribution: "rke2", Registries: "/etc/rancher/rke2/registries.yaml", Unit: "rke2-agent"}},
		"crictl": {Enabled: spec.Auto, Settings: CrictlSettings{Config: "/etc/crictl.yaml", Endpoint: "unix:///run/containerd/containerd.sock", Timeout: 10}},
		"containers": {Enabled: spec.Auto, Settings: ContainersSettings{DropIn: "/etc/containers/registries.conf.d/60-mirrors.conf",
			CertsDir: "/etc/containers/certs.d", AuthUsers: []string{}, AuthUsersSet: true, CRIODropIn: "/etc/crio/crio.conf.d/60-mirrors.conf",
			CRIOAuthFile: "/etc/crio/auth.json", CRIOUnit: "cri-o", CRIOSocket: "/var/run/crio/crio.sock"}},
	}
	if d := cmp.Diff(want, s.Engines, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Pos" }, cmp.Ignore())); d != "" {
		t.Errorf("engines (-want +got):\n%s", d)
	}
}

// A drop-in overrides an engine's section field by field.
func TestSettingsMergeFieldByField(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, data string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("config.yaml", "engines:\n  containerd: {enabled: false, config: /etc/containerd/config.toml}\n  docker: {auth_users: [root]}\n")
	write("conf.d/10.yaml", "engines:\n  containerd: {unit: containerd-custom.service}\n")
	s, err := spec.Load(filepath.Join(dir, "config.yaml"), spec.Options{Engines: Sections()})
	if err != nil {
		t.Fatal(err)
	}
	c := settingsOf[ContainerdSettings](s, "containerd")
	if Enabled(s, "containerd") != spec.Off || c.Config != "/etc/containerd/config.toml" || c.Unit != "containerd-custom.service" {
		t.Errorf("containerd after the drop-in: %v %+v", Enabled(s, "containerd"), c)
	}
	if d := settingsOf[DockerSettings](s, "docker"); !cmp.Equal(d.AuthUsers, []string{"root"}) {
		t.Errorf("docker: %+v", d)
	}
}

// Mistakes in an engine's section name the file, line and column and say
// what to write.
func TestSettingsErrors(t *testing.T) {
	for _, tt := range []struct {
		name, spec, pos, msg, hint string
	}{
		{"engine_unknown", "engines:\n  dockerd: {}\n", "2:3", `unknown engine "dockerd" in engines`, "did you mean docker?"},
		{"engine_rke2", "engines:\n  rke2: {enabled: true}\n", "2:3", "RKE2 is handled by the k3s engine", "distribution: rke2"},
		{"engine_not_mapping", "engines:\n  docker: true\n", "2:11", "engines.docker: expected a mapping, got a boolean", ""},
		{"path_relative", "engines:\n  containerd:\n    config: etc/containerd/config.toml\n", "3:13",
			`config: "etc/containerd/config.toml" is not an absolute path`, "/etc/containerd/config.toml"},
		{"path_not_string", "engines:\n  docker:\n    daemon_json: {path: /etc/docker/daemon.json}\n", "3:18", "daemon_json: expected a string, got a mapping", ""},
		{"schema_bad", "engines:\n  containerd:\n    schema: 4\n", "3:13", "schema: 4 is not", "2 or 3"},
		{"schema_string", "engines:\n  containerd:\n    schema: v3\n", "3:13", "schema: expected a whole number, got a string", ""},
		{"credentials_bad", "engines:\n  containerd:\n    credentials: hosts\n", "3:18", `credentials: unknown value "hosts"`, "config, header"},
		{"containerd_config_path_alias", "engines:\n  containerd:\n    config_path: /etc/containerd/certs.d\n", "3:5",
			`unknown key "config_path" in engines.containerd`, "did you mean certs_dir?"},
		{"unit_bad", "engines:\n  docker:\n    unit: /lib/systemd/system/docker.service\n", "3:11", "is not a unit name", "docker.service"},
		{"auth_users_string", "engines:\n  docker:\n    auth_users: root\n", "3:17", "auth_users: expected a list of strings, got a string", ""},
		{"auth_users_duplicate", "engines:\n  docker:\n    auth_users: [root, ci, root]\n", "3:28", `duplicate "root" (first at spec.yaml:3:18)`, ""},
		{"auth_users_path", "engines:\n  docker:\n    auth_users: [../root]\n", "3:18", `"../root" is not a user name`, ""},
		{"distribution_bad", "engines:\n  k3s:\n    distribution: k8s\n", "3:19", `distribution: unknown value "k8s"`, "k3s, rke2"},
		{"crictl_timeout_duration", "engines:\n  crictl:\n    timeout: 2s\n", "3:14", "timeout: expected a whole number, got a string", "whole seconds"},
		{"crictl_timeout_negative", "engines:\n  crictl:\n    timeout: -1\n", "3:14", "must not be negative", ""},
		{"crictl_endpoint_path", "engines:\n  crictl:\n    endpoint: /run/containerd/containerd.sock\n", "3:15",
			"not a unix:// socket URL", "unix:///run/containerd/containerd.sock"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseSpec(t, tt.spec)
			var errs spec.Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("got %v, want one spec error", err)
			}
			e := errs[0]
			if got := e.Pos.String(); got != "spec.yaml:"+tt.pos {
				t.Errorf("at %s, want spec.yaml:%s", got, tt.pos)
			}
			if !strings.Contains(e.Msg, tt.msg) || !strings.Contains(e.Hint, tt.hint) {
				t.Errorf("message %q hint %q; want %q and %q", e.Msg, e.Hint, tt.msg, tt.hint)
			}
		})
	}
}
