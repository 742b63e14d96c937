// Command libraries measures what a split would leave: a cobra program with
// a `version` command that links the libraries `mirrorctl sync` cannot do
// without (YAML, TOML, systemd's D-Bus client, HTTP and TLS for the
// engines' sockets) and none of those only watch and doctor need (the
// Prometheus client, SSH signatures, containerd's hosts loader) or the
// gRPC health probes. Its start is the floor a sync-only binary would have.
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
)

func main() {
	root := &cobra.Command{Use: "libraries", SilenceUsage: true}
	root.AddCommand(&cobra.Command{Use: "version", Run: func(*cobra.Command, []string) { fmt.Println("libraries") }})
	if root.Execute() != nil {
		os.Exit(1)
	}
}
