//! Raw command-line flags (clap). `settings` turns them into library settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Check, fix and submit inputs for the Wan image-to-action API (wan2.2-animate-move).
#[derive(Debug, Parser)]
#[command(name = "wanprep", version, about, help_expected = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print no report and no progress (errors still go to stderr; what --json asks for is
    /// still printed): the exit status tells the verdict.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// When to use colour (auto: when the output is a terminal, NO_COLOR is unset and TERM is
    /// not "dumb").
    #[arg(long, value_enum, global = true, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    pub color: ColorWhen,
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
    /// Check and fix a whole folder (or a manifest of pairs, optionally submitting them).
    ///
    /// Writes into OUTDIR the same relative tree: compliant inputs copied (or hard-linked), the
    /// others fixed, unfixable and non-media ones listed. Never writes into the input folder.
    /// A re-run skips what an earlier run finished. Exit status: 0 all compliant (or submitted
    /// and downloaded), 1 some could not be fixed or a task failed, 2 usage or I/O error.
    Batch(BatchArgs),
    /// Check both inputs, upload local files, create the task (or resume this job's task).
    ///
    /// Nothing is sent unless both inputs pass `check`. A re-run of the same job within 24 h
    /// resumes its task instead of paying for another. Exit status: 0 created (or done with
    /// --wait), 1 inputs non-compliant or task failed, 2 usage, auth or network error.
    Submit(SubmitArgs),
    /// Print a task as the service reports it.
    Status(StatusArgs),
    /// Poll a task until it ends and download its result.
    Wait(WaitArgs),
    /// List the tasks in the journal, with the seconds generated per mode.
    Tasks(TasksArgs),
    /// Cancel tasks still PENDING (queued), so they are not run or billed.
    ///
    /// Exit status: 0 every task canceled, 1 the service refused (the task is no longer
    /// PENDING; its status is printed), 2 usage, auth or network error.
    Cancel(CancelArgs),
    /// Name the task an unanswered create made for a job (when the lookup found several).
    ///
    /// The task must exist on the service and belong to no other job in the journal. A re-run
    /// of `submit` (or the manifest) then resumes it. Exit status: 0 adopted, 1 refused, 2 error.
    Adopt(AdoptArgs),
    /// Print the rules and the limits they use.
    Rules(RulesArgs),
    /// Print a shell completion script: bash, zsh, fish, powershell or elvish.
    ///
    /// bash: `wanprep completions bash > ~/.local/share/bash-completion/completions/wanprep`;
    /// zsh: into a folder on $fpath as `_wanprep`; fish: `~/.config/fish/completions/wanprep.fish`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff): `wanprep man > ~/.local/share/man/man1/wanprep.1`.
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

impl Command {
    /// Whether the command was asked for JSON on stdout (so even a failure to start is JSON).
    pub fn wants_json(&self) -> bool {
        match self {
            Command::Check(a) => a.json,
            Command::Fix(a) => a.json,
            Command::Batch(a) => a.json.as_deref() == Some(std::path::Path::new("-")),
            Command::Submit(a) => a.json,
            Command::Status(a) => a.json,
            Command::Wait(a) => a.json,
            Command::Tasks(a) => a.json,
            Command::Cancel(a) => a.json,
            Command::Adopt(a) => a.json,
            Command::Rules(a) => a.json,
            Command::Completions(_) | Command::Man => false,
        }
    }
}

/// Where the service is and who we are to it.
#[derive(Debug, Args, Clone)]
pub struct ServiceArgs {
    /// Read the API key from this file instead of DASHSCOPE_API_KEY.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Region of the key: cn-beijing or ap-southeast-1 (DASHSCOPE_BASE_URL overrides the endpoint).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Workspace id (default DASHSCOPE_WORKSPACE_ID), for the Singapore workspace endpoint.
    #[arg(long, value_name = "ID")]
    pub workspace: Option<String>,
    /// Directory of the task journal (default ~/.local/share/wanprep).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Largest result downloaded, in bytes (a longer answer is stopped and nothing is kept).
    #[arg(long, value_name = "BYTES", default_value_t = wanprep::client::DEFAULT_MAX_DOWNLOAD)]
    pub max_download: u64,
    /// Most API requests in any one second, for the whole run (create, poll, list, cancel);
    /// the service allows 20 task queries a second per account.
    #[arg(long, value_name = "N", default_value_t = wanprep::client::DEFAULT_MAX_QPS,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_qps: u32,
}

