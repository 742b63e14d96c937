package watch

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/state"
)

func testContext() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// Min quiescence coalesces a burst; Max bounds how long a burst that never
// stops can delay the action.
// The debouncer's decision, on a clock of its own: an endless burst fires
// at Max after its first event, a lone event Min after it.
func TestDebouncerMinMax(t *testing.T) {
	d := newDebouncer(Quiescence{Min: 30 * time.Millisecond, Max: 100 * time.Millisecond})
	defer d.stop()
	t0 := time.Unix(1000, 0)
	for i := range 50 { // an event every 5ms, for 250ms
		now := t0.Add(time.Duration(i) * 5 * time.Millisecond)
		d.event(now)
		want := now.Add(30 * time.Millisecond)
		if limit := t0.Add(100 * time.Millisecond); want.After(limit) {
			want = limit
		}
		if !d.due.Equal(want) {
			t.Fatalf("event %d: due at +%v, want +%v", i, d.due.Sub(t0), want.Sub(t0))
		}
	}
	if got := d.due.Sub(t0); got != 100*time.Millisecond {
		t.Errorf("an endless burst is due at +%v, want Max (100ms)", got)
	}
	d.done()
	t1 := t0.Add(time.Second)
	d.event(t1)
	if got := d.due.Sub(t1); got != 30*time.Millisecond {
		t.Errorf("a lone event is due after %v, want Min (30ms)", got)
	}
	// And the timer really fires (no assertion on when).
	<-d.C()
}

func TestLastGoodRoundTripAndTornSet(t *testing.T) {
	root := t.TempDir()
	hr, err := hostfs.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer hr.Close()
	lg := OpenLastGood(hr)
	dir := hr.Join(lg.Dir)
	if s, err := lg.Load(); s != nil || err != nil {
		t.Fatalf("empty: %v, %v", s, err)
	}
	in := &Saved{Name: "https://c.example.com/m.yaml", Generation: 3, Data: []byte("mirrors: {}\n"), Sig: []byte("SIG")}
	if err := lg.Save(in); err != nil {
		t.Fatal(err)
	}
	out, err := lg.Load()
	if err != nil || out.Name != in.Name || out.Generation != 3 || string(out.Data) != string(in.Data) || string(out.Sig) != "SIG" {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	for _, name := range []string{"config.yaml", "meta.json"} {
		fi, _ := os.Stat(filepath.Join(dir, name))
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	// An unsigned config replaces a signed one: no stale signature left.
	if err := lg.Save(&Saved{Name: "x", Generation: 4, Data: []byte("a: 1\n")}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.yaml.sig")); !os.IsNotExist(err) {
		t.Errorf("stale signature: %v", err)
	}
	// A crash between the config and meta.json: detected, not used.
	os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("half"), 0o600)
	if s, err := lg.Load(); err == nil || s != nil {
		t.Errorf("torn set loaded: %+v", s)
	}
}

// The fight counter forgets fights older than the window.
func TestDriftFightWindow(t *testing.T) {
	d := NewDrift(2, time.Minute)
	t0 := time.Now()
	if !d.fight("/f", t0) || !d.fight("/f", t0.Add(time.Second)) {
		t.Fatal("first two fights refused")
	}
	if d.fight("/f", t0.Add(2*time.Second)) {
		t.Fatal("third fight within the window allowed")
	}
	if !d.fight("/f", t0.Add(61*time.Second)) {
		t.Fatal("a fight after the window refused")
	}
	if !d.fight("/g", t0) {
		t.Fatal("fights are per file")
	}
}

// drifted: only files mirrorctl wrote and someone changed or removed.
func TestDrifted(t *testing.T) {
	st := state.New()
	st.Files["/ours"] = state.Entry{Engine: "e", SHA256: sha([]byte("written"))}
	for _, tc := range []struct {
		name string
		c    render.Change
		want bool
	}{
		{"edited", render.Change{File: render.File{Path: "/ours", Data: []byte("written")}, Op: render.Update, Old: []byte("edited")}, true},
		{"deleted", render.Change{File: render.File{Path: "/ours", Data: []byte("written")}, Op: render.Create}, true},
		{"new_spec", render.Change{File: render.File{Path: "/ours", Data: []byte("new")}, Op: render.Update, Old: []byte("written")}, false},
		{"unchanged", render.Change{File: render.File{Path: "/ours", Data: []byte("written")}, Op: render.Keep, Old: []byte("written")}, false},
		{"not_ours", render.Change{File: render.File{Path: "/theirs", Data: []byte("x")}, Op: render.Update, Old: []byte("y")}, false},
	} {
		if got := drifted(tc.c, st); got != tc.want {
			t.Errorf("%s: drifted %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStatusLine(t *testing.T) {
	l, _ := New(Config{Source: NewFileSource("/x", nil, fastQ), Node: &Node{}, LastGood: &LastGood{}, NodeDir: "/"})
	l.good = &Saved{Generation: 4}
	l.setStatus(&Report{Time: time.Now(), Source: "https://c/m.yaml", Stage: "spec", Err: errString("m.yaml:3:5: unknown key\nm.yaml:9:1: other")})
	l.srcErr = errString("GET https://c/m.yaml: 500")
	got := l.statusLine()
	for _, want := range []string{"refused https://c/m.yaml", "m.yaml:3:5: unknown key (and more)", "staying on generation 4", "source: GET"} {
		if !strings.Contains(got, want) {
			t.Errorf("status %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "\n") {
		t.Errorf("status has a newline: %q", got)
	}
	l.setStatus(&Report{Time: time.Now(), Stage: "spec", Err: errString(strings.Repeat("x", 1000))})
	if n := len(l.statusLine()); n > maxStatus {
		t.Errorf("status of %d bytes", n)
	}
	if got := l.drift.GivenUp(); !slices.Equal(got, nil) {
		t.Errorf("given up %q", got)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
