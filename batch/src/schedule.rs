//! `braid batch schedule`: reindex jobs on cron expressions.
//!
//! Each run of a job finds the closed segment intervals of its lookback window (interval end
//! plus the settle delay already past) whose raw files changed since their batch version was
//! built, or that were never batch-indexed, and reindexes them oldest first, at most
//! `max_concurrent` at a time over all jobs. An interval is worked on only under its lease, so
//! two schedulers on the same deep storage never run it at once. Deep-storage failures are
//! retried with backoff; a user error (a corrupt raw file, say) fails that interval with its
//! reason and the run moves on. Every run is recorded in the history. After downtime, missed
//! runs are caught up once, not replayed one by one.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::catalog::{Catalog, CatalogState, Fingerprint, now_millis};
use common::spec::{DataSourceSpec, load_specs};
use common::storage::DeepStorage;
use common::time::{Interval, Millis, Period, format_iso};
use futures::StreamExt;
use layouts::RawLayout;
use serde::Deserialize;
use tokio::sync::{Semaphore, watch};
use tracing::{error, info, warn};

use crate::cleanup::{CleanupOptions, cleanup};
use crate::history::{IntervalOutcome, IntervalRun, RunOutcome, RunRecord, last_scheduled, record_run};
use crate::lease::{Acquired, Lease, process_identity};
use crate::reindex::{ReindexOptions, current_fingerprints, reindex};
use crate::{BatchError, ErrorDomain};

/// The lookback when a job does not say: two days, as in Druid's docs' hourly-job examples.
pub const DEFAULT_LOOKBACK: &str = "P2D";
/// The settle delay when a job does not say.
pub const DEFAULT_SETTLE: &str = "PT1H";

/// One scheduled job over one dataSource.
#[derive(Debug, Clone)]
pub struct Job {
    /// Its name in the history.
    pub name: String,
    /// The dataSource's spec.
    pub spec: DataSourceSpec,
    /// The spec reindexing uses, when it differs (a coarser queryGranularity for older data).
    pub reindex_spec: Option<DataSourceSpec>,
    /// When it runs.
    pub cron: cron::Schedule,
    /// How far back it looks for intervals to reindex.
    pub lookback: Period,
    /// How long after an interval ends before it counts as closed.
    pub settle: Period,
}

impl Job {
    /// The spec reindexing uses.
    pub fn reindexing_spec(&self) -> &DataSourceSpec {
        self.reindex_spec.as_ref().unwrap_or(&self.spec)
    }

    /// The first fire time strictly after `t`.
    pub fn next_fire_after(&self, t: Millis) -> Option<Millis> {
        let t = DateTime::<Utc>::from_timestamp_millis(t)?;
        self.cron.after(&t).next().map(|next| next.timestamp_millis())
    }
}

/// Parses a cron expression, with an error that says what braid's cron looks like.
pub fn parse_cron(expression: &str) -> Result<cron::Schedule, BatchError> {
    cron::Schedule::from_str(expression.trim()).map_err(|e| {
        BatchError::InvalidRequest(format!(
            "cron expression {expression:?}: {e}; it has six or seven fields: seconds minutes hours \
             day-of-month month day-of-week [year], e.g. \"0 15 * * * *\" for minute 15 of every hour"
        ))
    })
}

/// A job as a jobs file (TOML `[[job]]` tables, or JSON `{"jobs": [...]}` or `[...]`) writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct JobDefinition {
    /// Name in the history; defaults to the dataSource name.
    #[serde(default)]
    pub name: Option<String>,
    /// The spec file (relative paths are relative to the jobs file).
    pub spec: PathBuf,
    /// Which dataSource of the spec file, when it holds several (default: all of them).
    #[serde(default, alias = "dataSource")]
    pub data_source: Option<String>,
    /// Cron expression with a seconds field.
    pub cron: String,
    /// ISO 8601 period, default P2D.
    #[serde(default)]
    pub lookback: Option<String>,
    /// ISO 8601 period, default PT1H.
    #[serde(default)]
    pub settle: Option<String>,
    /// Another spec file to reindex with.
    #[serde(default, alias = "reindexSpec")]
    pub reindex_spec: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobTables {
    #[serde(alias = "jobs")]
    job: Vec<JobDefinition>,
}

/// Reads a jobs file (`.toml`, or JSON otherwise) into jobs, loading every spec it names.
pub fn load_jobs_file(path: &Path) -> Result<Vec<Job>, BatchError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BatchError::Input { path: path.display().to_string(), message: e.to_string() })?;
    let bad = |message: String| BatchError::Input { path: path.display().to_string(), message };
    let definitions: Vec<JobDefinition> = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"))
    {
        toml::from_str::<JobTables>(&text).map_err(|e| bad(e.to_string()))?.job
    } else {
        let shape = || "a jobs file is JSON {\"jobs\": [...]} or [...], or a .toml file with [[job]] tables";
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("{e} ({})", shape())))?;
        let list = match value {
            serde_json::Value::Object(mut object) => {
                object.remove("jobs").ok_or_else(|| bad(format!("no \"jobs\" list ({})", shape())))?
            }
            list => list,
        };
        serde_json::from_value(list).map_err(|e| bad(e.to_string()))?
    };
    if definitions.is_empty() {
        return Err(bad("no jobs in the file".into()));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut jobs = Vec::new();
    for definition in definitions {
        jobs.extend(jobs_from_definition(&definition, base)?);
    }
    Ok(jobs)
}

