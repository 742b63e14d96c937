// Command benchnode is `make bench-node`: mirrorctl measured as a whole
// process on scratch roots holding a node's real engine binaries, against
// floors built and measured in the same run (a Go program that does
// nothing; a Go program writing the same files durably, one at a time).
// Every measurement is interleaved with its floor (thing, floor, thing,
// floor, …) and reported as medians and ratios, because the machine is
// shared and absolute times are noise. It also counts, with strace, the
// programs each command starts and the writes, syncs and renames it makes,
// and reports mirrorctl's package initialisation (GODEBUG=inittrace=1).
//
// It is not part of mirrorctl: its own main package, never linked into the
// shipped binary. It needs root (the roots hold root-owned files, and
// mirrorctl's file layer acts as the owners it finds) and strace.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mirrorctl/mirrorctl/tools/benchnode/replay"
)

type options struct {
	mirrorctl, minimal, durable string
	libraries, replay           string
	librariesWith               []namedProgram
	spawn                       string
	work                        string
	runs, warmup, minRuns       int
	budget                      time.Duration
	sizes                       []int
	crictl, containerd2         string
	report                      string
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == listenFlag {
		fatal(standInDaemon(os.Args[2]))
	}
	var o options
	var sizes string
	flag.StringVar(&o.mirrorctl, "mirrorctl", "bin/mirrorctl", "the mirrorctl binary measured")
	flag.StringVar(&o.minimal, "minimal", "", "the minimal Go binary (floor of start-up)")
	flag.StringVar(&o.durable, "durable", "", "the durable writer (floor of a changed sync)")
	flag.StringVar(&o.libraries, "libraries", "", "a cobra program linking only the libraries sync needs (a lower bound of a split binary's start); not measured if empty")
	flag.Func("libraries-with", "NAME=PATH,…: the libraries floor built with more of mirrorctl's packages (NAME says which), to measure what each group adds to the start", func(v string) error {
		for _, kv := range strings.Split(v, ",") {
			name, path, ok := strings.Cut(kv, "=")
			if !ok || name == "" || path == "" {
				return fmt.Errorf("%q is not NAME=PATH", kv)
			}
			o.librariesWith = append(o.librariesWith, namedProgram{name: name, path: path})
		}
		return nil
	})
	flag.StringVar(&o.replay, "replay", "", "the replay floor: checks a record of what a no-op read (what a no-op that does not plan would at least do); not measured if empty")
	flag.StringVar(&o.spawn, "spawn", "", "the launcher every measured program is started through")
	flag.StringVar(&o.work, "work", "/var/tmp/mirrorctl-bench-node", "scratch directory (roots, copies of the engine binaries)")
	flag.IntVar(&o.runs, "runs", 20, "measured runs of each command (and of its floor)")
	flag.IntVar(&o.warmup, "warmup", 2, "unmeasured runs before them")
	flag.DurationVar(&o.budget, "budget", 0, "time after which a measurement stops short of -runs (never before -min-runs), for a quicker run; 0: every measurement makes all -runs")
	flag.IntVar(&o.minRuns, "min-runs", 5, "runs a measurement makes whatever its -budget")
	flag.StringVar(&sizes, "sizes", "20,100,1000", "registries in the specs")
	flag.StringVar(&o.crictl, "crictl", "", "crictl binary (the one make e2e builds); none if empty or missing")
	flag.StringVar(&o.containerd2, "containerd2", "", "containerd 2.x binary (the one make e2e builds); its node is skipped if empty or missing")
	flag.StringVar(&o.report, "report", "", "also write the report here (default WORK/report.md)")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fatal(fmt.Errorf("-sizes: %q is not a number of registries", s))
		}
		o.sizes = append(o.sizes, n)
	}
	if o.report == "" {
		o.report = filepath.Join(o.work, "report.md")
	}
	if err := bench(o); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench-node:", err)
	os.Exit(1)
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-node: "+format+"\n", args...)
}

// The start rows' names (the report finds them by these prefixes).
const (
	mirrorctlVersionScenario = "`mirrorctl version`"
	librariesScenario        = "`version` of a program linking only"
)

// namedProgram is a floor program and what it stands for.
type namedProgram struct{ name, path string }

// withScenario names the row of the libraries floor built with a group of
// mirrorctl's packages.
func withScenario(group string) string {
	return "`version` of the libraries floor with " + group
}

