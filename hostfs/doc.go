// Package hostfs is the only code that touches the node's files. mirrorctl
// runs as root and reads and writes in places other users control (their
// homes, group-writable directories), so every access goes through one
// resolver with one policy, and a reviewer checks one package:
//
//   - Confinement. A path is resolved inside the root directory (--root),
//     one openat(O_PATH|O_NOFOLLOW) per component, with chroot semantics:
//     an absolute symlink means a path under the root, and ".." never leaves
//     it. Go's os.Root refuses absolute symlinks, which nodes are full of
//     (unit links, /var/run) and which under --root /host mean the host's
//     own paths; openat2's RESOLVE_IN_ROOT has the right meaning but needs
//     Linux 5.6 and cannot apply the policy below. So the walk is done here,
//     as runc's securejoin fallback does, in a few dozen lines.
//   - Whose rights. While resolving, the first directory (or symlink) owned
//     by a user other than root makes that user the actor: the final
//     operation runs on a locked OS thread with that user's filesystem uid
//     and gid and no supplementary groups, so the kernel refuses whatever the
//     user could not do himself (a ~/.docker linked to /etc/cron.d). In a
//     sticky directory root owns and everyone may write (/tmp), others
//     cannot replace root's entries, so an entry's owner is the actor. A
//     directory that root owns and others may write without the sticky bit
//     has no single owner to act as: content reads and every write there
//     are refused.
//   - What is read. Only regular files, checked before they are opened (a
//     device is never opened), opened non-blocking (a FIFO swapped in cannot
//     hang), and read up to a size bound.
//   - What is written. A temporary file created by descriptor (O_EXCL,
//     O_NOFOLLOW) in the target's directory, written, chmod'ed and, as root,
//     chown'ed by descriptor, fsynced, renamed over the target, and the
//     directory fsynced. Root never changes the owner or mode of a path it
//     did not just create.
//   - Cost. A walk is a few system calls per component, per operation. A
//     view made by WithDirCache (one plan, one batch of writes) keeps the
//     directories it entered open, but only those reached through root's
//     own directories that nobody else may change: starting a later walk
//     from one of them reaches what a full walk would, and every policy
//     check above still runs on everything below (see WithDirCache for why
//     a kept descriptor is safe).
//
// Paths given to this package are absolute host paths ("/etc/docker/daemon.json").
package hostfs
