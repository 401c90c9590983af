//! The stream's raw archive buffer: every consumed message, byte for byte, gathered by Kafka
//! partition and event hour into gzip parts named by the offsets they span.
//!
//! A part of partition p and hour H named `kafka-p-<first>-<last+1>` holds exactly the
//! messages of p in that offset range whose event time falls in H, because a checkpoint covers
//! a contiguous range of each partition, and a part finished before the checkpoint (to be
//! written ahead of it, when the parts held in memory reach `maxArchiveBytesInMemory`) takes
//! every message of its hour so far: the hour's next messages start a new part. So a replay
//! that writes the same name writes the same bytes (wherever its parts were finished), and a
//! part left behind by a killed daemon is simply written again.

use std::collections::BTreeMap;

use common::archive::{GzipCompressor, GzipLines, RejectedLine};
use common::time::{Granularity, Millis};
use flate2::Compression;

/// A finished part, ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamPart {
    /// The Kafka partition.
    pub partition: i32,
    /// Start of the event hour.
    pub hour_start: Millis,
    /// Offset of the first message it holds.
    pub first_offset: i64,
    /// One past the offset of the last message it holds.
    pub end_offset: i64,
    /// Messages (lines) it holds.
    pub lines: u64,
    /// The gzip file.
    pub gzip: Vec<u8>,
}

#[derive(Debug)]
struct OpenPart {
    lines_gzip: GzipLines,
    first_offset: i64,
    last_offset: i64,
    lines: u64,
}

impl OpenPart {
    fn finish(self, partition: i32, hour_start: Millis, compressor: &mut GzipCompressor) -> StreamPart {
        StreamPart {
            partition,
            hour_start,
            first_offset: self.first_offset,
            end_offset: self.last_offset + 1,
            lines: self.lines,
            gzip: self.lines_gzip.finish(compressor),
        }
    }
}

/// Messages gathered since the last checkpoint.
#[derive(Debug)]
pub struct StreamArchive {
    open: BTreeMap<(i32, Millis), OpenPart>,
    /// Bytes the open parts hold: compressed members and lines not compressed yet.
    held_bytes: usize,
    /// When `held_bytes` reaches this, the largest open parts are finished.
    max_held_bytes: usize,
    /// Parts finished to keep memory down, not yet taken to be written.
    finished: Vec<StreamPart>,
    /// Level 1: the stream compresses every event as it arrives, on the ingest path.
    compressor: GzipCompressor,
    rejects: Vec<RejectedLine>,
    raw_bytes: u64,
}

impl StreamArchive {
    /// Nothing gathered yet. Whenever the open parts hold `max_held_bytes` (the spec's
    /// `maxArchiveBytesInMemory`), the largest of them are finished until they hold at most
    /// half of that, to be written ahead of the checkpoint; an hour that goes on starts a new
    /// part.
    pub fn new(max_held_bytes: u64) -> Self {
        Self {
            open: BTreeMap::new(),
            held_bytes: 0,
            max_held_bytes: usize::try_from(max_held_bytes).unwrap_or(usize::MAX).max(1),
            finished: Vec::new(),
            compressor: GzipCompressor::new(Compression::fast()),
            rejects: Vec::new(),
            raw_bytes: 0,
        }
    }

    /// Adds one message at its event time. A message holding newlines (pretty-printed JSON)
    /// is archived with them turned into spaces: the same JSON, on one line.
    pub fn add(&mut self, partition: i32, offset: i64, event_time: Millis, payload: &[u8]) {
        let hour_start = Granularity::Hour.truncate(event_time);
        let part = self.open.entry((partition, hour_start)).or_insert_with(|| OpenPart {
            lines_gzip: GzipLines::new(),
            first_offset: offset,
            last_offset: offset,
            lines: 0,
        });
        let before = part.lines_gzip.bytes();
        part.lines_gzip.push_flattened(payload, &mut self.compressor);
        self.held_bytes = self.held_bytes - before + part.lines_gzip.bytes();
        part.first_offset = part.first_offset.min(offset);
        part.last_offset = part.last_offset.max(offset);
        part.lines += 1;
        self.raw_bytes += payload.len() as u64 + 1;
        if self.held_bytes >= self.max_held_bytes {
            self.finish_largest_parts();
        }
    }

    /// Finishes the largest open parts (the same ones whenever the same messages came since the
    /// last checkpoint) until the rest hold at most half of `max_held_bytes`.
    fn finish_largest_parts(&mut self) {
        let mut by_size: Vec<(usize, (i32, Millis))> =
            self.open.iter().map(|(key, part)| (part.lines_gzip.bytes(), *key)).collect();
        by_size.sort_unstable_by(|a, b| b.cmp(a));
        for (bytes, (partition, hour_start)) in by_size {
            if self.held_bytes <= self.max_held_bytes / 2 {
                break;
            }
            if let Some(part) = self.open.remove(&(partition, hour_start)) {
                self.held_bytes -= bytes;
                self.finished.push(part.finish(partition, hour_start, &mut self.compressor));
            }
        }
    }

