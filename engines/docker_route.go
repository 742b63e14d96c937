package engines

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/mirrorctl/mirrorctl/engines/health"
	"github.com/mirrorctl/mirrorctl/spec"
)

// What `docker pull` does (docs/engines/docker.md): with the
// classic image store, dockerd uses daemon.json registry-mirrors for Docker
// Hub only, in order, then Docker Hub itself, and sends the mirrors only
// the client's Docker Hub login; every other registry is contacted
// directly. With the containerd image store (Docker ≥ 28), dockerd runs
// containerd's hosts loader on /etc/docker/certs.d, where hosts.toml can
// name mirrors for any registry and their credentials as headers, and
// registry-mirrors still applies to Docker Hub when hosts.toml lists fewer
// than two hosts.

const dockerClient = "docker pull"

// dockerHubKeys are the configs: keys that hold a Docker Hub login.
var dockerHubKeys = []string{dockerHub, "index.docker.io", hubHost, "https://index.docker.io/v1/"}

// Routes: see the file comment.
func (e dockerEngine) Routes(ctx context.Context, img Image, h Host, d Detection, s *spec.Spec) (Routing, error) {
	if s == nil {
		s = &spec.Spec{}
	}
	cfg := dockerSettingsOf(s)
	out := Routing{Engine: e.Name(), Client: dockerClient, Image: img}
	mirrors, err := daemonMirrors(h, cfg.daemonJSON)
	if err != nil {
		out.Findings = append(out.Findings, finding(Fail, "daemon_json_invalid", "fix the file; dockerd refuses to start with it", "%v", err))
		return out, nil
	}
	up := upstreamURL(img.Registry)
	if d.ImageStore == "containerd" {
		loaded, err := loadHosts(ctx, h.FS, []string{cfg.certsDir}, img.Registry)
		if err != nil {
			out.Findings = append(out.Findings, finding(Fail, "hosts_unloadable", "fix or remove the file it names",
				"dockerd (containerd image store) cannot load the hosts of %s: %v", img.Registry, err))
			return out, nil
		}
		for _, msg := range loaded.logged {
			if strings.Contains(msg, "failed to decode") {
				out.Findings = append(out.Findings, finding(Fail, "hosts_toml_invalid", "fix the file",
					"dockerd logs only %q and falls back to the registry itself", msg))
			}
		}
		var routes []Route
		for _, rh := range loaded.hosts {
			r := loaded.routeOf(rh, img.Registry)
			if hdr := rh.Header.Get("Authorization"); hdr != "" {
				key := headerKey(s, hdr, rh.Host)
				// Docker 29 links containerd ≥ 2.1, which also sends hosts.toml
				// headers to a token realm; older releases are taken not to.
				r.Auth = &RouteAuth{Name: cmp.Or(authName(key), "an Authorization header not from the spec"), Key: key,
					Via: "hosts.toml header", Token: releaseAtLeast(d.Version, 29, 0),
					TokenFix: "use Docker 29 or later (its containerd sends hosts.toml headers to the token realm), or allow anonymous pull on the mirror"}
			}
			routes = append(routes, r)
		}
		if img.Registry == dockerHub && len(loaded.hosts) < 2 && len(mirrors) > 0 {
			routes = append(hubRoutes(mirrors, s), routes...)
		}
		out.Routes = routes
		return out, nil
	}
	if img.Registry != dockerHub {
		out.Routes = []Route{{URL: up, Capabilities: []string{"pull", "resolve", "push"}}}
		out.Findings = append(out.Findings, finding(Fail, "docker_hub_only",
			"pull it with crictl (containerd's CRI uses hosts.toml), or use Docker ≥ 28 with the containerd image store and hosts.toml under /etc/docker/certs.d",
			"dockerd (classic image store) uses registry-mirrors for Docker Hub only: docker pull %s goes to %s", img, img.Registry))
		return out, nil
	}
	out.Routes = append(hubRoutes(mirrors, s), Route{URL: up, Capabilities: []string{"pull", "resolve", "push"}})
	for _, r := range out.Routes[:len(out.Routes)-1] {
		host := hostOfURL(r.URL)
		if c := s.Configs[host]; c != nil && c.Auth != nil {
			out.Findings = append(out.Findings, finding(Info, "credentials_not_sent_to_mirror", "",
				"dockerd never sends %s to the mirror %s, only the pulling user's Docker Hub login", specAuthName(host), r.URL))
		}
	}
	return out, nil
}

