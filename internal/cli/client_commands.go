package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/allot-dev/allot/client"
)

// remote holds what every command that talks to a server needs.
type remote struct {
	server, token, output string
	envToken              string // ALLOT_TOKEN: not a flag default, so help never shows it
	stdin                 io.Reader
	stdout                io.Writer
}

func (r *remote) client() *client.Client {
	token := r.token
	if token == "" {
		token = r.envToken
	}
	return client.New(r.server, client.WithToken(token))
}

// show prints v as JSON or YAML, or calls table for people.
func (r *remote) show(v any, table func(w io.Writer)) error {
	switch r.output {
	case "json":
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
		_, err := r.stdout.Write(jsonSafe(b.Bytes()))
		return err
	case "yaml":
		// Through JSON, so YAML keys are the API's field names.
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var generic any
		if err := dec.Decode(&generic); err != nil {
			return err
		}
		out, err := yamlSafe(integers(generic))
		if err != nil {
			return err
		}
		_, err = r.stdout.Write(out)
		return err
	case "table":
		table(r.stdout)
		return nil
	}
	return usageError{fmt.Sprintf("-o must be table, json or yaml, not %q", r.output)}
}

// integers turns the json.Numbers of a decoded document into int64 (all
// of the API's numbers are), so YAML shows 1048576, not 1.048576e+06.
func integers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = integers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = integers(e)
		}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

// problemError is a server's refusal as the CLI prints it.
type problemError struct{ msg string }

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
	return problemError{b.String()}
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
	root.AddCommand(tenantsCommand(r), quotasCommand(r), limitsCommand(r), consumersCommand(r), claimsCommand(r),
		tokensCommand(r), credentialsCommand(r), eventsCommand(r), topCommand(r), catalogCommand(r, getenv), benchCommand(r, getenv),
		requestsCommand(r), reconcileCommand(r), overquotaCommand(r), thresholdsCommand(r), webhooksCommand(r))
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
	c := &cobra.Command{Use: use, Short: short, Args: args(cobra.NoArgs)}
	c.AddCommand(subs...)
	return c
}

func tenantsCommand(r *remote) *cobra.Command {
	var name, plan string
	create := &cobra.Command{Use: "create ID", Short: "Create a tenant", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			t, err := r.client().CreateTenant(c.Context(), client.CreateTenantRequest{ID: a[0], Name: name, Plan: plan})
			if err != nil {
				return err
			}
			return r.show(t, func(w io.Writer) { tenantTable(w, []client.Tenant{*t}) })
		})}
	create.Flags().StringVar(&name, "name", "", "display name (default: the id)")
	create.Flags().StringVar(&plan, "plan", "", "plan the tenant starts from")
	list := &cobra.Command{Use: "list", Short: "List tenants", Args: args(cobra.NoArgs),
		RunE: run(func(c *cobra.Command, a []string) error {
			ts, err := r.client().Tenants(c.Context())
			if err != nil {
				return err
			}
			return r.show(ts, func(w io.Writer) { tenantTable(w, ts) })
		})}
	get := &cobra.Command{Use: "get ID", Short: "Show a tenant", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			t, err := r.client().Tenant(c.Context(), a[0])
			if err != nil {
				return err
			}
			return r.show(t, func(w io.Writer) { tenantTable(w, []client.Tenant{*t}) })
		})}
	del := &cobra.Command{Use: "delete ID", Short: "Delete a tenant that owns nothing", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			if err := r.client().DeleteTenant(c.Context(), a[0]); err != nil {
				return err
			}
			fmt.Fprintf(r.stdout, "tenant %s deleted\n", printable(a[0]))
			return nil
		})}
	var newName, newPlan string
	update := &cobra.Command{Use: "update ID [--name NAME] [--plan PLAN]", Short: "Rename a tenant or move it to another plan (--plan '' for none)",
		Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			var req client.UpdateTenantRequest
			if c.Flags().Changed("name") {
				req.Name = &newName
			}
			if c.Flags().Changed("plan") {
				req.Plan = &newPlan
			}
			if req.Name == nil && req.Plan == nil {
				return usageError{"nothing to change: give --name or --plan"}
			}
			t, err := r.client().UpdateTenant(c.Context(), a[0], req)
			if err != nil {
				return err
			}
			return r.show(t, func(w io.Writer) { tenantTable(w, []client.Tenant{*t}) })
		})}
	update.Flags().StringVar(&newName, "name", "", "new display name")
	update.Flags().StringVar(&newPlan, "plan", "", "new plan; empty for none")
	return group("tenants", "Manage tenants", create, list, get, update, del)
}

