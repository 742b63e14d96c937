package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mirrorctl/mirrorctl/credentials"
	"github.com/mirrorctl/mirrorctl/spec"
	"github.com/mirrorctl/mirrorctl/watch"
)

type watchFlags struct {
	source      string
	interval    time.Duration
	timeout     time.Duration
	maxSize     int64
	allowHTTP   bool
	caFile      string
	sigKey      string
	sigNS       string
	sigIdentity string
	metricsAddr string
	debounce    time.Duration
	debounceMax time.Duration
	resync      time.Duration
	maxFights   int
	fightWindow time.Duration
	probeEvery  time.Duration
	probeWait   time.Duration
	adopt       bool
}

func newWatchCmd(g *globalFlags) *cobra.Command {
	var f watchFlags
	cmd := &cobra.Command{
		Use:         "watch",
		Annotations: map[string]string{runsLong: "yes"},
		Short:       "Follow a central config (a file, a ConfigMap mount or an https URL) and sync whenever it changes",
		Long: `watch runs the sync pipeline (lock, plan, backup, atomic writes, least
disruption, health, rollback) every time its source changes, and keeps running.

The source (--source, default --config) is a file path, including a Kubernetes
ConfigMap or Secret mount, or an https:// URL polled with conditional GETs. It
replaces only the main spec: conf.d/*.yaml beside --config and the node's
secret files are merged into every central config, and relative paths in the
central config resolve against --config's directory.

An invalid, unsigned (with --signature-key) or unreachable config never
changes the node; the reason is logged and shown in systemd's STATUS. Every
applied config is kept in /var/lib/mirrorctl/last-good/, and a node starting
while its source is unreachable applies it. Managed files someone else edits
are restored, at most --max-fights times per --fight-window. With
--probe-interval, mirrors that stop answering are left out of containerd's
hosts.toml (a live change) until they answer again.

systemd: Type=notify (READY=1 after the first sync, WATCHDOG=1 when
WatchdogSec= is set and the loop is not stuck, STATUS=); SIGHUP re-syncs now;
SIGTERM interrupts the current sync as it interrupts mirrorctl sync (files being
written are put back, owed reloads stay recorded) and exits 0.

` + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWatch(cmd.Context(), g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.source, "source", "", "the central config: a file path or an https:// URL (default: --config)")
	fl.DurationVar(&f.interval, "interval", time.Minute, "URL source: time between polls (each varies by ±20%)")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "URL source: timeout of each request, body included")
	fl.Int64Var(&f.maxSize, "max-size", 1<<20, "URL source: refuse a config or signature larger than this many bytes")
	fl.BoolVar(&f.allowHTTP, "allow-http", false, "allow an http:// source (unauthenticated: use with --signature-key)")
	fl.StringVar(&f.caFile, "ca-file", "", "URL source: trust only the CAs in this PEM bundle")
	fl.StringVar(&f.sigKey, "signature-key", "", "require <source>.sig, an `ssh-keygen -Y sign` signature by one of the keys in this file (authorized_keys or allowed_signers format)")
	fl.StringVar(&f.sigNS, "signature-namespace", watch.DefaultNamespace, "the namespace signatures are made for (ssh-keygen -Y sign -n)")
	fl.StringVar(&f.sigIdentity, "signature-identity", "", "the principal configs are signed as, checked against the principals of --signature-key's allowed_signers lines (ssh-keygen -Y verify -I); required when it has any")
	fl.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus /metrics and /healthz on this address (\":9477\" binds 127.0.0.1; off when empty)")
	fl.DurationVar(&f.debounce, "debounce", 20*time.Millisecond, "act once file events have been quiet this long")
	fl.DurationVar(&f.debounceMax, "debounce-max", time.Second, "but never later than this after the first event of a burst")
	fl.DurationVar(&f.resync, "resync-interval", 5*time.Minute, "sync the current config again this often, to repair drift no event showed and pick up rotated secrets (0: never)")
	fl.IntVar(&f.maxFights, "max-fights", 3, "repair a managed file someone else changes at most this many times per --fight-window, then leave it and report")
	fl.DurationVar(&f.fightWindow, "fight-window", 10*time.Minute, "the window of --max-fights")
	fl.DurationVar(&f.probeEvery, "probe-interval", 0, "probe every mirror endpoint's /v2/ this often and leave mirrors that stop answering out of containerd's hosts.toml until they answer again (0: off)")
	fl.DurationVar(&f.probeWait, "probe-timeout", 3*time.Second, "the timeout of each mirror probe")
	fl.BoolVar(&f.adopt, "adopt", false, "take over files that mirrorctl did not write (they are backed up first)")
	return cmd
}

