//! Format detection by content (magic bytes), never by file name.
//!
//! The extension is only a hint: [`Format::from_extension`] maps it so that a disagreement can
//! be reported as a warning, but it never decides the format.

use serde::Serialize;

/// What the content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A still (or animated) image format.
    Image,
    /// A video container.
    Video,
    /// Neither, or not recognised.
    Unknown,
}

/// A container or image format, recognised from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// JPEG (JFIF/EXIF), any SOF type.
    Jpeg,
    /// PNG (and APNG).
    Png,
    /// Windows bitmap.
    Bmp,
    /// WebP (VP8, VP8L, VP8X).
    Webp,
    /// GIF87a/89a.
    Gif,
    /// TIFF (little or big endian).
    Tiff,
    /// HEIF/HEIC still image.
    Heif,
    /// AVIF still or sequence.
    Avif,
    /// JPEG XL (codestream or container).
    Jxl,
    /// JPEG 2000.
    Jp2,
    /// Motion JPEG 2000 (ISO/IEC 15444-3): a video container.
    Mj2,
    /// ISO base media / MPEG-4 Part 14.
    Mp4,
    /// QuickTime movie.
    Mov,
    /// 3GPP/3GPP2 (ISO base media with a 3g brand).
    ThreeGp,
    /// RIFF AVI.
    Avi,
    /// Matroska.
    Mkv,
    /// WebM (Matroska profile).
    Webm,
    /// Flash video.
    Flv,
    /// MPEG transport stream (188- or 192-byte packets).
    MpegTs,
    /// MPEG program stream.
    MpegPs,
    /// Windows Media / ASF.
    Asf,
    /// Anything else.
    Unknown,
}

impl Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl Format {
    /// Lower-case name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Bmp => "bmp",
            Format::Webp => "webp",
            Format::Gif => "gif",
            Format::Tiff => "tiff",
            Format::Heif => "heif",
            Format::Avif => "avif",
            Format::Jxl => "jxl",
            Format::Jp2 => "jp2",
            Format::Mj2 => "mj2",
            Format::Mp4 => "mp4",
            Format::Mov => "mov",
            Format::ThreeGp => "3gp",
            Format::Avi => "avi",
            Format::Mkv => "mkv",
            Format::Webm => "webm",
            Format::Flv => "flv",
            Format::MpegTs => "mpegts",
            Format::MpegPs => "mpeg-ps",
            Format::Asf => "asf",
            Format::Unknown => "unknown",
        }
    }

    /// Image, video or unknown.
    pub fn kind(self) -> Kind {
        use Format::*;
        match self {
            Jpeg | Png | Bmp | Webp | Gif | Tiff | Heif | Avif | Jxl | Jp2 => Kind::Image,
            Mp4 | Mov | ThreeGp | Mj2 | Avi | Mkv | Webm | Flv | MpegTs | MpegPs | Asf => Kind::Video,
            Unknown => Kind::Unknown,
        }
    }

    /// The format a file extension (without the dot, any case) usually stands for.
    pub fn from_extension(ext: &str) -> Option<Format> {
        let ext = ext.to_ascii_lowercase();
        Some(match ext.as_str() {
            "jpg" | "jpeg" | "jpe" | "jfif" => Format::Jpeg,
            "png" | "apng" => Format::Png,
            "bmp" | "dib" => Format::Bmp,
            "webp" => Format::Webp,
            "gif" => Format::Gif,
            "tif" | "tiff" => Format::Tiff,
            "heic" | "heif" => Format::Heif,
            "avif" => Format::Avif,
            "jxl" => Format::Jxl,
            "jp2" | "j2k" => Format::Jp2,
            "mj2" | "mjp2" => Format::Mj2,
            "mp4" | "m4v" => Format::Mp4,
            "mov" | "qt" => Format::Mov,
            "3gp" | "3g2" => Format::ThreeGp,
            "avi" => Format::Avi,
            "mkv" => Format::Mkv,
            "webm" => Format::Webm,
            "flv" => Format::Flv,
            "ts" | "mts" | "m2ts" => Format::MpegTs,
            "mpg" | "mpeg" | "vob" => Format::MpegPs,
            "wmv" | "asf" => Format::Asf,
            _ => return None,
        })
    }

    /// Whether an extension names the same container as this content. MP4, MOV and 3GP share
    /// one box structure, so `.mp4` on QuickTime content is still a mismatch worth a warning,
    /// but `.m4v` on MP4 content is not.
    pub fn matches_extension(self, ext: &str) -> Option<bool> {
        Format::from_extension(ext).map(|f| f == self)
    }
}

