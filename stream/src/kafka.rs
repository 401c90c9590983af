//! librdkafka clients as the stream needs them: the consumer's settings from the spec's
//! `consumerProperties` (so SASL and TLS settings work unchanged), where a partition without
//! committed offsets starts, and the producer behind the push API.

use std::collections::BTreeMap;
use std::sync::Arc;

use common::spec::DataSourceSpec;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::statistics::Statistics;
use tracing::{debug, info, warn};

use crate::StreamError;
use crate::metrics::IngestMetrics;

/// Where a partition with no offset in the catalog starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// The oldest message kept.
    Earliest,
    /// Only messages produced from now on.
    Latest,
    /// The first message with a timestamp at or after this (UTC milliseconds).
    Timestamp(i64),
}

impl StartPosition {
    /// Pinot's `auto.offset.reset` in consumerProperties (`smallest`, `largest` or a timestamp
    /// in milliseconds; librdkafka's `earliest` and `latest` too) wins over Druid's
    /// `useEarliestOffset`; with neither, Druid's default: latest.
    pub fn from_spec(spec: &DataSourceSpec) -> Result<Self, StreamError> {
        match spec.io.consumer_properties.get("auto.offset.reset").map(|v| v.trim()) {
            Some("smallest" | "earliest" | "beginning") => Ok(Self::Earliest),
            Some("largest" | "latest" | "end") => Ok(Self::Latest),
            Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                v.parse().map(Self::Timestamp).map_err(|_| invalid_reset(v))
            }
            Some(v) => Err(invalid_reset(v)),
            None if spec.io.use_earliest_offset == Some(true) => Ok(Self::Earliest),
            None => Ok(Self::Latest),
        }
    }
}

fn invalid_reset(value: &str) -> StreamError {
    StreamError::InvalidSpec(format!(
        "spec field \"ioConfig.consumerProperties.auto.offset.reset\": \"{value}\" is not smallest, largest, earliest, latest or a timestamp in milliseconds"
    ))
}

/// The spec's topic, required for streaming.
pub fn topic(spec: &DataSourceSpec) -> Result<&str, StreamError> {
    spec.io.topic.as_deref().filter(|t| !t.is_empty()).ok_or_else(|| {
        StreamError::InvalidSpec(format!(
            "dataSource \"{}\": spec field \"ioConfig.topic\" is required to stream",
            spec.data_source
        ))
    })
}

/// The consumer's settings: consumerProperties as given, with offsets left to braid (they
/// live in the catalog; Kafka's consumer group only hears of them for lag tools).
pub fn consumer_config(spec: &DataSourceSpec, start: StartPosition) -> Result<ClientConfig, StreamError> {
    let properties = &spec.io.consumer_properties;
    if !properties.contains_key("bootstrap.servers") && !properties.contains_key("metadata.broker.list") {
        return Err(StreamError::InvalidSpec(format!(
            "dataSource \"{}\": spec field \"ioConfig.consumerProperties\" needs \"bootstrap.servers\"",
            spec.data_source
        )));
    }
    let mut config = ClientConfig::new();
    for (key, value) in properties {
        config.set(key, value);
    }
    // Where librdkafka goes when a catalog offset has aged out of the topic.
    let reset = match start {
        StartPosition::Latest => "latest",
        StartPosition::Earliest | StartPosition::Timestamp(_) => "earliest",
    };
    config.set("auto.offset.reset", reset);
    config.set("enable.auto.commit", "false");
    config.set("enable.auto.offset.store", "false");
    if !properties.contains_key("group.id") {
        config.set("group.id", format!("braid-{}", spec.data_source));
    }
    if !properties.contains_key("statistics.interval.ms") {
        config.set("statistics.interval.ms", "2000");
    }
    config.set_log_level(RDKafkaLogLevel::Warning);
    Ok(config)
}

