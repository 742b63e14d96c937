package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"path"

	"github.com/pelletier/go-toml/v2"

	"github.com/mirrorctl/mirrorctl/health"
	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/render"
)

// k3sContainerdSocket is where k3s and RKE2 run their embedded containerd.
const k3sContainerdSocket = "/run/k3s/containerd/containerd.sock"

// Check is the default health check: the engine's own answer on its socket.
func Check(ctx context.Context, root string, e *plan.Engine) error {
	d := e.Detection
	switch d.Engine {
	case "containerd":
		return health.Containerd(ctx, render.HostPath(root, d.Socket), wantedConfigPath(e))
	case "docker":
		mirrors, err := wantedMirrors(e)
		if err != nil {
			return err
		}
		return health.Docker(ctx, render.HostPath(root, d.Socket), mirrors)
	case "k3s":
		// The unit restarted (systemd waited for it); its embedded
		// containerd must come up with a working CRI plugin.
		return health.Containerd(ctx, render.HostPath(root, k3sContainerdSocket), "")
	}
	return nil
}

// wantedConfigPath reads the registry config_path from the config.toml just
// written: what the CRI must now run with ("" when that file sets none, as
// after a rollback to a node's own config).
func wantedConfigPath(e *plan.Engine) string {
	if len(e.Detection.Paths) == 0 {
		return ""
	}
	for _, c := range e.Changes {
		if c.File.Path != e.Detection.Paths[0] || c.Op == render.Delete {
			continue
		}
		var doc struct {
			Plugins map[string]struct {
				Registry struct {
					ConfigPath string `toml:"config_path"`
				} `toml:"registry"`
			} `toml:"plugins"`
		}
		if toml.Unmarshal(c.File.Data, &doc) != nil {
			return ""
		}
		for _, name := range []string{"io.containerd.cri.v1.images", "io.containerd.grpc.v1.cri", "cri"} {
			if p := doc.Plugins[name].Registry.ConfigPath; p != "" {
				return p
			}
		}
		return ""
	}
	return ""
}

// wantedMirrors reads registry-mirrors from the daemon.json the plan wrote.
func wantedMirrors(e *plan.Engine) ([]string, error) {
	for _, c := range e.Changes {
		if path.Base(c.File.Path) != "daemon.json" || c.File.Remove {
			continue
		}
		var cfg struct {
			Mirrors []string `json:"registry-mirrors"`
		}
		if err := json.Unmarshal(c.File.Data, &cfg); err != nil {
			return nil, fmt.Errorf("reading back %s: %w", c.File.Path, err)
		}
		return cfg.Mirrors, nil
	}
	return nil, nil
}
