//go:build gendocs

package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// buildCommands are the commands only a build of mirrorctl has (go run
// -tags gendocs): gen-docs pulls in cobra/doc's man-page renderer (go-md2man,
// blackfriday), whose package init every run of the shipped binary would
// pay for, for a command no node runs.
func buildCommands(g *globalFlags) []*cobra.Command {
	return []*cobra.Command{newGenDocsCmd(g)}
}

// newGenDocsCmd is the hidden command the packages are built with: man pages
// from the cobra commands (github.com/spf13/cobra/doc) and shell completions
// from cobra's own generators. The Makefile runs it into build/; nothing it
// writes is committed.
func newGenDocsCmd(g *globalFlags) *cobra.Command {
	var man, completions string
	cmd := &cobra.Command{
		Use:    "gen-docs",
		Short:  "Write man pages and shell completions (for packaging)",
		Hidden: true,
		Args:   cobra.NoArgs,
		Long: `gen-docs writes one man page per command (section 1) into --man, and the
bash, zsh and fish completions into --completions as mirrorctl, _mirrorctl and
mirrorctl.fish. The date in the man pages is SOURCE_DATE_EPOCH when set, so a
package build is reproducible.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if man == "" && completions == "" {
				return &exitError{code: exitInput, err: fmt.Errorf("give --man DIR, --completions DIR or both")}
			}
			return runGenDocs(cmd.Root(), man, completions)
		},
	}
	cmd.Flags().StringVar(&man, "man", "", "directory for the man pages (created if missing)")
	cmd.Flags().StringVar(&completions, "completions", "", "directory for the bash, zsh and fish completions (created if missing)")
	return cmd
}

func runGenDocs(root *cobra.Command, manDir, complDir string) error {
	// The completion command is added by cobra when the command line runs;
	// add it now so that it has a man page too.
	root.InitDefaultCompletionCmd()
	root.DisableAutoGenTag = true
	if manDir != "" {
		if err := os.MkdirAll(manDir, 0o755); err != nil {
			return err
		}
		header := &doc.GenManHeader{
			Section: "1",
			Source:  "mirrorctl " + version,
			Manual:  "mirrorctl manual",
		}
		if err := doc.GenManTree(root, header, manDir); err != nil {
			return fmt.Errorf("writing man pages: %w", err)
		}
	}
	if complDir == "" {
		return nil
	}
	if err := os.MkdirAll(complDir, 0o755); err != nil {
		return err
	}
	for name, gen := range map[string]func(string) error{
		"mirrorctl":      func(p string) error { return root.GenBashCompletionFileV2(p, true) },
		"_mirrorctl":     root.GenZshCompletionFile,
		"mirrorctl.fish": func(p string) error { return root.GenFishCompletionFile(p, true) },
	} {
		if err := gen(filepath.Join(complDir, name)); err != nil {
			return fmt.Errorf("writing %s completion: %w", name, err)
		}
	}
	return nil
}
