//go:build floor_watch

package main

// The packages only watch links: its metrics and its config signatures.
import (
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "golang.org/x/crypto/ssh"
)
