package engines

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

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
// it (docs/ENGINES.md §A).
type containerd struct{}

// NewContainerd returns the containerd engine.
func NewContainerd() Engine { return containerd{} }

func (containerd) Name() string { return "containerd" }

// containerdPaths are the spec's paths with the defaults filled in.
type containerdPaths struct {
	config, certsDir, unit, socket, binary string
}

func resolveContainerdPaths(c spec.Containerd, fsys fs.FS) containerdPaths {
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
	set := s.Engines.Containerd
	p := resolveContainerdPaths(set, h.FS)
	d := Detection{Engine: "containerd", Unit: p.unit, Socket: p.socket,
		Paths: []string{p.config, p.certsDir}, Extra: map[string]string{}}
	binFound := hostHas(h.FS, p.binary)
	unitFile := findUnitFile(h.FS, p.unit)
	d.Found = binFound || unitFile != ""
	if binFound && h.Exec != nil {
		if out, err := h.Exec(ctx, p.binary, "--version"); err == nil {
			d.Version = parseContainerdVersion(string(out))
		}
	}
	switch set.Enabled {
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
	// The health check compares the daemon's registry config path with it.
	d.Extra["config_path"] = p.certsDir
	if cfg, err := readContainerdConfig(h.FS, p.config); err == nil {
		if schema, _, err := cfg.chooseSchema(set.Schema, parseRelease(d.Version)); err == nil {
			d.Extra["schema"] = strconv.Itoa(schema)
		}
	}
	return d
}

// Activation: containerd re-reads certs.d on every pull (hosts.go
// ConfigureHosts returns a closure that loads the directory each time), so
// hosts.toml changes need nothing; config.toml is read only at start.
func (containerd) Activation(changed []string, d Detection) Action {
	a := Action{Engine: "containerd", Unit: d.Unit, Disruption: None}
	config := containerdConfigPath
	if len(d.Paths) > 0 {
		config = d.Paths[0]
	}
	for _, p := range changed {
		if path.Clean(p) == path.Clean(config) {
			a.Disruption, a.Reason = Restart, "config.toml changed"
			return a
		}
	}
	if len(changed) > 0 {
		a.Reason = "only certs.d changed (re-read on every pull)"
	}
	return a
}

// Render writes config.toml and certs.d for s; see the file comments of
// endpoints.go, containerd_config.go and containerd_hosts.go.
func (containerd) Render(s *spec.Spec, h Host, d Detection) (Result, error) {
	if s == nil {
		s = &spec.Spec{}
	}
	set := s.Engines.Containerd
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
	rc := &containerdRender{s: s, p: p, rel: rel, header: header, schema: schema}
	if schemaWarn != "" && !cfg.emptySpec {
		rc.warn(spec.Pos{}, "%s", schemaWarn)
	}
	in := rc.inputs(legacy, cfg.path)
	hosts, warns := buildRegistryHosts(in)
	rc.warns = append(rc.warns, warns...)
	// hosts.toml leaves out the mirrors found down (containerd_down.go);
	// config.toml and the spec warnings use every mirror, so that a probe
	// never changes config.toml (a restart).
	live := hosts
	if len(h.Down) > 0 {
		mirrors, downWarns := withoutDown(in.mirrors, h.Down)
		rc.warns = append(rc.warns, downWarns...)
		lin := in
		lin.mirrors = mirrors
		live, _ = buildRegistryHosts(lin)
	}

	w := &hostsWriter{certsDir: p.certsDir, specName: specName(s), config: p.config, header: header, configs: s.Configs}
	var files []render.File
	rendered := map[string][]render.File{}
	for _, dir := range sortedKeys(live) {
		if rh := live[dir]; w.needsFile(rh) {
			rendered[dir] = w.files(rh)
			files = append(files, rendered[dir]...)
		}
	}
	want, drop := rc.authEntries(hosts)
	more, err := cfg.setRegistry(schema, p.certsDir, want, drop)
	if err != nil {
		return Result{}, err
	}
	data, rewrite, err := cfg.render(schema)
	if err != nil {
		return Result{}, err
	}
	if cfg.exists || !cfg.emptySpec {
		conf := render.File{Path: p.config, Data: data, Mode: 0o644, Secret: cfg.hasAuth(), Merged: true}
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
		rc.warn(spec.Pos{}, "%s", n)
	}
	for _, w := range importWarnings(h.FS, cfg.doc, p.config, rel) {
		rc.warn(spec.Pos{}, "%s", w)
	}
	if cfg.criDisabled(schema) {
		rc.warn(spec.Pos{}, "%s disables the CRI plugin (disabled_plugins): kubelet and crictl pulls will not use these mirrors", p.config)
	}
	rc.specWarnings(hosts, want, h.FS)
	if err := confinePaths(files, p.config, p.certsDir); err != nil {
		return Result{}, err
	}
	return Result{Files: files, Warnings: rc.warns}, nil
}

// specName names the spec in the hosts.toml ownership line.
func specName(s *spec.Spec) string {
	if len(s.Files) == 0 || s.Files[0] == "" {
		return "the spec"
	}
	return path.Base(strings.ReplaceAll(s.Files[0], "\\", "/"))
}
