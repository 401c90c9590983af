//! Reading newline-delimited events from plain or gzip input, a line at a time.
//!
//! Gzip input may hold several concatenated members (what `cat a.gz b.gz` and many log
//! shippers produce), so it is always read with `MultiGzDecoder`.

use std::io::{self, BufRead, BufReader, Read};

use flate2::read::MultiGzDecoder;

/// The two bytes every gzip member starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Some editors start UTF-8 files with this.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Buffer size for decompressed input: large enough that line scanning dominates, not refills.
const BUFFER_BYTES: usize = 256 * 1024;

/// A reader of lines that may come from gzip. Input is decompressed straight into one
/// buffer, and each line is handed out as a slice of it, found with a vectorised byte search:
/// no line is copied unless it spans a refill.
pub struct Lines {
    reader: Box<dyn Read + Send>,
    buffer: Vec<u8>,
    /// The bytes not handed out yet: `buffer[start..filled]`.
    start: usize,
    filled: usize,
    /// Bytes from `start` known to hold no `\n` (a long line is not searched again at each
    /// refill).
    searched: usize,
    at_end: bool,
    number: u64,
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lines").field("line", &self.number).finish()
    }
}

impl Lines {
    /// Wraps input, decompressing it when it starts with the gzip magic bytes.
    pub fn new<R: Read + Send + 'static>(source: R) -> io::Result<Self> {
        let mut buffered = BufReader::with_capacity(BUFFER_BYTES, source);
        let is_gzip = buffered.fill_buf()?.starts_with(&GZIP_MAGIC);
        let reader: Box<dyn Read + Send> =
            if is_gzip { Box::new(MultiGzDecoder::new(buffered)) } else { Box::new(buffered) };
        Ok(Self {
            reader,
            buffer: vec![0; BUFFER_BYTES],
            start: 0,
            filled: 0,
            searched: 0,
            at_end: false,
            number: 0,
        })
    }

    /// The number of the last line returned (0 before the first).
    pub fn line_number(&self) -> u64 {
        self.number
    }

    /// The next line without its `\n`, and its 1-based number; `None` at the end. A `\r`
    /// before the `\n` stays (it is JSON whitespace, and raw lines are kept byte for byte);
    /// a UTF-8 byte order mark at the very start is not part of any event and is dropped.
    /// A truncated or corrupt gzip stream is an error here.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        let (line_start, line_end) = loop {
            let unsearched = &self.buffer[self.start + self.searched..self.filled];
            if let Some(at) = memchr::memchr(b'\n', unsearched) {
                let end = self.start + self.searched + at;
                break (std::mem::replace(&mut self.start, end + 1), end);
            }
            self.searched = self.filled - self.start;
            if self.at_end {
                if self.start == self.filled {
                    return Ok(None);
                }
                break (std::mem::replace(&mut self.start, self.filled), self.filled);
            }
            self.refill()?;
        };
        self.searched = 0;
        self.number += 1;
        let line = &self.buffer[line_start..line_end];
        let line = if self.number == 1 { line.strip_prefix(UTF8_BOM).unwrap_or(line) } else { line };
        Ok(Some((self.number, line)))
    }

    /// Reads more input after the bytes not handed out yet, which move to the front; the
    /// buffer doubles when one line fills it.
    fn refill(&mut self) -> io::Result<()> {
        self.buffer.copy_within(self.start..self.filled, 0);
        self.filled -= self.start;
        self.start = 0;
        if self.filled == self.buffer.len() {
            self.buffer.resize(2 * self.buffer.len(), 0);
        }
        let read = loop {
            match self.reader.read(&mut self.buffer[self.filled..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                read => break read?,
            }
        };
        self.filled += read;
        self.at_end = read == 0;
        Ok(())
    }
}

/// Whether a line holds nothing but whitespace (skipped, not an event and not an error).
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn collect(data: Vec<u8>) -> io::Result<Vec<(u64, String)>> {
        let mut lines = Lines::new(io::Cursor::new(data))?;
        let mut out = Vec::new();
        while let Some((n, line)) = lines.next_line()? {
            out.push((n, String::from_utf8_lossy(line).into_owned()));
        }
        Ok(out)
    }

    #[test]
    fn plain_and_gzip_and_multi_member_gzip() {
        let expected = vec![(1, "a".to_string()), (2, "b".to_string()), (3, "c".to_string())];
        assert_eq!(collect(b"\xEF\xBB\xBFa\nb\nc".to_vec()).unwrap(), expected);
        let crlf = collect(b"a\r\nb\r\n".to_vec()).unwrap();
        assert_eq!(crlf, vec![(1, "a\r".to_string()), (2, "b\r".to_string())], "kept byte for byte");
        assert_eq!(collect(gzip(b"a\nb\nc\n")).unwrap(), expected);
        let mut members = gzip(b"a\nb\n");
        members.extend(gzip(b"c\n"));
        assert_eq!(collect(members).unwrap(), expected);
    }

    #[test]
    fn lines_across_buffer_ends_and_longer_than_a_buffer_come_whole() {
        let mut data = Vec::new();
        let mut expected = Vec::new();
        for n in 1..=3000u64 {
            // Lengths that do not divide the buffer, and two lines longer than it.
            let len = if n % 1000 == 0 { BUFFER_BYTES * 2 + 17 } else { (n as usize * 37) % 500 };
            let line: String = (0..len).map(|i| char::from(b'a' + ((n as usize + i) % 26) as u8)).collect();
            data.extend_from_slice(line.as_bytes());
            data.push(b'\n');
            expected.push((n, line));
        }
        assert_eq!(collect(data.clone()).unwrap(), expected);
        assert_eq!(collect(gzip(&data)).unwrap(), expected);
        data.pop();
        assert_eq!(collect(data).unwrap(), expected, "the last line needs no newline");
    }

    #[test]
    fn empty_lines_are_lines_and_empty_input_has_none() {
        assert_eq!(collect(Vec::new()).unwrap(), []);
        assert_eq!(collect(gzip(b"")).unwrap(), []);
        let expected = vec![(1, String::new()), (2, "a".to_string()), (3, String::new())];
        assert_eq!(collect(b"\na\n\n".to_vec()).unwrap(), expected);
        assert_eq!(collect(gzip(b"\na\n\n")).unwrap(), expected);
        assert_eq!(collect(b"\xEF\xBB\xBF\n".to_vec()).unwrap(), [(1, String::new())], "a mark and no event");
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let data = gzip(&b"{\"event\": 1}\n".repeat(1000));
        let cut = data[..data.len() / 2].to_vec();
        let err = collect(cut).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    }
}
