//! A dataSource as a DataFusion table: the visible segments of the timeline (read through a
//! size-bounded cache of decoded row groups, pruned by the row groups' `__time` statistics)
//! plus a snapshot of the rows a live source (the stream daemon's incremental index) holds in
//! memory.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, TimestampMillisecondArray, new_null_array};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use common::catalog::{CatalogState, SegmentRecord};
use common::rollup::RollupIndex;
use common::spec::{DimensionSpec, MetricSpec};
use common::time::{Interval, Millis};
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use crate::cache::{SegmentCache, SegmentMeta};
use crate::codes::{ColumnCodes, code_field, with_code_columns};

/// The name of the time column, as segments and the rows in memory have it.
pub use common::rollup::TIME_COLUMN;

/// Rows per batch a scan hands to DataFusion (DataFusion's own default batch size is 8192;
/// larger slices cost less per batch and still spread over the partitions).
const SCAN_SLICE_ROWS: usize = 65_536;

/// The time column's type in every segment and snapshot.
pub fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// A source of rows held in memory, such as the stream daemon's incremental index.
///
/// A query reads the dataSource's catalog first, then asks the source for the rows that state
/// of the catalog does not hold, so every row is counted exactly once, before, during and after
/// a hand-off from memory to segments. The stream tells by its Kafka offsets: rows are in the
/// catalog once the catalog's offsets have moved past the messages they came from. The source
/// keeps the rows of each hand-off until no query can still be reading a catalog state older
/// than its commit; keeping the last commit's rows until the next commit is enough, since a
/// query reads the catalog immediately before it asks.
pub trait LiveSource: Send + Sync + fmt::Debug {
    /// The rows the catalog in state `catalog` does not hold: rows not published yet, and rows
    /// published by a commit that state does not include. Only those whose time lies in one of
    /// `within`, when given (a query that knows its intervals need not pay for other rows).
    fn snapshot(&self, catalog: &CatalogState, within: Option<&[Interval]>) -> LiveSnapshot;
}

/// Rows a [`LiveSource`] holds at one moment, in the segment column layout (`__time` as
/// `Timestamp(ms, "UTC")`, string dimensions as `Utf8View`, metrics as ingested).
#[derive(Debug, Clone)]
pub struct LiveSnapshot {
    /// Identifies these rows in scan results (Druid reports a realtime segment's id).
    pub segment_id: String,
    /// The rows' schema.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
    /// Dimension columns, in order.
    pub dimensions: Vec<DimensionSpec>,
    /// Metric columns with their ingest-time aggregators.
    pub metrics: Vec<MetricSpec>,
}

impl LiveSnapshot {
    /// A snapshot of every row of an incremental index, in the index's own row order.
    pub fn from_index(index: &RollupIndex, segment_id: &str) -> Self {
        Self::from_indexes(&[index], segment_id, None)
    }

    /// A snapshot of every row of several indexes of one dataSource (the stream's open index
    /// and the ones being handed off), one batch each. Their columns may differ when
    /// schemaless discovery found new dimensions; the snapshot's schema is their union. With
    /// `within`, only rows whose time lies in one of those intervals.
    pub fn from_indexes(indexes: &[&RollupIndex], segment_id: &str, within: Option<&[Interval]>) -> Self {
        let mut batches = Vec::with_capacity(indexes.len());
        let mut fields: Vec<Field> = Vec::new();
        let mut dimensions: Vec<DimensionSpec> = Vec::new();
        let mut metrics = Vec::new();
        for index in indexes.iter().filter(|index| index.rows() > 0 || indexes.len() == 1) {
            let (batch, dims) = index.query_batch(within);
            for field in batch.schema().fields() {
                if !fields.iter().any(|f| f.name() == field.name()) {
                    fields.push(field.as_ref().clone().with_nullable(field.name() != TIME_COLUMN));
                }
            }
            for dim in dims {
                if !dimensions.iter().any(|d| d.name == dim.name) {
                    dimensions.push(dim);
                }
            }
            metrics = index.schema().spec().metrics.clone();
            batches.push(batch);
        }
        if batches.is_empty() {
            // Every index is empty: the first one's columns, no rows.
            let (batch, dims) = indexes[0].query_batch(within);
            fields = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
            dimensions = dims;
            metrics = indexes[0].schema().spec().metrics.clone();
            batches.push(batch);
        }
        Self {
            segment_id: segment_id.to_string(),
            schema: Arc::new(Schema::new(fields)),
            batches,
            dimensions,
            metrics,
        }
    }

