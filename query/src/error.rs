//! Query errors and the Druid error body clients parse.

use datafusion::error::DataFusionError;
use serde_json::{Value, json};

/// Why a query failed. Every variant names the offending value and where it was found.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The request is malformed: a missing or wrong field, an unknown type name (HTTP 400).
    #[error("{0}")]
    InvalidInput(String),
    /// The query names a dataSource braid does not know (HTTP 400, as Druid's planner answers).
    #[error("dataSource '{0}' does not exist")]
    UnknownDataSource(String),
    /// SQL text that does not parse or plan (HTTP 400).
    #[error("{0}")]
    SqlPlanning(String),
    /// Reading segments or the catalog failed (HTTP 500).
    #[error("{0}")]
    Storage(String),
    /// The engine failed while running a valid query (HTTP 500).
    #[error("{0}")]
    Execution(String),
}

impl QueryError {
    /// The HTTP status Druid answers with for this kind of failure.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidInput(_) | Self::UnknownDataSource(_) | Self::SqlPlanning(_) => 400,
            Self::Storage(_) | Self::Execution(_) => 500,
        }
    }

    /// Druid's error body: `{"error", "errorMessage", "errorClass", "host"}`.
    pub fn druid_body(&self) -> Value {
        let (error, class) = match self {
            Self::InvalidInput(_) => ("Invalid input", "org.apache.druid.error.DruidException"),
            Self::UnknownDataSource(_) => ("Plan validation failed", "org.apache.druid.error.DruidException"),
            Self::SqlPlanning(_) => {
                ("Plan validation failed", "org.apache.calcite.tools.ValidationException")
            }
            Self::Storage(_) | Self::Execution(_) => ("Unknown exception", "java.lang.RuntimeException"),
        };
        json!({"error": error, "errorMessage": self.to_string(), "errorClass": class, "host": null})
    }

    /// Classifies an engine error: planning problems are the caller's, the rest are ours.
    pub fn from_datafusion(e: DataFusionError) -> Self {
        match e.find_root() {
            DataFusionError::SQL(..) | DataFusionError::Plan(..) | DataFusionError::SchemaError(..) => {
                Self::SqlPlanning(e.strip_backtrace())
            }
            DataFusionError::NotImplemented(..) => Self::SqlPlanning(e.strip_backtrace()),
            DataFusionError::External(inner) => match inner.downcast_ref::<QueryError>() {
                Some(QueryError::InvalidInput(m)) => Self::InvalidInput(m.clone()),
                Some(QueryError::UnknownDataSource(m)) => Self::UnknownDataSource(m.clone()),
                _ => Self::Execution(e.strip_backtrace()),
            },
            _ => Self::Execution(e.strip_backtrace()),
        }
    }
}

/// Shorthand for an [`QueryError::InvalidInput`] with a formatted message.
macro_rules! invalid {
    ($($arg:tt)*) => { $crate::error::QueryError::InvalidInput(format!($($arg)*)) };
}
pub(crate) use invalid;
