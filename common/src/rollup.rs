//! The rollup engine shared by the stream and the batch indexer: events parsed straight into a
//! dictionary-encoded incremental index, folded by (truncated time, dimension values), and
//! turned into sorted Arrow record batches, one set per segment interval.
//!
//! Each dimension has a dictionary from value to a dense `u32` id (0 is null), so a row key is
//! a few bytes of ids, each packed at the width its dimension needs, in one flat vector, and
//! the fold is one hash probe per event, with no per-event allocation. Parsing feeds the
//! dictionaries directly, so a string value is hashed once and copied only the first time it is
//! seen: a byte scanner reads the usual flat event, and serde_json every other one (and says
//! what is wrong with a bad one).

mod arrow_out;
mod dictionary;
mod flat;
mod keys;
mod parse;

use std::collections::BTreeMap;
use std::sync::Arc;

use hashbrown::HashTable;

use crate::spec::{AggregatorKind, DataSourceSpec, MetricSpec};
use crate::time::{Granularity, Interval, Millis};

pub use arrow_out::{Ranks, SegmentRows, TIME_COLUMN};
pub use dictionary::StringDictionary;
use dictionary::{Dictionary, spread};
use keys::RowKeys;
pub use parse::{EventError, event_time};

/// What a field of an event feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Timestamp,
    Dimension(usize),
    /// Index into the distinct metric input fields.
    MetricInput(usize),
    Ignore,
}

/// A numeric metric input as it appeared in the event.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Long(i64),
    Double(f64),
}

impl Num {
    fn as_i64(self) -> i64 {
        match self {
            Num::Long(v) => v,
            // Druid casts: a long aggregator truncates fractional input.
            Num::Double(v) => v as i64,
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::Long(v) => v as f64,
            Num::Double(v) => v,
        }
    }
}

/// An entry of the rollup table: a row and 32 bits of its key's hash, so that growing the
/// table never reads a row's key again.
#[derive(Debug, Clone, Copy)]
struct RowSlot {
    row: u32,
    hash: u32,
}

/// One dimension of the index.
#[derive(Debug, Clone)]
struct Dimension {
    name: Arc<str>,
    values: Dictionary,
}

/// One metric's column of aggregated values.
#[derive(Debug, Clone)]
enum MetricColumn {
    Count(Vec<i64>),
    Long { kind: AggregatorKind, input: usize, values: Vec<i64>, valid: Vec<bool> },
    Double { kind: AggregatorKind, input: usize, values: Vec<f64>, valid: Vec<bool> },
}

impl MetricColumn {
    fn new(spec: &MetricSpec, input: usize) -> Self {
        match spec.kind {
            AggregatorKind::Count => Self::Count(Vec::new()),
            kind @ (AggregatorKind::LongSum | AggregatorKind::LongMin | AggregatorKind::LongMax) => {
                Self::Long { kind, input, values: Vec::new(), valid: Vec::new() }
            }
            kind => Self::Double { kind, input, values: Vec::new(), valid: Vec::new() },
        }
    }

    fn push(&mut self, inputs: &[Option<Num>]) {
        match self {
            Self::Count(values) => values.push(1),
            Self::Long { input, values, valid, .. } => {
                let v = inputs[*input];
                values.push(v.map_or(0, Num::as_i64));
                valid.push(v.is_some());
            }
            Self::Double { input, values, valid, .. } => {
                let v = inputs[*input];
                values.push(v.map_or(0.0, Num::as_f64));
                valid.push(v.is_some());
            }
        }
    }

    fn fold(&mut self, row: usize, inputs: &[Option<Num>]) {
        match self {
            Self::Count(values) => values[row] += 1,
            Self::Long { kind, input, values, valid } => {
                if let Some(v) = inputs[*input] {
                    fold_long(*kind, &mut values[row], &mut valid[row], v.as_i64(), true);
                }
            }
            Self::Double { kind, input, values, valid } => {
                if let Some(v) = inputs[*input] {
                    fold_double(*kind, &mut values[row], &mut valid[row], v.as_f64(), true);
                }
            }
        }
    }

