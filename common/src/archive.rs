//! Raw events gathered by event hour into gzip parts, byte for byte, for the raw archive.
//!
//! Used by `braid raw put` and by the stream's archiver: both hand it lines with their event
//! time and get back, per hour, a gzip file's bytes plus the SHA-256 of the uncompressed
//! content (which names `raw put` files, so storing the same input twice lands on the same
//! names).

use std::collections::BTreeMap;
use std::io::Write;

use base64::Engine as _;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::time::{Granularity, Millis};

/// Lines compressed into one gzip member as they arrive. They reach the encoder in chunks of
/// [`GzipLines::CHUNK_BYTES`]: flate2's zlib-rs backend zeroes its 32 KiB output buffer on every
/// write, which for one event's line costs more than compressing it.
#[derive(Debug)]
pub struct GzipLines {
    encoder: GzEncoder<Vec<u8>>,
    pending: Vec<u8>,
}

impl GzipLines {
    /// Bytes gathered before they go to the encoder.
    pub const CHUNK_BYTES: usize = 64 * 1024;

    /// An empty member compressed at `level`.
    pub fn new(level: Compression) -> Self {
        Self { encoder: GzEncoder::new(Vec::new(), level), pending: Vec::with_capacity(Self::CHUNK_BYTES) }
    }

    /// Adds `line` and a newline.
    pub fn push_line(&mut self, line: &[u8]) {
        self.pending.extend_from_slice(line);
        self.end_line();
    }

    /// Adds `message` as one line: any CR or LF in it becomes a space (pretty-printed JSON
    /// stays the same JSON), then a newline.
    pub fn push_flattened(&mut self, message: &[u8]) {
        let start = self.pending.len();
        self.pending.extend_from_slice(message);
        for byte in &mut self.pending[start..] {
            if *byte == b'\n' || *byte == b'\r' {
                *byte = b' ';
            }
        }
        self.end_line();
    }

    fn end_line(&mut self) {
        self.pending.push(b'\n');
        if self.pending.len() >= Self::CHUNK_BYTES {
            // Writes into a Vec cannot fail.
            let _ = self.encoder.write_all(&self.pending);
            self.pending.clear();
        }
    }

    /// The gzip file's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        let _ = self.encoder.write_all(&self.pending);
        self.encoder.finish().unwrap_or_default()
    }
}

/// A finished gzip part of one hour.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivePart {
    /// Start of the event hour, UTC milliseconds.
    pub hour_start: Millis,
    /// The gzip file.
    pub gzip: Vec<u8>,
    /// SHA-256 of the uncompressed lines, lowercase hex.
    pub content_hash: String,
    /// Lines (events) it holds.
    pub lines: u64,
    /// Uncompressed size.
    pub raw_bytes: u64,
}

#[derive(Debug)]
struct OpenPart {
    lines_gzip: GzipLines,
    hasher: Sha256,
    lines: u64,
    raw_bytes: u64,
}

/// Lines being gathered, one open part per event hour.
#[derive(Debug)]
pub struct HourlyArchive {
    open: BTreeMap<Millis, OpenPart>,
    max_part_bytes: u64,
}

/// Uncompressed bytes after which an hour's part is finished and a new one started, so memory
/// stays bounded on large inputs while part boundaries stay deterministic.
pub const DEFAULT_MAX_PART_BYTES: u64 = 512 * 1024 * 1024;

impl HourlyArchive {
    /// An empty archive buffer.
    pub fn new(max_part_bytes: u64) -> Self {
        Self { open: BTreeMap::new(), max_part_bytes: max_part_bytes.max(1) }
    }

    /// Adds one line (without its newline) at its event time; returns a part when the line
    /// filled one.
    pub fn add(&mut self, event_time: Millis, line: &[u8]) -> Option<ArchivePart> {
        let hour_start = Granularity::Hour.truncate(event_time);
        let part = self.open.entry(hour_start).or_insert_with(OpenPart::new);
        part.lines_gzip.push_line(line);
        part.hasher.update(line);
        part.hasher.update(b"\n");
        part.lines += 1;
        part.raw_bytes += line.len() as u64 + 1;
        if part.raw_bytes >= self.max_part_bytes {
            let part = self.open.remove(&hour_start).expect("just used");
            return Some(finish(hour_start, part));
        }
        None
    }

    /// Finishes every open part, in hour order.
    pub fn finish(self) -> Vec<ArchivePart> {
        self.open.into_iter().map(|(hour, part)| finish(hour, part)).collect()
    }
}

