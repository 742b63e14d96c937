package engines

import (
	"fmt"
	"strings"

	"github.com/mirrorctl/mirrorctl/spec"
)

// warnList collects an engine's warnings.
type warnList struct {
	engine string
	list   []Warning
	groups map[string]*registryGroup // by format and other arguments
}

func (w *warnList) add(pos spec.Pos, format string, args ...any) {
	w.list = append(w.list, Warning{Engine: w.engine, Pos: pos, Message: fmt.Sprintf(format, args...)})
}

// registryGroup is one warning about several registries.
type registryGroup struct {
	slot  int // its index in the list: where the first registry put it
	names []string
}

// maxNamedRegistries bounds the registries one warning names.
const maxNamedRegistries = 5

// addRegistry warns about registry, or adds it to the warning already
// given with the same format and arguments: a spec of hundreds of
// registries sharing a trait gets one line, not hundreds on every sync.
// format takes the registry as %[1]s (`"a"`, or `3 registries ("a", "b",
// "c")`, the list cut after maxNamedRegistries) and args from %[2]. The
// warning points at the first registry and keeps its place in the list.
func (w *warnList) addRegistry(pos spec.Pos, registry, format string, args ...any) {
	key := format + "\x00" + fmt.Sprintf("%#v", args) // %#v: ("a", "bc") and ("ab", "c") differ
	g, ok := w.groups[key]
	if !ok {
		if w.groups == nil {
			w.groups = map[string]*registryGroup{}
		}
		g = &registryGroup{slot: len(w.list)}
		w.groups[key] = g
		w.list = append(w.list, Warning{Engine: w.engine, Pos: pos})
	}
	g.names = append(g.names, registry)
	w.list[g.slot].Message = fmt.Sprintf(format, append([]any{registryNames(g.names)}, args...)...)
}

// registryNames is how a grouped warning names its registries.
func registryNames(names []string) string {
	if len(names) == 1 {
		return fmt.Sprintf("%q", names[0])
	}
	quoted := make([]string, 0, maxNamedRegistries)
	for _, n := range names[:min(len(names), maxNamedRegistries)] {
		quoted = append(quoted, fmt.Sprintf("%q", n))
	}
	list := strings.Join(quoted, ", ")
	if more := len(names) - maxNamedRegistries; more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	return fmt.Sprintf("%d registries (%s)", len(names), list)
}
