//! `att2ref demo`: the README's first command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use att2ref::Limits;
use att2ref::inspect::{self, InspectOptions};
use att2ref::store::layout::LayoutRepository;

use crate::args::DemoArgs;

pub async fn run(args: DemoArgs) -> Result<ExitCode> {
    let scenario = att2ref::demo::demo().context("building the demo store")?;
    let (dir, temporary) = match &args.keep {
        Some(dir) => (dir.clone(), false),
        None => (std::env::temp_dir().join(format!("att2ref-demo-{}", std::process::id())), true),
    };
    let result = show(&scenario, &dir, args.output.format).await;
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn show(scenario: &att2ref::demo::Scenario, dir: &PathBuf, format: crate::args::Format) -> Result<ExitCode> {
    let repo = LayoutRepository::create(dir, Limits::default())
        .with_context(|| format!("creating the demo OCI layout in {}", dir.display()))?;
    scenario.repo.push_to(&repo).await.context("writing the demo store")?;
    eprintln!(
        "demo: {} ({} bytes), written to ocidir://{} — TEST-ONLY keys, never trust them",
        scenario.summary,
        scenario.repo.total_bytes(),
        dir.display()
    );
    let target = format!("ocidir://{}@{}", dir.display(), scenario.image);
    let report = inspect::inspect_one(&repo, &scenario.image.to_string(), &target, &InspectOptions::default()).await;
    super::inspect::output(&report, format)
}
