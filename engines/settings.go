package engines

import (
	"path/filepath"
	"strings"

	"github.com/mirrorctl/mirrorctl/spec"
)

// Each engine reads its own engines.<name>: section of the spec (besides
// enabled, which the spec reads for all). Empty fields take the defaults
// listed in each engine's file.

// ContainerdSettings are engines.containerd.
type ContainerdSettings struct {
	// Config is config.toml; CertsDir is the single config_path directory.
	Config, CertsDir, Unit, Socket, Binary string
	// Schema forces the config.toml version (2 or 3); 0 detects it.
	Schema int
	// Credentials says where registry credentials go: "config" (config.toml
	// registry.configs.<host>.auth; needs a restart), "header" (a Basic
	// Authorization header in hosts.toml; live, no restart) or "auto" (the
	// default: header from containerd 2.1, config before).
	Credentials string
}

// DockerSettings are engines.docker.
type DockerSettings struct {
	DaemonJSON, CertsDir, Unit, Socket, Binary string
	// AuthUsers are the users whose ~/.docker/config.json receives `auths`
	// for registries with credentials.
	AuthUsers []string
}

// K3sSettings are engines.k3s; the engine serves both k3s and RKE2.
type K3sSettings struct {
	// Distribution is "k3s" or "rke2"; empty detects it.
	Distribution string
	// Registries is the registries.yaml path; empty follows Distribution.
	Registries string
	// Unit is the unit to restart; empty picks the installed one of k3s,
	// k3s-agent, rke2-server, rke2-agent.
	Unit string
}

// CrictlSettings are engines.crictl.
type CrictlSettings struct {
	Config string
	// Endpoint overrides the detected CRI socket, e.g. "unix:///run/containerd/containerd.sock".
	Endpoint string
	// Timeout in whole seconds; 0 leaves the key as it is.
	Timeout int
}

// ContainersSettings are engines.containers: CRI-O and the Podman family
// (Podman, Buildah, Skopeo), which share containers-registries.conf.
type ContainersSettings struct {
	// DropIn is the registries.conf.d file mirrorctl owns; CertsDir the
	// per-host TLS directory.
	DropIn, CertsDir string
	// AuthUsers are the users whose ~/.config/containers/auth.json receives
	// the credentials; nil means [root], AuthUsersSet tells an explicit [].
	AuthUsers    []string
	AuthUsersSet bool
	// CRIODropIn is the crio.conf.d file that sets global_auth_file to
	// CRIOAuthFile; CRIOUnit and CRIOSocket are CRI-O's unit and socket.
	CRIODropIn, CRIOAuthFile, CRIOUnit, CRIOSocket string
}

// Sections returns the section readers of every engine, for spec.Options.
func Sections() map[string]spec.SectionParser {
	out := map[string]spec.SectionParser{}
	for _, e := range All() {
		out[e.Name()] = e.ParseSettings
	}
	// RKE2 is no engine of its own: say where it is.
	out["rke2"] = func(_ any, sec *spec.Section) any {
		sec.Errorf("write k3s: {distribution: rke2}", "RKE2 is handled by the k3s engine")
		return nil
	}
	return out
}

// BootUnits are every unit an engine may run as: the boot-time sync is
// ordered before them, so that they start with the mirrors in place.
func BootUnits() []string {
	units := []string{containerdUnit, dockerUnit}
	for _, d := range k3sDists {
		units = append(units, d.units...)
	}
	return append(units, crioUnit)
}

// settingsOf returns an engine's settings from s, or the zero value.
func settingsOf[T any](s *spec.Spec, name string) T {
	t, _ := s.Engine(name).Settings.(T)
	return t
}

// Enabled is the `enabled:` toggle the spec sets for the named engine.
func Enabled(s *spec.Spec, name string) spec.Toggle {
	if t := s.Engine(name).Enabled; t != "" {
		return t
	}
	return spec.Auto
}

func (containerd) ParseSettings(prev any, sec *spec.Section) any {
	c, _ := prev.(ContainerdSettings)
	sec.Fields(
		absField("config", &c.Config, containerdConfigPath),
		absField("certs_dir", &c.CertsDir, containerdCertsDir),
		unitField("unit", &c.Unit, containerdUnit),
		absField("socket", &c.Socket, containerdSocket),
		absField("binary", &c.Binary, containerdBinaries[0]),
		spec.Field{Key: "schema", Set: func(v spec.Value) {
			const hint = "write 2 or 3, or 0 to detect it"
			if i, ok := v.Int(hint); ok {
				if i != 0 && i != 2 && i != 3 {
					v.Errorf(hint, "schema: %d is not a containerd config version mirrorctl writes", i)
				}
				c.Schema = i
			}
		}},
		enumField("credentials", &c.Credentials, "auto", "config", "header"),
	)
	return c
}

