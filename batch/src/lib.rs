//! braid's batch path: getting raw events into the hourly raw archive (`raw put`), rebuilding
//! intervals from it (`batch reindex`), doing that on cron schedules with a history of runs
//! (`batch schedule`, `batch history`), and removing what no query reads any more (`cleanup`).
//!
//! A reindex lists the raw files of every hour of an interval, streams them through gzip and
//! the same parser and rollup engine as the stream, writes Parquet segments with a new version
//! and publishes them in one catalog commit, which overshadows every older segment of those
//! intervals. It never talks to the stream: the two meet only in deep storage.

pub mod cleanup;
pub mod generate;
pub mod history;
pub mod lease;
pub mod raw_put;
pub mod reindex;
pub mod schedule;

pub use cleanup::{CleanupOptions, CleanupReport, cleanup};
pub use history::{RunRecord, read_history};
pub use raw_put::{PutInput, PutReport, put_raw};
pub use reindex::{IntervalReport, ReindexOptions, ReindexReport, reindex};
pub use schedule::{Job, JobDefinition, Scheduler, SchedulerOptions};

use common::catalog::CatalogError;
use common::segment::SegmentError;
use common::storage::StorageError;

/// Who can act on a failure: the scheduler retries external ones and reports the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorDomain {
    /// Bad input or request: retrying changes nothing.
    User,
    /// Deep storage or the network: retry with backoff.
    External,
    /// A bug in braid.
    Internal,
}

/// A batch failure.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The request itself is wrong (an interval not aligned to the segments, say).
    #[error("{0}")]
    InvalidRequest(String),
    /// A raw file cannot be read to the end (truncated or corrupt gzip).
    #[error("raw file {path}: {message} (after line {line}); nothing was published")]
    CorruptRaw {
        /// Path relative to the deep-storage root.
        path: String,
        /// Last line read successfully.
        line: u64,
        /// What the decoder said.
        message: String,
    },
    /// A local input file cannot be read.
    #[error("{path}: {message}")]
    Input {
        /// The input as named by the user.
        path: String,
        /// What failed.
        message: String,
    },
    /// Deep storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The catalog refused or failed the commit.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A segment could not be encoded.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// A bug or a broken environment (a worker thread that could not start or panicked).
    #[error("internal error: {0}")]
    Internal(String),
}

impl BatchError {
    /// Whether retrying may help.
    pub fn domain(&self) -> ErrorDomain {
        match self {
            Self::InvalidRequest(_) | Self::CorruptRaw { .. } | Self::Input { .. } => ErrorDomain::User,
            Self::Storage(StorageError::InvalidUrl { .. }) => ErrorDomain::User,
            Self::Storage(_) | Self::Catalog(CatalogError::Storage(_)) => ErrorDomain::External,
            Self::Catalog(CatalogError::Conflict { .. } | CatalogError::Contention { .. }) => {
                ErrorDomain::External
            }
            Self::Catalog(CatalogError::Corrupt { .. }) | Self::Segment(_) | Self::Internal(_) => {
                ErrorDomain::Internal
            }
        }
    }
}
