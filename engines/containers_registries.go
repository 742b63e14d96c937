package engines

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/mirrorctl/mirrorctl/spec"
)

// This file turns the spec into containers-registries.conf(5) v2 tables,
// from the same host lists as containerd (endpoints.go), so that a spec
// means the same mirrors, in the same order, for every engine.
//
// containers/image (sysregistriesv2) picks the [[registry]] table with the
// longest prefix matching an image reference, tries its [[registry.mirror]]
// locations in order and then its location. A location is host[:port] plus
// an optional namespace, with no scheme: the registry API path /v2/ is put
// right after the host. So an endpoint whose path is /v2/<namespace> is the
// location host/<namespace>, and any other path (a Nexus
// /repository/<name>/v2) cannot be expressed.

// regTable is one [[registry]] table.
type regTable struct {
	prefix, location string
	insecure         bool
	// digestOnly is mirror-by-digest-only: the mirrors serve only pulls by
	// digest (capabilities: [pull]), tags come from location.
	digestOnly bool
	mirrors    []regMirror
}

type regMirror struct {
	location string
	insecure bool
}

// containersTables builds the drop-in's tables: one per spec registry that
// says more than the default, then one per plain-http (or unverified) host
// that has none, so that pulling from such a mirror directly works too (as
// insecure-registries does for dockerd and localhost for containerd).
func containersTables(s *spec.Spec, w *warnList) []regTable {
	hosts, warns := buildRegistryHosts(hostInputs{mirrors: s.Mirrors, configs: s.Configs})
	for _, wn := range warns {
		wn.Engine = w.engine
		w.list = append(w.list, wn)
	}
	insecure := containersInsecureHosts(s, hosts, w)
	var tables []regTable
	covered := map[string]bool{}
	for _, name := range sortedKeys(s.Mirrors) {
		m := s.Mirrors[name]
		if name == "*" {
			if len(m.Endpoints) > 0 {
				w.add(m.Pos, `registries.conf has no default for every registry (a prefix is a registry, a repository or *.domain): the mirrors of "*" are not used by CRI-O and Podman; name each registry`)
			}
			continue
		}
		if isDockerHubHost(name) && name != dockerHub {
			w.add(m.Pos, "the mirrors of %q apply only to images named %s/…: Docker Hub's images are docker.io/…", name, name)
		}
		rh := hosts[registryDir(name)]
		if rh == nil || rh.server == nil {
			continue
		}
		t := regTable{prefix: name, location: name}
		t.insecure = insecure[containersHost(name)]
		if !rh.noUpstream && rh.server.url != nil {
			// the registry itself listed as an http:// endpoint, or localhost
			t.insecure = t.insecure || insecure[containersHost(rh.server.url.Host)]
		}
		caps := m.EffectiveCapabilities()
		usable := slices.Contains(caps, "pull")
		switch {
		case !usable && len(m.Endpoints) > 0:
			w.addRegistry(m.Pos, name, "capabilities [%[2]s] without pull: the mirrors of %[1]s serve neither tags nor digests, so CRI-O and Podman do not use them", strings.Join(caps, ", "))
		case !slices.Contains(caps, "resolve"):
			t.digestOnly = true // only pulls by digest go to the mirrors
		}
		if slices.Contains(caps, "push") {
			w.addRegistry(m.Pos, name, "CRI-O and Podman never push to a mirror: capability push of %[1]s is not applied")
		}
		if len(m.Rewrites) > 0 {
			w.addRegistry(m.Pos, name, "registries.conf cannot rewrite repository names: the rewrite of %[1]s is not applied to CRI-O and Podman")
		}
		if m.DialTimeout > 0 {
			w.addRegistry(m.Pos, name, "registries.conf has no per-mirror dial timeout: dial_timeout %[2]s of %[1]s is not applied to CRI-O and Podman", m.DialTimeout)
		}
		eps := rh.hosts
		if rh.noUpstream {
			eps = append(slices.Clone(eps), *rh.server)
		}
		for i, e := range eps {
			if !usable {
				break
			}
			last := rh.noUpstream && i == len(eps)-1
			loc, ok := containersLocation(e.url, e.overridePath)
			if !ok && last {
				w.add(m.Pos, "upstream_fallback: false: the last mirror of %q cannot be the location (see the warning about its path), so CRI-O and Podman still fall back to %s", name, name)
			}
			if !ok {
				w.add(endpointPos(m, e.url), "mirror %s of %q: registries.conf puts the registry API path /v2/ right after the host, so a mirror under the path %s cannot be expressed; not used by CRI-O and Podman (serve it at the root or at /v2/<namespace>)", e.url.Redacted(), name, e.url.Path)
				continue
			}
			if last {
				// upstream_fallback: false: the last mirror replaces the
				// registry itself as the table's location.
				t.location, t.insecure = loc, insecure[containersHost(e.url.Host)]
				if !slices.Contains(caps, "push") {
					w.add(m.Pos, "upstream_fallback: false makes %s the location of %q for CRI-O and Podman: pulls never reach %s, and a podman push of a %s/… image goes to %s too", loc, name, name, name, loc)
				}
				continue
			}
			if loc == t.location || slices.ContainsFunc(t.mirrors, func(r regMirror) bool { return r.location == loc }) {
				continue
			}
			t.mirrors = append(t.mirrors, regMirror{location: loc, insecure: insecure[containersHost(e.url.Host)]})
		}
		if !m.TriesUpstream() && len(m.Endpoints) == 0 {
			w.add(m.Pos, "upstream_fallback: false without endpoints: %q itself is still used", name)
		}
		if len(t.mirrors) == 0 {
			t.digestOnly = false
		}
		if len(t.mirrors) == 0 && !t.insecure && t.location == t.prefix {
			continue // what containers/image does without a table
		}
		tables = append(tables, t)
		covered[t.prefix] = true
	}
	for _, host := range sortedKeys(insecure) {
		if !covered[host] {
			tables = append(tables, regTable{prefix: host, location: host, insecure: true})
		}
	}
	slices.SortStableFunc(tables, func(a, b regTable) int { return strings.Compare(a.prefix, b.prefix) })
	return tables
}

