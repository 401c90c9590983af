//! What `braid broker` and `braid quickstart` run besides the daemon: a Kafka-protocol broker
//! embedded in the process (librdkafka's mock cluster, listening on localhost, so any Kafka
//! client can produce to it) and a producer of wikipedia-like events at a steady rate, some of
//! them late and some malformed, to show what the pipeline does with each.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::generator::WikipediaGenerator;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
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

    /// A client of this broker that reports what it holds, for `/metrics`.
    pub fn observer(&self) -> Result<BrokerObserver, StreamError> {
        let client = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap_servers())
            .create()
            .map_err(|e| StreamError::Kafka(format!("cannot create the broker's metrics client: {e}")))?;
        Ok(BrokerObserver { client })
    }
}

/// Asks a broker, through the Kafka protocol, for its topics and their offsets.
pub struct BrokerObserver {
    client: BaseConsumer,
}

impl std::fmt::Debug for BrokerObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerObserver").finish_non_exhaustive()
    }
}

impl BrokerObserver {
    /// Prometheus text: whether the broker answered, its topic and partition counts, and each
    /// partition's log start and end offsets (so end minus start is the records it keeps).
    /// Blocks for at most a few seconds on a broker that does not answer.
    pub fn metrics_text(&self) -> String {
        const TIMEOUT: Duration = Duration::from_secs(2);
        let mut out = String::new();
        let metadata = match self.client.fetch_metadata(None, TIMEOUT) {
            Ok(metadata) => metadata,
            Err(e) => {
                tracing::warn!(error = %e, "The embedded broker did not answer a metadata request.");
                out.push_str("# HELP broker_up Whether the broker answered a metadata request.\n");
                out.push_str("# TYPE broker_up gauge\nbroker_up 0\n");
                return out;
            }
        };
        let mut offsets = Vec::new();
        for topic in metadata.topics() {
            for partition in topic.partitions() {
                let (start, end) =
                    self.client.fetch_watermarks(topic.name(), partition.id(), TIMEOUT).unwrap_or((-1, -1));
                offsets.push((topic.name().to_string(), partition.id(), start, end));
            }
        }
        let gauge = |out: &mut String, name: &str, help: &str| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        };
        gauge(&mut out, "broker_up", "Whether the broker answered a metadata request.");
        out.push_str("broker_up 1\n");
        gauge(&mut out, "broker_topics", "Topics the broker holds.");
        out.push_str(&format!("broker_topics {}\n", metadata.topics().len()));
        gauge(&mut out, "broker_partitions", "Partitions over all topics.");
        out.push_str(&format!("broker_partitions {}\n", offsets.len()));
        // Kafka topic names are [a-zA-Z0-9._-]: nothing to escape in a label.
        gauge(&mut out, "broker_log_start_offset", "Offset of the oldest record kept (-1: unknown).");
        for (topic, partition, start, _) in &offsets {
            out.push_str(&format!(
                "broker_log_start_offset{{topic=\"{topic}\",partition=\"{partition}\"}} {start}\n"
            ));
        }
        gauge(&mut out, "broker_log_end_offset", "Offset the next record will get (-1: unknown).");
        for (topic, partition, _, end) in &offsets {
            out.push_str(&format!(
                "broker_log_end_offset{{topic=\"{topic}\",partition=\"{partition}\"}} {end}\n"
            ));
        }
        out
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
