//! What happens to each consumed message: parse it with the spec, archive it raw, decide from
//! its message time (never the wall clock, so a replay decides the same) whether it is indexed,
//! and fold it into the open index; plus the offsets a checkpoint commits.

use std::collections::BTreeMap;
use std::sync::Arc;

use common::archive::RejectedLine;
use common::catalog::OffsetMove;
use common::rollup::RollupIndex;
use common::spec::DataSourceSpec;
use common::time::{Interval, Millis, Period};
use tracing::warn;

use crate::StreamError;
use crate::archive::{StreamArchive, StreamPart};
use crate::metrics::IngestMetrics;

/// Unparseable events logged one by one per checkpoint; the rest are summed up.
const LOGGED_UNPARSEABLE: u32 = 10;

/// When a parsed event is thrown away instead of indexed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rejection {
    /// Druid's lateMessageRejectionPeriod: events older than message time minus this.
    pub late: Option<Period>,
    /// Druid's earlyMessageRejectionPeriod: events newer than message time plus this.
    pub early: Option<Period>,
    /// Legacy realtime windowPeriod: events further than this from message time, either way.
    pub window: Option<Period>,
}

impl Rejection {
    /// The rules a spec sets.
    pub fn from_spec(spec: &DataSourceSpec) -> Self {
        Self {
            late: spec.io.late_message_rejection_period,
            early: spec.io.early_message_rejection_period,
            window: spec.tuning.window_period,
        }
    }

    /// Whether an event at `event_time` in a message stamped `message_time` is thrown away.
    /// A message without a timestamp is never rejected by time.
    pub fn rejects(&self, event_time: Millis, message_time: Option<Millis>) -> bool {
        let Some(now) = message_time else { return false };
        let too_late = |p: &Period| event_time < p.subtract_from(now);
        let too_early = |p: &Period| event_time > p.add_to(now);
        self.late.as_ref().is_some_and(too_late)
            || self.early.as_ref().is_some_and(too_early)
            || self.window.as_ref().is_some_and(|p| too_late(p) || too_early(p))
    }
}

/// Time that batch versions own, sorted; the stream does not index events there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOwned(Vec<Interval>);

impl BatchOwned {
    /// From the intervals of batch segments (any order, overlaps allowed).
    pub fn new(mut intervals: Vec<Interval>) -> Self {
        intervals.sort();
        intervals.dedup();
        Self(intervals)
    }

    /// Whether a batch version covers `t`.
    pub fn contains(&self, t: Millis) -> bool {
        // Intervals sorted by start: only those starting at or before t can hold it.
        let until = self.0.partition_point(|i| i.start <= t);
        self.0[..until].iter().rev().any(|i| i.contains(t))
    }
}

/// One consumed message.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Kafka partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Kafka's message timestamp (create or log-append time), if it has one.
    pub time: Option<Millis>,
    /// The event; none for a message without a value.
    pub payload: Option<&'a [u8]>,
}

/// The per-message work of one dataSource, and what a checkpoint needs from it.
#[derive(Debug)]
pub struct Ingest {
    data_source: String,
    topic: String,
    rejection: Rejection,
    max_parse_exceptions: Option<u64>,
    metrics: Arc<IngestMetrics>,
    archive: StreamArchive,
    /// Each assigned partition's offset as the catalog holds it (after the commits made so far).
    committed: BTreeMap<i32, Option<i64>>,
    /// The next offset to consume, for partitions consumed since the last checkpoint.
    next: BTreeMap<i32, i64>,
    /// Rows in the open index per segment interval start: a few intervals, looked up for every
    /// new row, so a B-tree (no hashing) rather than a hash map.
    rows_per_interval: BTreeMap<Millis, u64>,
    unparseable: u64,
    logged: u32,
}

impl Ingest {
    /// Ready to consume from the catalog's offsets of the assigned partitions.
    pub fn new(
        spec: &DataSourceSpec,
        topic: &str,
        metrics: Arc<IngestMetrics>,
        committed: BTreeMap<i32, Option<i64>>,
    ) -> Self {
        Self {
            data_source: spec.data_source.to_string(),
            topic: topic.to_string(),
            rejection: Rejection::from_spec(spec),
            max_parse_exceptions: spec.tuning.max_parse_exceptions,
            metrics,
            archive: StreamArchive::new(spec.tuning.max_archive_bytes_in_memory),
            committed,
            next: BTreeMap::new(),
            rows_per_interval: BTreeMap::new(),
            unparseable: 0,
            logged: 0,
        }
    }

