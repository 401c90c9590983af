//! `braid cleanup`: removes what no query will read again.
//!
//! Three sweeps, each one safe while queries, the stream and batch jobs run:
//! 1. Overshadowed segments are dropped from the catalog (a commit: they were already out of
//!    the timeline, so no new query reads them).
//! 2. Files of segments dropped longer than the retention period ago are deleted, and the
//!    catalog forgets them. A query that read the timeline before the drop has had the whole
//!    retention period to finish.
//! 3. Files no commit names (segment files and stream raw parts of checkpoints or jobs that
//!    never committed, and batch version claims) are deleted once older than the retention
//!    period and at least an hour, so a checkpoint or reindex still writing the files it is
//!    about to commit is never touched.
//!
//! 4. Scheduler run records older than 30 days are deleted, except each job's newest (which a
//!    restarted scheduler reads to catch up).
//!
//! Raw files other systems dropped into the archive, `raw put` files and rejects are input or
//! evidence, never garbage; they are left alone.

use std::collections::BTreeSet;

use common::catalog::{Action, Catalog, CatalogState, Visibility, now_millis};
use common::storage::DeepStorage;
use common::time::{Millis, Period, parse_iso};
use layouts::{DataSourceName, RawFileName, RawLayout, SegmentPath};
use serde::Serialize;
use tracing::info;

use crate::BatchError;

/// The least age of a file no commit names before cleanup deletes it: far longer than any
/// checkpoint or reindex takes between writing a file and committing it.
pub const UNREFERENCED_FILE_GRACE_MS: Millis = 3_600_000;

/// How long scheduler run records are kept.
pub const HISTORY_RETENTION_MS: Millis = 30 * 24 * 3_600_000;

/// How cleanup works.
#[derive(Debug, Clone)]
pub struct CleanupOptions {
    /// How long a dropped segment's file stays (and an unreferenced file at least).
    pub retention: Period,
    /// Report what would be removed without removing anything.
    pub dry_run: bool,
}

/// What cleanup did (or, in a dry run, would do) for one dataSource.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupReport {
    /// The dataSource.
    pub data_source: String,
    /// Overshadowed segments dropped from the catalog.
    pub dropped: Vec<String>,
    /// Dropped segments whose files were deleted and which the catalog forgot.
    pub purged: Vec<String>,
    /// Files deleted: purged segments' files and unreferenced files.
    pub deleted_files: Vec<String>,
    /// Their total size.
    pub deleted_bytes: u64,
    /// Dropped segments still within the retention period.
    pub retained: usize,
    /// Scheduler run records deleted.
    pub history_records: usize,
    /// Whether nothing was changed.
    pub dry_run: bool,
}

