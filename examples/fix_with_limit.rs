//! Fixes one file under a stricter limit than the API's — here, images at most 1024 px on the
//! long side — and prints what changed. The input is only ever read.
//!
//! ```sh
//! cargo run --example fix_with_limit -- fixtures/image/dims_4096x1500.png /tmp/small.png
//! ```

use std::path::Path;

use wanprep::fix::{self, FixSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (input, output) = match (args.next(), args.next()) {
        (Some(i), Some(o)) => (i, o),
        _ => return Err("usage: fix_with_limit INPUT OUTPUT".into()),
    };
    let mut spec = FixSpec::default();
    // Any limit by its `wanprep rules` name; validated with the others.
    spec.limits.set("image.max_side", 1024.0)?;
    spec.limits.validate()?;
    // Probe and plan once, then carry the plan out (atomically, verified against the input).
    let planned = fix::prepare(Path::new(&input), Path::new(&output), None, &spec)?;
    if let Some(why) = &planned.plan.unfixable {
        return Err(format!("{input} cannot be fixed: {why}").into());
    }
    let done = fix::execute(&planned, Path::new(&output), false, Default::default())?;
    for change in &done.changes {
        println!("{change}");
    }
    let (w, h) = (done.media.display_width.unwrap_or(0), done.media.display_height.unwrap_or(0));
    println!("wrote {output}: {w}x{h}");
    Ok(())
}
