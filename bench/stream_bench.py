"""The measuring half of bench/stream.sh: a Kafka producer, the ingest-rate and memory sampler,
the freshness probe, and the result table.

produce    Every line of the generated gzip files becomes one Kafka message (keyless, so the
           producer spreads them over the partitions), acknowledged by the broker (acks=all)
           before the step ends; failed deliveries are counted and fail the step.
ingest     Watches a running `braid stream` until it has consumed the expected number of
           events (processed + unparseable + thrown away, from GET /metrics), sampling every
           POLL seconds: the metrics, the process's CPU time (utime + stime of /proc/PID/stat,
           which includes threads that have ended), its RSS (/proc/PID/status) and the CPU time
           of each of its threads by name. The wall clock starts when the script launched the
           daemon (it passes that time in), and the CPU time is the process's whole lifetime, so
           start-up and the checkpoints run while consuming count against the rate.
           Memory per rollup row: every checkpoint freezes the rows in memory and hands them to
           deep storage, and one starts after 256 MiB of raw text whatever the tuning says, so
           the rows pile up undisturbed only until the first checkpoint. The sampler takes the
           RSS growth over the row growth between its first sample and the last one before a
           checkpoint can have started (before 90% of the events that make 256 MiB of raw
           text, and before ingest_checkpoints_total moves), and also the least-squares slope
           of RSS over rows across those samples. Both include the raw archive buffer
           (consumed messages, gzip level 1, at most maxArchiveBytesInMemory of them held
           until the checkpoint; the rest are written ahead of it).
freshness  With the daemon caught up, produces COUNT single events, one at a time, stamped in a
           day no other event falls in, and after each one polls a timeseries count over that
           day on one keep-alive HTTP connection, back to back, until the count goes up. The
           latency is from just before produce() to the answer that shows the event; it includes
           the producer's round trip to the broker, the consumer's fetch, the fold into the
           rows in memory and one query.
report     Medians over the runs, and the table.
"""

import argparse
import glob
import gzip
import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
ARCHIVE_LIMIT = 256 * 1024 * 1024  # raw bytes that force a checkpoint (stream/src/ingester.rs)


def input_files(directory):
    files = sorted(glob.glob(os.path.join(directory, "*.json.gz")))
    if not files:
        sys.exit(f"no *.json.gz files in {directory}")
    return files


# ---------------------------------------------------------------------------------------------
# produce


def produce(args):
    from confluent_kafka import Producer

    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "linger.ms": 50,
        "batch.num.messages": 10000,
        "batch.size": 1000000,
        "queue.buffering.max.messages": 1000000,
        "queue.buffering.max.kbytes": 1048576,
        "message.timeout.ms": 300000,
    })
    failed = []
    delivered = [0]

    def on_delivery(err, _msg):
        if err is not None:
            failed.append(str(err))
        else:
            delivered[0] += 1

    started = time.monotonic()
    sent = raw = 0
    for path in input_files(args.input):
        with gzip.open(path, "rb") as f:
            for line in f:
                line = line.rstrip(b"\n")
                if not line:
                    continue
                while True:
                    try:
                        producer.produce(args.topic, line, on_delivery=on_delivery)
                        break
                    except BufferError:
                        producer.poll(0.05)
                producer.poll(0)
                sent += 1
                raw += len(line) + 1
    left = producer.flush(300)
    elapsed = time.monotonic() - started
    result = {"sent": sent, "delivered": delivered[0], "failed": len(failed), "undelivered": left,
              "raw_bytes": raw, "seconds": elapsed}
    print(f"produced {sent:,} events ({raw / 2**20:,.0f} MiB) in {elapsed:.1f} s "
          f"({sent / elapsed:,.0f} events/s); delivered {delivered[0]:,}, failed {len(failed)}", file=sys.stderr)
    with open(args.out, "w") as f:
        json.dump(result, f)
    if failed or left or delivered[0] != sent:
        sys.exit(f"produce: {len(failed)} failed ({failed[:3]}), {left} undelivered")


# ---------------------------------------------------------------------------------------------
# ingest


class Http:
    """One keep-alive HTTP connection to the daemon."""

    def __init__(self, url):
        parsed = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)

    def request(self, method, path, body=None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        except (http.client.HTTPException, ConnectionError):
            self.conn.close()
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {response.status}: {data[:300]!r}")
        return data


def metrics(http):
    values = {}
    for line in http.request("GET", "/metrics").decode().splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        base = name.split("{", 1)[0]
        if 'dataSource="wikipedia"' in name or "{" not in name:
            if base == "ingest_kafka_partition_lag":
                continue
            values[base] = values.get(base, 0) + float(value)
    return values


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_threads(pid):
    """CPU seconds by thread name (tokio workers, librdkafka's, the ingest thread)."""
    by_name = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1: text.rindex(")")]
        fields = text.rpartition(")")[2].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        group = ("rdkafka" if name.startswith("rdk:") else
                 "tokio (HTTP, checkpoints)" if name.startswith("tokio") else name)
        by_name[group] = by_name.get(group, 0) + cpu
    return by_name


