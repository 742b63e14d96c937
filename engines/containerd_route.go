package engines

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes/docker"

	"github.com/mirrorctl/mirrorctl/credentials"
	"github.com/mirrorctl/mirrorctl/spec"
)

// What containerd's CRI does for a pull (docs/engines/containerd.md,
// "hosts.toml" and "Credentials"): with a
// config_path, containerd's hosts loader picks <dir>/<host>/hosts.toml (or
// _default) and tries its hosts in order, the server line last; without
// one, the 1.x legacy registry.mirrors, then the registry itself.
// Credentials are a hosts.toml Authorization header (sent to the token
// realm from 2.1 on) or config.toml registry.configs."<contacted host>".auth.

// criClient names who pulls through containerd's CRI configuration.
const criClient = "CRI (kubelet, crictl)"

// criDefaultConfigPath is the config_path containerd 2.2+ fills in on Linux
// when config.toml sets neither config_path nor mirrors.
const criDefaultConfigPath = "/etc/containerd/certs.d:/etc/docker/certs.d"

// criRegistry is config.toml's CRI registry table as containerd reads it.
type criRegistry struct {
	configPath string // as written, or containerd's default
	defaulted  bool   // configPath is containerd's default
	mirrors    map[string][]string
	auth       map[string]map[string]any // registry.configs.<host>.auth
	localPull  bool                      // 2.1+: CRI pulls without the transfer service
	disabled   bool                      // disabled_plugins turns the CRI plugin off
}

// readCRIRegistry reads the registry table the file's version puts in
// effect (containerd 2.x migrates version 2 tables on load).
func readCRIRegistry(c *containerdConfig, rel release) criRegistry {
	var cr criRegistry
	plugins := []string{criImagesPlugin}
	switch {
	case c.version <= 1 && c.v1Layout():
		plugins = []string{"cri"}
	case c.version <= 2:
		plugins = []string{criV1Plugin}
	}
	reg := table(c.doc, append([]string{"plugins", plugins[0]}, "registry")...)
	cr.configPath, _ = reg["config_path"].(string)
	for r, v := range table(reg, "mirrors") {
		t, _ := v.(map[string]any)
		list, _ := t["endpoint"].([]any)
		var eps []string
		for _, e := range list {
			if s, ok := e.(string); ok {
				eps = append(eps, s)
			}
		}
		if cr.mirrors == nil {
			cr.mirrors = map[string][]string{}
		}
		cr.mirrors[r] = eps
	}
	for h, v := range table(reg, "configs") {
		if a := table(map[string]any{"x": v}, "x", "auth"); len(a) > 0 {
			if cr.auth == nil {
				cr.auth = map[string]map[string]any{}
			}
			cr.auth[h] = a
		}
	}
	if cr.configPath == "" && len(cr.mirrors) == 0 && rel.atLeast(2, 2, 0) {
		cr.configPath, cr.defaulted = criDefaultConfigPath, true
	}
	if rel.atLeast(2, 1, 0) {
		// CheckLocalImagePullConfigs: settings the transfer service does
		// not support send CRI back to local pulls.
		images := table(c.doc, "plugins", criImagesPlugin)
		if c.version <= 2 {
			images = table(c.doc, "plugins", criV1Plugin)
		}
		local, _ := images["use_local_image_pull"].(bool)
		mcd, hasMCD := images["max_concurrent_downloads"].(int64)
		discard, _ := images["discard_unpacked_layers"].(bool)
		cr.localPull = local || len(cr.mirrors) > 0 || len(cr.auth) > 0 || len(table(reg, "auths")) > 0 ||
			(hasMCD && mcd != 3) || discard
	}
	cr.disabled = c.criDisabled(cmp.Or(c.version, 2))
	return cr
}

// Routes: see the file comment.
func (e containerd) Routes(ctx context.Context, img Image, h Host, d Detection, s *spec.Spec) (Routing, error) {
	rts, err := e.RoutesFor(ctx, []Image{img}, h, d, s)
	if err != nil {
		return Routing{Engine: "containerd", Client: criClient, Image: img}, err
	}
	return rts[0][0], nil
}