func tenantTable(w io.Writer, ts []client.Tenant) {
	t := newTable("TENANT", "NAME", "PLAN")
	for _, x := range ts {
		t.row(x.ID, x.Name, dash(x.Plan))
	}
	t.print(w)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func quotasCommand(r *remote) *cobra.Command {
	get := &cobra.Command{Use: "get TENANT", Short: "Show a tenant's usage, quotas and limits", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			q, err := r.client().Quotas(c.Context(), a[0])
			if err != nil {
				return err
			}
			return r.show(q, func(w io.Writer) { quotasTable(w, q) })
		})}
	var min, max int64
	set := &cobra.Command{Use: "set TENANT RESOURCE HARD", Short: "Set a tenant's hard quota of a resource", Args: args(cobra.ExactArgs(3)),
		RunE: run(func(c *cobra.Command, a []string) error {
			hard, err := parseInt("HARD", a[2])
			if err != nil {
				return err
			}
			req := client.SetQuotaRequest{Hard: &hard}
			if c.Flags().Changed("min") || c.Flags().Changed("max") {
				if !c.Flags().Changed("min") || !c.Flags().Changed("max") {
					return usageError{"--min and --max go together"}
				}
				req.Requestable = &client.Range{Min: min, Max: max}
			}
			rq, err := r.client().SetQuota(c.Context(), a[0], a[1], req)
			if err != nil {
				return err
			}
			return r.show(rq, func(w io.Writer) {
				fmt.Fprintf(w, "%s: hard %d, used %d, requestable %d-%d\n", printable(rq.Resource), rq.Hard, rq.Used, rq.Requestable.Min, rq.Requestable.Max)
				if rq.OverQuota {
					fmt.Fprintf(w, "! %s is over quota: growth is refused until usage falls below %d\n", printable(a[0]), rq.Hard)
				}
			})
		})}
	set.Flags().Int64Var(&min, "min", 0, "lowest hard quota the tenant may request")
	set.Flags().Int64Var(&max, "max", 0, "highest hard quota the tenant may request")
	return group("quotas", "Read and set quotas", get, set)
}

func parseInt(name, s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, usageError{fmt.Sprintf("%s must be an integer, not %q", name, s)}
	}
	return v, nil
}

const barWidth = 20

// bar draws used/hard as a bar of barWidth cells.
func bar(used, hard int64) string {
	filled := barWidth
	if hard > 0 && used < hard {
		filled = int(float64(used) / float64(hard) * barWidth)
	}
	if used == 0 {
		filled = 0
	}
	return strings.Repeat("█", filled) + strings.Repeat("░", barWidth-filled)
}

// percent is used/hard in whole percent; usage against a zero quota is
// shown as over.
func percent(used, hard int64) string {
	switch {
	case hard == 0 && used == 0:
		return "0%"
	case hard == 0:
		return "∞"
	}
	return fmt.Sprintf("%d%%", used*100/hard)
}

func quotasTable(w io.Writer, q *client.Quotas) {
	service := ""
	var t *table
	flush := func() {
		if t != nil {
			t.print(w)
			fmt.Fprintln(w)
		}
	}
	for _, res := range q.Resources {
		svc, name, _ := strings.Cut(res.Resource, ".")
		if svc != service {
			flush()
			service = svc
			fmt.Fprintf(w, "%s (tenant %s, region %s)\n", printable(svc), printable(q.Tenant), printable(q.Region))
			t = newTable("", "RESOURCE", "USED/HARD", "USAGE", "%", "REQUESTABLE")
		}
		mark := ""
		if res.OverQuota {
			mark = "!"
		}
		used := fmt.Sprintf("%d/%d", res.Used, res.Hard)
		if res.Unit != "" {
			used += " " + res.Unit
		}
		pct := percent(res.Used, res.Hard)
		if res.OverQuota {
			pct += " OVER"
		}
		t.row(mark, name, used, bar(res.Used, res.Hard), pct, fmt.Sprintf("%d-%d", res.Requestable.Min, res.Requestable.Max))
	}
	flush()
	if len(q.Limits) > 0 {
		fmt.Fprintln(w, "limits")
		t := newTable("KIND", "LIMIT", "MIN", "MAX")
		for _, l := range q.Limits {
			t.row(l.Kind, l.Limit, strconv.FormatInt(l.Min, 10), strconv.FormatInt(l.Max, 10))
		}
		t.print(w)
	}
}

