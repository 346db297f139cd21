// Shared by the targets: probe, then use every fact and run both rule sets, so a panic or
// overflow anywhere downstream of the parser shows up too.
use wanprep::{check, probe_bytes, Limits, Role};

pub fn exercise(data: &[u8]) {
    let facts = probe_bytes(data);
    let limits = Limits::default();
    for role in [Role::Image, Role::Video] {
        for f in check(&facts, role, &limits) {
            assert!(!f.rule.as_str().is_empty() && !f.message.is_empty());
        }
    }
    let _ = serde_json_len(&facts);
    assert!(facts.size_bytes == data.len() as u64);
}

fn serde_json_len(facts: &wanprep::MediaFacts) -> usize {
    format!("{facts:?}").len()
}
