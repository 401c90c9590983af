//! The catalog: each dataSource's commit log on the object store, the single source of truth
//! for which segments exist, which raw parts are committed and where the stream stands.
//!
//! A commit is a JSON file written create-only at the next sequence number, so two writers
//! racing for one number cannot both win. The loser re-reads what won, rebuilds its actions
//! against the new state (the check that its commit still applies runs again) and retries a
//! bounded number of times. Every `snapshot_every` commits the whole state is written as a
//! snapshot so loading reads one snapshot and a short tail of the log.

mod timeline;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use layouts::{CatalogFile, DataSourceName};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::storage::{DeepStorage, StorageError};
use crate::time::{Interval, Millis, format_iso};

pub use timeline::{Timeline, TimelineChunk, Visibility};

/// Commits between snapshots.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 20;
/// Attempts at one commit before giving up on contention.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 20;

/// A catalog failure.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The commit no longer applies to the catalog as it now stands.
    #[error("catalog of \"{data_source}\": commit conflicts: {reason}")]
    Conflict {
        /// The dataSource.
        data_source: String,
        /// What changed under the writer.
        reason: String,
    },
    /// Other writers kept winning.
    #[error("catalog of \"{data_source}\": gave up after {attempts} attempts lost to concurrent writers")]
    Contention {
        /// The dataSource.
        data_source: String,
        /// How many times it tried.
        attempts: u32,
    },
    /// A catalog file cannot be read.
    #[error("catalog file {path}: {message}")]
    Corrupt {
        /// Relative path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Deep storage failed (external: retry with backoff).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Who made a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The streaming daemon's checkpoint.
    Stream,
    /// A batch reindex.
    Batch,
}

/// One segment as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentRecord {
    /// Druid segment id.
    pub id: String,
    /// The table.
    pub data_source: String,
    /// The segment interval.
    pub interval: Interval,
    /// Version; higher overshadows lower.
    pub version: String,
    /// Partition number within (interval, version).
    pub partition: u32,
    /// How many partitions the (interval, version) set has; the set is complete when all are
    /// present. Zero marks an appendable set (the stream's), complete with any partitions.
    pub partitions: u32,
    /// Rollup rows.
    pub rows: u64,
    /// File size.
    pub bytes: u64,
    /// File path relative to the deep-storage root; none for a tombstone, which holds no rows
    /// and only overshadows.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub path: Option<String>,
    /// Stream or batch.
    pub origin: Origin,
    /// When it was created, ISO 8601.
    pub created: String,
}

impl SegmentRecord {
    /// Whether this segment only marks its interval as empty.
    pub fn is_tombstone(&self) -> bool {
        self.path.is_none()
    }
}

/// Which raw files a batch version was built from, so the scheduler can tell when they change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fingerprint {
    /// The segment interval.
    pub interval: Interval,
    /// The batch version built from these files.
    pub version: String,
    /// SHA-256 over the sorted (path, size, etag) of the files read.
    pub digest: String,
    /// Number of raw files read.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
    /// SHA-256 of the rollup part of the spec the version was built with (timestamp,
    /// dimensions, metrics, granularities), so a job with another reindexing spec rebuilds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
}

/// Where a Kafka partition's committed offset moves: the check-and-set of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OffsetMove {
    /// The Kafka partition.
    pub partition: i32,
    /// The offset the writer started from; none when the catalog had none.
    pub expected_start: Option<i64>,
    /// The next offset to consume.
    pub end: i64,
}

/// One change in a commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// New segments; the timeline decides what they overshadow.
    #[serde(rename_all = "camelCase")]
    AddSegments {
        /// The segments.
        segments: Vec<SegmentRecord>,
    },
    /// Segments no longer used (their files may be cleaned up later).
    #[serde(rename_all = "camelCase")]
    DropSegments {
        /// Segment ids.
        ids: Vec<String>,
    },
    /// Unused segments whose files cleanup has deleted: the catalog forgets them.
    #[serde(rename_all = "camelCase")]
    PurgeSegments {
        /// Segment ids.
        ids: Vec<String>,
    },
    /// Raw archive parts written by the stream, which count as raw input from now on.
    #[serde(rename_all = "camelCase")]
    CommitRawParts {
        /// Paths relative to the deep-storage root.
        paths: Vec<String>,
    },
    /// The stream's Kafka offsets, checked against what the writer started from.
    #[serde(rename_all = "camelCase")]
    SetOffsets {
        /// One per Kafka partition.
        offsets: Vec<OffsetMove>,
    },
    /// Forgets the stream's offsets of some partitions (the supervisor API's reset): the stream
    /// starts them again from its start position.
    #[serde(rename_all = "camelCase")]
    ResetOffsets {
        /// Kafka partitions.
        partitions: Vec<i32>,
    },
    /// Raw-file fingerprints of batch-built intervals.
    #[serde(rename_all = "camelCase")]
    RecordFingerprints {
        /// One per interval.
        fingerprints: Vec<Fingerprint>,
    },
}

