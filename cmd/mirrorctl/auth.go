package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/mirrorctl/mirrorctl/credentials"
)

func newAuthCmd(g *globalFlags) *cobra.Command {
	auth := &cobra.Command{
		Use:   "auth",
		Short: "Credential helpers",
	}
	auth.AddCommand(&cobra.Command{
		Use:   "encode USERNAME",
		Short: "Print base64(USERNAME:PASSWORD) with no newline inside, reading the password from stdin",
		Long: `encode reads the password from standard input (one trailing newline is dropped,
so 'echo pass | mirrorctl auth encode user' is safe) and prints the value for an
'auth:' key in registries.yaml, containerd's config.toml or Docker's
config.json. The encoded value never contains a newline; a newline is printed
after it only when standard output is a terminal.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAuthEncode(g, args[0])
		},
	})
	return auth
}

func runAuthEncode(g *globalFlags, username string) error {
	if username == "" || strings.Contains(username, ":") {
		return &exitError{code: exitInput, err: fmt.Errorf("the username must be non-empty and must not contain ':'")}
	}
	pw, err := bufio.NewReader(g.stdin).ReadString(0)
	if err != nil && err != io.EOF {
		return fmt.Errorf("reading the password from stdin: %w", err)
	}
	pw = strings.TrimSuffix(strings.TrimSuffix(pw, "\n"), "\r")
	if pw == "" {
		return &exitError{code: exitInput, err: fmt.Errorf("no password on stdin")}
	}
	out := credentials.BasicAuth(username, credentials.NewSecret(pw)).Reveal()
	if isTerminal(g.stdout) {
		out += "\n"
	}
	_, err = io.WriteString(g.stdout, out)
	return err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
