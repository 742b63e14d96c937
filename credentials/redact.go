package credentials

import (
	"regexp"
	"sort"
	"strings"
)

// A Redactor removes known secret values from text before it is shown:
// plans, diffs, logs and error messages all pass through one.
type Redactor struct {
	values []string // longest first, so a secret containing another is masked whole
	// heads holds the first three bytes of every value: text in which no
	// three bytes in a row are one of them holds no secret, and is passed
	// through without a search for each (a spec with a thousand mirrors has
	// thousands of secret forms, and each log line would be searched for
	// every one).
	heads map[[3]byte]struct{}
}

// NewRedactor returns a Redactor for the given secret values. Values shorter
// than 3 bytes are ignored: masking every "a" would only garble output, and
// such a password is not worth hiding from a diff.
func NewRedactor(values ...string) *Redactor {
	seen := map[string]bool{}
	r := &Redactor{heads: map[[3]byte]struct{}{}}
	for _, v := range values {
		if len(v) < 3 || seen[v] {
			continue
		}
		seen[v] = true
		r.values = append(r.values, v)
		r.heads[[3]byte{v[0], v[1], v[2]}] = struct{}{}
	}
	sort.SliceStable(r.values, func(i, j int) bool { return len(r.values[i]) > len(r.values[j]) })
	return r
}

// String masks every known secret value in s.
func (r *Redactor) String(s string) string {
	if r == nil || !r.mayHold(s) {
		return s
	}
	for _, v := range r.values {
		s = strings.ReplaceAll(s, v, Redacted)
	}
	return s
}

// mayHold reports whether s has the first three bytes of a secret
// anywhere: when it has not, it holds none.
func (r *Redactor) mayHold(s string) bool {
	if len(r.values) == 0 {
		return false
	}
	for i := 0; i+3 <= len(s); i++ {
		if _, ok := r.heads[[3]byte{s[i], s[i+1], s[i+2]}]; ok {
			return true
		}
	}
	return false
}

// credentialLine matches a line that assigns a credential in the formats the
// engines use: TOML (auth = "…"), YAML (password: …), JSON ("auth": "…") and
// HTTP headers (Authorization = "Basic …").
var credentialLine = regexp.MustCompile(`(?i)^(\s*"?(?:auth|password|identitytoken|identity_token|token|authorization|registrytoken)"?\s*[:=]\s*)(.+?)(,?\s*)$`)

// Lines masks the value of every credential-looking assignment in text, a
// line at a time. It covers secrets the spec no longer knows, such as an old
// password in a file about to be rewritten.
func (r *Redactor) Lines(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if m := credentialLine.FindStringSubmatchIndex(l); m != nil {
			value := l[m[4]:m[5]]
			if strings.TrimSpace(strings.Trim(value, `"'`)) == "" || strings.HasPrefix(strings.TrimSpace(value), "{") {
				continue // empty values and the opening of a nested object hold nothing secret
			}
			lines[i] = l[:m[4]] + `"` + Redacted + `"` + l[m[6]:m[7]]
		}
	}
	return r.String(strings.Join(lines, "\n"))
}

// HoldsSecret reports whether data looks like it holds a credential: a
// private key, or a credential-looking assignment with a value. Such a file
// is never shown line by line, even when the spec does not know the secret
// (an old password, a rotated key).
func HoldsSecret(data []byte) bool {
	if strings.Contains(string(data), "PRIVATE KEY-----") {
		return true
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		m := credentialLine.FindStringSubmatchIndex(l)
		if m == nil {
			continue
		}
		value := strings.TrimSpace(strings.Trim(strings.TrimSpace(l[m[4]:m[5]]), `"'`))
		if value != "" && !strings.HasPrefix(value, "{") {
			return true
		}
	}
	return false
}
