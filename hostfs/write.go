package hostfs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// tmpPrefix starts the name of every temporary file this package creates,
// so that one a crash left behind is recognisable (and never a target).
const tmpPrefix = ".mirrorctl-tmp-"

// Owner is a numeric file owner.
type Owner struct{ UID, GID int }

// WriteOptions say how a file is written.
type WriteOptions struct {
	// Mode is the new file's permission bits, set exactly (not through the
	// umask).
	Mode fs.FileMode
	// Owner, as root, is who the new file belongs to (root when nil). A
	// file written with a user's rights belongs to that user whatever this
	// says.
	Owner *Owner
}

// A Staged file is new content written to a temporary file beside its
// target, not yet durable and not yet in place. Sync makes a batch durable
// with one syncfs per filesystem; Commit renames it over the target.
type Staged struct {
	r      *Root
	t      *target
	tmp    string
	file   int // the temporary file, open until Sync or Abort
	dev    uint64
	synced bool
	Path   string // the host path it will replace
}

// Stage writes data to a new temporary file in hostPath's directory (which
// must exist), links in the directory followed inside the root, and a link
// at hostPath itself followed too: the file it points to is replaced and
// the link kept. Nothing is in place until Commit.
func (r *Root) Stage(hostPath string, data []byte, o WriteOptions) (*Staged, error) {
	t, err := r.resolve(hostPath, true, 0)
	if err != nil {
		return nil, err
	}
	if t.name == "." || t.actor.unsafe != "" {
		t.close()
		err := errors.New("is a directory")
		if t.actor.unsafe != "" {
			err = fmt.Errorf("%w (%s)", ErrUnsafe, t.actor.unsafe)
		}
		return nil, &fs.PathError{Op: "write", Path: hostPath, Err: err}
	}
	s := &Staged{r: r, t: t, Path: hostPath, file: -1}
	err = r.as(t.actor, func() error { return s.create(data, o) })
	if err != nil {
		s.Abort()
		return nil, &fs.PathError{Op: "write", Path: hostPath, Err: err}
	}
	return s, nil
}

func (s *Staged) create(data []byte, o WriteOptions) error {
	var st unix.Stat_t
	switch err := unix.Fstatat(s.t.dir, s.t.name, &st, unix.AT_SYMLINK_NOFOLLOW); {
	case errors.Is(err, unix.ENOENT):
	case err != nil:
		return err
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		// A directory, device or socket is never replaced by a file.
		return fmt.Errorf("exists and is %s, not a regular file; move it away or point the spec elsewhere", typeName(st.Mode))
	}
	var b [8]byte
	rand.Read(b[:])
	s.tmp = tmpPrefix + hex.EncodeToString(b[:])
	fd, err := unix.Openat(s.t.dir, s.tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		s.tmp = ""
		return err
	}
	s.file = fd
	for rest := data; len(rest) > 0; {
		n, err := unix.Write(fd, rest)
		if err != nil {
			return err
		}
		rest = rest[n:]
	}
	if o.Owner != nil && s.t.actor.uid == 0 && s.r.privileged {
		// By descriptor, on the file just created: nothing else can be
		// chown'ed by a link swapped in.
		if err := unix.Fchown(fd, o.Owner.UID, o.Owner.GID); err != nil {
			return err
		}
	}
	mode := o.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	if err := unix.Fchmod(fd, uint32(mode)); err != nil {
		return err
	}
	var fst unix.Stat_t
	if err := unix.Fstat(fd, &fst); err != nil {
		return err
	}
	s.dev = fst.Dev
	return nil
}

// Sync makes the staged content durable: one syncfs per filesystem the
// files are on, which on a large batch is much cheaper than an fsync each;
// where syncfs fails, each file is fsynced.
func Sync(staged []*Staged) error {
	done := map[uint64]bool{}
	for _, s := range staged {
		if s.synced || s.file < 0 {
			continue
		}
		if !done[s.dev] {
			if err := unix.Syncfs(s.file); err == nil {
				done[s.dev] = true
			} else if err := unix.Fsync(s.file); err != nil {
				return &fs.PathError{Op: "sync", Path: s.Path, Err: err}
			}
		}
		s.synced = true
	}
	for _, s := range staged {
		if s.file >= 0 {
			unix.Close(s.file)
			s.file = -1
		}
	}
	return nil
}

