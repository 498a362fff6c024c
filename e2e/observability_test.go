package e2e

// Issue 14: one payment is one trace, its payloads are ciphertext to Temporal and plaintext to
// operators through the codec server, and its run shows in the metrics that the dashboard and
// the alerts query.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"paysaga"
	"paysaga/cmd/payctl/ctl"
	"paysaga/config"
	"paysaga/internal/app"
	"paysaga/internal/stack"
	"paysaga/internal/temporaltest"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/payloadcodec"
	"paysaga/telemetry"
	"paysaga/workflows"
)

// spanRecorder records every span of the test process. The global provider is set once: the
// stack's tracers (otelhttp, the Temporal interceptor, nh, events, the store hook) delegate to
// the first provider set.
var spanRecorder = sync.OnceValue(func() *tracetest.SpanRecorder {
	rec := tracetest.NewSpanRecorder()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	otel.SetTextMapPropagator(telemetry.Propagator())
	return rec
})

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func spansOf(rec *tracetest.SpanRecorder, traceID string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID().String() == traceID {
			out = append(out, s)
		}
	}
	return out
}

func TestOnePaymentIsOneTraceDownToTheBank(t *testing.T) {
	rec := spanRecorder()
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 100_000)

	// The caller's trace context: everything the payment causes joins this trace.
	traceID, callerSpan := randomHex(16), randomHex(8)
	a := call(t, "POST", "/v1/payments", c.Token, map[string]any{
		"account_id": acct.ID, "amount": 12_300, "merchant_id": m.ID, "description": "traced",
	}, "Idempotency-Key", "trace-"+traceID, "traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, a.Status, "%s", a.Raw)
	id := paymentIDOf(t, a)
	waitStatus(t, c, id, paysaga.PaymentSucceeded)

	var spans []sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		spans = spansOf(rec, traceID)
		var bank, published bool
		for _, s := range spans {
			bank = bank || s.Name() == "nh DrawingTransfer"
			published = published || s.Name() == "publish payment.succeeded"
		}
		return bank && published
	}, time.Minute, 100*time.Millisecond, "the payment's trace never reached the bank call and the event")

	byID := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID().String()] = s
	}
	var root sdktrace.ReadOnlySpan
	for _, s := range spans {
		parent := s.Parent().SpanID().String()
		if parent == callerSpan {
			require.Nil(t, root, "two spans hang from the caller's span")
			root = s
			continue
		}
		_, ok := byID[parent]
		require.True(t, ok, "span %q has a parent outside the trace: the trace is broken", s.Name())
	}
	require.NotNil(t, root)
	require.Equal(t, "POST /v1/payments", root.Name())

	// From the bank call up to the HTTP request, span by span.
	var bank sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == "nh DrawingTransfer" {
			bank = s
		}
	}
	var chain []string
	for s := bank; s != nil; s = byID[s.Parent().SpanID().String()] {
		chain = append([]string{s.Name()}, chain...)
		if s == root {
			break
		}
	}
	require.Equal(t, "POST /v1/payments", chain[0], "the bank call does not lead back to the request: %v", chain)
	require.Contains(t, chain, "UpdateWithStartWorkflow:outcome")
	require.Contains(t, chain, "RunWorkflow:PaymentWorkflow")
	require.Contains(t, chain, "RunActivity:Debit")
	t.Logf("bank call ← request: %s", strings.Join(chain, " → "))
	var httpChild bool
	for _, s := range spans {
		httpChild = httpChild || (s.Name() == "HTTP POST" && s.Parent().SpanID() == bank.SpanContext().SpanID())
	}
	require.True(t, httpChild, "the bank's HTTP exchange is a child of the bank call")
	for _, s := range spans {
		for _, kv := range s.Attributes() {
			require.NotContains(t, kv.Value.String(), acct.Acn.Acno, "span %q carries the account number", s.Name())
		}
	}
	t.Logf("trace %s of payment %s (%d spans):\n%s", traceID, id, len(spans), traceTree(root, spans))

	// A problem answer names its trace, so that a client's report leads to it.
	p := call(t, "POST", "/v1/payments", c.Token, map[string]any{"amount": -1},
		"Idempotency-Key", "trace-bad-"+traceID, "traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	require.Equal(t, http.StatusUnprocessableEntity, p.Status, "%s", p.Raw)
	require.Equal(t, traceID, p.str("trace_id"))
}

