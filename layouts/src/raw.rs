//! The raw archive: input files kept per dataSource and event hour, laid out by a
//! configurable template so braid can adopt an archive another system already writes.

use chrono::NaiveDate;

use crate::catalog::CATALOG_ROOT;
use crate::segment::SEGMENTS_ROOT;
use crate::time::{Civil, MAX_PATH_MILLIS, MIN_PATH_MILLIS, MS_PER_HOUR};
use crate::{
    DataSourceName, LayoutError, REJECTS_ROOT, parse_canonical, parse_padded_u64, path_part_problem,
    validate_path_part,
};

/// Roots of braid's other trees; a raw template starting with one would mix raw files
/// into them.
const RESERVED_ROOTS: [&str; 3] = [SEGMENTS_ROOT, CATALOG_ROOT, REJECTS_ROOT];

/// The calendar fields a template can place, in `fields` array order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimeField {
    Year,
    Month,
    Day,
    Hour,
}

impl TimeField {
    const ALL: [Self; 4] = [Self::Year, Self::Month, Self::Day, Self::Hour];

    fn token(self) -> &'static str {
        match self {
            Self::Year => "{yyyy}",
            Self::Month => "{MM}",
            Self::Day => "{dd}",
            Self::Hour => "{HH}",
        }
    }

    /// Fixed widths make each field parse back without separators around it.
    fn width(self) -> usize {
        match self {
            Self::Year => 4,
            _ => 2,
        }
    }

    fn value(self, c: &Civil) -> i64 {
        match self {
            Self::Year => c.year,
            Self::Month => c.month.into(),
            Self::Day => c.day.into(),
            Self::Hour => c.hour.into(),
        }
    }
}

/// A run of a template part: literal text or one token.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    DataSource,
    Time(TimeField),
}

/// One '/'-separated part of a template, by what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// `{dataSource}` with literal text around it; no time token shares the part.
    DataSource {
        prefix: String,
        suffix: String,
    },
    /// Literal text and time fields; never `{dataSource}`.
    Time(Vec<Piece>),
}

/// The raw-archive layout: a template of '/'-separated parts with tokens {dataSource}
/// {yyyy} {MM} {dd} {HH}.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawLayout {
    template: String,
    parts: Vec<Part>,
    /// Index of the first part holding a time token: everything before it is per
    /// dataSource and fixed.
    first_time_part: usize,
}

impl RawLayout {
    /// The layout braid writes unless configured otherwise; "v=1" leaves room to change
    /// the layout without mixing generations.
    pub const DEFAULT_TEMPLATE: &'static str = "raw/{dataSource}/v=1/y={yyyy}/m={MM}/d={dd}/H={HH}";

