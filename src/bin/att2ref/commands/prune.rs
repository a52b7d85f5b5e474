//! `att2ref prune`: expand targets into repositories, plan (and with `--apply`, make) the removals, report.
//!
//! Exit codes: 0 when nothing failed (items kept on purpose, e.g. a `.att` not fully migrated, are not
//! failures); otherwise the worst of: 2 when a removal was refused or something could not be checked or
//! a target could not be expanded, 1 when a check failed on the data.

use std::process::ExitCode;

use anyhow::{Result, bail};
use att2ref::batch::{Journal, Progress};
use att2ref::prune::apply::NOT_ATTEMPTED;
use att2ref::prune::{self, AuditEvent, Item, PruneOptions, PruneReport, SearchSets, Status};
use att2ref::store::AnyRepository;
use att2ref::store::registry::RegistryClient;
use att2ref::targets::{self, TargetOptions};
use futures_util::StreamExt;

use crate::args::PruneArgs;
use crate::render::size;
use crate::{exit, setup};

pub async fn run(args: PruneArgs, quiet: bool) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let (verifier, _) = setup::verifier(&args.trust)?;
    let targets = targets::read_targets(&args.targets.targets, args.targets.from_file.as_deref())?;
    let client = setup::registry_client(&args.registry)?;
    let options = PruneOptions { limits: setup::limits(&args.registry), apply: args.apply, ..PruneOptions::default() };
    let search_sets = match args.delete_orphans {
        false => None,
        true if args.search_repositories.is_empty() => Some(SearchSets::catalog()),
        true => Some(SearchSets::named(search_repositories(&args.search_repositories, &args, &client).await?)),
    };

    let journal = match &args.journal {
        Some(path) => Some(Journal::<AuditEvent>::open(path)?.0),
        None => None,
    };
    let mut report = PruneReport::new(targets.clone(), args.apply);
    let target_options = setup::target_options(&args.targets, &args.registry, &targets)?;
    report.attachments_repository = target_options
        .attachments
        .as_ref()
        .map(|a| att2ref::store::Repository::name(&client.repository(a.registry(), a.repository())));
    let resolved = targets::resolve(&targets, &target_options, &client);
    let jobs = args.jobs as usize;
    let bar = crate::commands::progress_bar(quiet, "{bar:30} {pos}/{len} repositories  {msg}  [{elapsed}]", "");
    let progress = Bar { bar: bar.clone(), apply: args.apply, removable: Default::default() };
    let batch =
        prune::prune_batch(resolved, &verifier, &options, search_sets.as_ref(), journal.as_ref(), &progress, jobs)
            .await;
    bar.finish_and_clear();
    report.items = batch.items;
    report.errors = batch.errors;
    // A repository whose plan could not be made is an item, not a target error.
    let failed = !report.errors.is_empty() || report.items.iter().any(|i| i.status == Status::CouldNotCheck);
    report.unclaimed_attachments = setup::unclaimed_attachments(&target_options, failed);
    report.recount();
    report.registries = client.facts();

    crate::commands::output_report(&report, args.report.as_deref(), args.output.format, render)?;
    let code = finish(&report);
    if let Some(path) = &args.metrics {
        let m = metrics(&report, args.targets.shard);
        crate::commands::write_metrics(m, path, started, code == ExitCode::SUCCESS);
    }
    Ok(code)
}

/// Items by kind and status, attestations removed, bytes removed, failures, duration, last success.
fn metrics(report: &PruneReport, shard: Option<att2ref::targets::Shard>) -> att2ref::metrics::Metrics {
    let mut m = crate::commands::metrics("prune", shard);
    let mut counts = std::collections::BTreeMap::<(&str, &str), usize>::new();
    for i in &report.items {
        *counts.entry((i.kind.as_str(), i.status.as_str())).or_default() += 1;
    }
    for ((kind, status), n) in counts {
        m.gauge(
            "att2ref_prune_items",
            "Items found at the last run, by kind and status.",
            &[("kind", kind), ("status", status)],
            n as f64,
        );
    }
    let removed = report
        .items
        .iter()
        .filter(|i| {
            i.kind == att2ref::prune::report::ItemKind::LegacyAttestation
                && i.status == att2ref::prune::report::Status::Removed
        })
        .count();
    m.gauge(
        "att2ref_legacy_attestations_removed",
        "Migrated legacy .att manifests removed at the last run.",
        &[],
        removed as f64,
    );
    let freed: u64 =
        report.items.iter().filter(|i| i.status == att2ref::prune::report::Status::Removed).map(|i| i.size).sum();
    m.gauge(
        "att2ref_bytes_removed",
        "Bytes of manifests and the layers they named, removed at the last run.",
        &[],
        freed as f64,
    );
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for i in report.items.iter().filter(|i| {
        matches!(i.status, att2ref::prune::report::Status::Failed | att2ref::prune::report::Status::CouldNotCheck)
    }) {
        *kinds.entry(i.status.as_str().to_owned()).or_default() += 1;
    }
    for e in &report.errors {
        *kinds.entry(e.error_kind.clone()).or_default() += 1;
    }
    for (kind, n) in kinds {
        m.gauge("att2ref_failures", "Failures by kind at the last run.", &[("kind", &kind)], n as f64);
    }
    m
}

