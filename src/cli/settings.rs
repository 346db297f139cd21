//! Flags → library settings, validated once (as ripgrep's low-level args become high-level
//! ones). Every message here names the flag; nothing below the CLI does.

use std::io::{self, IsTerminal};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use wanprep::client::{ConfigOverrides, Job, Mode, WaitOptions};
use wanprep::fix::{AspectMode, FixSpec};
use wanprep::probe::HttpOptions;
use wanprep::Limits;

use super::args::{AspectArg, CheckArgs, ColorWhen, ExtendArg, FixFlags, JobArgs, PollArgs, ServiceArgs};

/// `--limit NAME=VALUE` pairs over the defaults, validated together.
pub fn limits(pairs: &[String]) -> anyhow::Result<Limits> {
    let mut limits = Limits::default();
    for pair in pairs {
        let (name, value) =
            pair.split_once('=').ok_or_else(|| anyhow::anyhow!("--limit takes NAME=VALUE, got '{pair}'"))?;
        let value: f64 =
            value.trim().parse().map_err(|_| anyhow::anyhow!("--limit {name}: '{value}' is not a number"))?;
        limits.set(name.trim(), value).map_err(anyhow::Error::msg)?;
    }
    limits.validate().map_err(anyhow::Error::msg)?;
    Ok(limits)
}

/// `RRGGBB` (with or without `#`).
pub fn hex_color(s: &str, flag: &str) -> anyhow::Result<[u8; 3]> {
    let h = s.trim_start_matches('#');
    let bad = || anyhow::anyhow!("{flag} takes RRGGBB hex, got '{s}'");
    if h.len() != 6 {
        return Err(bad());
    }
    let byte = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).map_err(|_| bad());
    Ok([byte(0)?, byte(2)?, byte(4)?])
}

static COLOR: std::sync::OnceLock<ColorWhen> = std::sync::OnceLock::new();
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The global `--color` and `--quiet`, set once at start.
pub fn set_output(color: ColorWhen, quiet: bool) {
    let _ = COLOR.set(color);
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// Whether `--quiet` was given: no progress display.
pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether stdout gets colour, by the global `--color`.
pub fn color() -> bool {
    color_enabled(COLOR.get().copied().unwrap_or(ColorWhen::Auto))
}

/// Whether stderr (the progress display) gets colour, by the global `--color`.
pub fn color_for_stderr() -> bool {
    match COLOR.get().copied().unwrap_or(ColorWhen::Auto) {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => io::stderr().is_terminal() && no_color_unset(),
    }
}

fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

pub fn color_enabled(when: ColorWhen) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => io::stdout().is_terminal() && no_color_unset(),
    }
}

/// The fix settings `fix` and `batch` share.
pub fn fix_spec(f: &FixFlags) -> anyhow::Result<FixSpec> {
    let mut spec = FixSpec::default();
    spec.limits = limits(&f.limit)?;
    spec.aspect = match f.aspect {
        AspectArg::Pad => AspectMode::Pad,
        AspectArg::Crop => AspectMode::Crop,
    };
    spec.anchor = f.anchor.into();
    spec.pad_color = f.pad_color.as_deref().map(|c| hex_color(c, "--pad-color")).transpose()?;
    spec.background = Some(hex_color(&f.background, "--background")?);
    spec.max_decode_bytes = Some(f.max_decode_memory);
    spec.extend_loop = f.extend == Some(ExtendArg::Loop);
    Ok(spec)
}

/// Seconds given on the command line: finite, positive, under a day.
pub fn seconds(flag: &str, v: f64) -> anyhow::Result<Duration> {
    if !(v.is_finite() && v > 0.0 && v < 86_400.0) {
        anyhow::bail!("{flag} takes a positive number of seconds, got {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

/// How `check` reads URLs.
pub fn http_options(a: &CheckArgs) -> anyhow::Result<HttpOptions> {
    Ok(HttpOptions::default()
        .timeouts(seconds("--connect-timeout", a.connect_timeout)?, seconds("--read-timeout", a.read_timeout)?)
        .retries(a.retries, Duration::from_millis(200))
        .deadline(seconds("--url-timeout", a.url_timeout)?))
}

pub fn overrides(s: &ServiceArgs) -> ConfigOverrides {
    ConfigOverrides {
        api_key: None,
        api_key_file: s.api_key_file.clone(),
        region: s.region.clone(),
        workspace: s.workspace.clone(),
        state_dir: s.state_dir.clone(),
        max_qps: Some(s.max_qps),
    }
}

pub fn wait_options(p: &PollArgs, cancel: Arc<AtomicBool>, delay_first: bool) -> anyhow::Result<WaitOptions> {
    if !(p.poll_interval.is_finite() && p.poll_interval > 0.0 && p.poll_interval <= 3600.0) {
        anyhow::bail!("--poll-interval takes seconds in (0, 3600], got {}", p.poll_interval);
    }
    if let Some(t) = p.timeout {
        if !(t.is_finite() && t > 0.0) {
            anyhow::bail!("--timeout takes a positive number of seconds, got {t}");
        }
    }
    Ok(WaitOptions {
        poll_interval: Duration::from_secs_f64(p.poll_interval),
        timeout: p.timeout.map(Duration::from_secs_f64),
        cancel: Some(cancel),
        delay_first,
    })
}

/// `--shard K/N`.
pub fn shard(s: &str) -> anyhow::Result<(u32, u32)> {
    let bad = || anyhow::anyhow!("--shard takes K/N with 1 <= K <= N (e.g. 1/4), got '{s}'");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (u32, u32) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || k == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// `--price std=P,pro=P`.
pub fn prices(p: Option<&str>) -> anyhow::Result<Option<wanprep::Prices>> {
    p.map(|p| wanprep::Prices::parse(p).map_err(|e| anyhow::anyhow!("--price: {e}"))).transpose()
}

/// The job the flags name (the same for `submit` and `adopt`, so both reach the same journal
/// entry).
pub fn job(j: &JobArgs) -> anyhow::Result<Job> {
    let mode = Mode::parse(&j.mode).ok_or_else(|| anyhow::anyhow!("--mode is wan-std or wan-pro"))?;
    Ok(Job { watermark: j.watermark, check_image: !j.no_check_image, ..Job::new(&j.image, &j.video, mode) })
}
