//! `inspect`: everything attached to an image digest, legacy and new layouts side by side.
//!
//! Works from the digest: the subject manifest may be absent (an orphan) and everything attached to the
//! digest is still reported. Any problem reading an image's data (a layer whose bytes do not match its
//! digest, truncated JSON, a 401 on the referrers fallback tag) fails that image with an error naming it;
//! nothing partial is reported for it.

pub mod report;

mod layers;

use std::collections::{BTreeMap, BTreeSet};

use futures_util::stream::{self, StreamExt};

use crate::error::{Error, ErrorKind, Result};
use crate::limits::Limits;
use crate::model::cosign::TagKind;
use crate::model::digest::Digest;
use crate::model::envelope_prefix::guess_envelope_prefix;
use crate::model::oci::Manifest;
use crate::read::{legacy, referrers};
use crate::store::{ReferrersSource, Repository};

use report::{
    Anomaly, BuildkitAttestationReport, ImageError, ImageReport, InspectReport, LegacyArtifact, LegacyReport,
    ReferrersReport, SubjectInfo,
};

/// How to inspect.
#[derive(Clone, Debug)]
pub struct InspectOptions {
    /// Caps for everything read.
    pub limits: Limits,
    /// Fetch referrer layers (bundles, envelopes) to report their signed predicate type. On by default.
    pub read_referrer_content: bool,
    /// Images inspected at once with `--all-tags`.
    pub jobs: usize,
    /// Read and digest-check every legacy layer whole. Off by default: of an `.att` layer larger than
    /// [`READ_WHOLE_UP_TO`](crate::read::legacy::READ_WHOLE_UP_TO) only the start is read, which names its
    /// predicate type and content hint (reported with `read: prefix`; unchecked, for display).
    pub full: bool,
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions { limits: Limits::default(), read_referrer_content: true, jobs: 4, full: false }
    }
}

/// Children of an index are inspected this deep (an index of indexes is legal but rare).
const MAX_DEPTH: usize = 2;

/// Inspect one image given by tag or digest.
pub async fn inspect_image<R: Repository>(repo: &R, reference: &str, options: &InspectOptions) -> Result<ImageReport> {
    let digest = resolve(repo, reference).await?;
    inspect_digest(repo, &digest, options).await
}

/// Inspect whatever is attached to `digest`, whether or not its manifest still exists.
pub async fn inspect_digest<R: Repository>(repo: &R, digest: &Digest, options: &InspectOptions) -> Result<ImageReport> {
    let name = format!("{}@{digest}", repo.name());
    Box::pin(inspect_at(repo, digest, options, 0)).await.map_err(|e| e.context(format!("inspecting {name}")))
}

