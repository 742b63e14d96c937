package hostfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultLimit bounds a read when the caller has no better idea: engines'
// configuration files are kilobytes.
const DefaultLimit = 16 << 20

// maxDirEntries bounds a directory listing.
const maxDirEntries = 1 << 16

// ReadFile returns the content of the regular file at hostPath, links
// followed inside the root, refusing anything that is not a regular file
// and anything larger than limit bytes.
func (r *Root) ReadFile(hostPath string, limit int64) ([]byte, error) {
	data, _, err := r.ReadFileInfo(hostPath, limit)
	return data, err
}

// ReadLocal is ReadFile for a name given to mirrorctl itself (a flag, a
// spec's reference): a relative name starts at the working directory.
func (r *Root) ReadLocal(name string, limit int64) ([]byte, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, err
	}
	return r.ReadFile(abs, limit)
}

// ReadFileInfo is Stat and ReadFile in one resolution: what hostPath leads
// to, and its content when it is a regular file of at most limit bytes.
// When it exists but is not a regular file, the FileInfo comes with an
// error wrapping ErrNotRegular; when it does not exist, the error wraps
// fs.ErrNotExist. As Stat, it looks at what is in a location others may
// change; as ReadFile, it reads nothing there (ErrUnsafe).
func (r *Root) ReadFileInfo(hostPath string, limit int64) ([]byte, fs.FileInfo, error) {
	t, err := r.resolve(hostPath, true, 0)
	if err != nil {
		return nil, nil, err
	}
	defer t.close()
	var st unix.Stat_t
	var data []byte
	err = r.as(t.actor, func() error {
		if err := t.lstat(&st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG || t.actor.unsafe != "" {
			return nil
		}
		var err error
		data, err = readAt(t.dir, t.name, limit, &st)
		if err == nil {
			r.saw(t.real, &st, true) // as the descriptor read said
		}
		return err
	})
	if err != nil {
		return nil, nil, &fs.PathError{Op: "read", Path: hostPath, Err: err}
	}
	fi := &fileInfo{name: path.Base(hostPath), st: st}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fi, &fs.PathError{Op: "read", Path: hostPath, Err: fmt.Errorf("is %s, %w", typeName(st.Mode), ErrNotRegular)}
	case t.actor.unsafe != "":
		return nil, fi, &fs.PathError{Op: "read", Path: hostPath, Err: fmt.Errorf("%w (%s)", ErrUnsafe, t.actor.unsafe)}
	}
	return data, fi, nil
}

// readAt reads dir/name, which the caller looked at (st, an lstat) before
// it is opened, so that a device is never opened at all; then it is opened
// non-blocking and without following a link, and checked again through the
// descriptor, whose look it leaves in st.
func readAt(dir int, name string, limit int64, st *unix.Stat_t) ([]byte, error) {
	if err := regular(st, limit); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st2 unix.Stat_t
	if err := unix.Fstat(fd, &st2); err != nil {
		return nil, err
	}
	if st2.Dev != st.Dev || st2.Ino != st.Ino {
		return nil, errors.New("replaced while being opened")
	}
	if err := regular(&st2, limit); err != nil {
		return nil, err
	}
	*st = st2
	return readFD(fd, st2.Size, limit)
}

// readFD reads a regular file's descriptor to its end, size being what
// fstat said: into a buffer of size+1 bytes, so that a file that did not
// change is read with one read(2) (a short read of exactly size bytes is
// the end), one that grew with as many as it takes, up to limit.
func readFD(fd int, size, limit int64) ([]byte, error) {
	buf := make([]byte, 0, min(size, limit)+1)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(cap(buf), int(limit+1)-len(buf)))
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		short := len(buf)+n < cap(buf)
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, limit)
		}
		if n == 0 || (short && int64(len(buf)) == size) {
			return buf, nil
		}
	}
}

// regular checks that st is a regular file of at most limit bytes.
func regular(st *unix.Stat_t, limit int64) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("is %s, %w", typeName(st.Mode), ErrNotRegular)
	}
	if st.Size > limit {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, st.Size, limit)
	}
	return nil
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a named pipe (FIFO)"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return "a regular file"
}

// Stat describes what hostPath leads to, links followed inside the root.
func (r *Root) Stat(hostPath string) (fs.FileInfo, error) { return r.stat("stat", hostPath, true) }

// Lstat describes hostPath itself, a link not followed.
func (r *Root) Lstat(hostPath string) (fs.FileInfo, error) { return r.stat("lstat", hostPath, false) }

func (r *Root) stat(op, hostPath string, follow bool) (fs.FileInfo, error) {
	t, err := r.resolve(hostPath, follow, 0)
	if err != nil {
		return nil, err
	}
	defer t.close()
	var st unix.Stat_t
	err = r.as(t.actor, func() error { return t.lstat(&st) })
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: hostPath, Err: err}
	}
	name := path.Base(hostPath)
	return &fileInfo{name: name, st: st}, nil
}

// Exists reports whether hostPath leads to anything.
func (r *Root) Exists(hostPath string) bool {
	_, err := r.Stat(hostPath)
	return err == nil
}

// ReadDir lists the directory at hostPath, sorted by name.
func (r *Root) ReadDir(hostPath string) ([]fs.DirEntry, error) { return r.readDir(hostPath, true) }

func (r *Root) readDir(hostPath string, follow bool) ([]fs.DirEntry, error) {
	t, err := r.resolve(hostPath, follow, 0)
	if err != nil {
		return nil, err
	}
	defer t.close()
	var ents []os.DirEntry
	err = r.as(t.actor, func() error {
		fd, err := unix.Openat(t.dir, t.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), hostPath)
		defer f.Close()
		if err := r.sawDir(t.real, fd); err != nil { // the directory as listed
			return err
		}
		for {
			batch, err := f.ReadDir(1024)
			ents = append(ents, batch...)
			if errors.Is(err, io.EOF) || (err == nil && len(batch) == 0) {
				return nil
			}
			if err != nil {
				return err
			}
			if len(ents) > maxDirEntries {
				return fmt.Errorf("more than %d entries", maxDirEntries)
			}
		}
	})
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: hostPath, Err: err}
	}
	out := make([]fs.DirEntry, len(ents))
	for i, e := range ents {
		// Info must not go through os (it would lstat by a path outside
		// the root's rules): ask the root again.
		out[i] = dirEntry{r: r, dir: hostPath, name: e.Name(), typ: e.Type()}
	}
	sortEntries(out)
	return out, nil
}

type dirEntry struct {
	r         *Root
	dir, name string
	typ       fs.FileMode
}

func (e dirEntry) Name() string               { return e.name }
func (e dirEntry) IsDir() bool                { return e.typ.IsDir() }
func (e dirEntry) Type() fs.FileMode          { return e.typ }
func (e dirEntry) Info() (fs.FileInfo, error) { return e.r.Lstat(path.Join(e.dir, e.name)) }

// fileInfo is an fs.FileInfo from a stat the root made.
type fileInfo struct {
	name string
	st   unix.Stat_t
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.st.Size }
func (fi *fileInfo) ModTime() time.Time { return time.Unix(fi.st.Mtim.Unix()) }
func (fi *fileInfo) IsDir() bool        { return fi.Mode().IsDir() }
func (fi *fileInfo) Sys() any           { return &fi.st }
func (fi *fileInfo) Mode() fs.FileMode {
	m := fs.FileMode(fi.st.Mode & 0o777)
	switch fi.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	}
	if fi.st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if fi.st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if fi.st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// OwnerOf returns a FileInfo's numeric owner, when the root made it.
func OwnerOf(fi fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*unix.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
