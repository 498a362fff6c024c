// Package e2e drives the engine through its HTTP API on the real stack: a Temporal dev server
// (the Temporal CLI binary, never downloaded), MariaDB, Redis, RabbitMQ and the NH simulator,
// assembled by internal/stack exactly as `paysaga dev` assembles it. A service that cannot be
// reached fails the run; nothing is skipped.
package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"paysaga"
	"paysaga/config"
	"paysaga/internal/stack"
	"paysaga/internal/temporaltest"
	"paysaga/workflows"
)

// env is the running engine shared by the package's tests.
var env struct {
	*stack.Stack
	api  *httptest.Server
	amqp string
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func run(m *testing.M) (int, error) {
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("PAYSAGA_E2E_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	bin, err := temporaltest.Binary()
	if err != nil {
		return 0, err
	}

	// A database of our own on the MariaDB server, dropped at the end.
	dsn := getenv("PAYSAGA_TEST_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/test?parseTime=true")
	dbName := fmt.Sprintf("paysaga_e2e_%d", time.Now().UnixNano())
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		return 0, err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+dbName); err != nil {
		return 0, fmt.Errorf("MariaDB at %s: %w", dsn, err)
	}
	defer func() { _, _ = admin.ExecContext(context.Background(), "DROP DATABASE "+dbName) }()

	env.amqp = getenv("PAYSAGA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
	cfg, err := config.Load(func(name string) string {
		switch name {
		case "PAYSAGA_DB_DRIVER":
			return "mysql"
		case "PAYSAGA_DB_DSN":
			return strings.Replace(dsn, "/test?", "/"+dbName+"?", 1)
		case "PAYSAGA_REDIS_ADDR":
			return getenv("PAYSAGA_TEST_REDIS_ADDR", "127.0.0.1:6379")
		case "PAYSAGA_AMQP_URL":
			return env.amqp
		case "PAYSAGA_JWT_SECRET":
			return "e2e-secret-e2e-secret-e2e-secret-e2e-secret"
		}
		return ""
	})
	if err != nil {
		return 0, err
	}
	env.Stack, err = stack.Start(ctx, stack.Options{
		Config:      cfg,
		Logger:      logger,
		TemporalBin: bin,
		// Short deadlines, so that the slow paths finish within a test.
		Payments: workflows.PaymentConfig{
			BankCallTimeout: 4 * time.Second,
			UnknownDeadline: 8 * time.Second,
			RetryDelay:      100 * time.Millisecond,
		},
		Refunds: workflows.RefundConfig{
			BankCallTimeout: 4 * time.Second,
			UnknownDeadline: 8 * time.Second,
			RetryDelay:      100 * time.Millisecond,
		},
	})
	if err != nil {
		return 0, err
	}
	defer env.Close()
	env.api = httptest.NewServer(env.API)
	defer env.api.Close()
	return m.Run(), nil
}

// answer is an HTTP answer with its JSON body decoded.
type answer struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

func (a answer) str(key string) string {
	v, _ := a.Body[key].(string)
	return v
}

// call sends a JSON request to the shared stack's API.
func call(t testing.TB, method, path, token string, body any, header ...string) answer {
	t.Helper()
	return callAt(t, env.api.URL, method, path, token, body, header...)
}

// callAt sends a JSON request to the API at base.
func callAt(t testing.TB, base, method, path, token string, body any, header ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &a.Body); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
	}
	return a
}

// user is a signed-up user with a fresh access token.
type user struct {
	ID, Email, Token string
}

func newUser(t testing.TB, role paysaga.Role) user {
	t.Helper()
	return newUserOn(t, env.Stack, env.api.URL, role)
}

// newUserOn signs a user up on the stack st, whose API is at base.
func newUserOn(t testing.TB, st *stack.Stack, base string, role paysaga.Role) user {
	t.Helper()
	email := strings.ToLower(paysaga.NewID("u")) + "@example.com"
	a := callAt(t, base, "POST", "/v1/auth/signup", "", map[string]string{"email": email, "password": "correct horse battery", "name": "E2E"})
	if a.Status != http.StatusCreated {
		t.Fatalf("signup: %d %s", a.Status, a.Raw)
	}
	if role != paysaga.RoleCustomer {
		if err := st.Parts.DB.SetUserRole(context.Background(), email, role); err != nil {
			t.Fatal(err)
		}
	}
	l := callAt(t, base, "POST", "/v1/auth/login", "", map[string]string{"email": email, "password": "correct horse battery"})
	if l.Status != http.StatusOK {
		t.Fatalf("login: %d %s", l.Status, l.Raw)
	}
	return user{ID: a.str("id"), Email: email, Token: l.str("access_token")}
}
