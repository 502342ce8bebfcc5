package pgtest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of PostgreSQL that reads just enough of the
// wire protocol to break a connection at a chosen query, the way networks
// and crashes break them: a reply that never arrives, a message that never
// leaves, a peer that goes silent. It binds 127.0.0.1 and stops when the
// test ends.
type Proxy struct {
	ln     net.Listener
	target string
	closed chan struct{}

	mu      sync.Mutex
	conns   map[net.Conn]bool
	refuse  bool
	stalled chan struct{} // non-nil while silent; closed on Resume
	faults  []*Fault
	commits int
}

// Action is what a Fault does to the connection it strikes.
type Action int

const (
	// LoseReply forwards the query, swallows everything the server answers
	// until it is ready for the next query, then resets the client's
	// connection: the server did the work, the client never hears of it.
	LoseReply Action = iota + 1
	// Drop resets both sides without forwarding the query: the server
	// never sees it.
	Drop
	// Stall forwards the query, then the whole proxy goes silent: nothing
	// more is forwarded in either direction on any connection, nothing is
	// closed, and new connections are accepted and ignored, until Resume.
	Stall
)

// Fault breaks the next connection that sends a matching query.
type Fault struct {
	match  func(sql string) bool
	action Action
	then   func()
	struck chan struct{}
}

// Struck is closed once the fault has struck (and its then has run).
func (f *Fault) Struck() <-chan struct{} { return f.struck }

// StartProxy starts a proxy to target (host:port).
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target, closed: make(chan struct{}), conns: map[net.Conn]bool{}}
	t.Cleanup(p.close)
	go p.serve()
	return p
}

// ProxyFor starts a proxy to the server of dsn and returns it with dsn
// rewritten to go through it. TLS is turned off: the proxy reads the
// protocol in the clear.
func ProxyFor(t testing.TB, dsn string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		t.Fatalf("pgtest: %s must be a postgres:// URL", Env)
	}
	p := StartProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return p, u.String()
}

// IsCommit matches COMMIT (what pgx sends to commit a transaction).
func IsCommit(sql string) bool {
	s := strings.TrimSuffix(strings.TrimSpace(sql), ";")
	return strings.EqualFold(strings.TrimSpace(s), "commit")
}

// Arm makes the next query that match accepts, on any connection, suffer
// action; then, if not nil, runs after it struck. Each fault strikes once.
func (p *Proxy) Arm(match func(sql string) bool, action Action, then func()) *Fault {
	f := &Fault{match: match, action: action, then: then, struck: make(chan struct{})}
	p.mu.Lock()
	p.faults = append(p.faults, f)
	p.mu.Unlock()
	return f
}

// Commits counts the COMMITs clients have sent through the proxy.
func (p *Proxy) Commits() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.commits
}

// Cut drops every open connection and refuses new ones, as a partition
// that the kernel reports (or a database restart) looks to the client.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.refuse = true
	p.mu.Unlock()
	p.dropAll()
}

// Refuse makes new connections fail at once (refuse true) or work again.
func (p *Proxy) Refuse(refuse bool) {
	p.mu.Lock()
	p.refuse = refuse
	p.mu.Unlock()
}

// Stall makes the proxy go silent now, as Action Stall does.
func (p *Proxy) Stall() { p.stall() }

// Resume ends a Stall: forwarding goes on where it stopped.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled != nil {
		close(p.stalled)
		p.stalled = nil
	}
}

func (p *Proxy) close() {
	p.ln.Close()
	close(p.closed)
	p.dropAll()
}

func (p *Proxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		reset(c)
	}
	clear(p.conns)
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse
		if !refuse {
			p.conns[c] = true
		}
		p.mu.Unlock()
		if refuse {
			reset(c)
			continue
		}
		go p.forward(c)
	}
}

// waitIfStalled blocks while the proxy is silent; false: it was closed.
func (p *Proxy) waitIfStalled() bool {
	p.mu.Lock()
	ch := p.stalled
	p.mu.Unlock()
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	case <-p.closed:
		return false
	}
}

func (p *Proxy) stall() {
	p.mu.Lock()
	if p.stalled == nil {
		p.stalled = make(chan struct{})
	}
	p.mu.Unlock()
}

// take returns the first armed fault that matches sql, disarming it.
func (p *Proxy) take(sql string) *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	if IsCommit(sql) {
		p.commits++
	}
	for i, f := range p.faults {
		if f.match(sql) {
			p.faults = append(p.faults[:i], p.faults[i+1:]...)
			return f
		}
	}
	return nil
}

