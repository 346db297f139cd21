//! Raw command-line flags (clap). Turned into library settings in `cli::mod`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Check, fix and submit inputs for the Wan image-to-action API (wan2.2-animate-move).
#[derive(Debug, Parser)]
#[command(name = "wanprep", version, about, help_expected = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tell whether inputs would be accepted by the API, and why not.
    ///
    /// Exit status: 0 all compliant, 1 something non-compliant, 2 usage error or unreadable input.
    Check(CheckArgs),
    /// Make an input compliant with the fewest, cheapest changes.
    ///
    /// Writes OUTPUT only when the result passes `check`, through a temporary file and a rename;
    /// never modifies INPUT. Exit status: 0 written, 1 cannot be fixed, 2 usage or I/O error.
    Fix(FixArgs),
    /// Print the rules and the limits they use.
    Rules(RulesArgs),
}

#[derive(Debug, Args)]
pub struct FixArgs {
    /// The file to fix (only ever read).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// Where to write the result; its extension picks the image format when it is an accepted one.
    #[arg(short = 'o', long, value_name = "OUTPUT")]
    pub output: PathBuf,
    /// Print the plan and the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the plan without writing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
    /// Bring an aspect ratio into range by padding (keeps everything) or centre-cropping.
    #[arg(long, value_enum, default_value_t = AspectArg::Pad, value_name = "MODE")]
    pub aspect: AspectArg,
    /// Padding colour as RRGGBB hex (default: a neutral colour matched to the picture's edges).
    #[arg(long, value_name = "RRGGBB")]
    pub pad_color: Option<String>,
    /// Video: start the kept part this many seconds in (a start after 0 re-encodes).
    #[arg(long, value_name = "S")]
    pub start: Option<f64>,
    /// Video: keep this many seconds (at most the limit; default: the first 30 s when too long).
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// Override a limit, e.g. --limit image.max_side=2048 (see `wanprep rules`).
    #[arg(long, value_name = "NAME=VALUE")]
    pub limit: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AspectArg {
    /// Add bars.
    Pad,
    /// Cut the long side, centred.
    Crop,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Files or http(s) URLs to check; each is judged as what its content is (image or video).
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// The character image, a path or URL (judged in the image role).
    #[arg(long, value_name = "I")]
    pub image: Option<String>,
    /// The reference video, a path or URL (judged in the video role).
    #[arg(long, value_name = "V")]
    pub video: Option<String>,
    /// Print one JSON document (the contract's shape) instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Also decode: the whole image, the first and last video frames.
    #[arg(long)]
    pub deep: bool,
    /// Override a limit, e.g. --limit video.max_duration_s=15 (see `wanprep rules`).
    #[arg(long, value_name = "NAME=VALUE")]
    pub limit: Vec<String>,
    /// Files probed in parallel (0 = one per core).
    #[arg(long, short = 'j', default_value_t = 0, value_name = "N")]
    pub jobs: usize,
    /// Seconds allowed to connect to a URL's host.
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    pub connect_timeout: f64,
    /// Seconds allowed for each read from a URL's host.
    #[arg(long, default_value_t = 30.0, value_name = "S")]
    pub read_timeout: f64,
    /// Retries of a transient network failure (reset, timeout, 502/503/504).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub retries: u32,
    /// When to use colour in the report.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    pub color: ColorWhen,
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Print the rules and limits as JSON.
    #[arg(long)]
    pub json: bool,
    /// Show the rules with a limit overridden, e.g. --limit image.max_side=2048.
    #[arg(long, value_name = "NAME=VALUE")]
    pub limit: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// Colour when stdout is a terminal, NO_COLOR is unset and TERM is not "dumb".
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_flag_has_help_and_the_definition_is_valid() {
        super::Cli::command().debug_assert();
    }
}
