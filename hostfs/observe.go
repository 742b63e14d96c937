package hostfs

import (
	"fmt"
	"io/fs"
	"path"
	"sync"

	"golang.org/x/sys/unix"
)

// This file lets a caller learn later whether anything a run read has
// changed since, without reading it again: a Log given to a Root collects
// the attributes of every directory, link and file its resolutions and
// reads met, and Unchanged compares them with what is there now.
//
// What makes that sound on Linux: a file's content, a directory's entries,
// a link's target, an owner or a mode cannot change without the inode's
// change time (ctime) moving on, and no user but root can set a ctime
// (only the clock does); a replaced file or a mount is another device or
// inode. A name that was missing is covered by its directory, whose ctime
// moves when an entry is added. Two changes within one tick of the
// filesystem's clock can leave the same ctime, which is why a Log's
// caller keeps only what had not changed for a while before the run began
// (the racy-clean rule; see Observed.ChangedSince).

// Attrs are what a look at one path found: enough to tell that anything
// about it changed.
type Attrs struct {
	Dev, Ino       uint64
	Mode, Uid, Gid uint32
	Size           int64
	// Mtime and Ctime are nanoseconds since the epoch.
	Mtime, Ctime int64
}

func attrsOf(st *unix.Stat_t) Attrs {
	return Attrs{Dev: st.Dev, Ino: st.Ino, Mode: st.Mode, Uid: st.Uid, Gid: st.Gid, Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}
}

// Observed is one path a Root looked at, as the root's own host path
// (links resolved), with what it found.
type Observed struct {
	Path  string
	Attrs Attrs
	// Whole says that every attribute counts: for files and links, for a
	// directory that was listed or in which a name was missing, and for
	// anything looked at with a user's rights (the kernel then judges by
	// ACLs too, which only the change time shows). A directory only passed
	// through counts by what the resolution used: which inode it is, its
	// type, owner and mode. Its times move whenever any entry in it comes
	// or goes (every file made in /tmp), which says nothing about the
	// entry the resolution took: that entry is observed itself.
	Whole bool
}

// same reports whether b is what o observed, by the attributes o counts.
func (o Observed) same(b Attrs) bool {
	if o.Whole {
		return o.Attrs == b
	}
	a := o.Attrs
	return a.Dev == b.Dev && a.Ino == b.Ino && a.Mode == b.Mode && a.Uid == b.Uid && a.Gid == b.Gid
}

// A Log collects what the Roots given to it look at, until Stop. It is
// safe for concurrent use.
type Log struct {
	mu      sync.Mutex
	stopped bool
	seen    map[logKey]Observed
	// moved is the first path seen twice with different attributes: it
	// changed while the run read it.
	moved string
}

type logKey struct{ root, path string }

// NewLog returns an empty Log.
func NewLog() *Log { return &Log{seen: map[logKey]Observed{}} }

// LogTo makes r, and every view made from it from now on, note what it
// looks at in l, starting with the root directory itself.
func (r *Root) LogTo(l *Log) error {
	r.log = l
	var st unix.Stat_t
	if err := unix.Fstat(r.fd, &st); err != nil {
		return &fs.PathError{Op: "stat root", Path: r.dir, Err: err}
	}
	r.saw("/", &st, false)
	return nil
}

// saw notes, when r logs, that the host path real had st; whole as
// Observed.Whole says (files and links always count whole).
func (r *Root) saw(real string, st *unix.Stat_t, whole bool) {
	if r.log != nil {
		r.log.add(r.dir, Observed{Path: real, Attrs: attrsOf(st), Whole: whole || st.Mode&unix.S_IFMT != unix.S_IFDIR})
	}
}

// sawDir notes the directory open at fd, whole (listed, or a name in it
// missing).
func (r *Root) sawDir(real string, fd int) error {
	if r.log == nil {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	r.saw(real, &st, true)
	return nil
}

func (l *Log) add(root string, o Observed) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	k := logKey{root, path.Clean(o.Path)}
	prev, ok := l.seen[k]
	switch {
	case !ok:
		l.seen[k] = o
	case !prev.same(o.Attrs):
		if l.moved == "" {
			l.moved = path.Join(root, k.path)
		}
	case o.Whole && !prev.Whole:
		l.seen[k] = o // now every attribute counts, as this look found them
	}
}

// Stop ends the log and returns what was seen, by root directory. It
// fails, naming the path, when something was seen to change during the
// run: a record of it would describe neither the old nor the new state.
func (l *Log) Stop() (map[string][]Observed, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	if l.moved != "" {
		return nil, fmt.Errorf("%s changed while it was read", l.moved)
	}
	out := map[string][]Observed{}
	for k, o := range l.seen {
		o.Path = k.path
		out[k.root] = append(out[k.root], o)
	}
	return out, nil
}

// ChangedSince reports whether o counts its times and its inode changed at
// or after t (in nanoseconds since the epoch): then a later change could
// leave the same change time, and o cannot vouch for what was read.
func (o Observed) ChangedSince(t int64) bool { return o.Whole && o.Attrs.Ctime >= t }

// Unchanged reports whether every path in seen still has the attributes it
// had, and otherwise names the first that does not (or is gone). It only
// looks (fstatat without following the last link); it never opens what it
// finds. Each directory on the way to a path is in seen too, so a
// directory swapped for a link on the way is found by its own entry.
func (r *Root) Unchanged(seen []Observed) (changed string, ok bool) {
	for _, o := range seen {
		name := o.Path[1:]
		if name == "" {
			name = "."
		}
		var st unix.Stat_t
		if err := unix.Fstatat(r.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || !o.same(attrsOf(&st)) {
			return o.Path, false
		}
	}
	return "", true
}
