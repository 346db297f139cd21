//! Finds faces in a picture with wanprep's built-in detector and times the search (median of 5).
//!
//! `cargo run --release --example find_faces fixtures/people/astronaut.jpg`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: find_faces PICTURE")?;
    let picture = image::open(&path)?.to_luma8();
    let cascade = wanprep::quality::face::Cascade::frontal_face();
    let mut times = Vec::new();
    let mut faces = Vec::new();
    for _ in 0..5 {
        let t = std::time::Instant::now();
        faces = cascade.detect(&picture);
        times.push(t.elapsed());
    }
    times.sort();
    for f in &faces {
        println!("face at {:.0},{:.0} size {:.0}x{:.0} ({} hits)", f.x, f.y, f.w, f.h, f.hits);
    }
    println!(
        "{} face(s) in {}x{}: {:.1} ms (median of 5)",
        faces.len(),
        picture.width(),
        picture.height(),
        times[2].as_secs_f64() * 1e3
    );
    Ok(())
}