// hubRoutes are registry-mirrors as dockerd contacts them: the mirror's
// path plus /v2, credentials the client's Docker Hub login.
func hubRoutes(mirrors []string, s *spec.Spec) []Route {
	var login *RouteAuth
	for _, k := range dockerHubKeys {
		if c := s.Configs[k]; c != nil && c.Auth != nil {
			login = &RouteAuth{Name: specAuthName(k), Key: k, Via: "config.json (the pulling user's Docker Hub login)", Token: true}
			break
		}
	}
	var out []Route
	for _, m := range mirrors {
		u, err := url.Parse(m)
		if err != nil || u.Host == "" {
			continue
		}
		p := strings.TrimSuffix(u.Path, "/")
		if !strings.HasSuffix(p, "/v2") {
			p += "/v2"
		}
		u.Path = p
		out = append(out, Route{URL: u.String(), Mirror: true, Capabilities: []string{"pull", "resolve"}, Auth: login,
			AuthFix: "dockerd sends a Docker Hub mirror only the pulling user's Docker Hub login: allow anonymous pull on the mirror, or make its credentials the Docker Hub login (configs.\"docker.io\")"})
	}
	return out
}

func hostOfURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.Host
}

// daemonMirrors reads registry-mirrors from daemon.json.
func daemonMirrors(h Host, file string) ([]string, error) {
	data, ok, err := readOptional(h.FS, file)
	if err != nil || !ok {
		return nil, err
	}
	// Read as dockerd and the Docker engine read it (a BOM, an empty file).
	obj, err := parseJSONObject(file, data)
	if err != nil {
		return nil, err
	}
	var mirrors []string
	if raw, ok := obj.get(keyMirrors); ok {
		if err := json.Unmarshal(raw, &mirrors); err != nil {
			return nil, fmt.Errorf("%s: %s is not a list of URLs: %w", file, keyMirrors, err)
		}
	}
	return mirrors, nil
}

// Inspect compares the running dockerd's registry mirrors with daemon.json.
func (e dockerEngine) Inspect(ctx context.Context, h Host, d Detection, s *spec.Spec, resolve func(string) (string, error)) []Finding {
	if s == nil {
		s = &spec.Spec{}
	}
	cfg := dockerSettingsOf(s)
	var out []Finding
	if d.ImageStore == "" {
		out = append(out, finding(Info, "image_store_unknown", "", "dockerd's image store is not known: taken as the classic store (registry-mirrors, Docker Hub only)"))
	}
	mirrors, err := daemonMirrors(h, cfg.daemonJSON)
	if err != nil {
		return append(out, finding(Fail, "daemon_json_invalid", "fix the file; dockerd refuses to start with it", "%v", err))
	}
	socket := cmp.Or(d.Socket, cfg.socket)
	sock, err := resolve(socket)
	if err != nil {
		return append(out, finding(Info, "daemon_not_running", "", "dockerd is not running (no socket %s): the routes are what it will do once started", socket))
	}
	st, err := health.DockerStatus(ctx, sock)
	switch {
	case errors.Is(err, health.ErrNotRunning):
		return append(out, finding(Info, "daemon_not_running", "", "dockerd is not running (%v): the routes are what it will do once started", err))
	case err != nil:
		return append(out, finding(Warn, "daemon_not_answering", "check systemctl status docker", "%v", err))
	}
	want := health.NormalizeMirrors(mirrors)
	if !slices.Equal(st.Mirrors, want) {
		return append(out, finding(Fail, "pending_reload", "systemctl reload docker (SIGHUP; a removed key needs a restart)",
			"dockerd runs with registry mirrors %q but %s says %q", st.Mirrors, cfg.daemonJSON, want))
	}
	return append(out, finding(OK, "daemon_matches_files", "", "dockerd runs with the registry mirrors %s says %q", cfg.daemonJSON, want))
}
