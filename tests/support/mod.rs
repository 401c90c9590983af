//! What every end-to-end test file needs: the `braid` binary with a clean environment, the
//! bundled examples, running a command that must succeed, and the files a run left. Each test
//! binary uses a subset.
#![allow(dead_code)]

pub mod daemon;

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

/// A file of `examples/`.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name)
}

/// Every variable braid reads its settings from, which a test must not inherit.
const BRAID_VARIABLES: [&str; 14] = [
    "BRAID_DEEP_STORAGE",
    "BRAID_SPEC",
    "BRAID_RAW_LAYOUT",
    "BRAID_LOG_FORMAT",
    "BRAID_LISTEN",
    "BRAID_CONFIG",
    "BRAID_AUTH_TOKEN",
    "BRAID_CRON",
    "BRAID_LOOKBACK",
    "BRAID_SETTLE",
    "BRAID_RETENTION",
    "BRAID_CACHE_MIB",
    "BRAID_MAX_CONCURRENT",
    "RUST_LOG",
];

/// The `braid` binary with nothing inherited from the environment that changes its behaviour.
pub fn bin() -> Command {
    let mut cmd = Command::cargo_bin("braid").unwrap();
    for var in BRAID_VARIABLES {
        cmd.env_remove(var);
    }
    // A safety net against a hung child; every run here takes seconds at most.
    cmd.timeout(Duration::from_secs(120));
    cmd
}

/// [`bin`] as a `std::process::Command`, for a process a test talks to while it runs.
pub fn process() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_braid"));
    for var in BRAID_VARIABLES {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs a command that must succeed; returns its standard output.
pub fn succeed(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every file under `dir`, as sorted paths relative to it; empty when `dir` does not exist.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