/// How to wait for a task.
#[derive(Debug, Args, Clone)]
pub struct PollArgs {
    /// Steady polling interval in seconds (polls start at 2 s and grow to it).
    #[arg(long, default_value_t = 15.0, value_name = "S")]
    pub poll_interval: f64,
    /// Stop waiting after this many seconds (the task keeps running).
    #[arg(long, value_name = "S")]
    pub timeout: Option<f64>,
}

/// A job: the pair and its parameters (what makes two submits the same job).
#[derive(Debug, Args, Clone)]
pub struct JobArgs {
    /// The character image: a local file (uploaded) or a public http(s) URL.
    #[arg(long, value_name = "I")]
    pub image: String,
    /// The reference video: a local file (uploaded) or a public http(s) URL.
    #[arg(long, value_name = "V")]
    pub video: String,
    /// wan-std (faster, cheaper) or wan-pro (smoother, pricier).
    #[arg(long, default_value = "wan-std", value_parser = ["wan-std", "wan-pro"], value_name = "MODE")]
    pub mode: String,
    /// Ask the service to add its "Generated by Qwen AI" watermark.
    #[arg(long)]
    pub watermark: bool,
    /// Skip the service's own image check (check_image=false).
    #[arg(long)]
    pub no_check_image: bool,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Poll until the task ends and download the result.
    #[arg(long)]
    pub wait: bool,
    /// Where to save the result (default IMAGE_VIDEO.mp4 from the input names).
    #[arg(short = 'o', long, value_name = "OUT.mp4")]
    pub output: Option<PathBuf>,
    /// Create a new task even if this job already has one (or an uncertain one).
    #[arg(long)]
    pub new: bool,
    /// Check the inputs and estimate the billable seconds; upload and create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Skip the quality advisor's warnings (sharpness, exposure) in the pre-flight check.
    #[arg(long)]
    pub no_quality: bool,
    /// Price per generated second, per mode (e.g. std=0.4,pro=0.6), for the dry run's estimate.
    #[arg(long, value_name = "std=P,pro=P")]
    pub price: Option<String>,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
    /// Override a limit for the pre-flight check, e.g. --limit video.max_duration_s=15.
    #[arg(long, value_name = "NAME=VALUE")]
    pub limit: Vec<String>,
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    pub poll: PollArgs,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The folder to process (or use --manifest).
    #[arg(value_name = "DIR", conflicts_with = "manifest")]
    pub dir: Option<PathBuf>,
    /// A CSV (image,video[,mode,watermark,output]) or JSON-lines file of pairs.
    #[arg(long, value_name = "PAIRS")]
    pub manifest: Option<PathBuf>,
    /// The output folder (created if needed; must not be inside DIR).
    #[arg(short = 'o', long, value_name = "OUTDIR")]
    pub output: PathBuf,
    /// Inputs processed in parallel (0 = one per core).
    #[arg(long, short = 'j', default_value_t = 0, value_name = "N")]
    pub jobs: usize,
    /// Print the report as one JSON document on stdout (instead of the summary). The older
    /// form `--json FILE` still writes it to FILE, with a note: use --report FILE.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub json: Option<PathBuf>,
    /// Write the JSON report to FILE (atomically; "-" for stdout).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Also write a self-contained HTML page (thumbnails of inputs and outputs, findings,
    /// changes, totals, filters by status) to FILE. Folder runs only.
    #[arg(long, value_name = "FILE", conflicts_with = "manifest")]
    pub html: Option<PathBuf>,
    /// Probe, check and plan only; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Process only shard K of N (1-based), split by a stable hash of each relative path.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Hard-link compliant inputs instead of copying them.
    #[arg(long)]
    pub link: bool,
    /// Include hidden files and folders.
    #[arg(long)]
    pub hidden: bool,
    /// Manifest: submit each compliant pair and download the results into OUTDIR.
    #[arg(long, requires = "manifest")]
    pub submit: bool,
    /// With --manifest --submit: replace result files that exist already.
    #[arg(long, requires = "manifest")]
    pub force: bool,
    /// Most memory the fixes running at once may take together, in bytes (default: half of
    /// RAM); a worker waits until its fix fits.
    #[arg(long, value_name = "BYTES")]
    pub max_memory: Option<u64>,
    /// Manifest: most tasks running at once (the API runs few per account; extra ones queue).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub max_in_flight: usize,
    /// Manifest: seconds between polling rounds.
    #[arg(long, default_value_t = 15.0, value_name = "S")]
    pub poll_interval: f64,
    /// Also warn about blurred or badly exposed inputs (the quality advisor; warnings only).
    #[arg(long)]
    pub quality: bool,
    /// Manifest: create new tasks even for jobs the journal already holds (as `submit --new`).
    #[arg(long, requires = "manifest")]
    pub new: bool,
    /// Manifest --submit: on Ctrl-C, cancel the tasks still PENDING (they are listed otherwise).
    #[arg(long, requires = "submit")]
    pub cancel_on_interrupt: bool,
    /// Price per generated second, per mode (e.g. std=0.4,pro=0.6): turns the seconds in the
    /// estimate and the summary into money. There is no built-in price list.
    #[arg(long, value_name = "std=P,pro=P")]
    pub price: Option<String>,
    #[command(flatten)]
    pub fix: FixFlags,
    #[command(flatten)]
    pub service: ServiceArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The task id.
    #[arg(value_name = "TASK_ID")]
    pub task_id: String,
    /// Print the status as JSON (the service's `output` object as it came, with the status).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub service: ServiceArgs,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The task id.
    #[arg(value_name = "TASK_ID")]
    pub task_id: String,
    /// Where to save the result (default: the journal's path for the task, else TASK_ID.mp4).
    #[arg(short = 'o', long, value_name = "OUT.mp4")]
    pub output: Option<PathBuf>,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    pub poll: PollArgs,
}

