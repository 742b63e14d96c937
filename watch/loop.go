// Package watch keeps a node in step with a central spec: a source (a file,
// a ConfigMap mount, an https URL) delivers the central config, the node's
// conf.d drop-ins and secrets are merged in (spec.LoadCentral), and each new
// config goes through the same pipeline as `mirrorctl sync` (Node). Around
// that: the last good config for offline starts (LastGood), drift repair
// with a cap on fights (Drift), sd_notify and Prometheus metrics.
//
// The parts are separate, as consul-template's are: a source sends
// snapshots; the loop debounces local events, chooses the config to apply
// and reports; Node plans and applies. Only the loop's goroutine syncs and
// logs.
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mirrorctl/mirrorctl/apply"
	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/spec"
)

// Config is what Run needs. Source, NodeDir, Node and LastGood are required.
type Config struct {
	Source Source
	// NodeDir is the node's config directory (that of --config): its
	// conf.d/*.yaml are merged over every central config, and relative
	// references in the central config resolve against it.
	NodeDir     string
	SpecOptions spec.Options
	// Verify, when set, checks the last good config's signature again
	// before it is used; the sources check new ones.
	Verify   *Verifier
	Node     *Node
	LastGood *LastGood
	// Debounce coalesces events on the node's drop-ins and managed files.
	Debounce Quiescence
	// Resync is how often the current config is synced again even when
	// nothing was seen to change (drift that no event showed, rotated
	// secrets); 0 disables it.
	Resync time.Duration
	// ProbeInterval turns mirror health on (probe.go): every mirror
	// endpoint of the current config is probed this often, each probe
	// with ProbeTimeout (default 3s); 0 turns it off.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	// MaxFights and FightWindow cap drift repair: see Drift.
	MaxFights   int
	FightWindow time.Duration
	// MaxSyncTime is how long the loop may spend on one event (a sync,
	// and the reads of the node's parts and managed files around it)
	// before it is reported stuck (watchdog, /healthz); default 10m.
	MaxSyncTime time.Duration
	// Trigger syncs now when it receives (SIGHUP).
	Trigger <-chan struct{}
	// Notify sends an sd_notify message; nil means the real one, which does
	// nothing when NOTIFY_SOCKET is unset.
	Notify  func(state string)
	Metrics *Metrics
	Log     *slog.Logger
	// OnSpec is called with each spec loaded, before it is used (the CLI
	// feeds its secret redactor).
	OnSpec func(*spec.Spec)
	// Observe is called after every sync attempt, from the loop's goroutine.
	Observe func(Report)
}

// Report is what one sync attempt did.
type Report struct {
	Trigger string // start, source, local, drift, resync, signal, retry, probe
	Time    time.Time
	// Source names the config applied, or refused when Err is set.
	Source string
	// Generation is the config generation the node is on afterwards.
	Generation int
	Result     *apply.Result
	// Err says why a config was not applied; Stage where: "spec" (invalid
	// or unreadable with the node's parts), "apply" (I/O, lock, systemd),
	// "health" (rolled back). Both are empty on success.
	Err   error
	Stage string
	// Repaired lists drifted files restored; GivenUp every file no longer
	// repaired.
	Repaired, GivenUp []string
	Warnings          []engines.Warning
	engineOf          map[string]string
	fresh             bool // a config this process had not applied yet
}

// Loop is a running watch.
type Loop struct {
	cfg   Config
	log   *slog.Logger
	m     *Metrics
	drift *Drift

	latest    *Snapshot // the newest central content
	srcErr    error     // the source's current error
	good      *Saved    // the config the node is on
	floor     int64     // the highest serial applied: lower ones are refused
	failedSum [32]byte  // content that failed: not retried by timers
	hasFailed bool
	started   bool
	retries   int
	retry     *time.Timer
	// managed watches the managed files' directories, local the node's
	// drop-ins.
	managed, local *dirWatcher
	// probe is nil unless ProbeInterval is set; health is the mirrors'
	// state (empty without probes).
	probe  *prober
	health *mirrorHealth

	mu        sync.Mutex
	status    string // from the last report
	published string // the last status line sent, for /healthz
	busySince time.Time
	downNote  string // the mirror endpoints down, for the status line
	applied   bool   // a sync has succeeded since start, for /readyz
}

