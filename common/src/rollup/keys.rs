//! Row keys packed at the narrowest width each dimension's ids need.

/// The dictionary ids of every row, packed: each dimension takes the fewest bytes (1 to 4)
/// that hold the largest id its dictionary has handed out, so a row of the twelve wikipedia
/// dimensions, most of them with a few hundred values or fewer, takes 17 bytes rather than
/// 48. When an id outgrows its dimension's width, or a discovered dimension joins, every row
/// is packed again at the new widths: a dimension is widened at most three times.
#[derive(Debug, Clone, Default)]
pub(super) struct RowKeys {
    /// Bytes per id, by dimension.
    widths: Vec<u8>,
    /// Where each dimension's id starts within a row.
    offsets: Vec<usize>,
    row_bytes: usize,
    rows: usize,
    bytes: Vec<u8>,
}

/// Bytes that hold `id`.
fn width_of(id: u32) -> u8 {
    match id {
        0..=0xFF => 1,
        0x100..=0xFFFF => 2,
        0x1_0000..=0xFF_FFFF => 3,
        _ => 4,
    }
}

impl RowKeys {
    fn with_widths(widths: Vec<u8>) -> Self {
        let mut offsets = Vec::with_capacity(widths.len());
        let mut row_bytes = 0;
        for &w in &widths {
            offsets.push(row_bytes);
            row_bytes += usize::from(w);
        }
        Self { widths, offsets, row_bytes, rows: 0, bytes: Vec::new() }
    }

    /// Makes every id of `key` fit, adding dimensions it has beyond ours and widening those
    /// whose id is too large; every row is packed again then. Returns whether rows were packed
    /// again (their bytes, and so their hashes, changed).
    pub(super) fn fit(&mut self, key: &[u32]) -> bool {
        let fits = key.len() <= self.widths.len()
            && key.iter().zip(&self.widths).all(|(&id, &width)| width_of(id) <= width);
        if fits {
            return false;
        }
        let mut widths = self.widths.clone();
        widths.resize(key.len().max(widths.len()), 1);
        for (width, &id) in widths.iter_mut().zip(key) {
            *width = (*width).max(width_of(id));
        }
        // Ids are little-endian: an id's bytes, copied to the start of a wider zeroed field,
        // are the same id. Dimensions that are new stay zero, null.
        let mut repacked = Self::with_widths(widths);
        repacked.bytes = vec![0; self.rows * repacked.row_bytes];
        repacked.rows = self.rows;
        if self.row_bytes > 0 {
            let rows = self
                .bytes
                .chunks_exact(self.row_bytes)
                .zip(repacked.bytes.chunks_exact_mut(repacked.row_bytes));
            for (old, new) in rows {
                for ((&from, &to), &width) in self.offsets.iter().zip(&repacked.offsets).zip(&self.widths) {
                    let width = usize::from(width);
                    new[to..to + width].copy_from_slice(&old[from..from + width]);
                }
            }
        }
        *self = repacked;
        true
    }

    /// Packs a key whose ids fit (see [`RowKeys::fit`]) into `out`: [`RowKeys::row_bytes`]
    /// bytes, the form [`RowKeys::push`] and [`RowKeys::row`] use. Missing trailing ids are
    /// nulls.
    pub(super) fn pack(&self, key: &[u32], out: &mut Vec<u8>) {
        // Each id is written as four bytes in offset order: the bytes past its width are zero
        // (it fits) and the next id overwrites them; the last one's land in the padding.
        out.clear();
        out.resize(self.row_bytes + 3, 0);
        for (&id, &offset) in key.iter().zip(&self.offsets) {
            out[offset..offset + 4].copy_from_slice(&id.to_le_bytes());
        }
        out.truncate(self.row_bytes);
    }

    /// Appends a packed row.
    pub(super) fn push(&mut self, packed: &[u8]) {
        debug_assert_eq!(packed.len(), self.row_bytes);
        self.bytes.extend_from_slice(packed);
        self.rows += 1;
    }

    /// A packed row.
    pub(super) fn row(&self, row: usize) -> &[u8] {
        &self.bytes[row * self.row_bytes..(row + 1) * self.row_bytes]
    }

    /// The id of dimension `dim` in a row: null (0) for a dimension the row has no id for.
    pub(super) fn id(&self, row: usize, dim: usize) -> u32 {
        let Some(&width) = self.widths.get(dim) else { return 0 };
        self.id_at(row * self.row_bytes + self.offsets[dim], usize::from(width))
    }

