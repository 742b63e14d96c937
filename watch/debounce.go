package watch

import (
	"context"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Quiescence is how bursts of events are coalesced, as consul-template's
// `wait` does: act once nothing has happened for Min, but never later than
// Max after the first event of the burst, so a file rewritten forever still
// gets applied.
type Quiescence struct {
	Min, Max time.Duration
}

// debouncer turns events into one fire per burst. It is not safe for
// concurrent use; each owner goroutine has its own.
type debouncer struct {
	q     Quiescence
	first time.Time
	due   time.Time // when the current burst fires
	timer *time.Timer
}

func newDebouncer(q Quiescence) *debouncer {
	if q.Min <= 0 {
		q.Min = time.Millisecond
	}
	if q.Max < q.Min {
		q.Max = q.Min
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &debouncer{q: q, timer: t}
}

// event notes one event at now and (re)arms the timer.
func (d *debouncer) event(now time.Time) {
	if d.first.IsZero() {
		d.first = now
	}
	d.due = now.Add(d.q.Min)
	if limit := d.first.Add(d.q.Max); d.due.After(limit) {
		d.due = limit
	}
	d.timer.Reset(d.due.Sub(now))
}

// C fires once a burst is over; call done when it does.
func (d *debouncer) C() <-chan time.Time { return d.timer.C }

func (d *debouncer) done() { d.first = time.Time{} }

func (d *debouncer) stop() { d.timer.Stop() }

// dirWatcher watches a set of directories with one fsnotify watcher and
// reports, debounced, that something matching happened in them. Watching
// directories rather than files is what survives editors that rename over a
// file, deletion and re-creation, and ConfigMap volumes whose `..data`
// symlink is swapped (the file's own inode never changes there).
//
// A directory that does not exist yet is retried at the next set call.
type dirWatcher struct {
	w *fsnotify.Watcher
	// match decides whether an event's path matters; nil means every event.
	match func(name string) bool

	mu      sync.Mutex
	want    map[string]bool // directories asked for
	watched map[string]bool // directories fsnotify holds
}

func newDirWatcher(match func(string) bool) (*dirWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return &dirWatcher{w: w, match: match, want: map[string]bool{}, watched: map[string]bool{}}, nil
}

// set makes dirs the watched set. It returns how many of them could not be
// watched (missing directories, usually).
func (d *dirWatcher) set(dirs []string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	want := map[string]bool{}
	for _, dir := range dirs {
		want[filepath.Clean(dir)] = true
	}
	for dir := range d.watched {
		if !want[dir] {
			d.w.Remove(dir) // may be gone already; fsnotify dropped it then
			delete(d.watched, dir)
		}
	}
	missing := 0
	for dir := range want {
		if d.watched[dir] {
			continue
		}
		if err := d.w.Add(dir); err != nil {
			missing++
			continue
		}
		d.watched[dir] = true
	}
	d.want = want
	return missing
}

// lost forgets a directory fsnotify no longer watches (it was removed or
// renamed), so the next set adds it again.
func (d *dirWatcher) lost(dir string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.watched[dir] {
		d.w.Remove(dir)
		delete(d.watched, dir)
	}
}

// run sends on fire (buffered, never blocking) once a burst of matching
// events is over, until ctx ends. It owns the fsnotify watcher and closes it.
func (d *dirWatcher) run(ctx context.Context, q Quiescence, fire chan<- struct{}) {
	defer d.w.Close()
	deb := newDebouncer(q)
	defer deb.stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-d.w.Events:
			if !ok {
				return
			}
			if d.isWatchedDir(ev.Name) && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				d.lost(ev.Name)
			} else if d.match != nil && !d.match(ev.Name) {
				continue
			}
			deb.event(time.Now())
		case _, ok := <-d.w.Errors:
			if !ok {
				return
			}
			// An overflowed queue lost events: treat it as a change.
			deb.event(time.Now())
		case <-deb.C():
			deb.done()
			select {
			case fire <- struct{}{}:
			default:
			}
		}
	}
}

func (d *dirWatcher) isWatchedDir(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.watched[filepath.Clean(name)]
}

// missing reports whether some wanted directory is not watched.
func (d *dirWatcher) missing() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.watched) < len(d.want)
}

// wanted returns the directories asked for.
func (d *dirWatcher) wanted() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.want))
	for dir := range d.want {
		out = append(out, dir)
	}
	return out
}
