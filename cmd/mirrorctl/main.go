// Command mirrorctl makes every container engine on a node pull through the
// registry mirrors of one spec. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(mainWith(&globalFlags{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
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
