package doctor

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/spec"
)

// manifestTypes is what engines accept for a manifest.
const manifestTypes = "application/vnd.oci.image.index.v1+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json, " +
	"application/vnd.docker.distribution.manifest.v2+json, " +
	"application/vnd.oci.image.manifest.v1+json"

// accessReq is one image to fetch from an endpoint with one set of
// credentials.
type accessReq struct {
	img  engines.Image
	ns   string // the ?ns= query (mirrors)
	key  string // configs: key, "" for anonymous
	push bool
}

// exchange is what a fetch observed, for the classifier.
type exchange struct {
	host      string
	root      string // the API root path used
	repo, ref string
	creds     string // `configs."…"` or ""
	challenge *Challenge
	// tokenAnswer is the token request's answer (Bearer), token what it held.
	tokenAnswer *answer
	tokenErr    error
	token       *tokenFacts
	final       answer
}

// access fetches one image's manifest as an engine does: unauthenticated
// first, then answering the challenge (Basic with the credentials, or a
// token from the realm), and classifies the outcome. An endpoint whose
// path is not the API root is tried once more with /v2 added or removed,
// to name the fix.
func (p *prober) access(ctx context.Context, c *conn, r accessReq) *Access {
	a := &Access{Image: r.img.String(), Creds: r.key}
	var cfg *spec.Config
	if r.key != "" {
		cfg = p.spec.Configs[r.key]
	}
	x := p.fetch(ctx, c, c.u.Path, r, cfg, a)
	a.Result = classify(x)
	switch a.Result.Cause {
	case "not_api_root", "html_page", "image_not_found":
		if c.u.Path != "/v2" && c.u.Path != "" {
			p.otherRoot(ctx, c, r, cfg, a)
		}
	}
	if r.push {
		pr := p.pushProbe(ctx, c, r, cfg, a)
		a.PushResult = &pr
	}
	return a
}

// otherRoot tries an endpoint whose path answered as no registry would
// with /v2 added (Nexus's /repository/<name> used verbatim) or removed
// (Harbor's /v2/<project> with /v2 appended for lack of override_path);
// when the registry API answers there, that is the cause and the fix.
func (p *prober) otherRoot(ctx context.Context, c *conn, r accessReq, cfg *spec.Config, a *Access) {
	alt, cause := strings.TrimSuffix(c.u.Path, "/")+"/v2", "missing_v2"
	altURL := strings.TrimSuffix(c.u.String(), "/") + "/v2"
	fix := fmt.Sprintf("end the endpoint in /v2 (%s): the spec takes any other path as it is (override_path)", altURL)
	if strings.HasSuffix(c.u.Path, "/v2") {
		alt, cause = strings.TrimSuffix(c.u.Path, "/v2"), "extra_v2"
		altURL = strings.TrimSuffix(c.u.String(), "/v2")
		fix = fmt.Sprintf("this API root takes no /v2: write the endpoint as %s in the spec (mirrorctl sets override_path), or set override_path in a hand-written engine file", altURL)
	}
	if alt == "" {
		return
	}
	y := p.fetch(ctx, c, alt, r, cfg, &Access{})
	if answeredAsRegistry(y.final) && (y.final.ok() || a.Result.Cause != "image_not_found") {
		a.Result = engines.Finding{Level: engines.Fail, Cause: cause, Fix: fix,
			Message: fmt.Sprintf("%s (the registry API answers at %s)", a.Result.Message, altURL)}
	}
}

// answeredAsRegistry reports an answer only a registry API gives: a
// manifest, a challenge, or an error document.
func answeredAsRegistry(a answer) bool {
	if a.err != nil || a.isHTML() {
		return false
	}
	if a.ok() || (a.status == http.StatusUnauthorized && a.header.Get("WWW-Authenticate") != "") {
		return true
	}
	_, _, ok := a.registryError()
	return ok
}