    /// Each token must appear exactly once; {dataSource} must be in a part before every
    /// time token (literal text around it is fine, as in "ds={dataSource}"); time tokens
    /// may share a part with each other and with literal text ("dt={yyyy}-{MM}-{dd}").
    /// The first part must be literal text other than braid's own roots ("segments",
    /// "catalog", "rejects"). No empty parts, no "..", no leading/trailing '/'; unknown
    /// {tokens} are an error naming them.
    pub fn parse(template: &str) -> Result<Self, LayoutError> {
        let fail = |reason: String| LayoutError::InvalidTemplate { template: template.to_owned(), reason };
        if template.is_empty() {
            return Err(fail("must not be empty".into()));
        }
        if template.starts_with('/') || template.ends_with('/') {
            return Err(fail("must not start or end with \"/\"".into()));
        }
        let mut tokenized = Vec::new();
        for part in template.split('/') {
            if part.is_empty() {
                return Err(fail("must not contain an empty path part (\"//\")".into()));
            }
            let pieces = tokenize(part).map_err(fail)?;
            // Token values are names and digits that pass the path-part rules on their
            // own, so a stand-in character per token checks the literal text around them.
            let sample: String = pieces
                .iter()
                .map(|p| match p {
                    Piece::Literal(text) => text.as_str(),
                    Piece::DataSource | Piece::Time(_) => "0",
                })
                .collect();
            if let Some(reason) = path_part_problem(&sample) {
                return Err(fail(format!("path part {part:?}: {reason}")));
            }
            tokenized.push(pieces);
        }

        let part_of = |token: &Piece, text: &str| {
            let mut found = (0..tokenized.len())
                .flat_map(|i| tokenized[i].iter().filter(move |p| *p == token).map(move |_| i));
            match (found.next(), found.next()) {
                (Some(i), None) => Ok(i),
                (None, _) => Err(fail(format!("missing token {text}"))),
                (Some(_), Some(_)) => Err(fail(format!("token {text} appears more than once"))),
            }
        };
        let data_source_part = part_of(&Piece::DataSource, "{dataSource}")?;
        let mut first_time_part = usize::MAX;
        for field in TimeField::ALL {
            first_time_part = first_time_part.min(part_of(&Piece::Time(field), field.token())?);
        }
        // The dataSource part comes first so each dataSource has one listable prefix.
        if data_source_part >= first_time_part {
            return Err(fail("{dataSource} must be in a path part before every time token".into()));
        }
        match tokenized[0].as_slice() {
            [Piece::Literal(root)] if RESERVED_ROOTS.contains(&root.as_str()) => {
                return Err(fail(format!("first path part {root:?} is reserved for braid's own files")));
            }
            [Piece::Literal(_)] => {}
            _ => {
                return Err(fail(
                    "first path part must be literal text, keeping the raw archive apart from braid's other trees".into(),
                ));
            }
        }

        Ok(Self {
            template: template.to_owned(),
            parts: tokenized.into_iter().map(classify).collect(),
            first_time_part,
        })
    }

    /// The template this layout was parsed from.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// Directory of one event hour (`hour_start`: UTC ms, aligned to the hour, years
    /// 0000-9999). No trailing slash. e.g. raw/wikipedia/v=1/y=2013/m=08/d=31/H=01
    pub fn hour_dir(&self, ds: &DataSourceName, hour_start: i64) -> String {
        debug_assert!(
            hour_start.rem_euclid(MS_PER_HOUR) == 0,
            "hour_start {hour_start} is not aligned to an hour"
        );
        debug_assert!(
            (MIN_PATH_MILLIS..=MAX_PATH_MILLIS).contains(&hour_start),
            "hour_start {hour_start} is outside years 0000-9999"
        );
        render(&self.parts, ds, &Civil::of(hour_start))
    }

    /// A file inside an hour directory.
    pub fn hour_file(&self, ds: &DataSourceName, hour_start: i64, file: &RawFileName) -> String {
        format!("{}/{}", self.hour_dir(ds, hour_start), file.file_name())
    }

    /// The fixed prefix under which all hours of a dataSource live (everything before the
    /// first time token's part), for listing. No trailing slash. e.g. raw/wikipedia/v=1
    pub fn data_source_prefix(&self, ds: &DataSourceName) -> String {
        // These parts hold no time token, so any instant renders them the same.
        render(&self.parts[..self.first_time_part], ds, &Civil::of(0))
    }

    /// Parses a file path of this layout back. A path of another shape is
    /// `UnrecognizedPath` naming the path and the template; a path of this shape whose
    /// dataSource or file name breaks the path-part rules is `InvalidName`.
    pub fn parse_file(&self, path: &str) -> Result<RawFile, LayoutError> {
        let unrecognized = || LayoutError::UnrecognizedPath {
            path: path.to_owned(),
            expected: format!("raw layout \"{}/<file name>\"", self.template),
        };
        let Some((dir, file)) = path.rsplit_once('/') else {
            return Err(unrecognized());
        };
        let segments: Vec<&str> = dir.split('/').collect();
        if segments.len() != self.parts.len() {
            return Err(unrecognized());
        }
        let mut name = None;
        let mut fields = [None; 4];
        for (segment, part) in segments.into_iter().zip(&self.parts) {
            let matched = match part {
                Part::Literal(text) => segment == text,
                Part::DataSource { prefix, suffix } => {
                    name = segment
                        .strip_prefix(prefix.as_str())
                        .and_then(|rest| rest.strip_suffix(suffix.as_str()));
                    name.is_some()
                }
                Part::Time(pieces) => match_time_part(pieces, segment, &mut fields).is_some(),
            };
            if !matched {
                return Err(unrecognized());
            }
        }
        let (Some(name), [Some(year), Some(month), Some(day), Some(hour)]) = (name, fields) else {
            return Err(unrecognized());
        };
        let hour_start = i32::try_from(year)
            .ok()
            .and_then(|year| NaiveDate::from_ymd_opt(year, month, day))
            .and_then(|date| date.and_hms_opt(hour, 0, 0))
            .ok_or_else(unrecognized)?
            .and_utc()
            .timestamp_millis();
        Ok(RawFile { data_source: DataSourceName::new(name)?, hour_start, name: RawFileName::parse(file)? })
    }
}