/// Runs the three sweeps over one dataSource.
pub async fn cleanup(
    storage: &DeepStorage,
    data_source: &DataSourceName,
    raw_layout: &RawLayout,
    options: &CleanupOptions,
) -> Result<CleanupReport, BatchError> {
    let mut report = CleanupReport {
        data_source: data_source.to_string(),
        dry_run: options.dry_run,
        ..Default::default()
    };
    let catalog = Catalog::new(storage.clone(), data_source.clone());
    let mut state = catalog.load().await?;

    // 1. Drop overshadowed segments.
    report.dropped = overshadowed(&state);
    if options.dry_run {
        // What the commit would do, on this copy of the state only, so that the report shows
        // the files the drop would let step 2 delete.
        let time = common::time::format_iso(now_millis());
        for id in &report.dropped {
            if let Some(segment) = state.segments.remove(id) {
                state.unused.insert(id.clone(), segment);
                state.unused_since.insert(id.clone(), time.clone());
            }
        }
    } else if !report.dropped.is_empty() {
        catalog
            .commit(&mut state, "cleanup", |current| {
                // Decided again on the state the commit lands on.
                let ids = overshadowed(current);
                Ok(if ids.is_empty() { Vec::new() } else { vec![Action::DropSegments { ids }] })
            })
            .await?;
    }

    // 2. Delete the files of segments dropped before the cutoff, then forget them. (The clock is
    // read after the drop, so a retention of zero removes in one run what it drops.)
    let now = now_millis();
    let cutoff = options.retention.subtract_from(now);
    let mut expired = Vec::new();
    for (id, record) in &state.unused {
        let since = state.unused_since.get(id).and_then(|t| parse_iso(t).ok()).unwrap_or(Millis::MIN);
        if since <= cutoff {
            expired.push(id.clone());
            if let Some(path) = &record.path {
                report.deleted_files.push(path.clone());
                report.deleted_bytes += record.bytes;
            }
        } else {
            report.retained += 1;
        }
    }
    if !options.dry_run {
        for path in &report.deleted_files {
            storage.delete(path).await?;
        }
        if !expired.is_empty() {
            catalog
                .commit(&mut state, "cleanup", |_| Ok(vec![Action::PurgeSegments { ids: expired.clone() }]))
                .await?;
        }
    }
    report.purged = expired;

    // 3. Files no commit names.
    let file_cutoff = cutoff.min(now - UNREFERENCED_FILE_GRACE_MS);
    let named: BTreeSet<&str> =
        state.segments.values().chain(state.unused.values()).filter_map(|s| s.path.as_deref()).collect();
    let mut unreferenced = Vec::new();
    for object in storage.list(&SegmentPath::data_source_prefix(data_source)).await? {
        if !named.contains(object.path.as_str())
            && !report.deleted_files.contains(&object.path)
            && object.last_modified <= file_cutoff
            && SegmentPath::parse(&object.path).is_ok()
        {
            unreferenced.push(object);
        }
    }
    for object in storage.list(&raw_layout.data_source_prefix(data_source)).await? {
        let uncommitted_stream_part = raw_layout.parse_file(&object.path).is_ok_and(|raw| {
            raw.data_source == *data_source && matches!(raw.name, RawFileName::StreamPart { .. })
        }) && !state.raw_parts.contains(&object.path);
        if uncommitted_stream_part && object.last_modified <= file_cutoff {
            unreferenced.push(object);
        }
    }
    // A version claim only has to outlive the job that took it: a later job's clock reads a
    // later version.
    for object in storage.list(&layouts::version_claims_dir(data_source)).await? {
        if object.last_modified <= file_cutoff && layouts::parse_version_claim(&object.path).is_ok() {
            unreferenced.push(object);
        }
    }
    for object in unreferenced {
        if !options.dry_run {
            storage.delete(&object.path).await?;
        }
        report.deleted_bytes += object.size;
        report.deleted_files.push(object.path);
    }
    // 4. Old run records, each job's newest kept.
    let old_records = old_run_records(storage, data_source, now - HISTORY_RETENTION_MS).await?;
    if !options.dry_run {
        for path in &old_records {
            storage.delete(path).await?;
        }
    }
    report.history_records = old_records.len();

    if !options.dry_run && (!report.dropped.is_empty() || !report.deleted_files.is_empty()) {
        info!(
            data_source = %data_source,
            dropped = report.dropped.len(),
            purged = report.purged.len(),
            files = report.deleted_files.len(),
            bytes = report.deleted_bytes,
            "Cleaned up."
        );
    }
    Ok(report)
}

/// Run records of `data_source` that started before `cutoff`, except each job's newest.
async fn old_run_records(
    storage: &DeepStorage,
    data_source: &DataSourceName,
    cutoff: Millis,
) -> Result<Vec<String>, BatchError> {
    let records = crate::history::record_paths(storage, data_source).await?;
    let old: Vec<&String> = records.iter().filter(|(started, _)| *started < cutoff).map(|(_, p)| p).collect();
    if old.is_empty() {
        return Ok(Vec::new());
    }
    // Each job's newest record stays, however old.
    let history = crate::history::read_history(storage, Some(data_source)).await?;
    let mut newest_of_job: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for record in &history {
        newest_of_job.insert(record.job.as_str(), record.started.as_str());
    }
    let keep: BTreeSet<String> = history
        .iter()
        .filter(|r| newest_of_job.get(r.job.as_str()) == Some(&r.started.as_str()))
        .filter_map(|r| {
            let started = parse_iso(&r.started).ok()?;
            layouts::history_path(data_source, started, &r.run_id).ok()
        })
        .collect();
    Ok(old.into_iter().filter(|p| !keep.contains(*p)).cloned().collect())
}

