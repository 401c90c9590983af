//! Time for braid: every instant is UTC milliseconds since the Unix epoch (`i64`), and this module
//! owns turning text and numbers into such instants and grouping them. It covers Druid's
//! `timestampSpec` formats (auto, iso, millis, posix, micro, nano and Joda-style patterns), the
//! ISO 8601 datetimes, periods and `start/end` interval strings that appear in ingestion specs, and
//! Druid's simple granularities (floor-to-bucket, next bucket, bucket iteration). Timestamp parsing
//! runs once per ingested event, so the ISO, numeric and pattern parsers are hand-rolled over bytes
//! and never allocate on success; calendar math is done with days-from-civil arithmetic in the
//! proleptic Gregorian calendar, matching Joda's ISO chronology in UTC.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

/// UTC milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
/// One hour in milliseconds: the span of a raw-archive directory.
pub const HOUR_MS: Millis = HOUR;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;

/// Error values echoed into messages are cut here so one garbage multi-megabyte field cannot
/// flood the logs.
const MAX_ECHO_CHARS: usize = 200;

/// Everything that can go wrong parsing or building times.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum TimeError {
    /// A granularity name that is not one of [`Granularity::ALL_NAMES`].
    #[error("unknown granularity \"{value}\" (expected one of: {})", Granularity::ALL_NAMES.join(", "))]
    UnknownGranularity {
        /// The name as given.
        value: String,
    },
    /// A timestamp (string or number) that the timestamp format cannot read.
    #[error("timestamp \"{value}\" does not match format \"{format}\": {reason}")]
    InvalidTimestamp {
        /// The value as given (numbers rendered in decimal).
        value: String,
        /// The format's name, or the Joda pattern as written.
        format: String,
        /// Which rule failed and what was expected.
        reason: String,
    },
    /// An interval string that cannot be read.
    #[error("interval \"{value}\" is invalid: {reason}")]
    InvalidInterval {
        /// The interval string as given.
        value: String,
        /// Which rule failed and what was expected.
        reason: String,
    },
    /// [`Interval::new`] with `start >= end`.
    #[error(
        "interval start {} ({start}) is not before end {} ({end}) (expected start < end)",
        format_iso(*.start),
        format_iso(*.end)
    )]
    StartNotBeforeEnd {
        /// The requested start.
        start: Millis,
        /// The requested end.
        end: Millis,
    },
    /// An ISO 8601 period string that cannot be read.
    #[error("period \"{value}\" is invalid: {reason}")]
    InvalidPeriod {
        /// The period string as given.
        value: String,
        /// Which rule failed and what was expected.
        reason: String,
    },
    /// A timestamp format that is neither a known name nor a valid Joda pattern.
    #[error("timestamp format pattern \"{pattern}\" is invalid: {reason}")]
    InvalidPattern {
        /// The format string as given.
        pattern: String,
        /// Which rule failed and what was expected.
        reason: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Calendar arithmetic (proleptic Gregorian, UTC). Howard Hinnant's days-from-civil algorithms:
// branch-light, exact for every i64 day count we can produce, and much cheaper than going
// through chrono's checked types on the per-event path.
// ---------------------------------------------------------------------------------------------

/// Days since 1970-01-01 of the civil date `y-m-d` (`m` in 1..=12, `d` in 1..=31).
#[inline]
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day count since 1970-01-01.
#[inline]
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both casts are of values proven small by the algorithm (1..=31 and 1..=12).
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[inline]
fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

#[inline]
fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Millis of `days` since epoch plus `ms_of_day`, clamped to the i64 range: granularity and
/// period arithmetic near the ends of time saturates rather than wrapping.
#[inline]
fn clamp_millis(days: i64, ms_of_day: i64) -> Millis {
    let v = i128::from(days) * i128::from(DAY) + i128::from(ms_of_day);
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// `t` floored to a multiple of `width`, saturating at i64::MIN.
#[inline(always)]
fn floor_to(t: Millis, width: i64) -> Millis {
    t.div_euclid(width).saturating_mul(width)
}

/// `t` moved by `months` calendar months, clamping the day of month like Joda
/// (Jan 31 + 1 month = Feb 28/29); the time of day is kept.
fn add_months(t: Millis, months: i64) -> Millis {
    if months == 0 {
        return t;
    }
    let days = t.div_euclid(DAY);
    let ms_of_day = t.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    let total = y * 12 + i64::from(m) - 1 + months;
    let ny = total.div_euclid(12);
    let nm = total.rem_euclid(12) as u32 + 1;
    let nd = d.min(days_in_month(ny, nm));
    clamp_millis(days_from_civil(ny, nm, nd), ms_of_day)
}

// ---------------------------------------------------------------------------------------------
// Granularity
// ---------------------------------------------------------------------------------------------

/// Druid's simple granularities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Granularity {
    /// Millisecond resolution: every instant is its own bucket.
    None,
    /// One second.
    Second,
    /// One minute.
    Minute,
    /// Five minutes, aligned to the hour.
    FiveMinute,
    /// Ten minutes, aligned to the hour.
    TenMinute,
    /// Fifteen minutes, aligned to the hour.
    FifteenMinute,
    /// Thirty minutes, aligned to the hour.
    ThirtyMinute,
    /// One hour.
    Hour,
    /// Six hours, aligned to UTC midnight (00, 06, 12, 18).
    SixHour,
    /// Eight hours, aligned to UTC midnight (00, 08, 16).
    EightHour,
    /// One UTC day.
    Day,
    /// One ISO week, starting Monday 00:00 UTC.
    Week,
    /// One calendar month.
    Month,
    /// One calendar quarter (starting January, April, July, October).
    Quarter,
    /// One calendar year.
    Year,
    /// A single bucket holding all of time.
    All,
}

impl Granularity {
    /// The canonical lowercase names, in declaration order.
    pub const ALL_NAMES: &'static [&'static str] = &[
        "none",
        "second",
        "minute",
        "five_minute",
        "ten_minute",
        "fifteen_minute",
        "thirty_minute",
        "hour",
        "six_hour",
        "eight_hour",
        "day",
        "week",
        "month",
        "quarter",
        "year",
        "all",
    ];

    const ALL: [Granularity; 16] = [
        Granularity::None,
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
        Granularity::All,
    ];

    /// Parses a granularity name case-insensitively ("DAY", "day", "Fifteen_Minute").
    pub fn parse(s: &str) -> Result<Self, TimeError> {
        Self::ALL
            .iter()
            .find(|g| g.name().eq_ignore_ascii_case(s))
            .copied()
            .ok_or_else(|| TimeError::UnknownGranularity { value: echo(s) })
    }

    /// The canonical lowercase name, as in Druid specs.
    pub fn name(self) -> &'static str {
        match self {
            Granularity::None => "none",
            Granularity::Second => "second",
            Granularity::Minute => "minute",
            Granularity::FiveMinute => "five_minute",
            Granularity::TenMinute => "ten_minute",
            Granularity::FifteenMinute => "fifteen_minute",
            Granularity::ThirtyMinute => "thirty_minute",
            Granularity::Hour => "hour",
            Granularity::SixHour => "six_hour",
            Granularity::EightHour => "eight_hour",
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
            Granularity::Quarter => "quarter",
            Granularity::Year => "year",
            Granularity::All => "all",
        }
    }

    /// Bucket width for the granularities that have a fixed one in UTC.
    /// The length of this granularity's buckets when it is fixed (second up to week); none for
    /// `none`, `all` and the calendar granularities.
    pub fn fixed_ms(self) -> Option<i64> {
        Some(match self {
            Granularity::Second => SECOND,
            Granularity::Minute => MINUTE,
            Granularity::FiveMinute => 5 * MINUTE,
            Granularity::TenMinute => 10 * MINUTE,
            Granularity::FifteenMinute => 15 * MINUTE,
            Granularity::ThirtyMinute => 30 * MINUTE,
            Granularity::Hour => HOUR,
            Granularity::SixHour => 6 * HOUR,
            Granularity::EightHour => 8 * HOUR,
            Granularity::Day => DAY,
            Granularity::Week => WEEK,
            _ => return None,
        })
    }

    /// Start of the bucket holding `t` (floor, correct for negative t). None -> t itself (ms
    /// resolution). All -> i64::MIN. Week starts Monday (ISO/Joda), month/quarter/year calendar in
    /// UTC. Saturates at i64::MIN for the few instants whose bucket starts before it.
    #[inline]
    pub fn truncate(self, t: Millis) -> Millis {
        // One arm per width so each division is by a constant, which compiles to a multiply:
        // a 64-bit `idiv` by a runtime width costs ~40 cycles, and this runs once per event.
        match self {
            Granularity::None => t,
            Granularity::Second => floor_to(t, SECOND),
            Granularity::Minute => floor_to(t, MINUTE),
            Granularity::FiveMinute => floor_to(t, 5 * MINUTE),
            Granularity::TenMinute => floor_to(t, 10 * MINUTE),
            Granularity::FifteenMinute => floor_to(t, 15 * MINUTE),
            Granularity::ThirtyMinute => floor_to(t, 30 * MINUTE),
            Granularity::Hour => floor_to(t, HOUR),
            Granularity::SixHour => floor_to(t, 6 * HOUR),
            Granularity::EightHour => floor_to(t, 8 * HOUR),
            Granularity::Day => floor_to(t, DAY),
            Granularity::Week => {
                // 1970-01-01 was a Thursday, so Monday-based weekday = (days + 3) mod 7.
                let days = t.div_euclid(DAY);
                clamp_millis(days - (days + 3).rem_euclid(7), 0)
            }
            Granularity::Month => {
                let days = t.div_euclid(DAY);
                let (_, _, d) = civil_from_days(days);
                clamp_millis(days - i64::from(d) + 1, 0)
            }
            Granularity::Quarter | Granularity::Year => {
                let (y, m) = self.calendar_bucket(t);
                clamp_millis(days_from_civil(y, m, 1), 0)
            }
            Granularity::All => i64::MIN,
        }
    }

    /// (year, first month) of the month/quarter/year bucket holding `t`.
    fn calendar_bucket(self, t: Millis) -> (i64, u32) {
        let (y, m, _) = civil_from_days(t.div_euclid(DAY));
        match self {
            Granularity::Quarter => (y, (m - 1) / 3 * 3 + 1),
            Granularity::Year => (y, 1),
            _ => (y, m),
        }
    }

    /// Start of the bucket after the one starting at `bucket_start`. All -> i64::MAX; None ->
    /// bucket_start+1. An unaligned argument gives the bucket after the one holding it, and the
    /// result saturates at i64::MAX.
    #[inline]
    pub fn next(self, bucket_start: Millis) -> Millis {
        match self {
            Granularity::None => bucket_start.saturating_add(1),
            Granularity::All => i64::MAX,
            Granularity::Month | Granularity::Quarter | Granularity::Year => {
                let (y, m) = self.calendar_bucket(bucket_start);
                let step = match self {
                    Granularity::Month => 1,
                    Granularity::Quarter => 3,
                    _ => 12,
                };
                let total = y * 12 + i64::from(m) - 1 + step;
                let nm = total.rem_euclid(12) as u32 + 1;
                clamp_millis(days_from_civil(total.div_euclid(12), nm, 1), 0)
            }
            _ => {
                let width = self.fixed_ms().unwrap_or(1);
                self.truncate(bucket_start).saturating_add(width)
            }
        }
    }

    /// Whether `t` is the start of a bucket (always true for `None`; only i64::MIN for `All`).
    #[inline]
    pub fn is_aligned(self, t: Millis) -> bool {
        self.truncate(t) == t
    }

    /// Iterate the bucket starts covering [interval.start, interval.end): yields whole buckets, so
    /// the first may start before `interval.start` and the last may end after `interval.end`
    /// (Druid's `getIterable`). An empty interval yields nothing; `All` yields [i64::MIN, i64::MAX).
    pub fn buckets(self, interval: Interval) -> impl Iterator<Item = Interval> {
        let first = (interval.start < interval.end).then(|| {
            let start = self.truncate(interval.start);
            Interval { start, end: self.next(start) }
        });
        std::iter::successors(first, move |prev| {
            (prev.end < interval.end).then(|| Interval { start: prev.end, end: self.next(prev.end) })
        })
    }
}

impl fmt::Display for Granularity {
    /// The canonical lowercase name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Granularity {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, TimeError> {
        Self::parse(s)
    }
}

impl Serialize for Granularity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Granularity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(ParseVisitor::new("a granularity name such as \"day\""))
    }
}

// ---------------------------------------------------------------------------------------------
// Interval
// ---------------------------------------------------------------------------------------------

/// A half-open time range [start, end) in UTC millis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interval {
    /// First instant inside the interval.
    pub start: Millis,
    /// First instant after the interval.
    pub end: Millis,
}

impl Interval {
    /// An interval from `start` to `end`; errors unless `start < end`.
    pub fn new(start: Millis, end: Millis) -> Result<Self, TimeError> {
        if start < end {
            Ok(Interval { start, end })
        } else {
            Err(TimeError::StartNotBeforeEnd { start, end })
        }
    }

