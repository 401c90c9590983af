//! Ingestion specs: Druid's Kafka supervisor spec, its older top-level form, and the legacy
//! realtime spec, loaded into one model.
//!
//! Loading walks the JSON by hand rather than through serde derives so that every error names
//! the field path, the value and what was expected, and so that every field we accept but do
//! not act on is collected and reported once.

use std::collections::{BTreeMap, BTreeSet};

use layouts::DataSourceName;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::time::{Granularity, Interval, Millis, Period, TimestampFormat};

/// A spec that cannot be used, with the field path, the value and the rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// The text is not JSON.
    #[error("{source_name}: not valid JSON: {message}")]
    Json {
        /// Where the spec came from (a file name).
        source_name: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A field is missing or has an invalid value.
    #[error("{source_name}: spec field \"{field}\": {message}")]
    Invalid {
        /// Where the spec came from (a file name).
        source_name: String,
        /// The field path, e.g. `spec.dataSchema.granularitySpec.segmentGranularity`.
        field: String,
        /// The value and the rule it broke.
        message: String,
    },
}

/// One dataSource's ingestion spec.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSourceSpec {
    /// The table's name.
    pub data_source: DataSourceName,
    /// Where each event's time comes from.
    pub timestamp: TimestampSpec,
    /// Which fields become dimensions.
    pub dimensions: DimensionsSpec,
    /// Ingest-time aggregators.
    pub metrics: Vec<MetricSpec>,
    /// Segment and query granularity, rollup.
    pub granularity: GranularitySpec,
    /// The stream's source.
    pub io: IoConfig,
    /// Limits and periods.
    pub tuning: TuningConfig,
}

/// Druid's timestampSpec.
#[derive(Debug, Clone, PartialEq)]
pub struct TimestampSpec {
    /// The event field holding the time.
    pub column: String,
    /// How to read it.
    pub format: TimestampFormat,
    /// Time used for events without the column, if any.
    pub missing_value: Option<Millis>,
}

/// Druid's dimensionsSpec. An empty dimension list means schemaless: every field that is not
/// the timestamp, a metric input or excluded becomes a string dimension.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DimensionsSpec {
    /// Declared dimensions, in order.
    pub dimensions: Vec<DimensionSpec>,
    /// Fields never discovered as dimensions in schemaless mode.
    pub exclusions: BTreeSet<String>,
}

impl DimensionsSpec {
    /// Whether dimensions are discovered from the events.
    pub fn is_schemaless(&self) -> bool {
        self.dimensions.is_empty()
    }
}

/// One dimension, in Druid's JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimensionSpec {
    /// The value type.
    #[serde(rename = "type")]
    pub kind: DimensionType,
    /// Field and column name.
    pub name: String,
}

/// A dimension's value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DimensionType {
    /// UTF-8 strings, dictionary-encoded.
    String,
    /// 64-bit integers.
    Long,
    /// 32-bit floats.
    Float,
    /// 64-bit floats.
    Double,
}

/// One ingest-time aggregator, in Druid's JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricSpec {
    /// The aggregator.
    #[serde(rename = "type")]
    pub kind: AggregatorKind,
    /// The output column.
    pub name: String,
    /// The input field; none for `count`.
    #[serde(rename = "fieldName", skip_serializing_if = "Option::is_none", default)]
    pub field_name: Option<String>,
}

/// The ingest-time aggregators braid implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AggregatorKind {
    /// Number of events folded into the row.
    #[serde(rename = "count")]
    Count,
    /// Sum as a 64-bit integer.
    #[serde(rename = "longSum")]
    LongSum,
    /// Sum as a 64-bit float.
    #[serde(rename = "doubleSum")]
    DoubleSum,
    /// Sum stored as a 32-bit float.
    #[serde(rename = "floatSum")]
    FloatSum,
    /// Minimum as a 64-bit integer.
    #[serde(rename = "longMin")]
    LongMin,
    /// Maximum as a 64-bit integer.
    #[serde(rename = "longMax")]
    LongMax,
    /// Minimum as a 64-bit float.
    #[serde(rename = "doubleMin")]
    DoubleMin,
    /// Maximum as a 64-bit float.
    #[serde(rename = "doubleMax")]
    DoubleMax,
}

impl AggregatorKind {
    const NAMES: &'static str = "count, longSum, doubleSum, floatSum, longMin, longMax, doubleMin, doubleMax";

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "count" => Self::Count,
            "longSum" => Self::LongSum,
            "doubleSum" => Self::DoubleSum,
            "floatSum" => Self::FloatSum,
            "longMin" => Self::LongMin,
            "longMax" => Self::LongMax,
            "doubleMin" => Self::DoubleMin,
            "doubleMax" => Self::DoubleMax,
            _ => return None,
        })
    }
}

/// Druid's granularitySpec.
#[derive(Debug, Clone, PartialEq)]
pub struct GranularitySpec {
    /// The time span of one segment.
    pub segment: Granularity,
    /// Event times are truncated to this before rollup.
    pub query: Granularity,
    /// Whether events with equal truncated time and dimensions fold into one row.
    pub rollup: bool,
    /// Intervals named in the spec, if any.
    pub intervals: Vec<Interval>,
}

/// Where the stream reads from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IoConfig {
    /// Kafka topic (`ioConfig.topic`, or the legacy firehose's `feed`).
    pub topic: Option<String>,
    /// Passed to librdkafka as they are.
    pub consumer_properties: BTreeMap<String, String>,
    /// Druid's `useEarliestOffset`: where to start without committed offsets.
    pub use_earliest_offset: Option<bool>,
    /// Events older than the latest message time minus this are thrown away by the stream.
    pub late_message_rejection_period: Option<Period>,
    /// Events newer than the latest message time plus this are thrown away by the stream.
    pub early_message_rejection_period: Option<Period>,
}

