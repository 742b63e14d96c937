package systemd

import (
	"context"
	"errors"
	"testing"
	"time"
)

// waitJob is the real adapter's job-result handling: it must hand back the
// result systemd sends, and give up when the context ends instead of hanging.
func TestWaitJob(t *testing.T) {
	ch := make(chan string, 1)
	ch <- "failed"
	if r, err := waitJob(context.Background(), ch); err != nil || r != "failed" {
		t.Fatalf("waitJob = %q, %v; want failed", r, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := waitJob(ctx, make(chan string)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waitJob on a silent job: err = %v, want deadline exceeded", err)
	}
}
