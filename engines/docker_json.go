package engines

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// jsonObject is a JSON object that keeps its keys in file order, so that
// merging our keys into daemon.json or config.json leaves every other key
// where the user put it, with its value byte for byte.
type jsonObject struct {
	keys []string
	vals map[string]json.RawMessage
}

// parseJSONObject reads a whole file that must hold one JSON object. An
// empty (or blank) file is an empty object, as dockerd treats it. name is
// the host path, for the error message.
func parseJSONObject(name string, data []byte) (*jsonObject, error) {
	o := &jsonObject{vals: map[string]json.RawMessage{}}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // dockerd strips a BOM too
	if len(bytes.TrimSpace(data)) == 0 {
		return o, nil
	}
	// Unmarshal checks the whole document first: its SyntaxError offsets
	// count from the start of the file, a Decoder's from the current value.
	var all json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		// Where, not what: a syntax error quotes the byte it met, and
		// these files hold passwords (config.json's auths).
		off, what := int64(len(data)), "the file ends inside a value"
		var se *json.SyntaxError
		if errors.As(err, &se) && se.Offset < int64(len(data)) {
			off, what = se.Offset-1, "a character that cannot stand there" // Offset counts the offending byte
		}
		line, col := lineCol(data, off)
		return nil, fmt.Errorf("%s is not valid JSON (line %d, column %d: %s); mirrorctl does not overwrite it, fix it first",
			name, line, col, what)
	}
	dec := json.NewDecoder(bytes.NewReader(all))
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return nil, fmt.Errorf("%s does not hold a JSON object; mirrorctl does not overwrite it, fix it first", name)
	}
	for dec.More() {
		tok, _ := dec.Token()
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err) // not reached: the document is valid
		}
		o.setRaw(key, raw) // a duplicate key: the last value wins, as in encoding/json
	}
	return o, nil
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, off int64) (int, int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return line, col
}

func (o *jsonObject) get(key string) (json.RawMessage, bool) {
	v, ok := o.vals[key]
	return v, ok
}

// setRaw sets key, keeping its place when it exists and appending it otherwise.
func (o *jsonObject) setRaw(key string, raw json.RawMessage) {
	if _, ok := o.vals[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.vals[key] = raw
}

func (o *jsonObject) set(key string, v any) {
	o.setRaw(key, marshalJSON(v))
}

func (o *jsonObject) del(key string) {
	if _, ok := o.vals[key]; !ok {
		return
	}
	delete(o.vals, key)
	o.keys = slices.DeleteFunc(o.keys, func(k string) bool { return k == key })
}

// marshal returns the object indented by two spaces, with a final newline.
func (o *jsonObject) marshal() []byte {
	var flat bytes.Buffer
	flat.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			flat.WriteByte(',')
		}
		flat.Write(marshalJSON(k))
		flat.WriteByte(':')
		flat.Write(o.vals[k])
	}
	flat.WriteByte('}')
	var compact, out bytes.Buffer
	err := json.Compact(&compact, flat.Bytes())
	if err == nil {
		err = json.Indent(&out, compact.Bytes(), "", "  ")
	}
	if err != nil {
		panic("engines: re-indenting parsed JSON: " + err.Error()) // every value was validated on parse
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// marshalJSON encodes v without HTML escaping (URLs keep their "&").
func marshalJSON(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("engines: encoding JSON: " + err.Error()) // only strings, lists and maps of them
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// stringList decodes a JSON array of strings; ok is false for anything else.
func stringList(raw json.RawMessage) (list []string, ok bool) {
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, false
	}
	return list, list != nil
}