/// Limits and periods.
#[derive(Debug, Clone, PartialEq)]
pub struct TuningConfig {
    /// Rows the stream keeps in memory before a checkpoint.
    pub max_rows_in_memory: u64,
    /// Rows per segment file; larger intervals get more partitions.
    pub max_rows_per_segment: u64,
    /// How often the stream checkpoints.
    pub checkpoint_period: Period,
    /// Legacy realtime window: events further than this from message time are thrown away.
    pub window_period: Option<Period>,
    /// Unparseable events tolerated before the stream stops; none means unlimited.
    pub max_parse_exceptions: Option<u64>,
    /// Bytes the stream's raw archive may hold in memory (compressed) before it writes its
    /// largest parts to deep storage ahead of the checkpoint that commits them.
    pub max_archive_bytes_in_memory: u64,
}

/// Druid's default for Kafka ingestion.
fn default_max_rows_in_memory() -> u64 {
    150_000
}

/// Druid's default for dynamic partitioning.
fn default_max_rows_per_segment() -> u64 {
    5_000_000
}

/// 8 MiB of gzip, about 40 MiB of JSON events.
fn default_max_archive_bytes_in_memory() -> u64 {
    8 * 1024 * 1024
}

/// Druid's default intermediatePersistPeriod.
fn default_checkpoint_period() -> Period {
    Period { minutes: 10, ..Period::default() }
}

impl Default for TuningConfig {
    fn default() -> Self {
        Self {
            max_rows_in_memory: default_max_rows_in_memory(),
            max_rows_per_segment: default_max_rows_per_segment(),
            checkpoint_period: default_checkpoint_period(),
            window_period: None,
            max_parse_exceptions: None,
            max_archive_bytes_in_memory: default_max_archive_bytes_in_memory(),
        }
    }
}

/// Specs read from one file, and the fields they carry that braid accepts but does not use.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedSpecs {
    /// One per dataSource.
    pub specs: Vec<DataSourceSpec>,
    /// Field paths accepted but not used, to be listed once in a warning.
    pub ignored_fields: Vec<String>,
}

impl LoadedSpecs {
    /// The spec of one dataSource, or the only one when `name` is none.
    pub fn select(&self, name: Option<&str>) -> Result<&DataSourceSpec, String> {
        let names = || self.specs.iter().map(|s| s.data_source.as_str()).collect::<Vec<_>>().join(", ");
        match name {
            Some(name) => self
                .specs
                .iter()
                .find(|s| s.data_source.as_str() == name)
                .ok_or_else(|| format!("no spec for dataSource \"{name}\" (the spec has: {})", names())),
            None if self.specs.len() == 1 => Ok(&self.specs[0]),
            None => Err(format!(
                "the spec holds several dataSources ({}); choose one with --data-source",
                names()
            )),
        }
    }
}

/// Loads every dataSource spec in a JSON document: a Kafka supervisor spec (`spec` wrapper or
/// dataSchema at top level), an ingestion task spec, or the legacy realtime array.
pub fn load_specs(text: &str, source_name: &str) -> Result<LoadedSpecs, SpecError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| SpecError::Json { source_name: source_name.into(), message: e.to_string() })?;
    let mut loader = Loader { source_name, ignored: Vec::new() };
    let specs = match &value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(loader.invalid("", "an empty array holds no spec"));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let path = format!("[{i}]");
                    let obj = loader.object(&path, item)?;
                    loader.ingestion_spec(obj)
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        Value::Object(_) => {
            let mut top = loader.object("", &value)?;
            let kind = top.opt_str(&loader, "type")?;
            if let Some(kind) = &kind {
                const KNOWN: [&str; 4] = ["kafka", "index", "index_parallel", "realtime"];
                if !KNOWN.contains(&kind.as_str()) {
                    return Err(loader.invalid(
                        "type",
                        &format!("unsupported spec type \"{kind}\" (expected one of: {})", KNOWN.join(", ")),
                    ));
                }
            }
            let spec = if top.map.contains_key("spec") {
                let inner = top.object(&loader, "spec")?;
                top.finish(&mut loader);
                loader.ingestion_spec(inner)?
            } else {
                loader.ingestion_spec(top)?
            };
            vec![spec]
        }
        other => {
            return Err(loader
                .invalid("", &format!("expected an object or an array of specs, found {}", kind_of(other))));
        }
    };
    let mut seen = BTreeSet::new();
    for spec in &specs {
        if !seen.insert(spec.data_source.as_str()) {
            return Err(loader.invalid(
                "dataSchema.dataSource",
                &format!("dataSource \"{}\" appears twice", spec.data_source),
            ));
        }
    }
    Ok(LoadedSpecs { specs, ignored_fields: loader.ignored })
}

struct Loader<'s> {
    source_name: &'s str,
    ignored: Vec<String>,
}

/// A JSON object being read, remembering which keys were used.
struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
    used: BTreeSet<&'a str>,
}

/// How an error message names a JSON value's kind: "a string", "an object", ...
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

impl<'a> Obj<'a> {
    fn field(&self, key: &str) -> String {
        join(&self.path, key)
    }

