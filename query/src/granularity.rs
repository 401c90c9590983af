//! Query granularities, query intervals and the time functions SQL and native queries share.
//!
//! A native query names its time buckets with `granularity` (a simple name such as `"hour"`, or a
//! `period`/`duration` object with an optional time zone and origin) and its time range with
//! `intervals`; [`QueryGranularity::from_json`] and [`parse_intervals`] turn both into values, and
//! this module owns the bucketing rule they share with Druid SQL. [`QueryGranularity::floor`]
//! reproduces Druid's `PeriodGranularity` and `DurationGranularity` (Joda's ISO chronology): without
//! an origin, one-unit periods truncate to the calendar field in the query time zone (`P1D` in
//! America/Los_Angeles starts at local midnight, so DST days last 23 or 25 hours, `P1W` starts on
//! Monday) and multi-unit periods count from 1970-01-01T00:00 local time; with an origin, buckets
//! start at origin + k·period. The same rule backs the Druid SQL functions `TIME_FLOOR`,
//! `TIME_CEIL`, `TIME_SHIFT`, `MILLIS_TO_TIMESTAMP` and `TIMESTAMP_TO_MILLIS`, registered as
//! DataFusion UDFs by [`sql_functions`], and the per-row bucket expression native queries plan with
//! [`floor_expr`]. Floors run once per row, so a granularity is first compiled into a plan:
//! fixed-width buckets (any period without calendar fields in UTC, and time-of-day periods counted
//! from an origin in any zone) floor with integer arithmetic over the values buffer; calendar
//! periods in a time zone go through chrono-tz, with a one-bucket cache across consecutive rows.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;
use common::time::{Granularity, Interval, Millis, Period, format_iso, parse_iso};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, PrimitiveArray, TimestampMillisecondArray,
};
use datafusion::arrow::buffer::{NullBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Int64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::Expr;
use serde_json::{Map, Value, json};

use crate::error::{QueryError, invalid};

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;
/// 1970-01-05T00:00Z, the first Monday after the epoch: Joda's weeks start on Mondays.
const FIRST_MONDAY: Millis = 4 * DAY;
/// chrono's day number (from 0001-01-01 = 1) of 1970-01-01.
const EPOCH_DAYS_FROM_CE: i64 = 719_163;
/// Values echoed into error messages are cut here.
const MAX_ECHO_CHARS: usize = 100;
/// The time zone name of every timestamp these functions return.
const UTC: &str = "UTC";

/// The most bucket starts [`QueryGranularity::buckets`] lists before refusing the query.
pub const MAX_BUCKETS: usize = 1_000_000;

/// What an error about a granularity value says is accepted.
const EXPECTED_GRANULARITY: &str =
    r#"an object such as {"type":"period","period":"PT1H","timeZone":"America/Los_Angeles"}"#;

// ---------------------------------------------------------------------------------------------
// QueryGranularity
// ---------------------------------------------------------------------------------------------

/// A Druid query granularity: how a query groups rows into time buckets.
///
/// Simple names other than `all` and `none` are the equivalent UTC period (`hour` = `PT1H`,
/// `quarter` = `P3M`), as in Druid, so `"hour"` and `{"type":"period","period":"PT1H"}` are equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryGranularity {
    /// One bucket holding all of time (Druid's `all`).
    All,
    /// No bucketing: every millisecond is its own bucket (Druid's `none`).
    None,
    /// Druid's period granularity. Built by [`Self::from_json`], every field of `period` is zero or
    /// positive and at least one is positive; a hand-built one that breaks this behaves as `none`.
    Period {
        /// The bucket length, e.g. `PT1H` or `P1M`.
        period: Period,
        /// The zone whose calendar places bucket boundaries; `None` is UTC.
        time_zone: Option<Tz>,
        /// An instant where a bucket starts; `None` counts from 1970-01-01T00:00 in the zone.
        origin: Option<Millis>,
    },
    /// Druid's duration granularity: buckets of exactly `millis` counted from `origin`.
    Duration {
        /// The bucket length in milliseconds; a hand-built value below 1 behaves as `none`.
        millis: i64,
        /// An instant where a bucket starts (Druid's default is the epoch).
        origin: Millis,
    },
}

impl Hash for QueryGranularity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Self::All | Self::None => {}
            Self::Period { period, time_zone, origin } => {
                let Period { years, months, weeks, days, hours, minutes, seconds, millis } = *period;
                [years, months, weeks, days, hours, minutes, seconds, millis].hash(state);
                time_zone.hash(state);
                origin.hash(state);
            }
            Self::Duration { millis, origin } => {
                millis.hash(state);
                origin.hash(state);
            }
        }
    }
}

impl QueryGranularity {
    /// The granularity a Druid simple name stands for: `all`, `none`, or the UTC period
    /// (`fifteen_minute` = `PT15M`, `week` = `P1W`, `quarter` = `P3M`, ...).
    pub fn simple(granularity: Granularity) -> Self {
        match simple_period(granularity) {
            Some(period) => Self::Period { period, time_zone: None, origin: None },
            None if granularity == Granularity::All => Self::All,
            None => Self::None,
        }
    }

    /// Reads a query's `granularity`: a simple name (any case), `{"type":"period","period":"P1D",
    /// "timeZone":"America/Los_Angeles","origin":"2012-01-01T00:30:00Z"}` (zone and origin
    /// optional), `{"type":"duration","duration":7200000,"origin":...}`, or `{"type":"all"}`-style
    /// objects naming a simple granularity. Unknown keys are ignored, as Druid does. Errors name
    /// `field` (the path of the value in the query).
    pub fn from_json(value: &Value, field: &str) -> Result<Self, QueryError> {
        match value {
            Value::String(name) => Self::from_name(name, field),
            Value::Object(map) => {
                let kind = match map.get("type") {
                    Some(Value::String(kind)) => kind.as_str(),
                    None | Some(Value::Null) => {
                        return Err(invalid!(
                            "{field}: the object has no \"type\" (expected \"period\", \"duration\" or a \
                             simple granularity name, e.g. {EXPECTED_GRANULARITY})"
                        ));
                    }
                    Some(other) => {
                        return Err(invalid!(
                            "{field}.type: expected a string such as \"period\", found {}",
                            echo_json(other)
                        ));
                    }
                };
                match kind {
                    "period" => Self::period_from_json(map, field),
                    "duration" => Self::duration_from_json(map, field),
                    other => match Granularity::parse(other) {
                        Ok(g) => Ok(Self::simple(g)),
                        Err(_) => Err(invalid!(
                            "{field}.type: unknown granularity type \"{}\"; expected \"period\", \
                             \"duration\" or one of {}",
                            echo(other),
                            simple_names()
                        )),
                    },
                }
            }
            other => Err(invalid!(
                "{field}: expected a granularity name or object, found {}; expected one of {}, or {}",
                echo_json(other),
                simple_names(),
                EXPECTED_GRANULARITY
            )),
        }
    }

    fn from_name(name: &str, field: &str) -> Result<Self, QueryError> {
        Granularity::parse(name).map(Self::simple).map_err(|_| {
            invalid!(
                "{field}: unknown granularity \"{}\"; expected one of {}, or {}",
                echo(name),
                simple_names(),
                EXPECTED_GRANULARITY
            )
        })
    }

    fn period_from_json(map: &Map<String, Value>, field: &str) -> Result<Self, QueryError> {
        let period = match map.get("period") {
            Some(Value::String(text)) => {
                let period = Period::parse(text).map_err(|e| invalid!("{field}.period: {e}"))?;
                if let Some(rule) = period_problem(&period) {
                    return Err(invalid!("{field}.period: period \"{}\" {rule}", echo(text)));
                }
                period
            }
            None | Some(Value::Null) => {
                return Err(invalid!(
                    "{field}.period: missing (a period granularity needs an ISO 8601 period such as \
                     \"PT1H\" or \"P1D\")"
                ));
            }
            Some(other) => {
                return Err(invalid!(
                    "{field}.period: expected an ISO 8601 period string such as \"PT1H\", found {}",
                    echo_json(other)
                ));
            }
        };
        let time_zone = match map.get("timeZone") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => {
                Some(parse_time_zone(name).map_err(|reason| invalid!("{field}.timeZone: {reason}"))?)
            }
            Some(other) => {
                return Err(invalid!(
                    "{field}.timeZone: expected a time zone name such as \"America/Los_Angeles\", found {}",
                    echo_json(other)
                ));
            }
        };
        let origin = origin_from_json(map.get("origin"), &format!("{field}.origin"))?;
        Ok(Self::Period { period, time_zone, origin })
    }

    fn duration_from_json(map: &Map<String, Value>, field: &str) -> Result<Self, QueryError> {
        let millis = match map.get("duration") {
            Some(Value::Number(n)) => n.as_i64(),
            // Druid's own docs write the duration as a string ("7200000").
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            None | Some(Value::Null) => {
                return Err(invalid!(
                    "{field}.duration: missing (a duration granularity needs a bucket length in \
                     milliseconds such as 3600000)"
                ));
            }
            Some(_) => None,
        };
        let raw = map.get("duration").map(echo_json).unwrap_or_default();
        let Some(millis) = millis else {
            return Err(invalid!(
                "{field}.duration: {raw} is not a whole number of milliseconds (expected e.g. 3600000)"
            ));
        };
        if millis <= 0 {
            return Err(invalid!(
                "{field}.duration: {raw} is not positive (expected a bucket length in milliseconds such \
                 as 3600000)"
            ));
        }
        let origin = origin_from_json(map.get("origin"), &format!("{field}.origin"))?.unwrap_or(0);
        Ok(Self::Duration { millis, origin })
    }

    /// Druid's JSON form: the simple name when there is one (`"hour"`, `"all"`), else the object.
    pub fn to_json(&self) -> Value {
        match self {
            Self::All => json!("all"),
            Self::None => json!("none"),
            Self::Period { period, time_zone, origin } => {
                if time_zone.is_none()
                    && origin.is_none()
                    && let Some(name) = simple_name(period)
                {
                    return json!(name);
                }
                let mut object = Map::new();
                object.insert("type".into(), json!("period"));
                object.insert("period".into(), json!(period.to_string()));
                if let Some(tz) = time_zone {
                    object.insert("timeZone".into(), json!(tz.name()));
                }
                if let Some(origin) = origin {
                    object.insert("origin".into(), json!(format_iso(*origin)));
                }
                Value::Object(object)
            }
            Self::Duration { millis, origin } => {
                json!({"type": "duration", "duration": millis, "origin": format_iso(*origin)})
            }
        }
    }

    /// Start of the bucket holding `t`, exactly as Druid computes it (see the module docs).
    /// `All` returns `Millis::MIN` (its one bucket starts before any instant); `None` returns `t`.
    pub fn floor(&self, t: Millis) -> Millis {
        self.plan().floor(t)
    }

    /// A bucket's timestamp as Druid writes it in results: in the granularity's time zone with
    /// its offset (`2013-08-30T00:00:00.000-07:00`), or in UTC with `Z` when the zone is UTC,
    /// unset, or at offset zero at that instant (Joda prints `Z` for a zero offset).
    pub fn format_bucket(&self, t: Millis) -> String {
        let Self::Period { time_zone: Some(zone), .. } = self else { return format_iso(t) };
        match zone.timestamp_millis_opt(t) {
            LocalResult::Single(local) if local.offset().fix().local_minus_utc() != 0 => {
                local.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
            }
            _ => format_iso(t),
        }
    }

    /// Start of the bucket after the one starting at `bucket_start`: Druid's `increment`, i.e.
    /// `bucket_start` plus one period in the query time zone. `All` returns `Millis::MAX`, `None`
    /// `bucket_start + 1`; results saturate at the ends of the `i64` range.
    pub fn next(&self, bucket_start: Millis) -> Millis {
        self.plan().next(bucket_start)
    }

    /// Starts of all buckets overlapping `interval`, in order. The first may start before
    /// `interval.start`, as the bucket timestamps of Druid's timeseries do. `All` gives
    /// `[interval.start]`; `None` gives no buckets at all: one per millisecond would be absurd, so
    /// callers must not fill empty buckets for `none`. More than [`MAX_BUCKETS`] buckets is an
    /// [`QueryError::InvalidInput`].
    pub fn buckets(&self, interval: Interval) -> Result<Vec<Millis>, QueryError> {
        match self {
            Self::All => return Ok(vec![interval.start]),
            Self::None => return Ok(Vec::new()),
            Self::Period { .. } | Self::Duration { .. } => {}
        }
        if interval.start >= interval.end {
            return Ok(Vec::new());
        }
        let too_many = || {
            invalid!(
                "granularity {self}: interval {interval} holds more than {MAX_BUCKETS} buckets (the \
                 limit); use a coarser granularity or a shorter interval"
            )
        };
        let plan = self.plan();
        let first = plan.floor(interval.start);
        if let Plan::Fixed { width, .. } = plan {
            // Refuse before allocating when the count is a division away.
            let count = (i128::from(interval.end) - 1 - i128::from(first)) / i128::from(width) + 1;
            if count > MAX_BUCKETS as i128 {
                return Err(too_many());
            }
        }
        let mut starts = Vec::new();
        let mut start = first;
        while start < interval.end {
            if starts.len() == MAX_BUCKETS {
                return Err(too_many());
            }
            starts.push(start);
            let next = plan.next(start);
            if next <= start {
                break;
            }
            start = next;
        }
        Ok(starts)
    }

    /// Compiles the granularity into the cheapest equivalent bucketing rule.
    fn plan(&self) -> Plan {
        match *self {
            Self::All => Plan::All,
            Self::None => Plan::Identity,
            Self::Duration { millis, origin } if millis > 0 => Plan::fixed(origin, millis),
            Self::Duration { .. } => Plan::Identity,
            Self::Period { period, time_zone, origin } => {
                if period_problem(&period).is_some() {
                    return Plan::Identity;
                }
                Plan::period(period, Zone::new(time_zone), origin)
            }
        }
    }
}

