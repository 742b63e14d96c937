package engines

import (
	"cmp"
	"context"
	"errors"
	"path"
	"strings"

	"github.com/mirrorctl/mirrorctl/engines/health"
	"github.com/mirrorctl/mirrorctl/spec"
)

// What doctor asks of the containers stack. Podman, Buildah and Skopeo have
// no daemon: what there is to check is whether containers/image takes the
// files (a file it refuses fails every command) and which files it takes.
// CRI-O has a socket: the CRI status, and the configuration it runs with
// (GET /config) against crio.conf and its drop-ins.

// containersNewerPaths are read only by the newest containers/image
// (go.podman.io/image with the configfile loader), not by the releases the
// routes model.
var containersNewerPaths = []string{
	"/usr/share/containers/registries.conf",
	"/usr/share/containers/registries.conf.d",
	"/etc/containers/registries.rootful.conf.d",
}

// Inspect: see the comment above.
func (e containersEngine) Inspect(ctx context.Context, h Host, d Detection, s *spec.Spec, resolve func(string) (string, error)) []Finding {
	home := rootHome(h.FS)
	var out []Finding
	files, err := registriesFiles(h.FS, home)
	var conf *registriesConf
	if err == nil {
		conf, err = loadRegistriesConf(h.FS, files)
	}
	if err != nil {
		out = append(out, confFinding(err))
	} else {
		out = append(out, finding(OK, "registries_conf_loads", "", "containers/image takes %s", strings.Join(conf.files, ", ")))
	}
	if userConf := path.Join(home, ".config/containers/registries.conf"); hostHas(h.FS, userConf) {
		out = append(out, finding(Warn, "user_registries_conf",
			"move what it sets into a drop-in under "+containersSystemConfDir+" and remove it",
			"%s exists: root's CRI-O and Podman read it instead of %s and %s (mirrorctl's drop-in included)", userConf, containersMainConf, containersSystemConfDir))
	}
	for _, p := range containersNewerPaths {
		if hostHas(h.FS, p) {
			out = append(out, finding(Info, "newer_registries_paths", "",
				"%s exists: only the newest containers/image (go.podman.io/image with its configfile loader) reads it; the routes leave it out", p))
		}
	}
	if d.Unit == "" {
		return append(out, finding(Info, "no_daemon", "", "Podman, Buildah and Skopeo have no daemon: they read the files at every command"))
	}
	return append(out, crioLive(ctx, h, d, resolve)...)
}

// crioLive compares the running CRI-O with crio.conf and its drop-ins.
func crioLive(ctx context.Context, h Host, d Detection, resolve func(string) (string, error)) []Finding {
	socket := cmp.Or(d.Socket, crioSocket)
	sock, err := resolve(socket)
	if err != nil {
		return []Finding{finding(Info, "daemon_not_running", "", "CRI-O is not running (no socket %s): the routes are what it will do once started", socket)}
	}
	st, err := health.CRIOState(ctx, sock)
	switch {
	case errors.Is(err, health.ErrNotRunning):
		return []Finding{finding(Info, "daemon_not_running", "", "CRI-O is not running (%v): the routes are what it will do once started", err)}
	case err != nil:
		return []Finding{finding(Warn, "daemon_not_answering", "check systemctl status crio", "%v", err)}
	}
	var out []Finding
	for _, c := range st.NotReady {
		out = append(out, finding(Warn, "crio_not_ready", "check systemctl status crio and its log", "CRI-O %s reports %s", st.Version, c))
	}
	want, from, err := crioAuthFileOf(h.FS)
	switch {
	case err != nil:
		out = append(out, finding(Fail, "crio_conf_invalid", "fix the file", "%v: CRI-O does not start with it", err))
	case st.GlobalAuthFile == nil:
		out = append(out, finding(Info, "crio_config_unknown", "",
			"CRI-O %s does not serve its configuration (GET /config on its socket): whether it runs with the global_auth_file the files name is not known", st.Version))
	case *st.GlobalAuthFile != want:
		files := cmp.Or(from, crioMainConf+" and "+path.Dir(crioDropIn))
		out = append(out, finding(Fail, "pending_restart", "systemctl restart crio (it reads global_auth_file only at start)",
			"CRI-O runs with global_auth_file %q but %s says %q: the files take effect at the next start (or a --global-auth-file flag overrides them)",
			*st.GlobalAuthFile, files, want))
	default:
		out = append(out, finding(OK, "daemon_matches_files", "",
			"CRI-O %s runs with global_auth_file %q, as the files say; the registries it loaded at its last start or reload it does not report", st.Version, want))
	}
	if st.AutoReloadRegistries != nil && *st.AutoReloadRegistries {
		out = append(out, finding(Info, "auto_reload_registries", "", "CRI-O watches registries.conf.d itself (auto_reload_registries)"))
	}
	return out
}
