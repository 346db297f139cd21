//! JPEG (ITU T.81 Annex B): frame header (SOFn) for size and coding, APP1 for EXIF, and a walk
//! of every segment and all entropy-coded data up to the EOI marker for integrity.

use super::exif;
use super::facts::MediaFacts;
use super::reader::{malformed, PResult, Reader, SeqReader};
use super::Integrity;

/// EXIF payloads larger than this are not read (the orientation tag is near the start anyway).
const MAX_EXIF: usize = 64 * 1024;

/// Short of [`Integrity::Full`], stops at the first scan and (with `HeadAndTail`) checks that
/// the tail holds the EOI marker instead of walking the entropy-coded data (remote inputs).
pub(crate) fn probe(r: &mut Reader, facts: &mut MediaFacts, integrity: Integrity) -> PResult<()> {
    let mut seq = r.seq(2);
    let mut seen_sof = false;
    let mut seen_sos = false;
    loop {
        // As libjpeg's next_marker(): extraneous bytes before a marker are skipped (with a
        // warning there), any number of 0xFF fill bytes may precede it (B.1.1.2), and an
        // 0xFF 0x00 pair between segments is a stray stuffed zero that is discarded.
        let at = seq.pos();
        let b = seq.byte("a marker")?;
        if b != 0xFF {
            skip_to_marker(&mut seq)?;
            continue;
        }
        let mut marker = seq.byte("a marker")?;
        while marker == 0xFF {
            marker = seq.byte("a marker")?;
        }
        if marker == 0x00 {
            continue;
        }
        match marker {
            0xD9 => {
                if !seen_sof {
                    return malformed("the JPEG ends (EOI) before any frame header (SOF)");
                }
                if !seen_sos {
                    return malformed("the JPEG ends (EOI) before any image data (SOS)");
                }
                return Ok(());
            }
            0xD0..=0xD7 | 0x01 => continue,
            0xD8 => return malformed(format!("a second start-of-image marker (0xFFD8) at offset {at}")),
            _ => {}
        }
        let mut len = [0; 2];
        seq.read_exact(&mut len, "a segment length")?;
        let len = u16::from_be_bytes(len);
        if len < 2 {
            return malformed(format!("JPEG segment 0xFF{marker:02x} at offset {at} has length {len}"));
        }
        let payload = u64::from(len - 2);
        match marker {
            // SOFn: every C0–CF except DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if len < 8 {
                    return malformed(format!("JPEG frame header at offset {at} is too short"));
                }
                let mut sof = [0; 6];
                seq.read_exact(&mut sof, "the frame header")?;
                seq.skip(payload - 6, "the frame header")?;
                if !seen_sof {
                    read_sof(marker, &sof, facts)?;
                    seen_sof = true;
                }
            }
            0xE1 if !seen_sof || facts.orientation.is_none() => {
                let n = (payload as usize).min(MAX_EXIF);
                let mut app1 = vec![0; n];
                seq.read_exact(&mut app1, "an APP1 segment")?;
                seq.skip(payload - n as u64, "an APP1 segment")?;
                if let Some(tiff) = app1.strip_prefix(b"Exif\0\0") {
                    facts.orientation = facts.orientation.or(exif::read_tiff(tiff).orientation);
                }
            }
            0xDA => {
                if !seen_sof {
                    return malformed("JPEG scan (SOS) before any frame header (SOF)");
                }
                seq.skip(payload, "the scan header")?;
                seen_sos = true;
                match integrity {
                    Integrity::Full => {}
                    Integrity::HeadAndTail => {
                        drop(seq);
                        return r.check_tail(&[0xFF, 0xD9], 2048, "the JPEG has no EOI marker at its end (truncated?)");
                    }
                    Integrity::HeadOnly => return Ok(()),
                }
                skip_entropy_coded_data(&mut seq)?;
            }
            _ => seq.skip(payload, "a JPEG segment")?,
        }
    }
}

/// Skips to the next 0xFF (the start of a marker), or reports that the file ends first.
fn skip_to_marker(seq: &mut SeqReader) -> PResult<()> {
    loop {
        let buf = seq.peek()?;
        if buf.is_empty() {
            return malformed("truncated: the JPEG ends before its EOI marker");
        }
        match memchr::memchr(0xFF, buf) {
            Some(i) => {
                seq.consume(i);
                return Ok(());
            }
            None => {
                let n = buf.len();
                seq.consume(n);
            }
        }
    }
}

/// Reads SOFn: precision, height, width, component count.
fn read_sof(marker: u8, sof: &[u8; 6], facts: &mut MediaFacts) -> PResult<()> {
    let precision = sof[0];
    let height = u16::from_be_bytes([sof[1], sof[2]]);
    let width = u16::from_be_bytes([sof[3], sof[4]]);
    let components = sof[5];
    if width == 0 {
        return malformed("JPEG frame header declares width 0");
    }
    if height == 0 {
        // Legal with a DNL marker, but nothing downstream accepts it.
        return malformed("JPEG frame header declares height 0 (DNL-defined height is not supported)");
    }
    facts.bit_depth = Some(precision);
    facts.alpha = Some(false);
    facts.coding = Some(
        match marker & 0x0F {
            0x0 | 0x1 | 0x9 => "baseline",
            0x2 | 0x6 | 0xA | 0xE => "progressive",
            0x3 | 0x7 | 0xB | 0xF => "lossless",
            _ => "hierarchical",
        }
        .to_string(),
    );
    facts.color_type = Some(
        match components {
            1 => "gray",
            3 => "ycbcr",
            4 => "cmyk",
            _ => "other",
        }
        .to_string(),
    );
    facts.set_image_size(u32::from(width), u32::from(height));
    Ok(())
}

/// Skips entropy-coded data up to the next marker that is not a stuffed zero or a restart
/// marker, and leaves the reader on that marker's 0xFF.
fn skip_entropy_coded_data(seq: &mut SeqReader) -> PResult<()> {
    loop {
        let buf = seq.peek_min(2)?;
        let n = buf.len();
        match memchr::memchr(0xFF, buf) {
            _ if n < 2 => return malformed("truncated: the JPEG's entropy-coded data ends before the EOI marker"),
            None => seq.consume(n),
            // The 0xFF is the last buffered byte: refill so its successor is visible.
            Some(i) if i + 1 == n => seq.consume(i),
            Some(i) => match buf[i + 1] {
                // A stuffed zero or a restart marker belongs to the scan.
                0x00 | 0xD0..=0xD7 => seq.consume(i + 2),
                // Fill byte: the next 0xFF may start the marker.
                0xFF => seq.consume(i + 1),
                _ => {
                    seq.consume(i);
                    return Ok(());
                }
            },
        }
    }
}