/// ISO-BMFF box types that may open a QuickTime file that has no `ftyp`.
const QT_FIRST_BOXES: [&[u8; 4]; 6] = [b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"];

/// Recognises the format from the first bytes of a file (`head`, up to 64 KiB).
pub fn sniff(head: &[u8]) -> Format {
    let at = |off: usize, sig: &[u8]| head.len() >= off + sig.len() && &head[off..off + sig.len()] == sig;

    if at(0, &[0xFF, 0xD8, 0xFF]) {
        return Format::Jpeg;
    }
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return Format::Png;
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return Format::Gif;
    }
    if at(0, b"RIFF") && head.len() >= 12 {
        match &head[8..12] {
            b"WEBP" => return Format::Webp,
            b"AVI " => return Format::Avi,
            _ => return Format::Unknown,
        }
    }
    if at(0, b"BM") && head.len() >= 18 {
        // The DIB header size tells a bitmap from text that happens to start with "BM".
        let dib = u32::from_le_bytes([head[14], head[15], head[16], head[17]]);
        if matches!(dib, 12 | 16 | 40 | 52 | 56 | 64 | 108 | 124) {
            return Format::Bmp;
        }
    }
    if at(0, b"II*\0") || at(0, b"MM\0*") {
        return Format::Tiff;
    }
    if at(0, &[0xFF, 0x0A]) || at(0, b"\0\0\0\x0cJXL \r\n\x87\n") {
        return Format::Jxl;
    }
    if at(0, b"\0\0\0\x0cjP  \r\n\x87\n") {
        // The file-type box after the signature says still image (jp2) or Motion JPEG 2000.
        let motion = at(16, b"ftyp") && head.get(20..24).is_some_and(|b| b == b"mjp2" || b == b"mj2s");
        return if motion { Format::Mj2 } else { Format::Jp2 };
    }
    if at(0, &[0xFF, 0x4F, 0xFF, 0x51]) {
        return Format::Jp2;
    }
    if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        // EBML: the DocType element (0x4282) says "webm" or "matroska".
        let window = &head[..head.len().min(64)];
        return if window.windows(4).any(|w| w == b"webm") { Format::Webm } else { Format::Mkv };
    }
    if at(0, b"FLV\x01") {
        return Format::Flv;
    }
    if at(0, &[0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11]) {
        return Format::Asf;
    }
    if at(0, &[0, 0, 1, 0xBA]) {
        return Format::MpegPs;
    }
    if is_mpegts(head, 188, 0) || is_mpegts(head, 192, 4) {
        return Format::MpegTs;
    }
    if at(4, b"ftyp") {
        return sniff_ftyp(head);
    }
    // A media segment (CMAF/DASH): `styp` (with brands like ftyp's), or a bare `sidx`/`moof`.
    // Players read it as MP4; without its initialisation segment it has no movie header, which
    // the ISO-BMFF parser reports.
    if at(4, b"styp") {
        let f = sniff_ftyp(head);
        return if f.kind() == Kind::Video { f } else { Format::Mp4 };
    }
    if head.len() >= 8 && (at(4, b"sidx") || at(4, b"moof")) {
        let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if size >= 8 {
            return Format::Mp4;
        }
    }
    if head.len() >= 8 && QT_FIRST_BOXES.iter().any(|t| &head[4..8] == *t) {
        let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if size == 0 || size == 1 || size >= 8 {
            return Format::Mov;
        }
    }
    Format::Unknown
}

