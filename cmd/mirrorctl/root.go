package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mirrorctl/mirrorctl/credentials"
	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/spec"
	"github.com/mirrorctl/mirrorctl/systemd"
)

// Exit codes, documented in --help and the README.
const (
	exitOK       = 0 // success; for `plan --exit-code`: nothing to change
	exitFailure  = 1 // a runtime failure: I/O, an engine's file that cannot be parsed, systemd
	exitInput    = 2 // invalid input: the spec or the command line
	exitPending  = 3 // `plan --exit-code`: changes are pending
	exitHealth   = 4 // an engine failed its health check; the previous files were restored
	exitConflict = 5 // files mirrorctl did not write were left alone; the rest was applied
)

const exitCodesHelp = `Exit codes:
  0  success (plan --exit-code: nothing to change)
  1  runtime failure: I/O error, an engine file that cannot be parsed, systemd
  2  invalid input: the spec (file:line:column in the message) or the command line
  3  plan --exit-code: changes are pending
  4  an engine was unhealthy after the change; the previous files were restored and re-activated
  5  files mirrorctl did not write were left alone (see --adopt); everything else was applied`

// exitError carries an exit code from a command to run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// oneShotGCPercent is the collector's GOGC for a command that exits when
// done. Such a command allocates a few MiB and frees little of it before it
// exits; with the default (100) the collector first runs at 4 MiB of heap,
// and a no-op sync of 20 registries paid one or two collections, about a
// sixth of its time. At 200 it finishes without one; a larger spec's
// collections come half as often, for a peak heap up to three times its
// live data instead of twice, which GOMEMLIMIT still bounds where it is set.
const oneShotGCPercent = 200

// runsLong is the annotation of a command that keeps running (watch): its
// heap lives for days, so it keeps the runtime's default collector.
const runsLong = "mirrorctl/runs-long"

// globalFlags are the flags every command takes.
type globalFlags struct {
	config    string
	root      string
	engines   []string
	output    string
	logLevel  string
	logFormat string
	noRestart bool
	bus       string
	lockWait  time.Duration

	healthWait time.Duration

	// dial overrides how systemd is reached; tests set a recorder here.
	dial func(ctx context.Context) (systemd.Bus, error)
	// health overrides the engines' health checks; tests only.
	health func(ctx context.Context, root *hostfs.Root, a engines.Activation) error
	// now is the clock (time.Now when nil); tests move it on.
	now func() time.Time
	// setGCPercent is the runtime's debug.SetGCPercent when GOGC leaves the
	// collector to mirrorctl: main sets it, tests leave it nil (it would
	// change their whole process).
	setGCPercent func(percent int) int

	// host is --root, own mirrorctl's own filesystem (its spec and the
	// files the spec names), both read through hostfs.
	host, own *hostfs.Root

	stdin          io.Reader
	stdout, stderr io.Writer
	// redactor masks secrets in errors and logs once the spec is loaded.
	redactor *credentials.Redactor
}

// configPath is --config, or /etc/mirrorctl/config.yaml under --root.
func (g *globalFlags) configPath() string {
	if g.config != "" {
		return g.config
	}
	return filepath.Join(g.root, "etc/mirrorctl/config.yaml")
}

// specOptions reads the spec, its drop-ins and the files it names through
// hostfs: bounded regular files only, and a file in a user's directory with
// that user's rights.
func (g *globalFlags) specOptions() spec.Options {
	return spec.Options{
		Engines: engines.Sections(),
		ReadFile: func(name string) ([]byte, error) {
			data, err := g.own.ReadLocal(name, spec.MaxFileSize)
			if errors.Is(err, hostfs.ErrTooLarge) {
				err = spec.MarkTooLarge(err)
			}
			return data, err
		},
	}
}

func (g *globalFlags) loadSpec() (*spec.Spec, error) { return g.loadSpecWith(os.LookupEnv) }

// loadSpecWith is loadSpec with the spec's environment looked up through
// lookupEnv.
func (g *globalFlags) loadSpecWith(lookupEnv func(string) (string, bool)) (*spec.Spec, error) {
	opts := g.specOptions()
	opts.ReadFile = readOnce(opts.ReadFile)
	opts.LookupEnv = lookupEnv
	s, err := spec.Load(g.configPath(), opts)
	if err != nil {
		var se spec.Errors
		if errors.As(err, &se) {
			return nil, &exitError{code: exitInput, err: err}
		}
		return nil, &exitError{code: exitInput, err: fmt.Errorf("loading spec: %w", err)}
	}
	g.redactor = credentials.NewRedactor(s.SecretValues()...)
	return s, nil
}

// readOnce reads each file once for one load of the spec: a spec naming
// the same password_file or ca_file for a thousand mirrors reads it once,
// and every mirror gets the same bytes. Never for more than one load
// (watch reloads read the files again).
func readOnce(read func(string) ([]byte, error)) func(string) ([]byte, error) {
	type result struct {
		data []byte
		err  error
	}
	seen := map[string]result{}
	return func(name string) ([]byte, error) {
		abs, err := filepath.Abs(name)
		if err != nil {
			return nil, err
		}
		r, ok := seen[abs]
		if !ok {
			r.data, r.err = read(name)
			seen[abs] = r
		}
		return bytes.Clone(r.data), r.err
	}
}

// loadSpecOrDefaults is loadSpec for commands that also work without a spec
// (detect, rollback): with no --config and no default spec file, every
// engine takes its defaults. An explicit --config must exist.
func (g *globalFlags) loadSpecOrDefaults() (*spec.Spec, error) {
	s, err := g.loadSpec()
	if errors.Is(err, fs.ErrNotExist) && g.config == "" {
		return spec.Parse("(no spec)", nil, g.specOptions())
	}
	return s, err
}

