package engines

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/mirrorctl/mirrorctl/credentials"
	"github.com/mirrorctl/mirrorctl/spec"
)

// Which credentials containers/image sends to a source
// (pkg/docker/config, getCredentialsWithHomeDir): registries.conf's
// credential-helpers in order, where "containers-auth.json" means the auth
// files; in each file, a credHelpers entry for the host, else the auths
// entry of the name, then of each shorter namespace, then of the host,
// else an entry whose key normalises to the host (a URL, Docker Hub's
// index.docker.io). An entry that does not decode to user:password is
// skipped for the next file; a file that is not JSON, or an auth that is
// not base64, fails the source. Values are compared here, never shown.

// authFile is a file containers/image reads credentials from.
type authFile struct {
	path   string
	legacy bool // ~/.dockercfg: entries at the top level, looked up by host only
}

// credHit is what a lookup found: an entry (file, key), a helper asked,
// nothing, or a failure.
type credHit struct {
	file, key string
	helper    string // docker-credential-<helper> is asked instead
	basic     string // "user:password" as the library decodes it; secret
	token     string // identitytoken; secret
	err       error
}

type authFileContent struct {
	Auths       map[string]authEntry `json:"auths"`
	CredHelpers map[string]string    `json:"credHelpers"`
}

type authEntry struct {
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
}

// lookupCreds is the library's lookup of key (a name: host[/ns…/repo]).
func lookupCreds(fsys fs.FS, helpers []string, files []authFile, key string) credHit {
	registry, _, _ := strings.Cut(key, "/")
	for _, helper := range helpers {
		if helper != containersAuthHelper {
			return credHit{helper: helper} // asked; what it answers is not known here
		}
		for _, f := range files {
			hit, found := lookupInFile(fsys, f, key, registry)
			if hit.err != nil || hit.helper != "" || (found && hit.basic != "") {
				return hit
			}
		}
	}
	return credHit{}
}

// lookupInFile looks key up in one file; found reports an entry was used
// (it may have held no user:password).
func lookupInFile(fsys fs.FS, f authFile, key, registry string) (credHit, bool) {
	data, ok, err := readOptional(fsys, f.path)
	if err != nil {
		return credHit{file: f.path, err: err}, false
	}
	if !ok {
		return credHit{}, false
	}
	var c authFileContent
	if f.legacy {
		err = json.Unmarshal(data, &c.Auths)
	} else {
		err = json.Unmarshal(data, &c)
	}
	if err != nil {
		// Say where, not what: the file may hold anything (global_auth_file
		// names any path), and a syntax error quotes the byte it met.
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return credHit{file: f.path, err: fmt.Errorf("%s is not valid JSON (at byte %d)", f.path, se.Offset)}, false
		}
		return credHit{file: f.path, err: fmt.Errorf("%s is not an auth file (auths of {auth, identitytoken})", f.path)}, false
	}
	if h, ok := c.CredHelpers[registry]; ok {
		return credHit{file: f.path, key: registry, helper: h}, true
	}
	keys := []string{registry}
	if !f.legacy {
		keys = keys[:0]
		for k := key; ; {
			keys = append(keys, k)
			i := strings.LastIndex(k, "/")
			if i < 0 {
				break
			}
			k = k[:i]
		}
	}
	for _, k := range keys {
		if e, ok := c.Auths[k]; ok {
			return decodeAuthEntry(f.path, k, e), true
		}
	}
	norm := normalizeRegistry(registry)
	for _, k := range sortedKeys(c.Auths) { // the library's map order is random; ties are rare
		if normalizeAuthKey(k, f.legacy) == norm {
			return decodeAuthEntry(f.path, k, c.Auths[k]), true
		}
	}
	return credHit{}, false
}

