//! String dimensions straight into Parquet pages.
//!
//! A segment's string dimensions arrive as Arrow dictionaries whose values are already
//! distinct and sorted (the rollup's ranks). Parquet's Arrow writer would look every row's
//! string up again in a dictionary of its own and compare it for the statistics; here the
//! rows' keys are kept: each row group's column chunk is a dictionary page of the values its
//! rows use (still sorted, and marked so) followed by data pages of those values' positions,
//! with statistics read off the sorted order. Every other column, string dictionaries that are
//! not so sorted among them, goes through Parquet's writer.

use arrow::array::{Array, Int32Array, StringArray};
use bytes::Bytes;
use parquet::basic::{Compression, Encoding, EncodingMask, PageType, Type, ZstdLevel};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{
    ColumnChunkMetaData, ColumnIndexBuilder, OffsetIndexBuilder, PageEncodingStats,
};
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

/// Whether a dictionary's values are strictly ascending by their bytes (Parquet's order for
/// UTF-8) with no nulls: the condition for [`encode_chunk`].
pub(super) fn is_sorted_dictionary(values: &StringArray) -> bool {
    values.null_count() == 0 && values.iter().flatten().is_sorted_by(|a, b| a.as_bytes() < b.as_bytes())
}

/// One string column of one row group: `keys` (null for a null row) into `values`, which
/// [`is_sorted_dictionary`] accepted. Returns the chunk's bytes, starting with its dictionary
/// page at offset 0, and what the row group writer records of it.
pub(super) fn encode_chunk(
    descr: ColumnDescPtr,
    keys: &Int32Array,
    values: &StringArray,
    zstd_level: i32,
    page_rows: usize,
) -> Result<(Bytes, ColumnCloseResult)> {
    if descr.max_rep_level() != 0 || descr.max_def_level() > 1 || descr.physical_type() != Type::BYTE_ARRAY {
        return Err(ParquetError::General(format!("column {} is not a flat string column", descr.path())));
    }
    let nullable = descr.max_def_level() == 1;
    if !nullable && keys.null_count() > 0 {
        return Err(ParquetError::General(format!("required column {} holds nulls", descr.path())));
    }
    // The values these rows use, in the dictionary's (sorted) order, and each key's place
    // among them.
    let mut dense = vec![u32::MAX; values.len()];
    match keys.nulls() {
        None => keys.values().iter().for_each(|&key| dense[key as usize] = 0),
        Some(nulls) => nulls.valid_indices().for_each(|row| dense[keys.value(row) as usize] = 0),
    }
    let mut used: Vec<usize> = Vec::new();
    for (key, slot) in dense.iter_mut().enumerate() {
        if *slot == 0 {
            *slot = used.len() as u32;
            used.push(key);
        }
    }

    let mut compressor = zstd::bulk::Compressor::new(zstd_level)?;
    let mut sink = TrackedWrite::new(Vec::new());
    let mut pages = SerializedPageWriter::new(&mut sink);
    let (mut compressed_size, mut uncompressed_size) = (0i64, 0i64);

    let mut plain = Vec::new();
    for &key in &used {
        let value = values.value(key).as_bytes();
        plain.extend_from_slice(&(value.len() as u32).to_le_bytes());
        plain.extend_from_slice(value);
    }
    let dictionary = CompressedPage::new(
        Page::DictionaryPage {
            buf: Bytes::from(compressor.compress(&plain)?),
            num_values: used.len() as u32,
            encoding: Encoding::PLAIN,
            is_sorted: true,
        },
        plain.len(),
    );
    let written = pages.write_page(dictionary)?;
    compressed_size += written.compressed_size as i64;
    uncompressed_size += written.uncompressed_size as i64;

    let bit_width = bits_for(used.len().saturating_sub(1) as u32);
    let mut column_index = ColumnIndexBuilder::new(Type::BYTE_ARRAY);
    let mut offset_index = OffsetIndexBuilder::new();
    let mut data_pages = 0;
    let mut data_page_offset = None;
    let (mut body, mut levels, mut indices) = (Vec::new(), Vec::new(), Vec::new());
    let mut page_keys: Vec<u32> = Vec::with_capacity(page_rows);
    let mut page_levels: Vec<u32> = Vec::with_capacity(page_rows);
    let mut nulls_total = 0u64;
    for start in (0..keys.len()).step_by(page_rows.max(1)) {
        let page = keys.slice(start, page_rows.min(keys.len() - start));
        page_keys.clear();
        page_levels.clear();
        if page.null_count() == 0 {
            page_keys.extend(page.values().iter().map(|&key| dense[key as usize]));
            if nullable {
                page_levels.resize(page.len(), 1);
            }
        } else {
            // Nulls only come in nullable columns (checked above), which write levels.
            for key in page.iter() {
                page_levels.push(key.is_some() as u32);
                if let Some(key) = key {
                    page_keys.push(dense[key as usize]);
                }
            }
        }
        // Dense keys follow the sorted order: the smallest key is the page's smallest value.
        let (min, max) =
            page_keys.iter().fold((u32::MAX, 0), |(min, max), &key| (min.min(key), max.max(key)));
        let nulls = page.len() - page_keys.len();
        nulls_total += nulls as u64;

        body.clear();
        if nullable {
            levels.clear();
            encode_hybrid(&page_levels, 1, &mut levels);
            body.extend_from_slice(&(levels.len() as u32).to_le_bytes());
            body.extend_from_slice(&levels);
        }
        indices.clear();
        encode_hybrid(&page_keys, bit_width, &mut indices);
        body.push(bit_width);
        body.extend_from_slice(&indices);

        let data = CompressedPage::new(
            Page::DataPage {
                buf: Bytes::from(compressor.compress(&body)?),
                num_values: page.len() as u32,
                encoding: Encoding::RLE_DICTIONARY,
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: None,
            },
            body.len(),
        );
        let written = pages.write_page(data)?;
        data_page_offset.get_or_insert(written.offset as i64);
        compressed_size += written.compressed_size as i64;
        uncompressed_size += written.uncompressed_size as i64;
        data_pages += 1;
        offset_index.append_offset_and_size(written.offset as i64, written.compressed_size as i32);
        offset_index.append_row_count(page.len() as i64);
        if page_keys.is_empty() {
            column_index.append(true, Vec::new(), Vec::new(), nulls as i64);
        } else {
            column_index.append(
                false,
                values.value(used[min as usize]).as_bytes().to_vec(),
                values.value(used[max as usize]).as_bytes().to_vec(),
                nulls as i64,
            );
        }
    }
    pages.close()?;

    let value_at = |i: Option<&usize>| i.map(|&key| ByteArray::from(values.value(key).as_bytes().to_vec()));
    let statistics =
        ValueStatistics::new(value_at(used.first()), value_at(used.last()), None, Some(nulls_total), false);
    let encodings = [Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY];
    let metadata = ColumnChunkMetaData::builder(descr)
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(zstd_level)?))
        .set_encodings_mask(EncodingMask::new_from_encodings(encodings.iter()))
        .set_page_encoding_stats(vec![
            PageEncodingStats { page_type: PageType::DICTIONARY_PAGE, encoding: Encoding::PLAIN, count: 1 },
            PageEncodingStats {
                page_type: PageType::DATA_PAGE,
                encoding: Encoding::RLE_DICTIONARY,
                count: data_pages,
            },
        ])
        .set_total_compressed_size(compressed_size)
        .set_total_uncompressed_size(uncompressed_size)
        .set_num_values(keys.len() as i64)
        .set_dictionary_page_offset(Some(0))
        .set_data_page_offset(data_page_offset.unwrap_or(compressed_size))
        .set_statistics(Statistics::ByteArray(statistics))
        .build()?;
    let bytes = sink.into_inner()?;
    let close = ColumnCloseResult {
        bytes_written: bytes.len() as u64,
        rows_written: keys.len() as u64,
        metadata,
        bloom_filter: None,
        column_index: Some(column_index.build()?),
        offset_index: Some(offset_index.build()),
    };
    Ok((Bytes::from(bytes), close))
}

