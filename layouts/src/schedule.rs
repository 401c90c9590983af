//! The batch scheduler's files: the history of its runs and the leases that keep two
//! schedulers off the same interval.
//!
//! history/<dataSource>/<started iso>-<run id>.json
//! leases/<dataSource>/<start iso>_<end iso>/<generation, 20 digits>.json

use crate::time::{MAX_PATH_MILLIS, MIN_PATH_MILLIS};
use crate::{DataSourceName, LayoutError, format_iso_millis, parse_iso_millis, parse_padded_u64};

/// Top-level directory of run records.
const HISTORY_ROOT: &str = "history";
/// Top-level directory of interval leases.
const LEASES_ROOT: &str = "leases";

const HISTORY_EXPECTED: &str = "history record \"history/<dataSource>/<started iso>-<run id>.json\"";
const LEASE_EXPECTED: &str =
    "lease \"leases/<dataSource>/<start iso>_<end iso>/<generation, 20 digits>.json\"";

/// The directory holding every run record; list its children to find the dataSources.
pub fn history_root() -> &'static str {
    HISTORY_ROOT
}

/// The run records of `ds`: history/<dataSource>. Listing order is start order.
pub fn history_dir(ds: &DataSourceName) -> String {
    format!("{HISTORY_ROOT}/{ds}")
}

/// One run's record. `run_id` is lowercase hex (it keeps two runs started in the same
/// millisecond apart).
pub fn history_path(ds: &DataSourceName, started: i64, run_id: &str) -> Result<String, LayoutError> {
    check_time("run start", started)?;
    if run_id.is_empty() || !run_id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return Err(LayoutError::InvalidName {
            what: "run id",
            value: run_id.to_owned(),
            reason: "must be lowercase hexadecimal",
        });
    }
    Ok(format!("{}/{}-{run_id}.json", history_dir(ds), format_iso_millis(started)))
}

/// Reads a run record's path back to its dataSource, start time and run id.
pub fn parse_history_path(path: &str) -> Result<(DataSourceName, i64, String), LayoutError> {
    let unrecognized =
        || LayoutError::UnrecognizedPath { path: path.to_owned(), expected: HISTORY_EXPECTED.to_owned() };
    let parts: Vec<&str> = path.split('/').collect();
    let [HISTORY_ROOT, ds, file] = parts.as_slice() else {
        return Err(unrecognized());
    };
    let stem = file.strip_suffix(".json").ok_or_else(unrecognized)?;
    // The ISO time has a fixed width of 24 characters, then '-' and the run id.
    let (started, run_id) = (stem.get(..24).ok_or_else(unrecognized)?, stem.get(24..).unwrap_or(""));
    let started = parse_iso_millis(started).ok_or_else(unrecognized)?;
    let run_id = run_id.strip_prefix('-').ok_or_else(unrecognized)?;
    let ds = DataSourceName::new(ds)?;
    history_path(&ds, started, run_id).map_err(|_| unrecognized())?;
    Ok((ds, started, run_id.to_owned()))
}

/// The lease directory of one interval of `ds`; each acquisition is a new generation file in
/// it, taken create-only.
pub fn lease_dir(ds: &DataSourceName, start: i64, end: i64) -> Result<String, LayoutError> {
    check_time("lease start", start)?;
    check_time("lease end", end)?;
    if start >= end {
        return Err(LayoutError::EmptyInterval { start, end });
    }
    Ok(format!("{LEASES_ROOT}/{ds}/{}_{}", format_iso_millis(start), format_iso_millis(end)))
}

/// Generation `generation` of an interval's lease.
pub fn lease_path(ds: &DataSourceName, start: i64, end: i64, generation: u64) -> Result<String, LayoutError> {
    Ok(format!("{}/{generation:020}.json", lease_dir(ds, start, end)?))
}

/// Reads a lease file's generation back; other files in a lease directory are `UnrecognizedPath`.
pub fn parse_lease_generation(path: &str) -> Result<u64, LayoutError> {
    let unrecognized =
        || LayoutError::UnrecognizedPath { path: path.to_owned(), expected: LEASE_EXPECTED.to_owned() };
    let parts: Vec<&str> = path.split('/').collect();
    let [LEASES_ROOT, _, _, file] = parts.as_slice() else {
        return Err(unrecognized());
    };
    file.strip_suffix(".json").and_then(|g| parse_padded_u64(g, 20)).ok_or_else(unrecognized)
}

fn check_time(what: &'static str, value: i64) -> Result<(), LayoutError> {
    if (MIN_PATH_MILLIS..=MAX_PATH_MILLIS).contains(&value) {
        Ok(())
    } else {
        Err(LayoutError::TimeOutOfRange { what, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::data_source_names;
    use proptest::prelude::*;

    const DAY: i64 = 1_377_907_200_000; // 2013-08-31T00:00:00.000Z

    fn wiki() -> DataSourceName {
        DataSourceName::new("wikipedia").unwrap()
    }

    #[test]
    fn history_paths_sort_by_start_and_read_back() {
        let path = history_path(&wiki(), DAY, "00ff").unwrap();
        assert_eq!(path, "history/wikipedia/2013-08-31T00:00:00.000Z-00ff.json");
        assert_eq!(parse_history_path(&path), Ok((wiki(), DAY, "00ff".to_string())));
        let later = history_path(&wiki(), DAY + 1, "0000").unwrap();
        assert!(later > path);
        assert_eq!(history_dir(&wiki()), "history/wikipedia");
        assert_eq!(history_root(), "history");
    }

    #[test]
    fn bad_run_ids_and_paths_are_refused() {
        for bad in ["", "AB", "x1", "a/b"] {
            let err = history_path(&wiki(), DAY, bad).unwrap_err();
            assert!(err.to_string().starts_with("run id "), "{err}");
        }
        for path in [
            "history/wikipedia/2013-08-31T00:00:00.000Z.json",
            "history/wikipedia/2013-08-31T00:00:00.000Z-XY.json",
            "history/wikipedia/2013-08-31-00ff.json",
            "history/wikipedia/sub/2013-08-31T00:00:00.000Z-00ff.json",
            "leases/wikipedia/2013-08-31T00:00:00.000Z-00ff.json",
        ] {
            assert!(matches!(parse_history_path(path), Err(LayoutError::UnrecognizedPath { .. })), "{path}");
        }
    }

    #[test]
    fn lease_paths() {
        let path = lease_path(&wiki(), DAY, DAY + 3_600_000, 7).unwrap();
        assert_eq!(
            path,
            "leases/wikipedia/2013-08-31T00:00:00.000Z_2013-08-31T01:00:00.000Z/00000000000000000007.json"
        );
        assert_eq!(parse_lease_generation(&path), Ok(7));
        assert!(matches!(lease_dir(&wiki(), DAY, DAY), Err(LayoutError::EmptyInterval { .. })));
        assert!(matches!(
            parse_lease_generation("leases/wikipedia/x/7.json"),
            Err(LayoutError::UnrecognizedPath { .. })
        ));
    }

    proptest! {
        #[test]
        fn history_round_trips(ds in data_source_names(), started in MIN_PATH_MILLIS..=MAX_PATH_MILLIS, run_id in "[0-9a-f]{1,16}") {
            let path = history_path(&ds, started, &run_id).unwrap();
            prop_assert_eq!(parse_history_path(&path), Ok((ds, started, run_id)));
        }
    }
}
