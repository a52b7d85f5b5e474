//! Deterministic generator of legacy cosign stores: test data for the whole suite and the store
//! `att2ref demo` shows.
//!
//! Each scenario function ([`article_like`], [`cosign_v2_style`], [`replace_history`],
//! [`keyless`], [`multi_arch`], [`key_types`], [`demo`]) builds a complete repository — small real
//! subject images plus their `.sig`/`.att` manifests, byte-faithful to what cosign wrote (Go JSON
//! field order and escaping, go-containerregistry manifests and configs, DSSE envelopes with
//! `"keyid":""`) — and describes what it made. The same call gives byte-identical output every run
//! unless [`Scenario::deterministic`] is false: there is no clock and no system randomness, only a
//! seeded generator and deterministic signatures (RSA PKCS#1 v1.5, Ed25519).
//!
//! All keys, certificates and trust roots here are TEST-ONLY (committed under `fixtures/keys/`):
//! nothing they sign may ever be trusted.

mod build;
pub mod content;
pub mod dsse;
mod gojson;
pub mod keys;
pub mod oci;
mod pem;
pub mod pki;
pub(crate) mod prng;
pub mod rekor;
mod repo;
mod scenarios;

pub use keys::{Scheme, TestKey, TestSigner};
pub use pki::{Identity, KeylessIdentity};
pub use rekor::TestLog;
pub use repo::{GeneratedManifest, GeneratedRepo};
#[cfg(test)]
pub(crate) use scenarios::prefix_decoy;
pub use scenarios::{
    ARTICLE_SBOM_BYTES, DEMO_SBOM_BYTES, article_like, article_like_numbered, cosign_v2_style, demo, key_types,
    keyless, keyless_with_log, multi_arch, replace_history,
};

use crate::error::Result;
use crate::model::digest::Digest;

/// The TEST-ONLY trusted root (`trusted_root.json`) for keyless scenarios: both test logs and the
/// test CA. Give it to a verifier only in tests.
pub fn trusted_root_json() -> Result<bytes::Bytes> {
    pki::trusted_root_json().map(bytes::Bytes::from)
}

/// For the library's tests: the demo pushed into a new OCI layout in a temporary directory (kept while
/// the first value lives), and a verifier of its RSA-4096 key that does not check the log.
#[cfg(test)]
pub(crate) async fn demo_in_layout()
-> (tempfile::TempDir, Scenario, crate::store::layout::LayoutRepository, std::sync::Arc<crate::verification::Verifier>)
{
    use crate::verification::{Policy, PublicKey, Verifier};
    let dir = tempfile::tempdir().unwrap();
    let scenario = demo().unwrap();
    let repo = crate::store::layout::LayoutRepository::create(dir.path(), crate::Limits::default()).unwrap();
    scenario.repo.push_to(&repo).await.unwrap();
    let key = PublicKey::from_pem(TestKey::Rsa4096.public_pem().as_bytes()).unwrap();
    let verifier = std::sync::Arc::new(Verifier::new(Policy::new().with_key(key).insecure_ignore_tlog(true)).unwrap());
    (dir, scenario, repo, verifier)
}

/// Every deterministic scenario, in a fixed order.
pub fn deterministic_scenarios() -> Result<Vec<Scenario>> {
    Ok(vec![article_like()?, cosign_v2_style()?, replace_history()?, keyless()?, multi_arch()?, demo()?])
}

/// The small deterministic scenarios committed as OCI layouts under `fixtures/layouts/` (the article-like
/// store is left out: at 2.3 MB it is generated on demand instead).
pub fn committed_scenarios() -> Result<Vec<Scenario>> {
    Ok(vec![cosign_v2_style()?, replace_history()?, keyless()?, multi_arch()?, demo()?])
}

/// Write a scenario into a new OCI image layout at `dir`.
pub async fn write_layout(
    scenario: &Scenario,
    dir: &std::path::Path,
) -> Result<crate::store::layout::LayoutRepository> {
    let repo = crate::store::layout::LayoutRepository::create(dir, crate::Limits::default())?;
    scenario.repo.push_to(&repo).await?;
    Ok(repo)
}

/// A generated store and what is in it.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Scenario name (the function's name).
    pub name: &'static str,
    /// One line for humans.
    pub summary: &'static str,
    /// Whether every byte is reproducible (false when an ECDSA or RSA-PSS signature is involved).
    pub deterministic: bool,
    /// The main subject: the image (or index) the scenario is about.
    pub image: Digest,
    /// The repository contents.
    pub repo: GeneratedRepo,
    /// Every legacy manifest pushed, in push order (superseded ones too).
    pub attachments: Vec<Attachment>,
}

impl Scenario {
    /// The attachment a tag currently points at.
    pub fn attachment(&self, tag: &str) -> Option<&Attachment> {
        self.attachments.iter().find(|a| a.current && a.tag == tag)
    }

