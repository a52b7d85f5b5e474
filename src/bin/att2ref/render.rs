//! Human-readable rendering of reports.

use std::fmt::Write as _;

use att2ref::inspect::report::{
    ImageReport, InspectReport, LegacyArtifact, LegacyLayerReport, ReferrerReport, ReferrersReport,
};
use att2ref::probe::report::ObjectKind;

/// Render an inspection report as one tree per image digest.
pub fn inspect_tree(report: &InspectReport) -> String {
    let mut out = String::new();
    for image in &report.images {
        image_tree(&mut out, image, "");
        out.push('\n');
    }
    if report.images.is_empty() && report.errors.is_empty() {
        out.push_str("nothing found\n");
    }
    out
}

/// One line (or subtree) under an image: writes itself given the indent and whether it is last.
type Item<'a> = Box<dyn Fn(&mut String, &str, bool) + 'a>;

fn image_tree(out: &mut String, image: &ImageReport, indent: &str) {
    let subject = if image.subject.present {
        let kind = image.subject.kind.as_deref().unwrap_or("manifest");
        format!("{kind}, {}", size(image.subject.size.unwrap_or(0)))
    } else {
        "subject manifest ABSENT: orphaned attachments".to_owned()
    };
    let platform = image.platform.as_deref().map(|p| format!(" [{p}]")).unwrap_or_default();
    let tags = if image.tags.is_empty() { String::new() } else { format!(" (tags: {})", image.tags.join(", ")) };
    let _ = writeln!(out, "{indent}{}{platform}{tags} ({subject})", image.reference);

    let mut items: Vec<Item<'_>> = Vec::new();
    if let Some(a) = &image.legacy.signatures {
        items.push(Box::new(move |o, p, last| legacy(o, p, last, "legacy signatures", a)));
    }
    if let Some(a) = &image.legacy.attestations {
        items.push(Box::new(move |o, p, last| legacy(o, p, last, "legacy attestations", a)));
    }
    if let Some(a) = &image.legacy.sboms {
        items.push(Box::new(move |o, p, last| legacy(o, p, last, "legacy SBOMs", a)));
    }
    items.push(Box::new(|o, p, last| referrers(o, p, last, &image.referrers)));
    for b in &image.buildkit_attestations {
        items.push(Box::new(move |o, p, last| {
            let _ = writeln!(
                o,
                "{p}{} BuildKit attestation manifest {} ({}, unsigned): {}",
                branch(last),
                b.digest.short(),
                size(b.layers_size),
                b.predicate_types.join(", ")
            );
        }));
    }
    for a in &image.anomalies {
        items.push(Box::new(move |o, p, last| {
            let _ = writeln!(o, "{p}{} anomaly [{}]: {}", branch(last), a.code, a.message);
        }));
    }
    let n = items.len() + image.children.len();
    for (i, item) in items.iter().enumerate() {
        item(out, indent, i + 1 == n);
    }
    for (j, child) in image.children.iter().enumerate() {
        let last = items.len() + j + 1 == n;
        let _ = write!(out, "{indent}{} ", branch(last));
        let child_indent = format!("{indent}{}", stem(last));
        let mut sub = String::new();
        image_tree(&mut sub, child, &child_indent);
        out.push_str(sub.trim_start_matches(child_indent.as_str()));
    }
}

fn legacy(out: &mut String, indent: &str, last: bool, what: &str, a: &LegacyArtifact) {
    let created = a.config_created.as_deref().map(|c| format!(", created {c}")).unwrap_or_default();
    let _ = writeln!(
        out,
        "{indent}{} {what}: {} -> {} ({} layer{}, {}{created})",
        branch(last),
        a.tag,
        a.digest.short(),
        a.layers.len(),
        if a.layers.len() == 1 { "" } else { "s" },
        size(a.layers_size),
    );
    let sub = format!("{indent}{}", stem(last));
    for (i, layer) in a.layers.iter().enumerate() {
        let _ = writeln!(out, "{sub}{} {}", branch(i + 1 == a.layers.len()), legacy_layer(layer));
    }
}

fn legacy_layer(l: &LegacyLayerReport) -> String {
    let mut s = format!("[{}] ", l.index);
    match (&l.predicate_type, l.content.as_str()) {
        (Some(p), _) => s.push_str(p),
        (None, "simple-signing") => s.push_str("simple signing"),
        (None, other) => s.push_str(other),
    }
    let _ = write!(s, "  {}", size(l.size));
    let signer = match (&l.signer[..], &l.certificate_identity) {
        ("certificate", Some(id)) => format!("certificate ({id})"),
        (signer, _) => signer.to_owned(),
    };
    let _ = write!(s, "  signer: {signer}");
    if l.signatures != 1 && l.read != "prefix" {
        let _ = write!(s, " x{}", l.signatures);
    }
    match &l.log_entry {
        Some(e) => {
            let _ = write!(s, "  log: {} #{} at {}", e.kind, e.log_index, e.integrated_time);
        }
        None => s.push_str("  log: none"),
    }
    if l.rfc3161_timestamp {
        s.push_str("  rfc3161: yes");
    }
    if l.subject_matches == Some(false) {
        s.push_str("  SUBJECT MISMATCH");
    }
    if let Some(h) = &l.hint {
        let from = if h.from_prefix { ", from a prefix" } else { "" };
        let _ = write!(s, "  hint: {} (unsigned{from})", h.label);
    }
    if let Some(bytes) = l.prefix_bytes {
        let _ = write!(s, "  read: first {bytes} bytes (--full reads and checks all)");
    }
    s
}

