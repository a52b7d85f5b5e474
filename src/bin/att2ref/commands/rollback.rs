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
use crate::{exit, setup};

pub async fn run(args: RollbackArgs, quiet: bool) -> Result<ExitCode> {
    let (verifier, _) = setup::verifier(&args.trust)?;
    let targets = targets::read_targets(&args.targets.targets, args.targets.from_file.as_deref())?;
    let (client, rekor) = setup::registry_and_rekor(&args.registry, args.rekor_url.as_deref())?;
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
    let batch =
        rollback::rollback_batch(resolved, &verifier, &options, args.jobs as usize, journal.as_ref(), &progress).await;
    bar.finish_and_clear();
    let mut report = RollbackReport::new(targets, args.apply, batch.reports, batch.errors);
    report.unclaimed_attachments = setup::unclaimed_attachments(&target_options, !report.errors.is_empty());
    crate::commands::output_report(&report, args.report.as_deref(), args.output.format, render)?;
    Ok(finish(&report))
}

fn finish(report: &RollbackReport) -> ExitCode {
    let mut code = 0u8;
    for e in &report.errors {
        eprintln!("error: {}: {}", e.target, e.message);
        code = exit::COULD_NOT_CHECK;
    }
    for i in &report.images {
        let what = format!("{}@{}", i.repository, i.image);
        for k in &i.kept {
            eprintln!("warning: {what}: kept referrer {}: {}", k.digest.short(), k.reason);
        }
        if i.outcome == RollbackOutcome::Failed {
            eprintln!("error: {what}: failed: {}", i.reasons.join("; "));
            code = code.max(exit::COULD_NOT_CHECK);
        }
    }
    ExitCode::from(code)
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

fn render(report: &RollbackReport) -> String {
    let mut out = String::new();
    for i in &report.images {
        out.push_str(&format!("{:<22} {}@{}\n", i.outcome.as_str(), i.repository, i.image));
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
    }
    let outcomes: Vec<String> = report.outcomes.iter().map(|(k, v)| format!("{v} {k}")).collect();
    out.push_str(&format!(
        "{} image(s): {}; {} referrer(s) {}, {} kept{}\n",
        report.images.len(),
        if outcomes.is_empty() { "none".to_owned() } else { outcomes.join(", ") },
        report.referrers_removed,
        if report.apply { "removed" } else { "to remove" },
        report.referrers_kept,
        if report.apply { "" } else { " (dry run: nothing removed; --apply to remove)" }
    ));
    out
}
