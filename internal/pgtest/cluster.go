package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinEnv names the variable that can point at a folder with PostgreSQL's
// server programs; without it Bin looks in Debian's versioned folders
// (/usr/lib/postgresql/VERSION/bin), then on PATH.
const BinEnv = "ALLOT_TEST_PG_BIN"

// serverPrograms are what a Cluster runs.
var serverPrograms = []string{"initdb", "postgres", "pg_ctl", "pg_basebackup"}

// Bin returns the folder with PostgreSQL's server programs. Without them
// the test is skipped, except under CI=true, where it fails.
func Bin(t testing.TB) string {
	t.Helper()
	dir, err := findBin()
	if err != nil {
		how := "pgtest: " + err.Error() + "; install the PostgreSQL server (apt-get install postgresql) or set " + BinEnv
		if os.Getenv("CI") == "true" {
			t.Fatal(how)
		}
		t.Skip(how)
	}
	return dir
}

func findBin() (string, error) {
	has := func(dir string) bool {
		for _, p := range serverPrograms {
			if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv(BinEnv); dir != "" {
		if !has(dir) {
			return "", fmt.Errorf("%s=%s lacks one of %s", BinEnv, dir, strings.Join(serverPrograms, ", "))
		}
		return dir, nil
	}
	// The newest version first.
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("no PostgreSQL server programs (%s) in /usr/lib/postgresql/*/bin or on PATH", strings.Join(serverPrograms, ", "))
}

// version is the number in /usr/lib/postgresql/VERSION/bin.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// Cluster is a PostgreSQL primary with one streaming standby that it
// replicates to synchronously (synchronous_standby_names names it, and
// synchronous_commit is on), each on a free port of 127.0.0.1 with its data
// in a temporary directory. Both servers stop and their directories are
// removed when the test ends; if the test binary dies first, the kernel
// stops them (the parent-death signal).
//
// PostgreSQL refuses to run as root, so when the test runs as root the
// servers and their tools run as the postgres user.
type Cluster struct {
	Primary, Standby *Server
}

// Server is one PostgreSQL server of a Cluster.
type Server struct {
	Name string
	Port int
	t    testing.TB
	bin  string
	cred *syscall.Credential // nil: run as the test's own user
	dir  string              // the data directory
	log  string
	args []string // settings of this server, as -c name=value
	cmd  *exec.Cmd
	done chan struct{} // closed once the server has exited
}

// standbyName is the standby's application_name, which the primary's
// synchronous_standby_names names.
const standbyName = "standby"

// StartCluster starts a primary, takes a base backup of it, starts a
// standby from that, and returns once the primary replicates to the
// standby synchronously.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := Bin(t)
	cred, err := serverUser()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	root, err := os.MkdirTemp("", "allot-pgcluster-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if cred != nil {
		if err := os.Chown(root, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	ports := freePorts(t, 2)
	common := []string{
		"listen_addresses=127.0.0.1",
		"unix_socket_directories=", // TCP only: nothing shared with other servers
		"shared_buffers=32MB",
		"max_connections=100",
		"wal_level=replica",
		"max_wal_senders=4",
		"synchronous_commit=on",
		"fsync=on",
	}
	p := &Server{Name: "primary", Port: ports[0], t: t, bin: bin, cred: cred,
		dir: filepath.Join(root, "primary"), log: filepath.Join(root, "primary.log")}
	// Only the primary waits for the standby: once promoted, the standby
	// serves alone, as a failover leaves it.
	p.args = append(slices.Clone(common), "port="+strconv.Itoa(p.Port), "synchronous_standby_names="+standbyName)
	s := &Server{Name: "standby", Port: ports[1], t: t, bin: bin, cred: cred,
		dir: filepath.Join(root, "standby"), log: filepath.Join(root, "standby.log")}
	s.args = append(slices.Clone(common), "port="+strconv.Itoa(s.Port), "hot_standby=on",
		fmt.Sprintf("primary_conninfo=host=127.0.0.1 port=%d user=postgres application_name=%s", p.Port, standbyName))

	p.run("initdb", "-D", p.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	p.start()
	s.run("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "postgres", "-D", s.dir, "-X", "stream", "-c", "fast", "--no-sync")
	if err := os.WriteFile(filepath.Join(s.dir, "standby.signal"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		os.Chown(filepath.Join(s.dir, "standby.signal"), int(cred.Uid), int(cred.Gid))
	}
	s.start()
	c := &Cluster{Primary: p, Standby: s}
	c.waitSynchronous()
	return c
}

// DSN is a multi-host URL over both servers that only connects to the one
// that accepts writes, as an application is configured for failover.
func (c *Cluster) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/postgres?sslmode=disable&target_session_attrs=read-write",
		c.Primary.Port, c.Standby.Port)
}

// DSN is the URL of this server alone.
func (s *Server) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
}

// Kill stops the server the way a crash does: pg_ctl stop -m immediate,
// no checkpoint, every session cut.
func (s *Server) Kill() {
	s.t.Helper()
	s.run("pg_ctl", "stop", "-D", s.dir, "-m", "immediate", "-w")
	s.wait(30 * time.Second)
}

// Promote makes a standby the primary (pg_ctl promote) and returns once it
// accepts writes.
func (s *Server) Promote() {
	s.t.Helper()
	s.run("pg_ctl", "promote", "-D", s.dir, "-w", "-t", "30")
}

// Log returns what the server has logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// run runs one of PostgreSQL's programs to its end, as the server's user.
func (s *Server) run(program string, args ...string) {
	s.t.Helper()
	cmd := s.command(program, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("pgtest: %s %s: %v\n%s\n%s log:\n%s", program, strings.Join(args, " "), err, out.String(), s.Name, s.Log())
	}
}

func (s *Server) command(program string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, program), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	// The server's user must be able to stand in its working directory.
	cmd.Dir = os.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// start runs the server in the foreground, as a child of the test, and
// waits until it answers.
func (s *Server) start() {
	s.t.Helper()
	args := []string{"-D", s.dir}
	for _, a := range s.args {
		args = append(args, "-c", a)
	}
	cmd := s.command("postgres", args...)
	log, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	// If the test binary dies without cleaning up, SIGQUIT is the
	// server's immediate shutdown.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("pgtest: starting %s: %v", s.Name, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(s.done) }()
	s.t.Cleanup(func() {
		select {
		case <-s.done:
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-s.done
		}
		if s.t.Failed() {
			s.t.Logf("pgtest: %s log:\n%s", s.Name, s.Log())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, s.DSN())
		if err == nil {
			conn.Close(ctx)
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("pgtest: %s exited at start:\n%s", s.Name, s.Log())
		case <-ctx.Done():
			s.t.Fatalf("pgtest: %s does not answer: %v\n%s", s.Name, err, s.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// wait waits up to d for the server to exit.
func (s *Server) wait(d time.Duration) {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(d):
		s.t.Fatalf("pgtest: %s still runs %s after it was stopped", s.Name, d)
	}
}

// waitSynchronous waits until the primary reports the standby as its
// synchronous standby, so that every commit from then on waits for it.
func (c *Cluster) waitSynchronous() {
	t := c.Primary.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.Primary.DSN())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(context.Background())
	for {
		var state string
		err := conn.QueryRow(ctx, `SELECT sync_state FROM pg_stat_replication WHERE application_name = $1`, standbyName).Scan(&state)
		if err == nil && state == "sync" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pgtest: the standby did not become synchronous (state %q, %v)\nstandby log:\n%s", state, err, c.Standby.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// serverUser is who runs the servers: the test's own user, or postgres
// when the test runs as root.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as the postgres user: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("the postgres user has ids %s:%s", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePorts returns n ports of 127.0.0.1 that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}
