package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/server"
)

// embedded is an allot server the run started in-process, assembled the
// way `allot serve` does it, on a random port of the loopback interface.
type embedded struct {
	urls         []string // one per process
	token, store string
	close        func()
}

// startEmbedded serves SQLite in a temporary directory, or with a
// postgres:// database, a temporary schema in it, through processes
// servers (more than one only on PostgreSQL: they share the schema and the
// secret key, as processes of one deployment do); close removes it all.
func startEmbedded(ctx context.Context, database string, processes int, log *slog.Logger) (_ *embedded, err error) {
	var undo []func() // run last to first
	closeAll := func() {
		for _, f := range slices.Backward(undo) {
			f()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	dir, err := os.MkdirTemp("", "allot-bench-")
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { os.RemoveAll(dir) })

	cfg := server.DefaultConfig()
	cfg.Listen, cfg.Data, cfg.Region, cfg.Logger, cfg.Dashboard = "127.0.0.1:0", dir, "bench", log, false
	// The load generator fails many authentications from one address
	// only if something is wrong; it must not be locked out meanwhile.
	cfg.FailedAuthLimit = 0
	kind := "sqlite"
	if database != "" {
		kind = "postgres"
		var drop func() error
		if cfg.Database, drop, err = tempSchema(ctx, database); err != nil {
			return nil, err
		}
		undo = append(undo, func() {
			if err := drop(); err != nil {
				log.Warn("dropping the temporary schema", "err", err)
			}
		})
	}
	token, _, err := auth.New("bench-admin")
	if err != nil {
		return nil, err
	}
	cfg.AdminToken = token
	e := &embedded{token: token, store: kind, close: closeAll}
	for i := range max(1, processes) {
		if i > 0 {
			// Another process of the same deployment: a data directory of
			// its own, the first one's secret key.
			cfg.SecretKeyFile = filepath.Join(dir, "secret.key")
			if cfg.Data, err = os.MkdirTemp(dir, "process-"); err != nil {
				return nil, err
			}
		}
		running, err := server.Start(ctx, cfg)
		if err != nil {
			return nil, err
		}
		undo = append(undo, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			running.Close(ctx)
		})
		e.urls = append(e.urls, running.URL)
	}
	return e, nil
}

// tempSchema creates a schema of its own in the database named by dsn and
// returns a URL whose connections use it, and a function that drops it.
func tempSchema(ctx context.Context, dsn string) (string, func() error, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", nil, fmt.Errorf("database: %w", err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(context.Background())
	b := make([]byte, 6)
	rand.Read(b)
	schema := "allot_bench_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		return err
	}
	return u.String(), drop, nil
}
