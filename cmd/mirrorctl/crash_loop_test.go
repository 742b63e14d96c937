//go:build crashloop

package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The 200-kill loop takes a minute or more on a loaded 2-core machine, so
// it runs in `make crash` (CI runs it too); the deterministic replays of
// the states it finds most often stay in crash_test.go and `make test`.

// TestCrashDuringSyncLeavesOldOrNewFiles kills a real `mirrorctl sync` with
// SIGKILL at random instants while it changes a node from spec A to spec B,
// crashIterations times. After each kill, every file is byte-for-byte (and
// mode-for-mode) what sync A or a full sync B left there, never torn and
// never a third content; a temporary file left by the kill has a name no
// engine reads; state.json parses; and a plain `sync` of B converges with no
// conflict to exactly the tree a clean sync of B gives.
//
// Activation stays pending (--root is not /, no --bus), so no run waits on
// systemd or on a health check.
func TestCrashDuringSyncLeavesOldOrNewFiles(t *testing.T) {
	start := time.Now()
	r := newCrashRig(t)
	changing := r.changingFiles()
	if len(changing) < 10 {
		t.Fatalf("spec B changes only %d files; the test needs a change to many: %v", len(changing), changing)
	}

	// Calibrate: time full runs, as many at a time as the loop runs them
	// (three: a run waits on fsync more than it computes, so three keep two
	// cores busy). Every tenth iteration runs one more uninterrupted, so the
	// kill window follows the machine's load; each such run must give the
	// reference tree.
	const workers = 3
	work := t.TempDir()
	times := &runTimes{}
	var (
		mu       sync.Mutex
		failures []string
	)
	probe := func(name string) {
		dir := filepath.Join(work, name)
		d, err := r.fullRun(dir)
		if err != nil {
			mu.Lock()
			failures = append(failures, fmt.Sprintf("%s: %v", name, err))
			mu.Unlock()
			return
		}
		times.add(d)
		os.RemoveAll(dir)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 {
				probe(fmt.Sprintf("full-%d-%d", w, i))
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatal(strings.Join(failures, "\n"))
	}
	t.Logf("a full sync process takes %v (median of %v)", times.typical(), times.all())

	// The loop. Each worker kills its own processes; outcomes are tallied by
	// how many of the changing files hold B's content after the kill.
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	type tally struct{ none, partial, all, exited, leftovers int }
	var tl tally
	next := make(chan int)
	go func() {
		for i := range crashIterations {
			next <- i
		}
		close(next)
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := range next {
				if i%10 == 9 {
					probe(fmt.Sprintf("full-%03d", i))
				}
				dir := filepath.Join(work, fmt.Sprintf("it-%03d", i))
				delay := time.Duration(rng.Int64N(int64(times.typical()) + 1))
				o, err := r.iteration(dir, delay, changing)
				mu.Lock()
				if err != nil {
					failures = append(failures, fmt.Sprintf("iteration %d (kill after %v; %s): %v", i, delay, dir, err))
				} else {
					switch o.newFiles {
					case 0:
						tl.none++
					case len(changing):
						tl.all++
					default:
						tl.partial++
					}
					if o.exited {
						tl.exited++
					}
					tl.leftovers += o.leftovers
				}
				mu.Unlock()
				if err == nil {
					os.RemoveAll(dir)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d kills in %v: %d before any file changed, %d with some of the %d changing files new, %d with all new (%d of those exited before the kill); %d temporary files left by kills; full runs took %v",
		crashIterations, time.Since(start).Round(time.Millisecond), tl.none, tl.partial, len(changing), tl.all, tl.exited, tl.leftovers, times.all())
	for i, f := range failures {
		if i == 10 {
			t.Errorf("… and %d more failures", len(failures)-10)
			break
		}
		t.Error(f)
	}
	if len(failures) == 0 && tl.partial == 0 {
		t.Errorf("no kill landed while files were being written; the kill window (0–%v) does not cover the writes", times.typical())
	}
}

// runTimes keeps how long the latest uninterrupted sync processes took.