func (dockerEngine) ParseSettings(prev any, sec *spec.Section) any {
	d, _ := prev.(DockerSettings)
	sec.Fields(
		absField("daemon_json", &d.DaemonJSON, dockerDaemonJSON),
		absField("certs_dir", &d.CertsDir, dockerCertsDir),
		unitField("unit", &d.Unit, dockerUnit),
		absField("socket", &d.Socket, dockerSocket),
		absField("binary", &d.Binary, "/usr/bin/dockerd"),
		spec.Field{Key: "auth_users", Set: func(v spec.Value) {
			if users, ok := userList(v); ok {
				d.AuthUsers = users
			}
		}},
	)
	return d
}

// userList reads a list of distinct user names.
func userList(v spec.Value) ([]string, bool) {
	const hint = "write a list of user names, e.g. [root, ci]"
	users, items, ok := v.Strings(hint)
	if !ok {
		return nil, false
	}
	seen := map[string]spec.Value{}
	for i, u := range users {
		if first, dup := seen[u]; dup {
			items[i].Errorf("list each user once", "auth_users: duplicate %q (first at %s)", u, first.Pos())
			continue
		}
		if u == "" || strings.ContainsAny(u, "/: \t") {
			items[i].Errorf(hint, "auth_users: %q is not a user name", u)
			continue
		}
		seen[u] = items[i]
	}
	if users == nil {
		users = []string{}
	}
	return users, true
}

func (containersEngine) ParseSettings(prev any, sec *spec.Section) any {
	c, _ := prev.(ContainersSettings)
	sec.Fields(
		absField("drop_in", &c.DropIn, containersDropIn),
		absField("certs_dir", &c.CertsDir, containersCertsDir),
		spec.Field{Key: "auth_users", Set: func(v spec.Value) {
			if users, ok := userList(v); ok {
				c.AuthUsers, c.AuthUsersSet = users, true
			}
		}},
		absField("crio_drop_in", &c.CRIODropIn, crioDropIn),
		absField("crio_auth_file", &c.CRIOAuthFile, crioAuthFile),
		unitField("crio_unit", &c.CRIOUnit, crioUnit),
		absField("crio_socket", &c.CRIOSocket, crioSocket),
	)
	return c
}

func (k3sEngine) ParseSettings(prev any, sec *spec.Section) any {
	k, _ := prev.(K3sSettings)
	sec.Fields(
		enumField("distribution", &k.Distribution, "k3s", "rke2"),
		absField("registries", &k.Registries, "/etc/rancher/k3s/registries.yaml"),
		unitField("unit", &k.Unit, "k3s-agent.service"),
	)
	return k
}

func (crictlEngine) ParseSettings(prev any, sec *spec.Section) any {
	c, _ := prev.(CrictlSettings)
	sec.Fields(
		absField("config", &c.Config, crictlConfig),
		spec.Field{Key: "endpoint", Set: func(v spec.Value) {
			const hint = "write unix:///run/containerd/containerd.sock"
			s, ok := v.String(hint)
			if !ok {
				return
			}
			if path, found := strings.CutPrefix(s, "unix://"); !found || !filepath.IsAbs(path) {
				v.Errorf(hint, "endpoint: %q is not a unix:// socket URL", s)
			}
			c.Endpoint = s
		}},
		spec.Field{Key: "timeout", Set: func(v spec.Value) {
			// crictl reads timeout with strconv.Atoi: "2s" breaks it.
			const hint = "crictl wants whole seconds: timeout: 2"
			if i, ok := v.Int(hint); ok {
				if i < 0 {
					v.Errorf(hint, "timeout: must not be negative")
				}
				c.Timeout = i
			}
		}},
	)
	return c
}

func absField(key string, dst *string, example string) spec.Field {
	return spec.Field{Key: key, Set: func(v spec.Value) {
		if p, ok := v.AbsPath(example); ok {
			*dst = p
		}
	}}
}

func unitField(key string, dst *string, example string) spec.Field {
	return spec.Field{Key: key, Set: func(v spec.Value) {
		if u, ok := v.Unit(example); ok {
			*dst = u
		}
	}}
}

func enumField(key string, dst *string, allowed ...string) spec.Field {
	return spec.Field{Key: key, Set: func(v spec.Value) {
		if s, ok := v.Enum(allowed...); ok {
			*dst = s
		}
	}}
}
