//! Bounded reading helpers shared by the format parsers.
//!
//! [`Reader`] wraps a [`ByteSource`] and keeps its first bytes in memory (most headers live
//! there). Every read names how many bytes it wants; a read past the end of the source is a
//! [`ParseError::Malformed`] ("truncated"), never a panic, and no buffer is ever sized by a
//! number taken from the file without first checking that the file holds that many bytes and
//! that it is under an explicit cap.
//!
//! [`Bytes`] is a cursor over a slice already in memory (a box or a segment).

use std::io;

use super::source::ByteSource;

/// How many leading bytes are kept in memory: headers of every supported format start here.
pub(crate) const HEAD_LEN: usize = 64 * 1024;

/// How far from the end an end marker is looked for at most.
const TAIL_SEARCH: u64 = 64 * 1024;

/// Why a parser stopped.
#[derive(Debug)]
pub(crate) enum ParseError {
    /// The source could not be read (missing file, permission, network).
    Io(io::Error),
    /// The bytes break the format: truncated, inconsistent or impossible values.
    Malformed(String),
}

impl From<io::Error> for ParseError {
    fn from(e: io::Error) -> Self {
        ParseError::Io(e)
    }
}

pub(crate) type PResult<T> = Result<T, ParseError>;

/// Shorthand for a [`ParseError::Malformed`].
pub(crate) fn malformed<T>(msg: impl Into<String>) -> PResult<T> {
    Err(ParseError::Malformed(msg.into()))
}

/// A [`ByteSource`] with its head cached and bounds-checked reads.
pub(crate) struct Reader<'a> {
    src: &'a mut dyn ByteSource,
    len: u64,
    head: Vec<u8>,
}

impl<'a> Reader<'a> {
    /// Reads the head (at most [`HEAD_LEN`] bytes) of `src`.
    pub(crate) fn new(src: &'a mut dyn ByteSource) -> io::Result<Self> {
        let len = src.len();
        let want = usize::try_from(len).unwrap_or(usize::MAX).min(src.head_len());
        let mut head = vec![0; want];
        let got = src.read_at(0, &mut head)?;
        head.truncate(got);
        Ok(Self { src, len, head })
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn head(&self) -> &[u8] {
        &self.head
    }

    /// Fills `buf` from `offset`, or reports a truncation naming `what` was being read.
    pub(crate) fn read_exact_at(&mut self, offset: u64, buf: &mut [u8], what: &str) -> PResult<()> {
        let end = offset.checked_add(buf.len() as u64);
        match end {
            Some(end) if end <= self.len => {}
            _ => {
                return malformed(format!(
                    "truncated: {what} needs {} bytes at offset {offset}, but the file ends at {}",
                    buf.len(),
                    self.len
                ))
            }
        }
        let head_len = self.head.len() as u64;
        if let Some(end) = end.filter(|&e| e <= head_len) {
            buf.copy_from_slice(&self.head[offset as usize..end as usize]);
            return Ok(());
        }
        let got = self.src.read_at(offset, buf)?;
        if got < buf.len() {
            // The source was shorter than it said (a file shrinking under us, a short body).
            return malformed(format!(
                "truncated: {what} at offset {offset} could only be read up to byte {}",
                offset + got as u64
            ));
        }
        Ok(())
    }

    /// Reads `n` bytes at `offset` into a new buffer. `n` is checked against the file length
    /// and against `cap` before anything is allocated.
    pub(crate) fn read_vec(&mut self, offset: u64, n: u64, cap: u64, what: &str) -> PResult<Vec<u8>> {
        if n > cap {
            return malformed(format!("{what} declares {n} bytes, more than the {cap}-byte limit"));
        }
        if offset.checked_add(n).is_none_or(|end| end > self.len) {
            return malformed(format!(
                "truncated: {what} needs {n} bytes at offset {offset}, but the file ends at {}",
                self.len
            ));
        }
        let mut buf = vec![0; n as usize];
        self.read_exact_at(offset, &mut buf, what)?;
        Ok(buf)
    }

    /// Looks for `marker` in the file's last `window` bytes, then (for files with data after
    /// their end marker) in the last 64 KiB: the quick integrity check. Over HTTP the first
    /// look costs `window` bytes.
    pub(crate) fn check_tail(&mut self, marker: &[u8], window: u64, problem: &str) -> PResult<()> {
        let len = self.len();
        for w in [window.max(marker.len() as u64), TAIL_SEARCH] {
            let start = len.saturating_sub(w);
            let tail = self.read_vec(start, len - start, TAIL_SEARCH, "the tail")?;
            if memchr::memmem::rfind(&tail, marker).is_some() {
                return Ok(());
            }
            if start == 0 {
                break;
            }
        }
        malformed(problem)
    }

    /// A sequential reader starting at `offset`.
    pub(crate) fn seq(&mut self, offset: u64) -> SeqReader<'_, 'a> {
        SeqReader { r: self, pos: offset, buf: Vec::new(), buf_start: offset, buf_pos: 0 }
    }
}

/// Size of one buffered read of a [`SeqReader`].
pub(crate) const SEQ_BLOCK: usize = 256 * 1024;

/// Buffered forward reading through a [`Reader`], for formats that must be walked to the end
/// (JPEG entropy-coded data, PNG chunk CRCs).
pub(crate) struct SeqReader<'r, 'a> {
    r: &'r mut Reader<'a>,
    pos: u64,
    buf: Vec<u8>,
    buf_start: u64,
    buf_pos: usize,
}

impl SeqReader<'_, '_> {
    /// Current absolute offset.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Refills the buffer at the current position; returns false at end of file.
    fn fill(&mut self) -> PResult<bool> {
        self.fill_min(1)
    }

