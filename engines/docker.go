package engines

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/mirrorctl/mirrorctl/engines/health"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// Docker defaults; engines.docker in the spec overrides each of them.
const (
	dockerDaemonJSON = "/etc/docker/daemon.json"
	dockerCertsDir   = "/etc/docker/certs.d"
	dockerUnit       = "docker.service"
	dockerSocket     = "/run/docker.sock"
)

var dockerBinaries = []string{"/usr/bin/dockerd", "/usr/sbin/dockerd", "/usr/local/bin/dockerd"}

// The daemon.json keys mirrorctl manages. Every other key is the user's.
const (
	keyMirrors  = "registry-mirrors"
	keyInsecure = "insecure-registries"
)

// dockerEngine renders dockerd's daemon.json (registry-mirrors and
// insecure-registries only), /etc/docker/certs.d/<host>/ (TLS files; with
// the containerd image store of Docker ≥ 28 also hosts.toml for every
// registry, docker_hosts.go) and the `auths` of chosen users'
// ~/.docker/config.json. See docs/engines/docker.md.
type dockerEngine struct{}

// NewDocker returns the Docker Engine adapter.
func NewDocker() Engine { return dockerEngine{} }

func (dockerEngine) Name() string { return "docker" }

type dockerSettings struct {
	daemonJSON, certsDir, unit, socket, binary string
}

func dockerSettingsOf(s *spec.Spec) dockerSettings {
	c := settingsOf[DockerSettings](s, "docker")
	return dockerSettings{
		daemonJSON: cmp.Or(c.DaemonJSON, dockerDaemonJSON),
		certsDir:   cmp.Or(c.CertsDir, dockerCertsDir),
		unit:       cmp.Or(unitName(c.Unit), dockerUnit),
		socket:     cmp.Or(c.Socket, dockerSocket),
		binary:     c.Binary,
	}
}

func (e dockerEngine) Detect(ctx context.Context, h Host, s *spec.Spec) Detection {
	cfg := dockerSettingsOf(s)
	d := Detection{
		Engine:   e.Name(),
		Unit:     cfg.unit,
		Socket:   cfg.socket,
		Config:   cfg.daemonJSON,
		CertsDir: cfg.certsDir,
		Owns:     certsDirOwns(cfg.certsDir),
	}
	bin := cfg.binary
	if bin == "" || !hostHas(h.FS, bin) {
		bin = firstPresent(h.FS, dockerBinaries...)
	}
	unitFile := findUnitFile(h.FS, cfg.unit)
	var found string
	switch {
	case bin != "":
		d.Found, found = true, "dockerd at "+bin
	case unitFile != "":
		d.Found, found = true, "unit "+unitFile
	default:
		found = "no dockerd binary or " + cfg.unit
	}
	if bin != "" && h.Version != nil {
		if out, err := h.Version(ctx, bin, "--version"); err == nil {
			d.Version = leadingVersion(out)
		}
	}
	var why string
	d.Managed, why = toggleManaged(Enabled(s, "docker"), d.Found)
	var store string
	if d.Found || d.Managed {
		st := detectImageStore(ctx, h, cfg, d.Version)
		d.ImageStore, store = st.store, st.why
		if d.Version == "" {
			d.Version = st.version
		}
	}
	d.Reason = joinReason(found, store, why)
	return d
}

func (e dockerEngine) Render(s *spec.Spec, h Host, d Detection) (Result, error) {
	cfg := dockerSettingsOf(s)
	w := &warnList{engine: e.Name()}
	mirrors := dockerHubMirrors(s, d, w)
	insecure := dockerInsecure(s, d, mirrors, w)
	flags := scanDockerUnit(h.FS, cfg.unit)

	var res Result
	_, hubInSpec := s.Mirrors[dockerHub]
	daemon, err := renderDaemonJSON(h, cfg.daemonJSON, mirrors, hubInSpec, insecure, flags, w)
	if err != nil {
		return Result{}, fmt.Errorf("docker: %w", err)
	}
	if daemon != nil {
		res.Files = append(res.Files, *daemon)
	}
	// With the containerd image store (Docker ≥ 28) every registry is
	// read from hosts.toml (docker_hosts.go); registry-mirrors stays in
	// daemon.json for docker.io all the same: hosts.toml overrides it as
	// soon as docker.io's lists a mirror, it keeps Docker Hub mirrored if
	// dockerd ever starts with the classic store, and `docker info` still
	// shows the mirrors (docs/engines/docker.md).
	if s != nil && dockerReadsHostsTOML(d) {
		files, err := dockerHostsFiles(s, h, cfg, d, w)
		if err != nil {
			return Result{}, err
		}
		res.Files = append(res.Files, files...)
	} else {
		res.Files = append(res.Files, dockerCerts(s, cfg.certsDir, insecure, w)...)
	}
	auths, err := dockerAuthFiles(s, h, w)
	if err != nil {
		return Result{}, fmt.Errorf("docker: %w", err)
	}
	res.Files = append(res.Files, auths...)
	released, err := releaseJSONFiles(h, res.Files, w, dockerShared, "Docker (daemon.json and users' .docker/config.json)")
	if err != nil {
		return Result{}, fmt.Errorf("docker: %w", err)
	}
	res.Files = append(res.Files, released...)
	res.Warnings = w.list
	return res, nil
}

