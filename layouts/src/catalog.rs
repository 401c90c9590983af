//! The catalog: per dataSource, a commit log of numbered entries and the snapshots that
//! fold it up. catalog/<dataSource>/log/<seq>.json and catalog/<dataSource>/snapshot/<seq>.json

use crate::{DataSourceName, LayoutError, parse_padded_u64};

/// Top-level directory of the catalog.
pub(crate) const CATALOG_ROOT: &str = "catalog";

const EXPECTED: &str = "catalog file \"catalog/<dataSource>/{log|snapshot}/<sequence, 20 digits>.json\"";

/// One catalog file of a dataSource, by its sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CatalogFile {
    /// Commit-log entry number `seq`.
    Log(u64),
    /// Snapshot of the catalog as of log entry `seq`.
    Snapshot(u64),
}

/// The catalog's top directory; list its children to find the dataSources.
pub fn catalog_root() -> &'static str {
    CATALOG_ROOT
}

/// The commit-log directory of `ds`: catalog/<dataSource>/log
pub fn log_dir(ds: &DataSourceName) -> String {
    format!("{CATALOG_ROOT}/{ds}/log")
}

/// The snapshot directory of `ds`: catalog/<dataSource>/snapshot
pub fn snapshot_dir(ds: &DataSourceName) -> String {
    format!("{CATALOG_ROOT}/{ds}/snapshot")
}

/// Commit-log entry `seq` of `ds`: catalog/<dataSource>/log/<seq, 20 digits>.json. The
/// zero padding (u64 needs at most 20 digits) makes listing order sequence order.
pub fn log_path(ds: &DataSourceName, seq: u64) -> String {
    format!("{}/{seq:020}.json", log_dir(ds))
}

/// Snapshot `seq` of `ds`: catalog/<dataSource>/snapshot/<seq, 20 digits>.json
pub fn snapshot_path(ds: &DataSourceName, seq: u64) -> String {
    format!("{}/{seq:020}.json", snapshot_dir(ds))
}

/// Parses a catalog file path back. A path of another shape is `UnrecognizedPath`; one
/// of this shape whose dataSource breaks the path-part rules is `InvalidName`.
pub fn parse_catalog_path(path: &str) -> Result<(DataSourceName, CatalogFile), LayoutError> {
    let unrecognized =
        || LayoutError::UnrecognizedPath { path: path.to_owned(), expected: EXPECTED.to_owned() };
    let parts: Vec<&str> = path.split('/').collect();
    let [CATALOG_ROOT, ds, kind, file] = parts.as_slice() else {
        return Err(unrecognized());
    };
    let seq =
        file.strip_suffix(".json").and_then(|seq| parse_padded_u64(seq, 20)).ok_or_else(unrecognized)?;
    let file = match *kind {
        "log" => CatalogFile::Log(seq),
        "snapshot" => CatalogFile::Snapshot(seq),
        _ => return Err(unrecognized()),
    };
    Ok((DataSourceName::new(ds)?, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::data_source_names;
    use proptest::prelude::*;

    fn wiki() -> DataSourceName {
        DataSourceName::new("wikipedia").unwrap()
    }

    #[test]
    fn paths_and_round_trip() {
        assert_eq!(catalog_root(), "catalog");
        assert_eq!(log_dir(&wiki()), "catalog/wikipedia/log");
        assert_eq!(snapshot_dir(&wiki()), "catalog/wikipedia/snapshot");
        let log = log_path(&wiki(), 42);
        assert_eq!(log, "catalog/wikipedia/log/00000000000000000042.json");
        assert_eq!(parse_catalog_path(&log), Ok((wiki(), CatalogFile::Log(42))));
        let snapshot = snapshot_path(&wiki(), u64::MAX);
        assert_eq!(snapshot, "catalog/wikipedia/snapshot/18446744073709551615.json");
        assert_eq!(parse_catalog_path(&snapshot), Ok((wiki(), CatalogFile::Snapshot(u64::MAX))));
    }

    #[test]
    fn other_paths_are_unrecognized() {
        for path in [
            "catalog/wikipedia/log/42.json",
            "catalog/wikipedia/log/00000000000000000042.jsonl",
            "catalog/wikipedia/logs/00000000000000000042.json",
            "catalog/wikipedia/log/99999999999999999999.json",
            "catalog/wikipedia/log/sub/00000000000000000042.json",
            "segments/wikipedia/log/00000000000000000042.json",
            "segments/wikipedia/2013-08-31T00:00:00.000Z_2013-09-01T00:00:00.000Z/v1/0.parquet",
            "catalog",
        ] {
            assert_eq!(
                parse_catalog_path(path).unwrap_err().to_string(),
                format!("path {path:?} does not match {EXPECTED}")
            );
        }
        assert!(matches!(
            parse_catalog_path("catalog/../log/00000000000000000042.json"),
            Err(LayoutError::InvalidName { .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trips(ds in data_source_names(), seq in any::<u64>(), snapshot in any::<bool>()) {
            let (path, file) = if snapshot {
                (snapshot_path(&ds, seq), CatalogFile::Snapshot(seq))
            } else {
                (log_path(&ds, seq), CatalogFile::Log(seq))
            };
            prop_assert_eq!(parse_catalog_path(&path), Ok((ds, file)));
        }
    }
}