fn referrers(out: &mut String, indent: &str, last: bool, r: &ReferrersReport) {
    let how = match r.discovery.as_str() {
        "api" => "referrers API",
        "unusable" => "none can be listed on this registry: see the anomaly",
        _ => "referrers tag schema",
    };
    if r.entries.is_empty() {
        let _ = writeln!(out, "{indent}{} referrers ({how}): none", branch(last));
        return;
    }
    let _ = writeln!(out, "{indent}{} referrers ({how}): {}", branch(last), r.entries.len());
    let sub = format!("{indent}{}", stem(last));
    for (i, e) in r.entries.iter().enumerate() {
        let _ = writeln!(out, "{sub}{} {}", branch(i + 1 == r.entries.len()), referrer(e));
    }
}

fn referrer(e: &ReferrerReport) -> String {
    let mut s = format!("{} {}", e.digest.short(), e.format);
    if let Some(v) = &e.bundle_version {
        let _ = write!(s, " {v}");
    }
    if let Some(p) = &e.predicate_type {
        let _ = write!(s, "  {p}");
    } else if let Some(t) = &e.artifact_type {
        let _ = write!(s, "  {t}");
    }
    let _ = write!(s, "  {}", size(e.layers_size));
    if let Some(signer) = &e.signer {
        let _ = write!(s, "  signer: {signer}");
    }
    if let Some(n) = e.log_entries {
        let proofs = match e.inclusion_proofs {
            Some(true) if n > 0 => ", with inclusion proofs",
            Some(false) if n > 0 => ", NO inclusion proof",
            _ => "",
        };
        let _ = write!(s, "  log entries: {n}{proofs}");
    }
    if let Some(w) = &e.writer_hint {
        let _ = write!(s, "  written by: {w}?");
    }
    if let Some(h) = &e.hint {
        let _ = write!(s, "  hint: {} (unsigned)", h.label);
    }
    s
}

fn branch(last: bool) -> &'static str {
    if last { "└──" } else { "├──" }
}

fn stem(last: bool) -> &'static str {
    if last { "    " } else { "│   " }
}

/// Bytes for people: exact below 10 KiB, otherwise one decimal.
pub fn size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 10 * 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {} ({n} B)", UNITS[unit])
}

