#!/usr/bin/env bash
# Measures allot on both stores at concurrency 1…256 and draws docs/bench.svg.
# Needs PostgreSQL: DSN defaults to the local test database.
#   scripts/bench.sh [duration]        e.g. scripts/bench.sh 10s
set -euo pipefail
cd "$(dirname "$0")/.."
dsn="${ALLOT_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
duration="${1:-5s}"
out="${BENCH_OUT:-docs/bench.jsonl}"
go build -o /tmp/allot-bench ./cmd/allot
: > "$out"
for c in 1 4 16 64 256; do
  /tmp/allot-bench bench --embedded --workload claim --concurrency "$c" --duration "$duration" --warmup 1s --json | tail -1 >> "$out"
  /tmp/allot-bench bench --embedded --database "$dsn" --workload claim --concurrency "$c" --duration "$duration" --warmup 1s \
    --baseline postgres --json | tail -1 >> "$out"
done
go run ./internal/bench/chart < "$out" > docs/bench.svg
echo "wrote $out and docs/bench.svg"
