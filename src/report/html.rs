//! `batch --html REPORT.html`: one self-contained page (no network: pictures are `data:` URIs,
//! style and script inline, and a content security policy that forbids anything else) with a
//! thumbnail of each input and its output side by side (a video shows a frame), the findings,
//! the changes, sizes, totals and filters by status.

use std::fmt::Write as _;
use std::io::Cursor;
use std::path::Path;

use base64::Engine;

use crate::batch::{BatchReport, ItemReport, ItemStatus};
use crate::probe::Kind;
use crate::quality::framing::turned;

/// Longest side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 160;

/// Text safe inside HTML elements and quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A small JPEG of a picture or of a video's first keyframe, as a `data:` URI; `None` when it
/// cannot be read (not media, damaged, no helper for a video).
pub fn thumbnail(path: &Path) -> Option<String> {
    let facts = crate::probe::probe_path(path, &crate::ProbeOptions::default()).ok()?;
    let rgb = match facts.kind {
        Kind::Image if crate::quality::supports_image(facts.format) => {
            let img =
                crate::fix::decode_for_quality(path, &facts, crate::fix::DEFAULT_MAX_DECODE_BYTES, THUMB_SIDE).ok()?;
            turned(img, 0, facts.orientation).thumbnail(THUMB_SIDE, THUMB_SIDE).to_rgb8()
        }
        Kind::Video => {
            let pic = crate::av::keyframes(path, 1, THUMB_SIDE).ok()?.into_iter().next()?;
            let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(pic.width, pic.height, pic.rgb)?);
            turned(img, facts.rotation.unwrap_or(0), None).to_rgb8()
        }
        _ => return None,
    };
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(Cursor::new(&mut jpeg), 80).encode_image(&rgb).ok()?;
    Some(format!("data:image/jpeg;base64,{}", base64::engine::general_purpose::STANDARD.encode(&jpeg)))
}

/// Every item's input and output thumbnails, made `jobs` at a time (0 = one per core).
pub fn batch_thumbnails(report: &BatchReport, jobs: usize) -> Vec<(Option<String>, Option<String>)> {
    crate::pool::map(&report.inputs, jobs, |_, _, item: &ItemReport| {
        let input = thumbnail(&report.input_dir.join(&item.input));
        let output = item.output.as_ref().and_then(|o| thumbnail(&report.output_dir.join(o)));
        (input, output)
    })
}

fn status_name(s: ItemStatus) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn size(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1} MB", n as f64 / 1e6)
    } else {
        format!("{:.1} KB", n as f64 / 1e3)
    }
}

fn thumb_cell(uri: Option<&str>, what: &str) -> String {
    match uri {
        Some(u) => format!("<img class=\"thumb\" alt=\"{}\" src=\"{u}\">", esc(what)),
        None => "<span class=\"none\">—</span>".into(),
    }
}

