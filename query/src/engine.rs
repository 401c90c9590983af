//! The query engine: knows the dataSources (catalogs in deep storage plus attached live
//! sources), keeps each catalog's state fresh, and turns a dataSource into a table snapshot for
//! native queries and SQL.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use common::catalog::{Catalog, CatalogState, Origin};
use common::storage::DeepStorage;
use common::time::Interval;
use datafusion::catalog::SchemaProvider;
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::config::SessionConfig;
use datafusion::prelude::SessionContext;
use layouts::DataSourceName;
use serde_json::Value;

use crate::QueryError;
use crate::cache::{DEFAULT_CACHE_BYTES, SegmentCache};
use crate::table::{DataSourceTable, LiveSource, TablePart};

/// How an engine runs.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Bound on decoded segment rows kept in memory.
    pub cache_bytes: usize,
    /// Parallelism of each query (DataFusion's target partitions).
    pub threads: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { cache_bytes: DEFAULT_CACHE_BYTES, threads }
    }
}

/// Answers queries over deep storage and live sources. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct QueryEngine {
    inner: Arc<EngineInner>,
}

#[derive(Debug)]
struct EngineInner {
    storage: DeepStorage,
    cache: Arc<SegmentCache>,
    catalogs: Mutex<HashMap<String, Arc<tokio::sync::Mutex<CatalogView>>>>,
    live: RwLock<BTreeMap<String, Arc<dyn LiveSource>>>,
    threads: usize,
    metrics: QueryMetrics,
}

/// Queries answered, failed and the time they took, as Druid's `query/count`,
/// `query/success/count`, `query/failed/count` and `query/time`.
#[derive(Debug, Default)]
struct QueryMetrics {
    succeeded: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
    micros: std::sync::atomic::AtomicU64,
}

impl QueryMetrics {
    fn record<T, E>(&self, started: std::time::Instant, result: &Result<T, E>) {
        use std::sync::atomic::Ordering::Relaxed;
        self.micros.fetch_add(started.elapsed().as_micros() as u64, Relaxed);
        if result.is_ok() { &self.succeeded } else { &self.failed }.fetch_add(1, Relaxed);
    }
}

/// One dataSource's catalog and the state last read from it.
#[derive(Debug)]
struct CatalogView {
    catalog: Catalog,
    state: CatalogState,
}

impl QueryEngine {
    /// An engine over a deep storage.
    pub fn new(storage: DeepStorage, options: EngineOptions) -> Self {
        let cache = Arc::new(SegmentCache::new(storage.clone(), options.cache_bytes));
        Self {
            inner: Arc::new(EngineInner {
                storage,
                cache,
                catalogs: Mutex::new(HashMap::new()),
                live: RwLock::new(BTreeMap::new()),
                threads: options.threads.max(1),
                metrics: QueryMetrics::default(),
            }),
        }
    }

    /// Adds a source of in-memory rows to every query of `data_source` (replacing any
    /// earlier one).
    pub fn attach_live(&self, data_source: &str, source: Arc<dyn LiveSource>) {
        self.live_sources().insert(data_source.to_string(), source);
    }

    /// Stops adding a live source's rows.
    pub fn detach_live(&self, data_source: &str) {
        self.live_sources().remove(data_source);
    }