    /// Refills the buffer at the current position with at least `min` bytes (fewer only where
    /// the file ends); returns false at end of file.
    fn fill_min(&mut self, min: usize) -> PResult<bool> {
        if self.buf_pos < self.buf.len() {
            return Ok(true);
        }
        let remaining = self.r.len.saturating_sub(self.pos);
        if remaining == 0 {
            return Ok(false);
        }
        // Inside the cached head, refill only up to its end: over HTTP every byte past it is a
        // transfer, and most headers end well inside it. But never fewer than `min` bytes: a
        // caller that needs two bytes (a 0xFF and its successor) must get them even when the
        // first is the head's last byte.
        let head_len = self.r.head.len() as u64;
        let granule = self.r.src.granule().clamp(1, SEQ_BLOCK) as u64;
        let limit = if self.pos < head_len { (head_len - self.pos).max(min as u64) } else { granule.max(min as u64) };
        let n = remaining.min(limit).min(SEQ_BLOCK as u64) as usize;
        self.buf.resize(n, 0);
        self.r.read_exact_at(self.pos, &mut self.buf[..n], "data")?;
        self.buf_start = self.pos;
        self.buf_pos = 0;
        Ok(true)
    }

    /// The buffered bytes from the current position (at least one unless at end of file).
    pub(crate) fn peek(&mut self) -> PResult<&[u8]> {
        self.fill()?;
        Ok(&self.buf[self.buf_pos..])
    }

    /// Like [`Self::peek`], but with at least `n` bytes buffered unless the file ends first
    /// (`n` must be small: the buffer is refilled from the current position).
    pub(crate) fn peek_min(&mut self, n: usize) -> PResult<&[u8]> {
        if self.buf.len() - self.buf_pos < n {
            self.buf.clear();
            self.buf_pos = 0;
        }
        self.fill_min(n)?;
        Ok(&self.buf[self.buf_pos..])
    }

    /// Advances by `n` bytes, which must not exceed what [`Self::peek`] returned.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(self.buf_pos + n <= self.buf.len());
        self.buf_pos += n;
        self.pos += n as u64;
    }

    /// One byte, or a truncation error.
    pub(crate) fn byte(&mut self, what: &str) -> PResult<u8> {
        if !self.fill()? {
            return malformed(format!("truncated: file ends inside {what} at offset {}", self.pos));
        }
        let b = self.buf[self.buf_pos];
        self.consume(1);
        Ok(b)
    }

