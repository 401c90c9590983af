#!/usr/bin/env bash
# Benchmark: `braid batch reindex` over wikipedia-like events (default 1M events, ~300 bytes
# each, 12 string dimensions, 24 hourly gzip files, deterministic seed).
#
#   bench/reindex.sh                 # 1M events, 3 runs with all cores, 3 runs with one thread
#   EVENTS=5000000 RUNS=5 bench/reindex.sh
#
# Prints each run and the medians: events/s, uncompressed MB/s, CPU seconds, peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-1000000}
RUNS=${RUNS:-3}
DATA=${DATA:-bench/data}
SPEC=examples/wikipedia.json

cargo build --release --quiet --bin braid
BRAID=target/release/braid

rm -rf "$DATA"
mkdir -p "$DATA"
"$BRAID" generate --out "$DATA/input" --events "$EVENTS" --hours 24 --seed 42 --start 2013-08-31T00:00:00Z
"$BRAID" raw put --spec "$SPEC" --deep-storage "$DATA/deep" --json "$DATA"/input/*.json.gz >"$DATA/put.json" 2>/dev/null

run() { # threads run-number
  /usr/bin/time -f '%e %U %S %M' -o "$DATA/time-$1-$2.txt" \
    "$BRAID" batch reindex --spec "$SPEC" --deep-storage "$DATA/deep" \
      --interval 2013-08-31/2013-09-01 --threads "$1" --json >"$DATA/reindex-$1-$2.json" 2>/dev/null
}

for threads in "$(nproc)" 1; do
  for i in $(seq "$RUNS"); do run "$threads" "$i"; done
done

python3 - "$DATA" "$RUNS" "$(nproc)" <<'PY'
import json, statistics, sys
data, runs, cores = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(f"{'threads':>7} {'run':>3} {'events':>9} {'rows':>9} {'wall s':>7} {'cpu s':>6} {'events/s':>10} {'MB/s':>6} {'ev/cpu-s':>9} {'RSS MiB':>7}")
summary = {}
for threads in sorted({cores, 1}, reverse=True):
    rates = []
    for i in range(1, runs + 1):
        report = json.load(open(f"{data}/reindex-{threads}-{i}.json"))
        wall, user, sys_, rss = open(f"{data}/time-{threads}-{i}.txt").read().split()
        wall, cpu = float(wall), float(user) + float(sys_)
        rate = report["events"] / wall
        mbs = report["rawUncompressedBytes"] / wall / 1e6
        rates.append((rate, mbs, report["events"] / cpu, cpu, int(rss) / 1024, wall))
        print(f"{threads:>7} {i:>3} {report['events']:>9} {report['rows']:>9} {wall:>7.2f} {cpu:>6.2f} {rate:>10.0f} {mbs:>6.1f} {report['events'] / cpu:>9.0f} {int(rss) / 1024:>7.0f}")
    summary[threads] = [statistics.median(c) for c in zip(*rates)]
print()
for threads, (rate, mbs, per_cpu, cpu, rss, wall) in summary.items():
    print(f"median, {threads} thread(s): {rate:,.0f} events/s, {mbs:.1f} MB/s uncompressed, {per_cpu:,.0f} events per CPU-second, {wall:.2f} s wall, {rss:.0f} MiB peak RSS")
if len(summary) == 2:
    print(f"speed-up of {cores} threads over 1: {summary[cores][0] / summary[1][0]:.2f}x")
PY
