//! The migration report: per image outcome and reason, what was written, and totals. Serialised as one
//! JSON document (`schemas/migrate-report.schema.json`).

use serde::Serialize;

use crate::convert::{ImagePlan, OutputFormat};
use crate::model::digest::Digest;

/// The report's `format` value.
pub const REPORT_FORMAT: &str = "att2ref.dev/migrate/v1";

/// What happened to one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Referrers written and read back verified.
    Migrated,
    /// Every referrer already existed (verified on read-back); nothing written.
    AlreadyMigrated,
    /// `--dry-run`: ready to migrate, nothing written.
    Planned,
    /// The image has no legacy `.att`.
    NothingToMigrate,
    /// The subject manifest is missing: nothing written, never a guessed subject.
    Orphaned,
    /// With an attachments repository apart from the images: a legacy `.att` there whose image the image
    /// repository does not serve. It belongs to another repository (or is the attachments repository's
    /// own image's): not this run's to migrate, and left untouched.
    NotInImageRepository,
    /// A layer did not verify or cannot be converted: nothing written for the image.
    Blocked,
    /// The legacy `.sig` does not verify under the policy (`--allow-signature-switch` to migrate anyway).
    SkippedSignatureSwitch,
    /// Something could not be read, written or checked.
    Failed,
}

impl Outcome {
    /// The name used in reports and journals.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Migrated => "migrated",
            Outcome::AlreadyMigrated => "already-migrated",
            Outcome::Planned => "planned",
            Outcome::NothingToMigrate => "nothing-to-migrate",
            Outcome::Orphaned => "orphaned",
            Outcome::NotInImageRepository => "not-in-image-repository",
            Outcome::Blocked => "blocked",
            Outcome::SkippedSignatureSwitch => "skipped-signature-switch",
            Outcome::Failed => "failed",
        }
    }

    /// True for the outcomes that leave the image in its final migrated state.
    pub fn is_done(self) -> bool {
        matches!(self, Outcome::Migrated | Outcome::AlreadyMigrated)
    }
}

/// One referrer of a migrated (or planned) image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MigratedReferrer {
    /// Manifest digest.
    pub digest: Digest,
    /// Manifest size.
    pub size: u64,
    /// The manifest's `artifactType`.
    pub artifact_type: String,
    /// The signed predicate type.
    pub predicate_type: String,
    /// Legacy layer position it came from.
    pub layer_index: usize,
    /// Whether it was listed among the subject's referrers before this run.
    pub existed: bool,
}

/// One image's result.
#[derive(Clone, Debug, Serialize)]
pub struct ImageMigration {
    /// The repository (`registry/repo` or `ocidir://path`).
    pub repository: String,
    /// The image digest.
    pub image: Digest,
    /// What happened.
    pub outcome: Outcome,
    /// Why, in words (empty when migrated).
    pub reasons: Vec<String>,
    /// For `failed`: the error kind (`not-found`, `network`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// For `failed`: the error kind itself (for exit codes).
    #[serde(skip)]
    pub kind: Option<crate::ErrorKind>,
    /// The legacy `.att` manifest digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_manifest: Option<Digest>,
    /// Legacy attestation layers.
    pub attestations: usize,
    /// Referrers (written, existing or planned).
    pub referrers: Vec<MigratedReferrer>,
    /// Bytes this image's migration read (manifests and blobs, read-back included).
    pub bytes_read: u64,
    /// Bytes uploaded for this image (blobs, manifests, index).
    pub bytes_written: u64,
    /// Write requests that changed something (blob uploads and manifest pushes).
    pub writes: u64,
    /// Index pushes repeated after a lost update.
    pub index_retries: u64,
    /// Existing index entries repaired.
    pub entries_repaired: u64,
    /// The plan, with `--dry-run` (and for blocked images, to show exactly what is blocked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<ImagePlan>,
}

impl ImageMigration {
    /// A report with only the identity and outcome filled in.
    pub fn new(repository: String, image: Digest, outcome: Outcome) -> ImageMigration {
        ImageMigration {
            repository,
            image,
            outcome,
            reasons: Vec::new(),
            error_kind: None,
            kind: None,
            legacy_manifest: None,
            attestations: 0,
            referrers: Vec::new(),
            bytes_read: 0,
            bytes_written: 0,
            writes: 0,
            index_retries: 0,
            entries_repaired: 0,
            plan: None,
        }
    }
}

/// Registry client counters for the whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    /// HTTP requests sent.
    pub requests: u64,
    /// Retries after throttling, server errors or connection errors.
    pub retries: u64,
    /// Bytes received.
    pub bytes_downloaded: u64,
    /// Bytes sent.
    pub bytes_uploaded: u64,
    /// 429 answers (each paused every request to that registry and lowered how many run at once).
    pub throttled: u64,
}