// strike runs then and breaks the connection with hit, in that order, so
// that what then changes (say, refusing new connections) is in force by the
// time the client can notice.
func (f *Fault) strike(hit func()) {
	if f.then != nil {
		f.then()
	}
	hit()
	close(f.struck)
}

// conn is one proxied connection.
type conn struct {
	p              *Proxy
	client, server net.Conn
	mu             sync.Mutex
	loseReply      *Fault // set once a LoseReply fault struck this connection
}

func (p *Proxy) forward(client net.Conn) {
	if !p.waitIfStalled() {
		return
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		reset(client)
		return
	}
	p.mu.Lock()
	p.conns[server] = true
	p.mu.Unlock()
	c := &conn{p: p, client: client, server: server}
	done := make(chan struct{})
	go func() { defer close(done); c.toClient() }()
	c.toServer()
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// toServer forwards the client's messages, striking faults on the way.
func (c *conn) toServer() {
	defer c.server.Close()
	r := bufio.NewReader(c.client)
	// The startup packet has no type byte. A request for TLS or GSS
	// encryption is refused here, as a server without them would.
	for {
		msg, err := readStartup(r)
		if err != nil {
			return
		}
		if code := binary.BigEndian.Uint32(msg[4:8]); code == 80877103 || code == 80877104 {
			if _, err := c.client.Write([]byte{'N'}); err != nil {
				return
			}
			continue
		}
		if !c.p.waitIfStalled() {
			return
		}
		if _, err := c.server.Write(msg); err != nil {
			return
		}
		break
	}
	for {
		typ, msg, err := readMessage(r)
		if err != nil {
			return
		}
		if f := c.fault(typ, msg); f != nil {
			switch f.action {
			case Drop:
				f.strike(func() { reset(c.client); reset(c.server) })
				return
			case LoseReply:
				c.mu.Lock()
				c.loseReply = f
				c.mu.Unlock()
			case Stall:
				if _, err := c.server.Write(msg); err != nil {
					return
				}
				f.strike(c.p.stall)
				continue
			}
		}
		if !c.p.waitIfStalled() {
			return
		}
		if _, err := c.server.Write(msg); err != nil {
			return
		}
	}
}

// toClient forwards the server's messages, or swallows them while a reply
// is to be lost.
func (c *conn) toClient() {
	defer c.client.Close()
	r := bufio.NewReader(c.server)
	for {
		typ, msg, err := readMessage(r)
		if err != nil {
			return
		}
		c.mu.Lock()
		f := c.loseReply
		c.mu.Unlock()
		if f != nil {
			if typ == 'Z' { // ReadyForQuery: the server has finished with the query
				f.strike(func() { reset(c.client); c.server.Close() })
				return
			}
			continue
		}
		if !c.p.waitIfStalled() {
			return
		}
		if _, err := c.client.Write(msg); err != nil {
			return
		}
	}
}

// fault returns the fault a query message strikes, if any.
func (c *conn) fault(typ byte, msg []byte) *Fault {
	var sql string
	body := msg[5:]
	switch typ {
	case 'Q': // Query: the SQL
		sql, _, _ = strings.Cut(string(body), "\x00")
	case 'P': // Parse: a statement name, then the SQL
		_, rest, _ := bytes.Cut(body, []byte{0})
		s, _, _ := bytes.Cut(rest, []byte{0})
		sql = string(s)
	default:
		return nil
	}
	return c.p.take(sql)
}

const maxMessage = 1 << 30

func readStartup(r *bufio.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size < 8 || size > maxMessage {
		return nil, fmt.Errorf("pgtest: proxy: startup packet of %d bytes", size)
	}
	msg := make([]byte, size)
	copy(msg, n[:])
	_, err := io.ReadFull(r, msg[4:])
	return msg, err
}

// readMessage reads one typed message and returns it whole.
func readMessage(r *bufio.Reader) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	size := binary.BigEndian.Uint32(h[1:])
	if size < 4 || size > maxMessage {
		return 0, nil, errors.New("pgtest: proxy: bad message length")
	}
	msg := make([]byte, 1+size)
	copy(msg, h[:])
	_, err := io.ReadFull(r, msg[5:])
	return h[0], msg, err
}

// reset closes c with a TCP reset rather than an orderly close.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