/// The jobs one definition describes: one per dataSource of its spec file (or the one named).
pub fn jobs_from_definition(definition: &JobDefinition, base: &Path) -> Result<Vec<Job>, BatchError> {
    let specs = read_specs(&base.join(&definition.spec))?;
    let reindex_specs = definition.reindex_spec.as_ref().map(|p| read_specs(&base.join(p))).transpose()?;
    jobs_with_specs(definition, specs, reindex_specs)
}

/// The jobs of a definition whose specs are already loaded (`definition.spec` and
/// `reindex_spec` then only name them in errors).
pub fn jobs_with_specs(
    definition: &JobDefinition,
    specs: Vec<DataSourceSpec>,
    reindex_specs: Option<Vec<DataSourceSpec>>,
) -> Result<Vec<Job>, BatchError> {
    let cron = parse_cron(&definition.cron)?;
    let period = |what: &str, value: Option<&str>, default: &str| {
        let value = value.unwrap_or(default);
        let period = Period::parse(value).map_err(|e| BatchError::InvalidRequest(format!("{what}: {e}")))?;
        if period.subtract_from(0) > 0 {
            return Err(BatchError::InvalidRequest(format!("{what} {value:?} must not be negative")));
        }
        Ok(period)
    };
    let lookback = period("lookback", definition.lookback.as_deref(), DEFAULT_LOOKBACK)?;
    let settle = period("settle", definition.settle.as_deref(), DEFAULT_SETTLE)?;
    if lookback.subtract_from(0) == 0 {
        return Err(BatchError::InvalidRequest("lookback must be longer than zero".into()));
    }
    let chosen: Vec<DataSourceSpec> = match &definition.data_source {
        Some(name) => {
            let spec = specs.iter().find(|s| s.data_source.as_str() == name).ok_or_else(|| {
                BatchError::InvalidRequest(format!(
                    "spec {} has no dataSource {name:?}",
                    definition.spec.display()
                ))
            })?;
            vec![spec.clone()]
        }
        None => specs,
    };
    chosen
        .into_iter()
        .map(|spec| {
            let reindex_spec = match &reindex_specs {
                None => None,
                Some(list) => Some(
                    list.iter().find(|s| s.data_source == spec.data_source).cloned().ok_or_else(|| {
                        BatchError::InvalidRequest(format!(
                            "reindex spec {} has no dataSource {:?}",
                            definition.reindex_spec.as_deref().unwrap_or(Path::new("")).display(),
                            spec.data_source.as_str()
                        ))
                    })?,
                ),
            };
            Ok(Job {
                name: definition.name.clone().unwrap_or_else(|| spec.data_source.to_string()),
                spec,
                reindex_spec,
                cron: cron.clone(),
                lookback,
                settle,
            })
        })
        .collect()
}

fn read_specs(path: &Path) -> Result<Vec<DataSourceSpec>, BatchError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BatchError::Input { path: path.display().to_string(), message: e.to_string() })?;
    let loaded = load_specs(&text, &path.display().to_string())
        .map_err(|e| BatchError::InvalidRequest(e.to_string()))?;
    Ok(loaded.specs)
}

/// An interval a run will reindex, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInterval {
    /// The segment interval.
    pub interval: Interval,
    /// Why.
    pub reason: String,
}

/// The segment intervals of the lookback window that are closed at `now` and whose raw files
/// (or the reindexing spec) differ from what their batch version was built from, oldest first.
pub async fn pending_intervals(
    storage: &DeepStorage,
    job: &Job,
    layout: &RawLayout,
    state: &CatalogState,
    now: Millis,
) -> Result<Vec<PendingInterval>, BatchError> {
    let spec = job.reindexing_spec();
    let granularity = spec.granularity.segment;
    let start = granularity.truncate(job.lookback.subtract_from(now));
    let end = granularity.truncate(job.settle.subtract_from(now));
    if start >= end {
        return Ok(Vec::new());
    }
    let window = Interval { start, end };
    let current = current_fingerprints(storage, spec, layout, window, state).await?;
    Ok(current
        .iter()
        .filter_map(|fp| {
            let reason = change_reason(fp, state.fingerprints.get(&fp.interval.to_string()))?;
            Some(PendingInterval { interval: fp.interval, reason })
        })
        .collect())
}

/// Why an interval needs a new batch version, or none.
fn change_reason(current: &Fingerprint, recorded: Option<&Fingerprint>) -> Option<String> {
    match recorded {
        None if current.files > 0 => {
            Some(format!("never batch-indexed ({} raw files, {} bytes)", current.files, current.bytes))
        }
        // Nothing to read and nothing built: leave whatever the stream wrote alone rather than
        // hide it under an empty version (the raw archive may live elsewhere).
        None => None,
        Some(recorded) if recorded.digest != current.digest => Some(format!(
            "raw files changed ({} files, {} bytes; version {} read {} files, {} bytes)",
            current.files, current.bytes, recorded.version, recorded.files, recorded.bytes
        )),
        Some(recorded) if recorded.spec != current.spec => Some(format!(
            "the reindexing spec differs from the one version {} was built with",
            recorded.version
        )),
        Some(_) => None,
    }
}

