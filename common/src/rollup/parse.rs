//! JSON events parsed straight into the index's scratch row: keys are matched against the
//! spec's fields without allocating, dimension values go to their dictionaries, metric inputs
//! to numbers, everything else is skipped unread.

use std::fmt;
use std::io::Write as _;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::{Dictionary, Dimension, Num, RollupIndex, Slot, StringDictionary};
use crate::spec::DimensionType;
use crate::time::{Millis, TimestampFormat};

/// Why one event could not be used. The caller adds where it was (file and line, or
/// partition and offset).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventError {
    /// Not a JSON object.
    #[error("not a valid JSON object: {0}")]
    Json(String),
    /// The timestamp column is absent or null and the spec has no missingValue.
    #[error("timestamp column \"{0}\" is missing")]
    MissingTimestamp(String),
    /// The timestamp does not parse with the spec's format.
    #[error("{0}")]
    Timestamp(String),
    /// A dimension or metric value has the wrong type.
    #[error("field \"{field}\": {message}")]
    Field {
        /// The event field.
        field: String,
        /// The value and the rule.
        message: String,
    },
}

/// The event being parsed.
#[derive(Debug, Clone)]
pub(super) struct Scratch {
    pub(super) key: Vec<u32>,
    pub(super) inputs: Vec<Option<super::Num>>,
    pub(super) time: Millis,
    has_time: bool,
    error: Option<EventError>,
    number: Vec<u8>,
    /// The slot of the key last seen at each position: events of one source repeat their
    /// key order, so most keys resolve with one short comparison instead of a hash lookup.
    key_cache: Vec<CachedKey>,
    key_position: usize,
    /// String dimension values read but not yet looked up (see [`Scratch::defer`]).
    deferred: Vec<DeferredValue>,
}

/// A string dimension value of the event being read: where it is in the line, and its hash
/// in the dimension's dictionary.
#[derive(Debug, Clone, Copy)]
pub(super) struct DeferredValue {
    dim: usize,
    start: usize,
    end: usize,
    hash: u32,
}

impl Scratch {
    pub(super) fn new(dims: usize, inputs: usize) -> Self {
        Self {
            key: vec![0; dims],
            inputs: vec![None; inputs],
            time: 0,
            has_time: false,
            error: None,
            number: Vec::with_capacity(32),
            key_cache: Vec::new(),
            key_position: 0,
            deferred: Vec::new(),
        }
    }

    pub(super) fn resize(&mut self, dims: usize) {
        self.key.resize(dims, 0);
    }

    /// Notes a string dimension value, found at `start` in the line, to look up once the line
    /// is read, and starts loading the part of its dictionary's table the lookup begins at: by
    /// then it is in the cache, where a lookup made at once would wait for it, which is most
    /// of what a lookup in a dictionary of many values costs.
    pub(super) fn defer(&mut self, strings: &StringDictionary, dim: usize, start: usize, value: &str) {
        let hash = strings.hash(value);
        strings.prefetch(hash);
        self.deferred.push(DeferredValue { dim, start, end: start + value.len(), hash });
    }

    /// Forgets the keys seen, whose slots may name dimensions that are gone.
    pub(super) fn forget_keys(&mut self) {
        self.key_cache.clear();
    }
}

/// A key seen at some position of an event, and its slot.
#[derive(Debug, Clone)]
struct CachedKey {
    name: Box<str>,
    slot: Slot,
    /// Written in JSON as it is: no quote, backslash or control character to escape.
    plain: bool,
    /// For a plain key of up to 15 bytes: the key and its closing quote as the low bytes of a
    /// little-endian integer, and the mask of those bytes, so the text is checked with one
    /// comparison of 16 bytes rather than a call to `memcmp`.
    quoted: Option<(u128, u128)>,
}

impl CachedKey {
    fn new(name: &str, slot: Slot) -> Self {
        let plain = !name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
        let quoted = (plain && name.len() < 16).then(|| {
            let mut bytes = [0u8; 16];
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            bytes[name.len()] = b'"';
            let mask = u128::MAX >> (8 * (15 - name.len()));
            (u128::from_le_bytes(bytes), mask)
        });
        Self { name: name.into(), slot, plain, quoted }
    }
}

/// Checking the whole line once lets serde_json skip checking each string. simdutf8 checks
/// 32 bytes at a time where the CPU can; std's check, which says where the line goes wrong,
/// runs only on a line that is not UTF-8.
fn utf8(line: &[u8]) -> Result<&str, EventError> {
    simdutf8::basic::from_utf8(line)
        .or_else(|_| std::str::from_utf8(line))
        .map_err(|e| EventError::Json(format!("not UTF-8: {e}")))
}

