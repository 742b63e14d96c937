package engines

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// config.toml is shared with the user: it is decoded into a generic map,
// in which only the tables mirrorctl manages are edited; the bytes of the
// file then change only where the map does (containerd_config_edit.go).

const (
	criV1Plugin     = "io.containerd.grpc.v1.cri"   // registry table in version 2 (1.x)
	criImagesPlugin = "io.containerd.cri.v1.images" // registry table in versions 3 and 4 (2.x)
)

// authMarker starts the comment line that records whose registry auth
// mirrorctl wrote into config.toml, so that auth the spec drops is removed
// and auth the user wrote by hand is not.
const authMarker = "# mirrorctl manages registry auth for: "

// registryPlugin is the plugin whose `registry` table a schema reads.
func registryPlugin(schema int) string {
	switch {
	case schema <= 1:
		return "cri" // version 1 uses short plugin names
	case schema == 2:
		return criV1Plugin
	}
	return criImagesPlugin
}

// containerdConfig is config.toml as found on the host, being edited.
type containerdConfig struct {
	path    string
	raw     []byte
	exists  bool
	doc     map[string]any // edited in place
	orig    map[string]any // as read
	version int            // the file's `version`; 0 when absent
	owned   []string       // hosts in the auth marker, as read
	owns    []string       // hosts in the auth marker, as it will be written
	// emptySpec: the spec names no registry, so only mirrorctl's own
	// auth entries and marker may change.
	emptySpec bool
}

// readContainerdConfig reads and decodes config.toml; a file that is not
// TOML is an error naming it, so that it is never overwritten.
func readContainerdConfig(fsys fs.FS, p string) (*containerdConfig, error) {
	c := &containerdConfig{path: p, doc: map[string]any{}, orig: map[string]any{}}
	raw, ok, err := readOptional(fsys, p)
	if err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	if !ok {
		return c, nil
	}
	c.raw, c.exists = raw, true
	if err := toml.Unmarshal(raw, &c.doc); err != nil {
		return nil, fmt.Errorf("containerd: %s is not valid TOML, leaving it alone: %w", p, err)
	}
	// A copy, not a second decoding: a config.toml with 2,000 registry
	// tables takes go-toml tens of milliseconds each time.
	c.orig = cloneTOML(c.doc).(map[string]any)
	switch v := c.doc["version"].(type) {
	case nil:
	case int64:
		c.version = int(v)
	default:
		return nil, fmt.Errorf("containerd: %s: version is %v, not a number", p, v)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, authMarker); ok {
			c.owned = strings.Fields(strings.ReplaceAll(rest, ",", " "))
		}
	}
	c.owns = c.owned
	return c, nil
}

// cloneTOML copies a value go-toml decoded into any: its tables and arrays
// are new, its scalars (strings, numbers, booleans, dates) shared, as they
// are never changed in place.
func cloneTOML(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = cloneTOML(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneTOML(e)
		}
		return out
	case []map[string]any:
		out := make([]map[string]any, len(v))
		for i, e := range v {
			out[i] = cloneTOML(e).(map[string]any)
		}
		return out
	}
	return v
}

// v1Layout reports a file in the version 1 layout: short plugin names in
// [plugins.<name>] or disabled_plugins/required_plugins (Docker's
// containerd.io package ships `disabled_plugins = ["cri"]` with no version
// line). Adding `version = 2` to it would make 1.x refuse to start
// ("invalid disabled plugin URI"), so such a file stays version 1.
func (c *containerdConfig) v1Layout() bool {
	if c.version >= 2 {
		return false
	}
	plugins, _ := c.doc["plugins"].(map[string]any)
	for name := range plugins {
		if !strings.Contains(name, ".") {
			return true
		}
	}
	for _, key := range []string{"disabled_plugins", "required_plugins"} {
		list, _ := c.doc[key].([]any)
		for _, v := range list {
			if s, ok := v.(string); ok && !strings.Contains(s, ".") {
				return true
			}
		}
	}
	return false
}

// otherPluginSettings reports plugin settings besides the two CRI registry
// tables: changing the version would change how containerd reads them.
func (c *containerdConfig) otherPluginSettings() bool {
	plugins, _ := c.doc["plugins"].(map[string]any)
	for name, v := range plugins {
		t, _ := v.(map[string]any)
		if name != criV1Plugin && name != criImagesPlugin {
			return true
		}
		for k := range t {
			if k != "registry" {
				return true
			}
		}
	}
	return false
}

