use std::collections::BTreeMap;

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use arrow::util::display::array_value_to_string;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::spec::{DimensionType, load_specs};

const TUTORIAL_EVENTS: &str = include_str!("../../../examples/wikipedia-events.json");

fn spec(schema_patch: impl FnOnce(&mut Value)) -> DataSourceSpec {
    let mut spec = json!({
        "type": "kafka",
        "dataSchema": {
            "dataSource": "test",
            "timestampSpec": {"column": "ts", "format": "auto"},
            "dimensionsSpec": {"dimensions": ["a", "b"]},
            "metricsSpec": [
                {"type": "count", "name": "count"},
                {"type": "longSum", "name": "sum", "fieldName": "v"},
                {"type": "longMin", "name": "min", "fieldName": "v"},
                {"type": "doubleMax", "name": "max", "fieldName": "v"},
                {"type": "doubleSum", "name": "dsum", "fieldName": "d"},
                {"type": "floatSum", "name": "fsum", "fieldName": "d"}
            ],
            "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "hour"}
        }
    });
    schema_patch(&mut spec["dataSchema"]);
    load_specs(&spec.to_string(), "test").unwrap().specs.remove(0)
}

fn index_of(spec: &DataSourceSpec) -> RollupIndex {
    RollupIndex::new(RollupSchema::new(spec))
}

/// Every row of every segment as text, in segment order.
fn table(index: &RollupIndex) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let ranks = index.ranks();
    for segment in index.segments(&ranks).values() {
        let (batch, _) = index.record_batch(&segment.rows, &ranks);
        out.extend(batch_rows(&batch));
    }
    out
}

fn batch_rows(batch: &RecordBatch) -> Vec<Vec<String>> {
    (0..batch.num_rows())
        .map(|r| {
            batch
                .columns()
                .iter()
                .map(|c| if c.is_null(r) { "null".into() } else { array_value_to_string(c, r).unwrap() })
                .collect()
        })
        .collect()
}

#[test]
fn the_query_batch_holds_the_record_batch_rows_with_string_views() {
    let mut index = index_of(&spec(|schema| schema["granularitySpec"]["queryGranularity"] = json!("none")));
    for (i, line) in [
        r#"{"ts": 1000, "a": "x", "b": "a value longer than twelve bytes", "v": 1}"#,
        r#"{"ts": 2000, "a": "y", "v": 2, "d": 0.5}"#,
        r#"{"ts": 3000, "b": "short", "v": 3}"#,
        r#"{"ts": 1000, "a": "x", "b": "a value longer than twelve bytes", "v": 4}"#,
    ]
    .iter()
    .enumerate()
    {
        index.add(line.as_bytes()).unwrap_or_else(|e| panic!("line {i}: {e:?}"));
    }
    let (views, dims) = index.query_batch(None);
    let all: Vec<u32> = (0..index.rows() as u32).collect();
    let (stored, stored_dims) = index.record_batch(&all, &index.ranks());
    assert_eq!(dims, stored_dims);
    assert_eq!(views.schema().field(1).data_type(), &arrow::datatypes::DataType::Utf8View);
    assert!(matches!(stored.schema().field(1).data_type(), arrow::datatypes::DataType::Dictionary(..)));
    assert_eq!(batch_rows(&views), batch_rows(&stored));
    assert_eq!(
        batch_rows(&views)[0][1..3],
        ["x".to_string(), "a value longer than twelve bytes".to_string()]
    );
    assert_eq!(batch_rows(&views)[2][1], "null");

    // Fewer rows than values take the other way to views; the same rows come out.
    let within = [crate::time::Interval { start: 2000, end: 3001 }];
    let (some, _) = index.query_batch(Some(&within));
    assert_eq!(batch_rows(&some), batch_rows(&stored)[1..3]);
    assert_eq!(index.query_batch(Some(&[])).0.num_rows(), 0);
}

