package engines

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// legacyContent is what config.toml's deprecated registry tables held.
// containerd refuses `mirrors` (and 1.x `configs.*.tls`) next to
// config_path, so they move into hosts.toml
// (docs/engines/containerd.md#legacy-registry-tables).
type legacyContent struct {
	mirrors map[string][]string   // registry → endpoints
	tls     map[string]*legacyTLS // host → TLS
}

// takeLegacy removes `mirrors` and `configs.*.tls` from the live registry
// table, and the other schema's registry table as a whole: containerd
// 2.3+ would copy a stale one over the live table when migrating. What the
// stale table holds besides mirrors, TLS and config_path (auth, headers)
// moves into the live table unless the live table already has it. For an
// empty spec nothing moves: the node stays as it is.
func (c *containerdConfig) takeLegacy(schema int) (legacyContent, []string, error) {
	lc := legacyContent{mirrors: map[string][]string{}, tls: map[string]*legacyTLS{}}
	if c.emptySpec {
		return lc, nil, nil
	}
	live := []string{"plugins", registryPlugin(schema), "registry"}
	if reg := table(c.doc, live...); reg != nil {
		if err := lc.collect(reg, c.path); err != nil {
			return lc, nil, err
		}
	}
	other := criV1Plugin
	switch schema {
	case 1:
		return lc, nil, nil
	case 2:
		other = criImagesPlugin
	}
	stale := table(c.doc, "plugins", other, "registry")
	if stale == nil {
		return lc, nil, nil
	}
	if err := lc.collect(stale, c.path); err != nil {
		return lc, nil, err
	}
	reg, err := c.ensureTable(live...)
	if err != nil {
		return lc, nil, err
	}
	for _, k := range sortedKeys(stale) {
		switch k {
		case "mirrors", "config_path":
		case "configs":
			cfgs, _ := stale[k].(map[string]any)
			for _, h := range sortedKeys(cfgs) {
				auth := table(cfgs, h)["auth"]
				if auth == nil {
					continue
				}
				t, err := c.ensureTable(append(live, "configs", h)...)
				if err != nil {
					return lc, nil, err
				}
				if t["auth"] == nil {
					t["auth"] = auth
				}
			}
		default:
			if _, ok := reg[k]; !ok {
				reg[k] = stale[k]
			}
		}
	}
	delete(table(c.doc, "plugins", other), "registry")
	c.pruneEmpty("plugins", other)
	note := fmt.Sprintf("removed the stale [plugins.%q.registry] table (version %d files use [plugins.%q.registry])",
		other, schema, registryPlugin(schema))
	return lc, []string{note}, nil
}

// collect moves mirrors and configs.*.tls out of a registry table, keeping
// entries already collected from the live table. Their keys become certs.d
// directory names, so every one is checked before anything moves.
func (lc legacyContent) collect(reg map[string]any, file string) error {
	mirrors, _ := reg["mirrors"].(map[string]any)
	cfgs, hasConfigs := reg["configs"].(map[string]any)
	for _, r := range sortedKeys(mirrors) {
		if err := checkLegacyKey(file, "mirrors", r); err != nil {
			return err
		}
	}
	for _, h := range sortedKeys(cfgs) {
		if _, ok := table(cfgs, h)["tls"].(map[string]any); ok {
			if err := checkLegacyKey(file, "configs", h); err != nil {
				return err
			}
		}
	}
	// An empty mirrors table is harmless next to config_path (containerd
	// checks len(mirrors)), so only a non-empty one is removed.
	if len(mirrors) > 0 {
		for r := range mirrors {
			if _, dup := lc.mirrors[r]; dup {
				continue
			}
			var eps []string
			list, _ := table(mirrors, r)["endpoint"].([]any)
			for _, e := range list {
				if s, ok := e.(string); ok {
					eps = append(eps, s)
				}
			}
			lc.mirrors[r] = eps
		}
		delete(reg, "mirrors")
	}
	if !hasConfigs {
		return nil
	}
	removed := false
	for h := range cfgs {
		t := table(cfgs, h)
		tls, ok := t["tls"].(map[string]any)
		if !ok {
			continue
		}
		removed = true
		if _, dup := lc.tls[h]; !dup {
			str := func(k string) string { s, _ := tls[k].(string); return s }
			skip, _ := tls["insecure_skip_verify"].(bool)
			lc.tls[h] = &legacyTLS{CAFile: str("ca_file"), CertFile: str("cert_file"), KeyFile: str("key_file"), InsecureSkipVerify: skip}
		}
		delete(t, "tls")
		if len(t) == 0 {
			delete(cfgs, h)
		}
	}
	if removed && len(cfgs) == 0 {
		delete(reg, "configs")
	}
	return nil
}

