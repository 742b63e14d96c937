package doctor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/spec"
)

// Target is one engine on the node.
type Target struct {
	Engine    engines.Engine
	Detection engines.Detection
	Host      engines.Host
	// Owed is an activation an earlier sync left undone (state.json).
	Owed *engines.Activation
	// Changes is how many files mirrorctl sync would change for it.
	Changes int
}

// managed: an engine found on the node that the spec turns off is shown,
// but does not decide the exit status.
func (t Target) managed() bool { return t.Detection.Managed }

// Options configure a run.
type Options struct {
	Spec    *spec.Spec
	Images  []engines.Image
	Targets []Target
	// Resolve turns a daemon's socket (a host path) into a path to dial.
	Resolve func(hostPath string) (string, error)
	// ProbeTimeout bounds each network step and each daemon question.
	ProbeTimeout time.Duration
	// Parallel bounds how many endpoints are probed at once.
	Parallel int
	Log      *slog.Logger
	// Now is the clock certificates are judged at; Lookup resolves names;
	// Proxy picks a proxy for a request. Zero values: the system's.
	Now    func() time.Time
	Lookup func(ctx context.Context, host string) ([]string, error)
	Proxy  func(*http.Request) (*url.URL, error)
}

// Run diagnoses the node. ctx bounds the whole run: when it ends, probes
// still running stop and report it.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Spec == nil {
		o.Spec = &spec.Spec{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.ProbeTimeout = cmp.Or(o.ProbeTimeout, 5*time.Second)
	o.Parallel = cmp.Or(o.Parallel, 8)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Lookup == nil {
		var r net.Resolver
		o.Lookup = r.LookupHost
	}
	if o.Proxy == nil {
		o.Proxy = http.ProxyFromEnvironment
	}
	if len(o.Images) == 0 {
		return nil, errors.New("no image to check: give images, or a spec with mirrors")
	}
	rep := &Report{Engines: []EngineReport{}, Endpoints: []*Endpoint{}}
	work := map[string][]accessReq{}
	fallback := map[string]bool{} // endpoints an engine retries over plain HTTP
	var order []string            // endpoints as the engines' routes first name them
	routings := make([][]engines.Routing, len(o.Targets))
	for i, t := range o.Targets {
		if _, ok := t.Engine.(engines.Router); !ok {
			continue
		}
		for _, rt := range routesOfAll(ctx, t, o.Images, o.Spec) {
			routings[i] = append(routings[i], rt)
			for _, r := range rt.Routes {
				if r.Mirror {
					k := endpointKey(r)
					if _, seen := work[k]; !seen {
						order = append(order, k)
					}
					work[k] = addRequests(work[k], o.Spec, r.Requested(rt.Image), r)
					fallback[k] = r.HTTPFallback
				}
			}
		}
	}
	state := make([][]engines.Finding, len(o.Targets))
	var wg sync.WaitGroup
	for i, t := range o.Targets {
		in, ok := t.Engine.(engines.Inspector)
		if !ok || o.Resolve == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ictx, cancel := context.WithTimeout(ctx, o.ProbeTimeout)
			defer cancel()
			state[i] = in.Inspect(ictx, t.Host, t.Detection, o.Spec, o.Resolve)
		}()
	}
	eps := probeAll(ctx, o, work, fallback)
	wg.Wait()
	for _, u := range order {
		rep.Endpoints = append(rep.Endpoints, eps[u])
	}
	for i, t := range o.Targets {
		if _, ok := t.Engine.(engines.Router); !ok {
			continue
		}
		d := t.Detection
		who := d.Engine
		if d.Version != "" {
			who += " " + d.Version
		}
		er := EngineReport{Engine: d.Engine, Version: d.Version, Managed: t.managed(), State: []engines.Finding{}, Images: []Verdict{}}
		if t.Owed != nil {
			f := engines.Finding{Level: engines.Warn, Cause: "owed_activation",
				Message: fmt.Sprintf("an earlier sync wrote files that need %s %s (%s), not done yet", t.Owed.Disruption, t.Owed.Unit, t.Owed.Reason),
				Fix:     "mirrorctl sync performs it"}
			if slices.ContainsFunc(state[i], func(f engines.Finding) bool { return f.Cause == "daemon_matches_files" }) {
				// Done by hand: the daemon runs with the files.
				f.Level, f.Fix = engines.Info, ""
				f.Message = fmt.Sprintf("state.json still owes %s %s, but the daemon already runs with the files; the next sync forgets it", t.Owed.Disruption, t.Owed.Unit)
			}
			er.State = append(er.State, f)
		}
		if t.Changes > 0 {
			er.State = append(er.State, engines.Finding{Level: engines.Warn, Cause: "files_differ",
				Message: fmt.Sprintf("mirrorctl sync would change %d file(s) of %s: the routes below are the files as they are, not the spec", t.Changes, d.Engine),
				Fix:     "mirrorctl sync"})
		}
		er.State = append(er.State, state[i]...)
		for _, rt := range routings[i] {
			er.Images = append(er.Images, verdict(rt, cmp.Or(rt.Who, who), eps, o.Spec))
		}
		if !er.Managed {
			er.State = append([]engines.Finding{{Level: engines.Info, Cause: "not_managed",
				Message: fmt.Sprintf("%s is on the node but mirrorctl does not manage it (%s): its results do not count", d.Engine, d.Reason)}}, er.State...)
		}
		rep.Engines = append(rep.Engines, er)
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("doctor stopped before it finished: %w", err)
	}
	rep.settle()
	return rep, nil
}

