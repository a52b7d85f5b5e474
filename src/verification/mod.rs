//! Offline verification of cosign attestations and signatures, keyed and keyless.
//!
//! Shaped like sigstore-go's pipeline: a signed-entity abstraction ([`SignedEntity`], with adapters for a
//! legacy `.att` layer, a legacy `.sig` layer and a Sigstore bundle), trusted material (keys and a
//! Sigstore trusted root), a [`Policy`] saying what must match, and a [`Verifier`] returning a typed
//! [`Verification`] or a [`Failure`] with a [`FailureReason`] per entity. Everything is pure and
//! synchronous (no network, no file I/O) and `Send + Sync`, so callers fan out with rayon
//! ([`Verifier::verify_all`]).
//!
//! What is checked, as cosign does: the signature (DSSE PAE, or the exact `.sig` layer bytes); the subject
//! (in-toto subject digest or simple-signing `docker-manifest-digest` equal to the image digest); the
//! Rekor entry — the signed entry timestamp under the log key chosen by log id and valid at the integrated
//! time, the RFC 6962 inclusion proof and its signed checkpoint for bundles, and the entry body bound to the
//! attestation; for certificates, the chain to a trusted-root CA valid at the integrated time, the
//! code-signing usage, and the SAN identity and Fulcio OIDC issuer. Skipping the log is possible only with
//! [`Policy::insecure_ignore_tlog`], and the result then says no log was checked. RFC 3161 timestamps are
//! verified against the trusted root's timestamp authorities when it has any (then every stamp must verify,
//! and a verified genTime serves as signing time when no log entry gives one); otherwise they are reported
//! as [`TimestampCheck::NotChecked`] and never used as time.
//!
//! Not checked: certificate transparency SCTs, and revocation.
//!
//! ```no_run
//! use att2ref::model::{bundle::Bundle, digest::Digest, trust::TrustedRoot};
//! use att2ref::verification::{CertificateIdentity, Matcher, Policy, SignedEntity, Verifier};
//! # fn main() -> att2ref::Result<()> {
//! let root = TrustedRoot::parse(&std::fs::read("trusted_root.json").expect("read"))?;
//! let policy = Policy::new().with_trusted_root(root).with_identity(CertificateIdentity::new(
//!     Matcher::exact("dev@example.com"),
//!     Matcher::exact("https://github.com/login/oauth"),
//! ));
//! let verifier = Verifier::new(policy)?;
//! let bundle = Bundle::parse(&std::fs::read("attestation.sigstore.json").expect("read"))?;
//! let image: Digest = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4".parse()?;
//! match verifier.verify(&SignedEntity::bundle(bundle), &image) {
//!     Ok(v) => println!("verified: signer {:?}, log {:?}", v.signer, v.log),
//!     Err(f) => println!("not verified: {f} (reason {}, kind {})", f.reason, f.kind()),
//! }
//! # Ok(())
//! # }
//! ```

mod cert;
mod entity;
mod failure;
mod keys;
mod material;
mod merkle;
mod policy;
mod result;
mod tlog;
pub(crate) mod tsa;
mod verifier;

pub use cert::{CertificateInfo, San};
pub use entity::{BundleEntity, EntityKind, LegacyAttestation, LegacySignature, SignedEntity};
pub use failure::{Failure, FailureReason};
pub use keys::{KeyAlgorithm, PublicKey, RsaPadding, SignatureScheme, key_id_of, reject_kms_reference};
pub use merkle::{ProofError, VerifiedCheckpoint, leaf_hash, verify_checkpoint, verify_inclusion};
pub use policy::{CertificateIdentity, Matcher, Policy};
pub use result::{LogCheck, Signer, SubjectMatch, TimestampCheck, Verification};
pub use tlog::{LogEntryCheck, ProofCheck};
pub use tsa::{ImprintCovers, VerifiedTimestamp};
pub use verifier::Verifier;

/// [`Verifier::verify`] on the blocking pool (verification is CPU-bound), for async callers: `Ok(Err)`
/// with the failure in words when the entity does not verify.
pub async fn verify_off_thread(
    verifier: &std::sync::Arc<Verifier>,
    entity: &std::sync::Arc<SignedEntity>,
    image: &crate::model::digest::Digest,
) -> crate::Result<std::result::Result<(), String>> {
    let (v, e, i) = (std::sync::Arc::clone(verifier), std::sync::Arc::clone(entity), image.clone());
    tokio::task::spawn_blocking(move || v.verify(&e, &i).map(|_| ()).map_err(|f| f.to_string()))
        .await
        .map_err(|e| crate::Error::new(crate::ErrorKind::Io, format!("verification task failed: {e}")))
}
