//! `att2ref get`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use att2ref::get::{self, Attestation, Emit, GetOptions, GetResult, GetStats, LegacyCost};
use att2ref::model::reference::Reference;
use att2ref::store::PrefixRead;
use att2ref::store::registry::{ClientStats, RegistryClient};
use serde::Serialize;
use serde_json::{Value, json};

use crate::args::{self, Format, GetArgs};
use crate::{exit, setup};

pub async fn run(args: GetArgs) -> Result<ExitCode> {
    let reference = Reference::parse(&args.target)?;
    let verifier = if args.unverified { None } else { Some(setup::verifier(&args.trust)?.0) };
    // The client is kept so its counters can be reported (`--stats`).
    let (repo, manifest_ref, client) = match &reference {
        Reference::Registry(r) => {
            let client = setup::registry_client(&args.registry, &[r.registry().to_owned()])?;
            (setup::registry_repository(&client, r, &args.registry)?, r.manifest_reference(), Some(client))
        }
        Reference::Layout(_) => {
            let (repo, m) = setup::open(&reference, &args.registry)?;
            (repo, m, None)
        }
    };
    let manifest_ref = manifest_ref.unwrap_or_else(|| "latest".to_owned());
    let options = GetOptions {
        predicate_type: args.predicate_type.clone(),
        hint: args.hint.clone(),
        all: args.all,
        limits: setup::limits(&args.registry),
    };
    let result = match &verifier {
        Some(v) => get::get_attestation(&repo, &manifest_ref, &options, v).await?,
        None => {
            eprintln!(
                "warning: --unverified: nothing was verified; what follows may have been written by anyone with push access to {}",
                args.target
            );
            get::get_unverified(&repo, &manifest_ref, &options).await?
        }
    };
    let counted = client.as_ref().map(RegistryClient::stats);
    if let Some(format) = args.stats {
        // Said only when the legacy path was not taken; reading its manifest is one more request, made
        // after the counters above were taken.
        let would = if result.stats.legacy.is_none() {
            get::legacy_cost(&repo, &result.image, &options.limits).await.ok().flatten()
        } else {
            None
        };
        print_stats(format, &result, counted, would)?;
    }
    for r in &result.rejected {
        eprintln!("warning: {}: rejected ({}): {}", describe(&r.source), r.reason.as_str(), r.message);
    }
    if result.attestations.is_empty() {
        let hint = args.hint.as_deref().map(|h| format!(" with content hint {h:?}")).unwrap_or_default();
        let verified = if args.unverified { "" } else { "verified " };
        let s = &result.stats;
        let passed = s.referrers_skipped + s.read_not_matching;
        let others =
            if passed > 0 { format!(" ({passed} of another type or content hint passed over)") } else { String::new() };
        eprintln!("error: {}: no {verified}{} attestation{hint} found{others}", args.target, args.predicate_type);
        return Ok(ExitCode::from(exit::CHECK_FAILED));
    }
    let emit = emit_of(args.emit);
    write_output(&args, &result, emit)?;
    Ok(ExitCode::SUCCESS)
}

fn emit_of(e: args::EmitArg) -> Emit {
    match e {
        args::EmitArg::Predicate => Emit::Predicate,
        args::EmitArg::Statement => Emit::Statement,
        args::EmitArg::Envelope => Emit::Envelope,
        args::EmitArg::Bundle => Emit::Bundle,
    }
}

fn describe(source: &get::AnswerSource) -> String {
    match source {
        get::AnswerSource::Referrer { manifest, .. } => format!("referrer {manifest}"),
        get::AnswerSource::Legacy { tag, layer, .. } => format!("{tag} layer {layer}"),
    }
}

fn write_output(args: &GetArgs, result: &GetResult, emit: Emit) -> Result<()> {
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating --output-dir {}", dir.display()))?;
        for (i, a) in result.attestations.iter().enumerate() {
            let name = get::file_name(i, a, emit);
            let path = dir.join(&name);
            // `file_name` builds names from a safe character set; checked again so a future change
            // cannot make a name leave the directory.
            if Path::new(&name).components().count() != 1 || path.parent() != Some(dir.as_path()) {
                bail!("refusing to write {name:?}: not a plain file name");
            }
            let bytes = a.emit(emit)?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .with_context(|| format!("creating {} (existing files are never overwritten)", path.display()))?;
            file.write_all(&bytes).with_context(|| format!("writing {}", path.display()))?;
            crate::commands::print_text(&format!("{}\n", path.display()))?;
        }
        return Ok(());
    }
    let bytes = if args.all {
        let items = result.attestations.iter().map(|a| item(a, emit)).collect::<Result<Vec<_>>>()?;
        let mut b = serde_json::to_vec_pretty(&items)?;
        b.push(b'\n');
        b
    } else {
        match result.attestation() {
            Some(a) => a.emit(emit)?,
            None => return Ok(()),
        }
    };
    match &args.output {
        Some(path) => std::fs::write(path, &bytes).with_context(|| format!("writing --output {}", path.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()?;
            Ok(())
        }
    }
}