impl RequestStats {
    /// What `client` did so far; `None` when it sent nothing (a run on OCI layouts only).
    pub fn of(client: &crate::store::registry::RegistryClient) -> Option<RequestStats> {
        let s = client.stats();
        (s.requests > 0).then_some(RequestStats {
            requests: s.requests,
            retries: s.retries,
            bytes_downloaded: s.bytes_downloaded,
            bytes_uploaded: s.bytes_uploaded,
            throttled: s.throttled,
        })
    }
}

/// Counts per outcome, and byte totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MigrateTotals {
    /// Images reported.
    pub images: usize,
    /// Per outcome name, how many images.
    pub outcomes: std::collections::BTreeMap<&'static str, usize>,
    /// Referrers written.
    pub referrers_written: usize,
    /// Bytes read.
    pub bytes_read: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Index retries.
    pub index_retries: u64,
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct MigrateReport {
    /// Always [`REPORT_FORMAT`].
    pub format: &'static str,
    /// What was asked for (the targets, as given).
    pub targets: Vec<String>,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Referrer format.
    pub output_format: OutputFormat,
    /// Per image, in target order.
    pub images: Vec<ImageMigration>,
    /// Totals.
    pub totals: MigrateTotals,
    /// Registry client counters, when a registry was involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<RequestStats>,
    /// Targets that could not be expanded into images (repository listing failed, …).
    pub errors: Vec<TargetError>,
    /// What the run found out about each registry it worked on (referrers API or tag schema, DELETE,
    /// index subjects, listing lag), each learnt once per host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<crate::store::RegistryFacts>,
    /// The repository the attachments (legacy tags, referrers) were read from and written to, when not the
    /// images' own (`--attachments-repository`, cosign's `COSIGN_REPOSITORY`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments_repository: Option<String>,
}

/// A target that could not be expanded into repositories ([`crate::targets::TargetError`]).
pub use crate::targets::TargetError;

impl MigrateReport {
    /// An empty report.
    pub fn new(targets: Vec<String>, dry_run: bool, output_format: OutputFormat) -> MigrateReport {
        MigrateReport {
            format: REPORT_FORMAT,
            targets,
            dry_run,
            output_format,
            images: Vec::new(),
            totals: MigrateTotals::default(),
            requests: None,
            errors: Vec::new(),
            registries: Vec::new(),
            attachments_repository: None,
        }
    }

    /// Recompute the totals from the images.
    pub fn recount(&mut self) {
        let mut t = MigrateTotals { images: self.images.len(), ..MigrateTotals::default() };
        for i in &self.images {
            *t.outcomes.entry(i.outcome.as_str()).or_default() += 1;
            if i.outcome == Outcome::Migrated {
                t.referrers_written += i.referrers.iter().filter(|r| !r.existed).count();
            }
            t.bytes_read += i.bytes_read;
            t.bytes_written += i.bytes_written;
            t.index_retries += i.index_retries;
        }
        self.totals = t;
    }

    /// How many images ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.images.iter().filter(|i| i.outcome == outcome).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_serialise_as_their_names() {
        for o in [
            Outcome::Migrated,
            Outcome::AlreadyMigrated,
            Outcome::Planned,
            Outcome::NothingToMigrate,
            Outcome::Orphaned,
            Outcome::NotInImageRepository,
            Outcome::Blocked,
            Outcome::SkippedSignatureSwitch,
            Outcome::Failed,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        assert!(Outcome::AlreadyMigrated.is_done() && !Outcome::Planned.is_done());
    }

    #[test]
    fn totals_count_outcomes_and_new_referrers() {
        let d = Digest::sha256(b"x");
        let mut a = ImageMigration::new("r".into(), d.clone(), Outcome::Migrated);
        a.bytes_written = 10;
        a.referrers.push(MigratedReferrer {
            digest: d.clone(),
            size: 1,
            artifact_type: String::new(),
            predicate_type: String::new(),
            layer_index: 0,
            existed: false,
        });
        let b = ImageMigration::new("r".into(), d, Outcome::Orphaned);
        let mut report = MigrateReport::new(vec!["t".into()], false, OutputFormat::Bundle);
        report.images = vec![a, b];
        report.recount();
        assert_eq!(report.totals.images, 2);
        assert_eq!(report.totals.outcomes["migrated"], 1);
        assert_eq!(report.totals.outcomes["orphaned"], 1);
        assert_eq!((report.totals.referrers_written, report.totals.bytes_written), (1, 10));
    }
}