/// Splits one template part into literal runs and tokens; the error is the reason.
fn tokenize(part: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = part;
    while let Some(at) = rest.find(['{', '}']) {
        if at > 0 {
            pieces.push(Piece::Literal(rest[..at].to_owned()));
        }
        let Some(inner) = rest[at..].strip_prefix('{') else {
            return Err(format!("unmatched \"}}\" in path part {part:?}"));
        };
        let Some((name, after)) = inner.split_once('}') else {
            return Err(format!("unclosed \"{{\" in path part {part:?}"));
        };
        pieces.push(match name {
            "dataSource" => Piece::DataSource,
            "yyyy" => Piece::Time(TimeField::Year),
            "MM" => Piece::Time(TimeField::Month),
            "dd" => Piece::Time(TimeField::Day),
            "HH" => Piece::Time(TimeField::Hour),
            _ => {
                return Err(format!(
                    "unknown token \"{{{name}}}\" (known: {{dataSource}} {{yyyy}} {{MM}} {{dd}} {{HH}})"
                ));
            }
        });
        rest = after;
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest.to_owned()));
    }
    Ok(pieces)
}

/// Sorts a validated part's pieces into the `Part` that says how to match it.
fn classify(pieces: Vec<Piece>) -> Part {
    let literal = |pieces: &[Piece]| -> String {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Literal(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    };
    if let Some(at) = pieces.iter().position(|p| *p == Piece::DataSource) {
        Part::DataSource { prefix: literal(&pieces[..at]), suffix: literal(&pieces[at + 1..]) }
    } else if pieces.iter().any(|p| matches!(p, Piece::Time(_))) {
        Part::Time(pieces)
    } else {
        Part::Literal(literal(&pieces))
    }
}

/// Writes `parts` for one dataSource and instant, '/'-joined.
fn render(parts: &[Part], ds: &DataSourceName, time: &Civil) -> String {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        match part {
            Part::Literal(text) => out.push_str(text),
            Part::DataSource { prefix, suffix } => {
                out.push_str(prefix);
                out.push_str(ds.as_str());
                out.push_str(suffix);
            }
            Part::Time(pieces) => {
                for piece in pieces {
                    match piece {
                        Piece::Literal(text) => out.push_str(text),
                        Piece::DataSource => out.push_str(ds.as_str()),
                        Piece::Time(field) => {
                            out.push_str(&format!("{:0width$}", field.value(time), width = field.width()))
                        }
                    }
                }
            }
        }
    }
    out
}

/// Matches one path segment against a time part, recording the fields it carries.
fn match_time_part(pieces: &[Piece], segment: &str, fields: &mut [Option<u32>; 4]) -> Option<()> {
    let mut rest = segment;
    for piece in pieces {
        match piece {
            Piece::Literal(text) => rest = rest.strip_prefix(text.as_str())?,
            Piece::Time(field) => {
                let (digits, after) = rest.split_at_checked(field.width())?;
                if !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                fields[*field as usize] = Some(digits.parse().ok()?);
                rest = after;
            }
            // `parse` keeps {dataSource} out of time parts.
            Piece::DataSource => return None,
        }
    }
    rest.is_empty().then_some(())
}

