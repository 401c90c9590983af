//! `braid batch reindex`: rebuild the segments of an interval from the raw archive and publish
//! them in one commit that overshadows every older version.
//!
//! Work splits by raw file: each worker thread takes the next piece of work and streams its
//! files through gzip into a rollup index of their unit: an hour, when queryGranularity keeps
//! hours apart (`none` up to `hour`), else the hours whose rows can fold together. Units share
//! no row, so each is sorted on its own, and a segment's rows are its units' sorted rows one
//! after the other, each unit's becoming row groups of their own. A worker that read a unit
//! whole sorts it, builds its Arrow batches and empties its index (keeping its memory) for the
//! next unit. Once every earlier unit is built, the unit's place in its segments' partitions
//! (`maxRowsPerSegment`) is known, and the worker encodes it into Parquet column chunks right
//! there, so the job holds encoded rows, a fraction of their Arrow size. A unit that two workers
//! read parts of is merged, sorted and encoded once every file is read. The segment files are
//! put together from the chunks and written before the single catalog commit that makes them
//! visible. A raw file that cannot be read to its end fails the job before anything is
//! published.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use common::catalog::{
    Action, Catalog, CatalogError, CatalogState, Fingerprint, Origin, SegmentRecord, now_millis,
};
use common::input::{Lines, is_blank};
use common::rollup::{RollupIndex, RollupSchema};
use common::segment::{EncodedRows, encode_rows, segment_id, write_encoded};
use common::spec::{DataSourceSpec, DimensionSpec};
use common::storage::{DeepStorage, StorageError};
use common::time::{Granularity, Interval, Millis, format_iso, parse_iso};
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use layouts::{RawFileName, RawLayout, SegmentPath};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::BatchError;

/// What to reindex and how.
#[derive(Debug, Clone)]
pub struct ReindexOptions {
    /// The interval; must line up with segmentGranularity.
    pub interval: Interval,
    /// Where raw files live.
    pub raw_layout: RawLayout,
    /// Worker threads (both cores by default).
    pub threads: usize,
    /// Show a progress bar on the terminal.
    pub progress: bool,
}

/// The outcome for one segment interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntervalReport {
    /// The segment interval.
    pub interval: Interval,
    /// The version published for it.
    pub version: String,
    /// Events read into it.
    pub events: u64,
    /// Rollup rows written.
    pub rows: u64,
    /// Lines rejected from its raw files.
    pub rejected: u64,
    /// Segment files written (0 with a tombstone or no data).
    pub partitions: u32,
    /// Bytes of segment files written.
    pub bytes: u64,
    /// Raw files read.
    pub raw_files: u64,
    /// Their compressed size.
    pub raw_bytes: u64,
    /// Worker time spent on it (reading, rollup, encoding), seconds.
    pub seconds: f64,
    /// Whether an empty interval was published as a tombstone to hide older segments.
    pub tombstone: bool,
}

/// The outcome of a reindex job.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReindexReport {
    /// The dataSource.
    pub data_source: String,
    /// The version published.
    pub version: String,
    /// Per segment interval.
    pub intervals: Vec<IntervalReport>,
    /// Events read.
    pub events: u64,
    /// Rows written.
    pub rows: u64,
    /// Lines rejected.
    pub rejected: u64,
    /// Raw files read.
    pub raw_files: u64,
    /// Compressed raw bytes read.
    pub raw_bytes: u64,
    /// Uncompressed raw bytes read.
    pub raw_uncompressed_bytes: u64,
    /// Segment bytes written.
    pub segment_bytes: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The catalog commit that published the result.
    pub commit_seq: u64,
    /// The first rejected lines, as `file line N: reason`.
    pub first_rejects: Vec<String>,
}

/// How many rejected lines the report names; the rest are counted.
const REPORTED_REJECTS: usize = 20;

/// The event hour that starts at `start`: a raw hour directory's span.
fn hour_at(start: Millis) -> Interval {
    Interval { start, end: Granularity::Hour.next(start) }
}

/// A raw file to read.
#[derive(Debug, Clone)]
struct RawInput {
    path: String,
    hour_start: Millis,
    size: u64,
    e_tag: Option<String>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    events: u64,
    rejected: u64,
    busy: Duration,
    raw_files: u64,
    raw_bytes: u64,
    uncompressed: u64,
}

#[derive(Default)]
struct WorkerResult {
    /// An index per unit (see [`units_of`]) this worker read files of but not the whole unit.
    indexes: HashMap<usize, RollupIndex>,
    /// The units this worker encoded.
    encoded: HashMap<usize, EncodedUnit>,
    stats: HashMap<Millis, Stats>,
    rejects: Vec<String>,
}

/// The rows of one unit, sorted into its segment intervals as Arrow batches: all a segment
/// file needs of them, without the index they were rolled up in.
struct UnitBatches {
    segments: BTreeMap<Interval, (RecordBatch, Vec<DimensionSpec>)>,
}

impl UnitBatches {
    /// Sorts an index's rows into its segment intervals and builds their batches.
    fn build(index: &RollupIndex) -> Self {
        let ranks = index.ranks();
        let segments = index
            .segments(&ranks)
            .into_iter()
            .map(|(interval, group)| (interval, index.record_batch(&group.rows, &ranks)))
            .collect();
        Self { segments }
    }
}

/// Where units' rows go in their segment intervals' partitions. A segment interval's rows are
/// its units' rows in unit order, cut every `maxRowsPerSegment` rows into partitions, so a
/// unit's place is known once every earlier unit is built; until then it waits here, as Arrow
/// batches.
struct Placement {
    max_rows: usize,
    /// The version the segments are written with.
    version: Arc<str>,
    /// The first unit not placed yet.
    next: usize,
    waiting: BTreeMap<usize, UnitBatches>,
    /// Rows placed so far in each segment interval.
    placed_rows: HashMap<Interval, usize>,
}

/// A unit whose place is known: the first row of each of its segment intervals' rows within
/// the interval.
struct Placed {
    unit: usize,
    built: UnitBatches,
    first_rows: HashMap<Interval, usize>,
    max_rows: usize,
    version: Arc<str>,
}

impl Placement {
    /// `max_rows` is maxRowsPerSegment; 0 counts as 1.
    fn new(max_rows: usize, version: &str) -> Self {
        Self {
            max_rows: max_rows.max(1),
            version: version.into(),
            next: 0,
            waiting: BTreeMap::new(),
            placed_rows: HashMap::new(),
        }
    }

    /// Takes a built unit; returns the units whose place is now known, in unit order.
    fn add(&mut self, unit: usize, built: UnitBatches) -> Vec<Placed> {
        self.waiting.insert(unit, built);
        let mut placed = Vec::new();
        while let Some(built) = self.waiting.remove(&self.next) {
            let first_rows = built
                .segments
                .iter()
                .map(|(interval, (batch, _))| {
                    let rows = self.placed_rows.entry(*interval).or_default();
                    let first = *rows;
                    *rows += batch.num_rows();
                    (*interval, first)
                })
                .collect();
            let (max_rows, version) = (self.max_rows, self.version.clone());
            placed.push(Placed { unit: self.next, built, first_rows, max_rows, version });
            self.next += 1;
        }
        placed
    }
}

/// A unit's rows encoded: for each segment interval, a piece per partition they fall in.
#[derive(Default)]
struct EncodedUnit {
    pieces: BTreeMap<(Interval, u32), EncodedRows>,
    /// Time spent encoding each segment interval's rows.
    seconds: BTreeMap<Interval, Duration>,
}

