//! Druid's native queries (timeBoundary, timeseries, topN, groupBy, scan, segmentMetadata,
//! dataSourceMetadata): parsed from Druid's JSON, planned as DataFusion DataFrames over a
//! snapshot of the dataSource, answered in Druid's response shapes.

mod metadata;
pub mod model;
mod translate;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use common::spec::kind_of;
use common::time::{Interval, format_iso};
use datafusion::common::Column;
use datafusion::dataframe::DataFrame;
use datafusion::functions_aggregate::expr_fn::{count, max, min};
use datafusion::logical_expr::{Expr, SortExpr, cast, lit};
use datafusion::prelude::SessionContext;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use self::model::{
    Aggregating, Aggregator, Context, DataSourceRef, DimensionRef, Filter, Having, LimitSpec, OrderByColumn,
    PostAggregator, TopNMetric, TopNMetricSpec,
};
use crate::codes::{CodePart, ColumnCodes, code_column, pack_expr};
use crate::engine::QueryEngine;
use crate::error::{QueryError, invalid};
use crate::granularity::{QueryGranularity, floor_expr, parse_intervals};
use crate::json;
use crate::table::{DataSourceTable, TIME_COLUMN, merge_intervals};

/// The column holding each row's time bucket while a query runs.
const BUCKET: &str = "__bucket";

/// A result row: its time bucket and its columns without the bucket.
type BucketRow = (i64, Map<String, Value>);

/// The rows a granularity-`all` timeseries matched, so `skipEmptyBuckets` can drop an empty one.
const ROWS_MATCHED: &str = "__rows_matched";

/// Druid's default for the most events one scan result object holds.
const DEFAULT_SCAN_BATCH_SIZE: usize = 20_480;

/// The query types braid answers.
const QUERY_TYPES: &str =
    "timeBoundary, timeseries, topN, groupBy, scan, segmentMetadata, dataSourceMetadata";

/// Runs one native query.
pub async fn run(engine: &QueryEngine, body: &Value) -> Result<Value, QueryError> {
    let query = Query::parse(body)?;
    match query.query_type.as_str() {
        "timeBoundary" => time_boundary(engine, &query).await,
        "timeseries" => timeseries(engine, &query).await,
        "topN" => top_n(engine, &query).await,
        "groupBy" => group_by(engine, &query).await,
        "scan" => scan(engine, &query).await,
        "segmentMetadata" => metadata::segment_metadata(engine, &query).await,
        "dataSourceMetadata" => metadata::data_source_metadata(engine, &query).await,
        other => Err(invalid!("queryType: unknown query type \"{other}\"; expected one of {QUERY_TYPES}")),
    }
}

/// A query's JSON object with the fields every type shares read out.
pub(crate) struct Query<'a> {
    pub(crate) body: &'a Map<String, Value>,
    pub(crate) query_type: String,
    pub(crate) data_source: String,
    pub(crate) context: Context,
}

impl<'a> Query<'a> {
    fn parse(body: &'a Value) -> Result<Self, QueryError> {
        let Some(obj) = body.as_object() else {
            return Err(invalid!("query: expected a JSON object, got {}", kind_of(body)));
        };
        let mut query =
            Query { body: obj, query_type: String::new(), data_source: String::new(), context: Map::new() };
        query.query_type = query.required("queryType")?;
        let data_source: DataSourceRef = query.required("dataSource")?;
        query.data_source = match data_source {
            DataSourceRef::Name(name) => name,
            DataSourceRef::Typed(t) if t.kind == "table" => {
                t.name.ok_or_else(|| invalid!("dataSource.name: missing; a table dataSource needs a name"))?
            }
            DataSourceRef::Typed(t) => {
                return Err(invalid!(
                    "dataSource.type: \"{}\" dataSources are not supported; use \"table\"",
                    t.kind
                ));
            }
        };
        query.context = query.field("context")?.unwrap_or_default();
        Ok(query)
    }

