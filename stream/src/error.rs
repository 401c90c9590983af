//! The stream's failures, said as whose they are: the user's (a spec or setting to fix), the
//! outside world's (Kafka or deep storage; retried), or ours.

use common::catalog::CatalogError;
use common::storage::StorageError;

/// A stream failure.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The spec or a setting cannot work (user's to fix).
    #[error("{0}")]
    InvalidSpec(String),
    /// Kafka refused or failed (external).
    #[error("kafka: {0}")]
    Kafka(String),
    /// The catalog failed or a commit conflicts.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Deep storage failed (external).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// More unparseable events than `maxParseExceptions` allows.
    #[error(
        "dataSource \"{data_source}\": {count} unparseable events passed maxParseExceptions ({limit}); stopped"
    )]
    TooManyParseExceptions {
        /// The dataSource.
        data_source: String,
        /// Unparseable events seen.
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// A bug or a broken invariant.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<rdkafka::error::KafkaError> for StreamError {
    fn from(e: rdkafka::error::KafkaError) -> Self {
        Self::Kafka(e.to_string())
    }
}
