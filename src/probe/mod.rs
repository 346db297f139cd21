//! The probe: what a file is and what it holds, from its headers.
//!
//! [`probe`] sniffs the format by content ([`sniff`]), runs the one parser for that format over
//! a [`ByteSource`], and returns [`MediaFacts`]. Damaged media is not an error here: it is a
//! fact ([`MediaFacts::integrity_problem`]) that the rules turn into an `*.integrity` finding.
//! Only a source that cannot be read at all is an [`std::io::Error`].

mod avi;
mod bmp;
mod deep;
mod exif;
mod facts;
mod ffmpeg;
mod gif;
mod h264;
pub(crate) mod http;
mod isobmff;
mod jpeg;
mod matroska;
mod png;
mod reader;
mod sniff;
mod source;
mod webp;

use std::io;
use std::path::Path;

pub use facts::MediaFacts;
pub use http::{HostAddresses, HttpOptions, NetworkError, RemoteFacts};
pub use sniff::{sniff, Format, Kind};
pub(crate) use source::{open_regular, read_regular};
pub use source::{ByteSource, FileSource, MemorySource};

use reader::{ParseError, Reader};

/// How much of a file the structural integrity check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Integrity {
    /// Walk everything: JPEG entropy-coded data to EOI, every PNG chunk CRC (local files).
    #[default]
    Full,
    /// Headers plus the file's tail (EOI / IEND present): for remote inputs, where every byte
    /// costs a transfer. Box and chunk sizes are still checked against the length.
    HeadAndTail,
    /// Headers only, for the facts: a remote file over the size limit, which is rejected
    /// anyway and whose tail is not worth a transfer.
    HeadOnly,
}

/// How to probe.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ProbeOptions {
    /// Also decode: the whole image (under memory limits), the first and last video frames.
    pub deep: bool,
    /// How much the integrity check reads.
    pub integrity: Integrity,
}

impl ProbeOptions {
    /// Header-only probing (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Enables or disables decoding (`--deep`).
    pub fn deep(mut self, deep: bool) -> Self {
        self.deep = deep;
        self
    }

    /// Sets how much the integrity check reads.
    pub fn integrity(mut self, integrity: Integrity) -> Self {
        self.integrity = integrity;
        self
    }
}

/// Probes a local file, reading headers only.
///
/// ```
/// let facts = wanprep::probe("fixtures/image/ok_800x600.jpg")?;
/// assert_eq!(facts.format, wanprep::Format::Jpeg);
/// assert_eq!((facts.width, facts.height), (Some(800), Some(600)));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn probe(path: impl AsRef<Path>) -> io::Result<MediaFacts> {
    probe_path(path.as_ref(), &ProbeOptions::default())
}

/// Probes a local file with options (e.g. `--deep`).
pub fn probe_path(path: &Path, opts: &ProbeOptions) -> io::Result<MediaFacts> {
    let mut src = FileSource::open(path)?;
    let mut facts = probe_source_with(&mut src, opts)?;
    facts.extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    ffmpeg::complete(path, &mut facts);
    if opts.deep && facts.is_intact() {
        deep::decode_file(path, &mut facts)?;
    }
    Ok(facts)
}

/// Probes bytes in memory (never fails: damaged bytes are an integrity fact).
///
/// ```
/// let facts = wanprep::probe_bytes(b"GIF89a\x20\x03\x58\x02\0\0\0");
/// assert_eq!(facts.format, wanprep::Format::Gif);
/// assert_eq!(facts.width, Some(800));
/// ```
pub fn probe_bytes(data: &[u8]) -> MediaFacts {
    let mut src = MemorySource::new(data);
    probe_source(&mut src).expect("reading memory cannot fail")
}

/// Probes any [`ByteSource`] with a full integrity walk. Fails only when the source cannot be
/// read.
pub fn probe_source(src: &mut dyn ByteSource) -> io::Result<MediaFacts> {
    probe_source_with(src, &ProbeOptions::default())
}

/// Probes any [`ByteSource`] with options (decoding is not done here: see [`probe_path`]).
pub fn probe_source_with(src: &mut dyn ByteSource, opts: &ProbeOptions) -> io::Result<MediaFacts> {
    let mut r = Reader::new(src)?;
    let format = sniff(r.head());
    let mut facts = MediaFacts::new(format, r.len());
    let result = match format {
        Format::Jpeg => jpeg::probe(&mut r, &mut facts, opts.integrity),
        Format::Png => png::probe(&mut r, &mut facts, opts.integrity),
        Format::Bmp => bmp::probe(&mut r, &mut facts),
        Format::Webp => webp::probe(&mut r, &mut facts),
        Format::Mp4 | Format::Mov | Format::ThreeGp | Format::Mj2 => isobmff::probe(&mut r, &mut facts),
        Format::Avi => avi::probe(&mut r, &mut facts),
        Format::Mkv | Format::Webm => matroska::probe(&mut r, &mut facts),
        Format::Gif => gif::probe(&mut r, &mut facts),
        Format::Tiff => {
            let info = exif::read_tiff(r.head());
            facts.orientation = info.orientation;
            if let (Some(w), Some(h)) = (info.width, info.height) {
                facts.set_image_size(w, h);
            }
            Ok(())
        }
        _ => Ok(()),
    };
    match result {
        Ok(()) => {}
        Err(ParseError::Malformed(m)) => facts.flag(m),
        Err(ParseError::Io(e)) => return Err(e),
    }
    Ok(facts)
}

/// Whether an input names a URL (`scheme:` followed by `//`, or one of the schemes that has no
/// `//` such as `data:`), rather than a local path.
pub(crate) fn looks_like_url(input: &str) -> bool {
    let Some((scheme, rest)) = input.split_once(':') else { return false };
    let valid = scheme.len() >= 2
        && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid && (rest.starts_with("//") || matches!(scheme.to_ascii_lowercase().as_str(), "data" | "file" | "mailto"))
}

/// `--deep` for bytes already in memory (a remote input): decodes an image, or writes a video
/// to a temporary file for FFmpeg. Problems are recorded in `facts`.
pub(crate) fn deep_decode_bytes(data: &[u8], facts: &mut MediaFacts) -> io::Result<()> {
    if facts.is_intact() {
        deep::decode_bytes(data, facts)?;
    }
    Ok(())
}
