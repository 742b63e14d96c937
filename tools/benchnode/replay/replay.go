// Package replay is the bench's floor for a no-op that does not plan: a
// record of what a no-op sync read (the files it read and the directories
// it listed), and the check a later run would make to learn that nothing
// changed. The check is made two ways: by each entry's attributes (device,
// inode, size, modification and change times), and by content (each
// file's bytes, each directory's names, hashed). It knows nothing of
// mirrorctl's files or of which reads are enough; it is only as fast as
// such a check can be, which is what the bench measures.
package replay

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"

	"github.com/mirrorctl/mirrorctl/tools/benchnode/manifest"
)

// attrsLen and the digest make up an entry's Data: five little-endian
// uint64 (device, inode, size, mtime and ctime in nanoseconds), then the
// SHA-256 of the content.
const attrsLen = 5 * 8

// parallelFrom is the number of entries from which checking them on every
// CPU is quicker than on one: measured on the bench's roots (2 CPUs), 300
// entries by attributes took 3.2 ms on one and 3.7 ms on two, 14,000 took
// 84 and 57 ms.
const parallelFrom = 1000

// Record returns the record of files and dirs (absolute paths) as they are
// now, in the manifest format.
func Record(files, dirs []string) ([]byte, error) {
	var entries []manifest.Entry
	add := func(p string, dir bool) error {
		a, err := attrs(p)
		if err != nil {
			return err
		}
		sum, err := digest(p, dir)
		if err != nil {
			return err
		}
		entries = append(entries, manifest.Entry{Dir: dir, Path: p, Data: append(a[:], sum[:]...)})
		return nil
	}
	for _, p := range files {
		if err := add(p, false); err != nil {
			return nil, err
		}
	}
	for _, p := range dirs {
		if err := add(p, true); err != nil {
			return nil, err
		}
	}
	return manifest.Encode(entries), nil
}

// CheckFile checks the record in file, by "stat" (attributes) or
// "content": what the floor programs run.
func CheckFile(by, file string) error {
	if by != "stat" && by != "content" {
		return fmt.Errorf("check by %q: by stat or content", by)
	}
	record, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	return Check(record, by == "content")
}

// Check compares every entry of record with what is there now, by its
// attributes or by content, and returns an error naming an entry that
// differs. Past parallelFrom entries it checks on every CPU at once, each
// goroutine a share of them: as fast as such a check can be made with one
// call per entry.
func Check(record []byte, byContent bool) error {
	entries, err := manifest.Decode(record)
	if err != nil {
		return err
	}
	workers := 1
	if len(entries) >= parallelFrom {
		workers = runtime.NumCPU()
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		share := entries[w*len(entries)/workers : (w+1)*len(entries)/workers]
		wg.Go(func() { errs[w] = check(share, byContent) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func check(entries []manifest.Entry, byContent bool) error {
	for _, e := range entries {
		if len(e.Data) != attrsLen+sha256.Size {
			return fmt.Errorf("%s: record entry of %d bytes", e.Path, len(e.Data))
		}
		if byContent {
			sum, err := digest(e.Path, e.Dir)
			if err != nil {
				return err
			}
			if !bytes.Equal(sum[:], e.Data[attrsLen:]) {
				return fmt.Errorf("%s: content changed", e.Path)
			}
			continue
		}
		a, err := attrs(e.Path)
		if err != nil {
			return err
		}
		if !bytes.Equal(a[:], e.Data[:attrsLen]) {
			return fmt.Errorf("%s: attributes changed", e.Path)
		}
	}
	return nil
}

// attrs are p's attributes as a record holds them (an array: the check
// allocates nothing per entry).
func attrs(p string) (a [attrsLen]byte, err error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return a, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	for i, v := range [...]uint64{st.Dev, st.Ino, uint64(st.Size), uint64(st.Mtim.Nano()), uint64(st.Ctim.Nano())} {
		binary.LittleEndian.PutUint64(a[8*i:], v)
	}
	return a, nil
}

// digest hashes a file's bytes, or a directory's sorted names.
func digest(p string, dir bool) ([sha256.Size]byte, error) {
	if !dir {
		b, err := os.ReadFile(p)
		return sha256.Sum256(b), err
	}
	f, err := os.Open(p)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum, nil
}
