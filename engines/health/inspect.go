package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"syscall"

	introspection "github.com/containerd/containerd/api/services/introspection/v1"
	versionapi "github.com/containerd/containerd/api/services/version/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The functions below ask a running daemon once (no waiting for one that
// is starting): `mirrorctl doctor` compares what it runs with against its
// files. ctx bounds each.

// ErrNotRunning is returned by ContainerdState, DockerStatus and CRIOState when nothing
// listens on the socket (a stale socket file of a stopped daemon).
var ErrNotRunning = errors.New("nothing listens on the socket")

// listening checks that a daemon accepts connections on socket.
func listening(ctx context.Context, socket string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %w", socket, ErrNotRunning)
		}
		return err
	}
	return c.Close()
}

// CRIState is what a running containerd says about its CRI plugins.
type CRIState struct {
	Version string
	// Plugins are the CRI plugins found (io.containerd.grpc.v1.cri, and
	// io.containerd.cri.v1.images on 2.x), with their load error or "".
	Plugins map[string]string
	// ConfigPath is the registry config_path the CRI runs with, when the
	// daemon reports it (the images plugin's export on 2.x, the CRI
	// status's config on 1.x); nil when it does not.
	ConfigPath *string
	// Mirrors are the legacy registry.mirrors the CRI runs with (1.x
	// status), by registry.
	Mirrors map[string][]string
}

// ContainerdState asks the containerd on socket for its version, its CRI
// plugins and the registry config they run with.
func ContainerdState(ctx context.Context, socket string) (CRIState, error) {
	st := CRIState{Plugins: map[string]string{}}
	if err := listening(ctx, socket); err != nil {
		return st, err
	}
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return st, fmt.Errorf("containerd at %s: %w", socket, err)
	}
	defer conn.Close()
	v, err := versionapi.NewVersionClient(conn).Version(ctx, &emptypb.Empty{})
	if err != nil {
		return st, fmt.Errorf("containerd at %s does not answer: %w", socket, err)
	}
	st.Version = v.Version
	resp, err := introspection.NewIntrospectionClient(conn).Plugins(ctx, &introspection.PluginsRequest{})
	if err != nil {
		return st, fmt.Errorf("containerd at %s: listing plugins: %w", socket, err)
	}
	for _, want := range criPlugins {
		for _, p := range resp.Plugins {
			if p.Type != want.typ || p.ID != want.id {
				continue
			}
			msg := ""
			if p.InitErr != nil {
				msg = p.InitErr.Message
			}
			st.Plugins[p.Type+"."+p.ID] = msg
			if cp, ok := p.Exports["RegistryConfigPath"]; ok && p.InitErr == nil {
				st.ConfigPath = &cp
			}
		}
	}
	status, err := runtimeapi.NewRuntimeServiceClient(conn).Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		return st, nil // no CRI service: the plugin list says why
	}
	var cfg struct {
		Registry *struct {
			ConfigPath *string `json:"configPath"`
			Mirrors    map[string]struct {
				Endpoints []string `json:"endpoint"`
			} `json:"mirrors"`
		} `json:"registry"`
	}
	if json.Unmarshal([]byte(status.Info["config"]), &cfg) == nil && cfg.Registry != nil {
		if cfg.Registry.ConfigPath != nil && st.ConfigPath == nil {
			st.ConfigPath = cfg.Registry.ConfigPath
		}
		for r, m := range cfg.Registry.Mirrors {
			if st.Mirrors == nil {
				st.Mirrors = map[string][]string{}
			}
			st.Mirrors[r] = m.Endpoints
		}
	}
	return st, nil
}

// DockerState is what a running dockerd says about its registry settings.
type DockerState struct {
	Mirrors []string
	// Insecure are the registries (host[:port]) dockerd treats as
	// insecure; InsecureCIDRs the networks, its defaults included.
	Insecure      []string
	InsecureCIDRs []string
	// Driver is the storage driver; "io.containerd.snapshotter.v1" in
	// DriverStatus means the containerd image store.
	Driver       string
	DriverStatus [][2]string
}

// DockerStatus asks dockerd on socket for /info: its registry settings
// and image store.
func DockerStatus(ctx context.Context, socket string) (DockerState, error) {
	if err := listening(ctx, socket); err != nil {
		return DockerState{}, err
	}
	st, err := dockerState(ctx, unixHTTPClient(socket))
	if err != nil {
		return DockerState{}, fmt.Errorf("dockerd at %s: %w", socket, err)
	}
	return st, nil
}

// dockerState reads dockerd's /info.
func dockerState(ctx context.Context, client *http.Client) (DockerState, error) {
	var info struct {
		Driver         string
		DriverStatus   [][2]string
		RegistryConfig struct {
			Mirrors               []string
			InsecureRegistryCIDRs []string
			IndexConfigs          map[string]struct {
				Name   string
				Secure bool
			}
		}
	}
	if err := get(ctx, client, "/info", &info); err != nil {
		return DockerState{}, err
	}
	st := DockerState{Mirrors: normalizeMirrors(info.RegistryConfig.Mirrors), InsecureCIDRs: info.RegistryConfig.InsecureRegistryCIDRs,
		Driver: info.Driver, DriverStatus: info.DriverStatus}
	for name, ic := range info.RegistryConfig.IndexConfigs {
		if !ic.Secure {
			st.Insecure = append(st.Insecure, name)
		}
	}
	return st, nil
}

// NormalizeMirrors makes mirror URLs comparable as dockerd prints them
// (with a trailing slash).
func NormalizeMirrors(in []string) []string { return normalizeMirrors(in) }

// CRIOInfo is what a running CRI-O says about itself.
type CRIOInfo struct {
	Version string
	// NotReady are the CRI status conditions that are false
	// ("RuntimeReady: reason"), NetworkReady left out (no CNI yet is no
	// pull problem).
	NotReady []string
	// GlobalAuthFile and AutoReloadRegistries are from the configuration
	// it runs with (GET /config); nil when CRI-O does not say.
	GlobalAuthFile       *string
	AutoReloadRegistries *bool
}

// CRIOState asks the CRI-O on socket for its version, its CRI status and
// the configuration it runs with.
func CRIOState(ctx context.Context, socket string) (CRIOInfo, error) {
	var st CRIOInfo
	if err := listening(ctx, socket); err != nil {
		return st, err
	}
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return st, fmt.Errorf("crio at %s: %w", socket, err)
	}
	defer conn.Close()
	rs := runtimeapi.NewRuntimeServiceClient(conn)
	v, err := rs.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return st, fmt.Errorf("crio at %s does not answer the CRI Version call: %w", socket, err)
	}
	st.Version = v.RuntimeVersion
	status, err := rs.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return st, fmt.Errorf("crio at %s does not answer the CRI Status call: %w", socket, err)
	}
	for _, c := range status.GetStatus().GetConditions() {
		if !c.Status && c.Type != runtimeapi.NetworkReady {
			st.NotReady = append(st.NotReady, c.Type+": "+c.Reason+" "+c.Message)
		}
	}
	if cfg, ok := crioRunningConfig(ctx, socket); ok {
		st.GlobalAuthFile, st.AutoReloadRegistries = cfg.GlobalAuthFile, cfg.AutoReloadRegistries
	}
	return st, nil
}
