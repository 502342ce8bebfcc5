package postgres

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/allot-dev/allot/internal/pgtest"
)

func pgErr(code, severity string) error {
	return fmt.Errorf("writing: %w", &pgconn.PgError{Code: code, Severity: severity, SeverityUnlocalized: severity})
}

func TestRejected(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"invalid byte sequence (a NUL in text)", pgErr("22021", "ERROR"), true},
		{"untranslatable character (\\u0000 in jsonb)", pgErr("22P05", "ERROR"), true},
		{"numeric value out of range", pgErr("22003", "ERROR"), true},
		{"unique violation", pgErr("23505", "ERROR"), true},
		{"not null violation", pgErr("23502", "ERROR"), true},
		{"index row too large", pgErr("54000", "ERROR"), true},
		{"serialization failure", pgErr("40001", "ERROR"), false},
		{"lock timeout", pgErr("55P03", "ERROR"), false},
		{"statement timeout", pgErr("57014", "ERROR"), false},
		{"undefined table", pgErr("42P01", "ERROR"), false},
		{"connection lost", fmt.Errorf("writing: %w", io.ErrUnexpectedEOF), false},
		{"deadline", context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rejected(tt.err); got != tt.want {
				t.Errorf("rejected(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestNotCommitted(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"the server refused the commit", pgErr("23505", "ERROR"), true},
		{"the server rolled back a failed transaction", pgx.ErrTxCommitRollback, true},
		// A FATAL error can follow a commit already made.
		{"the session was terminated", pgErr("57P01", "FATAL"), false},
		{"the reply was lost", io.ErrUnexpectedEOF, false},
		{"the deadline passed while waiting", context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := notCommitted(tt.err); got != tt.want {
				t.Errorf("notCommitted(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // "" for valid
	}{
		{"zero takes the defaults", Options{}, ""},
		{"defaults", DefaultOptions(), ""},
		{"negative", Options{LockTimeout: -time.Second}, "LockTimeout"},
		{"below a millisecond", Options{IdleInTransactionTimeout: time.Microsecond}, "IdleInTransactionTimeout"},
		{"negative count", Options{KeepAliveCount: -1}, "KeepAliveCount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want an error naming %q", err, tt.want)
			}
		})
	}
	if _, err := OpenWithOptions(t.Context(), "postgres://127.0.0.1:1/x", "r", slog.New(slog.DiscardHandler), Options{StatementTimeout: -1}); err == nil {
		t.Error("OpenWithOptions accepted a negative timeout")
	}
}

// TestSessionBounds checks that every connection carries the bounds, the
// DSN's own values notwithstanding.
func TestSessionBounds(t *testing.T) {
	dsn := pgtest.Schema(t) + "&lock_timeout=0"
	st, err := OpenWithOptions(t.Context(), dsn, "test", slog.New(slog.DiscardHandler),
		Options{LockTimeout: 1234 * time.Millisecond, IdleInTransactionTimeout: 4321 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want := map[string]string{
		"lock_timeout":                        "1234ms",
		"idle_in_transaction_session_timeout": "4321ms",
		"statement_timeout":                   "10s",
		"tcp_keepalives_idle":                 "10",
		"tcp_keepalives_interval":             "5",
		"tcp_keepalives_count":                "3",
		"tcp_user_timeout":                    "20000",
		"synchronous_commit":                  "on",
	}
	for name, w := range want {
		var got string
		if err := st.pool.QueryRow(t.Context(), "SELECT current_setting($1)", name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != w {
			t.Errorf("%s = %s, want %s", name, got, w)
		}
	}
}
