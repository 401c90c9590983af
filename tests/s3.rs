//! Deep storage on S3: the binary runs the walkthrough against a local S3 server (moto) with
//! credentials and endpoint from the usual AWS environment variables, and two reindexes race
//! through S3's conditional puts. Needs `moto_server` (`.ci/run` installs moto[server]).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

/// A moto S3 server on a free loopback port, stopped on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Option<Moto> {
    let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let moto = Moto { child, port };
    // Ready when it accepts a connection; moto takes a second or two to import.
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start listening on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(moto)
}

/// Creates a bucket with a plain HTTP request (moto does not check signatures).
fn create_bucket(port: u16, bucket: &str) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

fn braid(port: u16) -> Command {
    let mut command = Command::cargo_bin("braid").unwrap();
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("BRAID_DEEP_STORAGE", "s3://braid-test/deep")
        .env("AWS_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE");
    command
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_walkthrough_runs_on_s3_and_concurrent_reindexes_both_commit() {
    let Some(moto) = start_moto() else {
        assert!(std::env::var_os("CI").is_none(), "CI must have moto_server (see .ci/run)");
        eprintln!("skipped: moto_server is not installed (pip install 'moto[server]')");
        return;
    };
    create_bucket(moto.port, "braid-test");
    let put_tutorial = || -> serde_json::Value {
        let args =
            ["raw", "put", "--json", "--spec", "examples/wikipedia.json", "examples/wikipedia-events.json"];
        serde_json::from_str(&run(braid(moto.port).args(args))).unwrap()
    };
    assert_eq!(put_tutorial()["events"], 5);
    // Create-only writes: the same input again finds every file there.
    let again = put_tutorial();
    assert!(again["parts"].as_array().unwrap().iter().all(|p| p["created"] == false), "{again}");

    // Two reindexes at once race for the same catalog sequence number; both must land.
    let reindex = || {
        braid(moto.port)
            .args(["batch", "reindex", "--json", "--spec", "examples/wikipedia.json"])
            .args(["--interval", "2013-08-31/2013-09-01"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (reindex(), reindex());
    let mut seqs = Vec::new();
    for child in [a, b] {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            assert_eq!(report["events"], 5);
            seqs.push(report["commitSeq"].as_u64().unwrap());
        } else {
            // The loser may find the winner's newer version and stand down; that is correct too.
            assert!(stderr.contains("the newer version stands"), "{stderr}");
        }
    }
    assert!(!seqs.is_empty());
    let landed = seqs.len();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), landed, "no two commits share a sequence number: {seqs:?}");

    let segments: Vec<serde_json::Value> =
        serde_json::from_str(&run(braid(moto.port).args(["segments", "--json"]))).unwrap();
    let visible: Vec<_> = segments.iter().filter(|s| s["visible"] == true).collect();
    assert_eq!(visible.len(), 1, "{segments:#?}");
    assert_eq!(visible[0]["rows"], 5);
    assert_eq!(segments.len(), seqs.len(), "each landed reindex added one segment");
}