// RoutesFor decodes config.toml once for every image: doctor asks for one
// image per mirrored registry, and a config.toml of thousands of
// registry.configs tables takes go-toml a time that grows with their
// square.
func (containerd) RoutesFor(ctx context.Context, imgs []Image, h Host, d Detection, s *spec.Spec) ([][]Routing, error) {
	if s == nil {
		s = &spec.Spec{}
	}
	p := resolveContainerdPaths(settingsOf[ContainerdSettings](s, "containerd"), h.FS)
	rel := parseRelease(d.Version)
	cfg, err := readContainerdConfig(h.FS, p.config)
	if err != nil {
		return nil, err
	}
	cr := readCRIRegistry(cfg, rel)
	out := make([][]Routing, 0, len(imgs))
	for _, img := range imgs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out = append(out, []Routing{criRoutes(ctx, img, h, s, p.config, cr, rel)})
	}
	return out, nil
}

// criRoutes are the routes of img through the CRI plugin whose registry
// settings are cr, read from config.
func criRoutes(ctx context.Context, img Image, h Host, s *spec.Spec, config string, cr criRegistry, rel release) Routing {
	out := Routing{Engine: "containerd", Client: criClient, Image: img}
	switch {
	case cr.disabled:
		out.Findings = append(out.Findings, finding(Fail, "cri_disabled", "remove the CRI plugin from disabled_plugins and restart containerd",
			"%s disables the CRI plugin: kubelet and crictl cannot pull through containerd at all", config))
		return out
	case len(cr.mirrors) > 0 && cr.configPath != "":
		out.Findings = append(out.Findings, finding(Fail, "cri_mirrors_and_config_path", "mirrorctl sync migrates registry.mirrors into hosts.toml",
			"%s sets both registry.mirrors and config_path: the CRI plugin does not load (`mirrors` cannot be set when `config_path` is provided)", config))
		return out
	case cr.configPath == "" && len(cr.mirrors) > 0:
		out.Routes = legacyRoutes(cr, img)
		out.Findings = append(out.Findings, finding(Info, "legacy_mirrors", "mirrorctl sync moves them into hosts.toml",
			"%s uses the deprecated registry.mirrors (no config_path)", config))
		credsFor(out.Routes, cr, s, rel)
		return out
	}
	var roots []string
	switch {
	case cr.configPath == "":
	case strings.Contains(cr.configPath, ":") && rel.atLeast(2, 1, 0) && !cr.localPull:
		// The transfer service hands the whole list to HostDirFromRoot as
		// one directory, which does not exist (docs/engines/containerd.md,
		// "One config_path directory").
		roots = []string{cr.configPath}
	default:
		roots = filepath.SplitList(cr.configPath)
	}
	loaded, err := loadHosts(ctx, h.FS, roots, img.Registry)
	if err != nil {
		out.Findings = append(out.Findings, finding(Fail, "hosts_unloadable", "fix or remove the file it names (mirrorctl sync rewrites its own)",
			"containerd cannot load the hosts of %s: %v; every CRI pull from it fails", img.Registry, err))
		return out
	}
	for _, msg := range loaded.logged {
		switch {
		case strings.Contains(msg, "failed to decode"):
			out.Findings = append(out.Findings, finding(Fail, "hosts_toml_invalid", "fix the file (or let mirrorctl sync rewrite its own)",
				"containerd logs only %q and falls back to the registry itself", msg))
		case strings.Contains(msg, "try HTTPS first"):
			out.Findings = append(out.Findings, finding(Info, "https_first", "", "containerd: %s", msg))
		}
	}
	for _, rh := range loaded.hosts {
		out.Routes = append(out.Routes, loaded.routeOf(rh, img.Registry))
	}
	credsFor(out.Routes, cr, s, rel, loaded.hosts...)
	if loaded.dir == "" && len(roots) > 0 && !strings.Contains(cr.configPath, ":") {
		out.Findings = append(out.Findings, finding(Info, "no_hosts_dir", "",
			"no %s/%s (or _default) directory: containerd contacts %s itself", cr.configPath, img.Registry, img.Registry))
	}
	return out
}