    /// Exactly `out.len()` bytes, or a truncation error.
    pub(crate) fn read_exact(&mut self, out: &mut [u8], what: &str) -> PResult<()> {
        let mut filled = 0;
        while filled < out.len() {
            if !self.fill()? {
                return malformed(format!("truncated: file ends inside {what} at offset {}", self.pos));
            }
            let avail = &self.buf[self.buf_pos..];
            let n = avail.len().min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&avail[..n]);
            self.consume(n);
            filled += n;
        }
        Ok(())
    }

    /// Skips `n` bytes without reading them when they are past the buffer.
    pub(crate) fn skip(&mut self, n: u64, what: &str) -> PResult<()> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.r.len);
        let Some(end) = end else {
            return malformed(format!(
                "truncated: {what} needs {n} bytes at offset {}, but the file ends at {}",
                self.pos, self.r.len
            ));
        };
        let buf_end = self.buf_start + self.buf.len() as u64;
        if end <= buf_end && end >= self.buf_start {
            self.buf_pos = (end - self.buf_start) as usize;
        } else {
            self.buf.clear();
            self.buf_pos = 0;
            self.buf_start = end;
        }
        self.pos = end;
        Ok(())
    }

    /// Feeds the next `n` bytes to `f` in pieces (e.g. for a CRC), without holding them all.
    pub(crate) fn stream(&mut self, mut n: u64, what: &str, mut f: impl FnMut(&[u8])) -> PResult<()> {
        if self.pos.checked_add(n).is_none_or(|e| e > self.r.len) {
            return malformed(format!(
                "truncated: {what} needs {n} bytes at offset {}, but the file ends at {}",
                self.pos, self.r.len
            ));
        }
        while n > 0 {
            if !self.fill()? {
                return malformed(format!("truncated: file ends inside {what}"));
            }
            let avail = &self.buf[self.buf_pos..];
            let take = (avail.len() as u64).min(n) as usize;
            f(&avail[..take]);
            self.consume(take);
            n -= take as u64;
        }
        Ok(())
    }
}

/// A cursor over bytes in memory; every accessor is bounds-checked.
#[derive(Clone)]
pub(crate) struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

macro_rules! int_reader {
    ($name:ident, $t:ty, $from:ident) => {
        pub(crate) fn $name(&mut self) -> PResult<$t> {
            let b = self.take(std::mem::size_of::<$t>())?;
            Ok(<$t>::$from(b.try_into().expect("take returned the asked length")))
        }
    };
}

impl<'a> Bytes<'a> {
    pub(crate) fn new(data: &'a [u8], what: &'static str) -> Self {
        Self { data, pos: 0, what }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> PResult<&'a [u8]> {
        if n > self.remaining() {
            return malformed(format!(
                "{} is too short: needs {n} more bytes at byte {}, has {}",
                self.what,
                self.pos,
                self.remaining()
            ));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn skip(&mut self, n: usize) -> PResult<()> {
        self.take(n).map(|_| ())
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.data[self.pos..];
        self.pos = self.data.len();
        s
    }

    pub(crate) fn u8(&mut self) -> PResult<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn fourcc(&mut self) -> PResult<[u8; 4]> {
        Ok(self.take(4)?.try_into().expect("4 bytes"))
    }

    int_reader!(u32be, u32, from_be_bytes);
    int_reader!(u64be, u64, from_be_bytes);
    int_reader!(i32be, i32, from_be_bytes);
    int_reader!(u16le, u16, from_le_bytes);
    int_reader!(u32le, u32, from_le_bytes);
    int_reader!(i32le, i32, from_le_bytes);
}

/// Printable form of a four-character code (non-printable bytes escaped).
pub(crate) fn fourcc_str(cc: &[u8]) -> String {
    cc.iter()
        .map(|&b| if b.is_ascii_graphic() || b == b' ' { (b as char).to_string() } else { format!("\\x{b:02x}") })
        .collect()
}
