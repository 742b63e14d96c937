package engines

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/mirrorctl/mirrorctl/spec"
)

// dockerHub is the spec's name for Docker Hub (k3s and containerd use it
// too); dockerd applies registry-mirrors to it alone.
const dockerHub = "docker.io"

// isDockerHubHost reports whether h names Docker Hub under one of its aliases.
func isDockerHubHost(h string) bool {
	switch h {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return true
	}
	return false
}

// dockerEndpointURL reads a spec endpoint as every engine does
// (spec.ParseEndpoint): dockerd gets the same scheme and host.
func dockerEndpointURL(ep string) (*url.URL, error) {
	e, err := spec.ParseEndpoint(ep)
	if err != nil {
		return nil, err
	}
	return e.URL, nil
}

// dockerHubMirrors returns registry-mirrors for the spec's docker.io entry,
// each in the form dockerd's ValidateMirror accepts and prints, and warns
// about every mirror dockerd cannot use. Where hosts.toml decides (the
// containerd image store, docker_hosts.go), the list is still written but
// only hosts.toml is warned about.
func dockerHubMirrors(s *spec.Spec, d Detection, w *warnList) []string {
	if s == nil {
		return nil
	}
	version := d.Version
	hostsTOML := dockerReadsHostsTOML(d)
	hub := w
	if hostsTOML {
		hub = &warnList{engine: w.engine} // dropped: hosts.toml decides, docker_hosts.go warns
	}
	var out []string
	for _, reg := range slices.Sorted(maps.Keys(s.Mirrors)) {
		m := s.Mirrors[reg]
		switch {
		case reg == dockerHub:
		case len(m.Endpoints) == 0:
			continue
		case isDockerHubHost(reg):
			w.add(m.Pos, "the mirrors of %q are not used by Docker: Docker Hub's registry name is docker.io", reg)
			continue
		case hostsTOML:
			continue // hosts.toml
		case reg == "*":
			w.add(m.Pos, `%s has no default mirror for every registry: the mirrors of "*" are not used by Docker; add a docker.io entry to mirror Docker Hub`, dockerStoreName(d))
			continue
		case d.ImageStore == storeContainerd:
			w.addRegistry(m.Pos, reg, "Docker %[2]s uses mirrors for Docker Hub only (its containerd image store reads hosts.toml from Docker 28 on): the mirrors of %[1]s are not used by Docker", cmp.Or(version, "(version unknown)"))
			continue
		default:
			w.addRegistry(m.Pos, reg, "dockerd's classic image store uses mirrors for Docker Hub only: the mirrors of %[1]s are not used by Docker (with the containerd image store, Docker ≥ 28 reads them from hosts.toml, which mirrorctl then renders)")
			continue
		}
		for i, ep := range m.Endpoints {
			u, note := dockerMirrorURL(ep, version)
			if note != "" {
				pos := m.Pos
				if i < len(m.EndpointPos) {
					pos = m.EndpointPos[i]
				}
				hub.add(pos, "docker.io mirror %s: %s", dockerRedact(ep), note)
			}
			if u != "" && !slices.Contains(out, u) {
				out = append(out, u)
			}
			hubMirrorCredentials(s, ep, hub)
		}
		dockerHubExtensions(m, hub)
	}
	return out
}

// dockerStoreName names the image store for messages.
func dockerStoreName(d Detection) string {
	if d.ImageStore == storeContainerd {
		return "dockerd's containerd image store"
	}
	return "dockerd's classic image store"
}

// dockerMirrorURL normalises one docker.io endpoint for registry-mirrors.
// It returns "" when dockerd cannot use it, and a note explaining why or
// what differs from the other engines.
func dockerMirrorURL(ep, version string) (mirror, note string) {
	u, err := dockerEndpointURL(ep)
	switch {
	case err != nil:
		return "", "not a valid URL: " + err.Error()
	case u.Scheme != "http" && u.Scheme != "https":
		return "", "dockerd accepts only http:// and https:// mirrors; not used"
	case u.User != nil:
		return "", "dockerd rejects a mirror URL with credentials; not used"
	case u.RawQuery != "" || u.Fragment != "":
		return "", "dockerd rejects a mirror URL with a query or fragment; not used"
	case isDockerHubHost(u.Hostname()):
		return "", "" // the upstream itself: dockerd always tries it after the mirrors
	}
	// A Docker mirror URL is an API root: dockerd appends /v2/. k3s and
	// containerd take a path ending in /v2 as that API root, so it becomes
	// the prefix before /v2; any other path they use verbatim.
	p := strings.TrimSuffix(u.Path, "/")
	prefix := strings.TrimSuffix(p, "/v2")
	if prefix != "" {
		if !releaseAtLeast(version, 25, 0) {
			v := "Docker " + version
			if version == "" {
				v = "this Docker (version unknown)"
			}
			return "", fmt.Sprintf("a mirror path needs Docker ≥ 25.0 and %s rejects it; not used", v)
		}
		if !strings.HasSuffix(p, "/v2") {
			note = fmt.Sprintf("dockerd sends requests to %s/v2/…, but k3s and containerd use the path as written, without /v2; end the path in /v2 if the mirror serves the registry API there", prefix)
		}
	}
	return u.Scheme + "://" + u.Host + prefix + "/", note
}

