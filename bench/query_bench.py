"""The measuring half of bench/query.sh: braid over HTTP against DuckDB over the same Parquet.

braid: one keep-alive HTTP connection (http.client), a native query POSTed to /druid/v2, timed
from sending the request to the parsed JSON answer. DuckDB: one connection opened once, with the
deep storage's segment files registered as a view, timed from execute() to fetchall(). Each
repetition runs every query on both engines in turn (interleaved), after warm-up repetitions
that are not counted, so caches are warm on both sides and drift hits both alike. Every run's
answer is reduced to a few sums, which must agree between the engines.
"""

import argparse
import glob
import http.client
import json
import math
import os
import statistics
import sys
import time
import urllib.parse

import duckdb

DAY = "2013-08-31/2013-09-01"

# (name, native query, equivalent DuckDB SQL, reduction of a braid answer, of DuckDB rows)
QUERIES = [
    (
        "timeseries hourly",
        {
            "queryType": "timeseries", "dataSource": "wikipedia", "granularity": "hour", "intervals": [DAY],
            "aggregations": [
                {"type": "longSum", "name": "edits", "fieldName": "count"},
                {"type": "doubleSum", "name": "added", "fieldName": "added"},
            ],
        },
        # Hours as integers: DuckDB's fastest spelling (date_trunc on a TIMESTAMPTZ goes through ICU
        # and is ~1.6x slower), and a TIMESTAMPTZ would need pytz to reach Python.
        'SELECT epoch_ms(__time) // 3600000 AS h, SUM("count") AS edits, SUM(added) AS added '
        "FROM wikipedia GROUP BY 1 ORDER BY 1",
        lambda answer: (len(answer), sum(r["result"]["edits"] for r in answer), sum(r["result"]["added"] for r in answer)),
        lambda rows: (len(rows), sum(r[1] for r in rows), sum(r[2] for r in rows)),
    ),
    (
        "topN 10 pages by edits",
        {
            "queryType": "topN", "dataSource": "wikipedia", "granularity": "all", "intervals": [DAY],
            "dimension": "page", "metric": "edits", "threshold": 10,
            "aggregations": [{"type": "longSum", "name": "edits", "fieldName": "count"}],
        },
        'SELECT page, SUM("count") AS edits FROM wikipedia GROUP BY page ORDER BY edits DESC LIMIT 10',
        # Ties at the tenth place may pick another page; the values (and so their sum) agree.
        lambda answer: (len(answer[0]["result"]), sum(r["edits"] for r in answer[0]["result"])),
        lambda rows: (len(rows), sum(r[1] for r in rows)),
    ),
    (
        "groupBy language, namespace",
        {
            "queryType": "groupBy", "dataSource": "wikipedia", "granularity": "all", "intervals": [DAY],
            "dimensions": ["language", "namespace"],
            "aggregations": [
                {"type": "longSum", "name": "edits", "fieldName": "count"},
                {"type": "doubleSum", "name": "added", "fieldName": "added"},
            ],
        },
        'SELECT language, namespace, SUM("count") AS edits, SUM(added) AS added FROM wikipedia GROUP BY 1, 2',
        lambda answer: (len(answer), sum(r["event"]["edits"] for r in answer), sum(r["event"]["added"] for r in answer)),
        lambda rows: (len(rows), sum(r[2] for r in rows), sum(r[3] for r in rows)),
    ),
]


def same(a, b):
    return len(a) == len(b) and all(
        x == y if isinstance(x, int) and isinstance(y, int) else math.isclose(x, y, rel_tol=1e-9)
        for x, y in zip(a, b)
    )


class Braid:
    def __init__(self, url):
        parsed = urllib.parse.urlparse(url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)

    def run(self, query):
        body = json.dumps(query)
        start = time.perf_counter()
        self.connection.request("POST", "/druid/v2", body=body, headers={"Content-Type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()
        answer = json.loads(data)
        elapsed = time.perf_counter() - start
        if response.status != 200:
            sys.exit(f"braid answered HTTP {response.status}: {data[:500]!r}")
        return elapsed, answer


class DuckDb:
    def __init__(self, deep_storage):
        # One reindex of one day: every segment file is visible (nothing overshadowed).
        files = sorted(glob.glob(os.path.join(deep_storage, "segments", "wikipedia", "**", "*.parquet"), recursive=True))
        if not files:
            sys.exit(f"no Parquet segments under {deep_storage}/segments/wikipedia")
        self.files = files
        self.connection = duckdb.connect()
        self.connection.execute("SET TimeZone = 'UTC'")
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        self.connection.execute(f"CREATE VIEW wikipedia AS SELECT * FROM read_parquet([{listed}])")

    def run(self, sql):
        start = time.perf_counter()
        rows = self.connection.execute(sql).fetchall()
        return time.perf_counter() - start, rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--deep-storage", required=True)
    parser.add_argument("--reindex-report")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

    braid, duck = Braid(args.url), DuckDb(args.deep_storage)
    if args.reindex_report:
        report = json.load(open(args.reindex_report))
        size = sum(os.path.getsize(f) for f in duck.files)
        print(f"{report['events']:,} events, {report['rows']:,} rows in {len(duck.files)} segment file(s), "
              f"{size / 2**20:.1f} MiB of Parquet; {os.cpu_count()} cores; duckdb {duckdb.__version__}")
    print(f"{args.warmup} warm-up run(s), then {args.runs} interleaved runs of each query on each engine\n")

    times = {name: ([], []) for name, *_ in QUERIES}
    mismatches = []
    for rep in range(args.warmup + args.runs):
        for name, native, sql, reduce_braid, reduce_duck in QUERIES:
            b_time, answer = braid.run(native)
            d_time, rows = duck.run(sql)
            b_sums, d_sums = reduce_braid(answer), reduce_duck(rows)
            if not same(b_sums, d_sums):
                mismatches.append(f"{name} (run {rep + 1}): braid {b_sums} != duckdb {d_sums}")
            if rep >= args.warmup:
                times[name][0].append(b_time * 1000)
                times[name][1].append(d_time * 1000)

    print(f"{'query':<30} {'braid ms':>9} {'duckdb ms':>9} {'braid/duckdb':>12}  results")
    for name, native, sql, reduce_braid, reduce_duck in QUERIES:
        b, d = statistics.median(times[name][0]), statistics.median(times[name][1])
        ok = not any(m.startswith(name + " ") for m in mismatches)
        print(f"{name:<30} {b:>9.1f} {d:>9.1f} {b / d:>12.2f}  {'same' if ok else 'MISMATCH'}")
    if mismatches:
        print("\n" + "!" * 78, file=sys.stderr)
        print("MISMATCH: braid and DuckDB returned different numbers:", file=sys.stderr)
        for m in mismatches[:20]:
            print("  " + m, file=sys.stderr)
        print("!" * 78, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
