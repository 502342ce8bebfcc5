// What every command that talks to a server shares: its flags, the client,
// reading documents, and turning refusals into messages.

package cli

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/allot-dev/allot/client"
)

// remote holds what every command that talks to a server needs.
type remote struct {
	server, token, output string
	envToken              string // ALLOT_TOKEN: not a flag default, so help never shows it
	caCert                string // PEM file of the CAs to trust for https://; empty: the system's
	roots                 *x509.CertPool
	stdin                 io.Reader
	stdout                io.Writer
}

func (r *remote) client() *client.Client {
	token := r.token
	if token == "" {
		token = r.envToken
	}
	opts := []client.Option{client.WithToken(token)}
	if r.roots != nil {
		opts = append(opts, client.WithRootCAs(r.roots))
	}
	return client.New(r.server, opts...)
}

// loadRoots reads --ca-cert, before any command talks to a server.
func (r *remote) loadRoots(*cobra.Command, []string) error {
	if r.caCert == "" {
		return nil
	}
	pem, err := os.ReadFile(r.caCert)
	if err != nil {
		return usageError{fmt.Sprintf("ca-cert: %v", err)}
	}
	r.roots = x509.NewCertPool()
	if !r.roots.AppendCertsFromPEM(pem) {
		return usageError{fmt.Sprintf("ca-cert: %s holds no PEM certificate", r.caCert)}
	}
	return nil
}

func addClientCommands(root *cobra.Command, getenv Env, stdin io.Reader, stdout, stderr io.Writer) {
	r := &remote{stdin: stdin, stdout: stdout, envToken: getenv("ALLOT_TOKEN")}
	server := getenv("ALLOT_SERVER")
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	pf := root.PersistentFlags()
	pf.StringVar(&r.server, "server", server, "allot server URL (ALLOT_SERVER)")
	pf.StringVar(&r.token, "token", "", "API token (default $ALLOT_TOKEN)")
	pf.StringVarP(&r.output, "output", "o", "table", "output: table, json or yaml")
	pf.StringVar(&r.caCert, "ca-cert", getenv("ALLOT_CA_CERT"), "PEM file of the certificate authorities to trust for an https:// server; default: the system's (ALLOT_CA_CERT)")
	root.PersistentPreRunE = r.loadRoots
	cmds := []*cobra.Command{tenantsCommand(r), quotasCommand(r), limitsCommand(r), consumersCommand(r), claimsCommand(r),
		tokensCommand(r), credentialsCommand(r), eventsCommand(r), topCommand(r), catalogCommand(r, getenv), benchCommand(r, getenv),
		requestsCommand(r), reconcileCommand(r), overquotaCommand(r), thresholdsCommand(r), webhooksCommand(r),
		versionCommand(r)}
	for _, c := range cmds {
		r.guard(c)
	}
	root.AddCommand(cmds...)
}

// guard wraps every command under c that runs: the server's address is
// checked (and given a scheme) first, and a refused or missing token is
// explained in terms of --token and ALLOT_TOKEN.
func (r *remote) guard(c *cobra.Command) {
	for _, sub := range c.Commands() {
		r.guard(sub)
	}
	inner := c.RunE
	if inner == nil || len(c.Commands()) > 0 {
		return
	}
	c.RunE = func(c *cobra.Command, a []string) error {
		if err := r.checkServer(); err != nil && c.Annotations[serverless] == "" {
			return err
		}
		err := inner(c, a)
		if pe, ok := errors.AsType[problemError](err); ok && pe.status == http.StatusUnauthorized {
			return r.unauthorized(pe)
		}
		return err
	}
}

// serverless marks a command that talks to no server: a --server it
// cannot use is no mistake of its.
const serverless = "allot.dev/serverless"

// checkServer makes --server (or ALLOT_SERVER) a URL: host:port alone
// means http://host:port.
func (r *remote) checkServer() error {
	s := strings.TrimSpace(r.server)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" {
		return usageError{fmt.Sprintf("--server (or ALLOT_SERVER) must be host:port or an http:// or https:// URL, such as http://127.0.0.1:8080, not %q", r.server)}
	}
	r.server = s
	return nil
}

// unauthorized says where the CLI took the token from, or that it had none.
func (r *remote) unauthorized(pe problemError) error {
	switch {
	case r.token != "":
		pe.msg += "\n  the token given with --token was refused: it is unknown, revoked or mistyped"
	case r.envToken != "":
		pe.msg += "\n  the token in ALLOT_TOKEN was refused: it is unknown, revoked or mistyped; --token overrides it"
	default:
		pe.msg = "allot: no token: set ALLOT_TOKEN or pass --token (allot serve prints the admin token at its first start)"
	}
	return pe
}

// readDocument reads a JSON or YAML file (- for standard input) into v,
// refusing unknown fields.
func (r *remote) readDocument(file string, v any) error {
	var src []byte
	var err error
	if file == "-" {
		src, err = io.ReadAll(r.stdin)
	} else {
		src, err = os.ReadFile(file)
	}
	if err != nil {
		return err
	}
	// YAML is a superset of JSON: one decoder reads both.
	var generic any
	if err := yaml.Unmarshal(src, &generic); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	js, err := json.Marshal(generic)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(js)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// run wraps a command body so server refusals print their code and detail.
func run(fn func(c *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error { return refusal(fn(c, args)) }
}

func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs, RunE: subcommands}
	c.AddCommand(subs...)
	return c
}

func parseInt(name, s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, usageError{fmt.Sprintf("%s must be an integer, not %q", name, s)}
	}
	return v, nil
}

// problemError is a server's refusal as the CLI prints it.
type problemError struct {
	msg    string
	status int // the HTTP status of the refusal
}

func (e problemError) Error() string { return e.msg }

// refusal turns a server problem into the CLI's message: the code, the
// detail, then one line per violation. What the server wrote is escaped,
// so the only line breaks are these.
func refusal(err error) error {
	e, ok := errors.AsType[*client.Error](err)
	if !ok {
		return err
	}
	var b strings.Builder
	b.WriteString(printable(e.Problem.Code) + ": " + printable(e.Problem.Detail))
	if e.Problem.Operation != nil {
		fmt.Fprintf(&b, " (operation %d)", *e.Problem.Operation)
	}
	for _, v := range e.Problem.Violations {
		if v.Resource != "" {
			fmt.Fprintf(&b, "\n  %s: used %d of %d, requested %d, available %d", printable(v.Resource), v.Used, v.Hard, v.Requested, v.Available)
		} else {
			fmt.Fprintf(&b, "\n  %s.%s = %d, allowed %d to %d", printable(v.Kind), printable(v.Attribute), v.Value, v.Min, v.Max)
		}
	}
	return problemError{msg: b.String(), status: e.Status}
}
