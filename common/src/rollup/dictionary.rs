//! Per-dimension dictionaries: value to dense id, id 0 meaning null.

use std::hash::{BuildHasher, Hasher};

use hashbrown::HashMap;

use crate::spec::DimensionType;

type Map<K> = HashMap<K, u32, foldhash::fast::RandomState>;

/// The hash a table places an entry by, from the 32 bits the entry keeps: multiplied out so
/// that both its low and its top bits (a hashbrown table's bucket and tag, the position in a
/// [`StringDictionary`]) depend on all of them.
pub(super) fn spread(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Asks the CPU to start loading the cache line holding `entry`, without waiting for it: a
/// hint, with no effect on what any code reads. (A plain load kept alive with `black_box`
/// measured about 4% slower on the reindex benchmark: the core must still wait for it to
/// retire.)
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch(entry: &u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing and cannot fault, and the pointer comes from a
    // reference anyway. SSE, the intrinsic's target feature, is part of every x86_64 CPU.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(entry).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = entry;
}

/// Whether two byte strings are equal. Most dimension values are short: those of up to 32
/// bytes are compared as two fixed-size words that overlap in the middle, rather than by a
/// call to `memcmp`.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    fn word<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
        bytes[at..at + N].try_into().expect("N bytes")
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4),
        8..=16 => word::<8>(a, 0) == word::<8>(b, 0) && word::<8>(a, n - 8) == word::<8>(b, n - 8),
        17..=32 => word::<16>(a, 0) == word::<16>(b, 0) && word::<16>(a, n - 16) == word::<16>(b, n - 16),
        _ => a == b,
    }
}

/// Strings with dense ids starting at 1, found by value: the string dimension dictionary of
/// the rollup, and the query path's code dictionaries.
///
/// The values lie one after another in one buffer, in id order. The lookup table is open
/// addressing with linear probing, at most half full, of 8-byte entries: a value's 32-bit
/// hash and its id, 0 for an empty entry. A value's entry is found from its hash alone, so a
/// value that is new (most of a high-cardinality dimension's values) costs one look at one
/// cache line of the table, and the table can be prefetched once the hash is known
/// ([`StringDictionary::prefetch`]), long before the lookup.
#[derive(Clone)]
pub struct StringDictionary {
    /// A power of two long (or empty), never more than half full.
    entries: Vec<u64>,
    /// 64 minus the bits of a position: a position is the top bits of the spread hash.
    shift: u32,
    hasher: foldhash::fast::RandomState,
    /// Every value, in id order.
    text: String,
    /// Where each value ends in `text`, after a leading 0: value `id` is
    /// `text[ends[id - 1]..ends[id]]`.
    ends: Vec<usize>,
}

impl Default for StringDictionary {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            shift: 64,
            hasher: Default::default(),
            text: String::new(),
            ends: vec![0],
        }
    }
}

impl std::fmt::Debug for StringDictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StringDictionary").field("len", &self.len()).field("bytes", &self.bytes()).finish()
    }
}

impl StringDictionary {
    /// The hash [`StringDictionary::intern_hashed`] takes.
    pub fn hash(&self, value: &str) -> u32 {
        // The bytes alone: `str`'s own Hash adds a terminator, a second call into the hasher.
        let mut hasher = self.hasher.build_hasher();
        hasher.write(value.as_bytes());
        (hasher.finish() >> 32) as u32
    }

    /// Starts loading the table entry where a lookup of a value with this hash begins.
    pub fn prefetch(&self, hash: u32) {
        if let Some(entry) = self.entries.get(self.position(hash)) {
            prefetch(entry);
        }
    }

    /// The id of a value, adding it if new.
    pub fn intern(&mut self, value: &str) -> u32 {
        self.intern_hashed(value, self.hash(value))
    }