    /// Leaves out the rows whose time lies in one of `intervals` (time a batch version owns:
    /// its segments hold those events, so the stream's copy must not count again).
    pub fn clip_out(&mut self, intervals: &[Interval]) -> Result<(), DataFusionError> {
        if intervals.is_empty() {
            return Ok(());
        }
        for batch in &mut self.batches {
            let times = time_values(batch)?;
            let keep: BooleanArray =
                times.values().iter().map(|&t| Some(!intervals.iter().any(|i| i.contains(t)))).collect();
            *batch = filter_record_batch(batch, &keep)?;
        }
        Ok(())
    }

    /// Rows in the snapshot.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// One visible segment and the part of its interval the timeline lets it serve.
#[derive(Debug, Clone)]
pub struct TablePart {
    /// The catalog's record of the segment.
    pub record: SegmentRecord,
    /// The stretch of time this segment answers for (its interval minus what higher versions
    /// cover).
    pub serves: Interval,
    /// The segment file's footer: schema, row-group time ranges, description.
    pub meta: Arc<SegmentMeta>,
}

/// One dataSource at one moment: a consistent snapshot of its timeline and live rows.
#[derive(Debug)]
pub struct DataSourceTable {
    name: String,
    schema: SchemaRef,
    parts: Vec<TablePart>,
    live: Option<LiveSnapshot>,
    cache: Arc<SegmentCache>,
    target_partitions: usize,
    /// String columns whose codes the table offers as extra columns.
    codes: Vec<Arc<ColumnCodes>>,
}

impl DataSourceTable {
    /// A table over visible segments (in time order) and live rows.
    pub fn new(
        name: &str,
        parts: Vec<TablePart>,
        live: Option<LiveSnapshot>,
        cache: Arc<SegmentCache>,
        target_partitions: usize,
    ) -> Self {
        let schema = merged_schema(&parts, live.as_ref());
        Self {
            name: name.to_string(),
            schema,
            parts,
            live,
            cache,
            target_partitions: target_partitions.max(1),
            codes: Vec::new(),
        }
    }

    /// The table with, for each of `columns` that is a string column, a column of its codes
    /// (named by [`crate::codes::code_column`], `UInt32`), for grouping on integers instead of strings.
    pub fn with_codes(mut self, columns: &[&str]) -> Self {
        let mut fields: Vec<FieldRef> = self.schema.fields().iter().cloned().collect();
        for &column in columns {
            let is_string =
                self.schema.field_with_name(column).is_ok_and(|f| f.data_type() == &DataType::Utf8View);
            if !is_string || self.codes_of(column).is_some() {
                continue;
            }
            self.codes.push(self.cache.column_codes(column));
            fields.push(code_field(column));
        }
        self.schema = Arc::new(Schema::new_with_metadata(fields, self.schema.metadata().clone()));
        self
    }

    /// The dictionary of a string column the table offers codes of.
    pub fn codes_of(&self, column: &str) -> Option<&Arc<ColumnCodes>> {
        self.codes.iter().find(|c| c.column() == column)
    }