// legacyRoutes are the 1.x registry.mirrors endpoints (the path verbatim,
// an empty one meaning /v2), then the registry itself.
func legacyRoutes(cr criRegistry, img Image) []Route {
	eps, ok := cr.mirrors[img.Registry]
	if !ok {
		eps = cr.mirrors["*"]
	}
	up := upstreamURL(img.Registry)
	var out []Route
	for _, e := range eps {
		u, err := url.Parse(e)
		if err != nil || u.Host == "" {
			continue
		}
		if u.Path == "" {
			u.Path = "/v2"
		}
		r := Route{URL: u.String(), Capabilities: []string{"pull", "resolve"}}
		if isProxy(u.Host, img.Registry) {
			r.Mirror, r.Namespace = true, img.Registry
		}
		if r.URL != up {
			out = append(out, r)
		}
	}
	return append(out, Route{URL: up, Capabilities: []string{"pull", "resolve", "push"}})
}

// credsFor names the credentials containerd sends on each route: a
// hosts.toml Authorization header first, else registry.configs auth for
// the contacted host (CRI's credentials function).
func credsFor(routes []Route, cr criRegistry, s *spec.Spec, rel release, hosts ...docker.RegistryHost) {
	for i := range routes {
		r := &routes[i]
		u, err := url.Parse(r.URL)
		if err != nil {
			continue
		}
		if i < len(hosts) {
			if hdr := hosts[i].Header.Get("Authorization"); hdr != "" {
				key := headerKey(s, hdr, u.Host)
				r.Auth = &RouteAuth{Name: cmp.Or(authName(key), "an Authorization header not from the spec"), Key: key,
					Via: "hosts.toml header", Token: rel.atLeast(2, 1, 0),
					TokenFix: "set engines.containerd.credentials: config (config.toml auth also reaches the token realm), or upgrade containerd to 2.1 or later"}
				continue
			}
		}
		if a, ok := cr.auth[u.Host]; ok {
			key := configAuthKey(s, a, u.Host)
			r.Auth = &RouteAuth{Name: cmp.Or(authName(key), fmt.Sprintf("registry.configs.%q.auth (not from the spec)", u.Host)), Key: key,
				Via: "config.toml registry.configs", Token: true}
		}
	}
}

func authName(key string) string {
	if key == "" {
		return ""
	}
	return specAuthName(key)
}

// headerKey finds the spec's configs: key whose Basic credentials make
// the header value, preferring the contacted host's own key.
func headerKey(s *spec.Spec, hdr, host string) string {
	return matchBasic(s, host, func(b credentials.Secret) bool { return hdr == "Basic "+b.Reveal() })
}

// configAuthKey finds the configs: key whose credentials a config.toml
// auth table holds (username/password, auth; identitytoken by value).
func configAuthKey(s *spec.Spec, a map[string]any, host string) string {
	user, _ := a["username"].(string)
	pass, _ := a["password"].(string)
	b64, _ := a["auth"].(string)
	tok, _ := a["identitytoken"].(string)
	return matchBasic(s, host, func(b credentials.Secret) bool {
		switch {
		case user != "" || pass != "":
			return credentials.BasicAuth(user, credentials.NewSecret(pass)).Reveal() == b.Reveal()
		case b64 != "":
			return b64 == b.Reveal()
		}
		return false
	}, tok)
}

// matchBasic returns the configs: key whose Basic credentials satisfy eq
// (or whose identity token is one of tokens), the contacted host's first.
func matchBasic(s *spec.Spec, host string, eq func(credentials.Secret) bool, tokens ...string) string {
	keys := sortedKeys(s.Configs)
	slices.SortStableFunc(keys, func(a, b string) int {
		return cmp.Compare(boolInt(a != host && !(a == dockerHub && host == hubHost)), boolInt(b != host && !(b == dockerHub && host == hubHost)))
	})
	for _, k := range keys {
		a := s.Configs[k].Auth
		if a == nil {
			continue
		}
		if b := a.Basic(); !b.IsZero() && eq(b) {
			return k
		}
		if t := a.IdentityToken.Reveal(); t != "" && slices.Contains(tokens, t) {
			return k
		}
	}
	return ""
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
