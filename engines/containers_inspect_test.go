package engines

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/mirrorctl/mirrorctl/spec"
)

// fakeCRIO serves what doctor asks CRI-O on one socket, as CRI-O does: the
// CRI (gRPC over HTTP/2) and GET /config (HTTP/1.1, TOML).
type fakeCRIO struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	config string // "" answers /config with 404
}

func (f *fakeCRIO) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{RuntimeName: "cri-o", RuntimeVersion: "1.30.4"}, nil
}

func (f *fakeCRIO) Status(context.Context, *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true}, {Type: runtimeapi.NetworkReady, Status: false, Reason: "NoCNI"}}}}, nil
}

func serveCRIO(t *testing.T, f *fakeCRIO) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "crio") // a socket path must be short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "crio.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(g, f)
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			g.ServeHTTP(w, r)
			return
		}
		if r.URL.Path != "/config" || f.config == "" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(f.config))
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); g.Stop() })
	return sock
}

// TestContainersInspect: files containers/image refuses are FAIL with or
// without a daemon; CRI-O's running global_auth_file is compared with
// crio.conf and its drop-ins.
func TestContainersInspect(t *testing.T) {
	crio := Detection{Engine: "containers", Unit: crioUnit, Socket: crioSocket}
	podman := Detection{Engine: "containers"}
	dropIn := "[crio.image]\nglobal_auth_file = \"/etc/crio/mirrorctl-auth.json\"\n"
	noSocket := func(string) (string, error) { return "", errors.New("no socket") }
	tests := []struct {
		name   string
		d      Detection
		files  map[string]string
		daemon *fakeCRIO
		want   []string
	}{
		{"podman: files load", podman, nil, nil, []string{"OK registries_conf_loads", "INFO no_daemon"}},
		{"podman: a drop-in that does not parse", podman, map[string]string{"etc/containers/registries.conf.d/10-x.conf": "x = [\n"}, nil,
			[]string{"FAIL registries_conf_invalid", "INFO no_daemon"}},
		{"root's registries.conf and newer paths", podman, map[string]string{
			"root/.config/containers/registries.conf":       "",
			"usr/share/containers/registries.conf.d/a.conf": "",
		}, nil, []string{"OK registries_conf_loads", "WARN user_registries_conf", "INFO newer_registries_paths", "INFO no_daemon"}},
		{"crio not running", crio, nil, nil, []string{"OK registries_conf_loads", "INFO daemon_not_running"}},
		{"crio runs with the files' global_auth_file", crio, map[string]string{"etc/crio/crio.conf.d/50-mirrorctl.conf": dropIn},
			&fakeCRIO{config: "[crio.image]\nglobal_auth_file = \"/etc/crio/mirrorctl-auth.json\"\nauto_reload_registries = true\n"},
			[]string{"OK registries_conf_loads", "OK daemon_matches_files", "INFO auto_reload_registries"}},
		{"crio started before the drop-in: a restart is owed", crio, map[string]string{"etc/crio/crio.conf.d/50-mirrorctl.conf": dropIn},
			&fakeCRIO{config: "[crio.image]\nglobal_auth_file = \"\"\n"},
			[]string{"OK registries_conf_loads", "FAIL pending_restart"}},
		{"crio without /config", crio, nil, &fakeCRIO{}, []string{"OK registries_conf_loads", "INFO crio_config_unknown"}},
		{"crio.conf that does not parse", crio, map[string]string{"etc/crio/crio.conf": "[crio.image\n"}, &fakeCRIO{config: "[crio]\n"},
			[]string{"OK registries_conf_loads", "FAIL crio_conf_invalid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resolve := noSocket
			if tt.daemon != nil {
				sock := serveCRIO(t, tt.daemon)
				resolve = func(string) (string, error) { return sock, nil }
			}
			got := NewContainers().(Inspector).Inspect(context.Background(), Host{FS: mapFS(tt.files)}, tt.d, &spec.Spec{}, resolve)
			if diff := cmp.Diff(tt.want, causesOf(got)); diff != "" {
				t.Errorf("(-want +got):\n%s\n%v", diff, got)
			}
		})
	}
}
