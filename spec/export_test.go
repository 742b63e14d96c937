package spec

// Expansion parses one document and returns how many nodes its aliases
// and merge keys expanded to and its budget, for the external fuzz target.
func Expansion(name string, data []byte, opts Options) (expanded, budget int) {
	p := newParser(name, opts.withDefaults())
	p.document(newSpec(), data)
	return p.expanded, p.budget
}

// MaxErrors is maxErrors, for the external tests.
const MaxErrors = maxErrors