impl fmt::Display for QueryGranularity {
    /// The simple name (`hour`) or Druid's JSON object (`{"type":"period",...}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_json() {
            Value::String(name) => f.write_str(&name),
            other => write!(f, "{other}"),
        }
    }
}

/// The UTC period a simple granularity stands for (none for `all` and `none`).
fn simple_period(granularity: Granularity) -> Option<Period> {
    let p = Period::default();
    Some(match granularity {
        Granularity::None | Granularity::All => return None,
        Granularity::Second => Period { seconds: 1, ..p },
        Granularity::Minute => Period { minutes: 1, ..p },
        Granularity::FiveMinute => Period { minutes: 5, ..p },
        Granularity::TenMinute => Period { minutes: 10, ..p },
        Granularity::FifteenMinute => Period { minutes: 15, ..p },
        Granularity::ThirtyMinute => Period { minutes: 30, ..p },
        Granularity::Hour => Period { hours: 1, ..p },
        Granularity::SixHour => Period { hours: 6, ..p },
        Granularity::EightHour => Period { hours: 8, ..p },
        Granularity::Day => Period { days: 1, ..p },
        Granularity::Week => Period { weeks: 1, ..p },
        Granularity::Month => Period { months: 1, ..p },
        Granularity::Quarter => Period { months: 3, ..p },
        Granularity::Year => Period { years: 1, ..p },
    })
}

/// The simple name whose UTC period is `period`, if any.
fn simple_name(period: &Period) -> Option<&'static str> {
    Granularity::ALL_NAMES
        .iter()
        .filter_map(|name| Granularity::parse(name).ok())
        .find(|g| simple_period(*g).as_ref() == Some(period))
        .map(Granularity::name)
}

/// "all, none, second, minute, ..., year": the simple names in the order Druid's docs list them.
fn simple_names() -> String {
    let rest = Granularity::ALL_NAMES.iter().filter(|n| !matches!(**n, "all" | "none"));
    ["all", "none"].iter().chain(rest).copied().collect::<Vec<_>>().join(", ")
}

/// Why `period` cannot be a bucket length, if it cannot: Druid rejects the zero period, and a
/// negative field would make buckets run backwards.
fn period_problem(period: &Period) -> Option<&'static str> {
    let fields = period_fields(period);
    if fields.iter().any(|(_, v)| *v < 0) {
        Some("has a negative field (expected every field to be zero or positive)")
    } else if fields.iter().all(|(_, v)| *v == 0) {
        Some("is zero (expected a positive period such as \"PT1H\")")
    } else {
        None
    }
}

/// Reads an origin: an ISO 8601 string (no zone = UTC) or epoch milliseconds; null = none.
fn origin_from_json(value: Option<&Value>, field: &str) -> Result<Option<Millis>, QueryError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => parse_iso(text).map(Some).map_err(|e| invalid!("{field}: {e}")),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid!("{field}: {n} is not a whole number of milliseconds since the epoch")),
        Some(other) => Err(invalid!(
            "{field}: expected an ISO 8601 time such as \"2012-01-01T00:30:00Z\", found {}",
            echo_json(other)
        )),
    }
}

/// Reads a time zone as Druid (Joda's `DateTimeZone.forID`) does: an IANA name, or an offset such
/// as "-08:00"; offsets map to the fixed `Etc/GMT±h` zones, so they must be whole hours.
fn parse_time_zone(name: &str) -> Result<Tz, String> {
    if let Ok(tz) = Tz::from_str(name) {
        return Ok(tz);
    }
    let unknown = || {
        format!(
            "unknown time zone \"{}\" (expected an IANA name such as \"America/Los_Angeles\" or \
             \"UTC\", or a whole-hour offset such as \"-08:00\")",
            echo(name)
        )
    };
    let bytes = name.as_bytes();
    let sign = match bytes.first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(unknown()),
    };
    let digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    let rest = &name[1..];
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) if digits(h) && digits(m) => (h, m),
        None if digits(rest) => (rest, "00"),
        None if rest.len() == 4 && rest.bytes().all(|b| b.is_ascii_digit()) => rest.split_at(2),
        _ => return Err(unknown()),
    };
    let (Ok(hours), Ok(minutes)) = (hours.parse::<i32>(), minutes.parse::<i32>()) else {
        return Err(unknown());
    };
    if minutes != 0 {
        return Err(format!(
            "time zone offset \"{}\" is not a whole number of hours (expected a whole-hour offset, \
             or the zone's IANA name such as \"Asia/Kolkata\")",
            echo(name)
        ));
    }
    if hours == 0 {
        return Ok(Tz::UTC);
    }
    // POSIX sign convention: Etc/GMT+8 is eight hours *behind* UTC.
    let etc = format!("Etc/GMT{}{hours}", if sign < 0 { '+' } else { '-' });
    Tz::from_str(&etc).map_err(|_| unknown())
}

/// Cuts `s` for an error message.
fn echo(s: &str) -> String {
    if s.chars().count() <= MAX_ECHO_CHARS {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(MAX_ECHO_CHARS).collect();
        format!("{cut}...")
    }
}

/// A JSON value as compact JSON, cut for an error message.
fn echo_json(value: &Value) -> String {
    echo(&value.to_string())
}

// ---------------------------------------------------------------------------------------------
// Bucketing plans
// ---------------------------------------------------------------------------------------------

/// A granularity compiled for per-row use.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// One bucket for all time.
    All,
    /// Every instant is its own bucket.
    Identity,
    /// Buckets of exactly `width` ms starting at `origin + k * width`; `origin` is kept in
    /// `0..width`, which changes no bucket and keeps `t - origin` from overflowing.
    Fixed { origin: Millis, width: i64 },
    /// UTC calendar months, quarters and years, via `common`'s allocation-free calendar.
    Utc(Granularity),
    /// Everything else: calendar fields in a time zone, origins, compound calendar periods.
    Zoned(Zoned),
}

impl Plan {
    fn fixed(origin: Millis, width: i64) -> Self {
        Plan::Fixed { origin: origin.rem_euclid(width), width }
    }

    /// Picks the plan for a valid period granularity. Fixed plans are chosen only where Druid's
    /// truncation provably reduces to `origin + floor((t - origin) / width) * width`: no year or
    /// month fields, and either UTC (every day is 24 hours) or only time-of-day fields counted
    /// from an origin (Joda adds hours, minutes, seconds and millis as absolute durations in any
    /// zone, so only the default origin depends on the zone).
    fn period(period: Period, zone: Zone, origin: Option<Millis>) -> Self {
        let has_origin = origin.is_some();
        // Druid's default origin: 1970-01-01T00:00 local time, which aligns multi-unit periods.
        let origin = origin.unwrap_or_else(|| zone.local_to_utc_near(0, 0));
        let single = single_field(&period);
        let utc = zone == Zone::Utc;
        if let Some(width) = period.fixed_duration_ms() {
            match single {
                None if utc || (period.weeks == 0 && period.days == 0) => {
                    return Plan::fixed(origin, width);
                }
                Some((unit, n)) => {
                    // Druid counts from the origin for multiples, and for any origin (except a
                    // one-millisecond period, which is the identity either way).
                    let from_origin = n > 1 || (has_origin && unit != Unit::Millis);
                    match (unit.is_time_of_day(), from_origin, utc) {
                        (true, true, _) | (false, true, true) => return Plan::fixed(origin, width),
                        (true, false, true) => return Plan::fixed(0, width),
                        (false, false, true) if unit == Unit::Weeks => {
                            return Plan::fixed(FIRST_MONDAY, width);
                        }
                        (false, false, true) => return Plan::fixed(0, width),
                        _ => {}
                    }
                }
                None => {}
            }
        } else if utc && !has_origin {
            match single {
                Some((Unit::Months, 1)) => return Plan::Utc(Granularity::Month),
                Some((Unit::Months, 3)) => return Plan::Utc(Granularity::Quarter),
                Some((Unit::Years, 1)) => return Plan::Utc(Granularity::Year),
                _ => {}
            }
        }
        Plan::Zoned(Zoned { period, zone, origin, has_origin, single })
    }

    #[inline]
    fn floor(&self, t: Millis) -> Millis {
        match *self {
            Plan::All => Millis::MIN,
            Plan::Identity => t,
            Plan::Fixed { origin, width } => floor_fixed(t, origin, width),
            Plan::Utc(g) => g.truncate(t),
            Plan::Zoned(ref z) => z.floor(t),
        }
    }

    #[inline]
    fn next(&self, bucket_start: Millis) -> Millis {
        match *self {
            Plan::All => Millis::MAX,
            Plan::Identity => bucket_start.saturating_add(1),
            Plan::Fixed { width, .. } => bucket_start.saturating_add(width),
            Plan::Utc(g) => g.next(bucket_start),
            Plan::Zoned(ref z) => z.zone.add_period(bucket_start, &z.period, 1),
        }
    }

    /// Floors a values buffer; slots under `nulls` come out as 0.
    fn floor_values(&self, values: &[i64], nulls: Option<&NullBuffer>) -> Vec<i64> {
        match *self {
            Plan::Fixed { origin: 0, width } => floor_epoch_aligned(values, width),
            Plan::Fixed { origin, width } => values.iter().map(|&t| floor_fixed(t, origin, width)).collect(),
            Plan::Utc(g) => values.iter().map(|&t| g.truncate(t)).collect(),
            Plan::Zoned(ref z) => z.floor_values(values, nulls),
            Plan::All | Plan::Identity => values.iter().map(|&t| self.floor(t)).collect(),
        }
    }
}

/// `origin + floor((t - origin) / width) * width`, saturating at `i64::MIN`.
#[inline(always)]
fn floor_fixed(t: Millis, origin: Millis, width: i64) -> Millis {
    match t.checked_sub(origin) {
        Some(d) => t.saturating_sub(d.rem_euclid(width)),
        None => {
            // Only for t within `origin` of i64::MIN; the remainder is below `width`, so it fits.
            let r = (i128::from(t) - i128::from(origin)).rem_euclid(i128::from(width));
            t.saturating_sub(r as i64)
        }
    }
}

/// Floors to multiples of `width` from the epoch. The common widths get their own loop so the
/// division is by a constant (a multiply) rather than a ~40-cycle `idiv` per row.
fn floor_epoch_aligned(values: &[i64], width: i64) -> Vec<i64> {
    const FIVE_MINUTES: i64 = 5 * MINUTE;
    const FIFTEEN_MINUTES: i64 = 15 * MINUTE;
    #[inline(always)]
    fn run<const W: i64>(values: &[i64]) -> Vec<i64> {
        values.iter().map(|&t| t.saturating_sub(t.rem_euclid(W))).collect()
    }
    match width {
        SECOND => run::<SECOND>(values),
        MINUTE => run::<MINUTE>(values),
        FIVE_MINUTES => run::<FIVE_MINUTES>(values),
        FIFTEEN_MINUTES => run::<FIFTEEN_MINUTES>(values),
        HOUR => run::<HOUR>(values),
        DAY => run::<DAY>(values),
        w => values.iter().map(|&t| t.saturating_sub(t.rem_euclid(w))).collect(),
    }
}

/// One field of an ISO period, in Joda's order (which is also the order `add` applies them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Years,
    Months,
    Weeks,
    Days,
    Hours,
    Minutes,
    Seconds,
    Millis,
}

impl Unit {
    /// Length of a fixed-length unit (everything but years and months).
    fn length_ms(self) -> Option<i64> {
        Some(match self {
            Unit::Years | Unit::Months => return None,
            Unit::Weeks => WEEK,
            Unit::Days => DAY,
            Unit::Hours => HOUR,
            Unit::Minutes => MINUTE,
            Unit::Seconds => SECOND,
            Unit::Millis => 1,
        })
    }

    /// Whether Joda treats this unit as a time field (shorter than 12 hours): added and
    /// differenced in absolute UTC millis rather than on the local calendar.
    fn is_time_of_day(self) -> bool {
        matches!(self, Unit::Hours | Unit::Minutes | Unit::Seconds | Unit::Millis)
    }
}

fn period_fields(p: &Period) -> [(Unit, i64); 8] {
    [
        (Unit::Years, i64::from(p.years)),
        (Unit::Months, i64::from(p.months)),
        (Unit::Weeks, i64::from(p.weeks)),
        (Unit::Days, i64::from(p.days)),
        (Unit::Hours, i64::from(p.hours)),
        (Unit::Minutes, i64::from(p.minutes)),
        (Unit::Seconds, i64::from(p.seconds)),
        (Unit::Millis, i64::from(p.millis)),
    ]
}

