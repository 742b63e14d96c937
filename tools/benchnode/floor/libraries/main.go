// Command libraries measures what a split would leave: a cobra program with
// a `version` command that links the libraries `mirrorctl sync` cannot do
// without (YAML, TOML, systemd's D-Bus client, HTTP and TLS for the
// engines' sockets) and none of those only watch and doctor need (the
// Prometheus client, SSH signatures, containerd's hosts loader) or the
// gRPC health probes. Its start is a lower bound of a sync-only binary's:
// it links only what those libraries' inits reach, not the code a sync
// calls in them.
//
// Its `replay stat|content RECORD` command checks the replay floor's record
// (what a no-op read) as that binary would before stopping: a bound for a
// split design with a no-op that does not plan.
//
// Built with the tags floor_probes, floor_watch and floor_loader it links
// those groups of packages too (with_*.go), so that the bench measures what
// each adds to the start.
package main

import (
	"fmt"
	"os"

	_ "crypto/tls"
	_ "net/http"

	_ "github.com/coreos/go-systemd/v22/dbus"
	_ "github.com/pelletier/go-toml/v2"
	"github.com/spf13/cobra"
	_ "gopkg.in/yaml.v3"

	"github.com/mirrorctl/mirrorctl/tools/benchnode/replay"
)

func main() {
	root := &cobra.Command{Use: "libraries", SilenceUsage: true}
	root.AddCommand(&cobra.Command{Use: "version", Run: func(*cobra.Command, []string) { fmt.Println("libraries") }})
	root.AddCommand(&cobra.Command{Use: "replay stat|content RECORD", Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error { return replay.CheckFile(args[0], args[1]) }})
	if root.Execute() != nil {
		os.Exit(1)
	}
}
