//! An HTTP resource as a [`ByteSource`]: range requests sized to what the parsers ask for
//! (a small first read, then the boxes and segments they name), cached as byte ranges, or a
//! stream read forward when the server ignores ranges — never past the body budget or the
//! URL's deadline.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Instant;

use reqwest::blocking::{Client, Response};
use reqwest::header::RANGE;
use reqwest::{StatusCode, Url};

use super::{past_deadline, send, HttpOptions, NetworkError, RemoteFacts, FIRST_READ};
use crate::probe::source::ByteSource;

/// The least a range request asks for: a header read of a few bytes fetches this much, so the
/// next few headers come with it.
const MIN_FETCH: u64 = 16 * 1024;
/// Added to a large read: the next box's header, so walking on needs no request of its own.
const LOOKAHEAD: u64 = 64;
/// Cached bytes between two missing stretches that one request may fetch again rather than
/// making two requests.
const COALESCE: u64 = 16 * 1024;
/// A streamed body is read in pieces of this size.
const PIECE: usize = 64 * 1024;

/// How bytes are obtained.
pub(super) enum Mode {
    /// `Range` requests.
    Ranges,
    /// The server ignores `Range`: read the body forward.
    Stream { resp: Option<Response>, pos: u64 },
}

/// Bytes fetched, by offset: ranges that neither overlap nor touch.
#[derive(Debug, Default)]
pub(crate) struct RangeCache(BTreeMap<u64, Vec<u8>>);

impl RangeCache {
    /// Caches `data` at `offset`, merged with the ranges it overlaps or touches.
    pub(crate) fn insert(&mut self, offset: u64, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        let (mut start, mut end) = (offset, offset + data.len() as u64);
        let mut absorbed: Vec<(u64, Vec<u8>)> = Vec::new();
        if let Some((&s, d)) = self.0.range(..start).next_back() {
            if s + d.len() as u64 >= start {
                absorbed.extend(self.0.remove_entry(&s));
            }
        }
        let touching: Vec<u64> = self.0.range(start..=end).map(|(s, _)| *s).collect();
        for s in touching {
            absorbed.extend(self.0.remove_entry(&s));
        }
        if absorbed.is_empty() {
            self.0.insert(offset, data);
            return;
        }
        for (s, d) in &absorbed {
            start = start.min(*s);
            end = end.max(s + d.len() as u64);
        }
        let mut merged = vec![0u8; (end - start) as usize];
        for (s, d) in absorbed {
            let at = (s - start) as usize;
            merged[at..at + d.len()].copy_from_slice(&d);
        }
        let at = (offset - start) as usize;
        merged[at..at + data.len()].copy_from_slice(&data);
        self.0.insert(start, merged);
    }

    /// The stretches of `[from, to)` not cached, in order.
    pub(crate) fn gaps(&self, from: u64, to: u64) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut pos = from;
        if let Some((&s, d)) = self.0.range(..=from).next_back() {
            pos = pos.max(s + d.len() as u64);
        }
        for (&s, d) in self.0.range(from..to) {
            if s > pos {
                gaps.push((pos, s));
            }
            pos = pos.max(s + d.len() as u64);
        }
        if pos < to {
            gaps.push((pos, to));
        }
        gaps
    }

    /// The start of the first cached range after `pos`, or `len`.
    pub(crate) fn next_cached(&self, pos: u64, len: u64) -> u64 {
        self.0.range(pos + 1..).next().map_or(len, |(s, _)| *s)
    }

    /// Copies what is cached from `offset` on into `buf` (stopping at the first missing byte);
    /// returns how many bytes were copied.
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) -> usize {
        let Some((&s, data)) = self.0.range(..=offset).next_back() else { return 0 };
        let data_end = s + data.len() as u64;
        if data_end <= offset {
            return 0;
        }
        let n = ((data_end - offset) as usize).min(buf.len());
        let from = (offset - s) as usize;
        buf[..n].copy_from_slice(&data[from..from + n]);
        n
    }
}

/// An HTTP resource as a [`ByteSource`].
pub struct HttpSource {
    client: Client,
    url: Url,
    len: u64,
    mode: Mode,
    /// Bytes fetched.
    ranges: RangeCache,
    max_body: u64,
    opts: HttpOptions,
    facts: RemoteFacts,
    deadline_at: Instant,
}

