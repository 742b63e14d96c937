package hostfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// OpenLockFile opens (creating, mode 0600) the regular file at hostPath
// for flock(2), never through a link at hostPath and never truncating what
// it finds: a lock file is only locked, and written through the returned
// descriptor. Its directory must exist and be root's alone.
func (r *Root) OpenLockFile(hostPath string) (*os.File, error) {
	t, err := r.resolve(hostPath, false, 0)
	if err != nil {
		return nil, err
	}
	defer t.close()
	if t.actor.uid != 0 || t.actor.unsafe != "" {
		return nil, &fs.PathError{Op: "lock", Path: hostPath, Err: fmt.Errorf("%w (%s)", ErrUnsafe, t.why())}
	}
	fd, err := unix.Openat(t.dir, t.name, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			err = errors.New("is a symbolic link; remove it")
		}
		return nil, &fs.PathError{Op: "lock", Path: hostPath, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "lock", Path: hostPath, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "lock", Path: hostPath, Err: fmt.Errorf("is %s, %w", typeName(st.Mode), ErrNotRegular)}
	}
	return os.NewFile(uintptr(fd), r.Join(hostPath)), nil
}
