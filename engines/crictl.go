package engines

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

const crictlConfig = "/etc/crictl.yaml"

var crictlBinaries = []string{"/usr/bin/crictl", "/usr/local/bin/crictl"}

// criSockets are the CRI sockets crictl may talk to, in the order we prefer
// them: k3s's and RKE2's embedded containerd (the same path for both) before
// a system containerd, then CRI-O and cri-dockerd.
var criSockets = []string{
	"/run/k3s/containerd/containerd.sock",
	"/run/containerd/containerd.sock",
	"/run/crio/crio.sock",
	"/run/cri-dockerd.sock",
	"/var/run/cri-dockerd.sock",
}

// criDefault is what crictl itself tries first when it has no endpoint.
const criDefault = "unix:///run/containerd/containerd.sock"

// crictlEngine points crictl.yaml at the node's CRI socket. crictl reads the
// file on every run, so nothing is ever restarted
// (docs/engines/crictl.md#when-it-is-read).
type crictlEngine struct{}

// NewCrictl returns the crictl adapter.
func NewCrictl() Engine { return crictlEngine{} }

func (crictlEngine) Name() string { return "crictl" }

func crictlSettingsOf(s *spec.Spec) CrictlSettings {
	c := settingsOf[CrictlSettings](s, "crictl")
	c.Config = cmp.Or(c.Config, crictlConfig)
	return c
}

func (e crictlEngine) Detect(ctx context.Context, h Host, s *spec.Spec) Detection {
	c := crictlSettingsOf(s)
	d := Detection{Engine: e.Name(), Config: c.Config, Socket: firstPresent(h.FS, criSockets...)}
	bin := firstPresent(h.FS, crictlBinaries...)
	var found string
	switch {
	case bin != "":
		d.Found, found = true, "crictl at "+bin
	case hostHas(h.FS, c.Config):
		d.Found, found = true, c.Config+" exists"
	default:
		found = "no crictl binary or " + c.Config
	}
	if bin != "" && h.Version != nil {
		if out, err := h.Version(ctx, bin, "--version"); err == nil {
			d.Version = leadingVersion(out)
		}
	}
	var why string
	d.Managed, why = toggleManaged(Enabled(s, "crictl"), d.Found)
	d.Reason = joinReason(found, why)
	return d
}

// Activation: crictl is a client that reads its file on every run.
func (e crictlEngine) Activation([]render.Change, Detection) Activation {
	return Activation{Engine: e.Name()}
}

func (e crictlEngine) Render(s *spec.Spec, h Host, d Detection) (Result, error) {
	c := crictlSettingsOf(s)
	w := &warnList{engine: e.Name()}
	old, exists, err := readOptional(h.FS, c.Config)
	if err != nil {
		return Result{}, fmt.Errorf("crictl: %w", err)
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	if len(bytes.TrimSpace(old)) > 0 {
		var parsed yaml.Node
		if err := yaml.Unmarshal(old, &parsed); err != nil {
			return Result{}, fmt.Errorf("crictl: %s is not valid YAML: %w; mirrorctl does not overwrite it, fix it first", c.Config, err)
		}
		if len(parsed.Content) != 1 || parsed.Content[0].Kind != yaml.MappingNode {
			return Result{}, fmt.Errorf("crictl: %s does not hold a YAML mapping; mirrorctl does not overwrite it, fix it first", c.Config)
		}
		doc = &parsed
	}
	m := doc.Content[0]
	f := render.File{Path: c.Config, Data: old, Mode: 0o644, Merged: true}
	var changed bool
	if s == nil || (len(s.Mirrors) == 0 && len(s.Configs) == 0) {
		// Nothing to pull through: crictl's file is none of mirrorctl's
		// business, and what mirrorctl wrote there earlier goes.
		own, ours := h.Owned[c.Config]
		if !ours || !exists {
			return Result{Warnings: w.list}, nil
		}
		for _, k := range own.Keys {
			changed = deleteKey(m, k) || changed
		}
		f.Release = true
		if own.Created && len(m.Content) == 0 {
			f.Remove, f.Data = true, nil
			return Result{Files: []render.File{f}, Warnings: w.list}, nil
		}
	} else {
		endpoint := crictlEndpoint(c, h, d, w)
		f.Keys = []string{"runtime-endpoint", "image-endpoint"}
		changed = setScalar(m, "runtime-endpoint", endpoint, "!!str")
		changed = setScalar(m, "image-endpoint", endpoint, "!!str") || changed
		if c.Timeout > 0 {
			changed = setScalar(m, "timeout", strconv.Itoa(c.Timeout), "!!int") || changed
			f.Keys = append(f.Keys, "timeout")
		}
		changed = checkCrictlKeys(m, c.Config, d.Version, w) || changed
	}
	if exists && !changed {
		return Result{Files: []render.File{f}, Warnings: w.list}, nil
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return Result{}, fmt.Errorf("crictl: encoding %s: %w", c.Config, err)
	}
	if err := enc.Close(); err != nil {
		return Result{}, fmt.Errorf("crictl: encoding %s: %w", c.Config, err)
	}
	f.Data = b.Bytes()
	return Result{Files: []render.File{f}, Warnings: w.list}, nil
}

// deleteKey removes key from a YAML mapping and reports whether it was there.
func deleteKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return true
		}
	}
	return false
}