func apiURL(c *conn, root string, elem ...string) string {
	u := *c.u
	u.Path = strings.TrimSuffix(root, "/") + "/" + strings.Join(elem, "/")
	u.RawPath = ""
	return u.String()
}

// fetch HEADs the manifest, answers the challenge, and GETs an error to read
// its body.
func (p *prober) fetch(ctx context.Context, c *conn, root string, r accessReq, cfg *spec.Config, a *Access) *exchange {
	x := &exchange{host: c.u.Host, root: root, repo: r.img.Repository, ref: r.img.Reference}
	if r.key != "" {
		x.creds = fmt.Sprintf("configs.%q", r.key)
	}
	mu := apiURL(c, root, r.img.Repository, "manifests", r.img.Reference)
	if r.ns != "" {
		mu += "?" + url.Values{"ns": {r.ns}}.Encode()
	}
	hdr := http.Header{"Accept": {manifestTypes}}
	first := c.client.do(ctx, http.MethodHead, mu, hdr, nil)
	x.final = first
	if first.err == nil && first.status == http.StatusUnauthorized {
		if auth, ok := p.answer(ctx, c, first, x, "repository:"+r.img.Repository+":pull", cfg, a); ok {
			hdr.Set("Authorization", auth)
			x.final = c.client.do(ctx, http.MethodHead, mu, hdr, nil)
		}
	}
	if x.final.err == nil && !x.final.ok() {
		if g := c.client.do(ctx, http.MethodGet, mu, hdr, nil); g.err == nil && g.status == x.final.status {
			x.final = g
		}
	}
	a.Manifest = &Step{Name: "manifest", Level: engines.OK, Detail: manifestDetail(root, r.img, x.final)}
	if !x.final.ok() || x.final.isHTML() {
		a.Manifest.Level = engines.Fail
	}
	return x
}

func manifestDetail(root string, img engines.Image, a answer) string {
	p := strings.TrimSuffix(root, "/") + "/" + img.Repository + "/manifests/" + img.Reference
	if a.err != nil {
		return fmt.Sprintf("HEAD %s: %v", p, a.err)
	}
	d := fmt.Sprintf("HEAD %s: %d", p, a.status)
	if dg := a.header.Get("Docker-Content-Digest"); dg != "" && a.ok() {
		d += " " + dg
	}
	if ct := a.header.Get("Content-Type"); ct != "" {
		d += " (" + ct + ")"
	}
	return d
}

// answer answers a 401's challenge: the Authorization value to retry with,
// or false when there is nothing to retry with.
func (p *prober) answer(ctx context.Context, c *conn, resp answer, x *exchange, scope string, cfg *spec.Config, a *Access) (string, bool) {
	var ch *Challenge
	for _, y := range parseChallenges(resp.header) {
		if y.Scheme == "bearer" || (y.Scheme == "basic" && ch == nil) {
			ch = &y
		}
	}
	x.challenge = ch
	switch {
	case ch == nil:
		return "", false
	case ch.Scheme == "basic":
		b := basicHeader(cfg)
		return b, b != ""
	case ch.Scheme != "bearer":
		return "", false
	}
	tu, err := tokenURL(*ch, scope)
	if err != nil {
		x.tokenErr = err
		a.Token = &Step{Name: "token", Level: engines.Fail, Detail: err.Error()}
		return "", false
	}
	hdr := http.Header{}
	if b := basicHeader(cfg); b != "" {
		hdr.Set("Authorization", b)
	}
	t := c.client.do(ctx, http.MethodGet, tu, hdr, nil)
	x.tokenAnswer = &t
	who := "anonymous"
	if x.creds != "" {
		who = "with " + x.creds
	}
	realm := redactQuery(ch.Realm)
	switch {
	case t.err != nil:
		x.tokenErr = t.err
		a.Token = &Step{Name: "token", Level: engines.Fail, Detail: fmt.Sprintf("GET %s (%s): %v", realm, who, t.err)}
		return "", false
	case !t.ok():
		a.Token = &Step{Name: "token", Level: engines.Fail, Detail: fmt.Sprintf("GET %s (%s): %d %s", realm, who, t.status, t.snippet())}
		return "", false
	}
	f, err := readToken(t.body, x.repo)
	if err != nil {
		x.tokenErr = err
		a.Token = &Step{Name: "token", Level: engines.Fail, Detail: fmt.Sprintf("GET %s (%s): %v", realm, who, err)}
		return "", false
	}
	x.token = &f
	d := fmt.Sprintf("GET %s (%s): 200", realm, who)
	if f.jwt {
		sub := f.subject
		if sub == "" {
			sub = "anonymous"
		}
		d += fmt.Sprintf(", a token for %s granting %s on %s", sub, actionList(f.actions), x.repo)
	}
	a.Token = &Step{Name: "token", Level: engines.OK, Detail: d}
	return "Bearer " + f.token, true
}

