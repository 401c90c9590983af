#!/usr/bin/env bash
# Benchmark: the streaming daemon (`braid stream`) consuming wikipedia-like events from a real
# Kafka-compatible broker in a separate process (tansu, in-memory storage, on loopback).
#
#   bench/stream.sh                                  # 5M events, 3 runs per configuration
#   EVENTS=1000000 RUNS=1 FRESHNESS=100 bench/stream.sh
#   BRAID=/path/to/braid bench/stream.sh             # skip the build
#
# What it measures:
# - Ingest rate. All EVENTS events (24 hourly files from `braid generate`, one message per line,
#   over PARTITIONS partitions) are produced BEFORE the daemon starts, so the producer does not
#   compete for the CPU. Then each run starts a daemon on fresh deep storage, reading the topic
#   from the earliest offset, and stops when processed + unparseable + thrown-away events (from
#   GET /metrics) reach EVENTS. events/s = EVENTS / wall time from launching the daemon;
#   events per CPU-second = EVENTS / the daemon's whole CPU time (utime + stime in
#   /proc/PID/stat), so start-up and the checkpoints written while consuming count too. The
#   broker's CPU time during the run is shown alongside (it shares the 2 cores).
#   Three tunings (CONFIGS, each NAME or NAME:RUNS), medians over the runs reported:
#     no-limits        checkpointPeriod PT1H and maxRowsInMemory/maxRowsPerSegment 100M: only
#                      the daemon's fixed 256 MiB-of-raw-text limit checkpoints (5 times for 5M).
#     druid-defaults   the example's tuning (maxRowsInMemory 150000, default checkpointPeriod
#                      PT10M): a checkpoint every 150000 rows.
#     fetch-wait-10ms  druid-defaults plus consumerProperties fetch.wait.max.ms=10, one run.
#                      tansu appears to hold a fetch that finds no new data for the whole
#                      fetch.wait.max.ms (librdkafka's default: 500 ms) even when a message
#                      arrives meanwhile (freshness p50 ~500 ms with the default), where Kafka
#                      answers as soon as data arrives; a short wait stands in for
#                      Kafka's behaviour, for freshness (and shows what the waits cost the rate).
#   The spec is examples/wikipedia-kafka.json with its 17 dimensions (Druid's tutorial schema, of
#   which the generated events only have page, user and namespace) replaced by the 12 fields the
#   generator writes (page, language, user, unpatrolled, newPage, robot, anonymous, namespace,
#   continent, country, region, city), so every dimension holds a value; DIMENSIONS=spec keeps
#   the example's. Metrics: count, added, deleted, delta (longSum), maxDelta (doubleMax).
#   CPU time is also split by thread (the ingest thread, librdkafka's, tokio's, which write the
#   checkpoints and answer HTTP).
# - Memory per rollup row. Rows only pile up undisturbed until the first checkpoint (at the
#   latest after 256 MiB of raw text), so the no-limits runs take the growth of the daemon's RSS
#   over the growth of ingest_rows_in_memory between the first sample and the last one before a
#   checkpoint could have started. That includes the raw archive buffer (consumed messages,
#   gzip level 1, of which the daemon holds at most maxArchiveBytesInMemory, 8 MiB by default,
#   writing the rest ahead of the checkpoint). At the same sample, the daemon's own count of
#   the bytes its rollup rows take (ingest_bytes_in_memory: columns, rollup table,
#   dictionaries) and of the archive buffer (ingest_archive_buffer_bytes), per row. The rows in
#   memory and RSS at the end of each run are shown too.
# - Freshness. On the last daemon of each of FRESHNESS_CONFIGS, caught up, FRESHNESS single
#   events are produced one at a time (at most 20/s), stamped in a day no other event falls in;
#   after each, a timeseries count over that day is polled back to back on one keep-alive
#   connection until it goes up. Latency = answer showing the event - just before produce();
#   p50, p99 and max reported, with what one such query costs (a native query turns the rows
#   the daemon holds in its intervals into Arrow, so over an otherwise empty day it stays cheap
#   however many rows are held; SQL queries still convert every row).
#   Those events are in the topic from then on: later runs expect them too.
#
# Needs tansu (`cargo install tansu --features dynostore`; TANSU=/path/to/tansu otherwise) and
# python3 with confluent-kafka (`pip install confluent-kafka`). The broker holds every event in
# memory (1.5 GiB of JSON for 5M). Do not use tansu for exactly-once checks: it can skip a record
# batch when a fetch starts inside it; here each daemon reads from offset 0 onwards, and a run
# that does not see every event it expects is reported INCOMPLETE.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-5000000}
RUNS=${RUNS:-3}
PARTITIONS=${PARTITIONS:-2}
FRESHNESS=${FRESHNESS:-300}
CONFIGS=${CONFIGS:-no-limits druid-defaults fetch-wait-10ms:1}
FRESHNESS_CONFIGS=${FRESHNESS_CONFIGS:-druid-defaults fetch-wait-10ms}
DATA=${DATA:-bench/data/stream}
KAFKA_PORT=${KAFKA_PORT:-19092}
TANSU=${TANSU:-tansu}
DIMENSIONS=${DIMENSIONS:-generator}
TOPIC=wikipedia
SPEC=examples/wikipedia-kafka.json

