//! The segment file format: plain Parquet that DuckDB, pandas or Spark read with no help.
//!
//! Columns are `__time` (timestamp, milliseconds, UTC, delta-encoded), one per dimension
//! (strings dictionary-encoded), one per metric; rows sorted by time then dimensions; zstd;
//! row groups and pages carry statistics so readers prune by time. The footer's key-value
//! metadata holds the segment id and a JSON description (`braid.segment`), so a segment
//! describes itself.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, new_null_array};
use arrow::datatypes::{DataType, FieldRef, Int32Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use object_store::PutPayload;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::arrow::{ArrowSchemaConverter, add_encoded_arrow_schema_to_metadata};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::metadata::{FileMetaData, KeyValue};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{ColumnPath, SchemaDescriptor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::rollup::{Ranks, RollupIndex, TIME_COLUMN};
use crate::spec::{DataSourceSpec, DimensionSpec, MetricSpec};
use crate::time::{Interval, format_iso};

/// Footer key holding [`SegmentDescription`] as JSON.
pub const DESCRIPTION_KEY: &str = "braid.segment";
/// Footer key holding the segment id alone, for tools that only want that.
pub const ID_KEY: &str = "braid.segment.id";

mod sorted_strings;

/// Rows per Parquet row group: small enough that a time filter skips most of a large segment.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// zstd level of every page.
const ZSTD_LEVEL: i32 = 1;

/// One encoded column chunk of a row group.
enum Chunk {
    /// Encoded by Parquet's Arrow writer.
    Arrow(ArrowColumnChunk),
    /// A sorted string dictionary's pages, written directly.
    Pages(Bytes, ColumnCloseResult),
}

/// One column of one row group, to encode.
struct ColumnWork {
    field: FieldRef,
    column: ArrayRef,
    /// The column's first leaf in the Parquet schema.
    first_leaf: usize,
    /// A string dictionary with sorted, distinct values, whose pages are written directly.
    sorted: bool,
    /// A writer for each of its leaves (the sorted dictionary's goes unused).
    writers: Vec<ArrowColumnWriter>,
}

impl ColumnWork {
    /// The column's chunks, a leaf each.
    fn encode(self, parquet_schema: &SchemaDescriptor, page_rows: usize) -> Result<Vec<Chunk>, ParquetError> {
        if self.sorted {
            // A dictionary column is one leaf; its Arrow writer goes unused.
            let dictionary = self.column.as_dictionary::<Int32Type>();
            let (bytes, close) = sorted_strings::encode_chunk(
                parquet_schema.column(self.first_leaf),
                dictionary.keys(),
                dictionary.values().as_string::<i32>(),
                ZSTD_LEVEL,
                page_rows,
            )?;
            return Ok(vec![Chunk::Pages(bytes, close)]);
        }
        let mut writers = self.writers.into_iter();
        let mut chunks = Vec::new();
        for leaf in compute_leaves(&self.field, &self.column)? {
            let mut writer = writers.next().expect("one writer per leaf");
            writer.write(&leaf)?;
            chunks.push(Chunk::Arrow(writer.close()?));
        }
        Ok(chunks)
    }
}

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

/// Rows encoded as Parquet row groups of column chunks, ahead of the segment file that will
/// hold them: a fraction of their size as Arrow columns (the benchmark's events take 19 bytes a
/// row encoded, where their keys, times and metrics alone take 88 as Arrow arrays). A batch
/// worker holds each unit it built this way until the file is written ([`write_encoded`]).
pub struct EncodedRows {
    schema: SchemaRef,
    dimensions: Vec<DimensionSpec>,
    row_groups: Vec<EncodedRowGroup>,
}

/// One row group's column chunks.
struct EncodedRowGroup {
    rows: usize,
    /// Each column's chunks, one per Parquet leaf.
    columns: Vec<Vec<Chunk>>,
}

impl std::fmt::Debug for EncodedRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedRows")
            .field("schema", &self.schema)
            .field("row_groups", &self.row_groups.len())
            .field("rows", &self.rows())
            .finish()
    }
}

impl EncodedRows {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.row_groups.iter().map(|g| g.rows).sum()
    }
}