impl HttpSource {
    /// A source for `url` of `length` bytes (unknown: the body is streamed to learn it), whose
    /// first bytes (`initial`) came with the opening request.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        client: Client,
        url: Url,
        length: Option<u64>,
        initial: Vec<u8>,
        facts: RemoteFacts,
        max_body: u64,
        opts: HttpOptions,
        mode: Mode,
        deadline_at: Instant,
    ) -> Result<Self, NetworkError> {
        let mut src = HttpSource {
            client,
            url,
            len: length.unwrap_or(0),
            mode,
            ranges: RangeCache::default(),
            max_body,
            opts,
            facts,
            deadline_at,
        };
        src.ranges.insert(0, initial);
        if length.is_none() {
            // No declared length: stream the body (at most the budget, keeping only its start)
            // to learn it; the parsers' reads then stream it again as needed.
            src.switch_to_stream();
            src.len = u64::MAX;
            src.stream_to(max_body, false).map_err(|e| NetworkError::caused(e.to_string(), e))?;
            src.len = src.stream_pos().min(max_body);
            src.mode = Mode::Stream { resp: None, pos: src.len };
        }
        Ok(src)
    }

    /// What the exchange has shown so far (bytes fetched, requests, range support).
    pub fn facts(&self) -> &RemoteFacts {
        &self.facts
    }

    /// Consumes the source, returning what the exchange showed.
    pub fn into_facts(self) -> RemoteFacts {
        self.facts
    }

    fn switch_to_stream(&mut self) {
        if matches!(self.mode, Mode::Ranges) {
            self.mode = Mode::Stream { resp: None, pos: 0 };
        }
    }

    fn stream_pos(&self) -> u64 {
        match &self.mode {
            Mode::Stream { pos, .. } => *pos,
            Mode::Ranges => 0,
        }
    }

    /// Fetches `[start, end)` with one range request.
    fn fetch_range(&mut self, start: u64, end: u64) -> std::io::Result<()> {
        let url = self.url.clone();
        let client = self.client.clone();
        let last = end - 1;
        let build = || client.get(url.clone()).header(RANGE, format!("bytes={start}-{last}"));
        let resp = send(&build, &self.opts, &mut self.facts, self.deadline_at).map_err(std::io::Error::other)?;
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => {
                self.facts.range_supported = true;
                let want = end - start;
                let mut body = Vec::with_capacity(want.min(16 << 20) as usize);
                let n = match resp.take(want).read_to_end(&mut body) {
                    Ok(n) => n,
                    Err(_) if Instant::now() >= self.deadline_at => {
                        return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, past_deadline(&self.opts)))
                    }
                    Err(_) => body.len(),
                };
                self.facts.bytes_fetched += n as u64;
                self.ranges.insert(start, body);
                Ok(())
            }
            StatusCode::OK => {
                // Range ignored after all: continue from this very body.
                self.facts.range_supported = false;
                self.mode = Mode::Stream { resp: Some(resp), pos: 0 };
                self.ensure(start, end)
            }
            StatusCode::RANGE_NOT_SATISFIABLE => Ok(()), // shorter than declared: a short read
            s => Err(std::io::Error::other(format!("range request answered HTTP {}", s.as_u16()))),
        }
    }

    /// Streams the body forward up to `until`, caching what it passes when `keep_all` (the
    /// start, as far as the first read reaches, is always kept: every parser reads it), and
    /// never past the byte budget.
    fn stream_to(&mut self, until: u64, keep_all: bool) -> std::io::Result<()> {
        let until = until.min(self.max_body);
        if self.stream_pos() >= until {
            return Ok(());
        }
        if let Mode::Stream { resp: None, .. } = self.mode {
            let url = self.url.clone();
            let client = self.client.clone();
            let build = || client.get(url.clone());
            let resp = send(&build, &self.opts, &mut self.facts, self.deadline_at).map_err(std::io::Error::other)?;
            if !resp.status().is_success() {
                return Err(std::io::Error::other(format!("GET answered HTTP {}", resp.status().as_u16())));
            }
            self.mode = Mode::Stream { resp: Some(resp), pos: 0 };
        }
        let mut piece_buf = vec![0u8; PIECE];
        loop {
            let Mode::Stream { resp: Some(resp), pos } = &mut self.mode else { return Ok(()) };
            let start = *pos;
            if start >= until {
                return Ok(());
            }
            let piece = (until - start).min(PIECE as u64) as usize;
            let mut filled = 0usize;
            while filled < piece {
                if Instant::now() >= self.deadline_at {
                    return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, past_deadline(&self.opts)));
                }
                match resp.read(&mut piece_buf[filled..piece]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    // The deadline ran out while reading: that is not the body's end.
                    Err(_) if Instant::now() >= self.deadline_at => {
                        return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, past_deadline(&self.opts)))
                    }
                    Err(_) => break, // a cut body: what arrived is what there is
                }
            }
            *pos = start + filled as u64;
            self.facts.bytes_fetched += filled as u64;
            let end = start + filled as u64;
            if filled > 0 && (keep_all || start < FIRST_READ) {
                let keep = if keep_all { filled } else { ((FIRST_READ - start) as usize).min(filled) };
                self.ranges.insert(start, piece_buf[..keep].to_vec());
            }
            if end >= self.max_body || end >= self.len {
                self.facts.whole_body_read = true;
            }
            if filled < piece {
                // End of the body (or the connection was cut): this is where the data ends.
                self.len = self.len.min(end);
                self.facts.whole_body_read = true;
                self.mode = Mode::Stream { resp: None, pos: end };
                return Ok(());
            }
        }
    }

    /// Makes `[from, to)` available.
    fn ensure(&mut self, from: u64, to: u64) -> std::io::Result<()> {
        let gaps = self.ranges.gaps(from, to);
        let (Some(&(lo, _)), Some(&(_, hi))) = (gaps.first(), gaps.last()) else { return Ok(()) };
        match self.mode {
            Mode::Ranges => {
                // One request for neighbouring gaps, unless much is cached between them.
                let cached_between: u64 = gaps.windows(2).map(|w| w[1].0 - w[0].1).sum();
                let plan: Vec<(u64, u64)> = if cached_between <= COALESCE { vec![(lo, hi)] } else { gaps };
                for (start, end) in plan {
                    // A large read (a box, a segment) takes the next box's header along; a small
                    // one (a header) at least 16 KiB, so the next few headers come with it.
                    let stop = if end - start > MIN_FETCH { end + LOOKAHEAD } else { start + MIN_FETCH };
                    // Never past the file, nor into what is cached already beyond the read.
                    let stop =
                        stop.min(self.len).min(self.ranges.next_cached(end.saturating_sub(1), self.len).max(end));
                    self.fetch_range(start, stop)?;
                    if !matches!(self.mode, Mode::Ranges) {
                        return Ok(());
                    }
                }
                Ok(())
            }
            Mode::Stream { .. } => {
                if lo < self.stream_pos() {
                    // The stream has passed these bytes without keeping them: read again from 0.
                    self.mode = Mode::Stream { resp: None, pos: 0 };
                }
                if lo >= self.max_body {
                    self.facts.budget_exceeded = true;
                    return Ok(());
                }
                if hi > self.max_body && self.len > self.max_body {
                    self.facts.budget_exceeded = true;
                }
                // Bytes before `lo` are skipped, the wanted ones kept.
                self.stream_to(lo, false)?;
                self.stream_to(hi.min(self.len), true)
            }
        }
    }
}

