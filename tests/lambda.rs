//! The lambda loop on the real binary, with librdkafka's mock cluster as the broker: `braid
//! run` streams events of several hours (some later than the rejection window, some malformed)
//! and serves the stream's totals; the batch scheduler rebuilds those hours from the raw archive
//! and swaps the stream's segments for batch versions while a client queries in a loop (every
//! answer is the complete old one or the complete new one); events arriving later for
//! batch-owned hours are picked up by the next scheduled run; and cleanup removes what the
//! swaps overshadowed without changing an answer.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{Value, json};
use support::daemon::{Daemon, read, send};

const TOPIC: &str = "wiki";
const HOUR: i64 = 3_600_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// One produced message: the event's time and `added`, or a malformed line.
#[derive(Clone)]
struct Sent {
    ts: i64,
    added: i64,
    /// Thrown away by the stream (late, or in batch-owned time) but archived raw.
    streamed: bool,
}

struct Events {
    producer: BaseProducer,
    sent: Vec<Sent>,
    messages: i64,
}

impl Events {
    fn new(bootstrap: &str) -> Self {
        let producer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
        Self { producer, sent: Vec::new(), messages: 0 }
    }

    /// An event at `ts` in a message stamped `message_ts`.
    fn event(&mut self, ts: i64, message_ts: i64, streamed: bool) {
        let i = self.messages;
        let added = i % 97;
        let lang = if i % 3 == 0 { "de" } else { "en" };
        let payload =
            format!(r#"{{"ts": {ts}, "page": "page-{}", "lang": "{lang}", "added": {added}}}"#, i % 40);
        let key = i.to_string();
        send(
            &self.producer,
            BaseRecord::<str, str>::to(TOPIC)
                .key(key.as_str())
                .payload(payload.as_str())
                .timestamp(message_ts),
        );
        self.sent.push(Sent { ts, added, streamed });
        self.messages += 1;
    }

    fn malformed(&mut self, text: &str) {
        send(&self.producer, BaseRecord::<str, str>::to(TOPIC).key("bad").payload(text));
        self.messages += 1;
    }

    fn flush(&self) {
        self.producer.flush(Duration::from_secs(30)).unwrap();
    }

    /// (events, added) per hour start, counting only what the stream keeps, or everything.
    fn totals(&self, hours: &[i64], streamed_only: bool) -> Vec<(i64, i64, i64)> {
        let mut by_hour: BTreeMap<i64, (i64, i64)> = hours.iter().map(|h| (*h, (0, 0))).collect();
        for s in self.sent.iter().filter(|s| s.streamed || !streamed_only) {
            let entry = by_hour.get_mut(&(s.ts - s.ts.rem_euclid(HOUR))).expect("an hour of the test");
            entry.0 += 1;
            entry.1 += s.added;
        }
        by_hour.into_iter().map(|(h, (events, added))| (h, events, added)).collect()
    }
}

fn write_spec(dir: &Path, bootstrap: &str) -> PathBuf {
    let spec = json!({
        "type": "kafka",
        "spec": {
            "dataSchema": {
                "dataSource": "wiki",
                "timestampSpec": {"column": "ts", "format": "millis"},
                "dimensionsSpec": {"dimensions": ["page", "lang"]},
                "metricsSpec": [
                    {"type": "count", "name": "count"},
                    {"type": "longSum", "name": "added", "fieldName": "added"}
                ],
                "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "minute"}
            },
            "ioConfig": {
                "topic": TOPIC,
                "consumerProperties": {"bootstrap.servers": bootstrap},
                "useEarliestOffset": true,
                "lateMessageRejectionPeriod": "PT1H"
            },
            "tuningConfig": {"type": "kafka", "checkpointPeriod": "PT0.3S"}
        }
    });
    let path = dir.join("wiki-kafka.json");
    std::fs::write(&path, serde_json::to_string_pretty(&spec).unwrap()).unwrap();
    path
}

fn start_run(deep: &Path, spec: &Path, cron: &str, log: PathBuf) -> Daemon {
    let args: Vec<std::ffi::OsString> = vec![
        "run".into(),
        "--spec".into(),
        spec.into(),
        "--deep-storage".into(),
        deep.into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--cron".into(),
        cron.into(),
        "--lookback".into(),
        "P1D".into(),
        "--settle".into(),
        "PT0S".into(),
        "--threads".into(),
        "1".into(),
    ];
    Daemon::start(args, "braid running; Druid queries on ", log)
}

/// Per-hour (start, events, added) over the test's hours, as the query API answers.
fn hourly(daemon: &Daemon, hours: &[i64]) -> Vec<(i64, i64, i64)> {
    let interval = format!("{}/{}", iso(hours[0]), iso(hours[hours.len() - 1] + HOUR));
    let query = json!({
        "queryType": "timeseries", "dataSource": "wiki", "granularity": "hour",
        "intervals": [interval],
        "aggregations": [
            {"type": "longSum", "name": "events", "fieldName": "count"},
            {"type": "longSum", "name": "added", "fieldName": "added"}
        ]
    });
    let (status, text) = daemon.request("POST", "/druid/v2", Some(&query.to_string()));
    if status != 200 {
        // Before the first event the dataSource is not known yet.
        assert!(text.contains("not found") || text.contains("Unknown"), "{text}");
        return hours.iter().map(|h| (*h, 0, 0)).collect();
    }
    let answer: Value = serde_json::from_str(&text).unwrap();
    answer
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let ts = parse_iso(row["timestamp"].as_str().unwrap());
            (ts, row["result"]["events"].as_i64().unwrap_or(0), row["result"]["added"].as_i64().unwrap_or(0))
        })
        .collect()
}

