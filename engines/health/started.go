package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Sockets are the daemon sockets p asks, as host paths.
func (p Probe) Sockets() []string {
	var out []string
	if p.Containerd != nil {
		out = append(out, p.Containerd.Socket)
	}
	if p.Docker != nil {
		out = append(out, p.Docker.Socket)
	}
	if p.CRIO != nil {
		out = append(out, p.CRIO.Socket)
	}
	return out
}

// StartedAfter reports whether every daemon p asks was started after t: a
// daemon started since mirrorctl wrote its files (a restart done by hand
// after --no-restart) reads them as they are, and owes nothing. It answers
// from the kernel: the process listening on each socket (SO_PEERCRED) and
// its start time (/proc/<pid>/stat, against CLOCK_BOOTTIME). It answers
// false whenever it cannot tell: no socket, a listener it cannot see (another
// pid namespace), systemd itself listening (socket activation).
func (p Probe) StartedAfter(ctx context.Context, resolve func(hostPath string) (string, error), t time.Time) bool {
	socks := p.Sockets()
	if len(socks) == 0 || t.IsZero() {
		return false
	}
	for _, s := range socks {
		path, err := resolve(s)
		if err != nil {
			return false
		}
		started, err := listenerStart(ctx, path)
		if err != nil || !started.After(t) {
			return false
		}
	}
	return true
}

// Applied reports whether the daemons p asks already run with the files p
// describes, so that an activation owed since t is done: each was started
// after t, or, for dockerd alone, its /info lists every setting a reload
// applies (the mirrors and insecure registries of daemon.json), as after a
// reload done by hand. One question each, no waiting.
func (p Probe) Applied(ctx context.Context, resolve func(hostPath string) (string, error), t time.Time) bool {
	if p.StartedAfter(ctx, resolve, t) {
		return true
	}
	if p.Docker == nil || p.Containerd != nil || p.CRIO != nil {
		return false
	}
	sock, err := resolve(p.Docker.Socket)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return dockerRunsWith(ctx, sock, *p.Docker) == nil
}

// listenerStart is when the process listening on a unix socket started.
func listenerStart(ctx context.Context, path string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return time.Time{}, err
	}
	defer c.Close()
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		return time.Time{}, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) { cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return time.Time{}, err
	}
	if credErr != nil {
		return time.Time{}, credErr
	}
	if cred.Pid <= 1 {
		return time.Time{}, errors.New("the socket's listener is not the daemon (socket activation, or another pid namespace)")
	}
	return processStart(int(cred.Pid))
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's starttime: 100 on
// every Linux architecture mirrorctl is built for.
const clockTicks = 100

// processStart reads a process's start time: its starttime (ticks since
// boot) placed on the wall clock through CLOCK_BOOTTIME, to 10 ms.
func processStart(pid int) (time.Time, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return time.Time{}, err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it follow the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return time.Time{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return time.Time{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64) // field 22, starttime
	if err != nil {
		return time.Time{}, err
	}
	var boot unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot); err != nil {
		return time.Time{}, err
	}
	now := time.Now()
	sinceBoot := time.Duration(boot.Nano())
	return now.Add(-sinceBoot).Add(time.Duration(ticks) * time.Second / clockTicks), nil
}
