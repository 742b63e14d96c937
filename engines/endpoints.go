package engines

import (
	"fmt"
	"net/url"
	"sort"
	"time"

	"github.com/mirrorctl/mirrorctl/spec"
)

// This file turns the spec's mirrors: and configs: into one host list per
// registry, the way k3s does it for its embedded containerd
// (k3s-io/k3s:pkg/agent/containerd/config.go getHostConfigs;
// docs/engines/k3s.md#how-k3s-renders-mirrors), so that any registries.yaml yields the same
// endpoints in the same order under upstream containerd, and under dockerd's
// containerd image store, which reads certs.d with containerd's own loader.
// hosts_toml.go writes the lists as hosts.toml.

// hubHost is the host containerd contacts for docker.io (docker.DefaultHost).
const hubHost = spec.HubHost

// wildcardDir is the certs.d directory containerd falls back to for any
// registry without its own (hosts.go hostPaths; 1.6.17+).
const wildcardDir = "_default"

// hostEndpoint is one place containerd may pull from: a mirror ([host."…"])
// or the server line.
type hostEndpoint struct {
	// url is scheme://host[:port]/path; nil for the "*" upstream, which has
	// no server line (containerd then contacts the image's own registry).
	url          *url.URL
	overridePath bool
	// creds are the configs: entry for the endpoint's host, credsKey its key.
	creds    *spec.Config
	credsKey string
	// legacy is TLS migrated from config.toml, referenced by host path.
	legacy *legacyTLS
	// mirror is set for mirror endpoints: capabilities and dial_timeout come
	// from it. Nil for the upstream, which keeps containerd's defaults.
	mirror *spec.Mirror
}

// registryHosts is everything one certs.d directory describes.
type registryHosts struct {
	registry string // the spec key: "docker.io", "reg:5000" or "*"
	dir      string // host[:port] or "_default"
	mirror   *spec.Mirror
	// server is tried last; nil means no server line.
	server *hostEndpoint
	hosts  []hostEndpoint
	// noUpstream: upstream_fallback is false and server is the last mirror.
	noUpstream bool
	// migrated: built from config.toml's legacy tables rather than the spec.
	migrated bool
}

// legacyTLS is a config.toml `configs."<host>".tls` table; its files are
// host paths and are referenced where they are.
type legacyTLS struct {
	CAFile, CertFile, KeyFile string
	InsecureSkipVerify        bool
}

// hostInputs are the sources of the host lists.
type hostInputs struct {
	// engine names the engine in the warnings.
	engine  string
	mirrors map[string]*spec.Mirror
	configs map[string]*spec.Config
	// legacyMirrors are config.toml registry.mirrors for registries the spec
	// does not define; legacyTLS are their configs.*.tls by host.
	legacyMirrors map[string][]string
	legacyTLS     map[string]*legacyTLS
}

// registryDir is the certs.d directory name for a registry key.
func registryDir(registry string) string {
	if registry == "*" {
		return wildcardDir
	}
	return registry
}

// normalizeEndpoint applies k3s's endpoint rules (spec.ParseEndpoint, the
// one parser every engine shares). It returns the registry name whose
// configs: entry applies to the endpoint.
func normalizeEndpoint(raw string) (name string, u *url.URL, override bool, err error) {
	e, err := spec.ParseEndpoint(raw)
	if err != nil {
		return "", nil, false, err
	}
	return e.Name, e.URL, e.OverridePath, nil
}

// configFor finds the configs: entry for a registry name, preferring the
// host containerd actually contacts (registry-1.docker.io for docker.io),
// like k3s configForHost.
func configFor(configs map[string]*spec.Config, name string) (string, *spec.Config) {
	if name == "docker.io" {
		if c, ok := configs[hubHost]; ok {
			return hubHost, c
		}
	}
	if c, ok := configs[name]; ok {
		return name, c
	}
	return "", nil
}

// defaultHosts is a registry with only its own default endpoint.
func defaultHosts(registry, credsKey string, creds *spec.Config) (*registryHosts, error) {
	rh := &registryHosts{registry: registry, dir: registryDir(registry)}
	ep := &hostEndpoint{creds: creds, credsKey: credsKey}
	if registry != "*" {
		_, u, _, err := normalizeEndpoint(registry)
		if err != nil {
			return nil, err
		}
		ep.url = u
	}
	rh.server = ep
	return rh, nil
}