    /// Handles one message: archived raw (or kept in the rejects), then indexed unless thrown
    /// away. Fails only when unparseable events pass `maxParseExceptions`.
    pub fn on_message(
        &mut self,
        index: &mut RollupIndex,
        batch_owned: &BatchOwned,
        message: Message<'_>,
    ) -> Result<(), StreamError> {
        let Message { partition, offset, time, payload } = message;
        self.next.insert(partition, offset + 1);
        let payload = payload.unwrap_or_default();
        match index.parse(payload) {
            Ok(event_time) => {
                self.archive.add(partition, offset, event_time, payload);
                if batch_owned.contains(event_time) || self.rejection.rejects(event_time, time) {
                    IngestMetrics::add(&self.metrics.thrown_away, 1);
                    return Ok(());
                }
                let rows = index.rows();
                index.fold_parsed();
                if index.rows() > rows {
                    let interval = index.schema().segment_interval(event_time);
                    *self.rows_per_interval.entry(interval.start).or_default() += 1;
                }
                IngestMetrics::add(&self.metrics.processed, 1);
                Ok(())
            }
            Err(e) => {
                self.unparseable += 1;
                IngestMetrics::add(&self.metrics.unparseable, 1);
                let source = format!("kafka topic \"{}\" partition {partition} offset {offset}", self.topic);
                if self.logged < LOGGED_UNPARSEABLE {
                    self.logged += 1;
                    warn!(data_source = %self.data_source, partition, offset, error = %e, "Unparseable event; kept in the rejects.");
                }
                self.archive.reject(RejectedLine::new(source, 1, e.to_string(), payload));
                match self.max_parse_exceptions {
                    Some(limit) if self.unparseable > limit => Err(StreamError::TooManyParseExceptions {
                        data_source: self.data_source.clone(),
                        count: self.unparseable,
                        limit,
                    }),
                    _ => Ok(()),
                }
            }
        }
    }

    /// Whether anything was consumed since the last checkpoint.
    pub fn has_progress(&self) -> bool {
        !self.next.is_empty()
    }

    /// Rows in the open index of its fullest segment interval.
    pub fn fullest_interval_rows(&self) -> u64 {
        self.rows_per_interval.values().copied().max().unwrap_or(0)
    }

    /// Uncompressed bytes archived since the last checkpoint, written ahead or still held.
    pub fn archived_bytes(&self) -> u64 {
        self.archive.raw_bytes()
    }

    /// Bytes the raw archive buffer takes in memory (compressed, as it is kept).
    pub fn archive_allocated_bytes(&self) -> usize {
        self.archive.allocated_bytes()
    }

    /// Raw archive parts finished since the last call to keep the archive's memory down, to be
    /// written ahead of the checkpoint that commits them.
    pub fn take_finished_raw_parts(&mut self) -> Vec<StreamPart> {
        self.archive.take_finished_parts()
    }

    /// Where each partition starts: the catalog's offset, if any.
    pub fn committed_offsets(&self) -> &BTreeMap<i32, Option<i64>> {
        &self.committed
    }

    /// Hands over what a checkpoint commits: the offset moves and the raw archive buffer, and
    /// starts gathering anew from where they end.
    pub fn take_checkpoint(&mut self) -> (Vec<OffsetMove>, StreamArchive) {
        let moves: Vec<OffsetMove> = self
            .next
            .iter()
            .map(|(&partition, &end)| OffsetMove {
                partition,
                expected_start: self.committed.get(&partition).copied().flatten(),
                end,
            })
            .collect();
        for m in &moves {
            self.committed.insert(m.partition, Some(m.end));
        }
        if self.logged >= LOGGED_UNPARSEABLE {
            let more = self.archive.reject_count().saturating_sub(LOGGED_UNPARSEABLE as usize);
            if more > 0 {
                warn!(data_source = %self.data_source, more, "More unparseable events since the last checkpoint; all kept in the rejects.");
            }
        }
        self.next.clear();
        self.rows_per_interval.clear();
        self.logged = 0;
        (moves, self.archive.take())
    }

    /// Starts over from the catalog's offsets, forgetting what was consumed since.
    pub fn reset(&mut self, committed: BTreeMap<i32, Option<i64>>) {
        self.committed = committed;
        self.next.clear();
        self.rows_per_interval.clear();
        // Forgotten: consuming again from `committed` gathers it anew.
        self.archive.take();
        self.logged = 0;
    }
}

#[cfg(test)]
mod tests {
    use common::rollup::RollupSchema;
    use common::spec::load_specs;

    use super::*;

    const HOUR: i64 = 3_600_000;

