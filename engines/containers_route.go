package engines

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/mirrorctl/mirrorctl/spec"
)

// What CRI-O and Podman (Buildah, Skopeo) do for a pull, as containers/image
// does it (docker/docker_image_src.go, newImageSource): the [[registry]]
// whose prefix is the longest match of the image, its mirrors in order
// (those for digests only left out for a tag, and the reverse), then its
// location, each rewritten from the prefix to its location. A source whose
// rewritten name falls under a blocked table is refused (the library checks
// blocked per source, so mirrors of a blocked registry still serve it). A
// source with insecure = true is tried over HTTPS without verifying the
// certificate, then over plain HTTP. Credentials are looked up per source
// by its rewritten name (host/ns/repo, then shorter, then the host) in the
// auth files each client reads (containers_creds.go). Only the files count:
// Podman reads them at every command, CRI-O at start and on reload.

const (
	crioWho      = "crio"
	crioClientOf = "CRI-O (kubelet, crictl; a pod's pull secret comes first)"
	podmanClient = "%s as root (no REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR or DOCKER_CONFIG: a service, cron)"
)

// containersClient is one program on the node that pulls through
// containers/image, with the credentials it reads.
type containersClient struct {
	who, client string
	auth        []authFile
	findings    []Finding // facts of the client (where its auth file comes from)
}

// Routes is the first client's routing (CRI-O when it is installed).
func (e containersEngine) Routes(ctx context.Context, img Image, h Host, d Detection, s *spec.Spec) (Routing, error) {
	rts, err := e.ClientRoutes(ctx, img, h, d, s)
	if err != nil || len(rts) == 0 {
		return Routing{Engine: e.Name(), Image: img}, err
	}
	return rts[0], nil
}

// ClientRoutes: one routing per client found, CRI-O first; see the file
// comment. With neither CRI-O nor a tool found (an engine forced on), the
// Podman family's.
func (e containersEngine) ClientRoutes(ctx context.Context, img Image, h Host, d Detection, s *spec.Spec) ([]Routing, error) {
	rts, err := e.RoutesFor(ctx, []Image{img}, h, d, s)
	if err != nil {
		return nil, err
	}
	return rts[0], nil
}

// RoutesFor is ClientRoutes for many images, reading registries.conf, its
// drop-ins and the clients' settings once: doctor asks for one image per
// mirrored registry, and mirrorctl's drop-in names every registry.
func (e containersEngine) RoutesFor(_ context.Context, imgs []Image, h Host, d Detection, s *spec.Spec) ([][]Routing, error) {
	if s == nil {
		s = &spec.Spec{}
	}
	home := rootHome(h.FS)
	var conf *registriesConf
	files, err := registriesFiles(h.FS, home)
	if err == nil {
		conf, err = loadRegistriesConf(h.FS, files)
	}
	clients := containersClients(h, d, home, containersPathsOf(s))
	out := make([][]Routing, 0, len(imgs))
	for _, img := range imgs {
		var rts []Routing
		for _, c := range clients {
			rt := Routing{Engine: e.Name(), Client: c.client, Who: c.who, Image: img, Findings: slices.Clone(c.findings)}
			if err != nil {
				rt.Findings = append(rt.Findings, confFinding(err))
			} else {
				routeContainers(&rt, conf, c, h, s)
			}
			rts = append(rts, rt)
		}
		out = append(out, rts)
	}
	return out, nil
}

// confFinding is a registries.conf containers/image refuses.
func confFinding(err error) Finding {
	return finding(Fail, "registries_conf_invalid",
		"fix the file (podman info names the error); mirrorctl's own drop-in is valid by construction",
		"containers/image refuses %v: Podman, Buildah and Skopeo fail on every command, CRI-O keeps its previous registries on reload and does not start", err)
}

// containersClients are CRI-O (when installed) and the Podman family
// (when one of its tools is, or when nothing is).
func containersClients(h Host, d Detection, home string, p containersPaths) []containersClient {
	rootFiles := []authFile{
		{path: "/run/containers/0/auth.json"},
		{path: path.Join(home, ".config/containers/auth.json")},
		{path: path.Join(home, ".docker/config.json")},
		{path: path.Join(home, ".dockercfg"), legacy: true},
	}
	var out []containersClient
	if d.Unit != "" {
		c := containersClient{who: crioWho, client: crioClientOf, auth: rootFiles}
		switch file, from, err := crioAuthFileOf(h.FS); {
		case err != nil:
			c.findings = append(c.findings, finding(Fail, "crio_conf_invalid", "fix the file",
				"%v: CRI-O does not start with it", err))
		case file != "":
			c.auth = []authFile{{path: file}}
			c.findings = append(c.findings, finding(Info, "crio_global_auth_file", "",
				"CRI-O reads credentials from %s only (global_auth_file in %s)", file, from))
			if !hostHas(h.FS, file) {
				fix := "create it, or remove global_auth_file from " + from
				if from == p.crioDropIn {
					fix = "mirrorctl sync writes it"
				}
				c.findings = append(c.findings, finding(Warn, "crio_auth_file_missing", fix,
					"global_auth_file %s (from %s) does not exist: CRI-O sends no credentials", file, from))
			}
		}
		out = append(out, c)
	}
	var tools []string
	for _, tool := range containersTools {
		if firstPresent(h.FS, path.Join(toolDirs[0], tool), path.Join(toolDirs[1], tool)) != "" {
			tools = append(tools, tool)
		}
	}
	if len(tools) > 0 || len(out) == 0 {
		who := "podman"
		if len(tools) > 0 {
			who = tools[0]
		} else {
			tools = containersTools
		}
		c := containersClient{who: who, client: fmt.Sprintf(podmanClient, strings.Join(tools, ", ")), auth: rootFiles}
		if hostHas(h.FS, "/run/user/0/containers/auth.json") {
			c.findings = append(c.findings, finding(Info, "login_auth_file", "",
				"a root login shell (XDG_RUNTIME_DIR=/run/user/0) reads /run/user/0/containers/auth.json first instead of /run/containers/0/auth.json"))
		}
		out = append(out, c)
	}
	return out
}

