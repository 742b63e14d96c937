package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/mirrorctl/mirrorctl/credentials"
	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/plan"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// The JSON shapes of plan, sync, detect and errors. Field names are part of
// the CLI contract.
type jsonPlan struct {
	Pending  bool         `json:"pending"`
	Engines  []jsonEngine `json:"engines"`
	Warnings []string     `json:"warnings"`
}

type jsonEngine struct {
	engines.Detection
	Files      []jsonFile          `json:"files,omitempty"`
	Activation *engines.Activation `json:"activation,omitempty"`
	// Owed is an activation an earlier sync left to do.
	Owed *engines.Activation `json:"owed,omitempty"`
}

type jsonFile struct {
	Path string `json:"path"`
	Op   string `json:"op"`
	Diff string `json:"diff,omitempty"`
}

// jsonError is what every command prints on stdout with -o json when it fails.
type jsonError struct {
	Error    string        `json:"error"`
	ExitCode int           `json:"exit_code"`
	Problems []jsonProblem `json:"problems,omitempty"`
}

// jsonProblem is one spec error, with its place.
type jsonProblem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

func problemsOf(err error, r *credentials.Redactor) []jsonProblem {
	var se spec.Errors
	if !errors.As(err, &se) {
		return nil
	}
	var out []jsonProblem
	for _, e := range se {
		out = append(out, jsonProblem{File: e.Pos.File, Line: e.Pos.Line, Column: e.Pos.Column, Message: r.String(e.Msg), Hint: r.String(e.Hint)})
	}
	return out
}

// engineNames lists the engines mirrorctl knows, for help texts.
func engineNames() []string {
	var out []string
	for _, e := range engines.All() {
		out = append(out, e.Name())
	}
	return out
}

func planJSON(p *plan.Plan, withDiff bool) (jsonPlan, error) {
	out := jsonPlan{Pending: p.HasChanges() || p.Owes(), Warnings: []string{}}
	for _, e := range p.Engines {
		je := jsonEngine{Detection: e.Detection, Owed: e.Owed}
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
		if e.HasChanges() {
			a := e.Activation
			je.Activation = &a
		}
		out.Engines = append(out.Engines, je)
	}
	for _, w := range p.AllWarnings() {
		out.Warnings = append(out.Warnings, p.Redactor.String(w.String()))
	}
	return out, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printPlanText prints warnings, a diff per changed file and the disruption
// per engine, with what earlier syncs left owed.
func printPlanText(w io.Writer, p *plan.Plan, withDiff bool) error {
	for _, wn := range p.AllWarnings() {
		fmt.Fprintln(w, "warning: "+p.Redactor.String(wn.String()))
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
		name := e.Detection.Engine
		switch {
		case e.HasChanges():
			fmt.Fprintf(w, "%s: %d file(s) to change; activation: %s\n", name, len(e.ChangedPaths()), describeAction(e.Due()))
		case e.Owed != nil:
			fmt.Fprintf(w, "%s: files up to date; owed from an earlier sync: %s\n", name, describeAction(*e.Owed))
		default:
			fmt.Fprintf(w, "%s: up to date\n", name)
		}
	}
	if len(p.Managed()) == 0 {
		fmt.Fprintln(w, "no engine to manage: none detected (use --engines or engines.<name>.enabled: true)")
	}
	return nil
}

func describeAction(a engines.Activation) string {
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