    fn get(&mut self, key: &'a str) -> Option<&'a Value> {
        let (k, v) = self.map.get_key_value(key)?;
        self.used.insert(k.as_str());
        (!v.is_null()).then_some(v)
    }

    fn opt_str(&mut self, loader: &Loader, key: &'a str) -> Result<Option<String>, SpecError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(loader
                .invalid(&self.field(key), &format!("expected a string, found {} {other}", kind_of(other)))),
        }
    }

    fn str(&mut self, loader: &Loader, key: &'a str) -> Result<String, SpecError> {
        self.opt_str(loader, key)?
            .ok_or_else(|| loader.invalid(&self.field(key), "required field is missing"))
    }

    fn opt_bool(&mut self, loader: &Loader, key: &'a str) -> Result<Option<bool>, SpecError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            // Old Druid specs sometimes quote booleans.
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(other) => {
                Err(loader.invalid(&self.field(key), &format!("expected true or false, found {other}")))
            }
        }
    }

    fn opt_u64(&mut self, loader: &Loader, key: &'a str) -> Result<Option<u64>, SpecError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(Value::String(s)) if s.parse::<u64>().is_ok() => Ok(s.parse().ok()),
            Some(other) => {
                Err(loader
                    .invalid(&self.field(key), &format!("expected a non-negative integer, found {other}")))
            }
        }
    }

    fn opt_period(&mut self, loader: &Loader, key: &'a str) -> Result<Option<Period>, SpecError> {
        let Some(text) = self.opt_str(loader, key)? else { return Ok(None) };
        Period::parse(&text).map(Some).map_err(|e| loader.invalid(&self.field(key), &e.to_string()))
    }

    fn opt_object(&mut self, loader: &Loader, key: &'a str) -> Result<Option<Obj<'a>>, SpecError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => loader.object(&self.field(key), value).map(Some),
        }
    }

    fn object(&mut self, loader: &Loader, key: &'a str) -> Result<Obj<'a>, SpecError> {
        self.opt_object(loader, key)?
            .ok_or_else(|| loader.invalid(&self.field(key), "required field is missing"))
    }

    fn opt_array(&mut self, loader: &Loader, key: &'a str) -> Result<&'a [Value], SpecError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => {
                Err(loader.invalid(&self.field(key), &format!("expected an array, found {}", kind_of(other))))
            }
        }
    }

    /// Records every key that was never read as accepted-but-ignored.
    fn finish(self, loader: &mut Loader) {
        for key in self.map.keys() {
            if !self.used.contains(key.as_str()) {
                loader.ignored.push(self.field(key));
            }
        }
    }
}

impl<'s> Loader<'s> {
    fn invalid(&self, field: &str, message: &str) -> SpecError {
        SpecError::Invalid {
            source_name: self.source_name.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    fn object<'a>(&self, path: &str, value: &'a Value) -> Result<Obj<'a>, SpecError> {
        match value {
            Value::Object(map) => Ok(Obj { path: path.into(), map, used: BTreeSet::new() }),
            other => Err(self.invalid(path, &format!("expected an object, found {}", kind_of(other)))),
        }
    }

    /// `{dataSchema, ioConfig, tuningConfig}` plus whatever else the wrapper carries.
    fn ingestion_spec(&mut self, mut top: Obj<'_>) -> Result<DataSourceSpec, SpecError> {
        top.get("type");
        let mut schema = top.object(self, "dataSchema")?;
        let io_obj = top.opt_object(self, "ioConfig")?;
        let tuning_obj = top.opt_object(self, "tuningConfig")?;
        top.finish(self);

        let name = schema.str(self, "dataSource")?;
        let data_source = DataSourceName::new(&name)
            .map_err(|e| self.invalid(&schema.field("dataSource"), &e.to_string()))?;

        // Druid moved timestampSpec and dimensionsSpec from parser.parseSpec up to dataSchema.
        let mut parse_spec = match schema.opt_object(self, "parser")? {
            Some(mut parser) => {
                let kind = parser.opt_str(self, "type")?;
                if let Some(kind) = kind.filter(|k| k != "string" && k != "hadoopyString") {
                    return Err(self.invalid(
                        &parser.field("type"),
                        &format!("unsupported parser type \"{kind}\" (expected string)"),
                    ));
                }
                let parse_spec = parser.opt_object(self, "parseSpec")?;
                parser.finish(self);
                parse_spec
            }
            None => None,
        };
        if let Some(parse_spec) = &mut parse_spec {
            self.input_format(parse_spec, "format")?;
            self.reject_non_empty(parse_spec, "flattenSpec", "fields")?;
        }
        let timestamp_obj = match &mut parse_spec {
            Some(p) if p.map.contains_key("timestampSpec") => p.opt_object(self, "timestampSpec")?,
            _ => schema.opt_object(self, "timestampSpec")?,
        };
        let dimensions_obj = match &mut parse_spec {
            Some(p) if p.map.contains_key("dimensionsSpec") => p.opt_object(self, "dimensionsSpec")?,
            _ => schema.opt_object(self, "dimensionsSpec")?,
        };
        if let Some(p) = parse_spec {
            p.finish(self);
        }

        let timestamp = match timestamp_obj {
            Some(obj) => self.timestamp_spec(obj)?,
            None => TimestampSpec {
                column: "timestamp".into(),
                format: TimestampFormat::Auto,
                missing_value: None,
            },
        };
        let dimensions = match dimensions_obj {
            Some(obj) => self.dimensions_spec(obj)?,
            None => DimensionsSpec::default(),
        };
        let metrics = self.metrics_spec(&mut schema)?;
        let granularity = match schema.opt_object(self, "granularitySpec")? {
            Some(obj) => self.granularity_spec(obj)?,
            None => GranularitySpec {
                segment: Granularity::Day,
                query: Granularity::None,
                rollup: true,
                intervals: Vec::new(),
            },
        };
        if let Some(mut transform) = schema.opt_object(self, "transformSpec")? {
            self.reject_non_empty(&mut transform, "transformSpec", "transforms")?;
            if transform.get("filter").is_some() {
                return Err(self.invalid(
                    &transform.field("filter"),
                    "ingest-time filters are not supported; remove the filter or filter before ingestion",
                ));
            }
            transform.finish(self);
        }
        schema.finish(self);

        let io = match io_obj {
            Some(obj) => self.io_config(obj)?,
            None => IoConfig::default(),
        };
        let tuning = match tuning_obj {
            Some(obj) => self.tuning_config(obj)?,
            None => TuningConfig::default(),
        };

        let spec = DataSourceSpec { data_source, timestamp, dimensions, metrics, granularity, io, tuning };
        self.check_names(&spec)?;
        Ok(spec)
    }

