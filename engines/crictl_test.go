package engines

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

func TestCrictlDetect(t *testing.T) {
	for _, c := range []struct {
		name                   string
		fs                     fstest.MapFS
		spec                   *spec.Spec
		exec                   map[string]string
		wantFound, wantManaged bool
		wantSocket, wantVer    string
	}{
		{name: "nothing", fs: hostTree()},
		{name: "binary", fs: hostTree(hostFile("usr/local/bin/crictl"), hostFile("run/containerd/containerd.sock")),
			exec:      map[string]string{"/usr/local/bin/crictl": "crictl version v1.26.0\n"},
			wantFound: true, wantManaged: true, wantSocket: "/run/containerd/containerd.sock", wantVer: "1.26.0"},
		{name: "config_only", fs: hostTree(hostFile("etc/crictl.yaml"), hostFile("run/crio/crio.sock")),
			wantFound: true, wantManaged: true, wantSocket: "/run/crio/crio.sock"},
		{name: "k3s_socket_first", fs: hostTree(hostFile("usr/bin/crictl"), hostFile("run/containerd/containerd.sock"), hostFile("run/k3s/containerd/containerd.sock")),
			wantFound: true, wantManaged: true, wantSocket: "/run/k3s/containerd/containerd.sock"},
		{name: "cri_dockerd_var_run", fs: hostTree(hostFile("usr/bin/crictl"), hostFile("var/run/cri-dockerd.sock")),
			wantFound: true, wantManaged: true, wantSocket: "/var/run/cri-dockerd.sock"},
		{name: "disabled", fs: hostTree(hostFile("usr/bin/crictl")),
			spec: engineSpec("crictl", spec.Off, nil), wantFound: true},
		{name: "spec_config_path", fs: hostTree(hostFile("opt/crictl.yaml")),
			spec: engineSpec("crictl", "", CrictlSettings{Config: "/opt/crictl.yaml"}), wantFound: true, wantManaged: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := Host{FS: c.fs}
			if c.exec != nil {
				h.Version = fakeExec(c.exec)
			}
			d := NewCrictl().Detect(detectCtx, h, c.spec)
			if d.Found != c.wantFound || d.Managed != c.wantManaged || d.Socket != c.wantSocket || d.Version != c.wantVer {
				t.Errorf("Detect = found %v managed %v socket %q version %q (%s)", d.Found, d.Managed, d.Socket, d.Version, d.Reason)
			}
		})
	}
}

func TestCrictlActivationIsAlwaysNone(t *testing.T) {
	for _, c := range [][]render.Change{nil, changed("x", "/etc/crictl.yaml")} {
		if a := NewCrictl().Activation(c, Detection{}); a.Disruption != None || a.Engine != "crictl" {
			t.Errorf("Activation(%v) = %+v", c, a)
		}
	}
}

func TestCrictlEndpointChoice(t *testing.T) {
	for _, c := range []struct {
		name     string
		endpoint string
		d        Detection
		fs       fstest.MapFS
		want     string
		warned   bool
	}{
		{"spec_wins", "unix:///run/x.sock", Detection{Socket: "/run/containerd/containerd.sock"}, hostTree(), "unix:///run/x.sock", false},
		{"spec_bare_path", "/run/x.sock", Detection{}, hostTree(), "unix:///run/x.sock", false},
		{"detected", "", Detection{Socket: "/run/crio/crio.sock"}, hostTree(), "unix:///run/crio/crio.sock", false},
		{"probed", "", Detection{}, hostTree(hostFile("run/containerd/containerd.sock")), "unix:///run/containerd/containerd.sock", false},
		{"fallback", "", Detection{}, hostTree(), criDefault, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &warnList{engine: "crictl"}
			got := crictlEndpoint(CrictlSettings{Endpoint: c.endpoint}, Host{FS: c.fs}, c.d, w)
			if got != c.want || (len(w.list) > 0) != c.warned {
				t.Errorf("crictlEndpoint = %q, warnings %v", got, w.list)
			}
		})
	}
}

// The timeout is written as a YAML integer: crictl reads it with strconv.Atoi.
func TestCrictlTimeoutInteger(t *testing.T) {
	s := engineSpec("crictl", "", CrictlSettings{Timeout: 30})
	s.Mirrors = map[string]*spec.Mirror{"docker.io": {}}
	res, err := NewCrictl().Render(s, Host{FS: hostTree(hostFile("etc/crictl.yaml", "timeout: \"2\"\n"))}, Detection{Socket: "/run/containerd/containerd.sock"})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Files[0].Data); !strings.Contains(got, "\ntimeout: 30\n") && !strings.HasPrefix(got, "timeout: 30\n") {
		t.Errorf("crictl.yaml =\n%s", got)
	}
	if f := res.Files[0]; f.Secret || !f.Merged || f.Path != "/etc/crictl.yaml" {
		t.Errorf("file = %+v", f)
	}
}

// Every max-retries line goes and every duration timeout is rewritten,
// whichever of repeated keys it is, the other keys staying in order; in one
// pass over the mapping (a file of many max-retries lines once took time
// quadratic in their number: 36 s for 200,000).
func TestCrictlRepeatedKeys(t *testing.T) {
	s := &spec.Spec{Mirrors: map[string]*spec.Mirror{"docker.io": {}}}
	in := "max-retries: 1\ndebug: true\nmax-retries: 2\ntimeout: 10s\npull-image-on-create: false\nmax-retries: 3\ntimeout: 1500ms\n"
	res, err := NewCrictl().Render(s, Host{FS: hostTree(hostFile("etc/crictl.yaml", in))}, Detection{Socket: "/run/containerd/containerd.sock", Version: "1.31.1"})
	if err != nil {
		t.Fatal(err)
	}
	want := "debug: true\ntimeout: 10\npull-image-on-create: false\ntimeout: 2\nruntime-endpoint: unix:///run/containerd/containerd.sock\nimage-endpoint: unix:///run/containerd/containerd.sock\n"
	if got := string(res.Files[0].Data); got != want {
		t.Errorf("crictl.yaml =\n%s\nwant\n%s", got, want)
	}
	if n := len(res.Warnings); n != 5 {
		t.Errorf("%d warnings, want one per max-retries and per timeout: %v", n, res.Warnings)
	}
}
