package engines

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// TestContainerdLegacyKeysNeverLeaveCertsDir puts keys that are not
// registry hosts into config.toml's legacy tables, where they would become
// certs.d directory names. Render must refuse them, naming the file and
// the key, and return no file at all.
func TestContainerdLegacyKeysNeverLeaveCertsDir(t *testing.T) {
	keys := []string{"../../../var/spool/cron/crontabs", ".", "..", "_default", "a/b", ""}
	tables := map[string]string{
		"live_mirrors": "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.%s]\n  endpoint = [\"https://m.example.com\"]\n",
		"live_tls":     "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.%s.tls]\n  ca_file = \"/etc/ca.pem\"\n",
		"stale_mirrors": "version = 3\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.%s]\n" +
			"  endpoint = [\"https://m.example.com\"]\n",
		"v1_mirrors": "[plugins.cri.registry.mirrors.%s]\n  endpoint = [\"https://m.example.com\"]\n",
	}
	s := &spec.Spec{Mirrors: map[string]*spec.Mirror{"docker.io": {Endpoints: []string{"https://mirror.example.com"}}}}
	for name, tmpl := range tables {
		for _, key := range keys {
			t.Run(name+"/"+key, func(t *testing.T) {
				conf := strings.Replace(tmpl, "%s", tomlQuote(key), 1)
				h := Host{FS: fstest.MapFS{"etc/containerd/config.toml": {Data: []byte(conf)}}}
				res, err := NewContainerd().Render(s, h, Detection{Version: "2.1.4"})
				for _, f := range res.Files {
					if !strings.HasPrefix(f.Path, containerdCertsDir+"/") && f.Path != containerdConfigPath {
						t.Errorf("rendered %s, outside %s", f.Path, containerdCertsDir)
					}
				}
				if err == nil {
					t.Fatalf("no error for key %q; rendered %d files", key, len(res.Files))
				}
				for _, want := range []string{containerdConfigPath, tomlQuote(key), "nothing was changed"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not name %s", err, want)
					}
				}
			})
		}
	}
}

// TestContainerdLegacyAuthKeysAreNotPaths: a configs key that holds only
// auth stays in config.toml and never becomes a directory, so it is
// left alone rather than refused.
func TestContainerdLegacyAuthKeysAreNotPaths(t *testing.T) {
	conf := "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"../x\".auth]\n  auth = \"eDp5\"\n"
	h := Host{FS: fstest.MapFS{"etc/containerd/config.toml": {Data: []byte(conf)}}}
	s := &spec.Spec{Mirrors: map[string]*spec.Mirror{"docker.io": {Endpoints: []string{"https://mirror.example.com"}}}}
	res, err := NewContainerd().Render(s, h, Detection{Version: "1.6.20"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.Files[0].Data), `configs."../x".auth]`) {
		t.Errorf("the auth entry was not kept:\n%s", res.Files[0].Data)
	}
}

func TestConfinePaths(t *testing.T) {
	const conf, dir = "/etc/containerd/config.toml", "/etc/containerd/certs.d"
	ok := []string{conf, dir + "/docker.io/hosts.toml", dir + "/_default/hosts.toml"}
	bad := []string{"/var/spool/cron/crontabs/hosts.toml", dir + "/../x/hosts.toml", dir + "2/x/hosts.toml", dir, "/etc/containerd/other.toml"}
	for _, p := range ok {
		if err := confinePaths("containerd", []render.File{{Path: p}}, dir, conf); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range bad {
		if err := confinePaths("containerd", []render.File{{Path: p}}, dir, conf); err == nil {
			t.Errorf("%s: accepted", p)
		}
	}
	if err := confinePaths("containerd", []render.File{{Path: "/x/hosts.toml"}}, "/", conf); err != nil {
		t.Errorf("certs dir /: %v", err)
	}
}

func TestIsDirName(t *testing.T) {
	for name, want := range map[string]bool{"docker.io": true, "_default": true, "host_5000_": true,
		"": false, ".": false, "..": false, "a/b": false, "../x": false} {
		if got := isDirName(name); got != want {
			t.Errorf("isDirName(%q) = %v, want %v", name, got, want)
		}
	}
}