    /// An optional field, deserialized; errors name the path inside it.
    pub(crate) fn field<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, QueryError> {
        match self.body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_path_to_error::deserialize(value).map(Some).map_err(|e| {
                let path = e.path().to_string();
                let at = match path.as_str() {
                    "." => key.to_string(),
                    p if p.starts_with('[') => format!("{key}{p}"),
                    p => format!("{key}.{p}"),
                };
                invalid!("{at}: {}", e.inner())
            }),
        }
    }

    /// An optional boolean field (`false` when absent), read as leniently as Druid does.
    pub(crate) fn flag(&self, key: &str) -> Result<bool, QueryError> {
        match self.body.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(value) => model::flag(value).map_err(|e| invalid!("{key}: {e}")),
        }
    }

    /// A required field.
    pub(crate) fn required<T: DeserializeOwned>(&self, key: &str) -> Result<T, QueryError> {
        let what = if self.query_type.is_empty() { "every" } else { &self.query_type };
        self.field(key)?.ok_or_else(|| invalid!("{key}: missing; {what} query requires it"))
    }

    /// `intervals`, required.
    pub(crate) fn intervals(&self) -> Result<Vec<Interval>, QueryError> {
        match self.body.get("intervals") {
            None | Some(Value::Null) => {
                Err(invalid!("intervals: missing; a {} query requires it", self.query_type))
            }
            Some(value) => parse_intervals(value, "intervals"),
        }
    }

    fn granularity(&self) -> Result<QueryGranularity, QueryError> {
        match self.body.get("granularity") {
            None | Some(Value::Null) => Ok(QueryGranularity::All),
            Some(value) => QueryGranularity::from_json(value, "granularity"),
        }
    }

    fn context_flag(&self, key: &str) -> bool {
        match self.context.get(key) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        }
    }

    /// The rows the query reads: its intervals and its filter.
    fn predicate(&self, table: &DataSourceTable, intervals: &[Interval]) -> Result<Expr, QueryError> {
        let mut predicate = translate::time_filter(intervals);
        if let Some(filter) = self.field::<Filter>("filter")? {
            predicate = predicate.and(translate::filter(&filter, &table.schema_ref(), "filter")?);
        }
        Ok(predicate)
    }
}

pub(crate) fn df_error(e: datafusion::error::DataFusionError) -> QueryError {
    QueryError::from_datafusion(e)
}

/// A session and the table as a DataFrame.
fn read(
    engine: &QueryEngine,
    table: &Arc<DataSourceTable>,
) -> Result<(SessionContext, DataFrame), QueryError> {
    let ctx = engine.session();
    let df = ctx.read_table(Arc::clone(table) as _).map_err(df_error)?;
    Ok((ctx, df))
}

fn name(column: &str) -> Expr {
    Expr::Column(Column::from_name(column))
}

/// The aggregators and post-aggregators of a query, checked.
struct Aggregation {
    aggregators: Vec<Aggregator>,
    post: Vec<PostAggregator>,
}

impl Aggregation {
    fn parse(query: &Query) -> Result<Self, QueryError> {
        let Aggregating { aggregations, post_aggregations } = Aggregating {
            aggregations: query.field("aggregations")?.unwrap_or_default(),
            post_aggregations: query.field("postAggregations")?.unwrap_or_default(),
        };
        let mut seen = BTreeSet::new();
        for (i, a) in aggregations.iter().enumerate() {
            if !seen.insert(a.name().to_string()) {
                return Err(invalid!("aggregations[{i}].name: \"{}\" is used twice", a.name()));
            }
        }
        Ok(Self { aggregators: aggregations, post: post_aggregations })
    }

    fn exprs(&self, table: &DataSourceTable) -> Result<Vec<Expr>, QueryError> {
        let schema = table.schema_ref();
        self.aggregators
            .iter()
            .enumerate()
            .map(|(i, a)| translate::aggregate(a, &schema, &format!("aggregations[{i}]")))
            .collect()
    }

    /// Adds the post-aggregators as columns, each able to use the ones before it.
    fn apply_post(&self, mut df: DataFrame) -> Result<DataFrame, QueryError> {
        let mut available: Vec<String> = self.aggregators.iter().map(|a| a.name().to_string()).collect();
        for (i, pa) in self.post.iter().enumerate() {
            let expr = translate::post_aggregate(pa, &available, &format!("postAggregations[{i}]"))?;
            let out = pa.name().unwrap_or_default().to_string();
            let mut columns: Vec<Expr> =
                df.schema().fields().iter().filter(|f| f.name() != &out).map(|f| name(f.name())).collect();
            columns.push(expr);
            df = df.select(columns).map_err(df_error)?;
            available.push(out);
        }
        Ok(df)
    }

    /// Output names of aggregators then post-aggregators.
    fn output_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.aggregators.iter().map(|a| a.name().to_string()).collect();
        for pa in &self.post {
            let n = pa.name().unwrap_or_default().to_string();
            if !names.contains(&n) {
                names.push(n);
            }
        }
        names
    }

    fn has_output(&self, column: &str) -> bool {
        self.output_names().iter().any(|n| n == column)
    }
}

