//! End-to-end tests of the query path: `braid serve` answering Druid's native queries and Druid
//! SQL over HTTP, and `braid query` with and without a server. Each test builds its own deep
//! storage (the tutorial's five events, or `braid generate` events put and reindexed), starts the
//! real binary and compares every answer with numbers this file computes itself from the raw
//! events (rollup worked out here), never with another braid answer. Covered: each native query
//! type in the shapes of Druid's documentation (granularities, time zones, descending, empty
//! buckets, grand totals, filtered aggregators, post-aggregators, topN metric specs, groupBy
//! limitSpec and having, scan formats with limit, offset and order, metadata queries), every
//! interval form and filter type, the example query of each native query type's documentation
//! page adapted to this data, every SQL result format with and without header,
//! `INFORMATION_SCHEMA`, Druid's error bodies, a reindex seen without restart, and pydruid and
//! SQLAlchemy unmodified against the server (`tests/pydruid_client.py`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command as StdCommand, ExitStatus, Stdio};
use std::time::Duration;

use common::generator::DIMENSIONS;
use common::time::{format_iso, parse_iso as parse_utc};
use flate2::read::MultiGzDecoder;
use serde_json::{Value, json};
use tempfile::TempDir;

mod support;
use support::{bin, example, succeed};

/// The wikipedia spec's metrics, in spec order.
const METRICS: [&str; 4] = ["count", "added", "deleted", "delta"];
/// The dimensions of the hourly rollup spec this file derives from the Kafka example.
const HOURLY_DIMENSIONS: [&str; 3] = ["language", "namespace", "robot"];
const DAY: &str = "2013-08-31/2013-09-01";
const DAY_ISO: &str = "2013-08-31T00:00:00.000Z/2013-09-01T00:00:00.000Z";
/// 2013-08-31T00:00:00Z in UTC milliseconds.
const DAY_START_MS: i64 = 1_377_907_200_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

// ---------------------------------------------------------------------------------------------
// Time: ISO 8601 in and out
// ---------------------------------------------------------------------------------------------

/// A timestamp the events or an answer carry, in UTC milliseconds.
fn parse_iso(s: &str) -> i64 {
    parse_utc(s).unwrap_or_else(|e| panic!("unexpected timestamp {s:?}: {e}"))
}

/// Joda's rendering of an instant at a fixed UTC offset, as Druid writes result timestamps:
/// `2013-08-31T01:02:33.000Z`, or `2013-08-30T00:00:00.000-07:00` in a period's time zone.
fn iso_at(ms: i64, offset_minutes: i64) -> String {
    let local = format_iso(ms + offset_minutes * 60_000);
    if offset_minutes == 0 {
        return local;
    }
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let wall = local.strip_suffix('Z').expect("format_iso ends in Z");
    format!("{wall}{sign}{:02}:{:02}", offset_minutes.abs() / 60, offset_minutes.abs() % 60)
}

fn iso(ms: i64) -> String {
    iso_at(ms, 0)
}

fn hour_floor(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

#[test]
fn time_helpers_agree_with_known_instants() {
    assert_eq!(parse_iso("2013-08-31T00:00:00Z"), DAY_START_MS);
    assert_eq!(parse_iso("2013-08-31T01:02:33.5Z"), DAY_START_MS + HOUR_MS + 153_500);
    assert_eq!(iso(DAY_START_MS + 7), "2013-08-31T00:00:00.007Z");
    assert_eq!(iso_at(DAY_START_MS + 7 * HOUR_MS, -420), "2013-08-31T00:00:00.000-07:00");
    assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
}

// ---------------------------------------------------------------------------------------------
// The expected side: raw events read here, rolled up here
// ---------------------------------------------------------------------------------------------

/// An event, or a rollup row of several: its time, dimension values and metric sums.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    time: i64,
    dims: BTreeMap<&'static str, String>,
    /// The ingest-time `count`: how many events the row stands for.
    events: i64,
    added: f64,
    deleted: f64,
    delta: f64,
}

impl Row {
    fn dim(&self, name: &str) -> &str {
        self.dims.get(name).unwrap_or_else(|| panic!("no dimension {name}"))
    }

    /// A column's value as Druid's JSON would carry it.
    fn column(&self, name: &str) -> Value {
        match name {
            "__time" => json!(self.time),
            "count" => json!(self.events),
            "added" => json!(self.added),
            "deleted" => json!(self.deleted),
            "delta" => json!(self.delta),
            dim => json!(self.dim(dim)),
        }
    }
}

/// Sums over a set of rows, as the usual aggregators see them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Totals {
    /// Query-time `count`: rollup rows.
    rows: i64,
    /// `longSum` of the ingest `count`: events.
    events: i64,
    added: f64,
    deleted: f64,
    delta: f64,
}

impl Totals {
    fn add(&mut self, row: &Row) {
        self.rows += 1;
        self.events += row.events;
        self.added += row.added;
        self.deleted += row.deleted;
        self.delta += row.delta;
    }
}

fn totals<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Totals {
    let mut t = Totals::default();
    rows.into_iter().for_each(|r| t.add(r));
    t
}

/// Totals per key, keys sorted.
fn group_by<K: Ord>(rows: &[Row], key: impl Fn(&Row) -> K) -> BTreeMap<K, Totals> {
    let mut groups: BTreeMap<K, Totals> = BTreeMap::new();
    for row in rows {
        groups.entry(key(row)).or_default().add(row);
    }
    groups
}

/// Druid's rollup: events with the same truncated time and the same values of `dims` become
/// one row whose metrics are the sums.
fn rollup(events: &[Row], granularity_ms: Option<i64>, dims: &[&'static str]) -> Vec<Row> {
    let mut rows: BTreeMap<(i64, Vec<String>), Row> = BTreeMap::new();
    for e in events {
        let time = granularity_ms.map_or(e.time, |g| e.time.div_euclid(g) * g);
        let values: Vec<String> = dims.iter().map(|d| e.dim(d).to_string()).collect();
        let row = rows.entry((time, values.clone())).or_insert_with(|| Row {
            time,
            dims: dims.iter().copied().zip(values).collect(),
            events: 0,
            added: 0.0,
            deleted: 0.0,
            delta: 0.0,
        });
        row.events += e.events;
        row.added += e.added;
        row.deleted += e.deleted;
        row.delta += e.delta;
    }
    rows.into_values().collect()
}

/// Parses newline-delimited wikipedia events.
fn parse_events(text: &str) -> Vec<Row> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let metric = |name: &str| v[name].as_f64().unwrap_or_else(|| panic!("{name} in {line}"));
            Row {
                time: parse_iso(v["timestamp"].as_str().unwrap()),
                dims: DIMENSIONS.iter().map(|&d| (d, v[d].as_str().unwrap().to_string())).collect(),
                events: 1,
                added: metric("added"),
                deleted: metric("deleted"),
                delta: metric("delta"),
            }
        })
        .collect()
}

fn read_gzip_events(path: &Path) -> Vec<Row> {
    let mut text = String::new();
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    MultiGzDecoder::new(file).read_to_string(&mut text).unwrap();
    parse_events(&text)
}

// ---------------------------------------------------------------------------------------------
// Fixtures: deep storage built with the real binary
// ---------------------------------------------------------------------------------------------

/// A deep storage with the wikipedia dataSource indexed, and the events it was built from.
struct Fixture {
    dir: TempDir,
    deep: PathBuf,
    /// Every event put so far, one `Row` each.
    events: Vec<Row>,
}

impl Fixture {
    fn empty() -> Self {
        let dir = TempDir::new().unwrap();
        let deep = dir.path().join("deep");
        Self { dir, deep, events: Vec::new() }
    }

    /// The five events of Druid's tutorial.
    fn tutorial() -> Self {
        let mut fixture = Self::empty();
        let file = example("wikipedia-events.json");
        fixture.put(&example("wikipedia.json"), std::slice::from_ref(&file));
        fixture.events = parse_events(&std::fs::read_to_string(file).unwrap());
        fixture.reindex(&example("wikipedia.json"));
        fixture
    }

    /// `braid generate` events of 2013-08-31 from midnight, put and reindexed.
    fn generated(events: u64, hours: u32, seed: u64) -> Self {
        let mut fixture = Self::empty();
        fixture.add_generated("input", events, hours, seed);
        fixture.reindex(&example("wikipedia.json"));
        fixture
    }

    /// Generates events into `dir/<name>` and puts them; returns the files.
    fn add_generated(&mut self, name: &str, events: u64, hours: u32, seed: u64) -> Vec<PathBuf> {
        let out = self.dir.path().join(name);
        let mut cmd = bin();
        cmd.args(["generate", "--events", &events.to_string(), "--hours", &hours.to_string()])
            .args(["--start", "2013-08-31T00:00:00Z", "--seed", &seed.to_string()])
            .arg("--out")
            .arg(&out);
        succeed(&mut cmd);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        self.put(&example("wikipedia.json"), &files);
        self.events.extend(files.iter().flat_map(|f| read_gzip_events(f)));
        files
    }

    fn put(&self, spec: &Path, files: &[PathBuf]) {
        let mut cmd = bin();
        cmd.args(["raw", "put", "--spec"]).arg(spec).arg("--deep-storage").arg(&self.deep).args(files);
        succeed(&mut cmd);
    }

    fn reindex(&self, spec: &Path) {
        let mut cmd = bin();
        cmd.args(["batch", "reindex", "--interval", DAY, "--spec"])
            .arg(spec)
            .arg("--deep-storage")
            .arg(&self.deep);
        succeed(&mut cmd);
    }

    /// The wikipedia spec's rollup of every event: queryGranularity none, all dimensions.
    fn rows(&self) -> Vec<Row> {
        rollup(&self.events, None, &DIMENSIONS)
    }

    fn min_time(&self) -> i64 {
        self.events.iter().map(|e| e.time).min().unwrap()
    }

    fn max_time(&self) -> i64 {
        self.events.iter().map(|e| e.time).max().unwrap()
    }

    /// `braid segments --json`, visible segments only.
    fn visible_segments(&self) -> Vec<Value> {
        let mut cmd = bin();
        cmd.args(["segments", "--json", "--deep-storage"]).arg(&self.deep);
        let views: Value = serde_json::from_str(&succeed(&mut cmd)).unwrap();
        views.as_array().unwrap().iter().filter(|v| v["visible"] == true).cloned().collect()
    }

    fn serve(&self) -> Server {
        Server::start(&self.deep, self.dir.path().join(format!("serve-{}.log", uuid_like())))
    }
}

/// A name unique within this process, for log files.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

// ---------------------------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------------------------

/// A running `braid serve`; killed on drop, its log printed if the test is failing.
struct Server {
    child: Child,
    /// Kept open: the server may print again, and a closed pipe must not kill it.
    _stdout: BufReader<ChildStdout>,
    url: String,
    log: PathBuf,
    agent: ureq::Agent,
}

/// An HTTP answer: status, content type and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("HTTP {} body is not JSON ({e}):\n{}", self.status, self.body))
    }
}

