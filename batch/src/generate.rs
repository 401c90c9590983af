//! Benchmark and demo input: reproducible wikipedia-like events written as hourly gzip files.

use std::io::Write;
use std::path::{Path, PathBuf};

use common::generator::WikipediaGenerator;
use common::time::{HOUR_MS, Millis};
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::BatchError;

/// Writes `events` events spread evenly over `hours` hourly files `events-<n>.json.gz` starting
/// at `start`; returns each file with its size. The same seed writes the same bytes.
pub fn write_hourly_files(
    dir: &Path,
    seed: u64,
    events: u64,
    start: Millis,
    hours: u32,
) -> Result<Vec<(PathBuf, u64)>, BatchError> {
    let io_error = |path: &Path, e: std::io::Error| BatchError::Input {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    if hours == 0 {
        return Err(BatchError::InvalidRequest("--hours must be at least 1".into()));
    }
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let mut generator = WikipediaGenerator::new(seed);
    let mut files = Vec::with_capacity(hours as usize);
    let mut buffer = Vec::new();
    for hour in 0..u64::from(hours) {
        // Spread the remainder over the first hours so the total is exact.
        let count = events / u64::from(hours) + u64::from(hour < events % u64::from(hours));
        let hour_start = start + hour as i64 * HOUR_MS;
        buffer.clear();
        generator.write_events(count as usize, hour_start, hour_start + HOUR_MS, &mut buffer);
        let path = dir.join(format!("events-{hour:02}.json.gz"));
        let mut encoder = GzEncoder::new(Vec::with_capacity(buffer.len() / 4), Compression::new(6));
        encoder.write_all(&buffer).map_err(|e| io_error(&path, e))?;
        let gzip = encoder.finish().map_err(|e| io_error(&path, e))?;
        std::fs::write(&path, &gzip).map_err(|e| io_error(&path, e))?;
        files.push((path, gzip.len() as u64));
    }
    Ok(files)
}
