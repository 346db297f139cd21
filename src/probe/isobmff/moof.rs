//! Movie fragments: each `traf`'s `tfhd` defaults and `trun` sample counts and durations.

use super::boxes::{for_each_box, full_box};
use super::Movie;
use crate::probe::reader::{malformed, PResult};

pub(super) fn parse_moof(data: &[u8], movie: &mut Movie) -> PResult<()> {
    for_each_box(data, |typ, body| {
        if typ != b"traf" {
            return Ok(());
        }
        let mut track_id = 0;
        let mut default_duration = None;
        let mut ticks = 0u64;
        let mut samples = 0u64;
        for_each_box(body, |typ, body| {
            match typ {
                b"tfhd" => {
                    let (_, flags, mut b) = full_box(body, "the tfhd box")?;
                    track_id = b.u32be()?;
                    if flags & 0x01 != 0 {
                        b.skip(8)?;
                    }
                    if flags & 0x02 != 0 {
                        b.skip(4)?;
                    }
                    if flags & 0x08 != 0 {
                        default_duration = Some(b.u32be()?);
                    }
                }
                b"trun" => {
                    let (_, flags, mut b) = full_box(body, "the trun box")?;
                    let count = b.u32be()?;
                    if flags & 0x01 != 0 {
                        b.skip(4)?;
                    }
                    if flags & 0x04 != 0 {
                        b.skip(4)?;
                    }
                    let per_sample = [0x100, 0x200, 0x400, 0x800].iter().filter(|&&f| flags & f != 0).count() * 4;
                    if per_sample > 0 && (count as usize).saturating_mul(per_sample) > b.remaining() {
                        return malformed("a trun box lists more samples than it holds");
                    }
                    samples += u64::from(count);
                    if flags & 0x100 != 0 {
                        for _ in 0..count {
                            ticks += u64::from(b.u32be()?);
                            b.skip(per_sample - 4)?;
                        }
                    } else {
                        let trex = movie.trex_default_duration.iter().find(|(id, _)| *id == track_id).map(|x| x.1);
                        let d = default_duration.or(trex).unwrap_or(0);
                        ticks += u64::from(count) * u64::from(d);
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
        if let Some(t) = movie.tracks.iter_mut().find(|t| t.id == track_id) {
            t.fragment_ticks = t.fragment_ticks.saturating_add(ticks);
            t.fragment_samples = t.fragment_samples.saturating_add(samples);
        }
        Ok(())
    })
}
