package engines

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// containersCerts renders <certs_dir>/<host[:port]>/{ca.crt,client.cert,
// client.key} for every configs host with TLS files. containers/image reads
// the directory of the host it contacts at every pull: *.crt are added to
// the system CAs, and each *.cert needs the *.key of the same name (and the
// reverse), or every pull from the host fails. Docker Hub's directory is
// docker.io.
func containersCerts(s *spec.Spec, certsDir string, w *warnList) []render.File {
	var out []render.File
	done := map[string]bool{}
	for _, host := range sortedKeys(s.Configs) {
		t := s.Configs[host].TLS
		if t == nil || (len(t.CA) == 0 && len(t.Cert) == 0 && t.Key.IsZero()) {
			continue
		}
		if host == "*" {
			w.add(t.Pos, `certs.d has no wildcard directory: the TLS files of configs "*" are not given to CRI-O and Podman`)
			continue
		}
		name := containersHost(host)
		if done[name] {
			continue // docker.io sorts before its aliases and wins
		}
		done[name] = true
		dir := path.Join(certsDir, name)
		group := "containers:certs.d/" + name
		if len(t.CA) > 0 {
			out = append(out, render.File{Path: path.Join(dir, "ca.crt"), Data: t.CA, Mode: 0o644, Group: group})
		}
		// The spec refuses a certificate without its key and the reverse.
		if len(t.Cert) > 0 && !t.Key.IsZero() {
			out = append(out,
				render.File{Path: path.Join(dir, "client.cert"), Data: t.Cert, Mode: 0o644, Group: group},
				render.File{Path: path.Join(dir, "client.key"), Data: []byte(t.Key.Reveal()), Mode: 0o600, Secret: true, Group: group})
		}
	}
	return out
}

// containersAuthEntries are the auth.json entries the spec derives, by key
// (the host contacted; docker.io for Docker Hub, as podman login writes
// it), and the keys in order.
func containersAuthEntries(s *spec.Spec, w *warnList) (map[string]map[string]string, []string) {
	entries := map[string]map[string]string{}
	var keys []string
	for _, host := range sortedKeys(s.Configs) {
		a := s.Configs[host].Auth
		if a == nil {
			continue
		}
		if host == "*" {
			w.add(a.Pos, `auth.json has no wildcard entry: the auth of configs "*" is not given to CRI-O and Podman`)
			continue
		}
		key := containersHost(host)
		if _, dup := entries[key]; dup {
			continue // docker.io sorts before its aliases and wins
		}
		e := map[string]string{}
		if b := a.Basic(); !b.IsZero() {
			e["auth"] = b.Reveal()
		} else if !a.IdentityToken.IsZero() {
			// containers/image returns nothing for an entry whose "auth"
			// does not decode to user:password, identitytoken or not; the
			// docker CLI marks a token login with the user "<token>".
			e["auth"] = base64.StdEncoding.EncodeToString([]byte("<token>:"))
			e["identitytoken"] = a.IdentityToken.Reveal()
		} else {
			continue
		}
		entries[key] = e
		keys = append(keys, key)
	}
	return entries, keys
}

// containersAuthFiles merges the entries into each auth user's
// ~/.config/containers/auth.json. Podman, Buildah and Skopeo run by that
// user look there after $XDG_RUNTIME_DIR/containers/auth.json
// (/run/containers/<uid>/auth.json for root, a tmpfs that podman login
// writes and a reboot empties), so these survive a reboot.
func containersAuthFiles(h Host, users []string, entries map[string]map[string]string, keys []string, w *warnList) ([]render.File, error) {
	if len(entries) > 0 && len(users) == 0 {
		w.add(spec.Pos{}, "credentials not given to Podman, Buildah and Skopeo: engines.containers.auth_users is empty")
	}
	ownsAny := slices.ContainsFunc(slices.Collect(maps.Keys(h.Owned)), func(p string) bool {
		return strings.HasSuffix(p, "/.config/containers/auth.json")
	})
	if len(users) == 0 || (len(entries) == 0 && !ownsAny) {
		return nil, nil // nothing to write, nothing of ours to take out
	}
	return forEachUser(h, users, "engines.containers.auth_users", func(acct passwdEntry) (*render.File, error) {
		return mergeContainersAuth(h, acct, entries, keys, w)
	})
}

// mergeContainersAuth merges our auths entries into one user's auth.json
// (mergeAuths). containers/image asks a credential helper instead when
// credHelpers names one for the key.
func mergeContainersAuth(h Host, u passwdEntry, entries map[string]map[string]string, keys []string, w *warnList) (*render.File, error) {
	file := path.Join(u.home, ".config", "containers", "auth.json")
	return mergeAuths(h, u, file, entries, keys, w, func(obj *jsonObject, key string) string {
		if hlp := jsonStringMap(obj, "credHelpers")[key]; hlp != "" {
			return fmt.Sprintf("credHelpers[%q] = %q, so containers/image asks docker-credential-%s", key, hlp, hlp)
		}
		return ""
	})
}