pub(super) fn parse_event(index: &mut RollupIndex, line: &[u8]) -> Result<Millis, EventError> {
    parse_event_with(index, line, true)
}

/// [`parse_event`], with or without the fast path for flat events (tests compare the two).
pub(super) fn parse_event_with(
    index: &mut RollupIndex,
    line: &[u8],
    flat: bool,
) -> Result<Millis, EventError> {
    let text = utf8(line)?;
    clear_scratch(index);
    if !(flat && super::flat::parse_flat(index, text)) {
        // Escapes, nested values, a value its field refuses, bad JSON: serde_json reads the
        // event again from the start and says exactly what is wrong, if anything.
        clear_scratch(index);
        let mut de = serde_json::Deserializer::from_str(text);
        let result =
            de::Deserializer::deserialize_map(&mut de, EventVisitor { index }).and_then(|()| de.end());
        if let Some(error) = index.scratch.error.take() {
            return Err(error);
        }
        if let Err(e) = result {
            return Err(EventError::Json(e.to_string()));
        }
    }
    if !index.scratch.has_time {
        let spec = &index.schema.spec.timestamp;
        match spec.missing_value {
            Some(t) => index.scratch.time = t,
            None => return Err(EventError::MissingTimestamp(spec.column.clone())),
        }
    }
    Ok(index.scratch.time)
}

fn clear_scratch(index: &mut RollupIndex) {
    let scratch = &mut index.scratch;
    scratch.key.clear();
    scratch.key.resize(index.dims.len(), 0);
    scratch.inputs.iter_mut().for_each(|v| *v = None);
    scratch.has_time = false;
    scratch.error = None;
    scratch.key_position = 0;
    scratch.deferred.clear();
}

/// Looks up the deferred values of the line just read (see [`Scratch::defer`]).
pub(super) fn intern_deferred(index: &mut RollupIndex, line: &str) {
    let RollupIndex { dims, scratch, .. } = index;
    for deferred in &scratch.deferred {
        let Dictionary::Strings(strings) = &mut dims[deferred.dim].values else {
            unreachable!("only string dimensions defer their values")
        };
        scratch.key[deferred.dim] = strings.intern_hashed(&line[deferred.start..deferred.end], deferred.hash);
    }
    scratch.deferred.clear();
}

/// The slot of the key at `position` in an event: events of one source repeat their key
/// order, so most keys resolve with one short comparison with the key last seen there.
pub(super) fn slot_at(index: &mut RollupIndex, position: usize, key: &str) -> Slot {
    if let Some(cached) = index.scratch.key_cache.get(position)
        && *cached.name == *key
    {
        return cached.slot;
    }
    let slot = resolve_key(index, key);
    let cached = CachedKey::new(key, slot);
    let cache = &mut index.scratch.key_cache;
    if position < cache.len() {
        cache[position] = cached;
    } else if position == cache.len() {
        cache.push(cached);
    }
    slot
}

/// The slot of the key at `position` when `rest` (the JSON text after the key's opening
/// quote) starts with the key last seen there and its closing quote, with the bytes they
/// take: most keys resolve with one short comparison of raw bytes.
pub(super) fn cached_slot(index: &RollupIndex, position: usize, rest: &[u8]) -> Option<(Slot, usize)> {
    let cached = index.scratch.key_cache.get(position)?;
    let name = cached.name.as_bytes();
    if let (Some((quoted, mask)), Some(text)) = (cached.quoted, rest.first_chunk::<16>()) {
        let found = u128::from_le_bytes(*text) & mask == quoted;
        return found.then_some((cached.slot, name.len() + 1));
    }
    let found = cached.plain && rest.get(name.len()) == Some(&b'"') && rest.starts_with(name);
    found.then_some((cached.slot, name.len() + 1))
}

struct EventVisitor<'i> {
    index: &'i mut RollupIndex,
}

impl<'de> Visitor<'de> for EventVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let index = self.index;
        while let Some(slot) = map.next_key_seed(KeySeed { index })? {
            if slot == Slot::Ignore {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            map.next_value_seed(ValueSeed(|value: Value<'_>| match store(index, slot, value) {
                Ok(()) => true,
                Err(error) => {
                    index.scratch.error = Some(error);
                    false
                }
            }))?;
        }
        Ok(())
    }
}

