//! Per-dimension dictionaries: value to dense id, id 0 meaning null.

use std::hash::BuildHasher;

use hashbrown::{HashMap, HashTable};

use crate::spec::DimensionType;

type Map<K> = HashMap<K, u32, foldhash::fast::RandomState>;

/// Bytes of a string kept in its hash-table slot (16 to 20, for [`head_of`]).
const INLINE: usize = 20;
const _: () = assert!(16 <= INLINE && INLINE <= 20);

/// A string dictionary's table entry. The first bytes of the value live in the slot itself,
/// so a lookup of a short string (most dimension values) compares without following a
/// pointer: one cache miss per lookup instead of two. The slot keeps the value's hash too, so
/// growing the table moves slots without reading a single value again.
#[derive(Debug, Clone)]
struct StrSlot {
    id: u32,
    len: u32,
    hash: u32,
    head: [u8; INLINE],
}

/// A value's first [`INLINE`] bytes, zero-padded: compared with a slot's head as one
/// fixed-size block rather than a call to `memcmp` of a varying length. Built from two
/// fixed-size copies that overlap in the middle (every lookup makes one, and a copy of a
/// varying length would be a call to `memcpy`).
fn head_of(value: &[u8]) -> [u8; INLINE] {
    fn copy<const N: usize>(head: &mut [u8; INLINE], value: &[u8], at: usize) {
        head[at..at + N].copy_from_slice(&value[at..at + N]);
    }
    let mut head = [0; INLINE];
    let n = value.len().min(INLINE);
    match n {
        16..=INLINE => {
            copy::<16>(&mut head, value, 0);
            copy::<4>(&mut head, value, n - 4);
        }
        8..=15 => {
            copy::<8>(&mut head, value, 0);
            copy::<8>(&mut head, value, n - 8);
        }
        4..=7 => {
            copy::<4>(&mut head, value, 0);
            copy::<4>(&mut head, value, n - 4);
        }
        _ => head[..n].copy_from_slice(&value[..n]),
    }
    head
}

impl StrSlot {
    fn matches(&self, value: &[u8], head: &[u8; INLINE], values: &[Box<str>]) -> bool {
        self.len as usize == value.len()
            && self.head == *head
            && (value.len() <= INLINE || values[self.id as usize - 1].as_bytes()[INLINE..] == value[INLINE..])
    }
}

/// The hash a table places a slot by, from the 32 bits the slot keeps: multiplied out so that
/// both the bucket (low bits) and hashbrown's tag (top bits) depend on all of them.
pub(super) fn spread(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Strings with dense ids starting at 1, found by value through the slot layout above: the
/// string dimension dictionary of the rollup, and the query path's code dictionaries.
#[derive(Clone, Default)]
pub struct StringDictionary {
    table: HashTable<StrSlot>,
    hasher: foldhash::fast::RandomState,
    values: Vec<Box<str>>,
    /// Bytes of the values themselves.
    value_bytes: usize,
}

impl std::fmt::Debug for StringDictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StringDictionary")
            .field("len", &self.values.len())
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl StringDictionary {
    /// The id of a value, adding it if new.
    pub fn intern(&mut self, value: &str) -> u32 {
        let Self { table, hasher, values, value_bytes } = self;
        let hash = (hasher.hash_one(value) >> 32) as u32;
        let head = head_of(value.as_bytes());
        let entry = table.entry(
            spread(hash),
            |slot| slot.matches(value.as_bytes(), &head, values),
            |slot| spread(slot.hash),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(found) => found.get().id,
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                values.push(value.into());
                *value_bytes += value.len();
                let id = values.len() as u32;
                vacant.insert(StrSlot { id, len: value.len() as u32, hash, head });
                id
            }
        }
    }

    /// The value of an id, if handed out.
    pub fn get(&self, id: u32) -> Option<&str> {
        let index = (id as usize).checked_sub(1)?;
        self.values.get(index).map(|v| &**v)
    }

    /// Every value, in id order (id 1 first).
    pub fn values(&self) -> &[Box<str>] {
        &self.values
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no value was added.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Bytes the values and their lookup table take in memory.
    pub fn bytes(&self) -> usize {
        self.table.allocation_size() + self.values.capacity() * size_of::<Box<str>>() + self.value_bytes
    }
}

/// A value's first 8 bytes, zero-padded, big-endian: values whose keys differ are in the order
/// of their keys (a value that ends within them is a prefix of the other, or has a smaller
/// byte where the other goes on), and values with equal keys need comparing whole.
fn prefix_key(value: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    let n = value.len().min(8);
    head[..n].copy_from_slice(&value[..n]);
    u64::from_be_bytes(head)
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
            Self::Strings(strings) => map.extend(strings.values().iter().map(|v| self.intern_str(v))),
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
                let values = strings.values();
                let value = |id: u32| values[id as usize - 1].as_bytes();
                // Most values differ in their first bytes: sorted by those as one integer, only
                // values that share them are compared whole.
                let mut keyed: Vec<(u64, u32)> =
                    order.iter().map(|&id| (prefix_key(value(id)), id)).collect();
                keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| value(a.1).cmp(value(b.1))));
                for (slot, (_, id)) in order.iter_mut().zip(keyed) {
                    *slot = id;
                }
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

    pub(super) fn str_value(&self, id: u32) -> &str {
        match self {
            Self::Strings(strings) => &strings.values()[id as usize - 1],
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
    fn strings_longer_than_the_inline_head_are_told_apart_by_their_tails() {
        let mut dictionary = Dictionary::new(DimensionType::String);
        let head = "a".repeat(INLINE);
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
    fn a_head_is_the_first_bytes_zero_padded_whatever_the_length() {
        let value: Vec<u8> = (1..=30).collect();
        for len in 0..=30 {
            let mut expected = [0u8; INLINE];
            let n = len.min(INLINE);
            expected[..n].copy_from_slice(&value[..n]);
            assert_eq!(head_of(&value[..len]), expected, "{len} bytes");
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
}
