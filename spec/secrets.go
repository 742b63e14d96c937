package spec

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
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
	seen := map[string]bool{} // thousands of mirrors have thousands of forms
	add := func(v string) {
		for _, form := range secretForms(v) {
			if form != "" && !seen[form] {
				seen[form] = true
				out = append(out, form)
			}
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

// secretForms are the ways a secret value can appear in output: as is,
// trimmed (a password that kept a newline from its file), escaped the way
// JSON, TOML and YAML quote it, and, for a multi-line value (a key, a
// password with a newline), each of its lines, so that no line of it
// survives a line-by-line redaction.
func secretForms(v string) []string {
	if v == "" {
		return nil
	}
	forms := []string{v, strings.TrimSpace(v)}
	if strings.ContainsAny(v, "\n\r\t\"\\") {
		q := strconv.Quote(v)
		forms = append(forms, q[1:len(q)-1])
		if j, err := json.Marshal(v); err == nil {
			forms = append(forms, string(j[1:len(j)-1]))
		}
	}
	if strings.ContainsAny(v, "\n\r") {
		for l := range strings.SplitSeq(strings.ReplaceAll(v, "\r", "\n"), "\n") {
			if l = strings.TrimSpace(l); len(l) >= 3 {
				forms = append(forms, l)
			}
		}
	}
	return forms
}
