package health

import (
	"context"
	"fmt"
	"io"
	"net/http"

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
	cfg, ok := crioRunningConfig(ctx, socket)
	if ok && cfg.GlobalAuthFile != nil && *cfg.GlobalAuthFile != wantAuthFile {
		return fmt.Errorf("crio runs with global_auth_file %q, not %q: a later crio.conf.d file or a command-line flag overrides it", *cfg.GlobalAuthFile, wantAuthFile)
	}
	return nil
}

// crioConfig is what mirrorctl reads of the configuration CRI-O runs with.
type crioConfig struct {
	GlobalAuthFile       *string
	AutoReloadRegistries *bool
}

// crioRunningConfig asks CRI-O's inspect API (GET /config, TOML) for the
// configuration it runs with; ok is false when it cannot tell.
func crioRunningConfig(ctx context.Context, socket string) (crioConfig, bool) {
	client := unixHTTPClient(socket)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://crio/config", nil)
	if err != nil {
		return crioConfig{}, false
	}
	resp, err := client.Do(req)
	if err != nil {
		return crioConfig{}, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return crioConfig{}, false
	}
	var cfg struct {
		Crio struct {
			Image struct {
				GlobalAuthFile       *string `toml:"global_auth_file"`
				AutoReloadRegistries *bool   `toml:"auto_reload_registries"`
			} `toml:"image"`
		} `toml:"crio"`
	}
	if toml.Unmarshal(body, &cfg) != nil {
		return crioConfig{}, false
	}
	return crioConfig{GlobalAuthFile: cfg.Crio.Image.GlobalAuthFile, AutoReloadRegistries: cfg.Crio.Image.AutoReloadRegistries}, true
}
