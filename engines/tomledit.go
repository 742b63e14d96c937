package engines

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// tomlDoc is a TOML file edited in place: every edit splices the bytes of
// the keys and tables it names and leaves every other byte (comments, blank
// lines, order, quoting) as it was. Tables and keys are located with
// go-toml's unstable parser, which gives each top-level expression's key
// parts and byte ranges; the document is parsed again after every edit, so
// offsets are never carried across edits.
//
// Deleting a key or table removes its own lines and the comments between a
// table's header and its last key; comment lines above or after them stay
// (nothing the user wrote is dropped unless it sat inside what is removed).
type tomlDoc struct {
	src  []byte
	nl   string            // "\n", or "\r\n" when the file's first line ends so
	ents []tomlEntry       // top-level expressions, in file order
	raws map[string]string // path prefix → its last key part as written
	step string            // indentation of a key relative to its header
	strQ byte              // quote of the file's first string value
}

// tomlEntry is one top-level expression: a [table] or [[array]] header, or
// a key/value line.
type tomlEntry struct {
	kind  unstable.Kind // Table, ArrayTable or KeyValue
	path  []string      // headers: the table; key/values: the header's path plus the dotted key
	table int           // key/values: index of their header, -1 for the root table
	// start and end are the whole lines the expression takes, newline
	// included; indent is the first line's leading white space.
	start, end int
	indent     string
	keyLen     int // key/values: how many path elements come from the header
	// valStart and valEnd are a key/value's value bytes.
	valStart, valEnd int
	inline           bool // the value is an inline table
}

// parseTOMLDoc indexes src; it fails where go-toml's parser fails.
func parseTOMLDoc(src []byte) (*tomlDoc, error) {
	d := &tomlDoc{nl: "\n"}
	if i := bytes.IndexByte(src, '\n'); i > 0 && src[i-1] == '\r' {
		d.nl = "\r\n"
	}
	if err := d.reset(src); err != nil {
		return nil, err
	}
	return d, nil
}

// Bytes returns the document as edited.
func (d *tomlDoc) Bytes() []byte { return d.src }

func (d *tomlDoc) reset(src []byte) error {
	d.src, d.ents, d.raws, d.step, d.strQ = src, nil, map[string]string{}, "  ", 0
	stepKnown := false // containerd's and go-toml's own layout until a key says otherwise
	var p unstable.Parser
	p.Reset(src)
	hdr := -1
	var hdrPath []string
	for p.NextExpression() {
		e := p.Expression()
		var parts []*unstable.Node
		for it := e.Key(); it.Next(); {
			parts = append(parts, it.Node())
		}
		first, last := parts[0].Raw, parts[len(parts)-1].Raw
		ent := tomlEntry{kind: e.Kind, table: hdr, start: d.lineStart(int(first.Offset))}
		line := src[ent.start:first.Offset]
		ent.indent = string(line[:len(line)-len(bytes.TrimLeft(line, " \t"))])
		keyEnd := int(last.Offset + last.Length)
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			ent.table, ent.path = -1, keyPath(nil, parts)
			hdr, hdrPath = len(d.ents), ent.path
			ent.end = d.lineEnd(keyEnd)
			d.noteRaws(ent.path, 0, parts, &p)
		case unstable.KeyValue:
			ent.path, ent.keyLen = keyPath(slices.Clone(hdrPath), parts), len(hdrPath)
			ent.valEnd = int(e.Raw.Offset + e.Raw.Length)
			ent.valStart = keyEnd + valueOffset(src[keyEnd:ent.valEnd])
			ent.end = d.lineEnd(ent.valEnd)
			ent.inline = e.Value().Kind == unstable.InlineTable
			if e.Value().Kind == unstable.String && d.strQ == 0 {
				d.strQ = src[ent.valStart]
			}
			d.noteRaws(ent.path, len(hdrPath), parts, &p)
			if !stepKnown && hdr >= 0 {
				d.step, _ = strings.CutPrefix(ent.indent, d.ents[hdr].indent)
				stepKnown = true
			}
		default:
			continue
		}
		d.ents = append(d.ents, ent)
	}
	if err := p.Error(); err != nil {
		return fmt.Errorf("parsing TOML: %w", err)
	}
	return nil
}

// keyPath appends a key's parts, unquoted, to prefix.
func keyPath(prefix []string, parts []*unstable.Node) []string {
	for _, k := range parts {
		prefix = append(prefix, string(k.Data))
	}
	return prefix
}

// noteRaws remembers how each key part of path from index from is written,
// so that new headers quote them as the file does.
func (d *tomlDoc) noteRaws(path []string, from int, parts []*unstable.Node, p *unstable.Parser) {
	for i, k := range parts {
		id := pathID(path[:from+i+1])
		if _, ok := d.raws[id]; !ok {
			d.raws[id] = string(p.Raw(k.Raw))
		}
	}
}

// pathID names a key path in d.raws. Each part is quoted, so that no key
// (a TOML key may hold any character, NUL too) makes two paths one.
func pathID(path []string) string {
	var b strings.Builder
	for _, part := range path {
		b.WriteString(strconv.Quote(part))
	}
	return b.String()
}