/// Inspect every tagged image of a repository, plus legacy attachments whose image is not tagged or is
/// gone (with the attachments kept in another repository: not tagged, but served here). Per-image
/// failures are collected in the report, never dropped.
pub async fn inspect_repository<R: Repository>(
    repo: &R,
    target: &str,
    options: &InspectOptions,
) -> Result<InspectReport> {
    let tags = repo.list_tags().await.map_err(|e| e.context(format!("listing tags of {}", repo.name())))?;
    let mut attached: BTreeSet<Digest> = BTreeSet::new();
    let mut plain: Vec<String> = Vec::new();
    for tag in tags {
        if let Some((digest, _)) = TagKind::parse_tag(&tag) {
            attached.insert(digest);
        } else if Digest::from_referrers_tag(&tag).is_some() {
            // Fallback indexes are read through their subject, never as images.
        } else {
            plain.push(tag);
        }
    }
    plain.sort();

    let mut report = InspectReport::new(target, repo.attachments_repository());
    let mut by_digest: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    let resolved: Vec<(String, Result<Digest>)> = stream::iter(plain)
        .map(|tag| async move {
            let r = resolve(repo, &tag).await;
            (tag, r)
        })
        .buffered(options.jobs.max(1))
        .collect()
        .await;
    for (tag, result) in resolved {
        match result {
            Ok(d) => by_digest.entry(d).or_default().push(tag),
            Err(e) => report.errors.push(ImageError::new(&format!("{}:{tag}", repo.name()), &e)),
        }
    }
    let mut order: Vec<(Digest, Vec<String>)> = by_digest.into_iter().collect();
    order.sort_by(|a, b| a.1.first().cmp(&b.1.first()));
    let tagged: Vec<Digest> = order.iter().map(|(d, _)| d.clone()).collect();
    let mut results = run_all(repo, &tagged, options).await;
    let mut seen: BTreeSet<Digest> = BTreeSet::new();
    for ((digest, tags), result) in order.into_iter().zip(results.drain(..)) {
        match result {
            Ok(mut image) => {
                image.tags = tags;
                collect_digests(&image, &mut seen);
                report.images.push(image);
            }
            Err(e) => {
                seen.insert(digest.clone());
                report.errors.push(ImageError::new(&format!("{}@{digest}", repo.name()), &e));
            }
        }
    }
    let orphans: Vec<Digest> = attached.into_iter().filter(|d| !seen.contains(d)).collect();
    // A shared attachments repository also holds the tags of other repositories' images and of its own:
    // those are not this repository's orphans.
    let apart = repo.attachments_repository().is_some();
    for (digest, result) in orphans.iter().zip(run_all(repo, &orphans, options).await) {
        match result {
            Ok(image) if apart && !image.subject.present => {}
            Ok(image) => report.images.push(image),
            Err(e) => report.errors.push(ImageError::new(&format!("{}@{digest}", repo.name()), &e)),
        }
    }
    Ok(report)
}

/// Inspect a single image into a full report, capturing its failure as a report error.
pub async fn inspect_one<R: Repository>(
    repo: &R,
    reference: &str,
    target: &str,
    options: &InspectOptions,
) -> InspectReport {
    let mut report = InspectReport::new(target, repo.attachments_repository());
    match inspect_image(repo, reference, options).await {
        Ok(image) => report.images.push(image),
        Err(e) => {
            report.errors.push(ImageError::new(&format!("{}{}{reference}", repo.name(), separator(reference)), &e))
        }
    }
    report
}

fn separator(reference: &str) -> &'static str {
    if reference.contains(':') { "@" } else { ":" }
}

async fn run_all<R: Repository>(repo: &R, digests: &[Digest], options: &InspectOptions) -> Vec<Result<ImageReport>> {
    stream::iter(digests).map(|d| inspect_digest(repo, d, options)).buffered(options.jobs.max(1)).collect().await
}

fn collect_digests(image: &ImageReport, seen: &mut BTreeSet<Digest>) {
    seen.insert(image.digest.clone());
    for child in &image.children {
        collect_digests(child, seen);
    }
}

/// Resolve a tag or digest to the digest of the manifest it names.
async fn resolve<R: Repository>(repo: &R, reference: &str) -> Result<Digest> {
    if let Ok(d) = reference.parse::<Digest>() {
        return Ok(d);
    }
    match repo.head_manifest(reference).await? {
        Some(desc) => Ok(desc.digest),
        None => Err(Error::new(ErrorKind::NotFound, format!("tag {reference:?} not found in {}", repo.name()))),
    }
}