// Commit renames the staged file over its target (syncing it first if Sync
// was not called). The directory is not fsynced: call SyncDir once per
// directory when a batch is in place.
func (s *Staged) Commit() error {
	if !s.synced {
		if err := Sync([]*Staged{s}); err != nil {
			return err
		}
	}
	err := s.r.as(s.t.actor, func() error { return unix.Renameat(s.t.dir, s.tmp, s.t.dir, s.t.name) })
	if err != nil {
		s.Abort()
		return &fs.PathError{Op: "write", Path: s.Path, Err: err}
	}
	s.tmp = ""
	s.t.close()
	return nil
}

// Abort removes the temporary file, if any.
func (s *Staged) Abort() {
	if s.file >= 0 {
		unix.Close(s.file)
		s.file = -1
	}
	if s.tmp != "" {
		tmp := s.tmp
		s.r.as(s.t.actor, func() error { return unix.Unlinkat(s.t.dir, tmp, 0) })
		s.tmp = ""
	}
	s.t.close()
}

// Dir is the host directory the staged file lands in (after links), for
// SyncDir.
func (s *Staged) Dir() string { return path.Dir(s.t.real) }

// WriteFile replaces hostPath atomically and durably: a temporary file
// written and fsynced, renamed over the target, the directory fsynced. A
// crash leaves the old content or the new, never a mix.
func (r *Root) WriteFile(hostPath string, data []byte, o WriteOptions) error {
	s, err := r.Stage(hostPath, data, o)
	if err != nil {
		return err
	}
	dir := s.Dir()
	if err := s.Commit(); err != nil {
		return err
	}
	return r.SyncDir(dir)
}

// FileData is one file for WriteFiles.
type FileData struct {
	Path string
	Data []byte
}

// stageBatch bounds the temporary files WriteFiles keeps open at once: a
// staged file holds its descriptor until it is synced.
const stageBatch = 128

// WriteFiles replaces each file atomically and durably, in order, like
// WriteFile but paying durability once per batch of files (one syncfs per
// filesystem) and keeping at most a batch open, so that thousands of files
// never exhaust the descriptors. The directories are not fsynced: call
// SyncDir for each when the files are in place. On an error, the files
// committed before it stay in place and none after it is.
func (r *Root) WriteFiles(files []FileData, o WriteOptions) error {
	for len(files) > 0 {
		n := min(stageBatch, len(files))
		if err := r.writeBatch(files[:n], o); err != nil {
			return err
		}
		files = files[n:]
	}
	return nil
}

func (r *Root) writeBatch(files []FileData, o WriteOptions) error {
	staged := make([]*Staged, 0, len(files))
	abort := func(from int) {
		for _, s := range staged[from:] {
			s.Abort()
		}
	}
	for _, f := range files {
		s, err := r.Stage(f.Path, f.Data, o)
		if err != nil {
			abort(0)
			return err
		}
		staged = append(staged, s)
	}
	if err := Sync(staged); err != nil {
		abort(0)
		return err
	}
	for i, s := range staged {
		if err := s.Commit(); err != nil {
			abort(i + 1)
			return err
		}
	}
	return nil
}

// Remove deletes the file (or link) at hostPath; a missing file is not an
// error. The directory is not fsynced.
func (r *Root) Remove(hostPath string) error {
	t, err := r.resolve(hostPath, false, 0)
	if err != nil {
		return err
	}
	defer t.close()
	if t.actor.unsafe != "" {
		return &fs.PathError{Op: "remove", Path: hostPath, Err: fmt.Errorf("%w (%s)", ErrUnsafe, t.actor.unsafe)}
	}
	err = r.as(t.actor, func() error {
		var st unix.Stat_t
		if err := unix.Fstatat(t.dir, t.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return errors.New("is a directory")
		}
		return unix.Unlinkat(t.dir, t.name, 0)
	})
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "remove", Path: hostPath, Err: err}
	}
	return nil
}

