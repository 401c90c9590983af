//! Native query parts as DataFusion expressions: filters, aggregators, post-aggregators and
//! having clauses. A column the table lacks reads as all nulls, as in Druid.

use arrow::datatypes::{DataType, Schema};
use common::time::Interval;
use datafusion::common::{Column, ScalarValue};
use datafusion::functions::expr_fn::{greatest, least, lower, power, regexp_like, strpos};
use datafusion::functions_aggregate::expr_fn::{count, max, min, sum};
use datafusion::logical_expr::{Expr, ExprFunctionExt, cast, lit, when};
use serde_json::Value;

use super::model::{Aggregator, Filter, Having, PostAggregator, SearchQuery};
use crate::error::{QueryError, invalid};
use crate::table::TIME_COLUMN;

/// A column by its exact name (dots and quotes are part of names), or a typed null when the
/// table has no such column.
/// How a bound filter turns one of its bound strings into a literal of its ordering.
type BoundLiteral<'a> = dyn Fn(&str) -> Result<Expr, QueryError> + 'a;

pub fn column(schema: &Schema, name: &str) -> Expr {
    match schema.field_with_name(name) {
        Ok(_) => Expr::Column(Column::from_name(name)),
        Err(_) => lit(ScalarValue::Utf8(None)),
    }
}

fn column_type(schema: &Schema, name: &str) -> Option<DataType> {
    schema.field_with_name(name).ok().map(|f| match f.data_type() {
        DataType::Dictionary(_, v) => v.as_ref().clone(),
        t => t.clone(),
    })
}

fn is_numeric(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Timestamp(..))
}

/// A JSON scalar as the text Druid compares dimension values with.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn no_extraction(field: &str, extraction_fn: &Option<Value>) -> Result<(), QueryError> {
    match extraction_fn {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(invalid!("{field}.extractionFn: extraction functions are not supported")),
    }
}

/// `column` equals a JSON scalar: numerically for numeric columns, as text otherwise; null
/// matches missing values.
fn equals(schema: &Schema, name: &str, value: &Value) -> Expr {
    let target = column(schema, name);
    let Some(value) = text(value) else {
        return target.is_null();
    };
    match column_type(schema, name) {
        Some(t) if is_numeric(&t) => match value.parse::<f64>() {
            Ok(v) => cast(numeric_column(schema, name), DataType::Float64).eq(lit(v)),
            Err(_) => lit(false),
        },
        Some(_) => target.eq(lit(value)),
        None => lit(false),
    }
}

/// A time or numeric column as a number (timestamps as epoch millis).
fn numeric_column(schema: &Schema, name: &str) -> Expr {
    match column_type(schema, name) {
        Some(DataType::Timestamp(..)) => cast(column(schema, name), DataType::Int64),
        _ => column(schema, name),
    }
}

