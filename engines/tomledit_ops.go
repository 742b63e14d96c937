package engines

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Set makes the value at path v. An existing key keeps its line and only
// its value bytes change. A missing key goes at the end of its table's own
// lines, as a dotted key where dotted keys define the table. A missing
// table gets a [header]. Inside an inline table, that inline table alone
// is encoded again. Maps become tables; other values are written as TOML
// literals.
func (d *tomlDoc) Set(path []string, v any) error {
	if len(path) == 0 {
		return errors.New("setting the whole document")
	}
	if err := d.arrayAt(path, true); err != nil {
		return err
	}
	if i := d.keyAt(path); i >= 0 {
		e := d.ents[i]
		lit, err := d.literal(v, d.src[e.valStart])
		if err != nil {
			return err
		}
		return d.splice(e.valStart, e.valEnd, lit)
	}
	if i := d.valueOver(path); i >= 0 {
		return d.editInline(i, path, v, false)
	}
	if d.isTable(path) {
		if err := d.Delete(path); err != nil {
			return err
		}
	}
	parent, key := path[:len(path)-1], path[len(path)-1]
	for n := len(parent); n > 0; n-- {
		if hdr, ok := d.dottedIn(parent[:n]); ok {
			return d.insertDotted(hdr, parent[:n], path, v)
		}
	}
	m, isMap := v.(map[string]any)
	switch {
	case isMap:
		return d.insertTable(path, m)
	case len(parent) == 0:
		return d.insertRootKey(key, v)
	}
	if h := d.header(parent); h >= 0 {
		return d.insertKey(h, key, v)
	}
	return d.insertTable(parent, map[string]any{key: v})
}

// Delete removes the key or table at path with everything below it:
// header and key/value lines, and the comments inside a removed table's
// own lines. Deleting what is not there does nothing.
func (d *tomlDoc) Delete(path []string) error {
	if len(path) == 0 {
		return errors.New("deleting the whole document")
	}
	if err := d.arrayAt(path, false); err != nil {
		return err
	}
	if i := d.valueOver(path); i >= 0 {
		if !d.ents[i].inline {
			return nil
		}
		return d.editInline(i, path, nil, true)
	}
	var spans [][2]int
	for i, e := range d.ents {
		if hasPrefix(e.path, path) {
			spans = append(spans, [2]int{e.start, max(e.end, d.ownEnd(i))})
		}
	}
	if len(spans) == 0 {
		return nil
	}
	// Merge touching spans, then drop them from the last one back.
	merged := [][2]int{spans[0]}
	for _, s := range spans[1:] {
		if last := &merged[len(merged)-1]; s[0] <= last[1] {
			last[1] = max(last[1], s[1])
		} else {
			merged = append(merged, s)
		}
	}
	src := slices.Clone(d.src)
	for i := len(merged) - 1; i >= 0; i-- {
		s, e := d.tidy(merged[i][0], merged[i][1])
		src = append(src[:s], src[e:]...)
	}
	return d.reset(src)
}

// tidy widens a span about to be removed so that no run of two blank
// lines, and no blank line at the end of the file, is left behind.
func (d *tomlDoc) tidy(s, e int) (int, int) {
	if p := d.prevLine(s); e < len(d.src) && (p < 0 || d.blank(p)) {
		for e < len(d.src) && d.blank(e) && d.free(e) {
			e = d.lineEnd(e)
		}
	}
	if e == len(d.src) {
		for p := d.prevLine(s); p >= 0 && d.blank(p) && d.free(p); p = d.prevLine(p) {
			s = p
		}
	}
	return s, e
}

// splice replaces src[s:e] with text and parses the result again.
func (d *tomlDoc) splice(s, e int, text string) error {
	src := make([]byte, 0, len(d.src)+len(text))
	src = append(append(append(src, d.src[:s]...), text...), d.src[e:]...)
	return d.reset(src)
}

// insertLines puts whole lines at the line start pos (or the end of a
// file that lacks its last newline).
func (d *tomlDoc) insertLines(pos int, text string) error {
	if pos > 0 && d.src[pos-1] != '\n' {
		text = d.nl + text
	}
	return d.splice(pos, pos, text)
}