    fn spec(extra_io: &str) -> DataSourceSpec {
        let text = format!(
            r#"{{"type": "kafka", "spec": {{"dataSchema": {{"dataSource": "wiki",
            "timestampSpec": {{"column": "ts", "format": "millis"}},
            "dimensionsSpec": {{"dimensions": ["page"]}},
            "metricsSpec": [{{"type": "count", "name": "count"}}],
            "granularitySpec": {{"segmentGranularity": "hour", "queryGranularity": "none"}}}},
            "ioConfig": {{"topic": "wiki" {extra_io}}},
            "tuningConfig": {{"type": "kafka", "maxParseExceptions": 2}}}}}}"#
        );
        load_specs(&text, "test").unwrap().specs.remove(0)
    }

    fn message(offset: i64, time: Option<Millis>, payload: &[u8]) -> Message<'_> {
        Message { partition: 0, offset, time, payload: Some(payload) }
    }

    #[test]
    fn late_early_and_batch_owned_events_are_archived_not_indexed() {
        let spec = spec(r#", "lateMessageRejectionPeriod": "PT1H", "earlyMessageRejectionPeriod": "PT1H""#);
        let metrics = Arc::new(IngestMetrics::default());
        let mut ingest = Ingest::new(&spec, "wiki", Arc::clone(&metrics), BTreeMap::from([(0, Some(5))]));
        let mut index = RollupIndex::new(RollupSchema::new(&spec));
        let owned = BatchOwned::new(vec![Interval { start: 20 * HOUR, end: 21 * HOUR }]);
        let now = Some(10 * HOUR);
        let events = [
            format!(r#"{{"ts": {}, "page": "on time"}}"#, 10 * HOUR),
            format!(r#"{{"ts": {}, "page": "late"}}"#, 8 * HOUR),
            format!(r#"{{"ts": {}, "page": "early"}}"#, 12 * HOUR),
            format!(r#"{{"ts": {}, "page": "batch owned"}}"#, 20 * HOUR + 5),
        ];
        for (i, e) in events.iter().enumerate() {
            let time = if i == 3 { Some(20 * HOUR) } else { now };
            ingest.on_message(&mut index, &owned, message(5 + i as i64, time, e.as_bytes())).unwrap();
        }
        assert_eq!(index.rows(), 1);
        assert_eq!(IngestMetrics::get(&metrics.processed), 1);
        assert_eq!(IngestMetrics::get(&metrics.thrown_away), 3);
        let (moves, archive) = ingest.take_checkpoint();
        assert_eq!(moves, [OffsetMove { partition: 0, expected_start: Some(5), end: 9 }]);
        let (parts, _) = archive.finish();
        assert_eq!(parts.iter().map(|p| p.lines).sum::<u64>(), 4, "every parsed event is archived");
        // The next checkpoint starts where this one ends.
        ingest.on_message(&mut index, &owned, message(9, now, events[0].as_bytes())).unwrap();
        assert_eq!(ingest.take_checkpoint().0[0].expected_start, Some(9));
    }

    #[test]
    fn unparseable_events_are_kept_until_max_parse_exceptions() {
        let spec = spec("");
        let metrics = Arc::new(IngestMetrics::default());
        let mut ingest = Ingest::new(&spec, "wiki", Arc::clone(&metrics), BTreeMap::new());
        let mut index = RollupIndex::new(RollupSchema::new(&spec));
        let owned = BatchOwned::default();
        ingest.on_message(&mut index, &owned, message(0, None, b"not json")).unwrap();
        ingest.on_message(&mut index, &owned, message(1, None, br#"{"page": "no time"}"#)).unwrap();
        let err = ingest.on_message(&mut index, &owned, message(2, None, b"{")).unwrap_err();
        assert!(err.to_string().contains("3 unparseable events passed maxParseExceptions (2)"), "{err}");
        let (moves, archive) = ingest.take_checkpoint();
        assert_eq!(moves[0].end, 3);
        let (parts, rejects) = archive.finish();
        assert!(parts.is_empty());
        assert_eq!(rejects.len(), 3);
        assert!(rejects[1].source.ends_with("partition 0 offset 1"), "{}", rejects[1].source);
        assert_eq!(rejects[0].raw.as_deref(), Some("not json"));
    }

    #[test]
    fn batch_owned_lookup() {
        let owned = BatchOwned::new(vec![
            Interval { start: 10, end: 20 },
            Interval { start: 0, end: 100 },
            Interval { start: 200, end: 300 },
        ]);
        assert!(owned.contains(50));
        assert!(owned.contains(15));
        assert!(!owned.contains(150));
        assert!(owned.contains(200));
        assert!(!owned.contains(300));
    }
}
