//! Druid's query HTTP API: `POST /druid/v2` (native), `POST /druid/v2/sql` (SQL),
//! `GET /druid/v2/datasources[/<name>]` and `GET /status/health`; and the optional token every
//! braid daemon's API asks for.

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

/// The content type of Prometheus' text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

/// Requires `Authorization: Bearer <token>` (or Basic auth with the token as the password, as
/// pydruid and most HTTP clients send it) on every request except `GET /status`,
/// `/status/health` and `/metrics`, which health checks and Prometheus scrape without
/// credentials. No token, no check.
pub fn require_token(router: Router, token: Option<String>) -> Router {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return router;
    };
    let token: std::sync::Arc<str> = token.into();
    router.layer(axum::middleware::from_fn(move |request: axum::extract::Request, next: axum::middleware::Next| {
        let token = token.clone();
        async move {
            let open = matches!(request.uri().path(), "/status" | "/status/health" | "/metrics");
            let presented = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            if open || presented.is_some_and(|value| credentials_match(value, &token)) {
                return next.run(request).await;
            }
            let body = json!({
                "error": "Unauthorized",
                "errorMessage": "this braid requires a token: send \"Authorization: Bearer <token>\" or basic auth with the token as the password",
                "errorClass": "org.apache.druid.server.security.ForbiddenException",
            });
            (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], axum::Json(body)).into_response()
        }
    }))
}

fn credentials_match(value: &str, token: &str) -> bool {
    use base64::Engine;
    let presented = if let Some(bearer) = value.strip_prefix("Bearer ") {
        bearer.trim().to_string()
    } else if let Some(basic) = value.strip_prefix("Basic ") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(basic.trim()) else {
            return false;
        };
        let text = String::from_utf8_lossy(&decoded).into_owned();
        match text.split_once(':') {
            Some((_, password)) => password.to_string(),
            None => return false,
        }
    } else {
        return false;
    };
    // Compare every byte, so the time taken does not tell how much of a guess was right.
    presented.len() == token.len()
        && presented.bytes().zip(token.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
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

/// Serves the API on a bound listener until `shutdown` completes; with a token, every request
/// but the health check must carry it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: QueryEngine,
    auth_token: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics_engine = engine.clone();
    let app = router(engine).route(
        "/metrics",
        get(
            move || async move { ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], metrics_engine.metrics_text()) },
        ),
    );
    axum::serve(listener, require_token(app, auth_token)).with_graceful_shutdown(shutdown).await
}

/// Serves only `GET /status/health` and `GET /metrics` (the text `metrics` makes, on a blocking
/// thread, so it may ask another process), for daemons without a query API such as the batch
/// scheduler and the embedded broker.
pub async fn serve_status(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<dyn Fn() -> String + Send + Sync>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new().route("/status/health", get(|| async { axum::Json(true) })).route(
        "/metrics",
        get(move || async move {
            let text = tokio::task::spawn_blocking(move || metrics()).await.unwrap_or_default();
            ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], text)
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::credentials_match;

    #[test]
    fn bearer_and_basic_credentials() {
        assert!(credentials_match("Bearer s3cret", "s3cret"));
        assert!(!credentials_match("Bearer s3cre", "s3cret"));
        assert!(!credentials_match("Bearer s3cretX", "s3cret"));
        // "druid:s3cret" and "druid:nope"
        assert!(credentials_match("Basic ZHJ1aWQ6czNjcmV0", "s3cret"));
        assert!(!credentials_match("Basic ZHJ1aWQ6bm9wZQ==", "s3cret"));
        assert!(!credentials_match("Basic !!!", "s3cret"));
        assert!(!credentials_match("s3cret", "s3cret"));
    }
}
