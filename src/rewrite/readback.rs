//! Read-back: what a consumer would find after the write, checked before an image counts as migrated.
//!
//! Two depths ([`ReadBack`]):
//!
//! - [`ReadBack::Digest`] (the default). Each referrer must be listed by the same discovery a consumer
//!   uses (`Repository::referrers`: the API, else the tag schema); its manifest, fetched by digest, must
//!   come back byte-identical; and each of its layers (the bundle, or the reused DSSE envelope) must be
//!   present with the expected size, by `HEAD` (registries that send `Docker-Content-Digest` have it
//!   compared too). The blob is not downloaded again: its content was checked twice already — planning
//!   parsed and verified the exact bytes that were uploaded, under the same policy, and the registry
//!   checked them against their digest on upload (distribution refuses a blob that does not match
//!   `?digest=`); the manifest that names that digest is byte-identical. This keeps a migration's traffic
//!   at the minimum (each legacy blob read once, each bundle written once). On an OCI layout the blob is
//!   a local file, and hashing it is cheap: there it is checked against its digest
//!   ([`Repository::blob_state`]), so a same-size file of other bytes is caught.
//! - [`ReadBack::Full`]: additionally downloads every layer blob (digest-checked while it streams),
//!   parses it, checks it carries exactly the legacy layer's payload bytes, and verifies it again under
//!   the same policy. For registries whose storage is not trusted to keep what it acknowledged.
//!
//! Why the lighter default is safe: migrate deletes nothing, so a referrer that later turned out unreadable
//! loses no data — the legacy `.att` is still there and a rerun repairs the referrer. The one place where
//! a referrer's content decides that data goes away is `prune`, and it downloads and re-verifies every
//! referrer, byte for byte, before deleting the legacy manifest it replaces.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::limits::Limits;
use crate::model::bundle::Bundle;
use crate::model::cosign::LegacyLayerAnnotations;
use crate::model::digest::Digest;
use crate::model::dsse::Envelope;
use crate::model::media_type as mt;
use crate::model::oci::{Descriptor, Manifest};
use crate::store::{BlobState, Learnt, Repository};
use crate::verification::{SignedEntity, Verifier};

use super::plan::Pending;

/// How much of what was written is read back before an image counts as migrated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ReadBack {
    /// Listing, byte-identical manifest, and every layer blob present with its size (`HEAD`); the blob
    /// bytes themselves were verified before upload and digest-checked by the registry.
    #[default]
    Digest,
    /// Also download every layer blob and verify it again under the policy.
    Full,
}

/// What the caller has checked already since the last write, so read-back does not ask the store twice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// The subject's referrers were read through the consumer's discovery path (planning, or the
    /// tag-schema index update) and every pending one was listed.
    pub listing: bool,
    /// [`listed_intact`] found every manifest served and every layer blob intact.
    pub blobs: bool,
}

/// Check every pending referrer of `subject` as a consumer would see it, to the depth of `mode`, except
/// what `seen` says was just checked. Returns the bytes read.
#[allow(clippy::too_many_arguments)]
pub async fn read_back<R: Repository>(
    repo: &R,
    subject: &Digest,
    pending: &[Pending],
    verifier: &Arc<Verifier>,
    limits: &Limits,
    mode: ReadBack,
    seen: Seen,
    listing_wait: Duration,
) -> Result<u64> {
    if !seen.listing {
        wait_until_listed(repo, subject, pending, listing_wait).await?;
    }
    let checked = futures_util::future::try_join_all(
        pending.iter().map(|p| check_one(repo, subject, p, limits, mode, seen.blobs)),
    )
    .await?;
    let bytes_read = checked.iter().map(|(n, _)| n).sum();
    let checks: Vec<(Digest, SignedEntity)> = checked.into_iter().filter_map(|(_, c)| c).collect();
    if checks.is_empty() {
        return Ok(bytes_read);
    }
    let verifier = Arc::clone(verifier);
    let image = subject.clone();
    let failures = super::cpu::run("verifying what was read back", move || {
        checks
            .into_iter()
            .filter_map(|(digest, entity)| verifier.verify(&entity, &image).err().map(|f| format!("{digest}: {f}")))
            .collect::<Vec<_>>()
    })
    .await?;
    if !failures.is_empty() {
        return Err(Error::new(
            ErrorKind::VerificationFailed,
            format!("read-back of {subject}: written referrers do not verify: {}", failures.join("; ")),
        ));
    }
    Ok(bytes_read)
}

