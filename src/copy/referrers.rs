//! Copying the referrers a subject already has in the source (any artifact type, and the referrers of
//! those referrers), each as it is, listed in the destination the way the destination lists referrers:
//! by its referrers API (the registry indexes what it accepts) or in the referrers tag schema (merged
//! into whatever the index holds, other tools' entries kept).

use serde::Serialize;

use super::transfer::{Mount, TransferStats, copy_manifest, fetch};
use crate::error::Result;
use crate::limits::Limits;
use crate::model::digest::Digest;
use crate::model::media_type as mt;
use crate::model::oci::{Descriptor, Manifest};
use crate::model::predicate::predicate_matches;
use crate::model::referrers_index::referrer_entry;
use crate::read::referrers::read_referrer;
use crate::store::facts::refuses_index_subjects;
use crate::store::tag_schema::{self, IndexOptions};
use crate::store::{Learnt, Repository};

/// Referrers of referrers followed this deep (a signature of an SBOM of an image is two levels).
pub const MAX_DEPTH: usize = 4;

/// Which referrers are copied.
#[derive(Clone, Debug, Default)]
pub struct ReferrerFilter {
    /// Only referrers of this artifact type (as listed).
    pub artifact_type: Option<String>,
    /// Only attestations whose SIGNED predicate type matches (a cosign short name or a URI, as `get
    /// --type`): the content is read to know it, and referrers that hold no statement are left behind.
    pub predicate_type: Option<String>,
}

/// A referrer copied (or found already listed) in the destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CopiedReferrer {
    /// The subject it refers to.
    pub subject: Digest,
    /// Its manifest digest.
    pub digest: Digest,
    /// Its artifact type, as listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Whether the destination already listed it.
    pub existed: bool,
}

/// Something of the source that this copy did not carry over, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeftBehind {
    /// What: a referrer digest, a legacy tag, an attestation's predicate type.
    pub item: String,
    /// Why.
    pub reason: String,
}

/// What copying the referrers of one image did.
#[derive(Debug, Default)]
pub struct ReferrerCopy {
    /// Referrers now listed in the destination, each with its subject.
    pub copied: Vec<CopiedReferrer>,
    /// What the filters left behind.
    pub left_behind: Vec<LeftBehind>,
    /// Manifests and blobs moved.
    pub stats: TransferStats,
    /// Subjects whose tag-schema index this copy wrote to, with the referrers it listed there (for the
    /// settle pass).
    pub listed_in_index: Vec<(Digest, Vec<Digest>)>,
}

/// How referrers are copied.
#[derive(Clone, Copy, Debug)]
pub struct ReferrerCopySettings<'a> {
    /// Which referrers of the first level are copied.
    pub filter: &'a ReferrerFilter,
    /// Caps for what is read to apply the filter.
    pub limits: &'a Limits,
    /// Where blobs may be mounted from.
    pub mount: Mount<'a>,
    /// How the destination's tag-schema index is updated.
    pub index: IndexOptions,
    /// How long to wait for a destination with the referrers API to list what it accepted.
    pub listing_wait: std::time::Duration,
}

