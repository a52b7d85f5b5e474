//! One module per subcommand.

mod demo;
mod get;
mod inspect;
mod migrate;
mod prune;
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
        Command::Prune(args) => prune::run(args).await,
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

/// Write a report to `--report FILE` (always JSON) and print it on stdout in the chosen format.
pub fn output_report<T: Serialize>(
    report: &T,
    file: Option<&std::path::Path>,
    format: crate::args::Format,
    text: impl Fn(&T) -> String,
) -> Result<()> {
    if let Some(path) = file {
        let mut bytes = serde_json::to_vec_pretty(report)?;
        bytes.push(b'\n');
        std::fs::write(path, bytes).map_err(|e| anyhow::anyhow!("writing --report {}: {e}", path.display()))?;
    }
    match format {
        crate::args::Format::Json => print_json(report),
        crate::args::Format::Text => print_text(&text(report)),
    }
}

/// A target of a batch command that could not be expanded, with the library's error kind when there is one.
pub fn target_error(target: &str, e: &anyhow::Error) -> att2ref::migrate::report::TargetError {
    let kind = e.chain().find_map(|c| c.downcast_ref::<att2ref::Error>()).map(att2ref::Error::kind);
    att2ref::migrate::report::TargetError {
        target: target.to_owned(),
        error_kind: kind.map_or_else(|| "invalid-input".to_owned(), att2ref::inspect::kind_name),
        message: format!("{e:#}"),
    }
}
