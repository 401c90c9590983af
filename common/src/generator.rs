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
//! on every platform. Values are built from short word lists compiled into this file:
//!
//! * `page`: ~200k distinct titles, rank drawn with a power-law skew (a cheap Zipf stand-in);
//!   a few hot titles carry a quote, backslashes or non-ASCII UTF-8 so consumers get exercised.
//! * `user`: ~50k distinct; registered names, `…Bot` names (`robot` = "true") and IP addresses
//!   (`anonymous` = "true").
//! * `language` 40, `namespace` 10, `country` 100 (each with one `continent`), `region` ~1000
//!   (each within one country), `city` ~3000 (each within one region).
//! * `unpatrolled`, `newPage`, `robot`, `anonymous`: "true"/"false" at different ratios.
//! * `added`, `deleted` skewed towards small numbers; `delta` = `added` - `deleted`.
//!
//! Lines average about 300 bytes.

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
}

impl WikipediaGenerator {
    /// A generator whose output is fully determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { rng: Xoshiro256StarStar::new(seed), malformed_count: 0 }
    }

    /// Appends one event line (without newline) with the given event time (UTC ms) to `out`.
    ///
    /// Allocates nothing besides growing `out`.
    pub fn write_event(&mut self, timestamp_ms: i64, out: &mut Vec<u8>) {
        out.reserve(LINE_RESERVE);
        out.extend_from_slice(b"{\"timestamp\":\"");
        write_iso_millis(timestamp_ms, out);
        out.extend_from_slice(b"\",");
        self.write_body(out);
    }

    /// Appends `count` events spread over `[start_ms, end_ms)` in ascending time order, each
    /// newline-terminated.
    ///
    /// Timestamps are uniform over the range and non-decreasing: the range is cut into `count`
    /// equal strata and event `i` falls uniformly at random within stratum `i`. If
    /// `end_ms <= start_ms` every event gets `start_ms`.
    pub fn write_events(&mut self, count: usize, start_ms: i64, end_ms: i64, out: &mut Vec<u8>) {
        out.reserve(count.saturating_mul(LINE_RESERVE));
        let span: u128 =
            if end_ms > start_ms { (i128::from(end_ms) - i128::from(start_ms)) as u128 } else { 0 };
        let count128 = count as u128;
        for i in 0..count {
            // span <= 2^64 and r < span, so i * span + r < count * span <= 2^128.
            let r = (u128::from(self.rng.next_u64()) * span) >> 64;
            let offset = (i as u128 * span + r) / count128;
            let ts = (i128::from(start_ms) + offset as i128) as i64;
            self.write_event(ts, out);
            out.push(b'\n');
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
                out.reserve(LINE_RESERVE);
                out.push(b'{');
                self.write_body(out);
            }
            _ => {
                out.reserve(LINE_RESERVE);
                out.extend_from_slice(b"{\"timestamp\":\"yesterday\",");
                self.write_body(out);
            }
        }
    }

    /// Everything after the timestamp: `"page":…,"delta":N}`.
    fn write_body(&mut self, out: &mut Vec<u8>) {
        let rng = &mut self.rng;

        out.extend_from_slice(b"\"page\":\"");
        write_page(rng, out);

        out.extend_from_slice(b"\",\"language\":\"");
        out.extend_from_slice(LANGUAGES[rng.skew3(LANGUAGES.len() as u32) as usize].as_bytes());

        let robot = rng.chance(ROBOT_PER_MILLE);
        let anonymous = !robot && rng.chance(ANONYMOUS_PER_MILLE);
        out.extend_from_slice(b"\",\"user\":\"");
        if robot {
            write_bot(rng.skew2(BOT_USERS), out);
        } else if anonymous {
            write_ip(rng.skew2(ANONYMOUS_USERS), out);
        } else {
            write_registered(rng.skew2(REGISTERED_USERS), out);
        }

        let unpatrolled = rng.chance(if robot {
            20
        } else if anonymous {
            600
        } else {
            200
        });
        let new_page = rng.chance(if robot { 150 } else { 60 });
        out.extend_from_slice(b"\",\"unpatrolled\":\"");
        push_bool(unpatrolled, out);
        out.extend_from_slice(b"\",\"newPage\":\"");
        push_bool(new_page, out);
        out.extend_from_slice(b"\",\"robot\":\"");
        push_bool(robot, out);
        out.extend_from_slice(b"\",\"anonymous\":\"");
        push_bool(anonymous, out);

        out.extend_from_slice(b"\",\"namespace\":\"");
        out.extend_from_slice(NAMESPACES[rng.skew3(NAMESPACES.len() as u32) as usize].as_bytes());

        // Geography: country -> region (10 per country) -> city (3 per region).
        let country = rng.skew3(COUNTRIES.len() as u32);
        let region_local = rng.skew2(REGIONS_PER_COUNTRY);
        let city_local = rng.skew2(CITIES_PER_REGION);
        let (country_name, continent) = COUNTRIES[country as usize];
        out.extend_from_slice(b"\",\"continent\":\"");
        out.extend_from_slice(CONTINENTS[continent as usize].as_bytes());
        out.extend_from_slice(b"\",\"country\":\"");
        push_escaped(country_name, out);
        out.extend_from_slice(b"\",\"region\":\"");
        let landmark = if region_local == 0 { LANDMARKS.get(country as usize) } else { None };
        let region = country * REGIONS_PER_COUNTRY + region_local;
        match landmark {
            Some((name, _)) => push_escaped(name, out),
            None => {
                write_name(permute(region, REGION_COUNT, 389, 17), true, out);
                out.extend_from_slice(REGION_SUFFIXES[(region % 8) as usize].as_bytes());
            }
        }
        out.extend_from_slice(b"\",\"city\":\"");
        let city = region * CITIES_PER_REGION + city_local;
        match landmark {
            Some((_, name)) if city_local == 0 => push_escaped(name, out),
            _ => {
                write_name(permute(city, CITY_COUNT, 1237, 4000), true, out);
                let suffix = (mix64(u64::from(city)) % CITY_SUFFIXES.len() as u64) as usize;
                out.extend_from_slice(CITY_SUFFIXES[suffix].as_bytes());
            }
        }

        // Metrics: mostly small edits, occasionally large; new pages add a lot, delete nothing.
        let added: i64 = if new_page {
            200 + i64::from(rng.skew3(20_000))
        } else if rng.chance(120) {
            0
        } else {
            i64::from(rng.skew3(4_000))
        };
        let deleted: i64 = if new_page || rng.chance(550) { 0 } else { i64::from(rng.skew3(2_500)) };
        out.extend_from_slice(b"\",\"added\":");
        push_i64(added, out);
        out.extend_from_slice(b",\"deleted\":");
        push_i64(deleted, out);
        out.extend_from_slice(b",\"delta\":");
        push_i64(added - deleted, out);
        out.push(b'}');
    }
}