/// One file of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Commit {
    /// Sequence number, from 1.
    pub seq: u64,
    /// Unique per commit attempt series, so a writer can recognise its own commit after an
    /// ambiguous failure.
    pub commit_id: String,
    /// When it was written, ISO 8601.
    pub time: String,
    /// Who wrote it (e.g. "batch reindex").
    pub writer: String,
    /// The changes.
    pub actions: Vec<Action>,
}

/// The state of one dataSource's catalog at a sequence number.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogState {
    /// The last commit applied; 0 when empty.
    pub seq: u64,
    /// Segments in use, by id.
    pub segments: BTreeMap<String, SegmentRecord>,
    /// Dropped segments, by id, until cleanup removes their files.
    pub unused: BTreeMap<String, SegmentRecord>,
    /// When each unused segment was dropped (the drop commit's time, ISO 8601), by id.
    #[serde(default)]
    pub unused_since: BTreeMap<String, String>,
    /// Committed raw parts.
    pub raw_parts: BTreeSet<String>,
    /// The next offset to consume, per Kafka partition.
    pub offsets: BTreeMap<i32, i64>,
    /// Batch fingerprints, by interval text.
    pub fingerprints: BTreeMap<String, Fingerprint>,
}

impl CatalogState {
    /// Checks that actions apply to this state: no segment or raw part added twice, offsets
    /// moving from where the writer expects them.
    pub fn check(&self, data_source: &str, actions: &[Action]) -> Result<(), CatalogError> {
        let conflict = |reason: String| CatalogError::Conflict { data_source: data_source.into(), reason };
        for action in actions {
            match action {
                Action::AddSegments { segments } => {
                    for s in segments {
                        if self.segments.contains_key(&s.id) || self.unused.contains_key(&s.id) {
                            return Err(conflict(format!("segment {} is already in the catalog", s.id)));
                        }
                    }
                }
                Action::CommitRawParts { paths } => {
                    if let Some(p) = paths.iter().find(|p| self.raw_parts.contains(*p)) {
                        return Err(conflict(format!("raw part {p} is already committed")));
                    }
                }
                Action::SetOffsets { offsets } => {
                    for change in offsets {
                        let partition = change.partition;
                        let current = self.offsets.get(&partition).copied();
                        if current != change.expected_start {
                            return Err(conflict(format!(
                                "partition {partition} offset is {}, the writer expected {}",
                                current.map_or("unset".into(), |o| o.to_string()),
                                change.expected_start.map_or("unset".into(), |o| o.to_string()),
                            )));
                        }
                    }
                }
                Action::DropSegments { .. }
                | Action::PurgeSegments { .. }
                | Action::ResetOffsets { .. }
                | Action::RecordFingerprints { .. } => {}
            }
        }
        Ok(())
    }

    /// Applies a commit that won its sequence number.
    pub fn apply(&mut self, commit: &Commit) {
        for action in &commit.actions {
            match action {
                Action::AddSegments { segments } => {
                    for s in segments {
                        self.segments.insert(s.id.clone(), s.clone());
                    }
                }
                Action::DropSegments { ids } => {
                    for id in ids {
                        if let Some(s) = self.segments.remove(id) {
                            self.unused.insert(id.clone(), s);
                            self.unused_since.insert(id.clone(), commit.time.clone());
                        }
                    }
                }
                Action::PurgeSegments { ids } => {
                    for id in ids {
                        self.unused.remove(id);
                        self.unused_since.remove(id);
                    }
                }
                Action::CommitRawParts { paths } => self.raw_parts.extend(paths.iter().cloned()),
                Action::SetOffsets { offsets } => {
                    for change in offsets {
                        self.offsets.insert(change.partition, change.end);
                    }
                }
                Action::ResetOffsets { partitions } => {
                    for partition in partitions {
                        self.offsets.remove(partition);
                    }
                }
                Action::RecordFingerprints { fingerprints } => {
                    for f in fingerprints {
                        self.fingerprints.insert(f.interval.to_string(), f.clone());
                    }
                }
            }
        }
        self.seq = commit.seq;
    }