    /// What was gathered, leaving an empty archive with the same limit in its place.
    pub fn take(&mut self) -> Self {
        let empty = Self::new(self.max_held_bytes as u64);
        std::mem::replace(self, empty)
    }

    /// The parts finished since the last call, to be written ahead of the checkpoint (which
    /// commits them with the rest).
    pub fn take_finished_parts(&mut self) -> Vec<StreamPart> {
        std::mem::take(&mut self.finished)
    }

    /// Keeps an unparseable message aside.
    pub fn reject(&mut self, reject: RejectedLine) {
        self.raw_bytes += reject.raw.as_ref().map_or(0, |r| r.len() as u64);
        self.rejects.push(reject);
    }

    /// Unparseable messages kept aside.
    pub fn reject_count(&self) -> usize {
        self.rejects.len()
    }

    /// Uncompressed bytes gathered.
    pub fn raw_bytes(&self) -> u64 {
        self.raw_bytes
    }

    /// Bytes the parts and the rejects take in memory.
    pub fn allocated_bytes(&self) -> usize {
        let rejects: usize = self
            .rejects
            .iter()
            .map(|r| {
                r.source.len()
                    + r.error.len()
                    + r.raw.as_ref().or(r.raw_base64.as_ref()).map_or(0, String::len)
            })
            .sum();
        let finished: usize = self.finished.iter().map(|part| part.gzip.capacity()).sum();
        self.open.values().map(|part| part.lines_gzip.allocated_bytes()).sum::<usize>() + finished + rejects
    }

    /// Finishes every open part and hands them over, after any finished parts not taken,
    /// with the rejects.
    pub fn finish(mut self) -> (Vec<StreamPart>, Vec<RejectedLine>) {
        let compressor = &mut self.compressor;
        let mut parts = self.finished;
        parts.extend(
            self.open
                .into_iter()
                .map(|((partition, hour_start), part)| part.finish(partition, hour_start, compressor)),
        );
        (parts, self.rejects)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Read;

    use flate2::read::MultiGzDecoder;

    use super::*;

    const HOUR: i64 = 3_600_000;

    /// The text of gzip bytes, every member of them.
    pub(crate) fn gunzip(bytes: &[u8]) -> String {
        let mut out = String::new();
        MultiGzDecoder::new(bytes).read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn parts_by_partition_and_hour_span_their_offsets() {
        let mut archive = StreamArchive::new(1 << 20);
        archive.add(0, 10, HOUR + 1, b"{\"a\":1}");
        archive.add(0, 11, 2 * HOUR, b"{\"b\":2}");
        archive.add(0, 12, HOUR + 2, b"{\"c\":\n3}");
        archive.add(1, 4, HOUR, b"{\"d\":4}");
        let (parts, rejects) = archive.finish();
        assert!(rejects.is_empty());
        let spans: Vec<_> = parts
            .iter()
            .map(|p| (p.partition, p.hour_start / HOUR, p.first_offset, p.end_offset, p.lines))
            .collect();
        assert_eq!(spans, [(0, 1, 10, 13, 2), (0, 2, 11, 12, 1), (1, 1, 4, 5, 1)]);
        assert_eq!(gunzip(&parts[0].gzip), "{\"a\":1}\n{\"c\": 3}\n");
    }

    #[test]
    fn the_largest_parts_are_finished_when_the_archive_holds_too_much() {
        let spans = |parts: &[StreamPart]| -> Vec<_> {
            parts
                .iter()
                .map(|p| (p.partition, p.hour_start / HOUR, p.first_offset, p.end_offset, p.lines))
                .collect()
        };
        // 40 bytes in all: then the largest parts go until the rest hold at most 20.
        let mut archive = StreamArchive::new(40);
        archive.add(0, 1, HOUR, b"{\"n\":1,\"pad\":\"xxxxxxx\"}");
        archive.add(0, 2, 2 * HOUR, b"{\"n\":2}");
        assert!(archive.take_finished_parts().is_empty(), "24 and 8 bytes: nothing is finished");
        archive.add(1, 7, 2 * HOUR, b"{\"n\":7}");
        let finished = archive.take_finished_parts();
        assert_eq!(spans(&finished), [(0, 1, 1, 2, 1)], "40 bytes: the largest part goes, 16 are left");
        assert_eq!(gunzip(&finished[0].gzip), "{\"n\":1,\"pad\":\"xxxxxxx\"}\n");
        assert!(archive.take_finished_parts().is_empty(), "taken once");

        // Hour 1 of partition 0 goes on in a new part (30 bytes, 46 in all), finished at once;
        // not taken, it comes first from finish, before the parts still open.
        archive.add(0, 3, HOUR, b"{\"n\":3,\"pad\":\"xxxxxxxxxxxxx\"}");
        archive.add(0, 4, 2 * HOUR, b"{\"n\":4}");
        let (parts, _) = archive.finish();
        assert_eq!(spans(&parts), [(0, 1, 3, 4, 1), (0, 2, 2, 5, 2), (1, 2, 7, 8, 1)]);
    }
}