/// Encodes a batch that a rollup index built ([`RollupIndex::record_batch`]) as row groups of
/// at most [`ROW_GROUP_ROWS`] rows, to be written by [`write_encoded`]. Row groups encode in
/// parallel on rayon's pool, and so do the column chunks of each, so that a batch of one row
/// group still uses every core. String dictionaries whose values are sorted and distinct (what
/// `record_batch` builds) keep their keys: their pages are written directly (see
/// `sorted_strings`).
///
/// `id` names the segment the rows are for in an error.
pub fn encode_rows(
    batch: &RecordBatch,
    dimensions: Vec<DimensionSpec>,
    id: &str,
) -> Result<EncodedRows, SegmentError> {
    let row_groups = encode_row_groups(batch)
        .map_err(|e| SegmentError::Format { id: id.to_string(), message: e.to_string() })?;
    Ok(EncodedRows { schema: batch.schema(), dimensions, row_groups })
}

fn encode_row_groups(batch: &RecordBatch) -> Result<Vec<EncodedRowGroup>, ParquetError> {
    let schema = batch.schema();
    let props = Arc::new(writer_properties(Vec::new())?);
    let page_rows = props.data_page_row_count_limit();
    let parquet_schema = parquet_schema_of(&schema, &props)?;
    let leaves = leaf_ranges(&schema, &parquet_schema);
    // Column writers take their settings from a file writer; this one writes nowhere.
    let settings =
        SerializedFileWriter::new(std::io::sink(), parquet_schema.root_schema_ptr(), props.clone())?;
    let factory = ArrowRowGroupWriterFactory::new(&settings, schema.clone());
    let sorted = sorted_string_columns(batch);
    let starts: Vec<usize> = (0..batch.num_rows()).step_by(ROW_GROUP_ROWS).collect();
    starts
        .into_par_iter()
        .map(|start| {
            let rows = batch.slice(start, ROW_GROUP_ROWS.min(batch.num_rows() - start));
            // The row group's ordinal in the file only matters to encryption, which segments do
            // not use.
            let mut writers = factory.create_column_writers(0)?;
            let work: Vec<ColumnWork> = schema
                .fields()
                .iter()
                .zip(rows.columns())
                .enumerate()
                .map(|(c, (field, column))| ColumnWork {
                    field: field.clone(),
                    column: column.clone(),
                    first_leaf: leaves[c].start,
                    sorted: sorted[c],
                    writers: writers.drain(..leaves[c].len()).collect(),
                })
                .collect();
            let columns = work
                .into_par_iter()
                .map(|work| work.encode(&parquet_schema, page_rows))
                .collect::<Result<Vec<_>, ParquetError>>()?;
            Ok(EncodedRowGroup { rows: rows.num_rows(), columns })
        })
        .collect()
}

/// A segment file's bytes, as the pieces it was put together from: what the Parquet writer
/// wrote itself, and the chunks that were one `Bytes` already, not copied again. An object
/// store put takes the pieces as they are.
#[derive(Debug, Clone, Default)]
pub struct SegmentBytes {
    parts: Vec<Bytes>,
}

impl SegmentBytes {
    /// The file's length.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// Whether the file has no bytes (never, for a file written here).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file in one piece (a copy, unless it is one piece already).
    pub fn to_bytes(&self) -> Bytes {
        match self.parts.as_slice() {
            [one] => one.clone(),
            parts => Bytes::from(parts.concat()),
        }
    }
}

impl From<SegmentBytes> for PutPayload {
    fn from(file: SegmentBytes) -> Self {
        file.parts.into_iter().collect()
    }
}

/// The sink a segment file is written into. It keeps what the Parquet writer writes itself
/// (headers, footer, the chunks it encoded), but a chunk that is one `Bytes` already (a sorted
/// string column's pages) is registered with [`Splicer::splice`] before it is appended: the
/// writer's copy of it is checked against it and dropped, and the chunk takes its place. That
/// saves writing most of the file's bytes a second time.
#[derive(Default)]
struct Splicer {
    parts: Vec<Bytes>,
    /// What was written since the last spliced chunk.
    pending: Vec<u8>,
    /// Bytes written so far.
    position: usize,
    /// Chunks to splice in, by the position they start at.
    splices: VecDeque<(usize, Bytes)>,
}

