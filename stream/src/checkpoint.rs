//! A checkpoint: the hand-off's segments, the raw parts and the rejects are written, then
//! committed with the new Kafka offsets in one catalog commit whose offset check fails if
//! another writer moved them. Files written by a checkpoint that never commits (the daemon was
//! killed, or lost the offset check) are not in the catalog, so nothing reads them; the replay
//! writes its own.
//!
//! Stream segments all have [`STREAM_VERSION`] and form one appendable set per interval
//! (`partitions: 0`): each checkpoint adds partitions, and any batch version overshadows them.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use common::archive::rejects_part;
use common::catalog::{Action, Catalog, CatalogState, OffsetMove, Origin, SegmentRecord, now_millis};
use common::rollup::RollupIndex;
use common::segment::{encode_index_rows, segment_id};
use common::spec::DataSourceSpec;
use common::storage::{DeepStorage, StorageError};
use common::time::{Interval, format_iso};
use futures::{StreamExt, TryStreamExt};
use layouts::{RawFileName, RawLayout, SegmentPath};
use tracing::info;

use crate::StreamError;
use crate::archive::{StreamArchive, StreamPart};

/// The version of every stream segment. Batch versions are the time their job started, so a
/// batch version always overshadows the stream's, and the stream's checkpoints, before and
/// after restarts, all add to one set per interval.
pub const STREAM_VERSION: &str = "1970-01-01T00:00:00.000Z";

/// Deep-storage writes a checkpoint runs at once.
const CONCURRENT_WRITES: usize = 8;

/// Writing raw parts the archive finished before the checkpoint that commits them.
pub type WriteAhead = tokio::task::JoinHandle<Result<WrittenParts, StreamError>>;

/// What a checkpoint commits.
#[derive(Debug)]
pub struct Checkpoint {
    /// The frozen rows.
    pub index: Arc<RollupIndex>,
    /// Each consumed partition's offset move.
    pub moves: Vec<OffsetMove>,
    /// The raw messages and rejects still in memory.
    pub archive: StreamArchive,
    /// The raw parts of these offsets already on their way to deep storage.
    pub written_ahead: Vec<WriteAhead>,
}

/// Raw parts written to deep storage, not committed yet.
#[derive(Debug, Default)]
pub struct WrittenParts {
    /// Their paths.
    pub paths: Vec<String>,
    /// Their bytes.
    pub bytes: u64,
}

/// What a committed checkpoint did.
#[derive(Debug)]
pub struct CheckpointReport {
    /// The commit's sequence number.
    pub seq: u64,
    /// Segments written.
    pub segments: usize,
    /// Rows in them.
    pub rows: u64,
    /// Raw parts written.
    pub raw_parts: usize,
    /// Bytes written: segments, raw parts, rejects.
    pub bytes: u64,
    /// The catalog after the commit.
    pub state: CatalogState,
}

/// Writes and commits a checkpoint against `state` (refreshed as needed).
pub async fn checkpoint(
    storage: &DeepStorage,
    spec: &DataSourceSpec,
    layout: &RawLayout,
    mut state: CatalogState,
    checkpoint: Checkpoint,
) -> Result<CheckpointReport, StreamError> {
    let started = Instant::now();
    let catalog = Catalog::new(storage.clone(), spec.data_source.clone());
    let Checkpoint { index, moves, archive, written_ahead } = checkpoint;
    let (parts, rejects) = archive.finish();
    let WrittenParts { paths: mut raw_paths, mut bytes } =
        write_raw_parts(storage, spec, layout, parts).await?;
    for task in written_ahead {
        let ahead = task
            .await
            .map_err(|e| StreamError::Internal(format!("writing raw parts ahead failed: {e}")))??;
        raw_paths.extend(ahead.paths);
        bytes += ahead.bytes;
    }
    if !rejects.is_empty() {
        let part = rejects_part(&rejects);
        let path = layouts::rejects_path(&spec.data_source, &format!("stream-{}.json.gz", part.content_hash))
            .map_err(|e| StreamError::Internal(e.to_string()))?;
        bytes += part.gzip.len() as u64;
        create_all(storage, vec![(path, Bytes::from(part.gzip))]).await?;
    }
    let raw_parts = raw_paths.len();

    catalog.refresh(&mut state).await?;
    let segments = write_segments(storage, spec, &state, index).await?;
    let rows = segments.iter().map(|s| s.rows).sum();
    bytes += segments.iter().map(|s| s.bytes).sum::<u64>();
    let segment_count = segments.len();

    let mut actions = Vec::new();
    if !segments.is_empty() {
        actions.push(Action::AddSegments { segments });
    }
    if !raw_paths.is_empty() {
        actions.push(Action::CommitRawParts { paths: raw_paths });
    }
    actions.push(Action::SetOffsets { offsets: moves });
    let committed = catalog.commit(&mut state, "stream", |_| Ok(actions.clone())).await?;
    info!(
        data_source = %spec.data_source,
        seq = committed.seq,
        segments = segment_count,
        rows,
        raw_parts,
        bytes,
        seconds = started.elapsed().as_secs_f64(),
        "Checkpoint committed."
    );
    Ok(CheckpointReport { seq: committed.seq, segments: segment_count, rows, raw_parts, bytes, state })
}

