// Command durable is the bench's floor for a changed sync: it writes the
// directories and files of a manifest (what one real sync wrote) under a
// root, each durably in the naive per-file way: a temporary file beside the
// target, written, fsynced, renamed over the target, and the directory
// fsynced; a new directory is made durable by fsyncing its parent. No
// batching, no syncfs: the floor mirrorctl's batched writes are judged by.
//
//	durable MANIFEST ROOT
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/mirrorctl/mirrorctl/tools/benchnode/manifest"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: durable MANIFEST ROOT")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "durable:", err)
		os.Exit(1)
	}
}

func run(manifestPath, root string) error {
	b, err := os.ReadFile(manifestPath)
	if err != nil {
		return err
	}
	entries, err := manifest.Decode(b)
	if err != nil {
		return fmt.Errorf("reading %s: %w", manifestPath, err)
	}
	unix.Umask(0)
	for _, e := range entries {
		p := filepath.Join(root, filepath.FromSlash(e.Path))
		if e.Dir {
			err = mkdir(p, uint32(e.Mode.Perm()))
		} else {
			err = write(p, e.Data, uint32(e.Mode.Perm()))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func mkdir(p string, mode uint32) error {
	if err := unix.Mkdir(p, mode); err != nil {
		if err == unix.EEXIST {
			return nil
		}
		return fmt.Errorf("creating %s: %w", p, err)
	}
	return syncDir(filepath.Dir(p))
}

func write(p string, data []byte, mode uint32) error {
	tmp := filepath.Join(filepath.Dir(p), ".durable-tmp-"+filepath.Base(p))
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, mode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	for rest := data; len(rest) > 0; {
		n, err := unix.Write(fd, rest)
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("writing %s: %w", p, err)
		}
		rest = rest[n:]
	}
	if err := unix.Fsync(fd); err != nil {
		unix.Close(fd)
		return fmt.Errorf("syncing %s: %w", p, err)
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := unix.Rename(tmp, p); err != nil {
		return fmt.Errorf("renaming %s: %w", p, err)
	}
	return syncDir(filepath.Dir(p))
}

func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
