package health

import (
	"context"
	"errors"
	"fmt"
)

// A Probe says how to ask an engine whether it works after a change. It is
// data, computed by the engine from what changed (the config path it must
// now run with, the mirrors it must now list), so that the code that runs
// it knows no engine and no file. The zero Probe checks nothing.
type Probe struct {
	// Containerd asks a containerd socket (containerd's own, or k3s's
	// embedded one) for its CRI plugins and the registry config it runs with.
	Containerd *ContainerdProbe `json:"containerd,omitempty"`
	// Docker asks dockerd's API socket for /_ping and its registry mirrors.
	Docker *DockerProbe `json:"docker,omitempty"`
	// CRIO asks CRI-O's socket for the CRI Status and, after a restart,
	// the global_auth_file it runs with.
	CRIO *CRIOProbe `json:"crio,omitempty"`
}

// CRIOProbe is CRIO's input.
type CRIOProbe struct {
	Socket string `json:"socket"` // a host path
	// GlobalAuthFile is the global_auth_file CRI-O must run with; empty
	// checks only that it answers.
	GlobalAuthFile string `json:"global_auth_file,omitempty"`
}

// ContainerdProbe is Containerd's input.
type ContainerdProbe struct {
	Socket string `json:"socket"` // a host path
	// ConfigPath is the registry config_path the CRI must run with; empty
	// checks only that the CRI plugins loaded.
	ConfigPath string `json:"config_path,omitempty"`
}

// DockerProbe is Docker's input: what dockerd must list after a reload,
// the two settings SIGHUP reloads that mirrorctl manages.
type DockerProbe struct {
	Socket  string   `json:"socket"` // a host path
	Mirrors []string `json:"mirrors"`
	// Insecure is daemon.json's insecure-registries; nil when the file
	// does not set it (dockerd's flags may), and then it is not checked.
	Insecure []string `json:"insecure,omitempty"`
}

// IsZero reports whether p checks nothing.
func (p Probe) IsZero() bool { return p.Containerd == nil && p.Docker == nil && p.CRIO == nil }

// Check runs p. resolve turns a host path (a socket) into one mirrorctl
// can dial: under --root, inside the root.
func (p Probe) Check(ctx context.Context, resolve func(hostPath string) (string, error)) error {
	var errs []error
	if c := p.Containerd; c != nil {
		sock, err := socket(ctx, resolve, c.Socket)
		if err == nil {
			err = Containerd(ctx, sock, c.ConfigPath)
		} else {
			err = fmt.Errorf("containerd at %s does not answer: %w", c.Socket, err)
		}
		errs = append(errs, err)
	}
	if d := p.Docker; d != nil {
		sock, err := socket(ctx, resolve, d.Socket)
		if err == nil {
			err = Docker(ctx, sock, *d)
		} else {
			err = fmt.Errorf("dockerd at %s does not answer: %w", d.Socket, err)
		}
		errs = append(errs, err)
	}
	if c := p.CRIO; c != nil {
		sock, err := socket(ctx, resolve, c.Socket)
		if err == nil {
			err = CRIO(ctx, sock, c.GlobalAuthFile)
		} else {
			err = fmt.Errorf("crio at %s does not answer: %w", c.Socket, err)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// socket resolves a daemon's socket, waiting (like the checks themselves)
// for a restarting daemon to create it, until ctx ends.
func socket(ctx context.Context, resolve func(string) (string, error), hostPath string) (string, error) {
	var sock string
	err := retry(ctx, func(context.Context) error {
		var err error
		sock, err = resolve(hostPath)
		return err
	})
	return sock, err
}