/// Bits needed to write `max`.
fn bits_for(max: u32) -> u8 {
    (u32::BITS - max.leading_zeros()) as u8
}

/// Groups of eight values a bit-packed run holds at most: its header then fits in one byte,
/// as other writers keep it.
const MAX_GROUPS_PER_RUN: usize = 63;

/// Parquet's RLE / bit-packing hybrid: a run of eight or more equal values becomes one
/// repeated value, everything else is bit-packed eight values at a time (the last group
/// padded with zeros, which readers ignore past the page's value count).
fn encode_hybrid(values: &[u32], bit_width: u8, out: &mut Vec<u8>) {
    let mut literal_start = 0;
    let mut i = 0;
    while i < values.len() {
        let value = values[i];
        let mut end = i + 1;
        while end < values.len() && values[end] == value {
            end += 1;
        }
        // Literals go out in whole groups of eight, so a run first tops them up.
        let top_up = (8 - (i - literal_start) % 8) % 8;
        if end - i >= top_up + 8 {
            let run_start = i + top_up;
            bit_pack(&values[literal_start..run_start], bit_width, out);
            write_varint(((end - run_start) as u64) << 1, out);
            out.extend_from_slice(&value.to_le_bytes()[..usize::from(bit_width).div_ceil(8)]);
            literal_start = end;
        }
        i = end;
    }
    bit_pack(&values[literal_start..], bit_width, out);
}

/// Bit-packed runs of `values`, least significant bit first.
fn bit_pack(values: &[u32], bit_width: u8, out: &mut Vec<u8>) {
    for run in values.chunks(MAX_GROUPS_PER_RUN * 8) {
        let groups = run.len().div_ceil(8);
        write_varint(((groups as u64) << 1) | 1, out);
        for group in run.chunks(8) {
            let mut eight = [0u32; 8];
            eight[..group.len()].copy_from_slice(group);
            pack_group(&eight, bit_width, out);
        }
    }
}

