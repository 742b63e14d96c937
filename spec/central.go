package spec

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
)

// LoadCentral is Load for a main spec that does not live on the node: data
// is a central config that `mirrorctl watch` fetched (from a URL, a
// ConfigMap mount, ...), and name is what its positions carry, such as
// "https://config.example.com/mirrors.yaml". It is merged with the node's
// own parts exactly as Load merges a local main spec:
//
//   - the drop-ins <dir>/conf.d/*.yaml are merged over it in lexical order,
//     so node-local settings and secrets never have to be in the central file;
//   - relative references in data (password_file, ca_file, ...) resolve
//     against dir, the node's config directory, not against name; references
//     in a drop-in stay relative to the drop-in's own directory.
//
// Errors are as Load's: Errors for a bad spec (covering every file), wrapped
// errors for I/O.
func LoadCentral(name string, data []byte, dir string, opts Options) (*Spec, error) {
	opts = opts.withDefaults()
	dropIns, err := opts.Glob(filepath.Join(globEscape(dir), "conf.d", "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("listing drop-ins: %w", err)
	}
	slices.Sort(dropIns)

	s := newSpec()
	s.Files = append([]string{name}, dropIns...)
	p := newParser(name, opts)
	p.dir = dir
	p.document(s, data)
	errs := p.errs.sorted()
	for _, file := range dropIns {
		b, err := opts.ReadFile(file)
		if errors.Is(err, ErrTooLarge) {
			errs = append(errs, sizeError(file, -1))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading drop-in: %w", err)
		}
		p := newParser(file, opts)
		p.dropIn = true
		p.document(s, b)
		errs = append(errs, p.errs.sorted()...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	s.setDefaults()
	return s, nil
}
