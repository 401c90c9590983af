//! The record of every scheduler run, kept in deep storage (`history/<dataSource>/`) so that
//! `braid batch history` can show it from anywhere and a restarted scheduler knows when each
//! job last ran.

use bytes::Bytes;
use common::storage::DeepStorage;
use common::time::{Interval, Millis, parse_iso};
use futures::{StreamExt, TryStreamExt};
use layouts::{DataSourceName, history_dir, history_path, history_root, parse_history_path};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::BatchError;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    /// Every chosen interval was published.
    Succeeded,
    /// Some intervals were published, others failed.
    Partial,
    /// Nothing that was tried was published.
    Failed,
    /// No interval needed reindexing.
    Idle,
    /// The scheduler was stopped during the run.
    Cancelled,
}

impl RunOutcome {
    /// The word used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Idle => "idle",
            Self::Cancelled => "cancelled",
        }
    }
}

/// How one interval of a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntervalOutcome {
    /// A new batch version was published.
    Published,
    /// The job failed; `error` says why.
    Failed,
    /// Left alone: another scheduler holds its lease, or it no longer needed work.
    Skipped,
    /// The scheduler stopped before it finished.
    Cancelled,
}

impl IntervalOutcome {
    /// The word used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One interval of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntervalRun {
    /// The segment interval.
    pub interval: Interval,
    /// Why it was chosen ("never batch-indexed", "raw files changed", ...).
    pub reason: String,
    /// How it ended.
    pub outcome: IntervalOutcome,
    /// The version published, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Events read.
    pub events: u64,
    /// Rollup rows written.
    pub rows: u64,
    /// Raw lines rejected.
    pub rejected: u64,
    /// Reindex attempts (retries after external failures included).
    pub attempts: u32,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// One scheduler run of one job over one dataSource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// Unique id (lowercase hex).
    pub run_id: String,
    /// The job's name.
    pub job: String,
    /// The dataSource.
    pub data_source: String,
    /// The cron time this run was for, ISO 8601 (a catch-up run after downtime is for the
    /// time it started).
    pub scheduled: String,
    /// Start, ISO 8601.
    pub started: String,
    /// End, ISO 8601.
    pub ended: String,
    /// How it ended.
    pub outcome: RunOutcome,
    /// The intervals it chose, oldest first.
    pub intervals: Vec<IntervalRun>,
    /// Events read over all intervals.
    pub events: u64,
    /// Rows written over all intervals.
    pub rows: u64,
    /// Why the run could not even choose its intervals, if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Who ran it (host and process).
    pub scheduler: String,
}

impl RunRecord {
    /// The versions this run published, in interval order, without repeats.
    pub fn versions(&self) -> Vec<&str> {
        let mut versions: Vec<&str> = Vec::new();
        for v in self.intervals.iter().filter_map(|i| i.version.as_deref()) {
            if !versions.contains(&v) {
                versions.push(v);
            }
        }
        versions
    }

    /// The scheduled time in UTC ms, if it parses.
    pub fn scheduled_millis(&self) -> Option<Millis> {
        parse_iso(&self.scheduled).ok()
    }
}

/// Stores a run record.
pub async fn record_run(storage: &DeepStorage, record: &RunRecord) -> Result<String, BatchError> {
    let ds =
        DataSourceName::new(&record.data_source).map_err(|e| BatchError::InvalidRequest(e.to_string()))?;
    let started = parse_iso(&record.started).map_err(|e| BatchError::Internal(e.to_string()))?;
    let path = history_path(&ds, started, &record.run_id).map_err(|e| BatchError::Internal(e.to_string()))?;
    let json = serde_json::to_vec_pretty(record).expect("run records serialize");
    storage.put_create(&path, Bytes::from(json)).await?;
    Ok(path)
}

