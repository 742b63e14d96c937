package engines

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/mirrorctl/mirrorctl/engines/health"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// Containerd defaults; the spec's engines.containerd overrides each.
const (
	containerdConfigPath = "/etc/containerd/config.toml"
	containerdCertsDir   = "/etc/containerd/certs.d"
	containerdUnit       = "containerd.service"
	containerdSocket     = "/run/containerd/containerd.sock"
)

var containerdBinaries = []string{"/usr/bin/containerd", "/usr/local/bin/containerd"}

// containerd renders one hosts.toml per registry under a single
// config_path directory, and points config.toml's CRI registry table at
// it (docs/engines/containerd.md).
type containerd struct{}

// NewContainerd returns the containerd engine.
func NewContainerd() Engine { return containerd{} }

func (containerd) Name() string { return "containerd" }

// containerdPaths are the spec's paths with the defaults filled in.
type containerdPaths struct {
	config, certsDir, unit, socket, binary string
}

func resolveContainerdPaths(c ContainerdSettings, fsys fs.FS) containerdPaths {
	p := containerdPaths{config: c.Config, certsDir: c.CertsDir, unit: c.Unit, socket: c.Socket, binary: c.Binary}
	for _, d := range []struct {
		v   *string
		def string
	}{
		{&p.config, containerdConfigPath}, {&p.certsDir, containerdCertsDir},
		{&p.unit, containerdUnit}, {&p.socket, containerdSocket},
	} {
		if *d.v == "" {
			*d.v = d.def
		}
	}
	p.certsDir = path.Clean(p.certsDir)
	if p.binary == "" {
		if p.binary = firstPresent(fsys, containerdBinaries...); p.binary == "" {
			p.binary = containerdBinaries[0]
		}
	}
	return p
}

// Detect finds the binary or the unit file, asks the binary its version and
// works out the config schema Render will use. It never dials the socket.
func (containerd) Detect(ctx context.Context, h Host, s *spec.Spec) Detection {
	if s == nil {
		s = &spec.Spec{}
	}
	set := settingsOf[ContainerdSettings](s, "containerd")
	p := resolveContainerdPaths(set, h.FS)
	d := Detection{Engine: "containerd", Unit: p.unit, Socket: p.socket,
		Config: p.config, CertsDir: p.certsDir, Owns: certsDirOwns(p.certsDir)}
	binFound := hostHas(h.FS, p.binary)
	unitFile := findUnitFile(h.FS, p.unit)
	d.Found = binFound || unitFile != ""
	if binFound && h.Version != nil {
		if out, err := h.Version(ctx, p.binary, "--version"); err == nil {
			d.Version = parseContainerdVersion(out)
		}
	}
	switch Enabled(s, "containerd") {
	case spec.Off:
		d.Reason = "disabled in spec"
	case spec.On:
		d.Managed = true
	default:
		d.Managed = d.Found
	}
	if d.Reason == "" {
		switch {
		case binFound && d.Version != "":
			d.Reason = fmt.Sprintf("binary %s v%s", p.binary, d.Version)
		case binFound:
			d.Reason = fmt.Sprintf("binary %s (version unknown)", p.binary)
		case unitFile != "":
			d.Reason = "unit " + unitFile
		case d.Managed:
			d.Reason = "not installed; enabled in spec"
		default:
			d.Reason = "not installed"
		}
	}
	if cfg, err := readContainerdConfig(h.FS, p.config); err == nil {
		if schema, _, err := cfg.chooseSchema(set.Schema, parseRelease(d.Version)); err == nil {
			d.Schema = schema
		}
	}
	return d
}

// Activation: containerd re-reads certs.d on every pull (hosts.go
// ConfigureHosts returns a closure that loads the directory each time), so
// hosts.toml changes need nothing; config.toml is read only at start. After
// a restart the CRI plugins must load and run with the config_path written.
func (containerd) Activation(changes []render.Change, d Detection) Activation {
	a := Activation{Engine: "containerd", Unit: d.Unit, Disruption: None}
	config := cmp.Or(d.Config, containerdConfigPath)
	for _, c := range changes {
		if !c.Changed() || path.Clean(c.File.Path) != path.Clean(config) {
			continue
		}
		a.Disruption, a.Reason = Restart, "config.toml changed"
		var written []byte
		if c.Op != render.Delete {
			written = c.File.Data
		}
		a.Probe = health.Probe{Containerd: &health.ContainerdProbe{Socket: d.Socket, ConfigPath: registryConfigPath(written)}}
		return a
	}
	if slices.ContainsFunc(changes, render.Change.Changed) {
		a.Reason = "only certs.d changed (re-read on every pull)"
	}
	return a
}

// registryConfigPath is the registry config_path a config.toml sets ("" when
// it sets none, as after a rollback to a node's own config).
func registryConfigPath(data []byte) string {
	// A generic map, not a struct: a plugin entry that is not a table
	// must not hide the registry table of another.
	var doc map[string]any
	if toml.Unmarshal(data, &doc) != nil {
		return ""
	}
	for _, name := range []string{criImagesPlugin, criV1Plugin, "cri"} {
		if p, _ := table(doc, "plugins", name, "registry")["config_path"].(string); p != "" {
			return p
		}
	}
	return ""
}