impl ByteSource for HttpSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let end = offset.saturating_add(buf.len() as u64).min(self.len);
        self.ensure(offset, end)?;
        let n = (end - offset) as usize;
        Ok(self.ranges.read(offset, &mut buf[..n]))
    }

    fn bytes_read(&self) -> u64 {
        self.facts.bytes_fetched
    }

    fn head_len(&self) -> usize {
        FIRST_READ as usize
    }

    fn granule(&self) -> usize {
        MIN_FETCH as usize
    }
}

#[cfg(test)]
mod tests {
    use super::RangeCache;
    use proptest::prelude::*;

    proptest! {
        /// Whatever ranges arrive, in whatever order, the cache holds exactly the bytes written
        /// (the newest wins), reports as missing exactly what was never written, and its ranges
        /// neither overlap nor touch.
        #[test]
        fn the_cache_matches_a_byte_map(writes in prop::collection::vec((0u64..300, 1usize..80, any::<u8>()), 1..30)) {
            let mut cache = RangeCache::default();
            let mut truth: Vec<Option<u8>> = vec![None; 400];
            for (off, n, v) in writes {
                let data: Vec<u8> = (0..n).map(|i| v.wrapping_add(i as u8)).collect();
                for (i, b) in data.iter().enumerate() {
                    truth[off as usize + i] = Some(*b);
                }
                cache.insert(off, data);
            }
            let mut prev_end = None;
            for (s, d) in &cache.0 {
                prop_assert!(!d.is_empty());
                if let Some(e) = prev_end { prop_assert!(*s > e, "ranges touch or overlap"); }
                prev_end = Some(s + d.len() as u64);
            }
            let gaps = cache.gaps(0, 400);
            for (i, t) in truth.iter().enumerate() {
                let missing = gaps.iter().any(|(a, b)| (*a..*b).contains(&(i as u64)));
                prop_assert_eq!(missing, t.is_none(), "byte {}", i);
                let mut one = [0u8; 1];
                let got = cache.read(i as u64, &mut one);
                match t {
                    Some(b) => { prop_assert_eq!(got, 1); prop_assert_eq!(one[0], *b); }
                    None => prop_assert_eq!(got, 0),
                }
            }
        }
    }
}