    fn input_format(&mut self, obj: &mut Obj<'_>, key: &'static str) -> Result<(), SpecError> {
        match obj.opt_str(self, key)? {
            None => Ok(()),
            Some(f) if f == "json" => Ok(()),
            Some(f) => {
                Err(self
                    .invalid(&obj.field(key), &format!("unsupported input format \"{f}\" (expected json)")))
            }
        }
    }

    /// Fields that would change what is ingested are refused when they carry anything.
    fn reject_non_empty(
        &mut self,
        obj: &mut Obj<'_>,
        what: &str,
        key: &'static str,
    ) -> Result<(), SpecError> {
        let field = obj.field(key);
        let value = match obj.get(key) {
            Some(Value::Array(items)) if items.is_empty() => return Ok(()),
            Some(Value::Object(map)) => match map.get("fields") {
                Some(Value::Array(items)) if !items.is_empty() => map.get("fields"),
                _ => None,
            },
            other => other,
        };
        match value {
            None => Ok(()),
            Some(_) => Err(self.invalid(&field, &format!("{what} is not supported by braid"))),
        }
    }

    fn timestamp_spec(&mut self, mut obj: Obj<'_>) -> Result<TimestampSpec, SpecError> {
        let column = obj.opt_str(self, "column")?.unwrap_or_else(|| "timestamp".into());
        let format = match obj.opt_str(self, "format")? {
            Some(f) => {
                TimestampFormat::parse(&f).map_err(|e| self.invalid(&obj.field("format"), &e.to_string()))?
            }
            None => TimestampFormat::Auto,
        };
        let missing_value = match obj.opt_str(self, "missingValue")? {
            Some(v) => Some(
                crate::time::parse_iso(&v)
                    .map_err(|e| self.invalid(&obj.field("missingValue"), &e.to_string()))?,
            ),
            None => None,
        };
        obj.finish(self);
        Ok(TimestampSpec { column, format, missing_value })
    }

    fn dimensions_spec(&mut self, mut obj: Obj<'_>) -> Result<DimensionsSpec, SpecError> {
        let mut dimensions = Vec::new();
        for (i, item) in obj.opt_array(self, "dimensions")?.iter().enumerate() {
            let field = format!("{}[{i}]", obj.field("dimensions"));
            dimensions.push(match item {
                Value::String(name) => DimensionSpec { kind: DimensionType::String, name: name.clone() },
                Value::Object(_) => {
                    let mut dim = self.object(&field, item)?;
                    let name = dim.str(self, "name")?;
                    let kind = match dim.opt_str(self, "type")?.as_deref() {
                        None | Some("string") => DimensionType::String,
                        Some("long") => DimensionType::Long,
                        Some("float") => DimensionType::Float,
                        Some("double") => DimensionType::Double,
                        Some(other) => {
                            return Err(self.invalid(
                                &dim.field("type"),
                                &format!(
                                    "unsupported dimension type \"{other}\" (expected one of: string, long, float, double)"
                                ),
                            ));
                        }
                    };
                    dim.finish(self);
                    DimensionSpec { kind, name }
                }
                other => {
                    return Err(self.invalid(
                        &field,
                        &format!("expected a dimension name or object, found {}", kind_of(other)),
                    ));
                }
            });
        }
        let mut exclusions = BTreeSet::new();
        for (i, item) in obj.opt_array(self, "dimensionExclusions")?.iter().enumerate() {
            match item {
                Value::String(name) => {
                    exclusions.insert(name.clone());
                }
                other => {
                    return Err(self.invalid(
                        &format!("{}[{i}]", obj.field("dimensionExclusions")),
                        &format!("expected a field name, found {}", kind_of(other)),
                    ));
                }
            }
        }
        if !obj.opt_array(self, "spatialDimensions")?.is_empty() {
            return Err(self
                .invalid(&obj.field("spatialDimensions"), "spatial dimensions are not supported by braid"));
        }
        obj.finish(self);
        Ok(DimensionsSpec { dimensions, exclusions })
    }

    fn metrics_spec(&mut self, schema: &mut Obj<'_>) -> Result<Vec<MetricSpec>, SpecError> {
        let mut metrics = Vec::new();
        for (i, item) in schema.opt_array(self, "metricsSpec")?.iter().enumerate() {
            let mut obj = self.object(&format!("{}[{i}]", schema.field("metricsSpec")), item)?;
            let kind_name = obj.str(self, "type")?;
            let kind = AggregatorKind::parse(&kind_name).ok_or_else(|| {
                self.invalid(
                    &obj.field("type"),
                    &format!(
                        "unsupported aggregator \"{kind_name}\" (expected one of: {})",
                        AggregatorKind::NAMES
                    ),
                )
            })?;
            let name = obj.str(self, "name")?;
            let field_name = obj.opt_str(self, "fieldName")?;
            if kind != AggregatorKind::Count && field_name.is_none() {
                let message = if obj.map.contains_key("expression") {
                    "expression aggregators are not supported; give fieldName"
                } else {
                    "required field is missing"
                };
                return Err(self.invalid(&obj.field("fieldName"), message));
            }
            obj.finish(self);
            metrics.push(MetricSpec {
                kind,
                name,
                field_name: field_name.filter(|_| kind != AggregatorKind::Count),
            });
        }
        Ok(metrics)
    }

