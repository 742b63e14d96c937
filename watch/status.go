package watch

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/mirrorctl/mirrorctl/engines"
)

// sdNotify sends state to systemd when it started us as Type=notify.
func sdNotify(state string) { daemon.SdNotify(false, state) }

// sdWatchdog is the unit's WatchdogSec, or 0.
func sdWatchdog() (time.Duration, error) { return daemon.SdWatchdogEnabled(false) }

// maxStatus bounds a STATUS= line: systemctl status shows one line.
const maxStatus = 400

// setStatus composes the one-line status from a report.
func (l *Loop) setStatus(r *Report) {
	var b strings.Builder
	at := r.Time.Format(time.TimeOnly)
	switch {
	case r.Stage == "spec" || r.Stage == "health":
		fmt.Fprintf(&b, "refused %s at %s (%s): %s; staying on generation %d", r.Source, at, r.Stage, firstLine(r.Err), l.generation())
	case r.Stage != "":
		fmt.Fprintf(&b, "sync failed at %s: %s; retrying; on generation %d", at, firstLine(r.Err), l.generation())
	case r.Result != nil && len(r.Result.Written) > 0:
		fmt.Fprintf(&b, "generation %d applied at %s: %d file(s) written", r.Generation, at, len(r.Result.Written))
		if len(r.Result.Done) > 0 {
			b.WriteString(", " + describe(r.Result.Done))
		}
		if len(r.Result.Pending) > 0 {
			b.WriteString(", pending " + describe(r.Result.Pending))
		}
	default:
		fmt.Fprintf(&b, "generation %d in sync at %s", r.Generation, at)
	}
	if r.Result != nil && len(r.Result.Conflicts) > 0 {
		fmt.Fprintf(&b, "; %d file(s) not written by mirrorctl left alone", len(r.Result.Conflicts))
	}
	if len(r.GivenUp) > 0 {
		fmt.Fprintf(&b, "; not repairing %s (changed by someone else)", strings.Join(r.GivenUp, ", "))
	}
	l.mu.Lock()
	l.status = b.String()
	l.mu.Unlock()
}

func firstLine(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " (and more)"
	}
	return s
}

// statusLine is the status with the source's error, if any.
func (l *Loop) statusLine() string {
	l.mu.Lock()
	s := l.status
	l.mu.Unlock()
	if l.good == nil && l.latest == nil && l.srcErr == nil && s == "starting" {
		return s
	}
	if l.good == nil && (s == "starting" || s == "") {
		s = "no config applied yet"
	}
	if l.srcErr != nil {
		s += "; source: " + firstLine(l.srcErr)
	}
	l.mu.Lock()
	down := l.downNote
	l.mu.Unlock()
	if down != "" {
		s += "; mirrors down: " + down
	}
	if len(s) > maxStatus {
		s = s[:maxStatus-3] + "..."
	}
	return strings.ReplaceAll(s, "\n", " ")
}

// publish sends the status to systemd and keeps it for /healthz.
func (l *Loop) publish() {
	line := l.statusLine()
	l.mu.Lock()
	l.published = line
	l.mu.Unlock()
	l.cfg.Notify("STATUS=" + line)
}

// busy runs f, the handling of one event, with the loop marked busy, so
// that whatever f is stuck in (a sync, a read of the node's drop-ins or
// managed files) turns /healthz and the watchdog off past MaxSyncTime.
func (l *Loop) busy(f func()) {
	l.setBusy(true)
	defer l.setBusy(false)
	f()
}

func (l *Loop) setBusy(busy bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if busy {
		l.busySince = time.Now()
	} else {
		l.busySince = time.Time{}
	}
}

// alive reports whether the loop is waiting for events, or handling one
// for less than MaxSyncTime.
func (l *Loop) alive() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.busySince.IsZero() || time.Since(l.busySince) < l.cfg.MaxSyncTime
}

// Health is for /healthz: alive, and the status line. It reports false
// before the first sync attempt is over and while the loop is stuck; a
// refused config is not unhealthy (the node is on its last good one), so a
// liveness probe does not restart the pod over it.
func (l *Loop) Health() (bool, string) {
	l.mu.Lock()
	line := l.published
	l.mu.Unlock()
	if line == "" {
		return false, "starting"
	}
	if !l.alive() {
		return false, "stuck for more than " + l.cfg.MaxSyncTime.String() + " (in a sync, or reading its inputs); " + line
	}
	return true, line
}

// Ready is for /readyz: healthy, and a sync has succeeded since the start,
// so the node's engines have the mirrors (of the central config or the last
// good one). A DaemonSet's readiness then means "this node is configured".
func (l *Loop) Ready() (bool, string) {
	ok, line := l.Health()
	l.mu.Lock()
	applied := l.applied
	l.mu.Unlock()
	if ok && !applied {
		return false, "no sync has succeeded yet; " + line
	}
	return ok, line
}

// watchdog pings systemd every period while the loop is alive.
func (l *Loop) watchdog(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if l.alive() {
				l.cfg.Notify("WATCHDOG=1")
			}
		}
	}
}

// finish records, logs, publishes and hands on r.
func (l *Loop) finish(r *Report, took time.Duration) {
	if r.Stage == "spec" {
		l.m.failure("spec")
		l.m.syncs.WithLabelValues(r.Trigger, "failed").Inc()
	} else {
		if r.Stage != "" {
			l.m.failure(r.Stage)
		}
		l.m.observe(r, took)
	}
	if r.Stage == "" {
		l.mu.Lock()
		l.applied = true
		l.mu.Unlock()
	}
	l.logReport(r)
	l.setStatus(r)
	l.publish()
	if l.cfg.Observe != nil {
		l.cfg.Observe(*r)
	}
}

func (l *Loop) logReport(r *Report) {
	if r.Stage != "" {
		l.log.Error("config not applied; the node stays on its current config",
			"trigger", r.Trigger, "source", r.Source, "stage", r.Stage, "generation", l.generation(), "err", r.Err)
		return
	}
	// What an engine cannot express is said once per config, not at
	// every resync.
	level := slog.LevelDebug
	if r.fresh {
		level = slog.LevelWarn
	}
	for _, w := range r.Warnings {
		args := []any{"engine", w.Engine}
		if p := w.Pos.String(); p != "" {
			args = append(args, "spec", p)
		}
		l.log.Log(context.Background(), level, w.Message, args...)
	}
	if len(r.Repaired) > 0 {
		l.log.Warn("repaired managed files changed by someone else", "paths", r.Repaired)
	}
	res := r.Result
	if res == nil || len(res.Written) == 0 {
		l.log.Debug("in sync", "trigger", r.Trigger, "generation", r.Generation)
		return
	}
	args := []any{"trigger", r.Trigger, "generation", r.Generation, "source", r.Source, "written", len(res.Written)}
	if len(res.Done) > 0 {
		args = append(args, "activated", describe(res.Done))
	}
	if len(res.Pending) > 0 {
		args = append(args, "pending", describe(res.Pending))
	}
	if len(res.Conflicts) > 0 {
		args = append(args, "conflicts", len(res.Conflicts))
	}
	l.log.Info("synced", args...)
}

func describe(as []engines.Activation) string {
	var parts []string
	for _, a := range as {
		parts = append(parts, a.Disruption.String()+" "+a.Engine)
	}
	return strings.Join(parts, ", ")
}
