//! Reproducible generator of Wikipedia-like edit events, for benchmarks, tests and demos.
//!
//! Each event is one compact JSON object in the shape of Druid's wikipedia tutorial data:
//!
//! ```text
//! {"timestamp":"2013-08-31T01:02:33.517Z","page":"Gypsy Danger","language":"en","user":"nuclear",
//!  "unpatrolled":"true","newPage":"true","robot":"false","anonymous":"false","namespace":"article",
//!  "continent":"North America","country":"United States","region":"Bay Area",
//!  "city":"San Francisco","added":57,"deleted":200,"delta":-143}
//! ```
//!
//! (shown wrapped; a real event is a single line). Fields always come in that order.
//!
//! Everything is deterministic: the generator owns a xoshiro256** PRNG seeded through
//! splitmix64 and uses integer arithmetic only, so the same seed yields byte-identical output
//! on every platform. Values are built from short word lists compiled into this file, JSON-escaped
//! at compile time:
//!
//! * `page`: ~200k distinct titles, rank drawn with a power-law skew (a cheap Zipf stand-in);
//!   a few hot titles carry a quote, backslashes or non-ASCII UTF-8 so consumers get exercised.
//! * `user`: ~50k distinct; registered names, `…Bot` names (`robot` = "true") and IP addresses
//!   (`anonymous` = "true").
//! * `language` 40, `namespace` 10, `country` 100 (each with one `continent`), `region` ~1000
//!   (each within one country), `city` ~3000 (each within one region).
//! * `unpatrolled`, `newPage`, `robot`, `anonymous`: "true"/"false" at different ratios
//!   (~22%, ~7%, 10%, ~15% "true").
//! * `added`, `deleted` skewed towards small numbers; `delta` = `added` - `deleted`.
//!
//! Lines average about 320 bytes: the sixteen keys, the timestamp and the flags alone take ~270.

/// The spec field names the events carry, for tests: dimensions.
pub const DIMENSIONS: [&str; 12] = [
    "page",
    "language",
    "user",
    "unpatrolled",
    "newPage",
    "robot",
    "anonymous",
    "namespace",
    "continent",
    "country",
    "region",
    "city",
];

/// The spec field names the events carry, for tests: metric input fields.
pub const METRIC_FIELDS: [&str; 3] = ["added", "deleted", "delta"];

/// Wikipedia-like event generator; same seed, same events.
#[derive(Debug, Clone)]
pub struct WikipediaGenerator {
    rng: Xoshiro256StarStar,
    malformed_count: u64,
    /// The last formatted UTC day (days since the epoch) and its `YYYY-MM-DD`; output never
    /// depends on it.
    date_cache: (i64, [u8; 10]),
}

impl WikipediaGenerator {
    /// A generator whose output is fully determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { rng: Xoshiro256StarStar::new(seed), malformed_count: 0, date_cache: (i64::MIN, [0; 10]) }
    }

    /// Appends one event line (without newline) with the given event time (UTC ms) to `out`.
    ///
    /// Allocates nothing besides growing `out`.
    pub fn write_event(&mut self, timestamp_ms: i64, out: &mut Vec<u8>) {
        let mut w = Writer::open(out);
        w.lit(b"{\"timestamp\":\"");
        w.timestamp(timestamp_ms, &mut self.date_cache);
        w.lit(b"\",");
        self.write_body(&mut w);
        w.close();
    }

    /// Appends `count` events spread over `[start_ms, end_ms)` in ascending time order, each
    /// newline-terminated.
    ///
    /// Timestamps are uniform over the range and non-decreasing: the range is cut into `count`
    /// equal strata and event `i` falls uniformly at random within stratum `i`. If
    /// `end_ms <= start_ms` every event gets `start_ms`.
    pub fn write_events(&mut self, count: usize, start_ms: i64, end_ms: i64, out: &mut Vec<u8>) {
        out.reserve(count.saturating_mul(AVERAGE_LINE).saturating_add(LINE_MAX));
        let span: u128 =
            if end_ms > start_ms { (i128::from(end_ms) - i128::from(start_ms)) as u128 } else { 0 };
        // span <= 2^64 and r < span, so i * span + r < count * span <= 2^128; when that
        // product fits in 64 bits the same arithmetic runs in u64.
        let narrow = u64::try_from(span * count as u128).is_ok();
        for i in 0..count {
            let r = (u128::from(self.rng.next_u64()) * span) >> 64;
            let offset = if narrow {
                u128::from((i as u64 * span as u64 + r as u64) / count as u64)
            } else {
                (i as u128 * span + r) / count as u128
            };
            let ts = (i128::from(start_ms) + offset as i128) as i64;
            let mut w = Writer::open(out);
            w.lit(b"{\"timestamp\":\"");
            w.timestamp(ts, &mut self.date_cache);
            w.lit(b"\",");
            self.write_body(&mut w);
            w.byte(b'\n');
            w.close();
        }
    }

    /// A malformed line for demos and tests, without newline. Successive calls cycle through
    /// broken JSON (an event cut short), an event without `timestamp`, and an event whose
    /// timestamp is unparseable (`"yesterday"`).
    pub fn write_malformed(&mut self, out: &mut Vec<u8>) {
        let kind = self.malformed_count % 3;
        self.malformed_count += 1;
        match kind {
            0 => {
                let start = out.len();
                let ts = MALFORMED_BASE_MS + i64::from(self.rng.below(86_400_000));
                self.write_event(ts, out);
                // Cut somewhere between 30% and 90% of the line, on a UTF-8 boundary: an
                // object missing its closing brace can never parse.
                let len = out.len() - start;
                let keep = len * (30 + self.rng.below(61) as usize) / 100;
                let mut cut = start + keep.max(1);
                while cut > start + 1 && (out[cut] & 0xC0) == 0x80 {
                    cut -= 1;
                }
                out.truncate(cut);
            }
            1 => {
                let mut w = Writer::open(out);
                w.byte(b'{');
                self.write_body(&mut w);
                w.close();
            }
            _ => {
                let mut w = Writer::open(out);
                w.lit(b"{\"timestamp\":\"yesterday\",");
                self.write_body(&mut w);
                w.close();
            }
        }
    }

    /// Everything after the timestamp: `"page":…,"delta":N}`.
    #[inline]
    fn write_body(&mut self, w: &mut Writer<'_>) {
        let rng = &mut self.rng;

        w.lit(b"\"page\":\"");
        write_page(rng, w);

        w.lit(b"\",\"language\":\"");
        w.put(&LANGUAGES[rng.skew3(LANGUAGES.len() as u32) as usize]);

        let robot = rng.chance(ROBOT_PER_MILLE);
        let anonymous = !robot && rng.chance(ANONYMOUS_PER_MILLE);
        w.lit(b"\",\"user\":\"");
        if robot {
            write_bot(rng.skew2(BOT_USERS), w);
        } else if anonymous {
            write_ip(rng.skew2(ANONYMOUS_USERS), w);
        } else {
            write_registered(rng.skew2(REGISTERED_USERS), w);
        }

        let unpatrolled = rng.chance(if robot {
            20
        } else if anonymous {
            600
        } else {
            200
        });
        let new_page = rng.chance(if robot { 150 } else { 60 });
        if unpatrolled {
            w.lit(b"\",\"unpatrolled\":\"true");
        } else {
            w.lit(b"\",\"unpatrolled\":\"false");
        }
        if new_page {
            w.lit(b"\",\"newPage\":\"true");
        } else {
            w.lit(b"\",\"newPage\":\"false");
        }
        if robot {
            w.lit(b"\",\"robot\":\"true");
        } else {
            w.lit(b"\",\"robot\":\"false");
        }
        if anonymous {
            w.lit(b"\",\"anonymous\":\"true");
        } else {
            w.lit(b"\",\"anonymous\":\"false");
        }

        w.lit(b"\",\"namespace\":\"");
        w.put(&NAMESPACES[rng.skew3(NAMESPACES.len() as u32) as usize]);

        // Geography: country -> region (10 per country) -> city (3 per region).
        let country = rng.skew3(COUNTRY_COUNT);
        let region_local = rng.skew2(REGIONS_PER_COUNTRY);
        let city_local = rng.skew2(CITIES_PER_REGION);
        w.lit(b"\",\"continent\":\"");
        w.put(&CONTINENTS[COUNTRY_CONTINENTS[country as usize] as usize]);
        w.lit(b"\",\"country\":\"");
        w.put(&COUNTRIES[country as usize]);
        w.lit(b"\",\"region\":\"");
        let landmark = region_local == 0 && (country as usize) < LANDMARK_REGIONS.len();
        let region = country * REGIONS_PER_COUNTRY + region_local;
        if landmark {
            w.put(&LANDMARK_REGIONS[country as usize]);
        } else {
            write_name(permute(region, REGION_COUNT, 389, 17), true, w);
            w.put(&REGION_SUFFIXES[(region % 8) as usize]);
        }
        w.lit(b"\",\"city\":\"");
        let city = region * CITIES_PER_REGION + city_local;
        if landmark && city_local == 0 {
            w.put(&LANDMARK_CITIES[country as usize]);
        } else {
            write_name(permute(city, CITY_COUNT, 1237, 4000), true, w);
            w.put(&CITY_SUFFIXES[(mix64(u64::from(city)) % 8) as usize]);
        }

        // Metrics: mostly small edits, occasionally large; new pages add a lot, delete nothing.
        let added: u32 = if new_page {
            200 + rng.skew3(20_000)
        } else if rng.chance(120) {
            0
        } else {
            rng.skew3(4_000)
        };
        let deleted: u32 = if new_page || rng.chance(550) { 0 } else { rng.skew3(2_500) };
        w.lit(b"\",\"added\":");
        w.uint(u64::from(added));
        w.lit(b",\"deleted\":");
        w.uint(u64::from(deleted));
        w.lit(b",\"delta\":");
        if added < deleted {
            w.byte(b'-');
        }
        w.uint(u64::from(added.abs_diff(deleted)));
        w.byte(b'}');
    }
}

