package hostfs

import (
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// maxCachedDirs bounds the descriptors a cache keeps open; so does half
// the process's limit on open files (cacheLimit).
const maxCachedDirs = 1 << 16

// cacheLimit is how many directories a new cache may keep open: half of
// RLIMIT_NOFILE (Go raises the soft limit to the hard one at start), so
// that the other half stays for everything else, and never more than
// maxCachedDirs.
func cacheLimit() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 256
	}
	return int(min(rl.Cur/2, maxCachedDirs))
}

// WithDirCache returns a view of r that keeps the directories its
// resolutions enter open, by their real path, and starts later resolutions
// from them: a sync reading or writing thousands of files under the same
// few directories then pays one openat per directory instead of one per
// directory per file. release closes them; the view must not be used
// after. Closing the view releases it too; r itself stays open. A view of
// a view is the view itself.
//
// Only trusted directories are kept: reached from the root through
// directories (and links) owned by root, or by mirrorctl's own user when it
// runs unprivileged, that nobody else may write in (root's sticky
// directories, such as /tmp, count as trusted: others may not rename
// root's entries there). Nobody but root and mirrorctl can then rename,
// replace or remove any directory on the way, and a kept descriptor pins
// the directory itself: a rename of an ancestor cannot redirect it. So a
// resolution starting from a kept directory reaches what a full walk would
// have, and runs as the same actor: the ownership policy is applied, per
// component, to everything below (a user's directory is never kept, so
// every walk into one still decides who acts). What root changes
// meanwhile is seen by the next view; mirrorctl's own removals and renames
// through the view forget what they affect. Hold a view for one plan or one
// batch of writes, not longer.
func (r *Root) WithDirCache() (view *Root, release func()) {
	if r.cache != nil {
		return r, func() {} // already a view: its owner releases it
	}
	v := &Root{dir: r.dir, fd: r.fd, privileged: r.privileged, uid: r.uid, log: r.log,
		cache: &dirCache{dirs: map[string]cachedDir{}, fds: map[int]bool{}, limit: cacheLimit()}}
	return v, func() { v.cache.release() }
}

type dirCache struct {
	mu     sync.Mutex
	dirs   map[string]cachedDir // by real host path
	fds    map[int]bool
	limit  int
	closed bool
}

type cachedDir struct {
	fd     int
	sticky bool
}

func (c *dirCache) get(real string) (cachedDir, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.dirs[real]
	return d, ok && !c.closed
}

// put keeps fd for real and reports whether it did (the cache then owns
// the descriptor).
func (c *dirCache) put(real string, d cachedDir) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.fds) >= c.limit {
		return false
	}
	if _, ok := c.dirs[real]; ok {
		return false
	}
	c.dirs[real] = d
	c.fds[d.fd] = true
	return true
}

func (c *dirCache) owns(fd int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fds[fd]
}

// forget drops real and everything below it: mirrorctl removed or renamed
// it. A descriptor still in use by a target stays open until release.
func (c *dirCache) forget(real string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.dirs {
		if p == real || strings.HasPrefix(p, real+"/") || real == "/" {
			delete(c.dirs, p)
		}
	}
}

func (c *dirCache) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	for fd := range c.fds {
		unix.Close(fd)
	}
	c.dirs, c.fds = nil, nil
}

// closeFD closes a descriptor a resolution opened, unless a cache keeps it
// (or it is the root's own).
func (r *Root) closeFD(fd int) {
	if fd == r.fd || (r.cache != nil && r.cache.owns(fd)) {
		return
	}
	unix.Close(fd)
}

// forget tells the cache that mirrorctl removed or renamed the directory
// at the real host path.
func (r *Root) forget(real string) {
	if r.cache != nil {
		r.cache.forget(real)
	}
}