    fn granularity(
        &mut self,
        obj: &mut Obj<'_>,
        key: &'static str,
    ) -> Result<Option<Granularity>, SpecError> {
        let field = obj.field(key);
        let Some(value) = obj.get(key) else { return Ok(None) };
        let parsed = match value {
            Value::String(name) => Granularity::parse(name).map_err(|e| e.to_string()),
            Value::Object(_) => {
                let mut g = self.object(&field, value)?;
                let kind = g.str(self, "type")?;
                if kind.eq_ignore_ascii_case("period") {
                    let period = g.str(self, "period")?;
                    let zone = g.opt_str(self, "timeZone")?;
                    let origin = g.opt_str(self, "origin")?;
                    g.finish(self);
                    if origin.is_some() {
                        Err("period granularities with an origin are not supported".to_string())
                    } else if zone.is_some_and(|z| z != "UTC" && z != "Etc/UTC") {
                        Err("ingestion granularities are in UTC; timeZone is not supported".to_string())
                    } else {
                        granularity_of_period(&period)
                    }
                } else {
                    g.finish(self);
                    Granularity::parse(&kind).map_err(|e| e.to_string())
                }
            }
            other => Err(format!("expected a granularity name or object, found {}", kind_of(other))),
        };
        parsed.map(Some).map_err(|message| self.invalid(&field, &message))
    }

    fn granularity_spec(&mut self, mut obj: Obj<'_>) -> Result<GranularitySpec, SpecError> {
        obj.get("type");
        let segment = self.granularity(&mut obj, "segmentGranularity")?.unwrap_or(Granularity::Day);
        let query = self.granularity(&mut obj, "queryGranularity")?.unwrap_or(Granularity::None);
        let rollup = obj.opt_bool(self, "rollup")?.unwrap_or(true);
        if matches!(segment, Granularity::None | Granularity::All) {
            return Err(self.invalid(
                &obj.field("segmentGranularity"),
                &format!(
                    "\"{}\" cannot split time into segments (expected a calendar period such as hour or day)",
                    segment.name()
                ),
            ));
        }
        if !nests_in(query, segment) {
            return Err(self.invalid(
                &obj.field("queryGranularity"),
                &format!(
                    "\"{}\" buckets do not fit inside segmentGranularity \"{}\" buckets; use a finer queryGranularity or a coarser segmentGranularity",
                    query.name(),
                    segment.name()
                ),
            ));
        }
        let mut intervals = Vec::new();
        for (i, item) in obj.opt_array(self, "intervals")?.iter().enumerate() {
            let field = format!("{}[{i}]", obj.field("intervals"));
            let Value::String(text) = item else {
                return Err(
                    self.invalid(&field, &format!("expected an interval string, found {}", kind_of(item)))
                );
            };
            intervals.push(Interval::parse(text).map_err(|e| self.invalid(&field, &e.to_string()))?);
        }
        obj.finish(self);
        Ok(GranularitySpec { segment, query, rollup, intervals })
    }

    fn io_config(&mut self, mut obj: Obj<'_>) -> Result<IoConfig, SpecError> {
        let mut io = IoConfig::default();
        obj.get("type");
        io.topic = obj.opt_str(self, "topic")?;
        if let Some(props) = obj.opt_object(self, "consumerProperties")? {
            io.consumer_properties = self.properties(props)?;
        }
        io.use_earliest_offset = obj.opt_bool(self, "useEarliestOffset")?;
        io.late_message_rejection_period = obj.opt_period(self, "lateMessageRejectionPeriod")?;
        io.early_message_rejection_period = obj.opt_period(self, "earlyMessageRejectionPeriod")?;
        if let Some(mut format) = obj.opt_object(self, "inputFormat")? {
            self.input_format(&mut format, "type")?;
            self.reject_non_empty(&mut format, "flattenSpec", "flattenSpec")?;
            format.finish(self);
        }
        if let Some(mut firehose) = obj.opt_object(self, "firehose")? {
            firehose.get("type");
            if io.topic.is_none() {
                io.topic = firehose.opt_str(self, "feed")?;
            }
            if let Some(props) = firehose.opt_object(self, "consumerProps")? {
                io.consumer_properties.extend(self.properties(props)?);
            }
            firehose.finish(self);
        }
        obj.finish(self);
        Ok(io)
    }