/// The period's only nonzero field, or `None` for a compound period ("P1DT12H", "PT1.5S").
fn single_field(period: &Period) -> Option<(Unit, i64)> {
    let mut nonzero = period_fields(period).into_iter().filter(|(_, v)| *v != 0);
    match (nonzero.next(), nonzero.next()) {
        (Some(field), None) => Some(field),
        _ => None,
    }
}

/// A period granularity that needs the calendar: Druid's `PeriodGranularity.truncate` over a
/// Joda `ISOChronology` in `zone`.
#[derive(Debug, Clone, Copy)]
struct Zoned {
    period: Period,
    zone: Zone,
    /// The given origin, or 1970-01-01T00:00 local time.
    origin: Millis,
    has_origin: bool,
    /// The only nonzero field, or `None` when the period is compound.
    single: Option<(Unit, i64)>,
}

impl Zoned {
    fn floor(&self, t: Millis) -> Millis {
        let Some((unit, n)) = self.single else {
            return self.floor_compound(t);
        };
        if n > 1 || (self.has_origin && unit != Unit::Millis) {
            return self.floor_from_origin(t, unit, n);
        }
        let zone = self.zone;
        match unit {
            Unit::Millis => t,
            // Joda's `millisOfSecond().set(t, 0)`.
            Unit::Seconds => {
                let local = zone.utc_to_local(t);
                zone.local_to_utc_near(local.saturating_sub(local.rem_euclid(SECOND)), t)
            }
            // Time fields round in local time with the offset at `t`: in Asia/Kolkata an hour
            // starts at :30 UTC; in America/Los_Angeles each of the two 01:00 hours of the
            // autumn change is its own bucket.
            Unit::Minutes | Unit::Hours => {
                let width = if unit == Unit::Hours { HOUR } else { MINUTE };
                let offset = zone.offset(t);
                let local = t.saturating_add(offset);
                local.saturating_sub(local.rem_euclid(width)).saturating_sub(offset)
            }
            Unit::Days => self.day_floor(t),
            // Joda: `dayOfWeek().roundFloor(t)`, then `dayOfWeek().set(t, MONDAY)`.
            Unit::Weeks => {
                let day = self.day_floor(t);
                let local = zone.utc_to_local(day);
                let monday_based = (local.div_euclid(DAY) + 3).rem_euclid(7);
                zone.local_to_utc_near(local.saturating_sub(monday_based * DAY), day)
            }
            Unit::Months | Unit::Years => {
                let Some((date, _)) = local_date(zone.utc_to_local(t)) else {
                    return t;
                };
                let first = if unit == Unit::Months { date.with_day(1) } else { date.with_ordinal(1) };
                match first {
                    Some(first) => zone.local_to_utc_near(local_millis(first, 0), t),
                    None => t,
                }
            }
        }
    }

    /// Local midnight of `t`'s day, resolved as Joda does (a midnight inside a DST gap becomes
    /// the first instant after it).
    fn day_floor(&self, t: Millis) -> Millis {
        let local = self.zone.utc_to_local(t);
        self.zone.local_to_utc_near(local.saturating_sub(local.rem_euclid(DAY)), t)
    }

    /// Druid's multiples-from-origin branch: count whole units between origin and `t` (on the
    /// local calendar for calendar units), round the count toward zero to a multiple of `n`, and
    /// step back one period when that lands after `t`.
    fn floor_from_origin(&self, t: Millis, unit: Unit, n: i64) -> Millis {
        let Some(count) = self.zone.difference(unit, t, self.origin) else {
            return t;
        };
        let count = count - count % n;
        let candidate = self.zone.add(self.origin, unit, count);
        if t < candidate { self.zone.add(self.origin, unit, count - n) } else { candidate }
    }

    /// Druid's compound-period branch: walk from the origin one period at a time (Joda's
    /// `add(period)`, which clamps days of month and resolves DST per field, so the steps are
    /// not a closed form). Costs one step per bucket between origin and `t`.
    fn floor_compound(&self, t: Millis) -> Millis {
        let mut current = self.origin;
        if t >= current {
            loop {
                let next = self.zone.add_period(current, &self.period, 1);
                if next <= current || t < next {
                    return current;
                }
                current = next;
            }
        }
        loop {
            let previous = self.zone.add_period(current, &self.period, -1);
            if previous >= current || t >= previous {
                return previous;
            }
            current = previous;
        }
    }

    /// Floors a buffer, remembering the last bucket: rows arrive roughly in time order, and the
    /// calendar path costs several time zone lookups per floor.
    fn floor_values(&self, values: &[i64], nulls: Option<&NullBuffer>) -> Vec<i64> {
        // (from, until, bucket): every t in [from, until) floors to `bucket`.
        let mut cached: Option<(Millis, Millis, Millis)> = None;
        values
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                if nulls.is_some_and(|n| n.is_null(i)) {
                    return 0;
                }
                if let Some((from, until, bucket)) = cached
                    && from <= t
                    && t < until
                {
                    return bucket;
                }
                let bucket = self.floor(t);
                let next = self.zone.add_period(bucket, &self.period, 1);
                // Floor is monotonic, so [t, next) is one bucket when next - 1 is still in it.
                if next > t && self.floor(next - 1) == bucket {
                    cached = Some((t, next, bucket));
                }
                bucket
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Time zone arithmetic with Joda's rules
// ---------------------------------------------------------------------------------------------

/// The zone a chronology computes in. UTC (and its aliases) needs no lookups at all.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Zone {
    Utc,
    Named(Tz),
}

impl Zone {
    fn new(tz: Option<Tz>) -> Self {
        match tz {
            Some(tz) if !is_utc(tz) => Zone::Named(tz),
            _ => Zone::Utc,
        }
    }

    /// Offset from UTC in effect at the UTC instant `utc`, in millis.
    fn offset(self, utc: Millis) -> i64 {
        match self {
            Zone::Utc => 0,
            Zone::Named(tz) => DateTime::from_timestamp_millis(utc).map_or(0, |dt| {
                i64::from(tz.offset_from_utc_datetime(&dt.naive_utc()).fix().local_minus_utc()) * SECOND
            }),
        }
    }

    /// The local wall-clock time of `utc`, as millis since 1970-01-01T00:00 local.
    fn utc_to_local(self, utc: Millis) -> Millis {
        utc.saturating_add(self.offset(utc))
    }

    /// Joda's `getOffsetFromLocal`: the instant of a local time; in an autumn overlap the earlier
    /// instant, in a spring gap the instant as if the clock had not moved yet (02:30 in a gap
    /// from 02:00 to 03:00 becomes 03:30 of the new offset).
    fn local_to_utc(self, local: Millis) -> Millis {
        let Zone::Named(tz) = self else {
            return local;
        };
        let Some(naive) = DateTime::from_timestamp_millis(local).map(|dt| dt.naive_utc()) else {
            return local;
        };
        let millis = |offset: <Tz as TimeZone>::Offset| i64::from(offset.fix().local_minus_utc()) * SECOND;
        let offset = match tz.offset_from_local_datetime(&naive) {
            LocalResult::Single(offset) => millis(offset),
            LocalResult::Ambiguous(a, b) => millis(a).max(millis(b)),
            LocalResult::None => {
                // The two offsets around the gap; the earlier (smaller) one was in effect before.
                let first = self.offset(local.saturating_sub(self.offset(local)));
                let second = self.offset(local.saturating_sub(first));
                first.min(second)
            }
        };
        local.saturating_sub(offset)
    }

    /// Joda's `convertLocalToUTC(local, false, hint)`: keep the offset in effect at `hint` when it
    /// is valid for `local` (so rounding a time in an overlap stays on its side), else as
    /// [`Self::local_to_utc`].
    fn local_to_utc_near(self, local: Millis, hint: Millis) -> Millis {
        if self == Zone::Utc {
            return local;
        }
        let offset = self.offset(hint);
        let utc = local.saturating_sub(offset);
        if self.offset(utc) == offset { utc } else { self.local_to_utc(local) }
    }

    /// Joda's zoned `add(instant, amount)` for one field: calendar units on the local calendar
    /// (days of month clamped: Jan 31 + 1 month = Feb 28), time units as absolute durations.
    fn add(self, t: Millis, unit: Unit, amount: i64) -> Millis {
        if amount == 0 {
            return t;
        }
        let saturated = if amount > 0 { Millis::MAX } else { Millis::MIN };
        match unit {
            Unit::Hours | Unit::Minutes | Unit::Seconds | Unit::Millis => {
                let length = unit.length_ms().unwrap_or(1);
                t.saturating_add(amount.saturating_mul(length))
            }
            Unit::Days | Unit::Weeks => {
                let length = unit.length_ms().unwrap_or(DAY);
                self.local_to_utc(self.utc_to_local(t).saturating_add(amount.saturating_mul(length)))
            }
            Unit::Months | Unit::Years => {
                let months = if unit == Unit::Years { amount.saturating_mul(12) } else { amount };
                add_months_local(self.utc_to_local(t), months)
                    .map_or(saturated, |local| self.local_to_utc(local))
            }
        }
    }

    /// Joda's `chronology.add(period, t, scalar)`: each field in turn, largest first.
    fn add_period(self, t: Millis, period: &Period, scalar: i64) -> Millis {
        period_fields(period)
            .into_iter()
            .fold(t, |t, (unit, value)| self.add(t, unit, value.saturating_mul(scalar)))
    }

