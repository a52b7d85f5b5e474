//! The legacy path: the `.att` manifest, then only the layers that may match.

use crate::error::Result;
use crate::limits::Limits;
use crate::model::cosign::TagKind;
use crate::model::digest::Digest;
use crate::model::envelope_prefix::guess_envelope_prefix;
use crate::model::intoto::Statement;
use crate::model::media_type::annotations as ann;
use crate::model::oci::Descriptor;
use crate::model::predicate::{predicate_outline, unwrap_cosign_data};
use crate::model::time::{format_unix, parse_rfc3339};
use crate::read::legacy::{self, LayerContent, PREFIX_BYTES};
use crate::store::Repository;
use crate::verification::SignedEntity;

use super::attestation::{AnswerSource, Attestation};
use super::engine::Run;
use super::select::{PrefixVerdict, judge_prefix, plan_legacy, wants_prefix};
use super::stats::{LegacyCost, LegacyStats, PrefixStats};

pub(super) async fn search<R: Repository>(run: &mut Run<'_, R>) -> Result<()> {
    let Some(manifest) = legacy::fetch_manifest(run.repo, &run.image, TagKind::Attestation, run.limits()).await? else {
        run.stats.legacy = Some(LegacyStats::default());
        return Ok(());
    };
    run.stats.manifests_read += 1;
    run.stats.manifest_bytes += manifest.raw.bytes.len() as u64;
    let plan = plan_legacy(manifest.layers(), &run.query());
    let mut stats = LegacyStats {
        found: true,
        layers: manifest.layers().len(),
        layers_bytes: manifest.layers_size(),
        layers_annotated: plan.annotated,
        ..LegacyStats::default()
    };
    let to_read = learn_from_prefixes(run, manifest.layers(), &plan.read, &mut stats).await?;
    let first_new = run.accepted.len();
    for &index in &to_read {
        let descriptor = &manifest.layers()[index];
        let source = AnswerSource::Legacy {
            manifest: manifest.raw.digest.clone(),
            tag: manifest.tag.clone(),
            layer: index,
            blob: descriptor.digest.clone(),
        };
        let layer = match legacy::read_layer(run.repo, &manifest, index, run.limits()).await {
            Ok(l) => l,
            Err(e) => {
                run.unreadable(source, e)?;
                continue;
            }
        };
        stats.layers_read += 1;
        stats.bytes_read += descriptor.size;
        if layer.annotations.predicate_type.is_none() {
            stats.layers_read_to_learn_type += 1;
        }
        let LayerContent::Attestation(att) = layer.content else {
            continue;
        };
        let (bytes, envelope, statement) = att.into_parts();
        let created = match &layer.annotations.bundle {
            Some(Ok(b)) => format_unix(b.payload.integrated_time).ok(),
            _ => signed_timestamp(&statement),
        };
        let candidate = Attestation {
            source,
            predicate_type: statement.predicate_type.clone(),
            created,
            hint: String::new(),
            verification: None,
            statement,
            envelope,
            envelope_bytes: Some(bytes.clone()),
            bundle_bytes: None,
        };
        let entity = SignedEntity::legacy_attestation(bytes.to_vec(), layer.annotations);
        if run.consider(candidate, entity).await? && plan.ordered && run.done() {
            break;
        }
    }
    run.stats.blobs_read += stats.layers_read;
    run.stats.blob_bytes += stats.bytes_read + stats.prefix_bytes;
    run.stats.legacy = Some(stats);
    if !run.options.all && run.accepted.len() > first_new + 1 {
        keep_newest(&mut run.accepted, first_new);
    }
    Ok(())
}