    /// Drops every row, keeping the allocation.
    fn clear(&mut self) {
        match self {
            Self::Count(values) => values.clear(),
            Self::Long { values, valid, .. } => {
                values.clear();
                valid.clear();
            }
            Self::Double { values, valid, .. } => {
                values.clear();
                valid.clear();
            }
        }
    }

    /// Bytes the column takes in memory.
    fn allocated_bytes(&self) -> usize {
        match self {
            Self::Count(values) => values.capacity() * size_of::<i64>(),
            Self::Long { values, valid, .. } => values.capacity() * size_of::<i64>() + valid.capacity(),
            Self::Double { values, valid, .. } => values.capacity() * size_of::<f64>() + valid.capacity(),
        }
    }

    /// Folds row `from` of another index's column (same metric) into row `row`, or appends it.
    fn merge(&mut self, row: Option<usize>, other: &MetricColumn, from: usize) {
        match (self, other) {
            (Self::Count(values), Self::Count(theirs)) => match row {
                Some(row) => values[row] += theirs[from],
                None => values.push(theirs[from]),
            },
            (Self::Long { kind, values, valid, .. }, Self::Long { values: tv, valid: tvalid, .. }) => {
                match row {
                    Some(row) => fold_long(*kind, &mut values[row], &mut valid[row], tv[from], tvalid[from]),
                    None => {
                        values.push(tv[from]);
                        valid.push(tvalid[from]);
                    }
                }
            }
            (Self::Double { kind, values, valid, .. }, Self::Double { values: tv, valid: tvalid, .. }) => {
                match row {
                    Some(row) => {
                        fold_double(*kind, &mut values[row], &mut valid[row], tv[from], tvalid[from])
                    }
                    None => {
                        values.push(tv[from]);
                        valid.push(tvalid[from]);
                    }
                }
            }
            _ => unreachable!("indexes of one spec have the same metric columns"),
        }
    }
}

fn fold_long(kind: AggregatorKind, acc: &mut i64, acc_valid: &mut bool, v: i64, v_valid: bool) {
    if !v_valid {
        return;
    }
    *acc = if !*acc_valid {
        v
    } else {
        match kind {
            AggregatorKind::LongMin => (*acc).min(v),
            AggregatorKind::LongMax => (*acc).max(v),
            _ => acc.wrapping_add(v),
        }
    };
    *acc_valid = true;
}

fn fold_double(kind: AggregatorKind, acc: &mut f64, acc_valid: &mut bool, v: f64, v_valid: bool) {
    if !v_valid {
        return;
    }
    *acc = if !*acc_valid {
        v
    } else {
        match kind {
            AggregatorKind::DoubleMin => acc.min(v),
            AggregatorKind::DoubleMax => acc.max(v),
            _ => *acc + v,
        }
    };
    *acc_valid = true;
}

/// The parts of a spec the index needs, shared by every index of one dataSource.
#[derive(Debug)]
pub struct RollupSchema {
    spec: DataSourceSpec,
    /// Distinct metric input field names; several metrics may read one field.
    metric_inputs: Vec<String>,
    /// For each metric, its input index (count has none and gets 0, unused).
    metric_input_of: Vec<usize>,
}

impl RollupSchema {
    /// Prepares a spec for indexing.
    pub fn new(spec: &DataSourceSpec) -> Arc<Self> {
        let mut metric_inputs: Vec<String> = Vec::new();
        let mut metric_input_of = Vec::new();
        for metric in &spec.metrics {
            let index = match &metric.field_name {
                Some(field) => match metric_inputs.iter().position(|f| f == field) {
                    Some(i) => i,
                    None => {
                        metric_inputs.push(field.clone());
                        metric_inputs.len() - 1
                    }
                },
                None => 0,
            };
            metric_input_of.push(index);
        }
        Arc::new(Self { spec: spec.clone(), metric_inputs, metric_input_of })
    }

    /// The spec this schema came from.
    pub fn spec(&self) -> &DataSourceSpec {
        &self.spec
    }

    /// The time an event's row is keyed by: truncated to queryGranularity, and for `all`, to
    /// the start of its segment.
    pub fn row_time(&self, event_time: Millis) -> Millis {
        let g = &self.spec.granularity;
        match g.query {
            Granularity::All => g.segment.truncate(event_time),
            query => query.truncate(event_time),
        }
    }

