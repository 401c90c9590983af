//! braid's shared core: the spec model and its Druid-compatible loader, time and
//! granularities, the rollup engine that both the stream and the batch indexer fold events
//! with, the Parquet segment format, deep storage, and the catalog (the create-only commit
//! log per dataSource) with the timeline of visible segments it yields.
//!
//! Data flows: raw JSON lines are parsed with a [`spec::DataSourceSpec`] straight into a
//! [`rollup::RollupIndex`]; its rows come out as Arrow batches per segment interval,
//! [`segment::encode_rows`] encodes them into Parquet column chunks,
//! [`segment::write_encoded`] puts those together as segment files, and a
//! [`catalog::Catalog`] commit publishes them.

pub mod archive;
pub mod catalog;
pub mod generator;
pub mod input;
pub mod rollup;
pub mod segment;
pub mod spec;
pub mod storage;
pub mod time;
