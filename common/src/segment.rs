//! The segment file format: plain Parquet that DuckDB, pandas or Spark read with no help.
//!
//! Columns are `__time` (timestamp, milliseconds, UTC), one per dimension (strings
//! dictionary-encoded), one per metric; rows sorted by time then dimensions; zstd; row groups
//! and pages carry statistics so readers prune by time. The footer's key-value metadata holds
//! the segment id and a JSON description (`braid.segment`), so a segment describes itself.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::arrow::{ArrowSchemaConverter, add_encoded_arrow_schema_to_metadata};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{FileMetaData, KeyValue};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::rollup::{Ranks, RollupIndex};
use crate::spec::{DimensionSpec, MetricSpec};
use crate::time::{Interval, format_iso};

/// Footer key holding [`SegmentDescription`] as JSON.
pub const DESCRIPTION_KEY: &str = "braid.segment";
/// Footer key holding the segment id alone, for tools that only want that.
pub const ID_KEY: &str = "braid.segment.id";

/// Rows per Parquet row group: small enough that a time filter skips most of a large segment.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// A segment file that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// Parquet or Arrow failed.
    #[error("segment {id}: {message}")]
    Format {
        /// The segment id, or the path when the id is unknown.
        id: String,
        /// What failed.
        message: String,
    },
}

/// Druid's segment id: `dataSource_start_end_version[_partition]`, partition omitted when 0.
pub fn segment_id(data_source: &str, interval: Interval, version: &str, partition: u32) -> String {
    let base = format!("{data_source}_{}_{}_{version}", format_iso(interval.start), format_iso(interval.end));
    if partition == 0 { base } else { format!("{base}_{partition}") }
}

/// What a segment says about itself in its footer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentDescription {
    /// Druid segment id.
    pub id: String,
    /// The table.
    pub data_source: String,
    /// ISO interval `start/end`.
    pub interval: String,
    /// Version; higher overshadows lower.
    pub version: String,
    /// Partition number within the version.
    pub partition: u32,
    /// Dimension columns, in order.
    pub dimensions: Vec<DimensionSpec>,
    /// Metric columns, in order, with the ingest-time aggregator that made each.
    pub metrics: Vec<MetricSpec>,
    /// Granularity the row times were truncated to.
    pub query_granularity: String,
    /// Whether rows were rolled up.
    pub rollup: bool,
}

/// Encodes rows as a Parquet segment file. Row groups are encoded in parallel (on rayon's
/// pool) and then written in order, so one large segment still uses every core.
pub fn write_segment(batch: &RecordBatch, description: &SegmentDescription) -> Result<Bytes, SegmentError> {
    let error = |e: &dyn std::fmt::Display| SegmentError::Format {
        id: description.id.clone(),
        message: e.to_string(),
    };
    let json = serde_json::to_string(description).map_err(|e| error(&e))?;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).map_err(|e| error(&e))?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(ID_KEY.to_string(), description.id.clone()),
            KeyValue::new(DESCRIPTION_KEY.to_string(), json),
        ]))
        .build();
    // What ArrowWriter would embed: readers get back dictionary strings and the UTC zone.
    add_encoded_arrow_schema_to_metadata(&batch.schema(), &mut props);
    let props = Arc::new(props);
    let parquet_schema = ArrowSchemaConverter::new()
        .with_coerce_types(props.coerce_types())
        .convert(&batch.schema())
        .map_err(|e| error(&e))?;
    let mut buffer = Vec::with_capacity(batch.get_array_memory_size() / 4);
    let mut writer = SerializedFileWriter::new(&mut buffer, parquet_schema.root_schema_ptr(), props)
        .map_err(|e| error(&e))?;
    let factory = ArrowRowGroupWriterFactory::new(&writer, batch.schema());

    let groups = batch.num_rows().div_ceil(ROW_GROUP_ROWS);
    let encoded: Vec<Result<Vec<ArrowColumnChunk>, ParquetError>> = (0..groups)
        .into_par_iter()
        .map(|g| {
            let offset = g * ROW_GROUP_ROWS;
            let rows = batch.slice(offset, ROW_GROUP_ROWS.min(batch.num_rows() - offset));
            let mut writers = factory.create_column_writers(g)?;
            let mut writers_iter = writers.iter_mut();
            for (field, column) in rows.schema().fields().iter().zip(rows.columns()) {
                for leaf in compute_leaves(field, column)? {
                    writers_iter.next().expect("one writer per leaf").write(&leaf)?;
                }
            }
            writers.into_iter().map(|w| w.close()).collect()
        })
        .collect();
    for chunks in encoded {
        let mut row_group = writer.next_row_group().map_err(|e| error(&e))?;
        for chunk in chunks.map_err(|e| error(&e))? {
            chunk.append_to_row_group(&mut row_group).map_err(|e| error(&e))?;
        }
        row_group.close().map_err(|e| error(&e))?;
    }
    writer.close().map_err(|e| error(&e))?;
    Ok(Bytes::from(buffer))
}

/// Encodes some rows of an index (in the order given) as the segment file of one partition of
/// (interval, version); the batch indexer and the stream's checkpoint both write through here.
pub fn encode_index_rows(
    index: &RollupIndex,
    ranks: &Ranks,
    rows: &[u32],
    interval: Interval,
    version: &str,
    partition: u32,
) -> Result<Bytes, SegmentError> {
    let spec = index.schema().spec();
    let data_source = spec.data_source.as_str();
    let (batch, dimensions) = index.record_batch(rows, ranks);
    let description = SegmentDescription {
        id: segment_id(data_source, interval, version, partition),
        data_source: data_source.to_string(),
        interval: interval.to_string(),
        version: version.to_string(),
        partition,
        dimensions,
        metrics: spec.metrics.clone(),
        query_granularity: spec.granularity.query.name().to_string(),
        rollup: spec.granularity.rollup,
    };
    write_segment(&batch, &description)
}

/// The description braid wrote into a segment file's footer.
pub fn footer_description(footer: &FileMetaData) -> Result<SegmentDescription, String> {
    let json = footer
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == DESCRIPTION_KEY))
        .and_then(|kv| kv.value.as_deref())
        .ok_or_else(|| format!("footer has no \"{DESCRIPTION_KEY}\" metadata"))?;
    serde_json::from_str(json).map_err(|e| format!("footer \"{DESCRIPTION_KEY}\" metadata: {e}"))
}

/// Reads a whole segment file back: its description and its rows.
pub fn read_segment(
    bytes: Bytes,
    name: &str,
) -> Result<(SegmentDescription, Vec<RecordBatch>), SegmentError> {
    let error =
        |e: &dyn std::fmt::Display| SegmentError::Format { id: name.to_string(), message: e.to_string() };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| error(&e))?;
    let description = footer_description(builder.metadata().file_metadata()).map_err(|e| error(&e))?;
    let reader = builder.build().map_err(|e| error(&e))?;
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|e| error(&e))?;
    Ok((description, batches))
}