/// Render a verification report as one table per image.
pub fn verify_table(report: &att2ref::verify::report::VerifyReport) -> String {
    use att2ref::verification::{LogCheck, Signer};
    let mut out = String::new();
    for image in &report.images {
        let _ = writeln!(out, "{}", image.reference);
        let mut rows = vec![[
            "WHERE".to_owned(),
            "PREDICATE TYPE".to_owned(),
            "RESULT".to_owned(),
            "SIGNER".to_owned(),
            "LOG".to_owned(),
        ]];
        for r in &image.results {
            let (result, signer, log) = match (&r.verification, &r.failure) {
                (Some(v), _) => {
                    let signer = match &v.signer {
                        Signer::Key { key_id } => format!("key {key_id}"),
                        Signer::Certificate { identity, issuer, .. } => format!("{identity} ({issuer})"),
                    };
                    let log = match &v.log {
                        LogCheck::Skipped => "not checked (--insecure-ignore-tlog)".to_owned(),
                        LogCheck::Verified { entries } => entries
                            .iter()
                            .map(|e| {
                                format!("{} #{}{}", e.kind, e.log_index, if e.proof.is_some() { " +proof" } else { "" })
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                    };
                    ("verified".to_owned(), signer, log)
                }
                (None, Some(f)) => (format!("FAILED: {}", f.reason), "-".to_owned(), "-".to_owned()),
                (None, None) => ("?".to_owned(), "-".to_owned(), "-".to_owned()),
            };
            rows.push([
                r.location.to_string(),
                r.predicate_type.clone().unwrap_or_else(|| "(signature)".into()),
                result,
                signer,
                log,
            ]);
        }
        if rows.len() == 1 {
            rows.clear();
        }
        let widths: Vec<usize> = (0..5).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        for row in &rows {
            let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            let _ = writeln!(out, "  {}", line.join("  ").trim_end());
        }
        for r in image.results.iter().filter(|r| !r.verified) {
            if let Some(f) = &r.failure {
                let _ = writeln!(out, "  {}: {}", r.location, f.message);
            }
        }
        for s in &image.skipped {
            let _ = writeln!(out, "  skipped {}: {}", s.location, s.reason);
        }
        let _ = writeln!(out, "  {} verified, {} failed", image.results.len() - image.failed(), image.failed());
    }
    out
}

/// Render a probe report as one table of facts (and one of the write test's objects).
pub fn probe_table(report: &att2ref::probe::ProbeReport) -> String {
    use att2ref::probe::report::Fact;
    fn word<V: serde::Serialize>(v: &V) -> String {
        serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| "?".into())
    }
    fn row<V: serde::Serialize>(rows: &mut Vec<[String; 4]>, name: &str, fact: &Fact<V>) {
        let status = match (&fact.status, &fact.code) {
            (Some(s), Some(c)) => format!("{s} {c}"),
            (Some(s), None) => s.to_string(),
            _ => "-".to_owned(),
        };
        rows.push([name.to_owned(), word(&fact.value), status, fact.detail.clone()]);
    }
    let mut out = String::new();
    let target = match &report.repository {
        Some(r) => format!("{}/{r}", report.registry),
        None => report.registry.clone(),
    };
    let _ = writeln!(out, "{target}");
    let mut rows = vec![["FACT".to_owned(), "VALUE".to_owned(), "STATUS".to_owned(), "DETAIL".to_owned()]];
    let api = &report.api;
    let access = if api.granted { "granted" } else { "DENIED" };
    rows.push([
        "/v2/".to_owned(),
        access.to_owned(),
        api.status.to_string(),
        format!("auth {}, credentials {}: {}", word(&api.auth_scheme), word(&api.credentials), api.detail),
    ]);
    row(&mut rows, "catalog", &report.catalog);
    row(&mut rows, "catalog paging", &report.catalog_paging);
    if let Some(f) = &report.tag_paging {
        row(&mut rows, "tag paging", f);
    }
    if let Some(f) = &report.referrers_api {
        row(&mut rows, "referrers API", f);
    }
    if let Some(f) = &report.artifact_type_filter {
        row(&mut rows, "artifactType filter", f);
    }
    if let Some(f) = &report.referrers_paging {
        row(&mut rows, "referrers paging", f);
    }
    if let Some(f) = &report.referrers_tag {
        row(&mut rows, "referrers tag", f);
    }
    if let Some(f) = &report.range_requests {
        row(&mut rows, "Range on blobs", f);
    }
    let limits = &report.size_limits;
    let known: Vec<String> = [("manifest", &limits.manifest_bytes), ("layer", &limits.layer_bytes)]
        .iter()
        .filter_map(|(what, l)| l.as_ref().map(|l| format!("{what} {} ({})", size(l.bytes), l.source)))
        .collect();
    let value = if known.is_empty() { "not known".to_owned() } else { "documented".to_owned() };
    let detail = if known.is_empty() { limits.note.clone() } else { format!("{}; {}", known.join(", "), limits.note) };
    rows.push(["size limits".to_owned(), value, "-".to_owned(), detail]);
    if let Some(w) = &report.write_test {
        row(&mut rows, "referrer listed", &w.referrer_listed);
        row(&mut rows, "OCI-Subject", &w.oci_subject);
        row(&mut rows, "referrers tag written", &w.referrers_tag);
        row(&mut rows, "index as subject", &w.index_as_subject);
        row(&mut rows, "If-Match", &w.if_match);
        row(&mut rows, "delete order", &w.delete_order);
        row(&mut rows, "blobs", &w.cleanup.blobs);
        let cleanup = if w.cleanup.complete { "complete" } else { "INCOMPLETE" };
        let left = w.cleanup.objects.iter().filter(|o| !o.removed && o.kind != ObjectKind::Blob).count();
        rows.push([
            "cleanup".to_owned(),
            cleanup.to_owned(),
            "-".to_owned(),
            format!("{} objects written, {left} manifests or tags left", w.cleanup.objects.len()),
        ]);
    }
    table(&mut out, &rows);
    if let Some(w) = &report.write_test {
        let _ = writeln!(out, "\nwrite test {} (image {}):", w.tag, w.image.as_deref().unwrap_or("not pushed"));
        let mut rows = vec![["OBJECT".to_owned(), "REFERENCE".to_owned(), "STATUS".to_owned(), "RESULT".to_owned()]];
        for o in &w.cleanup.objects {
            let status = match (&o.status, &o.code) {
                (Some(s), Some(c)) => format!("{s} {c}"),
                (Some(s), None) => s.to_string(),
                _ => "-".to_owned(),
            };
            let result = if o.removed { o.detail.clone() } else { format!("LEFT: {}", o.detail) };
            rows.push([word(&o.kind), o.reference.clone(), status, result]);
        }
        table(&mut out, &rows);
    }
    out
}

fn table(out: &mut String, rows: &[[String; 4]]) {
    let widths: Vec<usize> = (0..3).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for r in rows {
        let _ = writeln!(
            out,
            "  {:<w0$}  {:<w1$}  {:<w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
}
