//go:build soak

// The soak test: `make soak` (go test -tags soak -run TestSoak ./watch/).
// It is not part of `make test`: about a minute on the CI machine.

package watch

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/apply"
	"github.com/mirrorctl/mirrorctl/spec"
	"github.com/mirrorctl/mirrorctl/state"
)

const soakChanges = 1000

// randomSpec is a valid spec drawn at random: mirrors that change
// hosts.toml only (no restart), Docker Hub mirrors (a reload), users (a
// containerd restart), a registry that comes and goes (a directory
// removed), dial timeouts (a warning).
func randomSpec(rng *rand.Rand) string {
	var b strings.Builder
	// Most changes move a mirror (hosts.toml only, as in a fleet); some
	// reload Docker or restart containerd.
	hub := "https://nexus.example.internal:8443"
	if rng.IntN(10) == 0 {
		hub = []string{"https://hub-a.example.internal", "https://hub-b.example.internal"}[rng.IntN(2)]
	}
	fmt.Fprintf(&b, "mirrors:\n  docker.io:\n    endpoint: [%q]\n", hub)
	fmt.Fprintf(&b, "  ghcr.io:\n    endpoint: [\"https://ghcr-%d.example.internal\"]\n", rng.IntN(40))
	if rng.IntN(2) == 0 {
		fmt.Fprintf(&b, "  quay.io:\n    endpoint: [\"https://quay-%d.example.internal/v2\"]\n", rng.IntN(5))
		if rng.IntN(3) == 0 {
			b.WriteString("    dial_timeout: 5s\n")
		}
	}
	user := "puller"
	if rng.IntN(10) == 0 {
		user = []string{"puller2", "puller3"}[rng.IntN(2)]
	}
	fmt.Fprintf(&b, `configs:
  nexus.example.internal:
    auth:
      username: %s
      password_file: secrets/nexus-password
  nexus.example.internal:8443:
    tls:
      ca_file: certs/nexus-ca.crt
engines:
  docker:
    auth_users: [root]
`, user)
	return b.String()
}

const invalidSpec = "mirrors:\n  docker.io:\n    endpoints: [https://typo.example.internal]\n"

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// settle lets goroutines that are ending end, then counts them.
func goroutines() int {
	for range 20 {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	return runtime.NumGoroutine()
}

func TestSoak(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	t.Logf("seed %d", seed)

	h := newTestHost(t)
	cfgPath := filepath.Join(h.etc, "config.yaml")
	writeFile(t, cfgPath, randomSpec(rng))
	quiet := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))
	r := h.startLoop(Config{
		Source:   NewFileSource(cfgPath, nil, Quiescence{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond}),
		Debounce: Quiescence{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond},
		Log:      quiet,
	})
	r.next("first sync")

	lg := OpenLastGood(h.hr)
	lastGood := func() string {
		s, err := lg.Load()
		if err != nil || s == nil {
			return ""
		}
		return string(s.Data)
	}
	// waitApplied waits until the node is on want.
	waitApplied := func(want string, _ bool) *Report {
		deadline := time.After(30 * time.Second)
		for {
			if lastGood() == want {
				return nil
			}
			select {
			case rep := <-r.reports:
				if lastGood() == want {
					return &rep
				}
			case <-deadline:
				t.Fatalf("config never applied:\n%s", want)
			}
		}
	}

	var (
		latencies         []time.Duration // config written -> applied, no reload or restart
		warmG, warmFD     int
		maxG, maxFD       int
		waited, bursts    int
		invalid, restarts int
		written           = lastGood()
		lastValid         = written
	)
	for i := 1; i <= soakChanges; i++ {
		if i == 51 {
			// Warmed up: settle, then count.
			if written == lastValid {
				waitApplied(lastValid, true)
			}
			time.Sleep(100 * time.Millisecond)
			drainReports(r)
			warmG, warmFD = goroutines(), openFDs(t)
		}
		cfg := randomSpec(rng)
		valid := true
		if i < soakChanges && rng.IntN(20) == 0 {
			cfg, valid = invalidSpec, false
		}
		start := time.Now()
		switch n := rng.IntN(10); {
		case n < 7:
			writeAtomic(t, cfgPath, cfg)
		case n < 9:
			writeFile(t, cfgPath, cfg) // in place: a read may see half of it
		default:
			os.Remove(cfgPath)
			writeFile(t, cfgPath, cfg)
		}
		same := cfg == written
		written = cfg
		if valid {
			lastValid = cfg
		} else {
			invalid++
		}
		// A third of the changes come in bursts, without waiting.
		if rng.IntN(3) == 0 && i < soakChanges {
			bursts++
			continue
		}
		waited++
		if same {
			continue
		}
		if !valid {
			// Refused, or never seen when the source read the file
			// only after a later write put back the content it had.
			time.Sleep(60 * time.Millisecond)
			continue
		}
		rep := waitApplied(cfg, valid)
		if valid && rep != nil && rep.Result != nil && len(rep.Result.Done) == 0 && rep.Stage == "" {
			latencies = append(latencies, time.Since(start))
		}
		if rep != nil && rep.Result != nil && len(rep.Result.Done) > 0 {
			restarts++
		}
		if i > 50 && i%100 == 0 {
			maxG, maxFD = max(maxG, runtime.NumGoroutine()), max(maxFD, openFDs(t))
		}
	}
	if lastGood() != lastValid {
		t.Fatal("the node is not on the last valid config")
	}
	time.Sleep(200 * time.Millisecond)
	drainReports(r)
	endG, endFD := goroutines(), openFDs(t)

	// The node's files equal what a one-shot sync of the last config
	// writes on a fresh node.
	fresh := newTestHost(t)
	fresh.etc = h.etc
	s, err := spec.Load(cfgPath, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	oneShot(t, fresh, s)
	if d := cmp.Diff(fresh.files(), h.files()); d != "" {
		t.Errorf("watch's files differ from a one-shot sync of the last config (-sync +watch):\n%s", d)
	}
	stW, _ := state.Open(h.hr).Load()
	stS, _ := state.Open(fresh.hr).Load()
	if d := cmp.Diff(stS.Files, stW.Files); d != "" {
		t.Errorf("ownership state differs (-sync +watch):\n%s", d)
	}

	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(float64(len(latencies))*p))]
	}
	t.Logf("changes %d: waited for %d, %d in bursts, %d invalid, %d syncs with a restart or reload",
		soakChanges, waited, bursts, invalid, restarts)
	t.Logf("latency, config written -> files applied, no restart (n=%d): p50 %v, p99 %v, max %v",
		len(latencies), pct(0.50).Round(time.Millisecond/10), pct(0.99).Round(time.Millisecond/10), pct(1).Round(time.Millisecond/10))
	t.Logf("goroutines: %d after warm-up, max %d, %d at the end; open fds: %d after warm-up, max %d, %d at the end",
		warmG, maxG, endG, warmFD, maxFD, endFD)
	if endG > warmG+3 {
		t.Errorf("goroutines grew: %d -> %d", warmG, endG)
	}
	if endFD > warmFD+3 {
		t.Errorf("open file descriptors grew: %d -> %d", warmFD, endFD)
	}
}

func drainReports(r *run) {
	for {
		select {
		case <-r.reports:
		default:
			return
		}
	}
}

// oneShot is `mirrorctl sync`: the same pipeline, as a command runs it.
func oneShot(t *testing.T, h *testHost, s *spec.Spec) {
	t.Helper()
	o := h.node().Apply
	o.Who, o.Trigger = "test", "sync"
	if _, err := apply.Sync(context.Background(), s, o); err != nil {
		t.Fatal(err)
	}
}