/// Writes raw parts, committing nothing: ahead of the checkpoint that commits them, or as part
/// of it.
pub async fn write_raw_parts(
    storage: &DeepStorage,
    spec: &DataSourceSpec,
    layout: &RawLayout,
    parts: Vec<StreamPart>,
) -> Result<WrittenParts, StreamError> {
    let writes =
        parts.into_iter().map(|part| raw_part_write(spec, layout, part)).collect::<Result<Vec<_>, _>>()?;
    let written = WrittenParts {
        paths: writes.iter().map(|(path, _)| path.clone()).collect(),
        bytes: writes.iter().map(|(_, body)| body.len() as u64).sum(),
    };
    create_all(storage, writes).await?;
    Ok(written)
}

/// Creates the files, a few at a time. A name already there holds these very bytes (see the
/// archive module), so it stays.
async fn create_all(storage: &DeepStorage, writes: Vec<(String, Bytes)>) -> Result<(), StreamError> {
    futures::stream::iter(writes)
        .map(|(path, body)| async move {
            match storage.put_create(&path, body).await {
                Ok(()) | Err(StorageError::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(CONCURRENT_WRITES)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// A raw part's path in the layout, and its bytes.
fn raw_part_write(
    spec: &DataSourceSpec,
    layout: &RawLayout,
    part: StreamPart,
) -> Result<(String, Bytes), StreamError> {
    let name = RawFileName::StreamPart {
        partition: part.partition,
        start_offset: part.first_offset,
        end_offset: part.end_offset,
    };
    if !(layouts::MIN_PATH_MILLIS..=layouts::MAX_PATH_MILLIS).contains(&part.hour_start) {
        return Err(StreamError::Internal(format!(
            "event hour {} is outside what paths can hold",
            part.hour_start
        )));
    }
    Ok((layout.hour_file(&spec.data_source, part.hour_start, &name), Bytes::from(part.gzip)))
}

/// Encodes and writes the hand-off's segments, each interval's rows split by
/// `maxRowsPerSegment`, each file taking the next free partition number of its interval's
/// stream set (create-only, so two writers never share one).
async fn write_segments(
    storage: &DeepStorage,
    spec: &DataSourceSpec,
    state: &CatalogState,
    index: Arc<RollupIndex>,
) -> Result<Vec<SegmentRecord>, StreamError> {
    if index.rows() == 0 {
        return Ok(Vec::new());
    }
    let max_rows = spec.tuning.max_rows_per_segment.max(1) as usize;
    let sorted = {
        let index = Arc::clone(&index);
        tokio::task::spawn_blocking(move || {
            let ranks = index.ranks();
            let segments = index.segments(&ranks);
            (ranks, segments)
        })
        .await
        .map_err(|e| StreamError::Internal(format!("sorting rows failed: {e}")))?
    };
    let (ranks, by_interval) = sorted;
    let ranks = Arc::new(ranks);
    let mut records = Vec::new();
    for (interval, rows) in by_interval {
        let mut partition = next_partition(state, interval);
        for chunk in rows.rows.chunks(max_rows) {
            let chunk = Arc::new(chunk.to_vec());
            loop {
                let (index, ranks, chunk_rows) = (Arc::clone(&index), Arc::clone(&ranks), Arc::clone(&chunk));
                let body = tokio::task::spawn_blocking(move || {
                    encode_index_rows(&index, &ranks, &chunk_rows, interval, STREAM_VERSION, partition)
                })
                .await
                .map_err(|e| StreamError::Internal(format!("segment encoder failed: {e}")))?
                .map_err(|e| StreamError::Internal(e.to_string()))?;
                let path = SegmentPath::new(
                    spec.data_source.clone(),
                    interval.start,
                    interval.end,
                    STREAM_VERSION,
                    partition,
                )
                .map_err(|e| StreamError::Internal(e.to_string()))?
                .to_path();
                let size = body.len() as u64;
                match storage.put_create(&path, body).await {
                    Ok(()) => {
                        records.push(record(spec, interval, partition, chunk.len() as u64, size, path));
                        partition += 1;
                        break;
                    }
                    // Left by a checkpoint that never committed, or taken by another writer.
                    Err(StorageError::AlreadyExists { .. }) => partition += 1,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(records)
}

/// One past the highest partition number of an interval's stream set the catalog knows.
fn next_partition(state: &CatalogState, interval: Interval) -> u32 {
    state
        .segments
        .values()
        .chain(state.unused.values())
        .filter(|s| s.interval == interval && s.version == STREAM_VERSION)
        .map(|s| s.partition + 1)
        .max()
        .unwrap_or(0)
}

fn record(
    spec: &DataSourceSpec,
    interval: Interval,
    partition: u32,
    rows: u64,
    bytes: u64,
    path: String,
) -> SegmentRecord {
    SegmentRecord {
        id: segment_id(spec.data_source.as_str(), interval, STREAM_VERSION, partition),
        data_source: spec.data_source.to_string(),
        interval,
        version: STREAM_VERSION.to_string(),
        partition,
        partitions: 0,
        rows,
        bytes,
        path: Some(path),
        origin: Origin::Stream,
        created: format_iso(now_millis()),
    }
}

#[cfg(test)]
mod tests {
    use common::spec::load_specs;

    use super::*;

    fn spec() -> DataSourceSpec {
        let text = r#"{"type": "kafka", "spec": {"dataSchema": {"dataSource": "wiki",
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {"dimensions": ["page"]},
            "metricsSpec": [{"type": "count", "name": "count"}],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}},
            "ioConfig": {"topic": "wiki"}}}"#;
        load_specs(text, "test").unwrap().specs.remove(0)
    }

    fn handoff(
        spec: &DataSourceSpec,
        offsets: std::ops::Range<i64>,
        expected_start: Option<i64>,
    ) -> Checkpoint {
        handoff_in_parts_of(spec, offsets, expected_start, 1 << 20)
    }

    /// Messages of partition 0 at these offsets, six per hour, archived in parts of at most
    /// `max_part_bytes`.
    fn handoff_in_parts_of(
        spec: &DataSourceSpec,
        offsets: std::ops::Range<i64>,
        expected_start: Option<i64>,
        max_part_bytes: u64,
    ) -> Checkpoint {
        let mut index = RollupIndex::new(common::rollup::RollupSchema::new(spec));
        let mut archive = StreamArchive::new(max_part_bytes);
        for offset in offsets.clone() {
            let line = message(offset);
            index.add(line.as_bytes()).unwrap();
            archive.add(0, offset, offset * 600_000, line.as_bytes());
        }
        let moves = vec![OffsetMove { partition: 0, expected_start, end: offsets.end }];
        Checkpoint { index: Arc::new(index), moves, archive, written_ahead: Vec::new() }
    }

    fn message(offset: i64) -> String {
        format!(r#"{{"ts": {}, "page": "p{offset}"}}"#, offset * 600_000)
    }

    fn layout() -> RawLayout {
        RawLayout::parse(RawLayout::DEFAULT_TEMPLATE).unwrap()
    }

    /// Every line of the raw parts the catalog commits.
    async fn committed_lines(storage: &DeepStorage, state: &CatalogState) -> Vec<String> {
        let mut lines = Vec::new();
        for path in &state.raw_parts {
            let text = crate::archive::tests::gunzip(&storage.get(path).await.unwrap());
            lines.extend(text.lines().map(str::to_string));
        }
        lines
    }

    /// Parts finished early are written ahead; the checkpoint waits for those writes and
    /// commits them with its own parts, so every message is in exactly one committed part. A
    /// write ahead that failed fails the checkpoint, which then commits nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn raw_parts_written_ahead_are_committed_by_their_checkpoint() {
        let storage = DeepStorage::open("memory://").unwrap();
        let (spec, layout) = (spec(), layout());
        let mut handoff = handoff_in_parts_of(&spec, 0..40, None, 100);
        let finished = handoff.archive.take_finished_parts();
        assert!(finished.len() >= 6, "parts of most hours finished early: {finished:?}");
        let ahead = {
            let (storage, spec, layout) = (storage.clone(), spec.clone(), layout.clone());
            tokio::spawn(async move { write_raw_parts(&storage, &spec, &layout, finished).await })
        };
        handoff.written_ahead.push(ahead);
        let report = checkpoint(&storage, &spec, &layout, CatalogState::default(), handoff).await.unwrap();
        assert_eq!(report.raw_parts, report.state.raw_parts.len());
        assert!(report.raw_parts > 7, "parts written ahead and at the checkpoint");
        let mut lines = committed_lines(&storage, &report.state).await;
        let mut expected: Vec<String> = (0..40).map(message).collect();
        lines.sort();
        expected.sort();
        assert_eq!(lines, expected);

        let mut failing = handoff_in_parts_of(&spec, 40..50, Some(40), 100);
        failing
            .written_ahead
            .push(tokio::spawn(async { Err(StreamError::Internal("deep storage is down".to_string())) }));
        let err = checkpoint(&storage, &spec, &layout, report.state.clone(), failing).await.unwrap_err();
        assert!(err.to_string().contains("deep storage is down"), "{err}");
        let state = Catalog::new(storage.clone(), spec.data_source.clone()).load().await.unwrap();
        assert_eq!((state.seq, state.offsets[&0]), (report.seq, 40));
        assert_eq!(committed_lines(&storage, &state).await.len(), 40);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checkpoints_append_partitions_and_the_offset_check_turns_a_stale_writer_away() {
        let storage = DeepStorage::open("memory://").unwrap();
        let spec = spec();
        let layout = layout();
        let first = checkpoint(&storage, &spec, &layout, CatalogState::default(), handoff(&spec, 0..3, None))
            .await
            .unwrap();
        let second = checkpoint(&storage, &spec, &layout, first.state.clone(), handoff(&spec, 3..5, Some(3)))
            .await
            .unwrap();
        let partitions: Vec<(u32, u32)> =
            second.state.segments.values().map(|s| (s.partition, s.partitions)).collect();
        assert_eq!(partitions, [(0, 0), (1, 0)], "one appendable set, a partition per checkpoint");
        assert_eq!(second.state.timeline().chunks()[0].segments.len(), 2);
        assert_eq!(second.state.offsets[&0], 5);
        assert_eq!(second.state.raw_parts.len(), 2);

        // A second writer that consumed 0..4 from the start: its commit must not land.
        let stale =
            checkpoint(&storage, &spec, &layout, CatalogState::default(), handoff(&spec, 0..4, None)).await;
        let err = stale.unwrap_err().to_string();
        assert!(err.contains("partition 0 offset is 5, the writer expected unset"), "{err}");
        let state = Catalog::new(storage.clone(), spec.data_source.clone()).load().await.unwrap();
        assert_eq!(state.seq, 2);
        assert_eq!(state.segments.values().map(|s| s.rows).sum::<u64>(), 5);
    }
}