    /// Joda's `unit.getDifference(t, origin)`: whole units from `origin` to `t`, truncated toward
    /// zero, on the local calendar for calendar units. `None` beyond chrono's calendar.
    fn difference(self, unit: Unit, t: Millis, origin: Millis) -> Option<i64> {
        match unit {
            Unit::Hours | Unit::Minutes | Unit::Seconds | Unit::Millis | Unit::Days | Unit::Weeks => {
                let length = unit.length_ms()?;
                let (t, origin) = if unit.is_time_of_day() {
                    (t, origin)
                } else {
                    (self.utc_to_local(t), self.utc_to_local(origin))
                };
                i64::try_from((i128::from(t) - i128::from(origin)) / i128::from(length)).ok()
            }
            Unit::Months => month_difference(self.utc_to_local(t), self.utc_to_local(origin), 1),
            Unit::Years => month_difference(self.utc_to_local(t), self.utc_to_local(origin), 12),
        }
    }
}

/// Whether `tz` is UTC under another name, so arithmetic can skip zone lookups.
fn is_utc(tz: Tz) -> bool {
    matches!(
        tz.name(),
        "UTC"
            | "Etc/UTC"
            | "Etc/UCT"
            | "UCT"
            | "Etc/Universal"
            | "Universal"
            | "Etc/Zulu"
            | "Zulu"
            | "GMT"
            | "Etc/GMT"
            | "Etc/GMT0"
            | "Etc/GMT+0"
            | "Etc/GMT-0"
            | "GMT0"
            | "GMT+0"
            | "GMT-0"
            | "Greenwich"
            | "Etc/Greenwich"
    )
}

/// The calendar date and millis of day of a local time, or `None` beyond chrono's calendar
/// (about ±262,000 years).
fn local_date(local: Millis) -> Option<(NaiveDate, i64)> {
    let days = i32::try_from(local.div_euclid(DAY).checked_add(EPOCH_DAYS_FROM_CE)?).ok()?;
    Some((NaiveDate::from_num_days_from_ce_opt(days)?, local.rem_euclid(DAY)))
}

/// The local time of `date` at `ms_of_day`.
fn local_millis(date: NaiveDate, ms_of_day: i64) -> Millis {
    (i64::from(date.num_days_from_ce()) - EPOCH_DAYS_FROM_CE) * DAY + ms_of_day
}

/// `local` moved by `months` calendar months, day of month clamped to the target month's
/// length, time of day kept (Joda's month and year addition).
fn add_months_local(local: Millis, months: i64) -> Option<Millis> {
    let (date, ms_of_day) = local_date(local)?;
    let total =
        i64::from(date.year()).checked_mul(12)?.checked_add(i64::from(date.month0()))?.checked_add(months)?;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = u32::try_from(total.rem_euclid(12)).ok()? + 1;
    // Clamp the day of month: at most three tries, as every month has at least 28 days.
    let day = (1..=date.day()).rev().find_map(|d| NaiveDate::from_ymd_opt(year, month, d))?;
    Some(local_millis(day, ms_of_day))
}

/// Joda's month (`step` 1) or year (`step` 12) difference between two local times: the largest
/// `k` with `subtrahend + k * step months <= minuend`, negated when `minuend` comes first.
fn month_difference(minuend: Millis, subtrahend: Millis, step: i64) -> Option<i64> {
    if minuend < subtrahend {
        return month_difference(subtrahend, minuend, step).map(|k| -k);
    }
    let (a, _) = local_date(minuend)?;
    let (b, _) = local_date(subtrahend)?;
    let years = i64::from(a.year()) - i64::from(b.year());
    let mut k = if step == 12 { years } else { years * 12 + i64::from(a.month()) - i64::from(b.month()) };
    if add_months_local(subtrahend, k * step)? > minuend {
        k -= 1;
    }
    Some(k)
}

// ---------------------------------------------------------------------------------------------
// Query intervals
// ---------------------------------------------------------------------------------------------

/// Reads a query's `intervals`: one string, a list of strings, or `{"type":"intervals",
/// "intervals":[...]}`. Each string is `start/end`, `start/period` or `period/end` (ISO times with
/// or without an offset, periods in any case: `2013-08-31/pt1h`, `P1D/2013-09-01`). Returns them
/// sorted, with overlapping and touching intervals merged (Druid's `condenseIntervals`). Errors
/// name `field`: an empty list, a start not before its end, and segment specs
/// (`{"type":"segments"}`), which braid does not support.
pub fn parse_intervals(value: &Value, field: &str) -> Result<Vec<Interval>, QueryError> {
    let mut intervals = match value {
        Value::String(text) => vec![parse_interval(text, field)?],
        Value::Array(items) => parse_interval_list(items, field)?,
        Value::Object(map) => match map.get("type") {
            Some(Value::String(kind)) if kind == "intervals" => match map.get("intervals") {
                Some(Value::Array(items)) => parse_interval_list(items, &format!("{field}.intervals"))?,
                Some(Value::String(text)) => vec![parse_interval(text, &format!("{field}.intervals"))?],
                None | Some(Value::Null) => {
                    return Err(invalid!(
                        "{field}.intervals: missing (expected a list of intervals such as \
                         [\"2013-08-31/2013-09-01\"])"
                    ));
                }
                Some(other) => {
                    return Err(invalid!(
                        "{field}.intervals: expected a list of interval strings, found {}",
                        echo_json(other)
                    ));
                }
            },
            Some(Value::String(kind)) if kind == "segments" => {
                return Err(invalid!(
                    "{field}: segment specs ({{\"type\":\"segments\"}}) are not supported; give \
                     intervals such as [\"2013-08-31/2013-09-01\"] instead"
                ));
            }
            Some(other) => {
                return Err(invalid!(
                    "{field}.type: unknown interval spec type {}; expected \"intervals\"",
                    echo_json(other)
                ));
            }
            None => {
                return Err(invalid!(
                    "{field}: the object has no \"type\" (expected {{\"type\":\"intervals\",\
                     \"intervals\":[...]}})"
                ));
            }
        },
        other => {
            return Err(invalid!(
                "{field}: expected an interval string or a list of them such as \
                 [\"2013-08-31/2013-09-01\"], found {}",
                echo_json(other)
            ));
        }
    };
    intervals.sort_unstable();
    let mut merged: Vec<Interval> = Vec::with_capacity(intervals.len());
    for interval in intervals {
        match merged.last_mut() {
            Some(last) if interval.start <= last.end => last.end = last.end.max(interval.end),
            _ => merged.push(interval),
        }
    }
    Ok(merged)
}

fn parse_interval_list(items: &[Value], field: &str) -> Result<Vec<Interval>, QueryError> {
    if items.is_empty() {
        return Err(invalid!(
            "{field}: the list is empty (expected at least one interval such as \"2013-08-31/2013-09-01\")"
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(text) => parse_interval(text, &format!("{field}[{i}]")),
            other => Err(invalid!(
                "{field}[{i}]: expected an interval string such as \"2013-08-31/2013-09-01\", found {}",
                echo_json(other)
            )),
        })
        .collect()
}

fn parse_interval(text: &str, field: &str) -> Result<Interval, QueryError> {
    match Interval::parse(text) {
        Ok(interval) => Ok(interval),
        Err(e) => match sign_expanded_years(text) {
            Some(signed) => Interval::parse(&signed).map_err(|_| invalid!("{field}: {e}")),
            None => Err(invalid!("{field}: {e}")),
        },
    }
}

/// `text` with a '+' before each unsigned year of more than four digits, or `None` if it has
/// none. Joda writes such years unsigned, and Druid's "eternity" interval
/// ("-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z") is full of them, while
/// ISO 8601 (and our parser) wants expanded years signed.
fn sign_expanded_years(text: &str) -> Option<String> {
    let needs_sign = |side: &str| {
        let digits = side.bytes().take_while(u8::is_ascii_digit).count();
        digits > 4 && side.as_bytes().get(digits) == Some(&b'-')
    };
    if !text.split('/').any(needs_sign) {
        return None;
    }
    let sides: Vec<String> = text
        .split('/')
        .map(|side| if needs_sign(side) { format!("+{side}") } else { side.to_owned() })
        .collect();
    Some(sides.join("/"))
}

// ---------------------------------------------------------------------------------------------
// SQL time functions
// ---------------------------------------------------------------------------------------------

/// Druid SQL's time functions as DataFusion UDFs, registered under lowercase names:
/// `time_floor(ts, period[, origin[, timezone]])`, `time_ceil(...)` (same arguments),
/// `time_shift(ts, period, step[, timezone])`, `millis_to_timestamp(bigint)` and
/// `timestamp_to_millis(ts)`. Timestamps of any unit and zone are accepted (Date and string
/// arguments are cast); results are `Timestamp(Millisecond, "UTC")`; NULL inputs give NULL.
/// Period, origin and time zone must be constants, as Druid requires.
pub fn sql_functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(TimeRound::new(Rounding::Floor)),
        ScalarUDF::from(TimeRound::new(Rounding::Ceil)),
        ScalarUDF::from(TimeShift::new()),
        ScalarUDF::from(MillisToTimestamp::new()),
        ScalarUDF::from(TimestampToMillis::new()),
    ]
}

/// The expression computing each row's bucket start under `granularity` from `time` (a timestamp
/// or epoch-millis column), as `Timestamp(Millisecond, "UTC")`: `None` for `All` (one bucket, no
/// per-row value), `time` itself for `None`, else a call of the same floor the SQL functions use.
pub fn floor_expr(time: Expr, granularity: &QueryGranularity) -> Option<Expr> {
    match granularity {
        QueryGranularity::All => None,
        QueryGranularity::None => Some(time),
        QueryGranularity::Period { .. } | QueryGranularity::Duration { .. } => {
            Some(ScalarUDF::from(GranularityFloor::new(granularity.clone())).call(vec![time]))
        }
    }
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
}

/// A user's mistake in a function call, kept as [`QueryError::InvalidInput`] so the HTTP layer
/// answers 400 with this message.
fn user_error(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(QueryError::InvalidInput(message)))
}

/// What one argument of a SQL time function takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Arg {
    /// A timestamp of any unit or zone; dates, strings and NULL are cast to `Timestamp(ms, "UTC")`.
    Timestamp,
    /// As `Timestamp`, or epoch millis as an integer (native queries may carry either).
    TimestampOrMillis,
    /// A constant timestamp, ISO 8601 string or NULL (an origin); dates are cast.
    Origin,
    /// A string (period, time zone) or NULL.
    Text,
    /// An integer (cast to Int64) or NULL.
    Integer,
}

impl Arg {
    /// The type DataFusion should cast an argument of type `given` to; unsupported types are
    /// left alone so that [`FunctionArgs::check`] can name them (an error from `coerce_types` would
    /// reach the client wrapped in two unrelated messages).
    fn coerce(self, given: &DataType) -> DataType {
        let is_text = matches!(given, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
        let is_date = matches!(given, DataType::Date32 | DataType::Date64);
        match self {
            Arg::Timestamp | Arg::TimestampOrMillis if is_text || is_date || *given == DataType::Null => {
                timestamp_type()
            }
            // Origin strings stay strings: parsing them ourselves gives a better message than a
            // failed cast.
            Arg::Origin if is_date => timestamp_type(),
            Arg::TimestampOrMillis if given.is_integer() => DataType::Int64,
            Arg::Text => match given {
                DataType::Dictionary(_, value) if value.is_string() => DataType::Utf8,
                _ => given.clone(),
            },
            Arg::Integer if given.is_integer() || *given == DataType::Null => DataType::Int64,
            _ => given.clone(),
        }
    }

    /// Whether a coerced argument type is one the function computes with.
    fn accepts(self, coerced: &DataType) -> bool {
        match self {
            Arg::Timestamp => matches!(coerced, DataType::Timestamp(..)),
            Arg::TimestampOrMillis => matches!(coerced, DataType::Timestamp(..) | DataType::Int64),
            Arg::Origin => matches!(
                coerced,
                DataType::Timestamp(..)
                    | DataType::Null
                    | DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Utf8View
            ),
            Arg::Text => {
                matches!(coerced, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null)
            }
            Arg::Integer => *coerced == DataType::Int64,
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Arg::Timestamp => "a TIMESTAMP (convert epoch millis with MILLIS_TO_TIMESTAMP)",
            Arg::TimestampOrMillis => "a TIMESTAMP or epoch millis",
            Arg::Origin => "a TIMESTAMP such as TIMESTAMP '2016-06-27 00:30:00', or NULL",
            Arg::Text => "a string such as 'PT1H' or 'America/Los_Angeles'",
            Arg::Integer => "an integer",
        }
    }
}

/// The argument list of a SQL time function: checked once while planning.
#[derive(Debug, PartialEq, Eq, Hash)]
struct FunctionArgs {
    name: &'static str,
    /// "(timestamp, period[, origin[, timezone]])"
    usage: &'static str,
    /// How many leading arguments are required.
    required: usize,
    /// Each argument's kind and name, in order.
    args: &'static [(Arg, &'static str)],
}

impl FunctionArgs {
    fn coerce(&self, types: &[DataType]) -> Vec<DataType> {
        let kinds = self.args.iter().map(|(arg, _)| Some(*arg)).chain(std::iter::repeat(None));
        types.iter().zip(kinds).map(|(t, arg)| arg.map_or_else(|| t.clone(), |arg| arg.coerce(t))).collect()
    }

    /// Arity and types after coercion, as [`QueryError::InvalidInput`] naming the argument.
    fn check(&self, fields: &[FieldRef]) -> DfResult<()> {
        let name = self.name;
        if fields.len() < self.required || fields.len() > self.args.len() {
            return Err(user_error(format!(
                "{name}: called with {} arguments (expected {name}{})",
                fields.len(),
                self.usage
            )));
        }
        for (i, (field, (arg, what))) in fields.iter().zip(self.args).enumerate() {
            if !arg.accepts(field.data_type()) {
                return Err(user_error(format!(
                    "{name}: {what} (argument {}) must be {}, found {}",
                    i + 1,
                    arg.expected(),
                    field.data_type()
                )));
            }
        }
        Ok(())
    }
}
/// The scalar behind a constant argument.
fn literal<'a>(name: &str, what: &str, arg: &'a ColumnarValue) -> DfResult<&'a ScalarValue> {
    match arg {
        ColumnarValue::Scalar(value) => Ok(value),
        ColumnarValue::Array(_) => Err(user_error(format!(
            "{name}: {what} must be a constant (a literal such as 'PT1H'), not a column or an \
             expression that varies per row"
        ))),
    }
}

fn scalar_str(value: &ScalarValue) -> Option<&str> {
    match value {
        ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => v.as_deref(),
        ScalarValue::Dictionary(_, inner) => scalar_str(inner),
        _ => None,
    }
}

/// A period argument. `granularity` periods must be positive; `TIME_SHIFT` takes any period.
fn period_arg(name: &str, value: &ScalarValue, granularity: bool) -> DfResult<Period> {
    let Some(text) = scalar_str(value) else {
        return Err(user_error(format!(
            "{name}: period must be an ISO 8601 period string such as 'PT1H', found {}",
            if value.is_null() { "NULL".to_owned() } else { echo(&value.to_string()) }
        )));
    };
    let period = Period::parse(text).map_err(|e| user_error(format!("{name}: {e}")))?;
    if let Some(rule) = period_problem(&period).filter(|_| granularity) {
        return Err(user_error(format!("{name}: period \"{}\" {rule}", echo(text))));
    }
    Ok(period)
}

/// An origin argument: a timestamp, date or ISO string; NULL means none.
fn origin_arg(name: &str, value: &ScalarValue) -> DfResult<Option<Millis>> {
    if value.is_null() {
        return Ok(None);
    }
    let millis = match value {
        ScalarValue::TimestampSecond(Some(v), _) => v.saturating_mul(SECOND),
        ScalarValue::TimestampMillisecond(Some(v), _) => *v,
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.div_euclid(1_000),
        ScalarValue::TimestampNanosecond(Some(v), _) => v.div_euclid(1_000_000),
        ScalarValue::Date32(Some(days)) => i64::from(*days) * DAY,
        ScalarValue::Date64(Some(v)) => *v,
        other => match scalar_str(other) {
            // SQL writes timestamps with a space ('2016-06-27 00:30:00'), ISO 8601 with a 'T'.
            Some(text) => parse_iso(text)
                .or_else(|e| parse_iso(&text.replacen(' ', "T", 1)).map_err(|_| e))
                .map_err(|e| user_error(format!("{name}: origin {e}")))?,
            None => {
                return Err(user_error(format!(
                    "{name}: origin must be a TIMESTAMP such as TIMESTAMP '2016-06-27 00:30:00', found {}",
                    echo(&other.to_string())
                )));
            }
        },
    };
    Ok(Some(millis))
}

/// A time zone argument; NULL means UTC.
fn zone_arg(name: &str, value: &ScalarValue) -> DfResult<Option<Tz>> {
    if value.is_null() {
        return Ok(None);
    }
    match scalar_str(value) {
        Some(text) => {
            parse_time_zone(text).map(Some).map_err(|reason| user_error(format!("{name}: {reason}")))
        }
        None => Err(user_error(format!(
            "{name}: time zone must be a string such as 'America/Los_Angeles', found {}",
            echo(&value.to_string())
        ))),
    }
}