/// Rough bytes per line, for reserving.
const AVERAGE_LINE: usize = 330;
/// Room claimed in `out` per line before trimming: the longest possible line (under 500 bytes)
/// plus the widest fixed-size copy.
const LINE_MAX: usize = 768;
/// 2013-08-31T00:00:00Z, the day of Druid's wikipedia sample.
const MALFORMED_BASE_MS: i64 = 1_377_907_200_000;

const PAGE_COUNT: u32 = 200_000;
const BOT_USERS: u32 = 500;
const ANONYMOUS_USERS: u32 = 15_000;
const REGISTERED_USERS: u32 = 34_500;
const ROBOT_PER_MILLE: u32 = 100;
const ANONYMOUS_PER_MILLE: u32 = 170;
const COUNTRY_COUNT: u32 = 100;
const REGIONS_PER_COUNTRY: u32 = 10;
const CITIES_PER_REGION: u32 = 3;
const REGION_COUNT: u32 = COUNTRY_COUNT * REGIONS_PER_COUNTRY;
const CITY_COUNT: u32 = REGION_COUNT * CITIES_PER_REGION;

// ---------------------------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------------------------

/// xoshiro256** (Blackman & Vigna), seeded through splitmix64.
#[derive(Debug, Clone)]
struct Xoshiro256StarStar {
    s: [u64; 4],
}

impl Xoshiro256StarStar {
    fn new(seed: u64) -> Self {
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            mix64(state)
        };
        Self { s: [next(), next(), next(), next()] }
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// 32 uniform random bits.
    #[inline]
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `[0, n)` (multiply-shift; the bias is negligible for these sizes).
    #[inline]
    fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.next_u32()) * u64::from(n)) >> 32) as u32
    }

    /// True with probability `per_mille / 1000`.
    #[inline]
    fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < per_mille
    }

    /// Skewed rank in `[0, n)`: `floor(n * u^2)`, so P(rank < k) = sqrt(k / n).
    #[inline]
    fn skew2(&mut self, n: u32) -> u32 {
        let u = u64::from(self.next_u32());
        let x = (u * u) >> 32;
        ((x * u64::from(n)) >> 32) as u32
    }

    /// More strongly skewed rank in `[0, n)`: `floor(n * u^3)`, so P(rank < k) = cbrt(k / n).
    #[inline]
    fn skew3(&mut self, n: u32) -> u32 {
        let u = u64::from(self.next_u32());
        let x = (((u * u) >> 32) * u) >> 32;
        ((x * u64::from(n)) >> 32) as u32
    }
}

/// splitmix64's output function: a good 64-bit mixer, also used to derive per-index values.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A bijection of `[0, n)` (`a` must be coprime with `n`), to scatter neighbouring ranks.
#[inline]
fn permute(i: u32, n: u32, a: u32, b: u32) -> u32 {
    ((u64::from(i) * u64::from(a) + u64::from(b)) % u64::from(n)) as u32
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

/// A string JSON-escaped at compile time and zero-padded to `W` bytes, so that writing it is
/// one fixed-size copy (the padding is overwritten by what follows).
#[derive(Debug, Clone, Copy)]
struct Padded<const W: usize> {
    bytes: [u8; W],
    len: u8,
}

/// JSON-escapes `s` (`"`, `\` and control characters; other UTF-8 passes through) into a
/// `Padded`. Fails to compile when used in a `static` whose entry doesn't fit.
const fn escape_padded<const W: usize>(s: &str) -> Padded<W> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let src = s.as_bytes();
    let mut bytes = [0u8; W];
    let mut len = 0;
    let mut i = 0;
    while i < src.len() {
        let b = src[i];
        let (esc, n): ([u8; 6], usize) = match b {
            b'"' => ([b'\\', b'"', 0, 0, 0, 0], 2),
            b'\\' => ([b'\\', b'\\', 0, 0, 0, 0], 2),
            b'\n' => ([b'\\', b'n', 0, 0, 0, 0], 2),
            b'\r' => ([b'\\', b'r', 0, 0, 0, 0], 2),
            b'\t' => ([b'\\', b't', 0, 0, 0, 0], 2),
            0..0x20 => {
                let (hi, lo) = (HEX[(b >> 4) as usize], HEX[(b & 0xF) as usize]);
                ([b'\\', b'u', b'0', b'0', hi, lo], 6)
            }
            _ => ([b, 0, 0, 0, 0, 0], 1),
        };
        assert!(len + n <= W && len + n < 256, "string too long for its table");
        let mut j = 0;
        while j < n {
            bytes[len] = esc[j];
            len += 1;
            j += 1;
        }
        i += 1;
    }
    Padded { bytes, len: len as u8 }
}

