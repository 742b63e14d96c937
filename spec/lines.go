package spec

import (
	"bytes"
	"unicode/utf8"
)

// editorLines maps yaml.v3's positions to the ones an editor shows. YAML
// also breaks lines at a lone \r, NEL, LS and PS, which editors, grep and
// sed keep inside one line: a file with them would be told about a line it
// does not have. Nil when the file has none of them (the usual case):
// positions are then the same.
type editorLines []editorLine

// editorLine is where one YAML line starts for an editor: its line, and
// how many characters of that line come before.
type editorLine struct{ line, column int }

func newEditorLines(data []byte) editorLines {
	if !bytes.ContainsAny(data, "\r\u0085\u2028\u2029") {
		return nil
	}
	lines := editorLines{{line: 1}}
	line, column := 1, 0
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		i += size
		switch r {
		case '\n':
			line, column = line+1, 0
			lines = append(lines, editorLine{line: line})
		case '\r':
			if i < len(data) && data[i] == '\n' {
				continue // \r\n is one break, counted at its \n
			}
			column++
			lines = append(lines, editorLine{line: line, column: column})
		case '\u0085', '\u2028', '\u2029':
			column++
			lines = append(lines, editorLine{line: line, column: column})
		default:
			column++
		}
	}
	return lines
}

// at turns yaml.v3's 1-based line and column into an editor's.
func (l editorLines) at(line, column int) (int, int) {
	if l == nil || line < 1 || line > len(l) {
		return line, column
	}
	start := l[line-1]
	if column > 0 {
		column += start.column
	}
	return start.line, column
}