/// Sync bytes at the start of three consecutive packets.
fn is_mpegts(head: &[u8], packet: usize, offset: usize) -> bool {
    let needed = offset + 2 * packet + 1;
    head.len() >= needed && (0..3).all(|i| head[offset + i * packet] == 0x47)
}

/// Tells MP4, MOV, 3GP, HEIF and AVIF apart by the `ftyp` brands.
fn sniff_ftyp(head: &[u8]) -> Format {
    let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let end = size.clamp(8, head.len());
    let Some(major) = head.get(8..12) else { return Format::Mp4 };
    let compatible: Vec<&[u8]> = head.get(16..end).unwrap_or(&[]).chunks_exact(4).collect();
    let has = |b: &[u8]| major == b || compatible.contains(&b);
    if has(b"avif") || has(b"avis") {
        return Format::Avif;
    }
    if [&b"heic"[..], b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"].contains(&major) {
        return Format::Heif;
    }
    if major == b"qt  " {
        return Format::Mov;
    }
    if major.starts_with(b"3g") {
        return Format::ThreeGp;
    }
    Format::Mp4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_webp_from_avi_by_the_riff_form_type() {
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Format::Webp);
        assert_eq!(sniff(b"RIFF\x10\0\0\0AVI LIST"), Format::Avi);
        assert_eq!(sniff(b"RIFF\x10\0\0\0WAVEfmt "), Format::Unknown);
    }

    #[test]
    fn reads_ftyp_brands() {
        assert_eq!(sniff(b"\0\0\0\x14ftypqt  \0\0\0\0qt  "), Format::Mov);
        assert_eq!(sniff(b"\0\0\0\x18ftypisom\0\0\0\0isomavc1"), Format::Mp4);
        assert_eq!(sniff(b"\0\0\0\x18ftypmif1\0\0\0\0mif1avif"), Format::Avif);
        assert_eq!(sniff(b"\0\0\0\x14ftypheic\0\0\0\0mif1"), Format::Heif);
        assert_eq!(sniff(b"\0\0\0\x14ftyp3gp5\0\0\0\0isom"), Format::ThreeGp);
    }

    #[test]
    fn a_media_segment_starting_with_styp_is_mp4() {
        assert_eq!(sniff(b"\0\0\0\x18stypmsdh\0\0\0\0msdhmsix"), Format::Mp4);
        assert_eq!(sniff(b"\0\0\0\x2csidx\0\0\0\0"), Format::Mp4);
    }

    #[test]
    fn motion_jpeg_2000_is_a_video_container_not_an_image() {
        let mj2 = b"\0\0\0\x0cjP  \r\n\x87\n\0\0\0\x14ftypmjp2\0\0\0\0mjp2";
        assert_eq!(sniff(mj2), Format::Mj2);
        assert_eq!(Format::Mj2.kind(), Kind::Video);
        let jp2 = b"\0\0\0\x0cjP  \r\n\x87\n\0\0\0\x14ftypjp2 \0\0\0\0jp2 ";
        assert_eq!(sniff(jp2), Format::Jp2);
    }

    #[test]
    fn recognises_quicktime_without_ftyp() {
        assert_eq!(sniff(b"\0\0\0\x08wide\0\0\x10\0mdat"), Format::Mov);
        assert_eq!(sniff(b"\0\0\x01\0moov\0\0\0\x6cmvhd"), Format::Mov);
    }

    #[test]
    fn a_bm_text_file_is_not_a_bitmap() {
        assert_eq!(sniff(b"BM is a text file, not a bitmap"), Format::Unknown);
    }

    #[test]
    fn short_inputs_are_unknown() {
        assert_eq!(sniff(b""), Format::Unknown);
        assert_eq!(sniff(b"\xFF\xD8"), Format::Unknown);
        assert_eq!(sniff(b"RIFF"), Format::Unknown);
    }
}
