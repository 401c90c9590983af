//! `braid raw put`: newline-delimited JSON (plain or gzip, files or stdin) into the hourly raw
//! archive, byte for byte.
//!
//! Each input's lines are grouped by event hour and written as one gzip file per hour named by
//! the SHA-256 of its content (`put-<hash>.json.gz`), create-only. Storing the same input again
//! therefore lands on names that already exist and adds nothing, so a later batch never counts
//! those events twice. Lines that cannot be placed (bad JSON, missing or unparseable
//! timestamp) are kept, with file, line number and reason, in a rejects file under
//! `rejects/<dataSource>/`.

use std::io::Read;

use bytes::Bytes;
use common::archive::{ArchivePart, DEFAULT_MAX_PART_BYTES, HourlyArchive, RejectedLine, rejects_part};
use common::input::{Lines, is_blank};
use common::rollup::event_time;
use common::spec::DataSourceSpec;
use common::storage::{DeepStorage, StorageError};
use common::time::Millis;
use indicatif::{ProgressBar, ProgressStyle};
use layouts::{RawFileName, RawLayout};
use serde::Serialize;
use tracing::info;

use crate::BatchError;

/// Where raw events come from.
#[derive(Debug)]
pub enum PutInput {
    /// A local file, plain or gzip.
    File(std::path::PathBuf),
    /// Standard input, plain or gzip.
    Stdin,
}

impl PutInput {
    fn name(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Stdin => "<stdin>".into(),
        }
    }
}

/// One hourly file `raw put` stored (or found already stored).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPart {
    /// Path relative to the deep-storage root.
    pub path: String,
    /// Start of the event hour.
    pub hour: String,
    /// Events in the file.
    pub events: u64,
    /// Compressed size.
    pub bytes: u64,
    /// False when identical content was already there.
    pub created: bool,
}

/// What `raw put` did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutReport {
    /// Lines read, blank lines excluded.
    pub lines: u64,
    /// Events placed in the archive.
    pub events: u64,
    /// Lines rejected.
    pub rejected: u64,
    /// The hourly files.
    pub parts: Vec<StoredPart>,
    /// Where the rejected lines were kept.
    pub rejects_path: Option<String>,
    /// The first rejected lines, for the summary.
    pub first_rejects: Vec<RejectedLine>,
}

/// How many rejected lines the report shows; all of them are in the rejects file.
const REPORTED_REJECTS: usize = 10;

/// Stores raw events from each input into the hourly archive.
pub async fn put_raw(
    storage: &DeepStorage,
    spec: &DataSourceSpec,
    layout: &RawLayout,
    inputs: Vec<PutInput>,
    progress: bool,
) -> Result<PutReport, BatchError> {
    let mut report = PutReport::default();
    let mut rejects: Vec<RejectedLine> = Vec::new();
    let bar = progress_bar(&inputs, progress);
    for input in inputs {
        let name = input.name();
        let spec_for_read = spec.clone();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<ArchivePart>(2);
        // Reading and compressing is CPU work: it runs on a blocking thread and hands finished
        // parts to this task to upload.
        let input_bar = bar.clone();
        let reader = tokio::task::spawn_blocking(move || read_input(input, &spec_for_read, tx, input_bar));
        while let Some(part) = rx.recv().await {
            report.parts.push(store_part(storage, spec, layout, part).await?);
        }
        let outcome =
            reader.await.map_err(|e| BatchError::Input { path: name.clone(), message: e.to_string() })??;
        report.lines += outcome.lines;
        report.events += outcome.events;
        report.rejected += outcome.rejects.len() as u64;
        rejects.extend(outcome.rejects);
    }
    bar.finish_and_clear();
    if !rejects.is_empty() {
        report.rejects_path = Some(store_rejects(storage, spec, &rejects).await?);
        report.first_rejects = rejects.into_iter().take(REPORTED_REJECTS).collect();
    }
    info!(
        data_source = %spec.data_source,
        events = report.events,
        rejected = report.rejected,
        files = report.parts.len(),
        "Stored raw events."
    );
    Ok(report)
}

struct ReadOutcome {
    lines: u64,
    events: u64,
    rejects: Vec<RejectedLine>,
}

