package engines

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	clog "github.com/containerd/log"
	"github.com/pelletier/go-toml/v2"
	"github.com/sirupsen/logrus"
)

// This file runs containerd's own hosts loader (core/remotes/docker/config
// ConfigureHosts, what CRI, the transfer service, ctr --hosts-dir, nerdctl
// and Docker's containerd image store use) on certs.d directories as they
// are on the host. The loader reads real files with os.ReadFile, and the
// host is only readable through Host.FS (confined to --root): so the
// directories are copied into a private temporary directory first, and the
// TLS files a hosts.toml names are copied too, with their paths in the copy
// pointing at the copies. What the loader logs (a hosts.toml it cannot
// decode, after which it falls back to the registry itself) is captured and
// reported with the host paths put back.

// Bounds on what is copied (only the directories of one registry are):
// the Docker-layout certificates of one directory, and the TLS files all
// hosts.toml files name.
const (
	maxCertFiles = 64
	maxTLSCopies = 2048
)

// loadedHosts is the loader's answer for one registry.
type loadedHosts struct {
	hosts []docker.RegistryHost
	// dir is the host path of the directory the loader used; "" when no
	// directory matched (the registry alone).
	dir string
	// tls are the TLS files the directory names, by host URL (scheme
	// dropped: containerd may turn http into https with a fallback).
	tls map[string]*RouteTLS
	// logged is what the loader reported at info level or above.
	logged []string
}

// loadHosts runs the loader for registry over roots (config_path
// directories, searched in order as CRI does with a list). Only the
// directories the loader may pick for registry are copied.
func loadHosts(ctx context.Context, fsys fs.FS, roots []string, registry string) (loadedHosts, error) {
	return loadHostsOf(ctx, fsys, roots, registry, []string{hostDirectory(registry), registry, wildcardDir})
}

// hostDirectory is containerd's hostDirectory: "host:port" is looked
// up as "host_port_" first (containerd 2.1+), then as itself.
func hostDirectory(host string) string {
	if i := strings.LastIndex(host, ":"); i > 0 {
		return host[:i] + "_" + host[i+1:] + "_"
	}
	return host
}

// loadHostsOf is loadHosts with the directory names to copy.
func loadHostsOf(ctx context.Context, fsys fs.FS, roots []string, registry string, names []string) (loadedHosts, error) {
	tmp, err := os.MkdirTemp("", "mirrorctl-hosts-")
	if err != nil {
		return loadedHosts{}, fmt.Errorf("loading hosts for %s: %w", registry, err)
	}
	defer os.RemoveAll(tmp)
	c := &hostsCopy{fsys: fsys, tmp: tmp, back: map[string]string{}, tls: map[string]*RouteTLS{}, names: names}
	var troots []string
	for i, root := range roots {
		troot := filepath.Join(tmp, fmt.Sprint(i))
		if err := c.copyRoot(root, troot); err != nil {
			return loadedHosts{}, err
		}
		troots = append(troots, troot)
	}
	var used string
	hostDir := func(host string) (string, error) {
		for _, tr := range troots {
			if dir, err := config.HostDirFromRoot(tr)(host); err == nil {
				used = dir
				return dir, nil
			}
		}
		return "", nil
	}
	var logged []string
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	logger.SetLevel(logrus.InfoLevel)
	logger.AddHook(captureHook{func(e *logrus.Entry) {
		msg := e.Message
		if err, ok := e.Data[logrus.ErrorKey]; ok {
			msg += ": " + fmt.Sprint(err)
		}
		logged = append(logged, c.hostPaths(msg))
	}})
	lctx := clog.WithLogger(ctx, logrus.NewEntry(logger))
	hosts, err := config.ConfigureHosts(lctx, config.HostOptions{HostDir: hostDir})(registry)
	if err != nil {
		return loadedHosts{}, fmt.Errorf("loading the hosts of %s: %s", registry, c.hostPaths(err.Error()))
	}
	return loadedHosts{hosts: hosts, dir: c.hostPaths(used), tls: c.tls, logged: logged}, nil
}

// captureHook hands every log entry to f.
type captureHook struct{ f func(*logrus.Entry) }

