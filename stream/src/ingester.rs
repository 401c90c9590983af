//! One dataSource's ingestion: a thread that consumes the topic's partitions from the catalog's
//! offsets, hands each batch of messages to [`Ingest`] under the live rows' lock, and
//! checkpoints. A checkpoint runs on the runtime while consumption goes on; at most one is in
//! flight. When one fails (deep storage down, or another writer moved the offsets), the
//! ingester resynchronises: it forgets what it holds in memory, re-reads the catalog and
//! consumes again from its offsets, so nothing is lost and nothing counted twice.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::catalog::{Catalog, CatalogState, Origin};
use common::rollup::RollupSchema;
use common::spec::DataSourceSpec;
use common::storage::DeepStorage;
use layouts::RawLayout;
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message as _;
use rdkafka::topic_partition_list::TopicPartitionList;
use serde::Serialize;
use tokio::runtime::Handle;
use tracing::{error, info, warn};

use crate::StreamError;
use crate::checkpoint::{Checkpoint, CheckpointReport, WriteAhead, checkpoint, write_raw_parts};
use crate::ingest::{BatchOwned, Ingest, Message};
use crate::kafka::{StartPosition, StreamContext, consumer_config, topic};
use crate::live::LiveRows;
use crate::metrics::IngestMetrics;

/// How long one poll waits for a first message.
const POLL_WAIT: Duration = Duration::from_millis(50);
/// Messages folded per hold of the live rows' lock.
const BATCH_MESSAGES: usize = 4096;
/// Raw bytes consumed before a checkpoint, whatever the rows: what a restart consumes again
/// stays bounded.
const MAX_ARCHIVE_BYTES: u64 = 256 * 1024 * 1024;
/// How often the batch-owned time is re-read from the catalog between checkpoints.
const CATALOG_REFRESH: Duration = Duration::from_secs(10);
/// Kafka metadata and offset lookups.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// What the supervisor API asks of a running ingester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Checkpoint and stop consuming until resumed.
    Suspend,
    /// Consume again.
    Resume,
    /// Forget the committed offsets and start again from the start position.
    Reset,
    /// Checkpoint and end.
    Stop,
}

/// Where an ingester stands, for the supervisor status API.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// RUNNING, SUSPENDED, STOPPED, PENDING (looking for its topic) or FAILED.
    pub state: String,
    /// The topic.
    pub stream: String,
    /// Assigned partitions.
    pub partitions: Vec<i32>,
    /// Catalog sequence number of the last checkpoint committed.
    pub last_checkpoint_seq: Option<u64>,
    /// When it was committed, ISO 8601.
    pub last_checkpoint_time: Option<String>,
    /// Recent failures, newest last.
    pub recent_errors: Vec<String>,
}

/// A running ingester.
#[derive(Debug)]
pub struct Ingester {
    /// Its dataSource.
    pub data_source: String,
    /// Its spec.
    pub spec: DataSourceSpec,
    /// Its counters.
    pub metrics: Arc<IngestMetrics>,
    /// Its rows in memory (attached to the query engine).
    pub live: Arc<LiveRows>,
    /// Where it stands.
    pub status: Arc<Mutex<Status>>,
    control: Sender<Control>,
    thread: Option<JoinHandle<Result<(), StreamError>>>,
}

