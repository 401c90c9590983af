//! The query path: Druid native JSON queries and Druid SQL answered by DataFusion over the
//! catalog's visible segments plus any live in-memory rows (the stream daemon's incremental
//! index), served over HTTP with Druid's request and response shapes.

pub mod cache;
pub mod codes;
pub mod engine;
pub mod error;
pub mod granularity;
mod json;
pub mod native;
pub mod server;
pub mod sql;
pub mod table;

pub use engine::{EngineOptions, QueryEngine};
pub use error::QueryError;
pub use table::{LiveSnapshot, LiveSource};
