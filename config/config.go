// Package config reads the engine's configuration from PAYSAGA_… environment variables. Every
// variable is declared once, in Vars, with its default and meaning: the README's table and the
// docker-compose check are built from the same list, so they cannot drift from what the binaries
// read.
package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Var is one environment variable the binaries read.
type Var struct {
	Name    string
	Default string
	Help    string
	// Secret values are never printed.
	Secret bool
	// Services lists which production processes need it set ("api", "worker", "migrate").
	Services []string
}

// Vars is every variable, in the order the README documents them.
var Vars = []Var{
	{Name: "PAYSAGA_HTTP_ADDR", Default: ":8080", Help: "address the REST API listens on", Services: []string{"api"}},
	{Name: "PAYSAGA_WORKER_HTTP_ADDR", Default: "", Help: "address the worker serves `/healthz`, `/readyz` (Temporal, the database and Redis reachable) and `/metrics` on, for probes and Prometheus, e.g. `:9090`; empty = none"},
	{Name: "PAYSAGA_TRUSTED_PROXIES", Default: "", Help: "comma-separated addresses or CIDRs of the reverse proxies in front of the API, whose `X-Forwarded-For` gives the client's address (login rate limits); empty = none trusted, `X-Forwarded-For` ignored"},
	{Name: "PAYSAGA_DB_DRIVER", Default: "mysql", Help: "`mysql` (MySQL 8 / MariaDB) or `sqlite`", Services: []string{"api", "worker", "migrate"}},
	{Name: "PAYSAGA_DB_DSN", Default: "", Help: "database DSN, e.g. `paysaga:pw@tcp(mysql:3306)/paysaga?parseTime=true` or a SQLite file path", Secret: true, Services: []string{"api", "worker", "migrate"}},
	{Name: "PAYSAGA_REDIS_ADDR", Default: "127.0.0.1:6379", Help: "Redis address (rate limits, balance cache, notifications)", Services: []string{"api", "worker"}},
	{Name: "PAYSAGA_REDIS_PASSWORD", Default: "", Help: "Redis password", Secret: true},
	{Name: "PAYSAGA_REDIS_USERNAME", Default: "", Help: "Redis ACL user (with `PAYSAGA_REDIS_PASSWORD`); empty = the default user"},
	{Name: "PAYSAGA_REDIS_TLS", Default: "false", Help: "`true`: connect to Redis over TLS (the system's roots, or `PAYSAGA_REDIS_TLS_CA`)"},
	{Name: "PAYSAGA_REDIS_TLS_CA", Default: "", Help: "PEM file (or PEM text) of the CA that signed Redis's certificate; implies `PAYSAGA_REDIS_TLS`"},
	{Name: "PAYSAGA_REDIS_KEY_PREFIX", Default: "", Help: "prefix of every Redis key and channel the engine uses (rate limits, tokens, balances, notifications, event de-duplication), e.g. `staging:`, so that two deployments can share one Redis"},
	{Name: "PAYSAGA_AMQP_URL", Default: "", Help: "RabbitMQ URL; empty = events recorded in the database only", Secret: true},
	{Name: "PAYSAGA_TEMPORAL_ADDRESS", Default: "127.0.0.1:7233", Help: "Temporal frontend host:port", Services: []string{"api", "worker"}},
	{Name: "PAYSAGA_TEMPORAL_NAMESPACE", Default: "default", Help: "Temporal namespace", Services: []string{"api", "worker"}},
	{Name: "PAYSAGA_TEMPORAL_TLS", Default: "false", Help: "`true`: connect to Temporal over TLS with the system's roots; implied by any of the four settings below and by `PAYSAGA_TEMPORAL_API_KEY`"},
	{Name: "PAYSAGA_TEMPORAL_TLS_CA", Default: "", Help: "PEM file (or PEM text) of the CA that signed the Temporal frontend's certificate; empty = the system's roots"},
	{Name: "PAYSAGA_TEMPORAL_TLS_CERT", Default: "", Help: "PEM file (or PEM text) of the client certificate for mTLS (Temporal Cloud, or a cluster that requires client certificates); with `PAYSAGA_TEMPORAL_TLS_KEY`"},
	{Name: "PAYSAGA_TEMPORAL_TLS_KEY", Default: "", Help: "PEM file (or PEM text) of the client certificate's private key", Secret: true},
	{Name: "PAYSAGA_TEMPORAL_TLS_SERVER_NAME", Default: "", Help: "name the frontend's certificate is checked against, when it is not the host of `PAYSAGA_TEMPORAL_ADDRESS`"},
	{Name: "PAYSAGA_TEMPORAL_API_KEY", Default: "", Help: "Temporal Cloud API key (sent as a bearer token, over TLS); an alternative to the mTLS certificate", Secret: true},
	{Name: "PAYSAGA_JWT_SECRET", Default: "", Help: "HMAC key for access tokens, at least 32 bytes (required outside `dev`)", Secret: true, Services: []string{"api"}},
	{Name: "PAYSAGA_JWT_ISSUER", Default: "paysaga", Help: "`iss` of access tokens"},
	{Name: "PAYSAGA_JWT_AUDIENCE", Default: "paysaga-api", Help: "`aud` of access tokens"},
	{Name: "PAYSAGA_ACCESS_TOKEN_TTL", Default: "15m", Help: "lifetime of an access token"},
	{Name: "PAYSAGA_REFRESH_TOKEN_TTL", Default: "720h", Help: "lifetime of a refresh token"},
	{Name: "PAYSAGA_NH_BASE_URL", Default: "", Help: "NH Open API base URL (the simulator's in `dev`)", Services: []string{"api", "worker"}},
	{Name: "PAYSAGA_NH_ISCD", Default: "", Help: "NH institution code (6 characters)", Services: []string{"api", "worker"}},
	{Name: "PAYSAGA_NH_FINTECH_APSNO", Default: "001", Help: "NH fintech app serial number"},
	{Name: "PAYSAGA_NH_ACCESS_TOKEN", Default: "", Help: "NH access token (64 hex characters)", Secret: true, Services: []string{"api", "worker"}},
	{Name: "PAYSAGA_NH_FINTECH_BANK_CODE", Default: "011", Help: "bank code of the fintech's own account (`payctl reconcile`)"},
	{Name: "PAYSAGA_NH_FINTECH_ACCOUNT", Default: "", Help: "number of the fintech's own account, whose transaction history `payctl reconcile` reads", Secret: true},
	{Name: "PAYSAGA_ACCOUNT_KEYS", Default: "", Help: "keys sealing account numbers at rest: `id:base64,…[,hmac:base64]`, 32-byte keys, the first one current (see docs/operations.md)", Secret: true, Services: []string{"api", "worker"}},
	{Name: "PAYSAGA_TEMPORAL_PAYLOAD_KEYS", Default: "", Help: "keys encrypting what the engine stores in Temporal (workflow inputs, results, updates, memos, failure messages): `id:base64,…`, 32-byte keys, the first one encrypts, all decrypt (see docs/operations.md, \"Payload keys\"); `paysaga codec-server --generate-key` makes one", Secret: true, Services: []string{"api", "worker"}},
	{Name: "PAYSAGA_PAYMENT_SYNC_WAIT", Default: "5s", Help: "how long `POST /v1/payments` waits for the outcome before answering 202"},
	{Name: "PAYSAGA_PAYMENT_MAX_IN_FLIGHT", Default: "8", Help: "payments one API instance has in the engine at once (a 202 keeps its slot until the payment is final); past it `POST /v1/payments` answers 429 with Retry-After at once (0 = no bound). Size it as the engine's ceiling (payments/s) × the time to final you accept ÷ API instances: see docs/benchmarks.md"},
	{Name: "PAYSAGA_PAYMENT_MAX_IN_FLIGHT_PER_CUSTOMER", Default: "8", Help: "payments of one customer one API instance works on at once; past it 429 (0 = no bound)"},
	{Name: "PAYSAGA_PAYMENT_UNKNOWN_DEADLINE", Default: "10m", Help: "how long an unknown bank outcome is inquired before the payment becomes UNKNOWN"},
	{Name: "PAYSAGA_REFUND_UNKNOWN_DEADLINE", Default: "", Help: "how long an unknown credit outcome is inquired before the refund becomes UNKNOWN, and then between two inquiries; empty = `PAYSAGA_PAYMENT_UNKNOWN_DEADLINE`"},
	{Name: "PAYSAGA_CAPTURE_DEADLINE", Default: "168h", Help: "how long a manual-capture payment waits for its capture before it is canceled and refunded"},
	{Name: "PAYSAGA_NOTIFY_REPLAY_WINDOW", Default: "5m", Help: "how long a notification can be replayed to a stream that reconnects with `Last-Event-ID`"},
	{Name: "PAYSAGA_NOTIFY_MAX_STREAMS", Default: "5", Help: "notification streams a user may hold open at once, across all API instances"},
	{Name: "PAYSAGA_NOTIFY_HEARTBEAT", Default: "15s", Help: "interval of the heartbeat comments on a quiet notification stream"},
	{Name: "PAYSAGA_SETTLEMENT_TIME", Default: "01:00", Help: "Korea time (HH:MM) at which the worker's daily Temporal Schedule `paysaga-settlement` settles the previous day's payments to the merchants (created or updated at worker start); `off`: no schedule"},
	{Name: "PAYSAGA_SETTLEMENT_FEE_BPS", Default: "250", Help: "fee kept on each settled payment, in basis points of its amount (rounded down to the won), for merchants without a rate of their own (`payctl settlements fee`)"},
	{Name: "PAYSAGA_ALERT_WEBHOOK_URL", Default: "", Help: "Slack-compatible incoming-webhook URL for failure alerts (failed or unknown payments and refunds, failed compensations); empty = no alerts; needs the broker", Secret: true},
	{Name: "PAYSAGA_WEBHOOK_ALLOW_LOOPBACK", Default: "false", Help: "`true`: merchants' webhook endpoints may be on loopback addresses (127.0.0.0/8, ::1) and plain `http` — for `paysaga dev` (which sets it) and tests only; private, link-local and the other internal ranges stay refused either way"},
	{Name: "PAYSAGA_LOG_LEVEL", Default: "info", Help: "`debug`, `info`, `warn` or `error`"},
	{Name: "PAYSAGA_LOG_FORMAT", Default: "json", Help: "`json` or `text`"},
}

