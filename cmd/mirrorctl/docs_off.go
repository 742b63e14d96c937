//go:build !gendocs

package main

import "github.com/spf13/cobra"

// buildCommands: the shipped binary has none (see docs.go, -tags gendocs).
func buildCommands(*globalFlags) []*cobra.Command { return nil }
