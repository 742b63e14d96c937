package engines

import (
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/engines/health"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

func TestContainersDetect(t *testing.T) {
	exec := map[string]string{
		"/usr/bin/crio":   "crio version 1.30.4\nGitCommit: abc\n",
		"/usr/bin/podman": "podman version 4.3.1\n",
	}
	for _, c := range []struct {
		name              string
		fs                fstest.MapFS
		spec              *spec.Spec
		found, managed    bool
		unit, crio, vers  string
		reasonContainsAll []string
	}{
		{name: "nothing", fs: hostTree()},
		{name: "podman_only_no_unit", fs: hostTree(hostFile("usr/bin/podman"), hostFile("usr/local/bin/skopeo")),
			found: true, managed: true, vers: "4.3.1"},
		{name: "crio_binary_sets_unit_and_its_version_wins", fs: hostTree(hostFile("usr/bin/podman"), hostFile("usr/bin/crio")),
			found: true, managed: true, unit: crioUnit, crio: crioDropIn, vers: "1.30.4"},
		{name: "crio_unit_only", fs: hostTree(hostFile("lib/systemd/system/crio.service")),
			found: true, managed: true, unit: crioUnit, crio: crioDropIn},
		{name: "disabled", fs: hostTree(hostFile("usr/bin/podman")), spec: engineSpec("containers", spec.Off, nil),
			found: true, vers: "4.3.1"},
		{name: "custom_crio_paths", fs: hostTree(hostFile("usr/local/bin/crio")),
			spec:  engineSpec("containers", "", ContainersSettings{CRIOUnit: "cri-o", CRIODropIn: "/etc/crio/crio.conf.d/90-m.conf"}),
			found: true, managed: true, unit: "cri-o.service", crio: "/etc/crio/crio.conf.d/90-m.conf"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := NewContainers().Detect(detectCtx, Host{FS: c.fs, Version: fakeExec(exec)}, c.spec)
			if d.Found != c.found || d.Managed != c.managed || d.Unit != c.unit || d.CRIOConfig != c.crio || d.Version != c.vers {
				t.Errorf("Detect = found %v managed %v unit %q crio %q version %q (%s)", d.Found, d.Managed, d.Unit, d.CRIOConfig, d.Version, d.Reason)
			}
			if (d.Unit != "") != (d.Socket != "") {
				t.Errorf("unit %q but socket %q", d.Unit, d.Socket)
			}
		})
	}
}

func TestContainersActivation(t *testing.T) {
	crio := Detection{Unit: crioUnit, Socket: crioSocket, Config: containersDropIn, CRIOConfig: crioDropIn}
	podman := Detection{Config: containersDropIn}
	const conf = "[crio.image]\nglobal_auth_file = \"/etc/crio/mirrorctl-auth.json\"\n"
	del := func(p string) []render.Change {
		return []render.Change{{Op: render.Delete, Old: []byte(conf), File: render.File{Path: p, Remove: true}}}
	}
	reload := Activation{Engine: "containers", Unit: crioUnit, Disruption: Reload,
		Reason: containersDropIn + " changed; CRI-O re-reads registries.conf.d on reload",
		Probe:  health.Probe{CRIO: &health.CRIOProbe{Socket: crioSocket}}}
	restart := Activation{Engine: "containers", Unit: crioUnit, Disruption: Restart,
		Reason: crioDropIn + " changed; CRI-O reads global_auth_file only at start",
		Probe:  health.Probe{CRIO: &health.CRIOProbe{Socket: crioSocket, GlobalAuthFile: "/etc/crio/mirrorctl-auth.json"}}}
	restartNoFile := restart
	restartNoFile.Probe = health.Probe{CRIO: &health.CRIOProbe{Socket: crioSocket}}
	for _, c := range []struct {
		name    string
		d       Detection
		changes []render.Change
		want    Activation
	}{
		{"nothing_changed", crio, nil, Activation{Engine: "containers", Unit: crioUnit}},
		{"drop_in_reloads_crio", crio, changed("x", containersDropIn, "/etc/containers/certs.d/h/ca.crt"), reload},
		{"crio_conf_d_restarts_with_its_auth_file_checked", crio, changed(conf, containersDropIn, crioDropIn), restart},
		{"crio_conf_d_removed_restarts", crio, del(crioDropIn), restartNoFile},
		{"auth_and_certs_only_need_nothing", crio, changed("x", "/etc/crio/mirrorctl-auth.json", "/root/.config/containers/auth.json"),
			Activation{Engine: "containers", Unit: crioUnit, Reason: "only certs.d or auth files changed (read at every pull)"}},
		{"podman_reads_at_every_command", podman, changed("x", containersDropIn),
			Activation{Engine: "containers", Reason: "Podman, Buildah and Skopeo read the files at every command"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if d := cmp.Diff(c.want, NewContainers().Activation(c.changes, c.d)); d != "" {
				t.Errorf("Activation (-want +got):\n%s", d)
			}
		})
	}
}
