package engines

import (
	"fmt"
	"io/fs"
	"path"
	"sort"

	"github.com/pelletier/go-toml/v2"
)

// importWarnings looks into the files config.toml imports. containerd merges
// them over config.toml, so registry settings there override what mirrorctl
// writes, and a `mirrors` table there next to config_path disables the CRI
// plugin (docs/engines/containerd.md#imported-files). mirrorctl never edits
// imported files; it says so before the restart rather than after.
func importWarnings(fsys fs.FS, doc map[string]any, configPath string, rel release) []string {
	var patterns []string
	switch v := doc["imports"].(type) {
	case []any:
		for _, p := range v {
			if s, ok := p.(string); ok {
				patterns = append(patterns, s)
			}
		}
	case string:
		patterns = append(patterns, v)
	}
	var out []string
	for _, pat := range patterns {
		if !path.IsAbs(pat) {
			pat = path.Join(path.Dir(configPath), pat)
		}
		matches, err := fs.Glob(fsys, FSPath(pat))
		if err != nil {
			out = append(out, fmt.Sprintf("%s: imports %q is not a valid pattern: %v", configPath, pat, err))
			continue
		}
		sort.Strings(matches)
		for _, m := range matches {
			if w := importedRegistry(fsys, "/"+m, rel); w != "" {
				out = append(out, w)
			}
		}
	}
	return out
}

// importedRegistry names the registry settings found in one imported file.
// containerd 1.x merges imports one plugin table deep: an imported CRI
// table replaces config.toml's whole CRI table, config_path included (seen
// in make e2e on 1.6.20). 2.x merges key by key.
func importedRegistry(fsys fs.FS, hostPath string, rel release) string {
	raw, err := fs.ReadFile(fsys, FSPath(hostPath))
	if err != nil {
		return fmt.Sprintf("imported file %s cannot be read: %v", hostPath, err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(raw, &doc); err != nil {
		return fmt.Sprintf("imported file %s is not valid TOML: containerd will refuse to start: %v", hostPath, err)
	}
	plugins, _ := doc["plugins"].(map[string]any)
	if rel.known && rel.major < 2 {
		for _, name := range []string{"io.containerd.grpc.v1.cri", "cri"} {
			if _, ok := plugins[name]; ok {
				return fmt.Sprintf("imported file %s has a [plugins.%q] table; containerd %s replaces config.toml's whole CRI table with it, so the config_path and credentials mirrorctl writes are ignored: move that file's CRI settings into config.toml", hostPath, name, rel)
			}
		}
	}
	for _, name := range []string{"io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "cri"} {
		p, _ := plugins[name].(map[string]any)
		reg, _ := p["registry"].(map[string]any)
		if reg == nil {
			continue
		}
		var keys []string
		for _, k := range []string{"mirrors", "configs", "config_path", "auths"} {
			if _, ok := reg[k]; ok {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			continue
		}
		msg := fmt.Sprintf("imported file %s sets registry %v in plugin %q; containerd merges it over config.toml, so it overrides mirrorctl's settings", hostPath, keys, name)
		if _, ok := reg["mirrors"]; ok {
			msg += "; its `mirrors` next to config_path will make the CRI plugin fail to load: move the mirrors into the spec and delete them there"
		}
		return msg
	}
	return ""
}
