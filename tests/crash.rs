//! A reindex killed with SIGKILL in the middle of writing its segments publishes nothing
//! partial: queries see the previous version whole, and running the job again succeeds and
//! counts every event once.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

const EVENTS: u64 = 60_000;
const SPEC: &str = "examples/wikipedia-kafka.json";
const INTERVAL: &str = "2013-08-31T00/2013-08-31T06";

fn braid(deep: &Path) -> Command {
    let mut command = Command::cargo_bin("braid").unwrap();
    command.current_dir(env!("CARGO_MANIFEST_DIR")).env("BRAID_DEEP_STORAGE", deep);
    command
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn segments(deep: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&run(braid(deep).args(["segments", "--json"]))).unwrap()
}

/// Sum of the ingest `count` metric over the visible segments.
fn visible_events(deep: &Path) -> i64 {
    let mut total = 0;
    for s in segments(deep).iter().filter(|s| s["visible"] == true) {
        let path = deep.join(s["path"].as_str().unwrap());
        let (_, batches) =
            common::segment::read_segment(std::fs::read(&path).unwrap().into(), s["id"].as_str().unwrap())
                .unwrap();
        for batch in batches {
            let count = batch.column_by_name("count").unwrap();
            let count = count.as_any().downcast_ref::<arrow::array::Int64Array>().unwrap();
            total += count.iter().flatten().sum::<i64>();
        }
    }
    total
}

fn parquet_files(deep: &Path) -> usize {
    fn walk(dir: &Path, n: &mut usize) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, n);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(&deep.join("segments"), &mut n);
    n
}

#[test]
fn a_killed_reindex_leaves_the_previous_version_whole() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep");
    let input = dir.path().join("input");
    run(braid(&deep)
        .args(["generate", "--events", &EVENTS.to_string(), "--hours", "6", "--seed", "3", "--out"])
        .arg(&input));
    let mut put = braid(&deep);
    put.args(["raw", "put", "--spec", SPEC]);
    for entry in std::fs::read_dir(&input).unwrap() {
        put.arg(entry.unwrap().path());
    }
    run(&mut put);
    run(braid(&deep).args(["batch", "reindex", "--spec", SPEC, "--interval", INTERVAL]));
    assert_eq!(visible_events(&deep), EVENTS as i64);
    let first_versions: Vec<String> =
        segments(&deep).iter().map(|s| s["version"].as_str().unwrap().to_string()).collect();
    let files_before = parquet_files(&deep);

    let mut child = braid(&deep)
        .args(["batch", "reindex", "--spec", SPEC, "--interval", INTERVAL, "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as its first segment file exists: after reading, before the commit
    // (or, if it is quicker than us, after it; both must leave a consistent catalog).
    let deadline = Instant::now() + Duration::from_secs(120);
    while parquet_files(&deep) == files_before && child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the reindex neither wrote a segment nor finished");
        std::thread::yield_now();
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let after = segments(&deep);
    let visible_versions: std::collections::BTreeSet<String> = after
        .iter()
        .filter(|s| s["visible"] == true)
        .map(|s| s["version"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(visible_versions.len(), 1, "one version is visible, never a mix: {after:#?}");
    assert_eq!(visible_events(&deep), EVENTS as i64, "every event counted exactly once");
    if after.len() == first_versions.len() {
        assert!(visible_versions.contains(&first_versions[0]), "the killed job published nothing");
    }

    run(braid(&deep).args(["batch", "reindex", "--spec", SPEC, "--interval", INTERVAL]));
    assert_eq!(visible_events(&deep), EVENTS as i64);
}