    /// Druid interval strings: "start/end", "start/period", "period/end"; datetimes may be
    /// partial ISO 8601 ("2013-08-31", "2013-08-31T01", "2013-08-31T01:02:33.5+05:30", no zone =
    /// UTC) and periods are case-insensitive ("pt1h", "P1D").
    pub fn parse(s: &str) -> Result<Self, TimeError> {
        let invalid = |reason: String| TimeError::InvalidInterval { value: echo(s), reason };
        let Some((left, right)) = s.split_once('/') else {
            return Err(invalid(
                "expected \"start/end\", \"start/period\" or \"period/end\" with one '/'".into(),
            ));
        };
        if right.contains('/') {
            return Err(invalid(
                "found more than one '/' (expected \"start/end\", \"start/period\" or \"period/end\")".into(),
            ));
        }
        let is_period = |p: &str| matches!(p.as_bytes().first(), Some(b'P' | b'p'));
        let instant = |which: &str, text: &str| {
            parse_iso_bytes(text.as_bytes(), false).map_err(|f| {
                invalid(format!(
                    "{which} \"{}\" is not an ISO 8601 datetime: {}",
                    echo(text),
                    f.describe(text)
                ))
            })
        };
        let period = |which: &str, text: &str| {
            parse_period(text).map_err(|reason| {
                invalid(format!("{which} \"{}\" is not an ISO 8601 period: {reason}", echo(text)))
            })
        };
        let (start, end) = match (is_period(left), is_period(right)) {
            (true, true) => {
                return Err(invalid("both sides are periods (expected at least one datetime)".into()));
            }
            (false, true) => {
                let start = instant("start", left)?;
                (start, period("period", right)?.add_to(start))
            }
            (true, false) => {
                let end = instant("end", right)?;
                (period("period", left)?.subtract_from(end), end)
            }
            (false, false) => (instant("start", left)?, instant("end", right)?),
        };
        if start < end {
            Ok(Interval { start, end })
        } else {
            Err(invalid(format!(
                "start {} is not before end {} (expected start < end)",
                format_iso(start),
                format_iso(end)
            )))
        }
    }

    /// Whether `t` lies in [start, end).
    pub fn contains(&self, t: Millis) -> bool {
        self.start <= t && t < self.end
    }

    /// Whether the two intervals share at least one instant.
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The instants in both intervals, or `None` if they do not overlap.
    pub fn intersect(&self, other: &Interval) -> Option<Interval> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(Interval { start, end })
    }

    /// Whether every instant of `other` lies in `self`.
    pub fn contains_interval(&self, other: &Interval) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// `end - start`, saturating at i64::MAX for intervals wider than i64 can count.
    pub fn duration_ms(&self) -> i64 {
        self.end.saturating_sub(self.start)
    }
}

impl fmt::Display for Interval {
    /// "2013-08-31T00:00:00.000Z/2013-09-01T00:00:00.000Z"
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_iso(f, self.start)?;
        f.write_str("/")?;
        write_iso(f, self.end)
    }
}

impl FromStr for Interval {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, TimeError> {
        Self::parse(s)
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_str(ParseVisitor::new("an interval string such as \"2013-08-31/2013-09-01\""))
    }
}

// ---------------------------------------------------------------------------------------------
// Period
// ---------------------------------------------------------------------------------------------

/// ISO 8601 period: P[n]Y[n]M[n]W[n]DT[n]H[n]M[n]S with fractional seconds allowed (PT0.5S),
/// case-insensitive, "P" alone invalid. Fields may be negative ("PT-1H"), as in Joda.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Period {
    /// Calendar years.
    pub years: i32,
    /// Calendar months.
    pub months: i32,
    /// Weeks (7 days).
    pub weeks: i32,
    /// Days (24 hours in UTC).
    pub days: i32,
    /// Hours.
    pub hours: i32,
    /// Minutes.
    pub minutes: i32,
    /// Whole seconds.
    pub seconds: i32,
    /// Milliseconds (the fraction of "PT1.5S").
    pub millis: i32,
}

impl Period {
    /// Parses an ISO 8601 period such as "P1D", "PT10M", "pt0.5s" or "P1Y2M3W4DT5H6M7.5S".
    pub fn parse(s: &str) -> Result<Self, TimeError> {
        parse_period(s).map_err(|reason| TimeError::InvalidPeriod { value: echo(s), reason })
    }

    /// `t + self`: years then months are added on the UTC calendar with the day of month clamped
    /// like Joda (2013-01-31 + P1M = 2013-02-28), the rest as fixed durations. Saturates.
    pub fn add_to(&self, t: Millis) -> Millis {
        self.apply(t, 1)
    }

    /// `t - self`, with every field subtracted in the same order and clamping as [`Self::add_to`]
    /// (so it is not always the exact inverse: 2013-03-31 - P1M = 2013-02-28).
    pub fn subtract_from(&self, t: Millis) -> Millis {
        self.apply(t, -1)
    }

    fn apply(&self, t: Millis, sign: i64) -> Millis {
        // Joda adds field by field, largest first: years and months separately matters
        // (2012-02-29 + P1Y1M = 2013-03-28, not 2013-03-29).
        let t = add_months(t, i64::from(self.years) * 12 * sign);
        let t = add_months(t, i64::from(self.months) * sign);
        t.saturating_add(self.fixed_part_ms() * sign)
    }

    /// Weeks through millis as a duration; cannot overflow i64 given i32 fields.
    fn fixed_part_ms(&self) -> i64 {
        i64::from(self.weeks) * WEEK
            + i64::from(self.days) * DAY
            + i64::from(self.hours) * HOUR
            + i64::from(self.minutes) * MINUTE
            + i64::from(self.seconds) * SECOND
            + i64::from(self.millis)
    }

    /// The period's length in millis, or `None` if years or months are nonzero (their length
    /// depends on where in the calendar they are applied).
    pub fn fixed_duration_ms(&self) -> Option<i64> {
        (self.years == 0 && self.months == 0).then(|| self.fixed_part_ms())
    }
}

impl fmt::Display for Period {
    /// Canonical ISO form with zero fields left out: "PT10M", "P1D", "PT0.500S", "PT0S".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("P")?;
        let date = [(self.years, 'Y'), (self.months, 'M'), (self.weeks, 'W'), (self.days, 'D')];
        for (v, unit) in date {
            if v != 0 {
                write!(f, "{v}{unit}")?;
            }
        }
        let sec_ms = i64::from(self.seconds) * SECOND + i64::from(self.millis);
        let has_time = self.hours != 0 || self.minutes != 0 || sec_ms != 0;
        if has_time {
            f.write_str("T")?;
            if self.hours != 0 {
                write!(f, "{}H", self.hours)?;
            }
            if self.minutes != 0 {
                write!(f, "{}M", self.minutes)?;
            }
            if sec_ms != 0 {
                let sign = if sec_ms < 0 { "-" } else { "" };
                let abs = sec_ms.unsigned_abs();
                let (whole, frac) = (abs / 1000, abs % 1000);
                write!(f, "{sign}{whole}")?;
                if frac != 0 {
                    write!(f, ".{frac:03}")?;
                }
                f.write_str("S")?;
            }
        } else if date.iter().all(|(v, _)| *v == 0) {
            // Joda's spelling of the zero period.
            f.write_str("T0S")?;
        }
        Ok(())
    }
}

impl FromStr for Period {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, TimeError> {
        Self::parse(s)
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(ParseVisitor::new("an ISO 8601 period string such as \"PT1H\""))
    }
}

const PERIOD_EXAMPLES: &str = "(e.g. \"P1D\", \"PT1H\", \"P1Y2M3W4DT5H6M7.5S\")";

/// Period grammar; the error is the reason only, the caller adds the value.
fn parse_period(s: &str) -> Result<Period, String> {
    let b = s.as_bytes();
    if !matches!(b.first(), Some(b'P' | b'p')) {
        return Err(format!("expected it to start with \"P\" {PERIOD_EXAMPLES}"));
    }
    let char_at = |i: usize| s.get(i..).and_then(|r| r.chars().next()).unwrap_or('?');
    let mut p = Period::default();
    let mut i = 1;
    let mut in_time = false;
    let mut last_rank = -1i32;
    let mut components = 0;
    while i < b.len() {
        if matches!(b[i], b'T' | b't') {
            if in_time {
                return Err(format!(
                    "'T' at position {i} is repeated (expected a single 'T' before the time part)"
                ));
            }
            in_time = true;
            i += 1;
            if i == b.len() {
                return Err("nothing follows 'T' (expected at least one of H, M, S after it)".into());
            }
            continue;
        }
        let num_start = i;
        let neg = b[i] == b'-';
        if neg {
            i += 1;
        }
        let digits_start = i;
        let mut v: i64 = 0;
        while let Some(&d) = b.get(i)
            && d.is_ascii_digit()
        {
            v = v * 10 + i64::from(d - b'0');
            if v > i64::from(i32::MAX) + 1 {
                return Err(format!(
                    "the number at position {num_start} is too large (expected at most {})",
                    i32::MAX
                ));
            }
            i += 1;
        }
        if i == digits_start {
            return Err(match b.get(i) {
                Some(_) => {
                    format!("expected a number at position {i} but found {:?} {PERIOD_EXAMPLES}", char_at(i))
                }
                None => format!("expected a number at position {i} {PERIOD_EXAMPLES}"),
            });
        }
        let mut frac_ms: i64 = 0;
        let mut has_frac = false;
        if matches!(b.get(i), Some(b'.' | b',')) {
            has_frac = true;
            i += 1;
            let frac_start = i;
            while let Some(&d) = b.get(i)
                && d.is_ascii_digit()
            {
                let n = i - frac_start;
                if n < 3 {
                    frac_ms += i64::from(d - b'0') * [100, 10, 1][n];
                } else if n >= 9 {
                    return Err(format!("the fraction at position {frac_start} has more than 9 digits"));
                }
                i += 1;
            }
            if i == frac_start {
                return Err(format!("expected a digit after the decimal point at position {i}"));
            }
        }
        let Some(&designator) = b.get(i) else {
            return Err(format!(
                "the number at position {num_start} has no designator (expected one of Y, M, W, D, or H, M, S after 'T')"
            ));
        };
        let rank = match (in_time, designator.to_ascii_uppercase()) {
            (false, b'Y') => 0,
            (false, b'M') => 1,
            (false, b'W') => 2,
            (false, b'D') => 3,
            (true, b'H') => 4,
            (true, b'M') => 5,
            (true, b'S') => 6,
            (false, b'H' | b'S') => {
                return Err(format!(
                    "{:?} at position {i} is a time designator (expected it after 'T', e.g. \"PT1H\")",
                    char_at(i)
                ));
            }
            (true, b'Y' | b'W' | b'D') => {
                return Err(format!(
                    "{:?} at position {i} is a date designator (expected it before 'T', e.g. \"P1DT1H\")",
                    char_at(i)
                ));
            }
            _ => {
                return Err(format!(
                    "unexpected {:?} at position {i} (expected one of Y, M, W, D, or H, M, S after 'T')",
                    char_at(i)
                ));
            }
        };
        if rank <= last_rank {
            return Err(format!(
                "{:?} at position {i} is repeated or out of order (expected the order Y M W D T H M S)",
                char_at(i)
            ));
        }
        if has_frac && rank != 6 {
            return Err(format!(
                "{:?} at position {i} has a fraction (expected fractions on seconds only, e.g. \"PT0.5S\")",
                char_at(i)
            ));
        }
        let signed = if neg { -v } else { v };
        let value = i32::try_from(signed).map_err(|_| {
            format!("the number at position {num_start} is too large (expected at most {})", i32::MAX)
        })?;
        match rank {
            0 => p.years = value,
            1 => p.months = value,
            2 => p.weeks = value,
            3 => p.days = value,
            4 => p.hours = value,
            5 => p.minutes = value,
            _ => {
                p.seconds = value;
                // Bounded by 999, so the cast is exact.
                p.millis = (if neg { -frac_ms } else { frac_ms }) as i32;
            }
        }
        last_rank = rank;
        components += 1;
        i += 1;
    }
    if components == 0 {
        return Err(format!("it has no components after \"P\" (expected at least one) {PERIOD_EXAMPLES}"));
    }
    Ok(p)
}

// ---------------------------------------------------------------------------------------------
// ISO 8601 formatting and parsing
// ---------------------------------------------------------------------------------------------

/// "2013-08-31T01:02:33.000Z": always 3-digit millis and Z. Years outside 0000..=9999 are
/// written chrono-style with a sign and at least 4 digits ("+10000-01-01T…", "-0001-01-01T…"),
/// which [`parse_iso`] reads back.
pub fn format_iso(t: Millis) -> String {
    let mut s = String::with_capacity(24);
    // Writing to a String cannot fail.
    let _ = write_iso(&mut s, t);
    s
}

fn write_iso<W: fmt::Write>(w: &mut W, t: Millis) -> fmt::Result {
    let (y, mo, d) = civil_from_days(t.div_euclid(DAY));
    // In 0..DAY, so every component below fits u32.
    let ms = t.rem_euclid(DAY) as u32;
    // Filled into a byte buffer and written once: formatting runs per segment and per log line,
    // and char-at-a-time writes through `fmt::Write` cost several times more.
    let mut buf = *b"0000-00-00T00:00:00.000Z";
    put_digits(&mut buf[5..7], mo);
    put_digits(&mut buf[8..10], d);
    put_digits(&mut buf[11..13], ms / 3_600_000);
    put_digits(&mut buf[14..16], ms / 60_000 % 60);
    put_digits(&mut buf[17..19], ms / 1000 % 60);
    put_digits(&mut buf[20..23], ms % 1000);
    let rest = if (0..=9999).contains(&y) {
        put_digits(&mut buf[..4], y as u32);
        &buf[..]
    } else {
        write!(w, "{y:+05}")?;
        &buf[4..]
    };
    // Always ASCII; mapping the impossible error keeps this free of panic paths.
    w.write_str(std::str::from_utf8(rest).map_err(|_| fmt::Error)?)
}

