package sim

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"
)

// errDBDown is what every statement gets while the database is "down". A plain error, as a
// network failure to the database looks to the store: neither a conflict nor a duplicate.
var errDBDown = errors.New("sim: the database is unreachable (injected outage)")

// dbGate decides, statement by statement, whether the engine's database answers: it is down
// during the outage windows of the schedule (switched on the test environment's clock), and a
// write may be refused as a lock conflict (a MySQL deadlock, which the store retries).
type dbGate struct {
	down              atomic.Bool
	conflictPermille  atomic.Int64
	refused, conflict atomic.Int64

	mu  sync.Mutex
	rng *rand.Rand
}

func newDBGate(seed uint64) *dbGate {
	return &dbGate{rng: rand.New(rand.NewPCG(seed, 0xdb))}
}

func (g *dbGate) check() error {
	if g.down.Load() {
		g.refused.Add(1)
		return errDBDown
	}
	return nil
}

// conflictOn refuses some writes with a deadlock error (MySQL's 1213), on either dialect: the
// store classifies it as a transient lock conflict and runs the transaction again.
func (g *dbGate) conflictOn(query string) error {
	p := g.conflictPermille.Load()
	if p == 0 {
		return nil
	}
	q := strings.ToUpper(strings.TrimSpace(query))
	if !strings.HasPrefix(q, "UPDATE") && !strings.HasPrefix(q, "INSERT") {
		return nil
	}
	g.mu.Lock()
	hit := g.rng.Int64N(1000) < p
	g.mu.Unlock()
	if !hit {
		return nil
	}
	g.conflict.Add(1)
	return &mysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock; try restarting transaction (injected)"}
}

// gateConnector opens connections of a real driver through the gate.
type gateConnector struct {
	open func(ctx context.Context) (driver.Conn, error)
	drv  driver.Driver
	gate *dbGate
}

func (c *gateConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := c.gate.check(); err != nil {
		return nil, err
	}
	conn, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	return &gateConn{Conn: conn, gate: c.gate}, nil
}

func (c *gateConnector) Driver() driver.Driver { return c.drv }

// gatedDB returns a connection pool on dsn of drv whose statements pass through gate.
func gatedDB(drv driver.Driver, dsn string, gate *dbGate) *sql.DB {
	var open func(ctx context.Context) (driver.Conn, error)
	if dc, ok := drv.(driver.DriverContext); ok {
		if conn, err := dc.OpenConnector(dsn); err == nil {
			open = conn.Connect
		}
	}
	if open == nil {
		open = func(context.Context) (driver.Conn, error) { return drv.Open(dsn) }
	}
	return sql.OpenDB(&gateConnector{open: open, drv: drv, gate: gate})
}

type gateConn struct {
	driver.Conn
	gate *dbGate
}

var (
	_ driver.ConnBeginTx         = (*gateConn)(nil)
	_ driver.ConnPrepareContext  = (*gateConn)(nil)
	_ driver.ExecerContext       = (*gateConn)(nil)
	_ driver.QueryerContext      = (*gateConn)(nil)
	_ driver.Pinger              = (*gateConn)(nil)
	_ driver.SessionResetter     = (*gateConn)(nil)
	_ driver.Validator           = (*gateConn)(nil)
	_ driver.NamedValueChecker   = (*gateConn)(nil)
	_ driver.Tx                  = (*gateTx)(nil)
	_ driver.Connector           = (*gateConnector)(nil)
	_ interface{ Close() error } = (*gateConn)(nil)
)

func (c *gateConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *gateConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := c.gate.check(); err != nil {
		return nil, err
	}
	if err := c.gate.conflictOn(query); err != nil {
		return nil, err
	}
	if pc, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return pc.PrepareContext(ctx, query)
	}
	return c.Conn.Prepare(query)
}

func (c *gateConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *gateConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.gate.check(); err != nil {
		return nil, err
	}
	var (
		tx  driver.Tx
		err error
	)
	if bc, ok := c.Conn.(driver.ConnBeginTx); ok {
		tx, err = bc.BeginTx(ctx, opts)
	} else {
		//lint:ignore SA1019 the driver has nothing else
		tx, err = c.Conn.Begin()
	}
	if err != nil {
		return nil, err
	}
	return &gateTx{Tx: tx, gate: c.gate}, nil
}

func (c *gateConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := c.gate.check(); err != nil {
		return nil, err
	}
	if err := c.gate.conflictOn(query); err != nil {
		return nil, err
	}
	if ec, ok := c.Conn.(driver.ExecerContext); ok {
		return ec.ExecContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

func (c *gateConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := c.gate.check(); err != nil {
		return nil, err
	}
	if strings.Contains(query, "accounts") {
		fireInFlight(ctx)
	}
	if qc, ok := c.Conn.(driver.QueryerContext); ok {
		return qc.QueryContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

func (c *gateConn) Ping(ctx context.Context) error {
	if err := c.gate.check(); err != nil {
		return err
	}
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *gateConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *gateConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *gateConn) CheckNamedValue(nv *driver.NamedValue) error {
	if nc, ok := c.Conn.(driver.NamedValueChecker); ok {
		return nc.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// gateTx fails a commit while the database is down (the transaction is rolled back): the
// writer cannot know whether a commit whose answer was lost landed, but a refused one did not.
type gateTx struct {
	driver.Tx
	gate *dbGate
}

func (t *gateTx) Commit() error {
	if err := t.gate.check(); err != nil {
		_ = t.Tx.Rollback()
		return err
	}
	return t.Tx.Commit()
}