    /// The segment interval holding an event time.
    pub fn segment_interval(&self, time: Millis) -> Interval {
        let g = self.spec.granularity.segment;
        let start = g.truncate(time);
        Interval { start, end: g.next(start) }
    }
}

/// An in-memory incremental index of rollup rows.
#[derive(Debug, Clone)]
pub struct RollupIndex {
    schema: Arc<RollupSchema>,
    fields: hashbrown::HashMap<Box<str>, Slot, foldhash::fast::RandomState>,
    dims: Vec<Dimension>,
    /// Each row's dimension ids, packed.
    keys: RowKeys,
    times: Vec<Millis>,
    metrics: Vec<MetricColumn>,
    table: HashTable<RowSlot>,
    /// Rows the table holds. Rows past these were appended by a merge, known to share no key
    /// with another row, and join the table before it is next probed (a batch job never
    /// probes it again).
    indexed_rows: usize,
    hasher: foldhash::fast::FixedState,
    scratch: parse::Scratch,
    /// The scratch key, packed.
    packed: Vec<u8>,
}

impl RollupIndex {
    /// An empty index.
    pub fn new(schema: Arc<RollupSchema>) -> Self {
        let spec = &schema.spec;
        let mut fields = hashbrown::HashMap::with_hasher(foldhash::fast::RandomState::default());
        // Metric inputs and exclusions first so that the timestamp and a declared dimension
        // win if a name is reused, as in Druid.
        for (i, field) in schema.metric_inputs.iter().enumerate() {
            fields.insert(field.as_str().into(), Slot::MetricInput(i));
        }
        for field in &spec.dimensions.exclusions {
            fields.entry(field.as_str().into()).or_insert(Slot::Ignore);
        }
        let mut dims = Vec::new();
        for (i, dim) in spec.dimensions.dimensions.iter().enumerate() {
            fields.insert(dim.name.as_str().into(), Slot::Dimension(i));
            dims.push(Dimension { name: dim.name.as_str().into(), values: Dictionary::new(dim.kind) });
        }
        fields.insert(spec.timestamp.column.as_str().into(), Slot::Timestamp);
        let metrics = spec
            .metrics
            .iter()
            .zip(&schema.metric_input_of)
            .map(|(m, input)| MetricColumn::new(m, *input))
            .collect();
        let scratch = parse::Scratch::new(dims.len(), schema.metric_inputs.len());
        Self {
            schema,
            fields,
            dims,
            keys: RowKeys::default(),
            times: Vec::new(),
            metrics,
            table: HashTable::new(),
            indexed_rows: 0,
            hasher: foldhash::fast::FixedState::with_seed(u64::from_be_bytes(*b"braid-01")),
            scratch,
            packed: Vec::new(),
        }
    }

    /// Empties the index, as [`RollupIndex::new`] makes it, but keeps what it allocated: the
    /// row columns, the rollup table and the dictionaries' tables keep their capacity, and the
    /// row keys the widths the last rows needed. A batch worker reads unit after unit of
    /// similar size into one index, so the next unit's rows go to memory that is already
    /// there, with no table grown again and no page touched for the first time.
    pub fn clear(&mut self) {
        let declared = self.schema.spec.dimensions.dimensions.len();
        // Discovered dimensions are discovered again, from the next rows.
        self.fields.retain(|_, slot| !matches!(slot, Slot::Dimension(d) if *d >= declared));
        self.dims.truncate(declared);
        for dim in &mut self.dims {
            dim.values.clear();
        }
        self.keys.clear();
        self.times.clear();
        self.metrics.iter_mut().for_each(MetricColumn::clear);
        self.table.clear();
        self.indexed_rows = 0;
        self.scratch.forget_keys();
    }

    /// The schema this index was built with.
    pub fn schema(&self) -> &Arc<RollupSchema> {
        &self.schema
    }

    /// Number of rollup rows.
    pub fn rows(&self) -> usize {
        self.times.len()
    }

