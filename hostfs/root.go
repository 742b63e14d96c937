package hostfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Errors a caller may branch on; each is wrapped in an *fs.PathError that
// names the path.
var (
	// ErrNotRegular: content was asked of something that is not a regular
	// file (a FIFO, a device, a socket, a directory).
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: a file is larger than the bound its reader set.
	ErrTooLarge = errors.New("larger than mirrorctl reads")
	// ErrUnsafe: the path passes through a directory that users other than
	// root may change but that no single user owns.
	ErrUnsafe = errors.New("users other than root may change this location")
)

// maxSymlinks bounds the links followed in one resolution (Linux's own
// limit for a path walk is 40).
const maxSymlinks = 40

// A Root is the host's filesystem under one directory: --root, or "/" for
// mirrorctl's own files (its spec and the secrets it names).
type Root struct {
	dir string // absolute, as given
	fd  int    // O_PATH of dir, for the life of the Root
	// privileged is set when running as root: only then does the ownership
	// policy apply (an unprivileged process cannot exceed its own rights).
	privileged bool
	uid        int // the effective uid
	// cache, in a view made by WithDirCache, keeps trusted directories open.
	cache *dirCache
	// log, when set (LogTo), notes everything the root looks at.
	log *Log
}

// Open opens dir as a Root. Close releases it.
func Open(dir string) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open root", Path: abs, Err: err}
	}
	uid := os.Geteuid()
	return &Root{dir: abs, fd: fd, privileged: uid == 0, uid: uid}, nil
}

// Close releases the root's descriptor; on a view (WithDirCache), only the
// directories the view keeps.
func (r *Root) Close() error {
	if r.cache != nil {
		r.cache.release()
		return nil
	}
	return unix.Close(r.fd)
}

// Dir is the root directory as given to Open.
func (r *Root) Dir() string { return r.dir }

// Join returns hostPath as a path on mirrorctl's own filesystem, lexically:
// for messages, never for access (use Resolve).
func (r *Root) Join(hostPath string) string {
	return filepath.Join(r.dir, filepath.FromSlash(path.Clean("/"+hostPath)))
}

// actor is who performs an operation: root (uid 0), or the user owning the
// first non-root directory or link on the way.
type actor struct {
	uid, gid int
	// unsafe, when set, says which location others may change although
	// root owns it; content operations there are refused.
	unsafe string
}

// target is a resolved path: the directory holding its last component.
type target struct {
	r     *Root
	dir   int    // O_PATH of the directory holding name
	name  string // the last component, "." for the root itself
	real  string // the host path reached, after links
	actor actor
	// st is what the walk found at name (lstat), when found is set: the
	// operation may use it instead of looking again when it runs as root
	// (as a user it must look with the user's rights).
	st    unix.Stat_t
	found bool
}

