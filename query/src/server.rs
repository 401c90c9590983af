//! Druid's query HTTP API: `POST /druid/v2` (native), `POST /druid/v2/sql` (SQL),
//! `GET /druid/v2/datasources[/<name>]` and `GET /status/health`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::QueryError;
use crate::engine::QueryEngine;
use crate::sql::SqlRequest;

/// The routes, over an engine. The stream daemon mounts the same router on its own port.
pub fn router(engine: QueryEngine) -> Router {
    Router::new()
        .route("/druid/v2", post(native))
        .route("/druid/v2/", post(native))
        .route("/druid/v2/sql", post(sql))
        .route("/druid/v2/sql/", post(sql))
        .route("/druid/v2/datasources", get(data_sources))
        .route("/druid/v2/datasources/", get(data_sources))
        .route("/druid/v2/datasources/{name}", get(data_source))
        .route("/status/health", get(|| async { axum::Json(true) }))
        .route("/status", get(|| async { axum::Json(json!({"version": env!("CARGO_PKG_VERSION")})) }))
        .with_state(engine)
}

/// An error as Druid writes it.
fn error_response(e: &QueryError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!(error = %e, "query failed");
    } else {
        tracing::debug!(error = %e, "query rejected");
    }
    (status, axum::Json(e.druid_body())).into_response()
}

fn json_response(value: &Value, pretty: bool) -> Response {
    let body = if pretty { serde_json::to_vec_pretty(value) } else { serde_json::to_vec(value) };
    match body {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => error_response(&QueryError::Execution(format!("cannot write the response: {e}"))),
    }
}

/// Parses a request body as JSON, naming the position of a syntax error.
fn parse_body(body: &[u8]) -> Result<Value, QueryError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(QueryError::InvalidInput("request body: empty; expected a JSON query".into()));
    }
    serde_json::from_slice(body)
        .map_err(|e| QueryError::InvalidInput(format!("request body: malformed JSON: {e}")))
}

async fn native(State(engine): State<QueryEngine>, RawQuery(params): RawQuery, body: Bytes) -> Response {
    let pretty = params.is_some_and(|p| p.split('&').any(|kv| kv == "pretty" || kv.starts_with("pretty=")));
    let result = async {
        let query = parse_body(&body)?;
        engine.native(&query).await
    }
    .await;
    match result {
        Ok(value) => json_response(&value, pretty),
        Err(e) => error_response(&e),
    }
}

async fn sql(State(engine): State<QueryEngine>, body: Bytes) -> Response {
    let result = async {
        let value = parse_body(&body)?;
        let request: SqlRequest = serde_path_to_error::deserialize(&value).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." { String::new() } else { format!("{path}: ") };
            QueryError::InvalidInput(format!("{at}{}", e.inner()))
        })?;
        let answer = engine.sql(&request).await?;
        Ok::<_, QueryError>(answer.encode(&request))
    }
    .await;
    match result {
        Ok((content_type, body)) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn data_sources(State(engine): State<QueryEngine>) -> Response {
    match engine.data_source_names().await {
        Ok(names) => json_response(&json!(names), false),
        Err(e) => error_response(&e),
    }
}

async fn data_source(State(engine): State<QueryEngine>, Path(name): Path<String>) -> Response {
    match engine.table(&name).await {
        Ok(table) => {
            let (dimensions, metrics) = table.columns();
            json_response(&json!({"dimensions": dimensions, "metrics": metrics}), false)
        }
        Err(QueryError::UnknownDataSource(_)) => {
            let e = QueryError::UnknownDataSource(name);
            (StatusCode::NOT_FOUND, axum::Json(e.druid_body())).into_response()
        }
        Err(e) => error_response(&e),
    }
}

/// Serves the API on a bound listener until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: QueryEngine,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(engine)).with_graceful_shutdown(shutdown).await
}
