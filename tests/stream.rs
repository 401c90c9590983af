//! `braid stream` against librdkafka's mock cluster (a Kafka-protocol broker in this test
//! process): events are queryable while they stream, a clean stop checkpoints them, and a
//! daemon killed with SIGKILL at random moments, a second daemon on the same partitions and
//! broker faults never lose or double count an event. Also the supervisor, push and metrics
//! APIs.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;
use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::{Value, json};
use support::daemon::{Daemon, read, send};

const TOPIC: &str = "wiki";
/// 2013-08-31T00:00:00Z.
const DAY: i64 = 1_377_907_200_000;
const HOUR: i64 = 3_600_000;

/// A mock cluster with the topic in two partitions.
fn broker() -> MockCluster<'static, DefaultProducerContext> {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, 2, 1).unwrap();
    cluster
}

/// Event `i`: spread over three hours and 40 pages, `added` = i.
fn event(i: u64) -> (i64, String) {
    let ts = DAY + (i as i64 * 7_919) % (3 * HOUR);
    let lang = if i.is_multiple_of(3) { "de" } else { "en" };
    (ts, format!(r#"{{"ts": {ts}, "page": "page-{}", "lang": "{lang}", "added": {i}}}"#, i % 40))
}

/// Produces events `range` (message time = event time) and raw extra payloads; waits for the
/// broker's acknowledgements.
fn produce(bootstrap: &str, range: std::ops::Range<u64>, extra: &[&str]) {
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    for i in range {
        let (ts, payload) = event(i);
        let key = i.to_string();
        let record =
            BaseRecord::<str, str>::to(TOPIC).key(key.as_str()).payload(payload.as_str()).timestamp(ts);
        send(&producer, record);
    }
    for payload in extra {
        send(&producer, BaseRecord::<str, str>::to(TOPIC).key("x").payload(payload));
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

fn write_spec(dir: &Path, bootstrap: &str, tuning: Value) -> PathBuf {
    let mut tuning_config = json!({"type": "kafka", "maxRowsInMemory": 5000, "checkpointPeriod": "PT2S"});
    tuning_config.as_object_mut().unwrap().extend(tuning.as_object().unwrap().clone());
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
                "useEarliestOffset": true
            },
            "tuningConfig": tuning_config
        }
    });
    let path = dir.join("wiki-kafka.json");
    std::fs::write(&path, serde_json::to_string_pretty(&spec).unwrap()).unwrap();
    path
}

/// What each test starts from: a mock cluster, a temporary directory with deep storage in it,
/// and a spec for the cluster with `tuning` over the tests' defaults.
struct Setup {
    /// Kept alive for the test's length (dropping it stops the brokers).
    broker: MockCluster<'static, DefaultProducerContext>,
    bootstrap: String,
    dir: tempfile::TempDir,
    deep: PathBuf,
    spec: PathBuf,
}

fn setup(tuning: Value) -> Setup {
    let broker = broker();
    let bootstrap = broker.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep");
    let spec = write_spec(dir.path(), &bootstrap, tuning);
    Setup { broker, bootstrap, dir, deep, spec }
}

/// Starts `braid stream` on a free port.
fn start_stream(deep: &Path, spec: Option<&Path>, log: PathBuf) -> Daemon {
    let mut args: Vec<std::ffi::OsString> =
        vec!["stream".into(), "--listen".into(), "127.0.0.1:0".into(), "--deep-storage".into(), deep.into()];
    if let Some(spec) = spec {
        args.extend(["--spec".into(), spec.into()]);
    }
    Daemon::start(args, "braid streaming; Druid queries on ", log)
}

impl Daemon {
    /// Events and `added` the query API sees, through a timeseries query.
    fn totals(&self) -> (i64, i64) {
        let query = totals_query();
        let (status, text) = self.request("POST", "/druid/v2", Some(&query.to_string()));
        if status != 200 {
            // Before the first event the dataSource is not known yet.
            assert!(text.contains("not found") || text.contains("Unknown"), "{text}");
            return (0, 0);
        }
        let answer: Value = serde_json::from_str(&text).unwrap();
        let result = &answer[0]["result"];
        (result["events"].as_i64().unwrap_or(0), result["added"].as_i64().unwrap_or(0))
    }

