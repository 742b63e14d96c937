package engines

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mirrorctl/mirrorctl/engines/health"
	"github.com/mirrorctl/mirrorctl/spec"
)

// What doctor asks of a running containerd: do its CRI plugins run, with
// the registry config config.toml sets, and does every hosts.toml under
// config_path load (containerd only logs one that does not).

// Inspect compares the running containerd with config.toml and checks that
// every hosts.toml under config_path loads.
func (containerd) Inspect(ctx context.Context, h Host, d Detection, s *spec.Spec, resolve func(string) (string, error)) []Finding {
	if s == nil {
		s = &spec.Spec{}
	}
	p := resolveContainerdPaths(settingsOf[ContainerdSettings](s, "containerd"), h.FS)
	rel := parseRelease(d.Version)
	var out []Finding
	cfg, err := readContainerdConfig(h.FS, p.config)
	if err != nil {
		return []Finding{finding(Fail, "config_unreadable", "fix the file", "%v", err)}
	}
	cr := readCRIRegistry(cfg, rel)
	if strings.Contains(cr.configPath, ":") && rel.atLeast(2, 1, 0) {
		what := fmt.Sprintf("config_path %q is a list", cr.configPath)
		if cr.defaulted {
			what = fmt.Sprintf("config.toml sets no config_path, so containerd %s uses its default list %q", rel, cr.configPath)
		}
		if cr.localPull {
			out = append(out, finding(Warn, "config_path_list", "set one directory: config_path = \"/etc/containerd/certs.d\" (mirrorctl sync does)",
				"%s: only local-pull mode reads it as a list (CRI is in local-pull mode now); the transfer service ignores it", what))
		} else {
			out = append(out, finding(Fail, "config_path_list", "set one directory: config_path = \"/etc/containerd/certs.d\" (mirrorctl sync does)",
				"%s: containerd %s pulls through the transfer service, which ignores a list: no hosts.toml is read", what, rel))
		}
	}
	out = append(out, hostsFilesLoad(ctx, h, cr)...)
	out = append(out, criLive(ctx, d, cr, p, resolve)...)
	out = append(out, finding(Info, "ctr_ignores_cri", "",
		"these routes are CRI's (kubelet, crictl); ctr reads no config_path (use ctr images pull --hosts-dir %s), nerdctl reads /etc/containerd/certs.d and /etc/docker/certs.d",
		cmp.Or(firstRoot(cr.configPath), p.certsDir)))
	return out
}

func firstRoot(list string) string {
	if list == "" {
		return ""
	}
	return filepath.SplitList(list)[0]
}

// hostsFilesLoad runs containerd's loader on every directory under the
// config_path roots, and reports those it cannot load.
func hostsFilesLoad(ctx context.Context, h Host, cr criRegistry) []Finding {
	var out []Finding
	for _, root := range filepath.SplitList(cr.configPath) {
		ents, err := fsReadDir(h, root)
		if err != nil {
			continue
		}
		for _, name := range ents {
			registry := name
			if name == wildcardDir {
				registry = "registry.invalid"
			}
			l, err := loadHostsOf(ctx, h.FS, []string{root}, registry, []string{name})
			if err != nil {
				out = append(out, finding(Fail, "hosts_unloadable", "fix or remove the file it names",
					"containerd cannot load %s/%s: %v; every CRI pull through it fails", root, name, err))
				continue
			}
			for _, msg := range l.logged {
				if strings.Contains(msg, "failed to decode") {
					out = append(out, finding(Fail, "hosts_toml_invalid", "fix the file (or let mirrorctl sync rewrite its own)",
						"containerd logs only %q and falls back to the registry itself", msg))
				}
			}
		}
	}
	return out
}

// criLive compares the running CRI with config.toml.
func criLive(ctx context.Context, d Detection, cr criRegistry, p containerdPaths, resolve func(string) (string, error)) []Finding {
	socket := cmp.Or(d.Socket, p.socket)
	sock, err := resolve(socket)
	if err != nil {
		return []Finding{finding(Info, "daemon_not_running", "", "containerd is not running (no socket %s): the routes are what it will do once started", socket)}
	}
	st, err := health.ContainerdState(ctx, sock)
	switch {
	case errors.Is(err, health.ErrNotRunning):
		return []Finding{finding(Info, "daemon_not_running", "", "containerd is not running (%v): the routes are what it will do once started", err)}
	case err != nil:
		return []Finding{finding(Warn, "daemon_not_answering", "check systemctl status containerd", "%v", err)}
	}
	var out []Finding
	for _, name := range slices.Sorted(maps.Keys(st.Plugins)) {
		if msg := st.Plugins[name]; msg != "" {
			out = append(out, finding(Fail, "cri_failed", "fix config.toml and restart containerd (mirrorctl sync does both)",
				"containerd's %s plugin failed to load: %s", name, msg))
		}
	}
	if len(st.Plugins) == 0 {
		out = append(out, finding(Fail, "cri_missing", "enable the CRI plugin", "containerd %s runs without a CRI plugin", st.Version))
	}
	want := cr.configPath
	if st.ConfigPath != nil && *st.ConfigPath != want {
		out = append(out, finding(Fail, "pending_restart", "systemctl restart containerd",
			"containerd runs with config_path %q but %s says %q: the file takes effect at the next restart",
			*st.ConfigPath, p.config, want))
	}
	if len(st.Mirrors) > 0 && len(cr.mirrors) == 0 {
		out = append(out, finding(Fail, "pending_restart", "systemctl restart containerd",
			"containerd still runs with registry.mirrors for %s that %s no longer has", strings.Join(slices.Sorted(maps.Keys(st.Mirrors)), ", "), p.config))
	}
	if len(out) == 0 {
		cp := "(not reported)"
		if st.ConfigPath != nil {
			cp = fmt.Sprintf("%q", *st.ConfigPath)
		}
		out = append(out, finding(OK, "daemon_matches_files", "", "containerd %s runs with CRI ok and config_path %s, as %s says", st.Version, cp, p.config))
	}
	return out
}

// fsReadDir lists the names of the directories under a host directory
// (links followed, as containerd's os.Stat does).
func fsReadDir(h Host, dir string) ([]string, error) {
	ents, err := fs.ReadDir(h.FS, FSPath(dir))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !isDirName(e.Name()) {
			continue
		}
		if fi, err := fs.Stat(h.FS, FSPath(path.Join(dir, e.Name()))); err == nil && fi.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