const fn table<const W: usize, const N: usize>(list: [&str; N]) -> [Padded<W>; N] {
    let mut out = [Padded { bytes: [0; W], len: 0 }; N];
    let mut i = 0;
    while i < N {
        out[i] = escape_padded(list[i]);
        i += 1;
    }
    out
}

/// Writes one line into `LINE_MAX` bytes claimed at the end of a `Vec`, then trims to what was
/// written. Overrunning the claim panics (slice bounds), never corrupts.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
    pos: usize,
}

impl<'a> Writer<'a> {
    #[inline]
    fn open(out: &'a mut Vec<u8>) -> Self {
        let base = out.len();
        // (Not `resize`: its fill loop is slow in unoptimised test builds.)
        out.extend_from_slice(&[0; LINE_MAX]);
        Writer { out, pos: base }
    }

    #[inline]
    fn close(self) {
        self.out.truncate(self.pos);
    }

    /// A fixed byte string (already valid JSON in context).
    #[inline(always)]
    fn lit<const N: usize>(&mut self, s: &[u8; N]) {
        self.out[self.pos..self.pos + N].copy_from_slice(s);
        self.pos += N;
    }

    #[inline(always)]
    fn put<const W: usize>(&mut self, p: &Padded<W>) {
        self.out[self.pos..self.pos + W].copy_from_slice(&p.bytes);
        self.pos += p.len as usize;
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.out[self.pos] = b;
        self.pos += 1;
    }

    /// Capitalises the ASCII letter at `at` (an absolute position from `mark`).
    #[inline]
    fn capitalise(&mut self, at: usize) {
        self.out[at] = self.out[at].to_ascii_uppercase();
    }

    #[inline]
    fn mark(&self) -> usize {
        self.pos
    }

    #[inline]
    fn uint(&mut self, v: u64) {
        let mut digits = 1;
        let mut t = v;
        while t >= 10 {
            t /= 10;
            digits += 1;
        }
        self.padded(v, digits);
    }

    /// `v` in exactly `digits` decimal digits (zero-padded; `v` must fit).
    #[inline]
    fn padded(&mut self, mut v: u64, digits: usize) {
        let slot = &mut self.out[self.pos..self.pos + digits];
        for d in slot.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.pos += digits;
    }

    /// Lowercase hex without leading zeros.
    fn hex(&mut self, v: u64) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut digits = 1;
        while digits < 16 && v >> (4 * digits) != 0 {
            digits += 1;
        }
        for i in 0..digits {
            let nibble = (v >> (4 * (digits - 1 - i))) & 0xF;
            self.byte(HEX[nibble as usize]);
        }
    }

    /// `ms` (milliseconds since the Unix epoch, UTC) as ISO 8601 with milliseconds and `Z`,
    /// e.g. `2013-08-31T01:02:33.517Z`. Years outside 0000–9999 use the expanded form with a
    /// sign and at least six digits (`+275760-09-13T00:00:00.000Z`), as JavaScript does.
    /// `cache` remembers the last day's `YYYY-MM-DD`.
    #[inline]
    fn timestamp(&mut self, ms: i64, cache: &mut (i64, [u8; 10])) {
        let days = ms.div_euclid(86_400_000);
        let t = ms.rem_euclid(86_400_000) as u32;
        let (h, mi, s, milli) = (t / 3_600_000, t / 60_000 % 60, t / 1000 % 60, t % 1000);
        let d = |v: u32| b'0' + (v % 10) as u8;
        if cache.0 != days {
            let (year, month, day) = civil_from_days(days);
            if !(0..=9999).contains(&year) {
                self.expanded_timestamp(year, month, day, t);
                return;
            }
            let y = year as u32;
            *cache = (
                days,
                [
                    d(y / 1000),
                    d(y / 100),
                    d(y / 10),
                    d(y),
                    b'-',
                    d(month / 10),
                    d(month),
                    b'-',
                    d(day / 10),
                    d(day),
                ],
            );
        }
        self.lit(&cache.1);
        self.lit(&[
            b'T',
            d(h / 10),
            d(h),
            b':',
            d(mi / 10),
            d(mi),
            b':',
            d(s / 10),
            d(s),
            b'.',
            d(milli / 100),
            d(milli / 10),
            d(milli),
            b'Z',
        ]);
    }

    /// The expanded-year form of [`Writer::timestamp`], for years outside 0000–9999.
    #[cold]
    fn expanded_timestamp(&mut self, year: i64, month: u32, day: u32, t: u32) {
        let (h, mi, s, milli) = (t / 3_600_000, t / 60_000 % 60, t / 1000 % 60, t % 1000);
        self.byte(if year < 0 { b'-' } else { b'+' });
        let y = year.unsigned_abs();
        let digits = if y >= 1_000_000 { y.ilog10() as usize + 1 } else { 6 };
        self.padded(y, digits);
        self.byte(b'-');
        self.padded(u64::from(month), 2);
        self.byte(b'-');
        self.padded(u64::from(day), 2);
        self.byte(b'T');
        self.padded(u64::from(h), 2);
        self.byte(b':');
        self.padded(u64::from(mi), 2);
        self.byte(b':');
        self.padded(u64::from(s), 2);
        self.byte(b'.');
        self.padded(u64::from(milli), 3);
        self.byte(b'Z');
    }
}

/// Days since 1970-01-01 to proleptic Gregorian (year, month, day); Howard Hinnant's
/// `civil_from_days`.
#[inline]
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

// ---------------------------------------------------------------------------------------------
// Value builders
// ---------------------------------------------------------------------------------------------

/// A pronounceable made-up name for `k` (injective below 24^3 = 13824; a fourth syllable
/// extends it), capitalised or not.
#[inline]
fn write_name(k: u32, capitalise: bool, w: &mut Writer<'_>) {
    let n = SYLLABLES.len() as u32;
    let start = w.mark();
    w.put(&SYLLABLES[(k % n) as usize]);
    w.put(&SYLLABLES[(k / n % n) as usize]);
    w.put(&SYLLABLES[(k / (n * n) % n) as usize]);
    let fourth = k / (n * n * n) % n;
    if fourth != 0 {
        w.put(&SYLLABLES[fourth as usize]);
    }
    if capitalise {
        w.capitalise(start);
    }
}

