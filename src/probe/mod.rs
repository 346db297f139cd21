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
mod h264;
mod isobmff;
mod jpeg;
mod png;
mod reader;
mod sniff;
mod source;
mod webp;

use std::io;
use std::path::Path;

pub use facts::MediaFacts;
pub use sniff::{sniff, Format, Kind};
pub use source::{ByteSource, FileSource, MemorySource};

use reader::{ParseError, Reader};

/// How to probe.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ProbeOptions {
    /// Also decode: the whole image (under memory limits), the first and last video frames.
    pub deep: bool,
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
    let mut facts = probe_source(&mut src)?;
    facts.extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
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

/// Probes any [`ByteSource`]. Fails only when the source cannot be read.
pub fn probe_source(src: &mut dyn ByteSource) -> io::Result<MediaFacts> {
    let mut r = Reader::new(src)?;
    let format = sniff(r.head());
    let mut facts = MediaFacts::new(format, r.len());
    let result = match format {
        Format::Jpeg => jpeg::probe(&mut r, &mut facts),
        Format::Png => png::probe(&mut r, &mut facts),
        Format::Bmp => bmp::probe(&mut r, &mut facts),
        Format::Webp => webp::probe(&mut r, &mut facts),
        Format::Mp4 | Format::Mov | Format::ThreeGp => isobmff::probe(&mut r, &mut facts),
        Format::Avi => avi::probe(&mut r, &mut facts),
        Format::Gif => {
            read_gif_size(r.head(), &mut facts);
            Ok(())
        }
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

/// GIF logical screen size (GIF89a § 18).
fn read_gif_size(head: &[u8], facts: &mut MediaFacts) {
    if let Some(s) = head.get(6..10) {
        let w = u16::from_le_bytes([s[0], s[1]]);
        let h = u16::from_le_bytes([s[2], s[3]]);
        if w > 0 && h > 0 {
            facts.set_image_size(u32::from(w), u32::from(h));
        }
    }
}
