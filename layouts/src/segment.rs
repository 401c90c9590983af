//! Segment files, in Druid's deep-storage directory shape, and the claims that keep two batch
//! jobs from writing the same version:
//! segments/<dataSource>/<start>_<end>/<version>/<partition>.parquet
//! versions/<dataSource>/<version>.json

use crate::time::{MAX_PATH_MILLIS, MIN_PATH_MILLIS};
use crate::{
    DataSourceName, LayoutError, format_iso_millis, parse_canonical, parse_iso_millis, validate_path_part,
};

/// Top-level directory of segment files.
pub(crate) const SEGMENTS_ROOT: &str = "segments";

/// Top-level directory of batch version claims.
const VERSIONS_ROOT: &str = "versions";

const CLAIM_EXPECTED: &str = "version claim \"versions/<dataSource>/<version>.json\"";

const EXPECTED: &str = "segment path \"segments/<dataSource>/<start>_<end>/<version>/<partition>.parquet\"";

/// Segment files: segments/<dataSource>/<start iso>_<end iso>/<version>/<partition>.parquet
/// where the interval [start, end) is in UTC ms since the epoch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SegmentPath {
    /// The dataSource the segment belongs to.
    pub data_source: DataSourceName,
    /// Interval start, inclusive, UTC ms since the epoch.
    pub start: i64,
    /// Interval end, exclusive, UTC ms since the epoch.
    pub end: i64,
    /// The segment version (Druid uses an ISO time); a valid path part.
    pub version: String,
    /// Partition number within the interval and version.
    pub partition: u32,
}

impl SegmentPath {
    /// Checks that `version` is a valid path part, that start and end lie within years
    /// 0000-9999 (what paths can carry), and that start < end.
    pub fn new(
        data_source: DataSourceName,
        start: i64,
        end: i64,
        version: impl Into<String>,
        partition: u32,
    ) -> Result<Self, LayoutError> {
        let version = version.into();
        validate_path_part("segment version", &version)?;
        for (what, value) in [("segment start", start), ("segment end", end)] {
            if !(MIN_PATH_MILLIS..=MAX_PATH_MILLIS).contains(&value) {
                return Err(LayoutError::TimeOutOfRange { what, value });
            }
        }
        if start >= end {
            return Err(LayoutError::EmptyInterval { start, end });
        }
        Ok(Self { data_source, start, end, version, partition })
    }

    /// The object path of the segment file.
    pub fn to_path(&self) -> String {
        format!(
            "{}/{}/{}.parquet",
            Self::interval_dir(&self.data_source, self.start, self.end),
            self.version,
            self.partition
        )
    }

    /// Parses a segment file path back. A path of another shape is `UnrecognizedPath`;
    /// one of this shape whose dataSource or version breaks the path-part rules is
    /// `InvalidName`.
    pub fn parse(path: &str) -> Result<Self, LayoutError> {
        let unrecognized =
            || LayoutError::UnrecognizedPath { path: path.to_owned(), expected: EXPECTED.to_owned() };
        let parts: Vec<&str> = path.split('/').collect();
        let [SEGMENTS_ROOT, data_source, interval, version, file] = parts.as_slice() else {
            return Err(unrecognized());
        };
        let (start, end) = interval.split_once('_').ok_or_else(unrecognized)?;
        let start = parse_iso_millis(start).ok_or_else(unrecognized)?;
        let end = parse_iso_millis(end).ok_or_else(unrecognized)?;
        let partition = file.strip_suffix(".parquet").and_then(parse_canonical).ok_or_else(unrecognized)?;
        if start >= end {
            return Err(unrecognized());
        }
        Self::new(DataSourceName::new(data_source)?, start, end, *version, partition)
    }

    /// The directory of all versions of one interval: segments/<dataSource>/<start>_<end>
    pub fn interval_dir(ds: &DataSourceName, start: i64, end: i64) -> String {
        format!("{}/{}_{}", Self::data_source_prefix(ds), format_iso_millis(start), format_iso_millis(end))
    }

    /// The directory of all segments of a dataSource: segments/<dataSource>
    pub fn data_source_prefix(ds: &DataSourceName) -> String {
        format!("{SEGMENTS_ROOT}/{ds}")
    }
}

/// The claim of batch version `version` of `ds`: versions/<dataSource>/<version>.json. A batch
/// job takes it create-only before writing any segment of that version, so two jobs started in
/// the same millisecond never write the same segment paths or publish the same version.
pub fn version_claim_path(ds: &DataSourceName, version: &str) -> Result<String, LayoutError> {
    validate_path_part("segment version", version)?;
    Ok(format!("{}/{version}.json", version_claims_dir(ds)))
}

/// The directory of every version claim of `ds`: versions/<dataSource>
pub fn version_claims_dir(ds: &DataSourceName) -> String {
    format!("{VERSIONS_ROOT}/{ds}")
}