/// How the scheduler works.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Where raw files live.
    pub raw_layout: RawLayout,
    /// Reindex jobs at once, over all jobs.
    pub max_concurrent: usize,
    /// Worker threads of each reindex.
    pub threads: usize,
    /// Retries of an interval after an external failure.
    pub retries: u32,
    /// Wait before the first retry; doubles each time, at most a minute.
    pub first_backoff: Duration,
    /// How long a lease protects an interval without renewal.
    pub lease_ttl: Duration,
    /// Cleanup after each run, if set.
    pub cleanup: Option<CleanupOptions>,
}

impl SchedulerOptions {
    /// Defaults: one reindex at a time on every core, 5 retries from 1 s, 10-minute leases,
    /// no cleanup.
    pub fn new(raw_layout: RawLayout) -> Self {
        Self {
            raw_layout,
            max_concurrent: 1,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            retries: 5,
            first_backoff: Duration::from_secs(1),
            lease_ttl: Duration::from_secs(600),
            cleanup: None,
        }
    }
}

/// Runs jobs on their schedules.
#[derive(Debug, Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    storage: DeepStorage,
    jobs: Vec<Job>,
    options: SchedulerOptions,
    identity: String,
    permits: Semaphore,
    metrics: std::sync::Mutex<SchedulerMetrics>,
}

/// What the scheduler has done since it started.
#[derive(Debug, Default)]
struct SchedulerMetrics {
    runs: std::collections::BTreeMap<&'static str, u64>,
    intervals: std::collections::BTreeMap<&'static str, u64>,
    events: u64,
    rows: u64,
    last_run_end: Option<Millis>,
}

impl Scheduler {
    /// A scheduler for `jobs`.
    pub fn new(storage: DeepStorage, jobs: Vec<Job>, options: SchedulerOptions) -> Self {
        let permits = Semaphore::new(options.max_concurrent.max(1));
        let metrics = std::sync::Mutex::new(SchedulerMetrics::default());
        Self {
            inner: Arc::new(Inner { storage, jobs, options, identity: process_identity(), permits, metrics }),
        }
    }