// maxSchema is the newest config version a release loads (RELEASES.md:
// version 2 from 1.3, 3 from 2.0, 4 from 2.3).
func maxSchema(r release) int {
	switch {
	case r.major < 2:
		return 2
	case !r.atLeast(2, 3, 0):
		return 3
	}
	return 4
}

// chooseSchema decides the config version: the spec's override, else the
// file's own version if the release loads it, else the release's native
// layout, else version 2, which every release loads (2.x migrates it).
func (c *containerdConfig) chooseSchema(override int, r release) (int, string, error) {
	if c.v1Layout() {
		// Every release loads version 1 (2.x migrates it), and it has
		// a registry table of its own: [plugins.cri.registry].
		if override != 0 {
			return 0, "", fmt.Errorf("containerd: %s uses the version 1 layout (short plugin names), which "+
				"engines.containerd.schema %d would reinterpret; migrate it first or drop the override", c.path, override)
		}
		return 1, "", nil
	}
	top := 4
	if r.known {
		top = maxSchema(r)
	}
	schema, warn := 2, ""
	switch {
	case override != 0:
		if override > top {
			return 0, "", fmt.Errorf("containerd: engines.containerd.schema %d is newer than containerd %s loads (version %d at most)",
				override, r, top)
		}
		schema = override
	case c.version >= 2 && c.version <= top:
		schema = c.version
	case r.known:
		schema = 3
		if r.major < 2 {
			schema = 2
		}
		if c.version > top {
			warn = fmt.Sprintf("%s has version %d, which containerd %s does not load; rewriting it as version %d",
				c.path, c.version, r, schema)
		}
	default:
		warn = "containerd version could not be detected; config.toml uses version 2, which containerd 2.x migrates on load"
	}
	// 1.x reads a version 3 file as version 2, so renumbering it changes nothing.
	sameMeaning := r.known && r.major < 2 && c.version > top
	if c.version >= 2 && schema != c.version && !sameMeaning && c.otherPluginSettings() {
		return 0, "", fmt.Errorf("containerd: %s is version %d and holds other plugin settings that version %d reads differently; "+
			"migrate it first (containerd config migrate) or set engines.containerd.schema to %d", c.path, c.version, schema, c.version)
	}
	return schema, warn, nil
}

// table walks nested tables, returning nil where one is missing.
func table(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

// ensureTable walks nested tables, creating missing ones.
func (c *containerdConfig) ensureTable(keys ...string) (map[string]any, error) {
	m := c.doc
	for i, k := range keys {
		switch v := m[k].(type) {
		case map[string]any:
			m = v
		case nil:
			next := map[string]any{}
			m[k] = next
			m = next
		default:
			return nil, fmt.Errorf("containerd: %s: %s is not a table", c.path, strings.Join(keys[:i+1], "."))
		}
	}
	return m, nil
}

// pruneEmpty deletes the tables along keys (deepest first) that are empty
// now but were not empty in the file as read.
func (c *containerdConfig) pruneEmpty(keys ...string) {
	for n := len(keys); n > 0; n-- {
		t := table(c.doc, keys[:n]...)
		if t == nil || len(t) > 0 {
			return
		}
		if o := table(c.orig, keys[:n]...); o != nil && len(o) == 0 {
			return
		}
		parent := c.doc
		if n > 1 {
			parent = table(c.doc, keys[:n-1]...)
		}
		delete(parent, keys[n-1])
	}
}

// hasAuth reports credentials anywhere in the CRI registry tables.
func (c *containerdConfig) hasAuth() bool {
	for _, p := range []string{"cri", criV1Plugin, criImagesPlugin} {
		reg := table(c.doc, "plugins", p, "registry")
		if len(table(reg, "auths")) > 0 {
			return true
		}
		for _, v := range table(reg, "configs") {
			if t, ok := v.(map[string]any); ok && t["auth"] != nil {
				return true
			}
		}
	}
	return false
}

// criDisabled reports whether disabled_plugins turns off the CRI plugin
// whose registry settings mirrorctl writes.
func (c *containerdConfig) criDisabled(schema int) bool {
	list, _ := c.doc["disabled_plugins"].([]any)
	for _, v := range list {
		switch v {
		case "cri", criV1Plugin, registryPlugin(schema):
			return true
		}
	}
	return false
}
