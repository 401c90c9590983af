//! The fast path for the usual event: one flat JSON object whose values are strings without
//! escapes, numbers, booleans and nulls. It reads the line once, byte by byte, with none of
//! serde's per-value dispatch. Anything else (an escape, a nested value, a value its field
//! refuses, a syntax error) makes it give up, and serde_json reads the event again from the
//! start and gives the exact error; so this path accepts only what serde_json accepts, and
//! reads it to the same values.

use super::parse::{Value, cached_slot, intern_deferred, slot_at, store};
use super::{Dictionary, RollupIndex, Slot};

/// Reads one event into the scratch row; false when serde_json must read it instead (the
/// scratch row is then partly written and must be cleared).
pub(super) fn parse_flat(index: &mut RollupIndex, text: &str) -> bool {
    let mut reader = Reader { text, bytes: text.as_bytes(), pos: 0 };
    if read_object(index, &mut reader).is_none() {
        return false;
    }
    intern_deferred(index, text);
    true
}

fn read_object(index: &mut RollupIndex, r: &mut Reader<'_>) -> Option<()> {
    r.skip_whitespace();
    r.eat(b'{')?;
    r.skip_whitespace();
    if r.eat(b'}').is_none() {
        let mut position = 0;
        loop {
            r.eat(b'"')?;
            let slot = match cached_slot(index, position, &r.bytes[r.pos..]) {
                Some((slot, taken)) => {
                    r.pos += taken;
                    slot
                }
                None => {
                    let key = r.string()?;
                    slot_at(index, position, key)
                }
            };
            position += 1;
            r.skip_whitespace();
            r.eat(b':')?;
            r.skip_whitespace();
            let value = r.value()?;
            match (slot, value) {
                // Looked up once the line is read, its table prefetched meanwhile.
                (Slot::Dimension(d), Value::Str(text))
                    if let Dictionary::Strings(strings) = &index.dims[d].values =>
                {
                    // The reader is just past the closing quote.
                    index.scratch.defer(strings, d, r.pos - 1 - text.len(), text);
                }
                // A refused value goes to serde_json too, which refuses it the same way.
                _ => store(index, slot, value).ok()?,
            }
            r.skip_whitespace();
            if r.eat(b',').is_some() {
                r.skip_whitespace();
                continue;
            }
            r.eat(b'}')?;
            break;
        }
    }
    r.skip_whitespace();
    (r.pos == r.bytes.len()).then_some(())
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.pos += 1)
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn skip_digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// A string's text after its opening quote, up to and past the closing one; `None` at an
    /// escape or a control character (which JSON does not allow unescaped).
    fn string(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let end = start + special_byte(&self.bytes[start..])?;
        if self.bytes[end] != b'"' {
            return None;
        }
        // Quotes are ASCII, so both ends are character boundaries.
        let text = self.text.get(start..end)?;
        self.pos = end + 1;
        Some(text)
    }

    fn literal(&mut self, word: &[u8], value: Value<'a>) -> Option<Value<'a>> {
        self.bytes[self.pos..].starts_with(word).then(|| {
            self.pos += word.len();
            value
        })
    }

    fn value(&mut self) -> Option<Value<'a>> {
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                self.string().map(Value::Str)
            }
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            // Objects and arrays go to serde_json.
            _ => None,
        }
    }

    /// A number by JSON's grammar. Integers of up to 18 digits are read here; fractions and
    /// exponents are read by serde_json itself, so that every float is the one it would make.
    fn number(&mut self) -> Option<Value<'a>> {
        let start = self.pos;
        let negative = self.eat(b'-').is_some();
        let digits_start = self.pos;
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => {
                self.skip_digits();
            }
            _ => return None,
        }
        let digits_end = self.pos;
        let mut float = false;
        if self.eat(b'.').is_some() {
            if self.skip_digits() == 0 {
                return None;
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.skip_digits() == 0 {
                return None;
            }
            float = true;
        }
        if float {
            return serde_json::from_str::<f64>(self.text.get(start..self.pos)?).ok().map(Value::Float);
        }
        let digits = &self.bytes[digits_start..digits_end];
        if digits.len() > 18 {
            return None;
        }
        let magnitude = digits.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
        Some(match (negative, magnitude) {
            // serde_json reads -0 as a float.
            (true, 0) => Value::Float(-0.0),
            (true, n) => Value::Int(-n),
            (false, n) => Value::Int(n),
        })
    }
}

/// The offset of the first quote, backslash or control character in `bytes`: sixteen bytes at
/// a time with SSE2, the last few eight at a time.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn special_byte(bytes: &[u8]) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(16);
    let mut offset = 0;
    for chunk in &mut chunks {
        // SAFETY: the function needs SSE2, which this build's target has (see the cfg above;
        // every x86_64 CPU has it).
        #[allow(unsafe_code)]
        let found = unsafe { special_mask(chunk.try_into().expect("sixteen bytes")) };
        if found != 0 {
            return Some(offset + found.trailing_zeros() as usize);
        }
        offset += 16;
    }
    special_byte_by_words(chunks.remainder()).map(|at| offset + at)
}

