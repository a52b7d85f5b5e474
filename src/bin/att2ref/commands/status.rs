//! `att2ref status`: resolve targets, read each image's state, report (and optionally write metrics).
//!
//! Exit codes: 0 when every target and image could be read (whatever their states); 2 otherwise.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use att2ref::batch::Progress;
use att2ref::status::ImageStatus;
use att2ref::status::batch::UnitStatus;
use att2ref::status::state::{ImageState, consumers};
use att2ref::status::{self, StatusReport};
use att2ref::targets;
use indicatif::ProgressBar;

use crate::args::StatusArgs;
use crate::commands::streamed::StreamedReport;
use crate::render::size;
use crate::{exit, setup};

pub async fn run(args: StatusArgs, quiet: bool) -> Result<ExitCode> {
    let started = Instant::now();
    let targets = targets::read_targets(&args.targets.targets, args.targets.from_file.as_deref())?;
    let client = setup::registry_client(&args.registry, &setup::registries_of(&targets, args.targets.all_repos))?;
    let target_options = setup::target_options(&args.targets, &args.registry, &targets)?;
    let bar = crate::commands::progress_bar(quiet, "{bar:30} {pos}/{len} read  [{elapsed}]", "");
    let progress = Bar(bar.clone());
    let resolved = targets::resolve(&targets, &target_options, &client);
    let job = if args.verify {
        let (verifier, _) = setup::verifier(&args.trust)?;
        status::StatusJob::verifying(verifier, setup::limits(&args.registry))
    } else {
        status::StatusJob::new()
    };
    // The report goes out repository by repository as the batch finishes them.
    let mut report = StatusReport::new(targets.clone(), Vec::new(), Vec::new());
    let mut out = StreamedReport::start(
        &report,
        "images",
        args.report.as_deref(),
        args.output.format,
        render_image,
        bar.clone(),
    )?;
    let mut hidden = Hidden::new();
    let mut deliver = |units: Vec<UnitStatus>| {
        for unit in units {
            out.items(&report.add(unit), |image| {
                let most = hidden.entry(image.state.as_str()).or_default();
                *most = (*most).max(image.unmigrated.len());
            })
        }
    };
    let errors = status::status_batch_streamed(resolved, &job, args.jobs as usize, &progress, &mut deliver).await;
    bar.finish_and_clear();
    // The targets that failed first, then what units could not read (as a report made whole has them).
    report.errors = errors.into_iter().chain(std::mem::take(&mut report.errors)).collect();
    report.unclaimed_attachments = setup::unclaimed_attachments(&target_options, !report.errors.is_empty());
    out.finish(&report, &render_totals(&report, &hidden))?;
    for e in &report.errors {
        eprintln!("error: {}: {}", e.target, e.message);
    }
    if let Some(path) = &args.metrics {
        crate::commands::write_metrics(metrics(&report, args.targets.shard), path, started, report.errors.is_empty());
    }
    Ok(ExitCode::from(if report.errors.is_empty() { 0 } else { exit::COULD_NOT_CHECK }))
}

fn metrics(report: &StatusReport, shard: Option<att2ref::targets::Shard>) -> att2ref::metrics::Metrics {
    let mut m = crate::commands::metrics("status", shard);
    for (state, count) in &report.totals.states {
        m.gauge("att2ref_images", "Images by state at the last run.", &[("state", state)], *count as f64);
    }
    let bytes = "What a consumer of one attestation downloads, summed over the images (legacy: the whole .att; referrers: the smallest referrer).";
    m.gauge("att2ref_consumer_bytes", bytes, &[("layout", "legacy")], report.totals.legacy_bytes as f64);
    m.gauge("att2ref_consumer_bytes", bytes, &[("layout", "referrers")], report.totals.referrer_bytes as f64);
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for e in &report.errors {
        *kinds.entry(e.error_kind.as_str()).or_default() += 1;
    }
    for (kind, n) in kinds {
        m.gauge("att2ref_failures", "Failures by error kind at the last run.", &[("kind", kind)], n as f64);
    }
    m
}

struct Bar(ProgressBar);

impl Progress<UnitStatus> for Bar {
    fn found(&self, count: u64) {
        self.0.inc_length(count);
    }

    fn done(&self, _: &UnitStatus) {
        self.0.inc(1);
    }
}

/// The most layers any image of a state has not migrated, by state (what consumers of such an image
/// miss at worst).
type Hidden = std::collections::BTreeMap<&'static str, usize>;

/// The report for people, one image: its state and counts, then what does not count or is not migrated.
fn render_image(i: &ImageStatus) -> String {
    let mut out = format!(
        "{:<17} {}@{}  legacy layers {}, attestation referrers {}\n",
        i.state.as_str(),
        i.repository,
        i.image,
        i.legacy_layers,
        i.attestation_referrers
    );
    for u in &i.unverified {
        out.push_str(&format!("    does not count: referrer {}: {}\n", u.digest.short(), u.reason));
    }
    if i.state == ImageState::PartlyMigrated {
        for l in &i.unmigrated {
            let what = l.predicate_type.as_deref().unwrap_or("no predicate type annotation");
            out.push_str(&format!("    not migrated: layer {} ({what})\n", l.index));
        }
    }
    out
}

/// The report for people, after the images: counts per repository, totals, and what each consumer sees
/// in the states met.
fn render_totals(report: &StatusReport, hidden: &Hidden) -> String {
    let mut out = String::new();
    let header = ImageState::ALL.iter().map(|s| format!("{:>10}", short(*s))).collect::<String>();
    out.push_str(&format!("\n{:<40}{header}\n", "repository"));
    let row = |name: &str, c: &status::report::Counts| {
        let cells: String = ImageState::ALL.iter().map(|s| format!("{:>10}", c.states[s.as_str()])).collect();
        format!("{name:<40}{cells}\n")
    };
    for (name, counts) in &report.repositories {
        out.push_str(&row(name, counts));
    }
    out.push_str(&row("total", &report.totals));
    out.push_str(&format!(
        "\none attestation, summed over the images: {} from the legacy .att, {} from referrers\n",
        size(report.totals.legacy_bytes),
        size(report.totals.referrer_bytes)
    ));
    for state in ImageState::ALL.iter().filter(|s| report.totals.states[s.as_str()] > 0) {
        let hidden = hidden.get(state.as_str()).copied().unwrap_or(0);
        out.push_str(&format!("what consumers see of a {} image:\n", state.as_str()));
        for v in consumers(*state, hidden) {
            out.push_str(&format!("    {:<22} {}\n", v.consumer, v.sees));
        }
    }
    out
}

/// Column headings.
fn short(state: ImageState) -> &'static str {
    match state {
        ImageState::LegacyOnly => "legacy",
        ImageState::PartlyMigrated => "partly",
        ImageState::Migrated => "migrated",
        ImageState::ReferrersOnly => "refs",
        ImageState::Orphaned => "orphaned",
        ImageState::NothingAttached => "nothing",
    }
}
