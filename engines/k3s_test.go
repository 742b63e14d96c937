package engines

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/mirrorctl/mirrorctl/credentials"
	"github.com/mirrorctl/mirrorctl/engines/health"
	"github.com/mirrorctl/mirrorctl/internal/testpki"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

func TestK3sDetect(t *testing.T) {
	for _, c := range []struct {
		name              string
		fs                fstest.MapFS
		spec              *spec.Spec
		wantFound         bool
		wantDist, wantUnt string
	}{
		{name: "nothing", fs: hostTree(), wantDist: "k3s", wantUnt: "k3s.service"},
		{name: "k3s_server", fs: hostTree(hostFile("usr/local/bin/k3s"), hostFile("etc/systemd/system/k3s.service")),
			wantFound: true, wantDist: "k3s", wantUnt: "k3s.service"},
		{name: "k3s_agent", fs: hostTree(hostFile("usr/local/bin/k3s"), hostFile("etc/systemd/system/k3s-agent.service")),
			wantFound: true, wantDist: "k3s", wantUnt: "k3s-agent.service"},
		{name: "k3s_config_dir_only", fs: hostTree(hostDir("etc/rancher/k3s")),
			wantFound: true, wantDist: "k3s", wantUnt: "k3s.service"},
		{name: "rke2_rpm_agent", fs: hostTree(hostFile("usr/bin/rke2"), hostUnit("rke2-agent.service")),
			wantFound: true, wantDist: "rke2", wantUnt: "rke2-agent.service"},
		{name: "rke2_tarball_server", fs: hostTree(hostFile("usr/local/bin/rke2"), hostFile("usr/local/lib/systemd/system/rke2-server.service")),
			wantFound: true, wantDist: "rke2", wantUnt: "rke2-server.service"},
		{name: "rke2_binary_only", fs: hostTree(hostFile("usr/local/bin/rke2")),
			wantFound: true, wantDist: "rke2", wantUnt: "rke2-server.service"},
		{name: "both_rke2_has_unit", fs: hostTree(hostFile("usr/local/bin/k3s"), hostUnit("rke2-server.service")),
			wantFound: true, wantDist: "rke2", wantUnt: "rke2-server.service"},
		{name: "both_with_units_prefers_k3s", fs: hostTree(hostUnit("k3s.service"), hostUnit("rke2-agent.service")),
			wantFound: true, wantDist: "k3s", wantUnt: "k3s.service"},
		{name: "spec_distribution_and_unit", fs: hostTree(hostFile("usr/local/bin/k3s"), hostUnit("k3s.service")),
			spec:      engineSpec("k3s", "", K3sSettings{Distribution: "rke2", Unit: "rke2-agent"}),
			wantFound: true, wantDist: "rke2", wantUnt: "rke2-agent.service"},
		{name: "spec_distribution_drops_other_unit", fs: hostTree(hostUnit("k3s.service")),
			spec:      engineSpec("k3s", "", K3sSettings{Distribution: "rke2"}),
			wantFound: true, wantDist: "rke2", wantUnt: "rke2-server.service"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := NewK3s().Detect(detectCtx, Host{FS: c.fs}, c.spec)
			if d.Found != c.wantFound || d.Distribution != c.wantDist || d.Unit != c.wantUnt {
				t.Errorf("Detect = found %v dist %q unit %q (%s), want %v %q %q",
					d.Found, d.Distribution, d.Unit, d.Reason, c.wantFound, c.wantDist, c.wantUnt)
			}
			if d.Managed != d.Found {
				t.Errorf("Managed = %v with the auto toggle", d.Managed)
			}
			dir := "/etc/rancher/" + c.wantDist
			if want := []string{dir + "/registries.yaml", dir + "/mirrorctl-certs"}; !cmp.Equal(d.Owns, want) {
				t.Errorf("Owns = %q, want %q", d.Owns, want)
			}
		})
	}
}

func TestK3sDetectVersion(t *testing.T) {
	h := Host{
		FS:      hostTree(hostFile("usr/local/bin/k3s"), hostUnit("k3s.service")),
		Version: fakeExec(map[string]string{"/usr/local/bin/k3s": "k3s version v1.29.1+k3s1 (5dd33b2b)\ngo version go1.21.6\n"}),
	}
	if d := NewK3s().Detect(detectCtx, h, nil); d.Version != "1.29.1" {
		t.Errorf("Version = %q", d.Version)
	}
}

