//! att2ref reads cosign's legacy attestation storage (`sha256-<digest>.att` and friends), verifies it,
//! and rewrites each attestation as its own OCI 1.1 referrer holding a Sigstore bundle.
//!
//! Layers, bottom up:
//! - [`model`]: the formats, pure (OCI manifests, DSSE, in-toto, Sigstore bundles, cosign's legacy
//!   annotations, Rekor entries, trusted roots, references); no I/O;
//! - [`store`]: where manifests and blobs live — a registry ([`store::registry`]) or an OCI image layout
//!   ([`store::layout`]) — behind one [`store::Repository`] trait, with [`store::memory`] as the test
//!   double;
//! - [`read`]: readers for every attestation layout over any repository;
//! - [`verification`]: offline verification, keys and keyless (pure);
//! - [`convert`]: a verified legacy layer → Sigstore bundle v0.3 → referrer manifest (pure);
//! - [`rewrite`]: one image's legacy attestations read, verified, converted, written as referrers and
//!   read back, all or nothing (the pipeline under `migrate`, `copy` and `rollback`);
//! - [`targets`]: images, repositories, layouts and whole registries resolved into a stream of
//!   repositories to work on;
//! - [`batch`]: the engine every batch command runs on — one bounded pool over all repositories,
//!   repositories listed page by page, a per-repository finishing step, the journal and progress (its
//!   pool's places are in [`slots`], below the store, whose shared reads give a waiting unit's place
//!   back);
//! - [`inspect`], [`verify`], [`get`], [`migrate`], [`prune`], [`copy`], [`status`], [`rollback`],
//!   [`probe`]: one module per command of the `att2ref` binary, named after it (`att2ref verify` runs
//!   [`verify::verify_image`] and so on); a command depends only on the layers above, never on another
//!   command;
//! - [`demo`]: a deterministic generator of legacy cosign stores (test-only keys), used by the tests and
//!   by `att2ref demo`.
//!
//! The library never prints or exits; everything returns [`Result`] with a typed [`ErrorKind`].
//!
//! # Example: inspect a legacy store
//!
//! ```
//! use att2ref::inspect::{inspect_image, InspectOptions};
//! use att2ref::store::layout::LayoutRepository;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> att2ref::Result<()> {
//! // A small store shaped like cosign 1.x output, written into a fresh OCI layout.
//! let dir = tempfile::tempdir().unwrap();
//! let scenario = att2ref::demo::demo()?;
//! let repo = LayoutRepository::create(dir.path(), att2ref::Limits::default())?;
//! scenario.repo.push_to(&repo).await?;
//!
//! let report = inspect_image(&repo, &scenario.image.to_string(), &InspectOptions::default()).await?;
//! let attestations = report.legacy.attestations.expect("the demo store has a .att");
//! assert_eq!(attestations.layers.len(), 2);
//! // The predicate type comes from the signed statement; the hint is an unsigned guess for display.
//! assert_eq!(attestations.layers[1].predicate_type.as_deref(), Some("cosign.sigstore.dev/attestation/v1"));
//! assert_eq!(attestations.layers[1].hint.as_ref().unwrap().label, "looks like SLSA provenance v0.2");
//! # Ok(())
//! # }
//! ```
//!
//! Against a registry, open the repository with [`store::registry::RegistryClient`] instead:
//!
//! ```no_run
//! use att2ref::store::registry::{ClientConfig, RegistryClient};
//!
//! # async fn example() -> att2ref::Result<()> {
//! let client = RegistryClient::new(ClientConfig::default())?;
//! let repo = client.repository("ghcr.io", "org/app");
//! let report = att2ref::inspect::inspect_image(&repo, "1.2", &Default::default()).await?;
//! println!("{} referrers", report.referrers.entries.len());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod batch;
pub mod convert;
pub mod copy;
pub mod demo;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod get;
pub mod inspect;
mod keyed_locks;
pub mod limits;
pub mod metrics;
pub mod migrate;
pub mod model;
pub mod probe;
pub mod prune;
pub mod read;
pub mod report;
pub mod rewrite;
pub mod rollback;
pub mod slots;
pub mod status;
pub mod store;
pub mod targets;
pub mod verification;
pub mod verify;

pub use error::{Error, ErrorKind, Result};
pub use limits::Limits;

/// Prefix of the annotations att2ref writes on the referrers it creates (provenance of a migration).
pub const ANNOTATION_PREFIX: &str = "dev.att2ref.";