/// Bytes reserved per line up front (lines average ~300 bytes).
const LINE_RESERVE: usize = 512;
/// 2013-08-31T00:00:00Z, the day of Druid's wikipedia sample.
const MALFORMED_BASE_MS: i64 = 1_377_907_200_000;

const PAGE_COUNT: u32 = 200_000;
const BOT_USERS: u32 = 500;
const ANONYMOUS_USERS: u32 = 15_000;
const REGISTERED_USERS: u32 = 34_500;
const ROBOT_PER_MILLE: u32 = 100;
const ANONYMOUS_PER_MILLE: u32 = 170;
const REGIONS_PER_COUNTRY: u32 = 10;
const CITIES_PER_REGION: u32 = 3;
const REGION_COUNT: u32 = 100 * REGIONS_PER_COUNTRY;
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
// Output helpers
// ---------------------------------------------------------------------------------------------

#[inline]
fn push_bool(b: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// Appends `s` as the inside of a JSON string: `"`, `\` and control characters escaped,
/// other UTF-8 passed through.
#[inline]
fn push_escaped(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    if !bytes.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20) {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xF)]);
            }
            _ => out.push(b),
        }
    }
}

#[inline]
fn push_u64(mut v: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[inline]
fn push_i64(v: i64, out: &mut Vec<u8>) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(v.unsigned_abs(), out);
}

