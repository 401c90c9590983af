//! Rows out of the index: grouped by segment interval, sorted by time then dimension values,
//! and built into Arrow record batches in the segment column layout.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, DictionaryArray, Float32Array, Float64Array, Int32Array, Int64Array, PrimitiveArray,
    StringArray, StringBuilder, StringViewBuilder, TimestampMillisecondArray,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::{ArrowPrimitiveType, DataType, Field, Int32Type, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;

use rayon::prelude::*;

use super::{Dictionary, MetricColumn, RollupIndex};
use crate::spec::{AggregatorKind, DimensionSpec, DimensionType};
use crate::time::Interval;

/// The name of the time column in every segment.
pub const TIME_COLUMN: &str = "__time";

/// The rows of one segment interval, sorted.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRows {
    /// The segment interval.
    pub interval: Interval,
    /// Row numbers in the index, in segment order.
    pub rows: Vec<u32>,
}

/// Each dimension's values in sorted order: `ranks[d][id]` is the position of value `id` of
/// dimension `d` (null first). Computed once per output, shared by every segment.
#[derive(Debug, Clone)]
pub struct Ranks(Vec<Vec<u32>>);

pub(super) fn ranks(index: &RollupIndex) -> Ranks {
    Ranks(index.dims.par_iter().map(|d| d.values.ranks()).collect())
}