    /// The merged schema of every part.
    pub fn schema_ref(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The dataSource name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The visible segments, in time order.
    pub fn parts(&self) -> &[TablePart] {
        &self.parts
    }

    /// The live rows, if a live source is attached.
    pub fn live(&self) -> Option<&LiveSnapshot> {
        self.live.as_ref()
    }

    /// Where rows are: for each visible segment, from its first to its last row time (by its
    /// row-group statistics, within what it serves), and the live rows' span; merged. Druid
    /// fills empty timeseries buckets only inside these, and reports a granularity-`all`
    /// result at the first row's time.
    pub fn data_extents(&self) -> Vec<Interval> {
        let mut spans: Vec<Interval> = self
            .parts
            .iter()
            .filter_map(|p| {
                let groups = p
                    .meta
                    .row_groups
                    .iter()
                    .filter(|g| g.min_time < p.serves.end && g.max_time >= p.serves.start);
                let first = groups.clone().map(|g| g.min_time).min()?;
                let last = groups.map(|g| g.max_time).max()?;
                Some(Interval { start: first.max(p.serves.start), end: last.min(p.serves.end - 1) + 1 })
            })
            .collect();
        if let Some((min, max)) = self.live.as_ref().and_then(live_time_range) {
            spans.push(Interval { start: min, end: max.saturating_add(1) });
        }
        merge_intervals(spans)
    }

    /// The time ranges the table answers for: every visible segment's served interval and the
    /// live rows' span, merged.
    pub fn data_intervals(&self) -> Vec<Interval> {
        let mut spans: Vec<Interval> = self.parts.iter().map(|p| p.serves).collect();
        if let Some((min, max)) = self.live.as_ref().and_then(live_time_range) {
            spans.push(Interval { start: min, end: max.saturating_add(1) });
        }
        merge_intervals(spans)
    }

    /// The newest row time: the segments' row-group maxima (within what each serves) and the
    /// live rows' newest.
    pub fn max_time(&self) -> Option<Millis> {
        self.data_extents().last().map(|extent| extent.end - 1)
    }

    /// The dimensions and metrics, newest definition first, as `/druid/v2/datasources` lists
    /// them.
    pub fn columns(&self) -> (Vec<String>, Vec<String>) {
        let mut dimensions: Vec<String> = Vec::new();
        let mut metrics: Vec<String> = Vec::new();
        let descriptions = self.live.iter().map(|l| (l.dimensions.as_slice(), l.metrics.as_slice())).chain(
            self.parts.iter().rev().map(|p| {
                let d = &p.meta.description;
                (d.dimensions.as_slice(), d.metrics.as_slice())
            }),
        );
        for (dims, mets) in descriptions {
            for d in dims {
                if !dimensions.contains(&d.name) {
                    dimensions.push(d.name.clone());
                }
            }
            for m in mets {
                if !metrics.contains(&m.name) {
                    metrics.push(m.name.clone());
                }
            }
        }
        (dimensions, metrics)
    }

    /// A table of just one part (or just the live rows), for queries that report results per
    /// segment (scan). Returns the segment id with the table.
    pub fn split_by_segment(&self) -> Vec<(String, DataSourceTable)> {
        let mut tables: Vec<(String, DataSourceTable)> = self
            .parts
            .iter()
            .map(|part| {
                let mut table = DataSourceTable::new(
                    &self.name,
                    vec![part.clone()],
                    None,
                    Arc::clone(&self.cache),
                    self.target_partitions,
                );
                table.schema = Arc::clone(&self.schema);
                table.codes = self.codes.clone();
                (part.record.id.clone(), table)
            })
            .collect();
        if let Some(live) = &self.live {
            let mut table = DataSourceTable::new(
                &self.name,
                Vec::new(),
                Some(live.clone()),
                Arc::clone(&self.cache),
                self.target_partitions,
            );
            table.schema = Arc::clone(&self.schema);
            table.codes = self.codes.clone();
            tables.push((live.segment_id.clone(), table));
        }
        tables
    }

    /// Every batch of the table that may hold rows inside `ranges` (all rows when `None`),
    /// clipped to what each segment serves and, when `clip_to` is given, to those time ranges
    /// exactly; conformed to `schema` projected by `projection`.
    pub async fn batches(
        &self,
        ranges: Option<&[Interval]>,
        clip_to: Option<&[Interval]>,
        projection: Option<&[usize]>,
    ) -> Result<Vec<RecordBatch>, DataFusionError> {
        let projected: SchemaRef = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        let wanted = |span: Interval| match ranges {
            None => true,
            Some(ranges) => ranges.iter().any(|r| r.overlaps(&span)),
        };
        let mut loads = Vec::new();
        for part in &self.parts {
            if !wanted(part.serves) {
                continue;
            }
            let groups: Vec<usize> = part
                .meta
                .row_groups
                .iter()
                .enumerate()
                .filter(|(_, g)| {
                    let span = Interval { start: g.min_time, end: g.max_time.saturating_add(1) };
                    span.overlaps(&part.serves) && wanted(span)
                })
                .map(|(i, _)| i)
                .collect();
            if !groups.is_empty() {
                loads.push(async move {
                    let batches = self.cache.row_groups(&part.meta, &groups, &self.codes).await?;
                    Ok::<_, DataFusionError>((part, groups, batches))
                });
            }
        }
        let loaded = futures::future::try_join_all(loads).await?;
        let mut out = Vec::new();
        for (part, groups, batches) in loaded {
            for (group, batch) in groups.iter().zip(batches) {
                let span = &part.meta.row_groups[*group];
                let span = Interval { start: span.min_time, end: span.max_time.saturating_add(1) };
                let keep: Vec<Interval> = match clip_to {
                    None => vec![part.serves],
                    Some(ranges) => ranges.iter().filter_map(|r| r.intersect(&part.serves)).collect(),
                };
                let inside = keep.iter().any(|k| k.start <= span.start && span.end <= k.end);
                let batch = if inside { batch } else { clip(&batch, &keep)? };
                if batch.num_rows() > 0 {
                    out.push(conform(&batch, &projected)?);
                }
            }
        }
        if let Some(live) = &self.live {
            for batch in &live.batches {
                let batch = match clip_to {
                    None => batch.clone(),
                    Some(ranges) => clip(batch, ranges)?,
                };
                // Rows held in memory change between queries: coded on every query.
                let batch = with_code_columns(&batch, &self.codes, |dictionary, values| {
                    Ok(Arc::new(dictionary.encode(values.as_ref())?))
                })?;
                if batch.num_rows() > 0 {
                    out.push(conform(&batch, &projected)?);
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl TableProvider for DataSourceTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Pure `__time` ranges are applied here, exactly (most rows of a query usually lie
        // wholly inside them, so most batches need no filtering at all); every other filter
        // only prunes segments and row groups, and DataFusion applies it.
        Ok(filters
            .iter()
            .map(|f| match exact_time_ranges(f) {
                Some(_) => TableProviderFilterPushDown::Exact,
                None => TableProviderFilterPushDown::Inexact,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let ranges = filters.iter().fold(None::<Vec<Interval>>, |acc, f| match (acc, time_ranges(f)) {
            (None, r) => r,
            (Some(a), None) => Some(a),
            (Some(a), Some(b)) => Some(intersect_ranges(&a, &b)),
        });
        let exact = filters.iter().filter_map(exact_time_ranges).reduce(|a, b| intersect_ranges(&a, &b));
        let batches =
            self.batches(ranges.as_deref(), exact.as_deref(), projection.map(Vec::as_slice)).await?;
        let projected: SchemaRef = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        // Row groups can hold a million rows; zero-copy slices of them spread the work over
        // every partition instead of one.
        let slices: Vec<RecordBatch> = batches
            .iter()
            .flat_map(|b| {
                (0..b.num_rows())
                    .step_by(SCAN_SLICE_ROWS)
                    .map(move |at| b.slice(at, SCAN_SLICE_ROWS.min(b.num_rows() - at)))
            })
            .collect();
        let mut partitions: Vec<Vec<RecordBatch>> =
            vec![Vec::new(); self.target_partitions.min(slices.len()).max(1)];
        let count = partitions.len();
        for (i, batch) in slices.into_iter().enumerate() {
            partitions[i % count].push(batch);
        }
        let exec = MemorySourceConfig::try_new_exec(&partitions, projected, None)?;
        Ok(exec)
    }
}

/// The table schema: `__time`, then the newest definition's columns, then columns only older
/// segments have. A column whose type changed takes its newest type; older segments are cast.
fn merged_schema(parts: &[TablePart], live: Option<&LiveSnapshot>) -> SchemaRef {
    let mut fields: BTreeMap<String, usize> = BTreeMap::new();
    let mut ordered: Vec<Field> = vec![Field::new(TIME_COLUMN, time_type(), false)];
    fields.insert(TIME_COLUMN.to_string(), 0);
    let schemas = live
        .map(|l| Arc::clone(&l.schema))
        .into_iter()
        .chain(parts.iter().rev().map(|p| Arc::clone(&p.meta.schema)));
    for schema in schemas {
        for field in schema.fields() {
            if !fields.contains_key(field.name()) {
                fields.insert(field.name().clone(), ordered.len());
                // Older segments may lack the column: every column but time is nullable.
                let field = field.as_ref().clone().with_data_type(query_type(field.data_type()));
                ordered.push(field.with_nullable(true));
            }
        }
    }
    Arc::new(Schema::new(ordered))
}

/// The type a column has in queries: string dimensions, dictionary-encoded in segments and
/// in the incremental index, become `Utf8View`, which DataFusion groups and compares several
/// times faster than dictionaries of many values (a topN over 193k pages: 0.22 s against
/// 0.85 s).
pub fn query_type(stored: &DataType) -> DataType {
    match stored {
        DataType::Dictionary(_, value) if value.is_string() => DataType::Utf8View,
        other => other.clone(),
    }
}

/// A schema with every column in its [`query_type`].
pub fn query_schema(stored: &Schema) -> Schema {
    let fields: Vec<Field> = stored
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_data_type(query_type(f.data_type())))
        .collect();
    Schema::new_with_metadata(fields, stored.metadata().clone())
}

/// Keeps the rows whose time lies in one of `intervals`.
fn clip(batch: &RecordBatch, intervals: &[Interval]) -> Result<RecordBatch, DataFusionError> {
    let times = time_values(batch)?;
    let keep: BooleanArray =
        times.values().iter().map(|&t| Some(intervals.iter().any(|i| i.contains(t)))).collect();
    Ok(filter_record_batch(batch, &keep)?)
}

fn time_values(batch: &RecordBatch) -> Result<TimestampMillisecondArray, DataFusionError> {
    let column = batch
        .column_by_name(TIME_COLUMN)
        .ok_or_else(|| DataFusionError::Execution(format!("segment rows have no {TIME_COLUMN} column")))?;
    let column = cast(column, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
    column
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .cloned()
        .ok_or_else(|| DataFusionError::Execution(format!("{TIME_COLUMN} is not a timestamp column")))
}

fn live_time_range(live: &LiveSnapshot) -> Option<(Millis, Millis)> {
    let mut range: Option<(Millis, Millis)> = None;
    for batch in &live.batches {
        let Ok(times) = time_values(batch) else { continue };
        for &t in times.values().iter() {
            range = Some(match range {
                None => (t, t),
                Some((lo, hi)) => (lo.min(t), hi.max(t)),
            });
        }
    }
    range
}

/// Shapes a batch to the (projected) table schema: missing columns become nulls, columns whose
/// type differs are cast.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, DataFusionError> {
    if batch.schema().as_ref() == schema.as_ref() {
        return Ok(batch.clone());
    }
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) if column.data_type() == field.data_type() => Ok(Arc::clone(column)),
            Some(column) => Ok(cast(column, field.data_type())?),
            None => Ok(new_null_array(field.data_type(), batch.num_rows())),
        })
        .collect::<Result<_, DataFusionError>>()?;
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options)?)
}

/// The time ranges a filter restricts `__time` to, when it does (`None`: no restriction known).
pub fn time_ranges(filter: &Expr) -> Option<Vec<Interval>> {
    ranges_of(filter, false)
}

/// The time ranges a filter keeps when it is nothing but a condition on `__time` (plain
/// column against millisecond-exact timestamps), so the ranges are the filter.
pub fn exact_time_ranges(filter: &Expr) -> Option<Vec<Interval>> {
    ranges_of(filter, true)
}

fn ranges_of(filter: &Expr, exact: bool) -> Option<Vec<Interval>> {
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
            match (ranges_of(left, exact), ranges_of(right, exact)) {
                (Some(a), Some(b)) => Some(intersect_ranges(&a, &b)),
                (a, b) if !exact => a.or(b),
                _ => None,
            }
        }
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Or, right }) => {
            let mut both = ranges_of(left, exact)?;
            both.extend(ranges_of(right, exact)?);
            Some(merge_intervals(both))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let is_time = |e: &Expr| {
                if exact { matches!(e, Expr::Column(c) if c.name == TIME_COLUMN) } else { is_time_column(e) }
            };
            let millis =
                |e: &Expr| timestamp_millis(e).filter(|&(_, precise)| precise || !exact).map(|(t, _)| t);
            let (op, t) = match (is_time(left), is_time(right)) {
                (true, false) => (*op, millis(right)?),
                (false, true) => (op.swap()?, millis(left)?),
                _ => return None,
            };
            let range = match op {
                Operator::Eq => Interval { start: t, end: t.saturating_add(1) },
                Operator::Gt => Interval { start: t.saturating_add(1), end: Millis::MAX },
                Operator::GtEq => Interval { start: t, end: Millis::MAX },
                Operator::Lt => Interval { start: Millis::MIN, end: t },
                Operator::LtEq => Interval { start: Millis::MIN, end: t.saturating_add(1) },
                _ => return None,
            };
            Some(vec![range])
        }
        Expr::Between(between) if !between.negated && is_time_column(&between.expr) && !exact => {
            let (low, _) = timestamp_millis(&between.low)?;
            let (high, _) = timestamp_millis(&between.high)?;
            Some(vec![Interval { start: low, end: high.saturating_add(1) }])
        }
        _ => None,
    }
}