/// Appends `v` zero-padded to at least `width` digits.
#[inline]
fn push_padded(v: u64, width: usize, out: &mut Vec<u8>) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let start = i.min(buf.len() - width.min(buf.len()));
    out.extend_from_slice(&buf[start..]);
}

/// Appends `ms` (milliseconds since the Unix epoch, UTC) as ISO 8601 with milliseconds and
/// `Z`, e.g. `2013-08-31T01:02:33.517Z`. Years outside 0000–9999 use the expanded form with a
/// sign and at least six digits (`+275760-09-13T00:00:00.000Z`), as JavaScript does.
fn write_iso_millis(ms: i64, out: &mut Vec<u8>) {
    let days = ms.div_euclid(86_400_000);
    let ms_of_day = ms.rem_euclid(86_400_000) as u64;
    let (year, month, day) = civil_from_days(days);
    if (0..=9999).contains(&year) {
        push_padded(year as u64, 4, out);
    } else {
        out.push(if year < 0 { b'-' } else { b'+' });
        push_padded(year.unsigned_abs(), 6, out);
    }
    out.push(b'-');
    push_padded(u64::from(month), 2, out);
    out.push(b'-');
    push_padded(u64::from(day), 2, out);
    out.push(b'T');
    push_padded(ms_of_day / 3_600_000, 2, out);
    out.push(b':');
    push_padded(ms_of_day / 60_000 % 60, 2, out);
    out.push(b':');
    push_padded(ms_of_day / 1000 % 60, 2, out);
    out.push(b'.');
    push_padded(ms_of_day % 1000, 3, out);
    out.push(b'Z');
}

/// Days since 1970-01-01 to proleptic Gregorian (year, month, day); Howard Hinnant's
/// `civil_from_days`.
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

/// Appends a pronounceable made-up name for `k` (injective below 24^3 = 13824; a fourth
/// syllable extends it), capitalised or not.
fn write_name(k: u32, capitalise: bool, out: &mut Vec<u8>) {
    let n = SYLLABLES.len() as u32;
    let parts = [k % n, k / n % n, k / (n * n) % n, k / (n * n * n) % n];
    let syllables = if parts[3] == 0 { 3 } else { 4 };
    for (i, &p) in parts[..syllables].iter().enumerate() {
        let s = SYLLABLES[p as usize].as_bytes();
        if i == 0 && capitalise {
            out.push(s[0].to_ascii_uppercase());
            out.extend_from_slice(&s[1..]);
        } else {
            out.extend_from_slice(s);
        }
    }
}