// Render writes config.toml and certs.d for s; see the file comments of
// endpoints.go, containerd_config.go and containerd_hosts.go.
func (containerd) Render(s *spec.Spec, h Host, d Detection) (Result, error) {
	if s == nil {
		s = &spec.Spec{}
	}
	set := settingsOf[ContainerdSettings](s, "containerd")
	p := resolveContainerdPaths(set, h.FS)
	rel := parseRelease(d.Version)
	var header bool
	switch set.Credentials {
	case "", "auto":
		// Measured in make e2e (README, "containerd credentials"): both
		// forms work on 1.6 and 2.4 for a Basic-auth registry, but from 2.1
		// registry.configs pushes CRI back to local pull and is deprecated,
		// while hosts.toml headers are live and also reach token endpoints.
		// Before 2.1 headers do not reach token endpoints, so config wins.
		header = rel.atLeast(2, 1, 0)
	case "config":
	case "header":
		header = true
	default:
		return Result{}, fmt.Errorf("containerd: credentials %q: want auto, config or header", set.Credentials)
	}
	cfg, err := readContainerdConfig(h.FS, p.config)
	if err != nil {
		return Result{}, err
	}
	// An empty spec leaves config.toml as it is, but for mirrorctl's own auth.
	cfg.emptySpec = len(s.Mirrors) == 0 && len(s.Configs) == 0
	schema, schemaWarn, err := cfg.chooseSchema(set.Schema, rel)
	if err != nil {
		return Result{}, err
	}
	legacy, notes, err := cfg.takeLegacy(schema)
	if err != nil {
		return Result{}, err
	}
	rc := &containerdRender{s: s, p: p, rel: rel, header: header, schema: schema, warns: warnList{engine: "containerd"}}
	if schemaWarn != "" && !cfg.emptySpec {
		rc.warns.add(spec.Pos{}, "%s", schemaWarn)
	}
	in := rc.inputs(legacy, cfg.path)
	hosts, warns := buildRegistryHosts(in)
	rc.warns.list = append(rc.warns.list, warns...)
	// hosts.toml leaves out the mirrors found down (containerd_down.go);
	// config.toml and the spec warnings use every mirror, so that a probe
	// never changes config.toml (a restart).
	live := hosts
	if len(h.Down) > 0 {
		mirrors, downWarns := withoutDown(in.mirrors, h.Down)
		rc.warns.list = append(rc.warns.list, downWarns...)
		lin := in
		lin.mirrors = mirrors
		live, _ = buildRegistryHosts(lin)
	}

	w := &hostsWriter{certsDir: p.certsDir, specName: specName(s), config: p.config, header: header, group: "containerd:", configs: s.Configs}
	var files []render.File
	rendered := map[string][]render.File{}
	for _, dir := range sortedKeys(live) {
		if rh := live[dir]; w.needsFile(rh) {
			rendered[dir] = w.files(rh)
			files = append(files, rendered[dir]...)
		}
	}
	want, drop := rc.authEntries(hosts)
	more, err := cfg.setRegistry(schema, p.certsDir, rel, want, drop)
	if err != nil {
		return Result{}, err
	}
	data, rewrite, err := cfg.render(schema)
	if err != nil {
		return Result{}, err
	}
	if cfg.exists || !cfg.emptySpec {
		conf := render.File{Path: p.config, Data: data, Mode: 0o644, Secret: cfg.hasAuth(), Merged: true, Keys: cfg.ownedKeys()}
		files = append([]render.File{conf}, files...)
	}
	specDirs := map[string]bool{}
	for _, k := range append(sortedKeys(s.Mirrors), sortedKeys(s.Configs)...) {
		specDirs[registryDir(k)] = true
	}
	files = append(files, w.stale(h.FS, rendered, specDirs)...)

	if rewrite != "" {
		more = append(more, rewrite)
	}
	for _, n := range append(notes, more...) {
		rc.warns.add(spec.Pos{}, "%s", n)
	}
	for _, w := range importWarnings(h.FS, cfg.doc, p.config, rel) {
		rc.warns.add(spec.Pos{}, "%s", w)
	}
	if cfg.criDisabled(schema) {
		rc.warns.add(spec.Pos{}, "%s disables the CRI plugin (disabled_plugins): kubelet and crictl pulls will not use these mirrors", p.config)
	}
	rc.specWarnings(hosts, want, h.FS)
	if err := confinePaths("containerd", files, p.certsDir, p.config); err != nil {
		return Result{}, err
	}
	return Result{Files: files, Warnings: rc.warns.list}, nil
}

// specName names the spec in the hosts.toml ownership line.
func specName(s *spec.Spec) string {
	if len(s.Files) == 0 || s.Files[0] == "" {
		return "the spec"
	}
	return path.Base(strings.ReplaceAll(s.Files[0], "\\", "/"))
}

// ownedKeys names what mirrorctl owns in config.toml, for state.json: the
// config_path it points at certs.d (not with an empty spec, which leaves
// the file alone) and the auth entries of the ownership marker.
func (c *containerdConfig) ownedKeys() []string {
	var keys []string
	if !c.emptySpec {
		keys = append(keys, "registry.config_path")
	}
	for _, h := range c.owns {
		keys = append(keys, "registry.configs."+h+".auth")
	}
	return keys
}
