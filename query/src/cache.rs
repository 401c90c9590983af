//! Segments as queries read them: each segment file's footer (schema, description and the
//! `__time` range of every row group) and its decoded row groups, kept in memory up to a byte
//! bound, least recently used first out. Segment files never change once written, so nothing
//! here is ever stale; files are read with ranged requests, only the row groups asked for.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use common::segment::{SegmentDescription, footer_description};
use common::storage::DeepStorage;
use common::time::Millis;
use datafusion::error::DataFusionError;
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use lru::LruCache;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::statistics::Statistics;

use crate::codes::{ColumnCodes, with_code_columns};

/// Bytes read from a file's end on the first request; enough for most segment footers.
const FOOTER_PREFETCH_BYTES: usize = 64 * 1024;

/// The `__time` range of one row group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowGroupSpan {
    /// Smallest row time.
    pub min_time: Millis,
    /// Largest row time.
    pub max_time: Millis,
    /// Rows in the group.
    pub rows: usize,
}

/// What a segment's footer says.
#[derive(Debug)]
pub struct SegmentMeta {
    /// Root-relative path of the file.
    pub path: String,
    /// File size in bytes.
    pub size: u64,
    /// The description braid wrote into the footer.
    pub description: SegmentDescription,
    /// The Arrow schema of the rows.
    pub schema: SchemaRef,
    /// Each row group's time range, in file order.
    pub row_groups: Vec<RowGroupSpan>,
    reader: ArrowReaderMetadata,
}

/// Decoded row groups and footers of segment files, bounded in bytes.
#[derive(Debug)]
pub struct SegmentCache {
    storage: DeepStorage,
    capacity_bytes: usize,
    state: Mutex<CacheState>,
    row_groups_read: AtomicU64,
}

#[derive(Debug)]
struct CacheState {
    groups: LruCache<(String, usize), Arc<CachedGroup>>,
    bytes: usize,
    metas: HashMap<String, Arc<SegmentMeta>>,
    /// The current dictionary of each string column queries grouped on.
    codes: HashMap<String, Arc<ColumnCodes>>,
}

/// A decoded row group and the codes of those of its string columns queries grouped on, each
/// with the epoch of the dictionary that gave them.
#[derive(Debug)]
struct CachedGroup {
    batch: RecordBatch,
    codes: Mutex<Vec<(u64, String, ArrayRef)>>,
}

impl CachedGroup {
    fn codes(&self) -> std::sync::MutexGuard<'_, Vec<(u64, String, ArrayRef)>> {
        self.codes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn bytes(&self) -> usize {
        self.batch.get_array_memory_size()
            + self.codes().iter().map(|(_, _, codes)| codes.get_array_memory_size()).sum::<usize>()
    }

    /// This group's codes from dictionary `codes`, if computed already.
    fn coded(&self, codes: &ColumnCodes) -> Option<ArrayRef> {
        self.codes().iter().find(|(epoch, _, _)| *epoch == codes.epoch()).map(|(_, _, c)| Arc::clone(c))
    }
}

impl SegmentCache {
    /// A cache over `storage` holding at most `capacity_bytes` of decoded rows.
    pub fn new(storage: DeepStorage, capacity_bytes: usize) -> Self {
        let state = CacheState {
            groups: LruCache::unbounded(),
            bytes: 0,
            metas: HashMap::new(),
            codes: HashMap::new(),
        };
        Self { storage, capacity_bytes, state: Mutex::new(state), row_groups_read: AtomicU64::new(0) }
    }

    /// Row groups read from deep storage so far (cache misses).
    pub fn row_groups_read(&self) -> u64 {
        self.row_groups_read.load(Ordering::Relaxed)
    }

    /// Bytes of decoded rows held now.
    pub fn used_bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // A panic while holding the lock leaves the maps consistent (each update is one call).
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The footer of the segment at `path`, read once per process.
    pub async fn meta(
        &self,
        path: &str,
        size_hint: Option<u64>,
    ) -> Result<Arc<SegmentMeta>, DataFusionError> {
        if let Some(meta) = self.lock().metas.get(path) {
            return Ok(Arc::clone(meta));
        }
        let meta = Arc::new(self.read_meta(path, size_hint).await?);
        self.lock().metas.insert(path.to_string(), Arc::clone(&meta));
        Ok(meta)
    }