/// The title of a page drawn with a skewed rank.
#[inline]
fn write_page(rng: &mut Xoshiro256StarStar, w: &mut Writer<'_>) {
    let rank = rng.skew2(PAGE_COUNT);
    if let Some(title) = HOT_PAGES.get(rank as usize) {
        w.put(title);
        return;
    }
    let k = permute(rank, PAGE_COUNT, 7919, 12_345);
    // Eight templates, each injective on n in [0, 25000).
    let n = k / 8;
    match k % 8 {
        0 => {
            // "Crimson Lighthouse (novel)"
            w.put(&ADJECTIVES[(n % 32) as usize]);
            w.byte(b' ');
            w.put(&NOUNS[(n / 32 % 32) as usize]);
            let q = (n / 1024) as usize;
            if q > 0 {
                w.lit(b" (");
                w.put(&QUALIFIERS[q % QUALIFIERS.len()]);
                w.byte(b')');
            }
        }
        1 => {
            // "1987 Japan Grand Prix"
            let year = n % 125;
            let country = n / 125 % COUNTRY_COUNT;
            let event = (n / 12_500 + year + country) % EVENTS.len() as u32;
            w.uint(u64::from(1900 + year));
            w.byte(b' ');
            w.put(&COUNTRIES[country as usize]);
            w.byte(b' ');
            w.put(&EVENTS[event as usize]);
        }
        2 => {
            // Minor planets: "(21407) Kalomate"
            w.byte(b'(');
            w.uint(u64::from(1000 + n * 7 + n % 7));
            w.lit(b") ");
            write_name(n, true, w);
        }
        3 => {
            // "Yuki Müller", "Yuki C. Müller (cyclist)"
            w.put(&FIRST_NAMES[(n % 32) as usize]);
            w.byte(b' ');
            let q = n / 1024; // [0, 24]
            if q > 0 {
                w.byte(b'A' + (q % 8) as u8);
                w.lit(b". ");
            }
            w.put(&LAST_NAMES[(n / 32 % 32) as usize]);
            if q >= 8 {
                w.lit(b" (");
                w.put(&OCCUPATIONS[(q / 8 - 1) as usize]);
                w.byte(b')');
            }
        }
        4 => {
            // "HMS Tiger (1853)"
            w.put(&SHIP_PREFIXES[(n % 4) as usize]);
            w.byte(b' ');
            if (n / 4).is_multiple_of(3) {
                w.put(&ADJECTIVES[(n / 12 % 32) as usize]);
                w.byte(b' ');
            }
            w.put(&NOUNS[(n / 4 % 32) as usize]);
            w.lit(b" (");
            w.uint(u64::from(1800 + n / 128));
            w.byte(b')');
        }
        5 => {
            // "Lake Tarvendi", "Kelmora National Park"
            let feature = (n % 16) as usize;
            let name = n / 16 + 7000;
            if feature < 3 {
                w.put(&FEATURES[feature]);
                w.byte(b' ');
                write_name(name, true, w);
            } else {
                write_name(name, true, w);
                w.byte(b' ');
                w.put(&FEATURES[feature]);
            }
        }
        6 => {
            // "History of Kelmora"
            w.put(&TOPICS[(n % 16) as usize]);
            w.lit(b" of ");
            write_name(n / 16 + 3000, true, w);
        }
        _ => {
            // Settlements: "Kalomate, Chile"
            write_name(n, true, w);
            w.lit(b", ");
            w.put(&COUNTRIES[(n % COUNTRY_COUNT) as usize]);
        }
    }
}

/// A registered user name.
#[inline]
fn write_registered(rank: u32, w: &mut Writer<'_>) {
    if let Some(name) = HOT_USERS.get(rank as usize) {
        w.put(name);
        return;
    }
    let k = permute(rank, REGISTERED_USERS, 7919, 101);
    let n = k / 4;
    match k % 4 {
        0 => {
            // "Anna Kowalski", "Anna Kowalski7"
            w.put(&FIRST_NAMES[(n % 32) as usize]);
            w.byte(b' ');
            w.put(&LAST_NAMES[(n / 32 % 32) as usize]);
            if n >= 1024 {
                w.uint(u64::from(n / 1024));
            }
        }
        1 => {
            // "SilentHarbor", "SilentHarbor33"
            w.put(&ADJECTIVES[(n % 32) as usize]);
            w.put(&NOUNS[(n / 32 % 32) as usize]);
            if n >= 1024 {
                w.uint(u64::from(n / 1024 * 11));
            }
        }
        2 => write_name(n, true, w),
        _ => {
            // "kalomate87"
            write_name(n + 9000, false, w);
            w.uint(u64::from(n * 7 % 90 + 10));
        }
    }
}

/// A bot account, "KalomateBot".
#[inline]
fn write_bot(rank: u32, w: &mut Writer<'_>) {
    if let Some(name) = HOT_BOTS.get(rank as usize) {
        w.put(name);
        return;
    }
    write_name(rank + 500, true, w);
    if rank.is_multiple_of(5) {
        w.lit(b"-bot");
    } else {
        w.lit(b"Bot");
    }
}

/// An anonymous editor's IP address; one in sixteen is IPv6.
#[inline]
fn write_ip(rank: u32, w: &mut Writer<'_>) {
    let h = mix64(u64::from(rank) ^ 0xA5A5_5A5A_0F0F_F0F0);
    if h.is_multiple_of(16) {
        w.lit(b"2001:db8:");
        w.hex((h >> 8) & 0xFFFF);
        w.byte(b':');
        w.hex((h >> 24) & 0xFFFF);
        w.byte(b':');
        w.hex((h >> 40) & 0xFFFF);
        w.lit(b"::");
        w.hex(u64::from(rank));
    } else {
        w.uint(1 + (h >> 8) % 223);
        w.byte(b'.');
        w.uint((h >> 16) & 0xFF);
        w.byte(b'.');
        w.uint((h >> 24) & 0xFF);
        w.byte(b'.');
        w.uint((h >> 32) & 0xFF);
    }
}

// ---------------------------------------------------------------------------------------------
// Word lists
// ---------------------------------------------------------------------------------------------

/// Pages at the head of the popularity ranking; some exercise JSON escaping and UTF-8.
static HOT_PAGES: [Padded<48>; 16] = table([
    "Gypsy Danger",
    "Striker Eureka",
    "Cherno Alpha",
    "Crimson Typhoon",
    "Coyote Tango",
    "Main Page",
    "Zürich",
    "東京",
    "\"Weird Al\" Yankovic",
    "Escape sequences in C (\\n, \\t)",
    "São Paulo",
    "Kraków",
    "Москва",
    "\\begin (LaTeX)",
    "Pokémon",
    "Ελλάδα",
]);

static HOT_USERS: [Padded<32>; 6] =
    table(["nuclear", "Crimson Wikignome", "Tarvendi", "Ellipsis…", "Jürgen Østergaard", "The \"Editor\""]);

static HOT_BOTS: [Padded<32>; 3] = table(["LinkFixerBot", "ArchiveBot", "InterwikiBot"]);

