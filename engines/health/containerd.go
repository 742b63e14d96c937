// Package health asks a container engine, on its own socket, whether it
// works after mirrorctl changed its files. A running process proves nothing:
// containerd with `mirrors` next to `config_path` runs on with its CRI
// plugin disabled
// (docs/engines/containerd.md#the-cri-plugin-fails-while-the-process-runs),
// so the checks look at what the engine itself reports.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	introspection "github.com/containerd/containerd/api/services/introspection/v1"
	versionapi "github.com/containerd/containerd/api/services/version/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criPlugins are the plugins whose failure breaks image pulls for kubelet:
// the CRI service, and on 2.x the images plugin that owns the registry config.
var criPlugins = []struct{ typ, id string }{
	{"io.containerd.grpc.v1", "cri"},
	{"io.containerd.cri.v1", "images"},
}

// Containerd checks that the containerd on socket serves and that its CRI
// plugins loaded. It waits for a restarting daemon until ctx ends, so the
// caller's deadline is how long an engine may take to come up. When wantConfigPath is set and the daemon exports its
// registry config path (2.x), they must match.
func Containerd(ctx context.Context, socket, wantConfigPath string) error {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("containerd at %s: %w", socket, err)
	}
	defer conn.Close()
	var resp *introspection.PluginsResponse
	err = retry(ctx, func(ctx context.Context) error {
		resp, err = introspection.NewIntrospectionClient(conn).Plugins(ctx, &introspection.PluginsRequest{})
		return err
	})
	if err != nil {
		return fmt.Errorf("containerd at %s does not answer: %w", socket, err)
	}
	found := 0
	for _, want := range criPlugins {
		for _, p := range resp.Plugins {
			if p.Type != want.typ || p.ID != want.id {
				continue
			}
			found++
			if p.InitErr != nil {
				return fmt.Errorf("containerd's %s.%s plugin failed to load: %s", p.Type, p.ID, p.InitErr.Message)
			}
			if got := p.Exports["RegistryConfigPath"]; wantConfigPath != "" && got != "" && got != wantConfigPath {
				return fmt.Errorf("containerd's %s.%s plugin uses config_path %q, not %q", p.Type, p.ID, got, wantConfigPath)
			}
		}
	}
	if found == 0 {
		return fmt.Errorf("containerd at %s has no CRI plugin; is it disabled in config.toml (disabled_plugins)?", socket)
	}
	return criConfigPath(ctx, conn, wantConfigPath)
}

// criConfigPath asks the CRI service for its status and, when it reports
// the registry config path it runs with, checks it. The plugin list alone
// misses a config_path that never arrived: containerd 1.x replaces
// config.toml's whole CRI table with one from an imported file, and runs
// happily without mirrors.
func criConfigPath(ctx context.Context, conn *grpc.ClientConn, want string) error {
	// Right after a restart the CRI answers "server is not initialized
	// yet" for a moment: wait for it as for the socket (until ctx ends).
	var resp *runtimeapi.StatusResponse
	err := retry(ctx, func(ctx context.Context) error {
		var err error
		resp, err = runtimeapi.NewRuntimeServiceClient(conn).Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
		return err
	})
	if err != nil {
		return fmt.Errorf("containerd's CRI service does not answer: %w", err)
	}
	if want == "" {
		return nil
	}
	var cfg struct {
		Registry *struct {
			ConfigPath *string `json:"configPath"`
		} `json:"registry"`
	}
	if json.Unmarshal([]byte(resp.Info["config"]), &cfg) != nil || cfg.Registry == nil || cfg.Registry.ConfigPath == nil {
		return nil // this version does not report it; the plugin check stands
	}
	if got := *cfg.Registry.ConfigPath; got != want {
		return fmt.Errorf("containerd's CRI runs with registry config_path %q, not %q: another file (an `imports` drop-in?) overrides config.toml", got, want)
	}
	return nil
}

// ContainerdVersion asks a running containerd its version ("1.6.20~ds1", "v2.4.2").
func ContainerdVersion(ctx context.Context, socket string) (string, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	v, err := versionapi.NewVersionClient(conn).Version(ctx, &emptypb.Empty{})
	if err != nil {
		return "", err
	}
	return v.Version, nil
}

// retry calls f until it succeeds or ctx ends, backing off from 50 ms to 1 s.
// It is for daemons that are still starting: their socket is missing or
// refuses connections for a moment after a restart.
func retry(ctx context.Context, f func(context.Context) error) error {
	delay := 50 * time.Millisecond
	for {
		callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := f(callCtx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(delay):
		}
		if delay < time.Second {
			delay *= 2
		}
	}
}
