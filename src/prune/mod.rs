//! `prune`: scheduled cleanup of what migration leaves behind, built so that it can never lose an
//! attestation.
//!
//! [`find`] reads a repository (or some of its images) and lists what may go, with the evidence:
//! - a legacy `.att` whose every layer has a migrated referrer that verifies now and carries the same
//!   payload bytes ([`attestation`]); one layer short and the `.att` is kept, with the reason — so a
//!   `.att` whose migration is in flight or unverified is never removed, even next to a running `migrate`;
//! - orphans: legacy `.sig`/`.att`/`.sbom` tags, referrers and referrers indexes whose subject manifest
//!   is absent from their repository. They are reported and KEPT ([`orphans`]): absent from one
//!   repository is not gone. Only with [`OrphanPolicy::Delete`] may one go, and only when its subject is
//!   a definite not-found in every repository searched (a denial or server error is "could not check");
//! - duplicate referrers of one subject (same bundle blob): one consumers find (listed with its own
//!   artifact type) stays, the one paired with a legacy layer first, then by created time, then digest;
//! - tag-schema index entries naming missing manifests, and indexes left empty.
//!
//! [`apply`](mod@apply) acts on a plan, re-checking each precondition immediately before acting, and never
//! deletes a digest another tag still needs (registries delete by digest and drop every tag on it).
//! Deleting a referrer also removes its tag-schema index entry (conditional read-modify-write with
//! read-back, as migration's index update). Each refusal is reported per item; the run goes on.

pub mod apply;
pub mod attestation;
pub mod batch;
pub mod find;
pub mod orphans;
pub mod report;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::limits::Limits;
use crate::model::digest::Digest;
use crate::store::Repository;
use crate::verification::Verifier;

pub use batch::{AuditEvent, PruneBatch, PruneJob, Turns, prune_batch, prune_batch_streamed};
pub use orphans::{OrphanPolicy, SearchResult, SearchScope, SearchSet, SearchSets, SubjectSearch};
pub use report::{Item, ItemKind, PruneReport, Status};

/// How to prune.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Caps for everything read.
    pub limits: Limits,
    /// Delete; otherwise plan only.
    pub apply: bool,
    /// Read-back-and-edit rounds for a tag-schema index after a lost update.
    pub index_retries: u32,
    /// What to do with orphans: keep them (the default), or delete those whose subject is definitely
    /// absent from every repository of a [`SearchSet`].
    pub orphans: OrphanPolicy,
}

impl Default for PruneOptions {
    fn default() -> PruneOptions {
        PruneOptions { limits: Limits::default(), apply: false, index_retries: 8, orphans: OrphanPolicy::Keep }
    }
}

/// What to look at in a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every subject the repository's tags name: images, legacy tags' images, referrers indexes.
    Repository,
    /// Only these image digests.
    Images(Vec<Digest>),
}

/// What one planned removal does; each carries what must still hold when it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Delete the legacy `.att` manifest `manifest` of `image` (re-assessed first).
    LegacyAttestation {
        /// The image.
        image: Digest,
        /// The `.att` tag.
        tag: String,
        /// The manifest digest assessed.
        manifest: Digest,
    },
    /// Delete the legacy manifest under `tag` of the missing `image`.
    OrphanLegacy {
        /// The missing image.
        image: Digest,
        /// The legacy tag.
        tag: String,
        /// The manifest it held.
        manifest: Digest,
    },
    /// Delete the referrer `digest` of the missing `subject`.
    OrphanReferrer {
        /// The missing subject.
        subject: Digest,
        /// The referrer manifest.
        digest: Digest,
    },
    /// Delete the referrers index under `tag` of the missing `subject`.
    OrphanIndex {
        /// The missing subject.
        subject: Digest,
        /// The index tag.
        tag: String,
        /// The index manifest digest.
        digest: Digest,
    },
    /// Delete the referrer `digest`, which carries the same blob `blob` as `keep`.
    DuplicateReferrer {
        /// The subject.
        subject: Digest,
        /// The duplicate removed.
        digest: Digest,
        /// The copy kept.
        keep: Digest,
        /// The shared bundle (or envelope) blob.
        blob: Digest,
    },
    /// Remove the entry for the missing manifest `entry` from the index under `tag`.
    IndexEntry {
        /// The subject.
        subject: Digest,
        /// The index tag.
        tag: String,
        /// The missing manifest the entry names.
        entry: Digest,
    },
    /// Delete the index under `tag` if it (still) has no entries.
    EmptyIndex {
        /// The subject.
        subject: Digest,
        /// The index tag.
        tag: String,
    },
}

impl Action {
    /// Whether it deletes a manifest (every action but an index edit).
    pub fn deletes(&self) -> bool {
        !matches!(self, Action::IndexEntry { .. })
    }

    /// Order of application: referrers first (so the `.att` re-check sees the final referrers), then
    /// index edits, whole indexes, orphaned legacy tags, and the `.att`s last.
    fn phase(&self) -> u8 {
        match self {
            Action::DuplicateReferrer { .. } => 0,
            Action::OrphanReferrer { .. } => 1,
            Action::IndexEntry { .. } => 2,
            Action::EmptyIndex { .. } | Action::OrphanIndex { .. } => 3,
            Action::OrphanLegacy { .. } => 4,
            Action::LegacyAttestation { .. } => 5,
        }
    }
}

/// One thing found: the report item and, when it is removable, the action.
#[derive(Clone, Debug)]
pub struct Step {
    /// The item as planned.
    pub item: Item,
    /// What removing it does (`None` for kept or unchecked items).
    pub action: Option<Action>,
}

/// Told about each action as soon as it has run (`--apply`), e.g. to keep an audit journal that
/// survives an interrupted run.
pub trait Observer: Send + Sync {
    /// One action ran; `item` holds its final status and reasons.
    fn acted(&self, item: &Item);
}

impl Observer for () {
    fn acted(&self, _: &Item) {}
}

/// Every tag of the repository resolved to its digest, grouped by digest.
pub type TagMap = BTreeMap<Digest, Vec<String>>;

/// Find and (with [`PruneOptions::apply`]) remove, for one repository. Reading failures become
/// `could-not-check` items; nothing here stops at the first problem.
pub async fn prune_repository<R: Repository>(
    repo: &R,
    scope: &Scope,
    verifier: &Arc<Verifier>,
    options: &PruneOptions,
    observer: &dyn Observer,
) -> Vec<Item> {
    let steps = match find::find(repo, scope, verifier, options).await {
        Ok(steps) => steps,
        Err(e) => return vec![find::could_not_check(repo, None, &e, "listing and resolving the repository's tags")],
    };
    if !options.apply {
        return steps.into_iter().map(|s| s.item).collect();
    }
    apply::apply(repo, steps, verifier, options, observer).await
}