/// Copy the referrers of `subject` (and theirs, down to [`MAX_DEPTH`]) from `source` to `destination`.
pub async fn copy_referrers<S: Repository, D: Repository>(
    source: &S,
    destination: &D,
    subject: &Digest,
    settings: ReferrerCopySettings<'_>,
) -> Result<ReferrerCopy> {
    let mut out = ReferrerCopy::default();
    let mut level = vec![subject.clone()];
    let mut seen = vec![subject.clone()];
    for depth in 0..MAX_DEPTH {
        let mut next = Vec::new();
        for subject in &level {
            // Only the first level is filtered: what refers to a copied referrer (its signature, say)
            // belongs with it whatever its own type.
            let unfiltered = ReferrerFilter::default();
            let filter = if depth == 0 { settings.filter } else { &unfiltered };
            let copied = copy_level(source, destination, subject, filter, settings, &mut out).await?;
            next.extend(copied.into_iter().filter(|d| !seen.contains(d)));
        }
        seen.extend(next.iter().cloned());
        if next.is_empty() {
            level.clear();
            break;
        }
        level = next;
    }
    // The last level copied may have referrers of its own, deeper than this copies: named, not dropped
    // unseen.
    for subject in &level {
        // Only a report: a listing that fails here is named, and fails nothing that was copied.
        let listed = match source.referrers(subject, None).await {
            Ok(listing) => listing.descriptors,
            Err(e) => {
                out.left_behind.push(LeftBehind {
                    item: format!("referrers of {subject}"),
                    reason: format!("more than {MAX_DEPTH} levels below the image, and not listed: {e:#}"),
                });
                continue;
            }
        };
        for listed in listed.into_iter().filter(|l| !seen.contains(&l.digest)) {
            out.left_behind.push(LeftBehind {
                item: format!("referrer {}", listed.digest),
                reason: format!("more than {MAX_DEPTH} levels of referrers below the image (not copied)"),
            });
        }
    }
    Ok(out)
}

/// Copy the direct referrers of one subject; returns the digests now in the destination.
async fn copy_level<S: Repository, D: Repository>(
    source: &S,
    destination: &D,
    subject: &Digest,
    filter: &ReferrerFilter,
    settings: ReferrerCopySettings<'_>,
    out: &mut ReferrerCopy,
) -> Result<Vec<Digest>> {
    // Unfiltered: what the filter leaves out is reported as left behind, and a registry's filter would
    // leave it out unseen.
    let listing = source.referrers(subject, None).await?;
    if listing.descriptors.is_empty() {
        return Ok(Vec::new());
    }
    let there = destination.referrers(subject, None).await?;
    let tag_schema = there.from_tag_schema();
    let mut to_list = Vec::new();
    let mut done = Vec::new();
    for listed in &listing.descriptors {
        if let Some(reason) = left_out(source, subject, listed, filter, settings.limits).await? {
            out.left_behind.push(LeftBehind { item: format!("referrer {}", listed.digest), reason });
            continue;
        }
        let existed = there.descriptors.iter().any(|d| d.digest == listed.digest);
        let raw = match fetch(source, &listed.digest.to_string()).await {
            Ok(raw) => raw,
            // A dangling entry of the source's index (its manifest deleted since): nothing to carry.
            Err(e) if e.is_not_found() => {
                let reason = "listed in the source, but its manifest is not served there".to_owned();
                out.left_behind.push(LeftBehind { item: format!("referrer {}", listed.digest), reason });
                continue;
            }
            Err(e) => return Err(e),
        };
        out.stats.bytes_read += raw.bytes.len() as u64;
        // A listing is registry data: an entry whose manifest names no subject, or another one (a stale or
        // planted tag-schema entry), is no referrer of this subject. Copied, it would never be listed for
        // it in a destination that indexes referrers itself, and every run would wait for it and fail.
        let names = raw.manifest.subject().map(|s| &s.digest);
        if names != Some(subject) {
            let named = names.map_or("no subject".to_owned(), |d| format!("the subject {d}"));
            let reason = format!("listed in the source, but its manifest names {named}");
            out.left_behind.push(LeftBehind { item: format!("referrer {}", listed.digest), reason });
            continue;
        }
        // ECR stores no referrer whose subject is an image index (aws/containers-roadmap#2783): such a
        // referrer stays in the source, said, and the rest of the copy goes on. Learnt from the registry's
        // own 4xx answer, as `migrate` learns it; once learnt, the next ones are not attempted.
        let index_subject = raw.manifest.subject().is_some_and(|s| mt::is_index(&s.media_type));
        let refused = |why: &str| LeftBehind {
            item: format!("referrer {}", listed.digest),
            reason: format!("{} refuses referrers whose subject is an image index ({why})", destination.name()),
        };
        if index_subject && let Some(why) = destination.facts().index_subject_refused() {
            out.left_behind.push(refused(&format!("not attempted: an earlier one was refused: {why}")));
            continue;
        }
        match copy_manifest(source, destination, &raw, settings.mount).await {
            Ok(stats) => out.stats.add(&stats),
            Err(e) if index_subject && refuses_index_subjects(&e) => {
                destination.learn(Learnt::IndexSubjectRefused(e.to_string()));
                out.left_behind.push(refused(&e.to_string()));
                continue;
            }
            Err(e) => return Err(e),
        }
        if tag_schema && !existed {
            match &raw.manifest {
                Manifest::Image(m) => to_list.push(referrer_entry(&raw.descriptor(), m)),
                _ => to_list.push(listed.clone()),
            }
        }
        out.copied.push(CopiedReferrer {
            subject: subject.clone(),
            digest: listed.digest.clone(),
            artifact_type: listed.artifact_type.clone(),
            existed,
        });
        done.push(listed.digest.clone());
    }
    if !to_list.is_empty() {
        let stats = tag_schema::add_to_index(destination, subject, &to_list, settings.index).await?;
        out.stats.manifests_written += stats.manifests_written;
        out.stats.bytes_written += stats.bytes_written;
        out.listed_in_index.push((subject.clone(), to_list.iter().map(|d| d.digest.clone()).collect()));
    } else if !tag_schema {
        let new: Vec<&Digest> =
            out.copied.iter().filter(|c| &c.subject == subject && !c.existed).map(|c| &c.digest).collect();
        confirm_listed(destination, subject, &new, settings.listing_wait).await?;
    }
    Ok(done)
}

