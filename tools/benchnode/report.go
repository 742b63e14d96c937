package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

type report struct {
	o           options
	started     time.Time
	took        time.Duration
	load        []string
	notes       []string
	scenarios   []*scenario
	nodes       []*node
	floorCounts map[string]counts
	mInit       initTrace
	fInit       initTrace
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.1f ms", float64(d)/1e6)
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// ratio is the median of the pairwise ratios thing/floor: each thing run
// against the floor run next to it, so that load that comes and goes
// cancels out.
func ratio(r pairResult) float64 {
	var rs []int64
	for i := range r.thing {
		if r.floor[i].wall > 0 {
			rs = append(rs, int64(float64(r.thing[i].wall)/float64(r.floor[i].wall)*1e6))
		}
	}
	return float64(median(rs)) / 1e6
}

// peak is the scenario's peak RSS for the whole process tree, and how it
// was had.
func (s *scenario) peak() (int64, string) {
	if len(s.treeRSS) > 0 {
		return median(s.treeRSS), "tree, sampled"
	}
	return median(rsses(s.result.thing)), "one process"
}

func (r *report) write(w *strings.Builder) {
	host, _ := os.Hostname()
	kernel, _ := exec.Command("uname", "-r").Output()
	ver, _ := exec.Command(r.o.mirrorctl, "version").Output()
	fmt.Fprintf(w, "## bench-node: %s\n\n", strings.TrimSpace(string(ver)))
	fmt.Fprintf(w, "%s on %s: %d CPUs, Linux %s; took %s.\n", r.started.UTC().Format(time.RFC3339), host, runtime.NumCPU(), strings.TrimSpace(string(kernel)), r.took.Round(time.Second))
	fmt.Fprintf(w, "Load average (1, 5, 15 min) at the start, before each measurement and at the end: %s.\n", strings.Join(r.load, "; "))
	runs := fmt.Sprintf("%d", r.o.runs)
	if r.o.budget > 0 {
		runs = fmt.Sprintf("%d, or fewer, never under %d, where a measurement passed its %s budget", r.o.runs, r.o.minRuns, r.o.budget)
	}
	fmt.Fprintf(w, "Medians of n runs (%s) after %d warm-up runs; every run interleaved with a run of its floor; ratio = median of the n pairwise ratios.\n\n", runs, r.o.warmup)
	for _, n := range r.notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	w.WriteString("\n| measurement | n | wall | CPU | peak RSS | floor: wall, CPU, RSS | ratio | target | exec | writes | syncs | renames | other changes |\n")
	w.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range r.scenarios {
		pk, how := s.peak()
		fr := s.result.floor
		name := s.name
		if s.files != "" {
			name += " (" + s.files + ")"
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s (%s) | %s: %s, %s, %s | %.2f× | %s | %d | %d | %d | %d | %d |\n",
			name, len(s.result.thing), ms(median(walls(s.result.thing))), ms(median(cpus(s.result.thing))), mib(pk), how,
			s.pair.floorN, ms(median(walls(fr))), ms(median(cpus(fr))), mib(median(rsses(fr))),
			ratio(s.result), orDash(s.target), s.counts.exec, s.counts.writes, s.counts.syncs, s.counts.renames, s.counts.other)
	}
	w.WriteString("\nThe durable writer, under strace (same files, one at a time):\n\n")
	for _, nd := range r.nodes {
		c := r.floorCounts[nd.name]
		fmt.Fprintf(w, "- %s: %d writes, %d syncs, %d renames, %d other changes\n", nd.name, c.writes, c.syncs, c.renames, c.other)
	}
	for _, s := range r.scenarios {
		if strings.HasPrefix(s.name, "no-op") && (s.counts.exec > 0 || s.counts.writes > 0) {
			fmt.Fprintf(w, "\n%s is not a no-op: programs %v, files written %v\n", s.name, s.counts.execs, s.counts.written)
		}
	}

	w.WriteString("\n### Targets\n\n")
	for _, t := range r.targets() {
		w.WriteString("- " + t + "\n")
	}

	if line := r.startCosts(); line != "" {
		w.WriteString("\n### Start: what each group of packages adds\n\n" + line + "\n")
	}

	if lines := r.replayBounds(); len(lines) > 0 {
		w.WriteString("\n### What a no-op that does not plan could reach (the replay floors)\n\n")
		for _, l := range lines {
			w.WriteString("- " + l + "\n")
		}
	}

	w.WriteString("\n### Package initialisation (`GODEBUG=inittrace=1`)\n\n")
	fmt.Fprintf(w, "`mirrorctl version`: the inits add up to %s (median); the last ends %s after the runtime starts. The minimal Go binary: %s, %s.\n\n",
		ms(median(r.mInit.total)), ms(median(r.mInit.done)), ms(median(r.fInit.total)), ms(median(r.fInit.done)))
	w.WriteString("| package | init clock (median) | allocated |\n| --- | --- | --- |\n")
	for i, p := range r.mInit.pkgs {
		if i == 12 {
			break
		}
		fmt.Fprintf(w, "| %s | %.2f ms | %d KiB |\n", p.pkg, float64(median(p.clocks))/1e6, p.bytes>>10)
	}
	w.WriteString(`
Every program is started through a small launcher (bench-spawn) that times it from fork to
wait4 and takes its rusage: wall is the whole process; CPU is user + system (the process and
the children it waited for). Peak RSS: "one process" is wait4's ru_maxrss, exact when strace
saw the command start no program (exec = 0): the launcher exists because ru_maxrss also counts
the process the program was exec'd from, which for a Go parent forking with CLONE_VM is the
parent's whole RSS (so a floor of about 1-2 MiB, the launcher's own size, applies to every
figure). When the command starts programs, the tree is sampled every millisecond from /proc:
each process's VmHWM, summed over the processes alive together; an upper bound, since their
peaks need not coincide. exec counts the programs the command started; writes are
write/pwrite/writev calls on files (not stdout, stderr, pipes or devices); syncs are fsync,
fdatasync, syncfs, sync and sync_file_range; other changes are unlink, mkdir, rmdir, truncate,
chmod, chown, link, symlink and utimensat.
`)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func (r *report) find(prefix string) *scenario {
	for _, s := range r.scenarios {
		if strings.HasPrefix(s.name, prefix) {
			return s
		}
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**NOT met**"
}

func (r *report) targets() []string {
	var out []string
	if s := r.find(mirrorctlVersionScenario); s != nil {
		x := ratio(s.result)
		out = append(out, fmt.Sprintf("%s `mirrorctl version` ≤ 2× the minimal Go binary: %.2f×", verdict(x <= 2), x))
	}
	noop20 := r.find("no-op `sync`, 20 registries")
	if noop20 != nil {
		x := ratio(noop20.result)
		pk, how := noop20.peak()
		out = append(out, fmt.Sprintf("%s no-op sync, 20 registries, ≤ 3× the minimal Go binary: %.2f×", verdict(x <= 3), x))
		out = append(out, fmt.Sprintf("%s no-op sync, 20 registries, ≤ 20 MiB peak RSS for the whole tree: %s (%s)", verdict(pk <= 20<<10), mib(pk), how))
		ok := noop20.counts.exec == 0 && noop20.counts.writes == 0 && noop20.counts.syncs == 0 && noop20.counts.renames == 0 && noop20.counts.other == 0
		out = append(out, fmt.Sprintf("%s no-op sync runs no program and writes nothing: exec %d, writes %d, syncs %d, renames %d, other changes %d",
			verdict(ok), noop20.counts.exec, noop20.counts.writes, noop20.counts.syncs, noop20.counts.renames, noop20.counts.other))
	}
	if noop1000 := r.find("no-op `sync`, 1000 registries"); noop1000 != nil && noop20 != nil {
		// Each normalised by the floor it was interleaved with.
		x := ratio(noop1000.result) / ratio(noop20.result)
		raw := float64(median(walls(noop1000.result.thing))) / float64(median(walls(noop20.result.thing)))
		out = append(out, fmt.Sprintf("%s no-op sync, 1,000 registries, ≤ 10× the 20-registry no-op: %.1f× (each against its own floor; %.1f× in raw medians)", verdict(x <= 10), x, raw))
	}
	if p20, p1000 := r.find(planningScenario("20 registries")), r.find(planningScenario("1000 registries")); p20 != nil && p1000 != nil && noop20 != nil {
		out = append(out, fmt.Sprintf("(the same no-ops planning, as before the no-op record: 20 registries %.2f×, 1,000 registries %.1f× the 20-registry one)",
			ratio(p20.result), ratio(p1000.result)/ratio(p20.result)))
	}
	for _, n := range []string{"20", "1000"} {
		if s := r.find("changed `sync` (first sync of a fresh copy), " + n + " registries"); s != nil {
			x := ratio(s.result)
			out = append(out, fmt.Sprintf("%s changed sync, %s registries, ≤ 1.5× the durable writer: %.2f×", verdict(x <= 1.5), n, x))
		}
	}
	return out
}

// startCosts says what each group of mirrorctl's packages adds to the
// libraries floor's start, in units of the minimal binary: the rows of the
// floor built with that group (withScenario), in the order measured.
func (r *report) startCosts() string {
	libs := r.find(librariesScenario)
	if libs == nil {
		return ""
	}
	base := ratio(libs.result)
	var parts []string
	for _, s := range r.scenarios {
		group, ok := strings.CutPrefix(s.name, withScenario(""))
		if !ok {
			continue
		}
		x := ratio(s.result)
		parts = append(parts, fmt.Sprintf("%s %.2f× (%+.2f)", group, x, x-base))
	}
	if len(parts) == 0 {
		return ""
	}
	line := fmt.Sprintf("In units of the minimal binary's start, the libraries floor %.2f×; built with ", base) + strings.Join(parts, ", ")
	if m := r.find(mirrorctlVersionScenario); m != nil {
		line += fmt.Sprintf("; `mirrorctl version` %.2f×", ratio(m.result))
	}
	return line + "."
}

// replayBounds says what the replay floors mean for the no-op targets. A
// no-op that skips planning must still check everything the plan read, so
// a floor's time is a lower bound of such a no-op, less the start it adds
// to the minimal binary's. In units of the minimal binary, with the floor
// at a (20 registries) and b (1,000), a program whose start adds s takes
// a+s and b+s: the 3× target needs s ≤ 3-a, the 10× one s ≥ (b-10a)/9.
func (r *report) replayBounds() []string {
	var out []string
	starts := []struct{ name, prefix string }{
		{"mirrorctl's", mirrorctlVersionScenario},
		{"the libraries floor's", librariesScenario},
	}
	for _, by := range []string{"stat", "content"} {
		f20, f1000 := r.find(replayScenario(by, "20 registries")), r.find(replayScenario(by, "1000 registries"))
		if f20 == nil || f1000 == nil {
			continue
		}
		a, b := ratio(f20.result), ratio(f1000.result)
		lo, hi := max(0, (b-10*a)/9), 3-a
		line := fmt.Sprintf("by %s: 20 registries %.2f× the minimal Go binary, 1,000 registries %.1f× (%.1f× the 20-registry check). ", by, a, b, b/a)
		if lo <= hi {
			line += fmt.Sprintf("Both no-op targets hold for a program whose start adds s to the minimal binary's (in its units) with %.2f ≤ s ≤ %.2f", lo, hi)
		} else {
			line += fmt.Sprintf("No start meets both no-op targets: the 3× one needs s ≤ %.2f, the 10× one s ≥ %.2f", hi, lo)
		}
		for _, st := range starts {
			if s := r.find(st.prefix); s != nil {
				x := ratio(s.result) - 1
				line += fmt.Sprintf("; %s start: s = %.2f (%s)", st.name, x, inWindow(lo <= x && x <= hi))
			}
		}
		out = append(out, line)
	}
	split20, split1000 := r.find(splitScenario("20 registries")), r.find(splitScenario("1000 registries"))
	libs := r.find(starts[1].prefix)
	if split20 != nil && split1000 != nil && libs != nil {
		v, x20, x1000 := ratio(libs.result), ratio(split20.result), ratio(split1000.result)
		out = append(out, fmt.Sprintf("measured, a bound no split design reaches (the libraries floor checking the record by attributes; "+
			"the floor links only what its packages' inits reach, not the library code a sync calls): "+
			"`version` %.2f× (≤ 2×: %s), no-op 20 registries %.2f× (≤ 3×: %s), 1,000 registries %.1f×, %.1f× the 20-registry one (≤ 10×: %s)",
			v, verdict(v <= 2), x20, verdict(x20 <= 3), x1000, x1000/x20, verdict(x1000/x20 <= 10)))
	}
	return out
}

func inWindow(ok bool) string {
	if ok {
		return "inside"
	}
	return "**outside**"
}
