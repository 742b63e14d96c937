package hostfs

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// as runs f with the actor's rights. For a user that means a goroutine
// locked to its own OS thread, whose filesystem uid and gid become the
// user's and whose supplementary groups are dropped; the thread is never
// unlocked, so it exits with the goroutine and its credentials with it. The
// raw syscalls change that one thread only (Go's syscall.Setuid and glibc's
// wrappers would change every thread).
//
// Setting them needs CAP_SETUID and CAP_SETGID; a process without them
// (the DaemonSet before it grants them) gets an error naming the user
// instead of acting as root.
func (r *Root) as(a actor, f func() error) error {
	if a.uid == 0 || !r.privileged {
		return f()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		if err := becomeUser(a.uid, a.gid); err != nil {
			done <- err
			return
		}
		done <- f()
	}()
	return <-done
}

func becomeUser(uid, gid int) error {
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return fmt.Errorf("acting as uid %d: dropping supplementary groups: %w (mirrorctl needs CAP_SETGID)", uid, e)
	}
	unix.RawSyscall(unix.SYS_SETFSGID, uintptr(gid), 0, 0)
	unix.RawSyscall(unix.SYS_SETFSUID, uintptr(uid), 0, 0)
	// Both calls return the previous id whether or not they worked; an
	// invalid id (-1) changes nothing and returns the current one.
	curUID, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, uintptr(^uint32(0)), 0, 0)
	curGID, _, _ := unix.RawSyscall(unix.SYS_SETFSGID, uintptr(^uint32(0)), 0, 0)
	if int(curUID) != uid || int(curGID) != gid {
		return fmt.Errorf("acting as uid %d gid %d: the kernel refused (mirrorctl needs CAP_SETUID and CAP_SETGID)", uid, gid)
	}
	return nil
}