    /// The id packed in `width` bytes at `start`.
    #[inline(always)]
    fn id_at(&self, start: usize, width: usize) -> u32 {
        let mut id = [0; 4];
        id[..width].copy_from_slice(&self.bytes[start..start + width]);
        u32::from_le_bytes(id)
    }

    /// The ids of dimension `dim` in some rows, in their order: [`RowKeys::id`] of each, with
    /// the width looked at once rather than per row.
    pub(super) fn ids(&self, rows: &[u32], dim: usize) -> Vec<u32> {
        fn gather<const W: usize>(keys: &RowKeys, rows: &[u32], offset: usize) -> Vec<u32> {
            rows.iter().map(|&row| keys.id_at(row as usize * keys.row_bytes + offset, W)).collect()
        }
        let Some(&width) = self.widths.get(dim) else { return vec![0; rows.len()] };
        let offset = self.offsets[dim];
        match width {
            1 => gather::<1>(self, rows, offset),
            2 => gather::<2>(self, rows, offset),
            3 => gather::<3>(self, rows, offset),
            _ => gather::<4>(self, rows, offset),
        }
    }

    /// Every id of a row into `ids` (nulls past our dimensions).
    pub(super) fn unpack(&self, row: usize, ids: &mut [u32]) {
        for (dim, id) in ids.iter_mut().enumerate() {
            *id = self.id(row, dim);
        }
    }

    /// Drops every row, keeping the allocation and the widths.
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.rows = 0;
    }

    /// Bytes the packed rows take in memory.
    pub(super) fn allocated_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// Makes room for `rows` more rows.
    pub(super) fn reserve(&mut self, rows: usize) {
        self.bytes.reserve(rows * self.row_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(keys: &mut RowKeys, key: &[u32]) -> bool {
        let repacked = keys.fit(key);
        let mut packed = Vec::new();
        keys.pack(key, &mut packed);
        keys.push(&packed);
        repacked
    }

    #[test]
    fn each_dimension_takes_the_bytes_its_largest_id_needs() {
        let mut keys = RowKeys::default();
        assert!(add(&mut keys, &[1, 0, 7]), "the first key sets the dimensions");
        assert_eq!(keys.row_bytes, 3);
        assert!(!add(&mut keys, &[255, 3, 0]), "255 still fits a byte");
        assert!(add(&mut keys, &[256, 3, 0]), "256 needs two bytes");
        assert_eq!(keys.row_bytes, 4);
        assert!(add(&mut keys, &[2, 0x1_0000, 1]));
        assert_eq!(keys.row_bytes, 6);
        assert!(add(&mut keys, &[3, 4, u32::MAX]));
        assert_eq!(keys.row_bytes, 9);
        assert!(!add(&mut keys, &[0xFFFF, 0xFF_FFFF, 5]));
        let rows: Vec<Vec<u32>> = (0..keys.rows).map(|r| (0..4).map(|d| keys.id(r, d)).collect()).collect();
        assert_eq!(
            rows,
            [
                [1, 0, 7, 0],
                [255, 3, 0, 0],
                [256, 3, 0, 0],
                [2, 0x1_0000, 1, 0],
                [3, 4, u32::MAX, 0],
                [0xFFFF, 0xFF_FFFF, 5, 0]
            ],
            "every row reads back whole after each repacking, nulls past its dimensions"
        );
        let some = [5, 0, 3, 3];
        for dim in 0..4 {
            let one_by_one: Vec<u32> = some.iter().map(|&r| keys.id(r as usize, dim)).collect();
            assert_eq!(keys.ids(&some, dim), one_by_one, "dimension {dim}");
        }
    }

    #[test]
    fn a_key_with_more_dimensions_adds_them_as_nulls_to_every_row() {
        let mut keys = RowKeys::default();
        add(&mut keys, &[]);
        add(&mut keys, &[4]);
        assert!(add(&mut keys, &[0, 0, 300]));
        assert!(!add(&mut keys, &[1]), "a shorter key's missing ids are nulls");
        let rows: Vec<Vec<u32>> = (0..keys.rows).map(|r| (0..3).map(|d| keys.id(r, d)).collect()).collect();
        assert_eq!(rows, [[0, 0, 0], [4, 0, 0], [0, 0, 300], [1, 0, 0]]);
        assert_eq!(keys.row(3), [1, 0, 0, 0], "widths 1, 1 and 2");
    }
}
