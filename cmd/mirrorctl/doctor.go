package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mirrorctl/mirrorctl/doctor"
	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/hostexec"
	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/state"
)

type doctorFlags struct {
	repository   string
	timeout      time.Duration
	probeTimeout time.Duration
	parallel     int
}

func newDoctorCmd(g *globalFlags) *cobra.Command {
	var f doctorFlags
	cmd := &cobra.Command{
		Use:   "doctor [IMAGE...]",
		Short: "Say why a pull does or does not go through a mirror: per engine the hosts it really tries, per mirror what this node sees",
		Long: `doctor explains, for every engine on the node and every image, where a pull
really goes: the hosts the engine tries in order (computed from its files on
disk, with containerd's own hosts loader where containerd is involved) and the
credentials it sends to each, by name. It then probes every mirror from this
node (DNS, TCP, TLS with the spec's CA and client certificate, GET /v2/ and its
challenge, a token, the manifest, and a push where a mirror may push) and
classifies each failure with its likely cause and the fix. It also compares
the running daemons with their files (a restart or reload still owed).

With no IMAGE, it checks --repository under every registry the spec mirrors.
doctor writes nothing. No secret is printed: credentials are named by their
configs: key.

Exit status: 0 when every engine pulls every image through a mirror, 1
otherwise; 2 for bad input.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDoctor(cmd.Context(), g, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.repository, "repository", "library/busybox:latest", "with no IMAGE: the repository (and tag) checked under every mirrored registry")
	fl.DurationVar(&f.timeout, "timeout", time.Minute, "bound on the whole run")
	fl.DurationVar(&f.probeTimeout, "probe-timeout", 5*time.Second, "bound on each network step and each question to a daemon")
	fl.IntVar(&f.parallel, "parallel", 8, "endpoints probed at once")
	return cmd
}

// errNotThroughMirror is doctor's exit 1; the report says why.
var errNotThroughMirror = errors.New("not every engine pulls through a mirror")

func runDoctor(ctx context.Context, g *globalFlags, f doctorFlags, args []string) error {
	if f.timeout <= 0 || f.probeTimeout <= 0 || f.parallel <= 0 {
		return &exitError{code: exitInput, err: errors.New("--timeout, --probe-timeout and --parallel must be positive")}
	}
	s, err := g.loadSpecOrDefaults()
	if err != nil {
		return err
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	var images []engines.Image
	for _, a := range args {
		img, err := engines.ParseImage(a)
		if err != nil {
			return &exitError{code: exitInput, err: err}
		}
		images = append(images, img)
	}
	if len(images) == 0 {
		if images, err = doctor.DefaultImages(s, f.repository); err != nil {
			return &exitError{code: exitInput, err: fmt.Errorf("--repository: %w", err)}
		}
	}
	if len(images) == 0 {
		return &exitError{code: exitInput, err: errors.New("no image to check: give IMAGE arguments, or a spec with mirrors")}
	}
	// --timeout bounds the whole run: planning asks engine binaries and
	// daemons too.
	rctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	errTimeout := &exitError{code: exitFailure, err: fmt.Errorf(
		"--timeout %s ran out before every check finished: give a longer --timeout, or a shorter --probe-timeout for unreachable mirrors", f.timeout)}
	st, err := state.Open(g.host).Load()
	if err != nil {
		log.Warn("reading mirrorctl's state", "err", err)
		st = state.New()
	}
	opts := plan.Options{Root: g.host, Only: g.engines, State: st, Version: hostexec.New(g.host).Version, Log: log}
	p, err := plan.Build(rctx, s, opts)
	if err != nil {
		// A file the engine cannot render over is no reason not to look.
		log.Warn("planning what sync would change", "err", err)
		opts.Engines = detectOnly()
		if p, err = plan.Build(rctx, s, opts); err != nil {
			if rctx.Err() != nil && ctx.Err() == nil {
				return errTimeout
			}
			return err
		}
	}
	byName := map[string]engines.Engine{}
	for _, e := range engines.All() {
		byName[e.Name()] = e
	}
	var targets []doctor.Target
	for _, e := range p.Engines {
		d := e.Detection
		if !d.Found && !d.Managed {
			continue
		}
		targets = append(targets, doctor.Target{
			Engine: byName[d.Engine], Detection: d, Owed: e.Owed, Changes: len(e.ChangedPaths()),
			Host: engines.Host{FS: g.host.FS(), Owned: st.Owned(d.Engine)},
		})
	}
	rep, runErr := doctor.Run(rctx, doctor.Options{Spec: s, Images: images, Targets: targets, Resolve: g.host.Resolve,
		ProbeTimeout: f.probeTimeout, Parallel: f.parallel, Log: log})
	if rep == nil {
		return runErr
	}
	var buf bytes.Buffer
	if g.output == "json" {
		err = writeJSON(&buf, rep)
	} else {
		err = doctor.WriteText(&buf, rep)
	}
	if err != nil {
		return err
	}
	if _, err := g.stdout.Write([]byte(g.redactor.String(buf.String()))); err != nil {
		return err
	}
	switch {
	case runErr != nil && errors.Is(runErr, context.DeadlineExceeded) && ctx.Err() == nil:
		return silenced(errTimeout)
	case runErr != nil:
		return silenced(&exitError{code: exitFailure, err: runErr})
	case !rep.OK:
		return silenced(&exitError{code: exitFailure, err: errNotThroughMirror})
	}
	return nil
}