/// The rollup rows of some hours as a client sees them: events and `added` by minute, page and
/// language, sorted.
fn rollup(daemon: &Daemon, hours: &[i64]) -> Vec<Value> {
    let intervals: Vec<String> = hours.iter().map(|h| format!("{}/{}", iso(*h), iso(h + HOUR))).collect();
    let query = json!({
        "queryType": "groupBy", "dataSource": "wiki", "granularity": "minute",
        "intervals": intervals, "dimensions": ["page", "lang"],
        "aggregations": [
            {"type": "longSum", "name": "events", "fieldName": "count"},
            {"type": "longSum", "name": "added", "fieldName": "added"}
        ]
    });
    let answer = daemon.json("POST", "/druid/v2", Some(&query.to_string()));
    let mut rows: Vec<Value> =
        answer.as_array().unwrap().iter().map(|r| json!([r["timestamp"], r["event"]])).collect();
    rows.sort_by_key(|r| r.to_string());
    rows
}

fn iso(ms: i64) -> String {
    common::time::format_iso(ms)
}

fn parse_iso(text: &str) -> i64 {
    common::time::parse_iso(text).unwrap()
}

/// Polls `check` every 20 ms until it holds, for at most a minute.
fn wait_until(what: &str, log: &Path, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: not after a minute; log:\n{}",
            read(log)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn catalog_state(deep: &Path) -> common::catalog::CatalogState {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let storage = common::storage::DeepStorage::open(deep.to_str().unwrap()).unwrap();
    runtime
        .block_on(
            common::catalog::Catalog::new(storage, layouts::DataSourceName::new("wiki").unwrap()).load(),
        )
        .unwrap()
}

/// Offsets the stream has committed, over all partitions.
fn committed_messages(deep: &Path) -> i64 {
    catalog_state(deep).offsets.values().sum()
}

fn segments(deep: &Path) -> Vec<Value> {
    let out = support::succeed(support::bin().args(["segments", "--json", "--deep-storage"]).arg(deep));
    serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().clone()
}

fn history(deep: &Path) -> Vec<Value> {
    let out =
        support::succeed(support::bin().args(["batch", "history", "--json", "--deep-storage"]).arg(deep));
    serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().clone()
}

#[test]
fn the_batch_swaps_stream_segments_atomically_and_picks_up_late_raw_events() {
    let broker = MockCluster::new(1).unwrap();
    broker.create_topic(TOPIC, 2, 1).unwrap();
    let bootstrap = broker.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep");
    let spec = write_spec(dir.path(), &bootstrap);
    let current_hour = now_ms() - now_ms().rem_euclid(HOUR);
    let hours: Vec<i64> = (2..=4).rev().map(|n| current_hour - n * HOUR).collect();

    // 1. The stream: 3,000 events over three closed hours in shuffled time order, 30 of them
    // produced long after their time (late), 5 malformed. The scheduler of `braid run` is set
    // to a time that never comes, so the stream's view stays until the test swaps it.
    let run_log = dir.path().join("run.log");
    let daemon = start_run(&deep, &spec, "0 0 0 1 1 * 2099", run_log.clone());
    let mut producer = Events::new(&bootstrap);
    for i in 0..3_000i64 {
        let ts = hours[0] + (i * 7_919) % (3 * HOUR);
        producer.event(ts, ts + 1_000, true);
    }
    let produced_at = now_ms();
    for j in 0..30 {
        producer.event(hours[1] + j * 60_000, produced_at, false);
    }
    for text in [
        "not json {",
        "{\"ts\": \"yesterday\", \"page\": \"x\"}",
        "{\"ts\": 1",
        "[1,2]",
        "{\"page\": \"no time\"}",
    ] {
        producer.malformed(text);
    }
    producer.flush();
    let stream_view = producer.totals(&hours, true);
    wait_until("the stream's totals", &run_log, || hourly(&daemon, &hours) == stream_view);
    wait_until("every message checkpointed", &run_log, || committed_messages(&deep) == producer.messages);
    let streamed_rollup = rollup(&daemon, &[hours[0], hours[2]]);
    let metrics = daemon.request("GET", "/metrics", None).1;
    assert!(metrics.contains("ingest_events_thrown_away_total{dataSource=\"wiki\"} 30"), "{metrics}");
    assert!(metrics.contains("ingest_events_unparseable_total{dataSource=\"wiki\"} 5"), "{metrics}");

    // 2. The swap, while a client queries in a loop.
    let batch_view = producer.totals(&hours, false);
    assert_ne!(stream_view, batch_view);
    let stop = Arc::new(AtomicBool::new(false));
    let answers = std::thread::scope(|scope| {
        let client = scope.spawn(|| {
            let mut answers = Vec::new();
            while !stop.load(Ordering::SeqCst) || answers.is_empty() {
                answers.push(hourly(&daemon, &hours));
            }
            answers
        });
        let scheduler_log = dir.path().join("schedule.log");
        let scheduler = Daemon::start(
            [
                "batch",
                "schedule",
                "--spec",
                spec.to_str().unwrap(),
                "--deep-storage",
                deep.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--cron",
                "* * * * * *",
                "--lookback",
                "P1D",
                "--settle",
                "PT0S",
                "--threads",
                "1",
                "--no-cleanup",
            ],
            "braid batch scheduler running 1 jobs",
            scheduler_log.clone(),
        );
        wait_until("the batch versions", &scheduler_log, || hourly(&daemon, &hours) == batch_view);
        stop.store(true, Ordering::SeqCst);
        let answers = client.join().unwrap();
        // Stream and batch agree: the hours without late events roll up to the same rows.
        assert_eq!(rollup(&daemon, &[hours[0], hours[2]]), streamed_rollup);

        // 3. Events for a batch-owned hour that arrive now: the stream leaves them out (the
        // hour is the batch's) but archives them, and the next run picks them up.
        for j in 0..7 {
            let ts = hours[2] + 30 * 60_000 + j;
            producer.event(ts, ts + 1_000, false);
        }
        producer.flush();
        let with_late = producer.totals(&hours, false);
        wait_until("the next run's pickup", &scheduler_log, || hourly(&daemon, &hours) == with_late);
        assert!(scheduler.terminate().success(), "log:\n{}", read(&scheduler_log));
        answers
    });
    let old_seen = answers.iter().filter(|a| **a == stream_view).count();
    let new_seen = answers.iter().filter(|a| **a == batch_view).count();
    for answer in &answers {
        for (h, row) in answer.iter().enumerate() {
            assert!(
                *row == stream_view[h] || *row == batch_view[h],
                "hour {} answered {row:?}: neither the stream's {:?} nor the batch's {:?}",
                iso(row.0),
                stream_view[h],
                batch_view[h]
            );
        }
    }
    assert!(old_seen > 0 && new_seen > 0, "{old_seen} old and {new_seen} new answers of {}", answers.len());

    let all = segments(&deep);
    let visible: Vec<&Value> = all.iter().filter(|s| s["visible"] == true).collect();
    assert_eq!(visible.len(), 3, "one visible version per hour: {visible:?}");
    assert!(visible.iter().all(|s| s["origin"] == "batch"), "{visible:?}");
    assert!(all.iter().filter(|s| s["origin"] == "stream").all(|s| s["state"] == "overshadowed"), "{all:?}");

    // 4. `braid run`'s own scheduler: late events for the oldest hour, then a restart with a
    // scheduler that runs every second.
    let final_view = {
        for j in 0..4 {
            producer.event(hours[0] + j, now_ms(), false);
        }
        producer.flush();
        producer.totals(&hours, false)
    };
    assert!(daemon.terminate().success(), "SIGTERM stops `braid run` cleanly; log:\n{}", read(&run_log));
    let daemon = start_run(&deep, &spec, "* * * * * *", run_log.clone());
    wait_until("braid run's scheduler", &run_log, || hourly(&daemon, &hours) == final_view);
    let metrics = daemon.request("GET", "/metrics", None).1;
    assert!(metrics.contains("batch_intervals_total{outcome=\"published\"}"), "{metrics}");
    assert!(metrics.contains("query_count_total"), "{metrics}");
    assert_eq!(daemon.request("GET", "/status/health", None), (200, "true".to_string()));
    assert!(daemon.terminate().success(), "log:\n{}", read(&run_log));
    let runs = history(&deep);
    let published: Vec<&Value> = runs
        .iter()
        .flat_map(|r| r["intervals"].as_array().unwrap())
        .filter(|i| i["outcome"] == "published")
        .collect();
    // Three hours, then the third and the first again (more if late events were committed in
    // two checkpoints, each changing the raw files).
    assert!(published.len() >= 5, "{runs:?}");
    for hour in &hours {
        assert!(
            published.iter().any(|i| i["interval"].as_str().unwrap().starts_with(&iso(*hour))),
            "{runs:?}"
        );
    }
    assert!(published.iter().all(|i| i["version"].as_str().unwrap() > "2000"), "{published:?}");
    assert!(runs.iter().all(|r| r["outcome"] != "failed"), "{runs:?}");

    // 5. Cleanup removes every overshadowed segment and its file; the answers stay. (`braid
    // run`'s scheduler already dropped them from the catalog after its runs, keeping their
    // files for the default retention of a day.)
    let out = support::succeed(
        support::bin().args(["cleanup", "--retention", "PT0S", "--json", "--deep-storage"]).arg(&deep),
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    let purged_segments = report[0]["purged"].as_array().unwrap().len();
    let overshadowed = all.iter().filter(|s| s["state"] == "overshadowed").count();
    assert!(purged_segments >= overshadowed && overshadowed > 0, "{report}");
    assert!(segments(&deep).iter().all(|s| s["visible"] == true));
    let purged = report[0]["deletedFiles"].as_array().unwrap();
    assert!(purged.iter().all(|p| !deep.join(p.as_str().unwrap()).exists()), "{report}");
    let daemon = Daemon::start(
        ["serve", "--listen", "127.0.0.1:0", "--deep-storage", deep.to_str().unwrap()],
        "braid serving Druid queries on ",
        dir.path().join("serve.log"),
    );
    assert_eq!(hourly(&daemon, &hours), final_view);
}
