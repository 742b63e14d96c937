package watch

import (
	"fmt"

	"github.com/mirrorctl/mirrorctl/spec"
)

// checkSerial refuses a config that would roll the node back: one whose
// serial: is below the highest this node has applied, such as an old
// config, validly signed, served again. With signatures on, a config must
// carry a serial: a signature alone cannot tell an old config from a new
// one. A serial that cannot be read is let through, for the spec stage to
// refuse with its position.
func (l *Loop) checkSerial(snap Snapshot) error {
	n, err := spec.Serial(snap.Name, snap.Data)
	switch {
	case err != nil:
		return nil
	case n == 0 && l.cfg.Verify != nil:
		return &FetchError{Reason: "serial", Err: fmt.Errorf("%s: refused: a signed config must carry a serial, as anyone could serve an old signed one again; add `serial: %d` (or any number above the last one published) and sign it again", snap.Name, l.floor+1)}
	case n != 0 && n < l.floor:
		return &FetchError{Reason: "serial", Err: fmt.Errorf("%s: refused: serial %d is below %d, the highest this node has applied (an old config served again?); to go back on purpose, publish the old content with a serial above %d", snap.Name, n, l.floor, l.floor)}
	}
	return nil
}