/// Appends the title of a page drawn with a skewed rank.
fn write_page(rng: &mut Xoshiro256StarStar, out: &mut Vec<u8>) {
    let rank = rng.skew2(PAGE_COUNT);
    if let Some(title) = HOT_PAGES.get(rank as usize) {
        push_escaped(title, out);
        return;
    }
    let k = permute(rank, PAGE_COUNT, 7919, 12_345);
    // Eight templates, each injective on n in [0, 25000).
    let n = k / 8;
    match k % 8 {
        0 => {
            // "Crimson Lighthouse (novel)"
            push_escaped(ADJECTIVES[(n % 32) as usize], out);
            out.push(b' ');
            push_escaped(NOUNS[(n / 32 % 32) as usize], out);
            let q = (n / 1024) as usize;
            if q > 0 {
                out.extend_from_slice(b" (");
                push_escaped(QUALIFIERS[q % QUALIFIERS.len()], out);
                out.push(b')');
            }
        }
        1 => {
            // "1987 Japan Grand Prix"
            let year = n % 125;
            let country = n / 125 % 100;
            let event = (n / 12_500 + year + country) % EVENTS.len() as u32;
            push_u64(u64::from(1900 + year), out);
            out.push(b' ');
            push_escaped(COUNTRIES[country as usize].0, out);
            out.push(b' ');
            push_escaped(EVENTS[event as usize], out);
        }
        2 => {
            // Minor planets: "(21407) Kalomarten"
            out.push(b'(');
            push_u64(u64::from(1000 + n * 7 + n % 7), out);
            out.extend_from_slice(b") ");
            write_name(n, true, out);
        }
        3 => {
            // "Yuki Müller", "Yuki C. Müller (cyclist)"
            push_escaped(FIRST_NAMES[(n % 32) as usize], out);
            out.push(b' ');
            let q = n / 1024; // [0, 24]
            if q > 0 {
                out.push(b'A' + (q % 8) as u8);
                out.extend_from_slice(b". ");
            }
            push_escaped(LAST_NAMES[(n / 32 % 32) as usize], out);
            if q >= 8 {
                out.extend_from_slice(b" (");
                push_escaped(OCCUPATIONS[(q / 8 - 1) as usize], out);
                out.push(b')');
            }
        }
        4 => {
            // "HMS Tiger (1853)"
            push_escaped(SHIP_PREFIXES[(n % 4) as usize], out);
            out.push(b' ');
            if (n / 4).is_multiple_of(3) {
                push_escaped(ADJECTIVES[(n / 12 % 32) as usize], out);
                out.push(b' ');
            }
            push_escaped(NOUNS[(n / 4 % 32) as usize], out);
            out.extend_from_slice(b" (");
            push_u64(u64::from(1800 + n / 128), out);
            out.push(b')');
        }
        5 => {
            // "Lake Tarvendi", "Kelmora National Park"
            let feature = (n % 16) as usize;
            let name = n / 16 + 7000;
            if feature < 3 {
                push_escaped(FEATURES[feature], out);
                out.push(b' ');
                write_name(name, true, out);
            } else {
                write_name(name, true, out);
                out.push(b' ');
                push_escaped(FEATURES[feature], out);
            }
        }
        6 => {
            // "History of Kelmora"
            push_escaped(TOPICS[(n % 16) as usize], out);
            out.extend_from_slice(b" of ");
            write_name(n / 16 + 3000, true, out);
        }
        _ => {
            // Settlements: "Kalomate, Chile"
            write_name(n, true, out);
            out.extend_from_slice(b", ");
            push_escaped(COUNTRIES[(n % 100) as usize].0, out);
        }
    }
}

/// A registered user name.
fn write_registered(rank: u32, out: &mut Vec<u8>) {
    if let Some(name) = HOT_USERS.get(rank as usize) {
        push_escaped(name, out);
        return;
    }
    let k = permute(rank, REGISTERED_USERS, 7919, 101);
    let n = k / 4;
    match k % 4 {
        0 => {
            // "Anna Kowalski", "Anna Kowalski7"
            push_escaped(FIRST_NAMES[(n % 32) as usize], out);
            out.push(b' ');
            push_escaped(LAST_NAMES[(n / 32 % 32) as usize], out);
            if n >= 1024 {
                push_u64(u64::from(n / 1024), out);
            }
        }
        1 => {
            // "SilentHarbor", "SilentHarbor37"
            push_escaped(ADJECTIVES[(n % 32) as usize], out);
            push_escaped(NOUNS[(n / 32 % 32) as usize], out);
            if n >= 1024 {
                push_u64(u64::from(n / 1024 * 11), out);
            }
        }
        2 => write_name(n, true, out),
        _ => {
            // "kalomar87"
            write_name(n + 9000, false, out);
            push_u64(u64::from(n * 7 % 90 + 10), out);
        }
    }
}

/// A bot account, "KalomarBot".
fn write_bot(rank: u32, out: &mut Vec<u8>) {
    if let Some(name) = HOT_BOTS.get(rank as usize) {
        push_escaped(name, out);
        return;
    }
    write_name(rank + 500, true, out);
    out.extend_from_slice(if rank.is_multiple_of(5) { b"-bot" } else { b"Bot" });
}