    async fn read_meta(&self, path: &str, size_hint: Option<u64>) -> Result<SegmentMeta, DataFusionError> {
        let failed = |e: &dyn std::fmt::Display| {
            DataFusionError::Execution(format!("cannot read the footer of segment file {path}: {e}"))
        };
        let size = match size_hint {
            Some(size) => size,
            None => self.storage.head(path).await.map_err(|e| failed(&e))?.size,
        };
        let mut reader = self.reader(path, size);
        let stored = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new())
            .await
            .map_err(|e| failed(&e))?;
        // Row groups are decoded straight into the types queries use (string dimensions as
        // views into the column's dictionary page), once, when they enter the cache.
        let wanted = Arc::new(crate::table::query_schema(stored.schema()));
        let reader_meta = ArrowReaderMetadata::try_new(
            Arc::clone(stored.metadata()),
            ArrowReaderOptions::new().with_schema(wanted),
        )
        .map_err(|e| failed(&e))?;
        let parquet = reader_meta.metadata();
        let description = footer_description(parquet.file_metadata()).map_err(|e| failed(&e))?;
        let time_index = reader_meta
            .schema()
            .index_of(crate::table::TIME_COLUMN)
            .map_err(|_| failed(&"no __time column"))?;
        let row_groups = parquet
            .row_groups()
            .iter()
            .map(|rg| match rg.column(time_index).statistics() {
                Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                    (Some(&min), Some(&max)) => {
                        Ok(RowGroupSpan { min_time: min, max_time: max, rows: rg.num_rows() as usize })
                    }
                    _ => Err(failed(&"a row group's __time statistics have no min/max")),
                },
                _ => Err(failed(&"a row group has no int64 __time statistics")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SegmentMeta {
            path: path.to_string(),
            size,
            description,
            schema: Arc::clone(reader_meta.schema()),
            row_groups,
            reader: reader_meta,
        })
    }

    fn reader(&self, path: &str, size: u64) -> SegmentFileReader {
        SegmentFileReader { store: self.storage.object_store(), path: self.storage.path(path), size }
    }

    /// The decoded rows of some row groups of a segment, one batch per group, in the order
    /// asked for; groups not in memory are read from deep storage and kept. After each batch's
    /// own columns come the codes of string columns from each dictionary of `codes` (named by
    /// [`crate::codes::code_column`]; left out when the segment lacks the column), computed the
    /// first time a group is asked for them and kept with it.
    pub async fn row_groups(
        &self,
        meta: &SegmentMeta,
        groups: &[usize],
        codes: &[Arc<ColumnCodes>],
    ) -> Result<Vec<RecordBatch>, DataFusionError> {
        let mut found: Vec<Option<Arc<CachedGroup>>> = {
            let mut state = self.lock();
            groups.iter().map(|&g| state.groups.get(&(meta.path.clone(), g)).cloned()).collect()
        };
        let missing: Vec<usize> =
            groups.iter().zip(&found).filter(|(_, f)| f.is_none()).map(|(&g, _)| g).collect();
        if !missing.is_empty() {
            let loaded =
                futures::future::try_join_all(missing.iter().map(|&g| self.read_group(meta, g))).await?;
            let mut state = self.lock();
            for (g, batch) in missing.iter().zip(loaded) {
                let group = Arc::new(CachedGroup { batch, codes: Mutex::new(Vec::new()) });
                let slot = groups.iter().position(|x| x == g).map(|i| &mut found[i]);
                if let Some(slot) = slot {
                    *slot = Some(Arc::clone(&group));
                }
                self.insert(&mut state, (meta.path.clone(), *g), group);
            }
        }
        let mut out = Vec::with_capacity(groups.len());
        for (&g, group) in groups.iter().zip(found.into_iter().flatten()) {
            if codes.is_empty() {
                out.push(group.batch.clone());
                continue;
            }
            out.push(with_code_columns(&group.batch, codes, |dictionary, values| {
                match group.coded(dictionary) {
                    Some(coded) => Ok(coded),
                    None => self.keep_codes(&meta.path, g, &group, dictionary, values),
                }
            })?);
        }
        Ok(out)
    }

