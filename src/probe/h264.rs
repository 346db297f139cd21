//! H.264 sequence parameter set (ITU-T H.264 § 7.3.2.1.1, Annex E): the sample aspect ratio in
//! the VUI, for MP4/MOV files that carry it only in the bitstream (no `pasp` box). FFmpeg and
//! players honour it, so the displayed size depends on it.

/// The SAR from an `avcC` box body (ISO/IEC 14496-15 § 5.3.3.1), if its first SPS has one.
pub(crate) fn sar_from_avcc(avcc: &[u8]) -> Option<(u32, u32)> {
    let sps_count = usize::from(*avcc.get(5)? & 0x1F);
    if sps_count == 0 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*avcc.get(6)?, *avcc.get(7)?]));
    let nal = avcc.get(8..8 + len)?;
    sar_from_sps(nal)
}

/// The SAR of an SPS NAL unit (with its one-byte header). `None` when absent, 1:1 or unreadable.
pub(crate) fn sar_from_sps(nal: &[u8]) -> Option<(u32, u32)> {
    if nal.first()? & 0x1F != 7 {
        return None;
    }
    let rbsp = unescape(&nal[1..nal.len().min(1 + 1024)]);
    let mut r = Bits { data: &rbsp, pos: 0 };
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    if matches!(profile, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135) {
        let chroma = r.ue()?;
        if chroma == 3 {
            r.bits(1)?;
        }
        r.ue()?;
        r.ue()?;
        r.bits(1)?;
        if r.bits(1)? == 1 {
            for i in 0..if chroma == 3 { 12 } else { 8 } {
                if r.bits(1)? == 1 {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bits(1)?;
            r.se()?;
            r.se()?;
            let n = r.ue()?;
            if n > 255 {
                return None;
            }
            for _ in 0..n {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bits(1)?;
    r.ue()?; // width in MBs
    r.ue()?; // height in map units
    if r.bits(1)? == 0 {
        r.bits(1)?;
    }
    r.bits(1)?;
    if r.bits(1)? == 1 {
        for _ in 0..4 {
            r.ue()?;
        }
    }
    if r.bits(1)? == 0 || r.bits(1)? == 0 {
        return None; // no VUI, or no aspect ratio info
    }
    let (w, h) = match r.bits(8)? {
        255 => (r.bits(16)?, r.bits(16)?),
        idc => *SAR_TABLE.get(usize::try_from(idc).ok()?.checked_sub(1)?)?,
    };
    (w > 0 && h > 0 && w != h).then_some((w, h))
}

/// Table E-1, aspect_ratio_idc 1..=16.
const SAR_TABLE: [(u32, u32); 16] = [
    (1, 1),
    (12, 11),
    (10, 11),
    (16, 11),
    (40, 33),
    (24, 11),
    (20, 11),
    (32, 11),
    (80, 33),
    (18, 11),
    (15, 11),
    (64, 33),
    (160, 99),
    (4, 3),
    (3, 2),
    (2, 1),
];

fn skip_scaling_list(r: &mut Bits, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// Removes emulation-prevention bytes (00 00 03 → 00 00).
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Some(v)
    }

    /// Unsigned Exp-Golomb (§ 9.1); at most 31 leading zeros.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bits(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }

    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_codes() {
        // 1 → 0, 010 → 1, 011 → 2, 00100 → 3
        let data = [0b1010_0110, 0b0100_0000];
        let mut r = Bits { data: &data, pos: 0 };
        assert_eq!([r.ue(), r.ue(), r.ue(), r.ue()], [Some(0), Some(1), Some(2), Some(3)]);
    }

    #[test]
    fn unreadable_sps_gives_none() {
        assert_eq!(sar_from_sps(&[0x67]), None);
        assert_eq!(sar_from_sps(&[0x67, 0xFF, 0xFF]), None);
        assert_eq!(sar_from_avcc(&[1, 100, 0, 40, 0xFF, 0xE1, 0xFF, 0xFF]), None);
    }

    #[test]
    fn emulation_prevention_is_removed() {
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3]), [0, 0, 1, 0, 0]);
    }
}
