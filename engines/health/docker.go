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
// exactly the registry mirrors and insecure registries want names (dockerd
// reloads them on SIGHUP asynchronously, so it polls until they match or
// ctx ends).
func Docker(ctx context.Context, socket string, want DockerProbe) error {
	var last error
	err := retry(ctx, func(ctx context.Context) error {
		last = dockerRunsWith(ctx, socket, want)
		return last
	})
	if err != nil {
		return fmt.Errorf("dockerd at %s: %w", socket, err)
	}
	return nil
}

// dockerRunsWith asks dockerd once whether it runs with want's settings.
func dockerRunsWith(ctx context.Context, socket string, want DockerProbe) error {
	client := unixHTTPClient(socket)
	if err := get(ctx, client, "/_ping", nil); err != nil {
		return err
	}
	st, err := dockerState(ctx, client)
	if err != nil {
		return err
	}
	if w := normalizeMirrors(want.Mirrors); !slices.Equal(st.Mirrors, w) {
		return fmt.Errorf("dockerd lists registry mirrors %q, want %q", st.Mirrors, w)
	}
	if want.Insecure == nil {
		return nil
	}
	// Entries that are CIDRs go to dockerd's CIDR list, which always holds
	// its defaults (127.0.0.0/8): each must be there. Host names must be
	// exactly the insecure index entries.
	var hosts []string
	for _, e := range want.Insecure {
		e = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(e, "http://"), "https://"), "/")
		if _, _, err := net.ParseCIDR(e); err == nil {
			if !slices.Contains(st.InsecureCIDRs, e) {
				return fmt.Errorf("dockerd does not list %s among its insecure registry CIDRs %q", e, st.InsecureCIDRs)
			}
			continue
		}
		hosts = append(hosts, e)
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	if got := slices.Sorted(slices.Values(st.Insecure)); !slices.Equal(got, hosts) {
		return fmt.Errorf("dockerd lists insecure registries %q, want %q", got, hosts)
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
	if err := get(ctx, unixHTTPClient(socket), "/info", &info); err != nil {
		return DockerInfo{}, fmt.Errorf("dockerd at %s: %w", socket, err)
	}
	return info, nil
}

// unixHTTPClient speaks HTTP to a daemon's API on a unix socket. Every
// question is one connection, closed after its answer: a client made per
// call (detection on every sync, each retry of a health check) must leave
// no idle connection behind, in mirrorctl or in the daemon.
func unixHTTPClient(socket string) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
		},
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