/// A raw file path read back through a layout.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawFile {
    /// The dataSource whose archive holds the file.
    pub data_source: DataSourceName,
    /// Start of the event hour, UTC ms since the epoch.
    pub hour_start: i64,
    /// The file's name inside the hour directory.
    pub name: RawFileName,
}

/// Names of files in an hour directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RawFileName {
    /// Written by `braid raw put`: named by the SHA-256 (lowercase hex, 64 chars) of the
    /// uncompressed bytes it holds, so the same input stored twice lands on the same
    /// name. "put-<hex>.json.gz"
    Put { content_hash: String },
    /// Written by the stream daemon: Kafka topic partition (>= 0) and the half-open
    /// offset range [start, end) it holds (0 <= start < end). Offsets are zero padded to
    /// 20 digits so listing order is offset order.
    /// "kafka-<partition>-<start 20 digits>-<end 20 digits>.json.gz"
    StreamPart { partition: i32, start_offset: i64, end_offset: i64 },
    /// Any other file dropped there by another system (counts as raw input; name
    /// validated as a path part).
    Foreign(String),
}

impl RawFileName {
    /// The name as written in the hour directory.
    pub fn file_name(&self) -> String {
        match self {
            Self::Put { content_hash } => {
                debug_assert!(is_sha256_hex(content_hash), "bad content hash {content_hash:?}");
                format!("put-{content_hash}.json.gz")
            }
            Self::StreamPart { partition, start_offset, end_offset } => {
                debug_assert!(
                    *partition >= 0 && 0 <= *start_offset && start_offset < end_offset,
                    "bad stream part {partition} [{start_offset}, {end_offset})"
                );
                format!("kafka-{partition}-{start_offset:020}-{end_offset:020}.json.gz")
            }
            Self::Foreign(name) => {
                debug_assert!(path_part_problem(name).is_none(), "bad file name {name:?}");
                name.clone()
            }
        }
    }

    /// Reads a file name back. Names that break the path-part rules are errors; names
    /// starting with "put-" or "kafka-" that do not parse fully are `Foreign`, since
    /// another system may use those prefixes too.
    pub fn parse(name: &str) -> Result<Self, LayoutError> {
        validate_path_part("raw file name", name)?;
        Ok(parse_put(name)
            .or_else(|| parse_stream_part(name))
            .unwrap_or_else(|| Self::Foreign(name.to_owned())))
    }
}

fn parse_put(name: &str) -> Option<RawFileName> {
    let hash = name.strip_prefix("put-")?.strip_suffix(".json.gz")?;
    is_sha256_hex(hash).then(|| RawFileName::Put { content_hash: hash.to_owned() })
}

