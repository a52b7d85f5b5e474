//! Fetching one attestation of an image by predicate type, downloading nothing else (`att2ref get`).
//!
//! Every other consumer downloads every attestation of an image and filters afterwards. [`get_attestation`]
//! reads what the store already says about each attestation before downloading it:
//!
//! 1. **Referrers**, listed once and unfiltered (the API, else the tag schema): Sigstore bundles v0.1–v0.3
//!    (`…bundle+json;version=0.1`/`0.2` as @sigstore/oci writes older bundles, `…bundle.v0.3+json`) and
//!    bare DSSE envelopes, whose artifactType is `application/vnd.in-toto+json` (att2ref
//!    `--format dsse`, `oras attach`), `application/vnd.dsse.envelope.v1+json` or in-toto's
//!    `application/vnd.in-toto.<predicate>+dsse`. Other artifacts are never fetched. Entries are chosen by
//!    their index annotations — `dev.sigstore.bundle.predicateType` on bundles (written by cosign v3,
//!    GitHub's attest action, @sigstore/oci and att2ref), `in-toto.io/predicate-type` on DSSE envelopes and,
//!    with a content hint, `dev.att2ref.content.hint` — so only the chosen manifest and its blob are
//!    downloaded: annotated matches first, bundles before DSSE envelopes, each newest first. Entries without
//!    a predicate type annotation (other writers, and entries that lost their artifactType) are fetched, to
//!    learn their type from their content, only when nothing annotated matched.
//! 2. **The legacy `.att`**, only when referrers gave nothing: its manifest, then only the layers whose
//!    `predicateType` annotation matches. Layers written by cosign < 2.0 have no such annotation, and no
//!    legacy annotation states a content hint: of such a layer larger than 4 KiB only the first 2 KiB are
//!    read (HTTP `Range`; on a registry that ignores it the body is cut there and the connection dropped),
//!    which decode to the statement's predicate type and the start of its predicate. A layer whose start
//!    names another type or content is left unread; one whose start says too little is read whole.
//!    [`GetStats::legacy`] says which layers were read how, and the bytes that arrived.
//!
//! Several matches: the newest (referrer `org.opencontainers.image.created`; for legacy layers the Rekor
//! integrated time, else the signed custom `Timestamp`, else the later layer) unless
//! [`GetOptions::all`].
//!
//! # What is trusted
//!
//! Annotations and the starts of legacy layers are unsigned (a start is not even digest-checked): they only
//! decide what is *skipped* and in which order candidates are tried.
//! Whatever is returned was read, its **signed** statement was checked against the query, and it was
//! verified with the caller's [`Verifier`] (the same as `att2ref verify`). Only [`get_unverified`] skips
//! verification, and says so in its name.
//!
//! **Content hints.** cosign's `custom` type is used for everything (the article's SBOM and SLSA provenance
//! are both `custom`), so a signed type alone cannot tell them apart. [`GetOptions::hint`] selects by an
//! UNSIGNED guess at the content ([`ContentHint::id`](crate::model::predicate::ContentHint::id), e.g.
//! `slsa-provenance-v0.2`, matched by prefix). The hint only chooses among attestations that already
//! match the signed type and verify; it never grants trust. On referrers written by att2ref the hint is in
//! the index annotation `dev.att2ref.content.hint`; elsewhere it is computed from the content once read.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use att2ref::get::{Emit, GetOptions, get_attestation};
//! use att2ref::store::layout::LayoutRepository;
//! use att2ref::verification::{Policy, PublicKey, Verifier};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> att2ref::Result<()> {
//! // A small article-shaped legacy store (cosign 1.x: SBOM and SLSA provenance, both `custom`).
//! let dir = tempfile::tempdir().unwrap();
//! let scenario = att2ref::demo::demo()?;
//! let repo = LayoutRepository::create(dir.path(), att2ref::Limits::default())?;
//! scenario.repo.push_to(&repo).await?;
//!
//! // The TEST-ONLY key the demo store was signed with; the store has no transparency log entries.
//! let key = PublicKey::from_pem(att2ref::demo::TestKey::Rsa4096.public_pem().as_bytes())?;
//! let verifier = Arc::new(Verifier::new(Policy::new().with_key(key).insecure_ignore_tlog(true))?);
//!
//! let options = GetOptions::new("custom").with_hint("slsa-provenance");
//! let result = get_attestation(&repo, &scenario.image.to_string(), &options, &verifier).await?;
//! let slsa = result.attestation().expect("one verified SLSA provenance");
//! assert!(slsa.is_verified());
//! // The original attested file, byte for byte, out of cosign's `{"Data": …}` wrapper.
//! assert_eq!(slsa.emit(Emit::Predicate)?, att2ref::demo::content::ARTICLE_SLSA_TEXT.as_bytes());
//! // The layers carry no predicateType annotation. The SBOM's first 2 KiB said what it is, so only the
//! // small SLSA layer was read whole.
//! let legacy = result.stats.legacy.as_ref().unwrap();
//! assert_eq!((legacy.layers_read_partially, legacy.layers_skipped_by_prefix, legacy.layers_read), (1, 1, 1));
//! assert_eq!(legacy.prefixes[0].hint.as_deref(), Some("spdx-2.2"));
//! # Ok(())
//! # }
//! ```

