//! `att2ref migrate`: expand targets into images, migrate them, report.
//!
//! Exit codes: 0 when every image is migrated, already migrated, or has nothing to migrate; orphaned
//! images (subject manifest missing) and images skipped for a signature switch also exit 0, with a
//! warning on stderr, because leaving them alone is the correct result. 1 when an image is blocked (a
//! layer did not verify or cannot be converted) or failed a check; 2 when something could not be read,
//! written or checked.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use att2ref::convert::{OutputFormat, Verdict};
use att2ref::migrate::report::RequestStats;
use att2ref::migrate::{
    self, ImageReport, Journal, MigrateOptions, MigrateReport, Outcome, Progress, ReadBack, RekorClient,
};
use att2ref::model::digest::Digest;
use att2ref::model::reference::Reference;
use att2ref::store::layout::LayoutRepository;
use att2ref::store::registry::RegistryClient;
use att2ref::store::{AnyRepository, Repository};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::args::{MigrateArgs, ReadBackArg, ReferrerFormat};
use crate::render::size;
use crate::{exit, setup};

/// One repository and the images to migrate in it.
struct Work {
    repo: AnyRepository,
    images: Vec<Digest>,
}

pub async fn run(args: MigrateArgs, quiet: bool) -> Result<ExitCode> {
    let (verifier, _) = setup::verifier(&args.trust)?;
    let targets = targets(&args)?;
    let client = setup::registry_client(&args.registry)?;
    let options = MigrateOptions {
        format: match args.referrer_format {
            ReferrerFormat::Bundle => OutputFormat::Bundle,
            ReferrerFormat::Dsse => OutputFormat::Dsse,
        },
        limits: setup::limits(&args.registry),
        allow_signature_switch: args.allow_signature_switch,
        repair_index: args.repair_index,
        dry_run: args.dry_run,
        rekor: args.rekor_url.as_deref().map(RekorClient::new).transpose().context("--rekor-url")?,
        jobs: args.jobs as usize,
        readback: match args.readback {
            ReadBackArg::Digest => ReadBack::Digest,
            ReadBackArg::Full => ReadBack::Full,
        },
        ..MigrateOptions::default()
    };
    let journal = match &args.journal {
        Some(path) => {
            let j = Journal::open(path)?;
            if j.skipped_lines > 0 {
                eprintln!("warning: journal {}: {} unreadable line(s) ignored", path.display(), j.skipped_lines);
            }
            Some(j)
        }
        None => None,
    };

    let mut report = MigrateReport::new(targets.clone(), args.dry_run, options.format);
    let mut work = Vec::new();
    for target in &targets {
        match expand(target, &args, &client).await {
            Ok(w) => work.extend(w),
            Err(e) => report.errors.push(crate::commands::target_error(target, &e)),
        }
    }

    let total: usize = work.iter().map(|w| w.images.len()).sum();
    let bar = progress_bar(total as u64, quiet);
    let progress = Bar { bar: bar.clone(), written: AtomicU64::new(0) };
    for w in &work {
        let images =
            migrate::migrate_images(&w.repo, &w.images, &verifier, &options, journal.as_ref(), &progress).await;
        report.images.extend(images);
    }
    bar.finish_and_clear();
    report.recount();
    if work.iter().any(|w| matches!(w.repo, AnyRepository::Registry(_))) {
        let s = client.stats();
        report.requests = Some(RequestStats {
            requests: s.requests,
            retries: s.retries,
            bytes_downloaded: s.bytes_downloaded,
            bytes_uploaded: s.bytes_uploaded,
        });
    }

    crate::commands::output_report(&report, args.report.as_deref(), args.output.format, render)?;
    Ok(finish(&report))
}

/// Warnings on stderr and the exit code.
fn finish(report: &MigrateReport) -> ExitCode {
    for e in &report.errors {
        eprintln!("error: {}: {}", e.target, e.message);
    }
    let mut code = 0u8;
    let mut worse = |c: u8| code = code.max(c);
    for i in &report.images {
        let what = format!("{}@{}", i.repository, i.image);
        match i.outcome {
            Outcome::Orphaned | Outcome::SkippedSignatureSwitch => {
                eprintln!("warning: {what}: {}: {}", i.outcome.as_str(), i.reasons.first().map_or("", |r| r.as_str()))
            }
            Outcome::Blocked => {
                eprintln!("error: {what}: blocked: {}", i.reasons.join("; "));
                worse(exit::CHECK_FAILED);
            }
            Outcome::Failed => {
                eprintln!("error: {what}: failed: {}", i.reasons.join("; "));
                worse(i.kind.map_or(exit::COULD_NOT_CHECK, exit::for_kind));
            }
            _ => {}
        }
    }
    if !report.errors.is_empty() {
        worse(exit::COULD_NOT_CHECK);
    }
    ExitCode::from(code)
}

/// The targets from the command line and `--from-file`, in order.
fn targets(args: &MigrateArgs) -> Result<Vec<String>> {
    read_targets(&args.targets.targets, args.targets.from_file.as_deref())
}

