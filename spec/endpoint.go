package spec

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Endpoint is one mirror endpoint as k3s reads it, so that one spec means
// the same URL for every engine: parsed once here, used by all.
type Endpoint struct {
	// URL is scheme://host[:port]/path after k3s's rules: no scheme means
	// https, except localhost and loopback addresses on a port other than
	// 443, which mean http; the path "", "/" or "/v2" is the API root /v2.
	URL *url.URL
	// Name is the registry name whose configs: entry applies: the
	// endpoint's host[:port], and docker.io for Docker Hub's API host.
	Name string
	// OverridePath is set when the path is used verbatim instead of as the
	// API root (any path but "", "/" and "/v2").
	OverridePath bool
}

// HubHost is the host Docker Hub's registry API answers on; docker.io in
// an endpoint means it.
const HubHost = "registry-1.docker.io"

// ParseEndpoint reads one endpoint (host, host:port or
// http(s)://host[:port][/path]) with k3s's rules (k3s
// pkg/agent/containerd/config.go normalizeEndpointAddress).
func ParseEndpoint(raw string) (Endpoint, error) {
	s := raw
	if !strings.Contains(s, "://") {
		s = "//" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return Endpoint{}, err
	}
	if u.Host == "" {
		return Endpoint{}, fmt.Errorf("endpoint %q has no host", redactURL(raw))
	}
	if u.Scheme == "" {
		if p := u.Port(); IsLocalHost(u.Host) && p != "" && p != "443" {
			u.Scheme = "http"
		} else {
			u.Scheme = "https"
		}
	}
	e := Endpoint{URL: u, Name: u.Host}
	if u.Host == "docker.io" {
		u.Host = HubHost
	}
	if u.Host == HubHost {
		e.Name = "docker.io"
	}
	switch u.Path {
	case "", "/", "/v2":
		u.Path = "/v2"
	default:
		e.OverridePath = true
	}
	return e, nil
}

// IsLocalHost reports whether host[:port] is localhost or a loopback IP
// (containerd's docker.IsLocalhost).
func IsLocalHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// APIRoot is the URL an engine puts /<repository>/manifests/<ref> after:
// the endpoint's path as written when it overrides the API root, /v2 after
// the host otherwise.
func (e Endpoint) APIRoot() string {
	u := *e.URL
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u.String()
}
