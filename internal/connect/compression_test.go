package connect_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // registers "gzip", which init wraps

	"paysaga/internal/connect"
	"paysaga/internal/temporaltest"
)

// gzipped counts the gRPC messages this test binary compresses with gzip.
var gzipped atomic.Int64

type countingGzip struct{ encoding.Compressor }

func (c countingGzip) Compress(w io.Writer) (io.WriteCloser, error) {
	gzipped.Add(1)
	return c.Compressor.Compress(w)
}

func init() {
	// RegisterCompressor is for init time only; the wrapper compresses exactly as gzip does.
	encoding.RegisterCompressor(countingGzip{encoding.GetCompressor("gzip")})
}

// The engine's Temporal clients send their requests uncompressed: what they carry is mostly
// ciphertext, which gzip cannot shrink, and compressing it cost CPU on both ends. The SDK's
// default (gzip) is checked too, so that the count is known to see compression at all.
func TestTemporalClientsDoNotCompress(t *testing.T) {
	srv := temporaltest.Start(t)
	cfg := loadConfig(t, map[string]string{"PAYSAGA_TEMPORAL_ADDRESS": srv.HostPort})
	calls := func(opts client.Options) int64 {
		t.Helper()
		before := gzipped.Load()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := client.DialContext(ctx, opts)
		require.NoError(t, err)
		defer c.Close()
		_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
		require.NoError(t, err)
		_, err = c.DescribeWorkflowExecution(ctx, "no-such-workflow", "")
		require.Error(t, err, "not found, after a round trip")
		return gzipped.Load() - before
	}
	opts, err := connect.TemporalClientOptions(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Zero(t, calls(opts), "the engine's client compressed its requests")

	opts.ConnectionOptions.GrpcCompression = &client.GrpcCompressionGzip{}
	require.Positive(t, calls(opts), "with the SDK's default the requests are compressed")
}