// Config is the parsed configuration.
type Config struct {
	HTTPAddr       string
	WorkerHTTPAddr string
	TrustedProxies []string

	DBDriver string
	DBDSN    string

	RedisAddr      string
	RedisPassword  string
	RedisUsername  string
	RedisTLS       bool
	RedisTLSCA     string
	RedisKeyPrefix string

	AMQPURL string

	TemporalAddress       string
	TemporalNamespace     string
	TemporalTLS           bool
	TemporalTLSCA         string
	TemporalTLSCert       string
	TemporalTLSKey        string
	TemporalTLSServerName string
	TemporalAPIKey        string

	JWTSecret       []byte
	JWTIssuer       string
	JWTAudience     string
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration

	NHBaseURL      string
	NHIscd         string
	NHFintechApsno string
	NHAccessToken  string

	AccountKeys string

	TemporalPayloadKeys string

	PaymentSyncWait        time.Duration
	PaymentMaxInFlight     int
	PaymentMaxPerCustomer  int
	PaymentUnknownDeadline time.Duration
	// RefundUnknownDeadline is PaymentUnknownDeadline unless set.
	RefundUnknownDeadline time.Duration
	CaptureDeadline       time.Duration

	NotifyReplayWindow time.Duration
	NotifyMaxStreams   int
	NotifyHeartbeat    time.Duration
	AlertWebhookURL    string

	// SettlementTime is the KST time of day of the settlement Schedule ("HH:MM"), "" when off.
	SettlementTime   string
	SettlementFeeBPS int64

	// WebhookAllowLoopback lets webhook endpoints be on loopback and plain http (dev, tests).
	WebhookAllowLoopback bool

	LogLevel  string
	LogFormat string
}