/// Resolves a key to its slot, discovering new dimensions in schemaless mode.
struct KeySeed<'i> {
    index: &'i mut RollupIndex,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Slot;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Slot, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Slot;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Slot, E> {
        let position = self.index.scratch.key_position;
        self.index.scratch.key_position += 1;
        Ok(slot_at(self.index, position, key))
    }
}

/// The slot of a field name, discovering a dimension in schemaless mode.
fn resolve_key(index: &mut RollupIndex, key: &str) -> Slot {
    if let Some(slot) = index.fields.get(key) {
        return *slot;
    }
    let slot = if index.schema.spec.dimensions.is_schemaless() && !key.is_empty() && key != "__time" {
        index
            .dims
            .push(Dimension { name: key.into(), values: super::Dictionary::new(DimensionType::String) });
        index.scratch.key.push(0);
        Slot::Dimension(index.dims.len() - 1)
    } else {
        Slot::Ignore
    };
    index.fields.insert(key.into(), slot);
    slot
}

/// An event field's value as JSON has it, numbers as serde_json hands them over: what both
/// the byte scanner and the serde visitor pass to [`store`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Value<'a> {
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Array,
    Object,
}

/// Puts one field's value where its slot says, or says why it cannot go there.
pub(super) fn store(index: &mut RollupIndex, slot: Slot, value: Value<'_>) -> Result<(), EventError> {
    match slot {
        Slot::Timestamp => store_time(&index.schema.spec.timestamp.format, &mut index.scratch, value),
        Slot::Dimension(d) => {
            let dim = &mut index.dims[d];
            let values = &mut dim.values;
            let id = match value {
                Value::Str(v) => dimension_str(values, v),
                Value::Int(v) => Ok(dimension_number(values, &mut index.scratch.number, v as f64, Some(v))),
                Value::Float(v) => Ok(dimension_number(values, &mut index.scratch.number, v, None)),
                Value::Bool(v) => dimension_bool(values, v),
                Value::Null => Ok(0),
                Value::Array => Err("an array: multi-value dimensions are not supported".to_string()),
                Value::Object => Err("an object: nested values are not supported as dimensions".to_string()),
            };
            let id = id.map_err(|message| EventError::Field { field: dim.name.to_string(), message })?;
            // A key seen twice: its last value stands, as if every value were stored at once.
            index.scratch.deferred.retain(|deferred| deferred.dim != d);
            index.scratch.key[d] = id;
            Ok(())
        }
        Slot::MetricInput(i) => {
            let input = match value {
                Value::Int(v) => Ok(Some(Num::Long(v))),
                Value::Float(v) => Ok(Some(Num::Double(v))),
                Value::Str(v) => metric_str(v).map(Some),
                Value::Null => Ok(None),
                Value::Bool(v) => Err(format!("value {v} is not a number")),
                Value::Array => Err("an array is not a number".to_string()),
                Value::Object => Err("an object is not a number".to_string()),
            };
            let field = &index.schema.metric_inputs[i];
            index.scratch.inputs[i] =
                input.map_err(|message| EventError::Field { field: field.clone(), message })?;
            Ok(())
        }
        Slot::Ignore => Ok(()),
    }
}

/// Reads the event time from the timestamp field's value (null leaves it unset).
fn store_time(format: &TimestampFormat, scratch: &mut Scratch, value: Value<'_>) -> Result<(), EventError> {
    let refuse = |what: String| {
        Err(EventError::Timestamp(format!("timestamp {what} a time (format \"{}\")", format.name())))
    };
    let parsed = match value {
        Value::Str(v) => format.parse_str(v),
        Value::Int(v) => format.parse_i64(v),
        Value::Float(v) => format.parse_f64(v),
        Value::Null => return Ok(()),
        Value::Bool(v) => return refuse(format!("{v} is not")),
        Value::Array => return refuse("is an array, not".into()),
        Value::Object => return refuse("is an object, not".into()),
    };
    scratch.time = parsed.map_err(|e| EventError::Timestamp(e.to_string()))?;
    scratch.has_time = true;
    Ok(())
}

/// Hands a field's value, as serde_json reads it, to `put`; `put` says whether it was taken
/// (having noted why not when it was not). Arrays and objects are not read into.
struct ValueSeed<F>(F);

impl<'de, F: for<'a> FnOnce(Value<'a>) -> bool> DeserializeSeed<'de> for ValueSeed<F> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<F: for<'a> FnOnce(Value<'a>) -> bool> ValueSeed<F> {
    fn put<E: de::Error>(self, value: Value<'_>) -> Result<(), E> {
        if (self.0)(value) { Ok(()) } else { Err(E::custom("rejected")) }
    }
}

