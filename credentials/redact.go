package credentials

import (
	"regexp"
	"slices"
	"strings"
)

// A Redactor removes known secret values from text before it is shown:
// plans, diffs, logs and error messages all pass through one.
type Redactor struct {
	values map[string]struct{}
	// heads maps the first three bytes of the values to the lengths of the
	// values that start with them, longest first. Text is scanned once: at
	// each byte whose three bytes are a head, only those lengths are looked
	// up. A spec of thousands of mirrors has tens of thousands of secret
	// forms, and a plan's diff holds them all: replacing one value after
	// another would scan the diff once for each.
	heads map[[3]byte][]int
}

// NewRedactor returns a Redactor for the given secret values. Values shorter
// than 3 bytes are ignored: masking every "a" would only garble output, and
// such a password is not worth hiding from a diff.
func NewRedactor(values ...string) *Redactor {
	r := &Redactor{values: map[string]struct{}{}, heads: map[[3]byte][]int{}}
	for _, v := range values {
		if len(v) < 3 {
			continue
		}
		if _, dup := r.values[v]; dup {
			continue
		}
		r.values[v] = struct{}{}
		head := [3]byte{v[0], v[1], v[2]}
		if !slices.Contains(r.heads[head], len(v)) {
			r.heads[head] = append(r.heads[head], len(v))
		}
	}
	for _, lens := range r.heads {
		slices.SortFunc(lens, func(a, b int) int { return b - a })
	}
	return r
}

// String masks every known secret value in s. Every occurrence of every
// value in s is masked, overlapping ones together: where two values overlap
// (the end of one is the start of another), one Redacted covers both, so no
// byte of either shows.
func (r *Redactor) String(s string) string {
	if r == nil || len(r.values) == 0 {
		return s
	}
	var b strings.Builder
	done := 0            // s[:done] is in b
	start, end := -1, -1 // the masked run being extended
	for i := 0; i+3 <= len(s); i++ {
		n := r.longestAt(s, i)
		if n == 0 {
			continue
		}
		if i < end { // overlaps the run: extend it
			end = max(end, i+n)
			continue
		}
		if start >= 0 {
			b.WriteString(s[done:start])
			b.WriteString(Redacted)
			done = end
		}
		start, end = i, i+n
	}
	if start < 0 {
		return s
	}
	b.WriteString(s[done:start])
	b.WriteString(Redacted)
	b.WriteString(s[end:])
	return b.String()
}

// longestAt is the length of the longest value s holds at i, 0 for none.
func (r *Redactor) longestAt(s string, i int) int {
	for _, n := range r.heads[[3]byte{s[i], s[i+1], s[i+2]}] {
		if i+n > len(s) {
			continue
		}
		if _, ok := r.values[s[i:i+n]]; ok {
			return n
		}
	}
	return 0
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