/// A timestamp array as epoch millis (floored from finer units), nulls kept.
fn timestamps_as_millis(name: &str, array: &ArrayRef) -> DfResult<PrimitiveArray<Int64Type>> {
    Ok(match array.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            array.as_primitive::<TimestampMillisecondType>().reinterpret_cast::<Int64Type>()
        }
        DataType::Timestamp(TimeUnit::Second, _) => {
            array.as_primitive::<TimestampSecondType>().unary(|v| v.saturating_mul(SECOND))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            array.as_primitive::<TimestampMicrosecondType>().unary(|v| v.div_euclid(1_000))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            array.as_primitive::<TimestampNanosecondType>().unary(|v| v.div_euclid(1_000_000))
        }
        DataType::Int64 => array.as_primitive::<Int64Type>().clone(),
        other => return Err(user_error(format!("{name}: expected a TIMESTAMP argument, found {other}"))),
    })
}

/// Applies `op` to the millis of a timestamp argument, giving `Timestamp(ms, "UTC")` with the
/// input's nulls; a scalar argument gives a scalar.
fn map_timestamps(
    name: &str,
    arg: &ColumnarValue,
    op: impl FnOnce(&[i64], Option<&NullBuffer>) -> Vec<i64>,
) -> DfResult<ColumnarValue> {
    let (array, scalar) = match arg {
        ColumnarValue::Array(array) => (Arc::clone(array), false),
        ColumnarValue::Scalar(value) => (value.to_array_of_size(1)?, true),
    };
    let millis = timestamps_as_millis(name, &array)?;
    let values = op(millis.values(), millis.nulls());
    let result = TimestampMillisecondArray::new(ScalarBuffer::from(values), millis.nulls().cloned())
        .with_timezone(UTC);
    if scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?))
    } else {
        Ok(ColumnarValue::Array(Arc::new(result)))
    }
}

