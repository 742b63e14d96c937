// Package manifest is the list of directories and files a changed sync
// wrote, as the bench's durable-writer floor reads it: one file, read at
// once, so that the floor spends its time writing, not parsing.
//
// The format is a sequence of entries, each a kind byte ('d' for a
// directory, 'f' for a file), the mode as a little-endian uint32, the path
// (relative to the root) and the data, each as a little-endian uint32
// length and its bytes. Directories come before what they hold.
package manifest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
)

// An Entry is one directory or file.
type Entry struct {
	Dir  bool
	Mode fs.FileMode
	Path string // relative, slash-separated
	Data []byte
}

// Encode returns the entries in the manifest format.
func Encode(entries []Entry) []byte {
	var b []byte
	for _, e := range entries {
		kind := byte('f')
		if e.Dir {
			kind = 'd'
		}
		b = append(b, kind)
		b = binary.LittleEndian.AppendUint32(b, uint32(e.Mode.Perm()))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Path)))
		b = append(b, e.Path...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Data)))
		b = append(b, e.Data...)
	}
	return b
}

// Decode parses a manifest; the entries' Data share b.
func Decode(b []byte) ([]Entry, error) {
	var out []Entry
	for len(b) > 0 {
		if len(b) < 9 {
			return nil, errors.New("truncated manifest entry")
		}
		e := Entry{Dir: b[0] == 'd', Mode: fs.FileMode(binary.LittleEndian.Uint32(b[1:5]))}
		if b[0] != 'd' && b[0] != 'f' {
			return nil, fmt.Errorf("manifest entry %d: unknown kind %q", len(out), b[0])
		}
		b = b[5:]
		p, rest, err := field(b)
		if err != nil {
			return nil, fmt.Errorf("manifest entry %d path: %w", len(out), err)
		}
		data, rest, err := field(rest)
		if err != nil {
			return nil, fmt.Errorf("manifest entry %d data: %w", len(out), err)
		}
		e.Path, e.Data, b = string(p), data, rest
		out = append(out, e)
	}
	return out, nil
}

func field(b []byte) (value, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, errors.New("truncated length")
	}
	n := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b)) {
		return nil, nil, fmt.Errorf("length %d past the end", n)
	}
	return b[:n:n], b[n:], nil
}