/// Settings for a producer to the spec's brokers: the connection and security properties of
/// consumerProperties, not the consumer-only ones.
pub fn producer_config(spec: &DataSourceSpec) -> ClientConfig {
    const SHARED: [&str; 9] = [
        "bootstrap.servers",
        "metadata.broker.list",
        "security.",
        "sasl.",
        "ssl.",
        "client.",
        "socket.",
        "broker.",
        "api.version",
    ];
    let mut config = ClientConfig::new();
    for (key, value) in &spec.io.consumer_properties {
        if SHARED.iter().any(|p| key.starts_with(p)) {
            config.set(key, value);
        }
    }
    config.set("message.timeout.ms", "30000");
    config.set_log_level(RDKafkaLogLevel::Warning);
    config
}

/// The consumer's callbacks: librdkafka's logs into tracing, its statistics into the lag
/// gauges.
#[derive(Debug, Clone)]
pub struct StreamContext {
    /// The dataSource's metrics.
    pub metrics: Arc<IngestMetrics>,
    /// The topic whose partitions are watched.
    pub topic: String,
}

impl ClientContext for StreamContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                warn!(facility = fac, "librdkafka: {log_message}")
            }
            RDKafkaLogLevel::Warning | RDKafkaLogLevel::Notice => {
                info!(facility = fac, "librdkafka: {log_message}")
            }
            _ => debug!(facility = fac, "librdkafka: {log_message}"),
        }
    }

    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else { return };
        let lags: BTreeMap<i32, i64> = topic
            .partitions
            .iter()
            .filter(|(p, part)| **p >= 0 && part.hi_offset >= 0 && part.app_offset >= 0)
            .map(|(p, part)| (*p, part.hi_offset - part.app_offset))
            .collect();
        for (partition, lag) in lags {
            self.metrics.set_lag(partition, lag);
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        // librdkafka retries these itself (broker down, request errors); they are worth a line.
        warn!(topic = %self.topic, error = %error, "Kafka: {reason}");
    }
}

impl ConsumerContext for StreamContext {}

#[cfg(test)]
mod tests {
    use common::spec::load_specs;

    use super::*;

    fn spec(io: &str) -> DataSourceSpec {
        let text = format!(
            r#"{{"type": "kafka", "spec": {{"dataSchema": {{"dataSource": "wiki",
            "timestampSpec": {{"column": "ts", "format": "millis"}},
            "dimensionsSpec": {{"dimensions": ["page"]}},
            "granularitySpec": {{"segmentGranularity": "hour"}}}},
            "ioConfig": {{"topic": "wiki", {io}}}}}}}"#
        );
        load_specs(&text, "test").unwrap().specs.remove(0)
    }

    #[test]
    fn start_position_from_pinot_reset_or_druid_flag() {
        let start = |io: &str| StartPosition::from_spec(&spec(io));
        let props = |reset: &str| format!(r#""consumerProperties": {{"auto.offset.reset": "{reset}"}}"#);
        assert_eq!(start(&props("smallest")).unwrap(), StartPosition::Earliest);
        assert_eq!(start(&props("largest")).unwrap(), StartPosition::Latest);
        assert_eq!(start(&props("1377910800000")).unwrap(), StartPosition::Timestamp(1_377_910_800_000));
        assert_eq!(start(r#""useEarliestOffset": true"#).unwrap(), StartPosition::Earliest);
        assert_eq!(start(r#""useEarliestOffset": false"#).unwrap(), StartPosition::Latest);
        let err = start(&props("yesterday")).unwrap_err().to_string();
        assert!(err.contains("\"yesterday\" is not smallest, largest"), "{err}");
    }

    #[test]
    fn consumer_settings_keep_offsets_in_braid() {
        let spec =
            spec(r#""consumerProperties": {"bootstrap.servers": "b:9092", "security.protocol": "SASL_SSL"}"#);
        let config = consumer_config(&spec, StartPosition::Timestamp(5)).unwrap();
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("enable.auto.commit"), Some("false"));
        assert_eq!(config.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(config.get("group.id"), Some("braid-wiki"));
        let producer = producer_config(&spec);
        assert_eq!(producer.get("bootstrap.servers"), Some("b:9092"));
        assert_eq!(producer.get("group.id"), None);
        let err = consumer_config(&self::spec(r#""useEarliestOffset": true"#), StartPosition::Earliest)
            .unwrap_err();
        assert!(err.to_string().contains("needs \"bootstrap.servers\""), "{err}");
    }
}