// crioAuthFiles are CRI-O's credentials: an auth.json of mirrorctl's own
// (0600) and a crio.conf.d drop-in that points global_auth_file at it.
// CRI-O reads the path once, at start, and the file at every pull that
// kubelet sends no credentials for; with global_auth_file set it reads no
// other auth file.
func crioAuthFiles(h Host, p containersPaths, entries map[string]map[string]string, keys []string, w *warnList) ([]render.File, error) {
	auths := &jsonObject{vals: map[string]json.RawMessage{}}
	for _, k := range keys {
		auths.set(k, entries[k])
	}
	doc := &jsonObject{vals: map[string]json.RawMessage{}}
	doc.setRaw(keyAuths, auths.marshal())
	var conf strings.Builder
	// No spec name in the header: renaming the spec must not restart CRI-O.
	conf.WriteString(containersHeader + ". DO NOT EDIT.\n")
	conf.WriteString("# CRI-O reads global_auth_file's path at start and the file at every pull.\n")
	fmt.Fprintf(&conf, "[crio.image]\nglobal_auth_file = %s\n", tomlQuote(p.crioAuthFile))
	crioOtherAuthFiles(h.FS, p, w)
	return []render.File{
		{Path: p.crioAuthFile, Data: doc.marshal(), Mode: 0o600, Secret: true},
		{Path: p.crioDropIn, Data: []byte(conf.String()), Mode: 0o644},
	}, nil
}

// crioConfigFile is what mirrorctl reads of crio.conf and its drop-ins.
type crioConfigFile struct {
	Crio struct {
		Image struct {
			GlobalAuthFile *string `toml:"global_auth_file"`
		} `toml:"image"`
	} `toml:"crio"`
}

// crioGlobalAuthFile is the global_auth_file a crio.conf file sets, or "".
func crioGlobalAuthFile(data []byte) string {
	var c crioConfigFile
	if toml.Unmarshal(data, &c) != nil || c.Crio.Image.GlobalAuthFile == nil {
		return ""
	}
	return *c.Crio.Image.GlobalAuthFile
}

// crioOtherAuthFiles warns about crio.conf and the other crio.conf.d files
// that set global_auth_file: a later drop-in's wins over mirrorctl's, an
// earlier one's is replaced (and the credentials in its file no longer
// reach CRI-O).
func crioOtherAuthFiles(fsys fs.FS, p containersPaths, w *warnList) {
	dir, ours := path.Split(p.crioDropIn)
	files := []string{crioMainConf}
	if ents, err := fs.ReadDir(fsys, FSPath(dir)); err == nil {
		for _, e := range ents {
			if e.Name() != ours && strings.HasSuffix(e.Name(), ".conf") && !e.IsDir() {
				files = append(files, path.Join(dir, e.Name()))
			}
		}
	}
	for _, f := range files {
		data, exists, err := readOptional(fsys, f)
		if err != nil || !exists {
			continue
		}
		var c crioConfigFile
		if err := toml.Unmarshal(data, &c); err != nil {
			w.add(spec.Pos{}, "%s is not valid TOML (%s): CRI-O does not start with it", f, tomlErrorLine(err))
			continue
		}
		g := c.Crio.Image.GlobalAuthFile
		if g == nil || *g == p.crioAuthFile {
			continue
		}
		if path.Dir(f) == path.Clean(dir) && path.Base(f) > ours {
			w.add(spec.Pos{}, "%s sorts after %s and sets global_auth_file = %q: CRI-O reads that file, so the spec's credentials do not reach CRI-O", f, p.crioDropIn, *g)
		} else if *g != "" {
			w.add(spec.Pos{}, "%s sets global_auth_file = %q; mirrorctl's %s replaces it from CRI-O's next start, so credentials only in %s no longer reach CRI-O: put them in the spec", f, *g, p.crioDropIn, *g)
		}
	}
}

// containersUnusedCredentials warns about credentials keyed by a mirrored
// registry's own name: containers/image looks credentials up by the host
// it contacts, so a mirror never gets them.
func containersUnusedCredentials(s *spec.Spec, tables []regTable, w *warnList) {
	for _, key := range sortedKeys(s.Configs) {
		c := s.Configs[key]
		m := s.Mirrors[key]
		if c.Auth == nil || key == "*" || m == nil || len(m.Endpoints) == 0 {
			continue
		}
		i := slices.IndexFunc(tables, func(t regTable) bool { return t.prefix == key })
		if i < 0 {
			continue
		}
		t := tables[i]
		var hosts []string
		for _, mr := range t.mirrors {
			hosts = append(hosts, locationHost(mr.location))
		}
		if t.location != t.prefix {
			hosts = append(hosts, locationHost(t.location))
		}
		switch {
		case len(hosts) == 0 || slices.Contains(hosts, containersHost(key)):
		case t.location == t.prefix:
			w.add(c.Pos, "credentials for %s are used only when %s itself is contacted, not for its mirrors; key them by the mirror host (%s)", key, key, strings.Join(hosts, ", "))
		default:
			w.add(c.Pos, "credentials for %s are never used: upstream_fallback is false and no mirror is %s", key, key)
		}
	}
}

// locationHost is the host[:port] of a registries.conf location.
func locationHost(loc string) string {
	h, _, _ := strings.Cut(loc, "/")
	return h
}
