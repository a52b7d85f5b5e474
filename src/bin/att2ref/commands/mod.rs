//! One module per subcommand, and `streamed`: the report the batch commands write as they go.

mod copy;
mod demo;
mod get;
mod inspect;
mod migrate;
mod probe;
mod prune;
mod rollback;
mod status;
mod streamed;
mod verify;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::args::{Cli, Command};

/// Run the chosen subcommand.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Inspect(args) => inspect::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Get(args) => get::run(args).await,
        Command::Migrate(args) => migrate::run(args, cli.quiet).await,
        Command::Prune(args) => prune::run(args, cli.quiet).await,
        Command::Copy(args) => copy::run(args, cli.quiet).await,
        Command::Status(args) => status::run(args, cli.quiet).await,
        Command::Rollback(args) => rollback::run(args, cli.quiet).await,
        Command::Probe(args) => probe::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "att2ref", &mut out);
            print_text(&String::from_utf8_lossy(&out))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut out)?;
            print_text(&String::from_utf8_lossy(&out))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Print one JSON document on stdout.
pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    // Serialise first, so that a closed pipe surfaces as the io::Error main() recognises.
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(())
}

/// Print text on stdout.
pub fn print_text(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// A progress bar on stderr, hidden unless stderr is a terminal (and not with --quiet). Its length
/// grows as the batch lists repositories.
pub fn progress_bar(quiet: bool, template: &str, message: &str) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(message.to_owned());
    bar
}

/// A metrics file for `command`, its series labelled with the shard when there is one.
pub fn metrics(command: &str, shard: Option<att2ref::targets::Shard>) -> att2ref::metrics::Metrics {
    let m = att2ref::metrics::Metrics::new(command);
    match shard {
        Some(s) => m.with_label("shard", &format!("{}/{}", s.index(), s.count())),
        None => m,
    }
}

/// Close `m` (duration, success, last success carried over from the file it replaces) and write it. The
/// work is done by then: a file that cannot be written is a warning, never a changed exit code.
pub fn write_metrics(
    mut m: att2ref::metrics::Metrics,
    path: &std::path::Path,
    started: std::time::Instant,
    success: bool,
) {
    let previous = std::fs::read_to_string(path).ok();
    m.finish(started.elapsed(), success, std::time::SystemTime::now(), previous.as_deref());
    if let Err(e) = m.write(path) {
        eprintln!("warning: {e:#}");
    }
}
