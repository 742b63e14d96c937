package engines

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// The store dockerd will use when it starts, worked out from the files as
// dockerd 28 and 29 do it (daemon/image_store_choice.go).
func TestDockerConfiguredImageStore(t *testing.T) {
	const daemonJSON = "etc/docker/daemon.json"
	unit := func(execStart string) hostOpt {
		return hostFile("lib/systemd/system/docker.service", "[Service]\nExecStart="+execStart+"\n")
	}
	for _, c := range []struct {
		name    string
		fs      fstest.MapFS
		version string
		want    string
		why     string // a substring of the reason
	}{
		{"29_fresh_install", hostTree(), "29.8.0", storeContainerd, "default of Docker 29.8.0"},
		{"29_empty_overlay2_dir", hostTree(hostDir("var/lib/docker/overlay2")), "29.8.0", storeContainerd, "default"},
		{"29_prior_overlay2_data", hostTree(hostFile("var/lib/docker/overlay2/l/ABC")), "29.8.0", storeClassic, "/var/lib/docker/overlay2 holds"},
		{"29_prior_vfs_does_not_count", hostTree(hostFile("var/lib/docker/vfs/dir/x")), "29.8.0", storeContainerd, "default"},
		{"29_prior_data_under_data_root", hostTree(hostFile(daemonJSON, `{"data-root": "/srv/docker"}`), hostFile("srv/docker/btrfs/subvolumes/x")), "29.1.0", storeClassic, "/srv/docker/btrfs"},
		{"29_data_root_elsewhere_ignores_default", hostTree(hostFile(daemonJSON, `{"data-root": "/srv/docker"}`), hostFile("var/lib/docker/overlay2/l/x")), "29.1.0", storeContainerd, "default"},
		{"29_prior_data_but_feature_on", hostTree(hostFile(daemonJSON, `{"features": {"containerd-snapshotter": true}}`), hostFile("var/lib/docker/overlay2/l/x")), "29.8.0", storeContainerd, "on in /etc/docker/daemon.json"},
		{"29_feature_off", hostTree(hostFile(daemonJSON, `{"features": {"containerd-snapshotter": false}}`)), "29.8.0", storeClassic, "off in /etc/docker/daemon.json"},
		{"29_graph_storage_driver", hostTree(hostFile(daemonJSON, `{"storage-driver": "overlay2"}`)), "29.8.0", storeClassic, "storage-driver overlay2"},
		{"29_snapshotter_storage_driver", hostTree(hostFile(daemonJSON, `{"storage-driver": "overlayfs"}`)), "29.8.0", storeContainerd, "default"},
		{"29_userns_remap", hostTree(hostFile(daemonJSON, `{"userns-remap": "default"}`)), "29.8.0", storeClassic, "userns-remap"},
		{"29_unit_feature_off", hostTree(unit("/usr/bin/dockerd --feature containerd-snapshotter=false")), "29.8.0", storeClassic, "off in the unit's --feature"},
		{"29_unit_storage_driver", hostTree(unit("/usr/bin/dockerd -s vfs -H fd://")), "29.8.0", storeClassic, "storage-driver vfs"},
		{"29_unit_docker_driver_env", hostTree(hostFile("lib/systemd/system/docker.service", "[Service]\nEnvironment=DOCKER_DRIVER=zfs\nExecStart=/usr/bin/dockerd\n")), "29.8.0", storeClassic, "storage-driver zfs"},
		{"28_default_classic", hostTree(), "28.5.2", storeClassic, "default of Docker 28.5.2"},
		{"28_feature_on", hostTree(hostFile(daemonJSON, `{"features": {"containerd-snapshotter": true}}`)), "28.0.0", storeContainerd, "on in"},
		{"28_unit_feature_bare_name", hostTree(unit("/usr/bin/dockerd --feature=containerd-snapshotter")), "28.3.0", storeContainerd, "on in the unit's --feature"},
		{"unknown_version", hostTree(), "", storeClassic, "version unknown"},
		{"unknown_version_feature_on", hostTree(hostFile(daemonJSON, `{"features": {"containerd-snapshotter": true}}`)), "", storeContainerd, "on in"},
		{"bad_daemon_json", hostTree(hostFile(daemonJSON, `{"features": `)), "29.8.0", storeContainerd, "default"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := configuredImageStore(c.fs, dockerSettingsOf(nil), c.version)
			if got.store != c.want || !strings.Contains(got.why, c.why) {
				t.Errorf("store %q (%s), want %q with %q", got.store, got.why, c.want, c.why)
			}
		})
	}
}