    /// [`StringDictionary::intern`] of a value whose [`StringDictionary::hash`] is known.
    pub fn intern_hashed(&mut self, value: &str, hash: u32) -> u32 {
        if 2 * (self.len() + 1) > self.entries.len() {
            self.grow();
        }
        let mask = self.entries.len() - 1;
        let mut position = self.position(hash);
        loop {
            let entry = self.entries[position];
            if entry == 0 {
                self.text.push_str(value);
                self.ends.push(self.text.len());
                let id = self.len() as u32;
                self.entries[position] = u64::from(hash) << 32 | u64::from(id);
                return id;
            }
            let id = entry as u32;
            if (entry >> 32) as u32 == hash && same_bytes(self.value_bytes(id), value.as_bytes()) {
                return id;
            }
            position = (position + 1) & mask;
        }
    }

    fn position(&self, hash: u32) -> usize {
        // A shift by 64 (empty table) gives no position rather than a panic.
        spread(hash).checked_shr(self.shift).unwrap_or(0) as usize
    }

    /// Doubles the table, placing every entry again by the hash it keeps.
    fn grow(&mut self) {
        let capacity = (2 * self.entries.len()).max(16);
        let old = std::mem::replace(&mut self.entries, vec![0; capacity]);
        self.shift = 64 - capacity.trailing_zeros();
        let mask = capacity - 1;
        for entry in old.into_iter().filter(|&e| e != 0) {
            let mut position = self.position((entry >> 32) as u32);
            while self.entries[position] != 0 {
                position = (position + 1) & mask;
            }
            self.entries[position] = entry;
        }
    }

    /// Where the value of an id handed out lies in `text`.
    fn span(&self, id: u32) -> std::ops::Range<usize> {
        let id = id as usize;
        self.ends[id - 1]..self.ends[id]
    }

    /// The value of an id handed out.
    fn value(&self, id: u32) -> &str {
        &self.text[self.span(id)]
    }

    /// [`StringDictionary::value`] as bytes, with no check of character boundaries.
    fn value_bytes(&self, id: u32) -> &[u8] {
        &self.text.as_bytes()[self.span(id)]
    }

    /// Forgets every value, keeping the memory.
    pub fn clear(&mut self) {
        self.entries.fill(0);
        self.text.clear();
        self.ends.truncate(1);
    }

    /// The value of an id, if handed out.
    pub fn get(&self, id: u32) -> Option<&str> {
        (1..=self.len() as u32).contains(&id).then(|| self.value(id))
    }

    /// Every value, in id order (id 1 first).
    pub fn values(&self) -> impl Iterator<Item = &str> + '_ {
        (1..=self.len() as u32).map(|id| self.value(id))
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.ends.len() - 1
    }

    /// Whether no value was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the values and their lookup table take in memory.
    pub fn bytes(&self) -> usize {
        self.entries.capacity() * size_of::<u64>()
            + self.ends.capacity() * size_of::<usize>()
            + self.text.capacity()
    }
}

/// The 8 bytes of a value from `at`, zero-padded, big-endian: values whose keys differ are in
/// the order of their keys (a value that ends within them is a prefix of the other, or has a
/// smaller byte where the other goes on), and values with equal keys need looking further.
fn word_key(value: &[u8], at: usize) -> u64 {
    let rest = value.get(at..).unwrap_or_default();
    let mut word = [0u8; 8];
    let n = rest.len().min(8);
    word[..n].copy_from_slice(&rest[..n]);
    u64::from_be_bytes(word)
}

/// How many bytes into the values [`sort_by_bytes`] goes 8 at a time before comparing what
/// still ties whole.
const WORD_KEY_DEPTH: usize = 64;

/// Sorts ids, each paired with room for its key, into the byte order of their values from
/// byte `at` on (the bytes before it being equal). They are keyed by [`word_key`] at `at` and
/// sorted by key as integers; a run of equal keys whose values all go on past the word is
/// sorted again from the next word, and any other run (a value ends within the word, or the
/// run is [`WORD_KEY_DEPTH`] bytes in) is sorted by comparing the values whole. Most values
/// differ in their first bytes, so most are never compared as byte strings.
fn sort_by_bytes<'a>(keyed: &mut [(u64, u32)], at: usize, value: &impl Fn(u32) -> &'a [u8]) {
    for (key, id) in keyed.iter_mut() {
        *key = word_key(value(*id), at);
    }
    keyed.sort_unstable_by_key(|&(key, _)| key);
    let next = at + 8;
    for run in keyed.chunk_by_mut(|a, b| a.0 == b.0).filter(|run| run.len() > 1) {
        if next < WORD_KEY_DEPTH && run.iter().all(|&(_, id)| value(id).len() > next) {
            sort_by_bytes(run, next, value);
        } else {
            run.sort_unstable_by(|a, b| value(a.1).cmp(value(b.1)));
        }
    }
}

