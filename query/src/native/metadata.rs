//! segmentMetadata and dataSourceMetadata: what the segments hold, in Druid's shapes.

use std::collections::BTreeSet;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use common::time::{Interval, Period, format_iso};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Query;
use crate::engine::QueryEngine;
use crate::error::{QueryError, invalid};
use crate::granularity::parse_intervals;
use crate::json::JsonColumn;
use crate::table::{DataSourceTable, TIME_COLUMN, merge_intervals};

/// segmentMetadata's `toInclude`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum ToInclude {
    All {},
    None {},
    List { columns: Vec<String> },
}

const ANALYSIS_TYPES: &[&str] = &[
    "cardinality",
    "size",
    "interval",
    "aggregators",
    "timestampSpec",
    "queryGranularity",
    "minmax",
    "rollup",
];

/// Druid's column type names.
fn druid_type(name: &str, data_type: &DataType) -> &'static str {
    if name == TIME_COLUMN {
        return "LONG";
    }
    match data_type {
        DataType::Dictionary(_, _) | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING",
        DataType::Float32 => "FLOAT",
        DataType::Float64 => "DOUBLE",
        _ => "LONG",
    }
}

/// What one column holds over some rows.
#[derive(Debug, Default)]
struct ColumnStats {
    distinct: BTreeSet<String>,
    has_nulls: bool,
    min: Option<Value>,
    max: Option<Value>,
}

fn column_stats(batches: &[RecordBatch], column: &str, is_string: bool) -> Result<ColumnStats, QueryError> {
    let mut stats = ColumnStats::default();
    for batch in batches {
        let Some(array) = batch.column_by_name(column) else {
            stats.has_nulls |= batch.num_rows() > 0;
            continue;
        };
        stats.has_nulls |= array.null_count() > 0;
        let values = JsonColumn::new(array)?;
        for row in 0..array.len() {
            let value = values.value(row);
            if value.is_null() {
                continue;
            }
            if is_string && let Value::String(s) = &value {
                stats.distinct.insert(s.clone());
            }
            let less = |a: &Value, b: &Value| match (a, b) {
                (Value::String(a), Value::String(b)) => a < b,
                (a, b) => a.as_f64().unwrap_or(f64::NAN) < b.as_f64().unwrap_or(f64::NAN),
            };
            if stats.min.as_ref().is_none_or(|m| less(&value, m)) {
                stats.min = Some(value.clone());
            }
            if stats.max.as_ref().is_none_or(|m| less(m, &value)) {
                stats.max = Some(value);
            }
        }
    }
    Ok(stats)
}

pub(super) async fn segment_metadata(engine: &QueryEngine, query: &Query<'_>) -> Result<Value, QueryError> {
    let to_include: ToInclude = query.field("toInclude")?.unwrap_or(ToInclude::All {});
    let merge = query.flag("merge")?;
    let analysis: Vec<String> = query
        .field("analysisTypes")?
        .unwrap_or_else(|| vec!["cardinality".into(), "interval".into(), "minmax".into()]);
    for (i, a) in analysis.iter().enumerate() {
        if !ANALYSIS_TYPES.contains(&a.as_str()) {
            return Err(invalid!(
                "analysisTypes[{i}]: unknown analysis \"{a}\"; expected one of {}",
                ANALYSIS_TYPES.join(", ")
            ));
        }
    }
    let wants = |a: &str| analysis.iter().any(|x| x == a);
    let table = engine.table(&query.data_source).await?;
    let data = table.data_intervals();
    // Without intervals Druid looks at the week before the newest data.
    let intervals = match query.body.get("intervals") {
        None | Some(Value::Null) => match data.last() {
            Some(last) => {
                let week = Period::parse("P1W").map_err(|e| QueryError::Execution(e.to_string()))?;
                vec![Interval { start: week.subtract_from(last.end), end: last.end }]
            }
            None => return Ok(json!([])),
        },
        Some(v) => parse_intervals(v, "intervals")?,
    };
    let schema = table.schema_ref();
    let included: Vec<(String, DataType)> = schema
        .fields()
        .iter()
        .filter(|f| match &to_include {
            ToInclude::All {} => true,
            ToInclude::None {} => false,
            ToInclude::List { columns } => columns.iter().any(|c| c == f.name()),
        })
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();

    let mut analyses = Vec::new();
    for (id, part) in table.split_by_segment() {
        let spans: Vec<Interval> = part.data_intervals();
        if !spans.iter().any(|s| intervals.iter().any(|q| q.overlaps(s))) {
            continue;
        }
        analyses.push(analyse(&id, &part, &included, &wants).await?);
    }
    if merge && !analyses.is_empty() {
        let merged = analyses.into_iter().reduce(merge_analyses).unwrap_or_default();
        return Ok(Value::Array(vec![finish(merged, &wants)]));
    }
    Ok(Value::Array(analyses.into_iter().map(|a| finish(a, &wants)).collect()))
}