/// One element of the `--all` JSON array (schemas/get-all.schema.json).
fn item(a: &Attestation, emit: Emit) -> Result<Value> {
    let bytes = a.emit(emit)?;
    let (content, encoding) = match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) if a.emits_json(emit) => (v, "json"),
        _ => match String::from_utf8(bytes) {
            Ok(text) => (Value::String(text), "utf-8"),
            Err(e) => (Value::String(att2ref::model::dsse::encode_base64(e.as_bytes())), "base64"),
        },
    };
    Ok(json!({
        "predicateType": a.predicate_type,
        "source": a.source,
        "created": a.created,
        "contentHint": a.hint,
        "verified": a.is_verified(),
        "verification": a.verification,
        "emit": emit.as_str(),
        "contentEncoding": encoding,
        "content": content,
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatsReport<'a> {
    /// Where the answer came from: `referrer`, `legacy`, or `none`.
    answered_by: &'static str,
    /// HTTP requests (auth and retries included); `None` for an OCI layout.
    requests: Option<u64>,
    retries: Option<u64>,
    /// Response body bytes received.
    bytes_downloaded: Option<u64>,
    /// What the library read, by kind.
    read: &'a GetStats,
    /// What the legacy `.att` path would have cost, when it was not taken.
    legacy_would_cost: Option<LegacyCost>,
}

fn print_stats(
    format: Format,
    result: &GetResult,
    counted: Option<ClientStats>,
    would: Option<LegacyCost>,
) -> Result<()> {
    let answered_by = match result.attestation().map(|a| &a.source) {
        Some(get::AnswerSource::Referrer { .. }) => "referrer",
        Some(get::AnswerSource::Legacy { .. }) => "legacy",
        None => "none",
    };
    let report = StatsReport {
        answered_by,
        requests: counted.map(|c| c.requests),
        retries: counted.map(|c| c.retries),
        bytes_downloaded: counted.map(|c| c.bytes_downloaded),
        read: &result.stats,
        legacy_would_cost: would,
    };
    let text = match format {
        Format::Json => serde_json::to_string(&report)?,
        Format::Text => stats_text(&report),
    };
    eprintln!("{text}");
    Ok(())
}

fn stats_text(r: &StatsReport<'_>) -> String {
    let s = r.read;
    let mut out = format!("stats: answered by {}", r.answered_by);
    if let (Some(req), Some(bytes)) = (r.requests, r.bytes_downloaded) {
        out.push_str(&format!("; {req} requests, {bytes} bytes downloaded"));
    }
    out.push_str(&format!(
        "\nstats: referrers ({}): {} listed, {} annotated, {} skipped unread, {} unannotated ({} fetched)",
        s.discovery,
        s.referrers_listed,
        s.referrers_annotated,
        s.referrers_skipped,
        s.referrers_unannotated,
        s.referrers_unannotated_fetched
    ));
    out.push_str(&format!(
        "\nstats: read {} manifests ({} bytes), {} blobs ({} bytes)",
        s.manifests_read, s.manifest_bytes, s.blobs_read, s.blob_bytes
    ));
    match &s.legacy {
        Some(l) if l.found => out.push_str(&format!(
            "\nstats: legacy .att: read {} of {} layers ({} of {} bytes); {} read only to learn their type (no predicateType annotation)",
            l.layers_read, l.layers, l.bytes_read, l.layers_bytes, l.layers_read_to_learn_type
        )),
        Some(_) => out.push_str("\nstats: legacy .att: none"),
        None => {}
    }
    for p in s.legacy.iter().flat_map(|l| &l.prefixes) {
        let named = match (&p.predicate_type, &p.hint) {
            (Some(t), Some(h)) => format!("{t}, looks like {h}"),
            (Some(t), None) => t.clone(),
            (None, Some(h)) => format!("looks like {h}"),
            (None, None) => "nothing decisive".to_owned(),
        };
        out.push_str(&format!(
            "\nstats: legacy layer {} ({} bytes): read its first {} bytes ({} arrived, {}); it says: {named}; {}",
            p.layer,
            p.size,
            p.bytes,
            p.transferred,
            match p.read {
                PrefixRead::Range => "Range honoured",
                PrefixRead::RangeIgnored => "Range ignored: the answer was cut and dropped",
                PrefixRead::Local => "local file",
                PrefixRead::Whole => "whole blob read",
            },
            p.outcome
        ));
    }
    if let Some(w) = &r.legacy_would_cost {
        out.push_str(&format!(
            "\nstats: the legacy .att would cost {} manifest bytes + up to {} bytes of {} layers ({} annotated); reading every layer, as other tools do, reads all of them",
            w.manifest_bytes, w.layers_bytes, w.layers, w.layers_annotated
        ));
    }
    out
}