/// The string columns whose codes a query grouping on `dimensions` can group by.
fn coded_columns(dimensions: &[DimensionRef]) -> Vec<&str> {
    dimensions.iter().filter(|d| d.is_plain()).map(DimensionRef::column).collect()
}

/// A group key of codes, turned back into a dimension's values after the aggregation.
struct CodedKey {
    key: String,
    output: String,
    codes: Arc<ColumnCodes>,
    part: CodePart,
}

/// The group keys of plain dimensions: their codes where the table offers them (two coded
/// dimensions packed into one integer, the cheapest key to group on), noted in `coded` for
/// [`decode_groups`]; the values of the others.
fn plain_group_keys(
    table: &DataSourceTable,
    schema: &arrow::datatypes::Schema,
    dimensions: &[&DimensionRef],
    coded: &mut Vec<CodedKey>,
) -> Vec<Expr> {
    let with_codes: Vec<(&DimensionRef, &Arc<ColumnCodes>)> =
        dimensions.iter().filter_map(|d| Some((*d, table.codes_of(d.column())?))).collect();
    let mut keys = Vec::new();
    if let [(high, high_codes), (low, low_codes)] = with_codes.as_slice() {
        let key = format!("{}|{}", code_column(high.output_name()), low.output_name());
        let pair = pack_expr(name(&code_column(high.column())), name(&code_column(low.column())));
        keys.push(pair.alias(&key));
        for (d, codes, part) in [(high, high_codes, CodePart::High), (low, low_codes, CodePart::Low)] {
            let output = d.output_name().to_string();
            coded.push(CodedKey { key: key.clone(), output, codes: Arc::clone(codes), part });
        }
    } else {
        for (d, codes) in &with_codes {
            let output = d.output_name().to_string();
            keys.push(name(&code_column(d.column())).alias(&output));
            coded.push(CodedKey {
                key: output.clone(),
                output,
                codes: Arc::clone(codes),
                part: CodePart::Whole,
            });
        }
    }
    for d in dimensions.iter().filter(|d| table.codes_of(d.column()).is_none()) {
        keys.push(translate::column(schema, d.column()).alias(d.output_name()));
    }
    keys
}

/// The aggregated rows with each coded group key turned back into its dimensions' values.
fn decode_groups(df: DataFrame, coded: &[CodedKey]) -> Result<DataFrame, QueryError> {
    if coded.is_empty() {
        return Ok(df);
    }
    let mut columns: Vec<Expr> = Vec::new();
    for field in df.schema().fields() {
        let decoded: Vec<&CodedKey> = coded.iter().filter(|c| &c.key == field.name()).collect();
        if decoded.is_empty() {
            columns.push(name(field.name()));
        }
        for c in decoded {
            columns.push(c.codes.decode_expr(name(&c.key), c.part).alias(&c.output));
        }
    }
    df.select(columns).map_err(df_error)
}

/// The bucket column for a granularity, or none for `all`.
fn bucket_expr(granularity: &QueryGranularity) -> Option<Expr> {
    floor_expr(name(TIME_COLUMN), granularity).map(|e| cast(e, DataType::Int64).alias(BUCKET))
}

async fn collect(df: DataFrame) -> Result<Vec<RecordBatch>, QueryError> {
    df.collect().await.map_err(df_error)
}

/// Where rows overlap the query intervals: nothing at all means an empty response.
fn covered(table: &DataSourceTable, intervals: &[Interval]) -> Vec<Interval> {
    let data = table.data_extents();
    let overlaps = intervals.iter().flat_map(|q| data.iter().filter_map(move |d| q.intersect(d))).collect();
    merge_intervals(overlaps)
}

/// Rows of result batches as (bucket, object without the bucket column).
fn rows_by_bucket(batches: &[RecordBatch], default_bucket: i64) -> Result<Vec<BucketRow>, QueryError> {
    let mut rows = Vec::new();
    for batch in batches {
        let columns = json::columns(batch)?;
        let bucket = batch.schema().index_of(BUCKET).ok();
        for row in 0..batch.num_rows() {
            let t = bucket.and_then(|b| columns[b].millis(row)).unwrap_or(default_bucket);
            rows.push((t, json::object(batch, &columns, row, &[BUCKET])));
        }
    }
    Ok(rows)
}

