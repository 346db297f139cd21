//! `--deep`: decode, not just parse. Images are decoded with the `image` crate under explicit
//! memory limits; videos have their first and last frames decoded with FFmpeg (feature
//! `ffmpeg`). A decoding failure becomes an integrity problem; a file too large to decode
//! within the limits is left as it is (other rules already reject it).

use std::io;
use std::path::Path;

use super::facts::MediaFacts;
use super::sniff::Kind;

/// Largest side decoded; larger images already fail `image.dimensions`.
const MAX_DECODE_SIDE: u32 = 16_384;
/// Largest allocation the decoder may make.
const MAX_DECODE_ALLOC: u64 = 512 * 1024 * 1024;
/// Largest image file read into memory for decoding.
const MAX_DECODE_FILE: u64 = 256 * 1024 * 1024;

pub(crate) fn decode_file(path: &Path, facts: &mut MediaFacts) -> io::Result<()> {
    match facts.kind {
        Kind::Image if matches!(facts.format.name(), "jpeg" | "png" | "bmp" | "webp") => decode_image(path, facts),
        Kind::Video if matches!(facts.format.name(), "mp4" | "mov" | "avi") => decode_video(path, facts),
        _ => Ok(()),
    }
}

pub(crate) fn decode_bytes(data: &[u8], facts: &mut MediaFacts) -> io::Result<()> {
    match facts.kind {
        Kind::Image if matches!(facts.format.name(), "jpeg" | "png" | "bmp" | "webp") => {
            decode_image_data(data, facts);
            Ok(())
        }
        Kind::Video if matches!(facts.format.name(), "mp4" | "mov" | "avi") => {
            // FFmpeg reads files: spill to a private temporary file (random name, created
            // exclusively, mode 0600, removed on drop), never a predictable path.
            use std::io::Write;
            let mut tmp = tempfile::Builder::new()
                .prefix("wanprep-deep-")
                .suffix(&format!(".{}", facts.format.name()))
                .tempfile()?;
            tmp.write_all(data)?;
            tmp.as_file().sync_data()?;
            decode_video(tmp.path(), facts)
        }
        _ => Ok(()),
    }
}

fn decode_image(path: &Path, facts: &mut MediaFacts) -> io::Result<()> {
    if facts.size_bytes > MAX_DECODE_FILE || facts.decode_memory_estimate().is_none_or(|n| n > MAX_DECODE_ALLOC) {
        return Ok(());
    }
    let data = super::source::read_regular(path, MAX_DECODE_FILE)?;
    decode_image_data(&data, facts);
    Ok(())
}

fn decode_image_data(data: &[u8], facts: &mut MediaFacts) {
    // Decided from the header before the decoder allocates: an image whose decoding would
    // take more than the cap is not decoded (its size already breaks the rules).
    if facts.decode_memory_estimate().is_none_or(|n| n > MAX_DECODE_ALLOC) {
        return;
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DECODE_SIDE);
    limits.max_image_height = Some(MAX_DECODE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    let reader = image::ImageReader::new(io::Cursor::new(data)).with_guessed_format();
    let Ok(mut reader) = reader else { return };
    reader.limits(limits);
    match reader.decode() {
        Ok(_) => facts.deep_checked = true,
        Err(image::ImageError::Limits(_)) => {}
        Err(e) => facts.flag(format!("decoding failed: {e}")),
    }
}

/// Decodes in the FFmpeg helper. Without one installed this is an error, not a verdict:
/// `--deep` never reports a check it did not make.
fn decode_video(path: &Path, facts: &mut MediaFacts) -> io::Result<()> {
    match crate::av::decode_ends(path) {
        Ok(None) => facts.deep_checked = true,
        Ok(Some(e)) => facts.flag(format!("decoding failed: {e}")),
        Err(e) => {
            return Err(io::Error::other(format!(
                "--deep cannot decode the video: {e}; install it with `cargo install --path .` (it installs \
                 both binaries), or check without --deep"
            )))
        }
    }
    Ok(())
}