// setRegistry points config_path at certsDir and makes configs.*.auth hold
// exactly want for the hosts mirrorctl manages: entries it wrote before
// (the auth marker) or whose credentials now travel as headers (drop) are
// removed when want lacks them; entries the user wrote for other hosts stay.
//
// For an empty spec config_path is left as it is, set or not: the node
// stays as it is, and a config_path mirrorctl set earlier points at a
// certs.d the sync empties of mirrorctl's hosts.toml, which containerd
// reads as "no mirrors" (docs/engines/containerd.md).
func (c *containerdConfig) setRegistry(schema int, certsDir string, rel release, want map[string]map[string]any, drop []string) ([]string, error) {
	live := []string{"plugins", registryPlugin(schema), "registry"}
	var notes []string
	if !c.emptySpec {
		reg, err := c.ensureTable(live...)
		if err != nil {
			return nil, err
		}
		cur, set := reg["config_path"].(string)
		if note := configPathNote(cur, set, certsDir, rel); note != "" {
			notes = append(notes, note)
		}
		reg["config_path"] = certsDir
	}

	reg := table(c.doc, live...)
	remove := append(slices.Clone(c.owned), drop...)
	sort.Strings(remove)
	for _, h := range slices.Compact(remove) {
		if _, keep := want[h]; keep {
			continue
		}
		if t := table(reg, "configs", h); t != nil && t["auth"] != nil {
			delete(t, "auth")
			c.pruneEmpty(append(live, "configs", h)...)
		}
	}
	for _, h := range sortedKeys(want) {
		t, err := c.ensureTable(append(live, "configs", h)...)
		if err != nil {
			return nil, err
		}
		t["auth"] = want[h]
	}
	c.owns = sortedKeys(want)
	return notes, nil
}

// defaultConfigPathList is config_path when config.toml leaves it out, from
// containerd 2.2 (internal/cri/config DefaultImageConfig in 2.2; the
// images plugin's init in 2.3+, also for an empty value), on Linux.
const defaultConfigPathList = "/etc/containerd/certs.d:/etc/docker/certs.d"

// configPathNote tells what setting config_path to certsDir changes, when
// it changes more than the value: the directories containerd no longer
// reads. From 2.1 CRI pulls go through the transfer service, which hands
// config_path to the hosts loader as one directory
// (core/transfer/registry HostDirFromRoot; containerd#12415, #12636): a
// list, the 2.2+ default included, makes it read no hosts.toml at all. A
// single directory reads the same on every version, hence always one.
func configPathNote(cur string, set bool, certsDir string, rel release) string {
	var b strings.Builder
	switch {
	case cur == certsDir:
		return ""
	case !set && rel.atLeast(2, 2, 0):
		fmt.Fprintf(&b, "config_path is not set, so containerd %s uses its default list %q; ", rel, defaultConfigPathList)
		cur = defaultConfigPathList
	case set && cur == "" && rel.atLeast(2, 3, 0):
		fmt.Fprintf(&b, "config_path is empty, so containerd %s uses its default list %q; ", rel, defaultConfigPathList)
		cur = defaultConfigPathList
	case cur == "":
		return ""
	case strings.ContainsRune(cur, ':'):
		fmt.Fprintf(&b, "config_path %q is a list; ", cur)
	default:
		return fmt.Sprintf("config_path %q replaced by %q: hosts directories under it are no longer read", cur, certsDir)
	}
	var dropped []string
	for _, d := range filepath.SplitList(cur) {
		if d = path.Clean(d); d != "." && d != certsDir && !slices.Contains(dropped, d) {
			dropped = append(dropped, d)
		}
	}
	fmt.Fprintf(&b, "containerd 2.1+ pulls through the transfer service, which reads config_path as one directory; mirrorctl set it to %q", certsDir)
	if len(dropped) > 0 {
		fmt.Fprintf(&b, ", so hosts.toml files under %s are no longer read by containerd", strings.Join(dropped, " and "))
		if slices.Contains(dropped, dockerCertsDir) {
			b.WriteString(" (dockerd's containerd image store reads " + dockerCertsDir + " itself)")
		}
	}
	return b.String()
}
