package spec

import (
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The engines: and backups: readers assign only the keys a file sets, so a
// drop-in overrides field by field.

func (p *parser) engines(e *Engines, n *yaml.Node) {
	p.fields(n, "engines", []field{
		{"containerd", func(_, v *yaml.Node) { p.containerd(&e.Containerd, v) }},
		{"docker", func(_, v *yaml.Node) { p.docker(&e.Docker, v) }},
		{"k3s", func(_, v *yaml.Node) { p.k3s(&e.K3s, v) }},
		{"crictl", func(_, v *yaml.Node) { p.crictl(&e.Crictl, v) }},
	})
}

func (p *parser) containerd(c *Containerd, n *yaml.Node) {
	p.fields(n, "engines.containerd", []field{
		{"enabled", p.setToggle(&c.Enabled)},
		{"config", p.setAbs(&c.Config, "/etc/containerd/config.toml")},
		{"certs_dir", p.setAbs(&c.CertsDir, "/etc/containerd/certs.d")},
		{"unit", p.setUnit(&c.Unit, "containerd.service")},
		{"socket", p.setAbs(&c.Socket, "/run/containerd/containerd.sock")},
		{"binary", p.setAbs(&c.Binary, "/usr/bin/containerd")},
		{"schema", func(k, v *yaml.Node) {
			const hint = "write 2 or 3, or 0 to detect it"
			if i, ok := p.integer(v, k.Value, hint); ok {
				if i != 0 && i != 2 && i != 3 {
					p.errorf(v, hint, "schema: %d is not a containerd config version mirrorctl writes", i)
				}
				c.Schema = i
			}
		}},
		{"credentials", p.setEnum(&c.Credentials, "auto", "config", "header")},
	})
}

func (p *parser) docker(d *Docker, n *yaml.Node) {
	p.fields(n, "engines.docker", []field{
		{"enabled", p.setToggle(&d.Enabled)},
		{"daemon_json", p.setAbs(&d.DaemonJSON, "/etc/docker/daemon.json")},
		{"certs_dir", p.setAbs(&d.CertsDir, "/etc/docker/certs.d")},
		{"unit", p.setUnit(&d.Unit, "docker.service")},
		{"socket", p.setAbs(&d.Socket, "/run/docker.sock")},
		{"binary", p.setAbs(&d.Binary, "/usr/bin/dockerd")},
		{"auth_users", func(k, v *yaml.Node) {
			const hint = "write a list of user names, e.g. [root, ci]"
			users, nodes, ok := p.strList(v, k.Value, hint)
			if !ok {
				return
			}
			seen := map[string]*yaml.Node{}
			for i, u := range users {
				switch {
				case u == "" || strings.ContainsAny(u, "/: \t"):
					p.errorf(nodes[i], hint, "auth_users: %q is not a user name", u)
				case seen[u] != nil:
					p.errorf(nodes[i], "list each user once", "auth_users: duplicate %q (first at %s)", u, p.pos(seen[u]))
				default:
					seen[u] = nodes[i]
				}
			}
			d.AuthUsers = users
		}},
	})
}

func (p *parser) k3s(k *K3s, n *yaml.Node) {
	p.fields(n, "engines.k3s", []field{
		{"enabled", p.setToggle(&k.Enabled)},
		{"distribution", p.setEnum(&k.Distribution, "k3s", "rke2")},
		{"registries", p.setAbs(&k.Registries, "/etc/rancher/k3s/registries.yaml")},
		{"unit", p.setUnit(&k.Unit, "k3s-agent.service")},
	})
}

func (p *parser) crictl(c *Crictl, n *yaml.Node) {
	p.fields(n, "engines.crictl", []field{
		{"enabled", p.setToggle(&c.Enabled)},
		{"config", p.setAbs(&c.Config, "/etc/crictl.yaml")},
		{"endpoint", func(k, v *yaml.Node) {
			const hint = "write unix:///run/containerd/containerd.sock"
			s, ok := p.str(v, k.Value, hint)
			if !ok {
				return
			}
			if path, found := strings.CutPrefix(s, "unix://"); !found || !filepath.IsAbs(path) {
				p.errorf(v, hint, "endpoint: %q is not a unix:// socket URL", s)
			}
			c.Endpoint = s
		}},
		{"timeout", func(k, v *yaml.Node) {
			// crictl reads timeout with strconv.Atoi: "2s" breaks it.
			const hint = "crictl wants whole seconds: timeout: 2"
			if i, ok := p.integer(v, k.Value, hint); ok {
				if i < 0 {
					p.errorf(v, hint, "timeout: must not be negative")
				}
				c.Timeout = i
			}
		}},
	})
}

func (p *parser) backups(b *Backups, n *yaml.Node) {
	p.fields(n, "backups", []field{
		{"keep", func(k, v *yaml.Node) {
			const hint = "keep at least 1 backup set (the default is 10)"
			if i, ok := p.integer(v, k.Value, hint); ok {
				if i < 1 {
					p.errorf(v, hint, "keep: %d is less than 1", i)
				}
				b.Keep = i
			}
		}},
	})
}

func (p *parser) setToggle(dst *Toggle) func(k, v *yaml.Node) {
	return func(k, v *yaml.Node) {
		const hint = "write auto, true or false"
		if v.Kind == yaml.ScalarNode {
			if v.Value == string(Auto) {
				*dst = Auto
				return
			}
			if b, ok := parseBool(v.Value); ok {
				*dst = Off
				if b {
					*dst = On
				}
				return
			}
		}
		p.errorf(v, hint, "%s: expected auto, true or false, got %s", k.Value, describe(v))
	}
}

// setAbs reads a host path. Engines' paths are absolute because they are
// resolved under --root, not relative to the spec.
func (p *parser) setAbs(dst *string, example string) func(k, v *yaml.Node) {
	return func(k, v *yaml.Node) {
		hint := "write an absolute path such as " + example
		s, ok := p.str(v, k.Value, hint)
		if !ok {
			return
		}
		if !filepath.IsAbs(s) {
			p.errorf(v, hint, "%s: %q is not an absolute path", k.Value, s)
			return
		}
		*dst = filepath.Clean(s)
	}
}

func (p *parser) setUnit(dst *string, example string) func(k, v *yaml.Node) {
	return func(k, v *yaml.Node) {
		hint := "write a systemd unit name such as " + example
		s, ok := p.str(v, k.Value, hint)
		if !ok {
			return
		}
		for _, c := range s {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(":-_.\\@", c)) {
				p.errorf(v, hint, "%s: %q is not a unit name", k.Value, s)
				return
			}
		}
		if s == "" {
			p.errorf(v, hint, "%s: empty unit name", k.Value)
			return
		}
		*dst = s
	}
}

func (p *parser) setEnum(dst *string, allowed ...string) func(k, v *yaml.Node) {
	return func(k, v *yaml.Node) {
		hint := "write one of " + strings.Join(allowed, ", ")
		s, ok := p.str(v, k.Value, hint)
		if !ok {
			return
		}
		if indexOf(allowed, s) < 0 {
			p.errorf(v, hint, "%s: unknown value %q", k.Value, s)
			return
		}
		*dst = s
	}
}

// describe names a value for a message: scalars by their text (never used
// where the value could be a secret), the rest by kind.
func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return strconv.Quote(n.Value)
	}
	return kindOf(n)
}