#[test]
fn tutorial_events_roll_up_by_druid_rules() {
    let loaded = load_specs(include_str!("../../../examples/wikipedia.json"), "wikipedia.json").unwrap();
    let mut index = index_of(&loaded.specs[0]);
    for line in TUTORIAL_EVENTS.lines() {
        index.add(line.as_bytes()).unwrap();
    }
    assert_eq!(index.rows(), 5);
    let ranks = index.ranks();
    let segments = index.segments(&ranks);
    assert_eq!(segments.len(), 1);
    let (batch, dims) = index.record_batch(&segments.values().next().unwrap().rows, &ranks);
    assert_eq!(dims.len(), 12);
    let names: Vec<_> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names[0], "__time");
    assert_eq!(names[1], "page");
    assert_eq!(&names[13..], ["count", "added", "deleted", "delta"]);
    let rows = batch_rows(&batch);
    assert_eq!(rows[0][0], "2013-08-31T01:02:33Z");
    assert_eq!(rows[0][1], "Gypsy Danger");
    assert_eq!(rows[0][14], "57.0");
    assert_eq!(rows[4][16], "-9.0");
}

#[test]
fn equal_keys_fold_and_metrics_aggregate() {
    let mut index = index_of(&spec(|_| {}));
    let events = [
        r#"{"ts": "2020-01-01T10:05:00Z", "a": "x", "b": "y", "v": 5, "d": 1.5}"#,
        r#"{"ts": "2020-01-01T10:59:59.999Z", "a": "x", "b": "y", "v": "-3", "d": 2}"#,
        r#"{"ts": "2020-01-01T10:30:00Z", "a": "x", "b": "y"}"#,
        r#"{"ts": "2020-01-01T11:00:00Z", "a": "x", "b": "y", "v": 7}"#,
        r#"{"ts": 1577873100000, "a": "x", "v": 1}"#,
    ];
    for e in events {
        index.add(e.as_bytes()).unwrap();
    }
    assert_eq!(index.rows(), 3);
    let rows = table(&index);
    // Sorted by time, then dimension values with null first.
    assert_eq!(rows[0], ["2020-01-01T10:00:00Z", "x", "null", "1", "1", "1", "1.0", "null", "null"]);
    assert_eq!(rows[1], ["2020-01-01T10:00:00Z", "x", "y", "3", "2", "-3", "5.0", "3.5", "3.5"]);
    assert_eq!(rows[2], ["2020-01-01T11:00:00Z", "x", "y", "1", "7", "7", "7.0", "null", "null"]);
}

