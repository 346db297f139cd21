//! An HTTP resource as a [`ByteSource`]: range requests through a block cache (adjacent missing
//! blocks coalesced), or a stream read forward when the server ignores ranges, never past the
//! body budget or the URL's deadline.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Instant;

use reqwest::blocking::{Client, Response};
use reqwest::header::RANGE;
use reqwest::{StatusCode, Url};

use super::{past_deadline, send, HttpOptions, NetworkError, RemoteFacts, BLOCK};
use crate::probe::source::ByteSource;

/// How blocks are obtained.
pub(super) enum Mode {
    /// `Range` requests.
    Ranges,
    /// The server ignores `Range`: read the body forward.
    Stream { resp: Option<Response>, pos: u64 },
}

/// An HTTP resource as a [`ByteSource`].
pub struct HttpSource {
    client: Client,
    url: Url,
    len: u64,
    mode: Mode,
    blocks: BTreeMap<u64, Vec<u8>>,
    max_body: u64,
    opts: HttpOptions,
    facts: RemoteFacts,
    deadline_at: Instant,
}

impl HttpSource {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        client: Client,
        url: Url,
        length: Option<u64>,
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
            blocks: BTreeMap::new(),
            max_body,
            opts,
            facts,
            deadline_at,
        };
        if length.is_none() {
            // No declared length: stream the body (at most the budget, keeping only the first
            // block) to learn it; the parsers' reads then stream it again as needed.
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

    /// Reads blocks `[first, last]` (block indexes) with one range request.
    fn fetch_range(&mut self, first: u64, last: u64) -> std::io::Result<()> {
        let start = first * BLOCK;
        let end = ((last + 1) * BLOCK).min(self.len) - 1;
        let url = self.url.clone();
        let client = self.client.clone();
        let build = || client.get(url.clone()).header(RANGE, format!("bytes={start}-{end}"));
        let resp = send(&build, &self.opts, &mut self.facts, self.deadline_at).map_err(std::io::Error::other)?;
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => {
                self.facts.range_supported = true;
                let want = end - start + 1;
                let mut body = Vec::with_capacity(want.min(64 * BLOCK) as usize);
                let n = match resp.take(want).read_to_end(&mut body) {
                    Ok(n) => n,
                    Err(_) if Instant::now() >= self.deadline_at => {
                        return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, past_deadline(&self.opts)))
                    }
                    Err(_) => body.len(),
                };
                self.facts.bytes_fetched += n as u64;
                self.store(start, &body);
                Ok(())
            }
            StatusCode::OK => {
                // Range ignored after all: continue from this very body.
                self.facts.range_supported = false;
                self.mode = Mode::Stream { resp: Some(resp), pos: 0 };
                self.ensure(first, last)
            }
            StatusCode::RANGE_NOT_SATISFIABLE => Ok(()), // shorter than declared: a short read
            s => Err(std::io::Error::other(format!("range request answered HTTP {}", s.as_u16()))),
        }
    }

    /// Cuts `data` (starting at `offset`, block-aligned) into cached blocks.
    fn store(&mut self, offset: u64, data: &[u8]) {
        for (i, chunk) in data.chunks(BLOCK as usize).enumerate() {
            self.blocks.insert(offset / BLOCK + i as u64, chunk.to_vec());
        }
    }

    /// Streams the body forward up to `until`, caching the blocks passed when `keep_all` (the
    /// first block is always kept: every parser reads it), and never past the byte budget.
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
        let mut piece_buf = vec![0u8; BLOCK as usize];
        loop {
            let Mode::Stream { resp: Some(resp), pos } = &mut self.mode else { return Ok(()) };
            let start = *pos;
            if start >= until {
                return Ok(());
            }
            // One piece never crosses a block boundary, so blocks fill from their start.
            let boundary = (start / BLOCK + 1) * BLOCK;
            let piece = (boundary.min(until) - start) as usize;
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
            let idx = start / BLOCK;
            if filled > 0 && (keep_all || idx == 0) {
                let entry = self.blocks.entry(idx).or_default();
                if entry.len() as u64 == start % BLOCK {
                    entry.extend_from_slice(&piece_buf[..filled]);
                }
            }
            let end = start + filled as u64;
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

    /// Makes blocks `[first, last]` available.
    fn ensure(&mut self, first: u64, last: u64) -> std::io::Result<()> {
        let missing: Vec<u64> = (first..=last).filter(|b| !self.blocks.contains_key(b)).collect();
        let (Some(&lo), Some(&hi)) = (missing.first(), missing.last()) else { return Ok(()) };
        match self.mode {
            Mode::Ranges => self.fetch_range(lo, hi),
            Mode::Stream { .. } => {
                let start = lo * BLOCK;
                if start < self.stream_pos() {
                    // The stream has passed this block without keeping it: read again from 0.
                    self.mode = Mode::Stream { resp: None, pos: 0 };
                }
                if start >= self.max_body {
                    self.facts.budget_exceeded = true;
                    return Ok(());
                }
                if (hi + 1) * BLOCK > self.max_body && self.len > self.max_body {
                    self.facts.budget_exceeded = true;
                }
                // Blocks before `lo` are skipped, the wanted ones kept.
                self.stream_to(start, false)?;
                self.stream_to(((hi + 1) * BLOCK).min(self.len), true)
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
        self.ensure(offset / BLOCK, (end - 1) / BLOCK)?;
        let mut copied = 0usize;
        let mut pos = offset;
        while pos < end {
            let Some(block) = self.blocks.get(&(pos / BLOCK)) else { break };
            let in_block = (pos % BLOCK) as usize;
            if in_block >= block.len() {
                break;
            }
            let n = (block.len() - in_block).min((end - pos) as usize);
            buf[copied..copied + n].copy_from_slice(&block[in_block..in_block + n]);
            copied += n;
            pos += n as u64;
        }
        Ok(copied)
    }

    fn bytes_read(&self) -> u64 {
        self.facts.bytes_fetched
    }
}