// hubMirrorCredentials warns that a Hub mirror's own credentials are never
// used: dockerd sends the client's Docker Hub login, if any, to every
// mirror (moby#30880, moby#42022; docs/engines/docker-registry.md#mirror-credentials).
func hubMirrorCredentials(s *spec.Spec, ep string, w *warnList) {
	u, err := dockerEndpointURL(ep)
	if err != nil {
		return
	}
	if c := s.Configs[u.Host]; c != nil && c.Auth != nil {
		w.add(c.Pos, "dockerd never sends %s's own credentials to a Docker Hub mirror, only the Docker Hub login (configs.docker.io) if there is one: the mirror must allow anonymous pull or accept that login", u.Host)
	}
}

// dockerHubExtensions warns about the spec's docker.io extensions that
// registry-mirrors cannot express.
func dockerHubExtensions(m *spec.Mirror, w *warnList) {
	if len(m.Rewrites) > 0 {
		w.add(m.Pos, "dockerd cannot rewrite repository names: the rewrite of docker.io is not applied to Docker")
	}
	if caps := m.EffectiveCapabilities(); !sameStrings(caps, []string{"pull", "resolve"}) {
		w.add(m.Pos, "dockerd uses Docker Hub mirrors to resolve and pull, never to push: capabilities [%s] cannot be expressed", strings.Join(caps, ", "))
	}
	if m.DialTimeout > 0 {
		w.add(m.Pos, "dockerd has no per-mirror dial timeout: dial_timeout %s is not applied to Docker", m.DialTimeout)
	}
	if !m.TriesUpstream() {
		w.add(m.Pos, "dockerd always falls back to Docker Hub after its mirrors: upstream_fallback: false cannot be expressed")
	}
}

// dockerInsecure returns the insecure-registries entries the spec derives:
// host[:port] of every endpoint reached over plain http or with
// insecure_skip_verify, and every configs host with insecure_skip_verify.
// When dockerd reads hosts.toml, a mirror's scheme and skip_verify are
// there, and only Docker Hub's mirrors (hubMirrors, kept in
// registry-mirrors) need an entry: another registry's mirrors moving then
// touch hosts.toml alone and need no reload.
func dockerInsecure(s *spec.Spec, d Detection, hubMirrors []string, w *warnList) []string {
	if s == nil {
		return nil
	}
	hostsTOML := dockerReadsHostsTOML(d)
	if hostsTOML {
		// "*" and Docker Hub get skip_verify in their hosts.toml.
		w = &warnList{engine: w.engine}
	}
	var out []string
	add := func(host string) {
		if !slices.Contains(out, host) {
			out = append(out, host)
		}
	}
	skipVerify := func(host string) bool {
		c := s.Configs[host]
		return c != nil && c.TLS != nil && c.TLS.InsecureSkipVerify
	}
	for _, reg := range slices.Sorted(maps.Keys(s.Mirrors)) {
		for _, ep := range s.Mirrors[reg].Endpoints {
			u, err := dockerEndpointURL(ep)
			if err != nil || isDockerHubHost(u.Hostname()) {
				continue
			}
			if hostsTOML && !slices.ContainsFunc(hubMirrors, func(m string) bool { return sameEndpointHost(m, u.Host) }) {
				continue
			}
			if u.Scheme == "http" || skipVerify(u.Host) {
				add(u.Host)
			}
		}
	}
	for _, host := range slices.Sorted(maps.Keys(s.Configs)) {
		c := s.Configs[host]
		switch {
		case !skipVerify(host):
		case host == "*":
			w.add(c.TLS.Pos, `dockerd has no wildcard insecure registry: insecure_skip_verify of configs "*" is not applied to Docker`)
		case isDockerHubHost(host):
			w.add(c.TLS.Pos, "dockerd always verifies Docker Hub: insecure_skip_verify of %q is not applied to Docker", host)
		default:
			add(host)
		}
	}
	return out
}

// sameEndpointHost reports whether the endpoint URL ep is on host (host[:port]).
func sameEndpointHost(ep, host string) bool {
	u, err := url.Parse(ep)
	return err == nil && u.Host == host
}

func dockerRedact(ep string) string {
	if u, err := url.Parse(ep); err == nil && u.User != nil {
		return u.Redacted()
	}
	return ep
}

// sameStrings reports whether a and b hold the same strings, ignoring order.
func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
