//! The migration report: per image outcome and reason, what was written, and totals. Serialised as one
//! JSON document (`schemas/migrate-report.schema.json`).

use serde::Serialize;

use crate::convert::OutputFormat;
use crate::report::RequestStats;
use crate::rewrite::{ImageMigration, Outcome};

/// The report's `format` value.
pub const REPORT_FORMAT: &str = "att2ref.dev/migrate/v1";

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

impl MigrateTotals {
    /// Count one more image (what a streamed report does as images arrive).
    pub fn add(&mut self, i: &ImageMigration) {
        self.images += 1;
        *self.outcomes.entry(i.outcome.as_str()).or_default() += 1;
        if i.outcome == Outcome::Migrated {
            self.referrers_written += i.referrers.iter().filter(|r| !r.existed).count();
        }
        self.bytes_read += i.bytes_read;
        self.bytes_written += i.bytes_written;
        self.index_retries += i.index_retries;
    }
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
    /// With an attachments repository shared by several repositories of the run: the images with
    /// attachments there that no repository of the run tags or names (untagged images, repositories the
    /// run did not cover). Left alone; named by its image repository and digest, one is worked on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unclaimed_attachments: Vec<crate::store::attachments::UnclaimedImage>,
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
            unclaimed_attachments: Vec::new(),
        }
    }

    /// Recompute the totals from the images.
    pub fn recount(&mut self) {
        let mut t = MigrateTotals::default();
        for i in &self.images {
            t.add(i);
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
    use crate::model::digest::Digest;
    use crate::rewrite::MigratedReferrer;

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
