package engines

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// Keys read from the host's files become certs.d directory names when
// legacy registry tables move into hosts.toml. A key such as
// "../../../var/spool/cron/crontabs" must never reach path.Join.

// checkLegacyKey refuses a key of config.toml's legacy registry.mirrors or
// registry.configs.*.tls that cannot name a certs.d directory. Render then
// fails and changes nothing: leaving that one entry in place while writing
// config_path is no way out, because containerd's CRI plugin refuses
// `mirrors` (and 1.x `configs.*.tls`) next to config_path and would not
// load at all.
func checkLegacyKey(file, table, key string) error {
	if err := spec.CheckHost(key); err != nil {
		return fmt.Errorf("containerd: %s: the legacy registry %s key %q cannot name a directory under certs.d (%v); "+
			"nothing was changed: rename that entry to the registry's host[:port] or delete it, then sync again",
			file, table, key, err)
	}
	return nil
}

// isDirName reports whether name, read from a directory listing, is one
// path element that stays in its directory.
func isDirName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.Contains(name, "/")
}

// confinePaths is the last defence: every file an engine renders into a
// certs.d tree lies inside certsDir, or is one of also (containerd's
// config.toml).
func confinePaths(engine string, files []render.File, certsDir string, also ...string) error {
	dir := strings.TrimSuffix(certsDir, "/") + "/"
	for _, f := range files {
		if slices.Contains(also, f.Path) {
			continue
		}
		if path.Clean(f.Path) != f.Path || !strings.HasPrefix(f.Path, dir) {
			where := "inside " + certsDir
			if len(also) > 0 {
				where = strings.Join(also, ", ") + " or " + where
			}
			return fmt.Errorf("%s: refusing to render %s: it is not %s", engine, f.Path, where)
		}
	}
	return nil
}
