package watch

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
)

// A Source delivers the central spec: the main document only, never the
// node's drop-ins or secrets.
type Source interface {
	// Run sends a Snapshot on out at start, whenever the content (config
	// and signature) changes, and when fetching or verifying fails. It
	// sends nothing when the content is unchanged (an HTTP 304, an event
	// that left the file as it was). It returns when ctx ends.
	Run(ctx context.Context, out chan<- Snapshot)
	// Refresh asks for a check now (SIGHUP). It never blocks.
	Refresh()
	// String names the source for logs: a path or a URL.
	String() string
}

// Snapshot is one reading of a source.
type Snapshot struct {
	// Name is what spec positions carry: the path or the URL.
	Name string
	Data []byte
	// Sig is the detached signature that was checked, when a key is
	// configured; it is kept with the last good config.
	Sig []byte
	// Err is set when the source could not be read or its content was
	// refused (a bad or missing signature, a body over the limit); Data is
	// nil then. It is a *FetchError.
	Err error
}

// sum identifies a snapshot's content.
func (s Snapshot) sum() [32]byte {
	h := sha256.New()
	h.Write(s.Data)
	h.Write([]byte{0})
	h.Write(s.Sig)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// FetchError says why a source gave no usable config. Reason is a short
// stable word used as a metric label.
type FetchError struct {
	Reason string // "unreachable", "timeout", "status", "too_large", "signature", "serial", "missing", "read"
	Err    error
}

func (e *FetchError) Error() string { return e.Err.Error() }
func (e *FetchError) Unwrap() error { return e.Err }

func fetchErr(reason string, format string, args ...any) *FetchError {
	return &FetchError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// reasonOf returns the metric label for err.
func reasonOf(err error) string {
	var fe *FetchError
	if errors.As(err, &fe) {
		return fe.Reason
	}
	return "other"
}

// send delivers s unless ctx ends first.
func send(ctx context.Context, out chan<- Snapshot, s Snapshot) bool {
	select {
	case out <- s:
		return true
	case <-ctx.Done():
		return false
	}
}