/// Eight values of `bit_width` bits, least significant bit first: `bit_width` bytes.
fn pack_group(eight: &[u32; 8], bit_width: u8, out: &mut Vec<u8>) {
    let width = u32::from(bit_width);
    if width <= 16 {
        // The usual case (dictionaries of up to 65,536 values): one 128-bit word.
        let word =
            eight.iter().enumerate().fold(0u128, |word, (i, &v)| word | u128::from(v) << (i as u32 * width));
        out.extend_from_slice(&word.to_le_bytes()[..usize::from(bit_width)]);
        return;
    }
    let (mut buffer, mut bits) = (0u64, 0u32);
    for &value in eight {
        buffer |= u64::from(value) << bits;
        bits += width;
        while bits >= 8 {
            out.push(buffer as u8);
            buffer >>= 8;
            bits -= 8;
        }
    }
}

fn write_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader of the hybrid encoding written from the format's description, to check the
    /// writer against.
    fn decode_hybrid(mut bytes: &[u8], bit_width: u8, count: usize) -> Vec<u32> {
        let varint = |bytes: &mut &[u8]| {
            let (mut value, mut shift) = (0u64, 0);
            loop {
                let byte = bytes[0];
                *bytes = &bytes[1..];
                value |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    return value;
                }
                shift += 7;
            }
        };
        let mut out = Vec::new();
        while out.len() < count {
            let header = varint(&mut bytes);
            if header & 1 == 0 {
                let width = usize::from(bit_width).div_ceil(8);
                let mut le = [0u8; 4];
                le[..width].copy_from_slice(&bytes[..width]);
                bytes = &bytes[width..];
                out.extend(std::iter::repeat_n(u32::from_le_bytes(le), (header >> 1) as usize));
            } else {
                let values = (header >> 1) as usize * 8;
                for n in 0..values {
                    let mut value = 0u32;
                    for b in 0..usize::from(bit_width) {
                        let bit = n * usize::from(bit_width) + b;
                        value |= u32::from((bytes[bit / 8] >> (bit % 8)) & 1) << b;
                    }
                    out.push(value);
                }
                bytes = &bytes[values * usize::from(bit_width) / 8..];
            }
        }
        assert!(bytes.is_empty(), "{} bytes left over", bytes.len());
        out.truncate(count);
        out
    }

    #[test]
    fn hybrid_runs_and_literals_read_back() {
        let mut cases: Vec<(Vec<u32>, u8)> = vec![
            (vec![], 3),
            (vec![5], 3),
            (vec![0; 100], 0),
            (vec![7; 9], 3),
            ((0..1000).map(|i| i % 17).collect(), 5),
            ((0..1000).map(|i| (i / 13) % 3).collect(), 2),
            ((0..2000).map(|i| if i % 100 < 30 { 1 } else { i % 7 }).collect(), 3),
            ((0..600).map(|i| (i * 7919) % 200_000).collect(), 18),
            ((0..64).map(|i| u32::MAX - i).collect(), 32),
        ];
        // Runs that start and end at every offset within a group of eight.
        for lead in 0..9 {
            for run in [7, 8, 9, 16, 17] {
                let mut values: Vec<u32> = (0..lead).map(|i| i % 2).collect();
                values.extend(std::iter::repeat_n(3, run));
                values.extend([1, 2, 1]);
                cases.push((values, 2));
            }
        }
        // Every width, values using all of its bits, in groups both whole and cut short.
        for bit_width in 0..=32u8 {
            let mask = u32::MAX.checked_shr(32 - u32::from(bit_width)).unwrap_or(0);
            cases.push(((0..37u32).map(|i| i.wrapping_mul(2_654_435_761) & mask).collect(), bit_width));
        }
        for (values, bit_width) in cases {
            let mut out = Vec::new();
            encode_hybrid(&values, bit_width, &mut out);
            assert_eq!(decode_hybrid(&out, bit_width, values.len()), values, "width {bit_width}");
        }
    }

    #[test]
    fn long_runs_are_written_once() {
        let mut out = Vec::new();
        encode_hybrid(&[4; 10_000], 3, &mut out);
        assert_eq!(out, [0xa0, 0x9c, 0x01, 4], "one run header (10000 << 1) and the value");
    }

    #[test]
    fn bit_widths() {
        assert_eq!(bits_for(0), 0);
        assert_eq!(bits_for(1), 1);
        assert_eq!(bits_for(255), 8);
        assert_eq!(bits_for(256), 9);
        assert_eq!(bits_for(u32::MAX), 32);
    }

    #[test]
    fn sorted_dictionaries_are_recognised() {
        assert!(is_sorted_dictionary(&StringArray::from(vec!["a", "b", "é"])));
        assert!(is_sorted_dictionary(&StringArray::from(Vec::<&str>::new())));
        assert!(!is_sorted_dictionary(&StringArray::from(vec!["b", "a"])));
        assert!(!is_sorted_dictionary(&StringArray::from(vec!["a", "a"])), "values must be distinct");
        assert!(!is_sorted_dictionary(&StringArray::from(vec![Some("a"), None])));
    }
}