/// A line that could not be placed in the archive (bad JSON, no usable timestamp), kept aside
/// with where it came from and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedLine {
    /// The input it came from: a file name, or a Kafka topic, partition and offset.
    pub source: String,
    /// 1-based line number within the source.
    pub line: u64,
    /// Why.
    pub error: String,
    /// The line, when it is UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The line in base64, when it is not UTF-8.
    #[serde(rename = "rawBase64", skip_serializing_if = "Option::is_none")]
    pub raw_base64: Option<String>,
}

impl RejectedLine {
    /// A rejected line, its bytes kept as text when they are UTF-8 and in base64 otherwise.
    pub fn new(source: impl Into<String>, line: u64, error: String, bytes: &[u8]) -> Self {
        let (raw, raw_base64) = match std::str::from_utf8(bytes) {
            Ok(text) => (Some(text.to_string()), None),
            Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(bytes))),
        };
        Self { source: source.into(), line, error, raw, raw_base64 }
    }
}

/// Rejected lines as one gzip file of JSON objects, one per line (its content hash can name it).
pub fn rejects_part(rejects: &[RejectedLine]) -> ArchivePart {
    let mut archive = HourlyArchive::new(u64::MAX);
    for reject in rejects {
        let line = serde_json::to_vec(reject).expect("rejects serialize");
        archive.add(0, &line);
    }
    archive.finish().pop().unwrap_or_else(|| finish(0, OpenPart::new()))
}

impl OpenPart {
    fn new() -> Self {
        Self {
            lines_gzip: GzipLines::new(Compression::new(6)),
            hasher: Sha256::new(),
            lines: 0,
            raw_bytes: 0,
        }
    }
}

fn finish(hour_start: Millis, part: OpenPart) -> ArchivePart {
    let gzip = part.lines_gzip.finish();
    let content_hash = part.hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    ArchivePart { hour_start, gzip, content_hash, lines: part.lines, raw_bytes: part.raw_bytes }
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
    fn gzip_lines_keep_every_line_across_chunks() {
        let mut gzip = GzipLines::new(Compression::fast());
        let mut expected = String::new();
        // Enough lines to fill several chunks, and one left pending at the end.
        for i in 0..10_000 {
            let line = format!("{{\"event\": {i}, \"page\": \"p{}\"}}", i % 7);
            gzip.push_line(line.as_bytes());
            expected.push_str(&line);
            expected.push('\n');
        }
        assert!(expected.len() > 3 * GzipLines::CHUNK_BYTES);
        gzip.push_flattened(b"{\"a\":\r\n 1}");
        expected.push_str("{\"a\":   1}\n");
        assert_eq!(gunzip(&gzip.finish()), expected);
        assert_eq!(gunzip(&GzipLines::new(Compression::fast()).finish()), "");
    }

    #[test]
    fn lines_go_to_their_hour_byte_for_byte() {
        let mut archive = HourlyArchive::new(DEFAULT_MAX_PART_BYTES);
        assert!(archive.add(10 * HOUR + 5, b"{\"a\": 1}").is_none());
        assert!(archive.add(11 * HOUR, b"{\"b\":2}").is_none());
        assert!(archive.add(10 * HOUR + HOUR - 1, b"  {\"c\" : 3}").is_none());
        let parts = archive.finish();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].hour_start, 10 * HOUR);
        assert_eq!(gunzip(&parts[0].gzip), "{\"a\": 1}\n  {\"c\" : 3}\n");
        assert_eq!(parts[0].lines, 2);
        assert_eq!(parts[1].hour_start, 11 * HOUR);
    }

    #[test]
    fn same_content_same_name_and_parts_split_deterministically() {
        let run = || {
            let mut archive = HourlyArchive::new(20);
            let mut parts: Vec<_> =
                (0..5).filter_map(|i| archive.add(HOUR, format!("line-{i}").as_bytes())).collect();
            parts.extend(archive.finish());
            parts
        };
        let (a, b) = (run(), run());
        assert_eq!(a.len(), 2, "three lines fill the first part, two are left");
        assert_eq!(
            a.iter().map(|p| &p.content_hash).collect::<Vec<_>>(),
            b.iter().map(|p| &p.content_hash).collect::<Vec<_>>()
        );
        assert_eq!(a[0].content_hash.len(), 64);
        assert_ne!(a[0].content_hash, a[1].content_hash);
    }
}
