package telemetry

import (
	"context"
	"database/sql"
	"errors"

	"github.com/uptrace/bun"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// QueryHook makes every store query a span of the trace it runs in ("db SELECT payments").
// Only the operation and the table are recorded, never the statement: bun inlines the values,
// which can be amounts and sealed account data. Queries outside any trace (housekeeping, the
// migrations) start no trace of their own.
type QueryHook struct {
	// System is the database's name for db.system ("mysql", "sqlite").
	System string
}

var _ bun.QueryHook = QueryHook{}

type spanKey struct{}

// BeforeQuery implements bun.QueryHook.
func (h QueryHook) BeforeQuery(ctx context.Context, e *bun.QueryEvent) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	op := e.Operation()
	name := "db " + op
	attrs := []attribute.KeyValue{attribute.String("db.system", h.System), attribute.String("db.operation.name", op)}
	if t, ok := e.IQuery.(interface{ GetTableName() string }); ok && e.IQuery != nil {
		if table := t.GetTableName(); table != "" {
			name += " " + table
			attrs = append(attrs, attribute.String("db.collection.name", table))
		}
	}
	ctx, span := Tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(e.StartTime),
		trace.WithAttributes(attrs...))
	return context.WithValue(ctx, spanKey{}, span)
}

// AfterQuery implements bun.QueryHook.
func (h QueryHook) AfterQuery(ctx context.Context, e *bun.QueryEvent) {
	span, ok := ctx.Value(spanKey{}).(trace.Span)
	if !ok {
		return
	}
	if e.Err != nil && !errors.Is(e.Err, sql.ErrNoRows) {
		span.SetStatus(codes.Error, "query failed")
	}
	span.End()
}