/// The repositories `--search-repository` names; an image reference there is a usage error.
async fn search_repositories(
    given: &[String],
    args: &PruneArgs,
    client: &RegistryClient,
) -> Result<Vec<AnyRepository>> {
    let options = TargetOptions { limits: setup::limits(&args.registry), ..TargetOptions::default() };
    let mut out = Vec::new();
    let mut resolved = std::pin::pin!(targets::resolve(given, &options, client));
    while let Some(next) = resolved.next().await {
        let t = next.map_err(|e| anyhow::anyhow!("--search-repository {}: {}", e.target, e.message))?;
        if t.images.is_some() {
            bail!("--search-repository takes repositories (host/name or ocidir://PATH), not the image {:?}", t.target);
        }
        out.push(t.repo);
    }
    att2ref::prune::orphans::check_named(&out).await.map_err(|e| anyhow::anyhow!("--search-repository: {e}"))?;
    Ok(out)
}

/// Repositories pruned, and items removed (or, in a dry run, removable) so far.
struct Bar {
    bar: indicatif::ProgressBar,
    apply: bool,
    removable: std::sync::atomic::AtomicU64,
}

impl Progress<Vec<Item>> for Bar {
    fn found(&self, count: u64) {
        self.bar.inc_length(count);
    }

    fn done(&self, items: &Vec<Item>) {
        use std::sync::atomic::Ordering;
        let now = items.iter().filter(|i| matches!(i.status, Status::Removed | Status::Planned)).count() as u64;
        let total = self.removable.fetch_add(now, Ordering::Relaxed) + now;
        self.bar.inc(1);
        self.bar.set_message(format!("{total} {}", if self.apply { "removed" } else { "removable" }));
    }
}

/// Errors on stderr and the exit code.
fn finish(report: &PruneReport) -> ExitCode {
    let mut code = 0u8;
    for e in &report.errors {
        eprintln!("error: {}: {}", e.target, e.message);
        code = code.max(exit::COULD_NOT_CHECK);
    }
    // A registry that refuses DELETE is said once, not once per item.
    let mut refusals: Vec<(&str, usize)> = Vec::new();
    for why in report.items.iter().filter_map(|i| i.reasons.last()).filter(|r| r.starts_with(NOT_ATTEMPTED)) {
        match refusals.iter_mut().find(|(w, _)| *w == why.as_str()) {
            Some((_, n)) => *n += 1,
            None => refusals.push((why, 1)),
        }
    }
    for (why, n) in &refusals {
        eprintln!("error: {why} ({n} removal{} not attempted)", if *n == 1 { "" } else { "s" });
        code = code.max(exit::COULD_NOT_CHECK);
    }
    let attempted = |i: &&Item| !i.reasons.last().is_some_and(|r| r.starts_with(NOT_ATTEMPTED));
    for i in report.items.iter().filter(|i| i.status.is_failure()).filter(attempted) {
        let what = match (&i.digest, &i.subject) {
            (Some(d), _) => format!("{}@{d}", i.repository),
            (None, Some(s)) => format!("{}@{s}", i.repository),
            (None, None) => i.repository.clone(),
        };
        eprintln!(
            "error: {what}: {} {}: {}",
            i.kind.as_str(),
            i.status.as_str(),
            i.reasons.last().map_or("", String::as_str)
        );
        code = code.max(exit::COULD_NOT_CHECK);
    }
    ExitCode::from(code)
}

/// The report for people: one line per item with its reasons, then totals.
fn render(report: &PruneReport) -> String {
    let mut out = String::new();
    for i in &report.items {
        let what = i.tag.clone().or_else(|| i.digest.as_ref().map(|d| d.to_string())).unwrap_or_default();
        let subject = i.subject.as_ref().map(|s| format!(" (image {})", s.short())).unwrap_or_default();
        out.push_str(&format!(
            "{:<16} {:<19} {}/{what}{subject} {}\n",
            i.status.as_str(),
            i.kind.as_str(),
            i.repository,
            size(i.size)
        ));
        for r in &i.reasons {
            out.push_str(&format!("    {r}\n"));
        }
    }
    let t = &report.totals;
    let statuses: Vec<String> = t.statuses.iter().map(|(k, v)| format!("{v} {}", k.as_str())).collect();
    let verb = if report.apply { "removed" } else { "removable" };
    out.push_str(&format!(
        "{} item(s): {}; {} {verb}{}\n",
        t.items,
        if statuses.is_empty() { "nothing to prune".to_owned() } else { statuses.join(", ") },
        size(t.bytes),
        if report.apply { "" } else { " (dry run: nothing deleted; --apply to delete)" }
    ));
    if report.items.iter().any(|i| i.status == Status::Removed) {
        out.push_str("blobs are freed by the registry's garbage collection\n");
    }
    out
}
