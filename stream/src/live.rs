//! The rows a dataSource's stream holds in memory, as queries see them.
//!
//! The consumer folds events into the open index. A checkpoint freezes it into a hand-off
//! labelled with the Kafka offsets it reaches and opens a new one; the hand-off's rows stay
//! visible while its segments are written and committed, and after, until the next commit.
//! A query passes the catalog state it read, and a hand-off counts only while that state's
//! offsets have not reached the hand-off's: each row is counted once, whichever side of the
//! commit the query's catalog read fell.
//!
//! Another writer on the same partitions (a second daemon) may publish the same messages
//! first. Rows whose starting offsets the catalog has moved past are then left out of queries
//! and the ingester is told to resynchronise, so no query counts them twice.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use common::catalog::{CatalogState, OffsetMove};
use common::rollup::{RollupIndex, RollupSchema};
use common::time::Interval;
use query::table::{LiveSnapshot, LiveSource};

/// Frozen rows on their way to (or just into) deep storage.
#[derive(Debug)]
struct Handoff {
    /// Where the checkpoint moves each partition's offset.
    moves: Vec<OffsetMove>,
    index: Arc<RollupIndex>,
    committed: bool,
}

impl Handoff {
    /// Whether a catalog state already holds these rows.
    fn is_in(&self, catalog: &CatalogState) -> bool {
        !self.moves.is_empty()
            && self.moves.iter().all(|m| catalog.offsets.get(&m.partition).is_some_and(|&o| o >= m.end))
    }

    /// Whether another writer published some of these messages.
    fn is_overtaken(&self, catalog: &CatalogState) -> bool {
        self.moves.iter().any(|m| overtaken(catalog, m.partition, m.expected_start))
    }
}

/// Whether the catalog moved a partition past where this writer's rows start.
fn overtaken(catalog: &CatalogState, partition: i32, start: Option<i64>) -> bool {
    catalog.offsets.get(&partition).copied() > start
}

#[derive(Debug)]
struct State {
    open: RollupIndex,
    /// Where the open index's messages start, per partition (the catalog's offset, or the end
    /// of the last hand-off).
    open_starts: BTreeMap<i32, Option<i64>>,
    handoffs: Vec<Handoff>,
}

/// One dataSource's in-memory rows: the open index and the hand-offs.
#[derive(Debug)]
pub struct LiveRows {
    segment_id: String,
    schema: Arc<RollupSchema>,
    state: Mutex<State>,
    /// Set when a query found rows another writer published first.
    overtaken: AtomicBool,
}