/// The values one dimension has seen, each with a dense id starting at 1.
#[derive(Debug, Clone)]
pub(super) enum Dictionary {
    Strings(StringDictionary),
    Longs { ids: Map<i64>, values: Vec<i64> },
    Floats { ids: Map<u32>, values: Vec<f32> },
    Doubles { ids: Map<u64>, values: Vec<f64> },
}

impl Dictionary {
    pub(super) fn new(kind: DimensionType) -> Self {
        match kind {
            DimensionType::String => Self::Strings(StringDictionary::default()),
            DimensionType::Long => Self::Longs { ids: Map::default(), values: Vec::new() },
            DimensionType::Float => Self::Floats { ids: Map::default(), values: Vec::new() },
            DimensionType::Double => Self::Doubles { ids: Map::default(), values: Vec::new() },
        }
    }

    /// Forgets every value, keeping the capacity.
    pub(super) fn clear(&mut self) {
        match self {
            Self::Strings(strings) => strings.clear(),
            Self::Longs { ids, values } => {
                ids.clear();
                values.clear();
            }
            Self::Floats { ids, values } => {
                ids.clear();
                values.clear();
            }
            Self::Doubles { ids, values } => {
                ids.clear();
                values.clear();
            }
        }
    }

    /// Bytes the values and their lookup table take in memory.
    pub(super) fn allocated_bytes(&self) -> usize {
        match self {
            Self::Strings(strings) => strings.bytes(),
            Self::Longs { ids, values } => ids.allocation_size() + values.capacity() * size_of::<i64>(),
            Self::Floats { ids, values } => ids.allocation_size() + values.capacity() * size_of::<f32>(),
            Self::Doubles { ids, values } => ids.allocation_size() + values.capacity() * size_of::<f64>(),
        }
    }

    pub(super) fn kind(&self) -> DimensionType {
        match self {
            Self::Strings(_) => DimensionType::String,
            Self::Longs { .. } => DimensionType::Long,
            Self::Floats { .. } => DimensionType::Float,
            Self::Doubles { .. } => DimensionType::Double,
        }
    }

    /// Number of distinct non-null values.
    pub(super) fn len(&self) -> usize {
        match self {
            Self::Strings(strings) => strings.len(),
            Self::Longs { values, .. } => values.len(),
            Self::Floats { values, .. } => values.len(),
            Self::Doubles { values, .. } => values.len(),
        }
    }

    /// The id of a string value, adding it if new. Only for string dictionaries.
    pub(super) fn intern_str(&mut self, value: &str) -> u32 {
        let Self::Strings(strings) = self else { unreachable!("string values go to string dictionaries") };
        strings.intern(value)
    }

    pub(super) fn intern_i64(&mut self, value: i64) -> u32 {
        let Self::Longs { ids, values } = self else { unreachable!("long dictionary") };
        *ids.entry(value).or_insert_with(|| {
            values.push(value);
            values.len() as u32
        })
    }

    pub(super) fn intern_f32(&mut self, value: f32) -> u32 {
        let Self::Floats { ids, values } = self else { unreachable!("float dictionary") };
        // -0.0 and 0.0 are one value; NaNs are refused before they get here.
        let value = if value == 0.0 { 0.0 } else { value };
        *ids.entry(value.to_bits()).or_insert_with(|| {
            values.push(value);
            values.len() as u32
        })
    }

    pub(super) fn intern_f64(&mut self, value: f64) -> u32 {
        let Self::Doubles { ids, values } = self else { unreachable!("double dictionary") };
        let value = if value == 0.0 { 0.0 } else { value };
        *ids.entry(value.to_bits()).or_insert_with(|| {
            values.push(value);
            values.len() as u32
        })
    }

