package engines

import (
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/mirrorctl/mirrorctl/spec"
)

// hostsWarner holds the warnings shared by the engines whose certs.d tree
// is read by containerd's hosts loader (hosts_toml.go): what the spec asks
// for that reads differently there, whichever engine reads it.
type hostsWarner struct {
	s *spec.Spec
	// reader names who reads the tree, in messages: "containerd", "dockerd".
	reader   string
	certsDir string
	warns    *warnList
}

// mirror warns about a mirror's settings that do something other than
// they seem to.
func (hw hostsWarner) mirror(name string, m *spec.Mirror) {
	if slices.Contains(m.Capabilities, "push") {
		hw.warns.addRegistry(m.Pos, name, "mirrors: %[1]s: capability push sends pushes to the mirror")
	}
	if !m.TriesUpstream() && len(m.Endpoints) == 0 {
		hw.warns.addRegistry(m.Pos, name, "mirrors: %[1]s: upstream_fallback: false without endpoints; the registry itself is still used")
	}
}

// shadowingDirs warns about a host_port_ directory, which the loader reads
// before host:port (hostPaths in config_unix.go).
func (hw hostsWarner) shadowingDirs(fsys fs.FS, hosts map[string]*registryHosts) {
	for _, dir := range sortedKeys(hosts) {
		if alt := hostDirectory(dir); alt != dir && hostHas(fsys, path.Join(hw.certsDir, alt)) {
			hw.warns.add(spec.Pos{}, "%s/%s exists and %s reads it before %s", hw.certsDir, alt, hw.reader, dir)
		}
	}
}

// unusedCredentials warns about credentials keyed by a mirrored registry's
// own name: containerd sends them only to that host, never to its mirrors
// (docs/engines/containerd.md#credentials-follow-the-host-contacted), and so does dockerd with the client's login.
func (hw hostsWarner) unusedCredentials(hosts map[string]*registryHosts) {
	for _, key := range sortedKeys(hw.s.Configs) {
		c := hw.s.Configs[key]
		m := hw.s.Mirrors[key]
		if c.Auth == nil || key == "*" || m == nil || len(m.Endpoints) == 0 {
			continue
		}
		var mirrorUse, serverUse bool
		var mirrorHosts []string
		for _, rh := range hosts {
			for _, e := range rh.hosts {
				mirrorUse = mirrorUse || e.credsKey == key
			}
			if rh.server.url != nil && rh.server.credsKey == key {
				serverUse = serverUse || rh.server.mirror == nil
				mirrorUse = mirrorUse || rh.server.mirror != nil
			}
		}
		if rh := hosts[registryDir(key)]; rh != nil {
			for _, e := range rh.hosts {
				mirrorHosts = append(mirrorHosts, e.url.Host)
			}
			if rh.noUpstream {
				mirrorHosts = append(mirrorHosts, rh.server.url.Host)
			}
		}
		switch {
		case mirrorUse || len(mirrorHosts) == 0:
		case serverUse:
			hw.warns.add(c.Pos, "credentials for %s are used only when %s itself is contacted, not for its mirrors; key them by the mirror host (%s)",
				key, key, strings.Join(mirrorHosts, ", "))
		default:
			hw.warns.add(c.Pos, "credentials for %s are never used: upstream_fallback is false and no mirror endpoint is %s", key, key)
		}
	}
}