// traceTree prints the spans as a tree with start offsets and durations.
func traceTree(root sdktrace.ReadOnlySpan, spans []sdktrace.ReadOnlySpan) string {
	children := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		p := s.Parent().SpanID().String()
		children[p] = append(children[p], s)
	}
	for _, cs := range children {
		sort.Slice(cs, func(i, j int) bool { return cs[i].StartTime().Before(cs[j].StartTime()) })
	}
	var b strings.Builder
	var walk func(s sdktrace.ReadOnlySpan, depth int)
	walk = func(s sdktrace.ReadOnlySpan, depth int) {
		fmt.Fprintf(&b, "%8.1fms %8.1fms  %s%s\n", float64(s.StartTime().Sub(root.StartTime()).Microseconds())/1000,
			float64(s.EndTime().Sub(s.StartTime()).Microseconds())/1000, strings.Repeat("  ", depth), s.Name())
		for _, c := range children[s.SpanContext().SpanID().String()] {
			walk(c, depth+1)
		}
	}
	b.WriteString("   start  duration  span\n")
	walk(root, 0)
	return b.String()
}

// rawHistory reads a workflow's history as the Temporal server keeps it, through a client
// without the payload codec, as anyone with access to the frontend or its database would.
func rawHistory(t *testing.T, workflowID string) []*historypb.HistoryEvent {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: env.Temporal.FrontendHostPort(), Namespace: "default"})
	require.NoError(t, err)
	defer c.Close()
	var events []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(context.Background(), workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		events = append(events, e)
	}
	return events
}