// A scenario is one row of the report.
type scenario struct {
	name    string
	pair    pair
	target  string
	counts  counts
	result  pairResult
	treeRSS []int64 // sampled, when the command starts other programs
	files   string  // what a changed sync writes
	// untraced scenarios are floors, not counted under strace.
	untraced bool
}

func bench(o options) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: the scratch roots hold root-owned files and mirrorctl acts as their owners")
	}
	if _, err := exec.LookPath("strace"); err != nil {
		return errors.New("needs strace (apt-get install strace)")
	}
	programs := []*string{&o.mirrorctl, &o.minimal, &o.durable, &o.spawn}
	for _, p := range []*string{&o.libraries, &o.replay} { // optional
		if *p != "" {
			programs = append(programs, p)
		}
	}
	for i := range o.librariesWith {
		programs = append(programs, &o.librariesWith[i].path)
	}
	for _, p := range programs {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return err
		}
		*p = abs
	}
	rn := runner{spawn: o.spawn}
	started := time.Now()
	load := []string{loadavg()}
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		return err
	}

	// The engine binaries, copied once into the work directory.
	bins := filepath.Join(o.work, "engines")
	var es engineSet
	var notes []string
	src, how, err := debianBinary("/usr/bin/containerd", "containerd", o.work)
	if err != nil {
		return err
	}
	if es.containerd, err = stageBinary(src, bins, "containerd"); err != nil {
		return err
	}
	notes = append(notes, fmt.Sprintf("containerd %s: %s", versionOf(es.containerd), how))
	if src, how, err = debianBinary("/usr/sbin/dockerd", "docker.io", o.work); err != nil {
		return err
	}
	if es.dockerd, err = stageBinary(src, bins, "dockerd"); err != nil {
		return err
	}
	notes = append(notes, fmt.Sprintf("dockerd %s: %s", versionOf(es.dockerd), how))
	if o.crictl != "" {
		if _, err := os.Stat(o.crictl); err == nil {
			if es.crictl, err = stageBinary(o.crictl, bins, "crictl"); err != nil {
				return err
			}
			notes = append(notes, fmt.Sprintf("crictl (`--version`: %s): %s (built by make e2e)", versionOf(es.crictl), o.crictl))
		}
	}
	if es.crictl == "" {
		notes = append(notes, "crictl: no binary (make e2e builds it; not found): crictl is enabled in the spec, not detected")
	}
	notes = append(notes, "k3s: no binary (not a Debian package): enabled in the spec, so registries.yaml and its certificates are rendered")
	var c2 string
	if o.containerd2 != "" {
		if _, err := os.Stat(o.containerd2); err == nil {
			if c2, err = stageBinary(o.containerd2, bins, "containerd2"); err != nil {
				return err
			}
		}
	}
	if c2 == "" {
		notes = append(notes, fmt.Sprintf("containerd 2.x: not found at %q (make e2e builds it into /var/cache/mirrorctl-e2e): its node is skipped; Debian's binaries only", o.containerd2))
	}

	configToml, err := packagedConfigToml(o.work)
	if err != nil {
		return err
	}
	ca, err := selfSignedCA()
	if err != nil {
		return err
	}
	var nodes []*node
	for _, n := range o.sizes {
		nd, err := buildNode(fmt.Sprintf("%d registries", n), filepath.Join(o.work, fmt.Sprintf("node-%d", n)), n, es, configToml, ca)
		if err != nil {
			return err
		}
		nodes = append(nodes, nd)
	}
	var c2node *node
	if c2 != "" {
		es2 := es
		es2.containerd = c2
		cfg, err := exec.Command(c2, "config", "default").Output()
		if err != nil {
			return fmt.Errorf("%s config default: %w", c2, err)
		}
		n := o.sizes[0]
		if c2node, err = buildNode(fmt.Sprintf("%d registries, containerd %s", n, versionOf(c2)), filepath.Join(o.work, fmt.Sprintf("node-%d-containerd2", n)), n, es2, cfg, ca); err != nil {
			return err
		}
		notes = append(notes, fmt.Sprintf("containerd %s: %s (built by make e2e), with its `config default` as config.toml", versionOf(c2), o.containerd2))
	}

	// Each live root synced once (engines probed, versions cached), and
	// once more, which must change nothing.
	mc := func(nd *node, root string, args ...string) []string {
		return append([]string{o.mirrorctl, "--root", root, "--config", nd.spec}, args...)
	}
	all := append([]*node(nil), nodes...)
	if c2node != nil {
		all = append(all, c2node)
	}
	for _, nd := range all {
		progress("preparing %s", nd.name)
		for i := 0; i < 2; i++ {
			if _, err := rn.run(command{argv: mc(nd, nd.live, "sync")}, false); err != nil {
				return err
			}
		}
		if err := restartedByHand(nd.live, mc(nd, nd.live, "sync")); err != nil {
			return err
		}
		if err := nd.reset(nd.fresh, true); err != nil {
			return err
		}
		before, err := snapshot(nd.fresh)
		if err != nil {
			return err
		}
		if _, err := rn.run(command{argv: mc(nd, nd.fresh, "sync")}, false); err != nil {
			return err
		}
		if err := nd.writeManifest(nd.fresh, before); err != nil {
			return err
		}
	}

	minimal := command{argv: []string{o.minimal}}
	var scs []*scenario
	add := func(name, target string, thing, floor command, floorName string) *scenario {
		s := &scenario{name: name, target: target, pair: pair{name: name, thing: thing, floor: floor, floorN: floorName}}
		scs = append(scs, s)
		return s
	}
	add(mirrorctlVersionScenario, "≤ 2× minimal Go", command{argv: []string{o.mirrorctl, "version"}}, minimal, "minimal Go binary")
	if o.libraries != "" {
		add(librariesScenario+" sync's libraries (cobra, yaml.v3, go-toml, go-systemd D-Bus, net/http, crypto/tls)", "",
			command{argv: []string{o.libraries, "version"}}, minimal, "minimal Go binary")
	}
	for _, w := range o.librariesWith {
		add(withScenario(w.name), "", command{argv: []string{w.path, "version"}}, minimal, "minimal Go binary")
	}
	for _, nd := range all {
		target := ""
		switch {
		case nd == c2node:
		case nd.registry == 20:
			target = "≤ 3× minimal Go, ≤ 20 MiB"
		case nd.registry == 1000:
			target = "≤ 10× the 20-registry no-op"
		}
		add("no-op `sync`, "+nd.name, target, command{argv: mc(nd, nd.live, "sync")}, minimal, "minimal Go binary")
	}
	// The replay floors: what the no-op read, checked by attributes and by
	// content, without planning. The records are written just before the
	// measurements, when nothing else will change the roots' files.
	var records []func() error
	if o.replay != "" {
		for _, nd := range nodes {
			files, dirs, err := straceInputs(command{argv: mc(nd, nd.live, "sync"), prep: touchSpec(nd.spec)}, o.work, nd.live, filepath.Dir(nd.spec))
			if err != nil {
				return err
			}
			rec := filepath.Join(o.work, "replay-"+filepath.Base(filepath.Dir(nd.live)))
			records = append(records, func() error { return writeRecord(rec, files, dirs) })
			read := fmt.Sprintf("%d files read and %d directories listed by the no-op", len(files), len(dirs))
			for _, by := range []string{"stat", "content"} {
				s := add(replayScenario(by, nd.name), "", command{argv: []string{o.replay, by, rec}}, minimal, "minimal Go binary")
				s.files, s.untraced = read, true
			}
			if o.libraries != "" {
				// A bound for a split design: the libraries floor's
				// start (below any sync-only binary's), then the check
				// by attributes.
				s := add(splitScenario(nd.name), "",
					command{argv: []string{o.libraries, "replay", "stat", rec}}, minimal, "minimal Go binary")
				s.files, s.untraced = read, true
			}
		}
	}
	// The same no-ops planning, as before the record: the spec's change
	// time moved, its content kept. They come after the no-ops above,
	// whose records they leave stale.
	for _, nd := range all {
		add(planningScenario(nd.name), "", command{argv: mc(nd, nd.live, "sync"), prep: touchSpec(nd.spec)}, minimal, "minimal Go binary")
	}
	for _, nd := range nodes {
		add("`plan` (nothing to change), "+nd.name, "", command{argv: mc(nd, nd.live, "plan")}, minimal, "minimal Go binary")
	}
	for _, nd := range all {
		target := ""
		if nd != c2node && (nd.registry == 20 || nd.registry == 1000) {
			target = "≤ 1.5× durable writer"
		}
		s := add("changed `sync` (first sync of a fresh copy), "+nd.name, target,
			command{argv: mc(nd, nd.fresh, "sync"), prep: func() error { return nd.reset(nd.fresh, true) }},
			command{argv: []string{o.durable, nd.manifest, nd.floor}, prep: func() error { return nd.reset(nd.floor, false) }},
			"durable writer, same files")
		s.files = fmt.Sprintf("%d files and directories, %d KiB", nd.changedN, nd.changedKB)
	}
	cold := nodes[0]
	coldVersions := filepath.Join(cold.live, versionsFile)
	add("`sync`, files unchanged, version cache removed (engines asked), "+cold.name, "",
		command{argv: mc(cold, cold.live, "sync"), prep: func() error {
			err := os.Remove(coldVersions)
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}}, minimal, "minimal Go binary")

	var noops [][]string
	for _, nd := range all {
		noops = append(noops, mc(nd, nd.live, "sync"))
	}
	progress("keeping the no-op records")
	if err := keepRecords(noops); err != nil {
		return err
	}
	// strace: programs started, writes, syncs, renames.
	for _, s := range scs {
		if s.untraced {
			continue
		}
		progress("strace: %s", s.name)
		if s.counts, err = straceRun(s.pair.thing, o.work); err != nil {
			return err
		}
	}
	floorCounts := map[string]counts{}
	for _, nd := range all {
		c, err := straceRun(command{argv: []string{o.durable, nd.manifest, nd.floor}, prep: func() error { return nd.reset(nd.floor, false) }}, o.work)
		if err != nil {
			return err
		}
		floorCounts[nd.name] = c
	}

	for _, record := range records {
		if err := record(); err != nil {
			return err
		}
	}
	// The planning no-ops traced above left the records stale.
	progress("keeping the no-op records again")
	if err := keepRecords(noops); err != nil {
		return err
	}
	// The measurements, each interleaved with its floor.
	for _, s := range scs {
		progress("measuring (%d+%d runs each): %s", o.warmup, o.runs, s.name)
		load = append(load, loadavg())
		if s.result, err = rn.measure(s.pair, o.warmup, o.runs, o.minRuns, o.budget); err != nil {
			return err
		}
		if s.counts.exec > 0 {
			// Programs started: the tree is more than one process.
			if s.treeRSS, err = rn.treeRuns(s.pair.thing, len(s.result.thing)); err != nil {
				return err
			}
		}
	}
	progress("inittrace")
	mInit, err := traceInits([]string{o.mirrorctl, "version"}, o.runs)
	if err != nil {
		return err
	}
	fInit, err := traceInits([]string{o.minimal}, o.runs)
	if err != nil {
		return err
	}
	load = append(load, loadavg())

	rep := report{o: o, started: started, took: time.Since(started), load: load, notes: notes,
		scenarios: scs, nodes: all, floorCounts: floorCounts, mInit: mInit, fInit: fInit}
	var b strings.Builder
	rep.write(&b)
	fmt.Print(b.String())
	return os.WriteFile(o.report, []byte(b.String()), 0o644)
}

// versionOf asks a binary its version, for the report (not measured).
func versionOf(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "(version unknown)"
	}
	for _, f := range strings.Fields(string(out)) {
		f = strings.TrimSuffix(strings.TrimPrefix(f, "v"), ",")
		if len(f) > 0 && f[0] >= '0' && f[0] <= '9' && strings.Contains(f, ".") {
			return f
		}
	}
	return fmt.Sprintf("%q", strings.TrimSpace(string(out)))
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// writeRecord writes the replay floor's record of files and dirs as they
// are now.
func writeRecord(path string, files, dirs []string) error {
	b, err := replay.Record(files, dirs)
	if err != nil {
		return fmt.Errorf("recording what the no-op read: %w", err)
	}
	return os.WriteFile(path, b, 0o600)
}

// replayScenario and splitScenario name the replay floors' rows, which the
// report finds by these names.
func replayScenario(by, node string) string { return "replay floor by " + by + ", " + node }

// planningScenario names the row of a no-op sync that plans.
func planningScenario(node string) string {
	return "no-op `sync` planning (the spec's change time moved, so the no-op record does not apply), " + node
}

func splitScenario(node string) string {
	return "libraries floor checking the record by stat (`replay stat`; a bound for a sync-only binary), " + node
}