// Activation: dockerd reloads registry-mirrors and insecure-registries on
// SIGHUP (daemon/reload.go; the stock unit's ExecReload sends it), and reads
// certs.d and the client's config.json on every pull. On SIGHUP dockerd
// applies only the keys the file contains, so a managed key that disappears
// keeps its old value until dockerd restarts: that needs a restart.
// Afterwards dockerd must answer and list exactly the mirrors written.
func (e dockerEngine) Activation(changes []render.Change, d Detection) Activation {
	a := Activation{Engine: e.Name(), Unit: cmp.Or(d.Unit, dockerUnit)}
	daemonJSON := cmp.Or(d.Config, dockerDaemonJSON)
	if slices.ContainsFunc(changes, render.Change.Changed) {
		a.Reason = "only certs.d or config.json changed (read on every pull)"
		if dockerReadsHostsTOML(d) {
			a.Reason = "only certs.d or config.json changed (the containerd image store reads hosts.toml on every pull)"
		}
	}
	for _, c := range changes {
		if !c.Changed() || c.File.Path != daemonJSON {
			continue
		}
		var newData []byte
		if c.Op != render.Delete {
			newData = c.File.Data
		}
		a.Disruption, a.Reason = Reload, daemonJSON+" changed"
		for _, key := range []string{keyMirrors, keyInsecure} {
			if hasValue(c.Old, key) && !hasKey(newData, key) {
				a.Disruption = Restart
				a.Reason = daemonJSON + " no longer sets " + key + ", which dockerd clears only on restart"
			}
		}
		var cfg struct {
			Mirrors  []string `json:"registry-mirrors"`
			Insecure []string `json:"insecure-registries"`
		}
		_ = json.Unmarshal(newData, &cfg)
		if cfg.Insecure == nil && hasKey(newData, keyInsecure) {
			cfg.Insecure = []string{} // null: none, and checked
		}
		a.Probe = health.Probe{Docker: &health.DockerProbe{Socket: cmp.Or(d.Socket, dockerSocket), Mirrors: cfg.Mirrors, Insecure: cfg.Insecure}}
	}
	return a
}

// hasKey reports whether a JSON object has a top-level key.
func hasKey(data []byte, key string) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return false
	}
	_, ok := obj[key]
	return ok
}

// hasValue reports whether a JSON object's key holds something other than
// an empty list or null.
func hasValue(data []byte, key string) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return false
	}
	v, ok := obj[key]
	return ok && string(v) != "[]" && string(v) != "null"
}

