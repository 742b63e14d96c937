package engines

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// config.toml's new bytes are its old bytes with only what mirrorctl
// manages changed: the decoded document (c.doc, edited by takeLegacy and
// setRegistry) is compared with the file as read (c.orig), and each
// difference becomes one edit of tomlDoc. The result must decode to c.doc
// exactly; if the editor cannot get there, the file is encoded whole as
// before, with a warning naming why its comments are lost.

// render returns the file's new content, its bytes unchanged when nothing
// mirrorctl manages differs, and a warning when it had to rewrite the file
// as a whole.
func (c *containerdConfig) render(schema int) ([]byte, string, error) {
	if !c.emptySpec && (schema >= 2 || c.version != 0) {
		c.doc["version"] = int64(schema)
	}
	if c.exists && reflect.DeepEqual(c.doc, c.orig) && slices.Equal(c.owned, c.owns) {
		return c.raw, "", nil
	}
	out, err := c.editInPlace()
	if err == nil {
		return out, "", nil
	}
	whole, werr := c.encodeWhole(schema)
	if werr != nil {
		return nil, "", werr
	}
	if !c.exists {
		return whole, "", nil
	}
	return whole, fmt.Sprintf("%s could not be edited in place (%v): it is rewritten as a whole, and its comments and formatting are lost", c.path, err), nil
}

// editInPlace edits the file's bytes where c.doc differs from c.orig.
func (c *containerdConfig) editInPlace() ([]byte, error) {
	d, err := parseTOMLDoc(c.raw)
	if err != nil {
		return nil, err
	}
	if err := syncTOML(d, nil, c.orig, c.doc); err != nil {
		return nil, err
	}
	out := c.withMarker(d.Bytes(), d.nl)
	var got map[string]any
	if err := toml.Unmarshal(out, &got); err != nil {
		return nil, fmt.Errorf("the edited file is not valid TOML: %w", err)
	}
	if !reflect.DeepEqual(got, c.doc) {
		return nil, errors.New("the edited file would not hold what mirrorctl means to write")
	}
	return out, nil
}

// syncTOML edits d, which holds have at path, until it holds want there:
// keys gone from want are deleted, changed values set, and tables present
// in both are walked into, so that only what differs is touched.
func syncTOML(d *tomlDoc, path []string, have, want map[string]any) error {
	at := func(k string) []string { return append(slices.Clone(path), k) }
	for _, k := range sortedKeys(have) {
		if _, ok := want[k]; !ok {
			if err := d.Delete(at(k)); err != nil {
				return fmt.Errorf("deleting %s: %w", strings.Join(at(k), "."), err)
			}
		}
	}
	for _, k := range sortedKeys(want) {
		h, had := have[k]
		w := want[k]
		if had && reflect.DeepEqual(h, w) {
			continue
		}
		hm, hIsMap := h.(map[string]any)
		wm, wIsMap := w.(map[string]any)
		if !hIsMap || !wIsMap {
			if err := d.Set(at(k), w); err != nil {
				return fmt.Errorf("setting %s: %w", strings.Join(at(k), "."), err)
			}
			continue
		}
		if err := syncTOML(d, at(k), hm, wm); err != nil {
			return err
		}
		// A table emptied of keys stays a table, as in the map, even when
		// only its sub-tables had made it exist.
		if len(wm) == 0 && d.keyAt(at(k)) < 0 && d.valueOver(at(k)) < 0 && !d.isTable(at(k)) {
			if err := d.Set(at(k), wm); err != nil {
				return fmt.Errorf("keeping %s: %w", strings.Join(at(k), "."), err)
			}
		}
	}
	return nil
}

// withMarker writes the auth marker line where it is, drops it when
// mirrorctl owns no auth any more, or adds it as the file's first line.
func (c *containerdConfig) withMarker(b []byte, nl string) []byte {
	want := ""
	if len(c.owns) > 0 {
		want = authMarker + strings.Join(c.owns, ", ")
	}
	for start := 0; start < len(b); {
		end := len(b)
		if i := bytes.IndexByte(b[start:], '\n'); i >= 0 {
			end = start + i + 1
		}
		line := b[start:end]
		if !bytes.HasPrefix(line, []byte(authMarker)) {
			start = end
			continue
		}
		repl := ""
		if want != "" {
			repl = want + string(line[len(bytes.TrimRight(line, "\r\n")):])
		}
		return slices.Concat(b[:start], []byte(repl), b[end:])
	}
	if want == "" {
		return b
	}
	return slices.Concat([]byte(want+nl), b)
}

// encodeWhole is the last resort: the whole document encoded by go-toml,
// comments and formatting lost.
func (c *containerdConfig) encodeWhole(schema int) ([]byte, error) {
	rest := make(map[string]any, len(c.doc))
	for k, v := range c.doc {
		if k != "version" {
			rest[k] = v
		}
	}
	var body bytes.Buffer
	enc := toml.NewEncoder(&body)
	enc.SetIndentTables(true)
	if err := enc.Encode(rest); err != nil {
		return nil, fmt.Errorf("containerd: encoding %s: %w", c.path, err)
	}
	var out bytes.Buffer
	if len(c.owns) > 0 {
		out.WriteString(authMarker + strings.Join(c.owns, ", ") + "\n")
	}
	if _, ok := c.doc["version"]; ok {
		fmt.Fprintf(&out, "version = %d\n", schema)
	}
	if out.Len() > 0 && body.Len() > 0 && body.Bytes()[0] == '[' {
		out.WriteByte('\n')
	}
	out.Write(body.Bytes())
	return out.Bytes(), nil
}