func TestPaymentPayloadsAreEncryptedAndOperatorsReadThemThroughTheCodec(t *testing.T) {
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 100_000)
	const amount = 48_271
	description := "secret-gift-" + randomHex(4)
	a := call(t, "POST", "/v1/payments", c.Token, map[string]any{
		"account_id": acct.ID, "amount": amount, "merchant_id": m.ID, "description": description,
	}, "Idempotency-Key", "codec-"+description)
	require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, a.Status, "%s", a.Raw)
	id := paymentIDOf(t, a)
	waitStatus(t, c, id, paysaga.PaymentSucceeded)
	wid := workflows.PaymentWorkflowID(id)

	// What the server holds: no amount, no description, no account id, anywhere in the history.
	secrets := []string{fmt.Sprint(amount), description, acct.ID}
	events := rawHistory(t, wid)
	require.NotEmpty(t, events)
	for _, e := range events {
		raw, err := proto.Marshal(e)
		require.NoError(t, err)
		for _, s := range secrets {
			require.NotContains(t, string(raw), s, "event %d (%s) shows %q to the Temporal server", e.GetEventId(), e.GetEventType(), s)
		}
	}
	input := events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
	require.NotEmpty(t, input)
	require.True(t, payloadcodec.Encrypted(input[0]), "the workflow input is not encrypted")

	// Operators decode through the codec server: with an operator's token, the payment shows.
	codec, err := app.PayloadCodec(env.Parts.Config)
	require.NoError(t, err)
	op := newUser(t, paysaga.RoleOperator)
	authSvc, err := app.NewAuth(env.Parts.Config, env.Parts.DB, env.Parts.Redis, false)
	require.NoError(t, err)
	// As `paysaga codec-server` serves it.
	srv := httptest.NewServer(payloadcodec.Handler(codec, payloadcodec.ServerOptions{Authorize: app.OperatorOnly(authSvc)}))
	defer srv.Close()
	decoded, err := payloadcodec.RemoteCodec(srv.URL, "Bearer "+op.Token).Decode(input)
	require.NoError(t, err)
	for _, s := range secrets {
		require.Contains(t, string(decoded[0].GetData()), s)
	}
	_, err = payloadcodec.RemoteCodec(srv.URL, "Bearer "+c.Token).Decode(input)
	require.Error(t, err, "a customer's token decodes payloads")

	// …and so does the CLI: `temporal workflow show --codec-endpoint`.
	bin, err := temporaltest.Binary()
	require.NoError(t, err)
	show := func(extra ...string) string {
		args := append([]string{"workflow", "show", "--address", env.Temporal.FrontendHostPort(), "--namespace", "default",
			"--workflow-id", wid, "--output", "json"}, extra...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	startedInput := func(out string) *commonpb.Payload {
		var h historypb.History
		require.NoError(t, protojson.Unmarshal([]byte(out), &h), "%s", out)
		return h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
	}
	require.True(t, payloadcodec.Encrypted(startedInput(show())), "the CLI shows the input without the codec")
	viaCodec := startedInput(show("--codec-endpoint", srv.URL, "--codec-auth", "Bearer "+op.Token))
	require.False(t, payloadcodec.Encrypted(viaCodec))
	for _, s := range secrets {
		require.Contains(t, string(viaCodec.GetData()), s, "the CLI does not show the payment through the codec")
	}
}

// onlyOnTrouble are SDK metrics that a healthy run does not emit (a sticky-cache miss, a failed
// request to the frontend); deploy/observability's test checks the SDK defines them.
var onlyOnTrouble = map[string]bool{"temporal_sticky_cache_miss_total": true, "temporal_request_failure_total": true}

// metricNames finds the metric names a PromQL expression (or a dashboard) mentions.
var metricName = regexp.MustCompile(`\b(?:paysaga|temporal)_[a-z0-9_]+`)

func TestOnePaymentsMetricsAndWhatTheDashboardAndAlertsQuery(t *testing.T) {
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 100_000)
	before := gather(t)
	key := "metrics-" + randomHex(4)
	id := settled(t, c, acct, m, 5_000, key)
	// The same request again is a replay; another body under the key is refused.
	require.Equal(t, "true", pay(t, c, acct, m, 5_000, key).Header.Get("Idempotent-Replayed"))
	require.Equal(t, http.StatusUnprocessableEntity, pay(t, c, acct, m, 5_001, key).Status)
	// A declined payment (more than the balance) fails its debit activity.
	declined := pay(t, c, acct, m, 1_000_000, "metrics-declined-"+randomHex(4))
	waitStatus(t, c, paymentIDOf(t, declined), paysaga.PaymentFailed)

	var after map[string]float64
	require.Eventually(t, func() bool {
		after = gather(t)
		return after[`paysaga_payments_total{failure_code="none",outcome="succeeded"}`] > before[`paysaga_payments_total{failure_code="none",outcome="succeeded"}`]
	}, 30*time.Second, 100*time.Millisecond, "the payment's outcome was not counted")
	delta := func(series string) float64 { return after[series] - before[series] }
	require.GreaterOrEqual(t, delta(`paysaga_bank_calls_total{api="DrawingTransfer",outcome="success",rpcd="00000"}`), 1.0)
	require.GreaterOrEqual(t, delta(`paysaga_bank_call_duration_seconds_count{api="DrawingTransfer",outcome="success"}`), 1.0)
	require.GreaterOrEqual(t, delta(`paysaga_events_published_total{type="payment.succeeded"}`), 1.0)
	require.GreaterOrEqual(t, delta(`paysaga_idempotency_requests_total{result="replayed",route="/v1/payments"}`), 1.0)
	require.GreaterOrEqual(t, delta(`paysaga_idempotency_requests_total{result="mismatch",route="/v1/payments"}`), 1.0)
	var sdk bool
	for series := range after {
		sdk = sdk || strings.HasPrefix(series, "temporal_activity_schedule_to_start_latency_seconds_count")
	}
	require.True(t, sdk, "the Temporal SDK's metrics are not on /metrics")

	var changed []string
	for series, v := range after {
		if v != before[series] && (strings.HasPrefix(series, "paysaga_") || strings.HasPrefix(series, "temporal_")) &&
			!strings.Contains(series, "_bucket{") {
			changed = append(changed, fmt.Sprintf("%s %g", series, v-before[series]))
		}
	}
	sort.Strings(changed)
	t.Logf("payment %s and its neighbours (a replay, a mismatch, a decline) changed %d series:\n%s", id, len(changed), strings.Join(changed, "\n"))

	// Every metric the dashboard and the alert rules query exists.
	known := map[string]bool{}
	for _, n := range telemetry.MetricNames() {
		known[n] = true
	}
	for series := range after {
		name := series
		if i := strings.IndexByte(series, '{'); i >= 0 {
			name = series[:i]
		}
		known[name] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			known[strings.TrimSuffix(name, suffix)] = true
		}
	}
	for _, f := range []string{"../deploy/observability/dashboard.json", "../deploy/observability/alerts.yml"} {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		names := metricName.FindAllString(string(raw), -1)
		require.NotEmpty(t, names, f)
		for _, n := range names {
			require.True(t, known[n] || onlyOnTrouble[n], "%s queries %s, which no process exports", filepath.Base(f), n)
		}
	}
}