/// The rows a filter keeps.
pub fn filter(f: &Filter, schema: &Schema, field: &str) -> Result<Expr, QueryError> {
    Ok(match f {
        Filter::Selector { dimension, value, extraction_fn } => {
            no_extraction(field, extraction_fn)?;
            equals(schema, dimension, value.as_ref().unwrap_or(&Value::Null))
        }
        Filter::Equals { column: name, match_value } => equals(schema, name, match_value),
        Filter::Null { column: name } => column(schema, name).is_null(),
        Filter::In { dimension, values, extraction_fn } => {
            no_extraction(field, extraction_fn)?;
            values.iter().map(|v| equals(schema, dimension, v)).reduce(Expr::or).unwrap_or_else(|| lit(false))
        }
        Filter::Bound { dimension, lower, upper, lower_strict, upper_strict, ordering, extraction_fn } => {
            no_extraction(field, extraction_fn)?;
            let ordering = match ordering {
                None | Some(Value::Null) => "lexicographic".to_string(),
                Some(Value::String(s)) => s.to_ascii_lowercase(),
                Some(Value::Object(o)) => {
                    o.get("type").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase()
                }
                Some(other) => return Err(invalid!("{field}.ordering: expected a string, got {other}")),
            };
            let (target, bound): (Expr, Box<BoundLiteral<'_>>) = match ordering.as_str() {
                "lexicographic" => (
                    cast(column(schema, dimension), DataType::Utf8),
                    Box::new(|s: &str| Ok(lit(s.to_string()))),
                ),
                "numeric" => (
                    cast(numeric_column(schema, dimension), DataType::Float64),
                    Box::new(|s: &str| {
                        s.parse::<f64>().map(lit).map_err(|_| {
                            invalid!("{field}: bound \"{s}\" is not a number, as numeric ordering requires")
                        })
                    }),
                ),
                "strlen" => (
                    cast(
                        datafusion::functions::expr_fn::character_length(cast(
                            column(schema, dimension),
                            DataType::Utf8,
                        )),
                        DataType::Float64,
                    ),
                    Box::new(|s: &str| Ok(lit(s.chars().count() as f64))),
                ),
                other => {
                    return Err(invalid!(
                        "{field}.ordering: unknown ordering \"{other}\"; expected lexicographic, numeric or strlen"
                    ));
                }
            };
            let mut conditions = Vec::new();
            if let Some(l) = lower.as_ref().and_then(text) {
                let l = bound(&l)?;
                conditions.push(if *lower_strict { target.clone().gt(l) } else { target.clone().gt_eq(l) });
            }
            if let Some(u) = upper.as_ref().and_then(text) {
                let u = bound(&u)?;
                conditions.push(if *upper_strict { target.clone().lt(u) } else { target.clone().lt_eq(u) });
            }
            conditions.into_iter().reduce(Expr::and).unwrap_or_else(|| target.is_not_null())
        }
        Filter::Regex { dimension, pattern, extraction_fn } => {
            no_extraction(field, extraction_fn)?;
            regex::Regex::new(pattern)
                .map_err(|e| invalid!("{field}.pattern: invalid regular expression: {e}"))?;
            regexp_like(cast(column(schema, dimension), DataType::Utf8), lit(pattern.clone()), None)
        }
        Filter::Like { dimension, pattern, escape, extraction_fn } => {
            no_extraction(field, extraction_fn)?;
            let escape = match escape.as_deref() {
                None | Some("") => None,
                Some(e) if e.chars().count() == 1 => e.chars().next(),
                Some(e) => return Err(invalid!("{field}.escape: \"{e}\" must be a single character")),
            };
            Expr::Like(datafusion::logical_expr::expr::Like::new(
                false,
                Box::new(cast(column(schema, dimension), DataType::Utf8)),
                Box::new(lit(pattern.clone())),
                escape,
                false,
            ))
        }
        Filter::Search { dimension, query, extraction_fn } => {
            no_extraction(field, extraction_fn)?;
            let target = cast(column(schema, dimension), DataType::Utf8);
            let contains = |value: &str, case_sensitive: bool| {
                if case_sensitive {
                    strpos(target.clone(), lit(value.to_string())).gt(lit(0i32))
                } else {
                    strpos(lower(target.clone()), lit(value.to_lowercase())).gt(lit(0i32))
                }
            };
            match query {
                SearchQuery::Contains { value, case_sensitive } => contains(value, *case_sensitive),
                SearchQuery::InsensitiveContains { value } => contains(value, false),
                SearchQuery::Fragment { values, case_sensitive } => values
                    .iter()
                    .map(|v| contains(v, *case_sensitive))
                    .reduce(Expr::and)
                    .unwrap_or_else(|| lit(true)),
            }
        }
        Filter::Interval { dimension, intervals, extraction_fn } => {
            no_extraction(field, extraction_fn)?;
            let intervals = crate::granularity::parse_intervals(intervals, &format!("{field}.intervals"))?;
            let target = numeric_column(schema, dimension);
            interval_expr(target, &intervals)
        }
        Filter::And { fields } => fields
            .iter()
            .enumerate()
            .map(|(i, f)| filter(f, schema, &format!("{field}.fields[{i}]")))
            .reduce(|a, b| Ok(a?.and(b?)))
            .unwrap_or_else(|| Ok(lit(true)))?,
        Filter::Or { fields } => fields
            .iter()
            .enumerate()
            .map(|(i, f)| filter(f, schema, &format!("{field}.fields[{i}]")))
            .reduce(|a, b| Ok(a?.or(b?)))
            .unwrap_or_else(|| Ok(lit(false)))?,
        // Rows where the inner filter is unknown (a null value) are kept, as classic Druid does.
        Filter::Not { field: inner } => filter(inner, schema, &format!("{field}.field"))?.is_not_true(),
        Filter::True {} => lit(true),
        Filter::False {} => lit(false),
    })
}

