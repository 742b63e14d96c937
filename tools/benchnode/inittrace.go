package main

import (
	"bufio"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// An initStat is one package's init across runs of GODEBUG=inittrace=1.
type initStat struct {
	pkg    string
	clocks []time.Duration
	bytes  int64
}

// initTrace is a program's package initialisation, median over runs.
type initTrace struct {
	pkgs  []initStat // by median clock, largest first
	total []time.Duration
	// done is when the last init finished (its @ plus its clock), from the
	// runtime's start: how long until main runs.
	done []time.Duration
}

var initRE = regexp.MustCompile(`^init (\S+) @([0-9.]+) ms, ([0-9.]+) ms clock, (\d+) bytes`)

// parseInitTrace reads one run's inittrace lines: per package clock, the
// sum, and when the last one ended.
func parseInitTrace(r io.Reader) (map[string]time.Duration, map[string]int64, time.Duration, time.Duration) {
	clocks, bytes := map[string]time.Duration{}, map[string]int64{}
	var total, done time.Duration
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := initRE.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		at, _ := strconv.ParseFloat(m[2], 64)
		clock, _ := strconv.ParseFloat(m[3], 64)
		b, _ := strconv.ParseInt(m[4], 10, 64)
		d := time.Duration(clock * float64(time.Millisecond))
		clocks[m[1]] += d
		bytes[m[1]] += b
		total += d
		done = max(done, time.Duration((at+clock)*float64(time.Millisecond)))
	}
	return clocks, bytes, total, done
}

// traceInits runs bin args with GODEBUG=inittrace=1 runs times.
func traceInits(argv []string, runs int) (initTrace, error) {
	var it initTrace
	byPkg := map[string]*initStat{}
	for i := 0; i < runs; i++ {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(append([]string(nil), baseEnv...), "GODEBUG=inittrace=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return it, err
		}
		clocks, bytes, total, done := parseInitTrace(strings.NewReader(string(out)))
		it.total, it.done = append(it.total, total), append(it.done, done)
		for p, d := range clocks {
			s := byPkg[p]
			if s == nil {
				s = &initStat{pkg: p, bytes: bytes[p]}
				byPkg[p] = s
			}
			s.clocks = append(s.clocks, d)
		}
	}
	for _, s := range byPkg {
		for len(s.clocks) < runs {
			s.clocks = append(s.clocks, 0)
		}
		it.pkgs = append(it.pkgs, *s)
	}
	slices.SortFunc(it.pkgs, func(a, b initStat) int {
		if c := median(b.clocks) - median(a.clocks); c != 0 {
			return int(c)
		}
		return strings.Compare(a.pkg, b.pkg)
	})
	return it, nil
}
