package engines

import "testing"

// OwnsPath: in a certs.d tree only the names mirrorctl writes, one level
// down, count as the engine's; a directory owns what is below it; a
// certs_dir holding pattern characters is taken literally; "/" owns
// nothing.
func TestOwnsPath(t *testing.T) {
	d := Detection{Owns: append([]string{"/etc/crio/mirrorctl-auth.json", "/etc/rancher/k3s/mirrorctl-certs", "/"},
		certsDirOwns("/etc/containerd/certs.d")...)}
	weird := Detection{Owns: append([]string{globEscape("/srv/a[1]/auth.json")}, certsDirOwns("/srv/[certs]*")...)}
	for _, tt := range []struct {
		d    Detection
		p    string
		want bool
	}{
		{d, "/etc/containerd/certs.d/ghcr.io/hosts.toml", true},
		{d, "/etc/containerd/certs.d/_default/hosts.toml", true},
		{d, "/etc/containerd/certs.d/nexus:8443/ca.crt", true},
		{d, "/etc/containerd/certs.d/nexus:8443/client.cert", true},
		{d, "/etc/containerd/certs.d/nexus:8443/client.key", true},
		{d, "/etc/containerd/certs.d/nexus:8443/../../config.toml", false},
		{d, "/etc/containerd/certs.d/ghcr.io/notes.txt", false},
		{d, "/etc/containerd/certs.d/ghcr.io/sub/hosts.toml", false},
		{d, "/etc/containerd/certs.d/hosts.toml", false},
		{d, "/etc/containerd/config.toml", false},
		{d, "/etc/crio/mirrorctl-auth.json", true},
		{d, "/etc/crio/crio.conf", false},
		{d, "/etc/rancher/k3s/mirrorctl-certs/m.example/ca.crt", true},
		{d, "/etc/rancher/k3s/registries.yaml", false},
		{d, "/etc/shadow", false},
		{weird, "/srv/[certs]*/ghcr.io/hosts.toml", true},
		{weird, "/srv/c/ghcr.io/hosts.toml", false},
		{weird, "/srv/a[1]/auth.json", true},
		{weird, "/srv/a1/auth.json", false},
	} {
		if got := tt.d.OwnsPath(tt.p); got != tt.want {
			t.Errorf("OwnsPath(%s) = %v, want %v (owns %q)", tt.p, got, tt.want, tt.d.Owns)
		}
	}
}
