package hosttest

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// daemonEnv makes a test binary a stand-in daemon: it listens on the unix
// sockets named (a list) and says "ready".
const daemonEnv = "MIRRORCTL_TEST_DAEMON"

// ServeIfDaemon is for TestMain: in a process StartDaemon started, it
// serves the sockets until killed and never returns.
func ServeIfDaemon() {
	paths := filepath.SplitList(os.Getenv(daemonEnv))
	if len(paths) == 0 {
		return
	}
	for _, p := range paths {
		ln, err := net.Listen("unix", p)
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					os.Exit(1)
				}
				c.Close()
			}
		}()
	}
	os.Stdout.WriteString("ready\n")
	select {}
}

// Listen listens on the unix socket at path in this process, accepting and
// closing every connection, until the test ends: a daemon started before
// the test.
func Listen(t testing.TB, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// StartDaemon starts a process listening on the unix sockets at paths, as
// a daemon restarted now would, and stops it (by its PID) when the test
// ends. The test binary's TestMain must call ServeIfDaemon.
func StartDaemon(t testing.TB, paths ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), daemonEnv+"="+strings.Join(paths, string(filepath.ListSeparator)))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("stand-in daemon on %v: %q, %v", paths, line, err)
	}
}
