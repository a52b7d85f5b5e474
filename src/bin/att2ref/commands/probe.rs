//! `att2ref probe`.
//!
//! Exit codes: 0 when the probe ran, whatever it found; 2 when the registry could not be reached or
//! refused the credentials in use, and when `--write-test` could not remove a manifest or tag it wrote
//! (blobs a registry will not delete are said on stderr, not failed: many registries only collect them).

use std::process::ExitCode;

use anyhow::{Result, bail};
use att2ref::probe::report::{Listing, ObjectKind};
use att2ref::probe::{self, ProbeOptions, ProbeReport};

use crate::args::{Format, ProbeArgs};
use crate::{exit, render, setup};

pub async fn run(args: ProbeArgs) -> Result<ExitCode> {
    let (registry, repository) = split_target(&args.target)?;
    let client = setup::registry_client(&args.registry, &[registry.to_owned()])?;
    let options = ProbeOptions { write_test: args.write_test, ..ProbeOptions::default() };
    let report = probe::probe_registry(&client, registry, repository, &options).await?;
    match args.output.format {
        Format::Json => crate::commands::print_json(&report)?,
        Format::Text => crate::commands::print_text(&render::probe_table(&report))?,
    }
    Ok(finish(&report))
}

/// `REGISTRY[/REPO]`: a tag or digest is a usage error (the probe picks its own image).
fn split_target(target: &str) -> Result<(&str, Option<&str>)> {
    let target = target.trim_end_matches('/');
    let (registry, repository) = match target.split_once('/') {
        Some((r, name)) => (r, Some(name)),
        None => (target, None),
    };
    if registry.is_empty() {
        bail!(exit::Usage(format!("{target:?}: expected REGISTRY or REGISTRY/REPO")));
    }
    if repository.is_some_and(|r| r.contains(':') || r.contains('@')) {
        bail!(exit::Usage(format!("{target:?}: give a repository without a tag or digest (REGISTRY/REPO)")));
    }
    Ok((registry, repository))
}

fn finish(report: &ProbeReport) -> ExitCode {
    if !report.reached() {
        eprintln!(
            "error: {} refused the credentials in use: GET /v2/ answered {} ({})",
            report.registry, report.api.status, report.api.detail
        );
        return ExitCode::from(exit::COULD_NOT_CHECK);
    }
    if let Some(w) = report.write_test.as_ref().filter(|w| w.referrer_listed.value == Listing::NotChecked) {
        eprintln!("note: the write test could not run its checks: {}", w.referrer_listed.detail);
    }
    let left = report.leftovers();
    let blobs: Vec<_> = left.iter().filter(|o| o.kind == ObjectKind::Blob).collect();
    if !blobs.is_empty() {
        eprintln!(
            "note: {} test blob(s) could not be deleted and are left for the registry's garbage collection: {}",
            blobs.len(),
            blobs.iter().map(|o| o.reference.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let kept: Vec<_> = left.iter().filter(|o| o.kind != ObjectKind::Blob).collect();
    if kept.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!("error: the write test could not remove {} object(s) it wrote:", kept.len());
    for o in kept {
        let kind = match o.kind {
            ObjectKind::Manifest => "manifest",
            ObjectKind::Tag => "tag",
            ObjectKind::Blob => "blob",
        };
        eprintln!("  {kind} {}: {}", o.reference, o.detail);
    }
    ExitCode::from(exit::COULD_NOT_CHECK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_a_registry_and_maybe_a_repository() {
        assert_eq!(split_target("ghcr.io").unwrap(), ("ghcr.io", None));
        assert_eq!(split_target("localhost:5000/a/b").unwrap(), ("localhost:5000", Some("a/b")));
        assert_eq!(split_target("ghcr.io/").unwrap(), ("ghcr.io", None));
        assert!(split_target("ghcr.io/a:v1").is_err());
        assert!(split_target("ghcr.io/a@sha256:00").is_err());
        assert!(split_target("/a").is_err());
    }
}
