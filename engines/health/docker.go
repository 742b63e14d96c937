package health

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Docker checks that dockerd on socket answers /_ping and that /info lists
// exactly wantMirrors as its registry mirrors (dockerd reloads them on
// SIGHUP asynchronously, so it polls until they match or ctx ends).
func Docker(ctx context.Context, socket string, wantMirrors []string) error {
	client := dockerClient(socket)
	want := normalizeMirrors(wantMirrors)
	var got []string
	err := retry(ctx, func(ctx context.Context) error {
		if err := get(ctx, client, "/_ping", nil); err != nil {
			return err
		}
		var info struct {
			RegistryConfig struct {
				Mirrors []string
			}
		}
		if err := get(ctx, client, "/info", &info); err != nil {
			return err
		}
		got = normalizeMirrors(info.RegistryConfig.Mirrors)
		if !slices.Equal(got, want) {
			return fmt.Errorf("dockerd lists registry mirrors %q, want %q", got, want)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dockerd at %s: %w", socket, err)
	}
	return nil
}

// DockerInfo is what detection reads of dockerd's /info.
type DockerInfo struct {
	ServerVersion string
	// Driver is the graph driver ("overlay2") or, with the containerd image
	// store, the snapshotter ("overlayfs").
	Driver string
	// DriverStatus holds ["driver-type", "io.containerd.snapshotter.v1"]
	// with the containerd image store (moby daemon/containerd
	// LayerStoreStatus), the graph driver's own facts otherwise.
	DriverStatus [][2]string
}

// DockerInfoOnce asks dockerd on socket for /info, once: for detection,
// where a daemon that does not answer within ctx counts as not running.
func DockerInfoOnce(ctx context.Context, socket string) (DockerInfo, error) {
	var info DockerInfo
	if err := get(ctx, dockerClient(socket), "/info", &info); err != nil {
		return DockerInfo{}, fmt.Errorf("dockerd at %s: %w", socket, err)
	}
	return info, nil
}

// dockerClient speaks HTTP to dockerd's API on a unix socket.
func dockerClient(socket string) *http.Client {
	return &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
		Timeout: 5 * time.Second,
	}
}

func get(ctx context.Context, c *http.Client, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if into == nil {
		return nil
	}
	return json.Unmarshal(body, into)
}

// normalizeMirrors makes mirror URLs comparable: dockerd reports them with a
// trailing slash.
func normalizeMirrors(in []string) []string {
	out := make([]string, 0, len(in))
	for _, m := range in {
		out = append(out, strings.TrimSuffix(m, "/")+"/")
	}
	return out
}