func newRootCmd(g *globalFlags) *cobra.Command {
	root := &cobra.Command{
		Use:   "mirrorctl",
		Short: "Make every container engine on this node pull through your registry mirrors",
		Long: `mirrorctl renders one registry spec (a superset of k3s's registries.yaml) into the
files of every container engine on the node: containerd (config.toml, certs.d),
Docker (daemon.json, certs.d, config.json; hosts.toml with the containerd image
store), k3s/RKE2 (registries.yaml), crictl, and CRI-O with Podman, Buildah and
Skopeo (a registries.conf.d drop-in, auth.json, certs.d).

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.config, "config", "", "spec file (default /etc/mirrorctl/config.yaml under --root); drop-ins are read from conf.d/ beside it")
	pf.StringVar(&g.root, "root", "/", "resolve every host path under this directory")
	pf.StringSliceVar(&g.engines, "engines", nil, "manage only these engines, even when not detected ("+strings.Join(engineNames(), ",")+")")
	pf.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	pf.BoolVar(&g.noRestart, "no-restart", false, "write files but leave reloads and restarts pending (and say which)")
	pf.StringVar(&g.bus, "bus", "", "D-Bus address of the host's systemd (default: the system bus when --root is /; e.g. unix:path=/host/run/dbus/system_bus_socket)")
	pf.DurationVar(&g.healthWait, "health-timeout", time.Minute, "how long an engine may take to come up and pass its health check after a reload or restart")
	pf.DurationVar(&g.lockWait, "lock-timeout", 2*time.Minute, "how long to wait for another mirrorctl (sync, rollback, watch) to finish")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if g.setGCPercent != nil && cmd.Annotations[runsLong] == "" {
			g.setGCPercent(oneShotGCPercent)
		}
		if g.output != "text" && g.output != "json" {
			return &exitError{code: exitInput, err: fmt.Errorf("--output must be text or json, not %q", g.output)}
		}
		if !filepath.IsAbs(g.root) {
			abs, err := filepath.Abs(g.root)
			if err != nil {
				return &exitError{code: exitInput, err: fmt.Errorf("--root: %w", err)}
			}
			g.root = abs
		}
		var err error
		if g.host, err = hostfs.Open(g.root); err != nil {
			return &exitError{code: exitInput, err: fmt.Errorf("--root: %w", err)}
		}
		if g.own, err = hostfs.Open("/"); err != nil {
			return err
		}
		return nil
	}
	root.AddCommand(
		newDetectCmd(g),
		newValidateCmd(g),
		newPlanCmd(g),
		newSyncCmd(g),
		newWatchCmd(g),
		newAuthCmd(g),
		newBackupsCmd(g),
		newRollbackCmd(g),
		newStatusCmd(g),
		newDoctorCmd(g),
		newVersionCmd(g),
		newCloudInitCmd(g),
	)
	root.AddCommand(buildCommands(g)...)
	return root
}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runWith(ctx, &globalFlags{stdin: stdin, stdout: stdout, stderr: stderr}, args)
}

// runWith is run with the globals prepared; tests set g.dial and g.health.
func runWith(ctx context.Context, g *globalFlags, args []string) int {
	stdin, stdout, stderr := g.stdin, g.stdout, g.stderr
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	for _, r := range []*hostfs.Root{g.host, g.own} {
		if r != nil {
			r.Close()
		}
	}
	if err == nil {
		return exitOK
	}
	code := exitCodeOf(err)
	if code == exitPending && errors.Is(err, errPending) {
		return code
	}
	msg := g.redactor.String(err.Error())
	var rep *reportedError
	if g.output == "json" && !errors.As(err, &rep) {
		// A script reading -o json gets JSON on every outcome.
		writeJSON(stdout, jsonError{Error: msg, ExitCode: code, Problems: problemsOf(err, g.redactor)})
	}
	fmt.Fprintln(stderr, "mirrorctl: "+strings.ReplaceAll(msg, "\n", "\nmirrorctl: "))
	return code
}

// exitCodeOf maps an error to the process exit code.
func exitCodeOf(err error) int {
	var ee *exitError
	var ue *plan.UsageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue), isUsageError(err):
		return exitInput
	}
	return exitFailure
}

// reportedError is an error a command already printed as JSON.
type reportedError struct{ error }

func (e *reportedError) Unwrap() error { return e.error }

// silenced marks err as already printed as JSON (nil stays nil).
func silenced(err error) error {
	if err == nil {
		return nil
	}
	return &reportedError{err}
}

// errPending is returned by `plan --exit-code`; it prints nothing.
var errPending = errors.New("changes are pending")

// isUsageError recognises cobra's command-line errors, which it returns as
// plain errors.
func isUsageError(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "invalid argument", "flag needs an argument", "accepts ", "requires "} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// logger builds the slog logger for a command; every record passes through
// the redactor, so a secret that reaches a log line is masked.
func (g *globalFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, &exitError{code: exitInput, err: fmt.Errorf("--log-level: %w", err)}
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch g.logFormat {
	case "text":
		h = slog.NewTextHandler(g.stderr, opts)
	case "json":
		h = slog.NewJSONHandler(g.stderr, opts)
	default:
		return nil, &exitError{code: exitInput, err: fmt.Errorf("--log-format must be text or json, not %q", g.logFormat)}
	}
	return slog.New(&redactingHandler{next: h, g: g}), nil
}
