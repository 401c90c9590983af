//! Timestamps as they appear in paths and ids: Druid's ISO-8601 form with milliseconds
//! and 'Z', plus the calendar fields the raw layout writes.

use chrono::NaiveDate;

/// Earliest time a path can carry: 0000-01-01T00:00:00.000Z, in UTC ms since the epoch.
pub const MIN_PATH_MILLIS: i64 = -62_167_219_200_000;
/// Latest time a path can carry: 9999-12-31T23:59:59.999Z, in UTC ms since the epoch.
pub const MAX_PATH_MILLIS: i64 = 253_402_300_799_999;

pub(crate) const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

/// Calendar fields of one instant in UTC (proleptic Gregorian, astronomical years).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Civil {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
    pub(crate) milli: u32,
}

impl Civil {
    /// Splits `ms` (UTC ms since the epoch) into calendar fields. Done by hand rather than
    /// with chrono so it is total over `i64`: chrono stops at about ±262,000 years.
    pub(crate) fn of(ms: i64) -> Self {
        let days = ms.div_euclid(MS_PER_DAY);
        // Both in 0..MS_PER_DAY, so the narrowing below cannot truncate.
        let in_day = ms.rem_euclid(MS_PER_DAY) as u32;
        // Howard Hinnant's civil_from_days: count from 0000-03-01 in 400-year eras so
        // the leap day falls at the end of each computed year.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097); // day of era, 0..=146_096
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of March-based year
        let mp = (5 * doy + 2) / 153; // March-based month, 0..=11
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self {
            year,
            month,
            day,
            hour: in_day / 3_600_000,
            minute: in_day / 60_000 % 60,
            second: in_day / 1_000 % 60,
            milli: in_day % 1_000,
        }
    }
}

/// Druid's ISO-8601 form used inside paths and ids: "2013-08-31T01:02:33.000Z" (always
/// millis, always Z), for `ms` UTC milliseconds since the epoch. Total over `i64`: years
/// outside 0000-9999 are written with a sign and at least four digits ("+10000-01-01…",
/// "-0001-12-31…"), which [`parse_iso_millis`] refuses, so such times never make paths
/// (path builders take [`MIN_PATH_MILLIS`]..=[`MAX_PATH_MILLIS`]).
pub fn format_iso_millis(ms: i64) -> String {
    let c = Civil::of(ms);
    let year =
        if (0..=9999).contains(&c.year) { format!("{:04}", c.year) } else { format!("{:+05}", c.year) };
    format!(
        "{year}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.month, c.day, c.hour, c.minute, c.second, c.milli
    )
}

/// Parses exactly the form [`format_iso_millis`] writes for years 0000-9999 back to UTC
/// ms since the epoch; any other spelling of the same instant is `None`, so a path has
/// one reading.
pub fn parse_iso_millis(s: &str) -> Option<i64> {
    const SHAPE: &[u8; 24] = b"dddd-dd-ddTdd:dd:dd.dddZ";
    let b = s.as_bytes();
    let shaped = b.len() == SHAPE.len()
        && b.iter().zip(SHAPE).all(|(&c, &want)| match want {
            b'd' => c.is_ascii_digit(),
            _ => c == want,
        });
    if !shaped {
        return None;
    }
    let num = |from: usize, to: usize| b[from..to].iter().fold(0u32, |n, &c| n * 10 + u32::from(c - b'0'));
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0, 4)).ok()?, num(5, 7), num(8, 10))?;
    let time = date.and_hms_milli_opt(num(11, 13), num(14, 16), num(17, 19), num(20, 23))?;
    Some(time.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use proptest::prelude::*;

    #[test]
    fn known_instants() {
        for (ms, text) in [
            (1_377_910_953_000, "2013-08-31T01:02:33.000Z"),
            (0, "1970-01-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (951_782_400_123, "2000-02-29T00:00:00.123Z"),
            (MIN_PATH_MILLIS, "0000-01-01T00:00:00.000Z"),
            (MAX_PATH_MILLIS, "9999-12-31T23:59:59.999Z"),
        ] {
            assert_eq!(format_iso_millis(ms), text);
            assert_eq!(parse_iso_millis(text), Some(ms), "{text}");
        }
    }

    #[test]
    fn years_outside_four_digits_format_but_do_not_parse() {
        assert_eq!(format_iso_millis(MAX_PATH_MILLIS + 1), "+10000-01-01T00:00:00.000Z");
        assert_eq!(format_iso_millis(MIN_PATH_MILLIS - 1), "-0001-12-31T23:59:59.999Z");
        assert_eq!(parse_iso_millis("+10000-01-01T00:00:00.000Z"), None);
        assert_eq!(parse_iso_millis("-0001-12-31T23:59:59.999Z"), None);
        // Total: the extremes of i64 format without panicking.
        assert!(format_iso_millis(i64::MAX).starts_with('+'));
        assert!(format_iso_millis(i64::MIN).starts_with('-'));
    }

    #[test]
    fn other_spellings_are_refused() {
        for bad in [
            "2013-08-31T01:02:33Z",
            "2013-08-31T01:02:33.000",
            "2013-08-31T01:02:33.000+00:00",
            "2013-08-31t01:02:33.000Z",
            "2013-08-31T01:02:33.0000Z",
            "2013-02-30T00:00:00.000Z",
            "2013-13-01T00:00:00.000Z",
            "2013-08-31T24:00:00.000Z",
            "2013-08-31T23:59:60.000Z",
            "2013-08-31 01:02:33.000Z",
            "２013-08-31T01:02:33.000Z",
            "",
        ] {
            assert_eq!(parse_iso_millis(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn formats_like_chrono(ms in -8_000_000_000_000_000i64..8_000_000_000_000_000) {
            let expected = DateTime::from_timestamp_millis(ms)
                .expect("within chrono's range")
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string();
            prop_assert_eq!(format_iso_millis(ms), expected);
        }

        #[test]
        fn round_trips_within_path_range(ms in MIN_PATH_MILLIS..=MAX_PATH_MILLIS) {
            prop_assert_eq!(parse_iso_millis(&format_iso_millis(ms)), Some(ms));
        }
    }
}
