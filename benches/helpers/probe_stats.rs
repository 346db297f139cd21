//! Probes each file and prints, as JSON lines, the bytes actually read and the main facts.
//! Used by scripts/bench-probe to show that header-only probing stays header-only.

use wanprep::probe::FileSource;
use wanprep::ByteSource;

fn main() {
    for arg in std::env::args().skip(1) {
        let mut src = match FileSource::open(arg.as_ref()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{arg}: {e}");
                std::process::exit(2);
            }
        };
        let facts = wanprep::probe_source(&mut src).expect("readable");
        println!(
            "{}",
            serde_json::json!({
                "input": arg, "size_bytes": src.len(), "bytes_read": src.bytes_read(),
                "format": facts.format.name(), "intact": facts.is_intact(),
            })
        );
    }
}
