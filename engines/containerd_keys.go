package engines

import (
	"fmt"
	"path"
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

// confinePaths is the last defence: every file the containerd engine
// renders is config.toml itself or lies inside certsDir.
func confinePaths(files []render.File, config, certsDir string) error {
	dir := strings.TrimSuffix(certsDir, "/") + "/"
	for _, f := range files {
		if f.Path == config {
			continue
		}
		if path.Clean(f.Path) != f.Path || !strings.HasPrefix(f.Path, dir) {
			return fmt.Errorf("containerd: refusing to render %s: it is neither %s nor inside %s", f.Path, config, certsDir)
		}
	}
	return nil
}