def proc_mem(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def least_squares(points):
    n = len(points)
    if n < 3:
        return None
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def ingest(args):
    http = Http(args.url)
    expect = args.expect
    raw_per_event = args.raw_bytes / expect
    # Events after which the archive buffer can have forced the first checkpoint.
    first_checkpoint_events = ARCHIVE_LIMIT / raw_per_event
    if args.max_rows_in_memory:
        first_checkpoint_events = min(first_checkpoint_events, args.max_rows_in_memory)
    samples = []
    last_progress = time.monotonic()
    last_seen = -1
    tansu_cpu0 = proc_cpu(args.tansu_pid) if args.tansu_pid else None
    first_event_at = None
    while True:
        now = time.time()
        m = metrics(http)
        cpu = proc_cpu(args.pid)
        mem = proc_mem(args.pid)
        seen = m.get("ingest_events_processed_total", 0) + m.get("ingest_events_unparseable_total", 0) \
            + m.get("ingest_events_thrown_away_total", 0)
        samples.append({"t": now - args.launched, "seen": seen, "cpu": cpu, "rss": mem["VmRSS"],
                        "rows": m.get("ingest_rows_in_memory", 0), "checkpoints": m.get("ingest_checkpoints_total", 0),
                        # The daemon's own count of what the rows and the archive buffer take
                        # (absent, so 0, from builds before these gauges).
                        "index_bytes": m.get("ingest_bytes_in_memory", 0),
                        "archive_bytes": m.get("ingest_archive_buffer_bytes", 0)})
        if first_event_at is None and seen > 0:
            first_event_at = now - args.launched
        if seen >= expect:
            break
        if seen != last_seen:
            last_seen, last_progress = seen, time.monotonic()
        elif time.monotonic() - last_progress > args.stall:
            print(f"ingest: no progress for {args.stall:.0f} s at {seen:,.0f} of {expect:,} events", file=sys.stderr)
            break
        time.sleep(args.poll)
    end = samples[-1]
    threads = proc_threads(args.pid)
    # What one freshness poll costs with these rows in memory: a count over a day with no events.
    query = json.dumps(count_query(args.day))
    query_times = []
    for _ in range(5):
        q0 = time.perf_counter()
        http.request("POST", "/druid/v2", query)
        query_times.append(time.perf_counter() - q0)
    threads["other or ended"] = max(0.0, end["cpu"] - sum(threads.values()))
    tansu_cpu = proc_cpu(args.tansu_pid) - tansu_cpu0 if args.tansu_pid else None

    # Memory before the first checkpoint.
    pre = [s for s in samples if s["checkpoints"] == 0 and s["seen"] < 0.9 * first_checkpoint_events and s["rows"] > 0]
    memory = None
    if len(pre) >= 2 and pre[-1]["rows"] > pre[0]["rows"]:
        a, b = pre[0], pre[-1]
        slope = least_squares([(s["rows"], s["rss"]) for s in pre if s["rows"] >= 0.1 * b["rows"]])
        memory = {"rows": b["rows"], "events": b["seen"], "rss": b["rss"], "rss_first": a["rss"],
                  "rows_first": a["rows"], "bytes_per_row": (b["rss"] - a["rss"]) / (b["rows"] - a["rows"]),
                  "slope_bytes_per_row": slope, "samples": len(pre),
                  "index_bytes_per_row": b["index_bytes"] / b["rows"] if b["index_bytes"] else None,
                  "archive_bytes_per_row": b["archive_bytes"] / b["rows"] if b["archive_bytes"] else None}
    result = {
        "expect": expect,
        "seen": end["seen"],
        "complete": end["seen"] >= expect,
        "processed": m.get("ingest_events_processed_total", 0),
        "unparseable": m.get("ingest_events_unparseable_total", 0),
        "thrown_away": m.get("ingest_events_thrown_away_total", 0),
        "wall_seconds": end["t"],
        "first_event_seconds": first_event_at,
        "cpu_seconds": end["cpu"],
        "events_per_second": end["seen"] / end["t"],
        "events_per_cpu_second": end["seen"] / end["cpu"],
        "threads_cpu": threads,
        "tansu_cpu_seconds": tansu_cpu,
        "checkpoints": end["checkpoints"],
        "checkpoint_seconds": m.get("ingest_checkpoint_seconds_total", 0),
        "rows_in_memory_end": end["rows"],
        "rss_end": end["rss"],
        "hwm_end": proc_mem(args.pid)["VmHWM"],
        "memory_before_first_checkpoint": memory,
        "empty_day_query_ms": statistics.median(query_times) * 1000,
        "samples": len(samples),
        "timeline": [[round(s["t"], 3), s["seen"], s["cpu"], s["rss"], s["rows"], s["checkpoints"]] for s in samples],
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    tag = "" if result["complete"] else "  INCOMPLETE"
    print(f"  {args.label}: {end['seen']:,.0f} events in {end['t']:.2f} s wall, {end['cpu']:.2f} s CPU: "
          f"{result['events_per_second']:,.0f} events/s, {result['events_per_cpu_second']:,.0f} events/CPU-s, "
          f"{end['checkpoints']:.0f} checkpoints{tag}", file=sys.stderr)
    if not result["complete"]:
        sys.exit(1)


# ---------------------------------------------------------------------------------------------
# freshness


def count_query(day):
    return {
        "queryType": "timeseries", "dataSource": "wikipedia", "granularity": "all",
        "intervals": [f"{day}T00:00:00Z/{day}T23:59:59.999Z"],
        "aggregations": [{"type": "longSum", "name": "events", "fieldName": "count"}],
    }


def freshness(args):
    from confluent_kafka import Producer

    http = Http(args.url)
    producer = Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "linger.ms": 0})
    with gzip.open(input_files(args.input)[0], "rt") as f:
        template = json.loads(f.readline())
    day = args.day
    query = json.dumps(count_query(day))

    def count():
        answer = json.loads(http.request("POST", "/druid/v2", query))
        return answer[0]["result"]["events"] or 0 if answer else 0

    before = count()
    latencies, polls, query_times = [], [], []
    timeouts = 0
    for i in range(args.count):
        event = dict(template)
        event["timestamp"] = f"{day}T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z"
        event["page"] = f"Freshness probe {i}"
        payload = json.dumps(event).encode()
        started = time.perf_counter()
        producer.produce(args.topic, payload)
        producer.poll(0)
        n = 0
        while True:
            q0 = time.perf_counter()
            now = count()
            query_times.append(time.perf_counter() - q0)
            n += 1
            if now > before:
                break
            if time.perf_counter() - started > args.timeout:
                timeouts += 1
                break
        else_latency = time.perf_counter() - started
        if now > before:
            latencies.append(else_latency)
            polls.append(n)
        before = now
        producer.poll(0)
        # Pace the events: one every 1/rate seconds at most.
        pause = 1.0 / args.rate - (time.perf_counter() - started)
        if pause > 0:
            time.sleep(pause)
    producer.flush(30)
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))] if latencies else None

    result = {"events": args.count, "seen": len(latencies), "timeouts": timeouts, "final_count": before,
              "p50_ms": pct(50) * 1000, "p90_ms": pct(90) * 1000, "p99_ms": pct(99) * 1000,
              "max_ms": latencies[-1] * 1000, "min_ms": latencies[0] * 1000,
              "query_median_ms": statistics.median(query_times) * 1000,
              "polls_median": statistics.median(polls)}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"  freshness: {len(latencies)} of {args.count} events seen, p50 {result['p50_ms']:.1f} ms, "
          f"p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms "
          f"(one query {result['query_median_ms']:.2f} ms)", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# report