impl Splicer {
    /// Registers `chunk` as the bytes the writer will write at `position`.
    fn splice(&mut self, position: usize, chunk: Bytes) -> Result<(), ParquetError> {
        let last_end = self.splices.back().map_or(self.position, |(at, chunk)| at + chunk.len());
        if position < last_end {
            return Err(ParquetError::General(format!(
                "a chunk cannot be spliced in at byte {position}: bytes up to {last_end} are already placed"
            )));
        }
        self.splices.push_back((position, chunk));
        Ok(())
    }

    /// The file, once its writer is closed.
    fn finish(self) -> Result<SegmentBytes, ParquetError> {
        if let Some((at, _)) = self.splices.front() {
            return Err(ParquetError::General(format!(
                "the chunk spliced in at byte {at} was never written; the file ends at {}",
                self.position
            )));
        }
        let mut parts = self.parts;
        if !self.pending.is_empty() {
            parts.push(Bytes::from(self.pending));
        }
        Ok(SegmentBytes { parts })
    }
}

impl Write for Splicer {
    fn write(&mut self, mut buf: &[u8]) -> std::io::Result<usize> {
        let written = buf.len();
        while !buf.is_empty() {
            let position = self.position;
            let n = match self.splices.front() {
                Some((at, chunk)) if position >= *at => {
                    let done = position - at;
                    let n = (chunk.len() - done).min(buf.len());
                    if buf[..n] != chunk[done..done + n] {
                        return Err(std::io::Error::other(format!(
                            "the bytes written at {position} differ from the chunk spliced in at {at}"
                        )));
                    }
                    if done + n == chunk.len() {
                        let (_, chunk) = self.splices.pop_front().expect("matched above");
                        let pending = std::mem::take(&mut self.pending);
                        if !pending.is_empty() {
                            self.parts.push(Bytes::from(pending));
                        }
                        self.parts.push(chunk);
                    }
                    n
                }
                next => {
                    let n = next.map_or(buf.len(), |(at, _)| (at - position).min(buf.len()));
                    self.pending.extend_from_slice(&buf[..n]);
                    n
                }
            };
            self.position += n;
            buf = &buf[n..];
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes encoded rows, one part after the other, as the segment file of one partition of
/// (interval, version). The parts must already be in segment order (each sorted, and every row
/// of a part sorting before every row of the next). The file has every dimension a part has
/// (in name order for a schemaless spec, as a schemaless index orders them); where a part has
/// no value of one, it is null.
pub fn write_encoded(
    parts: Vec<EncodedRows>,
    spec: &DataSourceSpec,
    interval: Interval,
    version: &str,
    partition: u32,
) -> Result<SegmentBytes, SegmentError> {
    let id = segment_id(spec.data_source.as_str(), interval, version, partition);
    let error = |e: &dyn std::fmt::Display| SegmentError::Format { id: id.clone(), message: e.to_string() };
    let (schema, dimensions) =
        every_dimension(&parts, spec.dimensions.is_schemaless()).map_err(|e| error(&e))?;
    let description = SegmentDescription {
        id: id.clone(),
        data_source: spec.data_source.to_string(),
        interval: interval.to_string(),
        version: version.to_string(),
        partition,
        dimensions,
        metrics: spec.metrics.clone(),
        query_granularity: spec.granularity.query.name().to_string(),
        rollup: spec.granularity.rollup,
    };
    write_parts(parts, &schema, &description).map_err(|e| error(&e))
}

/// The schema a file of these parts has: the time, every dimension any part has (in order of
/// discovery, or of name when schemaless) and the metrics. A dimension two parts give different
/// types is an error.
fn every_dimension(
    parts: &[EncodedRows],
    schemaless: bool,
) -> Result<(SchemaRef, Vec<DimensionSpec>), String> {
    let Some(first) = parts.first() else {
        return Err("a segment needs rows of an index".to_string());
    };
    let mut dimensions: Vec<(DimensionSpec, FieldRef)> = Vec::new();
    for part in parts {
        for (d, dimension) in part.dimensions.iter().enumerate() {
            // Column 0 is the time; the dimensions follow in the order written.
            let field = part.schema.fields()[d + 1].clone();
            match dimensions.iter().find(|(known, _)| known.name == dimension.name) {
                Some((_, known)) if known != &field => {
                    return Err(format!(
                        "dimension {:?} is {} in one part and {} in another",
                        dimension.name, known, field
                    ));
                }
                Some(_) => {}
                None => dimensions.push((dimension.clone(), field)),
            }
        }
    }
    if schemaless {
        dimensions.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    }
    let first_metric = 1 + first.dimensions.len();
    let mut fields: Vec<FieldRef> = vec![first.schema.fields()[0].clone()];
    fields.extend(dimensions.iter().map(|(_, field)| field.clone()));
    fields.extend(first.schema.fields()[first_metric..].iter().cloned());
    let schema = Arc::new(Schema::new(fields));
    Ok((schema, dimensions.into_iter().map(|(spec, _)| spec).collect()))
}

/// Writes parts whose columns are among `schema`'s as one file; a column a part lacks is
/// written null for its rows.
fn write_parts(
    parts: Vec<EncodedRows>,
    schema: &SchemaRef,
    description: &SegmentDescription,
) -> Result<SegmentBytes, ParquetError> {
    let json = serde_json::to_string(description).map_err(|e| ParquetError::General(e.to_string()))?;
    let mut props = writer_properties(vec![
        KeyValue::new(ID_KEY.to_string(), description.id.clone()),
        KeyValue::new(DESCRIPTION_KEY.to_string(), json),
    ])?;
    // What ArrowWriter would embed: readers get back dictionary strings and the UTC zone.
    add_encoded_arrow_schema_to_metadata(schema, &mut props);
    let props = Arc::new(props);
    let page_rows = props.data_page_row_count_limit();
    let parquet_schema = parquet_schema_of(schema, &props)?;
    let leaves = leaf_ranges(schema, &parquet_schema);
    let mut writer = SerializedFileWriter::new(Splicer::default(), parquet_schema.root_schema_ptr(), props)?;
    let factory = ArrowRowGroupWriterFactory::new(&writer, schema.clone());
    for part in parts {
        let mut sources = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let source = part.schema.fields().iter().position(|f| f.name() == field.name());
            if let Some(s) = source
                && part.schema.fields()[s] != *field
            {
                return Err(ParquetError::General(format!(
                    "column {} is {} in the file but {} in a part",
                    field.name(),
                    field,
                    part.schema.fields()[s]
                )));
            }
            sources.push(source);
        }
        for group in part.row_groups {
            let mut columns: Vec<Option<Vec<Chunk>>> = group.columns.into_iter().map(Some).collect();
            let mut chunks = Vec::new();
            for (c, field) in schema.fields().iter().enumerate() {
                chunks.extend(match sources[c] {
                    Some(s) => columns[s].take().expect("each column is written once"),
                    None => {
                        // Only a schemaless unit lacks a column; writers for the whole row group
                        // are made to take this column's.
                        let mut writers = factory.create_column_writers(0)?;
                        ColumnWork {
                            field: field.clone(),
                            column: new_null_array(field.data_type(), group.rows),
                            first_leaf: leaves[c].start,
                            sorted: false,
                            writers: writers.drain(leaves[c].clone()).collect(),
                        }
                        .encode(&parquet_schema, page_rows)?
                    }
                });
            }
            // A row group's chunks follow one another from where the file is now, with nothing
            // between them, so where each starts is known before the row group is written.
            let mut position = writer.bytes_written();
            for chunk in &chunks {
                position += match chunk {
                    Chunk::Arrow(chunk) => chunk.close().metadata.compressed_size() as usize,
                    Chunk::Pages(bytes, close) => {
                        let metadata = &close.metadata;
                        let start =
                            metadata.dictionary_page_offset().unwrap_or(metadata.data_page_offset()) as usize;
                        let length = metadata.compressed_size() as usize;
                        writer.inner_mut().splice(position, bytes.slice(start..start + length))?;
                        length
                    }
                };
            }
            let mut row_group = writer.next_row_group()?;
            for chunk in chunks {
                match chunk {
                    Chunk::Arrow(chunk) => chunk.append_to_row_group(&mut row_group)?,
                    Chunk::Pages(bytes, close) => row_group.append_column(&bytes, close)?,
                }
            }
            row_group.close()?;
        }
    }
    writer.into_inner()?.finish()
}

/// Every segment's writer settings, with the footer's key-value metadata.
fn writer_properties(metadata: Vec<KeyValue>) -> Result<WriterProperties, ParquetError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        // Sorted, nearly unique times: deltas, not a dictionary as large as the column.
        .set_column_dictionary_enabled(ColumnPath::from(TIME_COLUMN), false)
        .set_column_encoding(ColumnPath::from(TIME_COLUMN), Encoding::DELTA_BINARY_PACKED)
        .set_key_value_metadata((!metadata.is_empty()).then_some(metadata))
        .build())
}

