//! The streaming daemon: the stream half of the lambda architecture.
//!
//! Each dataSource's [`ingester`] consumes its Kafka topic from the offsets in the catalog and
//! hands every message to [`ingest`]: parsed with the spec, archived byte for byte into the
//! hourly raw layout ([`archive`]), and, unless its message time puts it outside the rejection
//! window or a batch version owns its time, folded into the in-memory rollup that queries see at
//! once ([`live`]). A [`checkpoint`] writes segments and raw parts and commits them with the new
//! offsets in one catalog commit whose offset check fails if another writer moved them; killed
//! at any moment, the daemon restarts from the last commit and nothing is lost or counted twice.
//! [`daemon`] serves the query API, Druid's supervisor API, Tranquility's push API and
//! `/metrics` on one port. [`demo`] holds the embedded broker and the demo producer of
//! `braid broker` and `braid quickstart`.

pub mod archive;
pub mod checkpoint;
pub mod daemon;
pub mod demo;
mod error;
pub mod ingest;
pub mod ingester;
pub mod kafka;
pub mod live;
pub mod metrics;

pub use daemon::{Daemon, StreamOptions, run};
pub use error::StreamError;
