//! A braid daemon (`stream`, `run`, `batch schedule`, `broker`...) started as a child process: it is ready
//! once it prints its first line, and is stopped by signals.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::Duration;

use rdkafka::producer::{BaseProducer, BaseRecord};
use serde_json::Value;

/// A running braid daemon; killed when dropped.
pub struct Daemon {
    pub child: Child,
    stdout: BufReader<ChildStdout>,
    /// What follows `ready` on the first line (the query URL for the query-serving daemons).
    pub url: String,
    /// Its standard error.
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `braid <args>` and waits for a first line starting with `ready`.
    pub fn start<I, S>(args: I, ready: &str, log: PathBuf) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = super::process();
        cmd.args(args);
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let mut child = cmd
            .env("RUST_LOG", "info,librdkafka=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let Some(url) = line.trim_end().strip_prefix(ready) else {
            let status = child.wait().unwrap();
            panic!("braid printed {line:?} and exited with {status}; log:\n{}", read(&log));
        };
        Self { url: url.to_string(), child, stdout, log }
    }

    /// The next line the daemon prints after the first.
    pub fn next_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim_end().to_string()
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        let agent = ureq::Agent::new_with_config(config);
        let url = format!("{}{path}", self.url);
        let response = match (method, body) {
            ("GET", _) => agent.get(&url).call(),
            (_, Some(body)) => agent.post(&url).header("Content-Type", "application/json").send(body),
            (_, None) => agent.post(&url).send_empty(),
        };
        let mut response =
            response.unwrap_or_else(|e| panic!("{method} {path}: {e}\nlog:\n{}", read(&self.log)));
        (response.status().as_u16(), response.body_mut().read_to_string().unwrap())
    }

    pub fn json(&self, method: &str, path: &str, body: Option<&str>) -> Value {
        let (status, text) = self.request(method, path, body);
        assert_eq!(status, 200, "{method} {path} answered {status}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill {signal} failed");
    }

    /// SIGTERM, then wait for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("-TERM");
        self.child.wait().unwrap()
    }

    pub fn kill(mut self) {
        self.signal("-KILL");
        self.child.wait().unwrap();
    }

    pub fn log_text(&self) -> String {
        read(&self.log)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Sends one record, letting deliveries drain while the producer's queue is full.
pub fn send<'a>(producer: &BaseProducer, mut record: BaseRecord<'a, str, str>) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, back)) => {
                producer.poll(Duration::from_millis(10));
                record = back;
            }
        }
    }
}
