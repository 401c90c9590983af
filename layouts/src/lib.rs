//! Where things live in deep storage. This crate owns every path braid writes to or
//! reads from the object store: the raw archive (laid out by a configurable template),
//! segment files and batch version claims, the catalog commit log and snapshots, rejected raw lines, and the batch
//! scheduler's run history and leases, together with the names and timestamps that appear
//! inside those paths. Paths are '/'-separated strings relative to the deep-storage root,
//! without a leading slash, and every path built here parses back to what built it; nothing
//! else in braid knows a path format.
//! Times are UTC milliseconds since the Unix epoch, as `i64`.

mod catalog;
mod raw;
mod schedule;
mod segment;
mod time;

pub use catalog::{
    CatalogFile, catalog_root, log_dir, log_path, parse_catalog_path, snapshot_dir, snapshot_path,
};
pub use raw::{RawFile, RawFileName, RawLayout};
pub use schedule::{
    history_dir, history_path, history_root, lease_dir, lease_path, parse_history_path,
    parse_lease_generation,
};
pub use segment::{SegmentPath, parse_version_claim, version_claim_path, version_claims_dir};
pub use time::{MAX_PATH_MILLIS, MIN_PATH_MILLIS, format_iso_millis, parse_iso_millis};

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Longest path part accepted, in bytes: the common file-name limit of local filesystems,
/// which back deep storage in tests and small deployments.
const MAX_PART_BYTES: usize = 255;

/// Top-level directory of rejected raw lines.
pub(crate) const REJECTS_ROOT: &str = "rejects";

/// Everything that can go wrong building or reading a deep-storage path.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum LayoutError {
    /// A name or path part (dataSource, version, file name...) broke a path-part rule.
    #[error("{what} {value:?}: {reason}")]
    InvalidName { what: &'static str, value: String, reason: &'static str },
    /// A raw-layout template that cannot describe a usable layout.
    #[error("raw layout template {template:?}: {reason}")]
    InvalidTemplate { template: String, reason: String },
    /// A path that does not have the shape of the layout it was parsed against.
    #[error("path {path:?} does not match {expected}")]
    UnrecognizedPath { path: String, expected: String },
    /// A time that paths cannot carry: they write years with exactly four digits.
    #[error(
        "{what} {value} ms ({}): must be within years 0000-9999 ({MIN_PATH_MILLIS}..={MAX_PATH_MILLIS} ms)",
        format_iso_millis(*.value)
    )]
    TimeOutOfRange { what: &'static str, value: i64 },
    /// A segment interval whose start is not before its end.
    #[error(
        "segment interval {}/{}: start must be before end",
        format_iso_millis(*.start),
        format_iso_millis(*.end)
    )]
    EmptyInterval { start: i64, end: i64 },
}

/// A validated dataSource name: non-empty, at most 255 bytes, not "." or "..", no '/',
/// '\\', no control chars, does not contain "..".
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataSourceName(String);

impl DataSourceName {
    /// Checks `name` against the path-part rules; the error names the value and the rule.
    pub fn new(name: &str) -> Result<Self, LayoutError> {
        validate_path_part("dataSource name", name)?;
        Ok(Self(name.to_owned()))
    }

    /// The name as written in paths.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DataSourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validates any single path part (file name, version string...): same rules as a
/// dataSource name; `what` names the thing in the error ("version", "file name").
pub fn validate_path_part(what: &'static str, value: &str) -> Result<(), LayoutError> {
    match path_part_problem(value) {
        None => Ok(()),
        Some(reason) => Err(LayoutError::InvalidName { what, value: value.to_owned(), reason }),
    }
}

/// The first path-part rule `value` breaks. A part must stay one part on every object
/// store and filesystem ('/' and '\\' split it, "." and ".." walk the tree) and stay
/// printable in listings and logs; "..", even inside a name, is refused outright so no
/// later join or normalisation can turn it into a parent-directory step.
pub(crate) fn path_part_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("must not be empty")
    } else if value.len() > MAX_PART_BYTES {
        Some("must be at most 255 bytes")
    } else if value == "." || value == ".." {
        Some("must not be \".\" or \"..\"")
    } else if value.contains("..") || value.contains(['/', '\\']) {
        Some("must not contain \"..\" or path separators")
    } else if value.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    }
}