/// Bit `i` set where byte `i` of `chunk` is a quote, a backslash or a control character.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn special_mask(chunk: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x, _mm_set1_epi8,
    };
    let half = |at: usize| i64::from_le_bytes(chunk[at..at + 8].try_into().expect("eight bytes"));
    let v = _mm_set_epi64x(half(8), half(0));
    let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
    let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
    // A control character is at most 0x1f, unsigned: the smaller of it and 0x1f.
    let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
    _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn special_byte(bytes: &[u8]) -> Option<usize> {
    special_byte_by_words(bytes)
}

/// [`special_byte`] eight bytes at a time, with plain integer operations.
fn special_byte_by_words(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGHS: u64 = ONES << 7;
    // The high bit of each byte of `x` that is zero. A borrow can also mark a byte above a
    // zero byte, never one below it, so the lowest mark is always a true one.
    let zeros = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut words = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut words {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks of eight"));
        let controls = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
        let found =
            zeros(word ^ (ONES * u64::from(b'"'))) | zeros(word ^ (ONES * u64::from(b'\\'))) | controls;
        if found != 0 {
            return Some(offset + found.trailing_zeros() as usize / 8);
        }
        offset += 8;
    }
    let rest = words.remainder();
    rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|i| offset + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> Option<Value<'_>> {
        let mut reader = Reader { text, bytes: text.as_bytes(), pos: 0 };
        let value = reader.value()?;
        (reader.pos == text.len()).then_some(value)
    }

    /// What serde_json makes of a scalar, in the same terms.
    fn serde_scalar(text: &str) -> Option<Value<'_>> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        Some(match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Value::Int(i),
                (None, Some(f)) => Value::Float(f),
                (None, None) => return None,
            },
            serde_json::Value::String(_) => Value::Str(text.get(1..text.len() - 1)?),
            _ => return None,
        })
    }

    #[test]
    fn special_bytes_are_found_at_any_offset_and_only_there() {
        let plain: Vec<u8> =
            (0x20u8..0x7f).filter(|b| *b != b'"' && *b != b'\\').chain(0x80..=0xff).collect();
        for len in 0..40 {
            for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                for at in 0..len {
                    let mut bytes: Vec<u8> = plain.iter().cycle().skip(len * 7).take(len).copied().collect();
                    bytes[at] = special;
                    // A second special byte later must not hide the first.
                    if at + 1 < len {
                        bytes[at + 1] = 0x00;
                    }
                    assert_eq!(special_byte(&bytes), Some(at), "{bytes:?}");
                    assert_eq!(special_byte_by_words(&bytes), Some(at), "{bytes:?}");
                }
            }
            let bytes: Vec<u8> = plain.iter().cycle().skip(len).take(len).copied().collect();
            assert_eq!(special_byte(&bytes), None, "{bytes:?}");
            assert_eq!(special_byte_by_words(&bytes), None, "{bytes:?}");
        }
    }

    #[test]
    fn scalars_read_as_serde_json_reads_them_or_not_at_all() {
        let cases = [
            "0",
            "-0",
            "7",
            "-7",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "01",
            "-",
            "1.",
            ".5",
            "1.5",
            "-0.0",
            "1e5",
            "1E-5",
            "2.5e+3",
            "1e400",
            "1e",
            "+1",
            "true",
            "false",
            "null",
            "tru",
            "nul",
            "\"\"",
            "\"abc\"",
            "\"a\\\"b\"",
            "\"tab\there\"",
            "\"ü東\"",
            "[1]",
            "{}",
        ];
        for text in cases {
            let ours = scalar(text);
            if let Some(ours) = ours {
                let theirs = serde_scalar(text);
                match (ours, theirs) {
                    (Value::Float(a), Some(Value::Float(b))) => {
                        assert_eq!(a.to_bits(), b.to_bits(), "{text}: the same float, sign included")
                    }
                    (ours, theirs) => assert_eq!(Some(ours), theirs, "{text}"),
                }
            }
        }
        assert_eq!(scalar("-0"), Some(Value::Float(-0.0)), "serde_json reads -0 as a float");
        assert_eq!(scalar("1234567890123456789"), None, "long integers go to serde_json");
        assert_eq!(scalar("\"a\\\"b\""), None, "escapes go to serde_json");
        assert_eq!(scalar("\"tab\there\""), None, "control characters go to serde_json, which refuses them");
        for refused in ["01", "-", "1.", ".5", "1e", "+1", "tru", "[1]", "{}"] {
            assert!(scalar(refused).is_none(), "{refused} is not read here");
        }
    }
}
