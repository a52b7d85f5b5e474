//! `att2ref inspect`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use att2ref::inspect::report::InspectReport;
use att2ref::inspect::{self, InspectOptions};
use att2ref::model::reference::Reference;

use crate::args::{Format, InspectArgs};
use crate::{exit, render, setup};

pub async fn run(args: InspectArgs) -> Result<ExitCode> {
    let reference = Reference::parse(&args.target)?;
    let (repo, manifest_ref) = setup::open(&reference, &args.registry)?;
    let options =
        InspectOptions { limits: setup::limits(&args.registry), full: args.full, ..InspectOptions::default() };
    let report = match (args.all_tags, manifest_ref) {
        (true, None) => inspect::inspect_repository(&repo, &args.target, &options).await?,
        (true, Some(_)) => {
            bail!("--all-tags takes a repository, not an image: drop the tag or digest from {}", args.target)
        }
        (false, Some(r)) => inspect::inspect_one(&repo, &r, &args.target, &options).await,
        (false, None) => inspect::inspect_one(&repo, "latest", &args.target, &options).await,
    };
    output(&report, args.output.format)
}

/// Print a report and choose the exit code from its errors.
pub fn output(report: &InspectReport, format: Format) -> Result<ExitCode> {
    match format {
        Format::Json => crate::commands::print_json(report)?,
        Format::Text => crate::commands::print_text(&render::inspect_tree(report))?,
    }
    for e in &report.errors {
        eprintln!("error: {}", e.message);
    }
    Ok(exit::worst(report.errors.iter().map(|e| e.kind)))
}
