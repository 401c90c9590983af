//! End-to-end tests of the `braid` command line. Each test runs the real binary over its own
//! temporary deep-storage directory: `raw put` of the tutorial's five wikipedia events (plain,
//! gzip, multi-member gzip and standard input) and of bad lines, `batch reindex` publishing
//! versions that overshadow each other, failing on a truncated raw file and rejecting events
//! filed under the wrong hour, `segments` listing the timeline, the Parquet segments read back
//! with `common::segment::read_segment`, `generate` feeding an hourly Kafka spec, the error
//! messages of bad specs, intervals and deep-storage URLs, and every command's `--help`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::segment::{SegmentDescription, read_segment};
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use tempfile::TempDir;

mod support;
use support::{bin, example, files_under, succeed};

/// The wikipedia spec's metrics, in spec order.
const WIKI_METRICS: [&str; 4] = ["count", "added", "deleted", "delta"];
/// The event hours of the five tutorial events.
const WIKI_HOURS: [&str; 5] = ["01", "03", "07", "11", "12"];
/// Where the raw files of 2013-08-31 live in the default layout.
const DAY_DIR: &str = "raw/wikipedia/v=1/y=2013/m=08/d=31";
/// 2013-08-31T00:00:00Z in UTC milliseconds.
const DAY_START_MS: i64 = 1_377_907_200_000;
const HOUR_MS: i64 = 3_600_000;
/// The day segment of the wikipedia spec.
const DAY: &str = "2013-08-31/2013-09-01";
const DAY_ISO: &str = "2013-08-31T00:00:00.000Z/2013-09-01T00:00:00.000Z";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn wikipedia_spec() -> PathBuf {
    example("wikipedia.json")
}

fn kafka_spec() -> PathBuf {
    example("wikipedia-kafka.json")
}

fn events_file() -> PathBuf {
    example("wikipedia-events.json")
}

/// The five tutorial events, one line each, without line endings.
fn event_lines() -> Vec<String> {
    let text = std::fs::read_to_string(events_file()).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 5, "the tutorial has five events");
    lines
}

/// The tutorial file's bytes.
fn events_bytes() -> Vec<u8> {
    std::fs::read(events_file()).unwrap()
}

/// `braid <args> --deep-storage <deep>`.
fn braid(deep: impl AsRef<OsStr>, args: &[&str]) -> Command {
    let mut cmd = bin();
    cmd.args(args).arg("--deep-storage").arg(deep);
    cmd
}

/// `braid raw put --spec <spec> --deep-storage <deep>`; inputs and flags are added by the caller.
fn raw_put(deep: &Path, spec: &Path) -> Command {
    let mut cmd = braid(deep, &["raw", "put"]);
    cmd.arg("--spec").arg(spec);
    cmd
}

/// `braid batch reindex --spec <spec> --deep-storage <deep> --interval <interval>`.
fn reindex(deep: &Path, spec: &Path, interval: &str) -> Command {
    let mut cmd = braid(deep, &["batch", "reindex", "--interval", interval]);
    cmd.arg("--spec").arg(spec);
    cmd
}