async fn time_boundary(engine: &QueryEngine, query: &Query<'_>) -> Result<Value, QueryError> {
    let bound: Option<String> = query.field("bound")?;
    if let Some(b) = bound.as_deref().filter(|b| *b != "minTime" && *b != "maxTime") {
        return Err(invalid!("bound: unknown bound \"{b}\"; expected minTime or maxTime"));
    }
    let intervals = match query.body.get("intervals") {
        None | Some(Value::Null) => vec![Interval { start: i64::MIN, end: i64::MAX }],
        Some(v) => parse_intervals(v, "intervals")?,
    };
    let table = Arc::new(engine.table(&query.data_source).await?);
    let predicate = query.predicate(&table, &intervals)?;
    let (_ctx, df) = read(engine, &table)?;
    let time = cast(name(TIME_COLUMN), DataType::Int64);
    let df = df
        .filter(predicate)
        .and_then(|df| df.aggregate(vec![], vec![min(time.clone()).alias("min"), max(time).alias("max")]))
        .map_err(df_error)?;
    let rows = rows_by_bucket(&collect(df).await?, 0)?;
    let Some((_, row)) = rows.into_iter().next() else { return Ok(json!([])) };
    let (Some(min), Some(max)) =
        (row.get("min").and_then(Value::as_i64), row.get("max").and_then(Value::as_i64))
    else {
        return Ok(json!([]));
    };
    let (timestamp, result) = match bound.as_deref() {
        Some("minTime") => (min, json!({"minTime": format_iso(min)})),
        Some(_) => (max, json!({"maxTime": format_iso(max)})),
        None => (min, json!({"minTime": format_iso(min), "maxTime": format_iso(max)})),
    };
    Ok(json!([{"timestamp": format_iso(timestamp), "result": result}]))
}

async fn timeseries(engine: &QueryEngine, query: &Query<'_>) -> Result<Value, QueryError> {
    let intervals = query.intervals()?;
    let granularity = query.granularity()?;
    let aggregation = Aggregation::parse(query)?;
    let descending = query.flag("descending")?;
    let limit: Option<usize> = query.field("limit")?;
    let skip_empty = query.context_flag("skipEmptyBuckets");
    let all = matches!(granularity, QueryGranularity::All);
    let table = Arc::new(engine.table_within(&query.data_source, Some(&intervals)).await?);
    let covered = covered(&table, &intervals);
    // Druid answers granularity `all` with one row even where there is no data.
    if covered.is_empty() && (!all || skip_empty) {
        return Ok(json!([]));
    }
    let predicate = query.predicate(&table, &intervals)?;
    let (ctx, df) = read(engine, &table)?;
    let filtered = df.filter(predicate).map_err(df_error)?;
    let group: Vec<Expr> = bucket_expr(&granularity).into_iter().collect();
    let mut aggregates = aggregation.exprs(&table)?;
    if all {
        aggregates.push(count(lit(1)).alias(ROWS_MATCHED));
    }
    let aggregated = filtered.clone().aggregate(group, aggregates).map_err(df_error)?;
    let mut batches = collect(aggregated).await?;
    if all {
        let matched = sum_column(&batches, ROWS_MATCHED);
        batches = batches.iter().map(|b| without_column(b, ROWS_MATCHED)).collect();
        if skip_empty && matched == 0 {
            batches.clear();
        }
    }

    // Fill the buckets inside the data's span that no row fell in, then compute the
    // post-aggregators over real and filled rows alike.
    if !skip_empty && !all && !matches!(granularity, QueryGranularity::None) {
        let present: BTreeSet<i64> = rows_by_bucket(&batches, 0)?.into_iter().map(|(t, _)| t).collect();
        let mut missing = BTreeSet::new();
        for span in &covered {
            for b in granularity.buckets(*span)? {
                if !present.contains(&b) {
                    missing.insert(b);
                }
            }
        }
        if !missing.is_empty()
            && let Some(schema) = batches.first().map(RecordBatch::schema)
        {
            batches.push(empty_rows(&schema, &missing, &aggregation)?);
        }
    }
    let all_timestamp = first_row_time(&covered, &intervals);
    let mut rows = post_aggregated(&ctx, batches, &aggregation).await?;
    rows.sort_by_key(|(t, _)| *t);
    if descending {
        rows.reverse();
    }
    if let Some(limit) = limit {
        rows.truncate(limit);
    }
    let mut out: Vec<Value> = rows
        .into_iter()
        .map(|(t, row)| {
            let t = if all { all_timestamp } else { t };
            json!({"timestamp": granularity.format_bucket(t), "result": row})
        })
        .collect();
    if query.context_flag("grandTotal") {
        let total = filtered.aggregate(vec![], aggregation.exprs(&table)?).map_err(df_error)?;
        let batches = collect(total).await?;
        if let Some((_, row)) = post_aggregated(&ctx, batches, &aggregation).await?.into_iter().next() {
            out.push(json!({"timestamp": null, "result": row}));
        }
    }
    Ok(Value::Array(out))
}