    /// Bytes the rows take in memory, by what is allocated for them: the key, time and metric
    /// columns, the rollup table and the dimension dictionaries.
    pub fn allocated_bytes(&self) -> usize {
        self.keys.allocated_bytes()
            + self.times.capacity() * size_of::<Millis>()
            + self.metrics.iter().map(MetricColumn::allocated_bytes).sum::<usize>()
            + self.table.allocation_size()
            + self.dims.iter().map(|d| d.values.allocated_bytes()).sum::<usize>()
    }

    /// Names of the dimensions, in column order (declared order, or sorted when discovered).
    pub fn dimension_names(&self) -> Vec<Arc<str>> {
        self.column_order().into_iter().map(|d| self.dims[d].name.clone()).collect()
    }

    fn column_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dims.len()).collect();
        if self.schema.spec.dimensions.is_schemaless() {
            order.sort_by(|a, b| self.dims[*a].name.cmp(&self.dims[*b].name));
        }
        order
    }

    /// Parses one JSON event; on success its event time is returned and the event waits in
    /// the scratch space for [`RollupIndex::fold_parsed`].
    pub fn parse(&mut self, line: &[u8]) -> Result<Millis, EventError> {
        parse::parse_event(self, line)
    }

    /// Parses and folds one event.
    pub fn add(&mut self, line: &[u8]) -> Result<Millis, EventError> {
        let time = self.parse(line)?;
        self.fold_parsed();
        Ok(time)
    }

    /// Folds the event last returned by a successful [`RollupIndex::parse`].
    pub fn fold_parsed(&mut self) {
        let time = self.schema.row_time(self.scratch.time);
        let (row, is_new) = self.row_for_scratch_key(time);
        for metric in &mut self.metrics {
            if is_new {
                metric.push(&self.scratch.inputs);
            } else {
                metric.fold(row, &self.scratch.inputs);
            }
        }
    }

    /// The row holding the scratch key at `time`, appended when there is none (always, without
    /// rollup); true when it is new. The key is hashed once and probed once.
    fn row_for_scratch_key(&mut self, time: Millis) -> (usize, bool) {
        if !self.schema.spec.granularity.rollup {
            self.append_scratch_key(time);
            return (self.times.len() - 1, true);
        }
        self.pack_scratch_key();
        self.index_appended_rows();
        let (keys, times, key) = (&mut self.keys, &mut self.times, &self.packed);
        let hash = hash_key(&self.hasher, time, key);
        let entry = self.table.entry(
            spread(hash),
            |slot| {
                let row = slot.row as usize;
                slot.hash == hash && times[row] == time && keys.row(row) == key
            },
            |slot| spread(slot.hash),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(found) => (found.get().row as usize, false),
            hashbrown::hash_table::Entry::Vacant(slot) => {
                let row = times.len();
                slot.insert(RowSlot { row: row as u32, hash });
                keys.push(key);
                times.push(time);
                self.indexed_rows = times.len();
                (row, true)
            }
        }
    }

    /// Packs the scratch key into `packed`, first making the row keys fit it. Packing the rows
    /// again (a wider id, a discovered dimension) changes their hashes, so the table is then
    /// emptied, to be filled again before its next probe.
    fn pack_scratch_key(&mut self) {
        if self.keys.fit(&self.scratch.key) {
            self.table.clear();
            self.indexed_rows = 0;
        }
        self.keys.pack(&self.scratch.key, &mut self.packed);
    }

    /// Puts every row the table does not hold yet into it: the rows a merge appended, or all
    /// of them after the rows were packed again.
    fn index_appended_rows(&mut self) {
        let (times, keys) = (&self.times, &self.keys);
        if self.indexed_rows == times.len() {
            return;
        }
        self.table.reserve(times.len() - self.indexed_rows, |slot| spread(slot.hash));
        for (row, &time) in times.iter().enumerate().skip(self.indexed_rows) {
            let hash = hash_key(&self.hasher, time, keys.row(row));
            self.table
                .insert_unique(spread(hash), RowSlot { row: row as u32, hash }, |slot| spread(slot.hash));
        }
        self.indexed_rows = times.len();
    }

    /// Folds every row of another index of the same dataSource into this one (how parallel
    /// batch workers combine their work).
    pub fn merge(&mut self, other: &RollupIndex) {
        // Map the other's dimensions and dictionary ids into ours.
        let mut dim_map = Vec::with_capacity(other.dims.len());
        let mut id_maps = Vec::with_capacity(other.dims.len());
        for dim in &other.dims {
            let ours = match self.dims.iter().position(|d| d.name == dim.name) {
                Some(i) => i,
                None => {
                    self.dims.push(Dimension {
                        name: dim.name.clone(),
                        values: Dictionary::new(dim.values.kind()),
                    });
                    self.fields.insert((*dim.name).into(), Slot::Dimension(self.dims.len() - 1));
                    self.dims.len() - 1
                }
            };
            id_maps.push(self.dims[ours].values.absorb(&dim.values));
            dim_map.push(ours);
        }
        self.scratch.resize(self.dims.len());
        self.reserve(other.rows());
        // Rows of hours this index has no row in cannot share a key with one of ours: they are
        // appended without a probe. Parallel batch workers mostly read different hours.
        let our_hours = hours_of(&self.times);
        let mut last_hour = None;
        let mut hour_is_ours = false;
        let mut theirs = vec![0; other.dims.len()];
        for row in 0..other.times.len() {
            self.scratch.key.iter_mut().for_each(|id| *id = 0);
            other.keys.unpack(row, &mut theirs);
            for (d, &id) in theirs.iter().enumerate() {
                self.scratch.key[dim_map[d]] = id_maps[d][id as usize];
            }
            let time = other.times[row];
            let hour = Granularity::Hour.truncate(time);
            if last_hour != Some(hour) {
                (last_hour, hour_is_ours) = (Some(hour), our_hours.binary_search(&hour).is_ok());
            }
            let existing = if hour_is_ours {
                let (ours, is_new) = self.row_for_scratch_key(time);
                (!is_new).then_some(ours)
            } else {
                self.append_scratch_key(time);
                None
            };
            for (ours, theirs) in self.metrics.iter_mut().zip(&other.metrics) {
                ours.merge(existing, theirs, row);
            }
        }
    }

    /// Appends the scratch key at `time` as a new row, known to be in no other row; it joins
    /// the table before the next probe.
    fn append_scratch_key(&mut self, time: Millis) {
        self.pack_scratch_key();
        self.keys.push(&self.packed);
        self.times.push(time);
    }

    /// The sort order of every dimension's values, for [`RollupIndex::segments`] and
    /// [`RollupIndex::record_batch`]; valid until the index changes.
    pub fn ranks(&self) -> Ranks {
        arrow_out::ranks(self)
    }

    /// Makes room in the row columns for `rows` more rows at once, so that a merge copies each
    /// column once rather than at every doubling. (The table grows as rows join it.)
    fn reserve(&mut self, rows: usize) {
        self.keys.reserve(rows);
        self.times.reserve(rows);
        for metric in &mut self.metrics {
            match metric {
                MetricColumn::Count(values) => values.reserve(rows),
                MetricColumn::Long { values, valid, .. } => {
                    values.reserve(rows);
                    valid.reserve(rows);
                }
                MetricColumn::Double { values, valid, .. } => {
                    values.reserve(rows);
                    valid.reserve(rows);
                }
            }
        }
    }

    /// Rows grouped by segment interval, each group sorted by time then dimension values.
    pub fn segments(&self, ranks: &Ranks) -> BTreeMap<Interval, SegmentRows> {
        arrow_out::segments(self, ranks)
    }
}

/// The distinct hours of some row times, sorted.
fn hours_of(times: &[Millis]) -> Vec<Millis> {
    let mut hours: Vec<Millis> = Vec::new();
    for &time in times {
        let hour = Granularity::Hour.truncate(time);
        if hours.last() != Some(&hour) {
            hours.push(hour);
        }
    }
    hours.sort_unstable();
    hours.dedup();
    hours
}

/// 32 bits of the hash of a packed row key: what a [`RowSlot`] keeps. (Every key of a table
/// has the same length, so the length is left out.)
fn hash_key(hasher: &foldhash::fast::FixedState, time: Millis, key: &[u8]) -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = hasher.build_hasher();
    h.write_i64(time);
    h.write(key);
    (h.finish() >> 32) as u32
}

#[cfg(test)]
mod tests;