func limitsCommand(r *remote) *cobra.Command {
	set := &cobra.Command{Use: "set TENANT KIND LIMIT MIN MAX", Short: "Set a tenant's per-object limit", Args: args(cobra.ExactArgs(5)),
		RunE: run(func(c *cobra.Command, a []string) error {
			min, err := parseInt("MIN", a[3])
			if err != nil {
				return err
			}
			max, err := parseInt("MAX", a[4])
			if err != nil {
				return err
			}
			l, err := r.client().SetLimit(c.Context(), a[0], a[1], a[2], client.SetLimitRequest{Min: &min, Max: &max})
			if err != nil {
				return err
			}
			return r.show(l, func(w io.Writer) {
				fmt.Fprintf(w, "%s %s: %d-%d\n", printable(l.Kind), printable(l.Limit), l.Min, l.Max)
			})
		})}
	return group("limits", "Set per-object limits", set)
}

func consumersCommand(r *remote) *cobra.Command {
	var kind, state string
	var attrs []string
	var dryRun bool
	var ttl time.Duration
	var ifMatch int64
	put := &cobra.Command{Use: "put TENANT CONSUMER", Short: "Create or update a consumer (claim what it uses)", Args: args(cobra.ExactArgs(2)),
		RunE: run(func(c *cobra.Command, a []string) error {
			req := client.PutConsumerRequest{Kind: kind, State: state, Attributes: map[string]int64{}, TTLSeconds: int64(ttl / time.Second)}
			for _, kv := range attrs {
				k, v, ok := strings.Cut(kv, "=")
				n, err := strconv.ParseInt(v, 10, 64)
				if !ok || err != nil {
					return usageError{fmt.Sprintf("--attr takes NAME=INTEGER, not %q", kv)}
				}
				req.Attributes[k] = n
			}
			if ttl%time.Second != 0 || ttl < 0 {
				return usageError{"--ttl must be a whole number of seconds, e.g. 30s or 5m"}
			}
			out, err := r.client().PutConsumer(c.Context(), a[0], a[1], req, client.PutOptions{DryRun: dryRun, IfMatch: ifMatch})
			if err != nil {
				return err
			}
			return r.show(out, func(w io.Writer) {
				verb := map[bool]string{true: "created", false: "updated"}[out.Created]
				if dryRun {
					verb = "would be " + verb + " (dry run)"
				}
				fmt.Fprintf(w, "consumer %s %s, generation %d\n", printable(out.Consumer), verb, out.Generation)
				consumerTable(w, []client.Consumer{*out})
			})
		})}
	f := put.Flags()
	f.StringVar(&kind, "kind", "", "kind of the consumer, e.g. compute.instance (required)")
	f.StringVar(&state, "state", "", "state, for kinds that have states")
	f.StringArrayVar(&attrs, "attr", nil, "attribute NAME=VALUE (repeatable)")
	f.BoolVar(&dryRun, "dry-run", false, "answer what would happen, change nothing")
	f.DurationVar(&ttl, "ttl", 0, "hold as a reservation for this long, e.g. 30s")
	f.Int64Var(&ifMatch, "if-match", 0, "only if the consumer is at this generation")
	_ = put.MarkFlagRequired("kind")

	get := &cobra.Command{Use: "get TENANT CONSUMER", Short: "Show a consumer", Args: args(cobra.ExactArgs(2)),
		RunE: run(func(c *cobra.Command, a []string) error {
			out, err := r.client().Consumer(c.Context(), a[0], a[1])
			if err != nil {
				return err
			}
			return r.show(out, func(w io.Writer) { consumerTable(w, []client.Consumer{*out}) })
		})}

	var q client.ConsumerQuery
	var all bool
	list := &cobra.Command{Use: "list TENANT", Short: "List a tenant's consumers", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			var cs []client.Consumer
			query := q
			for {
				page, err := r.client().Consumers(c.Context(), a[0], query)
				if err != nil {
					return err
				}
				cs = append(cs, page.Consumers...)
				if !all || page.NextCursor == "" {
					break
				}
				query.Cursor = page.NextCursor
			}
			return r.show(cs, func(w io.Writer) { consumerTable(w, cs) })
		})}
	list.Flags().StringVar(&q.Kind, "kind", "", "only this kind")
	list.Flags().StringVar(&q.State, "state", "", "only this state")
	list.Flags().IntVar(&q.Limit, "limit", 0, "page size (server default 100, at most 1000)")
	list.Flags().BoolVar(&all, "all", false, "follow the pages to the end")

	var delOpts client.DeleteOptions
	del := &cobra.Command{Use: "delete TENANT CONSUMER", Short: "Delete a consumer, releasing what it uses", Args: args(cobra.ExactArgs(2)),
		RunE: run(func(c *cobra.Command, a []string) error {
			if err := r.client().DeleteConsumer(c.Context(), a[0], a[1], delOpts); err != nil {
				return err
			}
			if delOpts.DryRun {
				fmt.Fprintf(r.stdout, "consumer %s would be deleted (dry run)\n", printable(a[1]))
			} else {
				fmt.Fprintf(r.stdout, "consumer %s deleted\n", printable(a[1]))
			}
			return nil
		})}
	del.Flags().BoolVar(&delOpts.DryRun, "dry-run", false, "answer what would happen, change nothing")
	del.Flags().Int64Var(&delOpts.IfMatch, "if-match", 0, "only if the consumer is at this generation")
	return group("consumers", "Claim, read and release consumers", put, get, list, del)
}