python3 -c "import confluent_kafka" 2>/dev/null ||
  { echo "bench/stream.sh needs python3 with confluent-kafka: pip install confluent-kafka" >&2; exit 1; }
command -v "$TANSU" >/dev/null ||
  { echo "bench/stream.sh needs tansu: cargo install tansu --features dynostore (or TANSU=/path/to/tansu)" >&2; exit 1; }
if [[ -z ${BRAID:-} ]]; then
  cargo build --release --quiet --bin braid
  BRAID=target/release/braid
fi
BENCH="python3 bench/stream_bench.py"

mkdir -p "$DATA"
# The generated input is kept between invocations when it has the same number of events.
if [[ $(cat "$DATA/input/.events" 2>/dev/null) != "$EVENTS" ]]; then
  rm -rf "$DATA/input"
  "$BRAID" generate --out "$DATA/input" --events "$EVENTS" --hours 24 --seed 42 --start 2013-08-31T00:00:00Z
  echo "$EVENTS" >"$DATA/input/.events"
fi
rm -rf "$DATA/run" && mkdir -p "$DATA/run"
RUN=$DATA/run

BRAID_PID='' TANSU_PID=''
cleanup() {
  if [[ -n $BRAID_PID ]]; then kill "$BRAID_PID" 2>/dev/null || true; wait "$BRAID_PID" 2>/dev/null || true; fi
  if [[ -n $TANSU_PID ]]; then kill "$TANSU_PID" 2>/dev/null || true; wait "$TANSU_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

# The broker: in memory, on loopback only.
BOOTSTRAP=127.0.0.1:$KAFKA_PORT
"$TANSU" broker --storage-engine memory://tansu/ \
  --kafka-listener-url "tcp://$BOOTSTRAP" --kafka-advertised-listener-url "tcp://$BOOTSTRAP" \
  >"$RUN/tansu.log" 2>&1 &
TANSU_PID=$!
for _ in $(seq 100); do
  (exec 7<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null && break
  kill -0 "$TANSU_PID" 2>/dev/null || { echo "tansu exited; its log:" >&2; cat "$RUN/tansu.log" >&2; exit 1; }
  sleep 0.1
done
"$TANSU" topic create "$TOPIC" --partitions "$PARTITIONS" --broker "tcp://$BOOTSTRAP" >>"$RUN/tansu.log" 2>&1

echo "producing $EVENTS events to tansu ($PARTITIONS partitions)..." >&2
$BENCH produce --bootstrap "$BOOTSTRAP" --topic "$TOPIC" --input "$DATA/input" --out "$RUN/produced.json"
RAW_BYTES=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['raw_bytes'])" "$RUN/produced.json")

# The spec of a configuration: the example with this broker, the generator's dimensions and, for
# no-limits, limits far away.
make_spec() { # config out
  python3 - "$SPEC" "$1" "$BOOTSTRAP" "$DIMENSIONS" >"$2" <<'EOF'
import json, sys
spec = json.load(open(sys.argv[1]))
config, bootstrap, dimensions = sys.argv[2], sys.argv[3], sys.argv[4]
io, tuning = spec["spec"]["ioConfig"], spec["spec"]["tuningConfig"]
io["consumerProperties"]["bootstrap.servers"] = bootstrap
io["useEarliestOffset"] = True
if dimensions == "generator":
    spec["spec"]["dataSchema"]["dimensionsSpec"]["dimensions"] = [
        "page", "language", "user", "unpatrolled", "newPage", "robot", "anonymous", "namespace",
        "continent", "country", "region", "city"]
if config == "no-limits":
    tuning.update(maxRowsInMemory=100_000_000, maxRowsPerSegment=100_000_000, checkpointPeriod="PT1H")
elif config == "fetch-wait-10ms":
    io["consumerProperties"]["fetch.wait.max.ms"] = "10"
elif config != "druid-defaults":
    sys.exit(f"unknown configuration {config}")
print(json.dumps(spec, indent=1))
EOF
}

# Starts a daemon on fresh deep storage; sets BRAID_PID, URL and LAUNCHED.
start_daemon() { # spec name
  local dir=$RUN/$2
  rm -rf "$dir" && mkdir -p "$dir"
  mkfifo "$dir/stream.out"
  LAUNCHED=$(date +%s.%N)
  "$BRAID" stream --spec "$1" --deep-storage "$dir/deep" --listen 127.0.0.1:0 >"$dir/stream.out" 2>"$dir/stream.log" &
  BRAID_PID=$!
  # Held open while the daemon runs: closing it would make a later write to stdout kill it.
  exec 3<"$dir/stream.out"
  local line
  if ! read -r line <&3 || [[ $line != "braid streaming; Druid queries on "* ]]; then
    echo "braid stream did not start (printed: ${line:-nothing}); its log:" >&2
    cat "$dir/stream.log" >&2
    exit 1
  fi
  URL=${line#braid streaming; Druid queries on }
}

stop_daemon() {
  kill -TERM "$BRAID_PID"
  wait "$BRAID_PID" || echo "braid stream exited with status $? on SIGTERM" >&2
  BRAID_PID=''
  exec 3<&-
}

declare -a REPORT=() FRESH=()
EVENTS_IN_TOPIC=$EVENTS
for entry in $CONFIGS; do
  config=${entry%%:*}
  runs=$RUNS
  [[ $entry == *:* ]] && runs=${entry#*:}
  make_spec "$config" "$RUN/$config.json"
  MAX_ROWS=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['spec']['tuningConfig']['maxRowsInMemory'])" "$RUN/$config.json")
  echo "$config: $runs run(s)" >&2
  files=''
  for run in $(seq "$runs"); do
    start_daemon "$RUN/$config.json" "$config-$run"
    $BENCH ingest --url "$URL" --pid "$BRAID_PID" --tansu-pid "$TANSU_PID" --launched "$LAUNCHED" \
      --expect "$EVENTS_IN_TOPIC" --raw-bytes "$RAW_BYTES" --max-rows-in-memory "$MAX_ROWS" \
      --label "run $run" --out "$RUN/$config-$run.json" ||
      echo "run $run did not see every event; see $RUN/$config-$run/stream.log" >&2
    files+="$RUN/$config-$run.json,"
    if (( run == runs && FRESHNESS > 0 )) && [[ " $FRESHNESS_CONFIGS " == *" $config "* ]]; then
      sleep 3 # let the checkpoint in flight finish
      $BENCH freshness --url "$URL" --bootstrap "$BOOTSTRAP" --topic "$TOPIC" --input "$DATA/input" \
        --count "$FRESHNESS" --out "$RUN/freshness-$config.json"
      FRESH+=(--freshness "$config=$RUN/freshness-$config.json")
      # Later daemons read these events too.
      EVENTS_IN_TOPIC=$((EVENTS_IN_TOPIC + FRESHNESS))
    fi
    stop_daemon
  done
  REPORT+=("$config=$files")
done

$BENCH report --produced "$RUN/produced.json" \
  "${FRESH[@]}" "${REPORT[@]}"