func decodeAuthEntry(file, key string, e authEntry) credHit {
	h := credHit{file: file, key: key}
	raw, err := base64.StdEncoding.DecodeString(e.Auth)
	if err != nil {
		h.err = fmt.Errorf("%s: auths.%q: the auth value is not base64", file, key)
		return h
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	pass = strings.Trim(pass, "\x00")
	if !ok || (user == "" && pass == "" && e.IdentityToken == "") {
		return h // no credentials: the library moves on to the next file
	}
	h.basic, h.token = user+":"+pass, e.IdentityToken
	return h
}

// specKeyFor is the configs: key whose credentials a hit holds.
func specKeyFor(s *spec.Spec, host string, hit credHit) string {
	return matchBasic(s, host, func(b credentials.Secret) bool {
		dec, err := base64.StdEncoding.DecodeString(b.Reveal())
		if err != nil {
			return false
		}
		u, p, _ := strings.Cut(string(dec), ":")
		return hit.basic == u+":"+strings.Trim(p, "\x00")
	}, hit.token)
}

func normalizeAuthKey(k string, legacy bool) string {
	s := strings.TrimPrefix(strings.TrimPrefix(k, "http://"), "https://")
	if legacy || s != k {
		s, _, _ = strings.Cut(s, "/")
	}
	return normalizeRegistry(s)
}

func normalizeRegistry(r string) string {
	if r == hubHost || r == dockerHub {
		return "index.docker.io"
	}
	return r
}

// containersRouteAuth names what a client sends to one source (name is its
// rewritten repository, host its host), and adds a finding where the lookup
// fails or an earlier file hides the spec's credentials.
func containersRouteAuth(rt *Routing, fsys fs.FS, helpers []string, files []authFile, name, host string, s *spec.Spec) *RouteAuth {
	hit := lookupCreds(fsys, helpers, files, name)
	switch {
	case hit.err != nil:
		rt.Findings = append(rt.Findings, finding(Fail, "auth_file_invalid", "fix or remove the entry or file (mirrorctl sync rewrites only its own entries)",
			"containers/image cannot look credentials for %s up: %v; every pull from it fails", host, hit.err))
		return nil
	case hit.helper != "" && hit.file != "":
		return &RouteAuth{Name: fmt.Sprintf("docker-credential-%s (credHelpers.%q, not checked)", hit.helper, hit.key), Via: hit.file, Token: true}
	case hit.helper != "":
		return &RouteAuth{Name: fmt.Sprintf("docker-credential-%s (not checked)", hit.helper), Via: "registries.conf credential-helpers", Token: true}
	case hit.basic == "":
		return nil
	}
	key := specKeyFor(s, host, hit)
	if key != "" {
		return &RouteAuth{Name: specAuthName(key), Key: key, Via: hit.file, Token: true}
	}
	a := &RouteAuth{Name: fmt.Sprintf("auths.%q (not the spec's)", hit.key), Via: hit.file, Token: true}
	// An entry read first (podman login's runtime file) hides the spec's
	// credentials that mirrorctl writes to a later file.
	for i, f := range files {
		if f.path != hit.file {
			continue
		}
		if i+1 < len(files) && strings.HasSuffix(files[i+1].path, "/.config/containers/auth.json") {
			a.Fix = fmt.Sprintf("remove the entry (podman logout %s): %s is read before %s, where mirrorctl sync writes the spec's credentials", hit.key, hit.file, files[i+1].path)
		}
		later := lookupCreds(fsys, []string{containersAuthHelper}, files[i+1:], name)
		if later.basic == "" {
			break
		}
		if k := specKeyFor(s, host, later); k != "" {
			rt.Findings = append(rt.Findings, finding(Warn, "auth_shadowed",
				fmt.Sprintf("remove the entry (podman logout %s), so that %s is read", hit.key, later.file),
				"%s holds auths.%q, which is read before %s, where %s is", hit.file, hit.key, later.file, specAuthName(k)))
		}
		break
	}
	return a
}

// crioAuthFileOf is the global_auth_file CRI-O is configured with:
// crio.conf, then every crio.conf.d/*.conf in name order, the last setting
// wins; "" when none sets it. from names the file that set it.
func crioAuthFileOf(fsys fs.FS) (file, from string, err error) {
	files := []string{crioMainConf}
	dir := path.Dir(crioDropIn)
	if ents, err := fs.ReadDir(fsys, FSPath(dir)); err == nil {
		for _, e := range ents {
			if !e.IsDir() && strings.HasSuffix(e.Name(), ".conf") && len(files) <= maxRegistriesFiles {
				files = append(files, path.Join(dir, e.Name()))
			}
		}
	}
	for _, f := range files {
		data, ok, err := readOptional(fsys, f)
		if err != nil {
			return "", "", err
		}
		if !ok {
			continue
		}
		var c crioConfigFile
		if err := toml.Unmarshal(data, &c); err != nil {
			return "", "", fmt.Errorf("%s is not valid TOML (%s)", f, tomlErrorLine(err))
		}
		if g := c.Crio.Image.GlobalAuthFile; g != nil {
			file, from = *g, f
		}
	}
	return file, from, nil
}
