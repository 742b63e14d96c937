package engines

import (
	"slices"
	"sort"
	"strings"

	"github.com/mirrorctl/mirrorctl/spec"
)

// Mirror health (mirrorctl watch --probe-interval): watch probes the
// endpoints MirrorEndpoints lists and passes those that do not answer in
// Host.Down. containerd re-reads certs.d on every pull, so leaving a dead
// mirror out of hosts.toml is live; without that, containerd waits up to
// its dial timeout (30 s by default) for it on every blob
// (docs/engines/containerd.md#dead-mirrors-and-the-dial-timeout).
// config.toml never depends on Down: credentials for a down mirror
// stay where they are, so no restart follows a probe.

// MirrorEndpoint is one mirror endpoint containerd may contact for a spec.
type MirrorEndpoint struct {
	// URL is the endpoint as the containerd adapter normalises it and
	// writes it in hosts.toml: scheme://host[:port] and the API root,
	// "https://nexus.example.internal:8443/v2". It is the key of Host.Down.
	URL string
	// Registries lists the registries it mirrors, sorted.
	Registries []string
	// TLS is the configs: entry's TLS for the endpoint's host, or nil.
	TLS *spec.TLS
}

// ProbeURL is what a health probe asks: the API root with a trailing
// slash (GET /v2/ for an endpoint without a path), the base of every
// request containerd sends there.
func (e MirrorEndpoint) ProbeURL() string { return e.URL + "/" }

// MirrorEndpoints lists the distinct mirror endpoints of s, the way the
// containerd adapter builds its host lists: every host entry, and the last
// mirror of a registry with upstream_fallback: false. A registry's own
// endpoint (the server line) is not a mirror and is not listed. Sorted by
// URL.
func MirrorEndpoints(s *spec.Spec) []MirrorEndpoint {
	if s == nil {
		return nil
	}
	hosts, _ := buildRegistryHosts(hostInputs{mirrors: s.Mirrors, configs: s.Configs})
	byURL := map[string]*MirrorEndpoint{}
	for _, dir := range sortedKeys(hosts) {
		rh := hosts[dir]
		eps := ptrs(rh.hosts)
		if rh.noUpstream {
			eps = append(eps, rh.server)
		}
		for _, e := range eps {
			if e.url == nil {
				continue
			}
			k := e.url.String()
			me := byURL[k]
			if me == nil {
				me = &MirrorEndpoint{URL: k}
				if e.creds != nil {
					me.TLS = e.creds.TLS
				}
				byURL[k] = me
			}
			if !slices.Contains(me.Registries, rh.registry) {
				me.Registries = append(me.Registries, rh.registry)
			}
		}
	}
	out := make([]MirrorEndpoint, 0, len(byURL))
	for _, k := range sortedKeys(byURL) {
		me := byURL[k]
		sort.Strings(me.Registries)
		out = append(out, *me)
	}
	return out
}

// withoutDown returns the spec's mirrors with the endpoints in down left
// out, as if the spec did not list them, and a warning for each registry
// touched. A registry whose every mirror is down is rendered without
// mirrors (only its upstream, as k3s renders a registry without endpoints)
// when upstream_fallback is true; with upstream_fallback: false it keeps
// them all, since it would otherwise have no endpoint at all.
func withoutDown(mirrors map[string]*spec.Mirror, down map[string]bool) (map[string]*spec.Mirror, []Warning) {
	if len(down) == 0 {
		return mirrors, nil
	}
	var warns []Warning
	warn := func(m *spec.Mirror, msg string) {
		warns = append(warns, Warning{Engine: "containerd", Pos: m.Pos, Message: msg})
	}
	out := make(map[string]*spec.Mirror, len(mirrors))
	for _, r := range sortedKeys(mirrors) {
		m := mirrors[r]
		out[r] = m
		var kept []string
		var gone []string
		valid := 0
		for _, raw := range m.Endpoints {
			_, u, _, err := normalizeEndpoint(raw)
			if err == nil && down[u.String()] {
				if !slices.Contains(gone, u.String()) {
					gone = append(gone, u.String())
				}
				continue
			}
			if err == nil {
				valid++
			}
			kept = append(kept, raw)
		}
		if len(gone) == 0 {
			continue
		}
		list := strings.Join(gone, ", ")
		switch {
		case valid > 0:
			mm := *m
			mm.Endpoints = kept
			out[r] = &mm
			warn(m, "mirrors: \""+r+"\": "+list+" not answering (mirror health): left out of hosts.toml until it answers again")
		case m.TriesUpstream():
			mm := *m
			mm.Endpoints = nil
			out[r] = &mm
			warn(m, "mirrors: \""+r+"\": every mirror is down ("+list+"): pulls go to the registry itself until one answers again")
		default:
			warn(m, "mirrors: \""+r+"\": every mirror is down ("+list+") and upstream_fallback is false: keeping them in hosts.toml")
		}
	}
	return out, warns
}