    fn live_sources(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<dyn LiveSource>>> {
        self.inner.live.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn live_source(&self, data_source: &str) -> Option<Arc<dyn LiveSource>> {
        let live = self.inner.live.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        live.get(data_source).cloned()
    }

    /// The segment cache (for its statistics).
    pub fn cache(&self) -> &SegmentCache {
        &self.inner.cache
    }

    /// Every dataSource with a catalog in deep storage or a live source, sorted.
    pub async fn data_source_names(&self) -> Result<Vec<String>, QueryError> {
        let stored = Catalog::data_sources(&self.inner.storage)
            .await
            .map_err(|e| QueryError::Storage(format!("cannot list dataSources: {e}")))?;
        let mut names: BTreeSet<String> = stored.iter().map(|n| n.as_str().to_string()).collect();
        let live = self.inner.live.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        names.extend(live.keys().cloned());
        Ok(names.into_iter().collect())
    }

    /// A snapshot of one dataSource: its visible segments (catalog re-read first, so commits
    /// made since the last query are seen) and its live rows.
    pub async fn table(&self, data_source: &str) -> Result<DataSourceTable, QueryError> {
        self.table_within(data_source, None).await
    }

    /// [`QueryEngine::table`] with only the live rows whose time lies in one of `within`, for a
    /// query that reads nothing else: rows held in memory are turned into Arrow on every query,
    /// so a query of the last minute should not pay for the rest of the day.
    pub async fn table_within(
        &self,
        data_source: &str,
        within: Option<&[Interval]>,
    ) -> Result<DataSourceTable, QueryError> {
        let Ok(name) = DataSourceName::new(data_source) else {
            return Err(QueryError::UnknownDataSource(data_source.to_string()));
        };
        let view = self.catalog_view(&name).await?;
        let view = view.lock().await;
        // After the catalog: the live rows are those this catalog state does not hold.
        let mut live = self.live_source(data_source).map(|source| source.snapshot(&view.state, within));
        if view.state.seq == 0 && live.is_none() {
            return Err(QueryError::UnknownDataSource(data_source.to_string()));
        }
        let timeline = view.state.timeline();
        if let Some(live) = &mut live {
            // Time a batch version serves is the batch's alone: the stream stops indexing it,
            // but rows it folded before the batch landed would otherwise count twice.
            let batch_owned: Vec<Interval> = timeline
                .chunks()
                .iter()
                .filter(|chunk| chunk.segments.iter().any(|s| s.origin == Origin::Batch))
                .map(|chunk| chunk.interval)
                .collect();
            live.clip_out(&batch_owned).map_err(|e| QueryError::Execution(e.strip_backtrace()))?;
        }
        let metas = timeline.chunks().iter().flat_map(|chunk| {
            chunk.segments.iter().filter_map(move |segment| {
                let path = segment.path.clone()?;
                Some(async move {
                    let meta = self.inner.cache.meta(&path, Some(segment.bytes)).await?;
                    Ok::<_, DataFusionError>(TablePart {
                        record: segment.clone(),
                        serves: chunk.interval,
                        meta,
                    })
                })
            })
        });
        let parts = futures::future::try_join_all(metas)
            .await
            .map_err(|e| QueryError::Storage(e.strip_backtrace()))?;
        Ok(DataSourceTable::new(data_source, parts, live, Arc::clone(&self.inner.cache), self.inner.threads))
    }

    /// The catalog view of a dataSource, refreshed from deep storage.
    async fn catalog_view(
        &self,
        name: &DataSourceName,
    ) -> Result<Arc<tokio::sync::Mutex<CatalogView>>, QueryError> {
        let known = {
            let catalogs = self.inner.catalogs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            catalogs.get(name.as_str()).cloned()
        };
        let storage_error = |e: &dyn std::fmt::Display| {
            QueryError::Storage(format!("cannot read the catalog of dataSource '{}': {e}", name.as_str()))
        };
        if let Some(view) = known {
            {
                let mut guard = view.lock().await;
                let CatalogView { catalog, state } = &mut *guard;
                catalog.refresh(state).await.map_err(|e| storage_error(&e))?;
            }
            return Ok(view);
        }
        let catalog = Catalog::new(self.inner.storage.clone(), name.clone());
        let state = catalog.load().await.map_err(|e| storage_error(&e))?;
        let exists = state.seq > 0;
        let view = Arc::new(tokio::sync::Mutex::new(CatalogView { catalog, state }));
        // Only dataSources that exist are remembered, so queries naming random tables cost
        // nothing to keep.
        if exists {
            let mut catalogs = self.inner.catalogs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            catalogs.entry(name.as_str().to_string()).or_insert_with(|| Arc::clone(&view));
        }
        Ok(view)
    }

    /// A DataFusion session for one query: threads as configured, nothing registered.
    pub fn session(&self) -> SessionContext {
        SessionContext::new_with_config(self.session_config())
    }

    fn session_config(&self) -> SessionConfig {
        SessionConfig::new().with_target_partitions(self.inner.threads).with_information_schema(false)
    }

    /// The dataSources as a DataFusion schema: each table is snapshotted when a statement
    /// names it.
    pub async fn schema_provider(&self) -> Result<Arc<dyn SchemaProvider>, QueryError> {
        let names = self.data_source_names().await?;
        Ok(Arc::new(DruidSchema { engine: self.clone(), names }))
    }

    /// Runs a Druid native query (its JSON body) and returns Druid's JSON response.
    pub async fn native(&self, query: &Value) -> Result<Value, QueryError> {
        let started = std::time::Instant::now();
        let result = crate::native::run(self, query).await;
        self.inner.metrics.record(started, &result);
        result
    }

    /// Runs a Druid SQL request.
    pub async fn sql(&self, request: &crate::sql::SqlRequest) -> Result<crate::sql::SqlAnswer, QueryError> {
        let started = std::time::Instant::now();
        let result = async {
            let ctx = crate::sql::new_session(self.schema_provider().await?, self.inner.threads);
            crate::sql::execute(&ctx, request).await
        }
        .await;
        self.inner.metrics.record(started, &result);
        result
    }

    /// The query metrics in Prometheus text format.
    pub fn metrics_text(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let m = &self.inner.metrics;
        let (succeeded, failed) = (m.succeeded.load(Relaxed), m.failed.load(Relaxed));
        let seconds = m.micros.load(Relaxed) as f64 / 1e6;
        let mut out = String::new();
        for (name, help, kind, value) in [
            (
                "query_count_total",
                "Queries received (Druid query/count).",
                "counter",
                (succeeded + failed) as f64,
            ),
            (
                "query_success_count_total",
                "Queries answered (Druid query/success/count).",
                "counter",
                succeeded as f64,
            ),
            (
                "query_failed_count_total",
                "Queries that failed (Druid query/failed/count).",
                "counter",
                failed as f64,
            ),
            (
                "query_time_seconds_total",
                "Time spent answering queries (Druid query/time).",
                "counter",
                seconds,
            ),
        ] {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
        }
        out
    }
}

/// The `druid` schema SQL sees: one table per dataSource.
#[derive(Debug)]
struct DruidSchema {
    engine: QueryEngine,
    names: Vec<String>,
}

#[async_trait]
impl SchemaProvider for DruidSchema {
    fn table_names(&self) -> Vec<String> {
        self.names.clone()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if !self.table_exist(name) {
            return Ok(None);
        }
        match self.engine.table(name).await {
            Ok(table) => Ok(Some(Arc::new(table))),
            Err(QueryError::UnknownDataSource(_)) => Ok(None),
            Err(e) => Err(DataFusionError::External(Box::new(e))),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

#[cfg(test)]
mod tests;