func consumerTable(w io.Writer, cs []client.Consumer) {
	t := newTable("CONSUMER", "KIND", "STATE", "ATTRIBUTES", "GEN", "EXPIRES")
	for _, c := range cs {
		keys := make([]string, 0, len(c.Attributes))
		for k := range c.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var attrs []string
		for _, k := range keys {
			attrs = append(attrs, fmt.Sprintf("%s=%d", k, c.Attributes[k]))
		}
		exp := "-"
		if c.ExpiresAt != nil {
			exp = c.ExpiresAt.UTC().Format(time.RFC3339)
		}
		t.row(c.Consumer, c.Kind, dash(c.State), strings.Join(attrs, ","), strconv.FormatInt(c.Generation, 10), exp)
	}
	t.print(w)
}

func claimsCommand(r *remote) *cobra.Command {
	var file string
	var dryRun bool
	apply := &cobra.Command{Use: "apply -f FILE", Short: "Apply a batch of puts and deletes, all or none", Args: args(cobra.NoArgs),
		RunE: run(func(c *cobra.Command, a []string) error {
			var req client.ClaimsRequest
			if err := r.readDocument(file, &req); err != nil {
				return err
			}
			req.DryRun = req.DryRun || dryRun
			out, err := r.client().Claims(c.Context(), req)
			if err != nil {
				return err
			}
			return r.show(out, func(w io.Writer) {
				verb := "applied"
				if out.DryRun {
					verb = "would be applied (dry run)"
				}
				fmt.Fprintf(w, "%d operations %s\n", len(out.Results), verb)
				consumerTable(w, out.Results)
			})
		})}
	apply.Flags().StringVarP(&file, "file", "f", "", "batch as JSON or YAML ({operations: [...]}); - for standard input")
	apply.Flags().BoolVar(&dryRun, "dry-run", false, "answer what would happen, change nothing")
	_ = apply.MarkFlagRequired("file")
	return group("claims", "Apply batches of claims", apply)
}

func tokensCommand(r *remote) *cobra.Command {
	var req client.CreateTokenRequest
	create := &cobra.Command{Use: "create --role ROLE --name NAME [--tenant TENANT]", Short: "Create an API token (shown once)", Args: args(cobra.NoArgs),
		RunE: run(func(c *cobra.Command, a []string) error {
			t, err := r.client().CreateToken(c.Context(), req)
			if err != nil {
				return err
			}
			return r.show(t, func(w io.Writer) {
				fmt.Fprintf(w, "token %s (%s) created; it is shown only this once:\n%s\n", printable(t.Name), printable(t.Role), printable(t.Secret))
			})
		})}
	create.Flags().StringVar(&req.Role, "role", "", "admin, service or tenant")
	create.Flags().StringVar(&req.Tenant, "tenant", "", "the tenant of a tenant token")
	create.Flags().StringVar(&req.Name, "name", "", "a name for the token")
	_ = create.MarkFlagRequired("role")
	_ = create.MarkFlagRequired("name")
	list := &cobra.Command{Use: "list", Short: "List tokens (never their secrets)", Args: args(cobra.NoArgs),
		RunE: run(func(c *cobra.Command, a []string) error {
			ts, err := r.client().Tokens(c.Context())
			if err != nil {
				return err
			}
			return r.show(ts, func(w io.Writer) {
				t := newTable("NAME", "ROLE", "TENANT", "REVOKED")
				for _, x := range ts {
					revoked := "-"
					if x.RevokedAt != nil {
						revoked = x.RevokedAt.UTC().Format(time.RFC3339)
					}
					t.row(x.Name, x.Role, dash(x.Tenant), revoked)
				}
				t.print(w)
			})
		})}
	revoke := &cobra.Command{Use: "revoke NAME", Short: "Revoke a token", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			if err := r.client().RevokeToken(c.Context(), a[0]); err != nil {
				return err
			}
			fmt.Fprintf(r.stdout, "token %s revoked\n", printable(a[0]))
			return nil
		})}
	return group("tokens", "Manage API tokens", create, list, revoke)
}