    fn properties(&mut self, obj: Obj<'_>) -> Result<BTreeMap<String, String>, SpecError> {
        let mut properties = BTreeMap::new();
        for (key, value) in obj.map {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    return Err(self.invalid(
                        &obj.field(key),
                        &format!("expected a string, number or boolean, found {}", kind_of(other)),
                    ));
                }
            };
            properties.insert(key.clone(), text);
        }
        Ok(properties)
    }

    fn tuning_config(&mut self, mut obj: Obj<'_>) -> Result<TuningConfig, SpecError> {
        obj.get("type");
        let mut tuning = TuningConfig::default();
        for (key, limit) in [
            ("maxRowsInMemory", &mut tuning.max_rows_in_memory),
            ("maxRowsPerSegment", &mut tuning.max_rows_per_segment),
            ("maxArchiveBytesInMemory", &mut tuning.max_archive_bytes_in_memory),
        ] {
            match obj.opt_u64(self, key)? {
                Some(0) => return Err(self.invalid(&obj.field(key), "must be at least 1, found 0")),
                Some(n) => *limit = n,
                None => {}
            }
        }
        // Our checkpoint persists and hands off at once, so Druid's two periods both map to it.
        for key in ["checkpointPeriod", "intermediateHandoffPeriod", "intermediatePersistPeriod"] {
            if let Some(period) = obj.opt_period(self, key)? {
                if period.fixed_duration_ms().is_none_or(|ms| ms <= 0) {
                    return Err(self.invalid(
                        &obj.field(key),
                        &format!("\"{period}\" must be a positive fixed duration such as PT10M"),
                    ));
                }
                if key == "checkpointPeriod" || tuning.checkpoint_period == default_checkpoint_period() {
                    tuning.checkpoint_period = period;
                }
            }
        }
        tuning.window_period = obj.opt_period(self, "windowPeriod")?;
        tuning.max_parse_exceptions = obj.opt_u64(self, "maxParseExceptions")?;
        if let Some(mut policy) = obj.opt_object(self, "rejectionPolicy")? {
            let kind = policy.opt_str(self, "type")?;
            if let Some(kind) = kind.filter(|k| k != "messageTime") {
                return Err(self.invalid(
                    &policy.field("type"),
                    &format!(
                        "\"{kind}\": braid rejects late events by message time only (expected messageTime)"
                    ),
                ));
            }
            policy.finish(self);
        }
        obj.finish(self);
        Ok(tuning)
    }

    fn check_names(&self, spec: &DataSourceSpec) -> Result<(), SpecError> {
        let mut names = BTreeMap::new();
        let dims = spec.dimensions.dimensions.iter().map(|d| (d.name.as_str(), "dimension"));
        let metrics = spec.metrics.iter().map(|m| (m.name.as_str(), "metric"));
        for (name, what) in dims.chain(metrics) {
            let field = if what == "dimension" { "dimensionsSpec.dimensions" } else { "metricsSpec" };
            if name.is_empty() || name == "__time" {
                return Err(self.invalid(field, &format!("{what} name \"{name}\" is reserved or empty")));
            }
            if let Some(previous) = names.insert(name, what) {
                return Err(self.invalid(
                    field,
                    &format!(
                        "\"{name}\" is declared as a {previous} and again as a {what}; names must be unique"
                    ),
                ));
            }
        }
        if spec.dimensions.dimensions.iter().any(|d| d.name == spec.timestamp.column) {
            return Err(self.invalid(
                "dimensionsSpec.dimensions",
                &format!(
                    "\"{}\" is the timestamp column and cannot also be a dimension",
                    spec.timestamp.column
                ),
            ));
        }
        Ok(())
    }
}

/// Druid's period granularities that equal a simple one; anything else is refused.
fn granularity_of_period(period: &str) -> Result<Granularity, String> {
    let parsed = Period::parse(period).map_err(|e| e.to_string())?;
    let simple = [
        Granularity::Second,
        Granularity::Minute,
        Granularity::FiveMinute,
        Granularity::TenMinute,
        Granularity::FifteenMinute,
        Granularity::ThirtyMinute,
        Granularity::Hour,
        Granularity::SixHour,
        Granularity::EightHour,
        Granularity::Day,
        Granularity::Week,
        Granularity::Month,
        Granularity::Quarter,
        Granularity::Year,
    ];
    let canonical = parsed.to_string();
    simple
        .into_iter()
        .find(|g| granularity_period(*g).is_some_and(|p| p == canonical))
        .ok_or_else(|| {
            format!("period granularity \"{period}\" is not supported (use one of PT1S, PT1M, PT5M, PT10M, PT15M, PT30M, PT1H, PT6H, PT8H, P1D, P1W, P1M, P3M, P1Y)")
        })
}

fn granularity_period(g: Granularity) -> Option<&'static str> {
    Some(match g {
        Granularity::Second => "PT1S",
        Granularity::Minute => "PT1M",
        Granularity::FiveMinute => "PT5M",
        Granularity::TenMinute => "PT10M",
        Granularity::FifteenMinute => "PT15M",
        Granularity::ThirtyMinute => "PT30M",
        Granularity::Hour => "PT1H",
        Granularity::SixHour => "PT6H",
        Granularity::EightHour => "PT8H",
        Granularity::Day => "P1D",
        Granularity::Week => "P1W",
        Granularity::Month => "P1M",
        Granularity::Quarter => "P3M",
        Granularity::Year => "P1Y",
        Granularity::None | Granularity::All => return None,
    })
}

