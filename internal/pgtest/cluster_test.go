package pgtest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/allot-dev/allot/internal/pgtest"
)

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestClusterFailsOver: what the primary commits is on the standby; after
// the primary is killed and the standby promoted, the multi-host URL finds
// the new primary, which has every commit and takes writes.
func TestClusterFailsOver(t *testing.T) {
	c := pgtest.StartCluster(t)
	ctx := t.Context()
	primary := connect(t, c.DSN())
	var port int
	if err := primary.QueryRow(ctx, `SELECT inet_server_port()`).Scan(&port); err != nil || port != c.Primary.Port {
		t.Fatalf("the multi-host URL reached port %d (%v), want the primary's %d", port, err, c.Primary.Port)
	}
	if _, err := primary.Exec(ctx, `CREATE TABLE t (n int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100)`); err != nil {
		t.Fatal(err)
	}
	var readOnly string
	if err := connect(t, c.Standby.DSN()).QueryRow(ctx, `SHOW transaction_read_only`).Scan(&readOnly); err != nil || readOnly != "on" {
		t.Fatalf("the standby is not read-only: %q %v", readOnly, err)
	}

	c.Primary.Kill()
	if conn, err := pgx.Connect(ctx, c.Primary.DSN()); err == nil {
		conn.Close(ctx)
		t.Fatal("the killed primary still accepts connections")
	}
	c.Standby.Promote()
	after := connect(t, c.DSN())
	if err := after.QueryRow(ctx, `SELECT inet_server_port()`).Scan(&port); err != nil || port != c.Standby.Port {
		t.Fatalf("after failover the multi-host URL reached port %d (%v), want the standby's %d", port, err, c.Standby.Port)
	}
	if _, err := after.Exec(ctx, `INSERT INTO t VALUES (101)`); err != nil {
		t.Fatalf("the promoted standby takes no writes: %v", err)
	}
	var n int
	if err := after.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 101 {
		t.Fatalf("the new primary holds %d rows (%v), want 101", n, err)
	}
}

// TestClusterCommitsWaitForTheStandby: with the standby gone, a commit on
// the primary does not return.
func TestClusterCommitsWaitForTheStandby(t *testing.T) {
	c := pgtest.StartCluster(t)
	conn := connect(t, c.Primary.DSN())
	if _, err := conn.Exec(t.Context(), `CREATE TABLE t (n int)`); err != nil {
		t.Fatal(err)
	}
	c.Standby.Kill()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := conn.Exec(ctx, `INSERT INTO t VALUES (1)`)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a commit without the standby returned %v; want it to wait for the standby", err)
	}
}
