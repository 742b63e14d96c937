package main

import (
	"context"
	"errors"
	"os"

	"github.com/mirrorctl/mirrorctl/apply"
	"github.com/mirrorctl/mirrorctl/state"
	"github.com/mirrorctl/mirrorctl/systemd"
)

// systemdDial returns how to reach systemd, or nil and why not.
func (g *globalFlags) systemdDial() (func(context.Context) (systemd.Bus, error), string) {
	switch {
	case g.noRestart:
		return nil, "--no-restart"
	case g.dial != nil:
		return g.dial, ""
	case g.bus != "":
		return func(ctx context.Context) (systemd.Bus, error) { return systemd.Dial(ctx, g.bus) }, ""
	case g.root != "/":
		// An image being built or a host mounted elsewhere: its units are
		// not ours to restart unless --bus says where its systemd is.
		return nil, "--root is not / (give --bus to reach that host's systemd)"
	}
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return nil, "this host does not run systemd"
	}
	return func(ctx context.Context) (systemd.Bus, error) { return systemd.Dial(ctx, "") }, ""
}

// withLock runs f holding the node lock, so sync, rollback and watch never interleave.
func (g *globalFlags) withLock(ctx context.Context, who string, f func() error) error {
	unlock, err := state.Open(g.root).Lock(ctx, g.lockWait, who)
	if err != nil {
		return err
	}
	defer unlock()
	return f()
}

// applyExit maps apply's errors to exit codes.
func applyExit(err error) error {
	var he *apply.HealthError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &he):
		return &exitError{code: exitHealth, err: err}
	case errors.Is(err, apply.ErrConflicts):
		return &exitError{code: exitConflict, err: err}
	}
	return err
}