func credentialsCommand(r *remote) *cobra.Command {
	create := &cobra.Command{Use: "create TENANT", Short: "Create an AK/SK pair (the secret key is shown once)", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			k, err := r.client().CreateCredential(c.Context(), a[0])
			if err != nil {
				return err
			}
			return r.show(k, func(w io.Writer) {
				fmt.Fprintf(w, "access key: %s\nsecret key: %s\n(the secret key is shown only this once)\n", printable(k.AccessKey), printable(k.SecretKey))
			})
		})}
	list := &cobra.Command{Use: "list TENANT", Short: "List a tenant's access keys", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			ks, err := r.client().Credentials(c.Context(), a[0])
			if err != nil {
				return err
			}
			return r.show(ks, func(w io.Writer) {
				t := newTable("ACCESS KEY", "CREATED", "REVOKED")
				for _, k := range ks {
					revoked := "-"
					if k.RevokedAt != nil {
						revoked = k.RevokedAt.UTC().Format(time.RFC3339)
					}
					t.row(k.AccessKey, k.CreatedAt.UTC().Format(time.RFC3339), revoked)
				}
				t.print(w)
			})
		})}
	revoke := &cobra.Command{Use: "revoke TENANT ACCESS_KEY", Short: "Revoke an access key", Args: args(cobra.ExactArgs(2)),
		RunE: run(func(c *cobra.Command, a []string) error {
			if err := r.client().RevokeCredential(c.Context(), a[0], a[1]); err != nil {
				return err
			}
			fmt.Fprintf(r.stdout, "access key %s revoked\n", printable(a[1]))
			return nil
		})}
	return group("credentials", "Manage AK/SK access keys", create, list, revoke)
}

func eventsCommand(r *remote) *cobra.Command {
	var q client.EventQuery
	var follow bool
	c := &cobra.Command{Use: "events", Short: "Read the ledger; --follow streams new events as they happen", Args: args(cobra.NoArgs),
		RunE: run(func(c *cobra.Command, a []string) error {
			if follow {
				return r.followEvents(c.Context(), q)
			}
			page, err := r.client().Events(c.Context(), q)
			if err != nil {
				return err
			}
			return r.show(page, func(w io.Writer) {
				t := newTable("SEQ", "TIME", "TYPE", "TENANT", "SUBJECT", "ACTOR")
				for _, e := range page.Events {
					t.row(strconv.FormatInt(e.Seq, 10), e.Time.UTC().Format(time.RFC3339), e.Type, dash(e.Tenant), dash(e.Subject), e.Actor+" ("+e.Role+")")
				}
				t.print(w)
			})
		})}
	c.Flags().StringVar(&q.Tenant, "tenant", "", "only this tenant's events")
	c.Flags().Int64Var(&q.After, "after", 0, "events after this sequence number")
	c.Flags().IntVar(&q.Limit, "limit", 0, "page size (server default 100)")
	c.Flags().BoolVarP(&follow, "follow", "f", false, "after the events so far, print new ones as they happen, until interrupted")
	return c
}

func topCommand(r *remote) *cobra.Command {
	var search string
	var limit int
	c := &cobra.Command{Use: "top", Short: "Tenants by their highest utilisation, those over quota first", Args: args(cobra.NoArgs),
		RunE: run(func(c *cobra.Command, a []string) error {
			u, err := r.client().Utilisation(c.Context(), search, limit)
			if err != nil {
				return err
			}
			return r.show(u, func(w io.Writer) {
				t := newTable("", "TENANT", "RESOURCE", "USED/HARD", "USAGE", "%")
				for _, x := range u.Tenants {
					used, hard := x.Worst.Used, x.Worst.Hard
					mark, pct := "", percent(used, hard)
					if len(x.Over) > 0 {
						mark, pct = "!", pct+" OVER"
					}
					t.row(mark, x.Tenant.ID, dash(x.Worst.Resource), fmt.Sprintf("%d/%d", used, hard), bar(used, hard), pct)
				}
				t.print(w)
				if u.Total > len(u.Tenants) {
					fmt.Fprintf(w, "(%d more; --limit shows more)\n", u.Total-len(u.Tenants))
				}
			})
		})}
	c.Flags().StringVar(&search, "search", "", "only tenants whose id or name contains this")
	c.Flags().IntVar(&limit, "limit", 0, "at most this many tenants (server default 100)")
	return c
}
