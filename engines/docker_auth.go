package engines

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// dockerHubAuthKey is the docker CLI's config.json key for Docker Hub
// (docker/cli registry.IndexServer).
const dockerHubAuthKey = "https://index.docker.io/v1/"

// dockerCerts renders /etc/docker/certs.d/<host>/{ca.crt,client.cert,
// client.key} for every configs host with TLS material. dockerd reads them
// on each pull (daemon/pkg/registry/registry.go loadTLSConfig).
func dockerCerts(s *spec.Spec, certsDir string, insecure []string, w *warnList) []render.File {
	if s == nil {
		return nil
	}
	var out []render.File
	for _, host := range slices.Sorted(maps.Keys(s.Configs)) {
		t := s.Configs[host].TLS
		if t == nil || (len(t.CA) == 0 && len(t.Cert) == 0 && t.Key.IsZero()) {
			continue
		}
		if host == "*" {
			w.add(t.Pos, `dockerd has no wildcard certs.d directory: the TLS files of configs "*" are not given to Docker`)
			continue
		}
		dir := path.Join(certsDir, host)
		group := "docker:certs.d/" + host
		if len(t.CA) > 0 {
			out = append(out, render.File{Path: path.Join(dir, "ca.crt"), Data: t.CA, Mode: 0o644, Group: group})
		}
		hasCert, hasKey := len(t.Cert) > 0, !t.Key.IsZero()
		switch {
		case hasCert && hasKey:
			out = append(out,
				render.File{Path: path.Join(dir, "client.cert"), Data: t.Cert, Mode: 0o644, Group: group},
				render.File{Path: path.Join(dir, "client.key"), Data: []byte(t.Key.Reveal()), Mode: 0o600, Secret: true, Group: group})
			if slices.Contains(insecure, host) {
				w.add(t.Pos, "dockerd does not load certs.d for an insecure registry: the client certificate for %s is not used by Docker", host)
			}
		case hasCert || hasKey:
			w.add(t.Pos, "dockerd fails every pull from %s when certs.d holds a client certificate without its key or a key without its certificate: not written", host)
		}
	}
	return out
}

// dockerAuthFiles merges `auths` into the config.json of every user in
// engines.docker.auth_users, and removes from them the entries mirrorctl
// wrote earlier that the spec no longer has. dockerd stores no
// credentials: the CLI sends them per request.
func dockerAuthFiles(s *spec.Spec, h Host, w *warnList) ([]render.File, error) {
	entries, hosts := dockerAuthEntries(s, w)
	users := settingsOf[DockerSettings](s, "docker").AuthUsers
	if len(entries) > 0 && len(users) == 0 {
		w.add(spec.Pos{}, "credentials not given to Docker; set engines.docker.auth_users")
	}
	if len(users) == 0 {
		return nil, nil
	}
	return forEachUser(h, users, "engines.docker.auth_users", func(acct passwdEntry) (*render.File, error) {
		return mergeDockerConfig(h, acct, entries, hosts, w)
	})
}

// dockerAuthEntries returns the auths entries the spec derives, by
// config.json key, and the keys in order.
func dockerAuthEntries(s *spec.Spec, w *warnList) (map[string]map[string]string, []string) {
	if s == nil {
		return nil, nil
	}
	entries := map[string]map[string]string{}
	var keys []string
	for _, host := range slices.Sorted(maps.Keys(s.Configs)) {
		a := s.Configs[host].Auth
		if a == nil {
			continue
		}
		key := host
		switch {
		case host == "*":
			w.add(a.Pos, `the docker CLI has no wildcard credentials: the auth of configs "*" is not given to Docker`)
			continue
		case isDockerHubHost(host):
			key = dockerHubAuthKey
		}
		if _, dup := entries[key]; dup {
			continue // docker.io sorts before its aliases and wins
		}
		e := map[string]string{}
		if b := a.Basic(); !b.IsZero() {
			e["auth"] = b.Reveal()
		} else if !a.IdentityToken.IsZero() {
			e["identitytoken"] = a.IdentityToken.Reveal()
		} else {
			continue
		}
		entries[key] = e
		keys = append(keys, key)
	}
	return entries, keys
}

// lookupUsers finds users in /etc/passwd, each with a clean absolute home
// that is not "/"; setting names the spec key, for errors.
func lookupUsers(h Host, users []string, setting string) ([]passwdEntry, error) {
	passwd, _, err := readOptional(h.FS, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	accounts := parsePasswd(passwd)
	var out []passwdEntry
	for _, name := range users {
		acct, ok := accounts[name]
		if !ok {
			return nil, fmt.Errorf("%s: no user %q in /etc/passwd", setting, name)
		}
		if !path.IsAbs(acct.home) || path.Clean(acct.home) != acct.home || acct.home == "/" {
			return nil, fmt.Errorf("%s: user %q has home %q in /etc/passwd, not a clean absolute directory", setting, name, acct.home)
		}
		out = append(out, acct)
	}
	return out, nil
}

type passwdEntry struct {
	name, home string
	uid, gid   int
}

// parsePasswd reads passwd(5) lines: name:password:uid:gid:gecos:home:shell.
func parsePasswd(data []byte) map[string]passwdEntry {
	out := map[string]passwdEntry{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 7 || strings.HasPrefix(line, "#") {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		if _, dup := out[f[0]]; !dup { // the first entry wins, as in getpwnam
			out[f[0]] = passwdEntry{name: f[0], home: f[5], uid: uid, gid: gid}
		}
	}
	return out
}

// mergeDockerConfig merges our auths entries into one user's config.json
// (mergeAuths). The docker CLI asks a credential helper instead when
// credHelpers names one for the host, or credsStore is set.
func mergeDockerConfig(h Host, u passwdEntry, entries map[string]map[string]string, keys []string, w *warnList) (*render.File, error) {
	file := path.Join(u.home, ".docker", "config.json")
	return mergeAuths(h, u, file, entries, keys, w, func(obj *jsonObject, key string) string {
		helperKey := strings.TrimSuffix(strings.TrimPrefix(key, "https://"), "/v1/")
		if hlp := jsonStringMap(obj, "credHelpers")[helperKey]; hlp != "" {
			return fmt.Sprintf("credHelpers[%q] = %q, so the docker CLI asks docker-credential-%s", helperKey, hlp, hlp)
		}
		if store := jsonString(obj, "credsStore"); store != "" {
			return fmt.Sprintf("credsStore = %q, so the docker CLI asks docker-credential-%s for %s", store, store, key)
		}
		return ""
	})
}