/// On a registry that indexes referrers itself, wait (up to `wait`) until its listing shows every referrer
/// it accepted: a copy is not done while a consumer cannot find what it copied (a listing can lag a
/// write: quay#6510; `OCI-Subject` can be sent without listing: sigstore-js#1183).
async fn confirm_listed<D: Repository>(
    destination: &D,
    subject: &Digest,
    digests: &[&Digest],
    wait: std::time::Duration,
) -> Result<()> {
    if digests.is_empty() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(100);
    loop {
        let listing = destination.referrers(subject, None).await?;
        let missing: Vec<String> = digests
            .iter()
            .filter(|d| !listing.descriptors.iter().any(|l| &&l.digest == *d))
            .map(|d| d.to_string())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= wait {
            return Err(crate::Error::new(
                crate::ErrorKind::Registry,
                format!(
                    "{} accepted referrer(s) {} of {subject} but does not list them after {:.0?}",
                    destination.name(),
                    missing.join(", "),
                    started.elapsed()
                ),
            ));
        }
        tokio::time::sleep(pause.min(wait.saturating_sub(started.elapsed()))).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(5));
    }
}

/// Why a listed referrer is not copied, if it is not.
async fn left_out<S: Repository>(
    source: &S,
    subject: &Digest,
    listed: &Descriptor,
    filter: &ReferrerFilter,
    limits: &Limits,
) -> Result<Option<String>> {
    // A registry that ignored the filter (no `OCI-Filters-Applied`) has it applied client-side, but a
    // listing is registry data: check again.
    if let Some(wanted) = &filter.artifact_type
        && listed.artifact_type.as_deref() != Some(wanted.as_str())
    {
        let actual = listed.artifact_type.as_deref().unwrap_or("none");
        return Ok(Some(format!("artifact type {actual} is not {wanted}")));
    }
    let Some(query) = &filter.predicate_type else {
        return Ok(None);
    };
    let referrer = read_referrer(source, subject, listed, true, limits).await?;
    if referrer.content.is_none() {
        return Ok(Some(format!("not an attestation (format {}): no signed predicate type", referrer.format.as_str())));
    }
    Ok(match referrer.predicate_type() {
        Some(t) if predicate_matches(query, t) => None,
        Some(t) => Some(format!("predicate type {t} is not {query}")),
        None => Some("a bundle without an in-toto statement: no predicate type".to_owned()),
    })
}
