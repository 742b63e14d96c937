package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// defaultKeep is how many backup sets are kept when backups.keep is unset.
const defaultKeep = 10

// MaxFileSize bounds every file the spec loader reads: the spec, its
// drop-ins and the secret and TLS files they name. A spec is kilobytes.
const MaxFileSize = 1 << 20

// ErrTooLarge is what Options.ReadFile returns (marked by MarkTooLarge) for
// a file over MaxFileSize: a spec file or drop-in then gets the size error,
// its hint and its name among the spec's Errors instead of an I/O failure.
var ErrTooLarge = errors.New("larger than a spec file may be")

// MarkTooLarge marks a reader's error about a file over its size bound as
// ErrTooLarge, its message unchanged: a password_file or ca_file over the
// bound is reported in the reader's words.
func MarkTooLarge(err error) error { return tooLarge{err} }

type tooLarge struct{ error }

func (tooLarge) Is(target error) bool { return target == ErrTooLarge }
func (e tooLarge) Unwrap() error      { return e.error }

// Parse reads one spec document named name (the name positions carry).
// Files it references (password_file, ca_file, ...) are read through opts,
// relative to the directory of name unless absolute. A bad spec returns
// Errors listing every mistake found.
func Parse(name string, data []byte, opts Options) (*Spec, error) {
	s := newSpec()
	p := newParser(name, opts.withDefaults())
	p.document(s, data)
	if len(p.errs) > 0 {
		return nil, p.errs.sorted()
	}
	s.Files = []string{name}
	s.setDefaults()
	return s, nil
}

// Load reads the spec at mainPath, then the drop-ins
// <dir(mainPath)>/conf.d/*.yaml in lexical order, each merged over what came
// before: a drop-in's mirrors.<registry> replaces the whole entry, its
// configs.<host>.auth and .tls replace those blocks, and the engines: and
// backups: keys it sets override. A missing conf.d is not an error. A bad
// spec returns Errors covering every file; I/O failures are wrapped errors.
func Load(mainPath string, opts Options) (*Spec, error) {
	opts = opts.withDefaults()
	data, err := opts.ReadFile(mainPath)
	if err != nil && !errors.Is(err, ErrTooLarge) {
		return nil, fmt.Errorf("reading spec: %w", err)
	}
	mainErr := err
	dropIns, err := opts.Glob(filepath.Join(globEscape(filepath.Dir(mainPath)), "conf.d", "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("listing drop-ins: %w", err)
	}
	slices.Sort(dropIns)

	s := newSpec()
	s.Files = append([]string{mainPath}, dropIns...)
	var errs Errors
	for i, name := range s.Files {
		if i > 0 {
			if data, err = opts.ReadFile(name); err != nil && !errors.Is(err, ErrTooLarge) {
				return nil, fmt.Errorf("reading drop-in: %w", err)
			}
		} else {
			err = mainErr
		}
		if err != nil { // too large: named with the other mistakes
			errs = append(errs, sizeError(name, -1))
			continue
		}
		p := newParser(name, opts)
		p.dropIn = i > 0
		p.document(s, data)
		errs = append(errs, p.errs.sorted()...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	s.setDefaults()
	return s, nil
}

func (o Options) withDefaults() Options {
	if o.ReadFile == nil {
		o.ReadFile = readFileBounded
	}
	if o.Glob == nil {
		o.Glob = filepath.Glob
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	return o
}

// readFileBounded is os.ReadFile that stops reading past MaxFileSize.
func readFileBounded(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileSize {
		return nil, MarkTooLarge(fmt.Errorf("%s is larger than %d bytes", name, MaxFileSize))
	}
	return b, nil
}

// globEscape quotes the pattern characters of a literal path, so that a
// spec directory named like "[x]" still finds its drop-ins.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func newSpec() *Spec {
	return &Spec{Mirrors: map[string]*Mirror{}, Configs: map[string]*Config{}, Engines: Engines{}}
}

// setDefaults fills what an absent key means, so consumers never see an
// empty Toggle or a zero Keep.
func (s *Spec) setDefaults() {
	for _, e := range s.Engines {
		if e.Enabled == "" {
			e.Enabled = Auto
		}
	}
	if s.Backups.Keep == 0 {
		s.Backups.Keep = defaultKeep
	}
}

// document reads one file's YAML over s. An empty file, or one with only
// comments, sets nothing.
func (p *parser) document(s *Spec, data []byte) {
	root := p.root(data)
	if root == nil {
		return
	}
	p.fields(root, "the spec", []field{
		{"serial", func(k, v *yaml.Node) { p.serial(s, k, v) }},
		{"mirrors", func(_, v *yaml.Node) { p.mirrors(s, v) }},
		{"configs", func(_, v *yaml.Node) { p.configs(s, v) }},
		{"engines", func(_, v *yaml.Node) { p.engines(s, v) }},
		{"backups", func(_, v *yaml.Node) { p.backups(&s.Backups, v) }},
	})
	p.dropAfterRefusal()
}

// sizeError refuses a spec file over MaxFileSize; size is -1 when the
// reader stopped before the end.
func sizeError(file string, size int) *Error {
	msg := fmt.Sprintf("more than the %d bytes a spec file may have", MaxFileSize)
	if size >= 0 {
		msg = fmt.Sprintf("%d bytes, %s", size, msg)
	}
	return &Error{Pos: Pos{File: file}, Msg: msg,
		Hint: "split it into drop-ins, conf.d/*.yaml beside the main file, each at most 1 MiB; or share repeated parts with aliases"}
}

// root is the top mapping of one file's YAML: nil when the file is empty
// or not a single YAML document with a mapping (the errors say why).
func (p *parser) root(data []byte) *yaml.Node {
	if len(data) > MaxFileSize {
		p.errs = append(p.errs, sizeError(p.file, len(data)))
		return nil
	}
	p.lines = newEditorLines(data)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			p.syntaxError(err, data)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		p.errorf(&next, "merge them into one document, or move the second into a conf.d/*.yaml drop-in",
			"more than one YAML document")
	case !errors.Is(err, io.EOF):
		p.syntaxError(err, data)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	p.setBudget(&doc)
	root := p.resolve(doc.Content[0])
	if !isNull(root) && root.Kind != yaml.MappingNode {
		p.errorf(root, "a spec is a mapping with the keys mirrors, configs, engines and backups",
			"expected a mapping at the top of the file, got %s", kindOf(root))
		return nil
	}
	return root
}

// syntaxError turns a yaml.v3 parse error ("yaml: line 3: ...") into an
// Error. yaml.v3 gives no column, so the position is the line's start.
func (p *parser) syntaxError(err error, data []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, text
			}
		}
	}
	pos := Pos{File: p.file}
	hint := ""
	if line > 0 {
		pos.Line, pos.Column = p.lines.at(line, 1)
		hint = syntaxHint(lineAt(data, pos.Line))
	}
	p.errs = append(p.errs, &Error{Pos: pos, Msg: "invalid YAML: " + msg, Hint: hint})
}

func lineAt(data []byte, n int) string {
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return lines[n-1]
}

func syntaxHint(line string) string {
	trimmed := strings.TrimLeft(line, " \t")
	switch {
	case strings.Contains(line[:len(line)-len(trimmed)], "\t"):
		return "indent with spaces; YAML does not allow tabs"
	case strings.HasPrefix(trimmed, "*"):
		// An unquoted * starts a YAML alias; the k3s docs warn about it too.
		return `quote the wildcard: "*":`
	}
	return "check the indentation and quoting on this line and the one before"
}