impl<'de, F: for<'a> FnOnce(Value<'a>) -> bool> Visitor<'de> for ValueSeed<F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.put(Value::Str(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.put(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(v) => self.put(Value::Int(v)),
            Err(_) => self.put(Value::Float(v as f64)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.put(Value::Float(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.put(Value::Bool(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.put(Value::Null)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.put(Value::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.put(Value::Object)
    }
}

/// A JSON number as a dimension value: typed dimensions take it as it is, string dimensions
/// take its text.
fn dimension_number(values: &mut Dictionary, text: &mut Vec<u8>, as_f64: f64, as_i64: Option<i64>) -> u32 {
    match values.kind() {
        DimensionType::String => {
            text.clear();
            let _ = match as_i64 {
                Some(v) => write!(text, "{v}"),
                None => write!(text, "{as_f64}"),
            };
            values.intern_str(std::str::from_utf8(text).unwrap_or_default())
        }
        DimensionType::Long => values.intern_i64(as_i64.unwrap_or(as_f64 as i64)),
        DimensionType::Float => values.intern_f32(as_f64 as f32),
        DimensionType::Double => values.intern_f64(as_f64),
    }
}

/// A JSON string as a dimension value: typed dimensions parse it (Druid reads numeric
/// strings as numbers), or say why they cannot.
fn dimension_str(values: &mut Dictionary, v: &str) -> Result<u32, String> {
    let parsed = match values.kind() {
        DimensionType::String => return Ok(values.intern_str(v)),
        DimensionType::Long => v.trim().parse::<i64>().ok().map(|n| values.intern_i64(n)).or_else(|| {
            v.trim().parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| values.intern_i64(f as i64))
        }),
        DimensionType::Float => {
            v.trim().parse::<f32>().ok().filter(|f| f.is_finite()).map(|f| values.intern_f32(f))
        }
        DimensionType::Double => {
            v.trim().parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| values.intern_f64(f))
        }
    };
    parsed.ok_or_else(|| format!("value {v:?} is not a {}", type_name(values.kind())))
}

/// A JSON boolean as a dimension value: its text for string dimensions, refused by typed ones.
fn dimension_bool(values: &mut Dictionary, v: bool) -> Result<u32, String> {
    match values.kind() {
        DimensionType::String => Ok(values.intern_str(if v { "true" } else { "false" })),
        kind => Err(format!("value {v} is not a {}", type_name(kind))),
    }
}

/// A JSON string as a metric input: Druid reads numeric strings as numbers.
fn metric_str(v: &str) -> Result<Num, String> {
    let trimmed = v.trim();
    if let Ok(n) = trimmed.parse::<i64>() {
        return Ok(Num::Long(n));
    }
    match trimmed.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Num::Double(f)),
        _ => Err(format!("value {v:?} is not a number")),
    }
}

fn type_name(kind: DimensionType) -> &'static str {
    match kind {
        DimensionType::String => "string",
        DimensionType::Long => "long",
        DimensionType::Float => "float",
        DimensionType::Double => "double",
    }
}

/// Reads only an event's time: the JSON is checked whole, every other field skipped. For
/// placing raw events in the archive, where the rest of the event is not needed yet.
pub fn event_time(spec: &crate::spec::TimestampSpec, line: &[u8]) -> Result<Millis, EventError> {
    let mut scratch = Scratch::new(0, 0);
    let mut de = serde_json::Deserializer::from_str(utf8(line)?);
    let visitor = TimeOnlyVisitor { spec, scratch: &mut scratch };
    let result = de::Deserializer::deserialize_map(&mut de, visitor).and_then(|()| de.end());
    if let Some(error) = scratch.error.take() {
        return Err(error);
    }
    if let Err(e) = result {
        return Err(EventError::Json(e.to_string()));
    }
    match (scratch.has_time, spec.missing_value) {
        (true, _) => Ok(scratch.time),
        (false, Some(t)) => Ok(t),
        (false, None) => Err(EventError::MissingTimestamp(spec.column.clone())),
    }
}

struct TimeOnlyVisitor<'a> {
    spec: &'a crate::spec::TimestampSpec,
    scratch: &'a mut Scratch,
}

impl<'de> Visitor<'de> for TimeOnlyVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == self.spec.column {
                let scratch = &mut *self.scratch;
                map.next_value_seed(ValueSeed(|value: Value<'_>| {
                    match store_time(&self.spec.format, scratch, value) {
                        Ok(()) => true,
                        Err(error) => {
                            scratch.error = Some(error);
                            false
                        }
                    }
                }))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}