#[derive(Debug, Args)]
pub struct TasksArgs {
    /// Print the journal as JSON.
    #[arg(long)]
    pub json: bool,
    /// Price per generated second, per mode (e.g. std=0.4,pro=0.6): the totals in money too.
    #[arg(long, value_name = "std=P,pro=P")]
    pub price: Option<String>,
    /// Directory of the task journal (default ~/.local/share/wanprep).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Largest result downloaded, in bytes (a longer answer is stopped and nothing is kept).
    #[arg(long, value_name = "BYTES", default_value_t = wanprep::client::DEFAULT_MAX_DOWNLOAD)]
    pub max_download: u64,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The tasks to cancel.
    #[arg(value_name = "TASK_ID", required_unless_present = "all_pending", conflicts_with = "all_pending")]
    pub task_ids: Vec<String>,
    /// Cancel every task of the journal last seen PENDING (within the 24 h task validity).
    #[arg(long)]
    pub all_pending: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub service: ServiceArgs,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// The task to adopt.
    #[arg(value_name = "TASK_ID")]
    pub task_id: String,
    /// The job, exactly as given to submit (or in the manifest, after fixing).
    #[command(flatten)]
    pub job: JobArgs,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub service: ServiceArgs,
}

#[derive(Debug, Args)]
pub struct FixArgs {
    /// The file to fix (only ever read).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// Where to write the result; its extension names the format written (.png .jpg .webp .bmp,
    /// .mp4 .mov), never another.
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
    /// Video: start the kept part this many seconds in (a start after 0 re-encodes).
    #[arg(long, value_name = "S")]
    pub start: Option<f64>,
    #[arg(long, value_name = "S", help = duration_help())]
    pub duration: Option<f64>,
    /// Image: pad or crop it so the character (found by its face) fills the share of the frame
    /// it fills in VIDEO, placed where the video has it.
    #[arg(long, value_name = "VIDEO")]
    pub match_framing: Option<PathBuf>,
    #[command(flatten)]
    pub fix: FixFlags,
}