// containersInsecureHosts are the hosts containers/image must reach with
// insecure = true: over plain http (an http:// endpoint, or localhost
// without a scheme, as k3s reads it) or without verifying TLS
// (insecure_skip_verify). insecure is per host: sysregistriesv2 refuses one
// location with two different insecure values.
func containersInsecureHosts(s *spec.Spec, hosts map[string]*registryHosts, w *warnList) map[string]bool {
	out := map[string]bool{}
	for _, dir := range sortedKeys(hosts) {
		rh := hosts[dir]
		for _, e := range append([]*hostEndpoint{rh.server}, ptrs(rh.hosts)...) {
			if e != nil && e.url != nil && e.url.Scheme == "http" {
				out[containersHost(e.url.Host)] = true
			}
		}
	}
	for _, host := range sortedKeys(s.Configs) {
		c := s.Configs[host]
		if c.TLS == nil || !c.TLS.InsecureSkipVerify {
			continue
		}
		if host == "*" {
			w.add(c.TLS.Pos, `registries.conf has no wildcard registry: insecure_skip_verify of configs "*" is not applied to CRI-O and Podman`)
			continue
		}
		out[containersHost(host)] = true
	}
	return out
}

// containersHost is the name containers/image uses for a host: Docker
// Hub's API host is docker.io there.
func containersHost(host string) string {
	if isDockerHubHost(host) {
		return dockerHub
	}
	return host
}

// containersLocation turns a normalised endpoint into a registries.conf
// location, or reports that it cannot be one.
func containersLocation(u *url.URL, override bool) (string, bool) {
	host := containersHost(u.Host)
	if !override {
		return host, true
	}
	p := strings.TrimSuffix(u.Path, "/")
	ns, ok := strings.CutPrefix(p, "/v2/")
	if !ok || ns == "" || strings.Contains(ns, "//") {
		return "", false
	}
	return host + "/" + ns, true
}

// endpointPos is where an endpoint is written in the spec.
func endpointPos(m *spec.Mirror, u *url.URL) spec.Pos {
	for i, raw := range m.Endpoints {
		if _, v, _, err := normalizeEndpoint(raw); err == nil && v.String() == u.String() && i < len(m.EndpointPos) {
			return m.EndpointPos[i]
		}
	}
	return m.Pos
}