// routesOfAll asks an engine for its routes to every image: once for all
// of them when it reads its files once (a BatchRouter), else image by
// image.
func routesOfAll(ctx context.Context, t Target, imgs []engines.Image, s *spec.Spec) []engines.Routing {
	if br, ok := t.Engine.(engines.BatchRouter); ok {
		rts, err := br.RoutesFor(ctx, imgs, t.Host, t.Detection, s)
		out := make([]engines.Routing, 0, len(imgs))
		for i, img := range imgs {
			if err != nil {
				out = append(out, unknownRoutes(t, img, err))
				continue
			}
			out = append(out, rts[i]...)
		}
		return out
	}
	var out []engines.Routing
	for _, img := range imgs {
		out = append(out, routesOf(ctx, t, img, s)...)
	}
	return out
}

// unknownRoutes is the Routing of an engine whose files could not be read.
func unknownRoutes(t Target, img engines.Image, err error) engines.Routing {
	return engines.Routing{Engine: t.Engine.Name(), Image: img, Findings: []engines.Finding{{Level: engines.Fail,
		Cause: "routes_unknown", Message: err.Error(), Fix: "fix the file named"}}}
}

// routesOf asks an engine for its routes to img: one Routing per client
// for an engine with several (a ClientRouter), else one.
func routesOf(ctx context.Context, t Target, img engines.Image, s *spec.Spec) []engines.Routing {
	var rts []engines.Routing
	var err error
	if cr, ok := t.Engine.(engines.ClientRouter); ok {
		rts, err = cr.ClientRoutes(ctx, img, t.Host, t.Detection, s)
	} else {
		var rt engines.Routing
		rt, err = t.Engine.(engines.Router).Routes(ctx, img, t.Host, t.Detection, s)
		rts = []engines.Routing{rt}
	}
	if err != nil {
		return []engines.Routing{unknownRoutes(t, img, err)}
	}
	return rts
}

// addRequests adds what an engine's route needs fetched from its endpoint:
// the image anonymously, with the credentials the engine sends, with the
// spec's credentials for the host (to tell "not sent" from "wrong"), and a
// push when the route may push.
func addRequests(reqs []accessReq, s *spec.Spec, img engines.Image, r engines.Route) []accessReq {
	keys := []string{""}
	if r.Auth != nil && r.Auth.Key != "" {
		keys = append(keys, r.Auth.Key)
	}
	if k, c := configFor(s, hostOf(r.URL)); c != nil && c.Auth != nil {
		keys = append(keys, k)
	}
	pushKey := ""
	if r.Auth != nil {
		pushKey = r.Auth.Key
	}
	for _, k := range keys {
		i := slices.IndexFunc(reqs, func(q accessReq) bool { return q.img.String() == img.String() && q.key == k })
		if i < 0 {
			reqs = append(reqs, accessReq{img: img, ns: r.Namespace, key: k})
			i = len(reqs) - 1
		}
		if r.Can("push") && k == pushKey {
			reqs[i].push = true
		}
	}
	return reqs
}

// endpointKey names a mirror endpoint as an engine reaches it: an engine
// that accepts any certificate and retries over plain HTTP (an insecure
// registry) is answered by a probe of its own, so that its leniency never
// makes another engine's verdict on the same URL look better.
func endpointKey(r engines.Route) string {
	if r.HTTPFallback {
		return r.URL + " (insecure)"
	}
	return r.URL
}

// probeAll probes every endpoint, Parallel at a time.
func probeAll(ctx context.Context, o Options, work map[string][]accessReq, fallback map[string]bool) map[string]*Endpoint {
	p := &prober{spec: o.Spec, timeout: o.ProbeTimeout, now: o.Now, lookup: o.Lookup, proxy: o.Proxy,
		dialer: &net.Dialer{KeepAlive: -1}}
	p.elapsed = func(start time.Time) time.Duration { return o.Now().Sub(start) }
	out := map[string]*Endpoint{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, o.Parallel)
	for _, u := range slices.Sorted(maps.Keys(work)) { // the order probes start in
		ep := &Endpoint{URL: strings.TrimSuffix(u, " (insecure)"), Insecure: fallback[u], Steps: []Step{}, Access: []*Access{}}
		out[u] = ep
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				ep.fail("interrupted", "", "not probed: %v", ctx.Err())
				return
			}
			defer func() { <-sem }()
			o.Log.Debug("probing endpoint", "url", u)
			c := p.connect(ctx, ep, fallback[u])
			if fallback[u] && !c.answered() {
				c = p.httpFallback(ctx, ep, c)
			}
			if c == nil {
				return
			}
			defer c.client.close()
			reqs := work[u]
			sort.SliceStable(reqs, func(i, j int) bool {
				if reqs[i].img.String() != reqs[j].img.String() {
					return reqs[i].img.String() < reqs[j].img.String()
				}
				return reqs[i].key < reqs[j].key
			})
			for _, r := range reqs {
				a := p.access(ctx, c, r)
				mu.Lock()
				ep.Access = append(ep.Access, a)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// DefaultImages is one image per registry the spec mirrors ("*" has no
// name to pull): repository (e.g. "library/busybox:latest") under each.
func DefaultImages(s *spec.Spec, repository string) ([]engines.Image, error) {
	var out []engines.Image
	for _, reg := range slices.Sorted(maps.Keys(s.Mirrors)) {
		if reg == "*" {
			continue
		}
		img, err := engines.ParseImage(reg + "/" + strings.TrimPrefix(repository, "/"))
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}
