//! Rows out of the index: grouped by segment interval, sorted by time then dimension values,
//! and built into Arrow record batches in the segment column layout.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, DictionaryArray, Float32Array, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::{MetricColumn, RollupIndex};
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

pub(super) fn segments(index: &RollupIndex) -> BTreeMap<Interval, SegmentRows> {
    let mut groups: BTreeMap<Interval, SegmentRows> = BTreeMap::new();
    for (row, &time) in index.times.iter().enumerate() {
        let interval = index.schema.segment_interval(time);
        groups
            .entry(interval)
            .or_insert_with(|| SegmentRows { interval, rows: Vec::new() })
            .rows
            .push(row as u32);
    }
    let order = index.column_order();
    let ranks: Vec<Vec<u32>> = order.iter().map(|&d| index.dims[d].values.ranks()).collect();
    let width = index.width;
    let key_rank = |row: u32, i: usize| -> u32 {
        let d = order[i];
        if d >= width { 0 } else { ranks[i][index.keys[row as usize * width + d] as usize] }
    };
    for group in groups.values_mut() {
        group.rows.sort_unstable_by(|&a, &b| {
            index.times[a as usize].cmp(&index.times[b as usize]).then_with(|| {
                (0..order.len())
                    .map(|i| key_rank(a, i).cmp(&key_rank(b, i)))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
        });
    }
    groups
}

impl RollupIndex {
    /// Builds the segment columns for some rows: `__time`, the dimensions (discovered
    /// dimensions only where these rows have a value), then the metrics. Also returns the
    /// dimensions it wrote.
    pub fn record_batch(&self, rows: &[u32]) -> (RecordBatch, Vec<DimensionSpec>) {
        let width = self.width;
        let id_of = |row: u32, d: usize| if d >= width { 0 } else { self.keys[row as usize * width + d] };
        let mut fields = vec![Field::new(
            TIME_COLUMN,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        )];
        let times: TimestampMillisecondArray =
            rows.iter().map(|&r| self.times[r as usize]).collect::<Vec<_>>().into();
        let mut columns: Vec<ArrayRef> = vec![Arc::new(times.with_timezone("UTC"))];
        let mut written = Vec::new();
        let schemaless = self.schema.spec.dimensions.is_schemaless();
        for d in self.column_order() {
            let dim = &self.dims[d];
            let ids: Vec<u32> = rows.iter().map(|&r| id_of(r, d)).collect();
            if schemaless && ids.iter().all(|&id| id == 0) {
                continue;
            }
            let kind = dim.values.kind();
            let (data_type, column): (DataType, ArrayRef) = match kind {
                DimensionType::String => {
                    // A per-segment dictionary of just the values these rows use, in sorted order.
                    let mut used: Vec<u32> = ids.iter().copied().filter(|&id| id != 0).collect();
                    used.sort_unstable_by(|a, b| dim.values.str_value(*a).cmp(dim.values.str_value(*b)));
                    used.dedup();
                    let mut dense = vec![-1i32; dim.values.len() + 1];
                    for (i, &id) in used.iter().enumerate() {
                        dense[id as usize] = i as i32;
                    }
                    let keys: Int32Array =
                        ids.iter().map(|&id| (id != 0).then(|| dense[id as usize])).collect();
                    let values: StringArray = used.iter().map(|&id| Some(dim.values.str_value(id))).collect();
                    let array = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values))
                        .expect("dictionary keys are in range by construction");
                    (
                        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                        Arc::new(array),
                    )
                }
                DimensionType::Long => {
                    let array: Int64Array =
                        ids.iter().map(|&id| (id != 0).then(|| dim.values.i64_value(id))).collect();
                    (DataType::Int64, Arc::new(array))
                }
                DimensionType::Float => {
                    let array: Float32Array =
                        ids.iter().map(|&id| (id != 0).then(|| dim.values.f32_value(id))).collect();
                    (DataType::Float32, Arc::new(array))
                }
                DimensionType::Double => {
                    let array: Float64Array =
                        ids.iter().map(|&id| (id != 0).then(|| dim.values.f64_value(id))).collect();
                    (DataType::Float64, Arc::new(array))
                }
            };
            fields.push(Field::new(dim.name.as_ref(), data_type, true));
            columns.push(column);
            written.push(DimensionSpec { kind, name: dim.name.to_string() });
        }
        for (spec, metric) in self.schema.spec.metrics.iter().zip(&self.metrics) {
            let (data_type, nullable, column): (DataType, bool, ArrayRef) = match metric {
                MetricColumn::Count(values) => {
                    let array: Int64Array =
                        rows.iter().map(|&r| values[r as usize]).collect::<Vec<_>>().into();
                    (DataType::Int64, false, Arc::new(array))
                }
                MetricColumn::Long { values, valid, .. } => {
                    let array: Int64Array =
                        rows.iter().map(|&r| valid[r as usize].then(|| values[r as usize])).collect();
                    (DataType::Int64, true, Arc::new(array))
                }
                MetricColumn::Double { kind: AggregatorKind::FloatSum, values, valid, .. } => {
                    let array: Float32Array =
                        rows.iter().map(|&r| valid[r as usize].then(|| values[r as usize] as f32)).collect();
                    (DataType::Float32, true, Arc::new(array))
                }
                MetricColumn::Double { values, valid, .. } => {
                    let array: Float64Array =
                        rows.iter().map(|&r| valid[r as usize].then(|| values[r as usize])).collect();
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
