package engines

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"

	"github.com/mirrorctl/mirrorctl/credentials"
	"github.com/mirrorctl/mirrorctl/spec"
)

// What k3s and RKE2 do: they turn registries.yaml into hosts.toml for their
// embedded containerd with the rules of endpoints.go (k3s's own), and put
// its credentials into the CRI config, which containerd also sends to a
// token realm. Only the file counts: k3s reads it at start.

const k3sClient = "CRI of k3s/RKE2's containerd (kubelet, k3s crictl)"

// Routes: see the file comment.
func (e k3sEngine) Routes(ctx context.Context, img Image, h Host, d Detection, s *spec.Spec) (Routing, error) {
	rts, err := e.RoutesFor(ctx, []Image{img}, h, d, s)
	if err != nil {
		return Routing{Engine: e.Name(), Client: k3sClient, Image: img}, err
	}
	return rts[0][0], nil
}

// RoutesFor reads and parses registries.yaml once for every image: doctor
// asks for one image per mirrored registry, and parsing the file (and the
// TLS files it names) for each made it quadratic in the registries.
func (e k3sEngine) RoutesFor(_ context.Context, imgs []Image, h Host, d Detection, s *spec.Spec) ([][]Routing, error) {
	if s == nil {
		s = &spec.Spec{}
	}
	file := cmp.Or(d.Config, "/etc/rancher/k3s/registries.yaml")
	data, ok, err := readOptional(h.FS, file)
	if err != nil {
		return nil, err
	}
	var hosts map[string]*registryHosts
	var invalid error
	if ok {
		reg, err := spec.Parse(file, data, spec.Options{ReadFile: func(name string) ([]byte, error) {
			return fs.ReadFile(h.FS, FSPath(name))
		}})
		if err != nil {
			invalid = err
		} else {
			hosts, _ = buildRegistryHosts(hostInputs{mirrors: reg.Mirrors, configs: reg.Configs})
		}
	}
	out := make([][]Routing, 0, len(imgs))
	for _, img := range imgs {
		rt := Routing{Engine: e.Name(), Client: k3sClient, Image: img}
		up := Route{URL: upstreamURL(img.Registry), Capabilities: []string{"pull", "resolve", "push"}}
		switch {
		case !ok:
			rt.Routes = []Route{up}
			rt.Findings = append(rt.Findings, finding(Fail, "no_registries_yaml", "mirrorctl sync writes it; then restart k3s",
				"%s does not exist: k3s contacts %s itself", file, img.Registry))
		case invalid != nil:
			rt.Routes = []Route{up}
			rt.Findings = append(rt.Findings, finding(Fail, "registries_yaml_invalid", "fix the file (mirrorctl sync rewrites it)",
				"%s cannot be read as k3s reads it: %v", file, invalid))
		default:
			k3sRoutesOf(&rt, hosts, img, up, s, file)
		}
		out = append(out, []Routing{rt})
	}
	return out, nil
}

// k3sRoutesOf fills rt with the routes the hosts k3s writes give img.
func k3sRoutesOf(rt *Routing, hosts map[string]*registryHosts, img Image, up Route, s *spec.Spec, file string) {
	rh := hosts[registryDir(img.Registry)]
	if rh == nil {
		rh = hosts[wildcardDir]
	}
	if rh == nil {
		rt.Routes = []Route{up}
		return
	}
	for _, ep := range rh.hosts {
		rt.Routes = append(rt.Routes, k3sRoute(ep, img, s, file))
	}
	if rh.server != nil && rh.server.url != nil {
		r := k3sRoute(*rh.server, img, s, file)
		if r.URL == up.URL {
			r.Capabilities = up.Capabilities
		}
		rt.Routes = append(rt.Routes, r)
	} else {
		rt.Routes = append(rt.Routes, up)
	}
	if rh.mirror != nil && len(rh.mirror.Rewrites) > 0 {
		rt.Findings = append(rt.Findings, finding(Info, "rewrites", "",
			"%s rewrites repository names for %s: the mirror sees the rewritten name, not %s", file, rh.registry, img.Repository))
	}
}

func k3sRoute(ep hostEndpoint, img Image, s *spec.Spec, file string) Route {
	r := Route{URL: ep.url.String(), Capabilities: []string{"pull", "resolve"}}
	if isProxy(ep.url.Host, img.Registry) {
		r.Mirror, r.Namespace = true, img.Registry
	} else {
		r.Capabilities = []string{"pull", "resolve", "push"}
	}
	if a := ep.auth(); a != nil {
		// The spec's credentials by value, Basic or token, as the other
		// engines' routes find them.
		basic := a.Basic()
		key := matchBasic(s, ep.credsKey, func(b credentials.Secret) bool { return !basic.IsZero() && b.Reveal() == basic.Reveal() },
			a.IdentityToken.Reveal())
		name := specAuthName(key)
		if key == "" {
			name = fmt.Sprintf("%s configs.%q (not the spec's)", file, ep.credsKey)
		}
		r.Auth = &RouteAuth{Name: name, Key: key, Via: "registries.yaml configs", Token: true}
	}
	if t := ep.creds; t != nil && t.TLS != nil {
		r.TLS = &RouteTLS{SkipVerify: t.TLS.InsecureSkipVerify}
		if t.TLS.CAFile != "" {
			r.TLS.CA = []string{t.TLS.CAFile}
		}
		if t.TLS.CertFile != "" {
			r.TLS.Client = []string{t.TLS.CertFile}
		}
	}
	return r
}