impl Server {
    /// Starts the server on a free port and waits for its "serving" line.
    fn start(deep: &Path, log: PathBuf) -> Self {
        let mut cmd = StdCommand::new(env!("CARGO_BIN_EXE_braid"));
        for var in ["BRAID_DEEP_STORAGE", "BRAID_LISTEN", "BRAID_LOG_FORMAT"] {
            cmd.env_remove(var);
        }
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0", "--deep-storage"])
            .arg(deep)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let Some(url) = line.trim_end().strip_prefix("braid serving Druid queries on ") else {
            let status = child.wait().unwrap();
            panic!(
                "braid serve printed {line:?} and exited with {status}; stderr:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        assert!(url.starts_with("http://127.0.0.1:"), "{line}");
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build();
        let agent = ureq::Agent::new_with_config(config);
        Self { url: url.to_string(), child, _stdout: stdout, log, agent }
    }

    fn port(&self) -> &str {
        self.url.rsplit(':').next().unwrap()
    }

    fn answer(&self, response: Result<ureq::http::Response<ureq::Body>, ureq::Error>, what: &str) -> Answer {
        let mut response = response.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response.body_mut().read_to_string().unwrap_or_else(|e| panic!("{what}: {e}"));
        Answer { status, content_type, body }
    }

    /// POSTs a body as `application/json`.
    fn post(&self, path: &str, body: &str) -> Answer {
        let url = format!("{}{path}", self.url);
        let response = self.agent.post(&url).header("Content-Type", "application/json").send(body);
        self.answer(response, &format!("POST {path} {body}"))
    }

    fn get(&self, path: &str) -> Answer {
        let url = format!("{}{path}", self.url);
        self.answer(self.agent.get(&url).call(), &format!("GET {path}"))
    }

    /// A native query that must succeed.
    fn native(&self, query: &Value) -> Value {
        let answer = self.post("/druid/v2", &query.to_string());
        assert_eq!(answer.status, 200, "query {query}\nanswered {}", answer.body);
        answer.json()
    }

    /// A SQL request that must succeed and answer JSON (object or array result format).
    fn sql(&self, request: &Value) -> Value {
        let answer = self.post("/druid/v2/sql", &request.to_string());
        assert_eq!(answer.status, 200, "SQL {request}\nanswered {}", answer.body);
        answer.json()
    }

    /// The rows of `SELECT ...` in the array result format.
    fn sql_rows(&self, query: &str) -> Vec<Vec<Value>> {
        let rows = self.sql(&json!({"query": query, "resultFormat": "array"}));
        rows.as_array()
            .unwrap_or_else(|| panic!("{query}: {rows}"))
            .iter()
            .map(|r| r.as_array().unwrap().clone())
            .collect()
    }

    /// Sends SIGTERM and waits for the process to end.
    fn terminate(mut self) -> ExitStatus {
        let status = StdCommand::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM failed");
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- braid serve ({}) stderr ---\n{}",
                self.url,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Comparing answers
// ---------------------------------------------------------------------------------------------

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{what}: expected a number, got {v}"))
}

/// A long as Druid writes it: a JSON integer.
fn long(v: &Value, what: &str) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("{what}: expected an integer, got {v}"))
}

fn assert_close(actual: &Value, expected: f64, what: &str) {
    let a = num(actual, what);
    let tolerance = 1e-9 * expected.abs().max(1.0);
    assert!((a - expected).abs() <= tolerance, "{what}: got {a}, expected {expected}");
}

/// Checks `rows`, `edits` and `added` of a result object against totals.
fn assert_totals(result: &Value, expected: &Totals, what: &str) {
    assert_eq!(long(&result["rows"], what), expected.rows, "{what}: rows (query-time count) in {result}");
    assert_eq!(long(&result["edits"], what), expected.events, "{what}: edits (longSum of count) in {result}");
    assert_close(&result["added"], expected.added, &format!("{what}: added in {result}"));
}

/// The usual aggregators: rollup rows, events, and the sum of `added`.
fn base_aggregations() -> Value {
    json!([
        {"type": "count", "name": "rows"},
        {"type": "longSum", "name": "edits", "fieldName": "count"},
        {"type": "doubleSum", "name": "added", "fieldName": "added"}
    ])
}

fn timeseries(granularity: Value, intervals: Value) -> Value {
    json!({
        "queryType": "timeseries",
        "dataSource": "wikipedia",
        "granularity": granularity,
        "intervals": intervals,
        "aggregations": base_aggregations()
    })
}

/// `(timestamp, result)` of each row of a timeseries or topN answer.
fn timestamped(answer: &Value) -> Vec<(String, Value)> {
    answer
        .as_array()
        .unwrap_or_else(|| panic!("expected an array, got {answer}"))
        .iter()
        .map(|row| {
            let t = row["timestamp"].as_str().unwrap_or_else(|| panic!("no timestamp in {row}"));
            (t.to_string(), row["result"].clone())
        })
        .collect()
}

/// Checks a timeseries answer bucket by bucket.
fn assert_buckets(answer: &Value, expected: &[(String, Totals)], what: &str) {
    let got = timestamped(answer);
    let got_times: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    let want_times: Vec<&str> = expected.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(got_times, want_times, "{what}: bucket timestamps of {answer}");
    for ((t, result), (_, totals)) in got.iter().zip(expected) {
        assert_totals(result, totals, &format!("{what} at {t}"));
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Timeseries
// ---------------------------------------------------------------------------------------------

#[test]
fn timeseries_granularities_descending_grand_total_and_post_aggregators() {
    // Nine hours of events, so that a Los Angeles day boundary (07:00Z) falls inside.
    let fixture = Fixture::generated(3000, 9, 11);
    let server = fixture.serve();
    let rows = fixture.rows();
    let nine_hours = json!(["2013-08-31T00:00:00.000Z/2013-08-31T09:00:00.000Z"]);
    let hourly: Vec<(String, Totals)> =
        group_by(&rows, |r| hour_floor(r.time)).into_iter().map(|(h, t)| (iso(h), t)).collect();
    assert_eq!(hourly.len(), 9);

    let answer = server.native(&timeseries(json!("hour"), nine_hours.clone()));
    assert_buckets(&answer, &hourly, "hour");
    // Case and the object form of a simple granularity are Druid's too.
    let answer = server.native(&timeseries(json!({"type": "period", "period": "PT1H"}), nine_hours.clone()));
    assert_buckets(&answer, &hourly, "period PT1H");
    let answer = server.native(&timeseries(json!("HOUR"), nine_hours.clone()));
    assert_buckets(&answer, &hourly, "HOUR");

    let mut descending = timeseries(json!("hour"), nine_hours.clone());
    descending["descending"] = json!(true);
    let reversed: Vec<(String, Totals)> = hourly.iter().rev().cloned().collect();
    assert_buckets(&server.native(&descending), &reversed, "descending");

    let day = vec![(iso(DAY_START_MS), totals(&rows))];
    assert_buckets(&server.native(&timeseries(json!("day"), json!([DAY]))), &day, "day");

    let three_hours: Vec<(String, Totals)> =
        group_by(&rows, |r| r.time.div_euclid(3 * HOUR_MS) * 3 * HOUR_MS)
            .into_iter()
            .map(|(h, t)| (iso(h), t))
            .collect();
    let answer = server.native(&timeseries(json!({"type": "period", "period": "PT3H"}), nine_hours.clone()));
    assert_buckets(&answer, &three_hours, "period PT3H");

    // A day in Los Angeles (UTC-7 in August) starts at 07:00Z; Druid writes bucket times in the
    // granularity's zone.
    let la_day = |t: i64| (t - 7 * HOUR_MS).div_euclid(DAY_MS) * DAY_MS + 7 * HOUR_MS;
    let la: Vec<(String, Totals)> =
        group_by(&rows, |r| la_day(r.time)).into_iter().map(|(d, t)| (iso_at(d, -420), t)).collect();
    assert_eq!(la[0].0, "2013-08-30T00:00:00.000-07:00");
    assert_eq!(la.len(), 2);
    let granularity = json!({"type": "period", "period": "P1D", "timeZone": "America/Los_Angeles"});
    assert_buckets(&server.native(&timeseries(granularity, json!([DAY]))), &la, "P1D America/Los_Angeles");

    // grandTotal: one more row, without a timestamp, over everything.
    let mut query = timeseries(json!("hour"), nine_hours.clone());
    query["context"] = json!({"grandTotal": true});
    let answer = server.native(&query);
    let results = answer.as_array().unwrap();
    assert_eq!(results.len(), hourly.len() + 1, "{answer}");
    let total = results.last().unwrap();
    assert!(total.get("timestamp").is_none_or(Value::is_null), "grand total row has a timestamp: {total}");
    assert_totals(&total["result"], &totals(&rows), "grandTotal");

    // A filtered aggregator and arithmetic post-aggregators (Druid's "/" is 0 on division by 0).
    let query = json!({
        "queryType": "timeseries",
        "dataSource": {"type": "table", "name": "wikipedia"},
        "granularity": "hour",
        "intervals": nine_hours,
        "aggregations": [
            {"type": "longSum", "name": "edits", "fieldName": "count"},
            {"type": "filtered", "filter": {"type": "selector", "dimension": "robot", "value": "true"},
             "aggregator": {"type": "longSum", "name": "robotEdits", "fieldName": "count"}},
            {"type": "doubleSum", "name": "added", "fieldName": "added"},
            {"type": "doubleSum", "name": "deleted", "fieldName": "deleted"}
        ],
        "postAggregations": [
            {"type": "arithmetic", "name": "robotShare", "fn": "/", "fields": [
                {"type": "fieldAccess", "name": "r", "fieldName": "robotEdits"},
                {"type": "fieldAccess", "name": "e", "fieldName": "edits"}]},
            {"type": "arithmetic", "name": "net", "fn": "-", "fields": [
                {"type": "fieldAccess", "fieldName": "added"},
                {"type": "fieldAccess", "fieldName": "deleted"}]},
            {"type": "arithmetic", "name": "percentRobot", "fn": "*", "fields": [
                {"type": "constant", "name": "hundred", "value": 100},
                {"type": "arithmetic", "name": "inner", "fn": "/", "fields": [
                    {"type": "fieldAccess", "fieldName": "robotEdits"},
                    {"type": "fieldAccess", "fieldName": "edits"}]}]},
            {"type": "arithmetic", "name": "byZero", "fn": "/", "fields": [
                {"type": "fieldAccess", "fieldName": "edits"},
                {"type": "constant", "name": "zero", "value": 0}]}
        ]
    });
    let answer = server.native(&query);
    let got = timestamped(&answer);
    assert_eq!(got.len(), 9, "{answer}");
    let robots = group_by(&rows, |r| (hour_floor(r.time), r.dim("robot") == "true"));
    for ((t, result), (hour_iso, all)) in got.iter().zip(&hourly) {
        assert_eq!(t, hour_iso);
        let hour = parse_iso(t);
        let robot = robots.get(&(hour, true)).copied().unwrap_or_default();
        let what = format!("post-aggregators at {t}: {result}");
        assert_eq!(long(&result["edits"], &what), all.events, "{what}");
        assert_eq!(long(&result["robotEdits"], &what), robot.events, "{what}");
        let share = robot.events as f64 / all.events as f64;
        assert_close(&result["robotShare"], share, &what);
        assert_close(&result["net"], all.added - all.deleted, &what);
        assert_close(&result["percentRobot"], 100.0 * share, &what);
        assert_close(&result["byZero"], 0.0, &what);
    }
}

#[test]
fn timeseries_intervals_in_every_form() {
    let fixture = Fixture::generated(2000, 6, 12);
    let server = fixture.serve();
    let rows = fixture.rows();
    let between = |from: i64, to: i64| totals(rows.iter().filter(|r| (from..to).contains(&r.time)));
    let at = |h: i64| DAY_START_MS + h * HOUR_MS;
    let cases: Vec<(Value, Totals)> = vec![
        (json!("2013-08-31T01:00:00.000Z/2013-08-31T03:00:00.000Z"), between(at(1), at(3))),
        (json!(["2013-08-31T01:00:00Z/2013-08-31T03:00:00Z"]), between(at(1), at(3))),
        (
            json!(["2013-08-31T00:00:00Z/2013-08-31T01:00:00Z", "2013-08-31T04:30:00Z/2013-08-31T05:00:00Z"]),
            {
                let mut t = between(at(0), at(1));
                let late = between(at(4) + HOUR_MS / 2, at(5));
                t.rows += late.rows;
                t.events += late.events;
                t.added += late.added;
                t
            },
        ),
        (
            json!({"type": "intervals", "intervals": ["2013-08-31T02:00:00Z/2013-08-31T05:00:00Z"]}),
            between(at(2), at(5)),
        ),
        (json!(["2013-08-31T01:00:00Z/PT2H"]), between(at(1), at(3))),
        (json!(["PT90M/2013-08-31T03:00:00Z"]), between(at(1) + HOUR_MS / 2, at(3))),
        (json!(["2013-08-31/P1D"]), between(at(0), at(24))),
        // Druid accepts a time zone offset in interval ends.
        (json!(["2013-08-30T18:00:00-07:00/2013-08-30T20:00:00-07:00"]), between(at(1), at(3))),
        // Nothing there: Druid still answers one row for granularity all, at the interval start.
        (json!(["2013-09-05/2013-09-06"]), Totals::default()),
    ];
    for (intervals, expected) in cases {
        let answer = server.native(&timeseries(json!("all"), intervals.clone()));
        let got = timestamped(&answer);
        assert_eq!(got.len(), 1, "intervals {intervals}: {answer}");
        let result = &got[0].1;
        let what = format!("intervals {intervals}");
        assert_eq!(long(&result["rows"], &what), expected.rows, "{what}: {answer}");
        if expected.rows > 0 {
            assert_totals(result, &expected, &what);
        } else {
            // SQL-compatible null handling makes empty sums null; legacy mode makes them 0.
            assert!(matches!(result["edits"].as_i64(), None | Some(0)), "{what}: {answer}");
            assert_eq!(got[0].0, "2013-09-05T00:00:00.000Z", "{what}: {answer}");
        }
    }
}

/// Druid fills empty buckets only between the first and the last row's bucket, reports a
/// granularity-"all" result at the first row's time, and skips empty buckets on request.
#[test]
fn timeseries_empty_buckets_follow_the_data() {
    let fixture = Fixture::tutorial();
    let server = fixture.serve();
    let rows = fixture.rows();
    let by_hour = group_by(&rows, |r| hour_floor(r.time));
    assert_eq!(by_hour.len(), 5);

    let answer = server.native(&timeseries(json!("hour"), json!([DAY])));
    let got = timestamped(&answer);
    // Data from 01:02 to 12:xx: twelve buckets, 01:00 to 12:00, seven of them empty.
    let times: Vec<String> = (1..=12).map(|h| iso(DAY_START_MS + h * HOUR_MS)).collect();
    assert_eq!(got.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(), times, "{answer}");
    for (t, result) in &got {
        let hour = parse_iso(t);
        match by_hour.get(&hour) {
            Some(expected) => assert_totals(result, expected, t),
            None => {
                assert_eq!(long(&result["rows"], t), 0, "{t}: {result}");
                assert!(matches!(result["edits"].as_i64(), None | Some(0)), "{t}: {result}");
            }
        }
    }

    let mut query = timeseries(json!("hour"), json!([DAY]));
    query["context"] = json!({"skipEmptyBuckets": true});
    let expected: Vec<(String, Totals)> = by_hour.iter().map(|(h, t)| (iso(*h), *t)).collect();
    assert_buckets(&server.native(&query), &expected, "skipEmptyBuckets");
    // Druid's context flags may come as strings.
    query["context"] = json!({"skipEmptyBuckets": "true"});
    assert_buckets(&server.native(&query), &expected, "skipEmptyBuckets as a string");

    let all = server.native(&timeseries(json!("all"), json!([DAY])));
    assert_buckets(&all, &[(iso(fixture.min_time()), totals(&rows))], "granularity all");
    assert_eq!(timestamped(&all)[0].0, "2013-08-31T01:02:33.000Z");

    let top = server.native(&json!({
        "queryType": "topN", "dataSource": "wikipedia", "granularity": "all", "intervals": [DAY],
        "dimension": "page", "metric": "added", "threshold": 2,
        "aggregations": [{"type": "doubleSum", "name": "added", "fieldName": "added"}]
    }));
    assert_eq!(top[0]["timestamp"], "2013-08-31T01:02:33.000Z", "{top}");
    let pages: Vec<&Value> = top[0]["result"].as_array().unwrap().iter().map(|r| &r["page"]).collect();
    assert_eq!(pages, ["Crimson Typhoon", "Striker Eureka"], "{top}");
}

// ---------------------------------------------------------------------------------------------
// 2. TopN
// ---------------------------------------------------------------------------------------------

/// Checks a topN list ordered by a metric: right length, each value right for its dimension
/// value, ordered, and the same values as the expected top (ties may pick either member).
fn assert_top(list: &Value, dim: &str, metric: &str, expected: &BTreeMap<String, f64>, n: usize, desc: bool) {
    let entries = list.as_array().unwrap_or_else(|| panic!("{list}"));
    assert_eq!(entries.len(), n.min(expected.len()), "{dim} by {metric}: {list}");
    let mut values = Vec::new();
    for entry in entries {
        let key = entry[dim].as_str().unwrap_or_else(|| panic!("no {dim} in {entry}"));
        let want = expected.get(key).unwrap_or_else(|| panic!("unexpected {dim} {key:?} in {list}"));
        assert_close(&entry[metric], *want, &format!("{metric} of {key}"));
        values.push(*want);
    }
    let mut sorted: Vec<f64> = expected.values().copied().collect();
    sorted.sort_by(|a, b| if desc { b.total_cmp(a) } else { a.total_cmp(b) });
    sorted.truncate(n);
    assert_eq!(values, sorted, "{dim} by {metric}: wrong members or order: {list}");
}

#[test]
fn top_n_numeric_dimension_and_inverted_metrics() {
    let fixture = Fixture::generated(3000, 3, 7);
    let server = fixture.serve();
    let rows = fixture.rows();
    let by_language = group_by(&rows, |r| r.dim("language").to_string());
    let edits: BTreeMap<String, f64> =
        by_language.iter().map(|(k, t)| (k.clone(), t.events as f64)).collect();
    let added: BTreeMap<String, f64> = by_language.iter().map(|(k, t)| (k.clone(), t.added)).collect();
    let top_n = |metric: Value, threshold: usize| {
        json!({
            "queryType": "topN", "dataSource": "wikipedia", "granularity": "all", "intervals": [DAY],
            "dimension": "language", "metric": metric, "threshold": threshold,
            "aggregations": base_aggregations(),
            "postAggregations": [{"type": "arithmetic", "name": "addedPerEdit", "fn": "/", "fields": [
                {"type": "fieldAccess", "fieldName": "added"},
                {"type": "fieldAccess", "fieldName": "edits"}]}]
        })
    };

    let answer = server.native(&top_n(json!("edits"), 5));
    assert_eq!(answer.as_array().unwrap().len(), 1, "{answer}");
    assert_top(&answer[0]["result"], "language", "edits", &edits, 5, true);
    for entry in answer[0]["result"].as_array().unwrap() {
        let t = &by_language[entry["language"].as_str().unwrap()];
        assert_totals(entry, t, "topN entry");
        assert_close(&entry["addedPerEdit"], t.added / t.events as f64, "addedPerEdit");
    }
    let answer = server.native(&top_n(json!({"type": "numeric", "metric": "added"}), 4));
    assert_top(&answer[0]["result"], "language", "added", &added, 4, true);
    // By a post-aggregator.
    let per_edit: BTreeMap<String, f64> =
        by_language.iter().map(|(k, t)| (k.clone(), t.added / t.events as f64)).collect();
    let answer = server.native(&top_n(json!("addedPerEdit"), 3));
    assert_top(&answer[0]["result"], "language", "addedPerEdit", &per_edit, 3, true);
    // Inverted: the smallest first.
    let answer = server.native(&top_n(json!({"type": "inverted", "metric": "edits"}), 3));
    assert_top(&answer[0]["result"], "language", "edits", &edits, 3, false);

    // Dimension order, after a previousStop.
    let languages: Vec<&String> = by_language.keys().collect();
    let after_de: Vec<&String> = languages.iter().copied().filter(|l| l.as_str() > "de").take(4).collect();
    let answer = server
        .native(&top_n(json!({"type": "dimension", "ordering": "lexicographic", "previousStop": "de"}), 4));
    let got: Vec<&str> =
        answer[0]["result"].as_array().unwrap().iter().map(|e| e["language"].as_str().unwrap()).collect();
    assert_eq!(got, after_de, "{answer}");
    let answer = server.native(&top_n(json!({"type": "dimension"}), 3));
    let got: Vec<&str> =
        answer[0]["result"].as_array().unwrap().iter().map(|e| e["language"].as_str().unwrap()).collect();
    assert_eq!(got, languages[..3], "{answer}");
    // Inverted dimension order: the last values first.
    let answer = server.native(&top_n(json!({"type": "inverted", "metric": {"type": "dimension"}}), 2));
    let got: Vec<&str> =
        answer[0]["result"].as_array().unwrap().iter().map(|e| e["language"].as_str().unwrap()).collect();
    let last_two: Vec<&String> = languages.iter().rev().take(2).copied().collect();
    assert_eq!(got, last_two, "{answer}");

    // Hourly topN with an output name and a filter: one list per hour.
    let query = json!({
        "queryType": "topN", "dataSource": "wikipedia", "granularity": "hour", "intervals": [DAY],
        "dimension": {"type": "default", "dimension": "namespace", "outputName": "ns"},
        "metric": "edits", "threshold": 3,
        "filter": {"type": "selector", "dimension": "robot", "value": "false"},
        "aggregations": [{"type": "longSum", "name": "edits", "fieldName": "count"}]
    });
    let answer = server.native(&query);
    let humans: Vec<Row> = rows.iter().filter(|r| r.dim("robot") == "false").cloned().collect();
    let hours = group_by(&humans, |r| hour_floor(r.time));
    let got = timestamped(&answer);
    assert_eq!(
        got.iter().map(|(t, _)| parse_iso(t)).collect::<Vec<_>>(),
        hours.keys().copied().collect::<Vec<_>>()
    );
    for (t, list) in got {
        let hour = parse_iso(&t);
        let in_hour: Vec<Row> = humans.iter().filter(|r| hour_floor(r.time) == hour).cloned().collect();
        let expected: BTreeMap<String, f64> = group_by(&in_hour, |r| r.dim("namespace").to_string())
            .into_iter()
            .map(|(k, v)| (k, v.events as f64))
            .collect();
        assert_top(&list, "ns", "edits", &expected, 3, true);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. GroupBy
// ---------------------------------------------------------------------------------------------

/// `(timestamp, event)` of each row of a groupBy answer, checking Druid's `version`.
fn group_rows(answer: &Value) -> Vec<(String, Value)> {
    answer
        .as_array()
        .unwrap_or_else(|| panic!("expected an array, got {answer}"))
        .iter()
        .map(|row| {
            assert_eq!(row["version"], "v1", "{row}");
            (row["timestamp"].as_str().unwrap().to_string(), row["event"].clone())
        })
        .collect()
}

#[test]
fn group_by_with_limit_spec_having_and_granularity() {
    let fixture = Fixture::generated(3000, 3, 8);
    let server = fixture.serve();
    let rows = fixture.rows();
    let pairs = group_by(&rows, |r| (r.dim("language").to_string(), r.dim("namespace").to_string()));
    let group_by_query = |extra: Value| {
        let mut q = json!({
            "queryType": "groupBy", "dataSource": "wikipedia", "granularity": "all", "intervals": [DAY],
            "dimensions": ["language", "namespace"],
            "aggregations": base_aggregations()
        });
        q.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        q
    };

    // No limitSpec: every group, ordered by the dimensions; granularity all reports the
    // interval's start.
    let got = group_rows(&server.native(&group_by_query(json!({}))));
    assert_eq!(got.len(), pairs.len());
    for ((t, event), ((language, namespace), expected)) in got.iter().zip(&pairs) {
        assert_eq!(t, "2013-08-31T00:00:00.000Z");
        assert_eq!(
            (&event["language"], &event["namespace"]),
            (&json!(language), &json!(namespace)),
            "{event}"
        );
        assert_totals(event, expected, &format!("{language}/{namespace}"));
    }

    // limitSpec by a metric, descending, with having.
    let answer = server.native(&group_by_query(json!({
        "having": {"type": "greaterThan", "aggregation": "edits", "value": 20},
        "limitSpec": {"type": "default", "limit": 10, "columns": [
            {"dimension": "edits", "direction": "descending", "dimensionOrder": "numeric"}]}
    })));
    let kept: BTreeMap<String, f64> = pairs
        .iter()
        .filter(|(_, t)| t.events > 20)
        .map(|((l, n), t)| (format!("{l}/{n}"), t.events as f64))
        .collect();
    assert!(kept.len() > 10, "the fixture should have more than 10 groups over 20 edits");
    let flat: Vec<Value> = group_rows(&answer)
        .into_iter()
        .map(|(_, e)| {
            let pair = format!("{}/{}", e["language"].as_str().unwrap(), e["namespace"].as_str().unwrap());
            json!({"pair": pair, "edits": e["edits"]})
        })
        .collect();
    assert_top(&Value::Array(flat), "pair", "edits", &kept, 10, true);

    // Nested having specs.
    let answer = server.native(&group_by_query(json!({"having": {"type": "and", "havingSpecs": [
        {"type": "greaterThan", "aggregation": "edits", "value": 5},
        {"type": "lessThan", "aggregation": "edits", "value": 50},
        {"type": "not", "havingSpec": {"type": "dimSelector", "dimension": "namespace", "value": "article"}}
    ]}})));
    let expected: Vec<(&String, &String)> = pairs
        .iter()
        .filter(|((_, n), t)| t.events > 5 && t.events < 50 && n != "article")
        .map(|((l, n), _)| (l, n))
        .collect();
    let got: Vec<(String, String)> = group_rows(&answer)
        .into_iter()
        .map(|(_, e)| (e["language"].as_str().unwrap().into(), e["namespace"].as_str().unwrap().into()))
        .collect();
    assert_eq!(got.iter().map(|(l, n)| (l, n)).collect::<Vec<_>>(), expected, "{answer}");
    // A filter having spec and equalTo.
    let answer = server.native(&group_by_query(json!({"having": {"type": "or", "havingSpecs": [
        {"type": "filter",
         "filter": {"type": "bound", "dimension": "edits", "lower": "100", "ordering": "numeric"}},
        {"type": "equalTo", "aggregation": "edits", "value": 7}
    ]}})));
    let expected: BTreeSet<(String, String)> =
        pairs.iter().filter(|(_, t)| t.events >= 100 || t.events == 7).map(|(k, _)| k.clone()).collect();
    let got: BTreeSet<(String, String)> = group_rows(&answer)
        .into_iter()
        .map(|(_, e)| (e["language"].as_str().unwrap().into(), e["namespace"].as_str().unwrap().into()))
        .collect();
    assert_eq!(got, expected, "{answer}");

    // limitSpec by a dimension with an offset, an output name, and a post-aggregator.
    let answer = server.native(&json!({
        "queryType": "groupBy", "dataSource": "wikipedia", "granularity": "all", "intervals": [DAY],
        "dimensions": [{"type": "default", "dimension": "language", "outputName": "lang"}],
        "aggregations": base_aggregations(),
        "postAggregations": [{"type": "arithmetic", "name": "rowsPerEdit", "fn": "/", "fields": [
            {"type": "fieldAccess", "fieldName": "rows"}, {"type": "fieldAccess", "fieldName": "edits"}]}],
        "limitSpec": {"type": "default", "limit": 5, "offset": 2,
                      "columns": [{"dimension": "lang", "direction": "descending"}]}
    }));
    let languages = group_by(&rows, |r| r.dim("language").to_string());
    let expected: Vec<(&String, &Totals)> = languages.iter().rev().skip(2).take(5).collect();
    let got = group_rows(&answer);
    assert_eq!(got.len(), 5, "{answer}");
    for ((_, event), (language, t)) in got.iter().zip(expected) {
        assert_eq!(event["lang"], json!(language), "{answer}");
        assert_totals(event, t, language);
        assert_close(&event["rowsPerEdit"], t.rows as f64 / t.events as f64, language);
    }

    // Hourly groups: a timestamp per bucket, ordered by time then dimension.
    let answer = server.native(&json!({
        "queryType": "groupBy", "dataSource": "wikipedia", "granularity": "hour", "intervals": [DAY],
        "dimensions": ["robot"], "aggregations": base_aggregations(),
        "filter": {"type": "in", "dimension": "namespace", "values": ["Talk", "User"]}
    }));
    let talk: Vec<Row> =
        rows.iter().filter(|r| ["Talk", "User"].contains(&r.dim("namespace"))).cloned().collect();
    let expected = group_by(&talk, |r| (hour_floor(r.time), r.dim("robot").to_string()));
    let got = group_rows(&answer);
    assert_eq!(got.len(), expected.len(), "{answer}");
    for ((t, event), ((hour, robot), totals)) in got.iter().zip(&expected) {
        assert_eq!(t, &iso(*hour), "{answer}");
        assert_eq!(event["robot"], json!(robot), "{answer}");
        assert_totals(event, totals, t);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Scan
// ---------------------------------------------------------------------------------------------

#[test]
fn scan_list_and_compacted_list_with_limit_offset_and_order() {
    let fixture = Fixture::generated(3000, 3, 7);
    let server = fixture.serve();
    let mut rows = fixture.rows();
    rows.sort_by_key(|r| r.time);
    let times: BTreeSet<i64> = rows.iter().map(|r| r.time).collect();
    assert_eq!(times.len(), rows.len(), "this seed has no two rows at the same millisecond");
    let segments = fixture.visible_segments();
    assert_eq!(segments.len(), 1);
    let segment_id = segments[0]["id"].as_str().unwrap().to_string();
    let columns = ["__time", "page", "language", "count", "added"];
    let scan = |extra: Value| {
        let mut q =
            json!({"queryType": "scan", "dataSource": "wikipedia", "intervals": [DAY], "columns": columns});
        q.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        q
    };
    // Every batch names the segment and the columns; the events of all batches, in order.
    let events = |answer: &Value| -> Vec<Value> {
        let batches = answer.as_array().unwrap_or_else(|| panic!("{answer}"));
        let mut out = Vec::new();
        for batch in batches {
            assert_eq!(batch["segmentId"], segment_id.as_str(), "{batch}");
            assert!(batch["columns"].is_array(), "{batch}");
            out.extend(batch["events"].as_array().unwrap().iter().cloned());
        }
        out
    };
    let as_object = |r: &Row| -> Value { columns.iter().map(|c| (c.to_string(), r.column(c))).collect() };
    let check = |got: &[Value], expected: &[&Row], what: &str| {
        assert_eq!(got.len(), expected.len(), "{what}: {got:?}");
        for (event, row) in got.iter().zip(expected) {
            let want = as_object(row);
            for c in columns {
                match c {
                    "added" => assert_close(&event[c], row.added, what),
                    _ => assert_eq!(event[c], want[c], "{what}: column {c} of {event}, expected {want}"),
                }
            }
        }
    };

    let answer = server.native(&scan(json!({"limit": 5, "order": "ascending", "resultFormat": "list"})));
    assert_eq!(answer[0]["columns"], json!(columns), "{answer}");
    let first: Vec<&Row> = rows.iter().take(5).collect();
    check(&events(&answer), &first, "ascending limit 5");

    let answer = server.native(&scan(json!({"limit": 4, "offset": 10, "order": "descending"})));
    let expected: Vec<&Row> = rows.iter().rev().skip(10).take(4).collect();
    check(&events(&answer), &expected, "descending offset 10 limit 4");

    // compactedList: each event an array in column order.
    let answer =
        server.native(&scan(json!({"limit": 3, "order": "ascending", "resultFormat": "compactedList"})));
    let got = events(&answer);
    assert_eq!(got.len(), 3, "{answer}");
    for (event, row) in got.iter().zip(&rows) {
        let values =
            event.as_array().unwrap_or_else(|| panic!("compactedList event is not an array: {event}"));
        assert_eq!(values.len(), columns.len(), "{event}");
        assert_eq!(values[0], json!(row.time), "{event}");
        assert_eq!(values[1], json!(row.dim("page")), "{event}");
        assert_eq!(values[3], json!(row.events), "{event}");
        assert_close(&values[4], row.added, "compactedList added");
    }

    // Without columns: every column; with a filter and batchSize: batches of at most that many.
    let answer = server.native(&json!({
        "queryType": "scan", "dataSource": "wikipedia", "intervals": [DAY], "batchSize": 100,
        "filter": {"type": "selector", "dimension": "language", "value": "en"}
    }));
    let english: Vec<&Row> = rows.iter().filter(|r| r.dim("language") == "en").collect();
    let batches = answer.as_array().unwrap();
    assert!(
        batches.len() >= english.len() / 100,
        "batchSize 100 over {} rows: {} batches",
        english.len(),
        batches.len()
    );
    let all_columns: BTreeSet<String> =
        batches[0]["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    let expected_columns: BTreeSet<String> =
        ["__time"].iter().chain(&DIMENSIONS).chain(&METRICS).map(|c| c.to_string()).collect();
    assert_eq!(all_columns, expected_columns);
    let mut total = 0;
    for batch in batches {
        let events = batch["events"].as_array().unwrap();
        assert!(events.len() <= 100, "a batch of {} events with batchSize 100", events.len());
        for event in events {
            assert_eq!(event["language"], "en", "{event}");
            let time = long(&event["__time"], "__time");
            let row = english
                .iter()
                .find(|r| r.time == time)
                .unwrap_or_else(|| panic!("no row at {time}: {event}"));
            for c in DIMENSIONS.iter().chain(&["count"]) {
                assert_eq!(event[*c], row.column(c), "{event}");
            }
            assert_close(&event["delta"], row.delta, "delta");
        }
        total += events.len();
    }
    assert_eq!(total, english.len());

    // order none with a limit: any rows, but that many.
    let answer = server.native(&scan(json!({"limit": 7, "order": "none"})));
    assert_eq!(events(&answer).len(), 7, "{answer}");
    // Over the limit of the data: everything.
    let answer = server.native(&scan(json!({"limit": 100000, "order": "ascending"})));
    let all: Vec<&Row> = rows.iter().collect();
    check(&events(&answer), &all, "everything");
}

// ---------------------------------------------------------------------------------------------
// 5. Metadata queries and the GET endpoints
// ---------------------------------------------------------------------------------------------

#[test]
fn time_boundary_segment_metadata_data_source_metadata_and_gets() {
    let fixture = Fixture::generated(2000, 4, 9);
    let server = fixture.serve();
    let rows = fixture.rows();
    let (min, max) = (iso(fixture.min_time()), iso(fixture.max_time()));

    let answer = server.native(&json!({"queryType": "timeBoundary", "dataSource": "wikipedia"}));
    assert_eq!(answer, json!([{"timestamp": min, "result": {"minTime": min, "maxTime": max}}]));
    let answer =
        server.native(&json!({"queryType": "timeBoundary", "dataSource": "wikipedia", "bound": "maxTime"}));
    assert_eq!(answer, json!([{"timestamp": max, "result": {"maxTime": max}}]));
    let answer =
        server.native(&json!({"queryType": "timeBoundary", "dataSource": "wikipedia", "bound": "minTime"}));
    assert_eq!(answer, json!([{"timestamp": min, "result": {"minTime": min}}]));
    // With a filter: the bounds of the matching rows.
    let ru: Vec<i64> = rows.iter().filter(|r| r.dim("language") == "ru").map(|r| r.time).collect();
    let (ru_min, ru_max) = (iso(*ru.iter().min().unwrap()), iso(*ru.iter().max().unwrap()));
    let answer = server.native(&json!({"queryType": "timeBoundary", "dataSource": "wikipedia",
        "filter": {"type": "selector", "dimension": "language", "value": "ru"}}));
    assert_eq!(answer, json!([{"timestamp": ru_min, "result": {"minTime": ru_min, "maxTime": ru_max}}]));

    let answer = server.native(&json!({"queryType": "dataSourceMetadata", "dataSource": "wikipedia"}));
    assert_eq!(answer, json!([{"timestamp": max, "result": {"maxIngestedEventTime": max}}]));

    let segments = fixture.visible_segments();
    let answer = server
        .native(&json!({"queryType": "segmentMetadata", "dataSource": "wikipedia", "intervals": [DAY]}));
    let analyses = answer.as_array().unwrap();
    assert_eq!(analyses.len(), 1, "{answer}");
    let analysis = &analyses[0];
    assert_eq!(analysis["id"], segments[0]["id"], "{analysis}");
    assert_eq!(analysis["intervals"], json!([DAY_ISO]), "{analysis}");
    assert_eq!(long(&analysis["numRows"], "numRows"), rows.len() as i64, "{analysis}");
    let columns = &analysis["columns"];
    assert_eq!(columns["__time"]["type"], "LONG", "{analysis}");
    for dim in DIMENSIONS {
        assert_eq!(columns[dim]["type"], "STRING", "{dim}: {analysis}");
        assert_eq!(columns[dim]["hasMultipleValues"], false, "{dim}: {analysis}");
        let distinct: BTreeSet<&str> = rows.iter().map(|r| r.dim(dim)).collect();
        assert_eq!(
            long(&columns[dim]["cardinality"], dim),
            distinct.len() as i64,
            "{dim} cardinality: {analysis}"
        );
    }
    assert_eq!(columns["count"]["type"], "LONG", "{analysis}");
    for metric in ["added", "deleted", "delta"] {
        assert_eq!(columns[metric]["type"], "DOUBLE", "{metric}: {analysis}");
    }
    // Aggregators on request, merged across segments.
    let answer = server
        .native(&json!({"queryType": "segmentMetadata", "dataSource": "wikipedia", "intervals": [DAY],
        "merge": true, "analysisTypes": ["aggregators"]}));
    let aggregators = &answer[0]["aggregators"];
    for metric in METRICS {
        assert_eq!(aggregators[metric]["name"], metric, "{answer}");
    }
    assert_eq!(aggregators["added"]["type"], "doubleSum", "{answer}");

    let sources = server.get("/druid/v2/datasources");
    assert_eq!((sources.status, sources.json()), (200, json!(["wikipedia"])));
    let described = server.get("/druid/v2/datasources/wikipedia");
    assert_eq!(described.status, 200, "{}", described.body);
    let described = described.json();
    let set = |v: &Value| -> BTreeSet<String> {
        v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
    };
    assert_eq!(set(&described["dimensions"]), DIMENSIONS.iter().map(|d| d.to_string()).collect());
    assert_eq!(set(&described["metrics"]), METRICS.iter().map(|d| d.to_string()).collect());
    let unknown = server.get("/druid/v2/datasources/nope");
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_druid_error(&unknown.json(), "nope");
    let health = server.get("/status/health");
    assert_eq!((health.status, health.json()), (200, json!(true)));

    // `?pretty` and the trailing slash answer the same, pretty-printed.
    let query = json!({"queryType": "timeBoundary", "dataSource": "wikipedia"});
    let pretty = server.post("/druid/v2/?pretty", &query.to_string());
    assert_eq!(pretty.status, 200, "{}", pretty.body);
    assert!(pretty.body.contains("\n  "), "not pretty: {}", pretty.body);
    assert!(pretty.content_type.starts_with("application/json"), "{}", pretty.content_type);
    assert_eq!(pretty.json(), server.native(&query));
}

// ---------------------------------------------------------------------------------------------
// 6. Filters
// ---------------------------------------------------------------------------------------------

type Predicate = Box<dyn Fn(&Row) -> bool>;

#[test]
fn every_filter_type_matches_an_independent_evaluation() {
    let fixture = Fixture::generated(3000, 3, 7);
    let server = fixture.serve();
    let rows = fixture.rows();
    let selector = |dim: &str, value: &str| json!({"type": "selector", "dimension": dim, "value": value});
    let cases: Vec<(Value, Predicate)> = vec![
        (selector("language", "en"), Box::new(|r| r.dim("language") == "en")),
        (selector("language", "no such language"), Box::new(|_| false)),
        (selector("page", "Gypsy Danger"), Box::new(|r| r.dim("page") == "Gypsy Danger")),
        (
            json!({"type": "in", "dimension": "namespace", "values": ["Talk", "User", "nope"]}),
            Box::new(|r| ["Talk", "User"].contains(&r.dim("namespace"))),
        ),
        (
            json!({"type": "bound", "dimension": "page", "lower": "A", "upper": "C", "upperStrict": true}),
            Box::new(|r| r.dim("page") >= "A" && r.dim("page") < "C"),
        ),
        (
            json!({"type": "bound", "dimension": "country", "lower": "T", "lowerStrict": true,
                   "ordering": "lexicographic"}),
            Box::new(|r| r.dim("country") > "T"),
        ),
        (
            json!({"type": "bound", "dimension": "added", "lower": "100", "upper": "1000",
                   "ordering": "numeric"}),
            Box::new(|r| (100.0..=1000.0).contains(&r.added)),
        ),
        (
            json!({"type": "bound", "dimension": "delta", "lower": "-50", "lowerStrict": true,
                   "upper": "50", "upperStrict": true, "ordering": "numeric"}),
            Box::new(|r| r.delta > -50.0 && r.delta < 50.0),
        ),
        (
            json!({"type": "regex", "dimension": "page", "pattern": "^[0-9(]"}),
            Box::new(|r| r.dim("page").starts_with(|c: char| c.is_ascii_digit() || c == '(')),
        ),
        (
            json!({"type": "regex", "dimension": "user", "pattern": "Bot$"}),
            Box::new(|r| r.dim("user").ends_with("Bot")),
        ),
        (
            json!({"type": "like", "dimension": "page", "pattern": "%an%"}),
            Box::new(|r| r.dim("page").contains("an")),
        ),
        (
            json!({"type": "like", "dimension": "page", "pattern": "G_psy%"}),
            Box::new(|r| {
                let p: Vec<char> = r.dim("page").chars().collect();
                p.len() >= 5 && p[0] == 'G' && p[2..5] == ['p', 's', 'y']
            }),
        ),
        (
            json!({"type": "search", "dimension": "page", "query": {"type": "contains", "value": "danger"}}),
            Box::new(|r| r.dim("page").to_lowercase().contains("danger")),
        ),
        (
            json!({"type": "search", "dimension": "page",
                   "query": {"type": "contains", "value": "Danger", "caseSensitive": true}}),
            Box::new(|r| r.dim("page").contains("Danger")),
        ),
        (
            json!({"type": "search", "dimension": "city",
                   "query": {"type": "insensitive_contains", "value": "TO"}}),
            Box::new(|r| r.dim("city").to_lowercase().contains("to")),
        ),
        (
            json!({"type": "interval", "dimension": "__time",
                   "intervals": ["2013-08-31T01:00:00.000Z/2013-08-31T01:30:00.000Z",
                                 "2013-08-31T02:45:00Z/PT5M"]}),
            Box::new(|r| {
                let a = DAY_START_MS + HOUR_MS;
                let b = DAY_START_MS + 2 * HOUR_MS + 45 * 60_000;
                (a..a + HOUR_MS / 2).contains(&r.time) || (b..b + 5 * 60_000).contains(&r.time)
            }),
        ),
        (
            json!({"type": "and", "fields": [selector("language", "en"),
                   {"type": "not", "field": selector("robot", "true")}]}),
            Box::new(|r| r.dim("language") == "en" && r.dim("robot") != "true"),
        ),
        (
            json!({"type": "or", "fields": [selector("namespace", "Talk"),
                   {"type": "in", "dimension": "language", "values": ["de", "fr"]}]}),
            Box::new(|r| r.dim("namespace") == "Talk" || ["de", "fr"].contains(&r.dim("language"))),
        ),
        (
            json!({"type": "not",
                   "field": {"type": "in", "dimension": "continent", "values": ["Europe", "Asia"]}}),
            Box::new(|r| !["Europe", "Asia"].contains(&r.dim("continent"))),
        ),
        (
            json!({"type": "and", "fields": [
                {"type": "or", "fields": [selector("anonymous", "true"), selector("newPage", "true")]},
                {"type": "not", "field": {"type": "like", "dimension": "country", "pattern": "United%"}}]}),
            Box::new(|r| {
                (r.dim("anonymous") == "true" || r.dim("newPage") == "true")
                    && !r.dim("country").starts_with("United")
            }),
        ),
    ];
    let mut matched_some = 0;
    for (filter, predicate) in &cases {
        let expected = totals(rows.iter().filter(|r| predicate(r)));
        matched_some += usize::from(expected.rows > 0);
        let mut query = timeseries(json!("all"), json!([DAY]));
        query["filter"] = filter.clone();
        let answer = server.native(&query);
        let result = &answer[0]["result"];
        let what = format!("filter {filter}");
        assert_eq!(long(&result["rows"], &what), expected.rows, "{what}: {answer}");
        if expected.rows > 0 {
            assert_totals(result, &expected, &what);
        }
    }
    assert!(matched_some >= cases.len() - 1, "the filters should mostly match something");
}

// ---------------------------------------------------------------------------------------------
// 7. SQL
// ---------------------------------------------------------------------------------------------

/// Druid's CSV quoting (opencsv, quotes only when needed).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

#[test]
fn sql_every_result_format_with_and_without_header() {
    let fixture = Fixture::generated(3000, 3, 7);
    let server = fixture.serve();
    let rows = fixture.rows();
    // Pages with a comma, so CSV has to quote; ordered, at most four.
    let by_page = group_by(&rows, |r| r.dim("page").to_string());
    let expected: Vec<(&String, &Totals)> = by_page.iter().filter(|(p, _)| p.contains(',')).take(4).collect();
    assert!(!expected.is_empty(), "no page with a comma in the fixture");
    let query = r#"SELECT page, COUNT(*) AS "rows", SUM("count") AS edits FROM wikipedia
                   WHERE page LIKE '%,%' GROUP BY page ORDER BY page LIMIT 4"#;
    let objects: Vec<Value> =
        expected.iter().map(|(p, t)| json!({"page": p, "rows": t.rows, "edits": t.events})).collect();
    let arrays: Vec<Value> = expected.iter().map(|(p, t)| json!([p, t.rows, t.events])).collect();
    let header_object = json!({"page": null, "rows": null, "edits": null});
    let header_array = json!(["page", "rows", "edits"]);
    let request = |format: Option<&str>, header: bool| {
        let mut r = json!({"query": query, "header": header, "context": {"sqlQueryId": "test"}});
        if let Some(format) = format {
            r["resultFormat"] = json!(format);
        }
        server.post("/druid/v2/sql/", &r.to_string())
    };
    let lines = |body: &str| -> Vec<Value> {
        assert!(body.ends_with("\n\n"), "line formats end with a blank line: {body:?}");
        body.trim_end_matches('\n').split('\n').map(|l| serde_json::from_str(l).unwrap()).collect()
    };

    for (format, header) in [(None, false), (Some("object"), false), (Some("object"), true)] {
        let answer = request(format, header);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.content_type.starts_with("application/json"), "{format:?}: {}", answer.content_type);
        let mut want = objects.clone();
        if header {
            want.insert(0, header_object.clone());
        }
        assert_eq!(answer.json(), Value::Array(want), "{format:?} header {header}");
    }
    for header in [false, true] {
        let answer = request(Some("array"), header);
        assert!(answer.content_type.starts_with("application/json"), "{}", answer.content_type);
        let mut want = arrays.clone();
        if header {
            want.insert(0, header_array.clone());
        }
        assert_eq!(answer.json(), Value::Array(want), "array header {header}");

        let answer = request(Some("objectLines"), header);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.content_type.starts_with("text/plain"), "{}", answer.content_type);
        let mut want = objects.clone();
        if header {
            want.insert(0, header_object.clone());
        }
        assert_eq!(lines(&answer.body), want, "objectLines header {header}");

        let answer = request(Some("arrayLines"), header);
        assert!(answer.content_type.starts_with("text/plain"), "{}", answer.content_type);
        let mut want = arrays.clone();
        if header {
            want.insert(0, header_array.clone());
        }
        assert_eq!(lines(&answer.body), want, "arrayLines header {header}");

        let answer = request(Some("csv"), header);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.content_type.starts_with("text/csv"), "{}", answer.content_type);
        let mut want = String::new();
        if header {
            want.push_str("page,rows,edits\n");
        }
        for (p, t) in &expected {
            want.push_str(&format!("{},{},{}\n", csv_field(p), t.rows, t.events));
        }
        want.push('\n');
        assert_eq!(answer.body, want, "csv header {header}");
    }
}

#[test]
fn sql_queries_time_floors_parameters_and_information_schema() {
    let fixture = Fixture::generated(3000, 3, 13);
    let server = fixture.serve();
    let rows = fixture.rows();
    let all = totals(&rows);

    let totals_sql =
        r#"SELECT COUNT(*) AS "rows", SUM("count") AS edits, SUM(added) AS added FROM wikipedia"#;
    let got = server.sql(&json!({ "query": totals_sql }));
    assert_eq!(got.as_array().unwrap().len(), 1, "{got}");
    assert_totals(&got[0], &all, "SQL totals");

    let got = server.sql_rows(
        r#"SELECT FLOOR(__time TO HOUR) AS "hour", COUNT(*) AS "rows", SUM("count") AS edits,
                  SUM(added) AS added
           FROM wikipedia GROUP BY FLOOR(__time TO HOUR) ORDER BY 1"#,
    );
    let hourly = group_by(&rows, |r| hour_floor(r.time));
    assert_eq!(got.len(), hourly.len(), "{got:?}");
    for (row, (hour, t)) in got.iter().zip(&hourly) {
        assert_eq!(row[0], json!(iso(*hour)), "{row:?}");
        assert_eq!((long(&row[1], "rows"), long(&row[2], "edits")), (t.rows, t.events), "{row:?}");
        assert_close(&row[3], t.added, "added per hour");
    }

    let got = server.sql_rows(
        r#"SELECT language, SUM("count") AS edits FROM wikipedia WHERE namespace = 'Talk' AND robot = 'false'
           GROUP BY language ORDER BY edits DESC, language LIMIT 5"#,
    );
    let talk = group_by(&rows, |r| {
        (r.dim("namespace") == "Talk" && r.dim("robot") == "false", r.dim("language").to_string())
    });
    let mut expected: Vec<(i64, String)> =
        talk.iter().filter(|((t, _), _)| *t).map(|((_, l), t)| (-t.events, l.clone())).collect();
    expected.sort();
    let expected: Vec<Vec<Value>> = expected.iter().take(5).map(|(e, l)| vec![json!(l), json!(-e)]).collect();
    assert_eq!(got, expected);

    // Time filters and a dynamic parameter.
    let got = server.sql(&json!({
        "query": r#"SELECT COUNT(*) AS "rows", SUM("count") AS edits, SUM(added) AS added FROM wikipedia
                    WHERE __time >= TIMESTAMP '2013-08-31 01:00:00'
                    AND __time < TIMESTAMP '2013-08-31 02:00:00' AND language = ?"#,
        "parameters": [{"type": "VARCHAR", "value": "en"}]
    }));
    let expected = totals(
        rows.iter().filter(|r| hour_floor(r.time) == DAY_START_MS + HOUR_MS && r.dim("language") == "en"),
    );
    assert_totals(&got[0], &expected, "parameters and time filter");

    // Druid's INFORMATION_SCHEMA, as SQL clients read it.
    let tables = server.sql_rows(
        "SELECT TABLE_CATALOG, TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM INFORMATION_SCHEMA.TABLES \
         WHERE TABLE_SCHEMA = 'druid'",
    );
    assert_eq!(tables, vec![vec![json!("druid"), json!("druid"), json!("wikipedia"), json!("TABLE")]]);
    let schemata: BTreeSet<String> = server
        .sql_rows("SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA.SCHEMATA")
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    assert!(schemata.contains("druid") && schemata.contains("INFORMATION_SCHEMA"), "{schemata:?}");
    let columns = server.sql_rows(
        "SELECT COLUMN_NAME, DATA_TYPE, JDBC_TYPE, ORDINAL_POSITION FROM INFORMATION_SCHEMA.COLUMNS \
         WHERE TABLE_SCHEMA = 'druid' AND TABLE_NAME = 'wikipedia' ORDER BY ORDINAL_POSITION",
    );
    assert_eq!(columns.len(), 1 + DIMENSIONS.len() + METRICS.len(), "{columns:?}");
    assert_eq!(columns[0][..3], [json!("__time"), json!("TIMESTAMP"), json!(93)], "{columns:?}");
    let types: BTreeMap<String, (Value, Value)> =
        columns.iter().map(|c| (c[0].as_str().unwrap().to_string(), (c[1].clone(), c[2].clone()))).collect();
    for dim in DIMENSIONS {
        assert_eq!(types[dim], (json!("VARCHAR"), json!(12)), "{dim}");
    }
    assert_eq!(types["count"], (json!("BIGINT"), json!(-5)));
    for metric in ["added", "deleted", "delta"] {
        assert_eq!(types[metric], (json!("DOUBLE"), json!(8)), "{metric}");
    }
    let positions: Vec<i64> = columns.iter().map(|c| long(&c[3], "ORDINAL_POSITION")).collect();
    assert_eq!(positions, (1..=columns.len() as i64).collect::<Vec<_>>());

    // Unknown table: 400 with Druid's error body naming it.
    let answer = server.post("/druid/v2/sql", &json!({"query": "SELECT COUNT(*) FROM nope"}).to_string());
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_druid_error(&answer.json(), "nope");
    let answer = server.post("/druid/v2/sql", &json!({"query": "SELEC 1 FROM wikipedia"}).to_string());
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_druid_error(&answer.json(), "");
}

/// Checks Druid's error body: the four fields, and a message naming `needle`.
fn assert_druid_error(body: &Value, needle: &str) {
    for field in ["error", "errorMessage", "errorClass", "host"] {
        assert!(body.get(field).is_some(), "error body without {field}: {body}");
    }
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    let message =
        body["errorMessage"].as_str().unwrap_or_else(|| panic!("errorMessage is not a string: {body}"));
    assert!(message.contains(needle), "errorMessage does not name {needle:?}: {body}");
}

// ---------------------------------------------------------------------------------------------
// 8. Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_queries_answer_400_with_druid_error_bodies() {
    let fixture = Fixture::tutorial();
    let server = fixture.serve();
    let native = |body: &str, needle: &str| {
        let answer = server.post("/druid/v2", body);
        assert_eq!(answer.status, 400, "{body}\nanswered {}", answer.body);
        assert_druid_error(&answer.json(), needle);
    };
    let good = timeseries(json!("hour"), json!([DAY]));
    let without = |field: &str| {
        let mut q = good.clone();
        q.as_object_mut().unwrap().remove(field);
        q.to_string()
    };
    let with = |field: &str, value: Value| {
        let mut q = good.clone();
        q[field] = value;
        q.to_string()
    };

    native(r#"{"queryType": "timeseries", "#, "");
    native("", "");
    native("[1, 2]", "");
    native(&without("queryType"), "queryType");
    native(&with("queryType", json!("timeseriez")), "timeseriez");
    native(&without("intervals"), "intervals");
    native(&with("intervals", json!(["2013-08-31/yesterday"])), "intervals");
    native(&with("intervals", json!(42)), "intervals");
    native(&with("granularity", json!("fortnight")), "granularity");
    native(&with("aggregations", json!([{"type": "longSum", "name": "x"}])), "aggregations[0]");
    native(
        &with("aggregations", json!([{"type": "longSumm", "name": "x", "fieldName": "count"}])),
        "aggregations[0]",
    );
    native(&with("filter", json!({"type": "selector", "value": "en"})), "filter");
    native(&with("filter", json!({"type": "nope", "dimension": "page"})), "filter");
    native(&with("dataSource", json!("nope")), "nope");
    native(
        &json!({"queryType": "topN", "dataSource": "wikipedia", "intervals": [DAY], "granularity": "all",
        "dimension": "page", "threshold": 3, "metric": "missing",
        "aggregations": [{"type": "count", "name": "rows"}]})
        .to_string(),
        "missing",
    );
    native(&json!({"queryType": "scan", "dataSource": "nope", "intervals": [DAY]}).to_string(), "nope");

    let sql = |body: &str, needle: &str| {
        let answer = server.post("/druid/v2/sql", body);
        assert_eq!(answer.status, 400, "{body}\nanswered {}", answer.body);
        assert_druid_error(&answer.json(), needle);
    };
    sql(r#"{"query": "SELECT 1"#, "");
    sql(r#"{"resultFormat": "array"}"#, "query");
    sql(&json!({"query": "SELECT COUNT(*) FROM wikipedia", "resultFormat": "xml"}).to_string(), "xml");
    sql(&json!({"query": "SELECT COUNT(*) FROM nope"}).to_string(), "nope");
    sql(&json!({"query": "SELECT nope_column FROM wikipedia"}).to_string(), "nope_column");

    // The server is still fine.
    assert_eq!(server.native(&timeseries(json!("all"), json!([DAY])))[0]["result"]["rows"], 5);
}

// ---------------------------------------------------------------------------------------------
// 9. Rollup, several dataSources, a reindex seen without restart
// ---------------------------------------------------------------------------------------------

/// The Kafka example spec turned into an hourly rollup of three dimensions, dataSource
/// `edits_hourly`, one segment per day.
fn hourly_spec(dir: &Path) -> PathBuf {
    let mut spec: Value =
        serde_json::from_str(&std::fs::read_to_string(example("wikipedia-kafka.json")).unwrap()).unwrap();
    let schema = &mut spec["spec"]["dataSchema"];
    schema["dataSource"] = json!("edits_hourly");
    schema["dimensionsSpec"] = json!({"dimensions": HOURLY_DIMENSIONS});
    schema["metricsSpec"] = json!([
        {"type": "count", "name": "count"},
        {"type": "longSum", "name": "added", "fieldName": "added"}
    ]);
    schema["granularitySpec"] =
        json!({"type": "uniform", "segmentGranularity": "DAY", "queryGranularity": "HOUR", "rollup": true});
    let path = dir.join("hourly.json");
    std::fs::write(&path, serde_json::to_string_pretty(&spec).unwrap()).unwrap();
    path
}

#[test]
fn rollup_counts_rows_and_several_data_sources_are_served() {
    let mut fixture = Fixture::empty();
    let files = fixture.add_generated("input", 3000, 3, 21);
    fixture.reindex(&example("wikipedia.json"));
    let spec = hourly_spec(fixture.dir.path());
    fixture.put(&spec, &files);
    fixture.reindex(&spec);
    let server = fixture.serve();
    let hourly = rollup(&fixture.events, Some(HOUR_MS), &HOURLY_DIMENSIONS);
    assert!(hourly.len() < fixture.events.len() / 2, "the hourly rollup should merge many events");

    let mut query = timeseries(json!("all"), json!([DAY]));
    query["dataSource"] = json!("edits_hourly");
    query["aggregations"] = json!([
        {"type": "count", "name": "rows"},
        {"type": "longSum", "name": "edits", "fieldName": "count"},
        {"type": "longSum", "name": "added", "fieldName": "added"}
    ]);
    let answer = server.native(&query);
    let result = &answer[0]["result"];
    let expected = totals(&hourly);
    assert_eq!(long(&result["rows"], "rows"), expected.rows, "{answer}");
    assert_eq!(long(&result["edits"], "edits"), fixture.events.len() as i64, "{answer}");
    assert_eq!(long(&result["added"], "longSum added"), expected.added as i64, "{answer}");

    let got = server.sql_rows(r#"SELECT COUNT(*), SUM("count") FROM edits_hourly"#);
    assert_eq!(got, vec![vec![json!(expected.rows), json!(expected.events)]]);
    let got = server.sql_rows(r#"SELECT COUNT(*), SUM("count") FROM wikipedia"#);
    let wiki = totals(&fixture.rows());
    assert_eq!(got, vec![vec![json!(wiki.rows), json!(wiki.events)]]);

    // Scan shows the rolled-up rows, times truncated to the hour.
    let answer =
        server.native(&json!({"queryType": "scan", "dataSource": "edits_hourly", "intervals": [DAY],
        "order": "ascending", "limit": 100000,
        "columns": ["__time", "language", "namespace", "robot", "count"]}));
    let mut got: Vec<(i64, String, String, String, i64)> = answer
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["events"].as_array().unwrap().clone())
        .map(|e| {
            let s = |c: &str| e[c].as_str().unwrap().to_string();
            (
                long(&e["__time"], "__time"),
                s("language"),
                s("namespace"),
                s("robot"),
                long(&e["count"], "count"),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(i64, String, String, String, i64)> = hourly
        .iter()
        .map(|r| {
            let s = |c: &str| r.dim(c).to_string();
            (r.time, s("language"), s("namespace"), s("robot"), r.events)
        })
        .collect();
    assert_eq!(got, want);

    let sources = server.get("/druid/v2/datasources").json();
    let names: BTreeSet<&str> = sources.as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(names, BTreeSet::from(["edits_hourly", "wikipedia"]));
    let described = server.get("/druid/v2/datasources/edits_hourly").json();
    assert_eq!(described["dimensions"].as_array().unwrap().len(), 3, "{described}");
    let metrics: BTreeSet<&str> =
        described["metrics"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(metrics, BTreeSet::from(["added", "count"]));
    let tables = server
        .sql_rows("SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'druid' ORDER BY 1");
    assert_eq!(tables, vec![vec![json!("edits_hourly")], vec![json!("wikipedia")]]);
}

#[test]
fn a_new_version_is_served_without_restart_and_sigterm_stops_the_server() {
    let mut fixture = Fixture::tutorial();
    let server = fixture.serve();
    let count = r#"SELECT COUNT(*) AS "rows", SUM("count") AS edits, SUM(added) AS added FROM wikipedia"#;
    assert_totals(&server.sql(&json!({"query": count}))[0], &totals(&fixture.rows()), "before");
    let first_id = fixture.visible_segments()[0]["id"].clone();
    let metadata = json!({"queryType": "segmentMetadata", "dataSource": "wikipedia", "intervals": [DAY]});
    assert_eq!(server.native(&metadata)[0]["id"], first_id);

    // More events for the same day, a second reindex, a new version: the running server sees it.
    fixture.add_generated("more", 500, 24, 5);
    fixture.reindex(&example("wikipedia.json"));
    let second_id = fixture.visible_segments()[0]["id"].clone();
    assert_ne!(first_id, second_id);
    assert_totals(&server.sql(&json!({"query": count}))[0], &totals(&fixture.rows()), "after");
    assert_eq!(server.native(&metadata)[0]["id"], second_id);
    let (min, max) = (iso(fixture.min_time()), iso(fixture.max_time()));
    let answer = server.native(&json!({"queryType": "timeBoundary", "dataSource": "wikipedia"}));
    assert_eq!(answer, json!([{"timestamp": min, "result": {"minTime": min, "maxTime": max}}]));

    let status = server.terminate();
    assert!(status.success(), "braid serve exited with {status} on SIGTERM");
}

// ---------------------------------------------------------------------------------------------
// 10. `braid query`
// ---------------------------------------------------------------------------------------------

#[test]
fn query_command_against_a_server_and_straight_against_deep_storage() {
    let fixture = Fixture::generated(2000, 3, 17);
    let server = fixture.serve();
    let rows = fixture.rows();

    // --sql: an aligned table, then "(N rows)".
    let mut cmd = bin();
    cmd.args(["query", "--url", &server.url, "--sql"]).arg(
        r#"SELECT language, SUM("count") AS edits FROM wikipedia GROUP BY language
           ORDER BY edits DESC, language LIMIT 3"#,
    );
    let stdout = succeed(&mut cmd);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["language", "edits"], "{stdout}");
    assert_eq!(lines[4], "(3 rows)", "{stdout}");
    let mut by_language: Vec<(i64, String)> =
        group_by(&rows, |r| r.dim("language").to_string()).into_iter().map(|(l, t)| (-t.events, l)).collect();
    by_language.sort();
    for (line, (edits, language)) in lines[1..4].iter().zip(&by_language) {
        assert_eq!(
            line.split_whitespace().collect::<Vec<_>>(),
            [language.as_str(), &(-edits).to_string()],
            "{stdout}"
        );
    }
    // Aligned: the numeric column is right-aligned, so every line of the table is as long.
    let widths: BTreeSet<usize> = lines[..4].iter().map(|l| l.chars().count()).collect();
    assert_eq!(widths.len(), 1, "not aligned:\n{stdout}");

    // --json FILE straight against deep storage, and --json - through the server.
    let query = json!({
        "queryType": "timeseries", "dataSource": "wikipedia", "granularity": "hour", "intervals": [DAY],
        "aggregations": base_aggregations(), "context": {"skipEmptyBuckets": true}
    });
    let file = fixture.dir.path().join("query.json");
    std::fs::write(&file, query.to_string()).unwrap();
    let mut cmd = bin();
    cmd.args(["query", "--deep-storage"]).arg(&fixture.deep).arg("--json").arg(&file);
    let stdout = succeed(&mut cmd);
    assert!(stdout.contains("\n  "), "--json prints pretty JSON: {stdout}");
    let offline: Value = serde_json::from_str(&stdout).unwrap();
    let expected: Vec<(String, Totals)> =
        group_by(&rows, |r| hour_floor(r.time)).into_iter().map(|(h, t)| (iso(h), t)).collect();
    assert_buckets(&offline, &expected, "braid query --deep-storage --json");

    let mut cmd = bin();
    cmd.args(["query", "--url", &server.url, "--json", "-"]).write_stdin(query.to_string());
    let online: Value = serde_json::from_str(&succeed(&mut cmd)).unwrap();
    assert_eq!(online, offline);

    // SQL straight against deep storage too.
    let mut cmd = bin();
    cmd.args(["query", "--deep-storage"])
        .arg(&fixture.deep)
        .args(["--sql", r#"SELECT SUM("count") AS edits FROM wikipedia"#]);
    let stdout = succeed(&mut cmd);
    // Numbers align right under their header.
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        ["edits", &rows.iter().map(|r| r.events).sum::<i64>().to_string(), "(1 rows)"],
        "{stdout}"
    );

    // Failures exit non-zero and name the problem.
    let mut cmd = bin();
    cmd.args(["query", "--url", &server.url, "--sql", "SELECT COUNT(*) FROM nope"]);
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nope"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// 11. pydruid and SQLAlchemy, unmodified
// ---------------------------------------------------------------------------------------------

fn pydruid_available() -> bool {
    StdCommand::new("python3")
        .args(["-c", "import pydruid, pydruid.db.sqlalchemy, sqlalchemy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn pydruid_and_sqlalchemy_work_unmodified() {
    if !pydruid_available() {
        // CI installs them (scripts/test.sh); elsewhere say plainly what was not checked.
        assert!(std::env::var_os("CI").is_none(), "CI must have python3 with pydruid and sqlalchemy");
        eprintln!(
            "skipped: python3 with pydruid and sqlalchemy is not installed (pip install pydruid sqlalchemy)"
        );
        return;
    }
    let mut fixture = Fixture::empty();
    fixture.add_generated("input", 3000, 3, 3);
    fixture.reindex(&example("wikipedia.json"));
    let server = fixture.serve();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("pydruid_client.py");
    let output = StdCommand::new("python3")
        .arg(&script)
        .args(["--host", "127.0.0.1", "--port", server.port(), "--events"])
        .arg(fixture.dir.path().join("input"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        script.display(),
        output.status
    );
    assert!(stdout.contains("pydruid: all checks passed"), "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// 12. The example queries of Druid's query documentation
// ---------------------------------------------------------------------------------------------
//
// Each query below is the example of a page under druid.apache.org/docs/latest/querying/, kept
// as the page writes it (string flags, nesting, names of outputs) and changed only where it names
// its own data: the dataSource, dimensions, values, input fields and intervals are the wikipedia
// ones of 2013-08-31. Each answer must have the shape of the page's example result, and its
// numbers must match this file's own computation over the raw events.

/// The keys of a JSON object, to compare an answer's shape with a documented one.
fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("expected an object, got {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// Druid's arithmetic `/`: 0 when dividing by 0.
fn druid_divide(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

#[test]
fn druid_docs_timeseries_example() {
    let fixture = Fixture::generated(3000, 6, 21);
    let server = fixture.serve();
    let rows = fixture.rows();
    // druid.apache.org/docs/latest/querying/timeseriesquery, "An example timeseries query object".
    let mut query = json!({
      "queryType": "timeseries",
      "dataSource": "wikipedia",
      "granularity": "day",
      "descending": "true",
      "filter": {
        "type": "and",
        "fields": [
          { "type": "selector", "dimension": "robot", "value": "false" },
          { "type": "or",
            "fields": [
              { "type": "selector", "dimension": "namespace", "value": "article" },
              { "type": "selector", "dimension": "language", "value": "en" }
            ]
          }
        ]
      },
      "aggregations": [
        { "type": "longSum", "name": "sample_name1", "fieldName": "count" },
        { "type": "doubleSum", "name": "sample_name2", "fieldName": "added" }
      ],
      "postAggregations": [
        { "type": "arithmetic",
          "name": "sample_divide",
          "fn": "/",
          "fields": [
            { "type": "fieldAccess", "name": "postAgg__sample_name1", "fieldName": "sample_name1" },
            { "type": "fieldAccess", "name": "postAgg__sample_name2", "fieldName": "sample_name2" }
          ]
        }
      ],
      "intervals": [ "2013-08-31T00:00:00.000/2013-09-01T00:00:00.000" ]
    });
    let matching: Vec<Row> = rows
        .iter()
        .filter(|r| {
            r.dim("robot") == "false" && (r.dim("namespace") == "article" || r.dim("language") == "en")
        })
        .cloned()
        .collect();
    assert!(!matching.is_empty() && matching.len() < rows.len(), "the filter should keep some rows, not all");
    // The page's output: `timestamp` and a `result` object with each aggregator and post-aggregator.
    let check = |answer: &Value, expected: &[(i64, Totals)], what: &str| {
        let got = answer.as_array().unwrap_or_else(|| panic!("{what}: expected an array, got {answer}"));
        assert_eq!(got.len(), expected.len(), "{what}: {answer}");
        for (row, (bucket, t)) in got.iter().zip(expected) {
            assert_eq!(keys(row), BTreeSet::from(["timestamp", "result"]), "{what}: {row}");
            assert_eq!(row["timestamp"], iso(*bucket), "{what}: {answer}");
            let result = &row["result"];
            assert_eq!(
                keys(result),
                BTreeSet::from(["sample_name1", "sample_name2", "sample_divide"]),
                "{what}"
            );
            let what = format!("{what} at {}: {result}", iso(*bucket));
            assert_eq!(long(&result["sample_name1"], &what), t.events, "{what}");
            assert_close(&result["sample_name2"], t.added, &what);
            assert_close(&result["sample_divide"], druid_divide(t.events as f64, t.added), &what);
        }
    };
    check(&server.native(&query), &[(DAY_START_MS, totals(&matching))], "the page's query");

    // One day has one bucket; by the hour, `"descending": "true"` (a string) puts the latest first.
    query["granularity"] = json!("hour");
    let hourly: Vec<(i64, Totals)> = group_by(&matching, |r| hour_floor(r.time)).into_iter().rev().collect();
    assert_eq!(hourly.len(), 6);
    check(&server.native(&query), &hourly, "the page's query by the hour");
}

#[test]
fn druid_docs_top_n_example() {
    let fixture = Fixture::generated(5000, 6, 22);
    let server = fixture.serve();
    let rows = fixture.rows();
    // druid.apache.org/docs/latest/querying/topnquery, "A topN query object looks like"; its
    // interval already starts on 2013-08-31.
    let query = json!({
      "queryType": "topN",
      "dataSource": "wikipedia",
      "dimension": "page",
      "threshold": 5,
      "metric": "count",
      "granularity": "all",
      "filter": {
        "type": "and",
        "fields": [
          {
            "type": "selector",
            "dimension": "robot",
            "value": "false"
          },
          {
            "type": "selector",
            "dimension": "namespace",
            "value": "article"
          }
        ]
      },
      "aggregations": [
        {
          "type": "longSum",
          "name": "count",
          "fieldName": "count"
        },
        {
          "type": "doubleSum",
          "name": "added",
          "fieldName": "added"
        }
      ],
      "postAggregations": [
        {
          "type": "arithmetic",
          "name": "average",
          "fn": "/",
          "fields": [
            {
              "type": "fieldAccess",
              "name": "added",
              "fieldName": "added"
            },
            {
              "type": "fieldAccess",
              "name": "count",
              "fieldName": "count"
            }
          ]
        }
      ],
      "intervals": [
        "2013-08-31T00:00:00.000/2013-09-03T00:00:00.000"
      ]
    });
    let matching: Vec<Row> = rows
        .iter()
        .filter(|r| r.dim("robot") == "false" && r.dim("namespace") == "article")
        .cloned()
        .collect();
    let pages = group_by(&matching, |r| r.dim("page").to_string());
    assert!(pages.len() > 5, "the fixture should have more than five article pages");
    let counts: BTreeMap<String, f64> = pages.iter().map(|(p, t)| (p.clone(), t.events as f64)).collect();

    let answer = server.native(&query);
    // The page's output: one `timestamp` + `result` list; granularity all reports the first
    // row's time of the segment.
    let got = answer.as_array().unwrap_or_else(|| panic!("expected an array, got {answer}"));
    assert_eq!(got.len(), 1, "{answer}");
    assert_eq!(keys(&got[0]), BTreeSet::from(["timestamp", "result"]), "{answer}");
    assert_eq!(got[0]["timestamp"], iso(fixture.min_time()), "{answer}");
    let list = &got[0]["result"];
    assert_top(list, "page", "count", &counts, 5, true);
    for entry in list.as_array().unwrap() {
        assert_eq!(keys(entry), BTreeSet::from(["page", "count", "added", "average"]), "{entry}");
        let t = &pages[entry["page"].as_str().unwrap()];
        assert_eq!(long(&entry["count"], "count"), t.events, "{entry}");
        assert_close(&entry["added"], t.added, &format!("added in {entry}"));
        assert_close(
            &entry["average"],
            druid_divide(t.added, t.events as f64),
            &format!("average in {entry}"),
        );
    }
}

#[test]
fn druid_docs_group_by_example() {
    let fixture = Fixture::generated(20000, 6, 28);
    let server = fixture.serve();
    let rows = fixture.rows();
    // druid.apache.org/docs/latest/querying/groupbyquery, "An example groupBy query object":
    // carrier becomes robot, make becomes language, device becomes namespace; user_count and
    // data_transfer become count and added.
    let query = json!({
      "queryType": "groupBy",
      "dataSource": "wikipedia",
      "granularity": "day",
      "dimensions": ["country", "namespace"],
      "limitSpec": { "type": "default", "limit": 5000, "columns": ["country", "added"] },
      "filter": {
        "type": "and",
        "fields": [
          { "type": "selector", "dimension": "robot", "value": "false" },
          { "type": "or",
            "fields": [
              { "type": "selector", "dimension": "language", "value": "en" },
              { "type": "selector", "dimension": "language", "value": "de" }
            ]
          }
        ]
      },
      "aggregations": [
        { "type": "longSum", "name": "total_usage", "fieldName": "count" },
        { "type": "doubleSum", "name": "added", "fieldName": "added" }
      ],
      "postAggregations": [
        { "type": "arithmetic",
          "name": "avg_usage",
          "fn": "/",
          "fields": [
            { "type": "fieldAccess", "fieldName": "added" },
            { "type": "fieldAccess", "fieldName": "total_usage" }
          ]
        }
      ],
      "intervals": [ "2013-08-31T00:00:00.000/2013-09-01T00:00:00.000" ],
      "having": {
        "type": "greaterThan",
        "aggregation": "total_usage",
        "value": 100
      }
    });
    let matching: Vec<Row> = rows
        .iter()
        .filter(|r| r.dim("robot") == "false" && ["en", "de"].contains(&r.dim("language")))
        .cloned()
        .collect();
    let groups = group_by(&matching, |r| (r.dim("country").to_string(), r.dim("namespace").to_string()));
    // Having keeps the groups over 100 edits; the limitSpec orders them by country, then by
    // the sum of added, both ascending.
    let mut expected: Vec<(&(String, String), &Totals)> =
        groups.iter().filter(|(_, t)| t.events > 100).collect();
    expected.sort_by(|(a, ta), (b, tb)| a.0.cmp(&b.0).then(ta.added.total_cmp(&tb.added)));
    assert!(expected.len() > 2 && expected.len() < groups.len(), "having should keep some groups, not all");
    let by_dimensions: BTreeSet<&(String, String)> = expected.iter().map(|(k, _)| *k).collect();
    assert!(
        expected.iter().map(|(k, _)| *k).ne(by_dimensions),
        "the fixture should order the groups by added otherwise than by their dimensions"
    );

    let answer = server.native(&query);
    let got = answer.as_array().unwrap_or_else(|| panic!("expected an array, got {answer}"));
    let group = |row: &Value| {
        let dim = |d: &str| row["event"][d].as_str().unwrap_or_else(|| panic!("no {d} in {row}")).to_string();
        (dim("country"), dim("namespace"))
    };
    let got_groups: Vec<(String, String)> = got.iter().map(group).collect();
    let want_groups: Vec<(String, String)> = expected.iter().map(|(k, _)| (*k).clone()).collect();
    assert_eq!(got_groups, want_groups, "{answer}");
    // The page's output: `version`, `timestamp` and an `event` with the dimensions, aggregators
    // and post-aggregator.
    for (row, ((country, namespace), t)) in got.iter().zip(&expected) {
        let what = format!("{country}/{namespace}: {row}");
        assert_eq!(keys(row), BTreeSet::from(["version", "timestamp", "event"]), "{what}");
        assert_eq!(row["version"], "v1", "{what}");
        assert_eq!(row["timestamp"], "2013-08-31T00:00:00.000Z", "{what}");
        let event = &row["event"];
        let want = BTreeSet::from(["country", "namespace", "total_usage", "added", "avg_usage"]);
        assert_eq!(keys(event), want, "{what}");
        assert_eq!(long(&event["total_usage"], &what), t.events, "{what}");
        assert_close(&event["added"], t.added, &what);
        assert_close(&event["avg_usage"], druid_divide(t.added, t.events as f64), &what);
    }
}

#[test]
fn druid_docs_scan_example() {
    let fixture = Fixture::generated(2000, 4, 23);
    let server = fixture.serve();
    let rows = fixture.rows();
    let segments = fixture.visible_segments();
    assert_eq!(segments.len(), 1);
    // druid.apache.org/docs/latest/querying/scan-query, "An example Scan query object".
    let mut query = json!({
      "queryType": "scan",
      "dataSource": "wikipedia",
      "resultFormat": "list",
      "columns":[],
      "intervals": [
        "2013-08-31/2013-09-01"
      ],
      "batchSize":20480,
      "limit":3
    });
    // Empty columns: every column, as the page's example result lists them: the time, the
    // dimensions, then the metrics, each in the spec's order.
    let all_columns: Vec<&str> = ["__time"].iter().chain(&DIMENSIONS).chain(&METRICS).copied().collect();
    // The row an event (as a column -> value map) stands for, checked column by column.
    let check_event = |event: &BTreeMap<&str, &Value>, what: &str| {
        let time = long(event["__time"], what);
        let row = rows
            .iter()
            .find(|r| r.time == time && DIMENSIONS.iter().all(|d| event[d] == &json!(r.dim(d))))
            .unwrap_or_else(|| panic!("{what}: no row has these values: {event:?}"));
        assert_eq!(long(event["count"], what), row.events, "{what}: count of {event:?}");
        assert_close(event["added"], row.added, what);
        assert_close(event["deleted"], row.deleted, what);
        assert_close(event["delta"], row.delta, what);
        row.clone()
    };
    // The page's output: batches of `segmentId`, `columns` and `events`.
    let batches = |answer: &Value, what: &str| -> Vec<Value> {
        let batches = answer.as_array().unwrap_or_else(|| panic!("{what}: expected an array, got {answer}"));
        let mut events = Vec::new();
        for batch in batches {
            for key in ["segmentId", "columns", "events"] {
                assert!(batch.get(key).is_some(), "{what}: no {key} in {batch}");
            }
            assert_eq!(batch["segmentId"], segments[0]["id"], "{what}: {batch}");
            assert_eq!(batch["columns"], json!(all_columns), "{what}: {batch}");
            events.extend(
                batch["events"].as_array().unwrap_or_else(|| panic!("{what}: {batch}")).iter().cloned(),
            );
        }
        events
    };

    let events = batches(&server.native(&query), "list");
    assert_eq!(events.len(), 3, "limit 3: {events:?}");
    let mut seen = Vec::new();
    for event in &events {
        let object = event.as_object().unwrap_or_else(|| panic!("a list event is an object: {event}"));
        assert_eq!(keys(event), all_columns.iter().copied().collect(), "{event}");
        let by_name: BTreeMap<&str, &Value> = object.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let row = check_event(&by_name, "list");
        assert!(!seen.contains(&row), "the same row twice: {event}");
        seen.push(row);
    }

    // The page's second result format: each event an array in the order of `columns`.
    query["resultFormat"] = json!("compactedList");
    let events = batches(&server.native(&query), "compactedList");
    assert_eq!(events.len(), 3, "limit 3: {events:?}");
    for event in &events {
        let values = event.as_array().unwrap_or_else(|| panic!("a compactedList event is an array: {event}"));
        assert_eq!(values.len(), all_columns.len(), "{event}");
        let by_name: BTreeMap<&str, &Value> = all_columns.iter().copied().zip(values).collect();
        check_event(&by_name, "compactedList");
    }
}

#[test]
fn druid_docs_time_boundary_example() {
    let fixture = Fixture::generated(2000, 4, 24);
    let server = fixture.serve();
    let rows = fixture.rows();
    let (min, max) = (iso(fixture.min_time()), iso(fixture.max_time()));
    // druid.apache.org/docs/latest/querying/timeboundaryquery: the grammar, whose `bound` and `and`
    // filter are both optional, in each of its forms.
    let query = |extra: Value| {
        let mut q = json!({
            "queryType" : "timeBoundary",
            "dataSource": "wikipedia"
        });
        q.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        q
    };
    let filter = json!({ "type": "and", "fields": [
        { "type": "selector", "dimension": "language", "value": "en" },
        { "type": "selector", "dimension": "robot", "value": "true" }
    ]});
    let matching: Vec<i64> = rows
        .iter()
        .filter(|r| r.dim("language") == "en" && r.dim("robot") == "true")
        .map(|r| r.time)
        .collect();
    let (en_min, en_max) = (iso(*matching.iter().min().unwrap()), iso(*matching.iter().max().unwrap()));
    assert!(en_min != min || en_max != max, "the filter should move a bound");

    // The page's output: `timestamp` and a `result` with the bounds asked for.
    let cases = [
        (json!({}), json!([{"timestamp": min, "result": {"minTime": min, "maxTime": max}}])),
        (json!({"bound": "maxTime"}), json!([{"timestamp": max, "result": {"maxTime": max}}])),
        (json!({"bound": "minTime"}), json!([{"timestamp": min, "result": {"minTime": min}}])),
        (
            json!({"filter": filter}),
            json!([{"timestamp": en_min, "result": {"minTime": en_min, "maxTime": en_max}}]),
        ),
        (
            json!({"bound": "maxTime", "filter": filter}),
            json!([{"timestamp": en_max, "result": {"maxTime": en_max}}]),
        ),
    ];
    for (extra, expected) in cases {
        let q = query(extra);
        assert_eq!(server.native(&q), expected, "{q}");
    }
}

#[test]
fn druid_docs_segment_metadata_example() {
    let fixture = Fixture::generated(2000, 4, 25);
    let server = fixture.serve();
    let rows = fixture.rows();
    let segments = fixture.visible_segments();
    assert_eq!(segments.len(), 1);
    // druid.apache.org/docs/latest/querying/segmentmetadataquery; its interval, the year 2013,
    // holds 2013-08-31 as it is.
    let query = json!({
      "queryType":"segmentMetadata",
      "dataSource":"wikipedia",
      "intervals":["2013-01-01/2014-01-01"]
    });
    let answer = server.native(&query);
    let analyses = answer.as_array().unwrap_or_else(|| panic!("expected an array, got {answer}"));
    assert_eq!(analyses.len(), 1, "one segment, one analysis: {answer}");
    let analysis = &analyses[0];
    // The page's output: these keys at least (analyses not asked for may be null).
    for key in ["id", "intervals", "columns", "aggregators", "queryGranularity", "size", "numRows"] {
        assert!(analysis.get(key).is_some(), "no {key} in {analysis}");
    }
    assert_eq!(analysis["id"], segments[0]["id"], "{analysis}");
    assert_eq!(analysis["intervals"], json!([DAY_ISO]), "{analysis}");
    assert_eq!(long(&analysis["numRows"], "numRows"), rows.len() as i64, "{analysis}");
    num(&analysis["size"], "size");

    let columns = &analysis["columns"];
    let names: BTreeSet<&str> = ["__time"].iter().chain(&DIMENSIONS).chain(&METRICS).copied().collect();
    assert_eq!(keys(columns), names, "{analysis}");
    for name in names {
        let column = &columns[name];
        for key in ["type", "hasMultipleValues", "size", "cardinality", "errorMessage"] {
            assert!(column.get(key).is_some(), "{name}: no {key} in {column}");
        }
        assert_eq!(column["hasMultipleValues"], false, "{name}: {column}");
        assert_eq!(column["errorMessage"], Value::Null, "{name}: {column}");
        num(&column["size"], name);
        if DIMENSIONS.contains(&name) {
            // Dimensions: STRING, with a cardinality and, by the default analysis types
            // (cardinality, interval, minmax), their smallest and largest values.
            assert_eq!(column["type"], "STRING", "{name}: {column}");
            let values: BTreeSet<&str> = rows.iter().map(|r| r.dim(name)).collect();
            assert_eq!(long(&column["cardinality"], name), values.len() as i64, "{name}: {column}");
            assert_eq!(column["minValue"], json!(values.first().unwrap()), "{name}: {column}");
            assert_eq!(column["maxValue"], json!(values.last().unwrap()), "{name}: {column}");
        } else {
            // The timestamp and metrics: no cardinality. (The page's FLOAT is what doubleSum
            // metrics were before Druid stored doubles; they are DOUBLE now.)
            let want = match name {
                "__time" | "count" => "LONG",
                _ => "DOUBLE",
            };
            assert_eq!(column["type"], want, "{name}: {column}");
            assert_eq!(column["cardinality"], Value::Null, "{name}: {column}");
        }
    }
}

#[test]
fn druid_docs_data_source_metadata_example() {
    let fixture = Fixture::generated(2000, 4, 26);
    let server = fixture.serve();
    let max = iso(fixture.max_time());
    // druid.apache.org/docs/latest/querying/datasourcemetadataquery, the grammar as it is.
    let query = json!({
        "queryType" : "dataSourceMetadata",
        "dataSource": "wikipedia"
    });
    // The page's output: `timestamp` and the latest event's time, rollup aside.
    assert_eq!(server.native(&query), json!([{"timestamp": max, "result": {"maxIngestedEventTime": max}}]));
}
