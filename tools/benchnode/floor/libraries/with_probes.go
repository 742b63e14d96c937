//go:build floor_probes

package main

// The packages mirrorctl's gRPC health probes link: grpc-go, and the CRI
// and containerd API types, whose generated code imports it.
import (
	_ "github.com/containerd/containerd/api/services/introspection/v1"
	_ "google.golang.org/grpc"
	_ "k8s.io/cri-api/pkg/apis/runtime/v1"
)
