// Package doctor answers "why does this pull not go through my mirror?":
// per engine on the node, the hosts it will really contact for an image and
// with which credentials (from the engines' Routers), per mirror endpoint
// what the node sees on the network (DNS, TCP, TLS, the /v2/ challenge, a
// token, the manifest), and the state of the engines' daemons against their
// files (the engines' Inspectors). Every failure is classified with its
// likely cause and the fix. It knows no engine: engine facts come from
// package engines; this package probes and classifies.
package doctor

import (
	"github.com/mirrorctl/mirrorctl/engines"
)

// Report is the whole diagnosis. Its JSON form is `mirrorctl doctor -o json`.
type Report struct {
	Engines   []EngineReport `json:"engines"`
	Endpoints []*Endpoint    `json:"endpoints"`
	// OK: every engine pulls every image through a mirror.
	OK bool `json:"ok"`
}

// EngineReport is one engine: its state and what it does per image.
type EngineReport struct {
	Engine  string `json:"engine"`
	Version string `json:"version,omitempty"`
	// Managed is false for an engine found on the node that the spec turns
	// off: it is reported, but does not make the report fail.
	Managed bool `json:"managed"`
	// State are the findings about the daemon against its files, and
	// about mirrorctl's own record (a restart owed, files to sync).
	State  []engines.Finding `json:"state"`
	Images []Verdict         `json:"images"`
}

// Verdict is what one engine does for one image.
type Verdict struct {
	engines.Routing
	// Level is OK when the pull goes through a mirror (WARN: through a
	// later mirror than the first, or unverified), FAIL otherwise.
	Level engines.Level `json:"level"`
	// Via is the mirror the pull goes through; "" when none.
	Via string `json:"via,omitempty"`
	// Summary says in one line what happens; Cause and Fix are the first
	// failure's, when the result is not OK.
	Summary string `json:"summary"`
	Cause   string `json:"cause,omitempty"`
	Fix     string `json:"fix,omitempty"`
	// Tries is the outcome per route, in the order of Routes.
	Tries []Try `json:"tries"`
}

// Try is one route's outcome for the engine.
type Try struct {
	URL   string        `json:"url"`
	Level engines.Level `json:"level"`
	// State: "ok", "failed", "unverified", "not tried", "upstream".
	State   string           `json:"state"`
	Finding *engines.Finding `json:"finding,omitempty"`
	// Push is the push probe's finding when the route may push.
	Push *engines.Finding `json:"push,omitempty"`
}

// Endpoint is one mirror URL as the node sees it.
type Endpoint struct {
	URL string `json:"url"`
	// Insecure: probed as an engine that accepts any certificate and
	// retries over plain HTTP reaches it (an insecure registry); the
	// same URL reached strictly is another Endpoint.
	Insecure bool `json:"insecure,omitempty"`
	// Steps are dns, tcp, tls and api (the /v2/ challenge), in order; a
	// failed step ends the list, unless the engine falls back to plain
	// HTTP: then a fallback step and the same steps over HTTP follow.
	Steps []Step `json:"steps"`
	// Fallback is the plain-HTTP URL probed after HTTPS failed, for an
	// engine that falls back to it (Route.HTTPFallback).
	Fallback  string     `json:"fallback,omitempty"`
	Challenge *Challenge `json:"challenge,omitempty"`
	// Access is one image fetched with one set of credentials.
	Access []*Access `json:"access"`
	// Findings are the endpoint's own (connection, TLS, API root).
	Findings []engines.Finding `json:"findings,omitempty"`
}

// Step is one probe.
type Step struct {
	Name   string        `json:"name"`
	Level  engines.Level `json:"level"`
	Detail string        `json:"detail"`
	// Millis is how long it took (dns, tcp, tls).
	Millis float64 `json:"ms,omitempty"`
}

// Challenge is a registry's answer to an unauthenticated GET /v2/.
type Challenge struct {
	Status  int    `json:"status"`
	Scheme  string `json:"scheme,omitempty"` // "basic", "bearer", "" (open)
	Realm   string `json:"realm,omitempty"`
	Service string `json:"service,omitempty"`
}

// Access is one image fetched from one endpoint with one set of
// credentials (Creds "" is anonymous).
type Access struct {
	Image string `json:"image"`
	Creds string `json:"creds"` // a configs: key, "" for none
	// Token is the token request (Bearer registries), Manifest the HEAD of
	// the manifest, Push the start of a blob upload (when asked).
	Token    *Step `json:"token,omitempty"`
	Manifest *Step `json:"manifest,omitempty"`
	Push     *Step `json:"push,omitempty"`
	// Result is the classified outcome of the pull; PushResult of the push.
	Result     engines.Finding  `json:"result"`
	PushResult *engines.Finding `json:"push_result,omitempty"`
}

// access finds an endpoint's access for an image and credentials.
func (e *Endpoint) access(image, creds string) *Access {
	for _, a := range e.Access {
		if a.Image == image && a.Creds == creds {
			return a
		}
	}
	return nil
}

// failed reports the endpoint's first failed connection step.
func (e *Endpoint) failed() *engines.Finding {
	for i := range e.Findings {
		if e.Findings[i].Level == engines.Fail {
			return &e.Findings[i]
		}
	}
	return nil
}

// ExitCode is 0 when every engine pulls every image through a mirror and
// no engine's state fails, 1 otherwise.
func (r *Report) ExitCode() int {
	if r.OK {
		return 0
	}
	return 1
}

func (r *Report) settle() {
	r.OK = true
	for _, e := range r.Engines {
		if !e.Managed {
			continue
		}
		for _, f := range e.State {
			if f.Level == engines.Fail {
				r.OK = false
			}
		}
		for _, v := range e.Images {
			if v.Level == engines.Fail {
				r.OK = false
			}
		}
	}
}