impl Ingester {
    /// Starts consuming `spec`'s topic (all partitions, or `partitions`) on a thread of its own.
    pub fn start(
        runtime: Handle,
        storage: DeepStorage,
        layout: RawLayout,
        spec: DataSourceSpec,
        partitions: Option<Vec<i32>>,
        ended: tokio::sync::mpsc::UnboundedSender<(String, Option<String>)>,
    ) -> Result<Self, StreamError> {
        let topic = topic(&spec)?.to_string();
        let start = StartPosition::from_spec(&spec)?;
        checkpoint_period(&spec)?;
        let metrics = Arc::new(IngestMetrics::default());
        let context = StreamContext { metrics: Arc::clone(&metrics), topic: topic.clone() };
        let consumer: BaseConsumer<StreamContext> =
            consumer_config(&spec, start)?.create_with_context(context)?;
        let live = Arc::new(LiveRows::new(RollupSchema::new(&spec)));
        let status = Arc::new(Mutex::new(Status {
            state: "PENDING".into(),
            stream: topic.clone(),
            partitions: Vec::new(),
            last_checkpoint_seq: None,
            last_checkpoint_time: None,
            recent_errors: Vec::new(),
        }));
        let (control, receiver) = std::sync::mpsc::channel();
        let worker = Worker {
            runtime,
            catalog: Catalog::new(storage.clone(), spec.data_source.clone()),
            storage,
            layout,
            spec: spec.clone(),
            topic,
            start,
            wanted: partitions,
            consumer,
            live: Arc::clone(&live),
            metrics: Arc::clone(&metrics),
            status: Arc::clone(&status),
            control: receiver,
        };
        let thread = std::thread::Builder::new()
            .name(format!("ingest-{}", spec.data_source))
            .spawn(move || {
                let status = Arc::clone(&worker.status);
                let name = worker.spec.data_source.to_string();
                let result = worker.run();
                {
                    let mut status = status.lock().unwrap_or_else(|p| p.into_inner());
                    match &result {
                        Ok(()) => status.state = "STOPPED".into(),
                        Err(e) => {
                            error!(data_source = %name, error = %e, "Ingestion stopped.");
                            status.state = "FAILED".into();
                            status.recent_errors.push(e.to_string());
                        }
                    }
                }
                let _ = ended.send((name, result.as_ref().err().map(ToString::to_string)));
                result
            })
            .map_err(|e| StreamError::Internal(format!("cannot start the ingest thread: {e}")))?;
        Ok(Self {
            data_source: spec.data_source.to_string(),
            spec,
            metrics,
            live,
            status,
            control,
            thread: Some(thread),
        })
    }

    /// Asks the ingester to do something; false when it has ended.
    pub fn send(&self, control: Control) -> bool {
        self.control.send(control).is_ok()
    }