func runWatch(ctx context.Context, g *globalFlags, f watchFlags) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	// Before anything that can take time: an early SIGHUP must not kill us.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer func() { signal.Stop(hup); close(hup) }()
	trigger := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case trigger <- struct{}{}:
			default:
			}
		}
	}()

	var verify *watch.Verifier
	if f.sigKey != "" {
		if verify, err = watch.LoadVerifier(f.sigKey, watch.VerifierOptions{Namespace: f.sigNS, Identity: f.sigIdentity}); err != nil {
			return &exitError{code: exitInput, err: fmt.Errorf("--signature-key: %w", err)}
		}
	}
	src, err := watchSource(g, f, verify)
	if err != nil {
		return &exitError{code: exitInput, err: err}
	}
	o, err := g.applyOptions("watch")
	if err != nil {
		return err
	}
	o.Adopt = f.adopt
	if o.Dial == nil {
		log.Warn("reloads and restarts will stay pending", "why", o.PendingWhy)
	}
	node := &watch.Node{Apply: o, Log: log}
	var prevSecrets []string
	loop, err := watch.New(watch.Config{
		Source:        src,
		NodeDir:       filepath.Dir(g.configPath()),
		SpecOptions:   g.specOptions(),
		Verify:        verify,
		Node:          node,
		LastGood:      watch.OpenLastGood(g.host),
		Debounce:      watch.Quiescence{Min: f.debounce, Max: f.debounceMax},
		Resync:        f.resync,
		MaxFights:     f.maxFights,
		FightWindow:   f.fightWindow,
		ProbeInterval: f.probeEvery,
		ProbeTimeout:  f.probeWait,
		MaxSyncTime:   g.lockWait + 2*g.healthWait + time.Minute,
		Trigger:       trigger,
		Log:           log,
		OnSpec: func(s *spec.Spec) {
			// Mask the secrets of this spec and of the one before it: an
			// error about either can still be logged.
			cur := s.SecretValues()
			g.redactor = credentials.NewRedactor(append(cur, prevSecrets...)...)
			prevSecrets = cur
		},
	})
	if err != nil {
		return err
	}
	if f.metricsAddr != "" {
		addr, err := watch.MetricsAddr(f.metricsAddr)
		if err != nil {
			return &exitError{code: exitInput, err: err}
		}
		mctx, cancel := context.WithCancel(ctx)
		defer cancel()
		bound, _, err := watch.Serve(mctx, addr, loop.Metrics().Handler(loop.Health, loop.Ready))
		if err != nil {
			return err
		}
		log.Info("serving metrics", "addr", bound.String())
	}
	log.Info("watching", "source", src.String(), "node_config", filepath.Dir(g.configPath()), "root", g.root)
	if err := loop.Run(ctx); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// watchSource builds the source --source names.
func watchSource(g *globalFlags, f watchFlags, verify *watch.Verifier) (watch.Source, error) {
	src := f.source
	if src == "" {
		src = g.configPath()
	}
	if strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://") {
		return watch.NewHTTPSource(src, watch.HTTPOptions{
			Interval: f.interval, Timeout: f.timeout, MaxBytes: f.maxSize, CAFile: f.caFile,
			AllowHTTP: f.allowHTTP, Verify: verify, UserAgent: "mirrorctl/" + version,
		})
	}
	if strings.Contains(src, "://") {
		return nil, fmt.Errorf("--source %s: want a file path or an https:// URL", src)
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return nil, fmt.Errorf("--source: %w", err)
	}
	return watch.NewFileSource(abs, verify, watch.Quiescence{Min: f.debounce, Max: f.debounceMax}), nil
}
