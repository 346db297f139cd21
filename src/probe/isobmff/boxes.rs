//! Box headers (ISO/IEC 14496-12 § 4.2) and walking the children of a box in memory: the one
//! place a header is decoded, for the top-level walk and for every box inside `moov`/`moof`.

use super::super::reader::{fourcc_str, malformed, Bytes, PResult};

/// A box header (§ 4.2): type, header length and total size. `size: None` means "to the end"
/// (a size of 0).
pub(super) struct Header {
    pub typ: [u8; 4],
    pub header_len: u64,
    pub size: Option<u64>,
}

/// Decodes the box header at the start of `h` (8 or 16 bytes; fewer when the data ends).
pub(super) fn read_header(h: &[u8], at: u64) -> PResult<Header> {
    let Some(size32) = h.get(0..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])) else {
        return malformed(format!("truncated: a box header at offset {at}"));
    };
    let typ: [u8; 4] = h.get(4..8).and_then(|b| b.try_into().ok()).ok_or_else(|| {
        super::super::reader::ParseError::Malformed(format!("truncated: a box header at offset {at}"))
    })?;
    let (header_len, size) = match size32 {
        0 => (8, None),
        1 => match h.get(8..16) {
            Some(large) => (16, Some(u64::from_be_bytes(large.try_into().expect("8 bytes")))),
            None => {
                return malformed(format!("truncated: box '{}' at offset {at} has no 64-bit size", fourcc_str(&typ)))
            }
        },
        s => (8, Some(u64::from(s))),
    };
    if size.is_some_and(|s| s < header_len) {
        return malformed(format!(
            "box '{}' at offset {at} declares size {}, smaller than its header",
            fourcc_str(&typ),
            size.unwrap_or(0)
        ));
    }
    Ok(Header { typ, header_len, size })
}

/// Calls `f(type, body)` for each child box in `data`. A child of size 0 runs to the end of
/// its parent, as FFmpeg's demuxer reads it (ISO/IEC 14496-12 allows it only at the top level,
/// but refusing what players accept would cry wolf); a child that overruns its parent is damage.
pub(super) fn for_each_box<'a>(data: &'a [u8], mut f: impl FnMut(&[u8; 4], &'a [u8]) -> PResult<()>) -> PResult<()> {
    let mut pos = 0usize;
    while data.len() - pos >= 8 {
        let h = read_header(&data[pos..], pos as u64)?;
        let left = (data.len() - pos) as u64;
        let size = h.size.unwrap_or(left);
        if size > left {
            return malformed(format!(
                "box '{}' declares size {size}, which does not fit in its parent ({left} bytes left)",
                fourcc_str(&h.typ)
            ));
        }
        let (start, end) = (pos + h.header_len as usize, pos + size as usize);
        f(&h.typ, &data[start..end])?;
        pos = end;
    }
    Ok(())
}

/// Version and flags of a full box, and the rest.
pub(super) fn full_box<'a>(body: &'a [u8], what: &'static str) -> PResult<(u8, u32, Bytes<'a>)> {
    let mut b = Bytes::new(body, what);
    let vf = b.u32be()?;
    Ok(((vf >> 24) as u8, vf & 0x00FF_FFFF, b))
}