/// Used segments that the timeline leaves out entirely.
fn overshadowed(state: &CatalogState) -> Vec<String> {
    let timeline = state.timeline();
    state
        .segments
        .keys()
        .filter(|id| timeline.visibility(id) == Some(Visibility::Overshadowed))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use bytes::Bytes;
    use common::spec::load_specs;
    use common::time::{Interval, format_iso};
    use serde_json::json;

    use super::*;
    use crate::reindex::{ReindexOptions, reindex};

    const HOUR: i64 = 3_600_000;
    /// 2013-08-31T00:00:00Z
    const DAY: i64 = 1_377_907_200_000;

    fn spec() -> common::spec::DataSourceSpec {
        let spec = json!({"type": "kafka", "spec": {"dataSchema": {
            "dataSource": "wiki",
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {"dimensions": ["page"]},
            "metricsSpec": [{"type": "count", "name": "count"}],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}
        }}});
        load_specs(&spec.to_string(), "test").unwrap().specs.remove(0)
    }

    fn layout() -> RawLayout {
        RawLayout::parse(RawLayout::DEFAULT_TEMPLATE).unwrap()
    }

    fn ds() -> DataSourceName {
        DataSourceName::new("wiki").unwrap()
    }

    fn options(retention: &str) -> CleanupOptions {
        CleanupOptions { retention: Period::parse(retention).unwrap(), dry_run: false }
    }

    fn age(root: &std::path::Path, path: &str, by: Duration) {
        let file = std::fs::File::options().write(true).open(root.join(path)).unwrap();
        file.set_modified(SystemTime::now() - by).unwrap();
    }

    async fn build_twice(storage: &DeepStorage) -> (Vec<String>, Vec<String>) {
        let raw = layout().hour_file(&ds(), DAY, &RawFileName::Foreign("a.json".into()));
        storage.put(&raw, Bytes::from(format!("{{\"ts\": {DAY}, \"page\": \"p\"}}\n"))).await.unwrap();
        let mut paths = Vec::new();
        for _ in 0..2 {
            let options = ReindexOptions {
                interval: Interval { start: DAY, end: DAY + HOUR },
                raw_layout: layout(),
                threads: 1,
                progress: false,
            };
            let report = reindex(storage, &spec(), options).await.unwrap();
            let state = Catalog::new(storage.clone(), ds()).load().await.unwrap();
            paths.push(
                state
                    .segments
                    .values()
                    .filter(|s| s.version == report.version)
                    .filter_map(|s| s.path.clone())
                    .collect::<Vec<_>>(),
            );
        }
        (paths[0].clone(), paths[1].clone())
    }

    #[tokio::test]
    async fn overshadowed_segments_are_dropped_then_deleted_after_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let storage = DeepStorage::open(dir.path().to_str().unwrap()).unwrap();
        let (old, new) = build_twice(&storage).await;

        let kept = cleanup(&storage, &ds(), &layout(), &options("P1D")).await.unwrap();
        assert_eq!((kept.dropped.len(), kept.purged.len(), kept.retained), (1, 0, 1), "{kept:?}");
        assert!(kept.deleted_files.is_empty());
        let state = Catalog::new(storage.clone(), ds()).load().await.unwrap();
        assert_eq!(state.segments.len(), 1, "only the visible version stays in use");
        assert!(storage.head(&old[0]).await.is_ok(), "within the retention the file stays");

        let dry = cleanup(&storage, &ds(), &layout(), &CleanupOptions { dry_run: true, ..options("PT0S") })
            .await
            .unwrap();
        assert_eq!(dry.deleted_files, old);
        assert!(storage.head(&old[0]).await.is_ok(), "a dry run deletes nothing");

        let purged = cleanup(&storage, &ds(), &layout(), &options("PT0S")).await.unwrap();
        assert_eq!((purged.dropped.len(), purged.purged.len()), (0, 1));
        assert_eq!(purged.deleted_files, old);
        assert!(storage.head(&old[0]).await.is_err());
        assert!(storage.head(&new[0]).await.is_ok(), "the visible version is never touched");
        let state = Catalog::new(storage.clone(), ds()).load().await.unwrap();
        assert!(state.unused.is_empty() && state.unused_since.is_empty());
    }

    #[tokio::test]
    async fn files_no_commit_names_go_once_old_and_raw_input_stays() {
        let dir = tempfile::tempdir().unwrap();
        let storage = DeepStorage::open(dir.path().to_str().unwrap()).unwrap();
        let (_, visible) = build_twice(&storage).await;
        let orphan_segment = SegmentPath::new(ds(), DAY, DAY + HOUR, format_iso(DAY), 9).unwrap().to_path();
        let stream_part = RawFileName::StreamPart { partition: 0, start_offset: 0, end_offset: 5 };
        let orphan_part = layout().hour_file(&ds(), DAY, &stream_part);
        let foreign = layout().hour_file(&ds(), DAY, &RawFileName::Foreign("a.json".into()));
        for path in [&orphan_segment, &orphan_part] {
            storage.put(path, Bytes::from_static(b"x")).await.unwrap();
        }
        // Fresh files may belong to a checkpoint about to commit: kept even with no retention.
        let fresh = cleanup(&storage, &ds(), &layout(), &options("PT0S")).await.unwrap();
        assert!(
            !fresh.deleted_files.contains(&orphan_segment) && !fresh.deleted_files.contains(&orphan_part)
        );

        let claims: Vec<String> = storage
            .list(&layouts::version_claims_dir(&ds()))
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.path)
            .collect();
        assert_eq!(claims.len(), 2, "each reindex claimed its version");
        assert!(fresh.deleted_files.iter().all(|f| !claims.contains(f)));

        for path in [&orphan_segment, &orphan_part, &foreign, &visible[0]].into_iter().chain(&claims) {
            age(dir.path(), path, Duration::from_secs(2 * 3600));
        }
        let old = cleanup(&storage, &ds(), &layout(), &options("PT0S")).await.unwrap();
        let mut expected = vec![orphan_segment.clone(), orphan_part.clone()];
        expected.extend(claims);
        assert_eq!(old.deleted_files, expected);
        assert!(storage.head(&foreign).await.is_ok(), "raw input is never garbage");
        assert!(storage.head(&visible[0]).await.is_ok());
    }

    #[tokio::test]
    async fn run_records_older_than_thirty_days_go_but_each_jobs_newest_stays() {
        use crate::history::{idle_run, read_history, record_run};
        let storage = DeepStorage::open("memory://").unwrap();
        let day = 24 * HOUR;
        let now = now_millis();
        let record =
            |job: &str, days_ago: i64, id: &str| idle_run("wiki", job, &format_iso(now - days_ago * day), id);
        // "hourly" has an old and a recent run; "monthly" only old ones.
        for (job, days_ago, id) in
            [("hourly", 40, "a1"), ("hourly", 1, "a2"), ("monthly", 60, "b1"), ("monthly", 31, "b2")]
        {
            record_run(&storage, &record(job, days_ago, id)).await.unwrap();
        }
        let report = cleanup(&storage, &ds(), &layout(), &options("P1D")).await.unwrap();
        assert_eq!(report.history_records, 2);
        let left: Vec<String> =
            read_history(&storage, Some(&ds())).await.unwrap().into_iter().map(|r| r.run_id).collect();
        assert_eq!(left, ["b2", "a2"]);
    }
}
