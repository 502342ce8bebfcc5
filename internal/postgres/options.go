package postgres

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Options bound how long one allot process can make the others wait, and
// how long any of its own operations can take. Every process takes the
// same tenant and ledger locks, so a process that stops (SIGSTOP, a long
// GC pause, a silent network partition) in the middle of a transaction
// would otherwise hold them until TCP gives up, about two hours. A zero
// field takes its default (DefaultOptions).
//
// allot's transactions take milliseconds: a batch of a thousand claims is
// a handful of statements. The defaults leave two orders of magnitude of
// room for a slow disk or a loaded server and still free a stalled
// process's locks within seconds.
type Options struct {
	// LockTimeout bounds one wait for a lock (lock_timeout). A wait that
	// times out (SQLSTATE 55P03) is retried while the caller's deadline
	// allows, so it only has to be long enough for an honest holder to
	// commit. Default 5s.
	LockTimeout time.Duration
	// StatementTimeout bounds one statement, COMMIT included
	// (statement_timeout). Default 10s.
	StatementTimeout time.Duration
	// IdleInTransactionTimeout is how long the server keeps a transaction
	// whose client sends nothing (idle_in_transaction_session_timeout):
	// allot never idles inside a transaction except to evaluate a batch
	// in memory, so a longer silence means the process is paused or cut
	// off, and the server ends its session and frees its locks. Default
	// 10s.
	IdleInTransactionTimeout time.Duration
	// ConnectTimeout bounds opening a connection, to each host of a
	// multi-host DSN in turn: a host that went silent (a dead machine, not
	// a dead process) costs this much before the next one is tried, by
	// every new connection and by the lookup of a lost commit, which must
	// reach the promoted standby within ResolveTimeout. Default: the DSN's
	// connect_timeout if it has one, else 2s.
	ConnectTimeout time.Duration
	// KeepAliveIdle, KeepAliveInterval and KeepAliveCount set TCP
	// keepalives on both ends (the client's socket and, through
	// tcp_keepalives_*, the server's), so a peer that vanished is noticed
	// after Idle + Interval*Count instead of about two hours. Defaults
	// 10s, 5s and 3.
	KeepAliveIdle     time.Duration
	KeepAliveInterval time.Duration
	KeepAliveCount    int
	// TCPUserTimeout is how long data sent may stay unacknowledged before
	// the connection is given up (TCP_USER_TIMEOUT, Linux; tcp_user_timeout
	// on the server). Default 20s.
	TCPUserTimeout time.Duration
	// ResolveTimeout bounds looking up the outcome of a commit whose
	// reply was lost. When the database can be reached at all, the lookup
	// takes a connection and a query or two; when it cannot be reached
	// within this time, the outcome is reported as unknown. It runs even
	// when the caller's deadline has passed (a lost reply is often a
	// deadline that expired during COMMIT), because giving up at once
	// would turn a knowable outcome into an unknown one. Default 5s.
	ResolveTimeout time.Duration
	// MaxConns bounds the connection pool. Each batch in the committer's
	// pipeline holds one until it commits, besides reads and background
	// jobs. Default: the DSN's pool_max_conns if it has one, else 16.
	MaxConns int32
	// NoMigrate refuses a database that lacks migrations this allot has,
	// instead of applying them; nothing is written then.
	NoMigrate bool
}

// DefaultOptions returns the defaults described on Options.
func DefaultOptions() Options {
	return Options{
		LockTimeout:              5 * time.Second,
		StatementTimeout:         10 * time.Second,
		IdleInTransactionTimeout: 10 * time.Second,
		ConnectTimeout:           2 * time.Second,
		KeepAliveIdle:            10 * time.Second,
		KeepAliveInterval:        5 * time.Second,
		KeepAliveCount:           3,
		TCPUserTimeout:           20 * time.Second,
		ResolveTimeout:           5 * time.Second,
		MaxConns:                 16,
	}
}

// withDefaults fills zero fields; dsnConnect is the DSN's connect_timeout.
func (o Options) withDefaults(dsnConnect time.Duration) Options {
	d := DefaultOptions()
	if dsnConnect > 0 {
		d.ConnectTimeout = dsnConnect
	}
	fill := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	fill(&o.LockTimeout, d.LockTimeout)
	fill(&o.StatementTimeout, d.StatementTimeout)
	fill(&o.IdleInTransactionTimeout, d.IdleInTransactionTimeout)
	fill(&o.ConnectTimeout, d.ConnectTimeout)
	fill(&o.KeepAliveIdle, d.KeepAliveIdle)
	fill(&o.KeepAliveInterval, d.KeepAliveInterval)
	fill(&o.TCPUserTimeout, d.TCPUserTimeout)
	fill(&o.ResolveTimeout, d.ResolveTimeout)
	if o.KeepAliveCount == 0 {
		o.KeepAliveCount = d.KeepAliveCount
	}
	if o.MaxConns == 0 {
		o.MaxConns = d.MaxConns
	}
	return o
}

// Validate reports the first field that cannot be used.
func (o Options) Validate() error {
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"LockTimeout", o.LockTimeout}, {"StatementTimeout", o.StatementTimeout},
		{"IdleInTransactionTimeout", o.IdleInTransactionTimeout}, {"ConnectTimeout", o.ConnectTimeout},
		{"KeepAliveIdle", o.KeepAliveIdle}, {"KeepAliveInterval", o.KeepAliveInterval},
		{"TCPUserTimeout", o.TCPUserTimeout}, {"ResolveTimeout", o.ResolveTimeout},
	} {
		if f.v < 0 {
			return fmt.Errorf("postgres: options: %s must not be negative", f.name)
		}
		// The server counts in milliseconds; less would read as "off".
		if f.v > 0 && f.v < time.Millisecond {
			return fmt.Errorf("postgres: options: %s must be at least 1ms", f.name)
		}
	}
	if o.KeepAliveCount < 0 {
		return errors.New("postgres: options: KeepAliveCount must not be negative")
	}
	if o.MaxConns < 0 {
		return errors.New("postgres: options: MaxConns must not be negative")
	}
	return nil
}

// runtimeParams are the session settings every connection starts with.
func (o Options) runtimeParams() map[string]string {
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	secs := func(d time.Duration) string { return strconv.FormatInt(max(int64(d/time.Second), 1), 10) }
	return map[string]string{
		"lock_timeout":                        ms(o.LockTimeout),
		"statement_timeout":                   ms(o.StatementTimeout),
		"idle_in_transaction_session_timeout": ms(o.IdleInTransactionTimeout),
		"tcp_keepalives_idle":                 secs(o.KeepAliveIdle),
		"tcp_keepalives_interval":             secs(o.KeepAliveInterval),
		"tcp_keepalives_count":                strconv.Itoa(o.KeepAliveCount),
		"tcp_user_timeout":                    ms(o.TCPUserTimeout),
	}
}

// dialer returns the client side of the same bounds.
func (o Options) dialer() *net.Dialer {
	return &net.Dialer{
		Timeout: o.ConnectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: o.KeepAliveIdle, Interval: o.KeepAliveInterval, Count: o.KeepAliveCount,
		},
		Control: userTimeoutControl(o.TCPUserTimeout),
	}
}