// crictlEndpoint picks the CRI endpoint: the spec's, else the detected
// socket, else crictl's own first guess, with a warning.
func crictlEndpoint(c CrictlSettings, h Host, d Detection, w *warnList) string {
	if c.Endpoint != "" {
		if strings.HasPrefix(c.Endpoint, "/") {
			return "unix://" + c.Endpoint // crictl wants a scheme
		}
		return c.Endpoint
	}
	if sock := cmp.Or(d.Socket, firstPresent(h.FS, criSockets...)); sock != "" {
		return "unix://" + sock
	}
	w.add(spec.Pos{}, "no CRI socket found (%s); using %s, set engines.crictl.endpoint to choose", strings.Join(criSockets, ", "), criDefault)
	return criDefault
}

// checkCrictlKeys looks at every key of crictl.yaml. crictl's parser is a
// strict switch (cri-tools pkg/common/file.go getConfigOptions): any key it
// does not know, or a value it cannot parse, makes every crictl command
// fail with "Config option '<k>' is not valid" or "parsing config option".
//
// What we do about the keys that are not ours:
//   - max-retries is dropped, with a warning: only crictl built from main
//     after v1.36.0 knows it and it breaks every released crictl; it is a
//     retry count whose default (3) is what the user gets without it. Kept
//     when the detected crictl is newer than 1.36.
//   - any other unknown key is kept, with a warning: we do not know what it
//     means (a typo? a key from a newer crictl?), and the keys mirrorctl does
//     not manage in shared files survive
//     (README.md#guarantees-and-how-they-hold). The user gets told exactly
//     which line breaks crictl.
//   - a timeout written as a duration ("10s") is rewritten in whole
//     seconds, which is what was meant; other bad values get a warning.
func checkCrictlKeys(m *yaml.Node, file, version string, w *warnList) (changed bool) {
	// One pass that keeps what stays: removing entries one at a time
	// would move the rest of the mapping each time, quadratic in a file
	// of many max-retries lines.
	kept := m.Content[:0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		drop := false
		switch k.Value {
		case "runtime-endpoint", "image-endpoint":
		case "timeout":
			if _, err := strconv.Atoi(v.Value); err == nil {
				break
			}
			if d, err := time.ParseDuration(v.Value); err == nil && d >= 0 {
				secs := strconv.Itoa(int(math.Ceil(d.Seconds())))
				w.add(spec.Pos{}, "%s:%d: crictl wants timeout in whole seconds, not %q: written as %s", file, v.Line, v.Value, secs)
				v.Kind, v.Tag, v.Value, v.Style, v.Content = yaml.ScalarNode, "!!int", secs, 0, nil
				changed = true
				break
			}
			w.add(spec.Pos{}, "%s:%d: crictl cannot parse timeout %q (whole seconds) and fails on every command; set engines.crictl.timeout", file, v.Line, v.Value)
		case "debug", "pull-image-on-create", "disable-pull-on-run":
			if _, err := strconv.ParseBool(v.Value); err != nil {
				w.add(spec.Pos{}, "%s:%d: crictl cannot parse %s %q (true or false) and fails on every command", file, v.Line, k.Value, v.Value)
			}
		case "max-retries":
			if releaseAtLeast(version, 1, 37) {
				break
			}
			w.add(spec.Pos{}, "%s:%d: removed max-retries: crictl releases up to v1.36 reject it and fail on every command", file, k.Line)
			drop, changed = true, true
		default:
			w.add(spec.Pos{}, "%s:%d: crictl does not know the key %q and fails on every command; left in place, remove it", file, k.Line, k.Value)
		}
		if !drop {
			kept = append(kept, k, v)
		}
	}
	m.Content = kept
	return changed
}

// setScalar sets key to a scalar value in a YAML mapping, in place (keeping
// its position and comments), and reports whether anything changed.
func setScalar(m *yaml.Node, key, value, tag string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key {
			continue
		}
		v := m.Content[i+1]
		if v.Kind == yaml.ScalarNode && v.Value == value {
			return false
		}
		v.Kind, v.Tag, v.Value, v.Style, v.Content = yaml.ScalarNode, tag, value, 0, nil
		return true
	}
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value})
	return true
}