fn parquet_schema_of(schema: &Schema, props: &WriterProperties) -> Result<SchemaDescriptor, ParquetError> {
    ArrowSchemaConverter::new().with_coerce_types(props.coerce_types()).convert(schema)
}

/// Each column's leaves in the Parquet schema: one, but for nested types.
fn leaf_ranges(schema: &Schema, parquet_schema: &SchemaDescriptor) -> Vec<std::ops::Range<usize>> {
    let mut leaves = vec![0..0; schema.fields().len()];
    for leaf in 0..parquet_schema.num_columns() {
        let column = &mut leaves[parquet_schema.get_column_root_idx(leaf)];
        *column = if column.start == column.end { leaf..leaf + 1 } else { column.start..leaf + 1 };
    }
    leaves
}

/// For each column of a batch, whether it is a string dictionary with sorted, distinct values.
fn sorted_string_columns(batch: &RecordBatch) -> Vec<bool> {
    batch
        .columns()
        .iter()
        .map(|column| match column.data_type() {
            DataType::Dictionary(key, value) if **key == DataType::Int32 && **value == DataType::Utf8 => {
                let values = column.as_dictionary::<Int32Type>().values().as_string::<i32>();
                sorted_strings::is_sorted_dictionary(values)
            }
            _ => false,
        })
        .collect()
}