// insertKey adds `key = v` at the end of header h's own lines.
func (d *tomlDoc) insertKey(h int, key string, v any) error {
	lit, err := d.literal(v, d.strQ)
	if err != nil {
		return err
	}
	indent := d.ents[h].indent + d.step
	if k := d.lastKey(h); k >= 0 {
		indent = d.ents[k].indent
	}
	return d.insertLines(d.ownEnd(h), indent+fmtKey(key)+" = "+lit+d.nl)
}

// insertRootKey adds `key = v` after the root table's last key, or above
// the first table (and the comments on it) when the root has no keys.
func (d *tomlDoc) insertRootKey(key string, v any) error {
	lit, err := d.literal(v, d.strQ)
	if err != nil {
		return err
	}
	line := fmtKey(key) + " = " + lit + d.nl
	if k := d.lastKey(-1); k >= 0 {
		return d.insertLines(d.ents[k].end, d.ents[k].indent+line)
	}
	if len(d.ents) == 0 {
		return d.insertLines(len(d.src), line)
	}
	return d.insertLines(d.attached(d.ents[0].start), line+d.nl)
}

// insertDotted adds path = v as a dotted key under header hdr (-1 for
// the root), after the last key there that defines table q.
func (d *tomlDoc) insertDotted(hdr int, q, path []string, v any) error {
	lit, err := d.literal(v, d.strQ)
	if err != nil {
		return err
	}
	from, last := 0, -1
	if hdr >= 0 {
		from = len(d.ents[hdr].path)
	}
	for i, e := range d.ents {
		if e.kind == unstable.KeyValue && e.table == hdr && hasPrefix(e.path, q) {
			last = i
		}
	}
	e := d.ents[last]
	return d.insertLines(e.end, e.indent+d.fmtPath(path, from)+" = "+lit+d.nl)
}

// insertTable writes the table at path as [headers]: before its first
// sub-table when it exists only as their super-table, else after the last
// table sharing the longest key prefix with it, else at the end.
func (d *tomlDoc) insertTable(path []string, m map[string]any) error {
	indent := ""
	for n := len(path) - 1; n > 0; n-- {
		if h := d.header(path[:n]); h >= 0 {
			indent = d.ents[h].indent + d.step
			break
		}
	}
	block, err := d.tableBlock(path, m, indent)
	if err != nil {
		return err
	}
	if i := d.find(func(e tomlEntry) bool { return e.kind != unstable.KeyValue && hasPrefix(e.path, path) }); i >= 0 {
		pos := d.attached(d.ents[i].start)
		if p := d.prevLine(pos); p >= 0 && d.blank(p) {
			block += d.nl
		}
		return d.insertLines(pos, block)
	}
	anchor, best := -1, 0
	for i, e := range d.ents {
		if n := commonLen(e.path, path); e.kind != unstable.KeyValue && n > 0 && n >= best {
			anchor, best = i, n
		}
	}
	sep := ""
	if anchor < 0 {
		if p := d.prevLine(len(d.src)); len(d.src) > 0 && !(p >= 0 && d.blank(p)) {
			sep = d.nl
		}
		return d.insertLines(len(d.src), sep+block)
	}
	if p := d.prevLine(d.attached(d.ents[anchor].start)); p >= 0 && d.blank(p) {
		sep = d.nl
	}
	return d.insertLines(d.ownEnd(anchor), sep+block)
}

func commonLen(a, b []string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// editInline sets (or deletes) path inside the inline table of entry i
// by encoding that inline table again; its inner comments are lost.
func (d *tomlDoc) editInline(i int, path []string, v any, del bool) error {
	e := d.ents[i]
	if !e.inline {
		return fmt.Errorf("%s is not a table", strings.Join(e.path, "."))
	}
	var wrap map[string]any
	if err := toml.Unmarshal(append([]byte("v = "), d.src[e.valStart:e.valEnd]...), &wrap); err != nil {
		return fmt.Errorf("decoding the inline table %s: %w", strings.Join(e.path, "."), err)
	}
	m, _ := wrap["v"].(map[string]any)
	rel := path[len(e.path):]
	t := m
	for _, k := range rel[:len(rel)-1] {
		next, ok := t[k].(map[string]any)
		if !ok {
			if del {
				return nil
			}
			next = map[string]any{}
			t[k] = next
		}
		t = next
	}
	if del {
		delete(t, rel[len(rel)-1])
	} else {
		t[rel[len(rel)-1]] = v
	}
	lit, err := d.literal(m, d.strQ)
	if err != nil {
		return err
	}
	return d.splice(e.valStart, e.valEnd, lit)
}