    /// The current attachment of `kind` for `subject`.
    pub fn attachment_for(&self, subject: &Digest, kind: AttachmentKind) -> Option<&Attachment> {
        self.attachment(&subject.cosign_tag(kind.suffix()))
    }

    /// Push the scenario with its legacy manifests in `attachments` and everything else in `images`
    /// (blobs to both), as cosign writes with `COSIGN_REPOSITORY` set.
    pub async fn push_split<R: crate::store::Repository>(&self, images: &R, attachments: &R) -> Result<()> {
        let mut image_side = GeneratedRepo::new(self.repo.repository.clone());
        image_side.blobs = self.repo.blobs.clone();
        let mut attachment_side = image_side.clone();
        for m in &self.repo.manifests {
            let attached = self.attachments.iter().any(|a| a.manifest == m.digest);
            let side = if attached { &mut attachment_side } else { &mut image_side };
            side.manifests.push(m.clone());
        }
        image_side.push_to(images).await?;
        attachment_side.push_to(attachments).await
    }
}

/// The [`demo`] image in `app` with its `.sig` and `.att` in `sigs`, which also holds an image of its own
/// (tagged `v1`, like app's) with its own `.att`: an attachments repository shared with another image.
/// Returns the pair, app's image and sigs's own.
pub async fn attachments_apart()
-> Result<(crate::store::attachments::SplitRepository<crate::store::memory::MemoryRepository>, Digest, Digest)> {
    use crate::store::memory::MemoryRepository;
    let (app, sigs) = (MemoryRepository::new("app"), MemoryRepository::new("sigs"));
    let scenario = demo()?;
    scenario.push_split(&app, &sigs).await?;
    let own = article_like_numbered("registry.test/sigs", 1, 2_000)?;
    own.repo.push_to(&sigs).await?;
    Ok((crate::store::attachments::SplitRepository::new(app, sigs), scenario.image, own.image))
}

/// What a legacy manifest attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttachmentKind {
    /// `.att`: DSSE-signed in-toto statements.
    Attestations,
    /// `.sig`: simple-signing signatures.
    Signatures,
}

impl AttachmentKind {
    /// The tag suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            AttachmentKind::Attestations => "att",
            AttachmentKind::Signatures => "sig",
        }
    }
}

/// One legacy manifest of a scenario.
#[derive(Clone, Debug)]
pub struct Attachment {
    /// `.att` or `.sig`.
    pub kind: AttachmentKind,
    /// The image digest it is attached to.
    pub subject: Digest,
    /// Its tag (`sha256-<hex>.att`).
    pub tag: String,
    /// The manifest digest.
    pub manifest: Digest,
    /// Whether the tag still points here (false once a later manifest replaced it).
    pub current: bool,
    /// Its layers in manifest order.
    pub layers: Vec<LayerInfo>,
}

/// One layer of a legacy manifest.
#[derive(Clone, Debug)]
pub struct LayerInfo {
    /// Layer digest.
    pub digest: Digest,
    /// Layer size.
    pub size: u64,
    /// The signed statement's `predicateType` (`.att` only).
    pub predicate_type: Option<String>,
    /// Whether the layer also carries the (unsigned) `predicateType` annotation.
    pub annotated: bool,
    /// Who signed it.
    pub signed_by: SignedBy,
    /// Its legacy transparency-log entry, if it has a `dev.sigstore.cosign/bundle` annotation.
    pub tlog: Option<TlogEntry>,
}

/// Who signed a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignedBy {
    /// A test key (`cosign … --key`).
    Key(TestSigner),
    /// Keyless: a test-CA leaf certificate for this identity, over [`TestKey::FulcioLeaf`].
    Keyless(KeylessIdentity),
}

/// A legacy Rekor bundle's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlogEntry {
    /// Body kind.
    pub kind: TlogKind,
    /// The log key that signed the SET.
    pub log_key: TestKey,
    /// Log index.
    pub log_index: i64,
    /// Integration time (Unix seconds).
    pub integrated_time: i64,
}

/// Rekor entry kinds cosign logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlogKind {
    /// `dsse/0.0.1` (`attest` ≥ v2.2.0).
    Dsse,
    /// `intoto/0.0.1` (`attest` < v2.2.0, or `--rekor-entry-type intoto`).
    Intoto,
    /// `hashedrekord/0.0.1` (`sign`).
    HashedRekord,
}

impl TlogKind {
    /// `kind/apiVersion` as in the body.
    pub fn as_str(self) -> &'static str {
        match self {
            TlogKind::Dsse => "dsse/0.0.1",
            TlogKind::Intoto => "intoto/0.0.1",
            TlogKind::HashedRekord => "hashedrekord/0.0.1",
        }
    }
}

#[cfg(test)]
mod tests;
