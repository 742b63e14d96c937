// Command mirrorctl makes every container engine on a node pull through the
// registry mirrors of one spec. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	g := &globalFlags{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		setGCPercent: gcPercentSetter(os.LookupEnv)}
	os.Exit(mainWith(g, os.Args[1:]))
}

// gcPercentSetter is how a command tunes the collector: not at all when
// the environment sets GOGC (the operator chose).
func gcPercentSetter(lookupEnv func(string) (string, bool)) func(int) int {
	if _, set := lookupEnv("GOGC"); set {
		return nil
	}
	return debug.SetGCPercent
}

// mainWith is main without the exit: SIGINT and SIGTERM cancel the
// command's context, and every long step (the lock wait, health checks,
// systemd calls, watch's loop) ends on it. Tests run it in a child process
// with g's test hooks set.
func mainWith(g *globalFlags, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runWith(ctx, g, args)
}
