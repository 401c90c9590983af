//! `braid stream`: the ingesters of every dataSource, the query API over their live rows and
//! the published segments, Druid's supervisor API, Tranquility's push API and `/metrics`, on
//! one port.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::spec::{DataSourceSpec, load_specs};
use common::storage::DeepStorage;
use flate2::read::MultiGzDecoder;
use layouts::RawLayout;
use query::QueryEngine;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use tokio::runtime::Handle;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tracing::{error, info, warn};

use crate::StreamError;
use crate::ingester::{Control, Ingester};
use crate::kafka::{producer_config, topic};
use crate::metrics::render;

/// How long a push waits for the broker to acknowledge its events.
const PUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// What `braid stream` runs.
#[derive(Debug)]
pub struct StreamOptions {
    /// Deep storage.
    pub storage: DeepStorage,
    /// The raw archive's layout.
    pub raw_layout: RawLayout,
    /// One spec per dataSource to ingest from the start (more can be posted to the supervisor API).
    pub specs: Vec<(DataSourceSpec, Value)>,
    /// Only these partitions of each topic, so several daemons can split a topic.
    pub partitions: Option<Vec<i32>>,
    /// The token every request but the health check and metrics must carry, if any.
    pub auth_token: Option<String>,
    /// More Prometheus text for `/metrics` (the batch scheduler's, when `braid run` runs one).
    pub extra_metrics: Option<ExtraMetrics>,
}

/// A source of more `/metrics` text.
#[derive(Clone)]
pub struct ExtraMetrics(pub Arc<dyn Fn() -> String + Send + Sync>);

impl std::fmt::Debug for ExtraMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExtraMetrics")
    }
}

/// The running daemon; cheap to clone.
#[derive(Debug, Clone)]
pub struct Daemon {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    runtime: Handle,
    storage: DeepStorage,
    layout: RawLayout,
    partitions: Option<Vec<i32>>,
    engine: QueryEngine,
    supervisors: Mutex<BTreeMap<String, Supervisor>>,
    ended: UnboundedSender<(String, Option<String>)>,
    extra_metrics: std::sync::OnceLock<ExtraMetrics>,
}

struct Supervisor {
    ingester: Ingester,
    spec_json: Value,
    /// Made at the first push.
    producer: Option<FutureProducer>,
    created: String,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("ingester", &self.ingester)
            .field("has_producer", &self.producer.is_some())
            .field("created", &self.created)
            .finish()
    }
}

impl Daemon {
    /// A daemon with no dataSources yet; `ended` hears of ingesters that stop on their own.
    pub fn new(
        storage: DeepStorage,
        raw_layout: RawLayout,
        partitions: Option<Vec<i32>>,
        engine: QueryEngine,
    ) -> (Self, UnboundedReceiver<(String, Option<String>)>) {
        let (ended, receiver) = tokio::sync::mpsc::unbounded_channel();
        let inner = Inner {
            runtime: Handle::current(),
            storage,
            layout: raw_layout,
            partitions,
            engine,
            supervisors: Mutex::new(BTreeMap::new()),
            ended,
            extra_metrics: std::sync::OnceLock::new(),
        };
        (Self { inner: Arc::new(inner) }, receiver)
    }

    fn supervisors(&self) -> MutexGuard<'_, BTreeMap<String, Supervisor>> {
        self.inner.supervisors.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts ingesting a dataSource; a running one of the same name is stopped (checkpointed)
    /// first, as Druid replaces a supervisor's spec.
    pub async fn start(&self, spec: DataSourceSpec, spec_json: Value) -> Result<(), StreamError> {
        let name = spec.data_source.to_string();
        let previous = self.supervisors().remove(&name);
        if let Some(previous) = previous {
            info!(data_source = %name, "Replacing the running supervisor.");
            let ingester = previous.ingester;
            tokio::task::spawn_blocking(move || ingester.stop())
                .await
                .map_err(|e| StreamError::Internal(e.to_string()))??;
        }
        let ingester = Ingester::start(
            self.inner.runtime.clone(),
            self.inner.storage.clone(),
            self.inner.layout.clone(),
            spec.clone(),
            self.inner.partitions.clone(),
            self.inner.ended.clone(),
        )?;
        self.inner.engine.attach_live(&name, ingester.live.clone());
        let supervisor = Supervisor {
            ingester,
            spec_json,
            producer: None,
            created: common::time::format_iso(common::catalog::now_millis()),
        };
        self.supervisors().insert(name, supervisor);
        Ok(())
    }