/// Command-line targets followed by those of `--from-file` (blank lines and `#` comments ignored).
pub(crate) fn read_targets(given: &[String], from_file: Option<&std::path::Path>) -> Result<Vec<String>> {
    let mut targets = given.to_vec();
    if let Some(path) = from_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading --from-file {}", path.display()))?;
        targets.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned));
    }
    if targets.is_empty() {
        bail!("no targets: give images, repositories or layouts (or --from-file FILE)");
    }
    Ok(targets)
}

/// One repository a target names, and the images it names in it (`None`: the whole repository).
pub(crate) struct Expanded {
    pub repo: AnyRepository,
    pub images: Option<Vec<Digest>>,
}

/// How targets are expanded (shared by `migrate` and `prune`).
pub(crate) struct TargetOptions<'a> {
    pub all_repos: bool,
    pub shard: Option<(u32, u32)>,
    pub registry: &'a crate::args::RegistryArgs,
}

/// The repositories and images one target names.
async fn expand(target: &str, args: &MigrateArgs, client: &RegistryClient) -> Result<Vec<Work>> {
    let options =
        TargetOptions { all_repos: args.targets.all_repos, shard: args.targets.shard, registry: &args.registry };
    let mut work = Vec::new();
    for e in expand_target(target, &options, client).await? {
        let images = match e.images {
            Some(images) => images,
            None => migrate::images_with_attestations(&e.repo)
                .await
                .with_context(|| format!("listing tags of {}", e.repo.name()))?,
        };
        work.push(Work { repo: e.repo, images });
    }
    Ok(work)
}

/// The repositories (and, for image references, the image) one target names.
pub(crate) async fn expand_target(
    target: &str,
    options: &TargetOptions<'_>,
    client: &RegistryClient,
) -> Result<Vec<Expanded>> {
    let in_shard = |repository: &str| options.shard.is_none_or(|(i, n)| migrate::shard_of(repository, n) == i);
    if options.all_repos {
        if target.contains('/') || target.starts_with("ocidir://") {
            bail!("--all-repos takes registry hosts (e.g. registry.example:5000), not {target:?}");
        }
        let names = client.catalog(target).await.with_context(|| format!("listing the catalog of {target}"))?;
        return Ok(names
            .into_iter()
            .filter(|name| in_shard(name))
            .map(|name| Expanded { repo: AnyRepository::Registry(client.repository(target, &name)), images: None })
            .collect());
    }
    let reference = Reference::parse(target)?;
    let (repo, manifest_ref, name) = match &reference {
        Reference::Registry(r) => (
            AnyRepository::Registry(client.repository(r.registry(), r.repository())),
            r.manifest_reference(),
            r.repository().to_owned(),
        ),
        Reference::Layout(l) => {
            let repo = LayoutRepository::open(l.path(), setup::limits(options.registry))
                .with_context(|| format!("opening OCI layout {}", l.path().display()))?;
            (AnyRepository::Layout(repo), l.manifest_reference(), l.path().display().to_string())
        }
    };
    if !in_shard(&name) {
        return Ok(Vec::new());
    }
    let images = match manifest_ref {
        Some(r) => match r.parse::<Digest>() {
            Ok(d) => Some(vec![d]),
            Err(_) => {
                let d =
                    repo.head_manifest(&r).await?.with_context(|| format!("tag {r:?} not found in {}", repo.name()))?;
                Some(vec![d.digest])
            }
        },
        None => None,
    };
    Ok(vec![Expanded { repo, images }])
}

struct Bar {
    bar: ProgressBar,
    written: AtomicU64,
}

impl Progress for Bar {
    fn image_done(&self, report: &ImageReport) {
        let total = self.written.fetch_add(report.bytes_written, Ordering::Relaxed) + report.bytes_written;
        self.bar.inc(1);
        self.bar.set_message(format!("{} written", size(total)));
    }
}

/// Overall images and bytes written; hidden unless stderr is a terminal (and not with --quiet).
fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} images  {msg}  [{elapsed}]") {
        bar.set_style(style);
    }
    bar.set_message("0 B written");
    bar
}

/// The report for people: one block per image, then totals.
fn render(report: &MigrateReport) -> String {
    let mut out = String::new();
    for i in &report.images {
        out.push_str(&format!("{:<24} {}@{}\n", i.outcome.as_str(), i.repository, i.image));
        for r in &i.reasons {
            out.push_str(&format!("    {r}\n"));
        }
        if let Some(plan) = &i.plan {
            for item in &plan.items {
                let action = match &item.verdict {
                    Verdict::Write => "write".to_owned(),
                    Verdict::AlreadyPresent => "present".to_owned(),
                    Verdict::Blocked { message, .. } => format!("blocked: {message}"),
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
    }
    let t = &report.totals;
    let outcomes: Vec<String> = t.outcomes.iter().map(|(k, v)| format!("{v} {k}")).collect();
    out.push_str(&format!(
        "{} image(s): {}; {} referrer(s) written, {} written, {} read{}\n",
        t.images,
        if outcomes.is_empty() { "none".to_owned() } else { outcomes.join(", ") },
        t.referrers_written,
        size(t.bytes_written),
        size(t.bytes_read),
        if report.dry_run { " (dry run: nothing written)" } else { "" }
    ));
    out
}

fn layer_note(index: usize) -> String {
    format!("from layer {index}")
}
