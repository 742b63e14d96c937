package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// traced are the system calls the bench counts: starting programs, and
// every way of changing a file or making it durable.
var traced = []string{
	"execve", "execveat",
	"write", "pwrite64", "writev", "pwritev", "pwritev2",
	"fsync", "fdatasync", "syncfs", "sync", "sync_file_range",
	"rename", "renameat", "renameat2",
	"unlink", "unlinkat", "mkdir", "mkdirat", "rmdir", "truncate", "ftruncate",
	"chmod", "fchmod", "fchmodat", "chown", "fchown", "fchownat", "lchown",
	"link", "linkat", "symlink", "symlinkat", "utimensat",
}

// counts are what one traced run did.
type counts struct {
	exec    int // programs started (the command itself not counted)
	writes  int // writes to files (not to stdout/stderr, pipes, sockets or devices)
	syncs   int // fsync, fdatasync, syncfs, sync, sync_file_range
	renames int
	other   int // unlink, mkdir, rmdir, truncate, chmod, chown, link, symlink, utimensat
	// written lists the files written, for the report when there should be
	// none.
	written []string
	execs   []string
}

// straceRun runs c once under strace -f and counts its calls.
func straceRun(c command, dir string) (counts, error) {
	f, err := traceCalls(c, dir, traced)
	if err != nil {
		return counts{}, err
	}
	defer f.Close()
	return countCalls(f)
}

// straceInputs runs c once under strace -f and returns the files it read
// and the directories it listed, those under one of the directories in
// under (not the runtime's own reads of /proc and /sys).
func straceInputs(c command, dir string, under ...string) (files, dirs []string, err error) {
	f, err := traceCalls(c, dir, []string{"read", "pread64", "readv", "preadv", "preadv2", "getdents64"})
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return inputsOf(f, under)
}

// traceCalls runs c once under strace -f -y, tracing calls, and returns
// strace's output, open.
func traceCalls(c command, dir string, calls []string) (*os.File, error) {
	if c.prep != nil {
		if err := c.prep(); err != nil {
			return nil, err
		}
	}
	out := filepath.Join(dir, "strace.out")
	args := append([]string{"-f", "-qq", "-y", "-e", "signal=none", "-e", "trace=" + strings.Join(calls, ","), "-o", out}, c.argv...)
	cmd := exec.Command("strace", args...)
	cmd.Env = baseEnv
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("strace %s: %w: %.2000s", strings.Join(c.argv, " "), err, b)
	}
	return os.Open(out)
}

// inputsOf reads strace -f -y output of read and getdents64 calls: the
// paths of the files read and of the directories listed, each once, in the
// order first seen, kept only when under one of the directories in under.
func inputsOf(r io.Reader, under []string) (files, dirs []string, err error) {
	seen := map[string]bool{}
	keep := func(p string) bool {
		if seen[p] {
			return false
		}
		for _, d := range under {
			if strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
				seen[p] = true
				return true
			}
		}
		return false
	}
	err = eachCall(r, func(name, args string) {
		fm := fdPathRE.FindStringSubmatch(args)
		if fm == nil || !keep(fm[1]) {
			return
		}
		if name == "getdents64" {
			dirs = append(dirs, fm[1])
		} else {
			files = append(files, fm[1])
		}
	})
	return files, dirs, err
}

var callRE = regexp.MustCompile(`^(?:\d+\s+)?([a-z0-9_]+)\((.*)\)\s+=\s+(-?\d+|\?)`)
var unfinishedRE = regexp.MustCompile(`^(\d+)\s+(.*) <unfinished \.\.\.>$`)
var resumedRE = regexp.MustCompile(`^(\d+)\s+<\.\.\. ([a-z0-9_]+) resumed>(.*)$`)
var fdPathRE = regexp.MustCompile(`^\d+<([^>]*)>`)

// eachCall calls f with the name and arguments of every call in strace -f
// output that succeeded, an unfinished call joined with its resumption.
func eachCall(r io.Reader, f func(name, args string)) error {
	pending := map[string]string{} // pid -> the start of an unfinished call
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := unfinishedRE.FindStringSubmatch(line); m != nil {
			pending[m[1]] = m[2]
			continue
		}
		if m := resumedRE.FindStringSubmatch(line); m != nil {
			start, ok := pending[m[1]]
			if !ok {
				continue
			}
			delete(pending, m[1])
			line = start + m[3]
		}
		m := callRE.FindStringSubmatch(line)
		if m == nil || m[3] == "-1" || m[3] == "?" {
			continue // not a call, or a failed one
		}
		f(m[1], m[2])
	}
	return sc.Err()
}

// countCalls reads strace -f -y output.
func countCalls(r io.Reader) (counts, error) {
	var c counts
	firstExec := true
	err := eachCall(r, func(name, args string) {
		switch name {
		case "execve", "execveat":
			if firstExec {
				firstExec = false // the command itself
				return
			}
			c.exec++
			c.execs = append(c.execs, firstArg(args))
		case "write", "pwrite64", "writev", "pwritev", "pwritev2":
			fm := fdPathRE.FindStringSubmatch(args)
			if fm == nil || !isFile(fm[1]) {
				return
			}
			c.writes++
			if !slices.Contains(c.written, fm[1]) {
				c.written = append(c.written, fm[1])
			}
		case "fsync", "fdatasync", "syncfs", "sync", "sync_file_range":
			c.syncs++
		case "rename", "renameat", "renameat2":
			c.renames++
		case "unlink", "unlinkat", "mkdir", "mkdirat", "rmdir", "truncate", "ftruncate",
			"chmod", "fchmod", "fchmodat", "chown", "fchown", "fchownat", "lchown",
			"link", "linkat", "symlink", "symlinkat", "utimensat":
			c.other++
		}
	})
	return c, err
}

// isFile tells a file's path from the other things a descriptor can be.
func isFile(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "/dev/") && !strings.HasPrefix(p, "/proc/")
}

func firstArg(args string) string {
	s, _, _ := strings.Cut(args, ",")
	return strings.Trim(s, `"`)
}
