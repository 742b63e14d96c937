package engines

import (
	"io/fs"
	"slices"
	"strings"

	"github.com/mirrorctl/mirrorctl/spec"
)

// containerdRender carries one Render call's facts between its steps.
type containerdRender struct {
	s      *spec.Spec
	p      containerdPaths
	rel    release
	header bool
	schema int
	warns  warnList
}

// inputs joins the spec with config.toml's legacy tables; the spec wins for
// every registry and host it names.
func (rc *containerdRender) inputs(legacy legacyContent, configPath string) hostInputs {
	in := hostInputs{engine: "containerd", mirrors: rc.s.Mirrors, configs: rc.s.Configs,
		legacyMirrors: map[string][]string{}, legacyTLS: legacy.tls}
	defined := func(k string) bool {
		_, m := rc.s.Mirrors[k]
		_, c := rc.s.Configs[k]
		return m || c
	}
	var moved, dropped []string
	for _, r := range sortedKeys(legacy.mirrors) {
		if defined(r) {
			dropped = append(dropped, "mirrors for "+r)
			continue
		}
		in.legacyMirrors[r] = legacy.mirrors[r]
		moved = append(moved, "mirrors for "+r)
	}
	for _, h := range sortedKeys(legacy.tls) {
		if defined(h) {
			dropped = append(dropped, "tls for "+h)
		} else {
			moved = append(moved, "tls for "+h)
		}
	}
	// Legacy TLS applied to every contact with its host; the spec's mirrors
	// take TLS only from the spec, so say where it is no longer used.
	var unused []string
	for _, h := range sortedKeys(legacy.tls) {
		if !defined(h) && rc.specEndpointHost(h) {
			unused = append(unused, h)
		}
	}
	if len(unused) > 0 {
		rc.warns.add(spec.Pos{}, "legacy tls for %s is not used by the spec's mirrors on that host; add it to the spec as configs.<host>.tls",
			strings.Join(unused, ", "))
	}
	if len(moved) > 0 {
		rc.warns.add(spec.Pos{}, "migrated legacy registry settings from %s into hosts.toml and removed them there: %s",
			configPath, strings.Join(moved, "; "))
	}
	if len(dropped) > 0 {
		rc.warns.add(spec.Pos{}, "removed legacy registry settings from %s that the spec replaces: %s",
			configPath, strings.Join(dropped, "; "))
	}
	return in
}

// authEntries are the configs.*.auth tables config.toml must hold, keyed by
// the host containerd contacts (the mirror's host[:port], or
// registry-1.docker.io for Docker Hub: CRI looks credentials up by the
// request host). In header mode Basic credentials travel in hosts.toml and
// their hosts are returned in drop, so that config.toml no longer holds
// them; an identity token cannot be a header and stays in config.toml.
func (rc *containerdRender) authEntries(hosts map[string]*registryHosts) (map[string]map[string]any, []string) {
	want := map[string]map[string]any{}
	var drop []string
	for _, dir := range sortedKeys(hosts) {
		rh := hosts[dir]
		eps := append([]*hostEndpoint{rh.server}, ptrs(rh.hosts)...)
		for _, e := range eps {
			a := e.auth()
			if a == nil {
				continue
			}
			if e.url == nil {
				if !rc.header {
					rc.warns.add(a.Pos, "credentials for %q cannot be written to config.toml (containerd looks them up by exact host); use engines.containerd.credentials: header", rh.registry)
				}
				continue
			}
			host := e.url.Host
			if b := a.Basic(); !b.IsZero() {
				if rc.header {
					drop = append(drop, host)
				} else if want[host] == nil {
					want[host] = map[string]any{"auth": b.Reveal()}
				}
				continue
			}
			if !a.IdentityToken.IsZero() && want[host] == nil {
				want[host] = map[string]any{"identitytoken": a.IdentityToken.Reveal()}
				if rc.header {
					rc.warns.add(a.Pos, "identity_token for %s cannot be sent as a header; it is written to config.toml", host)
				}
			}
		}
	}
	return want, drop
}

