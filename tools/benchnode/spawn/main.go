// Command spawn runs a program and reports what it cost: wall time from
// fork to wait4, user and system CPU and ru_maxrss from wait4's rusage,
// and the exit status, as one line on descriptor 3:
//
//	wall_ns cpu_ns maxrss_kib status
//
// The bench starts every measured program through it because ru_maxrss
// counts the memory of the process the program was exec'd from: Go's
// os/exec forks with CLONE_VM, so a program started by the bench itself
// would be charged the bench's own RSS. This process is small, and is not
// part of what is timed.
package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	report := os.NewFile(3, "report")
	if report == nil || len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: spawn PROGRAM [ARG...] 3>REPORT")
		os.Exit(2)
	}
	attr := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}}
	start := time.Now()
	pid, err := syscall.ForkExec(os.Args[1], os.Args[1:], attr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "spawn: starting %s: %v\n", os.Args[1], err)
		os.Exit(127)
	}
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	for {
		_, err = syscall.Wait4(pid, &ws, 0, &ru)
		if err != syscall.EINTR {
			break
		}
	}
	wall := time.Since(start)
	if err != nil {
		fmt.Fprintf(os.Stderr, "spawn: waiting for %s: %v\n", os.Args[1], err)
		os.Exit(127)
	}
	status := ws.ExitStatus()
	if ws.Signaled() {
		status = 128 + int(ws.Signal())
	}
	fmt.Fprintf(report, "%d %d %d %d\n", wall.Nanoseconds(), ru.Utime.Nano()+ru.Stime.Nano(), ru.Maxrss, status)
}