/// Encodes some rows of an index (in the order given) as the segment file of one partition of
/// (interval, version); the stream's checkpoint writes through here.
pub fn encode_index_rows(
    index: &RollupIndex,
    ranks: &Ranks,
    rows: &[u32],
    interval: Interval,
    version: &str,
    partition: u32,
) -> Result<SegmentBytes, SegmentError> {
    let spec = index.schema().spec();
    let id = segment_id(spec.data_source.as_str(), interval, version, partition);
    let (batch, dimensions) = index.record_batch(rows, ranks);
    let part = encode_rows(&batch, dimensions, &id)?;
    write_encoded(vec![part], spec, interval, version, partition)
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

#[cfg(test)]
mod tests {
    use arrow::array::{Array, DictionaryArray, Int32Array, StringArray};
    use arrow::datatypes::Field;
    use parquet::arrow::arrow_reader::ArrowReaderOptions;
    use parquet::file::metadata::PageIndexPolicy;
    use parquet::file::page_index::column_index::ColumnIndexMetaData;
    use parquet::file::statistics::Statistics;

    use super::*;

    /// Rows: two row groups, each of several pages, one page wholly null.
    const ROWS: usize = ROW_GROUP_ROWS + 30_000;

    fn description() -> SegmentDescription {
        SegmentDescription {
            id: "test_segment".to_string(),
            data_source: "test".to_string(),
            interval: "2013-08-31T00:00:00.000Z/2013-09-01T00:00:00.000Z".to_string(),
            version: "v1".to_string(),
            partition: 0,
            dimensions: Vec::new(),
            metrics: Vec::new(),
            query_granularity: "none".to_string(),
            rollup: true,
        }
    }

    fn dictionary(keys: Vec<Option<i32>>, values: Vec<String>) -> ArrayRef {
        let values = StringArray::from(values);
        Arc::new(DictionaryArray::<Int32Type>::try_new(Int32Array::from(keys), Arc::new(values)).unwrap())
    }

    /// The columns as strings, however each was written.
    fn strings(column: &ArrayRef) -> Vec<Option<String>> {
        let utf8 = arrow::compute::cast(column, &DataType::Utf8).unwrap();
        utf8.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()
    }

    fn batch() -> RecordBatch {
        // Sorted values, some of them unused; rows in a scattered order with runs and nulls,
        // and rows 40_000..60_000 all null (a whole null page).
        let sorted: Vec<String> = (0..5000).map(|i| format!("page {i:05} {}", "é".repeat(i % 3))).collect();
        let key = |row: usize| -> Option<i32> {
            if (40_000..60_000).contains(&row) || row % 7 == 3 {
                None
            } else if row % 100 < 30 {
                Some(4000)
            } else {
                Some(((row * 7919) % 4500) as i32)
            }
        };
        let page = dictionary((0..ROWS).map(key).collect(), sorted);
        let flag =
            dictionary((0..ROWS).map(|r| (r % 5 == 0).then_some(0)).collect(), vec!["true".to_string()]);
        let never = dictionary(vec![None; ROWS], Vec::new());
        let unsorted = dictionary(
            (0..ROWS).map(|r| Some((r % 3) as i32)).collect(),
            vec!["b".to_string(), "a".to_string(), "c".to_string()],
        );
        let plain: ArrayRef =
            Arc::new(StringArray::from_iter((0..ROWS).map(|r| Some(format!("row {}", r % 10)))));
        // Nullable, but never null: its pages take the path for pages without nulls.
        let full = dictionary(
            (0..ROWS).map(|r| Some(((r * 31) % 700) as i32)).collect(),
            (0..700).map(|i| format!("city {i:03}")).collect(),
        );
        let dict_type = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let schema = Schema::new(vec![
            Field::new("page", dict_type.clone(), true),
            Field::new("flag", dict_type.clone(), true),
            Field::new("never", dict_type.clone(), true),
            Field::new("unsorted", dict_type.clone(), true),
            Field::new("plain", DataType::Utf8, false),
            Field::new("full", dict_type, true),
        ]);
        RecordBatch::try_new(Arc::new(schema), vec![page, flag, never, unsorted, plain, full]).unwrap()
    }

    /// Encodes batches of one schema as a Parquet segment file through [`encode_rows`] and
    /// [`write_parts`], as the reindex and the checkpoint do: the batches in order, each cut
    /// into row groups of at most [`ROW_GROUP_ROWS`] rows (a row group never spans two batches).
    fn write_segment(
        batches: &[RecordBatch],
        description: &SegmentDescription,
    ) -> Result<SegmentBytes, SegmentError> {
        let error = |e: &dyn std::fmt::Display| SegmentError::Format {
            id: description.id.clone(),
            message: e.to_string(),
        };
        let Some(first) = batches.first() else {
            return Err(error(&"a segment needs at least one batch, if only to give its schema"));
        };
        let schema = first.schema();
        if let Some(other) = batches.iter().find(|b| b.schema() != schema) {
            return Err(error(&format!("batches differ in schema: {schema} and {}", other.schema())));
        }
        let parts = batches
            .par_iter()
            .map(|batch| encode_rows(batch, Vec::new(), &description.id))
            .collect::<Result<Vec<_>, SegmentError>>()?;
        write_parts(parts, &schema, description).map_err(|e| error(&e))
    }

    #[test]
    fn row_groups_encoded_on_one_thread_keep_their_order() {
        // Seven batches, a row group each, encoded by one thread in the order it takes them.
        let batch = batch();
        let cuts = [0, 10, 25, 1000, 1001, 5000, 40_000, ROWS];
        let pieces: Vec<RecordBatch> = cuts.windows(2).map(|c| batch.slice(c[0], c[1] - c[0])).collect();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let bytes = pool.install(|| write_segment(&pieces, &description())).unwrap().to_bytes();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap();
        let sizes: Vec<usize> =
            reader.metadata().row_groups().iter().map(|g| g.num_rows() as usize).collect();
        let expected: Vec<usize> = cuts.windows(2).map(|c| c[1] - c[0]).collect();
        assert_eq!(sizes, expected);
        let (_, read) = read_segment(bytes, "test").unwrap();
        let read = arrow::compute::concat_batches(&read[0].schema(), &read).unwrap();
        for (i, field) in batch.schema().fields().iter().enumerate() {
            assert_eq!(strings(read.column(i)), strings(batch.column(i)), "{}", field.name());
        }
    }

    #[test]
    fn each_batch_starts_a_row_group_and_batches_must_agree_on_their_schema() {
        let batch = batch();
        let pieces = [batch.slice(0, 1000), batch.slice(1000, ROWS - 1000)];
        let bytes = write_segment(&pieces, &description()).unwrap().to_bytes();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap();
        let sizes: Vec<i64> = reader.metadata().row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(sizes, [1000, ROW_GROUP_ROWS as i64, (ROWS - 1000 - ROW_GROUP_ROWS) as i64]);
        let (_, read) = read_segment(bytes, "test").unwrap();
        let read = arrow::compute::concat_batches(&read[0].schema(), &read).unwrap();
        for (i, field) in batch.schema().fields().iter().enumerate() {
            assert_eq!(strings(read.column(i)), strings(batch.column(i)), "{}", field.name());
        }

        let narrower = batch.project(&[0, 1]).unwrap();
        let error = write_segment(&[batch, narrower], &description()).unwrap_err().to_string();
        assert!(error.contains("test_segment") && error.contains("differ in schema"), "{error}");
        let error = write_segment(&[], &description()).unwrap_err().to_string();
        assert!(error.contains("at least one batch"), "{error}");
    }

    #[test]
    fn string_dimensions_read_back_as_written_with_their_statistics() {
        let batch = batch();
        let bytes = write_segment(std::slice::from_ref(&batch), &description()).unwrap().to_bytes();

        let (_, read) = read_segment(bytes.clone(), "test").unwrap();
        let read = arrow::compute::concat_batches(&read[0].schema(), &read).unwrap();
        assert_eq!(read.num_rows(), ROWS);
        for (i, field) in batch.schema().fields().iter().enumerate() {
            assert_eq!(read.schema().field(i).data_type(), field.data_type(), "{}", field.name());
            assert_eq!(strings(read.column(i)), strings(batch.column(i)), "{}", field.name());
        }

        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options).unwrap();
        let metadata = reader.metadata();
        assert_eq!(metadata.num_row_groups(), 2);
        let column_index = metadata.column_index().expect("a column index");
        let offset_index = metadata.offset_index().expect("an offset index");
        for (g, group) in metadata.row_groups().iter().enumerate() {
            let start = g * ROW_GROUP_ROWS;
            let rows = group.num_rows() as usize;
            for c in [0, 1, 2, 5] {
                let values = strings(&batch.column(c).slice(start, rows));
                let name = batch.schema().field(c).name().clone();
                let chunk = group.column(c);
                let encodings: Vec<_> = chunk.encodings().collect();
                assert!(encodings.contains(&Encoding::RLE_DICTIONARY), "{name}: {encodings:?}");
                let Some(Statistics::ByteArray(stats)) = chunk.statistics() else {
                    panic!("{name}: no statistics")
                };
                let present = || values.iter().flatten().map(|v| v.as_bytes());
                assert_eq!(stats.min_bytes_opt(), present().min(), "{name} row group {g}");
                assert_eq!(stats.max_bytes_opt(), present().max(), "{name} row group {g}");
                assert_eq!(
                    stats.null_count_opt(),
                    Some(values.iter().filter(|v| v.is_none()).count() as u64)
                );

                let ColumnIndexMetaData::BYTE_ARRAY(pages) = &column_index[g][c] else {
                    panic!("{name}: no byte array column index")
                };
                let locations = offset_index[g][c].page_locations();
                assert_eq!(pages.num_pages() as usize, locations.len());
                assert!(locations.len() > 1, "{name}: several pages");
                for (p, location) in locations.iter().enumerate() {
                    let first = location.first_row_index as usize;
                    let end = locations.get(p + 1).map_or(rows, |l| l.first_row_index as usize);
                    let page = &values[first..end];
                    let present = || page.iter().flatten().map(|v| v.as_bytes());
                    assert_eq!(pages.is_null_page(p), present().next().is_none(), "{name} page {p}");
                    assert_eq!(pages.null_count(p), Some(page.iter().filter(|v| v.is_none()).count() as i64));
                    if !pages.is_null_page(p) {
                        assert_eq!(pages.min_value(p), present().min(), "{name} page {p}");
                        assert_eq!(pages.max_value(p), present().max(), "{name} page {p}");
                    }
                }
            }
        }
    }

    #[test]
    fn encoded_parts_fill_the_dimensions_they_lack_with_nulls_and_must_agree_on_types() {
        let spec = crate::spec::load_specs(
            &serde_json::json!({
                "type": "kafka",
                "spec": {"dataSchema": {
                    "dataSource": "test",
                    "timestampSpec": {"column": "ts", "format": "millis"},
                    "dimensionsSpec": {"dimensions": []},
                    "metricsSpec": [{"type": "count", "name": "count"}],
                    "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "none"}
                }}
            })
            .to_string(),
            "test",
        )
        .unwrap()
        .specs
        .remove(0);
        let dict_type = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let time_type = DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, Some("UTC".into()));
        // time, one dimension, count
        let part = |name: &str, dimension: ArrayRef, first: i64| {
            let rows = dimension.len();
            let schema = Schema::new(vec![
                Field::new(TIME_COLUMN, time_type.clone(), false),
                Field::new(name, dimension.data_type().clone(), true),
                Field::new("count", DataType::Int64, false),
            ]);
            let times = arrow::array::TimestampMillisecondArray::from_iter_values(first..first + rows as i64)
                .with_timezone("UTC");
            let counts = arrow::array::Int64Array::from_iter_values(std::iter::repeat_n(1, rows));
            let batch =
                RecordBatch::try_new(Arc::new(schema), vec![Arc::new(times), dimension, Arc::new(counts)])
                    .unwrap();
            let kind = if *batch.schema().field(1).data_type() == dict_type {
                crate::spec::DimensionType::String
            } else {
                crate::spec::DimensionType::Long
            };
            encode_rows(&batch, vec![DimensionSpec { kind, name: name.to_string() }], "test").unwrap()
        };
        let strings_of = |values: &[&str]| {
            dictionary(
                (0..values.len() as i32).map(Some).collect(),
                values.iter().map(|v| v.to_string()).collect(),
            )
        };
        let interval = Interval::parse("2013-08-31/P1D").unwrap();

        let parts = vec![part("b", strings_of(&["x", "y"]), 0), part("a", strings_of(&["z"]), 2)];
        let bytes = write_encoded(parts, &spec, interval, "v1", 0).unwrap().to_bytes();
        let (description, read) = read_segment(bytes, "test").unwrap();
        let names: Vec<&str> = description.dimensions.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["a", "b"], "a schemaless spec's dimensions are in name order");
        let read = arrow::compute::concat_batches(&read[0].schema(), &read).unwrap();
        let column = |name: &str| strings(read.column_by_name(name).unwrap());
        assert_eq!(column("a"), [None, None, Some("z".to_string())]);
        assert_eq!(column("b"), [Some("x".to_string()), Some("y".to_string()), None]);

        let numbers: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![7]));
        let parts = vec![part("a", strings_of(&["x"]), 0), part("a", numbers, 1)];
        let error = write_encoded(parts, &spec, interval, "v1", 0).unwrap_err().to_string();
        assert!(error.contains("test_2013-08-31") && error.contains("dimension \"a\" is"), "{error}");
    }

    #[test]
    fn spliced_chunks_take_the_place_of_the_copy_written_of_them() {
        let mut splicer = Splicer::default();
        let chunk = Bytes::from_static(b"CHUNK");
        splicer.splice(3, chunk.clone()).unwrap();
        // The writer's copy of the chunk arrives in pieces, and with bytes of its own around it.
        for piece in [&b"hd"[..], b"rCH", b"UN", b"Kfooter"] {
            splicer.write_all(piece).unwrap();
        }
        let error = splicer.splice(5, Bytes::from_static(b"x")).unwrap_err().to_string();
        assert!(error.contains("byte 5") && error.contains("up to 14"), "{error}");
        let file = splicer.finish().unwrap();
        assert_eq!(file.to_bytes(), Bytes::from_static(b"hdrCHUNKfooter"));
        assert_eq!(file.parts.len(), 3);
        assert_eq!(file.parts[1].as_ptr(), chunk.as_ptr(), "the chunk itself, not a copy");

        // A copy that differs from the chunk, or a chunk never written, is an error.
        let mut splicer = Splicer::default();
        splicer.splice(0, Bytes::from_static(b"abc")).unwrap();
        let error = splicer.write_all(b"abd").unwrap_err().to_string();
        assert!(error.contains("differ from the chunk spliced in at 0"), "{error}");
        let mut splicer = Splicer::default();
        splicer.splice(2, Bytes::from_static(b"abc")).unwrap();
        splicer.write_all(b"12").unwrap();
        let error = splicer.finish().unwrap_err().to_string();
        assert!(error.contains("byte 2 was never written") && error.contains("ends at 2"), "{error}");
    }
}