// buildRegistryHosts returns the host list of every registry, by
// directory, in the order k3s builds them: configs: entries first (so a
// registry known only by its credentials or TLS gets a directory), then
// mirrors:. Invalid endpoints are skipped with a warning, as k3s does.
func buildRegistryHosts(in hostInputs) (map[string]*registryHosts, []Warning) {
	var warns []Warning
	warn := func(pos spec.Pos, format string, a ...any) {
		warns = append(warns, Warning{Engine: in.engine, Pos: pos, Message: fmt.Sprintf(format, a...)})
	}
	out := map[string]*registryHosts{}
	for _, key := range sortedKeys(in.configs) {
		rh, err := defaultHosts(key, key, in.configs[key])
		if err != nil {
			warn(in.configs[key].Pos, "configs: %q is not a registry host: %v", key, err)
			continue
		}
		out[rh.dir] = rh
	}
	// Legacy TLS for a host the spec does not know gets its own directory.
	for _, h := range sortedKeys(in.legacyTLS) {
		if _, ok := out[h]; ok {
			continue
		}
		if _, ok := in.mirrors[h]; ok {
			continue
		}
		rh, err := defaultHosts(h, "", nil)
		if err != nil {
			continue
		}
		rh.server.legacy, rh.migrated = in.legacyTLS[h], true
		out[rh.dir] = rh
	}
	// Spec mirrors, then legacy ones (the caller drops those the spec defines).
	type source struct {
		registry  string
		mirror    *spec.Mirror
		endpoints []string
		migrated  bool
	}
	var sources []source
	for _, r := range sortedKeys(in.mirrors) {
		sources = append(sources, source{r, in.mirrors[r], in.mirrors[r].Endpoints, false})
	}
	for _, r := range sortedKeys(in.legacyMirrors) {
		sources = append(sources, source{r, &spec.Mirror{}, in.legacyMirrors[r], true})
	}
	for _, src := range sources {
		m := src.mirror
		// Like k3s, an entry made from configs: keeps its default endpoint;
		// "*" is never found here because its directory is _default.
		rh, ok := out[src.registry]
		if !ok {
			key, c := configFor(in.configs, src.registry)
			var err error
			if rh, err = defaultHosts(src.registry, key, c); err != nil {
				warn(m.Pos, "mirrors: %q is not a registry host: %v", src.registry, err)
				continue
			}
		}
		rh.mirror, rh.migrated = m, src.migrated
		seen := map[string]bool{}
		for i, raw := range src.endpoints {
			name, u, override, err := normalizeEndpoint(raw)
			if err != nil {
				warn(m.Pos, "mirrors: %q: skipping endpoint %q: %v", src.registry, raw, err)
				continue
			}
			if seen[u.String()] {
				continue // k3s skips duplicates after normalisation
			}
			seen[u.String()] = true
			key, c := configFor(in.configs, name)
			ep := hostEndpoint{url: u, overridePath: override, creds: c, credsKey: key, mirror: m}
			if src.migrated && (c == nil || c.TLS == nil) {
				ep.legacy = in.legacyTLS[u.Host]
			}
			// The default endpoint listed last is the server line itself.
			if i == len(src.endpoints)-1 && m.TriesUpstream() && rh.server != nil &&
				rh.server.url != nil && rh.server.url.String() == u.String() {
				ep.mirror = nil
				rh.server = &ep
				continue
			}
			rh.hosts = append(rh.hosts, ep)
		}
		if !m.TriesUpstream() && len(rh.hosts) > 0 {
			// Without a server line containerd appends the registry itself
			// (hosts.go ConfigureHosts fills an empty last host), so the
			// last mirror becomes the server.
			last := rh.hosts[len(rh.hosts)-1]
			rh.server, rh.hosts, rh.noUpstream = &last, rh.hosts[:len(rh.hosts)-1], true
		}
		out[rh.dir] = rh
	}
	return out, warns
}

// sortedKeys returns a map's keys in order, for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// capabilities for a hosts.toml entry; nil means "leave containerd's
// default" (every capability), which is right for the upstream.
func (e *hostEndpoint) capabilities() []string {
	if e.mirror == nil {
		return nil
	}
	return e.mirror.EffectiveCapabilities()
}

// dialTimeout for a hosts.toml entry; zero for none.
func (e *hostEndpoint) dialTimeout() time.Duration {
	if e.mirror == nil {
		return 0
	}
	return e.mirror.DialTimeout
}

// auth returns the endpoint's credentials, if any.
func (e *hostEndpoint) auth() *spec.Auth {
	if e.creds == nil {
		return nil
	}
	return e.creds.Auth
}