    /// Runs, intervals by outcome, events and rows since start, in Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let m = self.inner.metrics.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str(
            "# HELP batch_runs_total Scheduler runs, by outcome.\n# TYPE batch_runs_total counter\n",
        );
        for outcome in ["succeeded", "partial", "failed", "idle", "cancelled"] {
            let n = m.runs.get(outcome).copied().unwrap_or(0);
            out.push_str(&format!("batch_runs_total{{outcome=\"{outcome}\"}} {n}\n"));
        }
        out.push_str("# HELP batch_intervals_total Intervals the scheduler chose, by outcome.\n# TYPE batch_intervals_total counter\n");
        for outcome in ["published", "failed", "skipped", "cancelled"] {
            let n = m.intervals.get(outcome).copied().unwrap_or(0);
            out.push_str(&format!("batch_intervals_total{{outcome=\"{outcome}\"}} {n}\n"));
        }
        out.push_str(&format!(
            "# HELP batch_events_processed_total Events the scheduler's reindexes read.\n# TYPE batch_events_processed_total counter\nbatch_events_processed_total {}\n\
             # HELP batch_rows_output_total Rollup rows the scheduler's reindexes wrote.\n# TYPE batch_rows_output_total counter\nbatch_rows_output_total {}\n",
            m.events, m.rows
        ));
        if let Some(end) = m.last_run_end {
            out.push_str(&format!(
                "# HELP batch_last_run_end_seconds When the last run ended, Unix seconds.\n# TYPE batch_last_run_end_seconds gauge\nbatch_last_run_end_seconds {}\n",
                end as f64 / 1000.0
            ));
        }
        out
    }

    fn count_run(&self, record: &RunRecord) {
        let mut m = self.inner.metrics.lock().unwrap_or_else(|p| p.into_inner());
        *m.runs.entry(record.outcome.name()).or_default() += 1;
        for interval in &record.intervals {
            *m.intervals.entry(interval.outcome.name()).or_default() += 1;
        }
        m.events += record.events;
        m.rows += record.rows;
        m.last_run_end = Some(now_millis());
    }

    /// The jobs.
    pub fn jobs(&self) -> &[Job] {
        &self.inner.jobs
    }

    /// Runs every job on its schedule until `shutdown` completes; a run in progress is
    /// cancelled (its interval leases released, the run recorded as cancelled).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop, stopped) = watch::channel(false);
        let loops: Vec<_> = (0..self.inner.jobs.len())
            .map(|index| {
                let scheduler = self.clone();
                let stopped = stopped.clone();
                tokio::spawn(async move { scheduler.job_loop(index, stopped).await })
            })
            .collect();
        shutdown.await;
        let _ = stop.send(true);
        for handle in loops {
            if let Err(e) = handle.await {
                error!(error = %e, "A job loop panicked.");
            }
        }
    }

    async fn job_loop(&self, index: usize, mut stopped: watch::Receiver<bool>) {
        let job = &self.inner.jobs[index];
        let mut last = match last_scheduled(&self.inner.storage, &job.spec.data_source, &job.name).await {
            Ok(last) => last,
            Err(e) => {
                warn!(job = job.name, error = %e, "Cannot read the job's history; waiting for its next time.");
                None
            }
        };
        loop {
            let now = now_millis();
            let Some(due) = job.next_fire_after(last.unwrap_or(now)) else {
                warn!(job = job.name, "The cron expression has no future times; the job stops.");
                return;
            };
            // A fire time already past means runs were missed (downtime, or a run that
            // outlasted its period): one run now catches them all up.
            let scheduled = if due <= now {
                info!(job = job.name, missed = %format_iso(due), "Catching up missed runs with one run now.");
                now
            } else {
                let wait = Duration::from_millis((due - now) as u64);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = until_stopped(&mut stopped) => return,
                }
                due
            };
            let record = self.run_job(index, scheduled, stopped.clone()).await;
            last = Some(scheduled);
            if let Err(e) = record_run(&self.inner.storage, &record).await {
                warn!(job = job.name, error = %e, "Could not record the run in the history.");
            }
            if *stopped.borrow() {
                return;
            }
            if let Some(options) = &self.inner.options.cleanup {
                let layout = &self.inner.options.raw_layout;
                if let Err(e) = cleanup(&self.inner.storage, &job.spec.data_source, layout, options).await {
                    warn!(job = job.name, error = %e, "Cleanup failed; the next run tries again.");
                }
            }
        }
    }

    /// One run of job `index` for the cron time `scheduled`: choose the intervals, reindex
    /// them, and return the record (the caller stores it).
    pub async fn run_job(
        &self,
        index: usize,
        scheduled: Millis,
        stopped: watch::Receiver<bool>,
    ) -> RunRecord {
        let job = &self.inner.jobs[index];
        let started = now_millis();
        let mut record = RunRecord {
            run_id: uuid::Uuid::new_v4().simple().to_string()[..16].to_string(),
            job: job.name.clone(),
            data_source: job.spec.data_source.to_string(),
            scheduled: format_iso(scheduled),
            started: format_iso(started),
            ended: String::new(),
            outcome: RunOutcome::Idle,
            intervals: Vec::new(),
            events: 0,
            rows: 0,
            error: None,
            scheduler: self.inner.identity.clone(),
        };
        match self.choose(job, started).await {
            Err(e) => {
                warn!(job = job.name, error = %e, "The run could not choose its intervals.");
                record.error = Some(e.to_string());
                record.outcome = RunOutcome::Failed;
            }
            Ok(pending) => {
                if !pending.is_empty() {
                    info!(job = job.name, intervals = pending.len(), "Reindexing changed intervals.");
                }
                let runs: Vec<IntervalRun> = futures::stream::iter(pending)
                    .map(|p| self.run_interval(job, p, stopped.clone()))
                    .buffered(self.inner.options.max_concurrent.max(1))
                    .collect()
                    .await;
                record.outcome = outcome_of(&runs);
                record.events = runs.iter().map(|r| r.events).sum();
                record.rows = runs.iter().map(|r| r.rows).sum();
                record.intervals = runs;
            }
        }
        record.ended = format_iso(now_millis());
        self.count_run(&record);
        info!(
            job = job.name,
            outcome = record.outcome.name(),
            intervals = record.intervals.len(),
            "Run finished."
        );
        record
    }

    async fn choose(&self, job: &Job, now: Millis) -> Result<Vec<PendingInterval>, BatchError> {
        let catalog = Catalog::new(self.inner.storage.clone(), job.spec.data_source.clone());
        let state = catalog.load().await?;
        pending_intervals(&self.inner.storage, job, &self.inner.options.raw_layout, &state, now).await
    }

    async fn run_interval(
        &self,
        job: &Job,
        pending: PendingInterval,
        mut stopped: watch::Receiver<bool>,
    ) -> IntervalRun {
        let started = Instant::now();
        let mut run = IntervalRun {
            interval: pending.interval,
            reason: pending.reason,
            outcome: IntervalOutcome::Skipped,
            version: None,
            events: 0,
            rows: 0,
            rejected: 0,
            attempts: 0,
            error: None,
            seconds: 0.0,
        };
        let _permit = tokio::select! {
            permit = self.inner.permits.acquire() => permit.expect("the semaphore is never closed"),
            _ = until_stopped(&mut stopped) => {
                run.outcome = IntervalOutcome::Cancelled;
                return run;
            }
        };
        let result = self.reindex_under_lease(job, &mut run, &mut stopped).await;
        if let Err(e) = result {
            run.outcome = IntervalOutcome::Failed;
            run.error = Some(e.to_string());
            warn!(job = job.name, interval = %run.interval, error = %e, "The interval's reindex failed.");
        }
        run.seconds = started.elapsed().as_secs_f64();
        run
    }

    async fn reindex_under_lease(
        &self,
        job: &Job,
        run: &mut IntervalRun,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<(), BatchError> {
        let inner = &self.inner;
        let ds = &job.spec.data_source;
        let holder = format!("{} job {}", inner.identity, job.name);
        let mut lease =
            match Lease::acquire(&inner.storage, ds, run.interval, &holder, inner.options.lease_ttl).await? {
                Acquired::Held(lease) => lease,
                Acquired::Busy(other) => {
                    run.error =
                        Some(format!("leased by {} until {}", other.holder, format_iso(other.expires)));
                    return Ok(());
                }
            };
        // Another scheduler may have finished this interval between our choice and our lease.
        let catalog = Catalog::new(inner.storage.clone(), ds.clone());
        let still_needed = async {
            let state = catalog.load().await?;
            let window = run.interval;
            let current = current_fingerprints(
                &inner.storage,
                job.reindexing_spec(),
                &inner.options.raw_layout,
                window,
                &state,
            )
            .await?;
            Ok::<_, BatchError>(
                current
                    .iter()
                    .any(|fp| change_reason(fp, state.fingerprints.get(&fp.interval.to_string())).is_some()),
            )
        };
        match still_needed.await {
            Ok(true) => {}
            Ok(false) => {
                run.error = Some("already up to date (reindexed meanwhile)".into());
                lease.release().await;
                return Ok(());
            }
            Err(e) => {
                lease.release().await;
                return Err(e);
            }
        }
        let outcome = self.reindex_with_retries(job, run, &mut lease, stopped).await;
        lease.release().await;
        outcome
    }

    async fn reindex_with_retries(
        &self,
        job: &Job,
        run: &mut IntervalRun,
        lease: &mut Lease,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<(), BatchError> {
        let options = &self.inner.options;
        let mut backoff = options.first_backoff;
        loop {
            run.attempts += 1;
            let reindex_options = ReindexOptions {
                interval: run.interval,
                raw_layout: options.raw_layout.clone(),
                threads: options.threads,
                progress: false,
            };
            let work = reindex(&self.inner.storage, job.reindexing_spec(), reindex_options);
            tokio::pin!(work);
            let mut renewals = tokio::time::interval_at(
                tokio::time::Instant::now() + lease.renew_every(),
                lease.renew_every().max(Duration::from_millis(10)),
            );
            let result = loop {
                tokio::select! {
                    result = &mut work => break Some(result),
                    _ = renewals.tick() => match lease.renew().await {
                        Ok(true) => {}
                        Ok(false) => warn!(interval = %run.interval, "The interval's lease was taken over; the catalog's commit check still keeps one version."),
                        Err(e) => warn!(interval = %run.interval, error = %e, "Could not renew the interval's lease."),
                    },
                    _ = until_stopped(stopped) => break None,
                }
            };
            let Some(result) = result else {
                run.outcome = IntervalOutcome::Cancelled;
                return Ok(());
            };
            match result {
                Ok(report) => {
                    run.outcome = IntervalOutcome::Published;
                    run.version = Some(report.version);
                    run.events = report.events;
                    run.rows = report.rows;
                    run.rejected = report.rejected;
                    run.error = None;
                    return Ok(());
                }
                Err(e) if e.domain() == ErrorDomain::External && run.attempts <= options.retries => {
                    warn!(interval = %run.interval, attempt = run.attempts, error = %e, retry_in = ?backoff, "Reindex failed; retrying.");
                    run.error = Some(e.to_string());
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = until_stopped(stopped) => {
                            run.outcome = IntervalOutcome::Cancelled;
                            return Ok(());
                        }
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Completes once the scheduler is told to stop (or its stop signal is gone).
async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

fn outcome_of(runs: &[IntervalRun]) -> RunOutcome {
    let count = |outcome| runs.iter().filter(|r| r.outcome == outcome).count();
    let (published, failed) = (count(IntervalOutcome::Published), count(IntervalOutcome::Failed));
    if count(IntervalOutcome::Cancelled) > 0 {
        RunOutcome::Cancelled
    } else if failed > 0 && published > 0 {
        RunOutcome::Partial
    } else if failed > 0 {
        RunOutcome::Failed
    } else if published > 0 {
        RunOutcome::Succeeded
    } else {
        RunOutcome::Idle
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use bytes::Bytes;
    use common::time::{Granularity, HOUR_MS};
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use layouts::{DataSourceName, RawFileName};
    use serde_json::json;

    use super::*;
    use crate::history::read_history;

    fn spec(query_granularity: &str) -> DataSourceSpec {
        let spec = json!({
            "type": "kafka",
            "spec": {
                "dataSchema": {
                    "dataSource": "wiki",
                    "timestampSpec": {"column": "ts", "format": "millis"},
                    "dimensionsSpec": {"dimensions": ["page"]},
                    "metricsSpec": [{"type": "count", "name": "count"}],
                    "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": query_granularity}
                }
            }
        });
        load_specs(&spec.to_string(), "test").unwrap().specs.remove(0)
    }

    fn job(cron: &str) -> Job {
        Job {
            name: "hourly".into(),
            spec: spec("none"),
            reindex_spec: None,
            cron: parse_cron(cron).unwrap(),
            lookback: Period::parse("P1D").unwrap(),
            settle: Period::parse("PT0S").unwrap(),
        }
    }

    fn layout() -> RawLayout {
        RawLayout::parse(RawLayout::DEFAULT_TEMPLATE).unwrap()
    }

    fn scheduler(storage: &DeepStorage, jobs: Vec<Job>) -> Scheduler {
        let mut options = SchedulerOptions::new(layout());
        options.first_backoff = Duration::from_millis(1);
        options.threads = 1;
        Scheduler::new(storage.clone(), jobs, options)
    }

    /// The start of the hour `hours_ago` hours before the current one.
    fn hour_start(hours_ago: i64) -> Millis {
        Granularity::Hour.truncate(now_millis()) - hours_ago * HOUR_MS
    }

    async fn put_raw_file(storage: &DeepStorage, hour: Millis, name: &str, events: usize) {
        let text: String =
            (0..events).map(|i| format!("{{\"ts\": {}, \"page\": \"p{i}\"}}\n", hour + i as i64)).collect();
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(text.as_bytes()).unwrap();
        let path = layout().hour_file(
            &DataSourceName::new("wiki").unwrap(),
            hour,
            &RawFileName::Foreign(name.into()),
        );
        storage.put(&path, Bytes::from(encoder.finish().unwrap())).await.unwrap();
    }

    fn never_stopped() -> watch::Receiver<bool> {
        let (stop, stopped) = watch::channel(false);
        std::mem::forget(stop);
        stopped
    }

    fn outcomes(record: &RunRecord) -> Vec<(Millis, IntervalOutcome)> {
        record.intervals.iter().map(|i| (i.interval.start, i.outcome)).collect()
    }

    #[tokio::test]
    async fn runs_reindex_closed_changed_intervals_oldest_first_and_then_nothing() {
        let storage = DeepStorage::open("memory://").unwrap();
        put_raw_file(&storage, hour_start(3), "a.json.gz", 3).await;
        put_raw_file(&storage, hour_start(2), "a.json.gz", 2).await;
        // The current hour is not closed yet; older than the lookback is out of the window.
        put_raw_file(&storage, hour_start(0), "a.json.gz", 1).await;
        put_raw_file(&storage, hour_start(30), "a.json.gz", 1).await;
        let scheduler = scheduler(&storage, vec![job("0 0 * * * *")]);

        let first = scheduler.run_job(0, now_millis(), never_stopped()).await;
        assert_eq!(first.outcome, RunOutcome::Succeeded, "{first:?}");
        let metrics = scheduler.metrics_text();
        assert!(metrics.contains("batch_runs_total{outcome=\"succeeded\"} 1\n"), "{metrics}");
        assert!(metrics.contains("batch_intervals_total{outcome=\"published\"} 2\n"), "{metrics}");
        assert!(metrics.contains("batch_events_processed_total 5\n"), "{metrics}");
        assert_eq!(
            outcomes(&first),
            [(hour_start(3), IntervalOutcome::Published), (hour_start(2), IntervalOutcome::Published)]
        );
        assert!(first.intervals[0].reason.starts_with("never batch-indexed (1 raw files"), "{first:?}");
        assert_eq!((first.events, first.rows), (5, 5));
        assert_eq!(first.intervals[0].attempts, 1);

        let second = scheduler.run_job(0, now_millis(), never_stopped()).await;
        assert_eq!((second.outcome, second.intervals.len()), (RunOutcome::Idle, 0), "{second:?}");

        // A late file for one hour: only that hour is rebuilt.
        put_raw_file(&storage, hour_start(2), "late.json.gz", 4).await;
        let third = scheduler.run_job(0, now_millis(), never_stopped()).await;
        assert_eq!(outcomes(&third), [(hour_start(2), IntervalOutcome::Published)]);
        assert!(third.intervals[0].reason.starts_with("raw files changed (2 files"), "{third:?}");
        assert_eq!(third.events, 6);
    }

    #[tokio::test]
    async fn a_corrupt_file_fails_its_interval_and_the_run_moves_on() {
        let storage = DeepStorage::open("memory://").unwrap();
        put_raw_file(&storage, hour_start(3), "a.json.gz", 3).await;
        let corrupt = layout().hour_file(
            &DataSourceName::new("wiki").unwrap(),
            hour_start(2),
            &RawFileName::Foreign("broken.json.gz".into()),
        );
        storage.put(&corrupt, Bytes::from_static(b"\x1f\x8b\x08\x00not gzip at all")).await.unwrap();
        let record =
            scheduler(&storage, vec![job("0 0 * * * *")]).run_job(0, now_millis(), never_stopped()).await;
        assert_eq!(record.outcome, RunOutcome::Partial);
        assert_eq!(
            outcomes(&record),
            [(hour_start(3), IntervalOutcome::Published), (hour_start(2), IntervalOutcome::Failed)]
        );
        let failed = &record.intervals[1];
        assert_eq!(failed.attempts, 1, "a user error is not retried");
        assert!(failed.error.as_deref().unwrap().contains("broken.json.gz"), "{failed:?}");
    }

    #[tokio::test]
    async fn a_leased_interval_is_left_to_its_holder() {
        let storage = DeepStorage::open("memory://").unwrap();
        put_raw_file(&storage, hour_start(2), "a.json.gz", 1).await;
        let interval = Interval { start: hour_start(2), end: hour_start(1) };
        let ds = DataSourceName::new("wiki").unwrap();
        let Acquired::Held(held) =
            Lease::acquire(&storage, &ds, interval, "other-host:1", Duration::from_secs(60)).await.unwrap()
        else {
            panic!("free");
        };
        let scheduler = scheduler(&storage, vec![job("0 0 * * * *")]);
        let record = scheduler.run_job(0, now_millis(), never_stopped()).await;
        assert_eq!(outcomes(&record), [(hour_start(2), IntervalOutcome::Skipped)]);
        assert!(record.intervals[0].error.as_deref().unwrap().starts_with("leased by other-host:1 until"));
        held.release().await;
        let record = scheduler.run_job(0, now_millis(), never_stopped()).await;
        assert_eq!(outcomes(&record), [(hour_start(2), IntervalOutcome::Published)]);
    }

    #[tokio::test]
    async fn another_reindexing_spec_rebuilds_intervals_whose_raw_files_did_not_change() {
        let storage = DeepStorage::open("memory://").unwrap();
        put_raw_file(&storage, hour_start(2), "a.json.gz", 3).await;
        let fine = scheduler(&storage, vec![job("0 0 * * * *")]);
        assert_eq!(fine.run_job(0, now_millis(), never_stopped()).await.rows, 3);
        let mut coarse_job = job("0 0 * * * *");
        coarse_job.reindex_spec = Some(spec("hour"));
        let coarse = scheduler(&storage, vec![coarse_job]);
        let record = coarse.run_job(0, now_millis(), never_stopped()).await;
        assert_eq!(outcomes(&record), [(hour_start(2), IntervalOutcome::Published)]);
        assert!(record.intervals[0].reason.starts_with("the reindexing spec differs"), "{record:?}");
        // Three pages in one hour still make three rows; the point is the rebuild.
        assert_eq!(record.events, 3);
        assert_eq!(coarse.run_job(0, now_millis(), never_stopped()).await.outcome, RunOutcome::Idle);
    }

    #[tokio::test]
    async fn missed_runs_are_caught_up_once() {
        let storage = DeepStorage::open("memory://").unwrap();
        put_raw_file(&storage, hour_start(2), "a.json.gz", 1).await;
        // The job last ran ten hours ago; its hourly cron missed about ten runs since.
        let scheduler = scheduler(&storage, vec![job("0 0 * * * *")]);
        let mut old = scheduler.run_job(0, hour_start(10), never_stopped()).await;
        old.started = format_iso(hour_start(10));
        old.run_id = "01d".into();
        record_run(&storage, &old).await.unwrap();

        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(scheduler.clone().run(async move {
            let _ = { stopped }.wait_for(|s| *s).await;
        }));
        let ds = DataSourceName::new("wiki").unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let history = loop {
            let history = read_history(&storage, Some(&ds)).await.unwrap();
            if history.len() > 1 || Instant::now() > deadline {
                break history;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // Give a replaying scheduler the chance to show itself before stopping.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let history = read_history(&storage, Some(&ds)).await.unwrap().len().max(history.len());
        stop.send(true).unwrap();
        running.await.unwrap();
        assert_eq!(history, 2, "one catch-up run, not one per missed hour");
    }

    #[tokio::test]
    async fn two_schedulers_never_publish_the_same_interval_twice() {
        let storage = DeepStorage::open("memory://").unwrap();
        for hours_ago in 2..6 {
            put_raw_file(&storage, hour_start(hours_ago), "a.json.gz", 2).await;
        }
        let (a, b) =
            (scheduler(&storage, vec![job("0 0 * * * *")]), scheduler(&storage, vec![job("0 0 * * * *")]));
        let (first, second) = tokio::join!(
            a.run_job(0, now_millis(), never_stopped()),
            b.run_job(0, now_millis(), never_stopped())
        );
        let published: Vec<Millis> = first
            .intervals
            .iter()
            .chain(&second.intervals)
            .filter(|i| i.outcome == IntervalOutcome::Published)
            .map(|i| i.interval.start)
            .collect();
        let mut distinct = published.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!((published.len(), distinct.len()), (4, 4), "{first:?}\n{second:?}");
        for skipped in
            first.intervals.iter().chain(&second.intervals).filter(|i| i.outcome == IntervalOutcome::Skipped)
        {
            let why = skipped.error.as_deref().unwrap();
            assert!(why.starts_with("leased by") || why.starts_with("already up to date"), "{why}");
        }
    }

    #[tokio::test]
    async fn deep_storage_failures_are_retried_with_backoff() {
        let store = Arc::new(FlakyStore { inner: object_store::memory::InMemory::new(), failures: 2.into() });
        let storage = DeepStorage::from_store(store, "");
        put_raw_file(&storage, hour_start(2), "a.json.gz", 2).await;
        let record =
            scheduler(&storage, vec![job("0 0 * * * *")]).run_job(0, now_millis(), never_stopped()).await;
        assert_eq!(outcomes(&record), [(hour_start(2), IntervalOutcome::Published)], "{record:?}");
        assert_eq!(record.intervals[0].attempts, 3, "two failed segment writes, then success");
    }

    /// An in-memory store whose first `failures` segment writes fail like a broken network.
    #[derive(Debug)]
    struct FlakyStore {
        inner: object_store::memory::InMemory,
        failures: std::sync::atomic::AtomicUsize,
    }

    impl std::fmt::Display for FlakyStore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "FlakyStore")
        }
    }

    #[async_trait::async_trait]
    impl object_store::ObjectStore for FlakyStore {
        async fn put_opts(
            &self,
            location: &object_store::path::Path,
            payload: object_store::PutPayload,
            opts: object_store::PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            use std::sync::atomic::Ordering;
            if location.as_ref().starts_with("segments/")
                && self
                    .failures
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                return Err(object_store::Error::Generic {
                    store: "flaky",
                    source: "connection reset".into(),
                });
            }
            self.inner.put_opts(location, payload, opts).await
        }

        async fn put_multipart_opts(
            &self,
            location: &object_store::path::Path,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(
            &self,
            location: &object_store::path::Path,
            options: object_store::GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            self.inner.get_opts(location, options).await
        }

        fn delete_stream(
            &self,
            locations: futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>> {
            self.inner.delete_stream(locations)
        }

        fn list(
            &self,
            prefix: Option<&object_store::path::Path>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(
            &self,
            prefix: Option<&object_store::path::Path>,
        ) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(
            &self,
            from: &object_store::path::Path,
            to: &object_store::path::Path,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    #[test]
    fn cron_errors_say_what_braid_expects() {
        let err = parse_cron("15 * * * *").unwrap_err().to_string();
        assert!(err.starts_with("cron expression \"15 * * * *\""), "{err}");
        assert!(err.contains("six or seven fields"), "{err}");
        let job = job("0 15 * * * *");
        let next = job.next_fire_after(hour_start(0)).unwrap();
        assert_eq!(next, hour_start(0) + 15 * 60_000);
    }

    #[test]
    fn jobs_files_in_toml_and_json() {
        let dir = tempfile::tempdir().unwrap();
        let spec_json = json!({"type": "kafka", "spec": {"dataSchema": {
            "dataSource": "wiki",
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {"dimensions": ["page"]},
            "metricsSpec": [{"type": "count", "name": "count"}],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}
        }}});
        std::fs::write(dir.path().join("wiki.json"), spec_json.to_string()).unwrap();
        let toml_path = dir.path().join("jobs.toml");
        std::fs::write(
            &toml_path,
            "[[job]]\nname = \"recent\"\nspec = \"wiki.json\"\ncron = \"0 15 * * * *\"\n\n\
             [[job]]\nspec = \"wiki.json\"\ncron = \"0 0 3 * * *\"\nlookback = \"P30D\"\nsettle = \"P2D\"\n\
             reindex_spec = \"wiki.json\"\n",
        )
        .unwrap();
        let jobs = load_jobs_file(&toml_path).unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(
            (jobs[0].name.as_str(), jobs[0].lookback.to_string(), jobs[0].settle.to_string()),
            ("recent", "P2D".into(), "PT1H".into())
        );
        assert_eq!((jobs[1].name.as_str(), jobs[1].settle.to_string()), ("wiki", "P2D".into()));
        assert!(jobs[1].reindex_spec.is_some());

        let json_path = dir.path().join("jobs.json");
        std::fs::write(
            &json_path,
            r#"{"jobs": [{"spec": "wiki.json", "cron": "0 15 * * * *", "reindexSpec": "wiki.json"}]}"#,
        )
        .unwrap();
        assert_eq!(load_jobs_file(&json_path).unwrap().len(), 1);

        std::fs::write(&json_path, r#"[{"spec": "wiki.json", "cron": "0 15 * * * *", "lookbak": "P1D"}]"#)
            .unwrap();
        let err = load_jobs_file(&json_path).unwrap_err().to_string();
        assert!(err.contains("jobs.json") && err.contains("lookbak"), "{err}");
        std::fs::write(
            &json_path,
            r#"[{"spec": "wiki.json", "cron": "0 15 * * * *", "lookback": "2 days"}]"#,
        )
        .unwrap();
        let err = load_jobs_file(&json_path).unwrap_err().to_string();
        assert!(err.starts_with("lookback: ") && err.contains("2 days"), "{err}");
        std::fs::write(&json_path, r#"[{"spec": "missing.json", "cron": "0 15 * * * *"}]"#).unwrap();
        let err = load_jobs_file(&json_path).unwrap_err().to_string();
        assert!(err.contains("missing.json"), "{err}");
    }
}