func TestK3sActivation(t *testing.T) {
	probe := health.Probe{Containerd: &health.ContainerdProbe{Socket: "/run/k3s/containerd/containerd.sock"}}
	for _, c := range []struct {
		name    string
		changed []render.Change
		d       Detection
		want    Activation
	}{
		{"nothing", nil, Detection{Unit: "k3s.service"}, Activation{Engine: "k3s", Unit: "k3s.service"}},
		{"registries", changed("x", "/etc/rancher/k3s/registries.yaml"), Detection{Unit: "k3s-agent.service"},
			Activation{Engine: "k3s", Unit: "k3s-agent.service", Disruption: Restart, Probe: probe}},
		{"certs_only", changed("x", "/etc/rancher/rke2/mirrorctl-certs/r/ca.crt"), Detection{Unit: "rke2-agent.service"},
			Activation{Engine: "k3s", Unit: "rke2-agent.service", Disruption: Restart, Probe: probe}},
		{"unit_from_distribution", changed("x", "/etc/rancher/rke2/registries.yaml"), Detection{Distribution: "rke2"},
			Activation{Engine: "k3s", Unit: "rke2-server.service", Disruption: Restart, Probe: probe}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := NewK3s().Activation(c.changed, c.d)
			got.Reason = ""
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("Activation (-want +got):\n%s", diff)
			}
		})
	}
}

// A restart's reason names a few files, not all: 1,000 registries'
// certificates made it 100 KB, kept in state.json and printed by plan.
func TestK3sActivationReasonNamesAFewFiles(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{
		{1, "/etc/rancher/k3s/c0/ca.crt changed; "},
		{3, "/etc/rancher/k3s/c0/ca.crt, /etc/rancher/k3s/c1/ca.crt, /etc/rancher/k3s/c2/ca.crt changed; "},
		{2000, "/etc/rancher/k3s/c0/ca.crt, /etc/rancher/k3s/c1/ca.crt, /etc/rancher/k3s/c2/ca.crt and 1997 more files changed; "},
	} {
		var paths []string
		for i := range c.n {
			paths = append(paths, fmt.Sprintf("/etc/rancher/k3s/c%d/ca.crt", i))
		}
		got := NewK3s().Activation(changed("x", paths...), Detection{Unit: "k3s.service"}).Reason
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("%d files: reason %q, want it to start %q", c.n, got, c.want)
		}
	}
}

// wharfie* are rancher/wharfie pkg/registries/types.go's field names and
// yaml tags, written out here independently of k3s_yaml.go so that a typo
// there (identitytoken, ca-file) fails this test.
type wharfieRegistry struct {
	Mirrors map[string]wharfieMirror `yaml:"mirrors"`
	Configs map[string]wharfieConfig `yaml:"configs"`
}

type wharfieMirror struct {
	Endpoints []string          `yaml:"endpoint"`
	Rewrites  map[string]string `yaml:"rewrite"`
}

type wharfieConfig struct {
	Auth *wharfieAuth `yaml:"auth"`
	TLS  *wharfieTLS  `yaml:"tls"`
}

type wharfieAuth struct {
	Username      string `yaml:"username"`
	Password      string `yaml:"password"`
	Auth          string `yaml:"auth"`
	IdentityToken string `yaml:"identity_token"`
}

type wharfieTLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