/// Where rejected raw lines of `ds` are kept aside: `rejects/<dataSource>/<file name>`.
pub fn rejects_path(ds: &DataSourceName, file_name: &str) -> Result<String, LayoutError> {
    validate_path_part("rejects file name", file_name)?;
    Ok(format!("{}/{file_name}", rejects_dir(ds)))
}

/// The directory holding the rejected raw lines of `ds`: `rejects/<dataSource>`.
pub fn rejects_dir(ds: &DataSourceName) -> String {
    format!("{REJECTS_ROOT}/{ds}")
}

/// Parses exactly `width` ASCII digits, zero padding included; fixed widths keep
/// lexicographic listing order equal to numeric order.
pub(crate) fn parse_padded_u64(s: &str, width: usize) -> Option<u64> {
    if s.len() != width || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a number only in the spelling `to_string` gives it (no sign, no leading zeros),
/// so each number has exactly one path.
pub(crate) fn parse_canonical<T: FromStr + ToString>(s: &str) -> Option<T> {
    s.parse().ok().filter(|n: &T| n.to_string() == s)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Valid dataSource names, including dots, dashes and non-ASCII letters.
    pub(crate) fn data_source_names() -> impl Strategy<Value = DataSourceName> {
        "[a-zA-Z0-9_.=é-]{1,40}".prop_filter_map("invalid name", |s| DataSourceName::new(&s).ok())
    }

    #[test]
    fn bad_data_source_names_are_refused_naming_the_value() {
        let long = "x".repeat(256);
        for bad in ["../x", "a/b", "a\\b", "", ".", "..", "a\u{0}b", "a\nb", "a..b", &long] {
            let err = DataSourceName::new(bad).expect_err(bad);
            let msg = err.to_string();
            assert!(msg.starts_with("dataSource name "), "{msg}");
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
            assert!(matches!(err, LayoutError::InvalidName { value, .. } if value == bad));
        }
        assert_eq!(
            DataSourceName::new("../x").unwrap_err().to_string(),
            r#"dataSource name "../x": must not contain ".." or path separators"#
        );
        assert_eq!(
            DataSourceName::new("a\nb").unwrap_err().to_string(),
            r#"dataSource name "a\nb": must not contain control characters"#
        );
        assert_eq!(
            DataSourceName::new("").unwrap_err().to_string(),
            r#"dataSource name "": must not be empty"#
        );
    }

    #[test]
    fn good_data_source_names_are_kept_verbatim() {
        let max = "x".repeat(255);
        for good in ["wikipedia", "my-ds_1.v2", ".hidden", "données", "a b", &max] {
            let name = DataSourceName::new(good).expect(good);
            assert_eq!(name.as_str(), good);
            assert_eq!(name.to_string(), good);
        }
    }

    #[test]
    fn path_part_errors_name_the_thing() {
        let err = validate_path_part("version", "v/1").unwrap_err();
        assert_eq!(err.to_string(), r#"version "v/1": must not contain ".." or path separators"#);
        assert!(validate_path_part("version", "2013-08-31T01:02:33.000Z").is_ok());
    }

    #[test]
    fn rejects_paths() {
        let ds = DataSourceName::new("wikipedia").unwrap();
        assert_eq!(rejects_dir(&ds), "rejects/wikipedia");
        assert_eq!(rejects_path(&ds, "put-abc.json.gz").unwrap(), "rejects/wikipedia/put-abc.json.gz");
        let err = rejects_path(&ds, "../escape").unwrap_err();
        assert!(err.to_string().starts_with(r#"rejects file name "../escape""#));
    }

    #[test]
    fn number_parsers_accept_one_spelling() {
        assert_eq!(parse_padded_u64("00000000000000000042", 20), Some(42));
        assert_eq!(parse_padded_u64("42", 20), None);
        assert_eq!(parse_padded_u64("+0000000000000000042", 20), None);
        assert_eq!(parse_padded_u64("99999999999999999999", 20), None);
        assert_eq!(parse_canonical::<u32>("7"), Some(7));
        assert_eq!(parse_canonical::<u32>("07"), None);
        assert_eq!(parse_canonical::<u32>("+7"), None);
        assert_eq!(parse_canonical::<u32>(""), None);
    }
}
