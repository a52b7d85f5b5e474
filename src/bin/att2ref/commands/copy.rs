//! `att2ref copy`: resolve SRC into repositories and images, map each to its place in DST, copy, report.
//!
//! Exit codes: 0 when every image is copied, already copied or resumed (items left behind by the
//! filters are warnings); 1 when an image is blocked (a legacy attestation did not verify or cannot be
//! converted: nothing written for it) or its data failed a check (a blob or manifest that does not match
//! its digest, a malformed manifest); 2 when something could not be read, written or checked.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use att2ref::batch::Progress;
use att2ref::copy::batch::CopyJournal;
use att2ref::copy::{
    CopyJob, CopyOptions, CopyOutcome, CopyReport, Destination, ImageCopy, LegacyMode, ReferrerFilter,
};
use att2ref::model::reference::Reference;
use att2ref::report::RequestStats;
use att2ref::store::AnyRepository;
use att2ref::targets::{self, TargetOptions};
use indicatif::ProgressBar;

use crate::args::{CopyArgs, LegacyArg};
use crate::commands::streamed::StreamedReport;
use crate::exit::Usage;
use crate::render::size;
use crate::{exit, setup};

pub async fn run(args: CopyArgs, quiet: bool) -> Result<ExitCode> {
    let (verifier, _) = setup::verifier(&args.trust)?;
    let (client, rekor) =
        setup::registry_and_rekor(&args.registry, args.convert.rekor_url.as_deref(), &registries(&args))?;
    let legacy = match args.legacy {
        LegacyArg::Convert => LegacyMode::Convert,
        LegacyArg::Keep => LegacyMode::Keep,
        LegacyArg::Both => LegacyMode::Both,
    };
    let options = CopyOptions {
        migrate: setup::convert_options(&args.convert, &args.registry, rekor, args.jobs),
        legacy,
        filter: ReferrerFilter {
            artifact_type: args.artifact_type.clone(),
            predicate_type: args.predicate_type.clone(),
        },
    };
    let (destination, named_tags) = destination(&args, &client)?;
    let journal = match &args.journal {
        Some(path) => {
            let j = CopyJournal::open(path, options.settings_fingerprint(&verifier))?;
            if j.skipped_lines() > 0 {
                eprintln!("warning: journal {}: {} unreadable line(s) ignored", path.display(), j.skipped_lines());
            }
            Some(j)
        }
        None => None,
    };
    let target_options = TargetOptions {
        all_repos: args.all_repos,
        shard: args.shard,
        limits: setup::limits(&args.registry),
        ..TargetOptions::default()
    };
    let sources = vec![args.source.clone()];
    let resolved = targets::resolve(&sources, &target_options, &client);
    let job = CopyJob::new(&destination, &verifier, &options, named_tags, journal.as_ref());
    let bar = crate::commands::progress_bar(quiet, "{bar:30} {pos}/{len} images  {msg}  [{elapsed}]", "0 B written");
    let progress = Bar { bar: bar.clone(), written: AtomicU64::new(0) };
    // The report goes out repository by repository as the batch finishes them.
    let mut report = CopyReport::new(args.source.clone(), args.destination.clone(), legacy.as_str());
    let mut out = StreamedReport::start(
        &report,
        "images",
        args.report.as_deref(),
        args.output.format,
        render_image,
        bar.clone(),
    )?;
    let mut code = 0u8;
    let mut deliver = |images: Vec<ImageCopy>| {
        out.items(&images, |i| {
            report.totals.add(i);
            code = code.max(warn(i));
        })
    };
    let errors = att2ref::copy::copy_batch_streamed(resolved, &job, &progress, &mut deliver).await;
    bar.finish_and_clear();
    report.errors = errors;
    report.requests = RequestStats::of(&client);
    out.finish(&report, &render_totals(&report))?;
    for e in &report.errors {
        eprintln!("error: {}: {}", e.target, e.message);
        code = code.max(exit::COULD_NOT_CHECK);
    }
    Ok(ExitCode::from(code))
}

/// The registries SRC and DST name (with `--all-repos`, DST's host before its prefix), for `-u`.
fn registries(args: &CopyArgs) -> Vec<String> {
    let mut registries = setup::registries_of(std::slice::from_ref(&args.source), args.all_repos);
    let destination = match args.destination.split_once('/') {
        Some((host, _)) if args.all_repos && !args.destination.starts_with("ocidir://") => host.to_owned(),
        _ => args.destination.clone(),
    };
    for registry in setup::registries_of(&[destination], args.all_repos) {
        setup::add_registry(&mut registries, &registry);
    }
    registries
}