/// Writes the low `out.len()` decimal digits of `v` into `out`, zero-padded.
#[inline]
fn put_digits(out: &mut [u8], mut v: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Parses the ISO 8601 forms Druid specs use: "2013-08-31", "2013-08-31T01",
/// "2013-08-31T01:02", "2013-08-31T01:02:33", a fraction of 1-9 digits after the seconds (".5",
/// ",123"; truncated to millis), then "Z" or an offset ("+05:30", "-0800", "+05"); no zone = UTC.
/// Also "2013" and "2013-08" (Joda's partial dates) and signed extended years ("+10000",
/// "-0001") as written by [`format_iso`]. The separator is strictly 'T' ('t' and 'z' are fine);
/// [`TimestampFormat::Auto`] additionally accepts a space, as Druid's auto format does.
pub fn parse_iso(s: &str) -> Result<Millis, TimeError> {
    parse_iso_bytes(s.as_bytes(), false).map_err(|f| ts_error(s, "iso", f))
}

/// Why a hot-path parse failed. Kept `Copy` and allocation-free; turned into a message (which
/// needs the input) only when the caller reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail<'p> {
    /// Something else than `expected` at byte `pos`.
    Unexpected { pos: usize, expected: &'static str },
    /// A pattern literal did not match at byte `pos`.
    Literal { pos: usize, literal: &'p str },
    /// A field value outside its range.
    Range { field: &'static str, value: i64, min: i64, max: i64 },
    /// A day of month past the month's end.
    Day { year: i64, month: u32, day: u32, max: u32 },
    /// The instant does not fit i64 millis.
    Overflow,
    /// A JSON number given to a string-only format.
    NumberForStringFormat,
    /// A float that is NaN or infinite.
    NotFinite,
}

impl Fail<'_> {
    fn describe(&self, input: &str) -> String {
        let found = |pos: usize| match input.get(pos..).and_then(|r| r.chars().next()) {
            Some(c) => format!("unexpected {c:?} at position {pos}"),
            None if pos >= input.len() => format!("unexpected end of input at position {pos}"),
            None => format!("unexpected byte at position {pos}"),
        };
        match *self {
            Fail::Unexpected { pos, expected } => format!("{} (expected {expected})", found(pos)),
            Fail::Literal { pos, literal } => format!("{} (expected {literal:?})", found(pos)),
            Fail::Range { field, value, min, max } => {
                format!("{field} {value} is out of range (expected {min}-{max})")
            }
            Fail::Day { year, month, day, max } => {
                format!("day {day} is out of range for {year:04}-{month:02} (expected 1-{max})")
            }
            Fail::Overflow => "it is outside the representable range (expected an instant within \
                               about 292 million years of 1970)"
                .into(),
            Fail::NumberForStringFormat => "a number cannot be read by this format (expected a \
                                            string)"
                .into(),
            Fail::NotFinite => "it is not a finite number (expected a finite number)".into(),
        }
    }
}

/// The value as shown in error messages: cut at [`MAX_ECHO_CHARS`].
fn echo(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_owned(),
    }
}

fn ts_error(value: &str, format: &str, fail: Fail<'_>) -> TimeError {
    TimeError::InvalidTimestamp {
        value: echo(value),
        format: format.to_owned(),
        reason: fail.describe(value),
    }
}

/// A byte cursor for the hand-rolled parsers.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn new(b: &'a [u8]) -> Self {
        Cursor { b, pos: 0 }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `lit` if the input continues with it, ignoring ASCII case.
    #[inline]
    fn eat_ci(&mut self, lit: &[u8]) -> bool {
        match self.b.get(self.pos..self.pos + lit.len()) {
            // Exact first: most literals are punctuation, and a plain compare is cheaper.
            Some(s) if s == lit || s.eq_ignore_ascii_case(lit) => {
                self.pos += lit.len();
                true
            }
            _ => false,
        }
    }

    /// Exactly `n` (<= 9) digits.
    #[inline(always)]
    fn fixed<'p>(&mut self, n: usize, expected: &'static str) -> Result<u32, Fail<'p>> {
        let mut v = 0u32;
        for k in 0..n {
            match self.b.get(self.pos + k) {
                Some(&d) if d.is_ascii_digit() => v = v * 10 + u32::from(d - b'0'),
                _ => {
                    return Err(Fail::Unexpected { pos: self.pos + k, expected });
                }
            }
        }
        self.pos += n;
        Ok(v)
    }

    /// One to `max` (<= 9) digits, greedily; returns (value, digit count).
    #[inline]
    fn digits<'p>(&mut self, max: usize, expected: &'static str) -> Result<(u32, usize), Fail<'p>> {
        let start = self.pos;
        let mut v = 0u32;
        while self.pos - start < max
            && let Some(d) = self.peek()
            && d.is_ascii_digit()
        {
            v = v * 10 + u32::from(d - b'0');
            self.pos += 1;
        }
        if self.pos == start {
            return Err(Fail::Unexpected { pos: start, expected });
        }
        Ok((v, self.pos - start))
    }

    /// A fraction of a second of 1..=max digits, as millis (digits past the third truncated).
    #[inline]
    fn fraction_ms<'p>(&mut self, max: usize, expected: &'static str) -> Result<u32, Fail<'p>> {
        let start = self.pos;
        let mut ms = 0u32;
        while self.pos - start < max
            && let Some(d) = self.peek()
            && d.is_ascii_digit()
        {
            if self.pos - start < 3 {
                ms = ms * 10 + u32::from(d - b'0');
            }
            self.pos += 1;
        }
        match self.pos - start {
            0 => Err(Fail::Unexpected { pos: start, expected }),
            1 => Ok(ms * 100),
            2 => Ok(ms * 10),
            _ => Ok(ms),
        }
    }

    /// An optional zone: "Z"/"z" or a "+HH", "+HHMM", "+HH:MM" offset. `None` if neither starts
    /// here. Returns the offset in millis east of UTC.
    fn offset<'p>(&mut self) -> Result<Option<i64>, Fail<'p>> {
        match self.peek() {
            Some(b'Z' | b'z') => {
                self.pos += 1;
                Ok(Some(0))
            }
            Some(sign @ (b'+' | b'-')) => {
                self.pos += 1;
                let h = self.fixed(2, "a 2-digit offset hour")?;
                let m = if self.eat(b':') || self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.fixed(2, "2-digit offset minutes")?
                } else {
                    0
                };
                if h > 23 {
                    return Err(Fail::Range { field: "offset hour", value: i64::from(h), min: 0, max: 23 });
                }
                if m > 59 {
                    return Err(Fail::Range { field: "offset minute", value: i64::from(m), min: 0, max: 59 });
                }
                let v = i64::from(h) * HOUR + i64::from(m) * MINUTE;
                Ok(Some(if sign == b'-' { -v } else { v }))
            }
            _ => Ok(None),
        }
    }
}

/// Validates the fields and converts them to UTC millis.
#[allow(clippy::too_many_arguments)]
#[inline]
fn build_millis<'p>(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    milli: u32,
    offset_ms: i64,
) -> Result<Millis, Fail<'p>> {
    let range = |field, value: u32, min, max| {
        if (min..=max).contains(&i64::from(value)) {
            Ok(())
        } else {
            Err(Fail::Range { field, value: i64::from(value), min, max })
        }
    };
    range("month", month, 1, 12)?;
    let max = days_in_month(year, month);
    if day < 1 || day > max {
        return Err(Fail::Day { year, month, day, max });
    }
    range("hour", hour, 0, 23)?;
    range("minute", minute, 0, 59)?;
    range("second", second, 0, 59)?;
    let tod =
        i64::from(hour) * HOUR + i64::from(minute) * MINUTE + i64::from(second) * SECOND + i64::from(milli)
            - offset_ms;
    // In i128 because the first and last days in range overflow i64 at midnight even though
    // their later or earlier instants fit.
    let t = i128::from(days_from_civil(year, month, day)) * i128::from(DAY) + i128::from(tod);
    i64::try_from(t).map_err(|_| Fail::Overflow)
}

/// Two ASCII digits as a number, if both are digits.
#[inline(always)]
fn two_digits(hi: u8, lo: u8) -> Option<u32> {
    let (h, l) = (hi.wrapping_sub(b'0'), lo.wrapping_sub(b'0'));
    (h < 10 && l < 10).then_some(u32::from(h) * 10 + u32::from(l))
}

/// The ISO parser behind [`parse_iso`]; `lenient` adds Druid auto's extras (a space instead of
/// 'T', and " UTC"/" GMT"/" Z"/" +08:00" after the time).
#[inline]
fn parse_iso_bytes<'p>(b: &[u8], lenient: bool) -> Result<Millis, Fail<'p>> {
    // Fast path for the shape nearly every event has, a full "YYYY-MM-DDTHH:MM:SS" head: one
    // bounds check and branch-light digit checks instead of a field-by-field walk. Anything else
    // (including every error) falls through to the general parser below.
    if let Some(&[y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1, sep, h0, h1, b':', n0, n1, b':', s0, s1]) =
        b.get(..19)
        && (matches!(sep, b'T' | b't') || (lenient && sep == b' '))
        && let (Some(yh), Some(yl), Some(month), Some(day)) =
            (two_digits(y0, y1), two_digits(y2, y3), two_digits(m0, m1), two_digits(d0, d1))
        && let (Some(hour), Some(minute), Some(second)) =
            (two_digits(h0, h1), two_digits(n0, n1), two_digits(s0, s1))
    {
        let mut c = Cursor { b, pos: 19 };
        let date = (i64::from(yh * 100 + yl), month, day);
        return iso_after_seconds(&mut c, lenient, date, (hour, minute, second));
    }

    let mut c = Cursor::new(b);
    let year = match c.peek() {
        Some(sign @ (b'+' | b'-')) => {
            c.pos += 1;
            let (v, n) = c.digits(9, "year digits after the sign")?;
            if n < 4 {
                return Err(Fail::Unexpected { pos: c.pos, expected: "at least 4 year digits" });
            }
            if sign == b'-' { -i64::from(v) } else { i64::from(v) }
        }
        _ => i64::from(c.fixed(4, "a 4-digit year")?),
    };
    let mut expected = "'-' or end of input";
    let (mut month, mut day) = (1, 1);
    let (mut hour, mut minute, mut offset) = (0, 0, 0);
    if c.eat(b'-') {
        month = c.fixed(2, "a 2-digit month")?;
        if c.eat(b'-') {
            day = c.fixed(2, "a 2-digit day")?;
            expected = if lenient { "'T', ' ' or end of input" } else { "'T' or end of input" };
            if matches!(c.peek(), Some(b'T' | b't')) || (lenient && c.peek() == Some(b' ')) {
                c.pos += 1;
                hour = c.fixed(2, "a 2-digit hour")?;
                expected = "':', a zone or end of input";
                if c.eat(b':') {
                    minute = c.fixed(2, "2-digit minutes")?;
                    if c.eat(b':') {
                        let second = c.fixed(2, "2-digit seconds")?;
                        let date = (year, month, day);
                        return iso_after_seconds(&mut c, lenient, date, (hour, minute, second));
                    }
                }
                if let Some(o) = iso_zone(&mut c, lenient)? {
                    offset = o;
                    expected = "end of input";
                }
            }
        }
    }
    if !c.at_end() {
        return Err(Fail::Unexpected { pos: c.pos, expected });
    }
    build_millis(year, month, day, hour, minute, 0, 0, offset)
}

/// The rest of an ISO datetime after its seconds: an optional fraction, an optional zone, end.
#[inline(always)]
fn iso_after_seconds<'p>(
    c: &mut Cursor<'_>,
    lenient: bool,
    (year, month, day): (i64, u32, u32),
    (hour, minute, second): (u32, u32, u32),
) -> Result<Millis, Fail<'p>> {
    if c.at_end() {
        return build_millis(year, month, day, hour, minute, second, 0, 0);
    }
    let mut expected = "'.', a zone or end of input";
    let mut milli = 0;
    if matches!(c.peek(), Some(b'.' | b',')) {
        c.pos += 1;
        milli = c.fraction_ms(9, "fraction digits")?;
        expected = "a zone or end of input";
    }
    let mut offset = 0;
    if let Some(o) = iso_zone(c, lenient)? {
        offset = o;
        expected = "end of input";
    }
    if !c.at_end() {
        return Err(Fail::Unexpected { pos: c.pos, expected });
    }
    build_millis(year, month, day, hour, minute, second, milli, offset)
}

/// An optional zone after an ISO time, in millis east of UTC. Lenient (Druid auto) also takes
/// it after one space, plus the names "UTC" and "GMT" there.
#[inline]
fn iso_zone<'p>(c: &mut Cursor<'_>, lenient: bool) -> Result<Option<i64>, Fail<'p>> {
    if lenient && c.peek() == Some(b' ') {
        let space = c.pos;
        c.pos += 1;
        if c.eat_ci(b"UTC") || c.eat_ci(b"GMT") {
            return Ok(Some(0));
        }
        let zone = c.offset()?;
        if zone.is_none() {
            // Not a zone after all: point any error at the space itself.
            c.pos = space;
        }
        return Ok(zone);
    }
    c.offset()
}