impl LiveRows {
    /// No rows yet.
    pub fn new(schema: Arc<RollupSchema>) -> Self {
        let segment_id = format!("{}_realtime", schema.spec().data_source);
        let open = RollupIndex::new(Arc::clone(&schema));
        let state = State { open, open_starts: BTreeMap::new(), handoffs: Vec::new() };
        Self { segment_id, schema, state: Mutex::new(state), overtaken: AtomicBool::new(false) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the open index (the consumer folds a batch of messages at a time).
    pub fn with_open<T>(&self, f: impl FnOnce(&mut RollupIndex) -> T) -> T {
        f(&mut self.lock().open)
    }

    /// Freezes the open index into a hand-off reaching `moves`, and opens a new one.
    pub fn freeze(&self, moves: Vec<OffsetMove>) -> Arc<RollupIndex> {
        let mut state = self.lock();
        let index = Arc::new(std::mem::replace(&mut state.open, RollupIndex::new(Arc::clone(&self.schema))));
        for m in &moves {
            state.open_starts.insert(m.partition, Some(m.end));
        }
        state.handoffs.push(Handoff { moves, index: Arc::clone(&index), committed: false });
        index
    }

    /// The oldest uncommitted hand-off was committed: it is kept (until the next commit) for
    /// queries still reading an older catalog state; the commit before it is dropped.
    pub fn committed(&self) {
        let mut state = self.lock();
        if let Some(i) = state.handoffs.iter().position(|h| !h.committed) {
            state.handoffs[i].committed = true;
            state.handoffs.drain(..i);
        }
    }

    /// Forgets every row: the stream consumes again from `starts` (the catalog's offsets).
    pub fn clear(&self, starts: BTreeMap<i32, Option<i64>>) {
        let mut state = self.lock();
        state.open = RollupIndex::new(Arc::clone(&self.schema));
        state.open_starts = starts;
        state.handoffs.clear();
        self.overtaken.store(false, Ordering::Relaxed);
    }

    /// Whether a query found rows another writer published first (then the ingester must
    /// resynchronise); clears the flag.
    pub fn take_overtaken(&self) -> bool {
        self.overtaken.swap(false, Ordering::Relaxed)
    }

    /// Rows held: the open index's and the hand-offs'.
    pub fn rows(&self) -> usize {
        self.in_memory().0
    }

    /// Rows in memory and the bytes they take, hand-offs included, under one hold of the lock.
    pub fn in_memory(&self) -> (usize, usize) {
        let state = self.lock();
        std::iter::once(&state.open)
            .chain(state.handoffs.iter().map(|h| &*h.index))
            .fold((0, 0), |(rows, bytes), index| (rows + index.rows(), bytes + index.allocated_bytes()))
    }
}

impl LiveSource for LiveRows {
    fn snapshot(&self, catalog: &CatalogState, within: Option<&[Interval]>) -> LiveSnapshot {
        let state = self.lock();
        let mut handoffs = Vec::new();
        for handoff in state.handoffs.iter().filter(|h| !h.is_in(catalog)) {
            if handoff.is_overtaken(catalog) {
                self.overtaken.store(true, Ordering::Relaxed);
            } else {
                handoffs.push(Arc::clone(&handoff.index));
            }
        }
        let mut indexes: Vec<&RollupIndex> = handoffs.iter().map(Arc::as_ref).collect();
        if state.open_starts.iter().any(|(p, start)| overtaken(catalog, *p, *start)) {
            self.overtaken.store(true, Ordering::Relaxed);
        } else {
            indexes.push(&state.open);
        }
        if indexes.is_empty() {
            // Nothing to show: an empty index gives the snapshot its columns.
            let empty = RollupIndex::new(Arc::clone(&self.schema));
            return LiveSnapshot::from_indexes(&[&empty], &self.segment_id, within);
        }
        LiveSnapshot::from_indexes(&indexes, &self.segment_id, within)
    }
}

#[cfg(test)]
mod tests {
    use common::spec::load_specs;

    use super::*;

    fn schema() -> Arc<RollupSchema> {
        let spec = r#"{"dataSchema": {"dataSource": "wiki",
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {"dimensions": ["page"]},
            "metricsSpec": [{"type": "count", "name": "count"}],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}}}"#;
        RollupSchema::new(&load_specs(spec, "test").unwrap().specs[0])
    }

    fn catalog_at(offset: i64) -> CatalogState {
        let mut state = CatalogState::default();
        state.offsets.insert(0, offset);
        state
    }

    #[test]
    fn a_handoff_counts_until_the_catalog_reaches_its_offsets() {
        let live = LiveRows::new(schema());
        live.with_open(|index| index.add(br#"{"ts": 1, "page": "a"}"#).unwrap());
        live.freeze(vec![OffsetMove { partition: 0, expected_start: None, end: 1 }]);
        live.with_open(|index| index.add(br#"{"ts": 2, "page": "b"}"#).unwrap());

        assert_eq!(live.snapshot(&CatalogState::default(), None).rows(), 2);
        assert_eq!(live.snapshot(&catalog_at(1), None).rows(), 1, "the commit holds the hand-off");
        live.committed();
        assert_eq!(live.snapshot(&CatalogState::default(), None).rows(), 2, "an older catalog read");
        assert_eq!(live.rows(), 2);

        live.freeze(vec![OffsetMove { partition: 0, expected_start: Some(1), end: 2 }]);
        live.committed();
        assert_eq!(live.snapshot(&catalog_at(2), None).rows(), 0);
        assert_eq!(live.rows(), 1, "the first hand-off is dropped at the second commit");
        live.clear(BTreeMap::from([(0, Some(2))]));
        assert_eq!(live.rows(), 0);
    }

    #[test]
    fn rows_another_writer_published_first_are_left_out() {
        let live = LiveRows::new(schema());
        live.clear(BTreeMap::from([(0, None)]));
        live.with_open(|index| index.add(br#"{"ts": 1, "page": "a"}"#).unwrap());
        assert_eq!(live.snapshot(&CatalogState::default(), None).rows(), 1);
        assert!(!live.take_overtaken());
        // Another daemon committed offsets 0..5 of partition 0 while this one held them.
        assert_eq!(live.snapshot(&catalog_at(5), None).rows(), 0);
        assert!(live.take_overtaken());
        assert!(!live.take_overtaken(), "the flag clears");
    }
}
