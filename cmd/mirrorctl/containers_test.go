package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/systemd/systemdtest"
)

// crioHost is the demo host with CRI-O 1.30 (a stand-in binary that prints
// its version) and its unit.
func crioHost(t *testing.T) *host {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	for p, data := range map[string]string{
		"usr/bin/crio":                      "#!/bin/sh\necho 'crio version 1.30.4'\n",
		"lib/systemd/system/crio.service":   "[Service]\nExecStart=/usr/bin/crio\nExecReload=/bin/kill -s HUP $MAINPID\n",
		"etc/crio/crio.conf.d/10-crio.conf": "[crio.image]\nsignature_policy = \"/etc/crio/policy.json\"\n",
	} {
		full := filepath.Join(h.root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// crioSpec is a spec with one docker.io mirror and, when user is set, its
// credentials.
func (h *host) crioSpec(mirror, user, password string) string {
	h.specs++
	s := "mirrors:\n  docker.io:\n    endpoint: [\"" + mirror + "\"]\n"
	if user != "" {
		s += "configs:\n  " + strings.TrimPrefix(strings.TrimPrefix(mirror, "https://"), "http://") +
			":\n    auth: {username: " + user + ", password: " + password + "}\n"
	}
	return h.write("crio-spec-"+string(rune('a'+h.specs))+".yaml", s)
}

// CRI-O reloads registries.conf.d on SIGHUP and reads global_auth_file's
// path only at start: a sync reloads crio.service when only the drop-in
// changed, restarts it when the crio.conf.d drop-in appears or goes, and
// does neither when only credentials (the auth file's content) change.
func TestSyncActivatesCRIO(t *testing.T) {
	h := crioHost(t)
	steps := []struct {
		name      string
		spec      string
		wantCalls []systemdtest.Call
	}{
		{"first_sync_with_credentials_restarts_crio", h.crioSpec("https://m1.example.internal", "puller", "p1"),
			[]systemdtest.Call{call("try-restart", "crio.service")}},
		{"same_spec_does_nothing", h.crioSpec("https://m1.example.internal", "puller", "p1"), nil},
		{"password_change_needs_nothing", h.crioSpec("https://m1.example.internal", "puller", "p2"), nil},
		{"mirror_change_reloads_crio", h.crioSpec("https://m2.example.internal", "puller", "p2"),
			[]systemdtest.Call{call("reload", "crio.service")}},
		{"no_credentials_left_restarts_crio", h.crioSpec("https://m2.example.internal", "", ""),
			[]systemdtest.Call{call("try-restart", "crio.service")}},
	}
	for _, s := range steps {
		code, out, errOut := h.run("", "--config", s.spec, "sync", "--engines", "containers")
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s%s", s.name, code, out, errOut)
		}
		if d := cmp.Diff(s.wantCalls, h.calls()); d != "" {
			t.Errorf("%s: systemd calls (-want +got):\n%s", s.name, d)
		}
		switch s.name {
		case "first_sync_with_credentials_restarts_crio":
			if got := h.read("/etc/crio/crio.conf.d/50-mirrorctl.conf"); !strings.Contains(got, `global_auth_file = "/etc/crio/mirrorctl-auth.json"`) {
				t.Errorf("crio.conf.d drop-in:\n%s", got)
			}
			for _, p := range []string{"/etc/crio/mirrorctl-auth.json", "/root/.config/containers/auth.json"} {
				if got := h.read(p); !strings.Contains(got, `"m1.example.internal"`) {
					t.Errorf("%s lacks the mirror's credentials:\n%s", p, got)
				}
			}
		case "no_credentials_left_restarts_crio":
			for _, p := range []string{"/etc/crio/crio.conf.d/50-mirrorctl.conf", "/etc/crio/mirrorctl-auth.json", "/root/.config/containers/auth.json"} {
				if _, err := os.Stat(filepath.Join(h.root, p)); !os.IsNotExist(err) {
					t.Errorf("%s still exists (%v)", p, err)
				}
			}
			if got := h.read("/etc/containers/registries.conf.d/50-mirrorctl.conf"); !strings.Contains(got, `location = "m2.example.internal"`) {
				t.Errorf("drop-in:\n%s", got)
			}
		}
	}
}

// Without CRI-O, Podman and friends read the files at every command:
// a sync writes them and activates nothing.
func TestSyncPodmanOnlyActivatesNothing(t *testing.T) {
	h := newHost(t)
	full := filepath.Join(h.root, "usr/bin/podman")
	if err := os.WriteFile(full, []byte("#!/bin/sh\necho 'podman version 4.3.1'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := h.run("", "--config", h.crioSpec("https://m1.example.internal", "puller", "p1"), "sync", "--engines", "containers")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if c := h.calls(); len(c) != 0 {
		t.Errorf("systemd calls %v, want none", c)
	}
	if _, err := os.Stat(filepath.Join(h.root, "etc/crio")); !os.IsNotExist(err) {
		t.Errorf("/etc/crio written without CRI-O (%v)", err)
	}
	if got := h.read("/root/.config/containers/auth.json"); !strings.Contains(got, `"m1.example.internal"`) {
		t.Errorf("auth.json:\n%s", got)
	}
}