fn parse_stream_part(name: &str) -> Option<RawFileName> {
    let rest = name.strip_prefix("kafka-")?.strip_suffix(".json.gz")?;
    let mut fields = rest.split('-');
    let (Some(partition), Some(start), Some(end), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    let partition = parse_canonical(partition)?;
    let start_offset = i64::try_from(parse_padded_u64(start, 20)?).ok()?;
    let end_offset = i64::try_from(parse_padded_u64(end, 20)?).ok()?;
    (start_offset < end_offset).then_some(RawFileName::StreamPart { partition, start_offset, end_offset })
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::data_source_names;
    use proptest::prelude::*;

    const HOUR_2013_08_31_01: i64 = 1_377_910_800_000;
    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const CUSTOM_TEMPLATES: [&str; 2] =
        ["prod/{dataSource}/{yyyy}/{MM}/{dd}/{HH}", "events/ds={dataSource}/dt={yyyy}-{MM}-{dd}/hour={HH}"];

    fn ds(name: &str) -> DataSourceName {
        DataSourceName::new(name).unwrap()
    }

    fn default_layout() -> RawLayout {
        RawLayout::parse(RawLayout::DEFAULT_TEMPLATE).unwrap()
    }

    fn template_error(template: &str) -> String {
        match RawLayout::parse(template) {
            Err(err @ LayoutError::InvalidTemplate { .. }) => err.to_string(),
            other => panic!("{template}: expected InvalidTemplate, got {other:?}"),
        }
    }

    fn stream_part() -> RawFileName {
        RawFileName::StreamPart { partition: 3, start_offset: 1_000, end_offset: 2_000 }
    }

    #[test]
    fn default_layout_paths() {
        let layout = default_layout();
        let wiki = ds("wikipedia");
        assert_eq!(layout.template(), RawLayout::DEFAULT_TEMPLATE);
        assert_eq!(layout.hour_dir(&wiki, HOUR_2013_08_31_01), "raw/wikipedia/v=1/y=2013/m=08/d=31/H=01");
        assert_eq!(layout.data_source_prefix(&wiki), "raw/wikipedia/v=1");
        assert_eq!(
            layout.hour_file(&wiki, HOUR_2013_08_31_01, &stream_part()),
            "raw/wikipedia/v=1/y=2013/m=08/d=31/H=01/\
             kafka-3-00000000000000001000-00000000000000002000.json.gz"
        );
    }

    #[test]
    fn each_file_kind_round_trips() {
        let layout = default_layout();
        let wiki = ds("wikipedia");
        for name in [
            RawFileName::Put { content_hash: HASH.into() },
            stream_part(),
            RawFileName::Foreign("part-00000.gz".into()),
        ] {
            let path = layout.hour_file(&wiki, HOUR_2013_08_31_01, &name);
            let expected = RawFile { data_source: wiki.clone(), hour_start: HOUR_2013_08_31_01, name };
            assert_eq!(layout.parse_file(&path), Ok(expected), "{path}");
        }
    }

    #[test]
    fn custom_templates_round_trip() {
        let file = RawFileName::Put { content_hash: HASH.into() };
        let expected_dirs = ["prod/wiki-edits/2013/08/31/01", "events/ds=wiki-edits/dt=2013-08-31/hour=01"];
        for (template, dir) in CUSTOM_TEMPLATES.into_iter().zip(expected_dirs) {
            let layout = RawLayout::parse(template).unwrap();
            let edits = ds("wiki-edits");
            assert_eq!(layout.hour_dir(&edits, HOUR_2013_08_31_01), dir);
            let path = layout.hour_file(&edits, HOUR_2013_08_31_01, &file);
            let parsed = layout.parse_file(&path).unwrap();
            assert_eq!(parsed.data_source, edits);
            assert_eq!(parsed.hour_start, HOUR_2013_08_31_01);
            assert_eq!(parsed.name, file);
        }
        let layout = RawLayout::parse(CUSTOM_TEMPLATES[1]).unwrap();
        assert_eq!(layout.data_source_prefix(&ds("x")), "events/ds=x");
    }

    #[test]
    fn literal_parts_after_the_time_tokens_and_packed_fields_work() {
        let layout = RawLayout::parse("arch/{dataSource}.d/{yyyy}{MM}{dd}T{HH}/in").unwrap();
        let path = layout.hour_file(&ds("a"), HOUR_2013_08_31_01, &stream_part());
        assert!(path.starts_with("arch/a.d/20130831T01/in/kafka-3-"), "{path}");
        assert_eq!(layout.parse_file(&path).unwrap().hour_start, HOUR_2013_08_31_01);
    }

    #[test]
    fn data_source_after_time_tokens_is_refused() {
        for template in [
            "events/dt={yyyy}-{MM}-{dd}/hour={HH}/ds={dataSource}",
            "events/{yyyy}/{dataSource}/{MM}/{dd}/{HH}",
            "events/{dataSource}-{yyyy}/{MM}/{dd}/{HH}",
        ] {
            let msg = template_error(template);
            assert!(msg.contains(&format!("{template:?}")), "{msg}");
            assert!(msg.ends_with("{dataSource} must be in a path part before every time token"), "{msg}");
        }
    }

    #[test]
    fn bad_templates_are_refused_with_the_rule() {
        for (template, reason) in [
            ("raw/{dataSource}/{yyyy}/{MM}/{dd}", "missing token {HH}"),
            ("raw/{yyyy}/{MM}/{dd}/{HH}", "missing token {dataSource}"),
            ("raw/{dataSource}/{yyyy}/{MM}/{dd}/{HH}/{HH}", "token {HH} appears more than once"),
            (
                "raw/{dataSource}/{dataSource}/{yyyy}/{MM}/{dd}/{HH}",
                "token {dataSource} appears more than once",
            ),
            (
                "raw/{dataSource}/{yyy}/{MM}/{dd}/{HH}",
                "unknown token \"{yyy}\" (known: {dataSource} {yyyy} {MM} {dd} {HH})",
            ),
            ("raw/../{dataSource}/{yyyy}/{MM}/{dd}/{HH}", "path part \"..\": must not be \".\" or \"..\""),
            (
                "raw/{dataSource}/x..{yyyy}/{MM}/{dd}/{HH}",
                "path part \"x..{yyyy}\": must not contain \"..\" or path separators",
            ),
            ("raw/{dataSource}//{yyyy}/{MM}/{dd}/{HH}", "must not contain an empty path part (\"//\")"),
            ("/raw/{dataSource}/{yyyy}/{MM}/{dd}/{HH}", "must not start or end with \"/\""),
            ("raw/{dataSource}/{yyyy}/{MM}/{dd}/{HH}/", "must not start or end with \"/\""),
            ("raw/{dataSource/{yyyy}/{MM}/{dd}/{HH}", "unclosed \"{\" in path part \"{dataSource\""),
            ("raw/dataSource}/{yyyy}/{MM}/{dd}/{HH}", "unmatched \"}\" in path part \"dataSource}\""),
            (
                "{dataSource}/{yyyy}/{MM}/{dd}/{HH}",
                "first path part must be literal text, keeping the raw archive apart from braid's other trees",
            ),
            (
                "segments/{dataSource}/{yyyy}/{MM}/{dd}/{HH}",
                "first path part \"segments\" is reserved for braid's own files",
            ),
            ("", "must not be empty"),
        ] {
            let msg = template_error(template);
            assert_eq!(msg, format!("raw layout template {template:?}: {reason}"));
        }
    }

    #[test]
    fn paths_of_other_layouts_are_unrecognized() {
        let layout = default_layout();
        let other = RawLayout::parse(CUSTOM_TEMPLATES[0]).unwrap();
        let wiki = ds("wikipedia");
        let foreign_path = other.hour_file(&wiki, HOUR_2013_08_31_01, &stream_part());
        for path in [
            foreign_path.as_str(),
            "segments/wikipedia/2013-08-31T00:00:00.000Z_2013-09-01T00:00:00.000Z/v1/0.parquet",
            "raw/wikipedia/v=2/y=2013/m=08/d=31/H=01/f.json.gz",
            "raw/wikipedia/v=1/y=2013/m=08/d=31/f.json.gz",
            "raw/wikipedia/v=1/y=2013/m=08/d=31/H=01/extra/f.json.gz",
            "raw/wikipedia/v=1/y=2013/m=8/d=31/H=01/f.json.gz",
            "raw/wikipedia/v=1/y=2013/m=02/d=30/H=01/f.json.gz",
            "raw/wikipedia/v=1/y=2013/m=08/d=31/H=24/f.json.gz",
            "/raw/wikipedia/v=1/y=2013/m=08/d=31/H=01/f.json.gz",
            "raw",
        ] {
            let err = layout.parse_file(path).expect_err(path);
            assert_eq!(
                err.to_string(),
                format!(
                    "path {path:?} does not match raw layout \"{}/<file name>\"",
                    RawLayout::DEFAULT_TEMPLATE
                )
            );
        }
    }

    #[test]
    fn paths_of_another_data_source_parse_to_that_data_source() {
        let layout = default_layout();
        let path = layout.hour_file(&ds("twitter"), HOUR_2013_08_31_01, &stream_part());
        let parsed = layout.parse_file(&path).unwrap();
        assert_ne!(parsed.data_source, ds("wikipedia"));
        assert_eq!(parsed.data_source, ds("twitter"));
    }

    #[test]
    fn invalid_names_inside_a_matching_path_are_name_errors() {
        let layout = default_layout();
        let err = layout.parse_file("raw/wikipedia/v=1/y=2013/m=08/d=31/H=01/a\\b").unwrap_err();
        assert_eq!(err.to_string(), r#"raw file name "a\\b": must not contain ".." or path separators"#);
        let err = layout.parse_file("raw/../v=1/y=2013/m=08/d=31/H=01/f").unwrap_err();
        assert!(matches!(err, LayoutError::InvalidName { what: "dataSource name", .. }));
    }

    #[test]
    fn file_names_parse_strictly_and_fall_back_to_foreign() {
        assert_eq!(
            RawFileName::parse(&format!("put-{HASH}.json.gz")),
            Ok(RawFileName::Put { content_hash: HASH.into() })
        );
        assert_eq!(
            RawFileName::parse("kafka-0-00000000000000000000-00000000000000000001.json.gz"),
            Ok(RawFileName::StreamPart { partition: 0, start_offset: 0, end_offset: 1 })
        );
        for foreign in [
            format!("put-{}.json.gz", HASH.to_uppercase()),
            format!("put-{}.json.gz", &HASH[1..]),
            format!("put-{HASH}.json"),
            "kafka-03-00000000000000000000-00000000000000000001.json.gz".into(),
            "kafka-+3-00000000000000000000-00000000000000000001.json.gz".into(),
            "kafka-3-0000000000000000000-00000000000000000001.json.gz".into(),
            "kafka-3-00000000000000000005-00000000000000000005.json.gz".into(),
            "kafka-3-00000000000000000000-99999999999999999999.json.gz".into(),
            "kafka-3-00000000000000000000-00000000000000000001-x.json.gz".into(),
            "kafka-2147483648-00000000000000000000-00000000000000000001.json.gz".into(),
            "data.csv".into(),
        ] {
            assert_eq!(RawFileName::parse(&foreign), Ok(RawFileName::Foreign(foreign.clone())));
        }
        for bad in ["", "..", "a/b", "a\\b", "a\u{0}b"] {
            let err = RawFileName::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with(&format!("raw file name {bad:?}: ")));
        }
    }

    fn file_names() -> impl Strategy<Value = RawFileName> {
        prop_oneof![
            "[0-9a-f]{64}".prop_map(|content_hash| RawFileName::Put { content_hash }),
            (0..=i32::MAX, 0..i64::MAX)
                .prop_flat_map(|(p, start)| (Just(p), Just(start), start + 1..=i64::MAX))
                .prop_map(|(partition, start_offset, end_offset)| RawFileName::StreamPart {
                    partition,
                    start_offset,
                    end_offset
                }),
            "[a-zA-Z0-9_.=-]{1,40}"
                .prop_filter("path part", |s| path_part_problem(s).is_none())
                .prop_filter("braid's own prefixes", |s| !s.starts_with("put-") && !s.starts_with("kafka-"))
                .prop_map(RawFileName::Foreign),
        ]
    }

    proptest! {
        #[test]
        fn round_trips_over_hours_names_and_templates(
            template in prop::sample::select(vec![
                RawLayout::DEFAULT_TEMPLATE,
                CUSTOM_TEMPLATES[0],
                CUSTOM_TEMPLATES[1],
            ]),
            data_source in data_source_names(),
            // Every hour of 1970 through 2099.
            hour in 0..4_102_444_800_000 / MS_PER_HOUR,
            name in file_names(),
        ) {
            let layout = RawLayout::parse(template).unwrap();
            let hour_start = hour * MS_PER_HOUR;
            let path = layout.hour_file(&data_source, hour_start, &name);
            let prefix = layout.data_source_prefix(&data_source) + "/";
            prop_assert!(path.starts_with(&prefix), "{} not under {}", path, prefix);
            let parsed = layout.parse_file(&path);
            prop_assert_eq!(parsed, Ok(RawFile { data_source, hour_start, name }));
        }
    }
}