// rootHome is root's home directory from /etc/passwd.
func rootHome(fsys fs.FS) string {
	data, _, _ := readOptional(fsys, "/etc/passwd")
	if u, ok := parsePasswd(data)["root"]; ok && path.IsAbs(u.home) && path.Clean(u.home) == u.home && u.home != "/" {
		return u.home
	}
	return "/root"
}

// routeContainers fills rt with the sources of its image under conf.
func routeContainers(rt *Routing, conf *registriesConf, c containersClient, h Host, s *spec.Spec) {
	if rt.Image.Short {
		img, ok := resolveShortName(rt, conf, h.FS)
		if !ok {
			return
		}
		rt.Image = img
	}
	img := rt.Image
	name := img.Registry + "/" + img.Repository
	ref := img.String()
	reg := conf.findRegistry(name)
	if reg == nil { // the library's default: the reference itself
		reg = &regEntry{Prefix: name, Location: name}
	}
	srcs, err := pullSources(reg, ref, img.IsDigest())
	if err != nil {
		rt.Findings = append(rt.Findings, finding(Fail, "reference_rewrite_invalid",
			fmt.Sprintf("fix the location of prefix %q in %s", reg.Prefix, reg.file),
			"containers/image cannot rewrite %s for [[registry]] prefix %q (%s): %v; every pull of it fails", ref, reg.Prefix, reg.file, err))
		return
	}
	var blocked []string
	for _, src := range srcs {
		sname, _ := splitRef(src.ref)
		if b := conf.findRegistry(sname); b != nil && b.Blocked {
			blocked = append(blocked, fmt.Sprintf("%s (prefix %q in %s)", sname, b.Prefix, b.file))
			continue
		}
		host := refDomain(sname)
		r := Route{URL: containersURL(host), Mirror: isProxy(host, img.Registry), Namespace: src.NamespaceProxy,
			Capabilities: []string{"pull", "resolve"}, HTTPFallback: src.Insecure,
			AuthFix: "containers/image looks credentials up by the host it contacts: the spec's configs: entry for this host, written by mirrorctl sync"}
		if src.mirror && (reg.MirrorByDigestOnly || src.PullFromMirror == "digest-only") {
			r.Capabilities = []string{"pull"}
		}
		if p := refPath(sname); p != img.Repository {
			r.Repository = p
		}
		tls, problem := containersCertsOf(h.FS, host, src.Insecure)
		r.TLS = tls
		if problem != "" {
			rt.Findings = append(rt.Findings, finding(Fail, "certs_d_invalid", "give every client certificate its key (and the reverse), or remove it",
				"%s: every connection to %s fails", problem, host))
		}
		r.Auth = containersRouteAuth(rt, h.FS, conf.helpers, c.auth, sname, host, s)
		rt.Routes = append(rt.Routes, r)
	}
	switch {
	case len(blocked) > 0 && len(rt.Routes) == 0:
		rt.Findings = append(rt.Findings, finding(Fail, "registry_blocked",
			"remove blocked = true from that table (a later drop-in with the same prefix replaces mirrorctl's table whole), or give the registry a mirror",
			"registries.conf blocks %s: every pull of %s fails", strings.Join(blocked, ", "), img))
	case len(blocked) > 0:
		rt.Findings = append(rt.Findings, finding(Info, "blocked_source", "",
			"registries.conf blocks %s: not tried, so pulls never fall back to it", strings.Join(blocked, ", ")))
	}
}

// containersURL is the API root containers/image contacts for a host;
// Docker Hub's docker.io is registry-1.docker.io.
func containersURL(host string) string {
	if host == dockerHub {
		host = hubHost
	}
	return "https://" + host + "/v2"
}

