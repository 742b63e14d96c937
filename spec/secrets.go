package spec

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/mirrorctl/mirrorctl/credentials"
)

// SecretValues returns every secret string s holds, and the forms they take
// in rendered files, so that output can be scrubbed of them: passwords,
// `auth` values, identity tokens and TLS keys; base64("user:password") and
// "user:password" for username/password pairs; the decoded "user:password"
// and password of an `auth` value. Each value appears once, longest first,
// so a scrubber replacing them in order never leaves part of a longer one.
// There are no empty strings.
func (s *Spec) SecretValues() []string {
	var out []string
	add := func(v string) {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
		// A password that kept a newline from its file may be printed
		// without it.
		if t := strings.TrimSpace(v); t != "" && t != v && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	for _, c := range s.Configs {
		if a := c.Auth; a != nil {
			add(a.Password.Reveal())
			add(a.Auth.Reveal())
			add(a.IdentityToken.Reveal())
			if a.Username != "" && !a.Password.IsZero() {
				add(a.Username + ":" + a.Password.Reveal())
				add(credentials.BasicAuth(a.Username, a.Password).Reveal())
			}
			if dec, err := base64.StdEncoding.DecodeString(a.Auth.Reveal()); err == nil && len(dec) > 0 {
				add(string(dec))
				if _, pw, ok := strings.Cut(string(dec), ":"); ok {
					add(pw)
				}
			}
		}
		if t := c.TLS; t != nil {
			add(t.Key.Reveal())
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	return out
}

// Format prints an Auth as %v, %+v or %#v would, whatever the verb. Under
// a verb a type does not support (%s on a *Auth inside a Config, %d), fmt
// prints struct fields by reflection without calling their String methods,
// which would show a Secret's value.
func (a Auth) Format(f fmt.State, verb rune) {
	type plain Auth // no Format method: no recursion
	formatAsV(f, verb, plain(a))
}

// Format prints a TLS as %v, %+v or %#v would, whatever the verb; see
// Auth.Format.
func (t TLS) Format(f fmt.State, verb rune) {
	type plain TLS
	formatAsV(f, verb, plain(t))
}

func formatAsV(f fmt.State, verb rune, v any) {
	switch {
	case verb == 'v' && f.Flag('#'):
		fmt.Fprintf(f, "%#v", v)
	case f.Flag('+'):
		fmt.Fprintf(f, "%+v", v)
	default:
		fmt.Fprintf(f, "%v", v)
	}
}
