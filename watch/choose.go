package watch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mirrorctl/mirrorctl/apply"
	"github.com/mirrorctl/mirrorctl/spec"
)

// sync applies the newest central content if it is new and has not failed
// already (force retries it), and otherwise re-applies the config the node
// is on, which repairs drift.
func (l *Loop) sync(ctx context.Context, trigger string, force bool) {
	if c := l.latest; c != nil && !l.isGood(c) && (force || !l.hasFailed || l.failedSum != c.sum()) {
		if l.applyNew(ctx, trigger, c) || l.started {
			return
		}
		// Refused at start: still converge on the last good config.
	}
	l.applyGood(ctx, trigger)
}

func (l *Loop) isGood(s *Snapshot) bool {
	return l.good != nil && (Snapshot{Data: l.good.Data, Sig: l.good.Sig}).sum() == s.sum()
}

// applyNew applies new central content. It returns false when the config
// was refused before anything ran (invalid with the node's parts).
func (l *Loop) applyNew(ctx context.Context, trigger string, c *Snapshot) bool {
	r := &Report{Trigger: trigger, Time: time.Now(), Source: c.Name, Generation: l.generation(), fresh: true}
	s, err := loadCentral(c.Name, c.Data, l.cfg.NodeDir, l.cfg.SpecOptions)
	if err != nil {
		l.hasFailed, l.failedSum = true, c.sum()
		r.Err, r.Stage = err, "spec"
		r.GivenUp = l.drift.GivenUp()
		l.finish(r, 0)
		return false
	}
	l.drift.Reset() // a new decision: contested files are taken back
	l.run(ctx, r, s)
	switch r.Stage {
	case "":
		gen := l.generation()
		if l.good == nil || string(l.good.Data) != string(c.Data) {
			gen++
		}
		saved := &Saved{Name: c.Name, Generation: gen, Serial: max(l.floor, s.Serial), AppliedAt: r.Time.UTC(), Data: c.Data, Sig: c.Sig}
		if err := l.cfg.LastGood.Save(saved); err != nil {
			l.log.Error("the config was applied but could not be kept as the last good one", "err", err)
		}
		l.good, l.floor, l.hasFailed = saved, saved.Serial, false
		r.Generation = gen
	case "health":
		l.hasFailed, l.failedSum = true, c.sum()
	}
	l.finish(r, time.Since(r.Time))
	return true
}

// applyGood syncs the config the node is on again.
func (l *Loop) applyGood(ctx context.Context, trigger string) {
	if l.good == nil {
		l.publish()
		return
	}
	r := &Report{Trigger: trigger, Time: time.Now(), Source: l.good.Name, Generation: l.good.Generation, fresh: !l.started}
	s, err := loadCentral(l.good.Name, l.good.Data, l.cfg.NodeDir, l.cfg.SpecOptions)
	if err != nil {
		r.Err, r.Stage = fmt.Errorf("the last good config no longer loads with this node's drop-ins and secrets: %w", err), "spec"
		l.finish(r, 0)
		return
	}
	l.run(ctx, r, s)
	l.finish(r, time.Since(r.Time))
}

// run syncs s through Node and fills r.
func (l *Loop) run(ctx context.Context, r *Report, s *spec.Spec) {
	if l.cfg.OnSpec != nil {
		l.cfg.OnSpec(s)
	}
	out, err := l.cfg.Node.Sync(ctx, s, l.drift, r.Trigger, l.health.downSet())
	l.trackManaged()
	if out != nil {
		r.Result, r.Repaired, r.Warnings, r.engineOf = out.Result, out.Repaired, out.Warnings, out.Engines
		for _, p := range out.GivenUp {
			l.log.Warn("stopped repairing a managed file: someone else keeps changing it", "path", p,
				"fights", l.drift.MaxFights, "window", l.drift.Window, "hint", "find who writes it; SIGHUP or a new config repairs it again")
		}
	}
	r.GivenUp = l.drift.GivenUp()
	var he *apply.HealthError
	switch {
	case err == nil, errors.Is(err, apply.ErrConflicts):
		l.retries = 0
		l.retry.Stop()
		l.setProbeTargets(s)
	case errors.As(err, &he):
		r.Err, r.Stage = err, "health"
	default:
		r.Err, r.Stage = err, "apply"
		l.retries++
		l.retry.Reset(backoff(time.Second, max(l.cfg.Resync, time.Minute), l.retries))
	}
}

// ErrEmpty is the refusal of a central config with nothing in it.
var ErrEmpty = errors.New("the config is empty (no key, only blanks and comments); refusing it, since it would remove every mirror: to do that on purpose, publish `mirrors: {}`")

// loadCentral is spec.LoadCentral, refusing an empty document: a file read
// in the middle of an in-place rewrite, or a web server that answers 200
// with nothing, must not strip every node of its mirrors.
func loadCentral(name string, data []byte, dir string, opts spec.Options) (*spec.Spec, error) {
	blank := true
	for _, line := range strings.Split(string(data), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") && t != "---" {
			blank = false
			break
		}
	}
	if blank {
		return nil, fmt.Errorf("%s: %w", name, ErrEmpty)
	}
	return spec.LoadCentral(name, data, dir, opts)
}

// loadGood reads the last good config, checking its signature again when a
// key is configured.
func (l *Loop) loadGood() (*Saved, error) {
	s, err := l.cfg.LastGood.Load()
	if err != nil || s == nil {
		return nil, err
	}
	if l.cfg.Verify != nil {
		if err := l.cfg.Verify.Verify(s.Data, s.Sig); err != nil {
			return nil, fmt.Errorf("last good config from %s: %w", s.Name, err)
		}
	}
	return s, nil
}
