package engines

import (
	"strings"
	"testing"
)

// TestContainerdConfigShapes renders over config.toml files that write the
// registry table in each shape TOML allows, and pins the bytes: only the
// managed keys change, in the shape the file already uses.
func TestContainerdConfigShapes(t *testing.T) {
	const (
		cri    = `[plugins."io.containerd.grpc.v1.cri"]`
		marker = authMarker + "mirror.example.com\n"
		dir    = `"/etc/containerd/certs.d"`
		plain  = "mirrors:\n  docker.io:\n    endpoint: [https://mirror.example.com]\n"
	)
	tests := []struct {
		name, version, spec, in, want string
	}{
		{name: "dotted_keys_in_plugin_table", spec: stockSpec,
			in: "version = 2\n" + cri + "\n  sandbox_image = \"pause\"\n  registry.config_path = \"\" # dotted\n" +
				"  registry.mirrors.\"docker.io\".endpoint = [\"https://old.example.com\"]\n" +
				"  registry.configs.\"old.example.com\".tls.ca_file = \"/ca.pem\"\n  enable_selinux = false\n",
			want: marker + "version = 2\n" + cri + "\n  sandbox_image = \"pause\"\n  registry.config_path = " + dir + " # dotted\n" +
				"  registry.configs.\"mirror.example.com\" = { auth = { auth = \"dXNlcjpwYXNz\" } }\n  enable_selinux = false\n"},
		{name: "dotted_keys_at_root", spec: stockSpec,
			in: "version = 2\nplugins.\"io.containerd.grpc.v1.cri\".registry.config_path = \"\"\n\n[grpc]\n  address = \"/run/c.sock\"\n",
			want: marker + "version = 2\nplugins.\"io.containerd.grpc.v1.cri\".registry.config_path = " + dir + "\n" +
				"plugins.\"io.containerd.grpc.v1.cri\".registry.configs = { \"mirror.example.com\" = { auth = { auth = \"dXNlcjpwYXNz\" } } }\n" +
				"\n[grpc]\n  address = \"/run/c.sock\"\n"},
		{name: "inline_registry_table", spec: stockSpec,
			in: "version = 2\n\n" + cri + "\n  # inline\n  registry = { config_path = \"\", mirrors = { \"docker.io\" = { endpoint = [\"https://old.example.com\"] } } }\n",
			want: marker + "version = 2\n\n" + cri + "\n  # inline\n  registry = { config_path = " + dir +
				", configs = { \"mirror.example.com\" = { auth = { auth = \"dXNlcjpwYXNz\" } } } }\n"},
		{name: "quoted_keys_and_literal_strings", spec: plain, version: "2.4.2",
			in:   "version = 3\n\n[ plugins . 'io.containerd.cri.v1.images' . \"registry\" ]\n  'config_path' = '' # quoted\n",
			want: "version = 3\n\n[ plugins . 'io.containerd.cri.v1.images' . \"registry\" ]\n  'config_path' = '/etc/containerd/certs.d' # quoted\n"},
		{name: "no_final_newline", spec: plain,
			in:   "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"\"",
			want: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = " + dir},
		{name: "crlf", spec: plain,
			in:   "version = 2\r\n\r\n# CRI\r\n" + cri + "\r\n  sandbox_image = \"pause\"\r\n",
			want: "version = 2\r\n\r\n# CRI\r\n" + cri + "\r\n  sandbox_image = \"pause\"\r\n\r\n  [plugins.\"io.containerd.grpc.v1.cri\".registry]\r\n    config_path = " + dir + "\r\n"},
		{name: "version_line_rewritten_alone", spec: plain, version: "2.2.1",
			in:   "version = 4 # newest\n\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = ''\n",
			want: "version = 3 # newest\n\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/etc/containerd/certs.d'\n"},
		{name: "version_added_comment_kept", spec: plain, version: "1.7.25",
			in:   "# no version yet\n\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"\"\n",
			want: "# no version yet\n\nversion = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = " + dir + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			version := tt.version
			if version == "" {
				version = "1.6.20"
			}
			out, res := renderStock(t, []byte(tt.in), version, tt.spec)
			if string(out) != tt.want {
				t.Errorf("got:\n%q\nwant:\n%q", out, tt.want)
			}
			for _, w := range res.Warnings {
				if strings.Contains(w.Message, "edited in place") {
					t.Errorf("fell back: %s", w.Message)
				}
			}
			cfg := loadContainerdConfig(t, out)
			plugin := criV1Plugin
			if strings.Contains(tt.in, criImagesPlugin) {
				plugin = criImagesPlugin
			}
			if p := loadedString(cfg.Plugins, plugin, "registry", "config_path"); p != containerdCertsDir {
				t.Errorf("containerd reads config_path %q", p)
			}
			if again, _ := renderStock(t, out, version, tt.spec); string(again) != string(out) {
				t.Errorf("not idempotent:\n%q", again)
			}
		})
	}
}

// TestContainerdConfigWholeRewriteWarns: a shape the editor refuses (an
// array of tables where auth goes) falls back to encoding the whole file,
// with a warning naming why the comments are lost.
func TestContainerdConfigWholeRewriteWarns(t *testing.T) {
	in := "# a comment that is lost\nversion = 2\n\n" +
		"[[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"mirror.example.com\".auth]]\n  username = \"x\"\n"
	out, res := renderStock(t, []byte(in), "1.6.20", stockSpec)
	var warned bool
	for _, w := range res.Warnings {
		warned = warned || strings.Contains(w.Message, "could not be edited in place (setting") &&
			strings.Contains(w.Message, "array of tables") && strings.Contains(w.Message, "comments and formatting are lost")
	}
	if !warned {
		t.Errorf("no warning naming why; warnings: %v", res.Warnings)
	}
	if strings.Contains(string(out), "a comment") {
		t.Errorf("expected the whole-file encoding:\n%s", out)
	}
	cfg := loadContainerdConfig(t, out)
	if a := loadedString(cfg.Plugins, criV1Plugin, "registry", "configs", "mirror.example.com", "auth", "auth"); a != "dXNlcjpwYXNz" {
		t.Errorf("auth %q:\n%s", a, out)
	}
}
