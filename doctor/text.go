package doctor

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/mirrorctl/mirrorctl/engines"
)

// WriteText prints the report for people: a summary table per engine and
// image with the result and the one-line fix, then per engine the state
// and the hosts in the order tried, then per endpoint the probes.
func WriteText(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENGINE\tIMAGE\tRESULT\tTHROUGH / CAUSE\tFIX")
	for _, e := range r.Engines {
		name := e.Engine
		if !e.Managed {
			name += " (unmanaged)"
		}
		for _, f := range e.State {
			if f.Level >= engines.Warn {
				fmt.Fprintf(tw, "%s\t(node)\t%s\t%s\t%s\n", name, f.Level, f.Cause, dash(oneLine(f.Fix)))
			}
		}
		for _, v := range e.Images {
			what := v.Via
			if v.Level != engines.OK {
				what = strings.TrimSpace(v.Cause + " " + v.Via)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, v.Image, v.Level, dash(what), dash(oneLine(v.Fix)))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range r.Engines {
		title := e.Engine
		if e.Version != "" {
			title += " " + e.Version
		}
		if !e.Managed {
			title += " (not managed: does not count)"
		}
		fmt.Fprintf(w, "\n== %s\n", title)
		for _, f := range e.State {
			writeFinding(w, "  ", f)
		}
		for _, v := range e.Images {
			fmt.Fprintf(w, "  %s  %s  (%s)\n", v.Image, v.Level, v.Client)
			for _, f := range v.Findings {
				if f.Level == engines.Fail && f.Cause == v.Cause {
					continue // the verdict below says it
				}
				writeFinding(w, "    ", f)
			}
			for i, rt := range v.Routes {
				kind := "upstream"
				if rt.Mirror {
					kind = "mirror"
				}
				var parts []string
				parts = append(parts, kind, strings.Join(rt.Capabilities, "+"))
				if rt.Auth != nil {
					realm := ""
					if !rt.Auth.Token {
						realm = ", not to token realms"
					}
					parts = append(parts, fmt.Sprintf("credentials %s via %s%s", rt.Auth.Name, rt.Auth.Via, realm))
				} else {
					parts = append(parts, "no credentials")
				}
				if rt.TLS != nil {
					parts = append(parts, tlsText(rt.TLS))
				}
				fmt.Fprintf(w, "    %d. %s  [%s]\n", i+1, rt.URL, strings.Join(parts, ", "))
				if i < len(v.Tries) {
					t := v.Tries[i]
					line := t.State
					if t.Finding != nil {
						line = fmt.Sprintf("%s %s: %s", t.Level, t.Finding.Cause, oneLine(t.Finding.Message))
					}
					fmt.Fprintf(w, "       -> %s\n", line)
					if t.Finding != nil && t.Finding.Fix != "" && t.Level >= engines.Warn {
						fmt.Fprintf(w, "          fix: %s\n", oneLine(t.Finding.Fix))
					}
					if t.Push != nil {
						fmt.Fprintf(w, "       -> push: %s %s: %s\n", t.Push.Level, t.Push.Cause, oneLine(t.Push.Message))
						if t.Push.Fix != "" && t.Push.Level >= engines.Warn {
							fmt.Fprintf(w, "          fix: %s\n", oneLine(t.Push.Fix))
						}
					}
				}
			}
			if v.Level == engines.OK {
				fmt.Fprintf(w, "    => OK: %s\n", oneLine(v.Summary))
			} else {
				fmt.Fprintf(w, "    => %s %s: %s\n", v.Level, v.Cause, oneLine(v.Summary))
				if v.Fix != "" {
					fmt.Fprintf(w, "       fix: %s\n", oneLine(v.Fix))
				}
			}
		}
	}
	if len(r.Endpoints) > 0 {
		fmt.Fprintln(w, "\n== endpoints (probed from this node)")
	}
	for _, ep := range r.Endpoints {
		fmt.Fprintf(w, "  %s\n", ep.URL)
		for _, s := range ep.Steps {
			ms := ""
			if s.Millis > 0 {
				ms = fmt.Sprintf(" (%.1f ms)", s.Millis)
			}
			fmt.Fprintf(w, "    %-8s %-4s %s%s\n", s.Name, s.Level, oneLine(s.Detail), ms)
		}
		for _, f := range ep.Findings {
			writeFinding(w, "    ", f)
		}
		for _, a := range ep.Access {
			who := "anonymous"
			if a.Creds != "" {
				who = fmt.Sprintf("configs.%q", a.Creds)
			}
			fmt.Fprintf(w, "    %s as %s: %s %s: %s\n", a.Image, who, a.Result.Level, a.Result.Cause, oneLine(a.Result.Message))
			for _, s := range []*Step{a.Token, a.Manifest, a.Push} {
				if s != nil {
					fmt.Fprintf(w, "      %-8s %-4s %s\n", s.Name, s.Level, oneLine(s.Detail))
				}
			}
			if a.Result.Level >= engines.Warn && a.Result.Fix != "" {
				fmt.Fprintf(w, "      fix: %s\n", oneLine(a.Result.Fix))
			}
			if a.PushResult != nil && a.PushResult.Level >= engines.Warn {
				fmt.Fprintf(w, "      push: %s %s: %s\n", a.PushResult.Level, a.PushResult.Cause, oneLine(a.PushResult.Message))
			}
		}
	}
	verdict := "every engine pulls every image through a mirror"
	if !r.OK {
		verdict = "not every engine pulls through a mirror (see FAIL above)"
	}
	_, err := fmt.Fprintf(w, "\n%s\n", verdict)
	return err
}

func writeFinding(w io.Writer, indent string, f engines.Finding) {
	fmt.Fprintf(w, "%s%s %s: %s\n", indent, f.Level, f.Cause, oneLine(f.Message))
	if f.Fix != "" && f.Level >= engines.Warn {
		fmt.Fprintf(w, "%s  fix: %s\n", indent, oneLine(f.Fix))
	}
}

func tlsText(t *engines.RouteTLS) string {
	var p []string
	if t.SkipVerify {
		p = append(p, "skip_verify")
	}
	if len(t.CA) > 0 {
		p = append(p, "ca "+strings.Join(t.CA, ","))
	}
	if len(t.Client) > 0 {
		p = append(p, "client "+strings.Join(t.Client, ","))
	}
	return "tls " + strings.Join(p, " ")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