// New checks cfg and returns the loop.
func New(cfg Config) (*Loop, error) {
	if cfg.Source == nil || cfg.Node == nil || cfg.LastGood == nil || cfg.NodeDir == "" {
		return nil, errors.New("watch: Source, Node, LastGood and NodeDir are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.SpecOptions.Engines == nil {
		cfg.SpecOptions.Engines = engines.Sections()
	}
	if cfg.Node.Log == nil {
		cfg.Node.Log = cfg.Log
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.Notify == nil {
		cfg.Notify = sdNotify
	}
	if cfg.MaxSyncTime <= 0 {
		cfg.MaxSyncTime = 10 * time.Minute
	}
	if cfg.FightWindow <= 0 {
		cfg.FightWindow = 10 * time.Minute
	}
	if cfg.MaxFights <= 0 {
		cfg.MaxFights = 3
	}
	l := &Loop{cfg: cfg, log: cfg.Log, m: cfg.Metrics, drift: NewDrift(cfg.MaxFights, cfg.FightWindow), status: "starting",
		health: newMirrorHealth()}
	if cfg.ProbeInterval > 0 {
		l.probe = newProber(cfg.ProbeInterval, cfg.ProbeTimeout)
	}
	l.retry = time.NewTimer(time.Hour)
	l.retry.Stop()
	return l, nil
}

// Metrics returns the loop's metrics.
func (l *Loop) Metrics() *Metrics { return l.m }

// Run syncs at start (the source, or the last good config when the source
// cannot be read), sends READY=1, then follows the source, the node's
// drop-ins and the managed files until ctx ends. A sync in progress when
// ctx ends is interrupted as `mirrorctl sync` is (files being written are
// put back, owed reloads stay recorded). Run returns nil after ctx ends,
// or an error when it cannot start.
func (l *Loop) Run(ctx context.Context) error {
	root := l.cfg.Node.Apply.Root
	if good, err := l.loadGood(); err != nil {
		l.log.Error("ignoring the last good config", "err", err)
	} else {
		l.good = good
	}
	if floor, err := l.cfg.LastGood.HighestSerial(); err != nil {
		l.log.Error("the highest serial applied is unknown; any serial is accepted until one is applied", "err", err)
	} else {
		l.floor = floor
	}
	l.m.generation.Set(float64(l.generation()))

	subCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	goRun := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }

	snaps := make(chan Snapshot)
	goRun(func() { l.cfg.Source.Run(subCtx, snaps) })

	confd := filepath.Join(l.cfg.NodeDir, "conf.d")
	local, err := newDirWatcher(func(name string) bool {
		return name == confd || (filepath.Dir(name) == confd && (strings.HasSuffix(name, ".yaml") || strings.HasPrefix(filepath.Base(name), "..")))
	})
	if err != nil {
		return fmt.Errorf("watching %s: %w", confd, err)
	}
	local.set([]string{l.cfg.NodeDir, confd})
	localFire := make(chan struct{}, 1)
	goRun(func() { local.run(subCtx, l.cfg.Debounce, localFire) })

	managed, err := newDirWatcher(l.drift.matches)
	if err != nil {
		return fmt.Errorf("watching the managed files: %w", err)
	}
	driftFire := make(chan struct{}, 1)
	goRun(func() { managed.run(subCtx, l.cfg.Debounce, driftFire) })
	l.managed, l.local = managed, local
	l.trackManaged()

	var probes chan []probeResult // nil, never ready, without probes
	if l.probe != nil {
		probes = make(chan []probeResult)
		goRun(func() { l.probe.run(subCtx, probes) })
	}

	var resync <-chan time.Time
	if l.cfg.Resync > 0 {
		t := time.NewTicker(l.cfg.Resync)
		defer t.Stop()
		resync = t.C
	}
	defer l.retry.Stop()

	select {
	case snap := <-snaps:
		l.busy(func() { l.onSnapshot(ctx, snap) })
	case <-ctx.Done():
		return nil
	}
	l.started = true
	l.cfg.Notify("READY=1\nSTATUS=" + l.statusLine())
	if iv, err := sdWatchdog(); err == nil && iv > 0 {
		goRun(func() { l.watchdog(subCtx, iv/2) })
	}

	for {
		select {
		case <-ctx.Done():
			l.cfg.Notify("STOPPING=1")
			return nil
		case snap := <-snaps:
			l.busy(func() { l.onSnapshot(ctx, snap) })
		case <-localFire:
			l.busy(func() { l.sync(ctx, "local", true) })
		case <-driftFire:
			l.busy(func() {
				st, err := l.cfg.Node.Apply.Store.Load()
				if err == nil && dirty(root, st) {
					l.sync(ctx, "drift", false)
				}
			})
		case <-resync:
			l.busy(func() { l.sync(ctx, "resync", false) })
		case rs := <-probes:
			l.busy(func() { l.onProbe(ctx, rs) })
		case <-l.retry.C:
			l.busy(func() { l.sync(ctx, "retry", false) })
		case <-l.cfg.Trigger:
			l.log.Info("re-syncing now (signal)")
			l.cfg.Source.Refresh()
			l.drift.Reset()
			l.busy(func() { l.sync(ctx, "signal", true) })
		}
		if l.local.missing() {
			l.local.set(l.local.wanted()) // conf.d created since
		}
	}
}

// trackManaged points the drift watcher at the directories of the files
// mirrorctl now manages. It runs after every sync, before the report, so
// an edit made once a sync is reported is always seen.
func (l *Loop) trackManaged() {
	if st, err := l.cfg.Node.Apply.Store.Load(); err == nil {
		l.managed.set(l.drift.track(l.cfg.Node.Apply.Root, st))
	}
}

func (l *Loop) onSnapshot(ctx context.Context, snap Snapshot) {
	trigger := "source"
	if !l.started {
		trigger = "start"
	}
	if snap.Err == nil {
		if err := l.checkSerial(snap); err != nil {
			snap = Snapshot{Name: snap.Name, Err: err}
		}
	}
	if snap.Err != nil {
		l.m.fetchError(snap.Err)
		l.srcErr = snap.Err
		l.log.Warn("source unusable; the node stays as it is", "source", snap.Name, "reason", reasonOf(snap.Err), "err", snap.Err)
		if !l.started {
			if l.good != nil {
				l.log.Info("applying the last good config", "generation", l.good.Generation, "from", l.good.Name)
			}
			l.applyGood(ctx, trigger)
			return
		}
		l.publish()
		return
	}
	recovered := l.srcErr != nil
	l.srcErr = nil
	if !l.started || l.latest == nil || l.latest.sum() != snap.sum() {
		l.latest = &snap
		l.hasFailed = false
		l.sync(ctx, trigger, false)
		return
	}
	if recovered {
		l.log.Info("source readable again", "source", snap.Name)
		l.publish()
	}
}

func (l *Loop) generation() int {
	if l.good == nil {
		return 0
	}
	return l.good.Generation
}
