//! Aligned tables for people; `--json` output is serde's.

use batch::{CleanupReport, PutReport, ReindexReport, RunRecord};
use common::catalog::{Origin, SegmentView};

/// Prints rows as columns padded to their widest cell; numeric-looking columns align right.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..header.len())
        .map(|c| {
            !rows.is_empty()
                && rows.iter().all(|r| r[c].split(' ').next().is_some_and(|n| n.parse::<f64>().is_ok()))
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                let pad = widths[c].saturating_sub(cell.chars().count());
                if numeric[c] {
                    format!("{}{cell}", " ".repeat(pad))
                } else {
                    format!("{cell}{}", " ".repeat(pad))
                }
            })
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Bytes with a binary unit.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

pub fn put_report(report: &PutReport) {
    let rows: Vec<Vec<String>> = report
        .parts
        .iter()
        .map(|p| {
            vec![
                p.hour.clone(),
                p.events.to_string(),
                human_bytes(p.bytes),
                if p.created { "stored".into() } else { "already stored".into() },
                p.path.clone(),
            ]
        })
        .collect();
    table(&["hour", "events", "bytes", "status", "path"], &rows);
    let new = report.parts.iter().filter(|p| p.created).count();
    println!(
        "\n{} lines: {} events in {} hourly files ({} new, {} already stored), {} rejected",
        report.lines,
        report.events,
        report.parts.len(),
        new,
        report.parts.len() - new,
        report.rejected
    );
    for reject in &report.first_rejects {
        println!("  rejected {} line {}: {}", reject.source, reject.line, reject.error);
    }
    if report.rejected as usize > report.first_rejects.len() {
        println!("  ... and {} more", report.rejected as usize - report.first_rejects.len());
    }
    if let Some(path) = &report.rejects_path {
        println!("rejected lines kept in {path}");
    }
}

pub fn reindex_report(report: &ReindexReport) {
    let mut rows: Vec<Vec<String>> = report
        .intervals
        .iter()
        .map(|i| {
            vec![
                i.interval.to_string(),
                i.version.clone(),
                i.events.to_string(),
                i.rows.to_string(),
                i.rejected.to_string(),
                if i.tombstone { "tombstone".into() } else { human_bytes(i.bytes) },
                format!("{:.2}", i.seconds),
            ]
        })
        .collect();
    rows.push(vec![
        "total".into(),
        report.version.clone(),
        report.events.to_string(),
        report.rows.to_string(),
        report.rejected.to_string(),
        human_bytes(report.segment_bytes),
        format!("{:.2}", report.seconds),
    ]);
    table(&["interval", "version", "events", "rows", "rejected", "bytes", "seconds"], &rows);
    let seconds = report.seconds.max(1e-9);
    println!(
        "\nread {} raw files ({} gzip, {} raw) at {:.0} events/s, {:.1} MB/s; published as commit {}",
        report.raw_files,
        human_bytes(report.raw_bytes),
        human_bytes(report.raw_uncompressed_bytes),
        report.events as f64 / seconds,
        report.raw_uncompressed_bytes as f64 / seconds / 1e6,
        report.commit_seq
    );
    for reject in &report.first_rejects {
        println!("  rejected {reject}");
    }
    if report.rejected as usize > report.first_rejects.len() {
        println!("  ... and {} more rejected lines", report.rejected as usize - report.first_rejects.len());
    }
}

pub fn segments_table(views: &[SegmentView]) {
    if views.is_empty() {
        println!("no segments");
        return;
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                v.data_source.clone(),
                v.interval.clone(),
                v.version.clone(),
                format!("{}/{}", v.partition, v.partitions),
                v.rows.to_string(),
                human_bytes(v.bytes),
                match v.origin {
                    Origin::Stream => "stream".into(),
                    Origin::Batch => "batch".into(),
                },
                v.state.clone(),
            ]
        })
        .collect();
    table(&["dataSource", "interval", "version", "partition", "rows", "bytes", "origin", "state"], &rows);
}

/// Scheduler runs, one line per interval of each run (a run with none gets one line).
pub fn history_table(records: &[RunRecord]) {
    if records.is_empty() {
        println!("no scheduler runs recorded");
        return;
    }
    let mut rows = Vec::new();
    for r in records {
        let run = [r.started.clone(), r.job.clone(), r.data_source.clone(), r.outcome.name().to_string()];
        if r.intervals.is_empty() {
            let note = r.error.clone().unwrap_or_else(|| "nothing to reindex".into());
            rows.push([run.to_vec(), vec!["-".into(), "-".into(), "0".into(), "0".into(), note]].concat());
        }
        for i in &r.intervals {
            let outcome = i.outcome.name();
            let note = match &i.error {
                Some(error) => format!("{outcome}: {error}"),
                None => format!("{outcome}: {}", i.reason),
            };
            rows.push(
                [
                    run.to_vec(),
                    vec![
                        i.interval.to_string(),
                        i.version.clone().unwrap_or_else(|| "-".into()),
                        i.events.to_string(),
                        i.rows.to_string(),
                        note,
                    ],
                ]
                .concat(),
            );
        }
    }
    table(
        &["started", "job", "dataSource", "run", "interval", "version", "events", "rows", "outcome"],
        &rows,
    );
}

/// What cleanup removed, per dataSource.
pub fn cleanup_table(reports: &[CleanupReport]) {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.data_source.clone(),
                r.dropped.len().to_string(),
                r.purged.len().to_string(),
                r.retained.to_string(),
                r.deleted_files.len().to_string(),
                human_bytes(r.deleted_bytes),
                r.history_records.to_string(),
            ]
        })
        .collect();
    table(
        &["dataSource", "dropped", "purged", "retained", "files deleted", "bytes", "run records deleted"],
        &rows,
    );
    if reports.iter().any(|r| r.dry_run) {
        println!("(dry run: nothing was changed)");
    }
}

/// A SQL answer in Druid's `array` format with a header row, as an aligned table.
pub fn sql_table(answer: &serde_json::Value) -> anyhow::Result<()> {
    let rows =
        answer.as_array().ok_or_else(|| anyhow::anyhow!("expected a JSON array of rows, got {answer}"))?;
    let Some((header, rows)) = rows.split_first() else {
        return Ok(());
    };
    let cell = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "null".to_string(),
        other => other.to_string(),
    };
    let header: Vec<String> = header.as_array().map(|h| h.iter().map(cell).collect()).unwrap_or_default();
    let rows: Vec<Vec<String>> =
        rows.iter().map(|r| r.as_array().map(|r| r.iter().map(cell).collect()).unwrap_or_default()).collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    table(&header, &rows);
    println!("({} rows)", rows.len());
    Ok(())
}