func TestK3sRegistriesRoundTrip(t *testing.T) {
	// Passwords that YAML would read as something else unless quoted.
	tricky := []string{"yes", "on", "NO", "true", "null", "~", "123", "0x1F", "1e3", "012", "1:20", "a: b", "#hash", "- dash", " lead", "trail ", "quo\"te", "multi\nline", "*star", "&anchor", "!tag", "%pct", "@at", "`tick"}
	s := &spec.Spec{
		Mirrors: map[string]*spec.Mirror{
			"docker.io": {Endpoints: []string{"mirror.example.com:5000", "https://n.example.com/repository/hub/v2"},
				Rewrites: map[string]string{"^library/(.*)": "hub/$1"}},
			"*":       {Endpoints: []string{"https://all.example.com"}},
			"quay.io": {},
		},
		Configs: map[string]*spec.Config{
			"mirror.example.com:5000": {
				Auth: &spec.Auth{Username: "puller", Password: credentials.NewSecret("pw")},
				TLS: &spec.TLS{CAFile: "/src/ca.crt", CertFile: "/src/c.crt", KeyFile: "/src/c.key", InsecureSkipVerify: true,
					CA: []byte(testpki.CA), Cert: []byte(testpki.ClientCert), Key: credentials.NewSecret(testpki.ClientKey)},
			},
			"ghcr.io":    {Auth: &spec.Auth{IdentityToken: credentials.NewSecret("tok")}},
			"quay.io":    {Auth: &spec.Auth{Auth: credentials.NewSecret("dTpw")}},
			"*":          {TLS: &spec.TLS{InsecureSkipVerify: true}},
			"on-disk.io": {TLS: &spec.TLS{CAFile: "/etc/pki/ca.pem"}},
		},
	}
	for i, pw := range tricky {
		s.Configs["tricky"+string(rune('a'+i))+".example.com"] = &spec.Config{Auth: &spec.Auth{Username: pw, Password: credentials.NewSecret(pw)}}
	}
	r, _ := k3sRegistriesOf(s, "/etc/rancher/k3s/mirrorctl-certs")
	data, err := marshalK3s(r)
	if err != nil {
		t.Fatal(err)
	}
	var got wharfieRegistry
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decoding our registries.yaml strictly: %v\n%s", err, data)
	}

	want := wharfieRegistry{Mirrors: map[string]wharfieMirror{}, Configs: map[string]wharfieConfig{}}
	for reg, m := range s.Mirrors {
		want.Mirrors[reg] = wharfieMirror{Endpoints: m.Endpoints, Rewrites: m.Rewrites}
	}
	certs := "/etc/rancher/k3s/mirrorctl-certs/mirror.example.com:5000/"
	for host, c := range s.Configs {
		var wc wharfieConfig
		if a := c.Auth; a != nil {
			wc.Auth = &wharfieAuth{a.Username, a.Password.Reveal(), a.Auth.Reveal(), a.IdentityToken.Reveal()}
		}
		if c.TLS != nil {
			wc.TLS = &wharfieTLS{CAFile: c.TLS.CAFile, InsecureSkipVerify: c.TLS.InsecureSkipVerify}
		}
		want.Configs[host] = wc
	}
	want.Configs["mirror.example.com:5000"].TLS.CAFile = certs + "ca.crt"
	want.Configs["mirror.example.com:5000"].TLS.CertFile = certs + "client.cert"
	want.Configs["mirror.example.com:5000"].TLS.KeyFile = certs + "client.key"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("registries.yaml read back (-want +got):\n%s\n%s", diff, data)
	}
	if !bytes.HasPrefix(data, []byte(k3sHeader+"\n")) {
		t.Errorf("no header:\n%s", data)
	}
}

func TestK3sRenderDeterministic(t *testing.T) {
	s := &spec.Spec{Mirrors: map[string]*spec.Mirror{}}
	for _, r := range []string{"a.io", "b.io", "c.io", "d.io", "e.io", "f.io"} {
		s.Mirrors[r] = &spec.Mirror{Endpoints: []string{"https://m." + r}, Rewrites: map[string]string{"x": "y", "a": "b", "m": "n"}}
	}
	h := Host{FS: hostTree()}
	first, err := NewK3s().Render(s, h, Detection{})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, _ := NewK3s().Render(s, h, Detection{})
		if !bytes.Equal(again.Files[0].Data, first.Files[0].Data) {
			t.Fatalf("Render is not deterministic:\n%s\n---\n%s", first.Files[0].Data, again.Files[0].Data)
		}
	}
	f := first.Files[0]
	if f.Path != "/etc/rancher/k3s/registries.yaml" || f.Mode != 0o600 || !f.Secret {
		t.Errorf("registries.yaml file = %s mode %v secret %v", f.Path, f.Mode, f.Secret)
	}
}
