package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgBaseline is quota enforcement as a team would write it by hand in front
// of PostgreSQL: a usage row per tenant and resource, and one transaction
// per claim whose conditional UPDATE will not pass the hard quota.
type pgBaseline struct{ pool *pgxpool.Pool }

const baselineSchema = `
CREATE TABLE usage (
	tenant text NOT NULL, resource text NOT NULL, used bigint NOT NULL, hard bigint NOT NULL,
	PRIMARY KEY (tenant, resource));
CREATE TABLE consumers (
	tenant text NOT NULL, id text NOT NULL, kind text NOT NULL, state text NOT NULL, memory_mb bigint NOT NULL,
	PRIMARY KEY (tenant, id));`

// footprint is what one stopped instance uses, as the catalog says; the
// baseline hard-codes it, in the order its rows are locked.
var footprint = []struct {
	resource string
	amount   int64
}{{instances, 1}}

var errRefused = errors.New("refused")

func (b *pgBaseline) claim(ctx context.Context, tenant, id string) (outcome, error) {
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		for _, f := range footprint {
			tag, err := tx.Exec(ctx, `UPDATE usage SET used = used + $3 WHERE tenant = $1 AND resource = $2 AND used + $3 <= hard`,
				tenant, f.resource, f.amount)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return errRefused
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO consumers (tenant, id, kind, state, memory_mb) VALUES ($1, $2, 'compute.instance', 'stopped', 16)`,
			tenant, id)
		return err
	})
	switch {
	case errors.Is(err, errRefused):
		return refused, nil
	case err != nil:
		return failed, err
	}
	return admitted, nil
}

func (b *pgBaseline) release(ctx context.Context, tenant, id string) (outcome, error) {
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM consumers WHERE tenant = $1 AND id = $2`, tenant, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("consumer %s/%s not found", tenant, id)
		}
		for _, f := range footprint {
			if _, err := tx.Exec(ctx, `UPDATE usage SET used = used - $3 WHERE tenant = $1 AND resource = $2`, tenant, f.resource, f.amount); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return failed, err
	}
	return admitted, nil
}

// check returns the overshoot, as allot's check does: usage above hard,
// plus usage that differs from what the consumers use.
func (b *pgBaseline) check(ctx context.Context) (overshoot int64, problems []string, err error) {
	for _, f := range footprint {
		rows, err := b.pool.Query(ctx, `
			SELECT u.tenant, u.used, u.hard, (SELECT count(*) FROM consumers c WHERE c.tenant = u.tenant) * $2::bigint
			FROM usage u WHERE u.resource = $1 ORDER BY u.tenant`, f.resource, f.amount)
		if err != nil {
			return 0, nil, err
		}
		var tenant string
		var used, hard, sum int64
		_, err = pgx.ForEachRow(rows, []any{&tenant, &used, &hard, &sum}, func() error {
			if used > hard {
				overshoot += used - hard
				problems = append(problems, fmt.Sprintf("baseline %s: %s used %d, above its hard quota %d", tenant, f.resource, used, hard))
			}
			if used != sum {
				overshoot += max(used-sum, sum-used)
				problems = append(problems, fmt.Sprintf("baseline %s: %s used %d, but its consumers use %d", tenant, f.resource, used, sum))
			}
			return nil
		})
		if err != nil {
			return 0, nil, err
		}
	}
	return overshoot, problems, nil
}

// runBaseline runs the claim workload against the baseline in a schema of
// its own, which it drops at the end.
func runBaseline(ctx context.Context, cfg Config, p *plan, log io.Writer) (*Summary, error) {
	dsn, drop, err := tempSchema(ctx, cmp.Or(cfg.BaselineDatabase, cfg.Database))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := drop(); err != nil {
			fmt.Fprintf(log, "allot bench: dropping the baseline's schema: %v\n", err)
		}
	}()
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	pc.MaxConns = int32(cfg.Concurrency)
	pc.ConnConfig.RuntimeParams["synchronous_commit"] = "on" // durable before acknowledged, as allot is
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, baselineSchema); err != nil {
		return nil, err
	}
	_, err = pool.CopyFrom(ctx, pgx.Identifier{"usage"}, []string{"tenant", "resource", "used", "hard"},
		pgx.CopyFromSlice(len(p.tenants), func(i int) ([]any, error) {
			return []any{p.tenants[i], instances, 0, p.hard[i]}, nil
		}))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "allot bench: the same %s workload on a hand-written PostgreSQL schema\n", cfg.Workload)
	b := &pgBaseline{pool: pool}
	st, elapsed := drive(ctx, cfg, p, b, nil)
	s := st.summary(cfg, "baseline-postgres", elapsed)
	if s.Overshoot, s.Problems, err = b.check(ctx); err != nil {
		return nil, fmt.Errorf("checking the invariants: %w", err)
	}
	return s, nil
}