fn row(item: &ItemReport, input_thumb: Option<&str>, output_thumb: Option<&str>) -> String {
    let status = status_name(item.status);
    let mut findings = String::new();
    for f in &item.findings {
        let _ = write!(
            findings,
            "<li class=\"{}\"><code>{}</code> {}</li>",
            f.severity.as_str(),
            esc(f.rule.as_str()),
            esc(&f.message)
        );
    }
    let changes: String = item.changes.iter().map(|c| format!("<li>{}</li>", esc(c))).collect();
    let output = item.output.as_ref().map(|o| esc(&o.to_string_lossy())).unwrap_or_default();
    let reason = item.reason.as_deref().map(|r| format!("<p class=\"reason\">{}</p>", esc(r))).unwrap_or_default();
    let sizes = match item.output_bytes {
        Some(o) => format!("{} → {}", size(item.input_bytes), size(o)),
        None => size(item.input_bytes),
    };
    format!(
        "<tr data-status=\"{status}\"><td>{}</td><td>{}</td><td><b>{}</b><br><span class=\"out\">{output}</span>{reason}</td>\
         <td><span class=\"badge {status}\">{}</span>{}</td><td><ul>{findings}</ul></td><td><ul>{changes}</ul></td>\
         <td class=\"num\">{sizes}</td></tr>\n",
        thumb_cell(input_thumb, "input"),
        thumb_cell(output_thumb, "output"),
        esc(&item.input.to_string_lossy()),
        esc(&status.replace('_', " ")),
        if item.skipped { " <small>(earlier run)</small>" } else { "" },
    )
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:6px;vertical-align:top;text-align:left}\
.thumb{max-width:160px;max-height:160px;display:block}.none{color:#aaa}.out{color:#666}.num{white-space:nowrap}\
ul{margin:0;padding-left:1.1em}li.error{color:#b00}li.warning{color:#a60}li.note{color:#666}\
.badge{padding:1px 6px;border-radius:3px;background:#eee}.badge.unfixable,.badge.not_media,.badge.failed{background:#fdd}\
.badge.fixed,.badge.compliant{background:#dfd}.badge.planned{background:#def}\
button{margin:0 4px 8px 0}button.on{font-weight:bold}.totals td{border:none;padding:2px 12px 2px 0}";

// Filters, and the count of thumbnails the browser decoded (`data-thumbs-decoded` on <body>,
// read by the page test).
const SCRIPT: &str = "function show(s){for(const r of document.querySelectorAll('tr[data-status]')){\
r.style.display=(s==='all'||r.dataset.status===s)?'':'none'}for(const b of document.querySelectorAll('button'))\
{b.classList.toggle('on',b.dataset.filter===s)}}\
window.addEventListener('load',()=>{const t=[...document.querySelectorAll('img.thumb')];\
document.body.dataset.thumbsDecoded=t.filter(i=>i.complete&&i.naturalWidth>0).length;\
document.body.dataset.thumbsTotal=t.length;\
for(const b of document.querySelectorAll('button'))b.addEventListener('click',()=>show(b.dataset.filter));});";

/// The page for a folder run; `thumbs` gives each item's input and output thumbnails
/// (see [`thumbnail`]).
pub fn batch_page(report: &BatchReport, thumbs: &[(Option<String>, Option<String>)]) -> String {
    let s = &report.summary;
    let mut counts: Vec<(String, usize)> = Vec::new();
    for it in &report.inputs {
        let name = status_name(it.status);
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name, 1)),
        }
    }
    let mut buttons = format!("<button data-filter=\"all\" class=\"on\">all ({})</button>", report.inputs.len());
    for (name, c) in &counts {
        let _ = write!(buttons, "<button data-filter=\"{name}\">{} ({c})</button>", esc(&name.replace('_', " ")));
    }
    let rows: String = report
        .inputs
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let (a, b) = thumbs.get(i).map_or((None, None), |(a, b)| (a.as_deref(), b.as_deref()));
            row(it, a, b)
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\
         <title>wanprep batch: {input}</title><style>{STYLE}</style></head>\n<body>\
         <h1>wanprep batch</h1><p>{input} → {output}</p>\
         <table class=\"totals\" id=\"totals\"><tr><td>inputs <b data-count=\"inputs\">{}</b></td><td>compliant <b data-count=\"compliant\">{}</b></td>\
         <td>fixed <b data-count=\"fixed\">{}</b></td><td>planned <b data-count=\"planned\">{}</b></td><td>unfixable <b data-count=\"unfixable\">{}</b></td>\
         <td>not media <b data-count=\"not_media\">{}</b></td><td>failed <b data-count=\"failed\">{}</b></td>\
         <td>{} in, {} out, {:.1} s</td></tr></table>\n<p>{buttons}</p>\n\
         <table id=\"items\"><thead><tr><th>input</th><th>output</th><th>file</th><th>status</th><th>findings</th><th>changes</th><th>size</th></tr></thead><tbody>\n{rows}</tbody></table>\
         <script>{SCRIPT}</script></body></html>\n",
        s.inputs,
        s.compliant,
        s.fixed,
        s.planned,
        s.unfixable,
        s.not_media,
        s.failed,
        size(s.bytes_in),
        size(s.bytes_out),
        report.elapsed_s,
        input = esc(&report.input_dir.to_string_lossy()),
        output = esc(&report.output_dir.to_string_lossy()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_break_out_of_the_page() {
        assert_eq!(
            esc("<script>x</script> & \"q\" 'a'"),
            "&lt;script&gt;x&lt;/script&gt; &amp; &quot;q&quot; &#39;a&#39;"
        );
        assert_eq!(esc("a\u{1b}[31m"), "a\u{fffd}[31m");
    }
}