fn is_time_column(expr: &Expr) -> bool {
    match expr {
        Expr::Column(c) => c.name == TIME_COLUMN,
        Expr::Cast(c) => is_time_column(&c.expr),
        _ => false,
    }
}

/// A timestamp literal in milliseconds (rounded down), and whether that is exact.
fn timestamp_millis(expr: &Expr) -> Option<(Millis, bool)> {
    let Expr::Literal(value, _) = expr else { return None };
    match value {
        ScalarValue::TimestampMillisecond(Some(v), _) => Some((*v, true)),
        ScalarValue::TimestampSecond(Some(v), _) => Some((v.checked_mul(1000)?, true)),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Some((v.div_euclid(1000), v % 1000 == 0)),
        ScalarValue::TimestampNanosecond(Some(v), _) => Some((v.div_euclid(1_000_000), v % 1_000_000 == 0)),
        _ => None,
    }
}

/// Sorts intervals and merges overlapping or touching ones.
pub fn merge_intervals(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.sort();
    let mut merged: Vec<Interval> = Vec::with_capacity(intervals.len());
    for i in intervals {
        match merged.last_mut() {
            Some(last) if i.start <= last.end => last.end = last.end.max(i.end),
            _ => merged.push(i),
        }
    }
    merged
}

fn intersect_ranges(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let both = a.iter().flat_map(|x| b.iter().filter_map(move |y| x.intersect(y))).collect();
    merge_intervals(both)
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::{col, lit};

    use super::*;

    fn at(t: Millis) -> Expr {
        lit(ScalarValue::TimestampMillisecond(Some(t), Some("UTC".into())))
    }

    #[test]
    fn exact_time_ranges_are_only_pure_time_conditions() {
        let time = || col(TIME_COLUMN);
        let day = time().gt_eq(at(0)).and(time().lt(at(100)));
        assert_eq!(exact_time_ranges(&day), Some(vec![Interval { start: 0, end: 100 }]));
        let two = day.clone().or(time().gt_eq(at(200)).and(time().lt(at(300))));
        assert_eq!(
            exact_time_ranges(&two),
            Some(vec![Interval { start: 0, end: 100 }, Interval { start: 200, end: 300 }])
        );
        // A condition on another column only prunes.
        let mixed = day.clone().and(col("page").eq(lit("a")));
        assert_eq!(exact_time_ranges(&mixed), None);
        assert_eq!(time_ranges(&mixed), Some(vec![Interval { start: 0, end: 100 }]));
        // A microsecond bound between two milliseconds is not a millisecond range.
        let micros = time().gt_eq(lit(ScalarValue::TimestampMicrosecond(Some(1500), None)));
        assert_eq!(exact_time_ranges(&micros), None);
        assert_eq!(time_ranges(&micros), Some(vec![Interval { start: 1, end: Millis::MAX }]));
        let whole = time().lt(lit(ScalarValue::TimestampMicrosecond(Some(2000), None)));
        assert_eq!(exact_time_ranges(&whole), Some(vec![Interval { start: Millis::MIN, end: 2 }]));
    }
}