static LANGUAGES: [Padded<4>; 40] = table([
    "en", "de", "fr", "ja", "es", "ru", "it", "zh", "pt", "pl", "nl", "sv", "uk", "ar", "fa", "he", "ko",
    "vi", "id", "tr", "cs", "fi", "hu", "no", "ro", "ca", "da", "el", "th", "bg", "sr", "hr", "sk", "lt",
    "sl", "et", "ms", "hi", "bn", "eo",
]);

static NAMESPACES: [Padded<16>; 10] = table([
    "article",
    "User",
    "Talk",
    "Wikipedia",
    "Category",
    "Template",
    "File",
    "User talk",
    "Portal",
    "Help",
]);

static CONTINENTS: [Padded<16>; 6] =
    table(["North America", "South America", "Europe", "Asia", "Africa", "Oceania"]);
const NAM: u8 = 0;
const SAM: u8 = 1;
const EUR: u8 = 2;
const ASI: u8 = 3;
const AFR: u8 = 4;
const OCE: u8 = 5;

/// Countries with their continent, most active first.
const COUNTRY_LIST: [(&str, u8); 100] = [
    ("United States", NAM),
    ("United Kingdom", EUR),
    ("Germany", EUR),
    ("France", EUR),
    ("Japan", ASI),
    ("India", ASI),
    ("Canada", NAM),
    ("Russia", EUR),
    ("Italy", EUR),
    ("Spain", EUR),
    ("Australia", OCE),
    ("Brazil", SAM),
    ("Netherlands", EUR),
    ("Poland", EUR),
    ("China", ASI),
    ("Sweden", EUR),
    ("Mexico", NAM),
    ("Switzerland", EUR),
    ("Ukraine", EUR),
    ("Turkey", ASI),
    ("South Korea", ASI),
    ("Argentina", SAM),
    ("Indonesia", ASI),
    ("Belgium", EUR),
    ("Austria", EUR),
    ("Israel", ASI),
    ("Iran", ASI),
    ("Norway", EUR),
    ("Finland", EUR),
    ("Denmark", EUR),
    ("Czech Republic", EUR),
    ("Portugal", EUR),
    ("Philippines", ASI),
    ("Vietnam", ASI),
    ("Taiwan", ASI),
    ("Hong Kong", ASI),
    ("Greece", EUR),
    ("Hungary", EUR),
    ("Romania", EUR),
    ("South Africa", AFR),
    ("Colombia", SAM),
    ("Chile", SAM),
    ("Ireland", EUR),
    ("New Zealand", OCE),
    ("Singapore", ASI),
    ("Malaysia", ASI),
    ("Thailand", ASI),
    ("Egypt", AFR),
    ("Saudi Arabia", ASI),
    ("Pakistan", ASI),
    ("Bangladesh", ASI),
    ("Nigeria", AFR),
    ("Peru", SAM),
    ("Venezuela", SAM),
    ("Serbia", EUR),
    ("Croatia", EUR),
    ("Bulgaria", EUR),
    ("Slovakia", EUR),
    ("Slovenia", EUR),
    ("Lithuania", EUR),
    ("Latvia", EUR),
    ("Estonia", EUR),
    ("Belarus", EUR),
    ("Kazakhstan", ASI),
    ("Morocco", AFR),
    ("Algeria", AFR),
    ("Tunisia", AFR),
    ("Kenya", AFR),
    ("Ethiopia", AFR),
    ("Ghana", AFR),
    ("Ecuador", SAM),
    ("Uruguay", SAM),
    ("Bolivia", SAM),
    ("Paraguay", SAM),
    ("Cuba", NAM),
    ("Dominican Republic", NAM),
    ("Puerto Rico", NAM),
    ("Guatemala", NAM),
    ("Costa Rica", NAM),
    ("Panama", NAM),
    ("Iceland", EUR),
    ("Luxembourg", EUR),
    ("Georgia", ASI),
    ("Armenia", ASI),
    ("Azerbaijan", ASI),
    ("Sri Lanka", ASI),
    ("Nepal", ASI),
    ("Myanmar", ASI),
    ("Cambodia", ASI),
    ("Mongolia", ASI),
    ("United Arab Emirates", ASI),
    ("Qatar", ASI),
    ("Jordan", ASI),
    ("Lebanon", ASI),
    ("Iraq", ASI),
    ("Tanzania", AFR),
    ("Uganda", AFR),
    ("Senegal", AFR),
    ("Fiji", OCE),
    ("Côte d'Ivoire", AFR),
];

/// Real (region, city) used as region 0 / city 0 of the first countries.
const LANDMARK_LIST: [(&str, &str); 24] = [
    ("Bay Area", "San Francisco"),
    ("England", "London"),
    ("Bavaria", "München"),
    ("Île-de-France", "Paris"),
    ("Kantō", "東京"),
    ("Maharashtra", "Mumbai"),
    ("Ontario", "Toronto"),
    ("Moscow Oblast", "Москва"),
    ("Lazio", "Roma"),
    ("Catalonia", "Barcelona"),
    ("New South Wales", "Sydney"),
    ("São Paulo", "São Paulo"),
    ("North Holland", "Amsterdam"),
    ("Lesser Poland", "Kraków"),
    ("Beijing", "北京"),
    ("Stockholm County", "Stockholm"),
    ("Mexico City", "Ciudad de México"),
    ("Canton of Zürich", "Zürich"),
    ("Kyiv Oblast", "Київ"),
    ("Istanbul", "İstanbul"),
    ("Seoul Capital Area", "서울"),
    ("Buenos Aires", "Buenos Aires"),
    ("Jakarta", "Jakarta"),
    ("Brussels", "Bruxelles"),
];

static COUNTRIES: [Padded<32>; 100] = table(column(COUNTRY_LIST));
static COUNTRY_CONTINENTS: [u8; 100] = {
    let mut out = [0; 100];
    let mut i = 0;
    while i < out.len() {
        out[i] = COUNTRY_LIST[i].1;
        i += 1;
    }
    out
};
static LANDMARK_REGIONS: [Padded<32>; 24] = table(column(LANDMARK_LIST));
static LANDMARK_CITIES: [Padded<32>; 24] = table(column(swap(LANDMARK_LIST)));