async fn inspect_at<R: Repository>(
    repo: &R,
    digest: &Digest,
    options: &InspectOptions,
    depth: usize,
) -> Result<ImageReport> {
    let subject = repo.get_manifest(&digest.to_string()).await?;
    let mut anomalies = Vec::new();
    let subject_info = match &subject {
        Some(raw) => SubjectInfo {
            present: true,
            media_type: Some(raw.media_type.clone()),
            size: Some(raw.bytes.len() as u64),
            kind: Some(
                match raw.manifest {
                    Manifest::Image(_) => "image",
                    Manifest::Index(_) => "index",
                    Manifest::Artifact(_) => "artifact",
                }
                .into(),
            ),
        },
        None => {
            anomalies.push(Anomaly::new(
                "subject-missing",
                format!(
                    "no manifest {digest} in {}: everything below is attached to a digest that is gone (orphaned)",
                    repo.name()
                ),
            ));
            SubjectInfo { present: false, media_type: None, size: None, kind: None }
        }
    };

    let mut legacy_report = LegacyReport::default();
    for kind in [TagKind::Signature, TagKind::Attestation, TagKind::Sbom] {
        let Some(manifest) = legacy::fetch_manifest(repo, digest, kind, &options.limits).await? else {
            continue;
        };
        let (artifact, found) = legacy_artifact(repo, digest, &manifest, options).await?;
        anomalies.extend(found);
        match kind {
            TagKind::Signature => legacy_report.signatures = Some(artifact),
            TagKind::Attestation => legacy_report.attestations = Some(artifact),
            TagKind::Sbom => legacy_report.sboms = Some(artifact),
        }
    }

    let listing = match repo.referrers(digest, None).await {
        Ok(l) => Some(l),
        // The registry can hold no referrers (GitLab's fallback tag answers with the image itself): said
        // once, as an anomaly of the image; its legacy layout is still reported.
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            anomalies.push(Anomaly::new("referrers-unusable", format!("{e:#}")));
            None
        }
        Err(e) => return Err(e),
    };
    let (discovery, tag_schema_index) = match listing.as_ref().map(|l| &l.source) {
        Some(ReferrersSource::Api { .. }) => ("api", None),
        Some(ReferrersSource::TagSchema { tag, index }) => {
            ("tag-schema", index.as_ref().map(|i| format!("{tag} -> {}", i.digest)))
        }
        None => ("unusable", None),
    };
    let mut entries = Vec::new();
    for listed in listing.iter().flat_map(|l| &l.descriptors) {
        let r = match referrers::read_referrer(repo, digest, listed, options.read_referrer_content, &options.limits)
            .await
        {
            Ok(r) => r,
            // Content of the wrong shape (a plain statement typed as a DSSE referrer, as `oras attach` users
            // push) is another tool's artifact, not damage: the referrer is shown without it, with an
            // anomaly. Bytes that do not match their digest still fail the image.
            Err(e) if options.read_referrer_content && e.kind() == ErrorKind::InvalidFormat => {
                anomalies.push(Anomaly::new(
                    "unreadable-referrer-content",
                    format!("referrer {}: {e:#}", listed.digest.short()),
                ));
                referrers::read_referrer(repo, digest, listed, false, &options.limits).await?
            }
            Err(e) => return Err(e),
        };
        let (entry, found) = layers::referrer(digest, &r);
        anomalies.extend(found);
        entries.push(entry);
    }

    let mut children = Vec::new();
    let mut buildkit: BTreeMap<Digest, Vec<BuildkitAttestationReport>> = BTreeMap::new();
    if let Some(Manifest::Index(index)) = subject.as_ref().map(|s| &s.manifest) {
        for entry in &index.manifests {
            if referrers::is_buildkit_attestation(entry) {
                let b = referrers::read_buildkit_attestation(repo, entry).await?;
                let target = b.describes.clone().unwrap_or_else(|| digest.clone());
                buildkit.entry(target).or_default().push(BuildkitAttestationReport {
                    digest: b.descriptor.digest.clone(),
                    size: b.descriptor.size,
                    layers_size: match &b.raw.manifest {
                        Manifest::Image(m) => m.layers.iter().fold(0u64, |a, l| a.saturating_add(l.size)),
                        _ => 0,
                    },
                    predicate_types: b.predicate_types,
                });
            }
        }
        if index.manifests.len() > options.limits.max_index_entries {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "index {digest} lists {} manifests, more than the limit of {}",
                    index.manifests.len(),
                    options.limits.max_index_entries
                ),
            ));
        }
        if depth < MAX_DEPTH {
            // Each platform manifest once; an index naming itself is reported, not followed.
            let mut visited: BTreeSet<&Digest> = BTreeSet::new();
            for entry in index.manifests.iter().filter(|e| !referrers::is_buildkit_attestation(e)) {
                if &entry.digest == digest {
                    anomalies.push(Anomaly::new("index-lists-itself", format!("index {digest} lists itself")));
                    continue;
                }
                if !visited.insert(&entry.digest) {
                    anomalies.push(Anomaly::new(
                        "repeated-index-entry",
                        format!("index {digest} lists {} more than once", entry.digest.short()),
                    ));
                    continue;
                }
                let mut child = Box::pin(inspect_at(repo, &entry.digest, options, depth + 1))
                    .await
                    .map_err(|e| e.context(format!("platform manifest {}", entry.digest.short())))?;
                child.platform = entry.platform.as_ref().map(ToString::to_string);
                child.buildkit_attestations = buildkit.remove(&entry.digest).unwrap_or_default();
                children.push(child);
            }
        }
    }

    Ok(ImageReport {
        reference: format!("{}@{digest}", repo.name()),
        digest: digest.clone(),
        tags: Vec::new(),
        subject: subject_info,
        platform: None,
        legacy: legacy_report,
        referrers: ReferrersReport { discovery: discovery.into(), tag_schema_index, entries },
        buildkit_attestations: buildkit.into_values().flatten().collect(),
        children,
        anomalies,
    })
}

