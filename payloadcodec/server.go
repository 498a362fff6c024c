package payloadcodec

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
)

// maxRequestBytes bounds one /encode or /decode request: the Web UI sends the payloads of one
// history page, far below this.
const maxRequestBytes = 8 << 20

// ServerOptions configure the codec server.
type ServerOptions struct {
	// Authorize decides whether a request may use the codec (an operator's bearer token); nil
	// lets everyone in, which only `paysaga dev` does, on the loopback interface.
	Authorize func(r *http.Request) error
	// AllowedOrigins are the Web UI origins (scheme://host:port) whose browsers may call the
	// codec (CORS). The CLI needs none.
	AllowedOrigins []string
	// Logger receives one line per refused request (never a payload).
	Logger *slog.Logger
}

// Handler serves Temporal's remote codec protocol: POST …/encode and POST …/decode with a JSON
// `{"payloads": […]}` body, answered in kind, plus the CORS preflight of the Web UI, which
// sends its requests with credentials and an X-Namespace header.
func Handler(c *Codec, o ServerOptions) http.Handler {
	codec := converter.NewPayloadCodecHTTPHandler(c)
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && slices.Contains(o.AllowedOrigins, origin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, X-Namespace")
			h.Set("Access-Control-Max-Age", "600")
			h.Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Method != http.MethodPost ||
			!(strings.HasSuffix(r.URL.Path, "/encode") || strings.HasSuffix(r.URL.Path, "/decode")) {
			http.NotFound(w, r)
			return
		}
		if o.Authorize != nil {
			if err := o.Authorize(r); err != nil {
				logger.WarnContext(r.Context(), "codec request refused", "path", r.URL.Path, "error", err.Error())
				w.Header().Set("WWW-Authenticate", `Bearer realm="paysaga codec"`)
				http.Error(w, "an operator's access token is required", http.StatusUnauthorized)
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
		w.Header().Set("Cache-Control", "no-store")
		codec.ServeHTTP(w, r)
	})
}

// RemoteCodec is a converter.PayloadCodec that encodes and decodes through a codec server at
// endpoint, sending authorization (e.g. "Bearer <operator token>") with each request; payctl
// and the tests use it the way the CLI's --codec-endpoint does.
func RemoteCodec(endpoint, authorization string) converter.PayloadCodec {
	return converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: strings.TrimRight(endpoint, "/"),
		ModifyRequest: func(r *http.Request) error {
			if authorization != "" {
				r.Header.Set("Authorization", authorization)
			}
			return nil
		},
	})
}
