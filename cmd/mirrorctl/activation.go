package main

import (
	"context"
	"errors"
	"os"

	"github.com/mirrorctl/mirrorctl/apply"
	"github.com/mirrorctl/mirrorctl/hostexec"
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

// applyOptions are the pipeline's options for a command; trigger names it
// in the record.
func (g *globalFlags) applyOptions(trigger string) (apply.Options, error) {
	log, err := g.logger()
	if err != nil {
		return apply.Options{}, err
	}
	dial, why := g.systemdDial()
	return apply.Options{
		Root: g.host, Store: state.Open(g.host), Versions: hostexec.New(g.host),
		Only: g.engines, Dial: dial, PendingWhy: why,
		Health: g.health, HealthTimeout: g.healthWait,
		LockTimeout: g.lockWait, Trigger: trigger, Log: log,
	}, nil
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
