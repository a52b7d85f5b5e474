//! `att2ref migrate`: expand targets into images, migrate them, report.
//!
//! Exit codes: 0 when every image is migrated, already migrated, or has nothing to migrate; orphaned
//! images (subject manifest missing) and images skipped for a signature switch also exit 0, with a
//! warning on stderr, because leaving them alone is the correct result; so do the `.att` tags of other
//! repositories' images in a shared attachments repository (`not-in-image-repository`), without one. 1
//! when an image is blocked (a layer did not verify or cannot be converted) or failed a check; 2 when
//! something could not be read, written or checked.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use att2ref::batch::Progress;
use att2ref::convert::Verdict as ConvertVerdict;
use att2ref::migrate::{self, MigrateJournal, MigrateReport};
use att2ref::report::RequestStats;
use att2ref::rewrite::{ImageMigration, MigrateOptions, Outcome};
use att2ref::targets;
use indicatif::ProgressBar;

use crate::args::MigrateArgs;
use crate::commands::streamed::StreamedReport;
use crate::render::size;
use crate::{exit, setup};

pub async fn run(args: MigrateArgs, quiet: bool) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let (verifier, _) = setup::verifier(&args.trust)?;
    let targets = targets::read_targets(&args.targets.targets, args.targets.from_file.as_deref())?;
    let (client, rekor) = setup::registry_and_rekor(
        &args.registry,
        args.convert.rekor_url.as_deref(),
        &setup::registries_of(&targets, args.targets.all_repos),
    )?;
    let options = MigrateOptions {
        repair_index: args.repair_index,
        dry_run: args.dry_run,
        ..setup::convert_options(&args.convert, &args.registry, rekor, args.jobs)
    };
    let journal = match &args.journal {
        Some(path) => {
            let j = MigrateJournal::open(path, options.settings_fingerprint(&verifier))?;
            if j.skipped_lines() > 0 {
                eprintln!("warning: journal {}: {} unreadable line(s) ignored", path.display(), j.skipped_lines());
            }
            Some(j)
        }
        None => None,
    };

    let mut report = MigrateReport::new(targets.clone(), args.dry_run, options.format);
    let bar = crate::commands::progress_bar(quiet, "{bar:30} {pos}/{len} images  {msg}  [{elapsed}]", "0 B written");
    let progress = Bar { bar: bar.clone(), written: AtomicU64::new(0) };
    let target_options = setup::target_options(&args.targets, &args.registry, &targets)?;
    report.attachments_repository = target_options
        .attachments
        .as_ref()
        .map(|a| att2ref::store::Repository::name(&client.repository(a.registry(), a.repository())));
    // The report goes out repository by repository as the batch finishes them: a whole registry's
    // images are never all held at once.
    let mut out = StreamedReport::start(
        &report,
        "images",
        args.report.as_deref(),
        args.output.format,
        render_image,
        bar.clone(),
    )?;
    let mut verdict = Verdict::default();
    let mut deliver = |images: Vec<ImageMigration>| {
        out.items(&images, |i| {
            report.totals.add(i);
            verdict.image(i);
        })
    };
    // One batch over every repository: --jobs images in flight across all of them, each repository
    // starting as soon as it is resolved (with --all-repos, on the catalog's first page).
    let resolved = targets::resolve(&targets, &target_options, &client);
    let errors =
        migrate::migrate_batch_streamed(resolved, &verifier, &options, journal.as_ref(), &progress, &mut deliver).await;
    bar.finish_and_clear();
    report.errors = errors;
    report.unclaimed_attachments = setup::unclaimed_attachments(&target_options, !report.errors.is_empty());
    report.registries = client.facts();
    report.requests = RequestStats::of(&client);

    out.finish(&report, &render_totals(&report))?;
    let code = verdict.finish(&report.errors);
    if let Some(path) = &args.metrics {
        let m = metrics(&report, &verdict, args.targets.shard);
        crate::commands::write_metrics(m, path, started, code == ExitCode::SUCCESS);
    }
    Ok(code)
}

/// Images by outcome, attestations written, bytes read and written, failures by kind, duration, last
/// success.
fn metrics(
    report: &MigrateReport,
    verdict: &Verdict,
    shard: Option<att2ref::targets::Shard>,
) -> att2ref::metrics::Metrics {
    let mut m = crate::commands::metrics("migrate", shard);
    for (outcome, n) in &report.totals.outcomes {
        m.gauge("att2ref_images", "Images by outcome at the last run.", &[("outcome", outcome)], *n as f64);
    }
    let t = &report.totals;
    m.gauge("att2ref_attestations_written", "Referrers written at the last run.", &[], t.referrers_written as f64);
    m.gauge("att2ref_bytes", "Bytes read and written at the last run.", &[("direction", "read")], t.bytes_read as f64);
    m.gauge(
        "att2ref_bytes",
        "Bytes read and written at the last run.",
        &[("direction", "written")],
        t.bytes_written as f64,
    );
    let mut kinds = verdict.failures.clone();
    for e in &report.errors {
        *kinds.entry(e.error_kind.clone()).or_default() += 1;
    }
    for (kind, n) in kinds {
        m.gauge("att2ref_failures", "Failures by kind at the last run.", &[("kind", &kind)], n as f64);
    }
    m
}

