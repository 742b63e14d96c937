package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/render"
)

// The JSON shapes of plan, sync and detect output. Field names are part of
// the CLI contract.
type jsonPlan struct {
	Pending  bool         `json:"pending"`
	Engines  []jsonEngine `json:"engines"`
	Warnings []string     `json:"warnings"`
}

type jsonEngine struct {
	Name       string            `json:"name"`
	Found      bool              `json:"found"`
	Managed    bool              `json:"managed"`
	Version    string            `json:"version,omitempty"`
	Reason     string            `json:"reason,omitempty"`
	Unit       string            `json:"unit,omitempty"`
	Socket     string            `json:"socket,omitempty"`
	Paths      []string          `json:"paths,omitempty"`
	Extra      map[string]string `json:"extra,omitempty"`
	Files      []jsonFile        `json:"files,omitempty"`
	Disruption string            `json:"disruption,omitempty"`
	Reason2    string            `json:"activation_reason,omitempty"`
}

type jsonFile struct {
	Path string `json:"path"`
	Op   string `json:"op"`
	Diff string `json:"diff,omitempty"`
}

func detectionJSON(d engines.Detection) jsonEngine {
	return jsonEngine{Name: d.Engine, Found: d.Found, Managed: d.Managed, Version: d.Version, Reason: d.Reason,
		Unit: d.Unit, Socket: d.Socket, Paths: d.Paths, Extra: d.Extra}
}

// detectLine is the one-line summary logged by every command, e.g.
// "containerd=yes(1.6.20) docker=no k3s=no crictl=yes".
func detectLine(p *plan.Plan) string {
	var parts []string
	for _, e := range p.Engines {
		d := e.Detection
		s := d.Engine + "="
		switch {
		case d.Managed && d.Version != "":
			s += "yes(" + d.Version + ")"
		case d.Managed:
			s += "yes"
		case d.Found:
			s += "found,unmanaged"
		default:
			s += "no"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func planJSON(p *plan.Plan, withDiff bool) (jsonPlan, error) {
	out := jsonPlan{Pending: p.Pending(), Warnings: []string{}}
	for _, e := range p.Engines {
		je := detectionJSON(e.Detection)
		for _, c := range e.Changes {
			jf := jsonFile{Path: c.File.Path, Op: string(c.Op)}
			if withDiff {
				d, err := render.Diff(c, p.Redactor)
				if err != nil {
					return out, err
				}
				jf.Diff = d
			}
			je.Files = append(je.Files, jf)
		}
		if e.Pending() {
			je.Disruption = e.Action.Disruption.String()
			je.Reason2 = e.Action.Reason
		}
		for _, w := range e.Warnings {
			out.Warnings = append(out.Warnings, p.Redactor.String(w.String()))
		}
		out.Engines = append(out.Engines, je)
	}
	return out, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printPlanText prints warnings, a diff per changed file and the disruption
// per engine.
func printPlanText(w io.Writer, p *plan.Plan, withDiff bool) error {
	for _, e := range p.Engines {
		for _, wn := range e.Warnings {
			fmt.Fprintln(w, "warning: "+p.Redactor.String(wn.String()))
		}
	}
	for _, e := range p.Managed() {
		for _, c := range e.Changes {
			if !c.Changed() || !withDiff {
				continue
			}
			d, err := render.Diff(c, p.Redactor)
			if err != nil {
				return err
			}
			fmt.Fprint(w, d)
		}
	}
	for _, e := range p.Managed() {
		if !e.Pending() {
			fmt.Fprintf(w, "%s: up to date\n", e.Detection.Engine)
			continue
		}
		fmt.Fprintf(w, "%s: %d file(s) to change; activation: %s", e.Detection.Engine, len(e.ChangedPaths()), describeAction(e.Action))
		fmt.Fprintln(w)
	}
	if len(p.Managed()) == 0 {
		fmt.Fprintln(w, "no engine to manage: none detected (use --engines or engines.<name>.enabled: true)")
	}
	return nil
}

func describeAction(a engines.Action) string {
	switch a.Disruption {
	case engines.None:
		return "none (the engine re-reads its files)"
	default:
		s := a.Disruption.String()
		if a.Unit != "" {
			s += " " + a.Unit
		}
		if a.Reason != "" {
			s += " (" + a.Reason + ")"
		}
		return s
	}
}