/// How long read-back waits for a listing on a host where one already never showed what was written.
const WAIT_ONCE_NEVER_SHOWN: Duration = Duration::from_secs(5);

/// List the subject's referrers until every pending one is there, for at most `wait`. A registry may
/// accept a referrer and list it only later: Quay served a cached listing for up to 60 s (quay#6510; a
/// signer that listed right after writing found nothing, tektoncd/chains#1691), and Artifact Registry's
/// listing lags (chainguard-dev/terraform-provider-cosign#581). A wait that ends is learnt for the host
/// and reported; one that does not fails the image, which is safe: nothing is deleted by `migrate`, and
/// `prune` removes a legacy `.att` only once a listing shows its replacement.
async fn wait_until_listed<R: Repository>(
    repo: &R,
    subject: &Digest,
    pending: &[Pending],
    wait: Duration,
) -> Result<()> {
    // A host whose listing never showed a write within the whole wait, and never showed one late, is not
    // waited for in full again: a batch there would otherwise spend the whole wait on every image.
    let facts = repo.facts();
    let wait = if facts.listing_never_showed.is_some() && facts.listing_lag.is_none() {
        wait.min(WAIT_ONCE_NEVER_SHOWN)
    } else {
        wait
    };
    let started = Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        let listing = repo.referrers(subject, None).await?;
        let missing: Vec<String> = pending
            .iter()
            .map(|p| &p.referrer.manifest.digest)
            .filter(|d| !listing.descriptors.iter().any(|l| &l.digest == *d))
            .map(|d| d.to_string())
            .collect();
        let waited = started.elapsed();
        if missing.is_empty() {
            if pause > Duration::from_millis(250) {
                repo.learn(Learnt::ListingLagged(waited));
            }
            return Ok(());
        }
        if waited >= wait {
            repo.learn(Learnt::ListingNeverShowed(waited));
            return Err(Error::new(
                ErrorKind::VerificationFailed,
                format!(
                    "read-back of {subject}: the registry accepted referrer {} but its listing (read through the \
                     {}) does not show it after {:.1} s: the listing lags or is served from a cache (Quay: up to \
                     60 s, quay#6510); the legacy .att is untouched and prune keeps it until a listing shows its \
                     replacement; run again later, or wait longer with --listing-wait",
                    missing.join(", "),
                    listing.source_name(),
                    waited.as_secs_f64()
                ),
            ));
        }
        tokio::time::sleep(pause.min(wait - waited)).await;
        pause = (pause * 2).min(Duration::from_secs(8));
    }
}

