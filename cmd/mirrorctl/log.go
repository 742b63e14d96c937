package main

import (
	"context"
	"log/slog"

	"github.com/mirrorctl/mirrorctl/engines"
)

// logWarning logs an engine warning, with its place in the spec when it has one.
func logWarning(log *slog.Logger, w engines.Warning) {
	args := []any{"engine", w.Engine}
	if p := w.Pos.String(); p != "" {
		args = append(args, "spec", p)
	}
	log.Warn(w.Message, args...)
}

// redactingHandler masks the spec's secrets in log messages and string
// attributes before they reach the real handler.
type redactingHandler struct {
	next slog.Handler
	g    *globalFlags
}

func (h *redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.g.redactor.String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.redact(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *redactingHandler) redact(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.g.redactor.String(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, 0, len(attrs))
		for _, ga := range attrs {
			out = append(out, h.redact(ga))
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.g.redactor.String(err.Error()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h *redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.redact(a)
	}
	return &redactingHandler{next: h.next.WithAttrs(red), g: h.g}
}

func (h *redactingHandler) WithGroup(name string) slog.Handler {
	return &redactingHandler{next: h.next.WithGroup(name), g: h.g}
}
