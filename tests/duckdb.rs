//! Segments are plain Parquet: DuckDB reads one with no help and gets the columns, types and
//! totals braid wrote. Needs `python3` with the `duckdb` package (`.ci/run` installs it).

use std::process::Command;

use assert_cmd::Command as BraidCommand;

fn duckdb_available() -> bool {
    Command::new("python3").args(["-c", "import duckdb"]).status().is_ok_and(|s| s.success())
}

#[test]
fn duckdb_reads_a_segment_with_no_help() {
    if !duckdb_available() {
        // CI installs duckdb; elsewhere say plainly what was not checked.
        assert!(std::env::var_os("CI").is_none(), "CI must have python3 with duckdb (see .ci/run)");
        eprintln!("skipped: python3 with duckdb is not installed (pip install duckdb)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep");
    let root = env!("CARGO_MANIFEST_DIR");
    let braid = |args: &[&str]| {
        BraidCommand::cargo_bin("braid")
            .unwrap()
            .current_dir(root)
            .args(args)
            .arg("--deep-storage")
            .arg(&deep)
            .assert()
            .success();
    };
    braid(&["raw", "put", "--spec", "examples/wikipedia.json", "examples/wikipedia-events.json"]);
    braid(&["batch", "reindex", "--spec", "examples/wikipedia.json", "--interval", "2013-08-31/2013-09-01"]);

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
