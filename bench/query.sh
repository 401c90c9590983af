#!/usr/bin/env bash
# Benchmark: `braid serve` answering Druid native queries over HTTP, side by side with DuckDB
# running the same questions in SQL over the same Parquet segment files (default: one day of 1M
# wikipedia-like events, 24 hourly gzip files, deterministic seed, one reindex).
#
#   bench/query.sh                     # 1M events, 2 warm-ups, then 15 interleaved runs per query
#   EVENTS=5000000 RUNS=25 bench/query.sh
#
# Prints, per query (hourly timeseries, topN of pages, groupBy language x namespace), the median
# latency of braid and of DuckDB, their ratio, and whether both returned the same numbers.
# Needs python3 with duckdb (`pip install duckdb`).
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-1000000}
RUNS=${RUNS:-15}
WARMUP=${WARMUP:-2}
DATA=${DATA:-bench/data/query}
SPEC=examples/wikipedia.json

python3 -c "import duckdb" 2>/dev/null || { echo "bench/query.sh needs python3 with duckdb: pip install duckdb" >&2; exit 1; }
cargo build --release --quiet --bin braid
BRAID=target/release/braid

rm -rf "$DATA"
mkdir -p "$DATA"
"$BRAID" generate --out "$DATA/input" --events "$EVENTS" --hours 24 --seed 42 --start 2013-08-31T00:00:00Z
"$BRAID" raw put --spec "$SPEC" --deep-storage "$DATA/deep" --json "$DATA"/input/*.json.gz >"$DATA/put.json" 2>/dev/null
"$BRAID" batch reindex --spec "$SPEC" --deep-storage "$DATA/deep" --interval 2013-08-31/2013-09-01 \
  --json >"$DATA/reindex.json" 2>/dev/null

# The server prints one line once it listens; read it from a FIFO held open for the whole run
# (closing it would make a later write to stdout kill the server).
mkfifo "$DATA/serve.out"
"$BRAID" serve --deep-storage "$DATA/deep" --listen 127.0.0.1:0 >"$DATA/serve.out" 2>"$DATA/serve.log" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
exec 3<"$DATA/serve.out"
if ! read -r line <&3 || [[ $line != "braid serving Druid queries on "* ]]; then
  echo "braid serve did not start (printed: ${line:-nothing}); its log:" >&2
  cat "$DATA/serve.log" >&2
  exit 1
fi
URL=${line#braid serving Druid queries on }

python3 bench/query_bench.py --url "$URL" --deep-storage "$DATA/deep" --reindex-report "$DATA/reindex.json" \
  --runs "$RUNS" --warmup "$WARMUP"
