//! The stream's counters and gauges, and their Prometheus text, with Druid's metric names
//! where Druid has one (`ingest/events/processed` becomes `ingest_events_processed_total`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What one dataSource's ingestion has done since the daemon started.
#[derive(Debug, Default)]
pub struct IngestMetrics {
    /// Events parsed and folded into the in-memory index.
    pub processed: AtomicU64,
    /// Events that could not be parsed (kept in the rejects).
    pub unparseable: AtomicU64,
    /// Events parsed but not indexed: outside the rejection window, or in time a batch version
    /// owns (archived raw all the same).
    pub thrown_away: AtomicU64,
    /// Rollup rows held in memory, handed-off ones included.
    pub rows_in_memory: AtomicU64,
    /// Bytes those rows take: columns, rollup table, dictionaries.
    pub bytes_in_memory: AtomicU64,
    /// Bytes of raw events the archive holds in memory (compressed) until it writes them.
    pub archive_buffer_bytes: AtomicU64,
    /// Checkpoints committed.
    pub checkpoints: AtomicU64,
    /// Checkpoints that failed (the stream resynchronised from the catalog).
    pub checkpoint_failures: AtomicU64,
    /// Bytes written by committed checkpoints (segments, raw parts, rejects).
    pub checkpoint_bytes: AtomicU64,
    /// Microseconds spent in committed checkpoints.
    pub checkpoint_micros: AtomicU64,
    /// Microseconds the last committed checkpoint took.
    pub last_checkpoint_micros: AtomicU64,
    /// Messages behind the newest offset, per Kafka partition.
    pub lag: Mutex<BTreeMap<i32, i64>>,
}

impl IngestMetrics {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Replaces one partition's lag.
    pub fn set_lag(&self, partition: i32, lag: i64) {
        self.lag.lock().unwrap_or_else(|p| p.into_inner()).insert(partition, lag.max(0));
    }

    /// Every partition's lag.
    pub fn lags(&self) -> BTreeMap<i32, i64> {
        self.lag.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Picks one counter or gauge out of a dataSource's metrics.
type Counter = fn(&IngestMetrics) -> &AtomicU64;

/// The Prometheus text of every dataSource's metrics.
pub fn render<'a>(sources: impl IntoIterator<Item = (&'a str, &'a IngestMetrics)>) -> String {
    let sources: Vec<(&str, &IngestMetrics)> = sources.into_iter().collect();
    let mut out = String::new();
    let counters: [(&str, &str, &str, Counter); 9] = [
        ("ingest_events_processed_total", "Events parsed and indexed.", "counter", |m| &m.processed),
        ("ingest_events_unparseable_total", "Events that could not be parsed.", "counter", |m| {
            &m.unparseable
        }),
        (
            "ingest_events_thrown_away_total",
            "Events outside the rejection window or in batch-owned time (archived raw).",
            "counter",
            |m| &m.thrown_away,
        ),
        ("ingest_checkpoints_total", "Checkpoints committed.", "counter", |m| &m.checkpoints),
        ("ingest_checkpoint_failures_total", "Checkpoints that failed and were replayed.", "counter", |m| {
            &m.checkpoint_failures
        }),
        ("ingest_checkpoint_bytes_total", "Bytes written by committed checkpoints.", "counter", |m| {
            &m.checkpoint_bytes
        }),
        ("ingest_rows_in_memory", "Rollup rows held in memory.", "gauge", |m| &m.rows_in_memory),
        (
            "ingest_bytes_in_memory",
            "Bytes the rollup rows in memory take (columns, rollup table, dictionaries).",
            "gauge",
            |m| &m.bytes_in_memory,
        ),
        (
            "ingest_archive_buffer_bytes",
            "Bytes of raw events the archive holds in memory, compressed, until it writes them.",
            "gauge",
            |m| &m.archive_buffer_bytes,
        ),
    ];
    for (name, help, kind, counter) in counters {
        header(&mut out, name, help, kind);
        for (ds, m) in &sources {
            let _ =
                writeln!(out, "{name}{{dataSource=\"{}\"}} {}", escape(ds), IngestMetrics::get(counter(m)));
        }
    }
    header(&mut out, "ingest_checkpoint_seconds_total", "Time spent in committed checkpoints.", "counter");
    for (ds, m) in &sources {
        let seconds = IngestMetrics::get(&m.checkpoint_micros) as f64 / 1e6;
        let _ = writeln!(out, "ingest_checkpoint_seconds_total{{dataSource=\"{}\"}} {seconds}", escape(ds));
    }
    header(&mut out, "ingest_checkpoint_last_seconds", "Duration of the last committed checkpoint.", "gauge");
    for (ds, m) in &sources {
        let seconds = IngestMetrics::get(&m.last_checkpoint_micros) as f64 / 1e6;
        let _ = writeln!(out, "ingest_checkpoint_last_seconds{{dataSource=\"{}\"}} {seconds}", escape(ds));
    }
    header(&mut out, "ingest_kafka_partition_lag", "Messages behind the partition's newest offset.", "gauge");
    for (ds, m) in &sources {
        for (partition, lag) in m.lags() {
            let _ = writeln!(
                out,
                "ingest_kafka_partition_lag{{dataSource=\"{}\",partition=\"{partition}\"}} {lag}",
                escape(ds)
            );
        }
    }
    header(&mut out, "ingest_kafka_lag", "Messages behind, summed over partitions.", "gauge");
    for (ds, m) in &sources {
        let total: i64 = m.lags().values().sum();
        let _ = writeln!(out, "ingest_kafka_lag{{dataSource=\"{}\"}} {total}", escape(ds));
    }
    out
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Prometheus label values escape backslash, quote and newline.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_lag_per_partition() {
        let m = IngestMetrics::default();
        IngestMetrics::add(&m.processed, 7);
        IngestMetrics::add(&m.unparseable, 2);
        m.bytes_in_memory.store(4096, Ordering::Relaxed);
        m.archive_buffer_bytes.store(512, Ordering::Relaxed);
        m.set_lag(0, 5);
        m.set_lag(1, -3);
        let text = render([("wiki", &m)]);
        assert!(text.contains("# TYPE ingest_events_processed_total counter\n"));
        assert!(text.contains("ingest_events_processed_total{dataSource=\"wiki\"} 7\n"));
        assert!(text.contains("ingest_events_unparseable_total{dataSource=\"wiki\"} 2\n"));
        assert!(text.contains("ingest_kafka_partition_lag{dataSource=\"wiki\",partition=\"0\"} 5\n"));
        assert!(text.contains("ingest_kafka_partition_lag{dataSource=\"wiki\",partition=\"1\"} 0\n"));
        assert!(text.contains("ingest_kafka_lag{dataSource=\"wiki\"} 5\n"));
        assert!(text.contains("# TYPE ingest_bytes_in_memory gauge\n"));
        assert!(text.contains("ingest_bytes_in_memory{dataSource=\"wiki\"} 4096\n"));
        assert!(text.contains("ingest_archive_buffer_bytes{dataSource=\"wiki\"} 512\n"));
    }
}
