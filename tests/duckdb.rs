//! Segments are plain Parquet: DuckDB reads one with no help and gets the columns, types and
//! totals braid wrote, every value of a segment of several row groups among them. Needs
//! `python3` with the `duckdb` package (`.ci/run` installs it).

use std::path::Path;
use std::process::Command;

use assert_cmd::Command as BraidCommand;

/// Whether DuckDB can be asked. CI installs it; elsewhere a test says plainly what it did not
/// check.
fn duckdb_ready() -> bool {
    let available = Command::new("python3").args(["-c", "import duckdb"]).status().is_ok_and(|s| s.success());
    if !available {
        assert!(std::env::var_os("CI").is_none(), "CI must have python3 with duckdb (see .ci/run)");
        eprintln!("skipped: python3 with duckdb is not installed (pip install duckdb)");
    }
    available
}

/// Stores the raw events of `input` with the tutorial spec and reindexes their day, all with
/// braid run from the repository root on the deep storage at `deep`.
fn reindex_wikipedia_day(deep: &Path, input: &str) {
    let braid = |args: &[&str]| {
        BraidCommand::cargo_bin("braid")
            .unwrap()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .arg("--deep-storage")
            .arg(deep)
            .assert()
            .success();
    };
    braid(&["raw", "put", "--spec", "examples/wikipedia.json", input]);
    braid(&["batch", "reindex", "--spec", "examples/wikipedia.json", "--interval", "2013-08-31/2013-09-01"]);
}

#[test]
fn duckdb_reads_a_segment_with_no_help() {
    if !duckdb_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep");
    reindex_wikipedia_day(&deep, "examples/wikipedia-events.json");

    let script = r#"
import duckdb, glob, json, sys
path, = glob.glob(sys.argv[1] + "/segments/wikipedia/*/*/0.parquet")
con = duckdb.connect()
types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{path}'))").fetchall())
row = con.execute(f"SELECT count(*), sum(count), sum(added), min(__time)::VARCHAR, max(page) FROM read_parquet('{path}')").fetchone()
meta = con.execute(f"SELECT decode(value) FROM parquet_kv_metadata('{path}') WHERE decode(key) = 'braid.segment'").fetchone()[0]
print(json.dumps({"types": types, "rows": row[0], "count": int(row[1]), "added": row[2], "min_time": str(row[3]), "max_page": row[4], "meta": json.loads(meta)}))
"#;
    let output = Command::new("python3").args(["-c", script]).arg(&deep).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["types"]["__time"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(result["types"]["page"], "VARCHAR");
    assert_eq!(result["types"]["count"], "BIGINT");
    assert_eq!(result["types"]["added"], "DOUBLE");
    assert_eq!(result["rows"], 5);
    assert_eq!(result["count"], 5);
    assert_eq!(result["added"], 1545.0);
    assert!(result["min_time"].as_str().unwrap().starts_with("2013-08-31 01:02:33"), "{result}");
    assert_eq!(result["max_page"], "Striker Eureka");
    assert_eq!(result["meta"]["dataSource"], "wikipedia");
    assert_eq!(result["meta"]["metrics"][1]["type"], "doubleSum");
    assert!(
        result["meta"]["id"]
            .as_str()
            .unwrap()
            .starts_with("wikipedia_2013-08-31T00:00:00.000Z_2013-09-01T00:00:00.000Z_")
    );
}

/// The value of dimension `d` (of the tutorial spec's twelve) in generated event `i`; `None`
/// leaves the field out. Values repeat in runs, scatter, and go missing in stretches.
fn dimension_value(d: usize, i: usize) -> Option<String> {
    match d {
        0 => Some(format!("Page {:05}", (i * 7919) % 40_000)),
        1 => Some(["en", "fr", "de", "ja"][(i / 1000) % 4].to_string()),
        2 => (!i.is_multiple_of(3)).then(|| format!("user{}", (i * 31) % 900)),
        3 => i.is_multiple_of(5).then(|| "true".to_string()),
        4 => (!(60_000..90_000).contains(&i)).then(|| format!("city {}", i % 3)),
        _ => None,
    }
}

const DIMENSIONS: [&str; 5] = ["page", "language", "user", "unpatrolled", "city"];

#[test]
fn duckdb_reads_every_value_of_a_large_segment() {
    use std::fmt::Write as _;

    use sha2::{Digest, Sha256};

    if !duckdb_ready() {
        return;
    }
    // Several row groups and pages per column; one event every 250 ms from midnight, so the
    // segment's rows (sorted by time first) come in the order written here.
    const EVENTS: usize = 300_000;
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep");
    let mut events = String::new();
    for i in 0..EVENTS {
        let ms = i as u64 * 250;
        let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
        write!(events, r#"{{"timestamp": "2013-08-31T{h:02}:{m:02}:{s:02}.{:03}Z", "added": 1"#, ms % 1000)
            .unwrap();
        for (d, name) in DIMENSIONS.iter().enumerate() {
            if let Some(value) = dimension_value(d, i) {
                write!(events, r#", "{name}": "{value}""#).unwrap();
            }
        }
        events.push_str("}\n");
    }
    let input = dir.path().join("events.json");
    std::fs::write(&input, events).unwrap();
    reindex_wikipedia_day(&deep, input.to_str().unwrap());

    let script = r#"
import duckdb, glob, json, sys
path, = glob.glob(sys.argv[1] + "/segments/wikipedia/*/*/0.parquet")
con = duckdb.connect()
out = {"row_groups": con.execute(f"SELECT count(DISTINCT row_group_id) FROM parquet_metadata('{path}')").fetchone()[0]}
for name in sys.argv[2:]:
    out[name] = con.execute(f"""
        SELECT count({name}), count(DISTINCT {name}), min({name}), max({name}),
               sha256(string_agg(coalesce({name}, '<null>'), chr(10) ORDER BY file_row_number)),
               count(*) FILTER (WHERE {name} = 'Page 00123' OR {name} = 'city 1')
        FROM read_parquet('{path}', file_row_number = true)""").fetchone()
print(json.dumps(out))
"#;
    let output = Command::new("python3").args(["-c", script]).arg(&deep).args(DIMENSIONS).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(result["row_groups"].as_u64().unwrap() > 1, "{result}");
    for (d, name) in DIMENSIONS.iter().enumerate() {
        let values: Vec<Option<String>> = (0..EVENTS).map(|i| dimension_value(d, i)).collect();
        let present: Vec<&str> = values.iter().flatten().map(String::as_str).collect();
        let distinct: std::collections::BTreeSet<&str> = present.iter().copied().collect();
        let joined: Vec<&str> = values.iter().map(|v| v.as_deref().unwrap_or("<null>")).collect();
        let digest = format!("{:x}", Sha256::digest(joined.join("\n")));
        let matching = present.iter().filter(|v| ["Page 00123", "city 1"].contains(v)).count();
        let expected = serde_json::json!([
            present.len(),
            distinct.len(),
            distinct.first(),
            distinct.last(),
            digest,
            matching
        ]);
        assert_eq!(result[name], expected, "{name}");
    }
}