/// Floor or ceiling of a values buffer under `plan`.
fn round_values(plan: &Plan, rounding: Rounding, values: &[i64], nulls: Option<&NullBuffer>) -> Vec<i64> {
    let floors = plan.floor_values(values, nulls);
    match rounding {
        Rounding::Floor => floors,
        // Druid's TIME_CEIL: an instant on a boundary is its own ceiling, else the next start.
        Rounding::Ceil => {
            floors.iter().zip(values).map(|(&b, &t)| if b == t { t } else { plan.next(b) }).collect()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Rounding {
    Floor,
    Ceil,
}

const TIME_ROUND_ARGS: &[(Arg, &str)] = &[
    (Arg::Timestamp, "timestamp"),
    (Arg::Text, "period"),
    (Arg::Origin, "origin"),
    (Arg::Text, "time zone"),
];

/// `TIME_FLOOR` and `TIME_CEIL`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimeRound {
    rounding: Rounding,
    args: FunctionArgs,
    signature: Signature,
}

impl TimeRound {
    fn new(rounding: Rounding) -> Self {
        let name = match rounding {
            Rounding::Floor => "time_floor",
            Rounding::Ceil => "time_ceil",
        };
        let usage = "(timestamp, period[, origin[, timezone]])";
        Self {
            rounding,
            args: FunctionArgs { name, usage, required: 2, args: TIME_ROUND_ARGS },
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    /// The granularity named by the constant arguments after the timestamp.
    fn granularity(&self, constants: &[&ScalarValue]) -> DfResult<QueryGranularity> {
        let name = self.args.name;
        let Some(period) = constants.first() else {
            return Err(user_error(format!("{name}: missing period (expected {name}{})", self.args.usage)));
        };
        let period = period_arg(name, period, true)?;
        let origin = constants.get(1).map(|v| origin_arg(name, v)).transpose()?.flatten();
        let time_zone = constants.get(2).map(|v| zone_arg(name, v)).transpose()?.flatten();
        Ok(QueryGranularity::Period { period, time_zone, origin })
    }
}

impl ScalarUDFImpl for TimeRound {
    fn name(&self) -> &str {
        self.args.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        Ok(self.args.coerce(arg_types))
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(timestamp_type())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        self.args.check(args.arg_fields)?;
        // Check the constants while planning, so a bad period fails even over an empty table.
        let name = self.args.name;
        let constant = |i: usize| args.scalar_arguments.get(i).copied().flatten();
        if let Some(period) = constant(1) {
            period_arg(name, period, true)?;
        }
        if let Some(origin) = constant(2) {
            origin_arg(name, origin)?;
        }
        if let Some(zone) = constant(3) {
            zone_arg(name, zone)?;
        }
        Ok(Arc::new(Field::new(name, timestamp_type(), true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let name = self.args.name;
        let Some((time, rest)) = args.args.split_first() else {
            return Err(user_error(format!(
                "{name}: missing timestamp (expected {name}{})",
                self.args.usage
            )));
        };
        let constants = rest
            .iter()
            .zip(&TIME_ROUND_ARGS[1..])
            .map(|(arg, (_, what))| literal(name, what, arg))
            .collect::<DfResult<Vec<_>>>()?;
        let plan = self.granularity(&constants)?.plan();
        map_timestamps(name, time, |values, nulls| round_values(&plan, self.rounding, values, nulls))
    }
}

/// Floor under a native query's granularity: what [`floor_expr`] plans.
#[derive(Debug, PartialEq, Eq, Hash)]
struct GranularityFloor {
    granularity: QueryGranularity,
    signature: Signature,
}

impl GranularityFloor {
    const ARGS: FunctionArgs = FunctionArgs {
        name: "granularity_floor",
        usage: "(timestamp)",
        required: 1,
        args: &[(Arg::TimestampOrMillis, "timestamp")],
    };

    fn new(granularity: QueryGranularity) -> Self {
        Self { granularity, signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for GranularityFloor {
    fn name(&self) -> &str {
        Self::ARGS.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        Ok(Self::ARGS.coerce(arg_types))
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(timestamp_type())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        Self::ARGS.check(args.arg_fields)?;
        Ok(Arc::new(Field::new(Self::ARGS.name, timestamp_type(), true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let Some(time) = args.args.first() else {
            return Err(user_error(format!("{}: missing timestamp", Self::ARGS.name)));
        };
        let plan = self.granularity.plan();
        map_timestamps(Self::ARGS.name, time, |values, nulls| plan.floor_values(values, nulls))
    }
}

/// `TIME_SHIFT(ts, period, step[, timezone])`: `ts` plus `step` periods in the zone.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimeShift {
    signature: Signature,
}

impl TimeShift {
    const ARGS: FunctionArgs = FunctionArgs {
        name: "time_shift",
        usage: "(timestamp, period, step[, timezone])",
        required: 3,
        args: &[
            (Arg::Timestamp, "timestamp"),
            (Arg::Text, "period"),
            (Arg::Integer, "step"),
            (Arg::Text, "time zone"),
        ],
    };

    fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for TimeShift {
    fn name(&self) -> &str {
        Self::ARGS.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        Ok(Self::ARGS.coerce(arg_types))
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(timestamp_type())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        Self::ARGS.check(args.arg_fields)?;
        let name = Self::ARGS.name;
        if let Some(Some(period)) = args.scalar_arguments.get(1) {
            period_arg(name, period, false)?;
        }
        if let Some(Some(zone)) = args.scalar_arguments.get(3) {
            zone_arg(name, zone)?;
        }
        Ok(Arc::new(Field::new(name, timestamp_type(), true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let name = Self::ARGS.name;
        let [time, period, step, rest @ ..] = args.args.as_slice() else {
            return Err(user_error(format!("{name}: expected {name}{}", Self::ARGS.usage)));
        };
        let period = period_arg(name, literal(name, "period", period)?, false)?;
        let zone = match rest.first() {
            Some(arg) => Zone::new(zone_arg(name, literal(name, "time zone", arg)?)?),
            None => Zone::Utc,
        };
        match step {
            ColumnarValue::Scalar(step) => {
                let step = match step {
                    ScalarValue::Int64(step) => *step,
                    other => {
                        return Err(user_error(format!("{name}: step must be an integer, found {other}")));
                    }
                };
                let Some(step) = step else {
                    // A NULL step shifts to NULL, like any NULL argument.
                    let null = ScalarValue::TimestampMillisecond(None, Some(UTC.into()));
                    return Ok(match time {
                        ColumnarValue::Scalar(_) => ColumnarValue::Scalar(null),
                        ColumnarValue::Array(array) => {
                            ColumnarValue::Array(null.to_array_of_size(array.len())?)
                        }
                    });
                };
                map_timestamps(name, time, |values, _| {
                    values.iter().map(|&t| zone.add_period(t, &period, step)).collect()
                })
            }
            ColumnarValue::Array(steps) => {
                let time = time.to_array(args.number_rows)?;
                let millis = timestamps_as_millis(name, &time)?;
                let steps = steps.as_primitive_opt::<Int64Type>().ok_or_else(|| {
                    user_error(format!("{name}: step must be an integer, found {}", steps.data_type()))
                })?;
                let shifted: TimestampMillisecondArray = millis
                    .iter()
                    .zip(steps.iter())
                    .map(|(t, step)| Some(zone.add_period(t?, &period, step?)))
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(shifted.with_timezone(UTC))))
            }
        }
    }
}

/// `MILLIS_TO_TIMESTAMP(bigint)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct MillisToTimestamp {
    signature: Signature,
}

impl MillisToTimestamp {
    const ARGS: FunctionArgs = FunctionArgs {
        name: "millis_to_timestamp",
        usage: "(millis)",
        required: 1,
        args: &[(Arg::Integer, "millis")],
    };

    fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for MillisToTimestamp {
    fn name(&self) -> &str {
        Self::ARGS.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        Ok(Self::ARGS.coerce(arg_types))
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(timestamp_type())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        Self::ARGS.check(args.arg_fields)?;
        Ok(Arc::new(Field::new(Self::ARGS.name, timestamp_type(), true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let Some(millis) = args.args.first() else {
            return Err(user_error(format!("{}: missing millis", Self::ARGS.name)));
        };
        // Int64 millis are already the timestamp's representation.
        map_timestamps(Self::ARGS.name, millis, |values, _| values.to_vec())
    }
}

/// `TIMESTAMP_TO_MILLIS(ts)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimestampToMillis {
    signature: Signature,
}

impl TimestampToMillis {
    const ARGS: FunctionArgs = FunctionArgs {
        name: "timestamp_to_millis",
        usage: "(timestamp)",
        required: 1,
        args: &[(Arg::Timestamp, "timestamp")],
    };

    fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for TimestampToMillis {
    fn name(&self) -> &str {
        Self::ARGS.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        Ok(Self::ARGS.coerce(arg_types))
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        Self::ARGS.check(args.arg_fields)?;
        Ok(Arc::new(Field::new(Self::ARGS.name, DataType::Int64, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let name = Self::ARGS.name;
        let Some(time) = args.args.first() else {
            return Err(user_error(format!("{name}: missing timestamp")));
        };
        match time {
            ColumnarValue::Array(array) => {
                let millis: Int64Array = timestamps_as_millis(name, array)?;
                Ok(ColumnarValue::Array(Arc::new(millis)))
            }
            ColumnarValue::Scalar(value) => {
                let millis = timestamps_as_millis(name, &value.to_array_of_size(1)?)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&millis, 0)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{RecordBatch, StringArray, TimestampNanosecondArray};
    use datafusion::arrow::datatypes::Schema;
    use datafusion::prelude::{SessionContext, col};

    fn iso(s: &str) -> Millis {
        parse_iso(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn gran(value: Value) -> QueryGranularity {
        QueryGranularity::from_json(&value, "granularity").unwrap_or_else(|e| panic!("{value}: {e}"))
    }

    fn gran_error(value: Value) -> String {
        match QueryGranularity::from_json(&value, "granularity") {
            Ok(g) => panic!("{value} parsed as {g:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn period(text: &str) -> Period {
        Period::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn utc_period(text: &str) -> QueryGranularity {
        QueryGranularity::Period { period: period(text), time_zone: None, origin: None }
    }

    const LA: Tz = chrono_tz::America::Los_Angeles;

    fn la(text: &str) -> QueryGranularity {
        QueryGranularity::Period { period: period(text), time_zone: Some(LA), origin: None }
    }

    /// Pseudo-random instants between 1950 and 2050, so tests need no extra dependency.
    fn instants(count: usize) -> Vec<Millis> {
        let (low, high) = (iso("1950-01-01"), iso("2050-01-01"));
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..count)
            .map(|_| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                low + ((state >> 11) % (high - low) as u64) as i64
            })
            .collect()
    }

    // ----- parsing -----

    #[test]
    fn simple_names_are_utc_periods() {
        let cases = [
            ("second", "PT1S"),
            ("minute", "PT1M"),
            ("five_minute", "PT5M"),
            ("ten_minute", "PT10M"),
            ("fifteen_minute", "PT15M"),
            ("thirty_minute", "PT30M"),
            ("hour", "PT1H"),
            ("six_hour", "PT6H"),
            ("eight_hour", "PT8H"),
            ("day", "P1D"),
            ("week", "P1W"),
            ("month", "P1M"),
            ("quarter", "P3M"),
            ("year", "P1Y"),
        ];
        for (name, iso_period) in cases {
            let expected = utc_period(iso_period);
            assert_eq!(gran(json!(name)), expected, "{name}");
            assert_eq!(gran(json!(name.to_uppercase())), expected, "{name} in capitals");
            assert_eq!(gran(json!({"type": name})), expected, "{{\"type\":\"{name}\"}}");
            assert_eq!(gran(json!({"type": "period", "period": iso_period})), expected, "{iso_period}");
            assert_eq!(expected.to_json(), json!(name), "{name} serializes as its name");
        }
        assert_eq!(gran(json!("all")), QueryGranularity::All);
        assert_eq!(gran(json!("None")), QueryGranularity::None);
        assert_eq!(gran(json!({"type": "all"})), QueryGranularity::All);
        assert_eq!(gran(json!({"type": "none"})), QueryGranularity::None);
        assert_eq!(QueryGranularity::simple(Granularity::Quarter), utc_period("P3M"));
        assert_eq!(QueryGranularity::All.to_string(), "all");
    }

    #[test]
    fn period_and_duration_objects() {
        let g = gran(json!({
            "type": "period",
            "period": "p1d",
            "timeZone": "America/Los_Angeles",
            "origin": "2012-01-01T00:30:00Z",
            "someFutureKey": {"ignored": true}
        }));
        assert_eq!(
            g,
            QueryGranularity::Period {
                period: period("P1D"),
                time_zone: Some(LA),
                origin: Some(iso("2012-01-01T00:30")),
            }
        );
        assert_eq!(
            g.to_string(),
            r#"{"origin":"2012-01-01T00:30:00.000Z","period":"P1D","timeZone":"America/Los_Angeles","type":"period"}"#
        );
        let with_nulls = gran(json!({"type": "period", "period": "PT1H", "timeZone": null, "origin": null}));
        assert_eq!(with_nulls, utc_period("PT1H"));
        let millis_origin = gran(json!({"type": "period", "period": "PT1H", "origin": 1_800_000}));
        assert_eq!(
            millis_origin,
            QueryGranularity::Period { period: period("PT1H"), time_zone: None, origin: Some(1_800_000) }
        );
        let offset = gran(json!({"type": "period", "period": "P1D", "timeZone": "-08:00"}));
        assert_eq!(
            offset,
            QueryGranularity::Period {
                period: period("P1D"),
                time_zone: Some(chrono_tz::Etc::GMTPlus8),
                origin: None
            }
        );
        assert_eq!(offset.floor(iso("2013-08-31T07:59")), iso("2013-08-30T08:00"));

        assert_eq!(
            gran(json!({"type": "duration", "duration": 7_200_000})),
            QueryGranularity::Duration { millis: 7_200_000, origin: 0 }
        );
        assert_eq!(
            gran(json!({"type": "duration", "duration": "3600000", "origin": "2012-01-01T00:30:00Z"})),
            QueryGranularity::Duration { millis: 3_600_000, origin: iso("2012-01-01T00:30") }
        );
    }

    #[test]
    fn granularity_errors_name_field_value_and_rule() {
        let cases = [
            (
                json!("hourly"),
                "granularity: unknown granularity \"hourly\"; expected one of all, none, second, minute, \
                 five_minute, ten_minute, fifteen_minute, thirty_minute, hour, six_hour, eight_hour, day, \
                 week, month, quarter, year, or an object such as {\"type\":\"period\"",
            ),
            (json!(5), "granularity: expected a granularity name or object, found 5"),
            (json!({"period": "PT1H"}), "granularity: the object has no \"type\""),
            (json!({"type": 3}), "granularity.type: expected a string such as \"period\", found 3"),
            (json!({"type": "periodic"}), "granularity.type: unknown granularity type \"periodic\""),
            (json!({"type": "period"}), "granularity.period: missing"),
            (
                json!({"type": "period", "period": 1}),
                "granularity.period: expected an ISO 8601 period string",
            ),
            (
                json!({"type": "period", "period": "PT1X"}),
                "granularity.period: period \"PT1X\" is invalid: unexpected 'X'",
            ),
            (json!({"type": "period", "period": "PT0S"}), "granularity.period: period \"PT0S\" is zero"),
            (
                json!({"type": "period", "period": "PT-1H"}),
                "granularity.period: period \"PT-1H\" has a negative field",
            ),
            (
                json!({"type": "period", "period": "PT1H", "timeZone": "Mars/Olympus"}),
                "granularity.timeZone: unknown time zone \"Mars/Olympus\" (expected an IANA name",
            ),
            (
                json!({"type": "period", "period": "PT1H", "timeZone": "+05:30"}),
                "granularity.timeZone: time zone offset \"+05:30\" is not a whole number of hours",
            ),
            (
                json!({"type": "period", "period": "PT1H", "origin": "yesterday"}),
                "granularity.origin: timestamp \"yesterday\" does not match format \"iso\"",
            ),
            (
                json!({"type": "period", "period": "PT1H", "origin": true}),
                "granularity.origin: expected an ISO 8601",
            ),
            (json!({"type": "duration"}), "granularity.duration: missing"),
            (json!({"type": "duration", "duration": 0}), "granularity.duration: 0 is not positive"),
            (
                json!({"type": "duration", "duration": "soon"}),
                "granularity.duration: \"soon\" is not a whole number of milliseconds",
            ),
        ];
        for (value, expected) in cases {
            let message = gran_error(value.clone());
            assert!(message.starts_with(expected), "{value}:\n  got      {message}\n  expected {expected}");
        }
        let long = "x".repeat(500);
        let message = gran_error(json!(long));
        assert!(!message.contains(&long) && message.contains("xxx...\""), "long values are cut: {message}");
        let nested = QueryGranularity::from_json(&json!("daily"), "queries[2].granularity").unwrap_err();
        assert!(nested.to_string().starts_with("queries[2].granularity: unknown granularity \"daily\""));
        assert_eq!(nested.status(), 400);
    }

    // ----- floor and next -----

    /// (granularity, t, floor, next bucket) in UTC.
    #[test]
    fn utc_floors_match_druid() {
        let origin = |p: &str, o: &str| QueryGranularity::Period {
            period: period(p),
            time_zone: None,
            origin: Some(iso(o)),
        };
        let cases = [
            (utc_period("PT1H"), "2013-08-31T01:02:33.5", "2013-08-31T01", "2013-08-31T02"),
            (utc_period("PT15M"), "2013-08-31T01:17", "2013-08-31T01:15", "2013-08-31T01:30"),
            (utc_period("PT6H"), "2013-08-31T13:00", "2013-08-31T12:00", "2013-08-31T18:00"),
            (utc_period("P1D"), "2013-08-31T23:59:59.999", "2013-08-31", "2013-09-01"),
            // 2013-08-31 is a Saturday; weeks start on Monday.
            (utc_period("P1W"), "2013-08-31T12:00", "2013-08-26", "2013-09-02"),
            (utc_period("P1M"), "2013-08-31T12:00", "2013-08-01", "2013-09-01"),
            (utc_period("P3M"), "2013-08-31T12:00", "2013-07-01", "2013-10-01"),
            (utc_period("P1Y"), "2013-08-31T12:00", "2013-01-01", "2014-01-01"),
            // Multiples count from 1970-01-01, a Thursday: two-week buckets start on Thursdays.
            (utc_period("P2D"), "2013-08-31T12:00", "2013-08-31", "2013-09-02"),
            (utc_period("P2D"), "2013-08-30T12:00", "2013-08-29", "2013-08-31"),
            (utc_period("P2W"), "2013-08-31T12:00", "2013-08-29", "2013-09-12"),
            (utc_period("P2M"), "2013-08-31T12:00", "2013-07-01", "2013-09-01"),
            (utc_period("P2Y"), "2013-08-31T12:00", "2012-01-01", "2014-01-01"),
            // Before the epoch.
            (utc_period("PT1H"), "1969-12-31T23:59:59.999", "1969-12-31T23", "1970-01-01"),
            (utc_period("PT6H"), "1969-12-31T05:00", "1969-12-31T00:00", "1969-12-31T06:00"),
            (utc_period("P1W"), "1969-12-31T12:00", "1969-12-29", "1970-01-05"),
            (utc_period("P1M"), "1969-12-15", "1969-12-01", "1970-01-01"),
            (utc_period("P2D"), "1969-12-31T12:00", "1969-12-30", "1970-01-01"),
            // Origins.
            (origin("PT1H", "2012-01-01T00:30"), "2013-08-31T01:02", "2013-08-31T00:30", "2013-08-31T01:30"),
            (origin("PT2H", "2012-01-01T00:30"), "2013-08-31T00:29", "2013-08-30T22:30", "2013-08-31T00:30"),
            (origin("P1D", "2013-01-01T06:00"), "2013-08-31T05:00", "2013-08-30T06:00", "2013-08-31T06:00"),
            (origin("P1W", "2013-08-28"), "2013-08-31", "2013-08-28", "2013-09-04"),
            (origin("P3M", "2013-02-01"), "2013-08-31", "2013-08-01", "2013-11-01"),
            (origin("P1Y", "2012-07-01"), "2013-06-30", "2012-07-01", "2013-07-01"),
            (origin("P1Y", "2012-07-01"), "2013-08-31", "2013-07-01", "2014-07-01"),
            (origin("P1M", "2013-01-31"), "2013-03-15", "2013-02-28", "2013-03-28"),
            (origin("P1M", "2013-01-31"), "2013-03-31T05:00", "2013-03-31", "2013-04-30"),
            (origin("PT1H", "2030-01-01T00:30"), "2013-08-31T01:02", "2013-08-31T00:30", "2013-08-31T01:30"),
            // Compound periods: fixed ones from the origin, calendar ones step by step from it.
            (utc_period("PT1H30M"), "2013-08-31T04:40", "2013-08-31T04:30", "2013-08-31T06:00"),
            (utc_period("P1DT12H"), "1970-01-03T12:00", "1970-01-02T12:00", "1970-01-04T00:00"),
            (utc_period("P1M1D"), "1970-03-10", "1970-03-03", "1970-04-04"),
            // Joda's steps back do not invert its steps forward, so these buckets overlap the
            // next one; Druid has the same quirk.
            (utc_period("P1M1D"), "1969-12-15", "1969-11-30", "1969-12-31"),
            (
                QueryGranularity::Duration { millis: 7_200_000, origin: iso("2012-01-01T00:30") },
                "2013-08-31T01:02",
                "2013-08-31T00:30",
                "2013-08-31T02:30",
            ),
        ];
        for (g, t, floor, next) in cases {
            assert_eq!(format_iso(g.floor(iso(t))), format_iso(iso(floor)), "floor {g} at {t}");
            assert_eq!(format_iso(g.next(iso(floor))), format_iso(iso(next)), "next {g} after {floor}");
        }
        assert_eq!(QueryGranularity::All.floor(iso("2013-08-31")), Millis::MIN);
        assert_eq!(QueryGranularity::All.next(Millis::MIN), Millis::MAX);
        assert_eq!(QueryGranularity::None.floor(12_345), 12_345);
        assert_eq!(QueryGranularity::None.next(12_345), 12_346);
    }

    #[test]
    fn time_zones_follow_local_calendars_and_dst() {
        let kolkata = |p: &str| QueryGranularity::Period {
            period: period(p),
            time_zone: Some(chrono_tz::Asia::Kolkata),
            origin: None,
        };
        let cases = [
            // Spring forward on 2013-03-10 (02:00 PST -> 03:00 PDT): a 23-hour day.
            (la("P1D"), "2013-03-10T12:00", "2013-03-10T08:00", "2013-03-11T07:00"),
            (la("P1D"), "2013-03-10T07:59", "2013-03-09T08:00", "2013-03-10T08:00"),
            // Fall back on 2013-11-03 (02:00 PDT -> 01:00 PST): a 25-hour day.
            (la("P1D"), "2013-11-03T20:00", "2013-11-03T07:00", "2013-11-04T08:00"),
            // Hours stay on UTC hours in Los Angeles; the repeated 01:00 hour is two buckets.
            (la("PT1H"), "2013-03-10T10:30", "2013-03-10T10:00", "2013-03-10T11:00"),
            (la("PT1H"), "2013-11-03T08:30", "2013-11-03T08:00", "2013-11-03T09:00"),
            (la("PT1H"), "2013-11-03T09:30", "2013-11-03T09:00", "2013-11-03T10:00"),
            // Friday 22:00 PDT belongs to the week of Monday 2013-08-26 00:00 PDT.
            (la("P1W"), "2013-08-31T05:00", "2013-08-26T07:00", "2013-09-02T07:00"),
            (la("P1M"), "2013-09-01T05:00", "2013-08-01T07:00", "2013-09-01T07:00"),
            (la("P1M"), "2013-11-15T00:00", "2013-11-01T07:00", "2013-12-01T08:00"),
            (la("P3M"), "2013-10-01T05:00", "2013-07-01T07:00", "2013-10-01T07:00"),
            (la("P1Y"), "2014-01-01T07:00", "2013-01-01T08:00", "2014-01-01T08:00"),
            // Multi-hour periods count from 1970-01-01T00:00 local (08:00Z) in fixed hours, so
            // they drift against the local clock across DST, as in Druid.
            (la("PT6H"), "2013-08-31T13:00", "2013-08-31T08:00", "2013-08-31T14:00"),
            (la("P2D"), "1970-01-03T07:00", "1970-01-01T08:00", "1970-01-03T08:00"),
            (kolkata("PT1H"), "2013-08-31T01:02", "2013-08-31T00:30", "2013-08-31T01:30"),
            (kolkata("P1D"), "2013-08-31T01:02", "2013-08-30T18:30", "2013-08-31T18:30"),
        ];
        for (g, t, floor, next) in cases {
            assert_eq!(format_iso(g.floor(iso(t))), format_iso(iso(floor)), "floor {g} at {t}");
            assert_eq!(format_iso(g.next(iso(floor))), format_iso(iso(next)), "next {g} after {floor}");
        }
        // An origin in local time: days from 06:00 Los Angeles time, whatever the offset.
        let six_am = QueryGranularity::Period {
            period: period("P1D"),
            time_zone: Some(LA),
            origin: Some(iso("2013-01-01T06:00-08:00")),
        };
        assert_eq!(six_am.floor(iso("2013-08-31T12:00")), iso("2013-08-30T06:00-07:00"));
        assert_eq!(six_am.floor(iso("2013-08-31T13:00")), iso("2013-08-31T06:00-07:00"));
        // A time zone equal to UTC changes nothing.
        let utc = QueryGranularity::Period { period: period("P1D"), time_zone: Some(Tz::UTC), origin: None };
        assert_eq!(utc.floor(iso("2013-08-31T12:00")), iso("2013-08-31"));
    }

    #[test]
    fn gaps_and_overlaps_resolve_like_joda() {
        let zone = Zone::Named(LA);
        // 02:30 does not exist on 2013-03-10: Joda moves it forward by the gap, to 03:30 PDT.
        assert_eq!(zone.local_to_utc(iso("2013-03-10T02:30")), iso("2013-03-10T03:30-07:00"));
        // 01:30 happens twice on 2013-11-03: Joda takes the earlier one (PDT).
        assert_eq!(zone.local_to_utc(iso("2013-11-03T01:30")), iso("2013-11-03T01:30-07:00"));
        let berlin = Zone::Named(chrono_tz::Europe::Berlin);
        assert_eq!(berlin.local_to_utc(iso("2013-03-31T02:30")), iso("2013-03-31T03:30+02:00"));
        assert_eq!(berlin.local_to_utc(iso("2013-10-27T02:30")), iso("2013-10-27T02:30+02:00"));
        // Adding a day keeps the wall clock, so the sum is 23 or 25 hours long.
        assert_eq!(zone.add(iso("2013-03-09T12:00-08:00"), Unit::Days, 1), iso("2013-03-10T12:00-07:00"));
        assert_eq!(zone.add(iso("2013-11-03T12:00-08:00"), Unit::Days, -1), iso("2013-11-02T12:00-07:00"));
        // Month ends clamp.
        assert_eq!(Zone::Utc.add(iso("2012-01-31"), Unit::Months, 1), iso("2012-02-29"));
        assert_eq!(Zone::Utc.add(iso("2012-02-29"), Unit::Years, 1), iso("2013-02-28"));
        assert_eq!(Zone::Utc.add(iso("2013-08-31"), Unit::Months, i64::MAX), Millis::MAX);
    }

    /// The integer fast paths must agree with the general calendar rules they replace.
    #[test]
    fn fast_paths_agree_with_the_calendar_rules() {
        let origins = [None, Some(iso("2012-01-01T00:30")), Some(iso("1969-07-20T20:17:40"))];
        let utc_periods = [
            "PT1S", "PT1M", "PT15M", "PT1H", "PT6H", "PT7H", "P1D", "P2D", "P1W", "P2W", "PT1H30M",
            "P1DT12H", "PT0.5S",
        ];
        let time = instants(300);
        for text in utc_periods {
            for origin in origins {
                let p = period(text);
                let plan = Plan::period(p, Zone::Utc, origin);
                assert!(matches!(plan, Plan::Fixed { .. }), "{text} in UTC should be fixed, got {plan:?}");
                let general = Zoned {
                    period: p,
                    zone: Zone::Utc,
                    origin: origin.unwrap_or(0),
                    has_origin: origin.is_some(),
                    single: single_field(&p),
                };
                for &t in &time {
                    assert_eq!(
                        plan.floor(t),
                        general.floor(t),
                        "{text} origin {origin:?} at {}",
                        format_iso(t)
                    );
                }
            }
        }
        for (text, g) in
            [("P1M", Granularity::Month), ("P3M", Granularity::Quarter), ("P1Y", Granularity::Year)]
        {
            let p = period(text);
            let general =
                Zoned { period: p, zone: Zone::Utc, origin: 0, has_origin: false, single: single_field(&p) };
            for &t in &time {
                assert_eq!(g.truncate(t), general.floor(t), "{text} at {}", format_iso(t));
            }
        }
        // Time-of-day periods counted from an origin are fixed in any zone.
        for (text, origin) in [("PT6H", None), ("PT1H", Some(iso("2012-01-01T00:30"))), ("PT90M", None)] {
            let p = period(text);
            let zone = Zone::Named(LA);
            let plan = Plan::period(p, zone, origin);
            assert!(matches!(plan, Plan::Fixed { .. }), "{text} in Los Angeles should be fixed");
            let general = Zoned {
                period: p,
                zone,
                origin: origin.unwrap_or(iso("1970-01-01T08:00")),
                has_origin: origin.is_some(),
                single: single_field(&p),
            };
            for &t in &time {
                assert_eq!(plan.floor(t), general.floor(t), "{text} at {}", format_iso(t));
            }
        }
    }

    /// floor(t) <= t < next(floor(t)), and bucket starts are their own floors.
    #[test]
    fn buckets_tile_time() {
        let granularities = [
            utc_period("PT1H"),
            utc_period("P1W"),
            utc_period("P1M"),
            utc_period("P3M"),
            utc_period("P2M"),
            la("PT1H"),
            la("PT1M"),
            la("PT1S"),
            la("P1D"),
            la("P2D"),
            la("P1W"),
            la("P1M"),
            la("P3M"),
            la("P1Y"),
            QueryGranularity::Period {
                period: period("P1D"),
                time_zone: Some(chrono_tz::Asia::Kolkata),
                origin: None,
            },
            QueryGranularity::Period {
                period: period("P1D"),
                time_zone: Some(LA),
                origin: Some(iso("2013-01-01T06:00-08:00")),
            },
            QueryGranularity::Duration { millis: 7_200_000, origin: iso("2012-01-01T00:30") },
        ];
        let time = instants(300);
        for g in &granularities {
            for &t in &time {
                let start = g.floor(t);
                let next = g.next(start);
                let at = format_iso(t);
                assert!(start <= t && t < next, "{g} at {at}: [{}, {})", format_iso(start), format_iso(next));
                assert_eq!(g.floor(start), start, "{g}: bucket start of {at} is not its own floor");
                assert_eq!(g.floor(next), next, "{g}: next bucket after {at} is not its own floor");
                assert_eq!(g.floor(next - 1), start, "{g}: the bucket of {at} has a gap");
            }
        }
        // Calendar compound periods in a DST zone walk from the origin: check a few decades.
        let compound = la("P1DT1H");
        for t in [iso("1969-12-01"), iso("1975-03-10T12:00"), iso("1990-11-04T09:30")] {
            let start = compound.floor(t);
            let next = compound.next(start);
            assert!(
                start <= t && t < next && compound.floor(next) == next,
                "{compound} at {}",
                format_iso(t)
            );
        }
    }

    #[test]
    fn vectorised_floors_match_the_scalar_floor() {
        let granularities = [
            utc_period("PT1H"),
            utc_period("PT1S"),
            utc_period("PT15M"),
            utc_period("P1D"),
            utc_period("PT7M"),
            utc_period("P1M"),
            la("P1D"),
            la("PT1H"),
            QueryGranularity::Duration { millis: 7_200_000, origin: iso("2012-01-01T00:30") },
        ];
        let mut time = instants(500);
        time.sort_unstable();
        time.extend([Millis::MIN, Millis::MIN + 1, Millis::MAX, -1, 0]);
        for g in &granularities {
            let floors = g.plan().floor_values(&time, None);
            for (&t, &f) in time.iter().zip(&floors) {
                assert_eq!(f, g.floor(t), "{g} at {t}");
            }
        }
        assert_eq!(utc_period("PT1H").floor(Millis::MIN), Millis::MIN);
        assert_eq!(utc_period("PT1H").next(Millis::MAX - 1), Millis::MAX);
    }

    #[test]
    fn bucket_lists() {
        let interval = |s: &str| Interval::parse(s).unwrap_or_else(|e| panic!("{e}"));
        let starts = |g: &QueryGranularity, i: &str| -> Vec<String> {
            g.buckets(interval(i)).unwrap_or_else(|e| panic!("{e}")).into_iter().map(format_iso).collect()
        };
        let hour = utc_period("PT1H");
        assert_eq!(
            starts(&hour, "2013-08-31T00:30/2013-08-31T02:30"),
            ["2013-08-31T00:00:00.000Z", "2013-08-31T01:00:00.000Z", "2013-08-31T02:00:00.000Z"]
        );
        assert_eq!(starts(&hour, "2013-08-31T01:00/2013-08-31T02:00"), ["2013-08-31T01:00:00.000Z"]);
        assert_eq!(
            starts(&la("P1D"), "2013-03-09T08:00Z/2013-03-12T07:00Z"),
            ["2013-03-09T08:00:00.000Z", "2013-03-10T08:00:00.000Z", "2013-03-11T07:00:00.000Z"]
        );
        assert_eq!(
            starts(&utc_period("P1M"), "2013-01-15/2013-04-01"),
            ["2013-01-01T00:00:00.000Z", "2013-02-01T00:00:00.000Z", "2013-03-01T00:00:00.000Z"]
        );
        let day = interval("2013-08-31/2013-09-01");
        assert_eq!(QueryGranularity::All.buckets(day).ok(), Some(vec![day.start]));
        assert_eq!(QueryGranularity::None.buckets(day).ok(), Some(vec![]));
        assert_eq!(hour.buckets(Interval { start: 5, end: 5 }).ok(), Some(vec![]));
        assert_eq!(
            utc_period("PT1S").buckets(interval("2013-08-31/P11D")).map(|b| b.len()).ok(),
            Some(950_400)
        );

        let message = utc_period("PT1M").buckets(interval("2013-01-01/2015-01-01")).unwrap_err().to_string();
        assert_eq!(
            message,
            "granularity minute: interval 2013-01-01T00:00:00.000Z/2015-01-01T00:00:00.000Z holds more than \
             1000000 buckets (the limit); use a coarser granularity or a shorter interval"
        );
        // The same limit through the general path.
        let message = la("PT1M").buckets(interval("2013-01-01/2015-01-01")).unwrap_err().to_string();
        assert!(message.contains("holds more than 1000000 buckets"), "{message}");
    }

    // ----- intervals -----

    #[test]
    fn interval_forms_are_sorted_and_merged() {
        let parse = |v: Value| -> Vec<String> {
            parse_intervals(&v, "intervals")
                .unwrap_or_else(|e| panic!("{v}: {e}"))
                .into_iter()
                .map(|i| i.to_string())
                .collect()
        };
        let day = "2013-08-31T00:00:00.000Z/2013-09-01T00:00:00.000Z";
        assert_eq!(parse(json!("2013-08-31/2013-09-01")), [day]);
        assert_eq!(parse(json!(["2013-08-31/p1d"])), [day]);
        assert_eq!(parse(json!(["P1D/2013-09-01"])), [day]);
        assert_eq!(parse(json!(["2013-08-31T01:00:00+01:00/2013-09-01T00:00:00.000Z"])), [day]);
        assert_eq!(
            parse(json!({"type": "intervals", "intervals": ["2013-08-31/pt1h"]})),
            ["2013-08-31T00:00:00.000Z/2013-08-31T01:00:00.000Z"]
        );
        // Unsorted, overlapping and touching intervals merge; separate ones stay apart.
        assert_eq!(
            parse(json!([
                "2013-09-05/2013-09-06",
                "2013-08-31T12/2013-09-01",
                "2013-08-31/2013-08-31T13",
                "2013-09-01/2013-09-02",
            ])),
            [
                "2013-08-31T00:00:00.000Z/2013-09-02T00:00:00.000Z",
                "2013-09-05T00:00:00.000Z/2013-09-06T00:00:00.000Z"
            ]
        );
        // Druid's eternity, as Druid SQL and many clients send it.
        let eternity = parse_intervals(
            &json!(["-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z"]),
            "intervals",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(eternity, [Interval { start: i64::MIN / 2, end: i64::MAX / 2 }]);
    }

    #[test]
    fn interval_errors_name_field_value_and_rule() {
        let cases = [
            (json!([]), "intervals: the list is empty (expected at least one interval"),
            (
                json!(["2013-09-01/2013-08-31"]),
                "intervals[0]: interval \"2013-09-01/2013-08-31\" is invalid: start 2013-09-01T00:00:00.000Z is \
                 not before end 2013-08-31T00:00:00.000Z",
            ),
            (json!(["2013-08-31/2013-09-01", 5]), "intervals[1]: expected an interval string"),
            (
                json!(["2013-08-31"]),
                "intervals[0]: interval \"2013-08-31\" is invalid: expected \"start/end\"",
            ),
            (json!(7), "intervals: expected an interval string or a list of them"),
            (
                json!({"type": "segments", "segments": []}),
                "intervals: segment specs ({\"type\":\"segments\"}) are not supported",
            ),
            (json!({"type": "intervals"}), "intervals.intervals: missing"),
            (json!({"type": "intervals", "intervals": []}), "intervals.intervals: the list is empty"),
            (json!({"type": "other"}), "intervals.type: unknown interval spec type \"other\""),
            (json!({"intervals": []}), "intervals: the object has no \"type\""),
        ];
        for (value, expected) in cases {
            let error = parse_intervals(&value, "intervals").unwrap_err();
            let message = error.to_string();
            assert!(message.starts_with(expected), "{value}:\n  got      {message}\n  expected {expected}");
            assert!(matches!(error, QueryError::InvalidInput(_)));
        }
    }

    // ----- SQL functions -----

    fn context() -> SessionContext {
        let ctx = SessionContext::new();
        for udf in sql_functions() {
            ctx.register_udf(udf);
        }
        let ts = TimestampMillisecondArray::from(vec![
            Some(iso("2013-03-10T09:30")),
            Some(iso("2013-03-10T10:30")),
            None,
            Some(iso("2013-11-03T08:30")),
            Some(iso("2013-11-03T09:30")),
        ])
        .with_timezone(UTC);
        let ts_ns =
            TimestampNanosecondArray::from(vec![Some(-1), Some(1_500_000_000), None, Some(0), Some(999_999)]);
        let steps = Int64Array::from(vec![Some(1), Some(2), Some(3), None, Some(-1)]);
        let periods = StringArray::from(vec!["PT1H"; 5]);
        let schema = Schema::new(vec![
            Field::new("ts", ts.data_type().clone(), true),
            Field::new("ts_ns", ts_ns.data_type().clone(), true),
            Field::new("n", DataType::Int64, true),
            Field::new("p", DataType::Utf8, false),
        ]);
        let columns: Vec<ArrayRef> = vec![Arc::new(ts), Arc::new(ts_ns), Arc::new(steps), Arc::new(periods)];
        let batch = RecordBatch::try_new(Arc::new(schema), columns).unwrap_or_else(|e| panic!("{e}"));
        ctx.register_batch("t", batch).unwrap_or_else(|e| panic!("{e}"));
        ctx
    }

    /// The first column of a query's result as ISO strings (millis for integers).
    async fn column(ctx: &SessionContext, sql: &str) -> Vec<Option<String>> {
        let frame = ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let batches = frame.collect().await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let mut out = Vec::new();
        for batch in batches {
            let array = batch.column(0);
            let as_millis = timestamps_as_millis("test", array).unwrap_or_else(|e| panic!("{e}"));
            let is_time = matches!(array.data_type(), DataType::Timestamp(..));
            if is_time {
                assert_eq!(array.data_type(), &timestamp_type(), "{sql}");
            }
            out.extend(
                as_millis.iter().map(|v| v.map(|v| if is_time { format_iso(v) } else { v.to_string() })),
            );
        }
        out
    }

    async fn sql_error(ctx: &SessionContext, sql: &str) -> QueryError {
        let result = match ctx.sql(sql).await {
            Ok(frame) => frame.collect().await.map(|_| ()),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => panic!("{sql} succeeded"),
            Err(e) => QueryError::from_datafusion(e),
        }
    }

    fn isos(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(|v| format_iso(iso(v)))).collect()
    }

    #[tokio::test]
    async fn time_floor_and_ceil_in_sql() {
        let ctx = context();
        assert_eq!(
            column(&ctx, "SELECT time_floor(ts, 'PT1H') FROM t").await,
            isos(&[
                Some("2013-03-10T09:00"),
                Some("2013-03-10T10:00"),
                None,
                Some("2013-11-03T08:00"),
                Some("2013-11-03T09:00")
            ])
        );
        // A DST day in Los Angeles: both changes fall inside one local day.
        assert_eq!(
            column(&ctx, "SELECT TIME_FLOOR(ts, 'P1D', NULL, 'America/Los_Angeles') FROM t").await,
            isos(&[
                Some("2013-03-10T08:00"),
                Some("2013-03-10T08:00"),
                None,
                Some("2013-11-03T07:00"),
                Some("2013-11-03T07:00")
            ])
        );
        assert_eq!(
            column(&ctx, "SELECT time_ceil(ts, 'p1d', NULL, 'America/Los_Angeles') FROM t").await,
            isos(&[
                Some("2013-03-11T07:00"),
                Some("2013-03-11T07:00"),
                None,
                Some("2013-11-04T08:00"),
                Some("2013-11-04T08:00")
            ])
        );
        // On a boundary the ceiling is the instant itself.
        assert_eq!(
            column(&ctx, "SELECT time_ceil(ts, 'PT30M') FROM t").await,
            isos(&[
                Some("2013-03-10T09:30"),
                Some("2013-03-10T10:30"),
                None,
                Some("2013-11-03T08:30"),
                Some("2013-11-03T09:30")
            ])
        );
        assert_eq!(
            column(&ctx, "SELECT time_floor(ts, 'PT2H', TIMESTAMP '2013-01-01 00:30:00') FROM t").await,
            isos(&[
                Some("2013-03-10T08:30"),
                Some("2013-03-10T10:30"),
                None,
                Some("2013-11-03T08:30"),
                Some("2013-11-03T08:30")
            ])
        );
        assert_eq!(
            column(&ctx, "SELECT time_floor(ts, 'PT2H', '2013-01-01 00:30:00') FROM t").await,
            column(&ctx, "SELECT time_floor(ts, 'PT2H', TIMESTAMP '2013-01-01 00:30:00') FROM t").await,
        );
        // Nanosecond input floors toward minus infinity.
        assert_eq!(
            column(&ctx, "SELECT time_floor(ts_ns, 'PT1S') FROM t").await,
            isos(&[
                Some("1969-12-31T23:59:59"),
                Some("1970-01-01T00:00:01"),
                None,
                Some("1970"),
                Some("1970")
            ])
        );
        // All-constant calls are folded while planning.
        assert_eq!(
            column(&ctx, "SELECT time_floor(TIMESTAMP '2013-08-31 01:02:33', 'PT1H')").await,
            isos(&[Some("2013-08-31T01:00")])
        );
        assert_eq!(column(&ctx, "SELECT time_floor(CAST(NULL AS TIMESTAMP), 'PT1H')").await, isos(&[None]));
    }

    #[tokio::test]
    async fn time_shift_and_millis_conversions_in_sql() {
        let ctx = context();
        // A day in Los Angeles keeps the wall clock across the DST change.
        assert_eq!(
            column(&ctx, "SELECT time_shift(ts, 'P1D', 1, 'America/Los_Angeles') FROM t").await,
            isos(&[
                Some("2013-03-11T08:30"),
                Some("2013-03-11T10:30"),
                None,
                Some("2013-11-04T09:30"),
                Some("2013-11-04T09:30")
            ])
        );
        assert_eq!(
            column(&ctx, "SELECT time_shift(ts, 'PT1H', -2) FROM t").await,
            isos(&[
                Some("2013-03-10T07:30"),
                Some("2013-03-10T08:30"),
                None,
                Some("2013-11-03T06:30"),
                Some("2013-11-03T07:30")
            ])
        );
        assert_eq!(
            column(&ctx, "SELECT time_shift(ts, 'PT1H', n) FROM t").await,
            isos(&[Some("2013-03-10T10:30"), Some("2013-03-10T12:30"), None, None, Some("2013-11-03T08:30")])
        );
        assert_eq!(column(&ctx, "SELECT time_shift(ts, 'PT1H', NULL) FROM t").await, vec![None; 5]);
        assert_eq!(
            column(&ctx, "SELECT timestamp_to_millis(ts) FROM t").await,
            [
                Some(iso("2013-03-10T09:30")),
                Some(iso("2013-03-10T10:30")),
                None,
                Some(iso("2013-11-03T08:30")),
                Some(iso("2013-11-03T09:30"))
            ]
            .map(|v| v.map(|v| v.to_string()))
            .to_vec()
        );
        assert_eq!(
            column(&ctx, "SELECT millis_to_timestamp(1377910953000)").await,
            isos(&[Some("2013-08-31T01:02:33")])
        );
        assert_eq!(
            column(
                &ctx,
                "SELECT millis_to_timestamp(timestamp_to_millis(ts) + 1) FROM t WHERE ts IS NOT NULL LIMIT 1"
            )
            .await,
            isos(&[Some("2013-03-10T09:30:00.001")])
        );
    }

    #[tokio::test]
    async fn sql_function_errors_are_invalid_input() {
        let ctx = context();
        let cases = [
            ("SELECT time_floor(ts, 'PX1H') FROM t", "time_floor: period \"PX1H\" is invalid"),
            ("SELECT time_floor(ts, 'PT0H') FROM t", "time_floor: period \"PT0H\" is zero"),
            // Constants are checked while planning, even when no row reaches the function.
            ("SELECT time_floor(ts, 'PX') FROM t WHERE n > 100", "time_floor: period \"PX\" is invalid"),
            ("SELECT time_floor(ts, p) FROM t", "time_floor: period must be a constant"),
            (
                "SELECT time_floor(ts, 'P1D', NULL, 'Mars/Olympus') FROM t",
                "time_floor: unknown time zone \"Mars/Olympus\"",
            ),
            (
                "SELECT time_ceil(ts, 'P1D', 'noon') FROM t",
                "time_ceil: origin timestamp \"noon\" does not match",
            ),
            ("SELECT time_floor(n, 'PT1H') FROM t", "time_floor: timestamp (argument 1) must be a TIMESTAMP"),
            (
                "SELECT time_floor(ts) FROM t",
                "time_floor: called with 1 arguments (expected time_floor(timestamp, period",
            ),
            ("SELECT time_shift(ts, 'PT1H', 'x') FROM t", "time_shift: step (argument 3) must be an integer"),
            ("SELECT time_shift(ts, 'PT1H', 1, p) FROM t", "time_shift: time zone must be a constant"),
            (
                "SELECT millis_to_timestamp(ts) FROM t",
                "millis_to_timestamp: millis (argument 1) must be an integer",
            ),
        ];
        for (sql, expected) in cases {
            let error = sql_error(&ctx, sql).await;
            let message = error.to_string();
            assert!(matches!(error, QueryError::InvalidInput(_)), "{sql}: {error:?}");
            assert!(message.starts_with(expected), "{sql}:\n  got      {message}\n  expected {expected}");
        }
    }

    #[tokio::test]
    async fn floor_expr_plans_the_granularity() {
        let ctx = context();
        assert_eq!(floor_expr(col("ts"), &QueryGranularity::All), None);
        assert_eq!(floor_expr(col("ts"), &QueryGranularity::None), Some(col("ts")));
        let day = la("P1D");
        let expr = floor_expr(col("ts"), &day).unwrap_or_else(|| panic!("no expression"));
        let frame = ctx.table("t").await.and_then(|t| t.select(vec![expr.alias("bucket")]));
        let batches =
            frame.unwrap_or_else(|e| panic!("{e}")).collect().await.unwrap_or_else(|e| panic!("{e}"));
        let buckets: Vec<Option<String>> = batches
            .iter()
            .flat_map(|b| {
                let millis = timestamps_as_millis("test", b.column(0)).unwrap_or_else(|e| panic!("{e}"));
                millis.iter().map(|v| v.map(format_iso)).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            buckets,
            isos(&[
                Some("2013-03-10T08:00"),
                Some("2013-03-10T08:00"),
                None,
                Some("2013-11-03T07:00"),
                Some("2013-11-03T07:00")
            ])
        );
        // Two granularities are two different functions to DataFusion.
        assert_ne!(floor_expr(col("ts"), &day), floor_expr(col("ts"), &utc_period("PT1H")));
        assert_eq!(floor_expr(col("ts"), &day), floor_expr(col("ts"), &la("P1D")));
    }

    #[test]
    fn bucket_timestamps_carry_the_granularity_zone_offset() {
        let la = QueryGranularity::from_json(
            &json!({"type": "period", "period": "P1D", "timeZone": "America/Los_Angeles"}),
            "granularity",
        )
        .unwrap();
        let t = parse_iso("2013-08-30T07:00:00Z").unwrap();
        assert_eq!(la.format_bucket(t), "2013-08-30T00:00:00.000-07:00");
        let winter = parse_iso("2013-12-30T08:00:00Z").unwrap();
        assert_eq!(la.format_bucket(winter), "2013-12-30T00:00:00.000-08:00");
        let london = QueryGranularity::from_json(
            &json!({"type": "period", "period": "P1D", "timeZone": "Europe/London"}),
            "g",
        )
        .unwrap();
        assert_eq!(london.format_bucket(winter), "2013-12-30T08:00:00.000Z");
        assert_eq!(
            QueryGranularity::from_json(&json!("hour"), "g").unwrap().format_bucket(t),
            "2013-08-30T07:00:00.000Z"
        );
    }
}
