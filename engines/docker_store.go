package engines

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"time"

	"github.com/mirrorctl/mirrorctl/engines/health"
)

// dockerd keeps images in one of two stores, and they read registry
// settings differently (docs/engines/docker.md):
//
//   - classic (graph drivers): registry-mirrors for Docker Hub only, TLS
//     files in certs.d/<host>/;
//   - containerd (snapshotters; Docker ≥ 28 reads certs.d with containerd's
//     hosts loader, moby daemon/hosts.go RegistryHosts): hosts.toml for any
//     registry, registry-mirrors still merged for Docker Hub.
const (
	storeClassic    = "classic"
	storeContainerd = "containerd"
)

// snapshotterPlugin is the driver-type /info reports for the containerd
// image store (moby daemon/containerd LayerStoreStatus).
const snapshotterPlugin = "io.containerd.snapshotter.v1"

// dockerInfoTimeout bounds asking a running dockerd: detection must stay
// fast when the socket exists but nothing answers.
const dockerInfoTimeout = 2 * time.Second

// dockerDataRoot is dockerd's default data-root.
const dockerDataRoot = "/var/lib/docker"

// graphDrivers are the graph drivers dockerd registers on Linux
// (daemon/graphdriver/register; priority overlay2,fuse-overlayfs,btrfs,
// zfs,vfs). A storage-driver naming one of them selects the classic store.
var graphDrivers = []string{"overlay2", "fuse-overlayfs", "btrfs", "zfs", "vfs"}

// imageStore is what detection found out about dockerd's image store.
type imageStore struct {
	store string // storeClassic or storeContainerd
	why   string // for Detection.Reason
	// version is the running daemon's, when it was asked.
	version string
}

// detectImageStore asks the running dockerd (/info) and otherwise works
// the store out from daemon.json, the unit's flags and the version, as
// dockerd decides at start (moby daemon/image_store_choice.go in 29,
// Features["containerd-snapshotter"] in 28 and before).
func detectImageStore(ctx context.Context, h Host, cfg dockerSettings, version string) imageStore {
	if st, ok := runningImageStore(ctx, h, cfg.socket); ok {
		return st
	}
	return configuredImageStore(h.FS, cfg, version)
}

// dockerPIDFile is where dockerd writes its pid at every start (its
// --pidfile default).
const dockerPIDFile = "var/run/docker.pid"

// runningImageStore asks dockerd's /info, once and briefly.
func runningImageStore(ctx context.Context, h Host, socket string) (imageStore, bool) {
	if h.Resolve == nil {
		return imageStore{}, false
	}
	// The answer is the running daemon's. Its socket may outlive it
	// (systemd's docker.socket), its pid file does not: looking at it
	// lets a no-op record (package noop) see a restart.
	_, _ = fs.Stat(h.FS, dockerPIDFile)
	sock, err := h.Resolve(socket)
	if err != nil {
		return imageStore{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, dockerInfoTimeout)
	defer cancel()
	info, err := health.DockerInfoOnce(ctx, sock)
	if err != nil {
		return imageStore{}, false
	}
	st := imageStore{store: storeClassic, version: leadingVersion(info.ServerVersion),
		why: fmt.Sprintf("image store classic (running dockerd uses the %s graph driver)", info.Driver)}
	if slices.Contains(info.DriverStatus, [2]string{"driver-type", snapshotterPlugin}) {
		st.store = storeContainerd
		st.why = fmt.Sprintf("image store containerd (running dockerd uses the %s snapshotter)", info.Driver)
	}
	return st, true
}

// daemonStoreKeys are the daemon.json keys that decide the image store.
type daemonStoreKeys struct {
	Features      map[string]bool `json:"features"`
	StorageDriver string          `json:"storage-driver"`
	UsernsRemap   string          `json:"userns-remap"`
	DataRoot      string          `json:"data-root"`
}

// configuredImageStore is the store dockerd will choose when it starts
// with the files as they are.
func configuredImageStore(fsys fs.FS, cfg dockerSettings, version string) imageStore {
	var keys daemonStoreKeys
	if data, ok, _ := readOptional(fsys, cfg.daemonJSON); ok {
		_ = json.Unmarshal(data, &keys) // an unreadable file is Render's to report
	}
	flags := scanDockerUnit(fsys, cfg.unit)
	snap, snapSet := keys.Features["containerd-snapshotter"]
	where := cfg.daemonJSON
	if flags.snapshotter != nil {
		snap, snapSet, where = *flags.snapshotter, true, "the unit's --feature"
	}
	driver := keys.StorageDriver
	if flags.storageDriver != "" {
		driver = flags.storageDriver
	}
	userns := keys.UsernsRemap
	if flags.usernsRemap != "" {
		userns = flags.usernsRemap
	}
	root := dockerDataRoot
	if keys.DataRoot != "" {
		root = keys.DataRoot
	}
	if flags.dataRoot != "" {
		root = flags.dataRoot
	}
	classic := func(why string) imageStore {
		return imageStore{store: storeClassic, why: "image store classic (" + why + ")"}
	}
	containerd := func(why string) imageStore {
		return imageStore{store: storeContainerd, why: "image store containerd (" + why + ")"}
	}

	switch {
	case snapSet && snap:
		return containerd(fmt.Sprintf("containerd-snapshotter is on in %s", where))
	case snapSet:
		return classic(fmt.Sprintf("containerd-snapshotter is off in %s", where))
	case version == "":
		return classic("dockerd not running and its version unknown; containerd-snapshotter not set")
	case !releaseAtLeast(version, 29, 0):
		return classic(fmt.Sprintf("the default of Docker %s", version))
	case userns != "":
		return classic("userns-remap turns the containerd store off")
	}
	if prior := priorGraphDriver(fsys, root); prior != "" {
		return classic(fmt.Sprintf("%s holds the classic store's data, which Docker %s keeps using", prior, version))
	}
	if slices.Contains(graphDrivers, driver) {
		return classic(fmt.Sprintf("storage-driver %s is a graph driver", driver))
	}
	return containerd(fmt.Sprintf("the default of Docker %s on a node without classic store data", version))
}

// priorGraphDriver returns the first non-empty graph driver directory
// under dataRoot: with one, Docker 29 keeps the classic store
// (graphdriver.HasPriorDriver; vfs does not count).
func priorGraphDriver(fsys fs.FS, dataRoot string) string {
	for _, d := range graphDrivers {
		if d == "vfs" {
			continue
		}
		p := path.Join(dataRoot, d)
		if !hostHas(fsys, p) {
			continue
		}
		// As dockerd's isEmptyDir: a directory it cannot list counts as not empty.
		if ents, err := fs.ReadDir(fsys, FSPath(p)); err != nil || len(ents) > 0 {
			return p
		}
	}
	return ""
}
