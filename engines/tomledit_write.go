package engines

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// fmtKey writes one key part, quoted unless TOML allows it bare.
func fmtKey(k string) string {
	if k == "" || strings.ContainsFunc(k, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) {
		return tomlQuote(k)
	}
	return k
}

// fmtPath writes path[from:] as a dotted key, each part as the file
// already writes it where it does (so a new header quotes
// "io.containerd.grpc.v1.cri" like its neighbours).
func (d *tomlDoc) fmtPath(path []string, from int) string {
	parts := make([]string, 0, len(path)-from)
	for i := from; i < len(path); i++ {
		raw, ok := d.raws[pathID(path[:i+1])]
		if !ok {
			raw = fmtKey(path[i])
		}
		parts = append(parts, raw)
	}
	return strings.Join(parts, ".")
}

// literal writes v as a TOML value. Strings take quote q's style when it
// is a single quote and the string fits a literal string.
func (d *tomlDoc) literal(v any, q byte) (string, error) {
	switch v := v.(type) {
	case string:
		if q == '\'' && !strings.ContainsFunc(v, func(r rune) bool { return r == '\'' || r < 0x20 || r == 0x7f }) {
			return "'" + v + "'", nil
		}
		return tomlQuote(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case int:
		return strconv.Itoa(v), nil
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			s, err := d.literal(e, q)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	case map[string]any:
		if len(v) == 0 {
			return "{}", nil
		}
		parts := make([]string, 0, len(v))
		for _, k := range sortedKeys(v) {
			s, err := d.literal(v[k], q)
			if err != nil {
				return "", err
			}
			parts = append(parts, fmtKey(k)+" = "+s)
		}
		return "{ " + strings.Join(parts, ", ") + " }", nil
	}
	// Floats, dates and times: go-toml's own form.
	b, err := toml.Marshal(map[string]any{"v": v})
	if err != nil {
		return "", fmt.Errorf("encoding %v: %w", v, err)
	}
	s, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "v = ")
	if !ok {
		return "", fmt.Errorf("encoding %v: unexpected %q", v, b)
	}
	return s, nil
}

// tableBlock writes m as the table at path: a [header] with its keys for
// every table that has keys (or none at all), super-tables left implicit;
// sub-tables indented one step under the header above them.
func (d *tomlDoc) tableBlock(path []string, m map[string]any, indent string) (string, error) {
	var b strings.Builder
	var emit func(path []string, m map[string]any, indent string) error
	emit = func(path []string, m map[string]any, indent string) error {
		var keys, subs []string
		for _, k := range sortedKeys(m) {
			if _, ok := m[k].(map[string]any); ok {
				subs = append(subs, k)
			} else {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 || len(subs) == 0 {
			b.WriteString(indent + "[" + d.fmtPath(path, 0) + "]" + d.nl)
			for _, k := range keys {
				lit, err := d.literal(m[k], d.strQ)
				if err != nil {
					return err
				}
				b.WriteString(indent + d.step + fmtKey(k) + " = " + lit + d.nl)
			}
			indent += d.step
		}
		for _, k := range subs {
			if err := emit(append(path[:len(path):len(path)], k), m[k].(map[string]any), indent); err != nil {
				return err
			}
		}
		return nil
	}
	if err := emit(path, m, indent); err != nil {
		return "", err
	}
	return b.String(), nil
}