/// The sum of an integer column over batches.
fn sum_column(batches: &[RecordBatch], column: &str) -> i64 {
    batches
        .iter()
        .filter_map(|b| b.column_by_name(column))
        .filter_map(|c| c.as_primitive_opt::<Int64Type>().and_then(arrow::compute::sum))
        .sum()
}

fn without_column(batch: &RecordBatch, column: &str) -> RecordBatch {
    let mut batch = batch.clone();
    if let Ok(index) = batch.schema().index_of(column) {
        batch.remove_column(index);
    }
    batch
}

/// The timestamp Druid gives a granularity-`all` result: the first row's time, as its cursor
/// over the data starts there, or the query's start when no data lies in its intervals.
fn first_row_time(covered: &[Interval], intervals: &[Interval]) -> i64 {
    let query_start = intervals.iter().map(|i| i.start).min().unwrap_or(0);
    covered.first().map_or(query_start, |c| c.start)
}

/// Aggregated rows with the post-aggregators added, as (bucket, object).
async fn post_aggregated(
    ctx: &SessionContext,
    batches: Vec<RecordBatch>,
    aggregation: &Aggregation,
) -> Result<Vec<BucketRow>, QueryError> {
    if batches.is_empty() {
        return Ok(Vec::new());
    }
    let df = ctx.read_batches(batches).map_err(df_error)?;
    let df = aggregation.apply_post(df)?;
    rows_by_bucket(&collect(df).await?, 0)
}

/// One row per missing bucket, each aggregator at its value over no rows.
fn empty_rows(
    schema: &arrow::datatypes::SchemaRef,
    buckets: &BTreeSet<i64>,
    aggregation: &Aggregation,
) -> Result<RecordBatch, QueryError> {
    let n = buckets.len();
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let values: Vec<Value> = if field.name() == BUCKET {
                buckets.iter().map(|&b| Value::from(b)).collect()
            } else {
                let agg = aggregation.aggregators.iter().find(|a| a.name() == field.name());
                vec![agg.map_or(Value::Null, translate::empty_value); n]
            };
            array_of(&values, field.data_type())
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| QueryError::Execution(e.to_string()))
}

fn array_of(values: &[Value], data_type: &DataType) -> Result<arrow::array::ArrayRef, QueryError> {
    use arrow::array::{Float64Array, Int64Array};
    let array: arrow::array::ArrayRef = if data_type.is_floating() {
        Arc::new(values.iter().map(Value::as_f64).collect::<Float64Array>())
    } else {
        Arc::new(values.iter().map(Value::as_i64).collect::<Int64Array>())
    };
    arrow::compute::cast(&array, data_type).map_err(|e| QueryError::Execution(e.to_string()))
}

/// How topN orders rows: by a metric or by the dimension, either way possibly inverted.
struct TopNOrder {
    sort: SortExpr,
    previous_stop: Option<(String, bool)>,
}

