package engines

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/mirrorctl/mirrorctl/spec"
)

// This file holds what `mirrorctl doctor` asks of an engine: the hosts it
// will really contact for an image, in order, with the credentials it sends
// to each (Router), and what its running daemon says against its files
// (Inspector). Both are optional: an engine that pulls nothing (crictl) has
// neither. The probing of the hosts is generic and lives in package doctor.

// A Router knows the order in which an engine contacts hosts for an image.
type Router interface {
	// Routes returns the hosts the engine contacts for img on a host where
	// Detect returned d, computed from the engine's files as they are on
	// h.FS now (not from the spec: the spec is only used to name the
	// credentials found there). It never contacts anything. An engine that
	// cannot pull img through any mirror still returns its routes (the
	// upstream) with a finding that says why.
	Routes(ctx context.Context, img Image, h Host, d Detection, s *spec.Spec) (Routing, error)
}

// A BatchRouter is a Router that reads its files once for many images,
// where reading them is costly (k3s parses registries.yaml and the TLS
// files it names): doctor's default is one image per mirrored registry.
// RoutesFor returns, for each image in order, its routings: one, or one
// per client for a ClientRouter.
type BatchRouter interface {
	RoutesFor(ctx context.Context, imgs []Image, h Host, d Detection, s *spec.Spec) ([][]Routing, error)
}

// A ClientRouter is a Router for an engine that several clients on a node
// pull through, each with files of its own: CRI-O and Podman read the same
// registries.conf but different credentials. doctor asks it instead of
// Routes and reports one verdict per client (Routing.Who tells them apart).
type ClientRouter interface {
	ClientRoutes(ctx context.Context, img Image, h Host, d Detection, s *spec.Spec) ([]Routing, error)
}

// An Inspector compares an engine's running daemon with its files.
type Inspector interface {
	// Inspect asks the daemon on its socket (resolve turns a host path into
	// one mirrorctl can dial) and reads the files on h.FS; ctx bounds the
	// whole inspection. A daemon that does not answer is a finding, not an
	// error.
	Inspect(ctx context.Context, h Host, d Detection, s *spec.Spec, resolve func(hostPath string) (string, error)) []Finding
}

// Level is how bad a finding is.
type Level int

const (
	OK   Level = iota // works as meant
	Info              // a fact worth knowing; nothing is wrong
	Warn              // works, but not as meant, or will break
	Fail              // the pull does not go through a mirror, or fails
)

func (l Level) String() string {
	switch l {
	case Info:
		return "INFO"
	case Warn:
		return "WARN"
	case Fail:
		return "FAIL"
	}
	return "OK"
}

// MarshalText prints a Level as its lower-case name in JSON.
func (l Level) MarshalText() ([]byte, error) { return []byte(strings.ToLower(l.String())), nil }

// UnmarshalText reads a Level's name.
func (l *Level) UnmarshalText(b []byte) error {
	for _, v := range []Level{OK, Info, Warn, Fail} {
		if strings.EqualFold(string(b), v.String()) {
			*l = v
			return nil
		}
	}
	return fmt.Errorf("unknown level %q", b)
}