func (captureHook) Levels() []logrus.Level       { return logrus.AllLevels }
func (h captureHook) Fire(e *logrus.Entry) error { h.f(e); return nil }

// hostsCopy is a private copy of certs.d trees.
type hostsCopy struct {
	fsys  fs.FS
	tmp   string
	back  map[string]string // copy path → host path
	n     int
	tls   map[string]*RouteTLS
	files int
	names []string // the directory names to copy
}

// hostPaths replaces the copy's paths in s with the host's.
func (c *hostsCopy) hostPaths(s string) string {
	keys := make([]string, 0, len(c.back))
	for k := range c.back {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for _, k := range keys {
		s = strings.ReplaceAll(s, k, c.back[k])
	}
	return s
}

func (c *hostsCopy) copyRoot(root, troot string) error {
	if err := os.MkdirAll(troot, 0o700); err != nil {
		return err
	}
	c.back[troot] = root
	// The few names asked, each looked up, not the directory listed: a
	// certs.d of thousands of registries was listed for every image doctor
	// routes and every directory it checks. A missing or unreadable one is
	// "no directory" to containerd as well.
	for i, name := range c.names {
		if !isDirName(name) || slices.Contains(c.names[:i], name) {
			continue
		}
		hostDir := path.Join(root, name)
		if fi, err := fs.Stat(c.fsys, FSPath(hostDir)); err != nil || !fi.IsDir() {
			continue
		}
		tdir := filepath.Join(troot, name)
		if err := os.Mkdir(tdir, 0o700); err != nil {
			return err
		}
		c.back[tdir] = hostDir
		if err := c.copyDir(hostDir, tdir); err != nil {
			return err
		}
	}
	return nil
}

// copyDir copies hosts.toml (TLS paths pointing at copies) and the Docker
// layout's *.crt, *.cert and *.key files of one registry directory.
func (c *hostsCopy) copyDir(hostDir, tdir string) error {
	ents, err := fs.ReadDir(c.fsys, FSPath(hostDir))
	if err != nil {
		return nil
	}
	certs := 0
	for _, ent := range ents {
		name := ent.Name()
		isCert := strings.HasSuffix(name, ".crt") || strings.HasSuffix(name, ".cert") || strings.HasSuffix(name, ".key")
		if (name != "hosts.toml" && !isCert) || !isDirName(name) {
			continue
		}
		// hosts.toml is always copied; a directory with more certificates
		// than any registry needs is said, not silently cut short.
		if certs += boolInt(isCert); certs > maxCertFiles {
			return fmt.Errorf("%s holds more than %d certificate and key files", hostDir, maxCertFiles)
		}
		data, err := fs.ReadFile(c.fsys, FSPath(path.Join(hostDir, name)))
		if err != nil {
			continue // containerd would not read it either (a directory, a dangling link)
		}
		if name == "hosts.toml" {
			data = c.remapTLS(hostDir, data)
		}
		if err := os.WriteFile(filepath.Join(tdir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// remapTLS points the ca and client paths of a hosts.toml at copies of the
// files they name, read through the host's FS, and records them by host.
// A file that cannot be read keeps a path that does not exist, so that the
// loader fails on it as containerd would. A document the editor cannot
// parse is left as it is: the loader will not parse it either.
func (c *hostsCopy) remapTLS(hostDir string, data []byte) []byte {
	var doc map[string]any
	if toml.Unmarshal(data, &doc) != nil {
		return data
	}
	ed, err := parseTOMLDoc(data)
	if err != nil {
		return data
	}
	type place struct {
		path   []string
		server string
		tbl    map[string]any
	}
	places := []place{{nil, stringOf(doc["server"]), doc}}
	hosts, _ := doc["host"].(map[string]any)
	for _, k := range sortedKeys(hosts) {
		if t, ok := hosts[k].(map[string]any); ok {
			places = append(places, place{[]string{"host", k}, k, t})
		}
	}
	for _, p := range places {
		tls := &RouteTLS{}
		if b, ok := p.tbl["skip_verify"].(bool); ok {
			tls.SkipVerify = b
		}
		for _, key := range []string{"ca", "client"} {
			v, ok := p.tbl[key]
			if !ok {
				continue
			}
			mapped, hostFiles, ok := c.mapValue(hostDir, v)
			if !ok {
				continue
			}
			if key == "ca" {
				tls.CA = hostFiles
			} else {
				tls.Client = hostFiles
			}
			if ed.Set(append(slices.Clone(p.path), key), mapped) != nil {
				return data
			}
		}
		if tls.SkipVerify || len(tls.CA) > 0 || len(tls.Client) > 0 {
			c.tls[hostKey(p.server, p.tbl)] = tls
		}
	}
	return ed.Bytes()
}

// mapValue maps a ca or client value (a path, a list of paths, a list of
// [cert, key] pairs) to copies; ok is false for a value of another shape,
// which the loader rejects by itself.
func (c *hostsCopy) mapValue(hostDir string, v any) (mapped any, hostFiles []string, ok bool) {
	switch v := v.(type) {
	case string:
		t, h := c.copyFile(hostDir, v)
		return t, []string{h}, true
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			m, hs, ok := c.mapValue(hostDir, e)
			if !ok {
				return nil, nil, false
			}
			out[i] = m
			hostFiles = append(hostFiles, hs...)
		}
		return out, hostFiles, true
	}
	return nil, nil, false
}

// copyFile copies the host file p (relative to hostDir) and returns the
// copy's path and the host path.
func (c *hostsCopy) copyFile(hostDir, p string) (string, string) {
	hp := p
	if !path.IsAbs(hp) {
		hp = path.Join(hostDir, p)
	}
	c.n++
	t := filepath.Join(c.tmp, "files", fmt.Sprintf("%d-%s", c.n, path.Base(hp)))
	c.back[t] = hp
	if c.files++; c.files > maxTLSCopies {
		return t, hp
	}
	data, err := fs.ReadFile(c.fsys, FSPath(hp))
	if err != nil {
		return t, hp // absent in the copy: the loader fails on it, as on the host
	}
	if os.MkdirAll(filepath.Dir(t), 0o700) == nil {
		_ = os.WriteFile(t, data, 0o600)
	}
	return t, hp
}

// hostKey is a host entry's URL without its scheme, as containerd's
// parseHostConfig builds it ("" for a file without server).
func hostKey(server string, tbl map[string]any) string {
	if server == "" {
		return ""
	}
	if !strings.HasPrefix(server, "http") {
		server = "https://" + server
	}
	u, err := url.Parse(server)
	if err != nil {
		return ""
	}
	override, _ := tbl["override_path"].(bool)
	p := u.Path
	if len(p) > 0 {
		p = path.Clean(p)
		if !strings.HasSuffix(p, "/v2") && !override {
			p += "/v2"
		}
	} else if !override {
		p = "/v2"
	}
	return u.Host + p
}

func stringOf(v any) string { s, _ := v.(string); return s }

// routeOf describes one host the loader returned.
func (l loadedHosts) routeOf(rh docker.RegistryHost, registry string) Route {
	r := Route{URL: rh.Scheme + "://" + rh.Host + rh.Path, Capabilities: capabilityNames(rh.Capabilities)}
	if rh.Host != "" && isProxy(rh.Host, registry) {
		r.Mirror, r.Namespace = true, registry
	}
	if t := l.tls[rh.Host+rh.Path]; t != nil {
		r.TLS = t
	} else if tr, ok := rh.Client.Transport.(*http.Transport); ok && tr.TLSClientConfig != nil && tr.TLSClientConfig.InsecureSkipVerify {
		r.TLS = &RouteTLS{SkipVerify: true} // localhost without a directory
	}
	return r
}

// isProxy is containerd's RegistryHost.isProxy: a host other than the
// image's registry is a mirror, and gets ?ns=<registry>.
func isProxy(host, registry string) bool {
	return host != registry && (registry != dockerHub || host != hubHost)
}

func capabilityNames(c docker.HostCapabilities) []string {
	var out []string
	for _, n := range []struct {
		c    docker.HostCapabilities
		name string
	}{{docker.HostCapabilityPull, "pull"}, {docker.HostCapabilityResolve, "resolve"}, {docker.HostCapabilityPush, "push"}} {
		if c&n.c != 0 {
			out = append(out, n.name)
		}
	}
	return out
}