// gather reads the API's /metrics (the process's registry: API, worker and SDK metrics alike,
// since the stack runs them in one process) as series → value.
func gather(t *testing.T) map[string]float64 {
	t.Helper()
	res, err := http.Get(env.api.URL + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(res.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for _, line := range strings.Split(buf.String(), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// The Web UI of `paysaga dev` decodes payloads through the codec server: the UI announces the
// codec endpoint to the browser, serves the history with encrypted payloads, and the codec
// answers the browser's CORS preflight and decode request from the UI's origin — the round
// trip the UI's JavaScript makes, done over HTTP.
func TestWebUIDecodesPaymentsThroughTheCodecServer(t *testing.T) {
	ctx := context.Background()
	bin, err := temporaltest.Binary()
	require.NoError(t, err)
	dir := t.TempDir()
	cfg, err := config.Load(func(name string) string {
		switch name {
		case "PAYSAGA_DB_DRIVER":
			return "sqlite"
		case "PAYSAGA_DB_DSN":
			return filepath.Join(dir, "paysaga.db")
		}
		return ""
	})
	require.NoError(t, err)
	cfg.RedisAddr = ""
	cfg.TemporalPayloadKeys = payloadcodec.GenerateSpec("ui1")
	codec, err := app.PayloadCodec(cfg)
	require.NoError(t, err)
	uiPort := freePort(t)
	origin := fmt.Sprintf("http://localhost:%d", uiPort)
	// As runDev wires it: a codec server on loopback, without a token, for the UI's origin.
	codecSrv := httptest.NewServer(payloadcodec.Handler(codec, payloadcodec.ServerOptions{AllowedOrigins: []string{origin}}))
	defer codecSrv.Close()
	st, err := stack.Start(ctx, stack.Options{
		Config: cfg, Dev: true, TemporalBin: bin, TemporalDBFile: filepath.Join(dir, "temporal.db"),
		UIPort: uiPort, UICodecEndpoint: codecSrv.URL,
	})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	api := httptest.NewServer(st.API)
	defer api.Close()

	c, m := newUserOn(t, st, api.URL, paysaga.RoleCustomer), newUserOn(t, st, api.URL, paysaga.RoleMerchant)
	acct := seedAccountOn(t, st, api.URL, c, 50_000)
	description := "ui-secret-" + randomHex(4)
	a := callAt(t, api.URL, "POST", "/v1/payments", c.Token, map[string]any{
		"account_id": acct.ID, "amount": 31_337, "merchant_id": m.ID, "description": description,
	}, "Idempotency-Key", "ui-"+description)
	require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, a.Status, "%s", a.Raw)
	wid := workflows.PaymentWorkflowID(paymentIDOf(t, a))

	ui := func(path string) []byte {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", uiPort, path))
		require.NoError(t, err)
		defer res.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", path, b.String())
		return b.Bytes()
	}
	require.Contains(t, string(ui("/api/v1/settings")), codecSrv.URL, "the Web UI does not announce the codec endpoint")

	// The history as the UI's browser code receives it: encrypted.
	var history struct {
		History struct {
			Events []struct {
				Started *struct {
					Input struct {
						Payloads []json.RawMessage `json:"payloads"`
					} `json:"input"`
				} `json:"workflowExecutionStartedEventAttributes"`
			} `json:"events"`
		} `json:"history"`
	}
	require.NoError(t, json.Unmarshal(ui("/api/v1/namespaces/default/workflows/"+url.PathEscape(wid)+"/history"), &history))
	require.NotEmpty(t, history.History.Events)
	started := history.History.Events[0].Started
	require.NotNil(t, started)
	require.Len(t, started.Input.Payloads, 1)
	require.Contains(t, string(started.Input.Payloads[0]), base64.StdEncoding.EncodeToString([]byte(payloadcodec.Encoding)),
		"the Web UI receives the input unencrypted")

	// The browser's preflight, then its decode request, from the UI's origin.
	pre, _ := http.NewRequest(http.MethodOptions, codecSrv.URL+"/decode", nil)
	pre.Header.Set("Origin", origin)
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
	res, err := http.DefaultClient.Do(pre)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, origin, res.Header.Get("Access-Control-Allow-Origin"))

	body, _ := json.Marshal(map[string]any{"payloads": started.Input.Payloads})
	req, _ := http.NewRequest(http.MethodPost, codecSrv.URL+"/decode", bytes.NewReader(body))
	req.Header.Set("Origin", origin)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, origin, res.Header.Get("Access-Control-Allow-Origin"))
	var decoded struct {
		Payloads []struct {
			Data []byte `json:"data"`
		} `json:"payloads"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&decoded))
	require.Len(t, decoded.Payloads, 1)
	require.Contains(t, string(decoded.Payloads[0].Data), description)
	require.Contains(t, string(decoded.Payloads[0].Data), `"amount":31337`)
}

// A payment whose outcome the bank cannot tell shows in the gauges the UNKNOWN alert watches,
// with how long it has been waiting, until an operator resolves it.
func TestUnknownPaymentShowsInTheOperatorGauges(t *testing.T) {
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 100_000)
	withFault(t, nh.APIDrawingTransfer, nhsim.Fault{Kind: nhsim.FaultLostResponse, Probability: 1})
	withFault(t, nh.APICheckOnDrawingTransfer, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1})
	before := gather(t)
	id := paymentIDOf(t, pay(t, c, acct, m, 7_777, "gauges-"+randomHex(4)))
	waitStatus(t, c, id, paysaga.PaymentUnknown)

	var now map[string]float64
	require.Eventually(t, func() bool {
		now = gather(t)
		return now["paysaga_workflows_unknown"] >= 1 && now["paysaga_workflows_needing_attention"] >= 1
	}, 45*time.Second, 500*time.Millisecond, "the UNKNOWN payment is not in the gauges")
	require.Greater(t, now["paysaga_workflows_unknown_oldest_age_seconds"], 0.0)
	require.GreaterOrEqual(t, now[`paysaga_bank_unknown_outcomes_total{api="DrawingTransfer"}`]-
		before[`paysaga_bank_unknown_outcomes_total{api="DrawingTransfer"}`], 1.0)
	require.GreaterOrEqual(t, now[`paysaga_payments_total{failure_code="none",outcome="unknown"}`]-
		before[`paysaga_payments_total{failure_code="none",outcome="unknown"}`], 1.0)

	res := payctl(t, "payments", "resolve", id, "--as", "succeeded", "--reason", "debit on the statement")
	require.Equal(t, ctl.ExitOK, res.Code, "%s%s", res.Stdout, res.Stderr)
}
