package hostfs

import (
	"bytes"
	"io"
	"io/fs"
	"slices"
	"strings"
)

// FS returns a read-only io/fs view of the root for code that reads the
// host through fs.FS (the engines): fs paths have no leading slash, and
// every rule of the root applies (links confined, regular files only, the
// DefaultLimit bound).
func (r *Root) FS() fs.FS { return rootFS{r} }

type rootFS struct{ r *Root }

var (
	_ fs.ReadFileFS = rootFS{}
	_ fs.ReadDirFS  = rootFS{}
	_ fs.StatFS     = rootFS{}
)

func hostPathOf(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return "/", nil
	}
	return "/" + name, nil
}

func (f rootFS) ReadFile(name string) ([]byte, error) {
	p, err := hostPathOf("read", name)
	if err != nil {
		return nil, err
	}
	return f.r.ReadFile(p, DefaultLimit)
}

func (f rootFS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := hostPathOf("readdir", name)
	if err != nil {
		return nil, err
	}
	return f.r.ReadDir(p)
}

func (f rootFS) Stat(name string) (fs.FileInfo, error) {
	p, err := hostPathOf("stat", name)
	if err != nil {
		return nil, err
	}
	return f.r.Stat(p)
}

// Open returns a directory (for ReadDir) or the whole content of a regular
// file read at once; anything else is refused as ReadFile refuses it.
func (f rootFS) Open(name string) (fs.File, error) {
	fi, err := f.Stat(name)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		ents, err := f.ReadDir(name)
		if err != nil {
			return nil, err
		}
		return &openDir{fi: fi, ents: ents}, nil
	}
	data, err := f.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return &openFile{fi: fi, Reader: bytes.NewReader(data)}, nil
}

type openFile struct {
	fi fs.FileInfo
	*bytes.Reader
}

func (o *openFile) Stat() (fs.FileInfo, error) { return o.fi, nil }
func (o *openFile) Close() error               { return nil }

type openDir struct {
	fi   fs.FileInfo
	ents []fs.DirEntry
}

func (d *openDir) Stat() (fs.FileInfo, error) { return d.fi, nil }
func (d *openDir) Close() error               { return nil }
func (d *openDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.fi.Name(), Err: fs.ErrInvalid}
}

func (d *openDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if n <= 0 {
		out := d.ents
		d.ents = nil
		return out, nil
	}
	if len(d.ents) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.ents))
	out := d.ents[:n]
	d.ents = d.ents[n:]
	return out, nil
}

func sortEntries(ents []fs.DirEntry) {
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
}