// valueOffset is where the value starts after a key: past `=` and blanks.
func valueOffset(b []byte) int {
	i := bytes.IndexByte(b, '=') + 1
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

// lineStart is the offset of the line holding offset o.
func (d *tomlDoc) lineStart(o int) int {
	return bytes.LastIndexByte(d.src[:o], '\n') + 1
}

// lineEnd is the offset after the newline ending the line holding o.
func (d *tomlDoc) lineEnd(o int) int {
	if i := bytes.IndexByte(d.src[o:], '\n'); i >= 0 {
		return o + i + 1
	}
	return len(d.src)
}

// free reports whether the line starting at o belongs to no expression:
// it is blank or a comment.
func (d *tomlDoc) free(o int) bool {
	return !slices.ContainsFunc(d.ents, func(e tomlEntry) bool { return e.start <= o && o < e.end })
}

// blank reports whether the line starting at o is empty or white space.
func (d *tomlDoc) blank(o int) bool {
	return o < len(d.src) && len(bytes.TrimSpace(d.src[o:d.lineEnd(o)])) == 0
}

// prevLine is the start of the line before the one starting at o, or -1.
func (d *tomlDoc) prevLine(o int) int {
	if o == 0 {
		return -1
	}
	return d.lineStart(o - 1)
}

// attached is where the comment lines directly above the line at o start.
func (d *tomlDoc) attached(o int) int {
	for p := d.prevLine(o); p >= 0 && d.free(p) && !d.blank(p); p = d.prevLine(p) {
		o = p
	}
	return o
}

// ownEnd is where a table's own lines end: after its last key/value, or
// after its header. For the root table (-1) it is -1 without root keys.
func (d *tomlDoc) ownEnd(hdr int) int {
	if k := d.lastKey(hdr); k >= 0 {
		return d.ents[k].end
	}
	if hdr >= 0 {
		return d.ents[hdr].end
	}
	return -1
}

// lastKey is the index of the last key/value of header hdr (-1: the root
// table), or -1. A table's key/values are the entries that follow its
// header up to the next header, so only those are looked at: Delete asks
// this of every header it removes, and scanning the whole file each time
// made removing a table of many sub-tables quadratic.
func (d *tomlDoc) lastKey(hdr int) int {
	if hdr >= 0 && d.ents[hdr].kind == unstable.KeyValue {
		return -1 // a key/value heads no table
	}
	last := -1
	for i := hdr + 1; i < len(d.ents) && d.ents[i].kind == unstable.KeyValue; i++ {
		last = i
	}
	return last
}

func hasPrefix(path, prefix []string) bool {
	return len(path) >= len(prefix) && slices.Equal(path[:len(prefix)], prefix)
}

// find returns the index of the first entry for which ok holds, or -1.
func (d *tomlDoc) find(ok func(e tomlEntry) bool) int {
	return slices.IndexFunc(d.ents, ok)
}

// header is the index of the [path] header, or -1.
func (d *tomlDoc) header(path []string) int {
	return d.find(func(e tomlEntry) bool { return e.kind == unstable.Table && slices.Equal(e.path, path) })
}

// keyAt is the index of the key/value whose full key is path, or -1.
func (d *tomlDoc) keyAt(path []string) int {
	return d.find(func(e tomlEntry) bool { return e.kind == unstable.KeyValue && slices.Equal(e.path, path) })
}

// valueOver is the index of a key/value whose key is a proper prefix of
// path: path lies inside its value (an inline table, or not a table).
func (d *tomlDoc) valueOver(path []string) int {
	return d.find(func(e tomlEntry) bool {
		return e.kind == unstable.KeyValue && len(e.path) < len(path) && hasPrefix(path, e.path)
	})
}

// dottedIn returns the header (-1 for the root) under which dotted keys
// define the table at path, if they do.
func (d *tomlDoc) dottedIn(path []string) (int, bool) {
	i := d.find(func(e tomlEntry) bool {
		return e.kind == unstable.KeyValue && e.keyLen < len(path) && len(e.path) > len(path) && hasPrefix(e.path, path)
	})
	if i < 0 {
		return 0, false
	}
	return d.ents[i].table, true
}

// isTable reports whether path is a table in the file: a header, a table
// made by dotted keys, or a super-table of a header.
func (d *tomlDoc) isTable(path []string) bool {
	if _, ok := d.dottedIn(path); ok {
		return true
	}
	return d.find(func(e tomlEntry) bool { return e.kind != unstable.KeyValue && hasPrefix(e.path, path) }) >= 0
}

// arrayAt refuses paths that reach into an array of tables (which element
// an edit means is not decidable), or when whole is set that contain one.
func (d *tomlDoc) arrayAt(path []string, whole bool) error {
	for _, e := range d.ents {
		if e.kind == unstable.ArrayTable && (hasPrefix(path, e.path) || whole && hasPrefix(e.path, path)) {
			return fmt.Errorf("%s is an array of tables or lies in one", strings.Join(path, "."))
		}
	}
	return nil
}