fn top_n_order(
    metric: &TopNMetric,
    dimension: &str,
    aggregation: &Aggregation,
) -> Result<TopNOrder, QueryError> {
    let numeric = |m: &str| -> Result<TopNOrder, QueryError> {
        if !aggregation.has_output(m) {
            return Err(invalid!(
                "metric: \"{m}\" is not an aggregator or post-aggregator of this query (known: {})",
                aggregation.output_names().join(", ")
            ));
        }
        Ok(TopNOrder { sort: name(m).sort(false, false), previous_stop: None })
    };
    let by_dimension = |ordering: Option<&str>,
                        previous_stop: &Option<String>|
     -> Result<TopNOrder, QueryError> {
        let key = match ordering.unwrap_or("lexicographic").to_ascii_lowercase().as_str() {
            "lexicographic" | "alphanumeric" => cast(name(dimension), DataType::Utf8),
            "numeric" => datafusion::logical_expr::try_cast(name(dimension), DataType::Float64),
            "strlen" => {
                datafusion::functions::expr_fn::character_length(cast(name(dimension), DataType::Utf8))
            }
            other => {
                return Err(invalid!(
                    "metric.ordering: unknown ordering \"{other}\"; expected lexicographic, alphanumeric, numeric or strlen"
                ));
            }
        };
        Ok(TopNOrder { sort: key.sort(true, true), previous_stop: previous_stop.clone().map(|s| (s, true)) })
    };
    match metric {
        TopNMetric::Name(m) | TopNMetric::Spec(TopNMetricSpec::Numeric { metric: m }) => numeric(m),
        TopNMetric::Spec(TopNMetricSpec::Dimension { ordering, previous_stop }) => {
            by_dimension(ordering.as_deref(), previous_stop)
        }
        TopNMetric::Spec(TopNMetricSpec::Lexicographic { previous_stop }) => {
            by_dimension(None, previous_stop)
        }
        TopNMetric::Spec(TopNMetricSpec::Alphanumeric { previous_stop }) => {
            by_dimension(Some("alphanumeric"), previous_stop)
        }
        TopNMetric::Spec(TopNMetricSpec::Inverted { metric }) => {
            let inner = top_n_order(metric, dimension, aggregation)?;
            let sort = inner.sort.reverse();
            Ok(TopNOrder { sort, previous_stop: inner.previous_stop.map(|(s, after)| (s, !after)) })
        }
    }
}

async fn top_n(engine: &QueryEngine, query: &Query<'_>) -> Result<Value, QueryError> {
    let intervals = query.intervals()?;
    let granularity = query.granularity()?;
    let aggregation = Aggregation::parse(query)?;
    let dimension: DimensionRef = query.required("dimension")?;
    let threshold: usize = query.required("threshold")?;
    let metric: TopNMetric = query.required("metric")?;
    let output = dimension.output_name().to_string();
    let order = top_n_order(&metric, &output, &aggregation)?;
    let table = engine.table_within(&query.data_source, Some(&intervals)).await?;
    let table = Arc::new(table.with_codes(&coded_columns(std::slice::from_ref(&dimension))));
    let covered = covered(&table, &intervals);
    if covered.is_empty() {
        return Ok(json!([]));
    }
    let predicate = query.predicate(&table, &intervals)?;
    let (_ctx, df) = read(engine, &table)?;
    let schema = table.schema_ref();
    let mut group: Vec<Expr> = bucket_expr(&granularity).into_iter().collect();
    let mut coded = Vec::new();
    if dimension.is_plain() {
        group.extend(plain_group_keys(&table, &schema, &[&dimension], &mut coded));
    } else {
        group.push(translate::column(&schema, dimension.column()).alias(&output));
    }
    let aggregates = aggregation.exprs(&table)?;
    let df = df.filter(predicate).and_then(|df| df.aggregate(group, aggregates)).map_err(df_error)?;
    let mut df = decode_groups(df, &coded)?;
    df = aggregation.apply_post(df)?;
    if let Some((stop, after)) = &order.previous_stop {
        let key = cast(name(&output), DataType::Utf8);
        let keep = if *after { key.gt(lit(stop.clone())) } else { key.lt(lit(stop.clone())) };
        df = df.filter(keep).map_err(df_error)?;
    }
    let all = matches!(granularity, QueryGranularity::All);
    let mut sort = Vec::new();
    if !all {
        sort.push(name(BUCKET).sort(true, true));
    }
    sort.push(order.sort);
    df = df.sort(sort).map_err(df_error)?;
    if all {
        df = df.limit(0, Some(threshold)).map_err(df_error)?;
    }
    let rows = rows_by_bucket(&collect(df).await?, first_row_time(&covered, &intervals))?;
    let mut buckets: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for (t, row) in rows {
        let entries = buckets.entry(t).or_default();
        if entries.len() < threshold {
            entries.push(Value::Object(row));
        }
    }
    Ok(Value::Array(
        buckets
            .into_iter()
            .map(|(t, result)| json!({"timestamp": granularity.format_bucket(t), "result": result}))
            .collect(),
    ))
}