/// The first elements of a list of pairs.
const fn column<T: Copy, const N: usize>(list: [(&'static str, T); N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = list[i].0;
        i += 1;
    }
    out
}

const fn swap<const N: usize>(list: [(&'static str, &'static str); N]) -> [(&'static str, &'static str); N] {
    let mut out = list;
    let mut i = 0;
    while i < N {
        out[i] = (list[i].1, list[i].0);
        i += 1;
    }
    out
}

static REGION_SUFFIXES: [Padded<16>; 8] = table(["", "", " Province", "", "", " County", "", ""]);

static CITY_SUFFIXES: [Padded<16>; 8] = table(["", "", "", "", "", "", "ville", "burg"]);

/// Syllables of made-up names; two carry non-ASCII letters (never first in a syllable).
static SYLLABLES: [Padded<4>; 24] = table([
    "ka", "lo", "ma", "te", "vi", "do", "se", "ra", "nu", "ri", "go", "ha", "el", "mi", "za", "be", "mo",
    "si", "ya", "tü", "we", "lé", "co", "fa",
]);

static ADJECTIVES: [Padded<32>; 32] = table([
    "Red", "Silent", "Golden", "Northern", "Lost", "Iron", "Crimson", "Hidden", "Great", "Little", "Black",
    "White", "Eternal", "Wild", "Broken", "Ancient", "Electric", "Frozen", "Royal", "Sacred", "Dark",
    "Bright", "Hollow", "Last", "First", "Blue", "Green", "Savage", "Quiet", "Burning", "Flying", "Strange",
]);

static NOUNS: [Padded<32>; 32] = table([
    "Danger",
    "River",
    "Mountain",
    "Empire",
    "Garden",
    "Ocean",
    "Kingdom",
    "Harbor",
    "Castle",
    "Forest",
    "Station",
    "Bridge",
    "Island",
    "Valley",
    "Temple",
    "Machine",
    "Dragon",
    "Storm",
    "Tower",
    "Knight",
    "Horizon",
    "Shadow",
    "Railway",
    "Festival",
    "Symphony",
    "Theatre",
    "Lighthouse",
    "Cathedral",
    "Galaxy",
    "Tiger",
    "Orchestra",
    "Frontier",
]);

static QUALIFIERS: [Padded<32>; 25] = table([
    "",
    "album",
    "film",
    "song",
    "band",
    "novel",
    "video game",
    "TV series",
    "1998 film",
    "disambiguation",
    "magazine",
    "comics",
    "play",
    "musical",
    "poem",
    "ship",
    "horse",
    "painting",
    "opera",
    "board game",
    "EP",
    "manga",
    "\"Weird Al\" Yankovic song",
    "sculpture",
    "anime",
]);

static EVENTS: [Padded<32>; 16] = table([
    "Grand Prix",
    "general election",
    "earthquake",
    "floods",
    "census",
    "heat wave",
    "Cup",
    "Open",
    "Cup Final",
    "protests",
    "Games",
    "local elections",
    "by-election",
    "referendum",
    "budget",
    "rally",
]);

static FIRST_NAMES: [Padded<32>; 32] = table([
    "John", "Maria", "Ahmed", "Yuki", "Olga", "Pierre", "Li", "Fatima", "Carlos", "Anna", "Hans", "Priya",
    "Kwame", "Sofia", "Ivan", "Chen", "Emma", "Jürgen", "José", "Aiko", "Lars", "Amara", "Mehmet", "Isabel",
    "Noah", "Zoë", "Dmitri", "Hiroshi", "Grace", "Omar", "Astrid", "Rafael",
]);

static LAST_NAMES: [Padded<32>; 32] = table([
    "Smith",
    "García",
    "Müller",
    "Tanaka",
    "Ivanov",
    "Dubois",
    "Wang",
    "Kowalski",
    "Silva",
    "Nakamura",
    "Andersson",
    "Rossi",
    "Okafor",
    "Novak",
    "Hernández",
    "Kim",
    "O'Brien",
    "Jensen",
    "Yılmaz",
    "Schmidt",
    "Costa",
    "Petrov",
    "Lindqvist",
    "Moreau",
    "Nguyen",
    "Fischer",
    "Santos",
    "Larsen",
    "Kaplan",
    "Rahman",
    "Bauer",
    "Taylor",
]);

static OCCUPATIONS: [Padded<32>; 8] =
    table(["footballer", "politician", "actor", "painter", "composer", "cyclist", "writer", "physicist"]);

static SHIP_PREFIXES: [Padded<32>; 4] = table(["HMS", "USS", "SS", "RMS"]);

static FEATURES: [Padded<32>; 16] = table([
    "Lake",
    "Mount",
    "Cape",
    "River",
    "Bay",
    "Island",
    "Glacier",
    "National Park",
    "Airport",
    "railway station",
    "Castle",
    "Cathedral",
    "Dam",
    "Pass",
    "Falls",
    "Bridge",
]);

static TOPICS: [Padded<32>; 16] = table([
    "History",
    "Battle",
    "Siege",
    "Treaty",
    "Economy",
    "Geography",
    "Demographics",
    "Culture",
    "Politics",
    "Flag",
    "Coat of arms",
    "Music",
    "Cuisine",
    "Timeline",
    "Architecture",
    "Transport",
]);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const START: i64 = 1_377_907_200_000; // 2013-08-31T00:00:00Z
    const END: i64 = START + 86_400_000;

    fn generate(seed: u64, count: usize) -> Vec<u8> {
        let mut out = Vec::new();
        WikipediaGenerator::new(seed).write_events(count, START, END, &mut out);
        out
    }

    fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
        buf.split(|&b| b == b'\n').filter(|l| !l.is_empty())
    }

    fn iso(ms: i64) -> String {
        iso_cached(ms, &mut (i64::MIN, [0; 10]))
    }

    fn iso_cached(ms: i64, cache: &mut (i64, [u8; 10])) -> String {
        let mut out = b"x".to_vec();
        let mut w = Writer::open(&mut out);
        w.timestamp(ms, cache);
        w.close();
        String::from_utf8(out[1..].to_vec()).unwrap()
    }

    /// Days since the epoch for a proleptic Gregorian date (Hinnant's `days_from_civil`).
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// Strict parser for `YYYY-MM-DDTHH:MM:SS.mmmZ`; `None` for anything else.
    fn parse_iso(s: &str) -> Option<i64> {
        let b = s.as_bytes();
        if b.len() != 24 {
            return None;
        }
        let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.')];
        if seps.iter().any(|&(i, c)| b[i] != c) || b[23] != b'Z' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let t = &s[r];
            t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, sec, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        let days = days_from_civil(y, mo, d);
        Some(days * 86_400_000 + h * 3_600_000 + mi * 60_000 + sec * 1000 + ms)
    }

    /// The event's timestamp if `line` is a well-formed event with every field, else `None`.
    fn valid_event(line: &[u8]) -> Option<(i64, serde_json::Map<String, serde_json::Value>)> {
        let v: serde_json::Value = serde_json::from_slice(line).ok()?;
        let obj = v.as_object()?.clone();
        let ts = parse_iso(obj.get("timestamp")?.as_str()?)?;
        for dim in DIMENSIONS {
            obj.get(dim)?.as_str()?;
        }
        for metric in METRIC_FIELDS {
            obj.get(metric)?.as_i64()?;
        }
        Some((ts, obj))
    }

    #[test]
    fn iso_formatting_known_values() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso(1_377_910_953_517), "2013-08-31T01:02:33.517Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso(951_868_800_000), "2000-03-01T00:00:00.000Z");
        assert_eq!(iso(4_107_456_000_000), "2100-02-28T00:00:00.000Z");
        assert_eq!(iso(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(iso(-2_208_988_800_000), "1900-01-01T00:00:00.000Z");
        assert_eq!(iso(-62_167_219_200_000), "0000-01-01T00:00:00.000Z");
        assert_eq!(iso(-62_167_219_200_001), "-000001-12-31T23:59:59.999Z");
        assert_eq!(iso(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(iso(8_640_000_000_000_000), "+275760-09-13T00:00:00.000Z");
        // Extremes don't panic.
        assert!(iso(i64::MIN).starts_with('-'));
        assert!(iso(i64::MAX).starts_with('+'));
    }

    #[test]
    fn iso_formatting_round_trips() {
        let mut rng = Xoshiro256StarStar::new(7);
        // Years 0000..=9999.
        let lo = -62_167_219_200_000i64;
        let hi = 253_402_300_800_000i64;
        let mut cache = (i64::MIN, [0; 10]);
        let mut ms = lo;
        for i in 0..100_000 {
            // Mostly random jumps, sometimes small steps that stay on the cached day.
            ms = if i % 3 == 0 {
                lo + (rng.next_u64() % (hi - lo) as u64) as i64
            } else {
                (ms + (rng.next_u64() % 7_200_000) as i64).min(hi - 1)
            };
            assert_eq!(parse_iso(&iso_cached(ms, &mut cache)), Some(ms), "{ms}");
            assert_eq!(iso_cached(ms, &mut cache), iso(ms));
        }
    }

    #[test]
    fn escaping() {
        let p: Padded<64> = escape_padded("a\"b\\c\nd\u{1}é東");
        let out = &p.bytes[..usize::from(p.len)];
        assert_eq!(out, "a\\\"b\\\\c\\nd\\u0001é東".as_bytes());
        let mut json = b"\"".to_vec();
        json.extend_from_slice(out);
        json.push(b'"');
        let back: String = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é東");
    }

    fn assert_json_strings<const W: usize>(table: &[Padded<W>]) {
        for p in table {
            let mut json = b"\"".to_vec();
            json.extend_from_slice(&p.bytes[..usize::from(p.len)]);
            json.push(b'"');
            let s: Result<String, _> = serde_json::from_slice(&json);
            assert!(s.is_ok(), "{}", String::from_utf8_lossy(&json));
        }
    }

    #[test]
    fn tables_hold_valid_json_strings() {
        assert_json_strings(&HOT_PAGES);
        assert_json_strings(&HOT_USERS);
        assert_json_strings(&HOT_BOTS);
        assert_json_strings(&LANGUAGES);
        assert_json_strings(&NAMESPACES);
        assert_json_strings(&CONTINENTS);
        assert_json_strings(&COUNTRIES);
        assert_json_strings(&LANDMARK_REGIONS);
        assert_json_strings(&LANDMARK_CITIES);
        assert_json_strings(&REGION_SUFFIXES);
        assert_json_strings(&CITY_SUFFIXES);
        assert_json_strings(&SYLLABLES);
        assert_json_strings(&ADJECTIVES);
        assert_json_strings(&NOUNS);
        assert_json_strings(&QUALIFIERS);
        assert_json_strings(&EVENTS);
        assert_json_strings(&FIRST_NAMES);
        assert_json_strings(&LAST_NAMES);
        assert_json_strings(&OCCUPATIONS);
        assert_json_strings(&SHIP_PREFIXES);
        assert_json_strings(&FEATURES);
        assert_json_strings(&TOPICS);
        // Spot-check the escaping of the hot entries that need it.
        let weird = &HOT_PAGES[8];
        assert_eq!(&weird.bytes[..usize::from(weird.len)], br#"\"Weird Al\" Yankovic"#);
    }

    #[test]
    fn deterministic_per_seed() {
        let a = generate(42, 5_000);
        let b = generate(42, 5_000);
        assert_eq!(a, b);
        assert_ne!(a, generate(43, 5_000));

        let mut g1 = WikipediaGenerator::new(9);
        let mut g2 = g1.clone();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..1000 {
            g1.write_event(START + i, &mut x);
            g2.write_event(START + i, &mut y);
        }
        assert_eq!(x, y);
    }

    fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
    }

    #[test]
    fn pinned_output() {
        // Guards stability across platforms and versions: same seed, same bytes. Change these
        // deliberately (it changes every benchmark's data), never casually.
        let mut out = Vec::new();
        WikipediaGenerator::new(0).write_event(1_377_910_953_517, &mut out);
        assert_eq!(std::str::from_utf8(&out).unwrap(), PINNED_LINE);
        assert_eq!(fnv1a(&generate(0, 10_000)), PINNED_HASH);
    }

    const PINNED_LINE: &str = r#"{"timestamp":"2013-08-31T01:02:33.517Z","page":"(158330) Hakabelo","language":"ko","user":"SilentTheatre55","unpatrolled":"false","newPage":"false","robot":"false","anonymous":"false","namespace":"User","continent":"Europe","country":"Belarus","region":"Léelka","city":"Viléka","added":0,"deleted":0,"delta":0}"#;
    const PINNED_HASH: u64 = 75_953_284_427_540_377;

    #[test]
    fn events_are_valid_complete_and_sorted() {
        let buf = generate(1, 20_000);
        assert_eq!(buf.last(), Some(&b'\n'));
        let mut prev = i64::MIN;
        let mut n = 0;
        let mut continent_of: HashMap<String, String> = HashMap::new();
        let mut country_of: HashMap<String, String> = HashMap::new();
        let mut region_of: HashMap<String, String> = HashMap::new();
        for line in lines(&buf) {
            n += 1;
            let (ts, obj) =
                valid_event(line).unwrap_or_else(|| panic!("invalid: {}", String::from_utf8_lossy(line)));
            assert_eq!(obj.len(), 1 + DIMENSIONS.len() + METRIC_FIELDS.len());
            assert!((START..END).contains(&ts));
            assert!(ts >= prev);
            prev = ts;
            for flag in ["unpatrolled", "newPage", "robot", "anonymous"] {
                let v = obj[flag].as_str().unwrap();
                assert!(v == "true" || v == "false", "{flag}={v}");
            }
            assert!(!(obj["robot"] == "true" && obj["anonymous"] == "true"));
            let added = obj["added"].as_i64().unwrap();
            let deleted = obj["deleted"].as_i64().unwrap();
            assert!(added >= 0 && deleted >= 0);
            assert_eq!(obj["delta"].as_i64().unwrap(), added - deleted);
            for dim in DIMENSIONS {
                assert!(!obj[dim].as_str().unwrap().is_empty(), "empty {dim}");
            }
            let s = |k: &str| obj[k].as_str().unwrap().to_string();
            assert_eq!(continent_of.entry(s("country")).or_insert(s("continent")), &s("continent"));
            assert_eq!(country_of.entry(s("region")).or_insert(s("country")), &s("country"));
            assert_eq!(region_of.entry(s("city")).or_insert(s("region")), &s("region"));
        }
        assert_eq!(n, 20_000);
    }

    #[test]
    fn timestamps_cover_range() {
        let buf = generate(3, 1000);
        let ts: Vec<i64> = lines(&buf).map(|l| valid_event(l).unwrap().0).collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]));
        assert!(ts[0] < START + 86_400_000 / 500);
        assert!(ts[999] > END - 86_400_000 / 500);

        // Degenerate ranges.
        let mut out = Vec::new();
        let mut g = WikipediaGenerator::new(3);
        g.write_events(3, START, START, &mut out);
        g.write_events(3, END, START, &mut out);
        g.write_events(0, START, END, &mut out);
        let ts: Vec<i64> = lines(&out).map(|l| valid_event(l).unwrap().0).collect();
        assert_eq!(ts, [START, START, START, END, END, END]);

        // Full i64 range doesn't overflow.
        let mut out = Vec::new();
        g.write_events(10, i64::MIN, i64::MAX, &mut out);
        assert_eq!(lines(&out).count(), 10);
    }

    /// The (key, raw value) pairs of one of our flat event lines, string values still escaped
    /// and without their quotes. Plain loops: this runs over 60 MB in unoptimised builds.
    fn raw_fields(line: &[u8]) -> [(&[u8], &[u8]); 16] {
        let mut fields: [(&[u8], &[u8]); 16] = [(&[], &[]); 16];
        let mut i = 1; // after '{'
        for field in &mut fields {
            let key_start = i + 1; // after '"'
            let mut j = key_start;
            while line[j] != b'"' {
                j += 1;
            }
            let key_end = j;
            i = key_end + 2; // after ':'
            let (start, end) = if line[i] == b'"' {
                j = i + 1;
                while line[j] != b'"' {
                    j += if line[j] == b'\\' { 2 } else { 1 };
                }
                (i + 1, j)
            } else {
                j = i;
                while line[j] != b',' && line[j] != b'}' {
                    j += 1;
                }
                (i, j)
            };
            *field = (&line[key_start..key_end], &line[start..end]);
            i = end + usize::from(line[end] == b'"') + 1; // after ',' or '}'
        }
        assert_eq!(i, line.len());
        fields
    }

    /// Counts distinct byte strings by 64-bit fingerprint (open addressing; collisions are
    /// negligible at these sizes). Cheaper than `HashSet` in unoptimised builds.
    struct Distinct {
        table: Vec<u64>,
        len: usize,
    }

    impl Distinct {
        fn new() -> Self {
            Self { table: vec![0; 1 << 10], len: 0 }
        }

        fn insert(&mut self, v: &[u8]) {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            let mut i = 0;
            while i < v.len() {
                h = (h ^ u64::from(v[i])).wrapping_mul(0x100_0000_01b3);
                i += 1;
            }
            let h = mix64(h) | 1; // 0 marks an empty slot
            let mask = self.table.len() - 1;
            let mut slot = h as usize & mask;
            while self.table[slot] != 0 {
                if self.table[slot] == h {
                    return;
                }
                slot = (slot + 1) & mask;
            }
            self.table[slot] = h;
            self.len += 1;
            if self.len * 2 > self.table.len() {
                let grown = vec![0; self.table.len() * 2];
                let old = std::mem::replace(&mut self.table, grown);
                let mask = self.table.len() - 1;
                for h in old.into_iter().filter(|&h| h != 0) {
                    let mut slot = h as usize & mask;
                    while self.table[slot] != 0 {
                        slot = (slot + 1) & mask;
                    }
                    self.table[slot] = h;
                }
            }
        }
    }

    #[test]
    fn length_cardinality_and_skew() {
        // Fields are read raw (escaping is a bijection, so distinct counts are unaffected);
        // the JSON itself is checked by `events_are_valid_complete_and_sorted`.
        let count = 200_000;
        let buf = generate(2024, count);
        let avg = (buf.len() - count) as f64 / count as f64;
        assert!((270.0..=330.0).contains(&avg), "average line length {avg}");

        let mut distinct: Vec<Distinct> = DIMENSIONS.iter().map(|_| Distinct::new()).collect();
        let mut trues = [0usize; DIMENSIONS.len()];
        let (mut quote, mut backslash, mut non_ascii, mut max) = (false, false, false, 0);
        for line in lines(&buf) {
            max = max.max(line.len());
            let fields = raw_fields(line);
            assert_eq!(fields[0].0, b"timestamp");
            for d in 0..DIMENSIONS.len() {
                let (key, v) = fields[d + 1];
                assert_eq!(key, DIMENSIONS[d].as_bytes());
                distinct[d].insert(v);
                if v == b"true" {
                    trues[d] += 1;
                }
                if d == 0 || d == 2 {
                    // page, user
                    for w in v.windows(2) {
                        quote |= w == b"\\\"";
                        backslash |= w == b"\\\\";
                    }
                    non_ascii |= !v.is_ascii();
                }
            }
        }
        assert!(quote && backslash && non_ascii);
        assert!(max < LINE_MAX - 64, "longest line {max}");

        let index = |dim: &str| DIMENSIONS.iter().position(|d| *d == dim).unwrap();
        let n = |dim: &str| distinct[index(dim)].len;
        assert!(n("page") > 50_000, "page {}", n("page"));
        assert!(n("user") > 20_000, "user {}", n("user"));
        assert!((20..50).contains(&n("language")), "language {}", n("language"));
        assert!((5..=10).contains(&n("namespace")));
        assert_eq!(n("continent"), 6);
        assert!((60..=100).contains(&n("country")), "country {}", n("country"));
        assert!((300..=1000).contains(&n("region")), "region {}", n("region"));
        assert!((1000..=3000).contains(&n("city")), "city {}", n("city"));
        // Flags: different, sensible ratios.
        let ratio = |dim: &str| trues[index(dim)] as f64 / count as f64;
        assert!((0.05..0.15).contains(&ratio("robot")));
        assert!((0.10..0.20).contains(&ratio("anonymous")));
        assert!((0.15..0.35).contains(&ratio("unpatrolled")));
        assert!((0.03..0.12).contains(&ratio("newPage")));
        eprintln!(
            "avg {avg:.1} B, max {max} B; distinct: {:?}; true ratios: {:?}",
            DIMENSIONS.map(|d| (d, n(d))),
            ["unpatrolled", "newPage", "robot", "anonymous"].map(|d| (d, ratio(d)))
        );
    }

    #[test]
    fn malformed_lines_are_not_valid_events() {
        let mut g = WikipediaGenerator::new(5);
        let mut kinds = [0usize; 3];
        for _ in 0..300 {
            let mut out = Vec::new();
            g.write_malformed(&mut out);
            assert!(!out.contains(&b'\n'));
            let text = std::str::from_utf8(&out).expect("malformed lines are still UTF-8");
            assert!(valid_event(&out).is_none(), "{text}");
            match serde_json::from_slice::<serde_json::Value>(&out) {
                Err(_) => kinds[0] += 1,
                Ok(v) if v.get("timestamp").is_none() => kinds[1] += 1,
                Ok(v) => {
                    assert_eq!(v["timestamp"], "yesterday");
                    kinds[2] += 1;
                }
            }
        }
        assert_eq!(kinds, [100, 100, 100]);
    }
}