mod attestation;
mod engine;
mod legacy;
mod names;
mod referrers;
mod select;
mod stats;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::limits::Limits;
use crate::model::digest::Digest;
use crate::model::predicate::check_type_query;
use crate::store::Repository;
use crate::verification::{FailureReason, Verifier};

pub use attestation::{AnswerSource, Attestation, Emit};
pub use legacy::legacy_cost;
pub use names::{file_name, sanitize};
pub use select::hint_matches;
pub use stats::{GetStats, LegacyCost, LegacyStats, PrefixStats};

/// What to fetch.
#[derive(Clone, Debug, Default)]
pub struct GetOptions {
    /// A cosign short name (`custom`, `slsaprovenance`, `spdxjson`, …; `custom` matches both custom URIs)
    /// or a full predicate type URI, compared with the **signed** statement. Anything else is an
    /// invalid-input error ([`check_type_query`]).
    pub predicate_type: String,
    /// Choose among matches by an UNSIGNED content hint id prefix (`slsa-provenance`, `spdx`): a selector,
    /// never a trust decision.
    pub hint: Option<String>,
    /// Every match instead of the newest.
    pub all: bool,
    /// Caps for everything read.
    pub limits: Limits,
}

impl GetOptions {
    /// Options for one predicate type, everything else default.
    pub fn new(predicate_type: impl Into<String>) -> GetOptions {
        GetOptions { predicate_type: predicate_type.into(), ..GetOptions::default() }
    }

    /// With a content hint selector.
    pub fn with_hint(mut self, hint: impl Into<String>) -> GetOptions {
        self.hint = Some(hint.into());
        self
    }

    /// Every match, not only the newest.
    pub fn all(mut self, all: bool) -> GetOptions {
        self.all = all;
        self
    }
}

/// An attestation that matched the query but was not returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejected {
    /// Where it was.
    pub source: AnswerSource,
    /// Why.
    pub reason: FailureReason,
    /// The specifics.
    pub message: String,
}

/// The outcome of a `get`.
#[derive(Clone, Debug)]
pub struct GetResult {
    /// The image digest.
    pub image: Digest,
    /// What matched and verified: at most one unless [`GetOptions::all`]; empty when nothing did.
    pub attestations: Vec<Attestation>,
    /// What matched the query but failed verification or could not be read.
    pub rejected: Vec<Rejected>,
    /// What was read.
    pub stats: GetStats,
}

impl GetResult {
    /// The attestation, when one matched and verified.
    pub fn attestation(&self) -> Option<&Attestation> {
        self.attestations.first()
    }
}

/// Fetch the attestation of `predicate_type` attached to the image `reference` (tag or digest) names,
/// verified with `verifier`. Only what is needed is downloaded (see the [module docs](self)).
///
/// Nothing matching is not an error: [`GetResult::attestations`] is then empty and
/// [`GetResult::rejected`] says what matched but failed. Errors are reserved for a store that could not be
/// read and an invalid query.
pub async fn get_attestation<R: Repository>(
    repo: &R,
    reference: &str,
    options: &GetOptions,
    verifier: &Arc<Verifier>,
) -> Result<GetResult> {
    get(repo, reference, options, Some(Arc::clone(verifier))).await
}

/// Like [`get_attestation`], WITHOUT verifying anything: what it returns may have been written by
/// anyone with push access. For inspection only.
pub async fn get_unverified<R: Repository>(repo: &R, reference: &str, options: &GetOptions) -> Result<GetResult> {
    get(repo, reference, options, None).await
}

async fn get<R: Repository>(
    repo: &R,
    reference: &str,
    options: &GetOptions,
    verifier: Option<Arc<Verifier>>,
) -> Result<GetResult> {
    if options.predicate_type.trim().is_empty() {
        return Err(Error::invalid_input("no predicate type given: a cosign short name or a URI is needed"));
    }
    check_type_query(&options.predicate_type)?;
    if options.hint.as_deref().is_some_and(|h| h.trim().is_empty()) {
        return Err(Error::invalid_input("the content hint is empty"));
    }
    let stats = GetStats::default();
    let image = match reference.parse::<Digest>() {
        Ok(d) => d,
        Err(_) => {
            let found = repo.head_manifest(reference).await?.ok_or_else(|| {
                Error::new(ErrorKind::NotFound, format!("tag {reference:?} not found in {}", repo.name()))
            })?;
            found.digest
        }
    };
    let name = format!("{}@{image}", repo.name());
    let mut run = engine::Run { repo, image, options, verifier, stats, accepted: Vec::new(), rejected: Vec::new() };
    let searched = async {
        referrers::search(&mut run).await?;
        if run.accepted.is_empty() {
            legacy::search(&mut run).await?;
        }
        Ok::<(), Error>(())
    };
    searched.await.map_err(|e| e.context(format!("getting a {} attestation of {name}", options.predicate_type)))?;
    Ok(GetResult { image: run.image, attestations: run.accepted, rejected: run.rejected, stats: run.stats })
}