async fn group_by(engine: &QueryEngine, query: &Query<'_>) -> Result<Value, QueryError> {
    let intervals = query.intervals()?;
    let granularity = query.granularity()?;
    let aggregation = Aggregation::parse(query)?;
    let dimensions: Vec<DimensionRef> = query.field("dimensions")?.unwrap_or_default();
    let limit_spec: LimitSpec = query.field("limitSpec")?.unwrap_or_default();
    let having_spec: Option<Having> = query.field("having")?;
    for (i, d) in dimensions.iter().enumerate() {
        if let DimensionRef::Spec(spec) = d
            && spec.kind != "default"
        {
            return Err(invalid!(
                "dimensions[{i}].type: \"{}\" dimension specs are not supported; use \"default\"",
                spec.kind
            ));
        }
    }
    let table = engine.table_within(&query.data_source, Some(&intervals)).await?;
    let table = Arc::new(table.with_codes(&coded_columns(&dimensions)));
    if covered(&table, &intervals).is_empty() {
        return Ok(json!([]));
    }
    let predicate = query.predicate(&table, &intervals)?;
    let (_ctx, df) = read(engine, &table)?;
    let schema = table.schema_ref();
    let mut group: Vec<Expr> = bucket_expr(&granularity).into_iter().collect();
    let mut coded = Vec::new();
    let plain: Vec<&DimensionRef> = dimensions.iter().filter(|d| d.is_plain()).collect();
    group.extend(plain_group_keys(&table, &schema, &plain, &mut coded));
    for d in dimensions.iter().filter(|d| !d.is_plain()) {
        let mut value = translate::column(&schema, d.column());
        if let DimensionRef::Spec(spec) = d {
            value = match spec.output_type.as_deref().map(str::to_ascii_uppercase).as_deref() {
                None | Some("STRING") => value,
                Some("LONG") => datafusion::logical_expr::try_cast(value, DataType::Int64),
                Some("FLOAT") | Some("DOUBLE") => {
                    datafusion::logical_expr::try_cast(value, DataType::Float64)
                }
                Some(other) => {
                    return Err(invalid!(
                        "dimensions: outputType \"{other}\" is not one of STRING, LONG, FLOAT, DOUBLE"
                    ));
                }
            };
        }
        group.push(value.alias(d.output_name()));
    }
    let aggregates = aggregation.exprs(&table)?;
    let df = df.filter(predicate).and_then(|df| df.aggregate(group, aggregates)).map_err(df_error)?;
    let mut df = decode_groups(df, &coded)?;
    df = aggregation.apply_post(df)?;
    if let Some(h) = &having_spec {
        let output_schema: arrow::datatypes::Schema = df.schema().as_arrow().clone();
        df = df.filter(translate::having(h, &output_schema, "having")?).map_err(df_error)?;
    }
    let mut sort = Vec::new();
    if bucket_expr(&granularity).is_some() {
        sort.push(name(BUCKET).sort(true, true));
    }
    let mut ordered: BTreeSet<String> = BTreeSet::new();
    for (i, c) in limit_spec.columns.iter().enumerate() {
        let (column, descending, numeric) = match c {
            OrderByColumn::Name(n) => (n.clone(), false, false),
            OrderByColumn::Spec(spec) => {
                let descending = match spec.direction.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    None | Some("ascending") | Some("asc") => false,
                    Some("descending") | Some("desc") => true,
                    Some(other) => {
                        return Err(invalid!(
                            "limitSpec.columns[{i}].direction: \"{other}\" is not ascending or descending"
                        ));
                    }
                };
                let order = match &spec.dimension_order {
                    Some(Value::String(s)) => s.to_ascii_lowercase(),
                    Some(Value::Object(o)) => {
                        o.get("type").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase()
                    }
                    _ => "lexicographic".to_string(),
                };
                (spec.dimension.clone(), descending, order == "numeric")
            }
        };
        if df.schema().field_with_unqualified_name(&column).is_err() {
            return Err(invalid!(
                "limitSpec.columns[{i}]: \"{column}\" is not a dimension, aggregator or post-aggregator of this query"
            ));
        }
        let is_dimension = dimensions.iter().any(|d| d.output_name() == column);
        let key = if numeric && is_dimension {
            datafusion::logical_expr::try_cast(name(&column), DataType::Float64)
        } else {
            name(&column)
        };
        sort.push(key.sort(!descending, !descending));
        ordered.insert(column);
    }
    for d in &dimensions {
        if !ordered.contains(d.output_name()) {
            sort.push(name(d.output_name()).sort(true, true));
        }
    }
    if !sort.is_empty() {
        df = df.sort(sort).map_err(df_error)?;
    }
    if limit_spec.limit.is_some() || limit_spec.offset.is_some() {
        df = df.limit(limit_spec.offset.unwrap_or(0), limit_spec.limit).map_err(df_error)?;
    }
    let rows = rows_by_bucket(&collect(df).await?, intervals[0].start)?;
    Ok(Value::Array(
        rows.into_iter()
            .map(|(t, event)| json!({"version": "v1", "timestamp": granularity.format_bucket(t), "event": event}))
            .collect(),
    ))
}