    /// The timeline of the segments in use.
    pub fn timeline(&self) -> Timeline {
        Timeline::build(self.segments.values())
    }

    /// The highest version among used segments overlapping an interval.
    pub fn max_version_overlapping(&self, interval: Interval) -> Option<&str> {
        self.segments.values().filter(|s| s.interval.overlaps(&interval)).map(|s| s.version.as_str()).max()
    }
}

/// One dataSource's catalog in deep storage.
#[derive(Debug, Clone)]
pub struct Catalog {
    storage: DeepStorage,
    data_source: DataSourceName,
    snapshot_every: u64,
    max_attempts: u32,
}

/// Outcome of a successful commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The sequence number it landed at.
    pub seq: u64,
    /// How many attempts it took.
    pub attempts: u32,
}

impl Catalog {
    /// The catalog of one dataSource.
    pub fn new(storage: DeepStorage, data_source: DataSourceName) -> Self {
        Self {
            storage,
            data_source,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }

    /// Changes how often snapshots are written.
    pub fn with_snapshot_every(mut self, commits: u64) -> Self {
        self.snapshot_every = commits.max(1);
        self
    }

    /// Every dataSource that has a catalog.
    pub async fn data_sources(storage: &DeepStorage) -> Result<Vec<DataSourceName>, CatalogError> {
        let names = storage.list_dirs(layouts::catalog_root()).await?;
        Ok(names.iter().filter_map(|n| DataSourceName::new(n).ok()).collect())
    }

    /// Reads the latest state: the newest snapshot, then the log after it.
    pub async fn load(&self) -> Result<CatalogState, CatalogError> {
        let mut state = CatalogState::default();
        let snapshots = self.storage.list(&layouts::snapshot_dir(&self.data_source)).await?;
        let newest = snapshots
            .iter()
            .filter_map(|o| match layouts::parse_catalog_path(&o.path) {
                Ok((_, CatalogFile::Snapshot(seq))) => Some((seq, o.path.clone())),
                _ => None,
            })
            .max();
        if let Some((seq, path)) = newest {
            let bytes = self.storage.get(&path).await?;
            match serde_json::from_slice::<CatalogState>(&bytes) {
                Ok(snapshot) if snapshot.seq == seq => state = snapshot,
                // The log is complete, so a bad snapshot costs time, not correctness.
                Ok(_) => warn!(path, "Snapshot sequence does not match its name; reading the whole log."),
                Err(e) => warn!(path, error = %e, "Unreadable snapshot; reading the whole log."),
            }
        }
        self.refresh(&mut state).await?;
        Ok(state)
    }

    /// Applies the commits written since `state` was read; returns their commit ids.
    pub async fn refresh(&self, state: &mut CatalogState) -> Result<Vec<String>, CatalogError> {
        let dir = layouts::log_dir(&self.data_source);
        let after = layouts::log_path(&self.data_source, state.seq);
        let objects = self.storage.list_after(&dir, &after).await?;
        let mut applied = Vec::new();
        for object in objects {
            let seq = match layouts::parse_catalog_path(&object.path) {
                Ok((_, CatalogFile::Log(seq))) => seq,
                _ => continue,
            };
            if seq != state.seq + 1 {
                // Sequence numbers are claimed create-only one after another; a gap means a
                // file was removed by hand.
                return Err(CatalogError::Corrupt {
                    path: object.path,
                    message: format!("expected commit {} next", state.seq + 1),
                });
            }
            let bytes = self.storage.get(&object.path).await?;
            let commit: Commit = serde_json::from_slice(&bytes)
                .map_err(|e| CatalogError::Corrupt { path: object.path.clone(), message: e.to_string() })?;
            state.apply(&commit);
            applied.push(commit.commit_id);
        }
        Ok(applied)
    }

    /// Commits the actions `build` makes from the latest state, retrying when another writer
    /// takes the sequence number first. `build` runs again on every attempt so that it can
    /// decide against what won; its error (usually [`CatalogError::Conflict`]) stops the
    /// commit. On success `state` includes the commit.
    pub async fn commit<F>(
        &self,
        state: &mut CatalogState,
        writer: &str,
        mut build: F,
    ) -> Result<Committed, CatalogError>
    where
        F: FnMut(&CatalogState) -> Result<Vec<Action>, CatalogError>,
    {
        let commit_id = uuid::Uuid::new_v4().to_string();
        for attempt in 1..=self.max_attempts {
            let applied = self.refresh(state).await?;
            if applied.contains(&commit_id) {
                // An earlier attempt landed although its write reported failure.
                return Ok(Committed { seq: state.seq, attempts: attempt });
            }
            let actions = build(state)?;
            state.check(self.data_source.as_str(), &actions)?;
            let commit = Commit {
                seq: state.seq + 1,
                commit_id: commit_id.clone(),
                time: format_iso(now_millis()),
                writer: writer.into(),
                actions,
            };
            let path = layouts::log_path(&self.data_source, commit.seq);
            let json = serde_json::to_vec_pretty(&commit).expect("commits serialize");
            match self.storage.put_create(&path, Bytes::from(json)).await {
                Ok(()) => {
                    state.apply(&commit);
                    info!(data_source = %self.data_source, seq = commit.seq, attempts = attempt, writer, "Committed.");
                    if commit.seq.is_multiple_of(self.snapshot_every) {
                        self.write_snapshot(state).await;
                    }
                    return Ok(Committed { seq: commit.seq, attempts: attempt });
                }
                Err(StorageError::AlreadyExists { .. }) => {
                    debug!(data_source = %self.data_source, seq = commit.seq, attempt, "Lost the race for a sequence number; retrying.");
                    // Spread retrying writers apart a little.
                    let jitter = (uuid::Uuid::new_v4().as_u128() % 20) as u64;
                    tokio::time::sleep(Duration::from_millis(jitter * u64::from(attempt.min(5)))).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(CatalogError::Contention {
            data_source: self.data_source.to_string(),
            attempts: self.max_attempts,
        })
    }

    async fn write_snapshot(&self, state: &CatalogState) {
        let path = layouts::snapshot_path(&self.data_source, state.seq);
        let json = serde_json::to_vec(state).expect("state serializes");
        match self.storage.put_create(&path, Bytes::from(json)).await {
            Ok(()) | Err(StorageError::AlreadyExists { .. }) => {}
            // A missing snapshot only makes the next load read more of the log.
            Err(e) => warn!(path, error = %e, "Could not write a catalog snapshot."),
        }
    }
}

/// One segment as `braid segments` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentView {
    /// Druid segment id.
    pub id: String,
    /// The table.
    pub data_source: String,
    /// ISO interval.
    pub interval: String,
    /// Version.
    pub version: String,
    /// Partition number.
    pub partition: u32,
    /// Partitions in its set.
    pub partitions: u32,
    /// Rollup rows.
    pub rows: u64,
    /// File size.
    pub bytes: u64,
    /// File path relative to the deep-storage root; none for a tombstone.
    pub path: Option<String>,
    /// Stream or batch.
    pub origin: Origin,
    /// Whether queries read it.
    pub visible: bool,
    /// visible, overshadowed, incomplete; tombstones say so.
    pub state: String,
}

/// Every used segment of a catalog with its visibility, in interval then version order.
pub fn describe_segments(state: &CatalogState) -> Vec<SegmentView> {
    let timeline = state.timeline();
    let mut views: Vec<SegmentView> = state
        .segments
        .values()
        .map(|s| {
            let visibility = timeline.visibility(&s.id).unwrap_or(Visibility::Incomplete);
            let state = match (visibility, s.is_tombstone()) {
                (Visibility::Visible, true) => "visible tombstone".to_string(),
                (v, true) => format!("{} tombstone", v.name()),
                (v, false) => v.name().to_string(),
            };
            SegmentView {
                id: s.id.clone(),
                data_source: s.data_source.clone(),
                interval: s.interval.to_string(),
                version: s.version.clone(),
                partition: s.partition,
                partitions: s.partitions,
                rows: s.rows,
                bytes: s.bytes,
                path: s.path.clone(),
                origin: s.origin,
                visible: visibility == Visibility::Visible,
                state,
            }
        })
        .collect();
    views.sort_by(|a, b| {
        (&a.data_source, &a.interval, std::cmp::Reverse(&a.version), a.partition).cmp(&(
            &b.data_source,
            &b.interval,
            std::cmp::Reverse(&b.version),
            b.partition,
        ))
    });
    views
}

/// Wall-clock time in UTC milliseconds.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
