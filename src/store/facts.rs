//! What a run learns about a registry by working on it: the deviations from the distribution spec that
//! decide what a command may do there, each found out once per host and reported (`registries` in the
//! JSON reports of `migrate` and `prune`).
//!
//! A fact is recorded only from an answer the registry gave, never guessed from its name: the same
//! product behaves differently across versions, and a guess that a registry "has the API" or "deletes"
//! is how attestations get written where nobody looks or deleted from one vantage point.

use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, ErrorKind};

/// Whether `e`, the failure of a manifest PUT whose subject is an image index, is the registry refusing
/// such subjects (ECR: 405, aws/containers-roadmap#2783): only its own 4xx `unsupported` answer says so; a
/// local failure or a server error says nothing about whether an index may be a subject there.
pub(crate) fn refuses_index_subjects(e: &Error) -> bool {
    e.kind() == ErrorKind::Unsupported && e.http_status().is_some_and(|s| (400..500).contains(&s))
}

/// Something a command learnt by acting on a registry (see [`crate::store::Repository::learn`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Learnt {
    /// A referrer whose subject is an image index was accepted.
    IndexSubjectAccepted,
    /// A referrer whose subject is an image index was refused (ECR: aws/containers-roadmap#2783); the
    /// registry's words.
    IndexSubjectRefused(String),
    /// A manifest that a referrers tag-schema index lists was refused deletion, and deleting it worked
    /// once the index no longer listed it (GAR: chainguard-dev/terraform-provider-cosign#577).
    DeleteWhileListedRefused(String),
    /// Referrers just written appeared in the registry's listing only after this wait (a cached or
    /// lagging listing: Quay, tektoncd/chains#1691).
    ListingLagged(Duration),
    /// Referrers just written did not appear in the listing within the wait allowed.
    ListingNeverShowed(Duration),
}

/// A yes/no fact with the registry's own words when it said no.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "answer", content = "detail")]
pub enum Answer {
    /// The registry did it.
    Accepted,
    /// The registry refused; what it answered.
    Refused(String),
}

/// What is known about one registry host after a run ([`crate::store::registry::RegistryClient::facts`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RegistryFacts {
    /// `host[:port]` requests went to.
    pub host: String,
    /// `api` when a referrers listing came from the registry's API, `tag-schema` when the registry has
    /// none (the `sha256-<hex>` tag is used), `mixed` when repositories differ, absent when nothing was
    /// listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrers: Option<&'static str>,
    /// Manifest DELETE, as a DELETE of a digest nobody stored answered: `accepted`, or `refused` with the
    /// answer (GHCR's 405). Absent when nothing was to be deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletes: Option<Answer>,
    /// A referrer whose subject is an image index. Absent when none was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_subject: Option<Answer>,
    /// Deleting a manifest a referrers index still lists: `refused` when the registry insisted that the
    /// index entry go first (the order att2ref then uses). Absent when never refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_while_listed: Option<Answer>,
    /// The longest wait, in milliseconds, before the listing showed referrers just written, when it did
    /// not at once. Absent when every listing was current.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listing_lag_ms: Option<u64>,
    /// Set when a listing never showed what was written within the wait allowed (milliseconds waited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listing_never_showed_ms: Option<u64>,
}

/// The facts one host accumulates during a run (the referrers and delete answers are kept elsewhere).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// See [`RegistryFacts::index_subject`].
    pub index_subject: Option<Answer>,
    /// See [`RegistryFacts::delete_while_listed`].
    pub delete_while_listed: Option<Answer>,
    /// See [`RegistryFacts::listing_lag_ms`].
    pub listing_lag: Option<Duration>,
    /// See [`RegistryFacts::listing_never_showed_ms`].
    pub listing_never_showed: Option<Duration>,
}

impl HostFacts {
    /// Record `fact`. A refusal is never overwritten by a later acceptance: once a registry refused,
    /// the order or the skip it implies stays for the run.
    pub fn record(&mut self, fact: Learnt) {
        match fact {
            Learnt::IndexSubjectAccepted => {
                self.index_subject.get_or_insert(Answer::Accepted);
            }
            Learnt::IndexSubjectRefused(why) => self.index_subject = Some(Answer::Refused(why)),
            Learnt::DeleteWhileListedRefused(why) => self.delete_while_listed = Some(Answer::Refused(why)),
            Learnt::ListingLagged(wait) => self.listing_lag = Some(self.listing_lag.map_or(wait, |w| w.max(wait))),
            Learnt::ListingNeverShowed(wait) => {
                self.listing_never_showed = Some(self.listing_never_showed.map_or(wait, |w| w.max(wait)))
            }
        }
    }

    /// The registry's words if it refuses referrers whose subject is an index.
    pub fn index_subject_refused(&self) -> Option<&str> {
        match &self.index_subject {
            Some(Answer::Refused(why)) => Some(why),
            _ => None,
        }
    }

    /// Whether index entries must be removed before the manifests they list.
    pub fn entry_before_delete(&self) -> bool {
        matches!(self.delete_while_listed, Some(Answer::Refused(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_not_undone_by_a_later_acceptance_and_the_longest_lag_is_kept() {
        let mut f = HostFacts::default();
        f.record(Learnt::IndexSubjectRefused("405".into()));
        f.record(Learnt::IndexSubjectAccepted);
        assert_eq!(f.index_subject_refused(), Some("405"));
        f.record(Learnt::ListingLagged(Duration::from_secs(2)));
        f.record(Learnt::ListingLagged(Duration::from_secs(1)));
        assert_eq!(f.listing_lag, Some(Duration::from_secs(2)));
        assert!(!f.entry_before_delete());
        f.record(Learnt::DeleteWhileListedRefused("400".into()));
        assert!(f.entry_before_delete());
        let json = serde_json::to_value(RegistryFacts {
            host: "h".into(),
            index_subject: Some(Answer::Refused("405 UNSUPPORTED".into())),
            deletes: Some(Answer::Accepted),
            ..RegistryFacts::default()
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"host": "h", "deletes": {"answer": "accepted"},
                "index_subject": {"answer": "refused", "detail": "405 UNSUPPORTED"}})
        );
    }
}