// Load reads the configuration through getenv (os.Getenv in the binaries, a map in tests).
// Unset or empty variables take their documented default.
func Load(getenv func(string) string) (Config, error) {
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		for _, v := range Vars {
			if v.Name == name {
				return v.Default
			}
		}
		panic("config: undeclared variable " + name)
	}
	var errs []string
	dur := func(name string) time.Duration {
		d, err := time.ParseDuration(get(name))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Sprintf("%s: want a positive duration like 15m", name))
		}
		return d
	}
	c := Config{
		HTTPAddr:               get("PAYSAGA_HTTP_ADDR"),
		WorkerHTTPAddr:         get("PAYSAGA_WORKER_HTTP_ADDR"),
		DBDriver:               get("PAYSAGA_DB_DRIVER"),
		DBDSN:                  get("PAYSAGA_DB_DSN"),
		RedisAddr:              get("PAYSAGA_REDIS_ADDR"),
		RedisPassword:          get("PAYSAGA_REDIS_PASSWORD"),
		RedisUsername:          get("PAYSAGA_REDIS_USERNAME"),
		RedisTLSCA:             get("PAYSAGA_REDIS_TLS_CA"),
		RedisKeyPrefix:         get("PAYSAGA_REDIS_KEY_PREFIX"),
		AMQPURL:                get("PAYSAGA_AMQP_URL"),
		TemporalAddress:        get("PAYSAGA_TEMPORAL_ADDRESS"),
		TemporalNamespace:      get("PAYSAGA_TEMPORAL_NAMESPACE"),
		TemporalTLSCA:          get("PAYSAGA_TEMPORAL_TLS_CA"),
		TemporalTLSCert:        get("PAYSAGA_TEMPORAL_TLS_CERT"),
		TemporalTLSKey:         get("PAYSAGA_TEMPORAL_TLS_KEY"),
		TemporalTLSServerName:  get("PAYSAGA_TEMPORAL_TLS_SERVER_NAME"),
		TemporalAPIKey:         get("PAYSAGA_TEMPORAL_API_KEY"),
		JWTSecret:              []byte(get("PAYSAGA_JWT_SECRET")),
		JWTIssuer:              get("PAYSAGA_JWT_ISSUER"),
		JWTAudience:            get("PAYSAGA_JWT_AUDIENCE"),
		AccessTokenTTL:         dur("PAYSAGA_ACCESS_TOKEN_TTL"),
		RefreshTokenTTL:        dur("PAYSAGA_REFRESH_TOKEN_TTL"),
		NHBaseURL:              get("PAYSAGA_NH_BASE_URL"),
		NHIscd:                 get("PAYSAGA_NH_ISCD"),
		NHFintechApsno:         get("PAYSAGA_NH_FINTECH_APSNO"),
		NHAccessToken:          get("PAYSAGA_NH_ACCESS_TOKEN"),
		AccountKeys:            get("PAYSAGA_ACCOUNT_KEYS"),
		TemporalPayloadKeys:    get("PAYSAGA_TEMPORAL_PAYLOAD_KEYS"),
		PaymentSyncWait:        dur("PAYSAGA_PAYMENT_SYNC_WAIT"),
		PaymentUnknownDeadline: dur("PAYSAGA_PAYMENT_UNKNOWN_DEADLINE"),
		RefundUnknownDeadline:  dur("PAYSAGA_PAYMENT_UNKNOWN_DEADLINE"),
		CaptureDeadline:        dur("PAYSAGA_CAPTURE_DEADLINE"),
		NotifyReplayWindow:     dur("PAYSAGA_NOTIFY_REPLAY_WINDOW"),
		NotifyHeartbeat:        dur("PAYSAGA_NOTIFY_HEARTBEAT"),
		AlertWebhookURL:        get("PAYSAGA_ALERT_WEBHOOK_URL"),
		LogLevel:               get("PAYSAGA_LOG_LEVEL"),
		LogFormat:              get("PAYSAGA_LOG_FORMAT"),
	}
	if strings.TrimSpace(getenv("PAYSAGA_REFUND_UNKNOWN_DEADLINE")) != "" {
		c.RefundUnknownDeadline = dur("PAYSAGA_REFUND_UNKNOWN_DEADLINE")
	}
	for _, p := range strings.Split(get("PAYSAGA_TRUSTED_PROXIES"), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				errs = append(errs, "PAYSAGA_TRUSTED_PROXIES: want addresses or CIDRs separated by commas")
				continue
			}
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	boolean := func(name string) bool {
		b, err := strconv.ParseBool(get(name))
		if err != nil {
			errs = append(errs, name+": want true or false")
		}
		return b
	}
	c.RedisTLS = boolean("PAYSAGA_REDIS_TLS") || c.RedisTLSCA != ""
	c.WebhookAllowLoopback = boolean("PAYSAGA_WEBHOOK_ALLOW_LOOPBACK")
	c.TemporalTLS = boolean("PAYSAGA_TEMPORAL_TLS") || c.TemporalTLSCA != "" || c.TemporalTLSCert != "" ||
		c.TemporalTLSKey != "" || c.TemporalTLSServerName != "" || c.TemporalAPIKey != ""
	if (c.TemporalTLSCert == "") != (c.TemporalTLSKey == "") {
		errs = append(errs, "PAYSAGA_TEMPORAL_TLS_CERT and PAYSAGA_TEMPORAL_TLS_KEY: set both (mTLS) or neither")
	}
	for _, v := range []struct {
		name string
		to   *int
	}{{"PAYSAGA_PAYMENT_MAX_IN_FLIGHT", &c.PaymentMaxInFlight}, {"PAYSAGA_PAYMENT_MAX_IN_FLIGHT_PER_CUSTOMER", &c.PaymentMaxPerCustomer}} {
		n, err := strconv.Atoi(get(v.name))
		if err != nil || n < 0 {
			errs = append(errs, v.name+": want a number, 0 or more")
		}
		*v.to = n
	}
	switch st := get("PAYSAGA_SETTLEMENT_TIME"); st {
	case "off":
	default:
		if t, err := time.Parse("15:04", st); err != nil || len(st) != 5 {
			errs = append(errs, "PAYSAGA_SETTLEMENT_TIME: want HH:MM (Korea time) or off")
		} else {
			c.SettlementTime = t.Format("15:04")
		}
	}
	if n, err := strconv.ParseInt(get("PAYSAGA_SETTLEMENT_FEE_BPS"), 10, 64); err != nil || n < 0 || n > 10_000 {
		errs = append(errs, "PAYSAGA_SETTLEMENT_FEE_BPS: want basis points, 0 to 10000")
	} else {
		c.SettlementFeeBPS = n
	}
	if n, err := strconv.Atoi(get("PAYSAGA_NOTIFY_MAX_STREAMS")); err != nil || n < 1 {
		errs = append(errs, "PAYSAGA_NOTIFY_MAX_STREAMS: want a positive number")
	} else {
		c.NotifyMaxStreams = n
	}
	if c.AlertWebhookURL != "" {
		// The URL holds a secret: the message names the variable, never the value.
		if u, err := url.Parse(c.AlertWebhookURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, "PAYSAGA_ALERT_WEBHOOK_URL: want an http(s) URL")
		}
	}
	if c.DBDriver != "mysql" && c.DBDriver != "sqlite" {
		errs = append(errs, "PAYSAGA_DB_DRIVER: want mysql or sqlite")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, "PAYSAGA_LOG_LEVEL: want debug, info, warn or error")
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, "PAYSAGA_LOG_FORMAT: want json or text")
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// Require reports every variable a production service needs that is empty. Processes call it at
// start so that a missing setting stops them with a clear message instead of failing later.
func Require(getenv func(string) string, service string) error {
	var missing []string
	for _, v := range Vars {
		for _, s := range v.Services {
			if s == service && v.Default == "" && strings.TrimSpace(getenv(v.Name)) == "" {
				missing = append(missing, v.Name)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		return fmt.Errorf("%s: missing required settings: %s", service, strings.Join(missing, ", "))
	}
	return nil
}

// Needed returns the variables a production service reads that have no usable default.
func Needed(service string) []string {
	var out []string
	for _, v := range Vars {
		for _, s := range v.Services {
			if s == service {
				out = append(out, v.Name)
			}
		}
	}
	return out
}

// MarkdownTable renders Vars as the README's configuration table.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	for _, v := range Vars {
		def := v.Default
		if def == "" {
			def = "—"
		} else {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, v.Help)
	}
	return b.String()
}