    /// Adds every value of another dictionary of the same kind; returns, for each of its ids,
    /// our id.
    pub(super) fn absorb(&mut self, other: &Dictionary) -> Vec<u32> {
        let mut map = Vec::with_capacity(other.len() + 1);
        map.push(0);
        match other {
            Self::Strings(strings) => map.extend(strings.values().map(|v| self.intern_str(v))),
            Self::Longs { values, .. } => map.extend(values.iter().map(|v| self.intern_i64(*v))),
            Self::Floats { values, .. } => map.extend(values.iter().map(|v| self.intern_f32(*v))),
            Self::Doubles { values, .. } => map.extend(values.iter().map(|v| self.intern_f64(*v))),
        }
        map
    }

    /// For each id, its position in value order (null first): sorting rows by rank sorts them
    /// by value.
    pub(super) fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (1..=self.len() as u32).collect();
        match self {
            Self::Strings(strings) => {
                let mut keyed: Vec<(u64, u32)> = order.iter().map(|&id| (0, id)).collect();
                sort_by_bytes(&mut keyed, 0, &|id| strings.value_bytes(id));
                order = keyed.into_iter().map(|(_, id)| id).collect();
            }
            Self::Longs { values, .. } => order.sort_unstable_by_key(|a| values[*a as usize - 1]),
            Self::Floats { values, .. } => {
                order.sort_unstable_by(|a, b| values[*a as usize - 1].total_cmp(&values[*b as usize - 1]))
            }
            Self::Doubles { values, .. } => {
                order.sort_unstable_by(|a, b| values[*a as usize - 1].total_cmp(&values[*b as usize - 1]))
            }
        }
        let mut ranks = vec![0u32; self.len() + 1];
        for (rank, id) in order.into_iter().enumerate() {
            ranks[id as usize] = rank as u32 + 1;
        }
        ranks
    }

    /// [`Dictionary::str_value`] as bytes: its length, say, without reading it for character
    /// boundaries.
    pub(super) fn str_bytes(&self, id: u32) -> &[u8] {
        match self {
            Self::Strings(strings) => strings.value_bytes(id),
            _ => unreachable!("string dictionary"),
        }
    }

    pub(super) fn str_value(&self, id: u32) -> &str {
        match self {
            Self::Strings(strings) => strings.value(id),
            _ => unreachable!("string dictionary"),
        }
    }

    pub(super) fn i64_value(&self, id: u32) -> i64 {
        match self {
            Self::Longs { values, .. } => values[id as usize - 1],
            _ => unreachable!("long dictionary"),
        }
    }

    pub(super) fn f32_value(&self, id: u32) -> f32 {
        match self {
            Self::Floats { values, .. } => values[id as usize - 1],
            _ => unreachable!("float dictionary"),
        }
    }

    pub(super) fn f64_value(&self, id: u32) -> f64 {
        match self {
            Self::Doubles { values, .. } => values[id as usize - 1],
            _ => unreachable!("double dictionary"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_strings_of_any_length_are_equal_only_when_every_byte_is() {
        let base: Vec<u8> = (1..=40).collect();
        for len in 0..=40 {
            let a = &base[..len];
            assert!(same_bytes(a, &base[..len]), "{len} bytes");
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 0x80;
                assert!(!same_bytes(a, &b), "{len} bytes, differing at {at}");
            }
            if len > 0 {
                assert!(!same_bytes(a, &base[..len - 1]), "{len} bytes against one fewer");
            }
        }
    }

    #[test]
    fn values_that_share_their_first_bytes_are_told_apart() {
        let mut dictionary = Dictionary::new(DimensionType::String);
        let head = "a".repeat(20);
        let values =
            ["", "a", &head, &format!("{head}x"), &format!("{head}y"), &format!("{head}xy"), "Zürich 東京"];
        let ids: Vec<u32> = values.iter().map(|v| dictionary.intern_str(v)).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5, 6, 7], "each value is new");
        let again: Vec<u32> = values.iter().map(|v| dictionary.intern_str(v)).collect();
        assert_eq!(again, ids, "each value is found again");
        for (value, id) in values.iter().zip(ids) {
            assert_eq!(dictionary.str_value(id), *value);
        }
    }

    #[test]
    fn every_value_keeps_its_id_as_the_table_grows_and_after_it_is_cleared() {
        let mut dictionary = StringDictionary::default();
        assert_eq!(dictionary.get(1), None);
        for round in 0..2 {
            let values: Vec<String> = (0..5000).map(|i| format!("{round}-{i}")).collect();
            for (i, value) in values.iter().enumerate() {
                assert_eq!(dictionary.intern(value), i as u32 + 1, "{value} is new");
                assert!(2 * dictionary.len() <= dictionary.entries.len(), "at most half full");
            }
            for (i, value) in values.iter().enumerate() {
                let hash = dictionary.hash(value);
                dictionary.prefetch(hash);
                assert_eq!(dictionary.intern_hashed(value, hash), i as u32 + 1, "{value} is found");
                assert_eq!(dictionary.get(i as u32 + 1), Some(value.as_str()));
            }
            assert_eq!(dictionary.get(5001), None);
            assert_eq!(dictionary.values().collect::<Vec<_>>(), values);
            let (entries, bytes) = (dictionary.entries.len(), dictionary.bytes());
            dictionary.clear();
            assert!(dictionary.is_empty());
            assert_eq!((dictionary.entries.len(), dictionary.bytes()), (entries, bytes), "memory is kept");
        }
    }

    #[test]
    fn string_ranks_follow_byte_order_past_the_first_eight_bytes() {
        let mut dictionary = Dictionary::new(DimensionType::String);
        let values = [
            "abcdefgh2",
            "abcdefgh",
            "ab",
            "ab\0",
            "ab\0c",
            "",
            "abcdefgh10",
            "b",
            "Zürich",
            "Zurich",
            "東京",
            "abcdefgh\u{1}",
            "a",
        ];
        for value in values {
            dictionary.intern_str(value);
        }
        let ranks = dictionary.ranks();
        let mut by_rank: Vec<(u32, &str)> =
            values.iter().enumerate().map(|(i, v)| (ranks[i + 1], *v)).collect();
        by_rank.sort();
        let mut expected = values.to_vec();
        expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(by_rank.iter().map(|(_, v)| *v).collect::<Vec<_>>(), expected);
        assert_eq!(by_rank.iter().map(|(rank, _)| *rank).collect::<Vec<_>>(), (1..=13).collect::<Vec<_>>());
    }

    /// Ranks of values against their plain byte order.
    fn assert_ranked_in_byte_order(values: &[String]) {
        let mut dictionary = Dictionary::new(DimensionType::String);
        let ids: Vec<u32> = values.iter().map(|v| dictionary.intern_str(v)).collect();
        let ranks = dictionary.ranks();
        let mut distinct = values.to_vec();
        distinct.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        distinct.dedup();
        for (value, id) in values.iter().zip(ids) {
            let expected = distinct.binary_search(value).expect("a value given") + 1;
            assert_eq!(ranks[id as usize] as usize, expected, "rank of {value:?}");
        }
    }

    #[test]
    fn string_ranks_follow_byte_order_through_long_shared_prefixes() {
        let prefix = "https://www.example.com/wiki/".repeat(4);
        let mut values: Vec<String> = ["", "a", "b", "\0", "\0\0", "x\0\0\0\0\0\0\0", "x\0\0\0\0\0\0\0\0"]
            .iter()
            .map(|v| v.to_string())
            .collect();
        for tail in ["", "\0", "a", "ab", "b", "\0a", "a\0", "abcdefgh", "abcdefgh\0", "abcdefghi", "é"] {
            for cut in [0, 7, 8, 9, 16, 29, 64, 65, prefix.len()] {
                values.push(format!("{}{tail}", &prefix[..cut]));
            }
        }
        assert_ranked_in_byte_order(&values);
    }

    proptest::proptest! {
        #[test]
        fn string_ranks_follow_byte_order(values in proptest::collection::vec("[ab\\x00]{0,40}", 1..200)) {
            assert_ranked_in_byte_order(&values);
        }
    }
}
