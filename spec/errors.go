package spec

import (
	"cmp"
	"slices"
	"strings"
)

// Error is one mistake in a spec file: where it is, what is wrong and, when
// we can tell, what to write instead. Messages never contain secret values.
type Error struct {
	Pos  Pos
	Msg  string
	Hint string
}

func (e *Error) Error() string {
	var b strings.Builder
	if p := e.Pos.String(); p != "" {
		b.WriteString(p + ": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString("; " + e.Hint)
	}
	return b.String()
}

// Errors is every mistake found in a spec and its drop-ins. Parse and Load
// return it for a bad spec (and only then), so callers can tell "the spec is
// wrong" from an I/O failure with errors.As(err, &spec.Errors{}).
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the first *Error too.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sorted returns es in file order (one file's errors), without repeats: a
// YAML anchor merged in twice would otherwise report its mistakes twice.
func (es Errors) sorted() Errors {
	out := slices.Clone(es)
	slices.SortStableFunc(out, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Column, b.Pos.Column))
	})
	return slices.CompactFunc(out, func(a, b *Error) bool { return *a == *b })
}