/// One segment's analysis before it is written out.
#[derive(Debug, Default)]
struct Analysis {
    id: String,
    intervals: Vec<Interval>,
    columns: Vec<(String, &'static str, ColumnStats)>,
    size: u64,
    rows: usize,
    aggregators: Map<String, Value>,
    rollup: Option<bool>,
    query_granularity: Option<String>,
}

async fn analyse(
    id: &str,
    part: &DataSourceTable,
    included: &[(String, DataType)],
    wants: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Analysis, QueryError> {
    let need_rows = wants("cardinality") || wants("minmax");
    let batches = if need_rows && !included.is_empty() {
        part.batches(None, None, None).await.map_err(|e| QueryError::Storage(e.strip_backtrace()))?
    } else {
        Vec::new()
    };
    let mut columns = Vec::new();
    for (name, data_type) in included {
        let kind = druid_type(name, data_type);
        let stats =
            if need_rows { column_stats(&batches, name, kind == "STRING")? } else { ColumnStats::default() };
        columns.push((name.clone(), kind, stats));
    }
    let mut aggregators = Map::new();
    let (mut rollup, mut granularity, mut size, mut rows) = (None, None, 0, 0);
    for p in part.parts() {
        for m in &p.meta.description.metrics {
            aggregators.insert(m.name.clone(), serde_json::to_value(m).unwrap_or(Value::Null));
        }
        rollup = Some(p.meta.description.rollup);
        granularity = Some(p.meta.description.query_granularity.clone());
        size += p.record.bytes;
        rows += p.record.rows as usize;
    }
    if let Some(live) = part.live() {
        for m in &live.metrics {
            aggregators.insert(m.name.clone(), serde_json::to_value(m).unwrap_or(Value::Null));
        }
        rows += live.rows();
    }
    Ok(Analysis {
        id: id.to_string(),
        intervals: if part.parts().is_empty() {
            part.data_intervals()
        } else {
            part.parts().iter().map(|p| p.record.interval).collect()
        },
        columns,
        size,
        rows,
        aggregators,
        rollup,
        query_granularity: granularity,
    })
}

fn merge_analyses(mut a: Analysis, b: Analysis) -> Analysis {
    a.id = "merged".to_string();
    a.intervals.extend(b.intervals);
    a.intervals = merge_intervals(std::mem::take(&mut a.intervals));
    for (name, kind, stats) in b.columns {
        match a.columns.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, _, existing)) => {
                existing.distinct.extend(stats.distinct);
                existing.has_nulls |= stats.has_nulls;
                let pick = |x: Option<Value>, y: Option<Value>, want_min: bool| match (x, y) {
                    (Some(x), Some(y)) => {
                        let x_first = match (&x, &y) {
                            (Value::String(p), Value::String(q)) => p <= q,
                            _ => x.as_f64().unwrap_or(f64::NAN) <= y.as_f64().unwrap_or(f64::NAN),
                        };
                        Some(if x_first == want_min { x } else { y })
                    }
                    (x, y) => x.or(y),
                };
                existing.min = pick(existing.min.take(), stats.min, true);
                existing.max = pick(existing.max.take(), stats.max, false);
            }
            None => a.columns.push((name, kind, stats)),
        }
    }
    a.size += b.size;
    a.rows += b.rows;
    a.aggregators.extend(b.aggregators);
    a.rollup = match (a.rollup, b.rollup) {
        (Some(x), Some(y)) if x == y => Some(x),
        (x, None) => x,
        (None, y) => y,
        _ => None,
    };
    if a.query_granularity != b.query_granularity {
        a.query_granularity = None;
    }
    a
}

fn finish(a: Analysis, wants: &(dyn Fn(&str) -> bool + Sync)) -> Value {
    let mut columns = Map::new();
    for (name, kind, stats) in a.columns {
        let is_string = kind == "STRING";
        let minmax = wants("minmax") && name != TIME_COLUMN;
        columns.insert(
            name,
            json!({
                "typeSignature": kind,
                "type": kind,
                "hasMultipleValues": false,
                "hasNulls": stats.has_nulls,
                "size": 0,
                "cardinality": if is_string && wants("cardinality") { Value::from(stats.distinct.len()) } else { Value::Null },
                "minValue": if minmax { stats.min.unwrap_or(Value::Null) } else { Value::Null },
                "maxValue": if minmax { stats.max.unwrap_or(Value::Null) } else { Value::Null },
                "errorMessage": null,
            }),
        );
    }
    json!({
        "id": a.id,
        "intervals": if wants("interval") {
            Value::from(a.intervals.iter().map(|i| format!("{}/{}", format_iso(i.start), format_iso(i.end))).collect::<Vec<_>>())
        } else { Value::Null },
        "columns": columns,
        "size": if wants("size") { a.size } else { 0 },
        "numRows": a.rows,
        "aggregators": if wants("aggregators") { Value::Object(a.aggregators) } else { Value::Null },
        "timestampSpec": null,
        "queryGranularity": if wants("queryGranularity") {
            a.query_granularity.map_or(Value::Null, |g| json!({"type": g}))
        } else { Value::Null },
        "rollup": if wants("rollup") { a.rollup.map_or(Value::Null, Value::from) } else { Value::Null },
    })
}

pub(super) async fn data_source_metadata(
    engine: &QueryEngine,
    query: &Query<'_>,
) -> Result<Value, QueryError> {
    let table = engine.table(&query.data_source).await?;
    Ok(match table.max_time() {
        Some(t) => json!([{"timestamp": format_iso(t), "result": {"maxIngestedEventTime": format_iso(t)}}]),
        None => json!([]),
    })
}
