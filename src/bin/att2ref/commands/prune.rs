//! `att2ref prune`: expand targets into repositories, plan (and with `--apply`, make) the removals, report.
//!
//! Exit codes: 0 when nothing failed (items kept on purpose, e.g. a `.att` not fully migrated, are not
//! failures); otherwise 2: a removal failed or was refused, something could not be checked, or a target
//! could not be expanded. Data that fails a check is kept, which is not a failure of the run.

use std::process::ExitCode;

use anyhow::{Result, bail};
use att2ref::batch::{Journal, Progress};
use att2ref::prune::apply::NOT_ATTEMPTED;
use att2ref::prune::{self, AuditEvent, Item, ItemKind, PruneOptions, PruneReport, SearchSets, Status};
use att2ref::store::AnyRepository;
use att2ref::store::registry::RegistryClient;
use att2ref::targets::{self, TargetOptions};
use futures_util::StreamExt;

use crate::args::PruneArgs;
use crate::commands::streamed::StreamedReport;
use crate::render::size;
use crate::{exit, setup};

pub async fn run(args: PruneArgs, quiet: bool) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let (verifier, _) = setup::verifier(&args.trust)?;
    let targets = targets::read_targets(&args.targets.targets, args.targets.from_file.as_deref())?;
    let client = setup::registry_client(&args.registry, &{
        let mut registries = setup::registries_of(&targets, args.targets.all_repos);
        for registry in setup::registries_of(&args.search_repositories, false) {
            setup::add_registry(&mut registries, &registry);
        }
        registries
    })?;
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
    // The report goes out repository by repository as the batch finishes them.
    let mut out =
        StreamedReport::start(&report, "items", args.report.as_deref(), args.output.format, render_item, bar.clone())?;
    let mut tally = Tally::default();
    let mut deliver = |units: Vec<Vec<Item>>| {
        let items: Vec<Item> = units.into_iter().flatten().collect();
        out.items(&items, |i| {
            report.totals.add(i);
            tally.item(i);
        })
    };
    let errors = prune::prune_batch_streamed(
        resolved,
        &verifier,
        &options,
        search_sets.as_ref(),
        journal.as_ref(),
        &progress,
        jobs,
        &mut deliver,
    )
    .await;
    bar.finish_and_clear();
    report.errors = errors;
    // A repository whose plan could not be made is an item, not a target error.
    let failed = !report.errors.is_empty() || tally.could_not_check;
    report.unclaimed_attachments = setup::unclaimed_attachments(&target_options, failed);
    report.registries = client.facts();

    out.finish(&report, &render_totals(&report, tally.removed > 0))?;
    let code = tally.finish(&report.errors);
    if let Some(path) = &args.metrics {
        let m = metrics(&tally, &report.errors, args.targets.shard);
        crate::commands::write_metrics(m, path, started, code == ExitCode::SUCCESS);
    }
    Ok(code)
}

/// Items by kind and status, attestations removed, bytes removed, failures, duration, last success.
fn metrics(
    tally: &Tally,
    errors: &[att2ref::targets::TargetError],
    shard: Option<att2ref::targets::Shard>,
) -> att2ref::metrics::Metrics {
    let mut m = crate::commands::metrics("prune", shard);
    for ((kind, status), n) in &tally.counts {
        m.gauge(
            "att2ref_prune_items",
            "Items found at the last run, by kind and status.",
            &[("kind", kind), ("status", status)],
            *n as f64,
        );
    }
    m.gauge(
        "att2ref_legacy_attestations_removed",
        "Migrated legacy .att manifests removed at the last run.",
        &[],
        tally.legacy_removed as f64,
    );
    m.gauge(
        "att2ref_bytes_removed",
        "Bytes of manifests and the layers they named, removed at the last run.",
        &[],
        tally.freed as f64,
    );
    let mut kinds = tally.failures.clone();
    for e in errors {
        *kinds.entry(e.error_kind.clone()).or_default() += 1;
    }
    for (kind, n) in kinds {
        m.gauge("att2ref_failures", "Failures by kind at the last run.", &[("kind", &kind)], n as f64);
    }
    m
}

/// What the items say about the run, as they arrive: errors on stderr, the exit code, the metrics' counts.
#[derive(Default)]
struct Tally {
    code: u8,
    counts: std::collections::BTreeMap<(&'static str, &'static str), usize>,
    removed: usize,
    legacy_removed: usize,
    freed: u64,
    failures: std::collections::BTreeMap<String, usize>,
    could_not_check: bool,
    /// A registry that refuses DELETE is said once at the end, not once per item.
    refusals: Vec<(String, usize)>,
}

impl Tally {
    fn item(&mut self, i: &Item) {
        *self.counts.entry((i.kind.as_str(), i.status.as_str())).or_default() += 1;
        if i.status == Status::Removed {
            self.removed += 1;
            self.freed += i.size;
            if i.kind == ItemKind::LegacyAttestation {
                self.legacy_removed += 1;
            }
        }
        self.could_not_check |= i.status == Status::CouldNotCheck;
        if matches!(i.status, Status::Failed | Status::CouldNotCheck) {
            *self.failures.entry(i.status.as_str().to_owned()).or_default() += 1;
        }
        if let Some(why) = i.reasons.last().filter(|r| r.starts_with(NOT_ATTEMPTED)) {
            match self.refusals.iter_mut().find(|(w, _)| w == why) {
                Some((_, n)) => *n += 1,
                None => self.refusals.push((why.clone(), 1)),
            }
            return;
        }
        if i.status.is_failure() {
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
            self.code = self.code.max(exit::COULD_NOT_CHECK);
        }
    }

    /// The targets that failed and the refusals on stderr, and the exit code.
    fn finish(&self, errors: &[att2ref::targets::TargetError]) -> ExitCode {
        let mut code = self.code;
        for e in errors {
            eprintln!("error: {}: {}", e.target, e.message);
            code = code.max(exit::COULD_NOT_CHECK);
        }
        for (why, n) in &self.refusals {
            eprintln!("error: {why} ({n} removal{} not attempted)", if *n == 1 { "" } else { "s" });
            code = code.max(exit::COULD_NOT_CHECK);
        }
        ExitCode::from(code)
    }
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

/// The report for people, one item: its status, kind, name and size, then its reasons.
fn render_item(i: &Item) -> String {
    let what = i.tag.clone().or_else(|| i.digest.as_ref().map(|d| d.to_string())).unwrap_or_default();
    let subject = i.subject.as_ref().map(|s| format!(" (image {})", s.short())).unwrap_or_default();
    let mut out = format!(
        "{:<16} {:<19} {}/{what}{subject} {}\n",
        i.status.as_str(),
        i.kind.as_str(),
        i.repository,
        size(i.size)
    );
    for r in &i.reasons {
        out.push_str(&format!("    {r}\n"));
    }
    out
}

/// The report for people, after the items: the totals.
fn render_totals(report: &PruneReport, removed_any: bool) -> String {
    let t = &report.totals;
    let statuses: Vec<String> = t.statuses.iter().map(|(k, v)| format!("{v} {}", k.as_str())).collect();
    let verb = if report.apply { "removed" } else { "removable" };
    let mut out = format!(
        "{} item(s): {}; {} {verb}{}\n",
        t.items,
        if statuses.is_empty() { "nothing to prune".to_owned() } else { statuses.join(", ") },
        size(t.bytes),
        if report.apply { "" } else { " (dry run: nothing deleted; --apply to delete)" }
    );
    if removed_any {
        out.push_str("blobs are freed by the registry's garbage collection\n");
    }
    out
}