/// Of the layers `candidates`, those to read whole: large layers whose type or hint the manifest leaves open
/// are first read only as far as their start says what they are, and left unread when it names something
/// else. The start is unsigned and unchecked: it only saves reads (docs/FORMATS.md).
async fn learn_from_prefixes<R: Repository>(
    run: &mut Run<'_, R>,
    layers: &[Descriptor],
    candidates: &[usize],
    stats: &mut LegacyStats,
) -> Result<Vec<usize>> {
    let query = run.query();
    let mut to_read = Vec::with_capacity(candidates.len());
    for &index in candidates {
        let layer = &layers[index];
        // Only the type annotation matters here: the whole read parses the others.
        let annotated = layer.annotation(ann::COSIGN_PREDICATE_TYPE);
        // A layer over the cap is refused whole, as without prefixes (never glimpsed past the cap).
        if layer.size > run.limits().max_blob_bytes || !wants_prefix(layer, annotated, &query) {
            to_read.push(index);
            continue;
        }
        let prefix = match run.repo.get_blob_prefix(layer, PREFIX_BYTES).await {
            Ok(p) => p,
            // The prefix only saves bytes: any answer but a denial, a throttle or a dead network is
            // followed by the whole read, which words what is wrong (a registry refusing `Range` with 416 or
            // 501, bad data, a missing blob).
            Err(e) if !e.kind().is_access_failure() => {
                to_read.push(index);
                continue;
            }
            Err(e) => return Err(e),
        };
        let guess = guess_envelope_prefix(&prefix.bytes, prefix.whole);
        let verdict = judge_prefix(&guess, &query);
        stats.layers_read_partially += 1;
        stats.prefix_bytes += prefix.transferred;
        let outcome = match &verdict {
            PrefixVerdict::Read => {
                to_read.push(index);
                "read-whole".to_owned()
            }
            PrefixVerdict::Skip(why) => {
                stats.layers_skipped_by_prefix += 1;
                format!("skipped: {why}")
            }
        };
        stats.prefixes.push(PrefixStats {
            layer: index,
            blob: layer.digest.clone(),
            size: layer.size,
            bytes: prefix.bytes.len() as u64,
            transferred: prefix.transferred,
            read: prefix.read,
            predicate_type: guess.predicate_type,
            hint: guess.hint.map(|h| h.id()),
            outcome,
        });
    }
    Ok(to_read)
}

/// The signed `Timestamp` of cosign's custom wrapper (RFC 3339), the only signing time inside the
/// statement of a legacy attestation made without a log.
fn signed_timestamp(statement: &Statement) -> Option<String> {
    // The outline, as `migrate` reads it for the created time: the same wrapper, the same answer.
    let predicate = predicate_outline(statement)?;
    let wrapped = unwrap_cosign_data(&predicate)?;
    wrapped.timestamp.filter(|t| parse_rfc3339(t).is_ok()).map(str::to_owned)
}

/// Keep only the newest of `accepted[from..]`: by creation time, then by position (cosign appends).
fn keep_newest(accepted: &mut Vec<Attestation>, from: usize) {
    let key = |a: &Attestation| {
        let time = a.created.as_deref().and_then(|c| parse_rfc3339(c).ok());
        let layer = match &a.source {
            AnswerSource::Legacy { layer, .. } => *layer,
            AnswerSource::Referrer { .. } => 0,
        };
        (time, layer)
    };
    let newest = accepted[from..].iter().enumerate().max_by_key(|(_, a)| key(a)).map(|(i, _)| from + i);
    if let Some(n) = newest {
        let chosen = accepted.swap_remove(n);
        accepted.truncate(from);
        accepted.push(chosen);
    }
}

/// What reading the legacy `.att` of `image` costs: its manifest (one small request, made now) and the
/// declared sizes of its layers. `None` when there is no `.att`.
pub async fn legacy_cost<R: Repository>(repo: &R, image: &Digest, limits: &Limits) -> Result<Option<LegacyCost>> {
    let Some(manifest) = legacy::fetch_manifest(repo, image, TagKind::Attestation, limits).await? else {
        return Ok(None);
    };
    Ok(Some(LegacyCost {
        manifest_bytes: manifest.raw.bytes.len() as u64,
        layers: manifest.layers().len(),
        layers_bytes: manifest.layers_size(),
        layers_annotated: manifest
            .layers()
            .iter()
            .filter(|l| l.annotation(ann::COSIGN_PREDICATE_TYPE).is_some())
            .count(),
    }))
}
