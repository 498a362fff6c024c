package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// LogHandler adds the trace_id and span_id of the record's context to every line logged with
// a context (slog's …Context methods), so that a trace and its log lines find each other. A
// logger that already carries a trace_id (the API's per-request logger) is left as it is.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{Handler: h} }

type logHandler struct {
	slog.Handler
	hasTrace bool
}

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && !h.hasTrace {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	has := h.hasTrace
	for _, a := range attrs {
		has = has || a.Key == "trace_id"
	}
	return logHandler{Handler: h.Handler.WithAttrs(attrs), hasTrace: has}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{Handler: h.Handler.WithGroup(name), hasTrace: h.hasTrace}
}
