//! The daemons' manners on the real binary: `braid quickstart` shows the whole pipeline (its
//! answers checked), `braid broker` is a broker other processes produce to, every daemon answers
//! `/status/health` and `/metrics`, a token, when set, is required, and a second signal stops
//! a daemon at once.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{Value, json};
use support::daemon::{Daemon, read, send};

/// Polls `check` every 50 ms until it holds, for at most `limit`.
fn wait_until(what: &str, log: &Path, limit: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what}: not after {limit:?}; log:\n{}", read(log));
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn get(daemon: &Daemon, path: &str, token: Option<&str>) -> (u16, String) {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut request = agent.get(format!("{}{path}", daemon.url));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut response = request.call().unwrap();
    (response.status().as_u16(), response.body_mut().read_to_string().unwrap())
}

fn post(daemon: &Daemon, path: &str, body: &Value, authorization: Option<&str>) -> (u16, String) {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut request = agent.post(format!("{}{path}", daemon.url)).header("Content-Type", "application/json");
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    let mut response = request.send(body.to_string()).unwrap();
    (response.status().as_u16(), response.body_mut().read_to_string().unwrap())
}

/// The sum of a Prometheus metric over its label sets.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn assert_healthy(daemon: &Daemon) -> String {
    assert_eq!(get(daemon, "/status/health", None), (200, "true".to_string()));
    let (status, metrics) = get(daemon, "/metrics", None);
    assert_eq!(status, 200, "{metrics}");
    assert!(metrics.contains("# TYPE "), "{metrics}");
    metrics
}

#[test]
fn quickstart_runs_the_whole_pipeline_and_requires_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("braid-data");
    let log = dir.path().join("quickstart.log");
    let daemon = Daemon::start(
        [
            "quickstart",
            "--deep-storage",
            deep.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--rate",
            "400",
            "--cron",
            "* * * * * *",
            "--settle",
            "PT0S",
            "--auth-token",
            "s3cret",
        ],
        "braid quickstart; Druid queries on ",
        log.clone(),
    );
    let sql = json!({"query": "SELECT SUM(\"count\") AS events, COUNT(*) AS \"rows\" FROM wikipedia", "resultFormat": "array"});

    // Without the token the API refuses; health and metrics stay open.
    let (status, body) = post(&daemon, "/druid/v2/sql", &sql, None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Unauthorized"), "{body}");
    assert_eq!(post(&daemon, "/druid/v2/sql", &sql, Some("Bearer wrong")).0, 401);
    let (status, _) = post(&daemon, "/v1/post/wikipedia", &json!([]), None);
    assert_eq!(status, 401, "push needs the token");
    assert_eq!(get(&daemon, "/druid/indexer/v1/supervisor", None).0, 401, "supervisors need the token");
    assert_eq!(get(&daemon, "/druid/indexer/v1/supervisor", Some("s3cret")).0, 200);

    // The stream serves events within seconds, SQL and native answers agree on the batch-owned
    // previous hours (which only the scheduler writes), and the scheduler turns the late events
    // into batch versions.
    let events = || {
        let (status, body) = post(&daemon, "/druid/v2/sql", &sql, Some("Bearer s3cret"));
        assert_eq!(status, 200, "{body}");
        let rows: Value = serde_json::from_str(&body).unwrap();
        rows[0][0].as_f64().unwrap_or(0.0)
    };
    wait_until("events served", &log, Duration::from_secs(60), || events() > 0.0);
    let by_language = json!({"query": "SELECT \"language\", SUM(\"count\") FROM wikipedia GROUP BY 1", "resultFormat": "array"});
    let (status, body) = post(&daemon, "/druid/v2/sql", &by_language, Some("Bearer s3cret"));
    assert_eq!(status, 200, "{body}");
    let languages: Value = serde_json::from_str(&body).unwrap();
    assert!(
        languages.as_array().unwrap().iter().all(|row| row[0].is_string()),
        "every event has its dimensions: {body}"
    );
    let batch_segments = || {
        let out = support::succeed(support::bin().args(["segments", "--json", "--deep-storage"]).arg(&deep));
        let segments: Value = serde_json::from_str(&out).unwrap();
        segments
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["origin"] == "batch" && s["visible"] == true)
            .cloned()
            .collect::<Vec<_>>()
    };
    wait_until("a batch version of the late events' hour", &log, Duration::from_secs(60), || {
        !batch_segments().is_empty()
    });
    let batch = batch_segments();
    let interval = batch[0]["interval"].as_str().unwrap().to_string();
    let (start, end) = interval.split_once('/').unwrap();
    let native = json!({
        "queryType": "timeseries", "dataSource": "wikipedia", "granularity": "all", "intervals": [interval],
        "aggregations": [{"type": "longSum", "name": "events", "fieldName": "count"}]
    });
    let hour_sql = json!({
        "query": format!("SELECT SUM(\"count\") FROM wikipedia WHERE __time >= TIMESTAMP '{}' AND __time < TIMESTAMP '{}'",
            &start[..19].replace('T', " "), &end[..19].replace('T', " ")),
        "resultFormat": "array"
    });
    let (status, native_answer) = post(&daemon, "/druid/v2", &native, Some("Bearer s3cret"));
    assert_eq!(status, 200, "{native_answer}");
    let native_events =
        serde_json::from_str::<Value>(&native_answer).unwrap()[0]["result"]["events"].as_f64().unwrap();
    let (status, sql_answer) = post(&daemon, "/druid/v2/sql", &hour_sql, Some("Bearer s3cret"));
    assert_eq!(status, 200, "{sql_answer}");
    let sql_events = serde_json::from_str::<Value>(&sql_answer).unwrap()[0][0].as_f64().unwrap();
    assert!(native_events > 0.0, "{native_answer}");
    // The scheduler may publish a newer version between the two queries; it only grows.
    assert!(sql_events >= native_events, "native {native_events}, SQL {sql_events}");

    let metrics = assert_healthy(&daemon);
    for name in [
        "ingest_events_processed_total",
        "ingest_events_thrown_away_total",
        "ingest_events_unparseable_total",
        "query_count_total",
    ] {
        assert!(metric(&metrics, name) > 0.0, "{name}:\n{metrics}");
    }
    assert!(metric(&metrics, "batch_intervals_total{outcome=\"published\"}") > 0.0, "{metrics}");

    assert!(daemon.terminate().success(), "log:\n{}", read(&log));
    let history =
        support::succeed(support::bin().args(["batch", "history", "--json", "--deep-storage"]).arg(&deep));
    assert!(history.contains("\"outcome\": \"published\""), "{history}");
}