/// A decimal string ("-12", "1377910953.123") times 10^`shift`, floored to an integer. Exact:
/// the digits are kept in an i128, never a float.
#[inline]
fn parse_scaled_decimal<'p>(b: &[u8], shift: i32) -> Result<Millis, Fail<'p>> {
    // Fast path for the common plain integer: up to 18 digits cannot overflow an i64.
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if (1..=18).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) {
        let magnitude = digits.iter().fold(0i64, |v, &d| v * 10 + i64::from(d - b'0'));
        let v = if digits.len() == b.len() { magnitude } else { -magnitude };
        let scale = 10i64.pow(shift.unsigned_abs());
        return if shift >= 0 { v.checked_mul(scale).ok_or(Fail::Overflow) } else { Ok(v.div_euclid(scale)) };
    }
    let neg = b.first() == Some(&b'-');
    let mut i = usize::from(neg);
    let mut mant: i128 = 0;
    let int_start = i;
    while let Some(&d) = b.get(i)
        && d.is_ascii_digit()
    {
        mant = mant * 10 + i128::from(d - b'0');
        // Far past i64 in any unit; stopping here keeps the i128 from overflowing.
        if mant > 100_000_000_000_000_000_000 {
            return Err(Fail::Overflow);
        }
        i += 1;
    }
    if i == int_start {
        return Err(Fail::Unexpected { pos: i, expected: "a digit" });
    }
    let mut frac_digits = 0i32;
    // Digits past the 17th are dropped (they cannot matter at millisecond precision) but a
    // nonzero one still pushes a negative value down when flooring.
    let mut dropped_nonzero = false;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while let Some(&d) = b.get(i)
            && d.is_ascii_digit()
        {
            if frac_digits < 17 {
                mant = mant * 10 + i128::from(d - b'0');
                frac_digits += 1;
            } else if d != b'0' {
                dropped_nonzero = true;
            }
            i += 1;
        }
        if i == frac_start {
            return Err(Fail::Unexpected { pos: i, expected: "a digit after '.'" });
        }
    }
    if i != b.len() {
        return Err(Fail::Unexpected { pos: i, expected: "a digit, '.' or end of input" });
    }
    let v = if neg { -mant } else { mant };
    let exp = shift - frac_digits;
    let scaled = if exp >= 0 {
        v.checked_mul(10i128.pow(exp.unsigned_abs())).ok_or(Fail::Overflow)?
    } else {
        let p = 10i128.pow(exp.unsigned_abs());
        let q = v.div_euclid(p);
        if neg && dropped_nonzero && v.rem_euclid(p) == 0 { q - 1 } else { q }
    };
    i64::try_from(scaled).map_err(|_| Fail::Overflow)
}

/// Druid auto's test for "this string is epoch millis": optional '-', then only digits.
#[inline]
fn is_integer_string(b: &[u8]) -> bool {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

// ---------------------------------------------------------------------------------------------
// Timestamp formats
// ---------------------------------------------------------------------------------------------

/// Druid timestampSpec formats.
#[derive(Debug, Clone, PartialEq)]
pub enum TimestampFormat {
    /// ISO 8601 (with a space allowed instead of 'T'), or epoch millis if the value is an integer.
    Auto,
    /// ISO 8601 only, see [`parse_iso`].
    Iso,
    /// Epoch milliseconds.
    Millis,
    /// Epoch seconds.
    Posix,
    /// Epoch microseconds (floored to millis).
    Micro,
    /// Epoch nanoseconds (floored to millis).
    Nano,
    /// A Joda-style pattern.
    Pattern(JodaPattern),
}

impl TimestampFormat {
    /// "auto","iso","millis","posix","micro","nano" (case-insensitive), anything else is a
    /// Joda-style pattern such as "yyyy-MM-dd HH:mm:ss" or "dd/MMM/yyyy:HH:mm:ss Z"; an invalid
    /// pattern is an error naming it.
    pub fn parse(s: &str) -> Result<Self, TimeError> {
        const NAMED: [(&str, TimestampFormat); 6] = [
            ("auto", TimestampFormat::Auto),
            ("iso", TimestampFormat::Iso),
            ("millis", TimestampFormat::Millis),
            ("posix", TimestampFormat::Posix),
            ("micro", TimestampFormat::Micro),
            ("nano", TimestampFormat::Nano),
        ];
        for (name, format) in NAMED {
            if name.eq_ignore_ascii_case(s) {
                return Ok(format);
            }
        }
        JodaPattern::compile(s).map(TimestampFormat::Pattern)
    }

    /// The format's name: the lowercase keyword, or the pattern as written.
    pub fn name(&self) -> String {
        self.name_str().to_owned()
    }

    fn name_str(&self) -> &str {
        match self {
            TimestampFormat::Auto => "auto",
            TimestampFormat::Iso => "iso",
            TimestampFormat::Millis => "millis",
            TimestampFormat::Posix => "posix",
            TimestampFormat::Micro => "micro",
            TimestampFormat::Nano => "nano",
            TimestampFormat::Pattern(p) => p.as_str(),
        }
    }

    /// Parse a JSON string value. Druid semantics: auto = ISO, or if the string is all digits
    /// (optional leading '-'), millis. millis/posix/micro/nano accept numeric strings (a decimal
    /// fraction is allowed and floored to millis, e.g. posix "1377910953.5"). Allocation-free
    /// unless it fails.
    pub fn parse_str(&self, s: &str) -> Result<Millis, TimeError> {
        let b = s.as_bytes();
        let result = match self {
            TimestampFormat::Auto => {
                if is_integer_string(b) {
                    parse_scaled_decimal(b, 0)
                } else {
                    parse_iso_bytes(b, true)
                }
            }
            TimestampFormat::Iso => parse_iso_bytes(b, false),
            TimestampFormat::Millis => parse_scaled_decimal(b, 0),
            TimestampFormat::Posix => parse_scaled_decimal(b, 3),
            TimestampFormat::Micro => parse_scaled_decimal(b, -3),
            TimestampFormat::Nano => parse_scaled_decimal(b, -6),
            TimestampFormat::Pattern(p) => p.parse_bytes(b),
        };
        result.map_err(|f| ts_error(s, self.name_str(), f))
    }

    /// Parse a JSON number. auto/millis: millis; posix: seconds; micro/nano floored to millis;
    /// iso/pattern: error naming value and format.
    pub fn parse_i64(&self, v: i64) -> Result<Millis, TimeError> {
        let result = match self {
            TimestampFormat::Auto | TimestampFormat::Millis => Ok(v),
            TimestampFormat::Posix => v.checked_mul(SECOND).ok_or(Fail::Overflow),
            TimestampFormat::Micro => Ok(v.div_euclid(1_000)),
            TimestampFormat::Nano => Ok(v.div_euclid(1_000_000)),
            TimestampFormat::Iso | TimestampFormat::Pattern(_) => Err(Fail::NumberForStringFormat),
        };
        result.map_err(|f| ts_error(&v.to_string(), self.name_str(), f))
    }

    /// Parse a JSON number. auto/millis: millis; posix: seconds (fractions allowed, 1.5 ->
    /// 1500); micro/nano; all floored to millis; iso/pattern: error naming value and format.
    pub fn parse_f64(&self, v: f64) -> Result<Millis, TimeError> {
        let scaled = match self {
            TimestampFormat::Auto | TimestampFormat::Millis => Ok(v),
            TimestampFormat::Posix => Ok(v * 1e3),
            TimestampFormat::Micro => Ok(v / 1e3),
            TimestampFormat::Nano => Ok(v / 1e6),
            TimestampFormat::Iso | TimestampFormat::Pattern(_) => Err(Fail::NumberForStringFormat),
        };
        scaled.and_then(float_to_millis).map_err(|f| ts_error(&v.to_string(), self.name_str(), f))
    }
}

/// Floors a float number of millis, but snaps to the nearest integer when it is within rounding
/// error of one: 1377910953.123 seconds times 1000 lands a hair below ...123, and flooring that
/// would lose a millisecond the writer clearly meant.
fn float_to_millis<'p>(x: f64) -> Result<Millis, Fail<'p>> {
    if !x.is_finite() {
        return Err(Fail::NotFinite);
    }
    let nearest = x.round();
    let snapped =
        if (x - nearest).abs() <= nearest.abs().max(1.0) * 4.0 * f64::EPSILON { nearest } else { x.floor() };
    // -2^63 is exactly representable; 2^63 is the first float past i64::MAX.
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&snapped) {
        Ok(snapped as i64)
    } else {
        Err(Fail::Overflow)
    }
}

impl FromStr for TimestampFormat {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, TimeError> {
        Self::parse(s)
    }
}

impl Serialize for TimestampFormat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name_str())
    }
}