func actionList(a []string) string {
	if len(a) == 0 {
		return "nothing"
	}
	return strings.Join(a, ",")
}

// redactQuery drops a realm's query: it may carry an account name.
func redactQuery(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	u.RawQuery, u.User = "", nil
	return u.String()
}

// pushProbe starts a blob upload as a push would, and cancels it.
func (p *prober) pushProbe(ctx context.Context, c *conn, r accessReq, cfg *spec.Config, a *Access) engines.Finding {
	pu := apiURL(c, c.u.Path, r.img.Repository, "blobs", "uploads") + "/"
	if r.ns != "" {
		pu += "?" + url.Values{"ns": {r.ns}}.Encode()
	}
	hdr := http.Header{"Content-Length": {"0"}}
	post := func() answer { return c.client.do(ctx, http.MethodPost, pu, hdr, nil) }
	resp := post()
	x := &exchange{host: c.u.Host, repo: r.img.Repository}
	if resp.err == nil && resp.status == http.StatusUnauthorized {
		tmp := &Access{}
		if auth, ok := p.answer(ctx, c, resp, x, "repository:"+r.img.Repository+":pull,push", cfg, tmp); ok {
			hdr.Set("Authorization", auth)
			resp = post()
		}
	}
	a.Push = &Step{Name: "push", Level: engines.OK}
	switch {
	case resp.err != nil:
		a.Push.Level, a.Push.Detail = engines.Fail, fmt.Sprintf("POST blobs/uploads/: %v", resp.err)
		return engines.Finding{Level: engines.Warn, Cause: "push_failed", Message: "starting an upload failed: " + resp.err.Error(), Fix: "check the mirror"}
	case resp.status == http.StatusAccepted:
		a.Push.Detail = "POST blobs/uploads/: 202 (upload started and cancelled)"
		if loc := resp.header.Get("Location"); loc != "" {
			if lu, err := c.u.Parse(loc); err == nil {
				del := http.Header{}
				if v := hdr.Get("Authorization"); v != "" {
					del.Set("Authorization", v)
				}
				c.client.do(ctx, http.MethodDelete, lu.String(), del, nil)
			}
		}
		return engines.Finding{Level: engines.OK, Cause: "push_ok", Message: "the mirror accepts pushes to " + r.img.Repository}
	}
	a.Push.Level = engines.Fail
	a.Push.Detail = fmt.Sprintf("POST blobs/uploads/: %d %s", resp.status, resp.snippet())
	why := fmt.Sprintf("%d", resp.status)
	if code, msg, ok := resp.registryError(); ok {
		why = fmt.Sprintf("%d %s: %s", resp.status, code, msg)
	}
	return engines.Finding{Level: engines.Warn, Cause: "push_refused",
		Message: fmt.Sprintf("the mirror refuses pushes to %s (%s), but its capabilities include push", r.img.Repository, why),
		Fix:     "drop push from this mirror's capabilities (a Nexus group repository is read-only without Pro) and push to a hosted repository"}
}