#[test]
fn the_embedded_broker_takes_records_from_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("broker.log");
    let mut broker = Daemon::start(
        ["broker", "--topic", "events:3", "--listen", "127.0.0.1:0"],
        "127.0.0.1:",
        log.clone(),
    );
    let bootstrap = format!("127.0.0.1:{}", broker.url);
    let status = broker.next_line();
    broker.url = status.strip_prefix("health and metrics on ").expect(&status).to_string();
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    for i in 0..30 {
        let payload = format!("{{\"i\": {i}}}");
        send(&producer, BaseRecord::<str, str>::to("events").key("k").payload(&payload));
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let metadata = producer.client().fetch_metadata(Some("events"), Duration::from_secs(10)).unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 3);
    let metrics = assert_healthy(&broker);
    assert_eq!(metric(&metrics, "broker_up"), 1.0, "{metrics}");
    assert_eq!(metric(&metrics, "broker_partitions"), 3.0, "{metrics}");
    let events_end: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("broker_log_end_offset{topic=\"events\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(events_end, 30.0, "every record is in the log: {metrics}");
    assert!(broker.terminate().success(), "log:\n{}", read(&log));
    let err = support::bin().args(["broker", "--topic", "x:0"]).output().unwrap();
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("positive number"));
}

#[test]
fn serve_and_the_scheduler_answer_health_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep");
    std::fs::create_dir_all(&deep).unwrap();
    let serve = Daemon::start(
        [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--deep-storage",
            deep.to_str().unwrap(),
            "--auth-token",
            "t0ken",
        ],
        "braid serving Druid queries on ",
        dir.path().join("serve.log"),
    );
    let query = json!({"query": "SELECT 1"});
    assert_eq!(post(&serve, "/druid/v2/sql", &query, None).0, 401);
    // Basic auth with the token as the password, as pydruid sends it ("druid:t0ken").
    assert_eq!(post(&serve, "/druid/v2/sql", &query, Some("Basic ZHJ1aWQ6dDBrZW4=")).0, 200);
    let metrics = assert_healthy(&serve);
    assert_eq!(metric(&metrics, "query_count_total"), 1.0, "{metrics}");

    let spec = support::example("wikipedia.json");
    let log = dir.path().join("schedule.log");
    let scheduler = Daemon::start(
        [
            "batch",
            "schedule",
            "--spec",
            spec.to_str().unwrap(),
            "--deep-storage",
            deep.to_str().unwrap(),
            "--cron",
            "0 0 0 1 1 * 2099",
            "--listen",
            "127.0.0.1:0",
        ],
        "braid batch scheduler running 1 jobs; health and metrics on ",
        log.clone(),
    );
    let metrics = assert_healthy(&scheduler);
    assert!(metrics.contains("batch_runs_total{outcome=\"succeeded\"} 0"), "{metrics}");
    assert!(scheduler.terminate().success(), "log:\n{}", read(&log));
}

#[test]
fn a_second_signal_exits_at_once_while_the_first_waits_for_a_query() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    // An "S3" that accepts connections and never answers: a query against it holds the clean
    // stop (which lets requests in flight finish) for minutes.
    let silent_s3 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent_s3.local_addr().unwrap());
    let mut serve = support::process()
        .args(["serve", "--listen", "127.0.0.1:0", "--deep-storage", "s3://stuck/deep"])
        .env("AWS_ENDPOINT", &endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(serve.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line.trim_end().strip_prefix("braid serving Druid queries on ").expect(&line).to_string();

    let query = std::thread::spawn(move || {
        let sql = json!({"query": "SELECT COUNT(*) FROM wikipedia"}).to_string();
        // Cut off when the server exits; what it answers does not matter.
        let _ =
            ureq::post(format!("{url}/druid/v2/sql")).header("Content-Type", "application/json").send(sql);
    });
    // The query has reached deep storage: it is in flight.
    let (_held, _) = silent_s3.accept().unwrap();

    let started = Instant::now();
    let pid = serve.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut stderr = BufReader::new(serve.stderr.take().unwrap());
    let mut log = String::new();
    while !log.contains("a second signal exits at once") {
        assert!(stderr.read_line(&mut log).unwrap() > 0, "braid exited before stopping cleanly:\n{log}");
    }
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = serve.wait().unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(log.contains("second signal, exiting at once"), "{log}");
    assert!(started.elapsed() < Duration::from_secs(20), "the second signal waited for the query");
    query.join().unwrap();
}