impl<'de> Deserialize<'de> for TimestampFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(ParseVisitor::new(
            "a timestamp format such as \"auto\" or \"yyyy-MM-dd HH:mm:ss\"",
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Joda patterns
// ---------------------------------------------------------------------------------------------

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAY_NAMES: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

const PATTERN_HELP: &str = "expected auto, iso, millis, posix, micro, nano, or a Joda pattern \
                            using y M d H h m s S a Z E and 'quoted' literals";

/// A compiled Joda-time pattern. Tokens: yyyy yy MM M MMM (Jan..Dec, case-insensitive) MMMM (full
/// names) dd d HH H hh h (with a/aa AM/PM) mm m ss s S..SSSSSSSSS (fraction), Z (+0800), ZZ
/// (+08:00), ZZZ/z not required (error), 'quoted literal', '' (a quote), EEE/EEEE (day names,
/// parsed and ignored); other non-letter chars literal. No zone in pattern = UTC.
///
/// Parsing follows Joda: numbers may have fewer digits than letters ("d" and "dd" both read
/// "5"), a year directly followed by another number reads at most as many digits as it has
/// letters ("yyyyMMdd"), literals and names match case-insensitively, Z and ZZ both accept
/// "+0800", "+08:00", "+08" and "Z", "yy" reads a two-digit year in the 100-year window from 80
/// years before to 20 years after the year the pattern was compiled (like Joda and
/// SimpleDateFormat), and missing fields default to 1970-01-01T00:00:00.000.
#[derive(Debug, Clone, PartialEq)]
pub struct JodaPattern {
    source: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(Box<str>),
    Year { max_digits: usize },
    TwoDigitYear { lenient: bool, pivot: i64 },
    Number { field: NumField, max_digits: usize },
    MonthName,
    DayName,
    Fraction { max_digits: usize },
    HalfDay,
    Offset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumField {
    Month,
    Day,
    Hour24,
    ClockHour12,
    Minute,
    Second,
}

/// A pattern token before lookahead is resolved.
enum RawToken {
    Field { letter: char, count: usize, pos: usize },
    Literal(String),
}

impl RawToken {
    /// Joda's `isNumericToken`: a field that reads digits.
    fn is_numeric(&self) -> bool {
        match self {
            RawToken::Field { letter: 'M', count, .. } => *count <= 2,
            RawToken::Field { letter, .. } => {
                matches!(letter, 'y' | 'Y' | 'd' | 'H' | 'h' | 'm' | 's' | 'S')
            }
            RawToken::Literal(_) => false,
        }
    }
}

impl JodaPattern {
    /// Compiles a pattern once, for any number of allocation-free [`Self::parse`] calls.
    pub fn compile(pattern: &str) -> Result<Self, TimeError> {
        let invalid = |reason: String| TimeError::InvalidPattern { pattern: echo(pattern), reason };
        if pattern.is_empty() {
            return Err(invalid(format!("it is empty ({PATTERN_HELP})")));
        }
        let raw = tokenize_pattern(pattern).map_err(invalid)?;
        if raw.iter().all(|t| matches!(t, RawToken::Literal(_))) {
            return Err(invalid(format!(
                "it has no date or time fields, so every value would parse to the same instant \
                 ({PATTERN_HELP})"
            )));
        }
        // Resolved once: `yy` windows around the current year, as Joda does at pattern creation.
        let pivot = civil_from_days(chrono::Utc::now().timestamp_millis().div_euclid(DAY)).0 - 30;
        let mut tokens = Vec::with_capacity(raw.len());
        for (i, tok) in raw.iter().enumerate() {
            let next_numeric = raw.get(i + 1).is_some_and(RawToken::is_numeric);
            let (letter, count, pos) = match tok {
                RawToken::Literal(s) => {
                    tokens.push(Token::Literal(s.as_str().into()));
                    continue;
                }
                RawToken::Field { letter, count, pos } => (*letter, *count, *pos),
            };
            let number = |field| Token::Number { field, max_digits: count.clamp(2, 9) };
            tokens.push(match letter {
                'y' | 'Y' if count == 2 => Token::TwoDigitYear { lenient: !next_numeric, pivot },
                'y' | 'Y' => Token::Year { max_digits: if next_numeric { count.min(9) } else { 9 } },
                'M' if count >= 3 => Token::MonthName,
                'M' => number(NumField::Month),
                'd' => number(NumField::Day),
                'H' => number(NumField::Hour24),
                'h' => number(NumField::ClockHour12),
                'm' => number(NumField::Minute),
                's' => number(NumField::Second),
                'S' => Token::Fraction { max_digits: count.min(9) },
                'a' => Token::HalfDay,
                'E' => Token::DayName,
                'Z' if count <= 2 => Token::Offset,
                'Z' => {
                    return Err(invalid(format!(
                        "zone ids ({}) at position {pos} are not supported (expected Z for \
                         +0800 or ZZ for +08:00)",
                        "Z".repeat(count)
                    )));
                }
                'z' => {
                    return Err(invalid(format!(
                        "zone names (z) at position {pos} are not supported (expected Z for \
                         +0800 or ZZ for +08:00)"
                    )));
                }
                other => {
                    return Err(invalid(format!(
                        "unsupported pattern letter '{other}' at position {pos} ({PATTERN_HELP})"
                    )));
                }
            });
        }
        Ok(JodaPattern { source: pattern.to_owned(), tokens })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Parses `s` against the pattern; the whole string must match.
    pub fn parse(&self, s: &str) -> Result<Millis, TimeError> {
        self.parse_bytes(s.as_bytes()).map_err(|f| ts_error(s, &self.source, f))
    }

    fn parse_bytes<'p>(&'p self, b: &[u8]) -> Result<Millis, Fail<'p>> {
        let mut c = Cursor::new(b);
        let mut year: i64 = 1970;
        let (mut month, mut day, mut hour, mut minute, mut second, mut milli) = (1, 1, 0, 0, 0, 0);
        let mut clock_hour: Option<u32> = None;
        let mut pm: Option<bool> = None;
        let mut offset: i64 = 0;
        for tok in &self.tokens {
            match tok {
                Token::Literal(lit) => {
                    if !c.eat_ci(lit.as_bytes()) {
                        return Err(Fail::Literal { pos: c.pos, literal: lit });
                    }
                }
                Token::Year { max_digits } => {
                    let sign = c.peek();
                    if matches!(sign, Some(b'+' | b'-')) {
                        c.pos += 1;
                    }
                    let (v, _) = c.digits(*max_digits, "year digits")?;
                    year = if sign == Some(b'-') { -i64::from(v) } else { i64::from(v) };
                }
                Token::TwoDigitYear { lenient, pivot } => {
                    year = if *lenient {
                        // Joda's lenient two-digit year: anything but exactly two unsigned digits
                        // is taken as a full year.
                        let sign = c.peek();
                        if matches!(sign, Some(b'+' | b'-')) {
                            c.pos += 1;
                        }
                        let (v, n) = c.digits(9, "year digits")?;
                        match sign {
                            Some(b'-') => -i64::from(v),
                            Some(b'+') => i64::from(v),
                            _ if n == 2 => two_digit_year(i64::from(v), *pivot),
                            _ => i64::from(v),
                        }
                    } else {
                        two_digit_year(i64::from(c.fixed(2, "a 2-digit year")?), *pivot)
                    };
                }
                Token::Number { field, max_digits } => {
                    let (expected, min, max) = match field {
                        NumField::Month => ("a month number", 1, 12),
                        NumField::Day => ("a day of month", 1, 31),
                        NumField::Hour24 => ("an hour (0-23)", 0, 23),
                        NumField::ClockHour12 => ("a clock hour (1-12)", 1, 12),
                        NumField::Minute => ("minutes", 0, 59),
                        NumField::Second => ("seconds", 0, 59),
                    };
                    let (v, _) = c.digits(*max_digits, expected)?;
                    if !(min..=max).contains(&v) {
                        return Err(Fail::Range {
                            field: match field {
                                NumField::Month => "month",
                                NumField::Day => "day",
                                NumField::Hour24 => "hour",
                                NumField::ClockHour12 => "clock hour",
                                NumField::Minute => "minute",
                                NumField::Second => "second",
                            },
                            value: i64::from(v),
                            min: i64::from(min),
                            max: i64::from(max),
                        });
                    }
                    match field {
                        NumField::Month => month = v,
                        NumField::Day => day = v,
                        NumField::Hour24 => hour = v,
                        NumField::ClockHour12 => clock_hour = Some(v),
                        NumField::Minute => minute = v,
                        NumField::Second => second = v,
                    }
                }
                Token::MonthName => {
                    month = match_name(&mut c, &MONTH_NAMES).ok_or(Fail::Unexpected {
                        pos: c.pos,
                        expected: "a month name such as \"Aug\" or \"August\"",
                    })? + 1;
                }
                Token::DayName => {
                    match_name(&mut c, &DAY_NAMES).ok_or(Fail::Unexpected {
                        pos: c.pos,
                        expected: "a day name such as \"Sat\" or \"Saturday\"",
                    })?;
                }
                Token::Fraction { max_digits } => {
                    milli = c.fraction_ms(*max_digits, "fraction-of-second digits")?;
                }
                Token::HalfDay => {
                    pm = Some(if c.eat_ci(b"AM") {
                        false
                    } else if c.eat_ci(b"PM") {
                        true
                    } else {
                        return Err(Fail::Unexpected { pos: c.pos, expected: "\"AM\" or \"PM\"" });
                    });
                }
                Token::Offset => {
                    offset = c.offset()?.ok_or(Fail::Unexpected {
                        pos: c.pos,
                        expected: "a zone offset such as \"+0800\", \"+08:00\" or \"Z\"",
                    })?;
                }
            }
        }
        if !c.at_end() {
            return Err(Fail::Unexpected { pos: c.pos, expected: "end of input" });
        }
        // 12 AM is midnight and 12 PM is noon; with H and a, the half-day wins as in Joda.
        let half = |h: u32, pm: bool| h % 12 + if pm { 12 } else { 0 };
        let hour = match (clock_hour, pm) {
            (Some(h), pm) => half(h, pm == Some(true)),
            (None, Some(pm)) => half(hour, pm),
            (None, None) => hour,
        };
        build_millis(year, month, day, hour, minute, second, milli, offset)
    }
}

impl fmt::Display for JodaPattern {
    /// The pattern as written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Splits a pattern into letter runs and literals (quoted or not), Joda's tokenizer rules.
fn tokenize_pattern(pattern: &str) -> Result<Vec<RawToken>, String> {
    fn push_literal(raw: &mut Vec<RawToken>, s: &str) {
        if let Some(RawToken::Literal(prev)) = raw.last_mut() {
            prev.push_str(s);
        } else {
            raw.push(RawToken::Literal(s.to_owned()));
        }
    }
    let chars: Vec<(usize, char)> = pattern.char_indices().collect();
    let mut raw = Vec::new();
    let mut k = 0;
    while k < chars.len() {
        let (pos, ch) = chars[k];
        if ch.is_ascii_alphabetic() {
            let count = chars[k..].iter().take_while(|(_, c)| *c == ch).count();
            raw.push(RawToken::Field { letter: ch, count, pos });
            k += count;
        } else if ch == '\'' {
            if chars.get(k + 1).is_some_and(|(_, c)| *c == '\'') {
                push_literal(&mut raw, "'");
                k += 2;
                continue;
            }
            let mut lit = String::new();
            k += 1;
            loop {
                match chars.get(k) {
                    None => {
                        return Err(format!(
                            "the quote at position {pos} is never closed (expected a closing ')"
                        ));
                    }
                    Some((_, '\'')) if chars.get(k + 1).is_some_and(|(_, c)| *c == '\'') => {
                        lit.push('\'');
                        k += 2;
                    }
                    Some((_, '\'')) => {
                        k += 1;
                        break;
                    }
                    Some((_, c)) => {
                        lit.push(*c);
                        k += 1;
                    }
                }
            }
            push_literal(&mut raw, &lit);
        } else {
            let mut buf = [0u8; 4];
            push_literal(&mut raw, ch.encode_utf8(&mut buf));
            k += 1;
        }
    }
    Ok(raw)
}

/// Matches a full name or its 3-letter abbreviation (case-insensitive, the full name when both
/// fit) and returns its index. The abbreviations are unique, so one pass decides.
#[inline]
fn match_name(c: &mut Cursor<'_>, names: &[&str]) -> Option<u32> {
    // `| 0x20` lowercases ASCII letters and maps no other byte onto one, so comparing these keys
    // is a case-insensitive compare of the abbreviations.
    let key = |b: &[u8]| u32::from_le_bytes([b[0] | 0x20, b[1] | 0x20, b[2] | 0x20, 0]);
    let head = key(c.b.get(c.pos..c.pos + 3)?);
    let i = names.iter().position(|name| key(name.as_bytes()) == head)?;
    if !c.eat_ci(names[i].as_bytes()) {
        c.pos += 3;
    }
    Some(i as u32)
}

/// Joda/SimpleDateFormat two-digit years: the year ending in `yy` within [pivot-50, pivot+49].
fn two_digit_year(yy: i64, pivot: i64) -> i64 {
    let low = pivot - 50;
    let y = low - low.rem_euclid(100) + yy;
    if y < low { y + 100 } else { y }
}

// ---------------------------------------------------------------------------------------------
// serde support: string values deserialized through our own parsers, so bad spec values carry
// our messages instead of serde's generic ones.
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct ParseVisitor<T> {
    expecting: &'static str,
    _out: PhantomData<T>,
}

impl<T> ParseVisitor<T> {
    fn new(expecting: &'static str) -> Self {
        ParseVisitor { expecting, _out: PhantomData }
    }
}

impl<T: FromStr<Err = TimeError>> Visitor<'_> for ParseVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn iso(s: &str) -> Millis {
        parse_iso(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn fmt(s: &str) -> TimestampFormat {
        TimestampFormat::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    // ----- calendar core -----

    #[test]
    fn civil_round_trip_and_known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
        for z in (-1_000_000..1_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert!(is_leap(2000) && is_leap(2012) && !is_leap(1900) && !is_leap(2100));
        assert_eq!(days_in_month(2012, 2), 29);
        assert_eq!(days_in_month(2013, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
    }

    // ----- granularity -----

    #[test]
    fn granularity_names_parse_case_insensitively() {
        assert_eq!(Granularity::ALL_NAMES.len(), Granularity::ALL.len());
        for (g, name) in Granularity::ALL.iter().zip(Granularity::ALL_NAMES) {
            assert_eq!(g.name(), *name);
            assert_eq!(Granularity::parse(name), Ok(*g));
            assert_eq!(Granularity::parse(&name.to_uppercase()), Ok(*g));
            assert_eq!(g.to_string(), *name);
        }
        assert_eq!(Granularity::parse("DAY"), Ok(Granularity::Day));
        assert_eq!(Granularity::parse("Fifteen_Minute"), Ok(Granularity::FifteenMinute));
        assert_eq!(
            Granularity::parse("DAYS").unwrap_err().to_string(),
            "unknown granularity \"DAYS\" (expected one of: none, second, minute, five_minute, \
             ten_minute, fifteen_minute, thirty_minute, hour, six_hour, eight_hour, day, week, \
             month, quarter, year, all)"
        );
        assert!(Granularity::parse("").is_err());
    }

    #[test]
    fn granularity_truncate_and_next_on_known_dates() {
        use Granularity as G;
        // (granularity, instant, expected truncate, expected next)
        let cases = [
            (G::Second, "2013-08-31T01:02:33.123Z", "2013-08-31T01:02:33Z", "2013-08-31T01:02:34Z"),
            (G::Minute, "2013-08-31T01:02:33.123Z", "2013-08-31T01:02Z", "2013-08-31T01:03Z"),
            (G::FiveMinute, "2013-08-31T01:07:33Z", "2013-08-31T01:05Z", "2013-08-31T01:10Z"),
            (G::TenMinute, "2013-08-31T01:17:33Z", "2013-08-31T01:10Z", "2013-08-31T01:20Z"),
            (G::FifteenMinute, "2013-08-31T01:47:33Z", "2013-08-31T01:45Z", "2013-08-31T02:00Z"),
            (G::ThirtyMinute, "2013-08-31T01:47:33Z", "2013-08-31T01:30Z", "2013-08-31T02:00Z"),
            (G::Hour, "2013-08-31T23:59:59.999Z", "2013-08-31T23Z", "2013-09-01T00Z"),
            (G::SixHour, "2013-08-31T13:02Z", "2013-08-31T12Z", "2013-08-31T18Z"),
            (G::SixHour, "2013-08-31T19:02Z", "2013-08-31T18Z", "2013-09-01T00Z"),
            (G::EightHour, "2013-08-31T13:02Z", "2013-08-31T08Z", "2013-08-31T16Z"),
            (G::EightHour, "2013-08-31T23:02Z", "2013-08-31T16Z", "2013-09-01T00Z"),
            (G::Day, "2013-08-31T01:02:33Z", "2013-08-31", "2013-09-01"),
            (G::Day, "2012-02-28T12:00Z", "2012-02-28", "2012-02-29"),
            (G::Day, "2012-02-29T12:00Z", "2012-02-29", "2012-03-01"),
            (G::Day, "2013-02-28T12:00Z", "2013-02-28", "2013-03-01"),
            // 2013-08-31 is a Saturday, 2013-09-01 a Sunday, 2013-09-02 a Monday.
            (G::Week, "2013-08-31T01:02:33Z", "2013-08-26", "2013-09-02"),
            (G::Week, "2013-09-01T23:59:59.999Z", "2013-08-26", "2013-09-02"),
            (G::Week, "2013-09-02T00:00Z", "2013-09-02", "2013-09-09"),
            (G::Week, "2013-12-31T10:00Z", "2013-12-30", "2014-01-06"),
            (G::Week, "1970-01-01T00:00Z", "1969-12-29", "1970-01-05"),
            (G::Month, "2013-08-31T01:02:33Z", "2013-08-01", "2013-09-01"),
            (G::Month, "2013-12-31T23:59:59.999Z", "2013-12-01", "2014-01-01"),
            (G::Month, "2012-02-29T12:00Z", "2012-02-01", "2012-03-01"),
            (G::Month, "2013-01-31T12:00Z", "2013-01-01", "2013-02-01"),
            (G::Quarter, "2013-08-31T01:02:33Z", "2013-07-01", "2013-10-01"),
            (G::Quarter, "2013-11-15T00:00Z", "2013-10-01", "2014-01-01"),
            (G::Quarter, "2013-03-31T23:59:59.999Z", "2013-01-01", "2013-04-01"),
            (G::Quarter, "2013-04-01T00:00Z", "2013-04-01", "2013-07-01"),
            (G::Year, "2013-08-31T01:02:33Z", "2013-01-01", "2014-01-01"),
            (G::Year, "2012-12-31T23:59:59.999Z", "2012-01-01", "2013-01-01"),
            (G::Year, "2000-02-29T00:00Z", "2000-01-01", "2001-01-01"),
            // Before 1970: 1969-12-31 is a Wednesday.
            (G::Second, "1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59Z", "1970-01-01"),
            (G::Minute, "1969-12-31T23:59:59.999Z", "1969-12-31T23:59Z", "1970-01-01"),
            (G::FiveMinute, "1969-12-31T23:59:59.999Z", "1969-12-31T23:55Z", "1970-01-01"),
            (G::TenMinute, "1969-12-31T23:59:59.999Z", "1969-12-31T23:50Z", "1970-01-01"),
            (G::FifteenMinute, "1969-12-31T23:59:59.999Z", "1969-12-31T23:45Z", "1970-01-01"),
            (G::ThirtyMinute, "1969-12-31T23:59:59.999Z", "1969-12-31T23:30Z", "1970-01-01"),
            (G::Hour, "1969-12-31T23:59:59.999Z", "1969-12-31T23Z", "1970-01-01"),
            (G::SixHour, "1969-12-31T23:59:59.999Z", "1969-12-31T18Z", "1970-01-01"),
            (G::EightHour, "1969-12-31T23:59:59.999Z", "1969-12-31T16Z", "1970-01-01"),
            (G::Day, "1969-12-31T23:59:59.999Z", "1969-12-31", "1970-01-01"),
            (G::Week, "1969-12-31T23:59:59.999Z", "1969-12-29", "1970-01-05"),
            (G::Month, "1969-12-31T23:59:59.999Z", "1969-12-01", "1970-01-01"),
            (G::Quarter, "1969-12-31T23:59:59.999Z", "1969-10-01", "1970-01-01"),
            (G::Year, "1969-12-31T23:59:59.999Z", "1969-01-01", "1970-01-01"),
            (G::Month, "1900-02-15T00:00Z", "1900-02-01", "1900-03-01"),
            (G::Day, "1900-02-28T05:00Z", "1900-02-28", "1900-03-01"),
            (G::Year, "0001-06-01T00:00Z", "0001-01-01", "0002-01-01"),
        ];
        for (g, t, trunc, next) in cases {
            let t = iso(t);
            assert_eq!(format_iso(g.truncate(t)), format_iso(iso(trunc)), "{g} truncate");
            assert_eq!(g.truncate(t), iso(trunc), "{g} truncate {t}");
            assert_eq!(g.next(g.truncate(t)), iso(next), "{g} next {t}");
            assert_eq!(g.next(t), iso(next), "{g} next of unaligned {t}");
            assert!(g.is_aligned(iso(trunc)), "{g} aligned");
        }
        assert_eq!(G::Second.truncate(-1), -1000);
        assert_eq!(G::Day.truncate(-1), -DAY);
        assert_eq!(G::Day.truncate(-DAY), -DAY);
    }

    #[test]
    fn granularity_none_and_all() {
        let t = iso("2013-08-31T01:02:33.123Z");
        assert_eq!(Granularity::None.truncate(t), t);
        assert_eq!(Granularity::None.next(t), t + 1);
        assert!(Granularity::None.is_aligned(t));
        assert_eq!(Granularity::All.truncate(t), i64::MIN);
        assert_eq!(Granularity::All.next(i64::MIN), i64::MAX);
        assert!(!Granularity::All.is_aligned(t));
        assert!(Granularity::All.is_aligned(i64::MIN));
        assert!(!Granularity::Day.is_aligned(t));
        assert!(!Granularity::Week.is_aligned(iso("2013-09-01")));
    }

    #[test]
    fn granularity_saturates_at_the_ends_of_time() {
        for g in Granularity::ALL {
            assert_eq!(g.truncate(i64::MIN), i64::MIN, "{g}");
            assert_eq!(g.next(g.truncate(i64::MAX)), i64::MAX, "{g}");
            assert_eq!(g.next(i64::MAX), i64::MAX, "{g}");
        }
    }

    #[test]
    fn buckets_cover_the_interval() {
        let iv = Interval::parse("2013-08-31T12/2013-09-02T01").unwrap();
        let days: Vec<String> = Granularity::Day.buckets(iv).map(|b| b.to_string()).collect();
        assert_eq!(
            days,
            [
                "2013-08-31T00:00:00.000Z/2013-09-01T00:00:00.000Z",
                "2013-09-01T00:00:00.000Z/2013-09-02T00:00:00.000Z",
                "2013-09-02T00:00:00.000Z/2013-09-03T00:00:00.000Z",
            ]
        );
        let q1 = Interval::parse("2013-01-15/2013-04-01").unwrap();
        let months: Vec<Interval> = Granularity::Month.buckets(q1).collect();
        assert_eq!(months.len(), 3);
        assert_eq!(months[1], Interval::parse("2013-02-01/2013-03-01").unwrap());
        assert_eq!(
            Granularity::All.buckets(q1).collect::<Vec<_>>(),
            [Interval { start: i64::MIN, end: i64::MAX }]
        );
        assert_eq!(Granularity::Year.buckets(q1).count(), 1);
        assert_eq!(Granularity::Hour.buckets(q1).count(), 76 * 24);
        let empty = Interval { start: 10, end: 10 };
        assert_eq!(Granularity::Day.buckets(empty).count(), 0);
        assert_eq!(Granularity::None.buckets(Interval { start: -2, end: 1 }).count(), 3);
    }

    proptest! {
        #[test]
        fn truncate_next_bracket_t(t in -400_000_000_000_000i64..400_000_000_000_000) {
            for g in Granularity::ALL {
                if g == Granularity::All {
                    continue;
                }
                let start = g.truncate(t);
                let next = g.next(start);
                prop_assert!(start <= t && t < next, "{} {} {} {}", g, t, start, next);
                prop_assert!(g.is_aligned(start));
                prop_assert!(g.is_aligned(next));
                prop_assert_eq!(g.truncate(next - 1), start);
                prop_assert_eq!(g.next(t), next);
            }
        }

        #[test]
        fn truncate_never_exceeds_t(t in any::<i64>()) {
            for g in Granularity::ALL {
                prop_assert!(g.truncate(t) <= t);
                prop_assert!(g.next(t) > t || t == i64::MAX);
            }
        }
    }

    // ----- ISO -----

    #[test]
    fn format_iso_known_values() {
        assert_eq!(format_iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_iso(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_iso(1_377_910_953_000), "2013-08-31T01:02:33.000Z");
        assert_eq!(format_iso(1_377_910_953_007), "2013-08-31T01:02:33.007Z");
        let y10000 = days_from_civil(10_000, 1, 1) * DAY;
        assert_eq!(format_iso(y10000), "+10000-01-01T00:00:00.000Z");
        let y_minus1 = days_from_civil(-1, 1, 1) * DAY;
        assert_eq!(format_iso(y_minus1), "-0001-01-01T00:00:00.000Z");
        assert_eq!(format_iso(days_from_civil(0, 1, 1) * DAY), "0000-01-01T00:00:00.000Z");
        for t in [i64::MIN, i64::MAX, y10000, y_minus1] {
            assert_eq!(parse_iso(&format_iso(t)), Ok(t), "{}", format_iso(t));
        }
    }

    #[test]
    fn parse_iso_partial_forms_and_zones() {
        let full = 1_377_910_953_000;
        assert_eq!(iso("2013-08-31T01:02:33Z"), full);
        assert_eq!(iso("2013-08-31T01:02:33"), full);
        assert_eq!(iso("2013-08-31t01:02:33z"), full);
        assert_eq!(iso("2013-08-31T01:02:33.000Z"), full);
        assert_eq!(iso("2013-08-31T01:02:33.5Z"), full + 500);
        assert_eq!(iso("2013-08-31T01:02:33.12Z"), full + 120);
        assert_eq!(iso("2013-08-31T01:02:33.123Z"), full + 123);
        assert_eq!(iso("2013-08-31T01:02:33,123Z"), full + 123);
        assert_eq!(iso("2013-08-31T01:02:33.123456789Z"), full + 123);
        assert_eq!(iso("2013-08-31"), full - 3_753_000);
        assert_eq!(iso("2013-08-31T01"), full - 153_000);
        assert_eq!(iso("2013-08-31T01:02"), full - 33_000);
        assert_eq!(iso("2013-08"), iso("2013-08-01"));
        assert_eq!(iso("2013"), iso("2013-01-01"));
        assert_eq!(iso("2013-08-31T06:32:33+05:30"), full);
        assert_eq!(iso("2013-08-31T06:32:33+0530"), full);
        assert_eq!(iso("2013-08-30T17:02:33-0800"), full);
        assert_eq!(iso("2013-08-30T17:02:33-08"), full);
        assert_eq!(iso("2013-08-31T01:02:33.123+00:00"), full + 123);
        assert_eq!(iso("1969-12-31T23:59:59.999Z"), -1);
        assert_eq!(iso("2012-02-29"), iso("2012-03-01") - DAY);
        assert_eq!(iso("2000-02-29"), iso("2000-03-01") - DAY);
        assert_eq!(iso("-0001-01-01"), days_from_civil(-1, 1, 1) * DAY);
        assert_eq!(iso("+10000-01-01"), days_from_civil(10_000, 1, 1) * DAY);
    }

    #[test]
    fn parse_iso_rejects_with_reasons() {
        let cases = [
            ("yesterday", "unexpected 'y' at position 0 (expected a 4-digit year)"),
            ("", "unexpected end of input at position 0 (expected a 4-digit year)"),
            ("2013-08-31 01:02:33", "unexpected ' ' at position 10 (expected 'T' or end of input)"),
            ("2013-13-01", "month 13 is out of range (expected 1-12)"),
            ("2013-00-01", "month 0 is out of range (expected 1-12)"),
            ("2013-02-29", "day 29 is out of range for 2013-02 (expected 1-28)"),
            ("1900-02-29", "day 29 is out of range for 1900-02 (expected 1-28)"),
            ("2013-04-31", "day 31 is out of range for 2013-04 (expected 1-30)"),
            ("2013-08-31T24:00", "hour 24 is out of range (expected 0-23)"),
            ("2013-08-31T01:60", "minute 60 is out of range (expected 0-59)"),
            ("2013-08-31T01:02:60", "second 60 is out of range (expected 0-59)"),
            ("2013-8-31", "(expected a 2-digit month)"),
            ("2013-08-31T1", "(expected a 2-digit hour)"),
            ("2013-08-31T01:02:33.", "(expected fraction digits)"),
            ("2013-08-31T01:02:33.1234567891", "(expected a zone or end of input)"),
            ("2013-08-31T01:02:33+5", "(expected a 2-digit offset hour)"),
            ("2013-08-31T01:02:33+24:00", "offset hour 24 is out of range"),
            ("2013-08-31T01:02:33Z ", "unexpected ' ' at position 20 (expected end of input)"),
            ("20130831", "unexpected '0' at position 4 (expected '-' or end of input)"),
            ("+999999999-01-01", "outside the representable range"),
            ("+12-01-01", "(expected at least 4 year digits)"),
        ];
        for (value, reason) in cases {
            let msg = parse_iso(value).unwrap_err().to_string();
            assert!(
                msg.starts_with(&format!("timestamp \"{value}\" does not match format \"iso\"")),
                "{msg}"
            );
            assert!(msg.contains(reason), "{value}: {msg}");
        }
    }

    #[test]
    fn error_values_are_cut_when_huge() {
        let huge = "x".repeat(10_000);
        let msg = parse_iso(&huge).unwrap_err().to_string();
        assert!(msg.len() < 500, "{}", msg.len());
        assert!(msg.contains("xxx..."));
    }

    proptest! {
        #[test]
        fn iso_round_trip_years_1_to_9999(
            t in days_from_civil(1, 1, 1) * DAY..days_from_civil(10_000, 1, 1) * DAY
        ) {
            let s = format_iso(t);
            prop_assert_eq!(s.len(), 24);
            prop_assert_eq!(parse_iso(&s), Ok(t));
            // Cross-check the hand-rolled calendar against chrono.
            let chrono_s = chrono::DateTime::from_timestamp_millis(t)
                .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            prop_assert_eq!(Some(s), chrono_s);
        }

        #[test]
        fn iso_round_trip_any_instant(t in any::<i64>()) {
            prop_assert_eq!(parse_iso(&format_iso(t)), Ok(t));
        }

        #[test]
        fn parse_iso_never_panics(s in "[-+0-9T:.,Zz ]{0,40}") {
            let _ = parse_iso(&s);
            let _ = TimestampFormat::Auto.parse_str(&s);
        }
    }

    // ----- timestamp formats -----

    #[test]
    fn timestamp_format_names() {
        for (name, expected) in [
            ("auto", TimestampFormat::Auto),
            ("AUTO", TimestampFormat::Auto),
            ("iso", TimestampFormat::Iso),
            ("Millis", TimestampFormat::Millis),
            ("posix", TimestampFormat::Posix),
            ("micro", TimestampFormat::Micro),
            ("NANO", TimestampFormat::Nano),
        ] {
            assert_eq!(fmt(name), expected);
            assert_eq!(fmt(name).name(), name.to_lowercase());
        }
        let p = fmt("yyyy-MM-dd HH:mm:ss");
        assert!(matches!(p, TimestampFormat::Pattern(_)));
        assert_eq!(p.name(), "yyyy-MM-dd HH:mm:ss");
    }

    #[test]
    fn auto_reads_iso_and_millis() {
        let t = 1_377_910_953_000;
        let auto = TimestampFormat::Auto;
        assert_eq!(auto.parse_str("2013-08-31T01:02:33Z"), Ok(t));
        assert_eq!(auto.parse_str("2013-08-31T01:02:33.000+00:00"), Ok(t));
        assert_eq!(auto.parse_str("1377910953000"), Ok(t));
        assert_eq!(auto.parse_str("-1000"), Ok(-1000));
        assert_eq!(auto.parse_str("2013"), Ok(2013), "all digits is millis, as in Druid");
        // Druid's auto parser also takes a space separator and a trailing zone.
        assert_eq!(auto.parse_str("2013-08-31 01:02:33"), Ok(t));
        assert_eq!(auto.parse_str("2013-08-31 01:02:33 UTC"), Ok(t));
        assert_eq!(auto.parse_str("2013-08-31 09:02:33 +08:00"), Ok(t));
        assert_eq!(auto.parse_str("2013-08-31 09:02:33+0800"), Ok(t));
        assert_eq!(auto.parse_i64(t), Ok(t));
        assert_eq!(auto.parse_f64(1_377_910_953_000.0), Ok(t));
        assert_eq!(auto.parse_f64(-1.5), Ok(-2));
        let err = auto.parse_str("yesterday").unwrap_err().to_string();
        assert!(err.starts_with("timestamp \"yesterday\" does not match format \"auto\""), "{err}");
        assert!(auto.parse_str("2013-08-31 01:02:33 ").is_err());
        assert!(auto.parse_str("99999999999999999999").is_err());
        assert!(TimestampFormat::Iso.parse_str("1377910953000").is_err());
    }

    #[test]
    fn numeric_formats() {
        let t = 1_377_910_953_000;
        let millis = TimestampFormat::Millis;
        assert_eq!(millis.parse_str("1377910953000"), Ok(t));
        assert_eq!(millis.parse_i64(t), Ok(t));
        assert_eq!(millis.parse_f64(1_377_910_953_000.0), Ok(t));

        let posix = TimestampFormat::Posix;
        assert_eq!(posix.parse_str("1377910953"), Ok(t));
        assert_eq!(posix.parse_str("1377910953.5"), Ok(t + 500));
        assert_eq!(posix.parse_str("1377910953.123456"), Ok(t + 123));
        assert_eq!(posix.parse_str("-1.5"), Ok(-1500));
        assert_eq!(posix.parse_str("-0.0001"), Ok(-1));
        assert_eq!(posix.parse_i64(1_377_910_953), Ok(t));
        assert_eq!(posix.parse_i64(-1), Ok(-1000));
        assert_eq!(posix.parse_f64(1_377_910_953.5), Ok(t + 500));
        assert_eq!(posix.parse_f64(1_377_910_953.123), Ok(t + 123));
        assert_eq!(posix.parse_f64(1.5), Ok(1500));

        let micro = TimestampFormat::Micro;
        assert_eq!(micro.parse_str("1377910953000000"), Ok(t));
        assert_eq!(micro.parse_str("1377910953123999"), Ok(t + 123));
        assert_eq!(micro.parse_i64(1_377_910_953_123_999), Ok(t + 123));
        assert_eq!(micro.parse_i64(-1), Ok(-1), "floored, not truncated toward zero");
        assert_eq!(micro.parse_f64(1_377_910_953_000_000.0), Ok(t));

        let nano = TimestampFormat::Nano;
        assert_eq!(nano.parse_str("1377910953000000000"), Ok(t));
        assert_eq!(nano.parse_i64(1_377_910_953_000_000_000), Ok(t));
        assert_eq!(nano.parse_i64(1_377_910_953_999_999_999), Ok(t + 999));
        assert_eq!(nano.parse_f64(1.377_910_953e18), Ok(t));
    }

    #[test]
    fn bad_values_name_the_value_and_the_format() {
        let cases: [(TimestampFormat, &str, &str); 6] = [
            (TimestampFormat::Millis, "abc", "millis"),
            (TimestampFormat::Millis, "12x", "millis"),
            (TimestampFormat::Posix, "1.2.3", "posix"),
            (TimestampFormat::Micro, "", "micro"),
            (TimestampFormat::Nano, "--5", "nano"),
            (fmt("yyyy-MM-dd"), "2013/08/31", "yyyy-MM-dd"),
        ];
        for (format, value, name) in cases {
            let msg = format.parse_str(value).unwrap_err().to_string();
            assert!(
                msg.starts_with(&format!("timestamp \"{value}\" does not match format \"{name}\": ")),
                "{msg}"
            );
        }
        let msg = TimestampFormat::Iso.parse_i64(1_377_910_953).unwrap_err().to_string();
        assert_eq!(
            msg,
            "timestamp \"1377910953\" does not match format \"iso\": a number cannot be read by \
             this format (expected a string)"
        );
        let msg = fmt("yyyy-MM-dd").parse_f64(1.5).unwrap_err().to_string();
        assert!(msg.contains("\"1.5\"") && msg.contains("\"yyyy-MM-dd\""), "{msg}");
        let msg = TimestampFormat::Posix.parse_i64(i64::MAX).unwrap_err().to_string();
        assert!(msg.contains(&i64::MAX.to_string()) && msg.contains("outside"), "{msg}");
        let msg = TimestampFormat::Millis.parse_f64(f64::NAN).unwrap_err().to_string();
        assert!(msg.contains("NaN") && msg.contains("finite"), "{msg}");
        assert!(TimestampFormat::Millis.parse_f64(1e19).is_err());
        assert!(TimestampFormat::Millis.parse_f64(f64::INFINITY).is_err());
        let msg = TimestampFormat::Millis.parse_str("99999999999999999999").unwrap_err();
        assert!(msg.to_string().contains("outside the representable range"), "{msg}");
    }

    proptest! {
        #[test]
        fn numeric_strings_read_like_numbers(v in any::<i64>()) {
            let formats = [
                TimestampFormat::Auto,
                TimestampFormat::Millis,
                TimestampFormat::Posix,
                TimestampFormat::Micro,
                TimestampFormat::Nano,
            ];
            for f in formats {
                prop_assert_eq!(f.parse_str(&v.to_string()), f.parse_i64(v));
            }
        }

        #[test]
        fn posix_decimal_strings_are_exact(secs in -10_000_000_000i64..10_000_000_000, ms in 0i64..1000) {
            let s = format!("{secs}.{ms:03}");
            let expected = if secs < 0 { secs * 1000 - ms } else { secs * 1000 + ms };
            prop_assert_eq!(TimestampFormat::Posix.parse_str(&s), Ok(expected));
        }
    }

    #[test]
    fn pattern_yyyy_mm_dd_hh_mm_ss() {
        let p = fmt("yyyy-MM-dd HH:mm:ss");
        assert_eq!(p.parse_str("2013-08-31 01:02:33"), Ok(1_377_910_953_000));
        assert_eq!(p.parse_str("2013-8-31 1:2:33"), Ok(1_377_910_953_000), "Joda is lenient on width");
        assert_eq!(p.parse_str("1969-12-31 23:59:59"), Ok(-1000));
        let msg = p.parse_str("2013-08-31T01:02:33").unwrap_err().to_string();
        assert_eq!(
            msg,
            "timestamp \"2013-08-31T01:02:33\" does not match format \"yyyy-MM-dd HH:mm:ss\": \
             unexpected 'T' at position 10 (expected \" \")"
        );
        let msg = p.parse_str("2013-02-30 00:00:00").unwrap_err().to_string();
        assert!(msg.contains("day 30 is out of range for 2013-02 (expected 1-28)"), "{msg}");
        let msg = p.parse_str("2013-08-31 25:00:00").unwrap_err().to_string();
        assert!(msg.contains("hour 25 is out of range (expected 0-23)"), "{msg}");
        assert!(p.parse_str("2013-08-31 01:02:33 ").is_err());
        assert!(p.parse_str("2013-08-31 01:02").is_err());
    }

    #[test]
    fn pattern_iso_like_with_fraction_and_colon_offset() {
        let p = fmt("yyyy-MM-dd'T'HH:mm:ss.SSSZZ");
        let t = 1_377_910_953_123;
        assert_eq!(p.parse_str("2013-08-31T01:02:33.123Z"), Ok(t));
        assert_eq!(p.parse_str("2013-08-31T09:02:33.123+08:00"), Ok(t));
        assert_eq!(p.parse_str("2013-08-30T17:02:33.123-08:00"), Ok(t));
        assert_eq!(p.parse_str("2013-08-30T17:02:33.123-0800"), Ok(t));
        assert_eq!(p.parse_str("2013-08-31t01:02:33.5z"), Ok(t - 123 + 500));
        let msg = p.parse_str("2013-08-31T01:02:33.123").unwrap_err().to_string();
        assert!(msg.contains("expected a zone offset"), "{msg}");
        assert!(p.parse_str("2013-08-31T01:02:33.1234Z").is_err(), "SSS reads at most 3 digits");
    }

    #[test]
    fn pattern_access_log() {
        let p = fmt("dd/MMM/yyyy:HH:mm:ss Z");
        let t = 1_377_910_953_000;
        assert_eq!(p.parse_str("31/Aug/2013:01:02:33 +0000"), Ok(t));
        assert_eq!(p.parse_str("30/aug/2013:18:02:33 -0700"), Ok(t));
        assert_eq!(p.parse_str("31/AUG/2013:06:32:33 +05:30"), Ok(t));
        assert_eq!(p.parse_str("31/August/2013:01:02:33 Z"), Ok(t));
        let msg = p.parse_str("31/Agu/2013:01:02:33 +0000").unwrap_err().to_string();
        assert!(msg.contains("unexpected 'A' at position 3 (expected a month name"), "{msg}");
        let full = fmt("MMMM d, yyyy");
        assert_eq!(full.parse_str("September 1, 2013"), Ok(iso("2013-09-01")));
        assert_eq!(full.parse_str("Sep 1, 2013"), Ok(iso("2013-09-01")));
        assert_eq!(full.parse_str("june 30, 2013"), Ok(iso("2013-06-30")));
    }

    #[test]
    fn pattern_twelve_hour_clock() {
        let p = fmt("MM/dd/yyyy hh:mm:ss a");
        assert_eq!(p.parse_str("08/31/2013 01:02:33 AM"), Ok(1_377_910_953_000));
        assert_eq!(p.parse_str("08/31/2013 01:02:33 PM"), Ok(1_377_910_953_000 + 12 * HOUR));
        assert_eq!(p.parse_str("08/31/2013 12:00:00 AM"), Ok(iso("2013-08-31")));
        assert_eq!(p.parse_str("08/31/2013 12:00:00 pm"), Ok(iso("2013-08-31T12")));
        assert_eq!(p.parse_str("08/31/2013 11:59:59 PM"), Ok(iso("2013-08-31T23:59:59")));
        let msg = p.parse_str("08/31/2013 13:00:00 PM").unwrap_err().to_string();
        assert!(msg.contains("clock hour 13 is out of range (expected 1-12)"), "{msg}");
        let msg = p.parse_str("08/31/2013 01:00:00 XM").unwrap_err().to_string();
        assert!(msg.contains("expected \"AM\" or \"PM\""), "{msg}");
    }

    #[test]
    fn pattern_other_tokens() {
        let compact = fmt("yyyyMMddHHmmss");
        assert_eq!(compact.parse_str("20130831010233"), Ok(1_377_910_953_000));
        let named = fmt("EEE, dd MMM yyyy HH:mm:ss Z");
        assert_eq!(named.parse_str("Sat, 31 Aug 2013 01:02:33 +0000"), Ok(1_377_910_953_000));
        let named = fmt("EEEE dd MMMM yyyy");
        assert_eq!(named.parse_str("Saturday 31 August 2013"), Ok(iso("2013-08-31")));
        let quoted = fmt("'at' HH 'o''clock' yyyy-MM-dd ''");
        assert_eq!(quoted.parse_str("at 01 o'clock 2013-08-31 '"), Ok(iso("2013-08-31T01")));
        let frac = fmt("HH:mm:ss.SSSSSSSSS");
        assert_eq!(frac.parse_str("01:02:33.123456789"), Ok(HOUR + 2 * MINUTE + 33_123));
        assert_eq!(frac.parse_str("01:02:33.5"), Ok(HOUR + 2 * MINUTE + 33_500));
        let no_year = fmt("MM-dd");
        assert_eq!(no_year.parse_str("02-01"), Ok(31 * DAY), "missing fields default to 1970");
        let unicode = fmt("yyyy年MM月dd日");
        assert_eq!(unicode.parse_str("2013年08月31日"), Ok(iso("2013-08-31")));
        let neg_year = fmt("yyyy-MM-dd");
        assert_eq!(neg_year.parse_str("-0001-01-01"), Ok(iso("-0001-01-01")));
    }

    #[test]
    fn pattern_two_digit_years() {
        assert_eq!(two_digit_year(13, 1996), 2013);
        assert_eq!(two_digit_year(45, 1996), 2045);
        assert_eq!(two_digit_year(46, 1996), 1946);
        assert_eq!(two_digit_year(99, 1996), 1999);
        assert_eq!(two_digit_year(0, 1996), 2000);
        let p = fmt("dd/MM/yy");
        assert_eq!(p.parse_str("31/08/13"), Ok(iso("2013-08-31")));
        assert_eq!(p.parse_str("31/08/2013"), Ok(iso("2013-08-31")), "lenient: 4 digits = year");
        let packed = fmt("yyMMdd");
        assert_eq!(packed.parse_str("130831"), Ok(iso("2013-08-31")));
    }

    #[test]
    fn invalid_patterns_name_the_pattern() {
        let cases = [
            ("yyyy-qq-dd", "unsupported pattern letter 'q' at position 5"),
            ("isoo", "unsupported pattern letter 'i' at position 0"),
            ("yyyy-MM-dd HH:mm:ss ZZZ", "zone ids (ZZZ) at position 20 are not supported"),
            ("yyyy-MM-dd HH:mm:ss z", "zone names (z) at position 20 are not supported"),
            ("yyyy-MM-dd'T", "the quote at position 10 is never closed"),
            ("", "it is empty"),
            ("'iso'", "it has no date or time fields"),
        ];
        for (pattern, reason) in cases {
            let msg = TimestampFormat::parse(pattern).unwrap_err().to_string();
            assert!(
                msg.starts_with(&format!("timestamp format pattern \"{pattern}\" is invalid: ")),
                "{msg}"
            );
            assert!(msg.contains(reason), "{pattern}: {msg}");
        }
    }

    proptest! {
        #[test]
        fn pattern_parse_never_panics(s in "[-0-9a-zA-Z:/ +.]{0,30}") {
            for p in ["dd/MMM/yyyy:HH:mm:ss Z", "MM/dd/yyyy hh:mm:ss a", "yyMMddHHmmssSSS"] {
                let _ = fmt(p).parse_str(&s);
            }
        }

        #[test]
        fn pattern_agrees_with_iso(t in days_from_civil(1, 1, 1) * DAY..days_from_civil(10_000, 1, 1) * DAY) {
            let p = fmt("yyyy-MM-dd'T'HH:mm:ss.SSSZZ");
            prop_assert_eq!(p.parse_str(&format_iso(t)), Ok(t));
        }
    }

    // ----- intervals -----

    #[test]
    fn interval_forms() {
        let day = Interval::new(iso("2013-08-31"), iso("2013-09-01")).unwrap();
        assert_eq!(Interval::parse("2013-08-31/2013-09-01"), Ok(day));
        assert_eq!(Interval::parse("2013-08-31T00:00:00.000Z/2013-09-01T00:00:00.000Z"), Ok(day));
        assert_eq!(Interval::parse("2013-08-31/P1D"), Ok(day));
        assert_eq!(Interval::parse("2013-08-31/p1d"), Ok(day));
        assert_eq!(Interval::parse("P1D/2013-09-01"), Ok(day));
        assert_eq!(Interval::parse("2013-08-31/PT24H"), Ok(day));
        assert_eq!(Interval::parse("2013-08-31T08:00+08:00/P1D"), Ok(day));
        assert_eq!(
            Interval::parse("2013-08-31T01/pt1h"),
            Interval::new(iso("2013-08-31T01"), iso("2013-08-31T02"))
        );
        assert_eq!(
            Interval::parse("2013-08-31T01:02/2013-08-31T01:02:33.5"),
            Interval::new(iso("2013-08-31T01:02"), iso("2013-08-31T01:02:33.500"))
        );
        assert_eq!(Interval::parse("2013-01-31/P1M"), Interval::new(iso("2013-01-31"), iso("2013-02-28")));
        assert_eq!(Interval::parse("P1M/2013-03-31"), Interval::new(iso("2013-02-28"), iso("2013-03-31")));
        assert_eq!(day.to_string(), "2013-08-31T00:00:00.000Z/2013-09-01T00:00:00.000Z");
        assert_eq!(Interval::parse(&day.to_string()), Ok(day));
        assert_eq!("2013-08-31/P1D".parse::<Interval>(), Ok(day));
        let eternity = Interval { start: i64::MIN, end: i64::MAX };
        assert_eq!(Interval::parse(&eternity.to_string()), Ok(eternity));
    }

    #[test]
    fn interval_errors() {
        let cases = [
            (
                "2013-09-01/2013-08-31",
                "start 2013-09-01T00:00:00.000Z is not before end 2013-08-31T00:00:00.000Z (expected start < end)",
            ),
            ("2013-08-31/2013-08-31", "is not before end"),
            ("2013-08-31", "expected \"start/end\""),
            ("a/2013-08-31", "start \"a\" is not an ISO 8601 datetime: unexpected 'a' at position 0"),
            ("2013-08-31/2013-09-32", "end \"2013-09-32\" is not an ISO 8601 datetime: day 32"),
            ("2013-08-31/P1X", "period \"P1X\" is not an ISO 8601 period: unexpected 'X'"),
            ("P1D/P1D", "both sides are periods"),
            ("2013-08-31/2013-09-01/2013-09-02", "more than one '/'"),
            ("2013-08-31 00:00/2013-09-01", "unexpected ' ' at position 10"),
        ];
        for (value, reason) in cases {
            let msg = Interval::parse(value).unwrap_err().to_string();
            assert!(msg.starts_with(&format!("interval \"{value}\" is invalid: ")), "{msg}");
            assert!(msg.contains(reason), "{value}: {msg}");
        }
        let msg = Interval::new(5, 5).unwrap_err().to_string();
        assert_eq!(
            msg,
            "interval start 1970-01-01T00:00:00.005Z (5) is not before end \
             1970-01-01T00:00:00.005Z (5) (expected start < end)"
        );
        assert!(Interval::new(6, 5).is_err());
    }

    #[test]
    fn interval_operations() {
        let a = Interval::new(10, 20).unwrap();
        let b = Interval::new(15, 30).unwrap();
        let c = Interval::new(20, 30).unwrap();
        let inner = Interval::new(12, 18).unwrap();
        assert!(a.contains(10) && a.contains(19) && !a.contains(20) && !a.contains(9));
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c), "half-open intervals that touch do not overlap");
        assert_eq!(a.intersect(&b), Some(Interval::new(15, 20).unwrap()));
        assert_eq!(a.intersect(&c), None);
        assert!(a.contains_interval(&inner) && a.contains_interval(&a));
        assert!(!a.contains_interval(&b) && !inner.contains_interval(&a));
        assert_eq!(a.duration_ms(), 10);
        let all = Interval { start: i64::MIN, end: i64::MAX };
        assert_eq!(all.duration_ms(), i64::MAX);
    }

    // ----- periods -----

    #[test]
    fn period_parse_and_display() {
        let cases = [
            ("P1D", "P1D"),
            ("PT10M", "PT10M"),
            ("pt1h", "PT1H"),
            ("P1Y2M3W4DT5H6M7S", "P1Y2M3W4DT5H6M7S"),
            ("PT0.5S", "PT0.500S"),
            ("PT1,25S", "PT1.250S"),
            ("PT0S", "PT0S"),
            ("P0D", "PT0S"),
            ("P1M", "P1M"),
            ("PT1M", "PT1M"),
            ("PT-1H", "PT-1H"),
            ("PT-0.5S", "PT-0.500S"),
            ("P2W", "P2W"),
            ("PT36H", "PT36H"),
        ];
        for (input, canonical) in cases {
            let p = Period::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(p.to_string(), canonical, "{input}");
            assert_eq!(Period::parse(canonical), Ok(p), "{canonical}");
        }
        let p = Period::parse("P1Y2M3W4DT5H6M7.5S").unwrap();
        assert_eq!(
            p,
            Period { years: 1, months: 2, weeks: 3, days: 4, hours: 5, minutes: 6, seconds: 7, millis: 500 }
        );
        assert_eq!(Period::parse("PT0.5S").unwrap(), Period { millis: 500, ..Period::default() });
    }

    #[test]
    fn period_errors() {
        let cases = [
            ("", "expected it to start with \"P\""),
            ("1D", "expected it to start with \"P\""),
            ("P", "it has no components after \"P\""),
            ("PT", "nothing follows 'T'"),
            ("P1DT", "nothing follows 'T'"),
            ("P1H", "'H' at position 2 is a time designator"),
            ("PT1D", "'D' at position 3 is a date designator"),
            ("P1D1Y", "'Y' at position 4 is repeated or out of order"),
            ("P1D1D", "'D' at position 4 is repeated or out of order"),
            ("P1.5D", "'D' at position 4 has a fraction"),
            ("PD", "expected a number at position 1 but found 'D'"),
            ("P1", "has no designator"),
            ("P1X", "unexpected 'X' at position 2"),
            ("P99999999999D", "too large"),
            ("PT1HT1M", "'T' at position 4 is repeated"),
            ("PT1TH", "unexpected 'T' at position 3"),
            ("PT1.S", "expected a digit after the decimal point"),
        ];
        for (value, reason) in cases {
            let msg = Period::parse(value).unwrap_err().to_string();
            assert!(msg.starts_with(&format!("period \"{value}\" is invalid: ")), "{msg}");
            assert!(msg.contains(reason), "{value}: {msg}");
        }
    }

    #[test]
    fn period_calendar_arithmetic() {
        let p = |s: &str| Period::parse(s).unwrap();
        assert_eq!(p("P1M").add_to(iso("2013-01-31")), iso("2013-02-28"));
        assert_eq!(p("P1M").add_to(iso("2012-01-31")), iso("2012-02-29"));
        assert_eq!(p("P1M").add_to(iso("2013-12-15T10:00")), iso("2014-01-15T10:00"));
        assert_eq!(p("P1Y").add_to(iso("2012-02-29")), iso("2013-02-28"));
        assert_eq!(p("P4Y").add_to(iso("2012-02-29")), iso("2016-02-29"));
        assert_eq!(p("P1Y1M").add_to(iso("2012-02-29")), iso("2013-03-28"), "years then months");
        assert_eq!(p("P3M").add_to(iso("1969-11-30")), iso("1970-02-28"));
        assert_eq!(p("P1M").subtract_from(iso("2013-03-31")), iso("2013-02-28"));
        assert_eq!(p("P1M").subtract_from(iso("1970-01-01")), iso("1969-12-01"));
        assert_eq!(p("P1DT1H").add_to(iso("2013-08-31")), iso("2013-09-01T01"));
        assert_eq!(p("PT0.5S").add_to(0), 500);
        assert_eq!(p("P1W").subtract_from(0), -WEEK);
        assert_eq!(p("P1M").add_to(i64::MAX), i64::MAX);
        assert_eq!(p("P1D").subtract_from(i64::MIN), i64::MIN);
        assert_eq!(p("P1D").fixed_duration_ms(), Some(DAY));
        assert_eq!(
            p("P1W2DT3H4M5.006S").fixed_duration_ms(),
            Some(WEEK + 2 * DAY + 3 * HOUR + 4 * MINUTE + 5_006)
        );
        assert_eq!(p("P1M").fixed_duration_ms(), None);
        assert_eq!(p("P1Y").fixed_duration_ms(), None);
    }

    proptest! {
        #[test]
        fn period_display_round_trip(
            years in -1000i32..1000, months in -1000i32..1000, weeks in -1000i32..1000,
            days in any::<i32>(), hours in any::<i32>(), minutes in any::<i32>(),
            seconds in any::<i32>(), millis in 0i32..1000,
        ) {
            // Parsed periods keep millis within a second and signed like the seconds.
            let millis = if seconds < 0 { -millis } else { millis };
            let p = Period { years, months, weeks, days, hours, minutes, seconds, millis };
            prop_assert_eq!(Period::parse(&p.to_string()), Ok(p));
        }

        #[test]
        fn fixed_periods_add_their_duration(t in -400_000_000_000_000i64..400_000_000_000_000, d in 0i32..10_000, ms in 0i32..1000) {
            let p = Period { days: d, millis: ms, ..Period::default() };
            let dur = p.fixed_duration_ms().unwrap();
            prop_assert_eq!(p.add_to(t), t + dur);
            prop_assert_eq!(p.subtract_from(t), t - dur);
        }
    }

    // ----- serde -----

    #[test]
    fn serde_deserializes_through_our_parsers() {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error as DeError, StrDeserializer};
        fn de<'a, T: Deserialize<'a>>(s: &'a str) -> Result<T, DeError> {
            let d: StrDeserializer<'a, DeError> = s.into_deserializer();
            T::deserialize(d)
        }
        assert_eq!(de::<Granularity>("DAY"), Ok(Granularity::Day));
        let err = de::<Granularity>("DAYS").unwrap_err().to_string();
        assert!(err.starts_with("unknown granularity \"DAYS\" (expected one of: none,"), "{err}");
        assert_eq!(de::<Period>("pt1h"), Period::parse("PT1H").map_err(|_| unreachable!()));
        assert!(de::<Period>("P").unwrap_err().to_string().contains("period \"P\" is invalid"));
        assert_eq!(
            de::<Interval>("2013-08-31/P1D").map(|i| i.to_string()),
            Ok("2013-08-31T00:00:00.000Z/2013-09-01T00:00:00.000Z".to_owned())
        );
        assert_eq!(de::<TimestampFormat>("Posix"), Ok(TimestampFormat::Posix));
        assert!(de::<TimestampFormat>("yyyy-qq").is_err());
    }
}