// lstat is name's lstat as the actor sees it: the walk's own look when the
// actor is root, else a new one (in f's context: call it inside as).
func (t *target) lstat(st *unix.Stat_t) error {
	if t.found && t.actor.uid == 0 {
		*st = t.st
		return nil
	}
	if err := unix.Fstatat(t.dir, t.name, st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	t.r.saw(t.real, st, t.actor.uid != 0)
	return nil
}

func (t *target) close() { t.r.closeFD(t.dir) }

// resolve walks hostPath inside the root. With follow, a symlink in the
// last component is followed too. With mkdir non-zero, missing directories
// on the way are created with that mode. The last component need not exist.
func (r *Root) resolve(hostPath string, follow bool, mkdir fs.FileMode) (*target, error) {
	if !path.IsAbs(hostPath) {
		return nil, &fs.PathError{Op: "resolve", Path: hostPath, Err: errors.New("not an absolute path")}
	}
	w := &walker{r: r, fds: []int{r.fd}, trusted: true}
	t, err := w.walk(hostPath, follow, mkdir)
	if err != nil {
		w.closeAll()
		return nil, &fs.PathError{Op: "resolve", Path: hostPath, Err: err}
	}
	return t, nil
}

// walker holds the directories opened so far, root first, so that ".."
// can step back without ever leaving the root.
type walker struct {
	r     *Root
	fds   []int
	names []string
	actor actor
	// sticky: the current directory is root's, writable by others, with
	// the sticky bit (/tmp): others cannot replace root's entries there, so
	// an entry's own owner says whose it is.
	sticky bool
	// trusted: every directory and link on the way so far belongs to root
	// (or to mirrorctl's own user) and nobody else may change it; only
	// then may a view's cache keep the directory entered (see
	// WithDirCache).
	trusted bool
}

func (w *walker) top() int { return w.fds[len(w.fds)-1] }

func (w *walker) pop() {
	if len(w.fds) > 1 {
		w.r.closeFD(w.top())
		w.fds, w.names = w.fds[:len(w.fds)-1], w.names[:len(w.names)-1]
	}
}

func (w *walker) toRoot() {
	for len(w.fds) > 1 {
		w.pop()
	}
}

func (w *walker) closeAll() { w.toRoot() }

func (w *walker) here(name string) string {
	return "/" + strings.Join(append(append([]string(nil), w.names...), name), "/")
}

func (w *walker) walk(hostPath string, follow bool, mkdir fs.FileMode) (*target, error) {
	queue := split(hostPath)
	links := 0
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		last := len(queue) == 0
		switch c {
		case ".":
			continue
		case "..":
			w.pop() // at the root, ".." is the root (chroot semantics)
			continue
		}
		if !last && w.r.cache != nil {
			if d, ok := w.r.cache.get(w.here(c)); ok {
				// A trusted directory entered before: as a walk into it
				// would find it (see WithDirCache). The actor stays as it
				// is: the directory is root's, so noting it changes
				// nothing.
				w.fds, w.names, w.sticky = append(w.fds, d.fd), append(w.names, c), d.sticky
				continue
			}
		}
		var st unix.Stat_t
		err := unix.Fstatat(w.top(), c, &st, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) && mkdir != 0 && !last {
			if err = w.makeDir(c, mkdir); err == nil {
				err = unix.Fstatat(w.top(), c, &st, unix.AT_SYMLINK_NOFOLLOW)
			}
		}
		if err == nil {
			w.r.saw(w.here(c), &st, w.actor.uid != 0)
		}
		if errors.Is(err, unix.ENOENT) {
			// The name is missing: the directory's times are what will
			// tell when it comes.
			if err := w.r.sawDir("/"+strings.Join(w.names, "/"), w.top()); err != nil {
				return nil, err
			}
		}
		if err != nil {
			if last && errors.Is(err, unix.ENOENT) {
				return w.target(c), nil // the caller creates it, or reports it missing
			}
			return nil, fmt.Errorf("%s: %w", w.here(c), err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			if last && !follow {
				return w.found(c, &st), nil
			}
			if links++; links > maxSymlinks {
				return nil, fmt.Errorf("%s: %w", w.here(c), unix.ELOOP)
			}
			w.note(&st, w.here(c))
			w.trust(&st)
			dest, err := readlinkat(w.top(), c)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", w.here(c), err)
			}
			if strings.HasPrefix(dest, "/") {
				w.toRoot() // an absolute link means a path under the root
			}
			queue = append(split(dest), queue...)
		case unix.S_IFDIR:
			if last {
				return w.found(c, &st), nil
			}
			if err := w.enter(c); err != nil {
				return nil, err
			}
		default:
			if last {
				return w.found(c, &st), nil
			}
			return nil, fmt.Errorf("%s: %w", w.here(c), unix.ENOTDIR)
		}
	}
	// The path named the root or a directory (it ended in "." or ".."):
	// the target is that directory itself.
	return w.target("."), nil
}

// found is target for a name the walk looked at.
func (w *walker) found(name string, st *unix.Stat_t) *target {
	t := w.target(name)
	t.st, t.found = *st, true
	return t
}

// target hands the current directory and name over to a target and closes
// the directories above it.
func (w *walker) target(name string) *target {
	top := w.top()
	real := "/" + strings.Join(w.names, "/")
	if name != "." {
		real = path.Join(real, name)
	}
	t := &target{r: w.r, dir: top, name: name, real: real, actor: w.actor}
	if w.sticky && name != "." && w.r.privileged && t.actor.uid == 0 {
		var st unix.Stat_t
		if unix.Fstatat(top, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			w.r.saw(real, &st, false)
			if st.Uid != 0 {
				t.actor = actor{uid: int(st.Uid), gid: int(st.Gid)}
			}
		}
	}
	for _, fd := range w.fds[1:] {
		if fd != top {
			w.r.closeFD(fd)
		}
	}
	w.fds, w.names = w.fds[:1], nil
	return t
}