// marshalRegistriesConf writes the tables as a v2 registries.conf.
// The header names no spec file: renaming the spec must not reload CRI-O.
func marshalRegistriesConf(tables []regTable) []byte {
	var b strings.Builder
	b.WriteString(containersHeader + ". DO NOT EDIT.\n")
	b.WriteString("# containers-registries.conf(5): Podman, Buildah and Skopeo read it at every\n")
	b.WriteString("# command, CRI-O when it is reloaded. A later drop-in with the same prefix\n")
	b.WriteString("# replaces a table of this file.\n")
	for _, t := range tables {
		b.WriteString("\n[[registry]]\n")
		fmt.Fprintf(&b, "prefix = %s\n", tomlQuote(t.prefix))
		fmt.Fprintf(&b, "location = %s\n", tomlQuote(t.location))
		if t.insecure {
			b.WriteString("insecure = true\n")
		}
		if t.digestOnly {
			b.WriteString("mirror-by-digest-only = true\n")
		}
		for _, m := range t.mirrors {
			b.WriteString("\n[[registry.mirror]]\n")
			fmt.Fprintf(&b, "location = %s\n", tomlQuote(m.location))
			if m.insecure {
				b.WriteString("insecure = true\n")
			}
		}
	}
	return []byte(b.String())
}

// registriesFile is what mirrorctl reads of another registries.conf file.
type registriesFile struct {
	Registry []struct {
		Prefix   string `toml:"prefix"`
		Location string `toml:"location"`
	} `toml:"registry"`
}

// containersOtherFiles warns about registries.conf and the other drop-ins
// where they change what the drop-in means: a file that does not parse (every
// Podman command fails; CRI-O keeps its old configuration on reload), a
// table with one of our prefixes (the later file's replaces the earlier's),
// and a table with a longer prefix under one of ours (the longest prefix
// wins, so images under it skip our mirrors).
func containersOtherFiles(fsys fs.FS, dropIn string, tables []regTable, w *warnList) {
	dir, ours := path.Split(dropIn)
	files := []string{containersMainConf}
	if ents, err := fs.ReadDir(fsys, FSPath(dir)); err == nil {
		for _, e := range ents {
			if e.Name() != ours && strings.HasSuffix(e.Name(), ".conf") && !e.IsDir() {
				files = append(files, path.Join(dir, e.Name())) // ReadDir sorts by name
			}
		}
	}
	for _, f := range files {
		data, exists, err := readOptional(fsys, f)
		if err != nil {
			w.add(spec.Pos{}, "%v", err)
			continue
		}
		if !exists {
			continue
		}
		var rf registriesFile
		if err := toml.Unmarshal(data, &rf); err != nil {
			w.add(spec.Pos{}, "%s is not valid TOML (%s): Podman, Buildah and Skopeo fail on every command, and CRI-O keeps its previous registries on reload", f, tomlErrorLine(err))
			continue
		}
		later := path.Dir(f) == path.Clean(dir) && path.Base(f) > ours
		for _, r := range rf.Registry {
			p := r.Prefix
			if p == "" {
				p = r.Location
			}
			for _, t := range tables {
				switch {
				case p == t.prefix && later:
					w.add(spec.Pos{}, "%s sorts after %s and sets prefix %q too: its table replaces mirrorctl's for CRI-O and Podman", f, dropIn, p)
				case p == t.prefix:
					w.add(spec.Pos{}, "%s sets prefix %q; mirrorctl's %s replaces that table", f, p, dropIn)
				case len(p) > len(t.prefix) && strings.HasPrefix(p, t.prefix) && strings.ContainsRune("/:@", rune(p[len(t.prefix)])):
					w.add(spec.Pos{}, "%s sets the longer prefix %q: images under it do not use mirrorctl's table for %q (the longest prefix wins)", f, p, t.prefix)
				}
			}
		}
	}
}

// tomlErrorLine shortens a go-toml error to its position and message.
func tomlErrorLine(err error) string {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return fmt.Sprintf("line %d, column %d: %s", row, col, de.Error())
	}
	return err.Error()
}
