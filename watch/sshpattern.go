package watch

import "strings"

// OpenSSH's patterns (match.c), as allowed_signers uses them for principals
// and namespaces=. They work on bytes, case-sensitively.

// maxSubpattern is the size of match_pattern_list's buffer, less its NUL: a
// longer entry makes the whole list fail to match.
const maxSubpattern = 1023

// matchPattern is match_pattern: '*' matches any run of bytes (none too),
// '?' any one byte, any other byte itself. The star is backtracked to its
// last position only, so a hostile pattern costs at most len(s)·len(p).
func matchPattern(s, p string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case star >= 0:
			mark++
			si, pi = mark, star+1
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchPatternList is match_pattern_list without lowercasing: 1 when s
// matches an entry of the comma-separated list, -1 when it matches an entry
// negated with '!' (which wins, wherever it is), 0 otherwise.
func matchPatternList(s, list string) int {
	positive := 0
	for i := 0; i < len(list); {
		negated := list[i] == '!'
		if negated {
			i++
		}
		sub := list[i:]
		if j := strings.IndexByte(sub, ','); j >= 0 {
			sub = sub[:j]
		}
		if len(sub) >= maxSubpattern {
			return 0
		}
		i += len(sub)
		if i < len(list) {
			i++ // the comma
		}
		if matchPattern(s, sub) {
			if negated {
				return -1
			}
			positive = 1
		}
	}
	return positive
}
