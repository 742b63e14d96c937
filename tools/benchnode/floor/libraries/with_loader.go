//go:build floor_loader

package main

// containerd's own hosts loader, which doctor asks where an image would be
// pulled from; it brings containerd's remotes (compression, digests,
// OpenTelemetry).
import (
	_ "github.com/containerd/containerd/v2/core/remotes/docker/config"
)
