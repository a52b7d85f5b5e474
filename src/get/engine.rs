//! The state of one `get` and the step every candidate goes through: check the signed statement against
//! the query, verify, keep or reject.

use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::limits::Limits;
use crate::model::digest::Digest;
use crate::model::predicate::hint_statement;
use crate::store::Repository;
use crate::verification::{FailureReason, SignedEntity, Verifier};

use super::attestation::{AnswerSource, Attestation};
use super::select::Query;
use super::stats::GetStats;
use super::{GetOptions, Rejected};

/// One `get` in progress.
pub(super) struct Run<'a, R> {
    pub repo: &'a R,
    pub image: Digest,
    pub options: &'a GetOptions,
    pub verifier: Option<Arc<Verifier>>,
    pub stats: GetStats,
    pub accepted: Vec<Attestation>,
    pub rejected: Vec<Rejected>,
}

impl<'a, R: Repository> Run<'a, R> {
    pub fn query(&self) -> Query<'a> {
        Query { predicate_type: &self.options.predicate_type, hint: self.options.hint.as_deref() }
    }

    pub fn limits(&self) -> &'a Limits {
        &self.options.limits
    }

    /// Whether one answer is enough and one was found.
    pub fn done(&self) -> bool {
        !self.options.all && !self.accepted.is_empty()
    }

    /// A candidate that could not be read (malformed, wrong digest, oversized) is rejected; an error of
    /// the store (network, auth) ends the run.
    pub fn unreadable(&mut self, source: AnswerSource, e: Error) -> Result<()> {
        if e.kind().is_bad_data() {
            self.rejected.push(Rejected { source, reason: FailureReason::Malformed, message: format!("{e:#}") });
            Ok(())
        } else {
            Err(e)
        }
    }

    /// Check a read candidate against the query on its signed content; verify it; keep it or reject it.
    /// Returns whether it was kept.
    pub async fn consider(&mut self, mut candidate: Attestation, entity: SignedEntity) -> Result<bool> {
        let query = self.query();
        let statement = &candidate.statement;
        candidate.hint = hint_statement(statement).id();
        if !query.type_matches(&statement.predicate_type) || !query.hint_matches(&candidate.hint) {
            self.stats.read_not_matching += 1;
            return Ok(false);
        }
        let Some(verifier) = self.verifier.clone() else {
            self.accepted.push(candidate);
            return Ok(true);
        };
        let image = self.image.clone();
        // Signature checks are CPU work: off the async runtime's threads.
        let outcome = tokio::task::spawn_blocking(move || verifier.verify(&entity, &image))
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("verification task failed: {e}")))?;
        match outcome {
            // The choice was made on the statement read before verification; the verified one must agree.
            Ok(v) if v.predicate_type.as_deref() != Some(candidate.predicate_type.as_str()) => {
                self.rejected.push(Rejected {
                    source: candidate.source,
                    reason: FailureReason::Malformed,
                    message: "the verified statement is not the one that was read".into(),
                });
                Ok(false)
            }
            Ok(v) => {
                candidate.verification = Some(v);
                self.accepted.push(candidate);
                Ok(true)
            }
            Err(f) => {
                self.rejected.push(Rejected { source: candidate.source, reason: f.reason, message: f.message });
                Ok(false)
            }
        }
    }
}