// containersCertsOf is the TLS the library uses for host: the *.crt and
// *.cert of /etc/containers/certs.d/<host> (else /etc/docker/certs.d/<host>),
// and whether a client certificate lacks its key or the reverse (then every
// connection fails).
func containersCertsOf(fsys fs.FS, host string, insecure bool) (*RouteTLS, string) {
	var t RouteTLS
	t.SkipVerify = insecure
	problem := ""
	for _, base := range []string{containersCertsDir, "/etc/docker/certs.d"} {
		dir := path.Join(base, host)
		ents, err := fs.ReadDir(fsys, FSPath(dir))
		if err != nil {
			continue
		}
		names := map[string]bool{}
		for _, e := range ents {
			names[e.Name()] = true
		}
		for _, e := range ents {
			n, p := e.Name(), path.Join(dir, e.Name())
			switch {
			case strings.HasSuffix(n, ".crt"):
				t.CA = append(t.CA, p)
			case strings.HasSuffix(n, ".cert"):
				t.Client = append(t.Client, p)
				if !names[strings.TrimSuffix(n, ".cert")+".key"] && problem == "" {
					problem = fmt.Sprintf("%s has no key %s", p, strings.TrimSuffix(n, ".cert")+".key")
				}
			case strings.HasSuffix(n, ".key"):
				if !names[strings.TrimSuffix(n, ".key")+".cert"] && problem == "" {
					problem = fmt.Sprintf("%s has no certificate %s", p, strings.TrimSuffix(n, ".key")+".cert")
				}
			}
		}
		break // the first directory that exists is the only one read
	}
	if !t.SkipVerify && len(t.CA) == 0 && len(t.Client) == 0 {
		return nil, problem
	}
	return &t, problem
}

// resolveShortName says how a name written without a registry resolves:
// an alias (root's alias cache first, then registries.conf [aliases]),
// else unqualified-search-registries under short-name-mode. It returns the
// image the routes are for, and false when the pull cannot resolve.
func resolveShortName(rt *Routing, conf *registriesConf, fsys fs.FS) (Image, bool) {
	img := rt.Image
	short := strings.TrimPrefix(img.Repository, "library/")
	cached, err := aliasCache(fsys)
	if err != nil {
		rt.Findings = append(rt.Findings, finding(Fail, "short_name_aliases_invalid", "fix or remove the file (podman writes it when it asks which registry to use)",
			"%v: every short name fails", err))
		return img, false
	}
	a, ok := cached[short]
	if !ok {
		a, ok = conf.aliases[short]
	}
	if ok && a.value != "" {
		target, err := ParseImage(a.value + tagOf(img))
		if err == nil {
			rt.Findings = append(rt.Findings, finding(Info, "short_name_alias", "",
				"the short name %s resolves through the alias in %s to %s", short, a.file, a.value))
			return target, true
		}
	}
	fqn := "write the full name (" + img.String() + ")"
	switch {
	case len(conf.search) == 0:
		rt.Findings = append(rt.Findings, finding(Fail, "short_name_unresolvable", fqn+", or add "+dockerHub+" to unqualified-search-registries",
			"%s is a short name with no alias, and unqualified-search-registries is empty: the pull fails", short))
		return img, false
	case conf.mode == "enforcing" && len(conf.search) > 1:
		rt.Findings = append(rt.Findings, finding(Fail, "short_name_ambiguous", fqn+", or add an alias",
			"%s is a short name, short-name-mode is enforcing and unqualified-search-registries lists %d registries (%s): without a terminal to ask on (CRI-O, a script) the pull fails",
			short, len(conf.search), conf.searchFrom))
		return img, false
	case conf.search[0] != dockerHub:
		rt.Findings = append(rt.Findings, finding(Warn, "short_name_search", fqn,
			"%s is a short name: it is looked up in %s in that order (unqualified-search-registries in %s), so %s/%s is tried before these routes",
			short, strings.Join(conf.search, ", "), conf.searchFrom, conf.search[0], short))
	default:
		rt.Findings = append(rt.Findings, finding(Info, "short_name_search", "",
			"%s is a short name: %s is the first of unqualified-search-registries (%s)", short, dockerHub, conf.searchFrom))
	}
	return img, true
}

func tagOf(img Image) string {
	if img.IsDigest() {
		return "@" + img.Reference
	}
	return ":" + img.Reference
}

// shortNameCache is root's short-name alias cache, which Podman writes when
// it asks which registry a short name means; it comes before registries.conf.
const shortNameCache = "/var/cache/containers/short-name-aliases.conf"

func aliasCache(fsys fs.FS) (map[string]alias, error) {
	data, ok, err := readOptional(fsys, shortNameCache)
	if err != nil || !ok {
		return nil, err
	}
	var f struct {
		Aliases map[string]string `toml:"aliases"`
	}
	if err := toml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s is not valid TOML (%s)", shortNameCache, tomlErrorLine(err))
	}
	out := map[string]alias{}
	for _, name := range sortedKeys(f.Aliases) {
		if err := checkAlias(name, f.Aliases[name]); err != nil {
			return nil, fmt.Errorf("%s: %w", shortNameCache, err)
		}
		out[name] = alias{value: f.Aliases[name], file: shortNameCache}
	}
	return out, nil
}