// RemoveDir removes the directory at hostPath if it is empty, and reports
// whether it did. A directory holding anything, or none at all, stays.
func (r *Root) RemoveDir(hostPath string) (bool, error) {
	t, err := r.resolve(hostPath, false, 0)
	if err != nil {
		return false, err
	}
	defer t.close()
	if t.name == "." {
		return false, nil
	}
	err = r.as(t.actor, func() error { return unix.Unlinkat(t.dir, t.name, unix.AT_REMOVEDIR) })
	switch {
	case err == nil:
		r.forget(t.real)
		return true, nil
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTEMPTY), errors.Is(err, unix.EEXIST), errors.Is(err, unix.ENOTDIR):
		return false, nil
	}
	return false, &fs.PathError{Op: "remove", Path: hostPath, Err: err}
}

// MkdirAll creates hostPath and its missing parents with mode perm, each
// with exactly that mode and durable (its parent fsynced). Existing
// directories are left as they are.
func (r *Root) MkdirAll(hostPath string, perm fs.FileMode) error {
	t, err := r.resolve(strings.TrimSuffix(hostPath, "/")+"/.", true, perm)
	if err != nil {
		return err
	}
	t.close()
	return nil
}

// SyncDir fsyncs the directory at hostPath, making the entries created,
// renamed or removed in it durable.
func (r *Root) SyncDir(hostPath string) error {
	t, err := r.resolve(hostPath, true, 0)
	if err != nil {
		return err
	}
	defer t.close()
	fd, err := unix.Openat(t.dir, t.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "sync", Path: hostPath, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return &fs.PathError{Op: "sync", Path: hostPath, Err: err}
	}
	return nil
}

func syncDirFD(dir int) error {
	fd, err := unix.Openat(dir, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}

// RemoveStaleTemps removes the temporary files a crash left in the
// directory at hostPath. Only one mirrorctl writes at a time (the lock), so
// any it finds is stale.
func (r *Root) RemoveStaleTemps(hostPath string) error {
	ents, err := r.ReadDir(hostPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) && e.Type().IsRegular() {
			if err := r.Remove(path.Join(hostPath, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// Rename renames the entry oldName to newName in the directory at
// hostPath (a file or a directory; never across directories).
func (r *Root) Rename(hostPath, oldName, newName string) error {
	for _, n := range []string{oldName, newName} {
		if n == "" || n == "." || n == ".." || strings.Contains(n, "/") {
			return &fs.PathError{Op: "rename", Path: path.Join(hostPath, n), Err: fs.ErrInvalid}
		}
	}
	t, err := r.resolve(strings.TrimSuffix(hostPath, "/")+"/.", true, 0)
	if err != nil {
		return err
	}
	defer t.close()
	if t.actor.unsafe != "" {
		return &fs.PathError{Op: "rename", Path: hostPath, Err: fmt.Errorf("%w (%s)", ErrUnsafe, t.actor.unsafe)}
	}
	err = r.as(t.actor, func() error {
		fd, err := unix.Openat(t.dir, t.name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Renameat(fd, oldName, fd, newName)
	})
	r.forget(path.Join(t.real, oldName))
	r.forget(path.Join(t.real, newName))
	if err != nil {
		return &fs.PathError{Op: "rename", Path: path.Join(hostPath, oldName), Err: err}
	}
	return nil
}

// RemoveAll removes hostPath and everything below it, never following a
// link (a link inside is removed, not its target).
func (r *Root) RemoveAll(hostPath string) error {
	fi, err := r.Lstat(hostPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return r.Remove(hostPath)
	}
	ents, err := r.readDir(hostPath, false)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := r.RemoveAll(path.Join(hostPath, e.Name())); err != nil {
			return err
		}
	}
	if _, err := r.RemoveDir(hostPath); err != nil {
		return err
	}
	return nil
}
