package spec

import (
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The engines: key holds one section per engine, engines.<name>. The spec
// knows only what every section has (enabled); what else an engine reads
// there is the engine's own (package engines), read through a
// SectionParser with the same strictness and positions as the rest of the
// spec.

// Engines maps an engine's name to its section.
type Engines map[string]*EngineSection

// EngineSection is one engines.<name>: mapping, merged over the drop-ins.
type EngineSection struct {
	Pos     Pos
	Enabled Toggle
	// Settings are the engine's own, as its SectionParser returned them.
	Settings any
}

// Engine returns the section of the named engine; an absent one is the
// zero section with Enabled Auto.
func (s *Spec) Engine(name string) EngineSection {
	if s != nil {
		if e := s.Engines[name]; e != nil {
			return *e
		}
	}
	return EngineSection{Enabled: Auto}
}

// A SectionParser reads one engine's section. prev is what earlier files
// set (nil at first): a drop-in overrides field by field, so the parser
// starts from a copy of prev and sets only the keys sec holds.
type SectionParser func(prev any, sec *Section) any

// A Section is one engines.<name>: mapping being read.
type Section struct {
	p      *parser
	key, n *yaml.Node
	what   string
}

// Field is one key a section may hold and what to do with its value.
type Field struct {
	Key string
	Set func(v Value)
}

// Errorf reports a mistake about the section as a whole, at its key.
func (s *Section) Errorf(hint, format string, args ...any) { s.p.errorf(s.key, hint, format, args...) }

// Fields dispatches the section's keys (enabled aside, which the spec
// reads itself) to their fields. An unknown key is an error with the
// closest known key as the hint; a null value means "not set".
func (s *Section) Fields(fields ...Field) {
	fs := []field{{"enabled", func(_, _ *yaml.Node) {}}}
	for _, f := range fields {
		set := f.Set
		fs = append(fs, field{f.Key, func(k, v *yaml.Node) { set(Value{p: s.p, k: k, v: v}) }})
	}
	s.p.fields(s.n, s.what, fs)
}

// Value is one key's value in a section, with readers that report a
// mistake at its position and return ok false.
type Value struct {
	p    *parser
	k, v *yaml.Node
}

// Key is the key the value belongs to.
func (v Value) Key() string { return v.k.Value }

// Errorf reports a mistake at the value, with a hint saying what to write.
func (v Value) Errorf(hint, format string, args ...any) { v.p.errorf(v.v, hint, format, args...) }

// String reads any scalar as text.
func (v Value) String(hint string) (string, bool) { return v.p.str(v.v, v.k.Value, hint) }

// Int reads a whole number.
func (v Value) Int(hint string) (int, bool) { return v.p.integer(v.v, v.k.Value, hint) }

// Strings reads a list of strings, with a Value per item for errors.
func (v Value) Strings(hint string) ([]string, []Value, bool) {
	vals, nodes, ok := v.p.strList(v.v, v.k.Value, hint)
	items := make([]Value, len(nodes))
	for i, n := range nodes {
		items[i] = Value{p: v.p, k: v.k, v: n}
	}
	return vals, items, ok
}

// Pos is where the value is written.
func (v Value) Pos() Pos { return v.p.pos(v.v) }

// AbsPath reads a host path. Engines' paths are absolute because they are
// resolved under --root, not relative to the spec.
func (v Value) AbsPath(example string) (string, bool) {
	hint := "write an absolute path such as " + example
	s, ok := v.String(hint)
	if !ok {
		return "", false
	}
	if !filepath.IsAbs(s) {
		v.Errorf(hint, "%s: %q is not an absolute path", v.Key(), s)
		return "", false
	}
	return filepath.Clean(s), true
}

// Unit reads a systemd unit name.
func (v Value) Unit(example string) (string, bool) {
	hint := "write a systemd unit name such as " + example
	s, ok := v.String(hint)
	if !ok {
		return "", false
	}
	if s == "" {
		v.Errorf(hint, "%s: empty unit name", v.Key())
		return "", false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(":-_.\\@", c)) {
			v.Errorf(hint, "%s: %q is not a unit name", v.Key(), s)
			return "", false
		}
	}
	return s, true
}

// Enum reads one of allowed.
func (v Value) Enum(allowed ...string) (string, bool) {
	hint := "write one of " + strings.Join(allowed, ", ")
	s, ok := v.String(hint)
	if !ok {
		return "", false
	}
	if indexOf(allowed, s) < 0 {
		v.Errorf(hint, "%s: unknown value %q", v.Key(), s)
		return "", false
	}
	return s, true
}

// engines reads the engines: mapping: each key must be an engine the
// options know.
func (p *parser) engines(s *Spec, n *yaml.Node) {
	if !p.mapping(n, "engines") {
		return
	}
	known := slices.Sorted(maps.Keys(p.opts.Engines)) // the hint is the same every time
	for _, e := range p.pairs(n) {
		name := e.k.Value
		parse, ok := p.opts.Engines[name]
		if !ok {
			p.errorf(e.k, suggestKey(name, known), "unknown engine %q in engines", name)
			continue
		}
		if isNull(e.v) {
			continue
		}
		what := "engines." + name
		if !p.mapping(e.v, what) {
			continue
		}
		sec := s.Engines[name]
		if sec == nil {
			sec = &EngineSection{}
			s.Engines[name] = sec
		}
		sec.Pos = p.pos(e.k)
		for _, f := range p.pairs(e.v) {
			if f.k.Value == "enabled" && !isNull(f.v) {
				p.toggle(&sec.Enabled, f.k, f.v)
			}
		}
		sec.Settings = parse(sec.Settings, &Section{p: p, key: e.k, n: e.v, what: what})
	}
}

func (p *parser) toggle(dst *Toggle, k, v *yaml.Node) {
	const hint = "write auto, true or false"
	if v.Kind == yaml.ScalarNode {
		if v.Value == string(Auto) {
			*dst = Auto
			return
		}
		if b, ok := parseBool(v.Value); ok {
			*dst = Off
			if b {
				*dst = On
			}
			return
		}
	}
	p.errorf(v, hint, "%s: expected auto, true or false, got %s", k.Value, describe(v))
}

func (p *parser) backups(b *Backups, n *yaml.Node) {
	p.fields(n, "backups", []field{
		{"keep", func(k, v *yaml.Node) {
			const hint = "keep at least 1 backup set (the default is 10)"
			if i, ok := p.integer(v, k.Value, hint); ok {
				if i < 1 {
					p.errorf(v, hint, "keep: %d is less than 1", i)
				}
				b.Keep = i
			}
		}},
	})
}

// describe names a value for a message: scalars by their text (never used
// where the value could be a secret), the rest by kind.
func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return strconv.Quote(n.Value)
	}
	return kindOf(n)
}
