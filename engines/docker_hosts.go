package engines

import (
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// With the containerd image store, Docker ≥ 28 resolves every registry with
// containerd's hosts loader over /etc/docker/certs.d (moby daemon/hosts.go
// RegistryHosts: config.ConfigureHosts with HostDirFromRoot(CertsDir)),
// and reads it again on every pull. So mirrorctl renders that tree exactly
// as for containerd (hosts_toml.go), with three differences that come from
// dockerd (docs/engines/docker.md):
//
//   - Credentials: dockerd gives the client's login (X-Registry-Auth) only to
//     the image's own registry (daemon/containerd/resolver.go
//     authorizerFromAuthConfig), so a mirror that wants credentials gets
//     them as an Authorization header in its [host] entry; the registry's
//     own endpoint gets none (the client's login goes there).
//   - registry-mirrors in daemon.json still applies to docker.io, but only
//     while docker.io's hosts resolve to a single host
//     (daemon/hosts.go mergeLegacyConfig): with a hosts.toml listing a
//     mirror it is ignored. mirrorctl writes both (docker.go Render).
//   - insecure-registries is ignored the same way, so the scheme and
//     skip_verify of each mirror are in hosts.toml.

// dockerReadsHostsTOML reports whether this dockerd takes registry
// settings from hosts.toml under certs.d: the containerd image store, from
// Docker 28.
func dockerReadsHostsTOML(d Detection) bool {
	return d.ImageStore == storeContainerd && releaseAtLeast(d.Version, 28, 0)
}

// dockerHostsLoader2_1 is the first Docker whose vendored containerd hosts
// loader (2.1) reads dial_timeout: 28.3 (28.0–28.2 vendor 2.0.x).
func dockerHostsLoader2_1(version string) bool { return releaseAtLeast(version, 28, 3) }

// dockerHostsFiles renders certs.d/<registry>/hosts.toml and the TLS copies
// beside it for every registry of the spec, removes what mirrorctl wrote
// there earlier for registries that are gone, and warns about what the
// tree cannot express.
func dockerHostsFiles(s *spec.Spec, h Host, cfg dockerSettings, d Detection, w *warnList) ([]render.File, error) {
	hosts, warns := buildRegistryHosts(hostInputs{engine: w.engine, mirrors: s.Mirrors, configs: s.Configs})
	w.list = append(w.list, warns...)
	hw := &hostsWriter{certsDir: cfg.certsDir, specName: specName(s), header: true, mirrorHeadersOnly: true,
		group: "docker:certs.d/", configs: s.Configs}
	var files []render.File
	rendered := map[string][]render.File{}
	for _, dir := range sortedKeys(hosts) {
		if rh := hosts[dir]; hw.needsFile(rh) {
			rendered[dir] = hw.files(rh)
			files = append(files, rendered[dir]...)
		}
	}
	specDirs := map[string]bool{}
	for _, k := range append(sortedKeys(s.Mirrors), sortedKeys(s.Configs)...) {
		specDirs[registryDir(k)] = true
	}
	files = append(files, hw.stale(h.FS, rendered, specDirs)...)
	if err := confinePaths(w.engine, files, cfg.certsDir); err != nil {
		return nil, err
	}
	dockerHostsWarnings(s, h, cfg, d, hosts, w)
	return files, nil
}

// dockerHostsWarnings says what hosts.toml under dockerd cannot express,
// or what works otherwise than under containerd.
func dockerHostsWarnings(s *spec.Spec, h Host, cfg dockerSettings, d Detection, hosts map[string]*registryHosts, w *warnList) {
	hw := hostsWarner{s: s, reader: "dockerd", certsDir: cfg.certsDir, warns: w}
	for _, name := range sortedKeys(s.Mirrors) {
		m := s.Mirrors[name]
		if len(m.Rewrites) > 0 {
			w.addRegistry(m.Pos, name, "mirrors: %[1]s: rewrite needs k3s's containerd fork; dockerd has no equivalent, not rendered")
		}
		if m.DialTimeout > 0 && !dockerHostsLoader2_1(d.Version) {
			w.addRegistry(m.Pos, name, "mirrors: %[1]s: dial_timeout needs Docker 28.3+ (containerd 2.1's hosts loader); Docker %[2]s ignores it", d.Version)
		}
		hw.mirror(name, m)
	}
	header := false
	for _, dir := range sortedKeys(hosts) {
		rh := hosts[dir]
		for _, e := range append(ptrs(rh.hosts), rh.server) {
			a := e.auth()
			if a == nil || e.mirror == nil || e.url == nil {
				continue // the registry's own endpoint: the client's login
			}
			if !a.Basic().IsZero() {
				header = true
				continue
			}
			if !a.IdentityToken.IsZero() {
				w.add(a.Pos, "identity_token for %s cannot be sent as a header, and dockerd gives the client's credentials only to the image's own registry: the mirror gets none", e.url.Host)
			}
		}
	}
	if header {
		w.add(spec.Pos{}, "credentials as an Authorization header in hosts.toml: dockerd authorizes with the client's login instead of the loader's authorizer, so the header never reaches a token service; a mirror must accept Basic auth on its registry API (one that answers with a Bearer challenge is asked for an anonymous token)")
	}
	hw.unusedCredentials(hosts)
	hw.shadowingDirs(h.FS, hosts)
}