    /// Polls the query API until it sees `events` events (every 20 ms, for at most a minute).
    fn wait_for_events(&self, events: i64) -> Duration {
        let started = Instant::now();
        loop {
            let (seen, _) = self.totals();
            if seen == events {
                return started.elapsed();
            }
            assert!(
                seen < events,
                "saw {seen} events, more than the {events} produced; log:\n{}",
                read(&self.log)
            );
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "saw {seen} of {events} events after a minute; log:\n{}",
                read(&self.log)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Total events (the ingest `count` metric) and `added` over the whole day.
fn totals_query() -> Value {
    json!({
        "queryType": "timeseries", "dataSource": "wiki", "granularity": "all",
        "intervals": ["2013-08-31/2013-09-01"],
        "aggregations": [
            {"type": "longSum", "name": "events", "fieldName": "count"},
            {"type": "longSum", "name": "added", "fieldName": "added"}
        ]
    })
}

/// Events and `added` in the visible segments, through `braid query` on deep storage.
fn published_totals(deep: &Path) -> (i64, i64) {
    let out = support::succeed(
        support::bin()
            .args(["query", "--json", "-", "--deep-storage"])
            .arg(deep)
            .write_stdin(totals_query().to_string()),
    );
    let answer: Value = serde_json::from_str(&out).unwrap();
    (answer[0]["result"]["events"].as_i64().unwrap(), answer[0]["result"]["added"].as_i64().unwrap())
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

fn catalog_seq(deep: &Path) -> u64 {
    catalog_state(deep).seq
}

/// Lines in the raw parts the catalog has committed.
fn committed_raw_lines(deep: &Path) -> u64 {
    let state = catalog_state(deep);
    let mut lines = 0;
    for part in &state.raw_parts {
        let mut text = String::new();
        MultiGzDecoder::new(std::fs::File::open(deep.join(part)).unwrap()).read_to_string(&mut text).unwrap();
        lines += text.lines().count() as u64;
    }
    lines
}

fn expected_added(n: u64) -> i64 {
    (0..n as i64).sum()
}

#[test]
fn streamed_events_are_queryable_at_once_and_a_clean_stop_publishes_them() {
    let Setup { broker: _broker, bootstrap, dir, deep, spec } = setup(json!({"checkpointPeriod": "PT10M"}));
    produce(&bootstrap, 0..2_000, &["not json", r#"{"page": "no time"}"#]);

    let daemon = start_stream(&deep, Some(&spec), dir.path().join("stream.log"));
    daemon.wait_for_events(2_000);
    assert_eq!(daemon.totals(), (2_000, expected_added(2_000)));
    // Nothing is checkpointed yet (PT10M): these rows are all in memory.
    assert!(!deep.join("segments").exists());

    produce(&bootstrap, 2_000..2_500, &[]);
    daemon.wait_for_events(2_500);

    let metrics = daemon.request("GET", "/metrics", None).1;
    assert!(metrics.contains("ingest_events_processed_total{dataSource=\"wiki\"} 2500\n"), "{metrics}");
    assert!(metrics.contains("ingest_events_unparseable_total{dataSource=\"wiki\"} 2\n"), "{metrics}");
    assert!(metrics.contains("ingest_rows_in_memory{dataSource=\"wiki\"} "), "{metrics}");
    // Rows and raw events since the last checkpoint (none yet) take memory, and say how much.
    let gauge = |name: &str| -> u64 {
        let prefix = format!("{name}{{dataSource=\"wiki\"}} ");
        let line = metrics.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {name}"));
        line[prefix.len()..].parse().unwrap()
    };
    let rows = gauge("ingest_rows_in_memory");
    assert!(rows > 0);
    assert!(gauge("ingest_bytes_in_memory") > rows * 20, "{metrics}");
    assert!(gauge("ingest_archive_buffer_bytes") > 2_500 * 10, "{metrics}");
    // Lag comes from librdkafka's statistics, every two seconds.
    let started = Instant::now();
    let lag = "ingest_kafka_partition_lag{dataSource=\"wiki\",partition=\"1\"} 0\n";
    while !daemon.request("GET", "/metrics", None).1.contains(lag) {
        assert!(started.elapsed() < Duration::from_secs(20), "no {lag} in /metrics");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(daemon.json("GET", "/status/health", None), json!(true));

    let status = daemon.terminate();
    assert!(status.success(), "exit {status}");
    assert_eq!(published_totals(&deep), (2_500, expected_added(2_500)));
    assert_eq!(committed_raw_lines(&deep), 2_500);
    let rejects: Vec<_> = std::fs::read_dir(deep.join("rejects/wiki")).unwrap().flatten().collect();
    assert_eq!(rejects.len(), 1, "one rejects file for the checkpoint");
    let mut text = String::new();
    MultiGzDecoder::new(std::fs::File::open(rejects[0].path()).unwrap()).read_to_string(&mut text).unwrap();
    assert!(text.contains("timestamp column \\\"ts\\\" is missing"), "{text}");
    assert!(text.contains("kafka topic \\\"wiki\\\" partition"), "{text}");

    let segments: Vec<Value> = serde_json::from_str(&support::succeed(
        support::bin().args(["segments", "--json", "--deep-storage"]).arg(&deep),
    ))
    .unwrap();
    assert_eq!(segments.len(), 3, "one stream segment per hour: {segments:#?}");
    assert!(segments.iter().all(|s| s["origin"] == "stream" && s["visible"] == true), "{segments:#?}");

    // Restarted, it resumes from the catalog's offsets: nothing is read twice.
    produce(&bootstrap, 2_500..2_600, &[]);
    let daemon = start_stream(&deep, Some(&spec), dir.path().join("stream.log"));
    daemon.wait_for_events(2_600);
    assert!(daemon.terminate().success());
    assert_eq!(published_totals(&deep), (2_600, expected_added(2_600)));
}

/// Raw files under `deep/raw`, relative to `deep`.
fn raw_files(deep: &Path) -> Vec<String> {
    support::files_under(deep)
        .into_iter()
        .filter(|f| f.starts_with("raw/") && f.ends_with(".json.gz"))
        .collect()
}

/// When the raw archive holds `maxArchiveBytesInMemory`, its largest parts are written to
/// deep storage at once instead of waiting in memory for the checkpoint; nothing reads them
/// until the checkpoint commits them with the rest, and then every event is in exactly one
/// committed part.
#[test]
fn raw_parts_are_written_ahead_and_committed_by_the_next_checkpoint() {
    let Setup { broker: _broker, bootstrap, dir, deep, spec } =
        setup(json!({"checkpointPeriod": "PT10M", "maxArchiveBytesInMemory": 4096}));
    produce(&bootstrap, 0..3_000, &[]);
    let daemon = start_stream(&deep, Some(&spec), dir.path().join("stream.log"));
    daemon.wait_for_events(3_000);
    // About 200 KiB of events in 2 partitions and 3 hours: dozens of parts written ahead.
    let started = Instant::now();
    while raw_files(&deep).len() < 20 {
        assert!(started.elapsed() < Duration::from_secs(20), "parts written ahead: {:?}", raw_files(&deep));
        std::thread::sleep(Duration::from_millis(20));
    }
    let state = catalog_state(&deep);
    assert!(state.raw_parts.is_empty() && state.offsets.is_empty(), "nothing is committed yet: {state:?}");

    assert!(daemon.terminate().success());
    assert_eq!(published_totals(&deep), (3_000, expected_added(3_000)));
    assert_eq!(committed_raw_lines(&deep), 3_000);
    let committed: Vec<String> = catalog_state(&deep).raw_parts.into_iter().collect();
    assert_eq!(committed, raw_files(&deep), "every file written ahead is committed");
}

/// The daemon is killed with SIGKILL at pseudo-random moments (consuming, writing raw parts
/// ahead, writing segments, committing: checkpoints run every 200 ms and every 300 rows, raw
/// parts are written ahead every few kilobytes) while events keep arriving, and restarted
/// each time. In the end every event counts exactly once, in the segments and in the
/// committed raw archive.
#[test]
fn killed_at_random_moments_it_counts_every_event_exactly_once() {
    const ROUNDS: u64 = 8;
    const PER_ROUND: u64 = 1_500;
    let Setup { broker: _broker, bootstrap, dir, deep, spec } =
        setup(json!({"maxRowsInMemory": 300, "checkpointPeriod": "PT0.2S", "maxArchiveBytesInMemory": 4096}));
    let log = dir.path().join("stream.log");
    let mut random: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..ROUNDS {
        produce(&bootstrap, round * PER_ROUND..(round + 1) * PER_ROUND, &[]);
        let daemon = start_stream(&deep, Some(&spec), log.clone());
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        std::thread::sleep(Duration::from_millis(150 + random % 700));
        daemon.kill();
    }
    let n = ROUNDS * PER_ROUND;
    let killed_runs_commits = catalog_seq(&deep);
    assert!(killed_runs_commits >= ROUNDS, "only {killed_runs_commits} checkpoints before the final run");
    let daemon = start_stream(&deep, Some(&spec), log.clone());
    daemon.wait_for_events(n as i64);
    assert!(daemon.terminate().success(), "log:\n{}", read(&log));
    assert_eq!(published_totals(&deep), (n as i64, expected_added(n)), "log:\n{}", read(&log));
    assert_eq!(committed_raw_lines(&deep), n);
}

/// Two daemons on the same partitions: the one that finds the offsets moved under it (by its
/// commit's offset check, or sooner, when its queries or catalog reads see them move) consumes
/// again from the catalog instead of publishing or serving its copy; neither daemon's queries
/// ever count an event twice. Broker faults on the way (failed fetches, the broker down and up
/// again) are retried, not lost.
#[test]
fn a_second_daemon_and_broker_faults_cannot_double_count_or_lose_events() {
    let Setup { broker, bootstrap, dir, deep, spec } =
        setup(json!({"maxRowsInMemory": 500, "checkpointPeriod": "PT0.3S"}));
    let first = start_stream(&deep, Some(&spec), dir.path().join("first.log"));
    let second = start_stream(&deep, Some(&spec), dir.path().join("second.log"));
    produce(&bootstrap, 0..3_000, &[]);
    broker.request_errors(
        RDKafkaApiKey::Fetch,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    produce(&bootstrap, 3_000..4_000, &[]);
    broker.broker_down(1).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    broker.broker_up(1).unwrap();
    produce(&bootstrap, 4_000..5_000, &[]);
    first.wait_for_events(5_000);
    second.wait_for_events(5_000);
    let (first_log, second_log) = (dir.path().join("first.log"), dir.path().join("second.log"));
    assert!(first.terminate().success(), "first daemon's log:\n{}", read(&first_log));
    assert!(second.terminate().success(), "second daemon's log:\n{}", read(&second_log));
    assert_eq!(published_totals(&deep), (5_000, expected_added(5_000)));
    assert_eq!(committed_raw_lines(&deep), 5_000);
}

/// A final checkpoint that fails (here a file stands where the segments' directory goes)
/// loses nothing: the daemon still stops, with the failure in its log and nothing committed,
/// and the next start consumes the events again from the catalog's offsets.
#[test]
fn a_final_checkpoint_that_fails_is_consumed_again_at_the_next_start() {
    let Setup { broker: _broker, bootstrap, dir, deep, spec } =
        setup(json!({"maxRowsInMemory": 1_000_000, "checkpointPeriod": "PT1H"}));
    produce(&bootstrap, 0..2_000, &[]);
    let log = dir.path().join("stream.log");
    let daemon = start_stream(&deep, Some(&spec), log.clone());
    daemon.wait_for_events(2_000);
    let blocker = deep.join("segments").join("wiki");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, "not a directory").unwrap();
    assert!(daemon.terminate().success(), "log:\n{}", read(&log));
    assert!(read(&log).contains("Checkpoint failed; its events are consumed again"), "log:\n{}", read(&log));
    assert_eq!(catalog_seq(&deep), 0, "log:\n{}", read(&log));

    std::fs::remove_file(&blocker).unwrap();
    let daemon = start_stream(&deep, Some(&spec), log.clone());
    daemon.wait_for_events(2_000);
    assert!(daemon.terminate().success(), "log:\n{}", read(&log));
    assert_eq!(published_totals(&deep), (2_000, expected_added(2_000)), "log:\n{}", read(&log));
    assert_eq!(committed_raw_lines(&deep), 2_000);
}

/// Druid's supervisor API and Tranquility's push API on a daemon started without a spec.
#[test]
fn supervisor_and_push_apis() {
    let Setup { broker: _broker, bootstrap, dir, deep, spec } = setup(json!({}));
    let daemon = start_stream(&deep, None, dir.path().join("stream.log"));
    assert_eq!(daemon.json("GET", "/druid/indexer/v1/supervisor", None), json!([]));
    let submitted = daemon.json("POST", "/druid/indexer/v1/supervisor", Some(&read(&spec)));
    assert_eq!(submitted, json!({"id": "wiki"}));
    assert_eq!(daemon.json("GET", "/druid/indexer/v1/supervisor", None), json!(["wiki"]));

    let events: Vec<String> = (0..3).map(|i| event(i).1).collect();
    let pushed = daemon.json("POST", "/v1/post/wiki", Some(&format!("[{}]", events.join(","))));
    assert_eq!(pushed, json!({"result": {"received": 3, "sent": 3}}));
    daemon.wait_for_events(3);

    let status = daemon.json("GET", "/druid/indexer/v1/supervisor/wiki/status", None);
    assert_eq!(status["payload"]["state"], "RUNNING", "{status}");
    assert_eq!(status["payload"]["stream"], TOPIC);
    assert_eq!(status["payload"]["partitions"], 2);
    daemon.json("POST", "/druid/indexer/v1/supervisor/wiki/suspend", None);
    wait_for_state(&daemon, "SUSPENDED");
    // Suspending checkpoints: the events are in deep storage and still counted once.
    assert_eq!(daemon.totals().0, 3);
    daemon.json("POST", "/druid/indexer/v1/supervisor/wiki/resume", None);
    wait_for_state(&daemon, "RUNNING");
    produce(&bootstrap, 3..5, &[]);
    daemon.wait_for_events(5);

    let (status, body) = daemon.request("GET", "/druid/indexer/v1/supervisor/nope/status", None);
    assert_eq!(status, 404, "{body}");
    let (status, body) = daemon.request("POST", "/v1/post/wiki", Some("[1, 2]"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("body[0]: an event must be a JSON object"), "{body}");
    let (status, body) = daemon.request("POST", "/druid/indexer/v1/supervisor", Some(r#"{"type": "kafka"}"#));
    assert_eq!(status, 400, "{body}");
    assert!(daemon.terminate().success());
    assert_eq!(published_totals(&deep).0, 5);
}

fn wait_for_state(daemon: &Daemon, state: &str) {
    let started = Instant::now();
    loop {
        let status = daemon.json("GET", "/druid/indexer/v1/supervisor/wiki/status", None);
        if status["payload"]["state"] == state {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "still {status} after 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Unparseable events never stop the daemon, until there are more than `maxParseExceptions`:
/// then it checkpoints what it consumed and exits with an error that names the limit.
#[test]
fn too_many_unparseable_events_stop_the_daemon_after_a_checkpoint() {
    let Setup { broker: _broker, bootstrap, dir, deep, spec } = setup(json!({"maxParseExceptions": 2}));
    produce(&bootstrap, 0..10, &["{", "[]", "nope"]);
    let log = dir.path().join("stream.log");
    let mut daemon = start_stream(&deep, Some(&spec), log.clone());
    let status = daemon.child.wait().unwrap();
    assert!(!status.success());
    let text = read(&log);
    assert!(text.contains("3 unparseable events passed maxParseExceptions (2)"), "{text}");
    assert!(!catalog_state(&deep).raw_parts.is_empty(), "the consumed events were checkpointed: {text}");
    assert!(std::fs::read_dir(deep.join("rejects/wiki")).unwrap().count() == 1);
}