// A Finding is one diagnosis: what was found, its likely cause (a stable
// identifier, for scripts and tests) and the fix, in one line each.
type Finding struct {
	Level   Level  `json:"level"`
	Cause   string `json:"cause"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

func finding(l Level, cause, fix, format string, a ...any) Finding {
	return Finding{Level: l, Cause: cause, Message: fmt.Sprintf(format, a...), Fix: fix}
}

// Routing is the hosts one engine contacts for one image.
type Routing struct {
	Engine string `json:"engine"`
	// Client names who pulls this way: "CRI (kubelet, crictl)", "docker pull".
	Client string `json:"client"`
	// Who is the client's short name ("crio", "podman") when the engine
	// has several (ClientRouter); doctor names the client by it.
	Who   string `json:"who,omitempty"`
	Image Image  `json:"image"`
	// Routes in the order the engine tries them; the engine moves to the
	// next when one fails to connect or answers an error.
	Routes []Route `json:"routes"`
	// Findings are facts of the engine about this image: no mirror at all
	// for the registry, a hosts.toml that does not load, credentials that
	// are not the spec's.
	Findings []Finding `json:"findings,omitempty"`
}

// Route is one host an engine contacts.
type Route struct {
	// URL is the API root the engine sends requests under:
	// scheme://host[:port]/v2, or the path as written with override_path.
	URL string `json:"url"`
	// Mirror is false for the registry itself (the upstream).
	Mirror bool `json:"mirror"`
	// Namespace is the ?ns= query containerd adds on mirror requests.
	Namespace string `json:"ns,omitempty"`
	// Repository is the repository the engine asks this host for, when it
	// is not the image's (registries.conf rewrites a prefix to a location).
	Repository string `json:"repository,omitempty"`
	// HTTPFallback: the engine retries the host over plain HTTP when HTTPS
	// fails or its GET /v2/ answers other than 200 or 401 (registries.conf
	// insecure = true, which also skips verifying the certificate).
	HTTPFallback bool `json:"http_fallback,omitempty"`
	// Capabilities as the engine reads them: pull, resolve, push.
	Capabilities []string `json:"capabilities"`
	// Auth names the credentials the engine sends; nil for none.
	Auth *RouteAuth `json:"auth,omitempty"`
	// TLS is how the engine verifies the host; nil for its defaults.
	TLS *RouteTLS `json:"tls,omitempty"`
	// AuthFix says how this engine gets credentials to this host, when it
	// sends none and the host wants some; "" means the spec's configs:
	// entry for the host, written by mirrorctl sync.
	AuthFix string `json:"-"`
}

// RouteAuth names credentials an engine sends, never their value.
type RouteAuth struct {
	// Name is how a person finds them: `configs."reg:5000"`, or the file
	// and key they come from when the spec does not hold them.
	Name string `json:"name"`
	// Key is the spec's configs: key whose credentials these are; "" when
	// they are not the spec's (a hand-written entry, an old password).
	Key string `json:"key,omitempty"`
	// Via is where the engine reads them: "hosts.toml header",
	// "config.toml registry.configs", "registries.yaml", "config.json".
	Via string `json:"via"`
	// Token: they are also sent to a Bearer token realm. containerd before
	// 2.1 sends hosts.toml headers to the registry only, so a token realm
	// answers it anonymously.
	Token bool `json:"token_realm"`
	// TokenFix says how to make them reach a token realm when Token is
	// false.
	TokenFix string `json:"-"`
	// Fix says how to make the engine send the spec's credentials instead,
	// when these are not the spec's; "" means mirrorctl sync.
	Fix string `json:"-"`
}

// RouteTLS is an engine's TLS settings for one host (host paths).
type RouteTLS struct {
	SkipVerify bool     `json:"skip_verify,omitempty"`
	CA         []string `json:"ca,omitempty"`
	Client     []string `json:"client,omitempty"`
}

// Can reports whether the route has a capability.
func (r Route) Can(c string) bool {
	for _, x := range r.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}

// Requested is img as the engine asks the route's host for it: under
// another name when the route rewrites the repository.
func (r Route) Requested(img Image) Image {
	if r.Repository != "" {
		img.Repository, img.Short = r.Repository, false
		if u, err := url.Parse(r.URL); err == nil && u.Host != "" {
			img.Registry = u.Host
		}
	}
	return img
}

// Image is an image reference as engines normalise it.
type Image struct {
	// Registry is the name the engines look up: "docker.io", "quay.io",
	// "reg.example.com:5000".
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	// Reference is the tag or the digest ("sha256:…").
	Reference string `json:"reference"`
	// Short: written without a registry ("busybox"). Docker, containerd and
	// kubelet read docker.io; Podman and CRI-O resolve such a short name
	// through registries.conf aliases and unqualified-search-registries.
	Short bool `json:"short,omitempty"`
}

// IsDigest reports whether the image is pinned by digest.
func (i Image) IsDigest() bool { return strings.Contains(i.Reference, ":") }

func (i Image) String() string {
	sep := ":"
	if i.IsDigest() {
		sep = "@"
	}
	return i.Registry + "/" + i.Repository + sep + i.Reference
}

// ParseImage normalises a reference the way docker, crictl and kubelet do:
// "busybox" is docker.io/library/busybox:latest; a first element with a
// dot or a colon, or "localhost", is a registry.
func ParseImage(ref string) (Image, error) {
	s := strings.TrimSpace(ref)
	if s == "" || strings.ContainsAny(s, " \t\n") || strings.Contains(s, "://") {
		return Image{}, fmt.Errorf("image %q: not an image reference (want [registry/]repository[:tag|@digest])", ref)
	}
	var img Image
	if name, dgst, ok := strings.Cut(s, "@"); ok {
		if !strings.Contains(dgst, ":") {
			return Image{}, fmt.Errorf("image %q: digest %q has no algorithm", ref, dgst)
		}
		s, img.Reference = name, dgst
	}
	first, rest, hasSlash := strings.Cut(s, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost") {
		img.Registry, s = first, rest
	} else {
		img.Registry, img.Short = dockerHub, true
	}
	if img.Registry == "index.docker.io" || img.Registry == "registry-1.docker.io" {
		img.Registry = dockerHub
	}
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		if img.Reference == "" {
			img.Reference = s[i+1:]
		}
		s = s[:i]
	}
	if img.Reference == "" {
		img.Reference = "latest"
	}
	if img.Registry == dockerHub && !strings.Contains(s, "/") {
		s = "library/" + s
	}
	if s == "" || strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.Contains(s, "//") || s != strings.ToLower(s) {
		return Image{}, fmt.Errorf("image %q: repository %q is not valid (lower case, no empty path elements)", ref, s)
	}
	img.Repository = s
	return img, nil
}

// specAuthName names a configs: key's credentials in output.
func specAuthName(key string) string { return fmt.Sprintf("configs.%q", key) }

// upstreamURL is the API root of a registry itself, as containerd builds it.
func upstreamURL(registry string) string {
	_, u, _, err := normalizeEndpoint(registry)
	if err != nil {
		return ""
	}
	return u.String()
}
