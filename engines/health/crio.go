package health

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/pelletier/go-toml/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CRIO checks that the CRI-O on socket answers the CRI Status call (waiting
// for a restarting daemon until ctx ends) and, when wantAuthFile is set,
// that the configuration it runs with has that global_auth_file. CRI-O
// serves its configuration as TOML at GET /config on the same socket (what
// `crio status config` prints); a CRI-O that does not answer there is
// judged by the Status call alone. CRI-O reports nothing of the registries
// it loaded: a reload that fails to parse registries.conf keeps the old
// ones, which no API shows (docs/engines/containers.md).
func CRIO(ctx context.Context, socket, wantAuthFile string) error {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("crio at %s: %w", socket, err)
	}
	defer conn.Close()
	err = retry(ctx, func(ctx context.Context) error {
		_, err := runtimeapi.NewRuntimeServiceClient(conn).Status(ctx, &runtimeapi.StatusRequest{})
		return err
	})
	if err != nil {
		return fmt.Errorf("crio at %s does not answer the CRI Status call: %w", socket, err)
	}
	if wantAuthFile == "" {
		return nil
	}
	got, ok := crioGlobalAuthFile(ctx, socket)
	if ok && got != wantAuthFile {
		return fmt.Errorf("crio runs with global_auth_file %q, not %q: a later crio.conf.d file or a command-line flag overrides it", got, wantAuthFile)
	}
	return nil
}

// crioGlobalAuthFile asks CRI-O's inspect API for the global_auth_file it
// runs with; ok is false when it cannot tell.
func crioGlobalAuthFile(ctx context.Context, socket string) (string, bool) {
	client := &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
		Timeout: 5 * time.Second,
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://crio/config", nil)
	if err != nil {
		return "", false
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", false
	}
	var cfg struct {
		Crio struct {
			Image struct {
				GlobalAuthFile *string `toml:"global_auth_file"`
			} `toml:"image"`
		} `toml:"crio"`
	}
	if toml.Unmarshal(body, &cfg) != nil || cfg.Crio.Image.GlobalAuthFile == nil {
		return "", false
	}
	return *cfg.Crio.Image.GlobalAuthFile, true
}