def report(args):
    produced = json.load(open(args.produced))
    print()
    print(f"braid stream, {produced['sent']:,} events ({produced['raw_bytes'] / produced['sent']:.0f} B of JSON each) "
          f"from a tansu broker on loopback, {os.cpu_count()} cores")
    for config in args.configs:
        name, _, files = config.partition("=")
        runs = [json.load(open(p)) for p in files.split(",") if p]
        if not runs:
            continue
        med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
        print()
        print(f"{name}: median of {len(runs)} run(s)" + ("" if all(r["complete"] for r in runs) else "   (SOME RUNS INCOMPLETE)"))
        print(f"  {'ingest rate':<38}{med('events_per_second'):>14,.0f} events/s   "
              f"(runs: {', '.join(format(r['events_per_second'], ',.0f') for r in runs)})")
        print(f"  {'per CPU-second of braid':<38}{med('events_per_cpu_second'):>14,.0f} events/CPU-s   "
              f"(runs: {', '.join(format(r['events_per_cpu_second'], ',.0f') for r in runs)})   target >= 1,000,000")
        print(f"  {'wall / braid CPU / tansu CPU':<38}{med('wall_seconds'):>10.2f} s / {med('cpu_seconds'):.2f} s / "
              f"{statistics.median(r['tansu_cpu_seconds'] or 0 for r in runs):.2f} s")
        print(f"  {'checkpoints while consuming':<38}{med('checkpoints'):>10.0f}  ({med('checkpoint_seconds'):.1f} s in them)")
        threads = {}
        for r in runs:
            for k, v in r["threads_cpu"].items():
                threads.setdefault(k, []).append(v)
        split = ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in sorted(threads.items(), key=lambda kv: -statistics.median(kv[1])))
        print(f"  {'braid CPU s by thread':<38}{split}")
        print(f"  {'at the end: rows in memory, RSS':<38}{med('rows_in_memory_end'):>14,.0f} rows, "
              f"{med('rss_end') / 2**20:,.0f} MiB (peak {med('hwm_end') / 2**20:,.0f} MiB)")
        print(f"  {'count over an empty day, one query':<38}{med('empty_day_query_ms'):>14.1f} ms with "
              f"{med('rows_in_memory_end'):,.0f} rows in memory")
        mems = [r["memory_before_first_checkpoint"] for r in runs if r["memory_before_first_checkpoint"]]
        if mems and statistics.median(x["rows"] for x in mems) < 500_000:
            print(f"  {'memory per rollup row':<38}{'':>14}(not measured: the first checkpoint comes after "
                  f"{statistics.median(x['rows'] for x in mems):,.0f} rows, too few to tell growth from noise)")
        elif mems:
            m = lambda key: statistics.median(x[key] for x in mems)  # noqa: E731
            slopes = [x["slope_bytes_per_row"] for x in mems if x["slope_bytes_per_row"]]
            print(f"  {'before the first checkpoint':<38}{m('rows'):>14,.0f} rows ({m('events'):,.0f} events), "
                  f"RSS {m('rss') / 2**20:,.0f} MiB")
            print(f"  {'memory per rollup row':<38}{m('bytes_per_row'):>14,.0f} B/row (RSS growth / row growth; "
                  f"slope {statistics.median(slopes) if slopes else float('nan'):,.0f} B/row)   target < 200")
            counted = [x for x in mems if x.get("index_bytes_per_row")]
            if counted:
                c = lambda key: statistics.median(x[key] for x in counted)  # noqa: E731
                print(f"  {'the daemon counts: rollup rows':<38}{c('index_bytes_per_row'):>14,.0f} B/row "
                      f"(ingest_bytes_in_memory: columns, table, dictionaries)   target < 200")
                print(f"  {'  and the raw archive buffer':<38}{c('archive_bytes_per_row'):>14,.0f} B/row "
                      f"(ingest_archive_buffer_bytes)")
    for spec in args.freshness or []:
        name, _, path = spec.partition("=")
        if not os.path.exists(path):
            continue
        f = json.load(open(path))
        print()
        print(f"freshness on {name}, produce to visible in a timeseries query ({f['seen']} of {f['events']} "
              f"events seen, {f['timeouts']} timed out):")
        print(f"  p50 {f['p50_ms']:.1f} ms, p90 {f['p90_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, max {f['max_ms']:.1f} ms, "
              f"min {f['min_ms']:.1f} ms   target p99 < 100 ms   (one query: {f['query_median_ms']:.2f} ms)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("ingest")
    p.add_argument("--url", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--tansu-pid", type=int)
    p.add_argument("--launched", type=float, required=True, help="time.time() when the daemon was launched")
    p.add_argument("--expect", type=int, required=True)
    p.add_argument("--raw-bytes", type=int, required=True, help="raw bytes of all the produced events")
    p.add_argument("--max-rows-in-memory", type=int)
    p.add_argument("--poll", type=float, default=0.05)
    p.add_argument("--stall", type=float, default=60)
    p.add_argument("--label", default="run")
    p.add_argument("--day", default="2013-09-15")
    p.add_argument("--out", required=True)
    p = sub.add_parser("freshness")
    p.add_argument("--url", required=True)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--day", default="2013-09-15")
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--rate", type=float, default=20)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--out", required=True)
    p = sub.add_parser("report")
    p.add_argument("--produced", required=True)
    p.add_argument("--freshness", action="append", help="NAME=freshness.json")
    p.add_argument("configs", nargs="+", help="NAME=run1.json,run2.json,...")
    args = parser.parse_args()
    {"produce": produce, "ingest": ingest, "freshness": freshness, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