/// Reads a version claim's path back to its dataSource and version.
pub fn parse_version_claim(path: &str) -> Result<(DataSourceName, String), LayoutError> {
    let unrecognized =
        || LayoutError::UnrecognizedPath { path: path.to_owned(), expected: CLAIM_EXPECTED.to_owned() };
    let parts: Vec<&str> = path.split('/').collect();
    let [VERSIONS_ROOT, ds, file] = parts.as_slice() else {
        return Err(unrecognized());
    };
    let version = file.strip_suffix(".json").ok_or_else(unrecognized)?;
    validate_path_part("segment version", version)?;
    Ok((DataSourceName::new(ds)?, version.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::data_source_names;
    use proptest::prelude::*;

    const DAY_START: i64 = 1_377_907_200_000; // 2013-08-31T00:00:00.000Z
    const DAY_END: i64 = DAY_START + 86_400_000;

    fn wiki() -> DataSourceName {
        DataSourceName::new("wikipedia").unwrap()
    }

    #[test]
    fn path_shape_and_round_trip() {
        let segment = SegmentPath::new(wiki(), DAY_START, DAY_END, "2013-09-02T10:11:12.000Z", 7).unwrap();
        let path = segment.to_path();
        assert_eq!(
            path,
            "segments/wikipedia/2013-08-31T00:00:00.000Z_2013-09-01T00:00:00.000Z/\
             2013-09-02T10:11:12.000Z/7.parquet"
        );
        assert_eq!(SegmentPath::parse(&path), Ok(segment));
        assert_eq!(
            SegmentPath::interval_dir(&wiki(), DAY_START, DAY_END),
            "segments/wikipedia/2013-08-31T00:00:00.000Z_2013-09-01T00:00:00.000Z"
        );
        assert_eq!(SegmentPath::data_source_prefix(&wiki()), "segments/wikipedia");
    }

    #[test]
    fn new_refuses_bad_versions_and_intervals() {
        let err = SegmentPath::new(wiki(), DAY_START, DAY_END, "v/1", 0).unwrap_err();
        assert_eq!(err.to_string(), r#"segment version "v/1": must not contain ".." or path separators"#);
        let err = SegmentPath::new(wiki(), DAY_END, DAY_START, "v1", 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "segment interval 2013-09-01T00:00:00.000Z/2013-08-31T00:00:00.000Z: \
             start must be before end"
        );
        assert!(matches!(
            SegmentPath::new(wiki(), DAY_START, DAY_START, "v1", 0),
            Err(LayoutError::EmptyInterval { .. })
        ));
        let err = SegmentPath::new(wiki(), 0, MAX_PATH_MILLIS + 1, "v1", 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "segment end 253402300800000 ms (+10000-01-01T00:00:00.000Z): must be within \
             years 0000-9999 (-62167219200000..=253402300799999 ms)"
        );
    }

    #[test]
    fn other_paths_are_unrecognized() {
        for path in [
            "catalog/wikipedia/log/00000000000000000001.json",
            "raw/wikipedia/v=1/y=2013/m=08/d=31/H=01/f.json.gz",
            "segments/wikipedia/2013-08-31T00:00:00.000Z_2013-09-01T00:00:00.000Z/v1/07.parquet",
            "segments/wikipedia/2013-08-31T00:00:00.000Z_2013-09-01T00:00:00.000Z/v1/7.json",
            "segments/wikipedia/2013-08-31T00:00:00Z_2013-09-01T00:00:00Z/v1/7.parquet",
            "segments/wikipedia/2013-09-01T00:00:00.000Z_2013-08-31T00:00:00.000Z/v1/7.parquet",
            "segments/wikipedia/2013-08-31T00:00:00.000Z/v1/7.parquet",
            "segments/wikipedia/2013-08-31T00:00:00.000Z_2013-09-01T00:00:00.000Z/7.parquet",
        ] {
            assert_eq!(
                SegmentPath::parse(path).unwrap_err().to_string(),
                format!("path {path:?} does not match {EXPECTED}")
            );
        }
        let err = SegmentPath::parse(
            "segments/a\\b/2013-08-31T00:00:00.000Z_2013-09-01T00:00:00.000Z/v1/7.parquet",
        )
        .unwrap_err();
        assert!(matches!(err, LayoutError::InvalidName { what: "dataSource name", .. }));
    }

    #[test]
    fn version_claims_round_trip_and_refuse_bad_versions() {
        let path = version_claim_path(&wiki(), "2013-09-02T10:11:12.000Z").unwrap();
        assert_eq!(path, "versions/wikipedia/2013-09-02T10:11:12.000Z.json");
        assert_eq!(parse_version_claim(&path), Ok((wiki(), "2013-09-02T10:11:12.000Z".to_owned())));
        assert_eq!(version_claims_dir(&wiki()), "versions/wikipedia");
        assert!(matches!(version_claim_path(&wiki(), "../x"), Err(LayoutError::InvalidName { .. })));
        for path in ["versions/wikipedia/v1", "versions/wikipedia/x/v1.json", "segments/wikipedia/v1.json"] {
            assert_eq!(
                parse_version_claim(path).unwrap_err().to_string(),
                format!("path {path:?} does not match {CLAIM_EXPECTED}")
            );
        }
    }

    proptest! {
        #[test]
        fn round_trips(
            data_source in data_source_names(),
            (start, end) in (MIN_PATH_MILLIS..MAX_PATH_MILLIS)
                .prop_flat_map(|start| (Just(start), start + 1..=MAX_PATH_MILLIS)),
            version in "[a-zA-Z0-9_:.+-]{1,40}".prop_filter("path part", |v| !v.contains("..") && v != "."),
            partition in any::<u32>(),
        ) {
            let segment = SegmentPath::new(data_source, start, end, version, partition).unwrap();
            prop_assert_eq!(SegmentPath::parse(&segment.to_path()), Ok(segment));
        }
    }
}