/// Bytes of input read, on a terminal only; a spinner when standard input is among them.
fn progress_bar(inputs: &[PutInput], progress: bool) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let sizes: Option<u64> = inputs
        .iter()
        .map(|input| match input {
            PutInput::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            PutInput::Stdin => None,
        })
        .sum();
    let (bar, template) = match sizes {
        Some(total) => (
            ProgressBar::new(total),
            "raw put [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        ),
        None => (ProgressBar::new_spinner(), "raw put {spinner} {binary_bytes} {binary_bytes_per_sec}"),
    };
    bar.set_style(ProgressStyle::with_template(template).expect("static template").progress_chars("=> "));
    bar
}

fn read_input(
    input: PutInput,
    spec: &DataSourceSpec,
    parts: tokio::sync::mpsc::Sender<ArchivePart>,
    bar: ProgressBar,
) -> Result<ReadOutcome, BatchError> {
    let name = input.name();
    let io_error = |e: std::io::Error| BatchError::Input { path: name.clone(), message: e.to_string() };
    let source: Box<dyn Read + Send> = match &input {
        PutInput::File(path) => Box::new(bar.wrap_read(std::fs::File::open(path).map_err(io_error)?)),
        PutInput::Stdin => Box::new(bar.wrap_read(std::io::stdin())),
    };
    let mut lines = Lines::new(source).map_err(io_error)?;
    let mut archive = HourlyArchive::new(DEFAULT_MAX_PART_BYTES);
    let mut outcome = ReadOutcome { lines: 0, events: 0, rejects: Vec::new() };
    loop {
        let (number, line) = match lines.next_line() {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(e) => {
                return Err(BatchError::Input {
                    path: name.clone(),
                    message: format!("{e} (after line {})", lines.line_number()),
                });
            }
        };
        if is_blank(line) {
            continue;
        }
        outcome.lines += 1;
        match event_time(&spec.timestamp, line) {
            Ok(time) if layout_can_hold(time) => {
                outcome.events += 1;
                if let Some(part) = archive.add(time, line) {
                    // The receiver only goes away when the upload failed; that error wins.
                    if parts.blocking_send(part).is_err() {
                        break;
                    }
                }
            }
            Ok(time) => outcome.rejects.push(RejectedLine::new(
                &name,
                number,
                format!("event time {time} ms is outside years 0000-9999"),
                line,
            )),
            Err(e) => outcome.rejects.push(RejectedLine::new(&name, number, e.to_string(), line)),
        }
    }
    for part in archive.finish() {
        if parts.blocking_send(part).is_err() {
            break;
        }
    }
    Ok(outcome)
}

fn layout_can_hold(time: Millis) -> bool {
    (layouts::MIN_PATH_MILLIS..=layouts::MAX_PATH_MILLIS).contains(&time)
}

async fn store_part(
    storage: &DeepStorage,
    spec: &DataSourceSpec,
    layout: &RawLayout,
    part: ArchivePart,
) -> Result<StoredPart, BatchError> {
    let name = RawFileName::Put { content_hash: part.content_hash.clone() };
    let path = layout.hour_file(&spec.data_source, part.hour_start, &name);
    let bytes = part.gzip.len() as u64;
    let created = match storage.put_create(&path, Bytes::from(part.gzip)).await {
        Ok(()) => true,
        Err(StorageError::AlreadyExists { .. }) => false,
        Err(e) => return Err(e.into()),
    };
    Ok(StoredPart {
        path,
        hour: common::time::format_iso(part.hour_start),
        events: part.lines,
        bytes,
        created,
    })
}

async fn store_rejects(
    storage: &DeepStorage,
    spec: &DataSourceSpec,
    rejects: &[RejectedLine],
) -> Result<String, BatchError> {
    let part = rejects_part(rejects);
    let name = format!("put-{}.json.gz", part.content_hash);
    let path = layouts::rejects_path(&spec.data_source, &name)
        .map_err(|e| BatchError::InvalidRequest(e.to_string()))?;
    match storage.put_create(&path, Bytes::from(part.gzip)).await {
        Ok(()) | Err(StorageError::AlreadyExists { .. }) => Ok(path),
        Err(e) => Err(e.into()),
    }
}
