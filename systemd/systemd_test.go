package systemd_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/systemd"
	"github.com/mirrorctl/mirrorctl/systemd/systemdtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type call = systemdtest.Call

func TestRestart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rec     *systemdtest.Recorder
		want    []call
		wantErr string
	}{{
		name: "running_unit_restarts_once",
		rec:  &systemdtest.Recorder{},
		want: []call{{Verb: "try-restart", Unit: "containerd.service"}},
	}, {
		name: "stopped_unit_is_left_alone",
		rec: &systemdtest.Recorder{States: map[string]systemd.UnitState{
			"containerd.service": {LoadState: "loaded", ActiveState: "inactive", Result: "success"}}},
		want:    nil,
		wantErr: "unit not running",
	}, {
		name: "failing_job_is_an_error",
		rec: &systemdtest.Recorder{
			Results: map[string][]string{"containerd.service": {"failed"}},
			States: map[string]systemd.UnitState{
				"containerd.service": {LoadState: "loaded", ActiveState: "active", Result: "exit-code"}},
		},
		want:    []call{{Verb: "try-restart", Unit: "containerd.service"}},
		wantErr: "restarting containerd.service: job failed (unit active, result exit-code)",
	}, {
		name: "start_limit_hit_resets_and_retries_once",
		rec: &systemdtest.Recorder{
			Results: map[string][]string{"containerd.service": {"failed"}},
			States: map[string]systemd.UnitState{
				"containerd.service": {LoadState: "loaded", ActiveState: "failed", Result: "start-limit-hit"}},
		},
		want: []call{{Verb: "restart", Unit: "containerd.service"}, {Verb: "reset-failed", Unit: "containerd.service"}, {Verb: "restart", Unit: "containerd.service"}},
	}, {
		name: "start_limit_hit_twice_gives_up",
		rec: &systemdtest.Recorder{
			Results: map[string][]string{"containerd.service": {"failed", "failed"}},
			States: map[string]systemd.UnitState{
				"containerd.service": {LoadState: "loaded", ActiveState: "failed", Result: "start-limit-hit"}},
			OnJob: nil,
		},
		want:    []call{{Verb: "restart", Unit: "containerd.service"}, {Verb: "reset-failed", Unit: "containerd.service"}, {Verb: "restart", Unit: "containerd.service"}},
		wantErr: "job failed",
	}, {
		name:    "dbus_error_is_reported",
		rec:     &systemdtest.Recorder{Err: errors.New("connection reset")},
		want:    []call{{Verb: "try-restart", Unit: "containerd.service"}},
		wantErr: "restarting containerd.service: connection reset",
	}, {
		name: "missing_unit_names_the_spec_key",
		rec: &systemdtest.Recorder{States: map[string]systemd.UnitState{
			"containerd.service": {LoadState: "not-found", ActiveState: "inactive"}}},
		wantErr: "engines.<engine>.unit",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tc.rec
			if tc.name == "start_limit_hit_twice_gives_up" {
				// reset-failed clears the result; the unit hits the limit again.
				rec.OnJob = func(string, string) {
					rec.States["containerd.service"] = systemd.UnitState{LoadState: "loaded", ActiveState: "failed", Result: "start-limit-hit"}
				}
			}
			err := systemd.Restart(context.Background(), rec, "containerd.service", quiet)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Restart: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Restart error = %v, want %q", err, tc.wantErr)
			}
			if d := cmp.Diff(tc.want, rec.Calls); d != "" {
				t.Errorf("calls (-want +got):\n%s", d)
			}
		})
	}
}

func TestReload(t *testing.T) {
	rec := &systemdtest.Recorder{}
	if err := systemd.Reload(context.Background(), rec, "docker.service", quiet); err != nil {
		t.Fatal(err)
	}
	rec2 := &systemdtest.Recorder{NoReload: map[string]bool{"docker.service": true}}
	if err := systemd.Reload(context.Background(), rec2, "docker.service", quiet); err != nil {
		t.Fatal(err)
	}
	rec3 := &systemdtest.Recorder{States: map[string]systemd.UnitState{"docker.service": {LoadState: "loaded", ActiveState: "inactive"}}}
	if err := systemd.Reload(context.Background(), rec3, "docker.service", quiet); !errors.Is(err, systemd.ErrNotRunning) {
		t.Fatalf("reload of a stopped unit: err = %v, want ErrNotRunning", err)
	}
	rec4 := &systemdtest.Recorder{Results: map[string][]string{"docker.service": {"failed"}}}
	err := systemd.Reload(context.Background(), rec4, "docker.service", quiet)
	if err == nil || !strings.Contains(err.Error(), "reloading docker.service: job failed") {
		t.Errorf("failed reload: err = %v", err)
	}
	for name, got := range map[string][]call{"reload": rec.Calls, "no_exec_reload": rec2.Calls, "inactive": rec3.Calls} {
		want := map[string][]call{
			"reload":         {{Verb: "reload", Unit: "docker.service"}},
			"no_exec_reload": {{Verb: "reload", Unit: "docker.service"}, {Verb: "kill-main-hangup", Unit: "docker.service"}},
			"inactive":       nil,
		}[name]
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s calls (-want +got):\n%s", name, d)
		}
	}
}

// A running unit whose restart hits the start limit is left failed (not
// running) by systemd: the retry must be a plain restart, because
// try-restart does nothing to a unit that is not running (found by e2e).
func TestRestartAfterStartLimitUsesPlainRestart(t *testing.T) {
	rec := &systemdtest.Recorder{
		Results: map[string][]string{"docker.service": {"failed"}},
		States:  map[string]systemd.UnitState{"docker.service": {LoadState: "loaded", ActiveState: "active", Result: "success"}},
	}
	rec.OnJob = func(verb, unit string) {
		if verb == "try-restart" {
			rec.States[unit] = systemd.UnitState{LoadState: "loaded", ActiveState: "failed", Result: "start-limit-hit"}
		}
	}
	if err := systemd.Restart(context.Background(), rec, "docker.service", quiet); err != nil {
		t.Fatal(err)
	}
	want := []call{{Verb: "try-restart", Unit: "docker.service"}, {Verb: "reset-failed", Unit: "docker.service"}, {Verb: "restart", Unit: "docker.service"}}
	if d := cmp.Diff(want, rec.Calls); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
}

func TestForceRestartStartsAStoppedUnit(t *testing.T) {
	rec := &systemdtest.Recorder{States: map[string]systemd.UnitState{
		"containerd.service": {LoadState: "loaded", ActiveState: "failed", Result: "exit-code"}}}
	if err := systemd.ForceRestart(context.Background(), rec, "containerd.service", quiet); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]call{{Verb: "restart", Unit: "containerd.service"}}, rec.Calls); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
}