/// Whether every `inner` bucket lies inside one `outer` bucket, so truncating an event's time
/// never moves it out of its segment.
pub fn nests_in(inner: Granularity, outer: Granularity) -> bool {
    use Granularity::*;
    const DAY: i64 = 86_400_000;
    match (inner, outer) {
        (All | None, _) => true, // all: folded to the segment's start by the rollup
        (_, All) => true,
        (Week, Week) => true,
        (Week, _) => false,
        (Month, Month | Quarter | Year) | (Quarter, Quarter | Year) | (Year, Year) => true,
        (Month | Quarter | Year, _) => false,
        (_, Month | Quarter | Year) => true, // every bucket of a day or less nests in a day
        _ => match (inner.fixed_ms(), outer.fixed_ms()) {
            (Some(i), Some(o)) => i <= o && o % i == 0 && (i <= DAY),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LEGACY: &str = include_str!("../../examples/wikipedia.json");
    const KAFKA: &str = include_str!("../../examples/wikipedia-kafka.json");

    fn load(value: Value) -> Result<LoadedSpecs, SpecError> {
        load_specs(&value.to_string(), "test.json")
    }

    fn kafka_with(schema_patch: impl FnOnce(&mut Value)) -> Value {
        let mut spec: Value = serde_json::from_str(KAFKA).unwrap();
        schema_patch(&mut spec["spec"]["dataSchema"]);
        spec
    }

    fn error_of(value: Value) -> String {
        load(value).unwrap_err().to_string()
    }

    #[test]
    fn legacy_realtime_spec_loads_as_it_is() {
        let loaded = load_specs(LEGACY, "wikipedia.spec").unwrap();
        let spec = loaded.select(None).unwrap();
        assert_eq!(spec.data_source.as_str(), "wikipedia");
        assert_eq!(spec.timestamp.column, "timestamp");
        assert_eq!(spec.timestamp.format, TimestampFormat::Auto);
        let dims: Vec<_> = spec.dimensions.dimensions.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(dims.len(), 12);
        assert_eq!(dims[0], "page");
        assert_eq!(spec.metrics.len(), 4);
        assert_eq!(
            spec.metrics[0],
            MetricSpec { kind: AggregatorKind::Count, name: "count".into(), field_name: None }
        );
        assert_eq!(spec.metrics[1].kind, AggregatorKind::DoubleSum);
        assert_eq!(spec.granularity.segment, Granularity::Day);
        assert_eq!(spec.granularity.query, Granularity::None);
        assert!(spec.granularity.rollup);
        assert_eq!(spec.granularity.intervals, vec![Interval::parse("2013-08-31/2013-09-01").unwrap()]);
        assert_eq!(spec.io.topic.as_deref(), Some("wikipedia"));
        assert_eq!(spec.io.consumer_properties.get("groupid").map(String::as_str), Some("druid-example"));
        assert_eq!(spec.tuning.max_rows_in_memory, 500_000);
        assert_eq!(spec.tuning.checkpoint_period.to_string(), "PT10M");
        assert_eq!(spec.tuning.window_period.unwrap().to_string(), "PT10M");
        // What braid accepts but does not use is listed, once each.
        assert!(
            loaded.ignored_fields.contains(&"[0].tuningConfig.basePersistDirectory".to_string()),
            "{:?}",
            loaded.ignored_fields
        );
        assert!(loaded.ignored_fields.contains(&"[0].ioConfig.plumber".to_string()));
    }

    #[test]
    fn kafka_supervisor_spec_loads_with_and_without_the_spec_wrapper() {
        let wrapped = load_specs(KAFKA, "kafka.json").unwrap();
        let spec = wrapped.select(Some("wikipedia")).unwrap();
        assert_eq!(spec.io.topic.as_deref(), Some("wikipedia"));
        assert_eq!(spec.io.consumer_properties["bootstrap.servers"], "localhost:9092");
        assert_eq!(spec.io.use_earliest_offset, Some(true));
        assert_eq!(spec.granularity.segment, Granularity::Hour);
        assert_eq!(
            spec.dimensions.dimensions[1],
            DimensionSpec { kind: DimensionType::Long, name: "isRobotCount".into() }
        );
        assert!(
            wrapped.ignored_fields.contains(&"spec.ioConfig.taskCount".to_string()),
            "{:?}",
            wrapped.ignored_fields
        );

        let mut top: Value = serde_json::from_str(KAFKA).unwrap();
        let inner = top["spec"].take();
        let mut flat = json!({"type": "kafka"});
        for (k, v) in inner.as_object().unwrap() {
            flat[k] = v.clone();
        }
        let flat = load(flat).unwrap();
        assert_eq!(flat.specs, wrapped.specs);
    }

    #[test]
    fn every_granularity_loads() {
        for name in Granularity::ALL_NAMES {
            let g = Granularity::parse(name).unwrap();
            let result = load(kafka_with(|s| {
                s["granularitySpec"] =
                    json!({"segmentGranularity": "YEAR", "queryGranularity": name.to_uppercase()});
            }));
            if g == Granularity::Week {
                assert!(result.is_err(), "weeks do not nest in years");
            } else {
                assert_eq!(result.unwrap().specs[0].granularity.query, g, "{name}");
            }
            let segment = load(kafka_with(|s| s["granularitySpec"] = json!({"segmentGranularity": name})));
            match g {
                Granularity::None | Granularity::All => {
                    let err = segment.unwrap_err().to_string();
                    assert!(err.contains("segmentGranularity") && err.contains(name), "{err}");
                }
                _ => assert_eq!(segment.unwrap().specs[0].granularity.segment, g),
            }
        }
        let period = load(kafka_with(|s| {
            s["granularitySpec"] = json!({"segmentGranularity": {"type": "period", "period": "PT1H"}, "queryGranularity": {"type": "none"}});
        }))
        .unwrap();
        assert_eq!(period.specs[0].granularity.segment, Granularity::Hour);
        assert_eq!(period.specs[0].granularity.query, Granularity::None);
    }

    #[test]
    fn schemaless_and_exclusions() {
        let spec = load(kafka_with(|s| {
            s["dimensionsSpec"] = json!({"dimensions": [], "dimensionExclusions": ["user"]});
        }))
        .unwrap();
        let dims = &spec.specs[0].dimensions;
        assert!(dims.is_schemaless());
        assert!(dims.exclusions.contains("user"));
    }

    #[test]
    fn bad_values_name_the_field_the_value_and_the_rule() {
        let cases: Vec<(Value, &[&str])> = vec![
            (
                kafka_with(|s| s["granularitySpec"]["segmentGranularity"] = json!("DAYS")),
                &["spec.dataSchema.granularitySpec.segmentGranularity", "DAYS", "expected one of"],
            ),
            (
                kafka_with(|s| s["granularitySpec"]["queryGranularity"] = json!("day")),
                &["spec.dataSchema.granularitySpec.queryGranularity", "day", "hour"],
            ),
            (
                kafka_with(|s| s["granularitySpec"]["rollup"] = json!("maybe")),
                &["granularitySpec.rollup", "maybe", "true or false"],
            ),
            (
                kafka_with(|s| s["timestampSpec"]["format"] = json!("yyyy-MM-dd QQ")),
                &["spec.dataSchema.timestampSpec.format", "QQ"],
            ),
            (
                kafka_with(|s| s["metricsSpec"][1]["type"] = json!("hyperUnique")),
                &["spec.dataSchema.metricsSpec[1].type", "hyperUnique", "longSum"],
            ),
            (
                kafka_with(|s| {
                    s["metricsSpec"][1].as_object_mut().unwrap().remove("fieldName");
                }),
                &["metricsSpec[1].fieldName", "missing"],
            ),
            (
                kafka_with(|s| s["dimensionsSpec"]["dimensions"][1]["type"] = json!("json")),
                &["dimensionsSpec.dimensions[1].type", "json", "string, long"],
            ),
            (kafka_with(|s| s["dataSource"] = json!("../etc")), &["spec.dataSchema.dataSource", "../etc"]),
            (kafka_with(|s| s["dataSource"] = json!("a/b")), &["spec.dataSchema.dataSource", "a/b"]),
            (
                kafka_with(|s| {
                    s.as_object_mut().unwrap().remove("dataSource");
                }),
                &["spec.dataSchema.dataSource", "missing"],
            ),
            (kafka_with(|s| s["metricsSpec"][1]["name"] = json!("page")), &["\"page\"", "unique"]),
            (
                kafka_with(|s| s["granularitySpec"]["intervals"] = json!(["2013-09-01/2013-08-31"])),
                &["granularitySpec.intervals[0]", "2013-09-01"],
            ),
            (
                kafka_with(|s| {
                    s["transformSpec"] =
                        json!({"filter": {"type": "selector", "dimension": "a", "value": "b"}})
                }),
                &["transformSpec.filter", "not supported"],
            ),
            (json!({"type": "kinesis", "spec": {}}), &["type", "kinesis", "kafka"]),
            (json!(42), &["expected an object or an array"]),
        ];
        for (value, needles) in cases {
            let err = error_of(value);
            assert!(err.starts_with("test.json: "), "{err}");
            for needle in needles {
                assert!(err.contains(needle), "{err:?} should mention {needle:?}");
            }
        }
        let err = load_specs("{\"type\": ", "broken.json").unwrap_err().to_string();
        assert!(err.contains("broken.json") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn tuning_periods_and_limits() {
        let mut spec: Value = serde_json::from_str(KAFKA).unwrap();
        spec["spec"]["tuningConfig"]["checkpointPeriod"] = json!("pt1m");
        spec["spec"]["tuningConfig"]["maxRowsPerSegment"] = json!(1000);
        let loaded = load(spec.clone()).unwrap();
        assert_eq!(loaded.specs[0].tuning.checkpoint_period.to_string(), "PT1M");
        assert_eq!(loaded.specs[0].tuning.max_rows_per_segment, 1000);
        assert_eq!(loaded.specs[0].tuning.max_archive_bytes_in_memory, 8 * 1024 * 1024, "the default");
        spec["spec"]["tuningConfig"]["maxArchiveBytesInMemory"] = json!(65536);
        assert_eq!(load(spec.clone()).unwrap().specs[0].tuning.max_archive_bytes_in_memory, 65536);
        spec["spec"]["tuningConfig"]["maxArchiveBytesInMemory"] = json!(0);
        let err = error_of(spec.clone());
        assert!(err.contains("tuningConfig.maxArchiveBytesInMemory") && err.contains("at least 1"), "{err}");
        spec["spec"]["tuningConfig"]["maxArchiveBytesInMemory"] = json!("lots");
        let err = error_of(spec.clone());
        assert!(err.contains("maxArchiveBytesInMemory") && err.contains("non-negative integer"), "{err}");
        spec["spec"]["tuningConfig"]["maxArchiveBytesInMemory"] = json!(65536);
        spec["spec"]["tuningConfig"]["checkpointPeriod"] = json!("P1M");
        assert!(error_of(spec.clone()).contains("fixed duration"));
        spec["spec"]["tuningConfig"]["checkpointPeriod"] = json!("PT1M");
        spec["spec"]["tuningConfig"]["maxRowsPerSegment"] = json!(0);
        assert!(error_of(spec).contains("maxRowsPerSegment"));
    }

    #[test]
    fn nesting_rules() {
        use Granularity::*;
        assert!(nests_in(None, Hour));
        assert!(nests_in(Hour, Day));
        assert!(nests_in(Day, Week));
        assert!(nests_in(Day, Month));
        assert!(nests_in(Month, Year));
        assert!(!nests_in(Week, Month));
        assert!(!nests_in(TenMinute, FifteenMinute));
        assert!(nests_in(FiveMinute, FifteenMinute));
        assert!(!nests_in(Day, Hour));
        assert!(nests_in(All, Hour));
    }
}