/// Runs a command that must fail; returns its standard error.
fn fail(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success() && out.status.code().is_some(),
        "{cmd:?} should have exited non-zero, got {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// Runs a command with `--json` that must succeed; returns the parsed output.
fn succeed_json(cmd: &mut Command) -> Value {
    let stdout = succeed(cmd.arg("--json"));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

/// `braid segments --deep-storage <deep> --json`.
fn segments_json(deep: &Path) -> Vec<Value> {
    match succeed_json(&mut braid(deep, &["segments"])) {
        Value::Array(views) => views,
        other => panic!("segments --json is not an array: {other}"),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Decompresses every gzip member of a file.
fn gunzip_file(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes.starts_with(&[0x1f, 0x8b]), "{} is not gzip", path.display());
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes.as_slice()).read_to_end(&mut out).unwrap();
    out
}

/// Names of the entries of a directory, sorted.
fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Checks that a `raw put` stored each tutorial event alone in its hour directory, byte for
/// byte, and that the report's parts say so.
fn assert_tutorial_stored(deep: &Path, report: &Value) {
    assert_eq!(report["lines"], 5, "{report}");
    assert_eq!(report["events"], 5, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
    let parts = report["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 5, "{report}");
    for ((part, hour), line) in parts.iter().zip(WIKI_HOURS).zip(event_lines()) {
        let path = part["path"].as_str().unwrap();
        assert!(path.starts_with(&format!("{DAY_DIR}/H={hour}/")), "{path} is not in hour {hour}");
        assert_eq!(part["hour"], format!("2013-08-31T{hour}:00:00.000Z"));
        assert_eq!(part["events"], 1);
        let file = deep.join(path);
        assert_eq!(part["bytes"], std::fs::metadata(&file).unwrap().len(), "{path}");
        assert_eq!(String::from_utf8(gunzip_file(&file)).unwrap(), format!("{line}\n"), "{path}");
    }
    assert_eq!(
        dir_names(&deep.join(DAY_DIR)),
        WIKI_HOURS.map(|h| format!("H={h}")),
        "hour directories of 2013-08-31"
    );
    for hour in WIKI_HOURS {
        assert_eq!(dir_names(&deep.join(format!("{DAY_DIR}/H={hour}"))).len(), 1, "files in H={hour}");
    }
}

/// One column of a segment file.
#[derive(Debug)]
enum Column {
    /// Int64 and millisecond timestamps.
    Ints(Vec<i64>),
    /// Float64 and Float32.
    Floats(Vec<f64>),
    /// Strings, plain or dictionary-encoded.
    Strings(Vec<Option<String>>),
}

impl Column {
    fn sum(&self) -> f64 {
        match self {
            Column::Ints(values) => values.iter().map(|v| *v as f64).sum(),
            Column::Floats(values) => values.iter().sum(),
            Column::Strings(_) => panic!("no sum of a string column"),
        }
    }

    fn ints(&self) -> &[i64] {
        match self {
            Column::Ints(values) => values,
            other => panic!("not an integer column: {other:?}"),
        }
    }

    fn strings(&self) -> BTreeSet<&str> {
        match self {
            Column::Strings(values) => values.iter().map(|v| v.as_deref().unwrap_or("<null>")).collect(),
            other => panic!("not a string column: {other:?}"),
        }
    }
}

/// A Parquet segment read back with `read_segment`.
#[derive(Debug)]
struct Segment {
    description: SegmentDescription,
    /// Column names in file order.
    names: Vec<String>,
    columns: BTreeMap<String, Column>,
    /// Null values per column (the slots of numeric nulls hold arbitrary values).
    nulls: BTreeMap<String, usize>,
}

impl Segment {
    fn column(&self, name: &str) -> &Column {
        self.columns.get(name).unwrap_or_else(|| panic!("no column {name:?} in {:?}", self.names))
    }

    fn sum(&self, name: &str) -> f64 {
        assert_eq!(self.nulls[name], 0, "nulls in {name}");
        self.column(name).sum()
    }

    fn ints(&self, name: &str) -> &[i64] {
        assert_eq!(self.nulls[name], 0, "nulls in {name}");
        self.column(name).ints()
    }
}

/// Reads a segment file, decoding its columns from the Arrow buffers (the test has no direct
/// arrow dependency, so it reads the array data through the `Array` trait object).
fn read_parquet(path: &Path) -> Segment {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (description, batches) = read_segment(bytes.into(), &path.display().to_string()).unwrap();
    let mut names = Vec::new();
    let mut columns: BTreeMap<String, Column> = BTreeMap::new();
    let mut nulls: BTreeMap<String, usize> = BTreeMap::new();
    for batch in &batches {
        let schema = batch.schema();
        for (i, field) in schema.fields().iter().enumerate() {
            let name = field.name().to_string();
            if !names.contains(&name) {
                names.push(name.clone());
            }
            let data = batch.column(i).to_data();
            let (offset, len) = (data.offset(), data.len());
            let kind = format!("{:?}", field.data_type());
            *nulls.entry(name.clone()).or_default() += data.null_count();
            let chunk = if kind == "Int64" || kind.starts_with("Timestamp(Millisecond") {
                Column::Ints(data.buffers()[0].typed_data::<i64>()[offset..offset + len].to_vec())
            } else if kind == "Float64" {
                Column::Floats(data.buffers()[0].typed_data::<f64>()[offset..offset + len].to_vec())
            } else if kind == "Float32" {
                let values = &data.buffers()[0].typed_data::<f32>()[offset..offset + len];
                Column::Floats(values.iter().map(|v| f64::from(*v)).collect())
            } else if kind.starts_with("Dictionary(Int32, Utf8") {
                let keys = &data.buffers()[0].typed_data::<i32>()[offset..offset + len];
                let dictionary = &data.child_data()[0];
                let offsets = &dictionary.buffers()[0].typed_data::<i32>()[dictionary.offset()..];
                let text = dictionary.buffers()[1].as_slice();
                Column::Strings(
                    keys.iter()
                        .enumerate()
                        .map(|(row, key)| {
                            (!data.is_null(row)).then(|| {
                                let k = *key as usize;
                                let bytes = &text[offsets[k] as usize..offsets[k + 1] as usize];
                                String::from_utf8(bytes.to_vec()).unwrap()
                            })
                        })
                        .collect(),
                )
            } else {
                panic!("column {name} has a type these tests do not decode: {kind}");
            };
            match (columns.get_mut(&name), chunk) {
                (None, chunk) => {
                    columns.insert(name, chunk);
                }
                (Some(Column::Ints(all)), Column::Ints(more)) => all.extend(more),
                (Some(Column::Floats(all)), Column::Floats(more)) => all.extend(more),
                (Some(Column::Strings(all)), Column::Strings(more)) => all.extend(more),
                (Some(_), _) => panic!("column {name} changes type between batches"),
            }
        }
    }
    Segment { description, names, columns, nulls }
}

/// Reads the segment file a `segments --json` entry points at.
fn read_view(deep: &Path, view: &Value) -> Segment {
    let path = view["path"].as_str().unwrap_or_else(|| panic!("segment without a path: {view}"));
    read_parquet(&deep.join(path))
}

/// UTC milliseconds of a tutorial timestamp such as "2013-08-31T01:02:33Z".
fn tutorial_millis(timestamp: &str) -> i64 {
    assert!(timestamp.starts_with("2013-08-31T") && timestamp.ends_with('Z'), "{timestamp}");
    let field = |range: std::ops::Range<usize>| timestamp[range].parse::<i64>().unwrap();
    DAY_START_MS + field(11..13) * HOUR_MS + field(14..16) * 60_000 + field(17..19) * 1000
}

/// A tutorial-shaped event at 2013-08-31T<time>Z.
fn wiki_event(time: &str, page: &str, added: u32) -> String {
    format!(
        r#"{{"timestamp": "2013-08-31T{time}Z", "page": "{page}", "language": "en", "user": "u", "unpatrolled": "false", "newPage": "false", "robot": "false", "anonymous": "false", "namespace": "article", "continent": "Europe", "country": "France", "region": "IdF", "city": "Paris", "added": {added}, "deleted": 0, "delta": {added}}}"#
    )
}

/// The wikipedia spec with one field changed, written into `dir`.
fn modified_spec(dir: &Path, name: &str, change: impl FnOnce(&mut Value)) -> PathBuf {
    let mut spec: Value = serde_json::from_slice(&std::fs::read(wikipedia_spec()).unwrap()).unwrap();
    change(&mut spec);
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    path
}

/// Puts the tutorial events into `deep` and checks they were all stored.
fn put_tutorial(deep: &Path) {
    let report = succeed_json(raw_put(deep, &wikipedia_spec()).arg(events_file()));
    assert_tutorial_stored(deep, &report);
}

// ---------------------------------------------------------------------------------------------
// 1. The README walkthrough
// ---------------------------------------------------------------------------------------------

#[test]
fn raw_put_stores_each_event_in_its_hour_byte_for_byte() {
    let deep = TempDir::new().unwrap();
    let stdout = succeed(raw_put(deep.path(), &wikipedia_spec()).arg(events_file()));
    assert!(stdout.contains("5 events in 5 hourly files (5 new, 0 already stored), 0 rejected"), "{stdout}");
    assert_eq!(stdout.matches(" stored ").count(), 5, "{stdout}");

    // The same input again, as a table and as JSON: nothing new.
    let stdout = succeed(raw_put(deep.path(), &wikipedia_spec()).arg(events_file()));
    assert_eq!(stdout.matches("already stored ").count(), 5, "{stdout}");
    assert!(stdout.contains("5 events in 5 hourly files (0 new, 5 already stored)"), "{stdout}");
    let report = succeed_json(raw_put(deep.path(), &wikipedia_spec()).arg(events_file()));
    assert_tutorial_stored(deep.path(), &report);
    for part in report["parts"].as_array().unwrap() {
        assert_eq!(part["created"], false, "{part}");
    }
    assert_eq!(report["rejectsPath"], Value::Null);
    assert_eq!(files_under(&deep.path().join("raw")).len(), 5);
}

#[test]
fn reindex_after_putting_twice_counts_each_event_once() {
    let deep = TempDir::new().unwrap();
    put_tutorial(deep.path());
    put_tutorial(deep.path());
    let report = succeed_json(&mut reindex(deep.path(), &wikipedia_spec(), DAY));
    assert_eq!(report["dataSource"], "wikipedia");
    assert_eq!(report["events"], 5, "{report}");
    assert_eq!(report["rows"], 5, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
    assert_eq!(report["rawFiles"], 5, "{report}");
    let intervals = report["intervals"].as_array().unwrap();
    assert_eq!(intervals.len(), 1, "{report}");
    assert_eq!(intervals[0]["interval"], DAY_ISO);
    assert_eq!(intervals[0]["events"], 5);
    assert_eq!(intervals[0]["partitions"], 1);
    assert_eq!(intervals[0]["tombstone"], false);
}

#[test]
fn segments_json_describes_the_segment_and_its_parquet_reads_back() {
    let deep = TempDir::new().unwrap();
    put_tutorial(deep.path());
    let report = succeed_json(&mut reindex(deep.path(), &wikipedia_spec(), DAY));
    let version = report["version"].as_str().unwrap();

    let views = segments_json(deep.path());
    assert_eq!(views.len(), 1, "{views:?}");
    let view = &views[0];
    for key in ["id", "dataSource", "interval", "version", "partition", "rows", "bytes", "path", "visible"] {
        assert!(view.get(key).is_some(), "segments --json lacks {key}: {view}");
    }
    let id = format!("wikipedia_2013-08-31T00:00:00.000Z_2013-09-01T00:00:00.000Z_{version}");
    assert_eq!(view["id"], id.as_str());
    assert_eq!(view["dataSource"], "wikipedia");
    assert_eq!(view["interval"], DAY_ISO);
    assert_eq!(view["version"], version);
    assert_eq!(view["partition"], 0);
    assert_eq!(view["rows"], 5);
    assert_eq!(view["visible"], true);
    assert_eq!(view["state"], "visible");
    let path = view["path"].as_str().unwrap();
    assert!(Path::new(path).is_relative() && path.ends_with(".parquet"), "{path}");
    let file = deep.path().join(path);
    assert!(file.is_file(), "{} does not exist", file.display());
    assert_eq!(view["bytes"], std::fs::metadata(&file).unwrap().len());
    assert_eq!(files_under(&deep.path().join("segments")).len(), 1);

    let segment = read_parquet(&file);
    assert_eq!(segment.description.id, id);
    assert_eq!(segment.description.data_source, "wikipedia");
    assert_eq!(segment.description.version, version);
    let mut expected_columns = vec!["__time"];
    // The generator carries exactly the wikipedia spec's dimensions, in spec order.
    expected_columns.extend(common::generator::DIMENSIONS);
    expected_columns.extend(WIKI_METRICS);
    assert_eq!(segment.names, expected_columns);
    assert_eq!(segment.sum("count"), 5.0);
    assert_eq!(segment.sum("added"), (57 + 459 + 123 + 905 + 1) as f64);
    assert_eq!(segment.sum("deleted"), (200 + 129 + 12 + 5 + 10) as f64);
    assert_eq!(segment.sum("delta"), (-143 + 330 + 111 + 900 - 9) as f64);

    let events: Vec<Value> = event_lines().iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut times = segment.ints("__time").to_vec();
    times.sort();
    let expected_times: Vec<i64> =
        events.iter().map(|e| tutorial_millis(e["timestamp"].as_str().unwrap())).collect();
    assert_eq!(times, expected_times);
    for dimension in ["page", "city"] {
        let expected: BTreeSet<&str> = events.iter().map(|e| e[dimension].as_str().unwrap()).collect();
        assert_eq!(segment.column(dimension).strings(), expected, "{dimension}");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Versions
// ---------------------------------------------------------------------------------------------

#[test]
fn second_reindex_overshadows_the_first() {
    let deep = TempDir::new().unwrap();
    put_tutorial(deep.path());
    let first = succeed_json(&mut reindex(deep.path(), &wikipedia_spec(), DAY));
    let second = succeed_json(&mut reindex(deep.path(), &wikipedia_spec(), DAY));
    let (old, new) = (first["version"].as_str().unwrap(), second["version"].as_str().unwrap());
    assert!(new > old, "second version {new} is not higher than {old}");
    assert_eq!(second["events"], 5);
    assert!(second["commitSeq"].as_u64() > first["commitSeq"].as_u64());

    let views = segments_json(deep.path());
    assert_eq!(views.len(), 2, "{views:?}");
    let by_version = |version: &str| {
        views.iter().find(|v| v["version"] == version).unwrap_or_else(|| panic!("no {version}: {views:?}"))
    };
    let (old_view, new_view) = (by_version(old), by_version(new));
    assert_eq!(old_view["visible"], false);
    assert_eq!(old_view["state"], "overshadowed");
    assert_eq!(new_view["visible"], true);
    assert_eq!(new_view["state"], "visible");
    assert_eq!(new_view["interval"], old_view["interval"]);
    let visible = read_view(deep.path(), new_view);
    assert_eq!(visible.sum("count"), 5.0);
    assert_eq!(visible.sum("added"), 1545.0);

    let table = succeed(&mut braid(deep.path(), &["segments"]));
    let line_of = |version: &str| {
        let lines: Vec<&str> = table.lines().filter(|l| l.contains(version)).collect();
        assert_eq!(lines.len(), 1, "one row of version {version} expected:\n{table}");
        lines[0]
    };
    assert!(line_of(old).contains("overshadowed"), "{table}");
    assert!(line_of(new).contains("visible") && !line_of(new).contains("overshadowed"), "{table}");
}

// ---------------------------------------------------------------------------------------------
// 3. Input formats
// ---------------------------------------------------------------------------------------------

#[test]
fn raw_put_reads_gzip_input_into_the_same_files_as_plain() {
    let (deep, work) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let input = work.path().join("events.json.gz");
    std::fs::write(&input, gzip(&events_bytes())).unwrap();
    let report = succeed_json(raw_put(deep.path(), &wikipedia_spec()).arg(&input));
    assert_tutorial_stored(deep.path(), &report);
    assert!(report["parts"].as_array().unwrap().iter().all(|p| p["created"] == true), "{report}");

    // Files are named by their uncompressed content: the plain input is already there.
    let plain = succeed_json(raw_put(deep.path(), &wikipedia_spec()).arg(events_file()));
    assert!(plain["parts"].as_array().unwrap().iter().all(|p| p["created"] == false), "{plain}");
}

#[test]
fn raw_put_reads_multi_member_gzip() {
    let (deep, work) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let bytes = events_bytes();
    // The second member starts in the middle of the third line.
    let second_newline = bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(1).unwrap().0;
    let cut = second_newline + 40;
    let mut members = gzip(&bytes[..cut]);
    members.extend(gzip(&bytes[cut..]));
    let input = work.path().join("members.json.gz");
    std::fs::write(&input, members).unwrap();
    let report = succeed_json(raw_put(deep.path(), &wikipedia_spec()).arg(&input));
    assert_tutorial_stored(deep.path(), &report);
}

#[test]
fn raw_put_reads_standard_input() {
    // "-" with plain text.
    let deep = TempDir::new().unwrap();
    let report = succeed_json(raw_put(deep.path(), &wikipedia_spec()).arg("-").write_stdin(events_bytes()));
    assert_tutorial_stored(deep.path(), &report);

    // No inputs at all, with gzip.
    let deep = TempDir::new().unwrap();
    let report = succeed_json(raw_put(deep.path(), &wikipedia_spec()).write_stdin(gzip(&events_bytes())));
    assert_tutorial_stored(deep.path(), &report);
}

// ---------------------------------------------------------------------------------------------
// 4. Bad lines
// ---------------------------------------------------------------------------------------------

#[test]
fn raw_put_keeps_bad_lines_aside_and_stores_the_good_ones() {
    let (deep, work) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let good = event_lines();
    let broken = r#"{"timestamp": "2013-08-31T05:00:00Z", "page": oops"#;
    let no_time = r#"{"page": "no time", "added": 1}"#;
    let yesterday = r#"{"timestamp": "yesterday", "page": "x"}"#;
    // The blank line counts in line numbers but is neither an event nor a reject.
    let lines = [good[0].as_str(), good[1].as_str(), "", broken, no_time, yesterday, good[4].as_str()];
    let input = work.path().join("bad.json");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let source = input.display().to_string();

    let stdout = succeed(raw_put(deep.path(), &wikipedia_spec()).arg(&input));
    assert!(
        stdout.contains("6 lines: 3 events in 3 hourly files (3 new, 0 already stored), 3 rejected"),
        "{stdout}"
    );
    for number in [4, 5, 6] {
        assert!(stdout.contains(&format!("rejected {source} line {number}: ")), "line {number}:\n{stdout}");
    }

    // The good events are stored.
    let raw = files_under(&deep.path().join(DAY_DIR));
    assert_eq!(raw.len(), 3, "{raw:?}");
    for (hour, line) in [("01", &good[0]), ("03", &good[1]), ("12", &good[4])] {
        let file = raw.iter().find(|f| f.starts_with(&format!("H={hour}/"))).unwrap();
        assert_eq!(gunzip_file(&deep.path().join(DAY_DIR).join(file)), format!("{line}\n").into_bytes());
    }

    // The rejects file holds the three lines.
    let rejects_dir = deep.path().join("rejects/wikipedia");
    let rejects_files = dir_names(&rejects_dir);
    assert_eq!(rejects_files.len(), 1, "{rejects_files:?}");
    assert!(stdout.contains(&format!("rejects/wikipedia/{}", rejects_files[0])), "{stdout}");
    let text = String::from_utf8(gunzip_file(&rejects_dir.join(&rejects_files[0]))).unwrap();
    let rejects: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rejects.len(), 3, "{text}");
    for (reject, (number, raw)) in rejects.iter().zip([(4, broken), (5, no_time), (6, yesterday)]) {
        assert_eq!(reject["source"], source.as_str(), "{reject}");
        assert_eq!(reject["line"], number, "{reject}");
        assert_eq!(reject["raw"], raw, "{reject}");
        assert!(!reject["error"].as_str().unwrap().is_empty(), "{reject}");
    }
    assert!(rejects[1]["error"].as_str().unwrap().contains("timestamp"), "{}", rejects[1]);
    assert!(rejects[2]["error"].as_str().unwrap().contains("yesterday"), "{}", rejects[2]);

    let report = succeed_json(&mut reindex(deep.path(), &wikipedia_spec(), DAY));
    assert_eq!(report["events"], 3, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
}

// ---------------------------------------------------------------------------------------------
// 5. A truncated raw file
// ---------------------------------------------------------------------------------------------

#[test]
fn reindex_of_a_truncated_raw_file_fails_and_publishes_nothing() {
    let deep = TempDir::new().unwrap();
    put_tutorial(deep.path());
    succeed_json(&mut reindex(deep.path(), &wikipedia_spec(), DAY));
    let catalog_before = files_under(&deep.path().join("catalog"));
    let segments_before = files_under(&deep.path().join("segments"));
    let views_before = segments_json(deep.path());
    assert_eq!(catalog_before.iter().filter(|f| f.starts_with("wikipedia/log/")).count(), 1);

    let events: String = (0..20_000)
        .map(|i| wiki_event(&format!("05:{:02}:{:02}", i / 60 % 60, i % 60), &format!("p{i}"), i) + "\n")
        .collect();
    let whole = gzip(events.as_bytes());
    let relative = format!("{DAY_DIR}/H=05/other.json.gz");
    let file = deep.path().join(&relative);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, &whole[..whole.len() / 2]).unwrap();

    let stderr = fail(reindex(deep.path(), &wikipedia_spec(), DAY).arg("--json"));
    assert!(stderr.contains(&relative), "stderr does not name {relative}:\n{stderr}");
    assert_eq!(files_under(&deep.path().join("catalog")), catalog_before, "a commit was written");
    assert_eq!(files_under(&deep.path().join("segments")), segments_before, "segment files were written");
    assert_eq!(segments_json(deep.path()), views_before);
}

// ---------------------------------------------------------------------------------------------
// 6. An event in the wrong hour directory
// ---------------------------------------------------------------------------------------------

#[test]
fn reindex_rejects_an_event_filed_under_the_wrong_hour() {
    let deep = TempDir::new().unwrap();
    put_tutorial(deep.path());
    let relative = format!("{DAY_DIR}/H=05/other.json.gz");
    let file = deep.path().join(&relative);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let lines = format!(
        "{}\n{}\n",
        wiki_event("05:10:00", "right hour", 10),
        wiki_event("07:10:00", "wrong hour", 20)
    );
    std::fs::write(&file, gzip(lines.as_bytes())).unwrap();

    let report = succeed_json(&mut reindex(deep.path(), &wikipedia_spec(), DAY));
    assert_eq!(report["events"], 6, "{report}");
    assert_eq!(report["rejected"], 1, "{report}");
    assert_eq!(report["rawFiles"], 6, "{report}");
    let first_rejects = report["firstRejects"].as_array().unwrap();
    assert_eq!(first_rejects.len(), 1, "{report}");
    let message = first_rejects[0].as_str().unwrap();
    assert!(message.contains(&format!("{relative} line 2")), "{message}");

    let views = segments_json(deep.path());
    assert_eq!(views.len(), 1, "{views:?}");
    let segment = read_view(deep.path(), &views[0]);
    assert_eq!(segment.sum("count"), 6.0);
    assert_eq!(segment.sum("added"), 1545.0 + 10.0);
    let pages = segment.column("page").strings();
    assert!(pages.contains("right hour") && !pages.contains("wrong hour"), "{pages:?}");
}

// ---------------------------------------------------------------------------------------------
// 7. Clear errors
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_segment_granularity_is_named() {
    let (deep, work) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let spec = modified_spec(work.path(), "days.json", |s| {
        s[0]["dataSchema"]["granularitySpec"]["segmentGranularity"] = "DAYS".into();
    });
    let stderr = fail(raw_put(deep.path(), &spec).arg(events_file()));
    assert!(stderr.contains("segmentGranularity") && stderr.contains("\"DAYS\""), "{stderr}");
    let stderr = fail(&mut reindex(deep.path(), &spec, DAY));
    assert!(stderr.contains("segmentGranularity") && stderr.contains("\"DAYS\""), "{stderr}");
    assert!(files_under(deep.path()).is_empty(), "{:?}", files_under(deep.path()));
}

#[test]
fn data_source_with_a_path_is_refused() {
    let work = TempDir::new().unwrap();
    let deep = work.path().join("deep");
    let spec = modified_spec(work.path(), "evil.json", |s| {
        s[0]["dataSchema"]["dataSource"] = "../evil".into();
    });
    let stderr = fail(raw_put(&deep, &spec).arg(events_file()));
    assert!(stderr.contains("dataSource") && stderr.contains("../evil"), "{stderr}");
    let stderr = fail(&mut reindex(&deep, &spec, DAY));
    assert!(stderr.contains("../evil"), "{stderr}");
    let stderr = fail(&mut braid(&deep, &["segments", "--data-source", "../evil"]));
    assert!(stderr.contains("../evil"), "{stderr}");
    // Nothing was written, inside deep storage or next to it.
    assert_eq!(files_under(work.path()), ["evil.json"]);
    assert!(!work.path().join("evil").exists());
}

#[test]
fn unaligned_interval_suggests_the_aligned_one() {
    let deep = TempDir::new().unwrap();
    put_tutorial(deep.path());
    let cases = [
        (wikipedia_spec(), "2013-08-31T01/2013-09-01", "2013-08-31T00:00:00.000Z/2013-09-01T00:00:00.000Z"),
        (wikipedia_spec(), "2013-08-31/2013-09-01T06", "2013-08-31T00:00:00.000Z/2013-09-02T00:00:00.000Z"),
        (kafka_spec(), "2013-08-31T00:30/2013-08-31T02", "2013-08-31T00:00:00.000Z/2013-08-31T02:00:00.000Z"),
    ];
    for (spec, interval, aligned) in cases {
        let stderr = fail(&mut reindex(deep.path(), &spec, interval));
        assert!(stderr.contains("does not line up"), "{interval}: {stderr}");
        assert!(stderr.contains(aligned), "{interval}: should suggest {aligned}: {stderr}");
    }
    assert!(files_under(&deep.path().join("catalog")).is_empty());
    assert!(files_under(&deep.path().join("segments")).is_empty());
}

#[test]
fn unsupported_deep_storage_url_is_named() {
    let stderr = fail(raw_put(Path::new("ftp://x"), &wikipedia_spec()).arg(events_file()));
    assert!(stderr.contains("ftp://x"), "{stderr}");
    let stderr = fail(&mut reindex(Path::new("ftp://x"), &wikipedia_spec(), DAY));
    assert!(stderr.contains("ftp://x"), "{stderr}");
    let stderr = fail(&mut braid("ftp://x", &["segments"]));
    assert!(stderr.contains("ftp://x"), "{stderr}");
}

#[test]
fn missing_spec_file_is_an_error() {
    let (deep, work) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let spec = work.path().join("no-such-spec.json");
    let stderr = fail(raw_put(deep.path(), &spec).arg(events_file()));
    assert!(stderr.contains("no-such-spec.json"), "{stderr}");
    let stderr = fail(&mut reindex(deep.path(), &spec, DAY));
    assert!(stderr.contains("no-such-spec.json"), "{stderr}");
    assert!(files_under(deep.path()).is_empty());
}

#[test]
fn missing_input_file_is_named_and_stdin_is_read_once() {
    let (deep, work) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let input = work.path().join("no-such-input.json");
    let stderr = fail(raw_put(deep.path(), &wikipedia_spec()).arg(&input));
    assert!(stderr.contains(&input.display().to_string()), "{stderr}");
    let stderr = fail(raw_put(deep.path(), &wikipedia_spec()).args(["-", "-"]).write_stdin(events_bytes()));
    assert!(stderr.contains("standard input"), "{stderr}");
    assert!(files_under(deep.path()).is_empty(), "{:?}", files_under(deep.path()));
}

// ---------------------------------------------------------------------------------------------
// 8. Generated events and an hourly Kafka spec
// ---------------------------------------------------------------------------------------------

/// `braid generate --out <out> --events 2000 --hours 3 --start 2013-08-31T00:00:00Z --seed <seed>`.
fn generate(out: &Path, seed: &str) -> String {
    let mut cmd = bin();
    cmd.args([
        "generate",
        "--events",
        "2000",
        "--hours",
        "3",
        "--start",
        "2013-08-31T00:00:00Z",
        "--seed",
        seed,
    ])
    .arg("--out")
    .arg(out);
    succeed(&mut cmd)
}

#[test]
fn generated_events_reindex_into_hourly_segments() {
    let (deep, work) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let out = work.path().join("G");
    let stdout = generate(&out, "7");
    assert!(stdout.contains("wrote 2000 events in 3 files"), "{stdout}");
    let names = dir_names(&out);
    assert_eq!(names, ["events-00.json.gz", "events-01.json.gz", "events-02.json.gz"]);

    let mut put = raw_put(deep.path(), &kafka_spec());
    put.args(names.iter().map(|n| out.join(n)));
    let report = succeed_json(&mut put);
    assert_eq!(report["events"], 2000, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");

    let report = succeed_json(&mut reindex(deep.path(), &kafka_spec(), "2013-08-31T00/2013-08-31T03"));
    assert_eq!(report["events"], 2000, "{report}");
    assert_eq!(report["intervals"].as_array().unwrap().len(), 3, "{report}");

    let views = segments_json(deep.path());
    assert_eq!(views.len(), 3, "{views:?}");
    // 2000 events over 3 files: the first hours take the remainder.
    let per_hour = [667.0, 667.0, 666.0];
    let mut total = 0.0;
    for (hour, view) in views.iter().enumerate() {
        let start = DAY_START_MS + hour as i64 * HOUR_MS;
        let interval = format!("2013-08-31T{hour:02}:00:00.000Z/2013-08-31T{:02}:00:00.000Z", hour + 1);
        assert_eq!(view["interval"], interval.as_str(), "{view}");
        assert_eq!(view["visible"], true, "{view}");
        let segment = read_view(deep.path(), view);
        assert_eq!(segment.names[0], "__time");
        let times = segment.ints("__time");
        assert!(times.iter().all(|t| (start..start + HOUR_MS).contains(t)), "{interval}: times outside");
        let count = segment.sum("count");
        assert_eq!(count, per_hour[hour], "{interval}");
        total += count;
    }
    assert_eq!(total, 2000.0);
}

#[test]
fn generate_writes_the_same_bytes_for_the_same_seed() {
    let work = TempDir::new().unwrap();
    let (a, b, c) = (work.path().join("a"), work.path().join("b"), work.path().join("c"));
    generate(&a, "7");
    generate(&b, "7");
    generate(&c, "8");
    let names = dir_names(&a);
    assert_eq!(names.len(), 3);
    assert_eq!(dir_names(&b), names);
    for name in &names {
        let bytes = std::fs::read(a.join(name)).unwrap();
        assert_eq!(bytes, std::fs::read(b.join(name)).unwrap(), "{name} differs with the same seed");
        assert_ne!(bytes, std::fs::read(c.join(name)).unwrap(), "{name} is the same with another seed");
    }
}

// ---------------------------------------------------------------------------------------------
// 8b. Scheduler, history, cleanup: the command-line surface (tests/lambda.rs runs them for real)
// ---------------------------------------------------------------------------------------------

#[test]
fn history_and_cleanup_of_a_fresh_deep_storage() {
    let deep = TempDir::new().unwrap();
    put_tutorial(deep.path());
    succeed(&mut reindex(deep.path(), &wikipedia_spec(), DAY));
    let stdout = succeed(&mut braid(deep.path(), &["batch", "history"]));
    assert_eq!(stdout.trim(), "no scheduler runs recorded");
    assert_eq!(succeed_json(&mut braid(deep.path(), &["batch", "history"])), json!([]));

    // A second reindex overshadows the first; a dry run says so and changes nothing.
    succeed(&mut reindex(deep.path(), &wikipedia_spec(), DAY));
    let dry = succeed_json(&mut braid(deep.path(), &["cleanup", "--retention", "PT0S", "--dry-run"]));
    assert_eq!(dry[0]["dropped"].as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(dry[0]["deletedFiles"].as_array().unwrap().len(), 1, "the dropped segment's file: {dry}");
    assert_eq!(segments_json(deep.path()).len(), 2);
    let table = succeed(&mut braid(deep.path(), &["cleanup", "--retention", "PT0S"]));
    assert!(table.starts_with("dataSource  dropped  purged"), "{table}");
    assert!(table.contains("wikipedia"), "{table}");
    let left = segments_json(deep.path());
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["visible"], true);
}

#[test]
fn settings_come_from_flags_then_environment_then_config_file() {
    let (deep, empty, work) = (TempDir::new().unwrap(), TempDir::new().unwrap(), TempDir::new().unwrap());
    put_tutorial(deep.path());
    succeed(&mut reindex(deep.path(), &wikipedia_spec(), DAY));
    let config = work.path().join("braid.toml");
    std::fs::write(&config, format!("deep-storage = {:?}\nrate = 5\n", deep.path().to_str().unwrap()))
        .unwrap();
    let segments = |env: Option<&Path>, flags: &[&OsStr]| {
        let mut cmd = bin();
        cmd.arg("segments").args(flags);
        if let Some(dir) = env {
            cmd.env("BRAID_DEEP_STORAGE", dir);
        }
        succeed_json(&mut cmd).as_array().unwrap().len()
    };
    let file = [OsStr::new("--config"), config.as_os_str()];
    assert_eq!(segments(None, &file), 1, "from the file");
    assert_eq!(segments(Some(empty.path()), &file), 0, "the environment wins over the file");
    let flag = [&file[..], &[OsStr::new("--deep-storage"), deep.path().as_os_str()]].concat();
    assert_eq!(segments(Some(empty.path()), &flag), 1, "the flag wins over both");
    let by_env = succeed_json(bin().arg("segments").env("BRAID_CONFIG", &config));
    assert_eq!(by_env.as_array().unwrap().len(), 1, "the file named by BRAID_CONFIG");

    std::fs::write(&config, "deep_storage = \"x\"\n").unwrap();
    let stderr = fail(bin().arg("segments").arg("--config").arg(&config));
    assert!(stderr.contains("no braid command has a --deep_storage flag"), "{stderr}");
}

#[test]
fn scheduler_mistakes_are_named() {
    let deep = TempDir::new().unwrap();
    let spec = wikipedia_spec();
    let spec = spec.to_str().unwrap();
    let stderr =
        fail(&mut braid(deep.path(), &["batch", "schedule", "--spec", spec, "--cron", "15 * * * *"]));
    assert!(
        stderr.contains("cron expression \"15 * * * *\"") && stderr.contains("six or seven fields"),
        "{stderr}"
    );
    let stderr = fail(&mut braid(
        deep.path(),
        &["batch", "schedule", "--spec", spec, "--cron", "0 15 * * * *", "--settle", "1h"],
    ));
    assert!(stderr.contains("settle") && stderr.contains("1h"), "{stderr}");
    let stderr = fail(&mut braid(deep.path(), &["batch", "schedule"]));
    assert!(stderr.contains("--spec") && stderr.contains("--jobs"), "{stderr}");
    let stderr = fail(&mut braid(deep.path(), &["cleanup", "--retention", "forever"]));
    assert!(stderr.contains("--retention") && stderr.contains("forever"), "{stderr}");
    let stderr = fail(&mut braid(deep.path(), &["run"]));
    assert!(stderr.contains("--spec"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// 9. Help
// ---------------------------------------------------------------------------------------------

#[test]
fn help_of_every_command() {
    let cases: [(&[&str], &[&str]); 9] = [
        (&[], &["raw", "batch", "segments", "generate", "run", "cleanup"]),
        (
            &["batch", "schedule"],
            &["--cron", "--lookback", "--settle", "--jobs", "--reindex-spec", "--retention"],
        ),
        (&["batch", "history"], &["--deep-storage", "--data-source", "--job", "--json"]),
        (&["cleanup"], &["--retention", "--dry-run", "--json"]),
        (&["run"], &["--spec", "--cron", "--settle", "--listen"]),
        (&["raw", "put"], &["--deep-storage", "--spec", "--json"]),
        (&["batch", "reindex"], &["--deep-storage", "--spec", "--interval", "--json"]),
        (&["segments"], &["--deep-storage", "--json"]),
        (&["generate"], &["--out", "--events", "--hours", "--start", "--seed"]),
    ];
    for (command, mentions) in cases {
        let mut cmd = bin();
        cmd.args(command).arg("--help");
        let stdout = succeed(&mut cmd);
        assert!(stdout.contains("Usage: braid"), "{command:?}:\n{stdout}");
        for mention in mentions {
            assert!(stdout.contains(mention), "{command:?} --help does not mention {mention}:\n{stdout}");
        }
    }
}
