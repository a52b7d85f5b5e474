//! The prune report: one item per thing found (removable or deliberately kept), what happened to it,
//! and totals. Serialised as one JSON document (`schemas/prune-report.schema.json`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::digest::Digest;

use super::orphans::SubjectSearch;

/// The report's `format` value.
pub const REPORT_FORMAT: &str = "att2ref.dev/prune/v1";

/// What an item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemKind {
    /// A legacy `.att` whose every layer has a verified migrated referrer with the same payload.
    LegacyAttestation,
    /// A legacy `.sig`/`.att`/`.sbom` tag whose image manifest is absent from its repository.
    OrphanLegacy,
    /// A referrer whose subject manifest is absent from its repository.
    OrphanReferrer,
    /// With an attachments repository apart from the images: a legacy tag there whose image the image
    /// repository does not serve. Another repository's, or the attachments repository's own image's:
    /// never removed.
    ForeignLegacy,
    /// A referrers tag-schema index whose subject manifest is absent from its repository.
    OrphanIndex,
    /// A second referrer of one subject carrying the same bundle (or envelope) blob.
    DuplicateReferrer,
    /// A tag-schema index entry pointing to a manifest that no longer exists.
    IndexEntry,
    /// A tag-schema index with no entries left.
    EmptyIndex,
    /// A subject whose state could not be established (nothing about it is acted on).
    Subject,
}

impl ItemKind {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::LegacyAttestation => "legacy-attestation",
            ItemKind::OrphanLegacy => "orphan-legacy",
            ItemKind::OrphanReferrer => "orphan-referrer",
            ItemKind::ForeignLegacy => "foreign-legacy",
            ItemKind::OrphanIndex => "orphan-index",
            ItemKind::DuplicateReferrer => "duplicate-referrer",
            ItemKind::IndexEntry => "index-entry",
            ItemKind::EmptyIndex => "empty-index",
            ItemKind::Subject => "subject",
        }
    }
}

/// What happened to an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Dry run: would be removed.
    Planned,
    /// Removed (`--apply`).
    Removed,
    /// Found but deliberately left alone (e.g. a `.att` with a layer not yet migrated).
    Kept,
    /// Removable when planned, but its precondition no longer held (or another tag needs the digest)
    /// when re-checked just before acting.
    Skipped,
    /// Whether it may be removed could not be established (401/403/5xx, unreadable content).
    CouldNotCheck,
    /// The deletion or index edit was refused or failed.
    Failed,
}

impl Status {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Planned => "planned",
            Status::Removed => "removed",
            Status::Kept => "kept",
            Status::Skipped => "skipped",
            Status::CouldNotCheck => "could-not-check",
            Status::Failed => "failed",
        }
    }

    /// True for statuses that make the run unsuccessful (non-zero exit).
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Failed | Status::CouldNotCheck)
    }
}

/// One thing found.
#[derive(Clone, Debug, Serialize)]
pub struct Item {
    /// The repository (`registry/repo` or `ocidir://path`).
    pub repository: String,
    /// What it is.
    pub kind: ItemKind,
    /// The image (subject) digest it belongs to (absent for repository-wide problems).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Digest>,
    /// The manifest digest removed (for index entries: the digest the entry names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// The tag involved (legacy tag or referrers index tag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Bytes: the manifest plus the blobs it lists (blobs are freed only by the registry's garbage
    /// collection, and only when nothing else refers to them).
    pub size: u64,
    /// What happened.
    pub status: Status,
    /// Why: the evidence for removal, or why it was kept, skipped or failed.
    pub reasons: Vec<String>,
    /// The error kind, for `failed` and `could-not-check`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// For orphans: where their subject was searched and what was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_search: Option<SubjectSearch>,
}

/// A target that could not be expanded into repositories (the same record migrate reports).
pub use crate::targets::TargetError;

/// Totals over all items.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneTotals {
    /// Items.
    pub items: u64,
    /// Items per status.
    pub statuses: BTreeMap<Status, u64>,
    /// Items per kind.
    pub kinds: BTreeMap<ItemKind, u64>,
    /// Bytes of items planned or removed.
    pub bytes: u64,
}

impl PruneTotals {
    /// Count one more item (what a streamed report does as items arrive).
    pub fn add(&mut self, i: &Item) {
        self.items += 1;
        *self.statuses.entry(i.status).or_default() += 1;
        *self.kinds.entry(i.kind).or_default() += 1;
        if matches!(i.status, Status::Planned | Status::Removed) {
            self.bytes += i.size;
        }
    }
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct PruneReport {
    /// Always [`REPORT_FORMAT`].
    pub format: &'static str,
    /// The targets as given.
    pub targets: Vec<String>,
    /// Whether deletions were made (`--apply`); otherwise a dry run.
    pub apply: bool,
    /// Every item, per repository in discovery order.
    pub items: Vec<Item>,
    /// Totals.
    pub totals: PruneTotals,
    /// Targets that could not be expanded.
    pub errors: Vec<TargetError>,
    /// What the run found out about each registry it worked on (referrers API or tag schema, DELETE,
    /// the order of index entry and manifest), each learnt once per host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<crate::store::RegistryFacts>,
    /// The repository the attachments (legacy tags, referrers) were read from and written to, when not the
    /// images' own (`--attachments-repository`, cosign's `COSIGN_REPOSITORY`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments_repository: Option<String>,
    /// With an attachments repository shared by several repositories of the run: the images with
    /// attachments there that no repository of the run tags or names (untagged images, repositories the
    /// run did not cover). Left alone; named by its image repository and digest, one is worked on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unclaimed_attachments: Vec<crate::store::attachments::UnclaimedImage>,
}

impl PruneReport {
    /// An empty report.
    pub fn new(targets: Vec<String>, apply: bool) -> PruneReport {
        PruneReport {
            format: REPORT_FORMAT,
            targets,
            apply,
            items: Vec::new(),
            totals: PruneTotals::default(),
            errors: vec![],
            registries: Vec::new(),
            attachments_repository: None,
            unclaimed_attachments: Vec::new(),
        }
    }

    /// Recompute the totals from the items.
    pub fn recount(&mut self) {
        let mut t = PruneTotals::default();
        for i in &self.items {
            t.add(i);
        }
        self.totals = t;
    }

    /// True when any item failed or could not be checked, or a target could not be expanded.
    pub fn has_failures(&self) -> bool {
        !self.errors.is_empty() || self.items.iter().any(|i| i.status.is_failure())
    }
}