// enter opens the directory c below the current one, refusing a symlink
// swapped in since it was looked at.
func (w *walker) enter(c string) error {
	fd, err := unix.Openat(w.top(), c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", w.here(c), err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return fmt.Errorf("%s: %w", w.here(c), err)
	}
	real := w.here(c)
	w.r.saw(real, &st, w.actor.uid != 0)
	w.note(&st, real)
	w.sticky = st.Uid == 0 && shared(&st) && st.Mode&unix.S_ISVTX != 0
	w.trust(&st)
	w.fds, w.names = append(w.fds, fd), append(w.names, c)
	if w.trusted && w.r.cache != nil {
		w.r.cache.put(real, cachedDir{fd: fd, sticky: w.sticky})
	}
	return nil
}

// trust keeps w.trusted while the directory or link st belongs to root, or
// to mirrorctl's own user, and nobody else may write in it (a sticky
// directory of root's excepted: others cannot rename root's entries).
func (w *walker) trust(st *unix.Stat_t) {
	owner := st.Uid == 0 || int(st.Uid) == w.r.uid
	safe := st.Mode&unix.S_IFMT != unix.S_IFDIR || !shared(st) || (st.Uid == 0 && st.Mode&unix.S_ISVTX != 0)
	w.trusted = w.trusted && owner && safe
}

// makeDir creates the directory c below the current one, as the actor so
// far, with exactly mode (not the umask's idea of it).
func (w *walker) makeDir(c string, mode fs.FileMode) error {
	if w.actor.unsafe != "" {
		return fmt.Errorf("%s: %w (%s)", w.here(c), ErrUnsafe, w.actor.unsafe)
	}
	parent := w.top()
	return w.r.as(w.actor, func() error {
		if err := unix.Mkdirat(parent, c, uint32(mode.Perm())); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("creating %s: %w", w.here(c), err)
		}
		fd, err := unix.Openat(parent, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("creating %s: %w", w.here(c), err)
		}
		defer unix.Close(fd)
		if err := unix.Fchmod(fd, uint32(mode.Perm())); err != nil {
			return fmt.Errorf("creating %s: %w", w.here(c), err)
		}
		return syncDirFD(parent)
	})
}

// note applies the ownership policy to a directory or link on the way.
func (w *walker) note(st *unix.Stat_t, where string) {
	if !w.r.privileged || w.actor.uid != 0 {
		return // already acting as a user: the kernel judges the rest
	}
	switch {
	case st.Uid != 0:
		if w.actor.unsafe == "" {
			w.actor = actor{uid: int(st.Uid), gid: int(st.Gid)}
		}
	case st.Mode&unix.S_IFMT == unix.S_IFDIR && shared(st) && st.Mode&unix.S_ISVTX == 0:
		if w.actor.unsafe == "" {
			who := "every user"
			if st.Mode&0o002 == 0 {
				who = fmt.Sprintf("group %d", st.Gid)
			}
			w.actor.unsafe = fmt.Sprintf("%s is owned by root but writable by %s", where, who)
		}
	}
}

// shared reports whether users other than root may write in a directory.
func shared(st *unix.Stat_t) bool {
	return st.Mode&0o002 != 0 || (st.Mode&0o020 != 0 && st.Gid != 0)
}

// split cuts a path into its components, keeping ".." (a link target's
// meaning depends on it) and dropping empty ones.
func split(p string) []string {
	var out []string
	for c := range strings.SplitSeq(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

func readlinkat(dir int, name string) (string, error) {
	for size := 256; size <= 1<<16; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dir, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
	return "", unix.ENAMETOOLONG
}

// Resolve returns where hostPath leads inside the root, links followed, as a
// path on mirrorctl's own filesystem: for the few things that must be
// reached by name (a daemon's socket, a binary to run). It refuses a
// location others may change.
func (r *Root) Resolve(hostPath string) (string, error) {
	t, err := r.resolve(hostPath, true, 0)
	if err != nil {
		return "", err
	}
	defer t.close()
	if t.actor.uid != 0 || t.actor.unsafe != "" {
		return "", &fs.PathError{Op: "resolve", Path: hostPath, Err: fmt.Errorf("%w (%s)", ErrUnsafe, t.why())}
	}
	return r.Join(t.real), nil
}

func (t *target) why() string {
	if t.actor.unsafe != "" {
		return t.actor.unsafe
	}
	return fmt.Sprintf("a location owned by uid %d", t.actor.uid)
}
