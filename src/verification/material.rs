//! Trusted material prepared once from a trusted root: parsed log keys, certificate-authority and
//! timestamp-authority chains, each with its validity window, looked up by id and time.

use crate::error::Result;
use crate::model::trust::{CertificateAuthority, TimeRange, TrustedRoot};

use super::cert::fmt_time;
use super::failure::{Failure, FailureReason, fail};
use super::keys::PublicKey;

/// A transparency log the verifier trusts.
#[derive(Clone, Debug)]
pub(crate) struct LogKey {
    pub id: Vec<u8>,
    pub url: String,
    pub key: PublicKey,
    pub valid_for: Option<TimeRange>,
}

/// A certificate authority: its chain (intermediates first, root last) and validity window. Timestamp
/// authorities have the same shape, their chain starting with the TSA's signing (leaf) certificate.
#[derive(Clone, Debug)]
pub(crate) struct Authority {
    pub name: String,
    pub chain: Vec<Vec<u8>>,
    pub valid_for: Option<TimeRange>,
}

/// Log keys and CAs from the trusted root (empty without one).
#[derive(Clone, Debug, Default)]
pub(crate) struct TrustedMaterial {
    pub logs: Vec<LogKey>,
    pub authorities: Vec<Authority>,
    pub timestamp_authorities: Vec<Authority>,
}

impl TrustedMaterial {
    pub fn from_root(root: Option<&TrustedRoot>) -> Result<TrustedMaterial> {
        let Some(root) = root else {
            return Ok(TrustedMaterial::default());
        };
        let mut logs = Vec::with_capacity(root.tlogs.len());
        for t in &root.tlogs {
            let key = PublicKey::from_spki_der(&t.public_key.raw_bytes)
                .map_err(|e| e.context(format!("trusted root: key of log {}", t.base_url)))?;
            logs.push(LogKey {
                id: t.log_id.key_id.clone(),
                url: t.base_url.clone(),
                key,
                valid_for: t.public_key.valid_for.clone(),
            });
        }
        let authorities = authorities_of(&root.certificate_authorities);
        let timestamp_authorities = authorities_of(&root.timestamp_authorities);
        Ok(TrustedMaterial { logs, authorities, timestamp_authorities })
    }

    /// The log with this id whose key was valid at `at`.
    pub fn log(&self, id: &[u8], at: i64) -> Result<&LogKey, Failure> {
        let Some(log) = self.logs.iter().find(|l| l.id == id) else {
            return fail(
                FailureReason::UnknownLog,
                if self.logs.is_empty() {
                    format!("log entry names log {}, but no trusted root with log keys was given", hex::encode(id))
                } else {
                    format!("log entry names log {}, which is not in the trusted root", hex::encode(id))
                },
            );
        };
        if log.valid_for.as_ref().is_some_and(|v| !v.contains(at)) {
            return fail(
                FailureReason::UnknownLog,
                format!(
                    "the key of log {} ({}) was not valid at the entry's time {}",
                    hex::encode(id),
                    log.url,
                    fmt_time(at)
                ),
            );
        }
        Ok(log)
    }

    /// The authorities valid at `at`.
    pub fn authorities_at(&self, at: i64) -> Vec<&Authority> {
        self.authorities.iter().filter(|a| a.valid_for.as_ref().is_none_or(|v| v.contains(at))).collect()
    }
}

fn authorities_of(cas: &[CertificateAuthority]) -> Vec<Authority> {
    cas.iter()
        .filter(|ca| !ca.cert_chain.certificates.is_empty())
        .map(|ca| Authority {
            name: if ca.uri.is_empty() {
                format!("{}/{}", ca.subject.organization, ca.subject.common_name)
            } else {
                ca.uri.clone()
            },
            chain: ca.cert_chain.certificates.iter().map(|c| c.raw_bytes.clone()).collect(),
            valid_for: ca.valid_for.clone(),
        })
        .collect()
}
