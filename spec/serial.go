package spec

import "gopkg.in/yaml.v3"

// serial reads serial:, the version of a central config. It belongs to the
// main document: a node's drop-in must not be able to move it.
func (p *parser) serial(s *Spec, k, v *yaml.Node) {
	const hint = "a whole number that grows with each config published, e.g. serial: 42"
	if p.dropIn {
		p.errorf(k, "set it in the main (central) config", "serial: a drop-in cannot set the serial")
		return
	}
	var n int64
	if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || v.Decode(&n) != nil {
		p.errorf(v, hint, "serial: expected a whole number from 1 to %d, got %s", int64(1<<63-1), kindOf(v))
		return
	}
	if n < 1 {
		p.errorf(v, hint, "serial: %d is less than 1", n)
		return
	}
	s.Serial = n
}

// Serial reads the serial: of one main document on its own, without the
// rest of the spec or the files it names, so that `mirrorctl watch` can
// refuse a replayed config before anything else. It returns 0 when there
// is none, and Errors when the document or its serial is invalid (Parse
// reports those too).
func Serial(name string, data []byte) (int64, error) {
	p := newParser(name, Options{})
	var s Spec
	if root := p.root(data); root != nil && len(p.errs) == 0 {
		for _, e := range p.pairs(root) {
			if e.k.Value == "serial" && !isNull(e.v) {
				p.serial(&s, e.k, e.v)
			}
		}
		p.dropAfterRefusal()
	}
	if len(p.errs) > 0 {
		return 0, p.errs.sorted()
	}
	return s.Serial, nil
}
