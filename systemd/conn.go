package systemd

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

// Conn is a Bus over a real D-Bus connection to systemd.
type Conn struct{ c *sdbus.Conn }

// Dial connects to systemd: the system bus when address is empty, else the
// given D-Bus address (for example "unix:path=/host/run/dbus/system_bus_socket"
// in a DaemonSet that mounts the host's bus).
func Dial(ctx context.Context, address string) (*Conn, error) {
	if address == "" {
		c, err := sdbus.NewSystemConnectionContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("connecting to systemd on the system bus: %w", err)
		}
		return &Conn{c: c}, nil
	}
	c, err := sdbus.NewConnection(func() (*godbus.Conn, error) {
		conn, err := godbus.Dial(address, godbus.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if err := conn.Auth([]godbus.Auth{godbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			conn.Close()
			return nil, err
		}
		if err := conn.Hello(); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to systemd at %s: %w", address, err)
	}
	return &Conn{c: c}, nil
}

func (c *Conn) Close() { c.c.Close() }

func (c *Conn) TryRestartUnit(ctx context.Context, unit string) (string, error) {
	ch := make(chan string, 1)
	if _, err := c.c.TryRestartUnitContext(ctx, unit, "replace", ch); err != nil {
		return "", err
	}
	return waitJob(ctx, ch)
}

func (c *Conn) RestartUnit(ctx context.Context, unit string) (string, error) {
	ch := make(chan string, 1)
	if _, err := c.c.RestartUnitContext(ctx, unit, "replace", ch); err != nil {
		return "", err
	}
	return waitJob(ctx, ch)
}

func (c *Conn) ReloadUnit(ctx context.Context, unit string) (string, error) {
	ch := make(chan string, 1)
	if _, err := c.c.ReloadUnitContext(ctx, unit, "replace", ch); err != nil {
		if strings.Contains(err.Error(), "not applicable") {
			return "", fmt.Errorf("%w: %v", ErrNotApplicable, err)
		}
		return "", err
	}
	return waitJob(ctx, ch)
}

func (c *Conn) ResetFailedUnit(ctx context.Context, unit string) error {
	return c.c.ResetFailedUnitContext(ctx, unit)
}

func (c *Conn) SignalMain(ctx context.Context, unit string, sig syscall.Signal) error {
	return c.c.KillUnitWithTarget(ctx, unit, sdbus.Main, int32(sig))
}

func (c *Conn) Unit(ctx context.Context, unit string) (UnitState, error) {
	props, err := c.c.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return UnitState{}, err
	}
	st := UnitState{
		LoadState:   str(props["LoadState"]),
		ActiveState: str(props["ActiveState"]),
		SubState:    str(props["SubState"]),
	}
	if strings.HasSuffix(unit, ".service") {
		if p, err := c.c.GetServicePropertyContext(ctx, unit, "Result"); err == nil {
			st.Result = str(p.Value.Value())
		}
		if p, err := c.c.GetServicePropertyContext(ctx, unit, "MainPID"); err == nil {
			if pid, ok := p.Value.Value().(uint32); ok {
				st.MainPID = pid
			}
		}
	}
	return st, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// waitJob waits for a job's result or the context's end.
func waitJob(ctx context.Context, ch <-chan string) (string, error) {
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for the systemd job: %w", ctx.Err())
	}
}