/// How a fix shapes its output: shared by `fix` and `batch`.
#[derive(Debug, Args)]
pub struct FixFlags {
    /// Bring an aspect ratio into range by padding (keeps everything) or cropping (see --anchor).
    #[arg(long, value_enum, default_value_t = AspectArg::Pad, value_name = "MODE")]
    pub aspect: AspectArg,
    /// Where a crop keeps the picture: auto = the most salient part (edges, skin, colour).
    #[arg(long, value_enum, default_value_t = AnchorArg::Auto, value_name = "WHERE")]
    pub anchor: AnchorArg,
    /// Padding colour as RRGGBB hex (default: a neutral colour matched to the picture's edges;
    /// transparent bars where the output keeps transparency).
    #[arg(long, value_name = "RRGGBB")]
    pub pad_color: Option<String>,
    /// Colour transparency is flattened onto when the output format has no alpha (JPEG, BMP).
    #[arg(long, value_name = "RRGGBB", default_value = "FFFFFF")]
    pub background: String,
    /// Most memory one image fix may take, in bytes, decided from the header before decoding.
    #[arg(long, value_name = "BYTES", default_value_t = wanprep::fix::DEFAULT_MAX_DECODE_BYTES)]
    pub max_decode_memory: u64,
    #[arg(long, value_enum, value_name = "HOW", help = extend_help())]
    pub extend: Option<ExtendArg>,
    /// Override a limit, e.g. --limit image.max_side=2048 (see `wanprep rules`).
    #[arg(long, value_name = "NAME=VALUE")]
    pub limit: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExtendArg {
    /// Loop the clip until it reaches the minimum duration.
    Loop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AspectArg {
    /// Add bars.
    Pad,
    /// Cut the long side (where --anchor says).
    Crop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnchorArg {
    /// The most salient part (edges, skin-like hues, saturation).
    Auto,
    /// The middle.
    #[value(alias = "center")]
    Centre,
    /// The top of a tall picture.
    Top,
    /// The bottom of a tall picture.
    Bottom,
    /// The left of a wide picture.
    Left,
    /// The right of a wide picture.
    Right,
}

impl From<AnchorArg> for wanprep::fix::Anchor {
    fn from(a: AnchorArg) -> Self {
        use wanprep::fix::Anchor;
        match a {
            AnchorArg::Auto => Anchor::Auto,
            AnchorArg::Centre => Anchor::Centre,
            AnchorArg::Top => Anchor::Top,
            AnchorArg::Bottom => Anchor::Bottom,
            AnchorArg::Left => Anchor::Left,
            AnchorArg::Right => Anchor::Right,
        }
    }
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
    /// Seconds allowed for everything one URL takes (requests, redirects, retries, body),
    /// however slowly its server sends.
    #[arg(long, default_value_t = 60.0, value_name = "S")]
    pub url_timeout: f64,
    /// Also warn about what spoils a generation although the service accepts it: blurred or
    /// mostly black / blown-out pictures and frames (local files; warnings, never errors).
    #[arg(long)]
    pub quality: bool,
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Print the rules and limits as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the rules as a Markdown table (the one in docs/usage.md).
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
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

/// Help texts that quote a limit: from the limits table, never copied by hand.
fn duration_help() -> String {
    let l = wanprep::rules::Limits::default();
    format!(
        "Video: keep this many seconds (at most the limit; default: the first {} s when too long)",
        l.video_max_duration_s
    )
}

fn extend_help() -> String {
    let l = wanprep::rules::Limits::default();
    format!(
        "Video: make a clip shorter than {} s long enough by playing it again from the start",
        l.video_min_duration_s
    )
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_flag_has_help_and_the_definition_is_valid() {
        super::Cli::command().debug_assert();
    }
}
