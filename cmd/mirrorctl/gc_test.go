package main

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
)

// A command that exits when done raises the collector's GOGC before it
// runs; watch, which runs for days, keeps the default.
func TestOneShotCommandsCollectLess(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []int
	}{
		{[]string{"version"}, []int{oneShotGCPercent}},
		// An invalid --output fails right after the collector is set.
		{[]string{"sync", "--output", "xml"}, []int{oneShotGCPercent}},
		{[]string{"plan", "--output", "xml"}, []int{oneShotGCPercent}},
		{[]string{"watch", "--output", "xml"}, nil},
	} {
		var got []int
		g := &globalFlags{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
			setGCPercent: func(p int) int { got = append(got, p); return 100 }}
		runWith(context.Background(), g, tc.args)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%v set GOGC %v, want %v", tc.args, got, tc.want)
		}
	}
	if oneShotGCPercent <= 100 {
		t.Errorf("oneShotGCPercent %d collects no less than the default", oneShotGCPercent)
	}
}

// GOGC in the environment is the operator's choice: nothing overrides it.
func TestGOGCInTheEnvironmentWins(t *testing.T) {
	set := func(v string) func(string) (string, bool) {
		return func(k string) (string, bool) { return v, k == "GOGC" && v != "" }
	}
	if gcPercentSetter(set("50")) != nil {
		t.Error("GOGC=50 in the environment, yet mirrorctl would set its own")
	}
	if gcPercentSetter(set("")) == nil {
		t.Error("no GOGC in the environment, yet mirrorctl would leave the collector at its default")
	}
}