// renderDaemonJSON merges the two managed keys into daemon.json. It returns
// nil when there is nothing to write, and the original bytes when neither
// key changes.
func renderDaemonJSON(h Host, file string, mirrors []string, hubInSpec bool, insecure []string, flags dockerFlags, w *warnList) (*render.File, error) {
	old, exists, err := readOptional(h.FS, file)
	if err != nil {
		return nil, err
	}
	owned := ownedEntries(h, file)
	if !exists && len(mirrors) == 0 && len(insecure) == 0 {
		return nil, nil
	}
	if exists && len(mirrors) == 0 && len(insecure) == 0 && len(owned) == 0 && !hubInSpec {
		return nil, nil // nothing of mirrorctl's to put there or to take out
	}
	obj, err := parseJSONObject(file, old)
	if err != nil {
		return nil, err
	}
	changed := false
	var keys []string

	// registry-mirrors belongs to the spec when it names docker.io, or when
	// mirrorctl wrote it before; otherwise it is the user's and stays.
	cur, has := obj.get(keyMirrors)
	switch {
	case flags.mirror:
		w.flagConflict(flags, file, "--registry-mirror", keyMirrors, has, mirrors)
	case len(mirrors) == 0:
		// An empty list, not a deleted key: dockerd's reload applies only
		// keys the file sets, so deleting it would leave the old mirrors.
		if !has || (!owned[keyMirrors] && !hubInSpec) {
			break
		}
		if list, ok := stringList(cur); !ok || len(list) > 0 {
			obj.set(keyMirrors, []string{})
			changed = true
		}
		keys = append(keys, keyMirrors)
	default:
		if list, ok := stringList(cur); !ok || !slices.Equal(list, mirrors) {
			obj.set(keyMirrors, mirrors)
			changed = true
		}
		keys = append(keys, keyMirrors)
	}

	// insecure-registries is shared with the user: mirrorctl adds the
	// entries the spec derives and removes those it added earlier (state
	// records them) that the spec no longer derives; every other entry is
	// the user's and survives.
	cur, has = obj.get(keyInsecure)
	switch {
	case flags.insecure:
		w.flagConflict(flags, file, "--insecure-registry", keyInsecure, has, insecure)
	case len(insecure) > 0 || (has && len(owned) > 0):
		list, ok := stringList(cur)
		if has && !ok && string(cur) != "null" { // null is no list, as dockerd reads it
			if len(insecure) == 0 {
				break // not ours to judge: nothing of mirrorctl's goes there
			}
			return nil, fmt.Errorf("%s: %q is not a list of strings; mirrorctl does not overwrite it, fix it first", file, keyInsecure)
		}
		wanted := func(e string) bool {
			return slices.ContainsFunc(insecure, func(o string) bool { return bareRegistry(o) == bareRegistry(e) })
		}
		var kept []string
		for _, e := range list {
			if !owned[keyInsecure+"="+bareRegistry(e)] || wanted(e) {
				kept = append(kept, e)
			}
		}
		merged := mergeInsecure(kept, insecure)
		if !slices.Equal(merged, list) && (has || len(merged) > 0) {
			obj.set(keyInsecure, merged)
			changed = true
		}
		for _, e := range insecure {
			userHad := slices.ContainsFunc(list, func(u string) bool { return bareRegistry(u) == bareRegistry(e) })
			if !userHad || owned[keyInsecure+"="+bareRegistry(e)] {
				keys = append(keys, keyInsecure+"="+bareRegistry(e))
			}
		}
	}

	f := &render.File{Path: file, Data: old, Mode: 0o644, Merged: true, Keys: keys}
	if !changed {
		if !exists {
			return nil, nil
		}
		return f, nil
	}
	f.Data = obj.marshal()
	return f, nil
}

// bareRegistry is an insecure-registries entry as dockerd compares it:
// without an http:// or https:// prefix or a trailing slash.
func bareRegistry(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "http://"), "https://")
	return strings.TrimSuffix(s, "/")
}

// mergeInsecure appends the spec's entries that the user's list lacks.
// dockerd strips an http:// or https:// prefix from entries, so they
// compare without it.
func mergeInsecure(user, ours []string) []string {
	bare := bareRegistry
	out := slices.Clone(user)
	seen := map[string]bool{}
	for _, u := range user {
		seen[bare(u)] = true
	}
	for _, o := range ours {
		if !seen[bare(o)] {
			seen[bare(o)] = true
			out = append(out, o)
		}
	}
	return out
}

// flagConflict explains why a managed key is left alone. Refusing the whole
// render instead would also withhold the other key, certs.d and the auths,
// which are safe to apply; writing the key would stop dockerd at its next
// start. So the key stays as it is and the warning says what is not applied.
func (w *warnList) flagConflict(f dockerFlags, file, flag, key string, inFile bool, want []string) {
	msg := fmt.Sprintf("%s starts dockerd with %s, so mirrorctl leaves %q in %s alone", f.where, flag, key, file)
	if inFile {
		msg += " (the file sets it too: dockerd refuses to start with both, remove one)"
	} else {
		msg += " (dockerd refuses to start when both set it)"
	}
	if len(want) > 0 {
		msg += "; not applied: " + strings.Join(want, ", ") + "; remove the flag to let mirrorctl manage the key"
	}
	w.add(spec.Pos{}, "%s", msg)
}
