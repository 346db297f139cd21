//! EXIF (TIFF structure, CIPA DC-008 / TIFF 6.0 §2): the orientation tag and, for TIFF files,
//! the image size, read from IFD0 only.

use super::reader::{Bytes, PResult};

/// What IFD0 says.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TiffInfo {
    pub(crate) orientation: Option<u8>,
    pub(crate) width: Option<u32>,
    pub(crate) height: Option<u32>,
}

/// At most this many IFD0 entries are read; real files have a few dozen.
const MAX_ENTRIES: u16 = 1024;

/// Parses a TIFF header and IFD0. `data` starts at the `II*\0` / `MM\0*` header.
/// Malformed EXIF yields `None` facts rather than an error: it does not make the image unusable.
pub(crate) fn read_tiff(data: &[u8]) -> TiffInfo {
    parse(data).unwrap_or_default()
}

fn parse(data: &[u8]) -> PResult<TiffInfo> {
    let mut info = TiffInfo::default();
    let mut b = Bytes::new(data, "EXIF");
    let order = b.take(4)?;
    let le = match order {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return Ok(info),
    };
    let u16_at = |s: &[u8]| if le { u16::from_le_bytes([s[0], s[1]]) } else { u16::from_be_bytes([s[0], s[1]]) };
    let u32_at = |s: &[u8]| {
        if le {
            u32::from_le_bytes([s[0], s[1], s[2], s[3]])
        } else {
            u32::from_be_bytes([s[0], s[1], s[2], s[3]])
        }
    };
    let ifd0 = u32_at(b.take(4)?) as usize;
    let Some(count_bytes) = data.get(ifd0..ifd0.saturating_add(2)) else { return Ok(info) };
    let count = u16_at(count_bytes).min(MAX_ENTRIES) as usize;
    let entries_start = ifd0 + 2;
    for i in 0..count {
        let start = entries_start + i * 12;
        let Some(e) = data.get(start..start + 12) else { break };
        let tag = u16_at(&e[0..2]);
        let typ = u16_at(&e[2..4]);
        let value = match typ {
            3 => u32::from(u16_at(&e[8..10])),
            4 => u32_at(&e[8..12]),
            _ => continue,
        };
        match tag {
            0x0112 if (1..=8).contains(&value) => info.orientation = Some(value as u8),
            0x0100 => info.width = Some(value),
            0x0101 => info.height = Some(value),
            _ => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiff(le: bool, entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut v = Vec::new();
        let p16 = |v: &mut Vec<u8>, x: u16| v.extend(if le { x.to_le_bytes() } else { x.to_be_bytes() });
        let p32 = |v: &mut Vec<u8>, x: u32| v.extend(if le { x.to_le_bytes() } else { x.to_be_bytes() });
        v.extend(if le { b"II*\0" } else { b"MM\0*" });
        p32(&mut v, 8);
        p16(&mut v, entries.len() as u16);
        for &(tag, typ, val) in entries {
            p16(&mut v, tag);
            p16(&mut v, typ);
            p32(&mut v, 1);
            if typ == 3 {
                p16(&mut v, val as u16);
                p16(&mut v, 0);
            } else {
                p32(&mut v, val);
            }
        }
        p32(&mut v, 0);
        v
    }

    #[test]
    fn reads_orientation_in_both_byte_orders() {
        assert_eq!(read_tiff(&tiff(true, &[(0x0112, 3, 6)])).orientation, Some(6));
        assert_eq!(read_tiff(&tiff(false, &[(0x0112, 3, 8)])).orientation, Some(8));
    }

    #[test]
    fn ignores_out_of_range_orientation_and_bad_offsets() {
        assert_eq!(read_tiff(&tiff(true, &[(0x0112, 3, 9)])).orientation, None);
        let mut t = tiff(true, &[(0x0112, 3, 6)]);
        t[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(read_tiff(&t), TiffInfo::default());
        assert_eq!(read_tiff(b"II*"), TiffInfo::default());
    }

    #[test]
    fn reads_tiff_size_tags() {
        let i = read_tiff(&tiff(false, &[(0x0100, 4, 5000), (0x0101, 3, 300)]));
        assert_eq!((i.width, i.height), (Some(5000), Some(300)));
    }
}
