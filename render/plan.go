package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/mirrorctl/mirrorctl/hostfs"
)

// Op is what a Change does to its file.
type Op string

const (
	Keep   Op = "keep"   // the file already has the desired content
	Create Op = "create" // the file does not exist yet
	Update Op = "update" // the file exists with other content
	Delete Op = "delete" // the file exists and is no longer wanted
)

// A Change is one File compared with the disk.
type Change struct {
	File File
	Op   Op
	// Old is the current content (nil when the file does not exist).
	Old []byte
	// OldMode and OldOwner are the current permission bits and owner, when
	// the file exists.
	OldMode  fs.FileMode
	OldOwner *Owner
}

// Changed reports whether applying c writes or removes anything.
func (c Change) Changed() bool { return c.Op != Keep }

// Plan compares the desired files with the disk under root. It reads, never
// writes. A path that exists but is not a regular file is an error: mirrorctl
// never replaces a directory, a device or a socket with a file.
func Plan(root *hostfs.Root, files []File) ([]Change, error) {
	root, release := root.WithDirCache()
	defer release()
	changes := make([]Change, 0, len(files))
	for _, f := range files {
		c, err := planFile(root, f)
		if err != nil {
			return nil, err
		}
		changes = append(changes, c)
	}
	return changes, nil
}

func planFile(root *hostfs.Root, f File) (Change, error) {
	c := Change{File: f}
	old, fi, err := root.ReadFileInfo(f.Path, hostfs.DefaultLimit)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.Op = Create
		if f.Remove {
			c.Op = Keep
			// A registry directory a crash left empty goes too.
			if ents, err := root.ReadDir(path.Dir(f.Path)); f.Group != "" && err == nil && len(ents) == 0 {
				c.Op = Delete
			}
		}
		return c, nil
	case fi != nil && !fi.Mode().IsRegular():
		return c, fmt.Errorf("%s exists and is not a regular file (%s); move it away or point the spec elsewhere", f.Path, fi.Mode().Type())
	case err != nil:
		return c, fmt.Errorf("reading %s: %w", f.Path, err)
	}
	c.Old, c.OldMode = old, fi.Mode().Perm()
	if uid, gid, ok := hostfs.OwnerOf(fi); ok {
		c.OldOwner = &Owner{UID: uid, GID: gid}
	}
	switch {
	case f.Remove:
		c.Op = Delete
	case !bytes.Equal(old, f.Data):
		c.Op = Update
	case f.Secret && c.OldMode&0o077 != 0:
		// Same bytes but readable by others: rewrite to fix the mode.
		c.Op = Update
	case f.ForceMode && f.Mode != 0 && c.OldMode != f.Mode:
		c.Op = Update
	default:
		c.Op = Keep
	}
	return c, nil
}

// WantMode is the permission the file will have after Apply: 0600 for
// secrets, the existing mode for existing files, else File.Mode (0644 if unset).
func (c Change) WantMode() fs.FileMode {
	switch {
	case c.File.ForceMode && c.File.Mode != 0:
		return c.File.Mode
	case c.File.Secret:
		return 0o600
	case c.Old != nil:
		return c.OldMode
	case c.File.Mode != 0:
		return c.File.Mode
	}
	return 0o644
}