#[test]
fn rollup_false_keeps_every_event() {
    let mut index = index_of(&spec(|s| s["granularitySpec"]["rollup"] = json!(false)));
    for _ in 0..3 {
        index.add(br#"{"ts": "2020-01-01T10:05:00Z", "a": "x", "v": 1}"#).unwrap();
    }
    assert_eq!(index.rows(), 3);
    assert!(table(&index).iter().all(|r| r[3] == "1"));
}

#[test]
fn segments_split_by_segment_granularity_and_query_granularity_all() {
    let mut index = index_of(&spec(|s| {
        s["granularitySpec"] = json!({"segmentGranularity": "hour", "queryGranularity": "all"})
    }));
    for ts in ["2020-01-01T10:05:00Z", "2020-01-01T10:55:00Z", "2020-01-01T12:00:00Z"] {
        index.add(format!(r#"{{"ts": "{ts}", "a": "x"}}"#).as_bytes()).unwrap();
    }
    let segments = index.segments(&index.ranks());
    let intervals: Vec<String> = segments.keys().map(|i| i.to_string()).collect();
    assert_eq!(
        intervals,
        [
            "2020-01-01T10:00:00.000Z/2020-01-01T11:00:00.000Z",
            "2020-01-01T12:00:00.000Z/2020-01-01T13:00:00.000Z"
        ]
    );
    assert_eq!(index.rows(), 2, "queryGranularity all folds a segment's events to its start");
}

#[test]
fn typed_dimensions() {
    let mut index = index_of(&spec(|s| {
        s["dimensionsSpec"]["dimensions"] =
            json!(["a", {"type": "long", "name": "n"}, {"type": "double", "name": "f"}]);
    }));
    index.add(br#"{"ts": "2020-01-01T10:00:00Z", "a": 12, "n": "42", "f": 1.25}"#).unwrap();
    index.add(br#"{"ts": "2020-01-01T10:00:00Z", "a": true, "n": 42.9, "f": "1.25"}"#).unwrap();
    index.add(br#"{"ts": "2020-01-01T10:00:00Z", "n": null}"#).unwrap();
    let rows = table(&index);
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[0][1..4], ["null", "null", "null"]);
    assert_eq!(&rows[1][1..4], ["12", "42", "1.25"]);
    assert_eq!(&rows[2][1..4], ["true", "42", "1.25"]);
    let err = index.add(br#"{"ts": "2020-01-01T10:00:00Z", "n": "forty"}"#).unwrap_err();
    assert_eq!(err.to_string(), r#"field "n": value "forty" is not a long"#);
}

#[test]
fn bad_events_are_refused_with_the_reason() {
    let mut index = index_of(&spec(|_| {}));
    let cases: [(&[u8], &str); 8] = [
        (b"{\"ts\": \"2020-01-01T10:00:00Z\", ", "not a valid JSON object"),
        (
            b"{\"ts\": \"2020-01-01T10:00:00Z\", \"a\": \"\xff\"}",
            "not a valid JSON object: not UTF-8: invalid utf-8 sequence of 1 bytes from index 37",
        ),
        (b"[1, 2]", "not a valid JSON object"),
        (br#"{"a": "x"}"#, r#"timestamp column "ts" is missing"#),
        (br#"{"ts": "yesterday"}"#, "yesterday"),
        (br#"{"ts": "2020-01-01T10:00:00Z", "v": "lots"}"#, r#"field "v": value "lots" is not a number"#),
        (br#"{"ts": "2020-01-01T10:00:00Z", "a": ["x", "y"]}"#, r#"field "a": an array"#),
        (br#"{"ts": "2020-01-01T10:00:00Z", "a": {"x": 1}}"#, r#"field "a": an object"#),
    ];
    for (line, needle) in cases {
        let err = index.add(line).unwrap_err().to_string();
        assert!(err.contains(needle), "{err:?} should contain {needle:?}");
    }
    assert_eq!(index.rows(), 0);
    let with_default = spec(|s| s["timestampSpec"]["missingValue"] = json!("2010-01-01T00:00:00Z"));
    let mut index = index_of(&with_default);
    assert_eq!(index.add(br#"{"a": "x"}"#).unwrap(), 1_262_304_000_000);
}

#[test]
fn a_field_given_twice_keeps_its_last_value() {
    for (line, a) in [
        (r#"{"ts": 1000, "a": "x", "a": null}"#, "a=null"),
        (r#"{"ts": 1000, "a": null, "a": "x"}"#, r#"a=\"x\""#),
        (r#"{"ts": 1000, "a": "x", "a": "y"}"#, r#"a=\"y\""#),
        (r#"{"ts": 1000, "a": "x", "a": 12}"#, r#"a=\"12\""#),
        (r#"{"ts": 1000, "a": 12, "a": "x"}"#, r#"a=\"x\""#),
    ] {
        let mut index = index_of(&spec(|_| {}));
        index.parse(line.as_bytes()).unwrap();
        assert!(scratch_text(&index).contains(a), "{line}: {}", scratch_text(&index));
    }
}

#[test]
fn schemaless_discovers_dimensions_and_widens_rows() {
    let mut index = index_of(&spec(|s| {
        s["dimensionsSpec"] = json!({"dimensions": [], "dimensionExclusions": ["secret"]});
    }));
    index.add(br#"{"ts": "2020-01-01T10:00:00Z", "b": "1", "v": 3, "secret": "s"}"#).unwrap();
    index.add(br#"{"ts": "2020-01-01T10:00:00Z", "b": "1", "v": 4}"#).unwrap();
    index.add(br#"{"ts": "2020-01-01T10:00:00Z", "b": "1", "a": "new"}"#).unwrap();
    index.add(br#"{"ts": "2020-01-01T10:00:00Z", "b": "1", "v": 1}"#).unwrap();
    let names: Vec<_> = index.dimension_names().iter().map(|n| n.to_string()).collect();
    assert_eq!(names, ["a", "b"], "discovered dimensions sorted, metric inputs and exclusions left out");
    let rows = table(&index);
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][..5], ["2020-01-01T10:00:00Z", "null", "1", "3", "8"]);
    assert_eq!(&rows[1][..4], ["2020-01-01T10:00:00Z", "new", "1", "1"]);
}

#[test]
fn a_cleared_index_reads_rows_as_a_new_index_does_in_the_memory_it_had() {
    let declared = json!({"dimensions": ["a", {"type": "long", "name": "n"}]});
    for dimensions in [json!({"dimensions": []}), declared] {
        let spec = spec(|s| s["dimensionsSpec"] = dimensions.clone());
        let mut reused = index_of(&spec);
        // Enough values of a to widen its ids past one byte, and a field only these events have.
        for i in 0..300 {
            let line = format!(r#"{{"ts": 1000, "a": "a{i}", "n": {i}, "old": "x", "v": 1}}"#);
            reused.add(line.as_bytes()).unwrap();
        }
        reused.clear();
        assert_eq!(reused.rows(), 0);
        let mut fresh = index_of(&spec);
        for line in [
            r#"{"ts": 2000, "n": 7, "new": "y", "v": 2}"#,
            r#"{"ts": 2000, "a": "a1", "n": 7, "new": "y", "v": 3}"#,
            r#"{"ts": 2000, "n": 7, "new": "y", "v": 4}"#,
        ] {
            reused.add(line.as_bytes()).unwrap();
            fresh.add(line.as_bytes()).unwrap();
        }
        assert_eq!(reused.dimension_names(), fresh.dimension_names(), "{dimensions}");
        let values = |index: &RollupIndex| index.dims.iter().map(|d| d.values.len()).collect::<Vec<_>>();
        assert_eq!(values(&reused), values(&fresh), "{dimensions}: the old values are gone");
        assert_eq!(table(&reused), table(&fresh), "{dimensions}");
        assert_eq!(table(&reused).len(), 2, "{dimensions}");
        assert!(reused.allocated_bytes() > fresh.allocated_bytes(), "{dimensions}: the memory is kept");
    }
}

/// The scratch row of the event last parsed, as text: time, dimension values, metric inputs.
fn scratch_text(index: &RollupIndex) -> String {
    let dims: Vec<String> = index
        .dims
        .iter()
        .zip(&index.scratch.key)
        .map(|(dim, &id)| match (id, dim.values.kind()) {
            (0, _) => format!("{}=null", dim.name),
            (id, DimensionType::String) => format!("{}={:?}", dim.name, dim.values.str_value(id)),
            (id, DimensionType::Long) => format!("{}={}", dim.name, dim.values.i64_value(id)),
            (id, DimensionType::Float) => format!("{}={:?}", dim.name, dim.values.f32_value(id)),
            (id, DimensionType::Double) => format!("{}={:?}", dim.name, dim.values.f64_value(id)),
        })
        .collect();
    format!("{} {dims:?} {:?}", index.scratch.time, index.scratch.inputs)
}

/// Keys: escaped ones, and plain ones sharing their first bytes, up to and past the 15 bytes
/// the parser compares with one integer.
const KEYS: [&str; 11] =
    ["ts", "a", "n", "v", "d", "x", "\\u0061", "t\\\"s", "ab", "abcdefghijklmno", "abcdefghijklmnop"];
const VALUES: [&str; 40] = [
    "\"x\"",
    "\"\"",
    "\"ü東\"",
    "\"a\\\"b\"",
    "\"\\u0041\"",
    "\"tab\there\"",
    "0",
    "-0",
    "12",
    "-12",
    "1.5",
    "-0.0",
    "1e3",
    "2E-2",
    "01",
    "1.",
    "-",
    "12345678901234567890",
    "99999999999999999999999",
    "1e400",
    "true",
    "false",
    "null",
    "[]",
    "[1,\"a\"]",
    "{}",
    "{\"k\":{\"j\":1}}",
    "\"2020-01-01T10:00:00Z\"",
    "1577872800000",
    "\"1577872800000\"",
    "1577872800000.5",
    "\"42\"",
    "\"4.5\"",
    "\" 7 \"",
    "\"forty\"",
    "nul",
    "tru",
    "\"2020-01-01\"",
    "-7.25e1",
    "0.1",
];
const SPACES: [&str; 5] = ["", " ", "\t", "\r", "  "];

/// A JSON-ish line from generated parts, broken on purpose now and then.
fn event_line(fields: &[(usize, usize, usize)], ending: usize) -> String {
    let mut line = String::from("{");
    for (i, (key, value, space)) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let space = SPACES[*space];
        line.push_str(&format!("{space}\"{}\"{space}:{space}{}{space}", KEYS[*key], VALUES[*value]));
    }
    line.push_str(match ending {
        0..=2 => "}",
        3 => "} ",
        4 => "",
        5 => ",}",
        6 => "}x",
        _ => "}}",
    });
    line
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The fast path for flat events reads every line exactly as serde_json alone does: the
    /// same time, dimension values and metric inputs, or the same error.
    #[test]
    fn flat_events_read_as_serde_json_reads_them(
        lines in prop::collection::vec(
            (prop::collection::vec((0..KEYS.len(), 0..VALUES.len(), 0..SPACES.len()), 0..8), 0usize..8),
            1..12,
        ),
        schemaless in any::<bool>(),
    ) {
        let spec = spec(|s| {
            s["dimensionsSpec"] = if schemaless {
                json!({"dimensions": [], "dimensionExclusions": ["x"]})
            } else {
                json!({"dimensions": ["a", {"type": "long", "name": "n"}, "t\"s"]})
            };
        });
        let mut fast = index_of(&spec);
        let mut serde_only = index_of(&spec);
        for (fields, ending) in &lines {
            let line = event_line(fields, *ending);
            let ours = parse::parse_event_with(&mut fast, line.as_bytes(), true);
            let theirs = parse::parse_event_with(&mut serde_only, line.as_bytes(), false);
            prop_assert_eq!(&ours, &theirs, "{}", line);
            if ours.is_ok() {
                prop_assert_eq!(scratch_text(&fast), scratch_text(&serde_only), "{}", line);
                fast.fold_parsed();
                serde_only.fold_parsed();
            }
        }
        prop_assert_eq!(table(&fast), table(&serde_only));
    }
}

/// A plain reference: a map from (truncated time, dimension values) to metrics.
type Reference = BTreeMap<(i64, Vec<Option<String>>), (i64, Option<i64>, Option<i64>, Option<f64>)>;

/// (time, a, b, v) of one generated event.
type TestEvent = (i64, Option<&'static str>, Option<&'static str>, Option<i64>);

fn reference(events: &[TestEvent]) -> Reference {
    let mut map: Reference = BTreeMap::new();
    for (t, a, b, v) in events {
        let key = (t - t.rem_euclid(3_600_000), vec![a.map(String::from), b.map(String::from)]);
        let entry = map.entry(key).or_insert((0, None, None, None));
        entry.0 += 1;
        if let Some(v) = v {
            entry.1 = Some(entry.1.unwrap_or(0) + v);
            entry.2 = Some(entry.2.map_or(*v, |m| m.min(*v)));
            entry.3 = Some(entry.3.map_or(*v as f64, |m| m.max(*v as f64)));
        }
    }
    map
}

fn event_json(t: i64, a: Option<&str>, b: Option<&str>, v: Option<i64>) -> String {
    let mut e = json!({"ts": t});
    if let Some(a) = a {
        e["a"] = json!(a);
    }
    if let Some(b) = b {
        e["b"] = json!(b);
    }
    if let Some(v) = v {
        e["v"] = json!(v);
    }
    e.to_string()
}

fn rows_as_reference(index: &RollupIndex) -> Reference {
    let mut out = Reference::new();
    let ranks = index.ranks();
    for segment in index.segments(&ranks).values() {
        let (batch, _) = index.record_batch(&segment.rows, &ranks);
        let times =
            batch.column(0).as_any().downcast_ref::<arrow::array::TimestampMillisecondArray>().unwrap();
        let text = |c: usize, r: usize| {
            let col = batch.column(c);
            (!col.is_null(r)).then(|| array_value_to_string(col, r).unwrap())
        };
        for r in 0..batch.num_rows() {
            let key = (times.value(r), vec![text(1, r), text(2, r)]);
            let count = text(3, r).unwrap().parse().unwrap();
            let sum = text(4, r).map(|s| s.parse().unwrap());
            let min = text(5, r).map(|s| s.parse().unwrap());
            let max = text(6, r).map(|s| s.parse().unwrap());
            assert!(out.insert(key, (count, sum, min, max)).is_none(), "rolled-up keys are unique");
        }
    }
    out
}

/// Dimension values: a few, or hundreds (so that ids outgrow a byte while rows are added).
static VALUES_WIDE: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let mut values = vec!["x", "y", "zz", "", "ü"];
    values.extend((0..600).map(|n| &*Box::leak(format!("v{n}").into_boxed_str())));
    values
});

fn arb_events() -> impl Strategy<Value = Vec<TestEvent>> {
    let few = prop::sample::select(VALUES_WIDE[..5].to_vec());
    let many = prop::sample::select(VALUES_WIDE.clone());
    let value = prop::option::weighted(0.9, prop_oneof![1 => few, 2 => many]);
    let time = 1_577_836_800_000i64..1_577_836_800_000 + 3 * 86_400_000;
    prop::collection::vec((time, value.clone(), value, prop::option::of(-1000i64..1000)), 0..1500)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The index agrees with the reference, in any order, and merging split work agrees too.
    #[test]
    fn rollup_matches_the_reference_in_any_order(events in arb_events(), split in 0usize..1500, seed in any::<u64>()) {
        let spec = spec(|_| {});
        let expected = reference(&events);

        let mut shuffled = events.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut whole = index_of(&spec);
        for (t, a, b, v) in &shuffled {
            whole.add(event_json(*t, *a, *b, *v).as_bytes()).unwrap();
        }
        prop_assert_eq!(&rows_as_reference(&whole), &expected);

        let split = split.min(shuffled.len());
        let (first, second) = shuffled.split_at(split);
        let mut left = index_of(&spec);
        let mut right = index_of(&spec);
        for (t, a, b, v) in second {
            right.add(event_json(*t, *a, *b, *v).as_bytes()).unwrap();
        }
        for (t, a, b, v) in first {
            left.add(event_json(*t, *a, *b, *v).as_bytes()).unwrap();
        }
        left.merge(&right);
        prop_assert_eq!(&rows_as_reference(&left), &expected);

        // Split by hour, as parallel workers reading different hours are: rows of hours the
        // left index has none of are appended without a probe, and the merged index still
        // folds every key into its one row.
        let (even, odd): (Vec<TestEvent>, Vec<TestEvent>) =
            shuffled.iter().partition(|(t, ..)| (t / 3_600_000) % 2 == 0);
        let mut left = index_of(&spec);
        let mut right = index_of(&spec);
        for (t, a, b, v) in &even {
            left.add(event_json(*t, *a, *b, *v).as_bytes()).unwrap();
        }
        for (t, a, b, v) in odd.iter().chain(first) {
            right.add(event_json(*t, *a, *b, *v).as_bytes()).unwrap();
        }
        left.merge(&right);
        for (t, a, b, v) in second {
            left.add(event_json(*t, *a, *b, *v).as_bytes()).unwrap();
        }
        let twice: Vec<TestEvent> = events.iter().chain(&events).copied().collect();
        prop_assert_eq!(&rows_as_reference(&left), &reference(&twice));

        // Emptied, as a batch worker empties its index for the next unit, and read again.
        left.clear();
        for (t, a, b, v) in &shuffled {
            left.add(event_json(*t, *a, *b, *v).as_bytes()).unwrap();
        }
        prop_assert_eq!(&rows_as_reference(&left), &expected);
    }
}

#[test]
fn allocated_bytes_count_the_columns_table_and_dictionaries() {
    let mut index = index_of(&spec(|_| {}));
    let empty = index.allocated_bytes();
    let rows = 10_000;
    for i in 0..rows {
        let a = format!("value-{i:05}");
        index.add(event_json(1_577_836_800_000, Some(&a), Some("b"), Some(i)).as_bytes()).unwrap();
    }
    assert_eq!(index.rows(), rows as usize);
    // At least: a key of 3 bytes (a needs 2, b 1), a time, six metrics (count, then five with
    // a validity flag), a table slot, and a's value with its place in the dictionary.
    let least = rows as usize * (3 + 8 + 8 + 5 * 9 + 8 + (11 + 16));
    let bytes = index.allocated_bytes() - empty;
    assert!((least..4 * least).contains(&bytes), "{bytes} bytes for {rows} rows; at least {least}");
}