impl Placed {
    /// Encodes the unit's rows, cut where partitions end.
    fn encode(self, data_source: &str) -> Result<(usize, EncodedUnit), BatchError> {
        let max_rows = self.max_rows;
        let mut encoded = EncodedUnit::default();
        for (interval, (batch, dimensions)) in self.built.segments {
            let started = Instant::now();
            let mut row = 0;
            while row < batch.num_rows() {
                let at = self.first_rows[&interval] + row;
                let partition = (at / max_rows) as u32;
                let rows = (max_rows - at % max_rows).min(batch.num_rows() - row);
                let id = segment_id(data_source, interval, &self.version, partition);
                let piece = encode_rows(&batch.slice(row, rows), dimensions.clone(), &id)?;
                encoded.pieces.insert((interval, partition), piece);
                row += rows;
            }
            encoded.seconds.insert(interval, started.elapsed());
        }
        Ok((self.unit, encoded))
    }
}

/// A segment file to write: a partition of an interval's rows, as its units' pieces in unit
/// order.
struct SegmentFile {
    interval: Interval,
    partition: u32,
    /// Partitions in the interval's set.
    partitions: u32,
    pieces: Vec<EncodedRows>,
}

impl SegmentFile {
    fn rows(&self) -> usize {
        self.pieces.iter().map(EncodedRows::rows).sum()
    }
}

/// Rebuilds every segment interval of `options.interval` from the raw archive and publishes
/// the result as one new version.
pub async fn reindex(
    storage: &DeepStorage,
    spec: &DataSourceSpec,
    options: ReindexOptions,
) -> Result<ReindexReport, BatchError> {
    let span = info_span!("reindex", data_source = %spec.data_source, interval = %options.interval);
    run_reindex(storage, spec, options).instrument(span).await
}

async fn run_reindex(
    storage: &DeepStorage,
    spec: &DataSourceSpec,
    options: ReindexOptions,
) -> Result<ReindexReport, BatchError> {
    let started = Instant::now();
    let granularity = spec.granularity.segment;
    check_aligned(options.interval, granularity)?;

    let catalog = Catalog::new(storage.clone(), spec.data_source.clone());
    let mut state = catalog.load().await?;
    let read_parts = state.raw_parts.clone();
    let version = claim_version(storage, spec, &state, options.interval).await?;
    let files = list_raw_files(storage, spec, &options.raw_layout, options.interval, &state).await?;
    let segment_intervals: Vec<Interval> = granularity.buckets(options.interval).collect();
    info!(files = files.len(), intervals = segment_intervals.len(), version, "Reindexing.");

    let schema = RollupSchema::new(spec);
    // Reading, sorting and encoding run on a pool of the job's size.
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(options.threads.max(1))
            .build()
            .map_err(|e| BatchError::Internal(format!("cannot start worker threads: {e}")))?,
    );
    let max_rows = spec.tuning.max_rows_per_segment as usize;
    let placement = Arc::new(Mutex::new(Placement::new(max_rows, &version)));
    let phase = Instant::now();
    let (work, unit_count) = work_items(&schema, &files, options.threads);
    let read = read_all(storage, &schema, work, unit_count, &options, &pool, &placement).await?;
    info!(units = unit_count, seconds = phase.elapsed().as_secs_f64(), "Read and rolled up raw files.");
    let phase = Instant::now();
    let units = finish_units(&pool, read.units, placement, spec).await?;
    info!(seconds = phase.elapsed().as_secs_f64(), "Merged, sorted and encoded the units read in parts.");

    // Write every partition before the commit that names them.
    let mut encode_time: HashMap<Interval, Duration> = HashMap::new();
    for unit in &units {
        for (interval, seconds) in &unit.seconds {
            *encode_time.entry(*interval).or_default() += *seconds;
        }
    }
    let segment_files = segment_files(units);
    let has_rows: BTreeSet<Interval> = segment_files.iter().map(|file| file.interval).collect();
    let phase = Instant::now();
    let written = write_segments(storage, spec, &version, segment_files, &pool).await?;
    info!(files = written.len(), seconds = phase.elapsed().as_secs_f64(), "Wrote segment files.");
    let mut records: Vec<SegmentRecord> = written.iter().map(|(record, _)| record.clone()).collect();
    for (record, seconds) in &written {
        *encode_time.entry(record.interval).or_default() += *seconds;
    }
    let (stats, rejects) = (read.stats, read.rejects);

    let mut tombstones = Vec::new();
    for interval in &segment_intervals {
        let has_rows = has_rows.contains(interval);
        let hides_something = state.segments.values().any(|s| s.interval.overlaps(interval));
        if !has_rows && hides_something {
            tombstones.push(tombstone(spec, *interval, &version));
        }
    }
    records.extend(tombstones.iter().cloned());
    let spec_digest = rollup_digest(spec);
    let fingerprints: Vec<Fingerprint> =
        segment_intervals.iter().map(|i| fingerprint(*i, &version, &files, &spec_digest)).collect();

    let mut actions = vec![Action::RecordFingerprints { fingerprints }];
    if !records.is_empty() {
        actions.insert(0, Action::AddSegments { segments: records.clone() });
    }
    let commit = catalog
        .commit(&mut state, "batch reindex", |current| {
            check_unchanged(current, &read_parts, &options, spec, &version)?;
            Ok(actions.clone())
        })
        .await;
    let committed = match commit {
        Ok(committed) => committed,
        Err(e) => {
            // Nothing names these files; remove them now rather than leave them for cleanup.
            for (record, _) in &written {
                if let Some(path) = &record.path
                    && let Err(delete) = storage.delete(path).await
                {
                    warn!(path, error = %delete, "Could not remove an unpublished segment file.");
                }
            }
            return Err(e.into());
        }
    };

    let mut report = ReindexReport {
        data_source: spec.data_source.to_string(),
        version: version.clone(),
        intervals: Vec::new(),
        events: 0,
        rows: 0,
        rejected: 0,
        raw_files: files.len() as u64,
        raw_bytes: files.iter().map(|f| f.size).sum(),
        raw_uncompressed_bytes: 0,
        segment_bytes: 0,
        seconds: 0.0,
        commit_seq: committed.seq,
        first_rejects: rejects,
    };
    for interval in segment_intervals {
        let s = stats.get(&interval.start).copied().unwrap_or_default();
        let mine: Vec<&SegmentRecord> = records.iter().filter(|r| r.interval == interval).collect();
        let row = IntervalReport {
            interval,
            version: version.clone(),
            events: s.events,
            rows: mine.iter().map(|r| r.rows).sum(),
            rejected: s.rejected,
            partitions: mine.iter().filter(|r| !r.is_tombstone()).count() as u32,
            bytes: mine.iter().map(|r| r.bytes).sum(),
            raw_files: s.raw_files,
            raw_bytes: s.raw_bytes,
            seconds: (s.busy + encode_time.get(&interval).copied().unwrap_or_default()).as_secs_f64(),
            tombstone: mine.iter().any(|r| r.is_tombstone()),
        };
        report.events += row.events;
        report.rows += row.rows;
        report.rejected += row.rejected;
        report.segment_bytes += row.bytes;
        report.raw_uncompressed_bytes += s.uncompressed;
        report.intervals.push(row);
    }
    report.seconds = started.elapsed().as_secs_f64();
    info!(
        version,
        events = report.events,
        rows = report.rows,
        rejected = report.rejected,
        seq = committed.seq,
        seconds = report.seconds,
        "Published reindexed segments."
    );
    Ok(report)
}

fn check_aligned(interval: Interval, granularity: Granularity) -> Result<(), BatchError> {
    if granularity.is_aligned(interval.start) && granularity.is_aligned(interval.end) {
        return Ok(());
    }
    let start = granularity.truncate(interval.start);
    let end_bucket = granularity.truncate(interval.end);
    let end = if end_bucket == interval.end { end_bucket } else { granularity.next(end_bucket) };
    Err(BatchError::InvalidRequest(format!(
        "interval {interval} does not line up with segmentGranularity \"{}\"; the enclosing aligned interval is {}",
        granularity.name(),
        Interval { start, end }
    )))
}

