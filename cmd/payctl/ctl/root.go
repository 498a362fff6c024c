// Package ctl is payctl, the operators' command-line tool: it lists and shows payments (Temporal
// visibility and the database), finds the stuck ones, resolves an UNKNOWN payment through the
// workflow's "resolve" Update, reconciles a day's transfers with the bank's transaction history,
// replays closed workflow histories against the current code, and grants roles.
//
// It lives outside package main so that the end-to-end tests run the very commands an operator
// types, in-process: Execute(ctx, args, env) returns the exit code the binary exits with.
package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"paysaga/config"
	"paysaga/internal/connect"
	"paysaga/nh"
	"paysaga/store"
	"paysaga/worker"
)

// Exit codes scripts can rely on.
const (
	ExitOK      = 0 // done; nothing to report
	ExitError   = 1 // something failed (a service unreachable, a payment not found…)
	ExitUsage   = 2 // the command line is wrong
	ExitRefused = 3 // differences found (reconcile, history replay) or an action refused (resolve)
)

// Env is what payctl runs with. Zero fields take the process's own: os.Getenv, os.Stdout,
// os.Stderr, a Temporal client dialed from PAYSAGA_TEMPORAL_ADDRESS, the workflows the worker
// registers.
type Env struct {
	Getenv         func(string) string
	Stdout, Stderr io.Writer
	// Temporal, when set, is used instead of dialing PAYSAGA_TEMPORAL_ADDRESS (payctl does not
	// close it).
	Temporal client.Client
	// RegisterWorkflows registers the workflow code `history replay` checks histories against;
	// worker.RegisterWorkflows by default. Tests pass a deliberately changed workflow.
	RegisterWorkflows func(worker.WorkflowRegistry)
	// Now is the clock (`stuck --older-than`); time.Now when nil.
	Now func() time.Time
}

func (e Env) withDefaults() Env {
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.Stdout == nil {
		e.Stdout = os.Stdout
	}
	if e.Stderr == nil {
		e.Stderr = os.Stderr
	}
	if e.RegisterWorkflows == nil {
		e.RegisterWorkflows = func(r worker.WorkflowRegistry) { worker.RegisterWorkflows(r, worker.Config{}) }
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	return e
}

// exitError carries the exit code of a failed command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

func refusedErrorf(format string, args ...any) error {
	return &exitError{code: ExitRefused, err: fmt.Errorf(format, args...)}
}

// Execute runs payctl with args (without the program name) and returns its exit code. Errors
// are printed on env.Stderr, prefixed "payctl:".
func Execute(ctx context.Context, args []string, env Env) int {
	env = env.withDefaults()
	root, closeFn := NewRoot(env)
	defer closeFn()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(env.Stderr, "payctl:", err)
	return ExitCode(err)
}

// ExitCode is the exit code of a command's error.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"),
		strings.HasPrefix(err.Error(), "required flag"):
		return ExitUsage
	}
	return ExitError
}

// NewRoot returns the command tree; closeFn closes what the commands opened (database,
// Temporal connection). Most callers want Execute.
func NewRoot(env Env) (root *cobra.Command, closeFn func()) {
	env = env.withDefaults()
	s := &session{env: env}
	root = &cobra.Command{
		Use:   "payctl",
		Short: "payctl — repair and inspect paysaga payments",
		Long: `payctl is the operators' tool for paysaga. It reads its configuration from the same
PAYSAGA_… environment variables as the engine (database, Temporal, NH bank).

Exit codes: 0 ok; 1 error; 2 usage; 3 differences found (reconcile, history replay) or the
action was refused (resolve of a payment that is not waiting for one).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if s.output != "table" && s.output != "json" {
				return usageErrorf("--output must be table or json")
			}
			return nil
		},
	}
	root.PersistentFlags().StringVarP(&s.output, "output", "o", "table", "output format: table or json")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: ExitUsage, err: err} })
	// `refund replay` (the refund issue) joins here as refundCmd(s).
	root.AddCommand(paymentsCmd(s), reconcileCmd(s), historyCmd(s), usersCmd(s), refundCmd(s), settlementsCmd(s), webhooksCmd(s))
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	return root, s.close
}

// args is cobra.ExactArgs with the usage exit code.
func args(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := cobra.ExactArgs(n)(cmd, a); err != nil {
			return &exitError{code: ExitUsage, err: err}
		}
		return nil
	}
}

// session opens what a command needs, once, and closes it at the end.
type session struct {
	env    Env
	output string

	cfg      *config.Config
	db       *store.DB
	temporal client.Client
	ownTC    bool
}

func (s *session) close() {
	if s.ownTC && s.temporal != nil {
		s.temporal.Close()
	}
	if s.db != nil {
		_ = s.db.Close()
	}
}

func (s *session) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(s.env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func (s *session) config() (config.Config, error) {
	if s.cfg == nil {
		cfg, err := config.Load(s.env.Getenv)
		if err != nil {
			return cfg, err
		}
		s.cfg = &cfg
	}
	return *s.cfg, nil
}

// setting reads a variable declared in config.Vars that config.Config does not carry,
// falling back to its documented default.
func (s *session) setting(name string) string {
	if v := strings.TrimSpace(s.env.Getenv(name)); v != "" {
		return v
	}
	for _, v := range config.Vars {
		if v.Name == name {
			return v.Default
		}
	}
	panic("payctl: undeclared variable " + name)
}

func (s *session) database(ctx context.Context) (*store.DB, error) {
	if s.db != nil {
		return s.db, nil
	}
	cfg, err := s.config()
	if err != nil {
		return nil, err
	}
	if cfg.DBDSN == "" {
		return nil, errors.New("PAYSAGA_DB_DSN is not set")
	}
	db, err := connect.OpenDB(ctx, cfg, false)
	if err != nil {
		return nil, fmt.Errorf("open the database: %w", err)
	}
	s.db = db
	return db, nil
}

func (s *session) client(ctx context.Context) (client.Client, error) {
	if s.temporal != nil {
		return s.temporal, nil
	}
	if s.env.Temporal != nil {
		s.temporal = s.env.Temporal
		return s.temporal, nil
	}
	cfg, err := s.config()
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	opts, err := connect.TemporalClientOptions(cfg, s.logger())
	if err != nil {
		return nil, err
	}
	c, err := client.DialContext(dctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	s.temporal, s.ownTC = c, true
	return c, nil
}

func (s *session) namespace() string {
	if cfg, err := s.config(); err == nil {
		return cfg.TemporalNamespace
	}
	return "default"
}

// bank returns the NH client; it allocates IsTunos from the database like the worker does.
func (s *session) bank(ctx context.Context) (*nh.Client, error) {
	cfg, err := s.config()
	if err != nil {
		return nil, err
	}
	var missing []string
	for name, v := range map[string]string{"PAYSAGA_NH_BASE_URL": cfg.NHBaseURL, "PAYSAGA_NH_ISCD": cfg.NHIscd, "PAYSAGA_NH_ACCESS_TOKEN": cfg.NHAccessToken} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("the bank is not configured: set %s", strings.Join(missing, ", "))
	}
	db, err := s.database(ctx)
	if err != nil {
		return nil, err
	}
	return connect.NewBank(cfg, db, s.logger())
}