/// What the images say about the run, as they arrive: warnings and errors on stderr, the exit code,
/// failures by kind.
#[derive(Default)]
struct Verdict {
    code: u8,
    failures: std::collections::BTreeMap<String, usize>,
}

impl Verdict {
    fn image(&mut self, i: &ImageMigration) {
        let what = format!("{}@{}", i.repository, i.image);
        match i.outcome {
            Outcome::Orphaned | Outcome::SkippedSignatureSwitch => {
                eprintln!("warning: {what}: {}: {}", i.outcome.as_str(), i.reasons.first().map_or("", |r| r.as_str()))
            }
            Outcome::Blocked => {
                eprintln!("error: {what}: blocked: {}", i.reasons.join("; "));
                self.code = self.code.max(exit::CHECK_FAILED);
            }
            Outcome::Failed => {
                eprintln!("error: {what}: failed: {}", i.reasons.join("; "));
                self.code = self.code.max(i.kind.map_or(exit::COULD_NOT_CHECK, exit::for_kind));
            }
            _ => {}
        }
        if let Some(kind) = &i.error_kind {
            *self.failures.entry(kind.clone()).or_default() += 1;
        } else if i.outcome == Outcome::Blocked {
            *self.failures.entry("blocked".to_owned()).or_default() += 1;
        }
    }

    /// The targets that failed on stderr, and the exit code.
    fn finish(&self, errors: &[att2ref::targets::TargetError]) -> ExitCode {
        for e in errors {
            eprintln!("error: {}: {}", e.target, e.message);
        }
        let code = if errors.is_empty() { self.code } else { self.code.max(exit::COULD_NOT_CHECK) };
        ExitCode::from(code)
    }
}

struct Bar {
    bar: ProgressBar,
    written: AtomicU64,
}

impl Progress<ImageMigration> for Bar {
    fn found(&self, count: u64) {
        self.bar.inc_length(count);
    }

    fn done(&self, report: &ImageMigration) {
        let total = self.written.fetch_add(report.bytes_written, Ordering::Relaxed) + report.bytes_written;
        self.bar.inc(1);
        self.bar.set_message(format!("{} written", size(total)));
    }
}

/// The report for people, one image: its outcome, then its layers or referrers.
fn render_image(i: &ImageMigration) -> String {
    let mut out = String::new();
    out.push_str(&format!("{:<24} {}@{}\n", i.outcome.as_str(), i.repository, i.image));
    for r in &i.reasons {
        out.push_str(&format!("    {r}\n"));
    }
    if let Some(plan) = &i.plan {
        for item in &plan.items {
            let action = match &item.verdict {
                ConvertVerdict::Write => "write".to_owned(),
                ConvertVerdict::AlreadyPresent => "present".to_owned(),
                ConvertVerdict::Blocked { message, .. } => format!("blocked: {message}"),
            };
            let manifest = item
                .manifest
                .as_ref()
                .map(|m| format!(" -> {} ({})", m.digest.short(), size(m.size)))
                .unwrap_or_default();
            out.push_str(&format!(
                "    layer {} {}{manifest}: {action}\n",
                item.source.layer_index, item.predicate_type
            ));
            for note in &item.notes {
                out.push_str(&format!("        note: {note}\n"));
            }
        }
        out.push_str(&format!(
            "    plan: {} to write, {} present, {} blocked; {} new blob(s), {}\n",
            plan.totals.write,
            plan.totals.already_present,
            plan.totals.blocked,
            plan.totals.new_blobs,
            size(plan.totals.new_blob_bytes + plan.totals.manifest_bytes)
        ));
    } else {
        for r in &i.referrers {
            let state = if r.existed { "existing" } else { "new" };
            out.push_str(&format!(
                "    {} {} ({}, {state}) {}\n",
                r.digest.short(),
                r.predicate_type,
                size(r.size),
                layer_note(r.layer_index)
            ));
        }
    }
    out
}

/// The report for people, after the images: the totals.
fn render_totals(report: &MigrateReport) -> String {
    let t = &report.totals;
    let outcomes: Vec<String> = t.outcomes.iter().map(|(k, v)| format!("{v} {k}")).collect();
    format!(
        "{} image(s): {}; {} referrer(s) written, {} written, {} read{}\n",
        t.images,
        if outcomes.is_empty() { "none".to_owned() } else { outcomes.join(", ") },
        t.referrers_written,
        size(t.bytes_written),
        size(t.bytes_read),
        if report.dry_run { " (dry run: nothing written)" } else { "" }
    )
}

fn layer_note(index: usize) -> String {
    format!("from layer {index}")
}