/// A version higher than every version of the interval: the job's start time, or one
/// millisecond past the highest existing version if the clock is behind it.
fn next_version(state: &CatalogState, interval: Interval) -> String {
    let now = format_iso(now_millis());
    match state.max_version_overlapping(interval) {
        Some(max) if max >= now.as_str() => version_after(max),
        _ => now,
    }
}

/// The least version greater than `version` that braid writes.
fn version_after(version: &str) -> String {
    match parse_iso(version) {
        Ok(t) => format_iso(t + 1),
        Err(_) => format!("{version}.1"),
    }
}

/// Picks this job's version and claims it create-only, so that a job started in the same
/// millisecond (on this machine or another) takes the next one instead of writing the same
/// segment paths. Claims are small; cleanup deletes them once old.
async fn claim_version(
    storage: &DeepStorage,
    spec: &DataSourceSpec,
    state: &CatalogState,
    interval: Interval,
) -> Result<String, BatchError> {
    let mut version = next_version(state, interval);
    let claim = serde_json::json!({
        "claimedBy": crate::lease::process_identity(),
        "interval": interval.to_string(),
        "claimed": format_iso(now_millis()),
    });
    let body = Bytes::from(serde_json::to_vec(&claim).expect("a JSON value serializes"));
    loop {
        let path = layouts::version_claim_path(&spec.data_source, &version)
            .map_err(|e| BatchError::InvalidRequest(e.to_string()))?;
        match storage.put_create(&path, body.clone()).await {
            Ok(()) => return Ok(version),
            Err(StorageError::AlreadyExists { .. }) => {
                debug!(version, "Version already claimed by another job; taking the next one.");
                version = version_after(&version);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn list_raw_files(
    storage: &DeepStorage,
    spec: &DataSourceSpec,
    layout: &RawLayout,
    interval: Interval,
    state: &CatalogState,
) -> Result<Vec<RawInput>, BatchError> {
    let hours: Vec<Millis> = Granularity::Hour.buckets(interval).map(|hour| hour.start).collect();
    let listings: Vec<_> = futures::stream::iter(hours)
        .map(|hour| async move {
            let dir = layout.hour_dir(&spec.data_source, hour);
            storage.list(&dir).await.map(|objects| (hour, objects))
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    let mut files = Vec::new();
    for (hour, objects) in listings {
        for object in objects {
            let Ok(raw) = layout.parse_file(&object.path) else {
                // Not a file of this layout's hour directory (a nested directory, say).
                warn!(
                    path = object.path,
                    "Skipping a file that is not in an hour directory of the raw layout."
                );
                continue;
            };
            // The stream's parts count only once a checkpoint committed them.
            if matches!(raw.name, RawFileName::StreamPart { .. }) && !state.raw_parts.contains(&object.path) {
                continue;
            }
            files.push(RawInput {
                path: object.path,
                hour_start: hour,
                size: object.size,
                e_tag: object.e_tag,
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Groups raw files into units: the files whose rows can fold together, in time order. A
/// file holds one hour's events, whose rows' times lie between the row times of the hour's
/// first and last millisecond; hours whose row time ranges overlap (every hour of a day, for a
/// `day` queryGranularity) share a unit, and an hour stays alone when its row times are its own
/// (`none` up to `hour`). Returns each file's unit and the number of units.
fn units_of(schema: &RollupSchema, files: &[RawInput]) -> (Vec<usize>, usize) {
    let mut hours: Vec<Millis> = files.iter().map(|f| f.hour_start).collect();
    hours.sort_unstable();
    hours.dedup();
    let mut unit_of_hour = HashMap::with_capacity(hours.len());
    let mut units = 0;
    let mut last_row_time = None;
    for hour in hours {
        let span = hour_at(hour);
        let first = schema.row_time(span.start);
        if last_row_time.is_none_or(|last| first > last) {
            units += 1;
        }
        let last = schema.row_time(span.end - 1);
        last_row_time = Some(last_row_time.map_or(last, |known: Millis| known.max(last)));
        unit_of_hour.insert(hour, units - 1);
    }
    (files.iter().map(|f| unit_of_hour[&f.hour_start]).collect(), units)
}

/// Pieces of reading each worker should have to choose from, at least, so that they finish
/// together.
const WORK_PER_THREAD: usize = 4;

/// Raw files one worker reads in turn into one index of their unit.
#[derive(Debug, Clone)]
struct WorkItem {
    unit: usize,
    files: Vec<RawInput>,
    /// Whether the files are all of the unit's.
    whole_unit: bool,
}

impl WorkItem {
    fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Splits the reading into pieces of work. With units enough for every thread (hours apart,
/// say), consecutive units are joined into about [`WORK_PER_THREAD`] pieces per thread, each
/// read whole by one worker, so no unit needs merging and each index stays a few hours small.
/// With fewer (a coarse queryGranularity makes a day one unit), each file is a piece, and the
/// indexes workers build of one unit are merged. Returns the pieces and the number of units,
/// numbered anew when joined.
fn work_items(schema: &RollupSchema, files: &[RawInput], threads: usize) -> (Vec<WorkItem>, usize) {
    let (file_units, units) = units_of(schema, files);
    let threads = threads.max(1);
    if units < 2 * threads {
        let items = files
            .iter()
            .zip(file_units)
            .map(|(file, unit)| WorkItem { unit, files: vec![file.clone()], whole_unit: false })
            .collect();
        return (items, units);
    }
    let joined = (units / (WORK_PER_THREAD * threads)).max(1);
    let mut items: Vec<WorkItem> = (0..units.div_ceil(joined))
        .map(|unit| WorkItem { unit, files: Vec::new(), whole_unit: true })
        .collect();
    for (file, unit) in files.iter().zip(file_units) {
        items[unit / joined].files.push(file.clone());
    }
    for item in &mut items {
        item.files.sort_by_key(|f| f.hour_start);
    }
    let count = items.len();
    (items, count)
}

/// What reading made of the units.
struct ReadAll {
    units: Vec<ReadUnit>,
    stats: HashMap<Millis, Stats>,
    rejects: Vec<String>,
}

/// What the workers made of one unit.
enum ReadUnit {
    /// Read whole by one worker, built, placed and encoded.
    Encoded(EncodedUnit),
    /// Read whole and built, but waiting in the [`Placement`] for an earlier unit.
    Waiting,
    /// The index each worker built of the files of it that it read, to be merged.
    Indexes(Vec<RollupIndex>),
}

/// Reads every piece of work into an index of its unit on `pool`'s threads. A unit a worker
/// read whole is built at once and handed to the [`Placement`]; the units that places are
/// encoded right there, so that the job holds encoded rows rather than Arrow batches.
async fn read_all(
    storage: &DeepStorage,
    schema: &Arc<RollupSchema>,
    mut order: Vec<WorkItem>,
    unit_count: usize,
    options: &ReindexOptions,
    pool: &Arc<rayon::ThreadPool>,
    placement: &Arc<Mutex<Placement>>,
) -> Result<ReadAll, BatchError> {
    let handle = tokio::runtime::Handle::current();
    let pool = pool.clone();
    let storage = storage.clone();
    let schema = schema.clone();
    let placement = placement.clone();
    // Units read whole go in time order, so that each is placed (and encoded) as soon as it is
    // built. Files of units read in parts go largest first, so that the last piece to finish is
    // a small one.
    if !order.iter().all(|item| item.whole_unit) {
        order.sort_by_key(|item| std::cmp::Reverse(item.bytes()));
    }
    let options = options.clone();
    let total: u64 = order.iter().map(WorkItem::bytes).sum();
    let progress = if options.progress {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "reindex [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    tokio::task::spawn_blocking(move || {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let first_error: Mutex<Option<BatchError>> = Mutex::new(None);
        // One reader on each of the pool's threads. A reader that finishes a unit sorts, builds
        // and (once it is placed) encodes it right there: rayon runs the halves of the sort and
        // the columns of the encoding on the same thread while the other threads are reading,
        // and spreads them once a thread has nothing left to read.
        // (Built through `install` from threads of their own, both readers finishing pieces of
        // the same size at once would wait on the pool together, and its serial parts left a
        // core idle.)
        let results: Vec<WorkerResult> = pool.broadcast(|_| {
            let mut result = WorkerResult::default();
            // The index of the unit built last, emptied for the next.
            let mut spare: Option<RollupIndex> = None;
            while !failed.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = order.get(i) else { break };
                if !result.indexes.contains_key(&item.unit)
                    && let Some(index) = spare.take()
                {
                    result.indexes.insert(item.unit, index);
                }
                for file in &item.files {
                    let outcome = handle
                        .block_on(storage.reader(&file.path))
                        .map_err(BatchError::from)
                        .and_then(|raw| read_file(file, item.unit, raw, &schema, &options, &mut result));
                    if let Err(e) = outcome {
                        failed.store(true, Ordering::Relaxed);
                        first_error.lock().expect("not poisoned").get_or_insert(e);
                        break;
                    }
                    progress.inc(file.size);
                }
                // Read whole: sorted and built now, its index emptied for the next, and
                // encoded with whichever units it lets the placement place.
                if item.whole_unit
                    && !failed.load(Ordering::Relaxed)
                    && let Some(mut index) = result.indexes.remove(&item.unit)
                {
                    let built = UnitBatches::build(&index);
                    index.clear();
                    spare = Some(index);
                    let placed = placement.lock().expect("not poisoned").add(item.unit, built);
                    for unit in placed {
                        match unit.encode(schema.spec().data_source.as_str()) {
                            Ok((unit, encoded)) => {
                                result.encoded.insert(unit, encoded);
                            }
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                first_error.lock().expect("not poisoned").get_or_insert(e);
                                break;
                            }
                        }
                    }
                }
            }
            result
        });
        progress.finish_and_clear();
        if let Some(error) = first_error.into_inner().expect("not poisoned") {
            return Err(error);
        }
        let mut units: Vec<ReadUnit> = (0..unit_count).map(|_| ReadUnit::Indexes(Vec::new())).collect();
        for (unit, _) in placement.lock().expect("not poisoned").waiting.iter() {
            units[*unit] = ReadUnit::Waiting;
        }
        let mut stats: HashMap<Millis, Stats> = HashMap::new();
        let mut rejects = Vec::new();
        for result in results {
            for (unit, index) in result.indexes {
                if let ReadUnit::Indexes(indexes) = &mut units[unit] {
                    indexes.push(index);
                }
            }
            for (unit, encoded) in result.encoded {
                units[unit] = ReadUnit::Encoded(encoded);
            }
            for (start, s) in result.stats {
                let entry = stats.entry(start).or_default();
                entry.events += s.events;
                entry.rejected += s.rejected;
                entry.busy += s.busy;
                entry.raw_files += s.raw_files;
                entry.raw_bytes += s.raw_bytes;
                entry.uncompressed += s.uncompressed;
            }
            rejects.extend(result.rejects);
        }
        rejects.sort();
        rejects.truncate(REPORTED_REJECTS);
        Ok(ReadAll { units, stats, rejects })
    })
    .await
    .map_err(|e| BatchError::Internal(format!("reindex worker failed: {e}")))?
}

/// Streams one raw file into the worker's index of the file's unit.
fn read_file(
    file: &RawInput,
    unit: usize,
    raw: Box<dyn Read + Send>,
    schema: &Arc<RollupSchema>,
    options: &ReindexOptions,
    worker: &mut WorkerResult,
) -> Result<(), BatchError> {
    let started = Instant::now();
    let index = worker.indexes.entry(unit).or_insert_with(|| RollupIndex::new(schema.clone()));
    let hour = hour_at(file.hour_start);
    let file_segment = schema.segment_interval(file.hour_start.max(options.interval.start)).start;
    let corrupt = |line: u64, e: std::io::Error| BatchError::CorruptRaw {
        path: file.path.clone(),
        line,
        message: e.to_string(),
    };
    let mut lines = Lines::new(raw).map_err(|e| corrupt(0, e))?;
    let mut uncompressed = 0u64;
    // Events of one file almost always share a segment: count runs, not per-event map updates.
    let (mut run_segment, mut run_events) = (file_segment, 0u64);
    let granularity = schema.spec().granularity.segment;
    loop {
        let (number, line) = match lines.next_line() {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(e) => return Err(corrupt(lines.line_number(), e)),
        };
        uncompressed += line.len() as u64 + 1;
        if is_blank(line) {
            continue;
        }
        let problem = match index.parse(line) {
            Ok(time) if !hour.contains(time) => {
                format!(
                    "event time {} is outside the hour of its directory ({})",
                    format_iso(time),
                    format_iso(hour.start)
                )
            }
            Ok(time) if !options.interval.contains(time) => continue,
            Ok(time) => {
                index.fold_parsed();
                let segment = granularity.truncate(time);
                if segment != run_segment {
                    worker.stats.entry(run_segment).or_default().events += run_events;
                    (run_segment, run_events) = (segment, 0);
                }
                run_events += 1;
                continue;
            }
            Err(e) => e.to_string(),
        };
        worker.stats.entry(file_segment).or_default().rejected += 1;
        if worker.rejects.len() < REPORTED_REJECTS {
            worker.rejects.push(format!("{} line {number}: {problem}", file.path));
        }
    }
    worker.stats.entry(run_segment).or_default().events += run_events;
    let stats = worker.stats.entry(file_segment).or_default();
    stats.busy += started.elapsed();
    stats.raw_files += 1;
    stats.raw_bytes += file.size;
    stats.uncompressed += uncompressed;
    Ok(())
}

/// Merges the indexes of each unit read in parts, then sorts and builds it, places it and
/// encodes the units that places (units in parallel); returns every unit encoded, in unit
/// order.
async fn finish_units(
    pool: &Arc<rayon::ThreadPool>,
    read: Vec<ReadUnit>,
    placement: Arc<Mutex<Placement>>,
    spec: &DataSourceSpec,
) -> Result<Vec<EncodedUnit>, BatchError> {
    let pool = pool.clone();
    let data_source = spec.data_source.to_string();
    tokio::task::spawn_blocking(move || {
        pool.install(|| {
            let mut units: Vec<Option<EncodedUnit>> = Vec::with_capacity(read.len());
            let mut parts = Vec::new();
            for (unit, read) in read.into_iter().enumerate() {
                match read {
                    ReadUnit::Encoded(encoded) => units.push(Some(encoded)),
                    ReadUnit::Waiting => units.push(None),
                    ReadUnit::Indexes(indexes) => {
                        units.push(None);
                        parts.push((unit, indexes));
                    }
                }
            }
            let built: Vec<(usize, UnitBatches)> = parts
                .into_par_iter()
                .map(|(unit, indexes)| {
                    let mut indexes = indexes.into_iter();
                    let Some(mut index) = indexes.next() else {
                        return (unit, UnitBatches { segments: BTreeMap::new() });
                    };
                    for other in indexes {
                        index.merge(&other);
                        drop_in_background(other);
                    }
                    let built = UnitBatches::build(&index);
                    drop_in_background(index);
                    (unit, built)
                })
                .collect();
            let mut placement = placement.lock().expect("not poisoned");
            let mut placed = Vec::new();
            for (unit, built) in built {
                placed.extend(placement.add(unit, built));
            }
            if let Some(unit) = placement.waiting.keys().next() {
                return Err(BatchError::Internal(format!(
                    "unit {unit} was built but unit {} never was",
                    placement.next
                )));
            }
            drop(placement);
            let encoded: Vec<(usize, EncodedUnit)> = placed
                .into_par_iter()
                .map(|unit| unit.encode(&data_source))
                .collect::<Result<_, BatchError>>()?;
            for (unit, encoded) in encoded {
                units[unit] = Some(encoded);
            }
            Ok(units
                .into_iter()
                .map(|unit| unit.expect("every unit is placed once the waiting ones are"))
                .collect())
        })
    })
    .await
    .map_err(|e| BatchError::Internal(format!("sorting and encoding rows failed: {e}")))?
}

/// The segment files to write: each partition's pieces, in unit order.
fn segment_files(units: Vec<EncodedUnit>) -> Vec<SegmentFile> {
    let mut partitions: BTreeMap<(Interval, u32), Vec<EncodedRows>> = BTreeMap::new();
    for unit in units {
        for (key, piece) in unit.pieces {
            partitions.entry(key).or_default().push(piece);
        }
    }
    let mut counts: HashMap<Interval, u32> = HashMap::new();
    for (interval, partition) in partitions.keys() {
        let count = counts.entry(*interval).or_default();
        *count = (*count).max(partition + 1);
    }
    partitions
        .into_iter()
        .map(|((interval, partition), pieces)| SegmentFile {
            interval,
            partition,
            partitions: counts[&interval],
            pieces,
        })
        .collect()
}

/// Writes segment files in parallel; returns their records and the time each took.
async fn write_segments(
    storage: &DeepStorage,
    spec: &DataSourceSpec,
    version: &str,
    files: Vec<SegmentFile>,
    pool: &Arc<rayon::ThreadPool>,
) -> Result<Vec<(SegmentRecord, Duration)>, BatchError> {
    let handle = tokio::runtime::Handle::current();
    let (storage_for_workers, spec_for_workers, version_for_workers) =
        (storage.clone(), spec.clone(), version.to_string());
    let pool = pool.clone();
    let results: Vec<Result<(SegmentRecord, Duration), BatchError>> =
        tokio::task::spawn_blocking(move || {
            pool.install(|| {
                files
                    .into_par_iter()
                    .map(|file| {
                        write_one(
                            &handle,
                            &storage_for_workers,
                            &spec_for_workers,
                            &version_for_workers,
                            file,
                        )
                    })
                    .collect()
            })
        })
        .await
        .map_err(|e| BatchError::Internal(format!("segment writer failed: {e}")))?;
    let mut records = Vec::with_capacity(results.len());
    let mut failure = None;
    for result in results {
        match result {
            Ok(record) => records.push(record),
            Err(e) => failure = Some(e),
        }
    }
    if let Some(e) = failure {
        for (record, _) in &records {
            if let Some(path) = &record.path {
                let _ = storage.delete(path).await;
            }
        }
        return Err(e);
    }
    records.sort_by_key(|(r, _)| (r.interval, r.partition));
    Ok(records)
}

fn write_one(
    handle: &tokio::runtime::Handle,
    storage: &DeepStorage,
    spec: &DataSourceSpec,
    version: &str,
    file: SegmentFile,
) -> Result<(SegmentRecord, Duration), BatchError> {
    let started = Instant::now();
    let rows = file.rows() as u64;
    let SegmentFile { interval, partition, partitions, pieces } = file;
    let data_source = spec.data_source.as_str();
    let id = segment_id(data_source, interval, version, partition);
    let bytes = write_encoded(pieces, spec, interval, version, partition)?;
    let assembled = started.elapsed();
    let path = SegmentPath::new(spec.data_source.clone(), interval.start, interval.end, version, partition)
        .map_err(|e| BatchError::InvalidRequest(e.to_string()))?
        .to_path();
    let size = bytes.len() as u64;
    handle.block_on(storage.put_create(&path, bytes))?;
    debug!(
        id,
        rows,
        assemble_seconds = assembled.as_secs_f64(),
        write_seconds = (started.elapsed() - assembled).as_secs_f64(),
        "Wrote a segment."
    );
    let record = SegmentRecord {
        id,
        data_source: data_source.to_string(),
        interval,
        version: version.to_string(),
        partition,
        partitions,
        rows,
        bytes: size,
        path: Some(path),
        origin: Origin::Batch,
        created: format_iso(now_millis()),
    };
    Ok((record, started.elapsed()))
}

/// Frees a large value on another thread: an index of a million rows holds hundreds of
/// thousands of small allocations, and freeing them is nothing the job needs to wait for.
fn drop_in_background<T: Send + 'static>(value: T) {
    std::thread::spawn(move || drop(value));
}

fn tombstone(spec: &DataSourceSpec, interval: Interval, version: &str) -> SegmentRecord {
    SegmentRecord {
        id: segment_id(spec.data_source.as_str(), interval, version, 0),
        data_source: spec.data_source.to_string(),
        interval,
        version: version.to_string(),
        partition: 0,
        partitions: 1,
        rows: 0,
        bytes: 0,
        path: None,
        origin: Origin::Batch,
        created: format_iso(now_millis()),
    }
}

/// The raw-file fingerprint of every segment interval of `window` as a reindex now would record
/// it (with an empty version): what the scheduler compares with the catalog's to find the
/// intervals whose raw files changed.
pub async fn current_fingerprints(
    storage: &DeepStorage,
    spec: &DataSourceSpec,
    layout: &RawLayout,
    window: Interval,
    state: &CatalogState,
) -> Result<Vec<Fingerprint>, BatchError> {
    let files = list_raw_files(storage, spec, layout, window, state).await?;
    let digest = rollup_digest(spec);
    Ok(spec.granularity.segment.buckets(window).map(|i| fingerprint(i, "", &files, &digest)).collect())
}

/// SHA-256 of the part of a spec that decides what a reindex writes (timestamp, dimensions,
/// metrics, granularities), so that changing it, or reindexing with another spec, is seen as
/// a change.
pub fn rollup_digest(spec: &DataSourceSpec) -> String {
    let text = format!("{:?}", (&spec.timestamp, &spec.dimensions, &spec.metrics, &spec.granularity));
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 over the sorted (path, size, etag) of the raw files overlapping an interval.
fn fingerprint(interval: Interval, version: &str, files: &[RawInput], spec_digest: &str) -> Fingerprint {
    let mut hasher = Sha256::new();
    let mut count = 0;
    let mut bytes = 0;
    let mut mine: Vec<&RawInput> =
        files.iter().filter(|f| interval.overlaps(&hour_at(f.hour_start))).collect();
    mine.sort_by(|a, b| a.path.cmp(&b.path));
    for f in mine {
        hasher.update(format!("{}\t{}\t{}\n", f.path, f.size, f.e_tag.as_deref().unwrap_or("")));
        count += 1;
        bytes += f.size;
    }
    Fingerprint {
        interval,
        version: version.to_string(),
        digest: hasher.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        files: count,
        bytes,
        spec: Some(spec_digest.to_string()),
    }
}

/// The commit still applies if nobody published a version at least as high for these
/// intervals and the stream committed no raw parts in them while the job read.
fn check_unchanged(
    current: &CatalogState,
    read_parts: &std::collections::BTreeSet<String>,
    options: &ReindexOptions,
    spec: &DataSourceSpec,
    version: &str,
) -> Result<(), CatalogError> {
    let conflict =
        |reason: String| CatalogError::Conflict { data_source: spec.data_source.to_string(), reason };
    if let Some(s) = current
        .segments
        .values()
        .find(|s| s.interval.overlaps(&options.interval) && s.version.as_str() >= version)
    {
        return Err(conflict(format!(
            "segment {} (version {}) was published for this interval while the job ran; the newer version stands",
            s.id, s.version
        )));
    }
    for part in current.raw_parts.difference(read_parts) {
        let Ok(raw) = options.raw_layout.parse_file(part) else { continue };
        if raw.data_source == spec.data_source && options.interval.overlaps(&hour_at(raw.hour_start)) {
            return Err(conflict(format!(
                "raw part {part} was committed while the job read; run the job again"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use arrow::array::AsArray;
    use arrow::datatypes::{Int64Type, TimestampMillisecondType};
    use arrow::record_batch::RecordBatch;
    use common::catalog::Visibility;
    use common::segment::{SegmentDescription, read_segment};
    use common::spec::load_specs;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use serde_json::json;

    use super::*;

    const H: i64 = common::time::HOUR_MS;
    /// 2013-08-31T00:00:00Z
    const DAY: i64 = 1_377_907_200_000;

    fn spec(tuning: serde_json::Value) -> DataSourceSpec {
        spec_with(tuning, |_| {})
    }

    /// The test spec, its dataSchema changed by `patch`.
    fn spec_with(tuning: serde_json::Value, patch: impl FnOnce(&mut serde_json::Value)) -> DataSourceSpec {
        let mut spec = json!({
            "type": "kafka",
            "spec": {
                "dataSchema": {
                    "dataSource": "wiki",
                    "timestampSpec": {"column": "ts", "format": "millis"},
                    "dimensionsSpec": {"dimensions": ["page"]},
                    "metricsSpec": [{"type": "count", "name": "count"}, {"type": "longSum", "name": "added", "fieldName": "added"}],
                    "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "hour"}
                },
                "tuningConfig": tuning
            }
        });
        patch(&mut spec["spec"]["dataSchema"]);
        load_specs(&spec.to_string(), "test").unwrap().specs.remove(0)
    }

    fn with_query_granularity(query: &str) -> DataSourceSpec {
        spec_with(json!({}), |s| s["granularitySpec"]["queryGranularity"] = json!(query))
    }

    fn gzip(text: &str) -> Bytes {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(text.as_bytes()).unwrap();
        Bytes::from(encoder.finish().unwrap())
    }

    fn events(hour: i64, pages: &[&str]) -> String {
        pages
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!("{{\"ts\": {}, \"page\": \"{p}\", \"added\": 2}}\n", DAY + hour * H + i as i64)
            })
            .collect()
    }

    async fn put_file(storage: &DeepStorage, hour: i64, name: &str, bytes: Bytes) -> String {
        let layout = RawLayout::parse(RawLayout::DEFAULT_TEMPLATE).unwrap();
        let ds = layouts::DataSourceName::new("wiki").unwrap();
        let path = layout.hour_file(&ds, DAY + hour * H, &RawFileName::Foreign(name.into()));
        storage.put(&path, bytes).await.unwrap();
        path
    }

    fn options(interval: &str) -> ReindexOptions {
        ReindexOptions {
            interval: Interval::parse(interval).unwrap(),
            raw_layout: RawLayout::parse(RawLayout::DEFAULT_TEMPLATE).unwrap(),
            threads: 2,
            progress: false,
        }
    }

    /// Every visible segment's description and rows, in interval then partition order.
    async fn visible_segments(storage: &DeepStorage) -> Vec<(SegmentDescription, RecordBatch)> {
        let state = Catalog::new(storage.clone(), layouts::DataSourceName::new("wiki").unwrap())
            .load()
            .await
            .unwrap();
        let mut segments = Vec::new();
        for chunk in state.timeline().chunks() {
            let mut records: Vec<&SegmentRecord> =
                chunk.segments.iter().filter(|s| !s.is_tombstone()).collect();
            records.sort_by_key(|s| s.partition);
            for record in records {
                let bytes = storage.get(record.path.as_ref().unwrap()).await.unwrap();
                let (description, batches) = read_segment(bytes, &record.id).unwrap();
                let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
                segments.push((description, batch));
            }
        }
        segments
    }

    /// A column of a segment as strings (null as None).
    fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
        let column = batch.column_by_name(column).unwrap();
        let utf8 = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8).unwrap();
        utf8.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()
    }

    /// (time, page, count) of every visible row, in file order.
    async fn visible_rows(storage: &DeepStorage) -> Vec<(i64, String, i64)> {
        let mut rows = Vec::new();
        for (_, batch) in visible_segments(storage).await {
            let times = batch.column_by_name("__time").unwrap().as_primitive::<TimestampMillisecondType>();
            let counts = batch.column_by_name("count").unwrap().as_primitive::<Int64Type>();
            let pages = strings(&batch, "page");
            for (r, page) in pages.into_iter().enumerate() {
                rows.push((times.value(r), page.unwrap(), counts.value(r)));
            }
        }
        rows
    }

    async fn visible_count(storage: &DeepStorage) -> i64 {
        let mut total = 0;
        for (_, batch) in visible_segments(storage).await {
            total += batch
                .column_by_name("count")
                .unwrap()
                .as_primitive::<Int64Type>()
                .iter()
                .flatten()
                .sum::<i64>();
        }
        total
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reindex_twice_overshadows_and_counts_each_event_once() {
        let storage = DeepStorage::open("memory://").unwrap();
        put_file(&storage, 1, "a.json.gz", gzip(&events(1, &["x", "y", "x"]))).await;
        put_file(&storage, 5, "b.json", Bytes::from(events(5, &["z"]))).await;
        let spec = spec(json!({}));

        let first = reindex(&storage, &spec, options("2013-08-31/2013-09-01")).await.unwrap();
        assert_eq!((first.events, first.rows, first.rejected, first.raw_files), (4, 3, 0, 2));
        assert_eq!(first.intervals.len(), 1);
        assert_eq!(first.intervals[0].partitions, 1);
        let second = reindex(&storage, &spec, options("2013-08-31/2013-09-01")).await.unwrap();
        assert!(second.version > first.version, "{} > {}", second.version, first.version);
        assert_eq!(visible_count(&storage).await, 4, "the old version is overshadowed, not added");

        let state = Catalog::new(storage.clone(), spec.data_source.clone()).load().await.unwrap();
        let timeline = state.timeline();
        let old_id = segment_id("wiki", first.intervals[0].interval, &first.version, 0);
        assert_eq!(timeline.visibility(&old_id), Some(Visibility::Overshadowed));
        let fingerprint = &state.fingerprints["2013-08-31T00:00:00.000Z/2013-09-01T00:00:00.000Z"];
        assert_eq!((fingerprint.files, fingerprint.version.as_str()), (2, second.version.as_str()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_started_in_the_same_millisecond_take_different_versions() {
        let storage = DeepStorage::open("memory://").unwrap();
        put_file(&storage, 1, "a.json", Bytes::from(events(1, &["x", "y"]))).await;
        let spec = spec(json!({}));
        // Another job has claimed every version of the next five seconds.
        let from = now_millis();
        for t in from..from + 5_000 {
            let path = layouts::version_claim_path(&spec.data_source, &format_iso(t)).unwrap();
            storage.put_create(&path, Bytes::from_static(b"{}")).await.unwrap();
        }
        let report = reindex(&storage, &spec, options("2013-08-31/2013-09-01")).await.unwrap();
        assert!(report.version >= format_iso(from + 5_000), "{}", report.version);

        // Two jobs at once: both publish (the later version wins) or the older stands down.
        let (a, b) = tokio::join!(
            reindex(&storage, &spec, options("2013-08-31/2013-09-01")),
            reindex(&storage, &spec, options("2013-08-31/2013-09-01")),
        );
        let mut versions = Vec::new();
        for result in [a, b] {
            match result {
                Ok(report) => versions.push(report.version),
                Err(e) => assert!(e.to_string().contains("the newer version stands"), "{e}"),
            }
        }
        assert!(!versions.is_empty());
        if let [first, second] = versions.as_slice() {
            assert_ne!(first, second);
        }
        assert_eq!(visible_count(&storage).await, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_truncated_gzip_fails_the_job_naming_the_file_and_publishes_nothing() {
        let storage = DeepStorage::open("memory://").unwrap();
        put_file(&storage, 1, "good.json.gz", gzip(&events(1, &["x"]))).await;
        let whole = gzip(&events(2, &["y"; 5000]));
        let broken = put_file(&storage, 2, "broken.json.gz", whole.slice(..whole.len() / 2)).await;
        let err = reindex(&storage, &spec(json!({})), options("2013-08-31/2013-09-01")).await.unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&broken) && message.contains("nothing was published"), "{message}");
        assert!(matches!(err, BatchError::CorruptRaw { .. }));
        assert!(storage.list("catalog").await.unwrap().is_empty());
        assert!(storage.list("segments").await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_lines_are_counted_and_named_and_the_rest_is_indexed() {
        let storage = DeepStorage::open("memory://").unwrap();
        let mut text = events(3, &["x", "y"]);
        text.push_str("{broken\n\n{\"page\": \"no time\"}\n");
        text.push_str(&format!("{{\"ts\": {}, \"page\": \"wrong hour\"}}\n", DAY + 7 * H));
        let path = put_file(&storage, 3, "mixed.json", Bytes::from(text)).await;
        let report = reindex(&storage, &spec(json!({})), options("2013-08-31/2013-09-01")).await.unwrap();
        assert_eq!((report.events, report.rejected), (2, 3));
        assert_eq!(report.first_rejects.len(), 3);
        assert!(
            report.first_rejects[0].starts_with(&format!("{path} line 3: not a valid JSON object")),
            "{:?}",
            report.first_rejects
        );
        assert!(report.first_rejects[1].contains("line 5: timestamp column \"ts\" is missing"));
        assert!(
            report.first_rejects[2]
                .contains("line 6: event time 2013-08-31T07:00:00.000Z is outside the hour")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn intervals_must_line_up_with_segment_granularity() {
        let storage = DeepStorage::open("memory://").unwrap();
        let err =
            reindex(&storage, &spec(json!({})), options("2013-08-31T05:00/2013-09-01")).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "interval 2013-08-31T05:00:00.000Z/2013-09-01T00:00:00.000Z does not line up with segmentGranularity \"day\"; \
             the enclosing aligned interval is 2013-08-31T00:00:00.000Z/2013-09-01T00:00:00.000Z"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_intervals_split_into_complete_partition_sets() {
        let storage = DeepStorage::open("memory://").unwrap();
        let pages: Vec<String> = (0..25).map(|i| format!("p{i:02}")).collect();
        let pages: Vec<&str> = pages.iter().map(String::as_str).collect();
        put_file(&storage, 0, "many.json", Bytes::from(events(0, &pages))).await;
        let report = reindex(&storage, &spec(json!({"maxRowsPerSegment": 10})), options("2013-08-31/P1D"))
            .await
            .unwrap();
        assert_eq!(report.intervals[0].partitions, 3);
        assert_eq!(report.rows, 25);
        let state = Catalog::new(storage.clone(), layouts::DataSourceName::new("wiki").unwrap())
            .load()
            .await
            .unwrap();
        let timeline = state.timeline();
        let chunk = &timeline.chunks()[0];
        assert_eq!(
            chunk.segments.iter().map(|s| (s.partition, s.partitions, s.rows)).collect::<Vec<_>>(),
            [(0, 3, 10), (1, 3, 10), (2, 3, 5)]
        );
        assert_eq!(visible_count(&storage).await, 25);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stream_parts_count_only_once_committed() {
        let storage = DeepStorage::open("memory://").unwrap();
        let layout = RawLayout::parse(RawLayout::DEFAULT_TEMPLATE).unwrap();
        let ds = layouts::DataSourceName::new("wiki").unwrap();
        let part =
            |start| RawFileName::StreamPart { partition: 0, start_offset: start, end_offset: start + 2 };
        let committed = layout.hour_file(&ds, DAY + H, &part(0));
        let uncommitted = layout.hour_file(&ds, DAY + H, &part(2));
        storage.put(&committed, gzip(&events(1, &["a", "b"]))).await.unwrap();
        storage.put(&uncommitted, gzip(&events(1, &["c", "d"]))).await.unwrap();
        let catalog = Catalog::new(storage.clone(), ds.clone());
        let mut state = catalog.load().await.unwrap();
        let paths = vec![committed.clone()];
        catalog
            .commit(&mut state, "stream", |_| Ok(vec![Action::CommitRawParts { paths: paths.clone() }]))
            .await
            .unwrap();
        let report = reindex(&storage, &spec(json!({})), options("2013-08-31/P1D")).await.unwrap();
        assert_eq!((report.events, report.raw_files), (2, 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interval_whose_raw_files_are_gone_becomes_a_tombstone() {
        let storage = DeepStorage::open("memory://").unwrap();
        let path = put_file(&storage, 1, "a.json", Bytes::from(events(1, &["x"]))).await;
        let spec = spec(json!({}));
        reindex(&storage, &spec, options("2013-08-31/P1D")).await.unwrap();
        storage.delete(&path).await.unwrap();
        let report = reindex(&storage, &spec, options("2013-08-31/P1D")).await.unwrap();
        assert!(report.intervals[0].tombstone);
        assert_eq!(visible_count(&storage).await, 0);
        // An interval that never had data gets no tombstone.
        let report = reindex(&storage, &spec, options("2013-09-05/P1D")).await.unwrap();
        assert!(!report.intervals[0].tombstone);
    }

    /// Each file's unit under a day-segment spec of `query` granularity, for files of `hours`.
    fn units(query: &str, hours: &[i64]) -> Vec<usize> {
        let files: Vec<RawInput> = hours
            .iter()
            .enumerate()
            .map(|(i, hour)| RawInput {
                path: format!("f{i}"),
                hour_start: DAY + hour * H,
                size: 1,
                e_tag: None,
            })
            .collect();
        let (units, count) = units_of(&RollupSchema::new(&with_query_granularity(query)), &files);
        assert_eq!(count, units.iter().max().map_or(0, |last| last + 1), "{query}: units {units:?}");
        units
    }

    #[test]
    fn files_share_a_unit_only_when_their_rows_can_fold_together() {
        // Hours apart: each hour is a unit, numbered in time order; files of one hour share it.
        assert_eq!(units("none", &[3, 1, 1, 2]), [2, 0, 0, 1]);
        assert_eq!(units("fifteen_minute", &[0, 1]), [0, 1]);
        assert_eq!(units("hour", &[0, 1, 30]), [0, 1, 2]);
        // Coarser: the hours of one bucket share a unit.
        assert_eq!(units("six_hour", &[0, 5, 6, 13]), [0, 0, 1, 2]);
        assert_eq!(units("day", &[0, 23, 24, 30]), [0, 0, 1, 1]);
        // `all` folds the rows of a segment (a day here) together.
        assert_eq!(units("all", &[0, 23, 24]), [0, 0, 1]);
    }

    #[test]
    fn consecutive_units_join_into_pieces_of_work_when_there_are_enough() {
        let files: Vec<RawInput> = (0..26)
            .map(|i| RawInput { path: format!("f{i}"), hour_start: DAY + (i % 24) * H, size: 1, e_tag: None })
            .collect();
        let schema = |query| RollupSchema::new(&with_query_granularity(query));

        // 24 hours, 2 threads: 8 pieces of 3 hours, the files of one hour (0 and 1) in one piece.
        let (items, count) = work_items(&schema("none"), &files, 2);
        assert_eq!(count, 8);
        let hours =
            |item: &WorkItem| -> Vec<i64> { item.files.iter().map(|f| (f.hour_start - DAY) / H).collect() };
        assert_eq!(items.iter().map(|item| item.unit).collect::<Vec<_>>(), (0..8).collect::<Vec<_>>());
        assert_eq!(hours(&items[0]), [0, 0, 1, 1, 2]);
        assert_eq!(hours(&items[7]), [21, 22, 23]);
        assert!(items.iter().all(|item| item.whole_unit), "each read whole, so built by its reader");

        // Fewer units than two per thread: a piece per file, of the unit it was in, built once
        // the workers' indexes of it are merged.
        let (items, count) = work_items(&schema("day"), &files, 2);
        assert_eq!((items.len(), count), (26, 1));
        assert!(items.iter().all(|item| item.unit == 0 && item.files.len() == 1 && !item.whole_unit));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_fold_across_the_files_and_hours_of_one_query_granularity_bucket() {
        let storage = DeepStorage::open("memory://").unwrap();
        put_file(&storage, 1, "a.json", Bytes::from(events(1, &["x", "y"]))).await;
        put_file(&storage, 1, "b.json", Bytes::from(events(1, &["x"]))).await;
        put_file(&storage, 5, "c.json", Bytes::from(events(5, &["z", "x"]))).await;
        put_file(&storage, 24, "d.json", Bytes::from(events(24, &["x"]))).await;

        // queryGranularity day: every event of a day and page is one row.
        reindex(&storage, &with_query_granularity("day"), options("2013-08-31/P2D")).await.unwrap();
        let day = |d: i64, page: &str, count| (DAY + d * 24 * H, page.to_string(), count);
        assert_eq!(
            visible_rows(&storage).await,
            [day(0, "x", 3), day(0, "y", 1), day(0, "z", 1), day(1, "x", 1)]
        );

        // queryGranularity hour: the two files of hour 1 still fold together.
        reindex(&storage, &spec(json!({})), options("2013-08-31/P2D")).await.unwrap();
        let hour = |h: i64, page: &str, count| (DAY + h * H, page.to_string(), count);
        assert_eq!(
            visible_rows(&storage).await,
            [hour(1, "x", 2), hour(1, "y", 1), hour(5, "x", 1), hour(5, "z", 1), hour(24, "x", 1)]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn partitions_cut_inside_hours_keep_segment_order() {
        let storage = DeepStorage::open("memory://").unwrap();
        let pages = ["p6", "p5", "p4", "p3", "p2", "p1", "p0"];
        // Four hours, so each of the two workers reads whole hours into indexes of their own.
        for hour in [2, 0, 3, 1] {
            put_file(&storage, hour, "seven.json", Bytes::from(events(hour, &pages))).await;
        }
        let report = reindex(&storage, &spec(json!({"maxRowsPerSegment": 10})), options("2013-08-31/P1D"))
            .await
            .unwrap();
        assert_eq!((report.rows, report.intervals[0].partitions), (28, 3));
        let segments = visible_segments(&storage).await;
        let shape: Vec<(u32, usize)> = segments.iter().map(|(d, b)| (d.partition, b.num_rows())).collect();
        assert_eq!(shape, [(0, 10), (1, 10), (2, 8)]);
        let expected: Vec<(i64, String, i64)> =
            (0..4).flat_map(|hour| (0..7).map(move |p| (DAY + hour * H, format!("p{p}"), 1))).collect();
        assert_eq!(visible_rows(&storage).await, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn discovered_dimensions_of_different_hours_share_one_file() {
        let storage = DeepStorage::open("memory://").unwrap();
        let event = |hour: i64, field: &str| {
            format!("{{\"ts\": {}, \"{field}\": \"{hour}\", \"added\": 1}}\n", DAY + hour * H)
        };
        put_file(&storage, 0, "a.json", Bytes::from(event(0, "a") + &event(0, "c"))).await;
        put_file(&storage, 1, "b.json", Bytes::from(event(1, "b"))).await;
        let spec = spec_with(json!({}), |s| s["dimensionsSpec"] = json!({"dimensions": []}));
        reindex(&storage, &spec, options("2013-08-31/P1D")).await.unwrap();

        let segments = visible_segments(&storage).await;
        let [(description, batch)] = segments.as_slice() else { panic!("one segment: {segments:?}") };
        let names: Vec<&str> = description.dimensions.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let column = |name| strings(batch, name);
        let (zero, one) = (Some("0".to_string()), Some("1".to_string()));
        // At one time, a null sorts first: the event without `a` comes before the one with it.
        assert_eq!(column("a"), [None, zero.clone(), None]);
        assert_eq!(column("b"), [None, None, one]);
        assert_eq!(column("c"), [zero, None, None]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn discovered_dimensions_of_units_encoded_apart_share_one_file() {
        // Five hours: enough for each worker to read whole hours and encode them on its own.
        let storage = DeepStorage::open("memory://").unwrap();
        let fields: [&[&str]; 5] = [&["a"], &["b"], &[], &["a", "c"], &["b"]];
        for (hour, fields) in fields.iter().enumerate() {
            let hour = hour as i64;
            let values: String = fields.iter().map(|f| format!(", \"{f}\": \"{hour}\"")).collect();
            let event = format!("{{\"ts\": {}{values}, \"added\": 1}}\n", DAY + hour * H);
            put_file(&storage, hour, "e.json", Bytes::from(event)).await;
        }
        let spec = spec_with(json!({}), |s| s["dimensionsSpec"] = json!({"dimensions": []}));
        let report = reindex(&storage, &spec, options("2013-08-31/P1D")).await.unwrap();
        assert_eq!((report.rows, report.intervals[0].partitions), (5, 1));

        let segments = visible_segments(&storage).await;
        let [(description, batch)] = segments.as_slice() else { panic!("one segment: {segments:?}") };
        let names: Vec<&str> = description.dimensions.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let value = |hour: &str| Some(hour.to_string());
        assert_eq!(strings(batch, "a"), [value("0"), None, None, value("3"), None]);
        assert_eq!(strings(batch, "b"), [None, value("1"), None, None, value("4")]);
        assert_eq!(strings(batch, "c"), [None, None, None, value("3"), None]);
    }

    /// A unit of `rows` events of one page each, in `hour`, built as a worker builds it.
    fn built_unit(spec: &DataSourceSpec, hour: i64, rows: usize) -> UnitBatches {
        let mut index = RollupIndex::new(RollupSchema::new(spec));
        let pages: Vec<String> = (0..rows).map(|r| format!("p{r:02}")).collect();
        let pages: Vec<&str> = pages.iter().map(String::as_str).collect();
        for line in events(hour, &pages).lines() {
            index.parse(line.as_bytes()).unwrap();
            index.fold_parsed();
        }
        UnitBatches::build(&index)
    }

    #[test]
    fn units_built_out_of_order_wait_for_their_place_and_are_cut_where_partitions_end() {
        let spec = spec(json!({}));
        let day = Interval::parse("2013-08-31/P1D").unwrap();
        let mut placement = Placement::new(10, "v1");
        // Unit 2 is built first: it cannot be placed until units 0 and 1 are.
        assert!(placement.add(2, built_unit(&spec, 2, 7)).is_empty());
        let first = placement.add(0, built_unit(&spec, 0, 7));
        assert_eq!(first.iter().map(|p| (p.unit, p.first_rows[&day])).collect::<Vec<_>>(), [(0, 0)]);
        let placed = placement.add(1, built_unit(&spec, 1, 7));
        let starts: Vec<(usize, usize)> = placed.iter().map(|p| (p.unit, p.first_rows[&day])).collect();
        assert_eq!(starts, [(1, 7), (2, 14)]);
        assert!(placement.waiting.is_empty());

        let mut units: Vec<(usize, EncodedUnit)> = vec![];
        for unit in first.into_iter().chain(placed) {
            units.push(unit.encode("wiki").unwrap());
        }
        let pieces: Vec<(usize, u32, usize)> = units
            .iter()
            .flat_map(|(unit, encoded)| {
                encoded.pieces.iter().map(move |((_, p), rows)| (*unit, *p, rows.rows()))
            })
            .collect();
        // Rows 0..7 are unit 0's, 7..14 unit 1's, 14..21 unit 2's; partitions end every 10 rows.
        assert_eq!(pieces, [(0, 0, 7), (1, 0, 3), (1, 1, 4), (2, 1, 6), (2, 2, 1)]);

        let files = segment_files(units.into_iter().map(|(_, encoded)| encoded).collect());
        let shape: Vec<(u32, u32, usize, usize)> =
            files.iter().map(|f| (f.partition, f.partitions, f.pieces.len(), f.rows())).collect();
        assert_eq!(shape, [(0, 3, 2, 10), (1, 3, 2, 10), (2, 3, 1, 1)]);
    }
}
