package postgres

import (
	"log/slog"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/pgtest"
)

// TestPoolSettings: MaxConns and ConnectTimeout, when set, win over the
// DSN's pool_max_conns and connect_timeout; unset, the DSN's count, and
// without them the defaults.
func TestPoolSettings(t *testing.T) {
	base := pgtest.Schema(t)
	for _, tc := range []struct {
		name        string
		dsn         string
		opts        Options
		wantConns   int32
		wantConnect time.Duration
	}{
		{"defaults", "", Options{}, 16, 2 * time.Second},
		{"the DSN's", "&pool_max_conns=3&connect_timeout=7", Options{}, 3, 7 * time.Second},
		{"options over the DSN's", "&pool_max_conns=3&connect_timeout=7", Options{MaxConns: 5, ConnectTimeout: 1500 * time.Millisecond}, 5, 1500 * time.Millisecond},
		{"options alone", "", Options{MaxConns: 4, ConnectTimeout: time.Second}, 4, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := OpenWithOptions(t.Context(), base+tc.dsn, "test", slog.New(slog.DiscardHandler), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if got := st.pool.Config().MaxConns; got != tc.wantConns {
				t.Errorf("pool of %d connections, want %d", got, tc.wantConns)
			}
			for name, got := range map[string]time.Duration{
				"pool": st.pool.Config().ConnConfig.ConnectTimeout, "lookups": st.connCfg.ConnectTimeout,
			} {
				if got != tc.wantConnect {
					t.Errorf("%s: connect timeout %s, want %s", name, got, tc.wantConnect)
				}
			}
		})
	}
}

// TestEffective: what Effective reports is what a store opens with.
func TestEffective(t *testing.T) {
	base := pgtest.Schema(t)
	for _, opts := range []Options{{}, {MaxConns: 5, ConnectTimeout: 1500 * time.Millisecond, StatementTimeout: 3 * time.Second}} {
		dsn := base + "&pool_max_conns=3&connect_timeout=7"
		want, err := Effective(dsn, opts)
		if err != nil {
			t.Fatal(err)
		}
		st, err := OpenWithOptions(t.Context(), dsn, "test", slog.New(slog.DiscardHandler), opts)
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		if st.opts != want || st.pool.Config().MaxConns != want.MaxConns {
			t.Errorf("Effective says %+v, the store runs with %+v and %d connections", want, st.opts, st.pool.Config().MaxConns)
		}
	}
	if _, err := Effective("postgres://h1:1,h2:2/db", Options{LockTimeout: -1}); err == nil {
		t.Error("Effective accepted a negative timeout")
	}
}