    /// Codes a group's column and keeps them with the group, replacing codes of an older
    /// epoch, and counts their bytes while the group is still cached.
    fn keep_codes(
        &self,
        path: &str,
        g: usize,
        group: &Arc<CachedGroup>,
        dictionary: &ColumnCodes,
        values: &ArrayRef,
    ) -> Result<ArrayRef, DataFusionError> {
        let coded: ArrayRef = Arc::new(dictionary.encode(values.as_ref())?);
        let mut state = self.lock();
        let before = group.bytes();
        {
            let mut kept = group.codes();
            kept.retain(|(_, column, _)| column != dictionary.column());
            kept.push((dictionary.epoch(), dictionary.column().to_string(), Arc::clone(&coded)));
        }
        let cached = state.groups.peek(&(path.to_string(), g)).is_some_and(|c| Arc::ptr_eq(c, group));
        if cached {
            state.bytes = state.bytes + group.bytes() - before;
            self.evict_over_capacity(&mut state);
        }
        Ok(coded)
    }

    /// The dictionary of string column `column` queries group on now. Dictionaries only grow,
    /// so once all of them together hold more than a quarter of the cache's bound they are
    /// all replaced by empty ones (new epochs); queries still holding the old ones finish
    /// with them, and cached codes of old epochs are computed again when next asked for.
    pub fn column_codes(&self, column: &str) -> Arc<ColumnCodes> {
        let mut state = self.lock();
        let held: usize = state.codes.values().map(|codes| codes.bytes()).sum();
        if held > self.capacity_bytes / 4 {
            state.codes.clear();
        }
        let codes =
            state.codes.entry(column.to_string()).or_insert_with(|| Arc::new(ColumnCodes::new(column)));
        Arc::clone(codes)
    }

    async fn read_group(&self, meta: &SegmentMeta, group: usize) -> Result<RecordBatch, DataFusionError> {
        let failed = |e: &dyn std::fmt::Display| {
            DataFusionError::Execution(format!(
                "cannot read row group {group} of segment file {}: {e}",
                meta.path
            ))
        };
        self.row_groups_read.fetch_add(1, Ordering::Relaxed);
        let rows = meta.row_groups.get(group).map(|g| g.rows).ok_or_else(|| failed(&"no such row group"))?;
        let stream = ParquetRecordBatchStreamBuilder::new_with_metadata(
            self.reader(&meta.path, meta.size),
            meta.reader.clone(),
        )
        .with_row_groups(vec![group])
        .with_batch_size(rows.max(1))
        .build()
        .map_err(|e| failed(&e))?;
        let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(|e| failed(&e))?;
        arrow::compute::concat_batches(&meta.schema, &batches).map_err(|e| failed(&e))
    }

    fn insert(&self, state: &mut CacheState, key: (String, usize), group: Arc<CachedGroup>) {
        let size = group.bytes();
        if size > self.capacity_bytes {
            return;
        }
        if let Some(old) = state.groups.put(key, group) {
            state.bytes -= old.bytes();
        }
        state.bytes += size;
        self.evict_over_capacity(state);
    }

    fn evict_over_capacity(&self, state: &mut CacheState) {
        while state.bytes > self.capacity_bytes {
            match state.groups.pop_lru() {
                Some((_, evicted)) => state.bytes -= evicted.bytes(),
                None => break,
            }
        }
    }
}

/// Default cache bound: 1 GiB of decoded rows.
pub const DEFAULT_CACHE_BYTES: usize = 1 << 30;

/// Ranged reads of one segment file whose size is known, so the footer costs one request.
struct SegmentFileReader {
    store: Arc<dyn ObjectStore>,
    path: StorePath,
    size: u64,
}

fn store_error(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for SegmentFileReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move { self.store.get_range(&self.path, range).await.map_err(store_error) }.boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move { self.store.get_ranges(&self.path, &ranges).await.map_err(store_error) }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .with_prefetch_hint(Some(FOOTER_PREFETCH_BYTES))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}
