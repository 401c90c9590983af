//! The stream's raw archive buffer: every consumed message, byte for byte, gathered by Kafka
//! partition and event hour into gzip parts named by the offsets they span.
//!
//! A part of partition p and hour H named `kafka-p-<first>-<last+1>` holds exactly the
//! messages of p in that offset range whose event time falls in H, because a checkpoint covers
//! a contiguous range of each partition. So a replay that writes the same name writes the same
//! bytes, and a part left behind by a killed daemon is simply written again.

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

/// Messages gathered since the last checkpoint.
#[derive(Debug)]
pub struct StreamArchive {
    open: BTreeMap<(i32, Millis), OpenPart>,
    /// Level 1: the stream compresses every event as it arrives, on the ingest path.
    compressor: GzipCompressor,
    rejects: Vec<RejectedLine>,
    raw_bytes: u64,
}

impl Default for StreamArchive {
    fn default() -> Self {
        Self {
            open: BTreeMap::new(),
            compressor: GzipCompressor::new(Compression::fast()),
            rejects: Vec::new(),
            raw_bytes: 0,
        }
    }
}

impl StreamArchive {
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
        part.lines_gzip.push_flattened(payload, &mut self.compressor);
        part.first_offset = part.first_offset.min(offset);
        part.last_offset = part.last_offset.max(offset);
        part.lines += 1;
        self.raw_bytes += payload.len() as u64 + 1;
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
        self.open.values().map(|part| part.lines_gzip.allocated_bytes()).sum::<usize>() + rejects
    }

    /// Whether nothing was gathered.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty() && self.rejects.is_empty()
    }

    /// Finishes every part, in (partition, hour) order, and hands over the rejects.
    pub fn finish(mut self) -> (Vec<StreamPart>, Vec<RejectedLine>) {
        let compressor = &mut self.compressor;
        let parts = self
            .open
            .into_iter()
            .map(|((partition, hour_start), part)| StreamPart {
                partition,
                hour_start,
                first_offset: part.first_offset,
                end_offset: part.last_offset + 1,
                lines: part.lines,
                gzip: part.lines_gzip.finish(compressor),
            })
            .collect();
        (parts, self.rejects)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::MultiGzDecoder;

    use super::*;

    const HOUR: i64 = 3_600_000;

    fn gunzip(bytes: &[u8]) -> String {
        let mut out = String::new();
        MultiGzDecoder::new(bytes).read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn parts_by_partition_and_hour_span_their_offsets() {
        let mut archive = StreamArchive::default();
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
}
