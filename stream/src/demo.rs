//! What `braid broker` and `braid quickstart` run besides the daemon: a Kafka-protocol broker
//! embedded in the process (librdkafka's mock cluster, listening on localhost, so any Kafka
//! client can produce to it) and a producer of wikipedia-like events at a steady rate, some of
//! them late and some malformed, to show what the pipeline does with each.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::generator::WikipediaGenerator;
use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};

use crate::StreamError;

/// A Kafka-protocol broker in this process. It keeps at most 5 MiB per partition and does not
/// look offsets up by timestamp; topics a client asks for are created with 4 partitions.
pub struct EmbeddedBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker").field("bootstrap", &self.bootstrap_servers()).finish()
    }
}

impl EmbeddedBroker {
    /// Starts a cluster of `brokers` brokers on free localhost ports.
    pub fn start(brokers: i32) -> Result<Self, StreamError> {
        let cluster = MockCluster::new(brokers.max(1))
            .map_err(|e| StreamError::Kafka(format!("cannot start the embedded broker: {e}")))?;
        Ok(Self { cluster })
    }

    /// The address Kafka clients bootstrap from, `127.0.0.1:PORT[,...]`.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Creates a topic.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), StreamError> {
        self.cluster
            .create_topic(topic, partitions, 1)
            .map_err(|e| StreamError::Kafka(format!("cannot create topic {topic:?}: {e}")))
    }
}

/// What the demo producer has sent so far.
#[derive(Debug, Default)]
pub struct DemoCounts {
    /// Events on time.
    pub events: AtomicU64,
    /// Events stamped ten minutes before their message time.
    pub late: AtomicU64,
    /// Lines that are not valid events.
    pub malformed: AtomicU64,
}

/// How the demo producer behaves.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Events per second.
    pub per_second: u32,
    /// One late event every this many events (0: none).
    pub late_every: u64,
    /// One malformed line every this many events (0: none).
    pub malformed_every: u64,
    /// How far back a late event's time is.
    pub lateness: Duration,
}

/// Produces events to `topic` at a steady rate on a thread of its own until `stop` is set.
pub fn spawn_demo_producer(
    bootstrap: &str,
    topic: &str,
    options: DemoOptions,
    counts: Arc<DemoCounts>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, StreamError> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .map_err(|e| StreamError::Kafka(format!("cannot create the demo producer: {e}")))?;
    let topic = topic.to_string();
    let thread = std::thread::Builder::new()
        .name("demo-producer".into())
        .spawn(move || produce(&producer, &topic, &options, &counts, &stop))
        .map_err(|e| StreamError::Internal(format!("cannot start the demo producer: {e}")))?;
    Ok(thread)
}

fn produce(
    producer: &BaseProducer,
    topic: &str,
    options: &DemoOptions,
    counts: &DemoCounts,
    stop: &AtomicBool,
) {
    const TICK: Duration = Duration::from_millis(100);
    let mut generator = WikipediaGenerator::new(now_ms() as u64);
    let mut line = Vec::new();
    let per_tick = (u64::from(options.per_second) / 10).max(1);
    let mut sent: u64 = 0;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..per_tick {
            sent += 1;
            line.clear();
            let now = now_ms();
            if options.malformed_every > 0 && sent.is_multiple_of(options.malformed_every) {
                generator.write_malformed(&mut line);
                counts.malformed.fetch_add(1, Ordering::Relaxed);
            } else if options.late_every > 0 && sent.is_multiple_of(options.late_every) {
                generator.write_event(now - options.lateness.as_millis() as i64, &mut line);
                counts.late.fetch_add(1, Ordering::Relaxed);
            } else {
                generator.write_event(now, &mut line);
                counts.events.fetch_add(1, Ordering::Relaxed);
            }
            let mut record = BaseRecord::<(), [u8]>::to(topic).payload(line.as_slice()).timestamp(now);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        producer.poll(Duration::from_millis(10));
                        record = back;
                    }
                }
            }
        }
        producer.poll(Duration::ZERO);
        next += TICK;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        } else {
            next = Instant::now();
        }
    }
    let _ = producer.flush(Duration::from_secs(5));
}

fn now_ms() -> i64 {
    common::catalog::now_millis()
}
