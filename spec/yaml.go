package spec

import (
	"fmt"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// parser walks one file's yaml.Node tree. It never stops at the first
// mistake: every error is collected with its position.
type parser struct {
	file   string // the name positions carry
	dir    string // where relative references are resolved
	dropIn bool   // a conf.d file, not the main document
	opts   Options
	errs   Errors

	// Aliases and merge keys make a small file a large tree: every node
	// reached through one is counted in expanded, and once the document's
	// budget would be crossed, nothing more is expanded (expansion.go).
	budget, expanded int
	sizes            map[*yaml.Node]int // subtree sizes of alias targets
	// refused is the index in errs of the budget error, or -1: the errors
	// after it come from the values it left out and are dropped.
	refused int
	regexps map[string]error        // rewrite patterns compiled
	certs   map[certInput]certCheck // TLS files checked (one CA is often every mirror's)
	seen    map[Error]bool          // errors recorded
	lines   editorLines             // yaml.v3's lines to an editor's
}

func newParser(name string, opts Options) *parser {
	return &parser{file: name, dir: filepath.Dir(name), opts: opts, budget: minExpansion, refused: -1}
}

func (p *parser) pos(n *yaml.Node) Pos {
	line, column := p.lines.at(n.Line, n.Column)
	return Pos{File: p.file, Line: line, Column: column}
}

// maxErrors bounds the errors one file reports: a file of a megabyte can
// hold half a million mistakes, and nobody reads past the first screen.
const maxErrors = 100

// errorf records a mistake at n. The same mistake reached twice (an
// anchor's, through two aliases) is recorded once.
func (p *parser) errorf(n *yaml.Node, hint, format string, args ...any) {
	if len(p.errs) > maxErrors {
		return
	}
	e := Error{Pos: p.pos(n), Msg: fmt.Sprintf(format, args...), Hint: hint}
	if p.seen[e] {
		return
	}
	if len(p.errs) == maxErrors {
		e = Error{Pos: e.Pos, Msg: fmt.Sprintf("more than %d mistakes in this file: the rest are not listed", maxErrors), Hint: "fix these first"}
	}
	if p.seen == nil {
		p.seen = map[Error]bool{}
	}
	p.seen[e] = true
	p.errs = append(p.errs, &e)
}

// path resolves a reference relative to the file that names it.
func (p *parser) path(ref string) string {
	if filepath.IsAbs(ref) {
		return filepath.Clean(ref)
	}
	return filepath.Join(p.dir, ref)
}

// pair is one entry of a YAML mapping, its value's alias resolved.
type pair struct{ k, v *yaml.Node }

// maxMerge bounds `<<` expansion, which a self-referencing anchor would
// otherwise make endless.
const maxMerge = 8

// pairs returns a mapping's entries, with YAML merge keys (`<<: *anchor`,
// which k3s's yaml.v2 honours) expanded and explicit keys winning. A key
// written twice is an error: yaml.v3 does not check that when it builds a
// Node tree, and the last value silently winning is how mistakes hide.
func (p *parser) pairs(n *yaml.Node) []pair {
	return p.pairsDepth(n, 0)
}

func (p *parser) pairsDepth(n *yaml.Node, depth int) []pair {
	var out, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := p.resolve(n.Content[i]), p.resolve(n.Content[i+1])
		if k.Tag == "!!merge" {
			merged = append(merged, p.mergeSource(k, v, depth)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "keys are names such as endpoint or docker.io", "expected a string key, got %s", kindOf(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.errorf(k, "keep one of them", "duplicate key %q (first at %s)", redactURL(k.Value), p.pos(first))
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, v})
	}
	for _, m := range merged {
		if _, ok := seen[m.k.Value]; !ok {
			seen[m.k.Value] = m.k
			out = append(out, m)
		}
	}
	return out
}

func (p *parser) mergeSource(k, v *yaml.Node, depth int) []pair {
	if depth >= maxMerge {
		p.errorf(k, "", "merge keys (<<) nested too deeply")
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return p.pairsDepth(v, depth+1)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range v.Content {
			if item = p.resolve(item); item.Kind != yaml.MappingNode {
				p.errorf(item, "", "merge key (<<) expects a mapping, got %s", kindOf(item))
				continue
			}
			out = append(out, p.pairsDepth(item, depth+1)...)
		}
		return out
	}
	p.errorf(v, "", "merge key (<<) expects a mapping, got %s", kindOf(v))
	return nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing (null)"
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!str":
			return "a string"
		}
		return "a " + strings.TrimPrefix(n.Tag, "!!") + " value"
	}
	return "an alias"
}

// field is one known key of a mapping and what to do with its value.
type field struct {
	key string
	set func(k, v *yaml.Node)
}

// fields dispatches a mapping's entries to their handlers. A null value
// means "not set" (`cert_file:` with only a comment after it appears in the
// k3s docs), so its handler is not called.
func (p *parser) fields(n *yaml.Node, what string, fs []field) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "", "%s: expected a mapping, got %s", what, kindOf(n))
		return
	}
	known := make([]string, len(fs))
	for i, f := range fs {
		known[i] = f.key
	}
	for _, e := range p.pairs(n) {
		i := indexOf(known, e.k.Value)
		if i < 0 {
			p.errorf(e.k, suggestKey(e.k.Value, known), "unknown key %q in %s", e.k.Value, what)
			continue
		}
		if !isNull(e.v) {
			fs[i].set(e.k, e.v)
		}
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// mapping checks that n is a mapping (null counts as an empty one).
func (p *parser) mapping(n *yaml.Node, what string) bool {
	if isNull(n) {
		return false
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "", "%s: expected a mapping, got %s", what, kindOf(n))
		return false
	}
	return true
}

// str reads a scalar as a string. Like yaml.v2 (which k3s uses), any scalar
// is accepted as text, so `password: 12345` is the string "12345".
func (p *parser) str(n *yaml.Node, what, hint string) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.errorf(n, hint, "%s: expected a string, got %s", what, kindOf(n))
		return "", false
	}
	return n.Value, true
}

// boolean accepts YAML 1.1 booleans as well, because k3s's yaml.v2 does.
func (p *parser) boolean(n *yaml.Node, what string) (bool, bool) {
	if n.Kind == yaml.ScalarNode {
		if b, ok := parseBool(n.Value); ok {
			return b, true
		}
	}
	p.errorf(n, "write true or false", "%s: expected a boolean, got %s", what, kindOf(n))
	return false, false
}

func parseBool(s string) (bool, bool) {
	switch s {
	case "true", "True", "TRUE", "yes", "Yes", "YES", "y", "Y", "on", "On", "ON":
		return true, true
	case "false", "False", "FALSE", "no", "No", "NO", "n", "N", "off", "Off", "OFF":
		return false, true
	}
	return false, false
}

func (p *parser) integer(n *yaml.Node, what, hint string) (int, bool) {
	var i int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
		p.errorf(n, hint, "%s: expected a whole number, got %s", what, kindOf(n))
		return 0, false
	}
	return i, true
}

// strList reads a list of strings and the node of each.
func (p *parser) strList(n *yaml.Node, what, hint string) ([]string, []*yaml.Node, bool) {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, hint, "%s: expected a list of strings, got %s", what, kindOf(n))
		return nil, nil, false
	}
	ok := true
	var vals []string
	var nodes []*yaml.Node
	for _, item := range n.Content {
		item = p.resolve(item)
		s, good := p.str(item, what+" item", hint)
		if !good {
			ok = false
			continue
		}
		vals = append(vals, s)
		nodes = append(nodes, item)
	}
	return vals, nodes, ok
}