/// `target` (epoch millis) within any of the intervals.
pub fn interval_expr(target: Expr, intervals: &[Interval]) -> Expr {
    intervals
        .iter()
        .map(|i| target.clone().gt_eq(lit(i.start)).and(target.clone().lt(lit(i.end))))
        .reduce(Expr::or)
        .unwrap_or_else(|| lit(false))
}

/// `__time` within any of the intervals, in the form the table prunes segments with.
pub fn time_filter(intervals: &[Interval]) -> Expr {
    let time = Expr::Column(Column::from_name(TIME_COLUMN));
    let at = |t: i64| lit(ScalarValue::TimestampMillisecond(Some(t), Some("UTC".into())));
    intervals
        .iter()
        .map(|i| time.clone().gt_eq(at(i.start)).and(time.clone().lt(at(i.end))))
        .reduce(Expr::or)
        .unwrap_or_else(|| lit(false))
}

/// What an aggregator yields over no rows, as Druid fills empty timeseries buckets: 0 for
/// counts and sums, null for minima and maxima.
pub fn empty_value(agg: &Aggregator) -> Value {
    match agg {
        Aggregator::Count { .. } | Aggregator::LongSum { .. } => Value::from(0),
        Aggregator::DoubleSum { .. } | Aggregator::FloatSum { .. } => Value::from(0.0),
        Aggregator::Filtered { aggregator, .. } => empty_value(aggregator),
        _ => Value::Null,
    }
}

/// An aggregator as an aggregate expression named as its output.
pub fn aggregate(agg: &Aggregator, schema: &Schema, field: &str) -> Result<Expr, QueryError> {
    Ok(aggregate_unnamed(agg, schema, field)?.alias(agg.name()))
}

fn aggregate_unnamed(agg: &Aggregator, schema: &Schema, field: &str) -> Result<Expr, QueryError> {
    let input = |name: &str, t: DataType| cast(numeric_column(schema, name), t);
    // Sums of no rows (or only nulls) are 0, as in Druid.
    let zero_if_null = |e: Expr, zero: Expr| datafusion::functions::expr_fn::coalesce(vec![e, zero]);
    Ok(match agg {
        Aggregator::Count { .. } => count(lit(1i64)),
        Aggregator::LongSum { field_name, .. } => {
            zero_if_null(sum(input(field_name, DataType::Int64)), lit(0i64))
        }
        Aggregator::DoubleSum { field_name, .. } => {
            zero_if_null(sum(input(field_name, DataType::Float64)), lit(0f64))
        }
        Aggregator::FloatSum { field_name, .. } => {
            zero_if_null(sum(input(field_name, DataType::Float64)), lit(0f64))
        }
        Aggregator::LongMin { field_name, .. } => min(input(field_name, DataType::Int64)),
        Aggregator::LongMax { field_name, .. } => max(input(field_name, DataType::Int64)),
        Aggregator::DoubleMin { field_name, .. } | Aggregator::FloatMin { field_name, .. } => {
            min(input(field_name, DataType::Float64))
        }
        Aggregator::DoubleMax { field_name, .. } | Aggregator::FloatMax { field_name, .. } => {
            max(input(field_name, DataType::Float64))
        }
        Aggregator::Filtered { filter: f, aggregator, .. } => {
            let predicate = filter(f, schema, &format!("{field}.filter"))?;
            let inner = aggregate_unnamed(aggregator, schema, &format!("{field}.aggregator"))?;
            with_filter(inner, predicate, field)?
        }
    })
}

/// Applies a FILTER clause to the aggregate inside `expr` (which may be wrapped in coalesce).
fn with_filter(expr: Expr, predicate: Expr, field: &str) -> Result<Expr, QueryError> {
    match expr {
        Expr::AggregateFunction(_) => {
            expr.filter(predicate).build().map_err(|e| invalid!("{field}: {}", e.strip_backtrace()))
        }
        Expr::ScalarFunction(mut f) => {
            let first = f.args.remove(0);
            f.args.insert(0, with_filter(first, predicate, field)?);
            Ok(Expr::ScalarFunction(f))
        }
        other => Err(invalid!("{field}: cannot filter the aggregate {other}")),
    }
}

