package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A command is one thing the bench runs: argv, and what must be done
// (untimed) before each run.
type command struct {
	argv []string
	prep func() error
}

// A sample is one run of a command.
type sample struct {
	wall time.Duration
	cpu  time.Duration // user + system of the process and the children it waited for
	// maxRSS is wait4's ru_maxrss: the peak RSS of the largest single
	// process of the tree (the process itself or a child it waited for).
	maxRSS int64 // KiB
	// treeRSS is the sampled peak of the tree's summed RSS (0: not sampled).
	treeRSS int64 // KiB
}

// env is the environment every measured process gets: the same for
// mirrorctl and the floors.
var baseEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C"}

// A runner starts every measured program through spawn (see
// spawn/main.go: why, and what it reports).
type runner struct{ spawn string }

// run runs c once with its output discarded and returns what it cost.
// With tree set it samples the process tree's memory while it runs.
func (rn runner) run(c command, tree bool) (sample, error) {
	if c.prep != nil {
		if err := c.prep(); err != nil {
			return sample{}, fmt.Errorf("preparing %s: %w", c.argv[0], err)
		}
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return sample{}, err
	}
	defer null.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return sample{}, err
	}
	defer pr.Close()
	cmd := exec.Command(rn.spawn, c.argv...)
	cmd.Env = baseEnv
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{pw}
	if err := cmd.Start(); err != nil {
		pw.Close()
		return sample{}, err
	}
	pw.Close()
	var sampler *treeSampler
	if tree {
		sampler = startTreeSampler(cmd.Process.Pid)
	}
	line, _ := io.ReadAll(pr)
	werr := cmd.Wait()
	var peak int64
	if sampler != nil {
		peak = sampler.stop()
	}
	var wall, cpu, rss int64
	var status int
	if _, err := fmt.Sscan(string(line), &wall, &cpu, &rss, &status); err != nil || werr != nil {
		return sample{}, fmt.Errorf("%s: no report from spawn (%v, %v)", strings.Join(c.argv, " "), werr, err)
	}
	s := sample{wall: time.Duration(wall), cpu: time.Duration(cpu), maxRSS: rss}
	if sampler != nil {
		s.treeRSS = max(peak, rss)
	}
	if status != 0 {
		return s, fmt.Errorf("%s: exit status %d%s", strings.Join(c.argv, " "), status, diagnose(c))
	}
	return s, nil
}

// diagnose runs a failed command again with its stderr kept, for the error.
func diagnose(c command) string {
	if c.prep != nil {
		if err := c.prep(); err != nil {
			return ""
		}
	}
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Env = baseEnv
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run()
	out := strings.TrimSpace(stderr.String())
	if len(out) > 2000 {
		out = out[len(out)-2000:]
	}
	return "\n" + out
}

// treeSampler adds up the memory of a process and its descendants every
// millisecond. Each process counts with its own high-water mark (VmHWM),
// so a peak between two samples is not missed; the sum over processes
// alive together is an upper bound of the tree's peak (their peaks may not
// coincide), exact for a tree of one process. A forked child that has not
// exec'd yet shares or copies its parent's pages: it is not counted.
type treeSampler struct {
	done chan struct{}
	peak chan int64
	top  int
}

func startTreeSampler(pid int) *treeSampler {
	t := &treeSampler{done: make(chan struct{}), peak: make(chan int64, 1), top: pid}
	go t.loop()
	return t
}

func (t *treeSampler) loop() {
	var peak int64
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if sum := treeHWM(t.top); sum > peak {
			peak = sum
		}
		select {
		case <-t.done:
			t.peak <- peak
			return
		case <-tick.C:
		}
	}
}

// stop ends sampling and returns the peak in KiB.
func (t *treeSampler) stop() int64 {
	close(t.done)
	return <-t.peak
}

// treeHWM sums VmHWM (KiB) over the descendants of top (spawn, which is
// not counted).
func treeHWM(top int) int64 {
	var sum int64
	type proc struct {
		pid int
		exe string
	}
	queue := []proc{{top, exeOf(top)}}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p.pid != top {
			sum += statusKiB(p.pid, "VmHWM:")
		}
		for _, child := range childrenOf(p.pid) {
			exe := exeOf(child)
			if exe == "" {
				continue // gone
			}
			if exe != p.exe {
				queue = append(queue, proc{child, exe})
				continue
			}
			// Not exec'd yet: its own children still count.
			for _, gc := range childrenOf(child) {
				queue = append(queue, proc{gc, exeOf(gc)})
			}
		}
	}
	return sum
}

func exeOf(pid int) string {
	s, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return s
}

// childrenOf lists pid's children, from every one of its threads.
func childrenOf(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []int
	for _, task := range tasks {
		b, err := os.ReadFile(dir + "/" + task.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

func statusKiB(pid int, key string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// median of durations or sizes.
func median[T int64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// A pair is a command measured against its floor, the two interleaved
// (thing, floor, thing, floor, …) so that both see the same machine.
type pair struct {
	name   string
	thing  command
	floor  command
	floorN string // the floor's name in the report
	tree   bool   // sample the process tree's memory
}

type pairResult struct {
	thing, floor []sample
}

// measure runs warmup pairs, then runs pairs. With a budget (> 0) it makes
// fewer when a pair is so slow (a thousand registries' files written and
// fsynced one way and the other) that the measurement would overrun it: then
// it warms up with one pair only, and stops at the first pair past the
// budget, but never before minRuns. Without one, every measurement makes
// all its runs.
func (rn runner) measure(p pair, warmup, runs, minRuns int, budget time.Duration) (pairResult, error) {
	var r pairResult
	start := time.Now()
	for i := 0; i < warmup+runs; i++ {
		if budget > 0 && i > 0 && i < warmup && time.Since(start)*time.Duration(warmup+runs) > budget*time.Duration(i) {
			i = warmup - 1 // one warm-up pair is all this one gets
			continue
		}
		if budget > 0 && i > warmup && len(r.thing) >= minRuns && time.Since(start) > budget {
			break
		}
		a, err := rn.run(p.thing, false)
		if err != nil {
			return r, err
		}
		b, err := rn.run(p.floor, false)
		if err != nil {
			return r, err
		}
		if i >= warmup {
			r.thing, r.floor = append(r.thing, a), append(r.floor, b)
		}
	}
	return r, nil
}

// treeRuns samples the process tree of c's runs.
func (rn runner) treeRuns(c command, runs int) ([]int64, error) {
	var out []int64
	for i := 0; i < runs; i++ {
		s, err := rn.run(c, true)
		if err != nil {
			return nil, err
		}
		out = append(out, s.treeRSS)
	}
	return out, nil
}

func walls(s []sample) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, x := range s {
		out[i] = x.wall
	}
	return out
}

func cpus(s []sample) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, x := range s {
		out[i] = x.cpu
	}
	return out
}

func rsses(s []sample) []int64 {
	out := make([]int64, len(s))
	for i, x := range s {
		out[i] = x.maxRSS
	}
	return out
}