/// Report a large `.att` layer from its first bytes. `None` when they do not name its predicate type, or
/// could not be read as a prefix: the layer is then read whole, which also words what is wrong with it.
async fn layer_from_prefix<R: Repository>(
    repo: &R,
    image: &Digest,
    manifest: &legacy::LegacyManifest,
    index: usize,
) -> Result<Option<(report::LegacyLayerReport, Vec<Anomaly>)>> {
    let descriptor = &manifest.layers()[index];
    let prefix = match repo.get_blob_prefix(descriptor, legacy::PREFIX_BYTES).await {
        Ok(p) => p,
        // Only a denial, a throttle or a dead network would stop the whole read too.
        Err(e) if !e.kind().is_access_failure() => return Ok(None),
        Err(e) => return Err(e),
    };
    let guess = guess_envelope_prefix(&prefix.bytes, prefix.whole);
    if guess.predicate_type.is_none() {
        return Ok(None);
    }
    let bytes = prefix.bytes.len() as u64;
    Ok(Some(layers::legacy_layer_from_prefix(image, descriptor, index, &guess, bytes, &manifest.tag)))
}

async fn legacy_artifact<R: Repository>(
    repo: &R,
    image: &Digest,
    manifest: &legacy::LegacyManifest,
    options: &InspectOptions,
) -> Result<(LegacyArtifact, Vec<Anomaly>)> {
    let limits = &options.limits;
    let mut anomalies = Vec::new();
    let mut layer_reports = Vec::new();
    let mut seen = BTreeSet::new();
    for (index, descriptor) in manifest.layers().iter().enumerate() {
        if !seen.insert(descriptor.digest.clone()) {
            anomalies.push(Anomaly::new(
                "repeated-layer",
                format!("{} layer {index} repeats an earlier layer (repeated cosign attest/sign)", manifest.tag),
            ));
        }
        if !options.full
            && manifest.kind == TagKind::Attestation
            && descriptor.size > legacy::READ_WHOLE_UP_TO
            // A layer declared larger than the cap is refused whole, as with --full, not glimpsed.
            && descriptor.size <= limits.max_blob_bytes
            && let Some((report, found)) = layer_from_prefix(repo, image, manifest, index).await?
        {
            anomalies.extend(found);
            layer_reports.push(report);
            continue;
        }
        let layer = legacy::read_layer(repo, manifest, index, limits).await?;
        let (report, found) = layers::legacy_layer(image, &layer, &manifest.tag);
        anomalies.extend(found);
        layer_reports.push(report);
    }
    let config_created = legacy::config_created(repo, manifest).await?;
    Ok((
        LegacyArtifact {
            tag: manifest.tag.clone(),
            digest: manifest.raw.digest.clone(),
            media_type: manifest.raw.media_type.clone(),
            size: manifest.raw.bytes.len() as u64,
            layers_size: manifest.layers_size(),
            config_created,
            layers: layer_reports,
        },
        anomalies,
    ))
}