/// An anonymous editor's IP address; one in sixteen is IPv6.
fn write_ip(rank: u32, out: &mut Vec<u8>) {
    let h = mix64(u64::from(rank) ^ 0xA5A5_5A5A_0F0F_F0F0);
    if h.is_multiple_of(16) {
        out.extend_from_slice(b"2001:db8:");
        push_hex((h >> 8) & 0xFFFF, out);
        out.push(b':');
        push_hex((h >> 24) & 0xFFFF, out);
        out.push(b':');
        push_hex((h >> 40) & 0xFFFF, out);
        out.extend_from_slice(b"::");
        push_hex(u64::from(rank), out);
    } else {
        push_u64(1 + (h >> 8) % 223, out);
        for shift in [16, 24, 32] {
            out.push(b'.');
            push_u64((h >> shift) & 0xFF, out);
        }
    }
}

/// Lowercase hex without leading zeros.
fn push_hex(v: u64, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = HEX[(v & 0xF) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

// ---------------------------------------------------------------------------------------------
// Word lists
// ---------------------------------------------------------------------------------------------

/// Pages at the head of the popularity ranking; some exercise JSON escaping and UTF-8.
const HOT_PAGES: [&str; 16] = [
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
];

const HOT_USERS: [&str; 6] =
    ["nuclear", "Crimson Wikignome", "Tarvendi", "Ellipsis…", "Jürgen Østergaard", "The \"Editor\""];

const HOT_BOTS: [&str; 3] = ["LinkFixerBot", "ArchiveBot", "InterwikiBot"];

const LANGUAGES: [&str; 40] = [
    "en", "de", "fr", "ja", "es", "ru", "it", "zh", "pt", "pl", "nl", "sv", "uk", "ar", "fa", "he", "ko",
    "vi", "id", "tr", "cs", "fi", "hu", "no", "ro", "ca", "da", "el", "th", "bg", "sr", "hr", "sk", "lt",
    "sl", "et", "ms", "hi", "bn", "eo",
];

const NAMESPACES: [&str; 10] =
    ["article", "User", "Talk", "Wikipedia", "Category", "Template", "File", "User talk", "Portal", "Help"];

const CONTINENTS: [&str; 6] = ["North America", "South America", "Europe", "Asia", "Africa", "Oceania"];
const NAM: u8 = 0;
const SAM: u8 = 1;
const EUR: u8 = 2;
const ASI: u8 = 3;
const AFR: u8 = 4;
const OCE: u8 = 5;

/// Countries with their continent, most active first.
const COUNTRIES: [(&str, u8); 100] = [
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
const LANDMARKS: [(&str, &str); 24] = [
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

const REGION_SUFFIXES: [&str; 8] = ["", "", " Province", "", "", " County", "", ""];

const CITY_SUFFIXES: [&str; 8] = ["", "", "", "", "", "", "ville", "burg"];

/// Syllables of made-up names; two carry non-ASCII letters (never first in a syllable).
const SYLLABLES: [&str; 24] = [
    "ka", "lo", "ma", "te", "vi", "do", "se", "ra", "nu", "ri", "go", "ha", "el", "mi", "za", "be", "mo",
    "si", "ya", "tü", "we", "lé", "co", "fa",
];

const ADJECTIVES: [&str; 32] = [
    "Red", "Silent", "Golden", "Northern", "Lost", "Iron", "Crimson", "Hidden", "Great", "Little", "Black",
    "White", "Eternal", "Wild", "Broken", "Ancient", "Electric", "Frozen", "Royal", "Sacred", "Dark",
    "Bright", "Hollow", "Last", "First", "Blue", "Green", "Savage", "Quiet", "Burning", "Flying", "Strange",
];

const NOUNS: [&str; 32] = [
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
];

const QUALIFIERS: [&str; 25] = [
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
];

const EVENTS: [&str; 16] = [
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
];

const FIRST_NAMES: [&str; 32] = [
    "John", "Maria", "Ahmed", "Yuki", "Olga", "Pierre", "Li", "Fatima", "Carlos", "Anna", "Hans", "Priya",
    "Kwame", "Sofia", "Ivan", "Chen", "Emma", "Jürgen", "José", "Aiko", "Lars", "Amara", "Mehmet", "Isabel",
    "Noah", "Zoë", "Dmitri", "Hiroshi", "Grace", "Omar", "Astrid", "Rafael",
];

const LAST_NAMES: [&str; 32] = [
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
];

const OCCUPATIONS: [&str; 8] =
    ["footballer", "politician", "actor", "painter", "composer", "cyclist", "writer", "physicist"];

const SHIP_PREFIXES: [&str; 4] = ["HMS", "USS", "SS", "RMS"];

const FEATURES: [&str; 16] = [
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
];

const TOPICS: [&str; 16] = [
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
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

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
        let mut out = Vec::new();
        write_iso_millis(ms, &mut out);
        String::from_utf8(out).unwrap()
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
        for _ in 0..100_000 {
            let ms = lo + (rng.next_u64() % (hi - lo) as u64) as i64;
            assert_eq!(parse_iso(&iso(ms)), Some(ms), "{ms}");
        }
    }

    #[test]
    fn escaping() {
        let mut out = Vec::new();
        push_escaped("a\"b\\c\nd\u{1}é東", &mut out);
        assert_eq!(out, "a\\\"b\\\\c\\nd\\u0001é東".as_bytes());
        let mut json = b"\"".to_vec();
        json.extend_from_slice(&out);
        json.push(b'"');
        let back: String = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é東");
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

    #[test]
    fn pinned_output() {
        // Guards cross-platform/cross-version stability: update deliberately, never casually.
        let mut out = Vec::new();
        WikipediaGenerator::new(0).write_event(1_377_910_953_517, &mut out);
        let line = String::from_utf8(out).unwrap();
        assert!(line.starts_with("{\"timestamp\":\"2013-08-31T01:02:33.517Z\",\"page\":"));
        let hash = line
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        assert_eq!(hash, PINNED_HASH, "{line}");
    }

    const PINNED_HASH: u64 = 0;

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

    #[test]
    fn length_cardinality_and_skew() {
        let count = 200_000;
        let buf = generate(2024, count);
        let avg = (buf.len() - count) as f64 / count as f64;
        assert!((270.0..=330.0).contains(&avg), "average line length {avg}");

        let mut distinct: HashMap<&str, HashSet<String>> = HashMap::new();
        let mut trues: HashMap<&str, usize> = HashMap::new();
        let (mut quote, mut backslash, mut non_ascii) = (false, false, false);
        for line in lines(&buf) {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            let obj = v.as_object().unwrap();
            for dim in DIMENSIONS {
                let s = obj[dim].as_str().unwrap();
                if s == "true" {
                    *trues.entry(dim).or_default() += 1;
                }
                quote |= s.contains('"');
                backslash |= s.contains('\\');
                non_ascii |= !s.is_ascii();
                let set = distinct.entry(dim).or_default();
                if !set.contains(s) {
                    set.insert(s.to_string());
                }
            }
        }
        assert!(quote && backslash && non_ascii);
        let n = |dim: &str| distinct[dim].len();
        assert!(n("page") > 50_000, "page {}", n("page"));
        assert!(n("user") > 20_000, "user {}", n("user"));
        assert!((20..50).contains(&n("language")), "language {}", n("language"));
        assert!((5..=10).contains(&n("namespace")));
        assert_eq!(n("continent"), 6);
        assert!((60..=100).contains(&n("country")), "country {}", n("country"));
        assert!((300..=1000).contains(&n("region")), "region {}", n("region"));
        assert!((1000..=3000).contains(&n("city")), "city {}", n("city"));
        // Flags: different, sensible ratios.
        let ratio = |dim: &str| trues[dim] as f64 / count as f64;
        assert!((0.05..0.15).contains(&ratio("robot")));
        assert!((0.10..0.20).contains(&ratio("anonymous")));
        assert!((0.15..0.35).contains(&ratio("unpatrolled")));
        assert!((0.03..0.12).contains(&ratio("newPage")));
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
