// Package credentials resolves registry credentials from the spec (inline
// values, files, environment variables) into Secret values that never print
// themselves.
package credentials

import (
	"encoding/base64"
	"fmt"
	"log/slog"
)

// Redacted is what a Secret prints instead of its value.
const Redacted = "<redacted>"

// A Secret holds a credential. Its zero value is the empty secret. It prints,
// logs and marshals as Redacted so that it cannot leak through fmt, slog or
// encoding/json by accident; Reveal is the only way to read it.
type Secret struct{ v string }

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{v: s} }

// Reveal returns the secret value. Call it only where the value is written to
// a credential file.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

func (s Secret) String() string   { return Redacted }
func (s Secret) GoString() string { return Redacted }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler (used by YAML and TOML encoders).
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// BasicAuth returns base64("user:password") with no trailing newline, the
// form containerd's ParseAuth, k3s and the docker CLI's decodeAuth expect.
// (`echo user:pass | base64` puts a newline into the password:
// docs/credentials.md#basic-auth-without-a-newline.)
func BasicAuth(username string, password Secret) Secret {
	return Secret{v: base64.StdEncoding.EncodeToString([]byte(username + ":" + password.v))}
}

// Format implements fmt.Formatter, so that no verb (%d, %x, %q…) prints the
// value: fmt would otherwise format the underlying string for verbs that
// String does not cover.
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, Redacted) }