    /// Checkpoints and stops every ingester.
    pub async fn stop_all(&self) -> Result<(), StreamError> {
        let supervisors: Vec<Supervisor> = std::mem::take(&mut *self.supervisors()).into_values().collect();
        let mut first_error = None;
        for supervisor in supervisors {
            let name = supervisor.ingester.data_source.clone();
            let ingester = supervisor.ingester;
            let result = tokio::task::spawn_blocking(move || ingester.stop())
                .await
                .map_err(|e| StreamError::Internal(e.to_string()))
                .and_then(|r| r);
            match result {
                Ok(()) => info!(data_source = %name, "Stopped after a final checkpoint."),
                Err(e) => {
                    error!(data_source = %name, error = %e, "Stopped with an error.");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The HTTP API: queries, supervisors, push, metrics.
    pub fn router(&self) -> Router {
        let stream = Router::new()
            .route("/druid/indexer/v1/supervisor", get(list_supervisors).post(submit_supervisor))
            .route("/druid/indexer/v1/supervisor/{id}", get(supervisor_spec))
            .route("/druid/indexer/v1/supervisor/{id}/status", get(supervisor_status))
            .route("/druid/indexer/v1/supervisor/{id}/suspend", post(suspend))
            .route("/druid/indexer/v1/supervisor/{id}/resume", post(resume))
            .route("/druid/indexer/v1/supervisor/{id}/reset", post(reset))
            .route("/v1/post/{data_source}", post(push))
            .route("/metrics", get(metrics))
            .with_state(self.clone());
        query::server::router(self.inner.engine.clone()).merge(stream)
    }
}

/// Runs the daemon until `shutdown` completes or an ingester fails; then checkpoints and stops
/// every ingester.
pub async fn run(
    options: StreamOptions,
    engine: QueryEngine,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StreamError> {
    let (daemon, mut ended) = Daemon::new(options.storage, options.raw_layout, options.partitions, engine);
    if let Some(extra) = options.extra_metrics {
        let _ = daemon.inner.extra_metrics.set(extra);
    }
    for (spec, json) in options.specs {
        daemon.start(spec, json).await?;
    }
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let app = query::server::require_token(daemon.router(), options.auth_token);
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stopped.await;
            })
            .into_future(),
    );
    tokio::pin!(shutdown);
    let failure = loop {
        tokio::select! {
            () = &mut shutdown => break None,
            Some((name, failure)) = ended.recv() => {
                if let Some(reason) = failure {
                    break Some(StreamError::Internal(format!("dataSource \"{name}\" stopped: {reason}")));
                }
            }
        }
    };
    info!("Stopping: final checkpoints.");
    let stopped = daemon.stop_all().await;
    let _ = stop_server.send(());
    let _ = server.await;
    match failure {
        Some(e) => Err(e),
        None => stopped,
    }
}

fn not_found(id: &str) -> Response {
    let body = json!({"error": format!("Cannot find any supervisor with id: [{id}]")});
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": message}))).into_response()
}

async fn list_supervisors(State(daemon): State<Daemon>) -> Response {
    let ids: Vec<String> = daemon.supervisors().keys().cloned().collect();
    axum::Json(ids).into_response()
}

async fn submit_supervisor(State(daemon): State<Daemon>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let loaded = match load_specs(&text, "supervisor spec") {
        Ok(loaded) => loaded,
        Err(e) => return bad_request(e.to_string()),
    };
    if !loaded.ignored_fields.is_empty() {
        warn!(fields = ?loaded.ignored_fields, "Spec fields accepted but not used.");
    }
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut ids = Vec::new();
    for spec in loaded.specs {
        if let Err(e) = topic(&spec) {
            return bad_request(e.to_string());
        }
        ids.push(spec.data_source.to_string());
        if let Err(e) = daemon.start(spec, json.clone()).await {
            let status = match e {
                StreamError::InvalidSpec(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            return (status, axum::Json(json!({"error": e.to_string()}))).into_response();
        }
    }
    match ids.as_slice() {
        [id] => axum::Json(json!({"id": id})).into_response(),
        _ => axum::Json(json!({"ids": ids})).into_response(),
    }
}

async fn supervisor_spec(State(daemon): State<Daemon>, Path(id): Path<String>) -> Response {
    match daemon.supervisors().get(&id) {
        Some(s) => axum::Json(s.spec_json.clone()).into_response(),
        None => not_found(&id),
    }
}

async fn supervisor_status(State(daemon): State<Daemon>, Path(id): Path<String>) -> Response {
    let supervisors = daemon.supervisors();
    let Some(supervisor) = supervisors.get(&id) else { return not_found(&id) };
    let status = supervisor.ingester.status();
    let lags = supervisor.ingester.metrics.lags();
    let minimum_lag: BTreeMap<String, i64> = lags.iter().map(|(p, l)| (p.to_string(), *l)).collect();
    let suspended = status.state == "SUSPENDED";
    let healthy = !matches!(status.state.as_str(), "FAILED");
    let body = json!({
        "id": id,
        "generationTime": common::time::format_iso(common::catalog::now_millis()),
        "payload": {
            "dataSource": id,
            "stream": status.stream,
            "partitions": status.partitions.len(),
            "partitionIds": status.partitions,
            "replicas": 1,
            "activeTasks": [],
            "publishingTasks": [],
            "minimumLag": minimum_lag,
            "aggregateLag": lags.values().sum::<i64>(),
            "suspended": suspended,
            "healthy": healthy,
            "state": status.state,
            "detailedState": status.state,
            "lastCheckpointSeq": status.last_checkpoint_seq,
            "lastCheckpointTime": status.last_checkpoint_time,
            "recentErrors": status.recent_errors,
            "created": supervisor.created,
        }
    });
    axum::Json(body).into_response()
}

async fn control(daemon: &Daemon, id: &str, control: Control) -> Response {
    let sent = match daemon.supervisors().get(id) {
        Some(s) => s.ingester.send(control),
        None => return not_found(id),
    };
    if !sent {
        return bad_request(format!("supervisor {id} has stopped"));
    }
    axum::Json(json!({"id": id})).into_response()
}

async fn suspend(State(daemon): State<Daemon>, Path(id): Path<String>) -> Response {
    control(&daemon, &id, Control::Suspend).await
}

async fn resume(State(daemon): State<Daemon>, Path(id): Path<String>) -> Response {
    control(&daemon, &id, Control::Resume).await
}

async fn reset(State(daemon): State<Daemon>, Path(id): Path<String>) -> Response {
    control(&daemon, &id, Control::Reset).await
}

async fn metrics(State(daemon): State<Daemon>) -> Response {
    let supervisors = daemon.supervisors();
    let mut text = render(supervisors.iter().map(|(name, s)| (name.as_str(), s.ingester.metrics.as_ref())));
    text.push_str(&daemon.inner.engine.metrics_text());
    if let Some(extra) = daemon.inner.extra_metrics.get() {
        text.push_str(&(extra.0)());
    }
    ([(header::CONTENT_TYPE, query::server::PROMETHEUS_TEXT)], text).into_response()
}

/// Tranquility's push: a JSON array or newline-delimited objects (gzip accepted), produced to
/// the dataSource's topic; answered once the broker acknowledged them.
async fn push(
    State(daemon): State<Daemon>,
    Path(data_source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (producer, topic) = {
        let mut supervisors = daemon.supervisors();
        let Some(supervisor) = supervisors.get_mut(&data_source) else {
            return not_found(&data_source);
        };
        let spec = &supervisor.ingester.spec;
        let topic = match topic(spec) {
            Ok(t) => t.to_string(),
            Err(e) => return bad_request(e.to_string()),
        };
        if supervisor.producer.is_none() {
            match producer_config(spec).create::<FutureProducer>() {
                Ok(p) => supervisor.producer = Some(p),
                Err(e) => {
                    return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"error": e.to_string()})))
                        .into_response();
                }
            }
        }
        (supervisor.producer.clone().expect("just made"), topic)
    };
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let events = match push_events(&body, gzip) {
        Ok(events) => events,
        Err(message) => return bad_request(message),
    };
    let received = events.len();
    let sends = events.iter().map(|event| {
        let record: FutureRecord<'_, (), [u8]> = FutureRecord::to(&topic).payload(event.as_slice());
        producer.send(record, PUSH_TIMEOUT)
    });
    let results = futures::future::join_all(sends).await;
    let sent = results.iter().filter(|r| r.is_ok()).count();
    if let Some(Err((e, _))) = results.iter().find(|r| r.is_err()) {
        warn!(%data_source, error = %e, failed = received - sent, "Some pushed events were not acknowledged.");
    }
    axum::Json(json!({"result": {"received": received, "sent": sent}})).into_response()
}

/// The events of a push body, one message each.
fn push_events(body: &[u8], gzip: bool) -> Result<Vec<Vec<u8>>, String> {
    let mut unzipped = Vec::new();
    let body = if gzip {
        MultiGzDecoder::new(body)
            .read_to_end(&mut unzipped)
            .map_err(|e| format!("body: Content-Encoding gzip, but it does not decompress: {e}"))?;
        unzipped.as_slice()
    } else {
        body
    };
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let events: Vec<Value> =
            serde_json::from_slice(body).map_err(|e| format!("body: not a JSON array of events: {e}"))?;
        return events
            .iter()
            .enumerate()
            .map(|(i, e)| match e {
                Value::Object(_) => Ok(serde_json::to_vec(e).expect("values serialize")),
                other => Err(format!("body[{i}]: an event must be a JSON object, got {other}")),
            })
            .collect();
    }
    let mut events = Vec::new();
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(_)) => events.push(line.to_vec()),
            Ok(other) => {
                return Err(format!("body line {}: an event must be a JSON object, got {other}", i + 1));
            }
            Err(e) => return Err(format!("body line {}: not JSON: {e}", i + 1)),
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn push_bodies_array_lines_and_gzip() {
        let events = push_events(br#"[{"a": 1}, {"b": 2}]"#, false).unwrap();
        assert_eq!(events, [br#"{"a":1}"#.to_vec(), br#"{"b":2}"#.to_vec()]);
        let events = push_events(b"{\"a\": 1}\r\n\n{\"b\":2}\n", false).unwrap();
        assert_eq!(events, [br#"{"a": 1}"#.to_vec(), br#"{"b":2}"#.to_vec()]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"a\": 1}\n").unwrap();
        assert_eq!(push_events(&gz.finish().unwrap(), true).unwrap().len(), 1);
        let err = push_events(b"{\"a\": 1}\nnope\n", false).unwrap_err();
        assert!(err.starts_with("body line 2: not JSON"), "{err}");
        let err = push_events(b"[1]", false).unwrap_err();
        assert!(err.starts_with("body[0]: an event must be a JSON object"), "{err}");
        assert!(push_events(b"\x1f\x8b junk", true).is_err());
    }
}
