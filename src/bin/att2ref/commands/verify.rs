//! `att2ref verify`.

use std::process::ExitCode;

use anyhow::Result;
use att2ref::inspect::report::ImageError;
use att2ref::model::reference::Reference;
use att2ref::verify::report::{REPORT_FORMAT, VerifyReport};
use att2ref::verify::{self, VerifyOptions};

use crate::args::{Format, VerifyArgs};
use crate::{exit, render, setup};

pub async fn run(args: VerifyArgs) -> Result<ExitCode> {
    let reference = Reference::parse(&args.target)?;
    let (verifier, mut policy) = setup::verifier(&args.trust)?;
    policy.predicate_type = args.predicate_type.clone();
    let (repo, manifest_ref) = setup::open(&reference, &args.registry)?;
    let manifest_ref = manifest_ref.unwrap_or_else(|| "latest".to_owned());
    let options = VerifyOptions { limits: setup::limits(&args.registry), predicate_type: args.predicate_type.clone() };
    let mut report = VerifyReport {
        format: REPORT_FORMAT,
        target: args.target.clone(),
        policy,
        images: Vec::new(),
        errors: Vec::new(),
        attachments_repository: att2ref::store::Repository::attachments_repository(&repo),
    };
    match verify::verify_image(&repo, &manifest_ref, &verifier, &options).await {
        Ok(image) => report.images.push(image),
        Err(e) => report.errors.push(ImageError::new(&args.target, &e)),
    }
    match args.output.format {
        Format::Json => crate::commands::print_json(&report)?,
        Format::Text => crate::commands::print_text(&render::verify_table(&report))?,
    }
    // Not a failure (cosign verifies such attestations too, and the exit code stays as documented), but
    // whoever relies on this result should know that the image itself is gone.
    for image in report.images.iter().filter(|i| !i.subject.present) {
        eprintln!(
            "warning: {}: subject manifest absent: what is verified is attached to a digest the registry no longer serves (orphaned)",
            image.reference
        );
    }
    for e in &report.errors {
        eprintln!("error: {}", e.message);
    }
    if !report.errors.is_empty() {
        return Ok(exit::worst(report.errors.iter().map(|e| e.kind)));
    }
    if report.checked() == 0 {
        let what = args.predicate_type.as_deref().map(|t| format!(" of type {t}")).unwrap_or_default();
        eprintln!("error: {}: no attestations or signatures{what} to verify", args.target);
        return Ok(ExitCode::from(exit::CHECK_FAILED));
    }
    if report.failed() > 0 {
        for image in &report.images {
            for r in image.results.iter().filter(|r| !r.verified) {
                let why = r.failure.as_ref().map_or_else(String::new, |f| format!(": {} ({})", f.message, f.reason));
                eprintln!("error: {}: {} {}{why}", image.reference, r.location.source, r.location.blob.short());
            }
        }
        eprintln!("error: {} of {} failed verification", report.failed(), report.checked());
        return Ok(ExitCode::from(exit::CHECK_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}
