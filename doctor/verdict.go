package doctor

import (
	"cmp"
	"fmt"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/spec"
)

// verdict walks an engine's routes for an image in order, as the engine
// does: the first mirror that serves the image is where the pull goes; a
// failing one sends it to the next host; reaching the registry itself
// means the pull bypasses the mirrors.
func verdict(rt engines.Routing, who string, eps map[string]*Endpoint, s *spec.Spec) Verdict {
	v := Verdict{Routing: rt, Tries: []Try{}}
	if v.Routes == nil {
		v.Routes = []engines.Route{}
	}
	need := "resolve"
	if rt.Image.IsDigest() {
		need = "pull"
	}
	var first *engines.Finding
	mirrors, done := 0, false
	for _, r := range rt.Routes {
		t := Try{URL: r.URL}
		switch {
		case done:
			t.Level, t.State = engines.Info, "not tried"
		case !r.Mirror:
			t.Level, t.State, done = engines.Warn, "upstream", true
			v.Level = engines.Fail
			if mirrors == 0 {
				v.Cause = "no_mirror"
				v.Summary = fmt.Sprintf("%s contacts %s itself: no mirror for %s", who, r.URL, rt.Image.Registry)
				v.Fix = fmt.Sprintf("add a mirror for %s to the spec and run mirrorctl sync", rt.Image.Registry)
			} else {
				v.Cause, v.Fix = first.Cause, first.Fix
				v.Summary = fmt.Sprintf("every mirror failed, so %s falls back to %s; first failure: %s", who, r.URL, first.Message)
			}
		case !r.Can(need):
			t.Level, t.State = engines.Info, "skipped"
			t.Finding = &engines.Finding{Level: engines.Info, Cause: "capability", Message: fmt.Sprintf("capabilities %v lack %s: not used for this image", r.Capabilities, need)}
		default:
			mirrors++
			f, push := evaluate(rt, who, r, eps[r.URL], s)
			t.Finding, t.Push, t.Level = &f, push, f.Level
			if f.Level == engines.Fail {
				t.State = "failed"
				if first == nil {
					first = t.Finding
				}
				break
			}
			t.State, done, v.Via = "ok", true, r.URL
			v.Level = f.Level
			if f.Level != engines.Warn {
				v.Level = engines.OK
			}
			v.Summary = fmt.Sprintf("%s pulls %s through %s", who, rt.Image, r.URL)
			if first != nil {
				v.Level, v.Cause, v.Fix = engines.Warn, first.Cause, first.Fix
				v.Summary += fmt.Sprintf(", after a failing mirror (%s)", first.Message)
			} else if f.Level == engines.Warn {
				v.Cause, v.Fix = f.Cause, f.Fix
				v.Summary += " (" + f.Message + ")"
			}
		}
		v.Tries = append(v.Tries, t)
	}
	if !done {
		v.Level = engines.Fail
		if first != nil {
			v.Cause, v.Fix = first.Cause, first.Fix
			v.Summary = fmt.Sprintf("every host failed, so the pull fails; first failure: %s", first.Message)
		} else {
			v.Cause, v.Summary = "no_host", fmt.Sprintf("%s has no host to contact for %s", who, rt.Image)
		}
	}
	// A failing fact of the engine (a file it cannot load, a registry it
	// never mirrors) is the better explanation of what the walk shows.
	for _, f := range rt.Findings {
		if f.Level == engines.Fail {
			v.Level, v.Cause, v.Fix = engines.Fail, f.Cause, f.Fix
			v.Summary = f.Message
			break
		}
	}
	return v
}

// evaluate judges one mirror route from its endpoint's probes, with the
// credentials the engine really sends there.
func evaluate(rt engines.Routing, who string, r engines.Route, ep *Endpoint, s *spec.Spec) (engines.Finding, *engines.Finding) {
	if ep == nil {
		return engines.Finding{Level: engines.Warn, Cause: "not_probed", Message: r.URL + " was not probed"}, nil
	}
	if f := ep.failed(); f != nil {
		return *f, nil
	}
	img := rt.Image.String()
	key, replaced := "", false
	switch {
	case r.Auth == nil:
	case r.Auth.Key == "":
	case !r.Auth.Token && ep.Challenge != nil && ep.Challenge.Scheme == "bearer":
		replaced = true
	default:
		key = r.Auth.Key
	}
	acc := ep.access(img, key)
	if acc == nil {
		return engines.Finding{Level: engines.Warn, Cause: "not_probed", Message: fmt.Sprintf("%s was not fetched from %s", img, r.URL)}, nil
	}
	f := acc.Result
	var push *engines.Finding
	if r.Can("push") {
		push = acc.PushResult
	}
	switch {
	case r.Auth != nil && r.Auth.Key == "":
		// Credentials the spec does not hold cannot be tried: say what
		// the mirror does without them.
		f = engines.Finding{Level: engines.Warn, Cause: "credentials_not_from_spec",
			Message: fmt.Sprintf("%s sends %s (%s), which are not the spec's and were not checked; anonymously: %s", who, r.Auth.Name, r.Auth.Via, f.Message),
			Fix:     "mirrorctl sync writes the spec's credentials"}
	case f.Level != engines.Fail:
		for _, w := range ep.Findings {
			if w.Level == engines.Warn && f.Level == engines.OK {
				f = w // it works, but not as it should (skip_verify, an expiring certificate)
			}
		}
	case replaced:
		f = engines.Finding{Level: engines.Fail, Cause: "header_not_sent_to_realm",
			Message: fmt.Sprintf("%s sends %s (%s) to the registry but not to its token realm %s; the realm answers anonymously and that token replaces the header: %s",
				who, r.Auth.Name, r.Auth.Via, redactQuery(ep.Challenge.Realm), f.Message),
			Fix: cmp.Or(r.Auth.TokenFix, "send the credentials in a form that reaches the token realm")}
	case r.Auth == nil && isAuthCause(f.Cause):
		if k, c := configFor(s, hostOf(r.URL)); c != nil && c.Auth != nil {
			with := ep.access(img, k)
			also := ""
			if with != nil && with.Result.Level == engines.OK {
				also = fmt.Sprintf("; with configs.%q it works", k)
			}
			f = engines.Finding{Level: engines.Fail, Cause: "credentials_not_sent",
				Message: fmt.Sprintf("%s sends no credentials to %s, which the spec has as configs.%q: %s%s", who, r.URL, k, f.Message, also),
				Fix:     cmp.Or(r.AuthFix, fmt.Sprintf("run mirrorctl sync: it writes configs.%q where %s reads it", k, rt.Engine))}
		} else if r.AuthFix != "" {
			f.Fix = r.AuthFix
		}
	}
	return f, push
}

func isAuthCause(c string) bool {
	switch c {
	case "credentials_required", "anonymous_pull_off", "forbidden", "unauthorized":
		return true
	}
	return false
}

func hostOf(u string) string {
	ep := &Endpoint{URL: u}
	return ep.host()
}