/// The run records of one dataSource as (start, path), oldest first.
pub(crate) async fn record_paths(
    storage: &DeepStorage,
    data_source: &DataSourceName,
) -> Result<Vec<(Millis, String)>, BatchError> {
    let mut paths: Vec<(Millis, String)> = storage
        .list(&history_dir(data_source))
        .await?
        .into_iter()
        .filter_map(|o| parse_history_path(&o.path).ok().map(|(_, started, _)| (started, o.path)))
        .collect();
    paths.sort();
    Ok(paths)
}

/// Every run record of one dataSource, or of all, oldest first. A record that cannot be read
/// is reported and skipped: history is for people, not for correctness.
pub async fn read_history(
    storage: &DeepStorage,
    data_source: Option<&DataSourceName>,
) -> Result<Vec<RunRecord>, BatchError> {
    let names = match data_source {
        Some(ds) => vec![ds.clone()],
        None => storage
            .list_dirs(history_root())
            .await?
            .iter()
            .filter_map(|n| DataSourceName::new(n).ok())
            .collect(),
    };
    let mut paths = Vec::new();
    for ds in &names {
        paths.extend(record_paths(storage, ds).await?);
    }
    paths.sort();
    let records: Vec<Option<RunRecord>> = futures::stream::iter(paths)
        .map(|(_, path)| async move {
            let bytes = storage.get(&path).await?;
            Ok::<_, BatchError>(match serde_json::from_slice(&bytes) {
                Ok(record) => Some(record),
                Err(e) => {
                    warn!(path, error = %e, "Skipping an unreadable run record.");
                    None
                }
            })
        })
        .buffered(16)
        .try_collect()
        .await?;
    Ok(records.into_iter().flatten().collect())
}

/// When `job` last ran for `data_source`, by its scheduled time. Reads records newest first
/// and stops at the first of the job, so a long history costs a listing, not a read of each.
pub async fn last_scheduled(
    storage: &DeepStorage,
    data_source: &DataSourceName,
    job: &str,
) -> Result<Option<Millis>, BatchError> {
    for (_, path) in record_paths(storage, data_source).await?.iter().rev() {
        let bytes = storage.get(path).await?;
        match serde_json::from_slice::<RunRecord>(&bytes) {
            Ok(record) if record.job == job => return Ok(record.scheduled_millis()),
            Ok(_) => {}
            Err(e) => warn!(path, error = %e, "Skipping an unreadable run record."),
        }
    }
    Ok(None)
}

/// An idle run record scheduled, started and ended at `started`, for tests.
#[cfg(test)]
pub(crate) fn idle_run(ds: &str, job: &str, started: &str, run_id: &str) -> RunRecord {
    RunRecord {
        run_id: run_id.into(),
        job: job.into(),
        data_source: ds.into(),
        scheduled: started.into(),
        started: started.into(),
        ended: started.into(),
        outcome: RunOutcome::Idle,
        intervals: Vec::new(),
        events: 0,
        rows: 0,
        error: None,
        scheduler: "test".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_read_back_in_start_order_per_data_source() {
        let storage = DeepStorage::open("memory://").unwrap();
        let later = idle_run("wiki", "hourly", "2026-01-01T02:00:00.000Z", "02");
        let earlier = idle_run("wiki", "hourly", "2026-01-01T01:00:00.000Z", "01");
        let other = idle_run("other", "daily", "2026-01-01T01:30:00.000Z", "03");
        for r in [&later, &earlier, &other] {
            record_run(&storage, r).await.unwrap();
        }
        let all = read_history(&storage, None).await.unwrap();
        assert_eq!(all, vec![earlier.clone(), other.clone(), later.clone()]);
        let wiki = DataSourceName::new("wiki").unwrap();
        assert_eq!(read_history(&storage, Some(&wiki)).await.unwrap(), vec![earlier, later.clone()]);
        assert_eq!(last_scheduled(&storage, &wiki, "hourly").await.unwrap(), later.scheduled_millis());
        assert_eq!(last_scheduled(&storage, &wiki, "daily").await.unwrap(), None);
    }
}
