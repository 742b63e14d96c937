package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The no-op rows measure a node as it is a while after its last change on
// a host with systemd: every restart the change needed done, and the no-op
// record kept. The bench's roots have no systemd, so each restart a root
// owes is done the way an operator does it by hand, which mirrorctl
// notices itself: a daemon listening on the engine's socket, started after
// the files were written (a stand-in: this program, listening). The next
// sync finds each owed restart done and forgets it.

// daemonSockets are where the roots' engines listen (their defaults).
var daemonSockets = []string{"run/containerd/containerd.sock", "run/docker.sock", "run/k3s/containerd/containerd.sock"}

// settle is how long a no-op waits after the last change before it keeps
// its record (mirrorctl's noop package: 2 s), with a margin.
const settle = 3 * time.Second

// listenFlag makes this program the stand-in daemon: it listens on the
// unix socket given, says "listening" on stdout, and closes every
// connection at once, until it is killed.
const listenFlag = "-stand-in-daemon"

func standInDaemon(path string) error {
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	fmt.Println("listening")
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		c.Close()
	}
}

// restartedByHand starts a stand-in daemon on each engine socket of root,
// runs sync (argv) once, which forgets the restarts owed, and stops the
// stand-ins by PID, their sockets removed.
func restartedByHand(root string, argv []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var daemons []*exec.Cmd
	defer func() {
		for _, d := range daemons {
			d.Process.Kill()
			d.Wait()
		}
		for _, s := range daemonSockets {
			os.Remove(filepath.Join(root, s))
		}
	}()
	for _, s := range daemonSockets {
		p := filepath.Join(root, s)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		os.Remove(p)
		d := exec.Command(self, listenFlag, p)
		out, err := d.StdoutPipe()
		if err != nil {
			return err
		}
		d.Stderr = os.Stderr
		if err := d.Start(); err != nil {
			return err
		}
		daemons = append(daemons, d)
		if line, _ := bufio.NewReader(out).ReadString('\n'); line != "listening\n" {
			return fmt.Errorf("the stand-in daemon on %s did not start", p)
		}
	}
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return nil
}

// keepRecords runs each no-op sync (argv) until it answers from its
// record, waiting for the last change to settle before each try; it fails
// with mirrorctl's reason when one has not after four tries (the first
// may create the record's directory, and a sync that repairs a file the
// stand-ins changed starts the wait again).
func keepRecords(noops [][]string) error {
	for _, argv := range noops {
		debug := append(append([]string(nil), argv[:len(argv)-1]...), "--log-level", "debug", argv[len(argv)-1])
		var last []byte
		for range 4 {
			time.Sleep(settle)
			out, err := exec.Command(debug[0], debug[1:]...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s: %v\n%s", strings.Join(debug, " "), err, out)
			}
			if strings.HasPrefix(string(out), "pending: ") || strings.Contains(string(out), "\npending: ") {
				return fmt.Errorf("%s still owes a restart:\n%s", strings.Join(argv, " "), out)
			}
			if strings.Contains(string(out), "not planning again") {
				last = nil
				break
			}
			last = out
		}
		if last != nil {
			return errors.New(strings.Join(argv, " ") + ": no no-op record kept:\n" + string(last))
		}
	}
	return nil
}

// touchSpec moves the spec's change time (its content and times kept), so
// that the next sync plans as it did before the no-op record, and keeps no
// record (the spec has not settled).
func touchSpec(spec string) func() error {
	return func() error {
		fi, err := os.Stat(spec)
		if err != nil {
			return err
		}
		return os.Chtimes(spec, fi.ModTime(), fi.ModTime())
	}
}