// specEndpointHost reports whether a spec mirror endpoint is on host.
func (rc *containerdRender) specEndpointHost(host string) bool {
	for _, m := range rc.s.Mirrors {
		for _, raw := range m.Endpoints {
			if _, u, _, err := normalizeEndpoint(raw); err == nil && u.Host == host {
				return true
			}
		}
	}
	return false
}

func ptrs(list []hostEndpoint) []*hostEndpoint {
	out := make([]*hostEndpoint, len(list))
	for i := range list {
		out[i] = &list[i]
	}
	return out
}

// specWarnings reports what the spec asks for that this containerd cannot
// express, or that will not work the way it reads.
func (rc *containerdRender) specWarnings(hosts map[string]*registryHosts, want map[string]map[string]any, fsys fs.FS) {
	r := rc.rel
	hw := hostsWarner{s: rc.s, reader: "containerd", certsDir: rc.p.certsDir, warns: &rc.warns}
	for _, name := range sortedKeys(rc.s.Mirrors) {
		m := rc.s.Mirrors[name]
		if len(m.Rewrites) > 0 {
			rc.warns.addRegistry(m.Pos, name, "mirrors: %[1]s: rewrite needs k3s's containerd fork; upstream containerd has no equivalent, not rendered")
		}
		if m.DialTimeout > 0 && r.known && !r.atLeast(2, 1, 0) {
			rc.warns.addRegistry(m.Pos, name, "mirrors: %[1]s: dial_timeout needs containerd 2.1+; %[2]s ignores it", r)
		}
		hw.mirror(name, m)
		rh := hosts[registryDir(name)]
		if rh == nil {
			continue
		}
		if r.known && !r.atLeast(1, 6, 0) && (rh.server.overridePath || slices.ContainsFunc(rh.hosts, func(e hostEndpoint) bool { return e.overridePath })) {
			rc.warns.add(m.Pos, "mirrors: %q: override_path needs containerd 1.6+; %s appends /v2 to the path", name, r)
		}
	}
	if r.known && !r.atLeast(1, 6, 17) {
		var pos *spec.Pos
		if c := rc.s.Configs["*"]; c != nil {
			pos = &c.Pos
		}
		if m := rc.s.Mirrors["*"]; m != nil {
			pos = &m.Pos
		}
		if pos != nil {
			rc.warns.add(*pos, "\"*\": the _default directory needs containerd 1.6.17+; %s ignores it", r)
		}
	}
	if len(want) > 0 && !rc.header && r.atLeast(2, 1, 0) {
		rc.warns.add(spec.Pos{}, "registry auth in config.toml (%s) makes containerd %s fall back from the transfer service to the deprecated local image pull; consider engines.containerd.credentials: header",
			strings.Join(sortedKeys(want), ", "), r)
	}
	if rc.header && rc.anyHeader(hosts) {
		if !r.known || r.major >= 2 {
			rc.warns.add(spec.Pos{}, "credentials as an Authorization header: a registry that answers with a Bearer challenge and issues an anonymous token replaces the header")
		}
		if r.known && !r.atLeast(2, 1, 0) {
			rc.warns.add(spec.Pos{}, "credentials as an Authorization header: containerd %s does not send it to the registry's token service (2.1+ does); it works only with registries that accept Basic auth directly", r)
		}
	}
	hw.unusedCredentials(hosts)
	hw.shadowingDirs(fsys, hosts)
}

func (rc *containerdRender) anyHeader(hosts map[string]*registryHosts) bool {
	for _, rh := range hosts {
		for _, e := range append([]*hostEndpoint{rh.server}, ptrs(rh.hosts)...) {
			if a := e.auth(); a != nil && !a.Basic().IsZero() {
				return true
			}
		}
	}
	return false
}