/// A post-aggregator over the aggregated columns (and earlier post-aggregators), named by
/// `available` (the columns present when it runs).
pub fn post_aggregate(pa: &PostAggregator, available: &[String], field: &str) -> Result<Expr, QueryError> {
    let value = post_value(pa, available, field)?;
    match pa.name() {
        Some(name) => Ok(value.alias(name)),
        None => Err(invalid!("{field}.name: a top-level post-aggregator needs a name")),
    }
}

fn post_value(pa: &PostAggregator, available: &[String], field: &str) -> Result<Expr, QueryError> {
    let operands = |fields: &[PostAggregator]| -> Result<Vec<Expr>, QueryError> {
        fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                Ok(cast(post_value(f, available, &format!("{field}.fields[{i}]"))?, DataType::Float64))
            })
            .collect()
    };
    Ok(match pa {
        PostAggregator::FieldAccess { field_name, .. } => {
            if !available.iter().any(|a| a == field_name) {
                return Err(invalid!(
                    "{field}.fieldName: \"{field_name}\" is not an aggregator or earlier post-aggregator (known: {})",
                    available.join(", ")
                ));
            }
            Expr::Column(Column::from_name(field_name))
        }
        PostAggregator::Constant { value, .. } => lit(*value),
        PostAggregator::Arithmetic { function, fields, .. } => {
            let values = operands(fields)?;
            if values.is_empty() {
                return Err(invalid!("{field}.fields: arithmetic needs at least one field"));
            }
            let combine: fn(Expr, Expr) -> Expr = match function.as_str() {
                "+" => |a, b| a + b,
                "-" => |a, b| a - b,
                "*" => |a, b| a * b,
                // Druid's "/" yields 0 when dividing by 0; "quotient" is plain division.
                "/" => |a: Expr, b: Expr| {
                    when(b.clone().eq(lit(0f64)), lit(0f64)).otherwise(a / b).unwrap_or_else(|_| lit(0f64))
                },
                "quotient" => |a, b| a / b,
                "pow" => |a, b| power(a, b),
                other => {
                    return Err(invalid!(
                        "{field}.fn: unknown arithmetic function \"{other}\"; expected +, -, *, /, quotient or pow"
                    ));
                }
            };
            values.into_iter().reduce(combine).unwrap_or_else(|| lit(0f64))
        }
        PostAggregator::DoubleGreatest { fields, .. } => greatest(operands(fields)?),
        PostAggregator::DoubleLeast { fields, .. } => least(operands(fields)?),
        PostAggregator::LongGreatest { fields, .. } => cast(greatest(operands(fields)?), DataType::Int64),
        PostAggregator::LongLeast { fields, .. } => cast(least(operands(fields)?), DataType::Int64),
    })
}

/// A having clause over the output row.
pub fn having(h: &Having, schema: &Schema, field: &str) -> Result<Expr, QueryError> {
    let metric = |name: &str| -> Result<Expr, QueryError> {
        if schema.field_with_name(name).is_err() {
            return Err(invalid!("{field}.aggregation: \"{name}\" is not an output column"));
        }
        Ok(cast(Expr::Column(Column::from_name(name)), DataType::Float64))
    };
    Ok(match h {
        Having::GreaterThan { aggregation, value } => metric(aggregation)?.gt(lit(*value)),
        Having::LessThan { aggregation, value } => metric(aggregation)?.lt(lit(*value)),
        Having::EqualTo { aggregation, value } => metric(aggregation)?.eq(lit(*value)),
        Having::DimSelector { dimension, value } => {
            equals(schema, dimension, value.as_ref().unwrap_or(&Value::Null))
        }
        Having::Filter { filter: f } => filter(f, schema, &format!("{field}.filter"))?,
        Having::And { having_specs } => combine_having(having_specs, schema, field, Expr::and, true)?,
        Having::Or { having_specs } => combine_having(having_specs, schema, field, Expr::or, false)?,
        Having::Not { having_spec } => {
            having(having_spec, schema, &format!("{field}.havingSpec"))?.is_not_true()
        }
        Having::Always {} => lit(true),
        Having::Never {} => lit(false),
    })
}

fn combine_having(
    specs: &[Having],
    schema: &Schema,
    field: &str,
    join: fn(Expr, Expr) -> Expr,
    empty: bool,
) -> Result<Expr, QueryError> {
    let mut parts = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        parts.push(having(spec, schema, &format!("{field}.havingSpecs[{i}]"))?);
    }
    Ok(parts.into_iter().reduce(join).unwrap_or_else(|| lit(empty)))
}