    /// Whether its thread has ended (stopped or failed).
    pub fn has_ended(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Checkpoints, stops, and returns how it ended.
    pub fn stop(mut self) -> Result<(), StreamError> {
        let _ = self.control.send(Control::Stop);
        match self.thread.take() {
            Some(thread) => {
                thread.join().map_err(|_| StreamError::Internal("the ingest thread panicked".into()))?
            }
            None => Ok(()),
        }
    }

    /// A copy of its status.
    pub fn status(&self) -> Status {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The checkpoint period as a duration.
fn checkpoint_period(spec: &DataSourceSpec) -> Result<Duration, StreamError> {
    let period = spec.tuning.checkpoint_period;
    match period.fixed_duration_ms() {
        Some(ms) if ms > 0 => Ok(Duration::from_millis(ms as u64)),
        _ => Err(StreamError::InvalidSpec(format!(
            "spec field \"tuningConfig.checkpointPeriod\": \"{period}\" must be a positive fixed duration such as PT10M"
        ))),
    }
}

struct Worker {
    runtime: Handle,
    storage: DeepStorage,
    catalog: Catalog,
    layout: RawLayout,
    spec: DataSourceSpec,
    topic: String,
    start: StartPosition,
    wanted: Option<Vec<i32>>,
    consumer: BaseConsumer<StreamContext>,
    live: Arc<LiveRows>,
    metrics: Arc<IngestMetrics>,
    status: Arc<Mutex<Status>>,
    control: Receiver<Control>,
}

/// What the consume loop keeps between iterations.
struct Progress {
    state: CatalogState,
    partitions: Vec<i32>,
    ingest: Ingest,
    batch_owned: BatchOwned,
    in_flight: Option<tokio::task::JoinHandle<Result<CheckpointReport, StreamError>>>,
    /// Raw parts consumed since the last checkpoint that are being written ahead of it.
    written_ahead: Vec<WriteAhead>,
    last_checkpoint: Instant,
    last_refresh: Instant,
    suspended: bool,
}

/// Whether the loop goes on.
enum Next {
    Continue,
    Stop,
}

/// What follows a checkpoint that failed. Either way what it held is forgotten, and the
/// catalog's offsets are where consumption starts again.
#[derive(Debug, Clone, Copy)]
enum OnFailure {
    /// Re-read the catalog and assign its offsets to the consumer now.
    Resync,
    /// Only forget: the ingester is stopping or suspending, and assigns from the catalog when
    /// it next starts or resumes, or is about to resync anyway (a reset). A new assignment
    /// right before the consumer is closed or unassigned can abort the process: librdkafka
    /// 2.12 may then send a partition a second FETCH_STOP before the first is answered, and
    /// fails an assertion when the second answer arrives (librdkafka issue 5573).
    Forget,
}

impl Worker {
    fn run(self) -> Result<(), StreamError> {
        let period = checkpoint_period(&self.spec)?;
        let Some(partitions) = self.discover_partitions()? else { return Ok(()) };
        let Some(state) = self.load_catalog()? else { return Ok(()) };
        let committed = committed_offsets(&state, &partitions);
        let mut progress = Progress {
            batch_owned: batch_owned(&state),
            ingest: Ingest::new(&self.spec, &self.topic, Arc::clone(&self.metrics), committed),
            state,
            partitions,
            in_flight: None,
            written_ahead: Vec::new(),
            last_checkpoint: Instant::now(),
            last_refresh: Instant::now(),
            suspended: false,
        };
        self.live.clear(progress.ingest.committed_offsets().clone());
        self.assign(&progress)?;
        self.set_state("RUNNING", Some(&progress.partitions));
        info!(data_source = %self.spec.data_source, topic = %self.topic, partitions = ?progress.partitions, "Consuming.");

        loop {
            match self.control.try_recv() {
                Ok(control) => {
                    if let Next::Stop = self.on_control(control, &mut progress)? {
                        return Ok(());
                    }
                }
                // The daemon dropped the ingester: end as if stopped.
                Err(TryRecvError::Disconnected) => {
                    self.final_checkpoint(&mut progress)?;
                    return Ok(());
                }
                Err(TryRecvError::Empty) => {}
            }
            if progress.suspended {
                match self.control.recv_timeout(Duration::from_millis(200)) {
                    Ok(control) => {
                        if let Next::Stop = self.on_control(control, &mut progress)? {
                            return Ok(());
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                }
                continue;
            }
            if progress.in_flight.as_ref().is_some_and(|h| h.is_finished()) {
                self.finish_checkpoint(&mut progress, OnFailure::Resync)?;
            }
            if self.live.take_overtaken() {
                warn!(data_source = %self.spec.data_source, "Another writer published offsets this daemon holds; consuming again from the catalog.");
                self.resync(&mut progress)?;
            }
            if let Err(e) = self.consume_batch(&mut progress) {
                // Too many unparseable events: commit what was consumed, then fail.
                self.final_checkpoint(&mut progress)?;
                return Err(e);
            }
            let full = progress.ingest.fullest_interval_rows() >= self.spec.tuning.max_rows_per_segment
                || self.live.with_open(|index| index.rows() as u64) >= self.spec.tuning.max_rows_in_memory
                || progress.ingest.archived_bytes() >= MAX_ARCHIVE_BYTES;
            if progress.ingest.has_progress() && (full || progress.last_checkpoint.elapsed() >= period) {
                self.start_checkpoint(&mut progress, OnFailure::Resync)?;
            } else if progress.in_flight.is_none() && progress.last_refresh.elapsed() >= CATALOG_REFRESH {
                progress.last_refresh = Instant::now();
                match self.runtime.block_on(self.catalog.refresh(&mut progress.state)) {
                    Ok(_) if moved_by_another_writer(&progress) => {
                        warn!(data_source = %self.spec.data_source, "Another writer moved this daemon's offsets; consuming again from the catalog.");
                        self.resync(&mut progress)?;
                    }
                    Ok(_) => progress.batch_owned = batch_owned(&progress.state),
                    Err(e) => {
                        warn!(data_source = %self.spec.data_source, error = %e, "Cannot re-read the catalog; will try again.")
                    }
                }
            }
        }
    }

    /// Polls up to a batch of messages and folds them in under one hold of the lock.
    fn consume_batch(&self, progress: &mut Progress) -> Result<(), StreamError> {
        let mut messages = Vec::with_capacity(64);
        if let Some(first) = self.consumer.poll(POLL_WAIT) {
            messages.push(first);
            while messages.len() < BATCH_MESSAGES {
                match self.consumer.poll(Duration::ZERO) {
                    Some(next) => messages.push(next),
                    None => break,
                }
            }
        }
        if messages.is_empty() {
            self.update_memory_gauges(progress);
            return Ok(());
        }
        let (ingest, batch_owned) = (&mut progress.ingest, &progress.batch_owned);
        let result = self.live.with_open(|index| {
            for message in &messages {
                match message {
                    Ok(m) => ingest.on_message(
                        index,
                        batch_owned,
                        Message {
                            partition: m.partition(),
                            offset: m.offset(),
                            time: m.timestamp().to_millis(),
                            payload: m.payload(),
                        },
                    )?,
                    // librdkafka retries on its own; the error is only news.
                    Err(e) => {
                        warn!(data_source = %self.spec.data_source, error = %e, "Kafka consumer error.")
                    }
                }
            }
            Ok(())
        });
        self.write_finished_raw_parts(progress);
        self.update_memory_gauges(progress);
        result
    }

    /// Starts writing the raw parts the archive finished to keep its memory down (the
    /// checkpoint waits for these writes and commits the parts).
    fn write_finished_raw_parts(&self, progress: &mut Progress) {
        let parts = progress.ingest.take_finished_raw_parts();
        if parts.is_empty() {
            return;
        }
        let (storage, spec, layout) = (self.storage.clone(), self.spec.clone(), self.layout.clone());
        progress.written_ahead.push(self.runtime.spawn(async move {
            let written = write_raw_parts(&storage, &spec, &layout, parts).await;
            if let Err(e) = &written {
                warn!(data_source = %spec.data_source, error = %e, "Cannot write raw parts ahead of the checkpoint; it will fail, and their events will be consumed again.");
            }
            written
        }));
    }

    /// Rows in memory, and what they and the raw archive buffer take (also after a checkpoint
    /// let go of its hand-off, when no message came).
    fn update_memory_gauges(&self, progress: &Progress) {
        let (rows, bytes) = self.live.in_memory();
        self.metrics.rows_in_memory.store(rows as u64, Ordering::Relaxed);
        self.metrics.bytes_in_memory.store(bytes as u64, Ordering::Relaxed);
        let archive_bytes = progress.ingest.archive_allocated_bytes() as u64;
        self.metrics.archive_buffer_bytes.store(archive_bytes, Ordering::Relaxed);
    }

    fn on_control(&self, control: Control, progress: &mut Progress) -> Result<Next, StreamError> {
        match control {
            Control::Stop => {
                self.final_checkpoint(progress)?;
                return Ok(Next::Stop);
            }
            Control::Suspend if !progress.suspended => {
                self.final_checkpoint(progress)?;
                // Nothing is fetched while suspended; resuming assigns at the catalog's offsets.
                self.consumer.unassign()?;
                progress.suspended = true;
                self.set_state("SUSPENDED", None);
                info!(data_source = %self.spec.data_source, "Suspended.");
            }
            Control::Resume if progress.suspended => {
                progress.suspended = false;
                // Consumption starts again where the catalog stands.
                self.resync(progress)?;
                self.set_state("RUNNING", None);
                info!(data_source = %self.spec.data_source, "Resumed.");
            }
            Control::Reset => {
                self.wait_in_flight(progress, OnFailure::Forget)?;
                let partitions = progress.partitions.clone();
                let data_source = self.spec.data_source.clone();
                self.runtime.block_on(self.catalog.commit(&mut progress.state, "stream reset", |_| {
                    Ok(vec![common::catalog::Action::ResetOffsets { partitions: partitions.clone() }])
                }))?;
                info!(%data_source, "Offsets reset; consuming from the start position.");
                self.resync(progress)?;
            }
            Control::Suspend | Control::Resume => {}
        }
        Ok(Next::Continue)
    }

    /// Freezes what was consumed and starts writing it; waits for the previous checkpoint first.
    fn start_checkpoint(&self, progress: &mut Progress, on_failure: OnFailure) -> Result<(), StreamError> {
        if progress.in_flight.is_some() {
            self.finish_checkpoint(progress, on_failure)?;
            if !progress.ingest.has_progress() {
                // The previous checkpoint failed and what it held was forgotten.
                return Ok(());
            }
        }
        let (moves, archive) = progress.ingest.take_checkpoint();
        let written_ahead = std::mem::take(&mut progress.written_ahead);
        let index = self.live.freeze(moves.clone());
        let (storage, spec, layout) = (self.storage.clone(), self.spec.clone(), self.layout.clone());
        let state = progress.state.clone();
        let metrics = Arc::clone(&self.metrics);
        progress.in_flight = Some(self.runtime.spawn(async move {
            let started = Instant::now();
            let report = checkpoint(
                &storage,
                &spec,
                &layout,
                state,
                Checkpoint { index, moves, archive, written_ahead },
            )
            .await?;
            let micros = started.elapsed().as_micros() as u64;
            IngestMetrics::add(&metrics.checkpoint_micros, micros);
            metrics.last_checkpoint_micros.store(micros, Ordering::Relaxed);
            Ok(report)
        }));
        progress.last_checkpoint = Instant::now();
        Ok(())
    }

    fn wait_in_flight(&self, progress: &mut Progress, on_failure: OnFailure) -> Result<(), StreamError> {
        if progress.in_flight.is_some() {
            self.finish_checkpoint(progress, on_failure)?;
        }
        Ok(())
    }

    /// Waits for the checkpoint in flight; on success the hand-off is marked committed, on
    /// failure what it held is forgotten, and consumed again as `on_failure` says.
    fn finish_checkpoint(&self, progress: &mut Progress, on_failure: OnFailure) -> Result<(), StreamError> {
        let Some(task) = progress.in_flight.take() else { return Ok(()) };
        let outcome = self
            .runtime
            .block_on(task)
            .unwrap_or_else(|e| Err(StreamError::Internal(format!("checkpoint task failed: {e}"))));
        match outcome {
            Ok(report) => {
                self.live.committed();
                IngestMetrics::add(&self.metrics.checkpoints, 1);
                IngestMetrics::add(&self.metrics.checkpoint_bytes, report.bytes);
                progress.state = report.state;
                progress.batch_owned = batch_owned(&progress.state);
                progress.last_refresh = Instant::now();
                self.commit_to_kafka(&progress.state, &progress.partitions);
                let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
                status.last_checkpoint_seq = Some(report.seq);
                status.last_checkpoint_time = Some(common::time::format_iso(common::catalog::now_millis()));
                Ok(())
            }
            Err(e) => {
                IngestMetrics::add(&self.metrics.checkpoint_failures, 1);
                self.remember_error(&e);
                match on_failure {
                    OnFailure::Resync => {
                        error!(data_source = %self.spec.data_source, error = %e, "Checkpoint failed; consuming again from the catalog's offsets.");
                        self.resync(progress)
                    }
                    OnFailure::Forget => {
                        error!(data_source = %self.spec.data_source, error = %e, "Checkpoint failed; its events are consumed again from the catalog's offsets when this dataSource next runs.");
                        self.forget(progress);
                        Ok(())
                    }
                }
            }
        }
    }

    /// Checkpoints whatever was consumed and waits for it (shutdown, suspend).
    fn final_checkpoint(&self, progress: &mut Progress) -> Result<(), StreamError> {
        if progress.ingest.has_progress() {
            self.start_checkpoint(progress, OnFailure::Forget)?;
        }
        self.wait_in_flight(progress, OnFailure::Forget)
    }

    /// Forgets memory and consumes again from the catalog's offsets (retrying the catalog
    /// until it answers, unless told to stop).
    fn resync(&self, progress: &mut Progress) -> Result<(), StreamError> {
        if let Some(task) = progress.in_flight.take() {
            let _ = self.runtime.block_on(task);
        }
        let Some(state) = self.load_catalog()? else { return Ok(()) };
        progress.batch_owned = batch_owned(&state);
        progress.state = state;
        self.forget(progress);
        self.assign(progress)
    }

    /// Forgets the rows, raw events and offsets held in memory: consumption stands where
    /// `progress.state`, the catalog as last read, says.
    fn forget(&self, progress: &mut Progress) {
        let committed = committed_offsets(&progress.state, &progress.partitions);
        self.live.clear(committed.clone());
        progress.ingest.reset(committed);
        // Their files are never committed; the replay writes its own.
        progress.written_ahead.clear();
        progress.last_checkpoint = Instant::now();
        self.metrics.rows_in_memory.store(0, Ordering::Relaxed);
        self.metrics.bytes_in_memory.store(0, Ordering::Relaxed);
        self.metrics.archive_buffer_bytes.store(0, Ordering::Relaxed);
    }

    /// Reads the catalog, retrying with backoff while deep storage fails; none when stopped.
    fn load_catalog(&self) -> Result<Option<CatalogState>, StreamError> {
        let mut wait = Duration::from_millis(200);
        loop {
            match self.runtime.block_on(self.catalog.load()) {
                Ok(state) => return Ok(Some(state)),
                Err(e) => {
                    warn!(data_source = %self.spec.data_source, error = %e, "Cannot read the catalog; retrying.");
                    self.remember_error(&e);
                }
            }
            if self.stop_requested(wait) {
                return Ok(None);
            }
            wait = (wait * 2).min(Duration::from_secs(10));
        }
    }

    /// The topic's partitions (or the wanted subset), waiting while the topic does not exist.
    fn discover_partitions(&self) -> Result<Option<Vec<i32>>, StreamError> {
        loop {
            match self.consumer.fetch_metadata(Some(&self.topic), KAFKA_TIMEOUT) {
                Ok(metadata) => {
                    let found: Vec<i32> = metadata
                        .topics()
                        .iter()
                        .filter(|t| t.name() == self.topic && t.error().is_none())
                        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                        .collect();
                    if !found.is_empty() {
                        let mut partitions = match &self.wanted {
                            Some(wanted) => {
                                if let Some(missing) = wanted.iter().find(|p| !found.contains(p)) {
                                    return Err(StreamError::InvalidSpec(format!(
                                        "--partitions: topic \"{}\" has no partition {missing} (it has {found:?})",
                                        self.topic
                                    )));
                                }
                                wanted.clone()
                            }
                            None => found,
                        };
                        partitions.sort_unstable();
                        return Ok(Some(partitions));
                    }
                    warn!(topic = %self.topic, "Topic not found yet; waiting for it.");
                }
                Err(e) => {
                    warn!(topic = %self.topic, error = %e, "Cannot read the topic's metadata; retrying.")
                }
            }
            if self.stop_requested(Duration::from_secs(1)) {
                return Ok(None);
            }
        }
    }

    /// Assigns the partitions at the catalog's offsets, or at the start position.
    fn assign(&self, progress: &Progress) -> Result<(), StreamError> {
        let mut list = TopicPartitionList::new();
        let mut by_time = TopicPartitionList::new();
        for &p in &progress.partitions {
            match (progress.ingest.committed_offsets().get(&p).copied().flatten(), self.start) {
                (Some(offset), _) => list.add_partition_offset(&self.topic, p, Offset::Offset(offset))?,
                (None, StartPosition::Earliest) => {
                    list.add_partition_offset(&self.topic, p, Offset::Beginning)?
                }
                (None, StartPosition::Latest) => list.add_partition_offset(&self.topic, p, Offset::End)?,
                (None, StartPosition::Timestamp(ms)) => {
                    by_time.add_partition_offset(&self.topic, p, Offset::Offset(ms))?
                }
            }
        }
        if by_time.count() > 0 {
            let found = self.consumer.offsets_for_times(by_time, KAFKA_TIMEOUT)?;
            for element in found.elements() {
                list.add_partition_offset(&self.topic, element.partition(), element.offset())?;
            }
        }
        self.consumer.assign(&list)?;
        Ok(())
    }

    /// Tells Kafka's consumer group where the catalog stands, for lag tools only.
    fn commit_to_kafka(&self, state: &CatalogState, partitions: &[i32]) {
        let mut list = TopicPartitionList::new();
        for p in partitions {
            if let Some(&offset) = state.offsets.get(p) {
                let _ = list.add_partition_offset(&self.topic, *p, Offset::Offset(offset));
            }
        }
        if list.count() > 0
            && let Err(e) = self.consumer.commit(&list, CommitMode::Async)
        {
            warn!(data_source = %self.spec.data_source, error = %e, "Cannot tell Kafka the committed offsets (only lag tools use them).");
        }
    }

    /// Waits up to `wait` for a stop; other requests wait their turn.
    fn stop_requested(&self, wait: Duration) -> bool {
        match self.control.recv_timeout(wait) {
            Ok(Control::Stop) | Err(RecvTimeoutError::Disconnected) => true,
            Ok(_) | Err(RecvTimeoutError::Timeout) => false,
        }
    }

    fn set_state(&self, state: &str, partitions: Option<&[i32]>) {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.state = state.into();
        if let Some(partitions) = partitions {
            status.partitions = partitions.to_vec();
        }
    }

    fn remember_error(&self, e: &dyn std::fmt::Display) {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.recent_errors.push(e.to_string());
        let excess = status.recent_errors.len().saturating_sub(10);
        status.recent_errors.drain(..excess);
    }
}

/// Whether the catalog's offsets of this daemon's partitions are not where its own commits
/// left them.
fn moved_by_another_writer(progress: &Progress) -> bool {
    progress.in_flight.is_none()
        && progress
            .ingest
            .committed_offsets()
            .iter()
            .any(|(p, offset)| progress.state.offsets.get(p).copied() != *offset)
}

/// Each assigned partition's offset in the catalog.
fn committed_offsets(state: &CatalogState, partitions: &[i32]) -> BTreeMap<i32, Option<i64>> {
    partitions.iter().map(|p| (*p, state.offsets.get(p).copied())).collect()
}

/// The time batch versions own.
fn batch_owned(state: &CatalogState) -> BatchOwned {
    BatchOwned::new(
        state.segments.values().filter(|s| s.origin == Origin::Batch).map(|s| s.interval).collect(),
    )
}