async fn scan(engine: &QueryEngine, query: &Query<'_>) -> Result<Value, QueryError> {
    let intervals = query.intervals()?;
    let columns: Vec<String> = query.field("columns")?.unwrap_or_default();
    let limit: Option<usize> = query.field("limit")?;
    let offset: usize = query.field("offset")?.unwrap_or(0);
    let order: String = query.field("order")?.unwrap_or_else(|| "none".to_string());
    let order = order.to_ascii_lowercase();
    if !["none", "ascending", "descending"].contains(&order.as_str()) {
        return Err(invalid!("order: \"{order}\" is not none, ascending or descending"));
    }
    let batch_size: usize = query.field("batchSize")?.unwrap_or(DEFAULT_SCAN_BATCH_SIZE);
    if batch_size == 0 {
        return Err(invalid!("batchSize: must be at least 1"));
    }
    let format: String = query.field("resultFormat")?.unwrap_or_else(|| "list".to_string());
    let compacted = match format.as_str() {
        "list" => false,
        "compactedList" => true,
        other => return Err(invalid!("resultFormat: \"{other}\" is not list or compactedList")),
    };
    let table = engine.table(&query.data_source).await?;
    let schema = table.schema_ref();
    let columns: Vec<String> =
        if columns.is_empty() { schema.fields().iter().map(|f| f.name().clone()).collect() } else { columns };
    let predicate = query.predicate(&table, &intervals)?;
    let wanted = limit.map(|l| l.saturating_add(offset));
    // Each segment is read on its own, since every result names the segment it came from.
    let mut rows: Vec<(i64, usize, Vec<Value>)> = Vec::new();
    let segments = table.split_by_segment();
    let segment_ids: Vec<String> = segments.iter().map(|(id, _)| id.clone()).collect();
    for (index, (_, part)) in segments.into_iter().enumerate() {
        if order == "none" && wanted.is_some_and(|w| rows.len() >= w) {
            break;
        }
        if !part.data_extents().iter().any(|d| intervals.iter().any(|q| q.overlaps(d))) {
            continue;
        }
        let part = Arc::new(part);
        let (_ctx, df) = read(engine, &part)?;
        let select: Vec<Expr> = columns.iter().map(|c| translate::column(&schema, c).alias(c)).collect();
        let time = cast(name(TIME_COLUMN), DataType::Int64).alias(BUCKET);
        let mut df = df
            .filter(predicate.clone())
            .and_then(|df| df.select(select.into_iter().chain([time]).collect::<Vec<_>>()))
            .map_err(df_error)?;
        if order == "none"
            && let Some(w) = wanted
        {
            df = df.limit(0, Some(w - rows.len())).map_err(df_error)?;
        }
        for batch in collect(df).await? {
            let cols = json::columns(&batch)?;
            let time_index = batch.num_columns() - 1;
            for row in 0..batch.num_rows() {
                let values = cols[..time_index].iter().map(|c| c.value(row)).collect();
                rows.push((cols[time_index].millis(row).unwrap_or(0), index, values));
            }
        }
    }
    match order.as_str() {
        "ascending" => rows.sort_by_key(|(t, _, _)| *t),
        "descending" => rows.sort_by_key(|(t, _, _)| std::cmp::Reverse(*t)),
        _ => {}
    }
    let end = wanted.unwrap_or(usize::MAX).min(rows.len());
    let start = offset.min(end);
    let mut out: Vec<Value> = Vec::new();
    let mut current: Option<(usize, Vec<Value>)> = None;
    let flush = |current: Option<(usize, Vec<Value>)>, out: &mut Vec<Value>| {
        if let Some((index, events)) = current {
            out.push(json!({"segmentId": segment_ids[index], "columns": columns, "events": events}));
        }
    };
    for (_, index, values) in rows.drain(start..end) {
        let event = if compacted {
            Value::Array(values)
        } else {
            Value::Object(columns.iter().cloned().zip(values).collect())
        };
        match &mut current {
            Some((i, events)) if *i == index && events.len() < batch_size => events.push(event),
            _ => {
                flush(current.take(), &mut out);
                current = Some((index, vec![event]));
            }
        }
    }
    flush(current, &mut out);
    Ok(Value::Array(out))
}
