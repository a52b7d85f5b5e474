//! `att2ref rollback`: resolve targets, roll back each image with a legacy `.att`, report.
//!
//! Exit codes: 0 when nothing failed (referrers kept are reported, with the reason, and warned about);
//! 2 when an image failed or a target could not be resolved.

use std::process::ExitCode;

use anyhow::Result;
use att2ref::batch::{Journal, Progress};
use att2ref::rewrite::MigrateOptions;
use att2ref::rollback::batch::RollbackEvent;
use att2ref::rollback::{self, ImageRollback, RollbackOptions, RollbackOutcome, RollbackReport};
use att2ref::targets;
use indicatif::ProgressBar;

use crate::args::RollbackArgs;
use crate::commands::streamed::StreamedReport;
use crate::{exit, setup};

pub async fn run(args: RollbackArgs, quiet: bool) -> Result<ExitCode> {
    let (verifier, _) = setup::verifier(&args.trust)?;
    let targets = targets::read_targets(&args.targets.targets, args.targets.from_file.as_deref())?;
    let (client, rekor) = setup::registry_and_rekor(
        &args.registry,
        args.rekor_url.as_deref(),
        &setup::registries_of(&targets, args.targets.all_repos),
    )?;
    let options = RollbackOptions {
        apply: args.apply,
        migrate: MigrateOptions {
            limits: setup::limits(&args.registry),
            allow_signature_switch: true,
            rekor,
            ..MigrateOptions::default()
        },
    };
    let journal = match &args.journal {
        Some(path) => Some(Journal::<RollbackEvent>::open(path)?.0),
        None => None,
    };
    let target_options = setup::target_options(&args.targets, &args.registry, &targets)?;
    let resolved = targets::resolve(&targets, &target_options, &client);
    let bar = crate::commands::progress_bar(quiet, "{bar:30} {pos}/{len} images  [{elapsed}]", "");
    let progress = Bar(bar.clone());
    // The report goes out repository by repository as the batch finishes them.
    let mut report = RollbackReport::new(targets.clone(), args.apply, Vec::new(), Vec::new());
    let mut out = StreamedReport::start(
        &report,
        "images",
        args.report.as_deref(),
        args.output.format,
        render_image,
        bar.clone(),
    )?;
    let mut code = 0u8;
    let mut deliver = |images: Vec<ImageRollback>| {
        out.items(&images, |i| {
            report.count(i);
            code = code.max(warn(i));
        })
    };
    let errors = rollback::rollback_batch_streamed(
        resolved,
        &verifier,
        &options,
        args.jobs as usize,
        journal.as_ref(),
        &progress,
        &mut deliver,
    )
    .await;
    bar.finish_and_clear();
    report.errors = errors;
    report.unclaimed_attachments = setup::unclaimed_attachments(&target_options, !report.errors.is_empty());
    out.finish(&report, &render_totals(&report))?;
    for e in &report.errors {
        eprintln!("error: {}: {}", e.target, e.message);
        code = code.max(exit::COULD_NOT_CHECK);
    }
    Ok(ExitCode::from(code))
}

/// Warnings and errors about one image on stderr; the exit code it calls for.
fn warn(i: &ImageRollback) -> u8 {
    let what = format!("{}@{}", i.repository, i.image);
    for k in &i.kept {
        eprintln!("warning: {what}: kept referrer {}: {}", k.digest.short(), k.reason);
    }
    if i.outcome == RollbackOutcome::Failed {
        eprintln!("error: {what}: failed: {}", i.reasons.join("; "));
        return exit::COULD_NOT_CHECK;
    }
    0
}

struct Bar(ProgressBar);

impl Progress<ImageRollback> for Bar {
    fn found(&self, count: u64) {
        self.0.inc_length(count);
    }

    fn done(&self, _: &ImageRollback) {
        self.0.inc(1);
    }
}

/// The report for people, one image: its outcome and what was (or would be) removed or kept.
fn render_image(i: &ImageRollback) -> String {
    let mut out = format!("{:<22} {}@{}\n", i.outcome.as_str(), i.repository, i.image);
    for d in &i.planned {
        out.push_str(&format!("    would remove {d}\n"));
    }
    for d in &i.removed {
        out.push_str(&format!("    removed {d}\n"));
    }
    if i.index_removed {
        out.push_str(&format!("    removed the empty referrers index {}\n", i.image.referrers_tag()));
    }
    for k in &i.kept {
        out.push_str(&format!("    kept {}: {}\n", k.digest, k.reason));
    }
    for r in &i.reasons {
        out.push_str(&format!("    {r}\n"));
    }
    out
}

/// The report for people, after the images: the totals.
fn render_totals(report: &RollbackReport) -> String {
    let outcomes: Vec<String> = report.outcomes.iter().map(|(k, v)| format!("{v} {k}")).collect();
    format!(
        "{} image(s): {}; {} referrer(s) {}, {} kept{}\n",
        report.outcomes.values().sum::<usize>(),
        if outcomes.is_empty() { "none".to_owned() } else { outcomes.join(", ") },
        report.referrers_removed,
        if report.apply { "removed" } else { "to remove" },
        report.referrers_kept,
        if report.apply { "" } else { " (dry run: nothing removed; --apply to remove)" }
    )
}
