"""pydruid and SQLAlchemy, unmodified, against a running `braid serve`.

Run by tests/query.rs (`pydruid_and_sqlalchemy_work_unmodified`) over a deep storage built from
`braid generate` events; the expected numbers are computed here from those same raw gzip files,
not asked of braid. Exits non-zero with a message on the first mismatch.

    python3 tests/pydruid_client.py --host 127.0.0.1 --port 8082 --events DIR
"""

import argparse
import collections
import glob
import gzip
import json
import math
import sys
import warnings

from pydruid.client import PyDruid
from pydruid.db import connect
from pydruid.utils.aggregators import count, doublesum, longsum
from pydruid.utils.filters import Dimension, Filter
from pydruid.utils.having import Aggregation
from pydruid.utils.postaggregator import Const, Field

DIMENSIONS = [
    "page", "language", "user", "unpatrolled", "newPage", "robot", "anonymous",
    "namespace", "continent", "country", "region", "city",
]
DAY = "2013-08-31/2013-09-01"


def check(condition, message):
    if not condition:
        print(f"MISMATCH: {message}", file=sys.stderr)
        sys.exit(1)


def close(a, b):
    return a is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def load_events(directory):
    events = []
    for path in sorted(glob.glob(f"{directory}/*.json.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            events.extend(json.loads(line) for line in f if line.strip())
    check(events, f"no events under {directory}")
    return events


def hour_of(timestamp):
    """2013-08-31T01:02:33.517Z -> 2013-08-31T01:00:00.000Z"""
    return timestamp[:13] + ":00:00.000Z"


def rollup_rows(events):
    """Rows of the wikipedia spec's rollup: same millisecond and same dimensions."""
    return len({(e["timestamp"], tuple(e[d] for d in DIMENSIONS)) for e in events})


def native(client, events):
    english = [e for e in events if e["language"] == "en"]

    # Timeseries, hourly, a selector filter, a lower-case period interval as pydruid's docs
    # write them, and an arithmetic post-aggregator.
    ts = client.timeseries(
        datasource="wikipedia",
        granularity="hour",
        intervals="2013-08-31/p1d",
        aggregations={"edits": longsum("count"), "added": doublesum("added"), "rows": count("count")},
        post_aggregations={"addedPerEdit": Field("added") / Field("edits"), "doubled": Field("edits") * Const(2)},
        filter=Dimension("language") == "en",
    )
    by_hour = collections.defaultdict(list)
    for e in english:
        by_hour[hour_of(e["timestamp"])].append(e)
    got = {row["timestamp"]: row["result"] for row in ts.result}
    check(sorted(got) == sorted(by_hour), f"timeseries buckets {sorted(got)} != {sorted(by_hour)}")
    for hour, evs in by_hour.items():
        r = got[hour]
        added = sum(e["added"] for e in evs)
        check(r["edits"] == len(evs), f"{hour} edits {r['edits']} != {len(evs)}")
        check(r["rows"] == rollup_rows(evs), f"{hour} rows {r['rows']} != {rollup_rows(evs)}")
        check(close(r["added"], added), f"{hour} added {r['added']} != {added}")
        check(close(r["addedPerEdit"], added / len(evs)), f"{hour} addedPerEdit {r['addedPerEdit']}")
        check(close(r["doubled"], 2 * len(evs)), f"{hour} doubled {r['doubled']}")

    # TopN of pages among human edits of articles: and of a selector and a not-selector.
    top = client.topn(
        datasource="wikipedia",
        granularity="all",
        intervals=DAY,
        aggregations={"edits": longsum("count"), "added": doublesum("added")},
        dimension="page",
        metric="added",
        threshold=5,
        filter=(Dimension("namespace") == "article") & (Dimension("robot") != "true"),
    )
    added_by_page = collections.Counter()
    for e in events:
        if e["namespace"] == "article" and e["robot"] != "true":
            added_by_page[e["page"]] += e["added"]
    check(len(top.result) == 1, f"topN granularity all has one bucket: {top.result}")
    entries = top.result[0]["result"]
    want = sorted(added_by_page.values(), reverse=True)[:5]
    check([e["added"] for e in entries] == want, f"topN added {[e['added'] for e in entries]} != {want}")
    for e in entries:
        check(close(e["added"], added_by_page[e["page"]]), f"topN {e}")

    # GroupBy with an in filter, having and a limit spec.
    group = client.groupby(
        datasource="wikipedia",
        granularity="all",
        intervals=DAY,
        dimensions=["language", "namespace"],
        aggregations={"edits": longsum("count"), "rows": count("count")},
        filter=Filter(type="in", dimension="language", values=["en", "de", "fr"]),
        having=Aggregation("edits") > 10,
        limit_spec={"type": "default", "limit": 50, "columns": [{"dimension": "edits", "direction": "descending"}]},
    )
    pairs = collections.Counter((e["language"], e["namespace"]) for e in events if e["language"] in ("en", "de", "fr"))
    want = sorted((n for n in pairs.values() if n > 10), reverse=True)[:50]
    got = [row["event"]["edits"] for row in group.result]
    check(got == want, f"groupBy edits {got} != {want}")
    for row in group.result:
        ev = row["event"]
        check(ev["edits"] == pairs[(ev["language"], ev["namespace"])], f"groupBy {row}")

    # pydruid's search filter sends caseSensitive as the string "false".
    found = client.timeseries(
        datasource="wikipedia",
        granularity="all",
        intervals=DAY,
        aggregations={"edits": longsum("count")},
        filter=Filter(type="search", dimension="page", value="DANGER"),
    )
    want = sum(1 for e in events if "danger" in e["page"].lower())
    check(found.result[0]["result"]["edits"] == want, f"search filter {found.result} != {want}")

    bounds = client.time_boundary(datasource="wikipedia")
    times = sorted(e["timestamp"] for e in events)
    result = bounds.result[0]["result"]
    check(result["minTime"][:19] == times[0][:19], f"minTime {result} vs {times[0]}")
    check(result["maxTime"][:19] == times[-1][:19], f"maxTime {result} vs {times[-1]}")

    scan = client.scan(datasource="wikipedia", granularity="all", intervals=DAY, limit=3,
                       columns=["__time", "page", "added"], order="ascending")
    rows = [event for batch in scan.result for event in batch["events"]]
    check(len(rows) == 3, f"scan limit 3: {scan.result}")
    check(rows[0]["page"] == sorted(events, key=lambda e: e["timestamp"])[0]["page"], f"scan first row {rows[0]}")

    meta = client.segment_metadata(datasource="wikipedia", intervals=DAY)
    check(meta.result[0]["numRows"] == rollup_rows(events), f"segmentMetadata numRows {meta.result[0]['numRows']}")


def db_api(host, port, events):
    conn = connect(host=host, port=port, path="/druid/v2/sql/", scheme="http")
    cursor = conn.cursor()
    cursor.execute('SELECT language, SUM("count") AS edits FROM wikipedia GROUP BY language ORDER BY edits DESC, language LIMIT 5')
    rows = cursor.fetchall()
    by_language = collections.Counter(e["language"] for e in events)
    want = sorted(by_language.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    check([(r.language, r.edits) for r in rows] == want, f"DB-API rows {rows} != {want}")
    check([d[0] for d in cursor.description] == ["language", "edits"], f"description {cursor.description}")

    cursor.execute('SELECT COUNT(*) AS "rows", SUM("count") AS edits FROM wikipedia WHERE language = %(lang)s', {"lang": "de"})
    row = cursor.fetchone()
    de = [e for e in events if e["language"] == "de"]
    check(row.edits == len(de) and row.rows == rollup_rows(de), f"DB-API parameter query {row}")

    cursor.execute("SELECT FLOOR(__time TO HOUR) AS h, COUNT(*) AS c FROM wikipedia GROUP BY 1 ORDER BY 1")
    hours = collections.Counter(hour_of(e["timestamp"]) for e in events)
    got = [(r.h, r.c) for r in cursor]
    check([h for h, _ in got] == sorted(hours), f"DB-API hours {got}")

    # With header=True pydruid reads column names from the header row.
    conn = connect(host=host, port=port, path="/druid/v2/sql/", scheme="http", header=True)
    cursor = conn.cursor()
    cursor.execute('SELECT SUM("count") AS edits FROM wikipedia')
    check([d[0] for d in cursor.description] == ["edits"], f"header description {cursor.description}")
    check(cursor.fetchall()[0].edits == len(events), "header=True total")

    cursor.execute("SELECT * FROM wikipedia")
    check(len(cursor.fetchall()) == rollup_rows(events), "SELECT *")

    try:
        cursor.execute("SELECT COUNT(*) FROM nope")
        cursor.fetchall()
        check(False, "an unknown table must raise")
    except Exception as e:  # pydruid raises ProgrammingError with Druid's message
        check("nope" in str(e), f"error names the table: {e}")


def sqlalchemy_checks(host, port, events):
    from sqlalchemy import MetaData, Table, create_engine, func, inspect, select, text

    engine = create_engine(f"druid://{host}:{port}/druid/v2/sql/")
    inspector = inspect(engine)
    tables = inspector.get_table_names()
    check("wikipedia" in tables, f"get_table_names {tables}")
    columns = {c["name"]: c for c in inspector.get_columns("wikipedia")}
    want = {"__time", "count", "added", "deleted", "delta", *DIMENSIONS}
    check(set(columns) == want, f"get_columns {sorted(columns)}")
    check(type(columns["page"]["type"]).__name__ in ("String", "VARCHAR"), f"page type {columns['page']}")
    check(type(columns["count"]["type"]).__name__ == "BigInteger", f"count type {columns['count']}")
    check(type(columns["added"]["type"]).__name__ == "Float", f"added type {columns['added']}")
    check(type(columns["__time"]["type"]).__name__ == "TIMESTAMP", f"__time type {columns['__time']}")

    with engine.connect() as conn:
        # Through the dialect: SQLAlchemy 2's Inspector.has_table passes keywords pydruid's
        # has_table does not take.
        check(engine.dialect.has_table(conn, "wikipedia"), "has_table wikipedia")
        check(not engine.dialect.has_table(conn, "nope"), "has_table nope")
        total = conn.execute(text('SELECT SUM("count") AS edits FROM wikipedia')).scalar()
        check(total == len(events), f"text() total {total}")
        # A reflected table and a compiled select: every identifier quoted by pydruid's dialect.
        wikipedia = Table("wikipedia", MetaData(), autoload_with=engine)
        query = (
            select(wikipedia.c.namespace, func.sum(wikipedia.c["count"]).label("edits"))
            .where(wikipedia.c.robot == "true")
            .group_by(wikipedia.c.namespace)
            .order_by(wikipedia.c.namespace)
        )
        got = [(r.namespace, r.edits) for r in conn.execute(query)]
        want = sorted(collections.Counter(e["namespace"] for e in events if e["robot"] == "true").items())
        check(got == want, f"SQLAlchemy select {got} != {want}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--events", required=True)
    args = parser.parse_args()
    # pydruid's dialect still uses SQLAlchemy 1.x's dbapi() hook; the warning is not ours.
    warnings.filterwarnings("ignore", message=".*dbapi\\(\\) classmethod.*")

    events = load_events(args.events)
    client = PyDruid(f"http://{args.host}:{args.port}", "druid/v2")
    native(client, events)
    print("pydruid native: ok")
    db_api(args.host, args.port, events)
    print("pydruid DB-API: ok")
    sqlalchemy_checks(args.host, args.port, events)
    print("SQLAlchemy: ok")
    print("pydruid: all checks passed")


if __name__ == "__main__":
    main()