pub(super) fn segments(index: &RollupIndex, ranks: &Ranks) -> BTreeMap<Interval, SegmentRows> {
    let mut groups: BTreeMap<Interval, SegmentRows> = BTreeMap::new();
    // Rows of one interval come in long runs (a raw file is one hour), so most rows skip the
    // map lookup.
    let mut run: Option<(Interval, Vec<u32>)> = None;
    let flush = |run: Option<(Interval, Vec<u32>)>, groups: &mut BTreeMap<Interval, SegmentRows>| {
        if let Some((interval, rows)) = run {
            groups
                .entry(interval)
                .or_insert_with(|| SegmentRows { interval, rows: Vec::new() })
                .rows
                .extend(rows);
        }
    };
    for (row, &time) in index.times.iter().enumerate() {
        match &mut run {
            Some((interval, rows)) if interval.contains(time) => rows.push(row as u32),
            _ => {
                flush(run.take(), &mut groups);
                run = Some((index.schema.segment_interval(time), vec![row as u32]));
            }
        }
    }
    flush(run, &mut groups);
    let order = index.column_order();
    let key_rank = |row: u32, d: usize| -> u32 { ranks.0[d][index.keys.id(row as usize, d) as usize] };
    groups.par_iter_mut().for_each(|(_, group)| {
        group.rows.par_sort_unstable_by(|&a, &b| {
            index.times[a as usize].cmp(&index.times[b as usize]).then_with(|| {
                order
                    .iter()
                    .map(|&d| key_rank(a, d).cmp(&key_rank(b, d)))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
        });
    });
    groups
}

/// How string dimensions come out of the index.
#[derive(Clone, Copy)]
enum Strings<'a> {
    /// A dictionary of just the values the rows use, in sorted order: the segment layout.
    SortedDictionary(&'a Ranks),
    /// `Utf8View`, the type queries read: no sorting, for every query of the rows in memory.
    Views,
}

impl RollupIndex {
    /// Builds the segment columns for some rows: `__time`, the dimensions (discovered
    /// dimensions only where these rows have a value), then the metrics. Also returns the
    /// dimensions it wrote.
    pub fn record_batch(&self, rows: &[u32], ranks: &Ranks) -> (RecordBatch, Vec<DimensionSpec>) {
        self.build_batch(rows, Strings::SortedDictionary(ranks))
    }

    /// The rows whose time lies in one of `within` (every row when `None`), in index order,
    /// with the columns of [`RollupIndex::record_batch`] but string dimensions as `Utf8View`:
    /// what a query of the rows in memory reads. No sorting; 16 bytes per row and string
    /// dimension, plus a copy of each dictionary when the rows are as many as its values.
    pub fn query_batch(&self, within: Option<&[Interval]>) -> (RecordBatch, Vec<DimensionSpec>) {
        let rows: Vec<u32> = match within {
            None => (0..self.rows() as u32).collect(),
            Some(ranges) => (0..self.rows() as u32)
                .filter(|&r| {
                    let time = self.times[r as usize];
                    ranges.iter().any(|range| range.contains(time))
                })
                .collect(),
        };
        self.build_batch(&rows, Strings::Views)
    }

    fn build_batch(&self, rows: &[u32], strings: Strings<'_>) -> (RecordBatch, Vec<DimensionSpec>) {
        let mut fields = vec![Field::new(
            TIME_COLUMN,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        )];
        let times: TimestampMillisecondArray =
            rows.iter().map(|&r| self.times[r as usize]).collect::<Vec<_>>().into();
        let mut columns: Vec<ArrayRef> = vec![Arc::new(times.with_timezone("UTC"))];
        let schemaless = self.schema.spec.dimensions.is_schemaless();
        let dimension_columns: Vec<Option<(Field, ArrayRef, DimensionSpec)>> = self
            .column_order()
            .into_par_iter()
            .map(|d| {
                let ids = self.keys.ids(rows, d);
                if schemaless && ids.iter().all(|&id| id == 0) {
                    return None;
                }
                let dim = &self.dims[d];
                let (data_type, column) = dimension_column(&dim.values, &ids, strings, d);
                let kind = dim.values.kind();
                Some((
                    Field::new(dim.name.as_ref(), data_type, true),
                    column,
                    DimensionSpec { kind, name: dim.name.to_string() },
                ))
            })
            .collect();
        let mut written = Vec::new();
        for (field, column, spec) in dimension_columns.into_iter().flatten() {
            fields.push(field);
            columns.push(column);
            written.push(spec);
        }
        for (spec, metric) in self.schema.spec.metrics.iter().zip(&self.metrics) {
            let (data_type, nullable, column): (DataType, bool, ArrayRef) = match metric {
                MetricColumn::Count(values) => {
                    let array: Int64Array =
                        rows.iter().map(|&r| values[r as usize]).collect::<Vec<_>>().into();
                    (DataType::Int64, false, Arc::new(array))
                }
                MetricColumn::Long { values, valid, .. } => {
                    let array: Int64Array = gather(rows, |r| values[r as usize], |r| valid[r as usize]);
                    (DataType::Int64, true, Arc::new(array))
                }
                MetricColumn::Double { kind: AggregatorKind::FloatSum, values, valid, .. } => {
                    let array: Float32Array =
                        gather(rows, |r| values[r as usize] as f32, |r| valid[r as usize]);
                    (DataType::Float32, true, Arc::new(array))
                }
                MetricColumn::Double { values, valid, .. } => {
                    let array: Float64Array = gather(rows, |r| values[r as usize], |r| valid[r as usize]);
                    (DataType::Float64, true, Arc::new(array))
                }
            };
            fields.push(Field::new(&spec.name, data_type, nullable));
            columns.push(column);
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .expect("columns match the schema by construction");
        (batch, written)
    }
}

/// A column of `value(item)` for each item, null where `valid(item)` is false. The values and
/// the validity are gathered in two plain passes (the value under a null is whatever `value`
/// gives), rather than pushed one optional value at a time through a builder.
fn gather<T: ArrowPrimitiveType, I: Copy>(
    items: &[I],
    value: impl Fn(I) -> T::Native,
    valid: impl Fn(I) -> bool,
) -> PrimitiveArray<T> {
    let values: ScalarBuffer<T::Native> = items.iter().map(|&item| value(item)).collect();
    let validity = NullBuffer::new(BooleanBuffer::collect_bool(items.len(), |i| valid(items[i])));
    PrimitiveArray::new(values, (validity.null_count() > 0).then_some(validity))
}

/// A dimension column of `value(id)` for each row's id, null where the id is 0 (null), for
/// which `value` is not asked.
fn by_id<T: ArrowPrimitiveType>(ids: &[u32], value: impl Fn(u32) -> T::Native) -> PrimitiveArray<T> {
    gather(ids, |id| if id == 0 { T::Native::default() } else { value(id) }, |id| id != 0)
}

/// Every value of `ids` (ids of `values`, a string dictionary) in order, in one allocation.
fn strings_of(values: &Dictionary, ids: impl Iterator<Item = u32> + Clone) -> StringArray {
    let bytes = ids.clone().map(|id| values.str_bytes(id).len()).sum();
    let mut builder = StringBuilder::with_capacity(ids.size_hint().0, bytes);
    for id in ids {
        builder.append_value(values.str_value(id));
    }
    builder.finish()
}

/// One dimension's (number `dim`) column for some rows' ids. Strings get a per-segment
/// dictionary of just the values these rows use, in sorted order, or views.
fn dimension_column(
    values: &Dictionary,
    ids: &[u32],
    strings: Strings<'_>,
    dim: usize,
) -> (DataType, ArrayRef) {
    match (values.kind(), strings) {
        (DimensionType::String, Strings::Views) if ids.len() < values.len() => {
            // Fewer rows than values: copy just the rows' strings.
            let mut builder = StringViewBuilder::with_capacity(ids.len());
            for &id in ids {
                if id == 0 {
                    builder.append_null();
                } else {
                    builder.append_value(values.str_value(id));
                }
            }
            (DataType::Utf8View, Arc::new(builder.finish()))
        }
        (DimensionType::String, Strings::Views) => {
            // Arrow gathers a view per row straight from a dictionary of every value.
            let keys: Int32Array = by_id(ids, |id| id as i32 - 1);
            let all = strings_of(values, 1..=values.len() as u32);
            let array = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(all))
                .expect("dictionary keys are in range by construction");
            let views = arrow::compute::cast(&array, &DataType::Utf8View)
                .expect("a string dictionary casts to views");
            (DataType::Utf8View, views)
        }
        (DimensionType::String, Strings::SortedDictionary(ranks)) => {
            // The values these rows use, in sorted order: each placed at its rank (null, id 0,
            // at rank 0).
            let ranks = &ranks.0[dim];
            let mut by_rank = vec![0u32; values.len() + 1];
            for &id in ids {
                by_rank[ranks[id as usize] as usize] = id;
            }
            let used: Vec<u32> = by_rank.into_iter().skip(1).filter(|&id| id != 0).collect();
            let mut dense = vec![0i32; values.len() + 1];
            for (i, &id) in used.iter().enumerate() {
                dense[id as usize] = i as i32;
            }
            let keys: Int32Array = by_id(ids, |id| dense[id as usize]);
            let strings = strings_of(values, used.iter().copied());
            let array = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(strings))
                .expect("dictionary keys are in range by construction");
            (DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), Arc::new(array))
        }
        (DimensionType::Long, _) => {
            let array: Int64Array = by_id(ids, |id| values.i64_value(id));
            (DataType::Int64, Arc::new(array))
        }
        (DimensionType::Float, _) => {
            let array: Float32Array = by_id(ids, |id| values.f32_value(id));
            (DataType::Float32, Arc::new(array))
        }
        (DimensionType::Double, _) => {
            let array: Float64Array = by_id(ids, |id| values.f64_value(id));
            (DataType::Float64, Arc::new(array))
        }
    }
}