// fakeDockerd serves /info on a unix socket and returns the socket's path.
// accepted, when not nil, is closed at the first connection and the
// request is never answered.
func fakeDockerd(t *testing.T, info string, accepted chan struct{}) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dstore")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	block := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if accepted != nil {
			close(accepted)
			<-block
			return
		}
		if r.URL.Path != "/info" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(info))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { close(block); srv.Close() })
	return sock
}

// A running dockerd is asked: its /info decides, over the files.
func TestDockerDetectAsksRunningDaemon(t *testing.T) {
	info := func(v, driver string, status [][2]string) string {
		b, _ := json.Marshal(map[string]any{"ServerVersion": v, "Driver": driver, "DriverStatus": status})
		return string(b)
	}
	// The files say classic (Docker 28 default); the daemon says otherwise.
	tree := hostTree(hostFile("usr/bin/dockerd"))
	exec := fakeExec(map[string]string{"/usr/bin/dockerd": "Docker version 28.5.2, build 1\n"})
	for _, c := range []struct {
		name, info, want, version string
		noExec                    bool
	}{
		{name: "containerd_store", info: info("28.5.2", "overlayfs", [][2]string{{"driver-type", "io.containerd.snapshotter.v1"}}), want: storeContainerd, version: "28.5.2"},
		{name: "classic_store", info: info("28.5.2", "overlay2", [][2]string{{"Backing Filesystem", "extfs"}, {"Supports d_type", "true"}}), want: storeClassic, version: "28.5.2"},
		{name: "version_from_daemon", info: info("29.8.0", "overlayfs", [][2]string{{"driver-type", "io.containerd.snapshotter.v1"}}), want: storeContainerd, version: "29.8.0", noExec: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			sock := fakeDockerd(t, c.info, nil)
			h := Host{FS: tree, Version: exec, Resolve: func(p string) (string, error) {
				if p != "/run/docker.sock" {
					return "", errors.New("unexpected socket " + p)
				}
				return sock, nil
			}}
			if c.noExec {
				h.Version = nil
			}
			d := NewDocker().Detect(context.Background(), h, nil)
			if d.ImageStore != c.want || d.Version != c.version || !strings.Contains(d.Reason, "running dockerd") {
				t.Errorf("Detect = store %q version %q (%s), want %q %q from the daemon", d.ImageStore, d.Version, d.Reason, c.want, c.version)
			}
		})
	}

	t.Run("no_daemon_falls_back_to_files", func(t *testing.T) {
		h := Host{FS: tree, Version: exec, Resolve: func(string) (string, error) { return "", os.ErrNotExist }}
		d := NewDocker().Detect(context.Background(), h, nil)
		if d.ImageStore != storeClassic || strings.Contains(d.Reason, "running") {
			t.Errorf("Detect = %q (%s)", d.ImageStore, d.Reason)
		}
	})
	t.Run("socket_without_listener", func(t *testing.T) {
		dead := filepath.Join(t.TempDir(), "docker.sock")
		if err := os.WriteFile(dead, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		h := Host{FS: tree, Version: exec, Resolve: func(string) (string, error) { return dead, nil }}
		if d := NewDocker().Detect(context.Background(), h, nil); d.ImageStore != storeClassic {
			t.Errorf("Detect = %q (%s)", d.ImageStore, d.Reason)
		}
	})
	// A daemon that accepts and never answers holds detection only as
	// long as the context: cancelling it ends detection, from the files.
	t.Run("hung_daemon_bounded_by_context", func(t *testing.T) {
		accepted := make(chan struct{})
		sock := fakeDockerd(t, "", accepted)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-accepted; cancel() }()
		h := Host{FS: tree, Version: exec, Resolve: func(string) (string, error) { return sock, nil }}
		if d := NewDocker().Detect(ctx, h, nil); d.ImageStore != storeClassic || strings.Contains(d.Reason, "running") {
			t.Errorf("Detect = %q (%s)", d.ImageStore, d.Reason)
		}
	})
}
