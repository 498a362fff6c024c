package connect_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"paysaga"
	"paysaga/config"
	"paysaga/internal/connect"
)

// TestOpenDBTracesEveryQuery: the database the API, the worker and payctl open makes each query
// a span of the trace it runs in (db.system, the operation and the table).
func TestOpenDBTracesEveryQuery(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	ctx := context.Background()
	db, err := connect.OpenDB(ctx, config.Config{DBDriver: "sqlite", DBDSN: filepath.Join(t.TempDir(), "paysaga.db")}, true)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })

	ctx, root := otel.Tracer("test").Start(ctx, "request")
	_, err = db.GetPayment(ctx, "pay_missing")
	require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err))
	root.End()

	var query sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Parent().SpanID() == root.SpanContext().SpanID() {
			query = s
		}
	}
	require.NotNil(t, query, "the query is a child span of the request")
	require.Equal(t, "db SELECT payments", query.Name())
	require.Contains(t, query.Attributes(), attribute.String("db.system", "sqlite"))
}
