//! Human-readable rendering of reports (the JSON rendering is serde's).

use std::io::{self, Write};

use wanprep::rules::{Limits, RuleId, LIMITS};
use wanprep::{CheckReport, Finding, InputReport, MediaFacts, Severity};

pub(crate) struct Style {
    color: bool,
}

impl Style {
    pub(crate) fn new(color: bool) -> Style {
        Style { color }
    }
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub(crate) fn red(&self, s: &str) -> String {
        self.paint("31;1", s)
    }
    pub(crate) fn green(&self, s: &str) -> String {
        self.paint("32;1", s)
    }
    pub(crate) fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub(crate) fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
}

/// Replaces control characters so file names and messages cannot drive the terminal.
/// Text from files, servers or users, made safe for a terminal: control characters (escape
/// sequences, carriage returns) and the invisible bidirectional and zero-width formatting
/// characters (U+202E RIGHT-TO-LEFT OVERRIDE and kin, which make `exe.mp4` read as `4pm.exe`)
/// are shown as `\u{…}` escapes.
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let invisible = matches!(
            c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}' | '\u{FEFF}'
        );
        if c.is_control() || invisible {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

pub fn check_report(out: &mut impl Write, report: &CheckReport, color: bool) -> io::Result<()> {
    let st = Style { color };
    for input in &report.inputs {
        render_input(out, input, &st)?;
    }
    let n = report.inputs.len();
    let ok = report.inputs.iter().filter(|i| i.compliant).count();
    if n > 1 {
        let summary = format!("{ok} of {n} inputs compliant");
        writeln!(out, "{}", if ok == n { st.green(&summary) } else { st.red(&summary) })?;
    }
    Ok(())
}

fn render_input(out: &mut impl Write, input: &InputReport, st: &Style) -> io::Result<()> {
    let name = sanitize(&input.input);
    if let Some(err) = &input.error {
        return writeln!(out, "{} {name}: {}", st.red("ERROR"), sanitize(err));
    }
    let mark = if input.compliant { st.green("OK  ") } else { st.red("FAIL") };
    let role =
        input.role.map(|r| format!(" as {}", serde_json::to_value(r).unwrap_or_default().as_str().unwrap_or("")));
    writeln!(out, "{mark} {name}{}", st.dim(&role.unwrap_or_default()))?;
    if let Some(m) = &input.media {
        writeln!(out, "     {}", st.dim(&summary(m)))?;
    }
    if let Some(r) = &input.remote {
        let mut line = format!(
            "fetched {} in {} request{}",
            human_size(input.bytes_fetched.unwrap_or(0)),
            r.requests,
            if r.requests == 1 { "" } else { "s" }
        );
        if !r.redirects.is_empty() {
            line.push_str(&format!(", redirected to {}", sanitize(&r.final_url)));
        }
        if !r.range_supported && r.status / 100 == 2 {
            line.push_str(", server ignores Range");
            if r.whole_body_read {
                line.push_str(": read the whole body");
            }
        }
        writeln!(out, "     {}", st.dim(&line))?;
    }
    for f in &input.findings {
        render_finding(out, f, st)?;
    }
    Ok(())
}

fn render_finding(out: &mut impl Write, f: &Finding, st: &Style) -> io::Result<()> {
    let (label, rule) = match f.severity {
        Severity::Error => (st.red("error"), st.red(f.rule.as_str())),
        Severity::Warning => (st.yellow("warn "), st.yellow(f.rule.as_str())),
        Severity::Note => (st.dim("note "), st.dim(f.rule.as_str())),
    };
    let fix = if f.fixable { st.dim(" [fixable]") } else { String::new() };
    writeln!(out, "     {label} {rule}: {}{fix}", sanitize(&f.message))
}

/// One line of facts: "mp4 · 1920x1080 → 1080x1920 (rotated 90°) · 31.2 s · 29.97 fps · h264 · 12.3 MB".
fn summary(m: &MediaFacts) -> String {
    let mut parts = vec![m.format.name().to_string()];
    if let (Some(w), Some(h)) = (m.width, m.height) {
        let mut s = format!("{w}x{h}");
        let disp = m.display_width.zip(m.display_height);
        if let Some((dw, dh)) = disp.filter(|&d| d != (w, h)) {
            s.push_str(&format!(" → {dw}x{dh}"));
        }
        if let Some(r) = m.rotation.filter(|&r| r != 0) {
            s.push_str(&format!(" (rotated {r}°)"));
        }
        if let Some([n, d]) = m.sample_aspect_ratio {
            s.push_str(&format!(" (SAR {n}:{d})"));
        }
        if let Some(o) = m.orientation.filter(|&o| o != 1) {
            s.push_str(&format!(" (EXIF orientation {o})"));
        }
        parts.push(s);
    }
    if let Some(d) = m.duration_s {
        parts.push(format!("{d} s"));
    }
    if let Some(fps) = m.frame_rate {
        parts.push(format!("{fps} fps"));
    }
    if let Some(c) = &m.video_codec {
        parts.push(c.clone());
    }
    parts.push(human_size(m.size_bytes));
    parts.join(" · ")
}

fn human_size(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1} MB", n as f64 / 1e6)
    } else {
        format!("{:.1} KB", n as f64 / 1e3)
    }
}

pub fn rules(out: &mut impl Write, limits: &Limits) -> io::Result<()> {
    writeln!(out, "Rules (errors make an input non-compliant; warnings never do):")?;
    for r in RuleId::ALL {
        let sev = r.severity().as_str();
        writeln!(out, "  {:<20} {:<8} {}", r.as_str(), sev, r.requirement(limits))?;
    }
    writeln!(out, "\nLimits (override with --limit NAME=VALUE):")?;
    for l in LIMITS {
        writeln!(out, "  {:<28} {:>12}  {}", l.name, l.get(limits), l.description)?;
    }
    Ok(())
}

pub fn fix_plan(out: &mut impl Write, input: &str, plan: &wanprep::fix::FixPlan) -> io::Result<()> {
    if let Some(why) = &plan.unfixable {
        return writeln!(out, "{}: cannot be fixed: {}", sanitize(input), sanitize(why));
    }
    writeln!(out, "plan for {}:", sanitize(input))?;
    for op in &plan.ops {
        let line = match serde_json::to_value(op) {
            Ok(serde_json::Value::Object(m)) => {
                let name = m.get("op").and_then(|v| v.as_str()).unwrap_or("").to_string();
                let args = m.iter().filter(|(k, _)| *k != "op").map(|(k, v)| format!("{k}={v}"));
                std::iter::once(name).chain(args).collect::<Vec<_>>().join(" ")
            }
            _ => format!("{op:?}"),
        };
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod sanitize_tests {
    use super::sanitize;

    #[test]
    fn terminal_tricks_are_shown_not_obeyed() {
        assert_eq!(sanitize("task-\u{1b}[31mred"), "task-\\u{1b}[31mred");
        assert_eq!(sanitize("abc\u{202e}4pm.exe"), "abc\\u{202e}4pm.exe");
        assert_eq!(sanitize("a\rb\u{2066}c"), "a\\u{d}b\\u{2066}c");
        assert_eq!(sanitize("plain: 任务 ✓"), "plain: 任务 ✓");
    }
}