/// Where copies go, and the tags a named image is pushed under (DST's tag, else SRC's).
fn destination(
    args: &CopyArgs,
    client: &att2ref::store::registry::RegistryClient,
) -> Result<(Destination, Vec<String>)> {
    let usage = |why: String| anyhow::Error::msg(Usage(why));
    if args.all_repos {
        if args.destination.starts_with("ocidir://") {
            return Err(usage(format!(
                "{}: an OCI layout holds one repository; with --all-repos DST is a registry host (REGISTRY[/PREFIX])",
                args.destination
            )));
        }
        let (host, prefix) = args.destination.split_once('/').unwrap_or((&args.destination, ""));
        if prefix.contains([':', '@']) {
            return Err(usage(format!("{}: with --all-repos DST takes no tag or digest", args.destination)));
        }
        let destination =
            Destination::Registry { client: client.clone(), host: host.to_owned(), prefix: prefix.to_owned() };
        return Ok((destination, Vec::new()));
    }
    let source = Reference::parse(&args.source).map_err(|e| usage(format!("SRC {}: {e}", args.source)))?;
    let target = Reference::parse(&args.destination).map_err(|e| usage(format!("DST {}: {e}", args.destination)))?;
    if target.digest().is_some() {
        return Err(usage(format!(
            "DST {}: a copy keeps the source's digests; name a repository or a tag, not a digest",
            args.destination
        )));
    }
    if target.tag().is_some() && source.manifest_reference().is_none() {
        return Err(usage(format!(
            "DST {}: a tag needs a single image as SRC, and {} is a whole repository",
            args.destination, args.source
        )));
    }
    let tags: Vec<String> = target.tag().or(source.tag()).map(str::to_owned).into_iter().collect();
    let destination = match &target {
        Reference::Registry(r) => Destination::Repository(std::sync::Arc::new(AnyRepository::Registry(
            client.repository(r.registry(), r.repository()),
        ))),
        Reference::Layout(l) => Destination::layout(l.path(), setup::limits(&args.registry))
            .with_context(|| format!("opening OCI layout {}", l.path().display()))?,
    };
    Ok((destination, tags))
}

/// Warnings and errors about one image on stderr; the exit code it calls for.
fn warn(i: &ImageCopy) -> u8 {
    let what = i.source_image();
    let code = match i.outcome {
        CopyOutcome::Blocked => {
            eprintln!("error: {what}: blocked: {}", i.reasons.join("; "));
            exit::CHECK_FAILED
        }
        CopyOutcome::Failed => {
            eprintln!("error: {what}: failed: {}", i.reasons.join("; "));
            i.kind.map_or(exit::COULD_NOT_CHECK, exit::for_kind)
        }
        _ => 0,
    };
    for l in &i.left_behind {
        eprintln!("warning: {what}: left behind: {}: {}", l.item, l.reason);
    }
    code
}

struct Bar {
    bar: ProgressBar,
    written: AtomicU64,
}

impl Progress<ImageCopy> for Bar {
    fn found(&self, count: u64) {
        self.bar.inc_length(count);
    }

    fn done(&self, report: &ImageCopy) {
        let bytes = report.bytes_written();
        let total = self.written.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.bar.inc(1);
        self.bar.set_message(format!("{} written", size(total)));
    }
}

/// The report for people, one image: its outcome, what moved, what was converted or left behind.
fn render_image(i: &ImageCopy) -> String {
    let mut out = String::new();
    let tags = if i.tags.is_empty() { String::new() } else { format!(" ({})", i.tags.join(", ")) };
    out.push_str(&format!("{:<16} {} -> {}{tags}\n", i.outcome.as_str(), i.source_image(), i.destination));
    for r in &i.reasons {
        out.push_str(&format!("    {r}\n"));
    }
    let t = &i.transfer;
    out.push_str(&format!(
        "    {} manifest(s) written, {} present; blobs: {} copied, {} mounted, {} present\n",
        t.manifests_written, t.manifests_present, t.blobs_copied, t.blobs_mounted, t.blobs_present
    ));
    for c in &i.converted {
        for r in &c.referrers {
            let state = if r.existed { "present" } else { "written" };
            out.push_str(&format!(
                "    converted {} -> {} ({state}) for {}\n",
                r.predicate_type,
                r.digest.short(),
                c.image.short()
            ));
        }
    }
    for r in &i.referrers {
        let state = if r.existed { "present" } else { "copied" };
        let kind = r.artifact_type.as_deref().unwrap_or("no artifact type");
        out.push_str(&format!("    referrer {} {kind} ({state}) of {}\n", r.digest.short(), r.subject.short()));
    }
    for t in &i.legacy_tags {
        out.push_str(&format!("    legacy tag {t}\n"));
    }
    for l in &i.left_behind {
        out.push_str(&format!("    left behind: {}: {}\n", l.item, l.reason));
    }
    out
}

/// The report for people, after the images: the totals.
fn render_totals(report: &CopyReport) -> String {
    let t = &report.totals;
    let outcomes: Vec<String> = t.outcomes.iter().map(|(k, v)| format!("{v} {k}")).collect();
    format!(
        "{} image(s): {}; {} attestation(s) converted, {} referrer(s) copied, {} left behind; {} written, {} read\n",
        t.images,
        if outcomes.is_empty() { "none".to_owned() } else { outcomes.join(", ") },
        t.referrers_converted,
        t.referrers_copied,
        t.left_behind,
        size(t.bytes_written),
        size(t.bytes_read)
    )
}
