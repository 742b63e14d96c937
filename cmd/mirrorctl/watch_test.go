package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/systemd"
)

// syncBuffer is a bytes.Buffer safe to read while the command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// notifyListener is systemd's end of NOTIFY_SOCKET.
type notifyListener struct {
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T) *notifyListener {
	t.Helper()
	dir, err := os.MkdirTemp("", "notify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	n := &notifyListener{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return n
}

func (n *notifyListener) has(prefix string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.msgs {
		if strings.HasPrefix(m, prefix) {
			return true
		}
	}
	return false
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// watching is `mirrorctl watch` running in-process.
type watching struct {
	cancel context.CancelFunc
	code   chan int
	stderr *syncBuffer
}

func (h *host) startWatch(args ...string) *watching {
	w := &watching{code: make(chan int, 1), stderr: &syncBuffer{}}
	g := &globalFlags{stdin: strings.NewReader(""), stdout: io.Discard, stderr: w.stderr}
	g.dial = func(context.Context) (systemd.Bus, error) { return h.rec, nil }
	g.health = func(context.Context, *hostfs.Root, engines.Activation) error { return nil }
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go func() { w.code <- runWith(ctx, g, append([]string{"--root", h.root}, args...)) }()
	h.t.Cleanup(cancel)
	return w
}

// The command end to end: READY once the first sync is done, a changed
// central file applied, SIGHUP re-syncs, cancel (SIGTERM) exits 0, and the
// metrics are served.
func TestWatchCommand(t *testing.T) {
	notes := listenNotify(t)
	h := newHost(t)
	cfg := filepath.Join(h.etc, "config.yaml")
	if err := os.Rename(h.spec("https://nexus.example.internal:8443", "https://a.example.internal", "u"), cfg); err != nil {
		t.Fatal(err)
	}
	w := h.startWatch("--config", cfg, "--log-level", "debug", "watch", "--debounce", "10ms", "--metrics-addr", "127.0.0.1:0", "--resync-interval", "0")

	eventually(t, "READY=1", func() bool { return notes.has("READY=1\nSTATUS=generation 1 applied") })
	hosts := "/etc/containerd/certs.d/ghcr.io/hosts.toml"
	if !strings.Contains(h.read(hosts), "a.example.internal") {
		t.Fatalf("hosts.toml after READY:\n%s", h.read(hosts))
	}

	// A new central file, renamed over the old one.
	next := h.spec("https://nexus.example.internal:8443", "https://b.example.internal", "u")
	if err := os.Rename(next, cfg); err != nil {
		t.Fatal(err)
	}
	eventually(t, "generation 2", func() bool { return notes.has("STATUS=generation 2 applied") })
	if !strings.Contains(h.read(hosts), "b.example.internal") {
		t.Errorf("hosts.toml after the change:\n%s", h.read(hosts))
	}

	// SIGHUP: watch registered for it, so the test process survives it.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the SIGHUP re-sync", func() bool { return strings.Contains(w.stderr.String(), `msg="re-syncing now (signal)"`) })

	m := regexp.MustCompile(`msg="serving metrics" addr=(\S+)`).FindStringSubmatch(w.stderr.String())
	if m == nil {
		t.Fatalf("no metrics address logged:\n%s", w.stderr.String())
	}
	var body string
	eventually(t, "the signal's sync in /metrics", func() bool {
		resp, err := http.Get("http://" + m[1] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return strings.Contains(body, `mirrorctl_syncs_total{result="ok",trigger="signal"} 1`)
	})
	if !strings.Contains(body, "mirrorctl_config_generation 2") {
		t.Errorf("metrics:\n%s", body)
	}

	w.cancel()
	select {
	case code := <-w.code:
		if code != exitOK {
			t.Errorf("exit %d after cancel\n%s", code, w.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not exit after cancel")
	}
	// Sent before watch returned; the listener reads it when it is scheduled.
	eventually(t, "STOPPING=1", func() bool { return notes.has("STOPPING=1") })
	if strings.Contains(w.stderr.String(), "s3cret-Pässword") {
		t.Error("the password reached the log")
	}
}

// The README's signing steps, with ssh-keygen: --signature-identity is
// passed through, and a config signed for it, with its serial, is applied.
func TestWatchSignatureIdentity(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen not installed")
	}
	notes := listenNotify(t)
	h := newHost(t)
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(keygen, args...)
		cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
		}
	}
	key := filepath.Join(t.TempDir(), "fleet-signing-key")
	run("-q", "-t", "ed25519", "-N", "", "-C", "mirrorctl-fleet", "-f", key)
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	signers := h.write("allowed_signers", `mirrorctl-fleet namespaces="mirrorctl" `+string(pub))
	spec, err := os.ReadFile(h.spec("https://nexus.example.internal:8443", "https://a.example.internal", "u"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := h.write("central/config.yaml", "serial: 1\n"+string(spec))
	run("-Y", "sign", "-f", key, "-n", "mirrorctl", cfg)

	h.startWatch("--config", filepath.Join(h.etc, "config.yaml"), "watch", "--source", cfg, "--resync-interval", "0",
		"--signature-key", signers, "--signature-identity", "mirrorctl-fleet")
	eventually(t, "READY=1", func() bool { return notes.has("READY=1\nSTATUS=generation 1 applied") })
}

func TestWatchBadFlags(t *testing.T) {
	h := newHost(t)
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICEpx6d3aKDxhT4FO2K83PZaLRpY7O94pVAr7ZKNLvqX"
	signers := h.write("allowed_signers", "fleet@example.com "+key+"\n")
	badOption := h.write("allowed_signers.bad", "# fleet\nfleet@example.com verify-required "+key+"\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"watch", "--source", "http://config.example.com/m.yaml"}, "--allow-http"},
		{[]string{"watch", "--source", "ftp://config.example.com/m.yaml"}, "https:// URL"},
		{[]string{"watch", "--signature-key", filepath.Join(h.etc, "missing.pub")}, "--signature-key"},
		{[]string{"watch", "--signature-key", signers}, "line 1 names principals (fleet@example.com), which are checked against --signature-identity"},
		{[]string{"watch", "--signature-key", badOption, "--signature-identity", "fleet@example.com"}, `allowed_signers.bad: line 2: unsupported option "verify-required"`},
		{[]string{"watch", "--source", "https://c.example.com/m.yaml", "--ca-file", filepath.Join(h.etc, "secrets/nexus-password")}, "no PEM certificate"},
		{[]string{"watch", "--metrics-addr", "9477"}, "--metrics-addr"},
	} {
		code, _, errOut := h.run("", tc.args...)
		if code != exitInput || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, exitInput, tc.want)
		}
	}
}