/// One referrer: its manifest byte-identical, its layers present (or, in full, downloaded and checked
/// against the legacy payload). Returns the bytes read and, in full, the entity still to verify.
async fn check_one<R: Repository>(
    repo: &R,
    subject: &Digest,
    p: &Pending,
    limits: &Limits,
    mode: ReadBack,
    blobs_seen: bool,
) -> Result<(u64, Option<(Digest, SignedEntity)>)> {
    let digest = &p.referrer.manifest.digest;
    let context = || format!("read-back of referrer {digest} of {subject}");
    let failed = |msg: &str| Error::new(ErrorKind::VerificationFailed, format!("{}: {msg}", context()));
    let raw =
        repo.get_manifest(&digest.to_string()).await?.ok_or_else(|| failed("the manifest is listed but not served"))?;
    let mut bytes_read = raw.bytes.len() as u64;
    if raw.bytes != p.referrer.manifest.bytes {
        return Err(failed("the manifest served differs from the one written"));
    }
    let Manifest::Image(manifest) = &raw.manifest else {
        return Err(failed("not an image manifest"));
    };
    let layer = manifest.layers.first().ok_or_else(|| failed("the manifest has no layer"))?;
    if mode == ReadBack::Digest {
        if blobs_seen {
            return Ok((bytes_read, None));
        }
        futures_util::future::try_join_all(manifest.layers.iter().map(|l| check_present(repo, l)))
            .await
            .map_err(|e| e.context(context()))?;
        return Ok((bytes_read, None));
    }
    let blob = repo.get_blob(layer, limits.max_blob_bytes).await?;
    bytes_read += blob.len() as u64;
    let (entity, payload) = if layer.media_type == mt::BUNDLE_V03 {
        let bundle = Bundle::parse(&blob).map_err(|e| e.context(format!("bundle of referrer {digest}")))?;
        let payload = bundle.dsse_envelope().map(|e| e.payload.clone());
        (SignedEntity::bundle(bundle), payload)
    } else {
        let payload = Envelope::parse(&blob).ok().map(|e| e.payload);
        let annotations = LegacyLayerAnnotations::from_descriptor(&p.layer);
        (SignedEntity::legacy_attestation(blob.to_vec(), annotations), payload)
    };
    if payload.map(|b| Digest::sha256(&b)).as_ref() != Some(&p.payload_digest) {
        return Err(failed("its DSSE payload differs from the legacy layer's"));
    }
    Ok((bytes_read, Some((digest.clone(), entity))))
}

/// The blob is there with the size the manifest declares (the registry compares `Docker-Content-Digest`
/// when it sends one; see `Repository::blob_size`) and, on a layout, hashes to its digest.
async fn check_present<R: Repository>(repo: &R, layer: &Descriptor) -> Result<()> {
    match repo.blob_state(layer).await? {
        BlobState::SizeMatches | BlobState::Verified => Ok(()),
        BlobState::WrongSize(size) => Err(Error::new(
            ErrorKind::DigestMismatch,
            format!("blob {} is served with {size} bytes, the manifest says {}", layer.digest, layer.size),
        )),
        BlobState::Corrupted => Err(Error::new(
            ErrorKind::DigestMismatch,
            format!("blob {} has the right size but its bytes hash to another digest", layer.digest),
        )),
        BlobState::Missing => Err(Error::new(
            ErrorKind::VerificationFailed,
            format!("blob {} named by the manifest is not in the repository", layer.digest),
        )),
    }
}

/// Whether every pending referrer is served and every blob it names is present and intact, as far as
/// [`Repository::blob_state`] can tell: when all are listed already, a missing manifest (a listing that
/// lags deletions: Artifact Registry, chainguard-dev/terraform-provider-cosign#581) or a damaged blob is
/// what makes a rerun write again (it is the reason the read-back would fail).
pub async fn listed_intact<R: Repository>(repo: &R, pending: &[Pending]) -> Result<bool> {
    let mut layers: Vec<&Descriptor> = Vec::new();
    for p in pending {
        let new = p.referrer.blobs.iter().map(|b| &b.descriptor);
        for d in new.chain(&p.referrer.reused) {
            if !layers.iter().any(|l| l.digest == d.digest) {
                layers.push(d);
            }
        }
    }
    let manifests = futures_util::future::try_join_all(
        pending.iter().map(|p| async move { repo.head_manifest(&p.referrer.manifest.digest.to_string()).await }),
    );
    let blobs = futures_util::future::try_join_all(layers.iter().map(|d| repo.blob_state(d)));
    let (manifests, states) = tokio::try_join!(manifests, blobs)?;
    Ok(manifests.iter().all(Option::is_some) && states.into_iter().all(BlobState::is_intact))
}

trait SourceName {
    fn source_name(&self) -> &'static str;
}

impl SourceName for crate::store::Referrers {
    fn source_name(&self) -> &'static str {
        match self.source {
            crate::store::ReferrersSource::Api { .. } => "referrers API",
            crate::store::ReferrersSource::TagSchema { .. } => "referrers tag schema",
        }
    }
}
