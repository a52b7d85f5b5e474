//! `att2ref demo`: the README's first command. Builds the demo store, migrates it (printing what a
//! consumer downloads before and after on stderr), and inspects the result.

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
    migrate(&repo, scenario).await?;
    let target = format!("ocidir://{}@{}", dir.display(), scenario.image);
    let report = inspect::inspect_one(&repo, &scenario.image.to_string(), &target, &InspectOptions::default()).await;
    super::inspect::output(&report, format)
}

/// Migrate the demo image with its test key and show what a consumer downloads before and after.
async fn migrate(repo: &LayoutRepository, scenario: &att2ref::demo::Scenario) -> Result<()> {
    use att2ref::convert::plan::BlobRole;
    use att2ref::rewrite::{self, MigrateOptions};
    use att2ref::verification::{Policy, PublicKey, Verifier};

    let key = PublicKey::from_pem(att2ref::demo::TestKey::Rsa4096.public_pem().as_bytes())?;
    let verifier = std::sync::Arc::new(Verifier::new(Policy::new().with_key(key).insecure_ignore_tlog(true))?);
    let options = MigrateOptions::default();
    let prepared = rewrite::plan::plan_image(repo, &scenario.image, &verifier, &options).await?;
    let report = rewrite::migrate_image(repo, &scenario.image, &verifier, &options).await?;
    let legacy: u64 = prepared.plan.iter().flat_map(|p| &p.items).map(|i| i.source.layer_size).sum();
    eprintln!("demo: migrate → {} ({} referrers)", report.outcome.as_str(), report.referrers.len());
    for item in prepared.plan.iter().flat_map(|p| &p.items) {
        let bundle: u64 = item.blobs.iter().filter(|b| b.role == BlobRole::Bundle).map(|b| b.size).sum();
        let manifest = item.manifest.as_ref().map_or(0, |m| m.size);
        eprintln!(
            "demo:   layer {} ({}): before {} bytes (the whole legacy .att), after {} bytes (its own referrer)",
            item.source.layer_index,
            item.predicate_type,
            legacy,
            manifest + bundle
        );
    }
    Ok(())
}
