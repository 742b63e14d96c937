package watch

import (
	"strings"
	"testing"
)

// OpenSSH's match.c behaviour, quirks included.
func TestMatchPatternList(t *testing.T) {
	long := strings.Repeat("x", maxSubpattern)
	for _, tc := range []struct {
		s, list string
		want    int
	}{
		{"fleet@example.com", "fleet@example.com", 1},
		{"fleet@example.com", "alice@example.com,fleet@example.com", 1},
		{"fleet@example.com", "*@example.com", 1},
		{"fleet@example.com", "*", 1},
		{"fleet@example.com", "flee?@example.com", 1},
		{"fleet@example.com", "fleet?@example.com", 0},
		{"fleet@example.com", "*@example.com,!fleet@example.com", -1},
		{"fleet@example.com", "!fleet@example.com,*", -1}, // a negation wins wherever it is
		{"fleet@example.com", "!alice@example.com", 0},    // negations alone match nothing
		{"fleet@example.com", "FLEET@example.com", 0},     // case-sensitive
		{"fleet@example.com", "", 0},
		{"", "", 0},
		{"", ",a", 1},   // an empty entry matches the empty string
		{"", "a,", 0},   // a trailing comma is no entry
		{"", "a,!", -1}, // "!" negates the empty entry
		{"a*c", "a*c", 1},
		{"abbbc", "a*b*c", 1},
		{"ab", "a*b*c", 0},
		{"x", "x," + long, 0}, // an entry too long for OpenSSH's buffer fails the list
		{"x", "x," + long[:maxSubpattern-1], 1},
		{"x", "!" + long + ",x", 0}, // the "!" is not counted
	} {
		if got := matchPatternList(tc.s, tc.list); got != tc.want {
			l := tc.list
			if len(l) > 40 {
				l = l[:40] + "…"
			}
			t.Errorf("matchPatternList(%q, %q) = %d, want %d", tc.s, l, got, tc.want)
		}
	}
}

// A pattern made to backtrack costs len(s)·len(p) steps, not 2^n: this
// returns at once rather than after the heat death of the universe.
func TestMatchPatternBounded(t *testing.T) {
	s := strings.Repeat("a", 4000)
	p := strings.Repeat("*a", 500) + "b"
	if matchPattern(s, p) {
		t.Error("matched")
	}
}
