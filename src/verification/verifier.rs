//! The verification pipeline, one straight sequence per entity:
//!
//! 1. normalise the entity (malformed input stops here);
//! 2. the transparency log, unless the policy skips it: every entry's SET and/or inclusion proof under a
//!    log key of the trusted root, which yields the trusted signing time;
//! 3. RFC 3161 timestamps, when the trusted root has timestamp authorities: every one must verify, and the
//!    earliest genTime is the signing time when the log gave none;
//! 4. the signer: a trusted key, or a certificate chaining to a CA valid at that time (a stamp over a DSSE
//!    signature must cover the one that verified);
//! 5. the signature (any DSSE signature under any candidate key; RSA paddings both tried);
//! 6. the log entry body against what was actually signed;
//! 7. the subject against the image digest;
//! 8. the certificate identity and issuer against the policy.

use std::time::{SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::model::cosign::SimpleSigning;
use crate::model::digest::Digest;
use crate::model::intoto::Statement;
use crate::model::rekor::RekorBody;

use super::cert::{CertificateInfo, fmt_time, verify_chain};
use super::entity::{Content, LogEvidence, Material, Normalized, SignedEntity};
use super::failure::{Failure, FailureReason, fail};
use super::keys::{PublicKey, SignatureScheme};
use super::material::TrustedMaterial;
use super::policy::Policy;
use super::result::{LogCheck, Signer, SubjectMatch, TimestampCheck, Verification};
use super::tlog::{Binding, bind_body, verify_bundle_entry, verify_legacy};
use super::tsa;

/// Verifies signed entities against one [`Policy`]. Cheap to share across threads (`Send + Sync`).
#[derive(Debug)]
pub struct Verifier {
    policy: Policy,
    material: TrustedMaterial,
}

// The signature step's outcome.
struct Signed {
    signer: Signer,
    scheme: SignatureScheme,
    index: usize,
    signature: Vec<u8>,
    spki: Vec<u8>,
    cert: Option<CertificateInfo>,
    verified_time: Option<i64>,
}

impl Verifier {
    /// Prepare a verifier; rejects policies that could never verify anything.
    pub fn new(policy: Policy) -> Result<Verifier> {
        if policy.keys.is_empty() && policy.trusted_root.is_none() {
            return Err(Error::invalid_input(
                "verification policy trusts nothing: give a public key or a trusted root",
            ));
        }
        if !policy.identities.is_empty() && policy.trusted_root.is_none() {
            return Err(Error::invalid_input(
                "certificate identities need a trusted root (its certificate authorities anchor the chains)",
            ));
        }
        // Keys without a trusted root and without skipping the log are allowed: each attestation then fails
        // on its own, precisely (no log entry, or a log entry from a log nobody trusts), as cosign does.
        let material = TrustedMaterial::from_root(policy.trusted_root.as_deref())?;
        Ok(Verifier { policy, material })
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Verify every entity against the same image, in parallel (rayon); results keep the input order.
    pub fn verify_all(&self, entities: &[SignedEntity], image: &Digest) -> Vec<Result<Verification, Failure>> {
        entities.par_iter().map(|e| self.verify(e, image)).collect()
    }

    /// Verify one entity as an attestation or signature of `image`.
    pub fn verify(&self, entity: &SignedEntity, image: &Digest) -> Result<Verification, Failure> {
        let n = entity.normalize().map_err(Failure::from)?;
        let (log, bodies, log_time) = self.check_log(&n)?;
        let stamps = tsa::check_timestamps(&self.material.timestamp_authorities, entity, &n.content)?;
        let stamp_time = stamps.as_deref().and_then(tsa::earliest);
        let signed = self.check_signer(&n, log_time.or(stamp_time))?;
        if let Some(stamps) = &stamps {
            tsa::check_covers_signature(stamps, signed.index)?;
        }
        // The binding hashes the whole layer and payload (megabytes for an SBOM): only for log entries.
        if !bodies.is_empty() {
            let binding = binding(&n, &signed);
            for body in &bodies {
                bind_body(body, &binding)?;
            }
        }
        let (subject, predicate_type) = check_subject(&n.content, image)?;
        let mut signer = signed.signer;
        if let (Some(cert), Signer::Certificate { identity, .. }) = (&signed.cert, &mut signer) {
            *identity = self.check_identity(cert)?;
        }
        Ok(Verification {
            entity: n.kind,
            signer,
            signature_index: signed.index,
            scheme: signed.scheme,
            subject,
            predicate_type,
            log,
            verified_time: signed.verified_time,
            timestamps: match stamps {
                _ if n.timestamps == 0 => TimestampCheck::None,
                None => TimestampCheck::NotChecked { count: n.timestamps },
                Some(stamps) => TimestampCheck::Verified { stamps: stamps.into_iter().map(|s| s.record).collect() },
            },
        })
    }

    fn check_log(&self, n: &Normalized<'_>) -> Result<(LogCheck, Vec<RekorBody>, Option<i64>), Failure> {
        if self.policy.insecure_ignore_tlog {
            return Ok((LogCheck::Skipped, Vec::new(), None));
        }
        match &n.log {
            LogEvidence::None => fail(
                FailureReason::NoLogEntry,
                "no transparency log entry; such attestations verify only when the log is skipped explicitly \
                 (insecure_ignore_tlog)",
            ),
            LogEvidence::Legacy(b) => {
                let check = verify_legacy(&self.material, b)?;
                let time = check.integrated_time;
                Ok((LogCheck::Verified { entries: vec![check] }, vec![b.body.clone()], Some(time)))
            }
            LogEvidence::Bundle { version, entries } => {
                let mut checks = Vec::with_capacity(entries.len());
                let mut bodies = Vec::with_capacity(entries.len());
                let mut time: Option<i64> = None;
                for entry in entries.iter() {
                    let body = RekorBody::parse(&entry.canonicalized_body)
                        .map_err(|e| Failure::from(e).context(format!("log entry {}", entry.log_index)))?;
                    let check = verify_bundle_entry(&self.material, *version, entry, &body)?;
                    if check.promise_verified {
                        time = Some(time.map_or(check.integrated_time, |t| t.min(check.integrated_time)));
                    }
                    checks.push(check);
                    bodies.push(body);
                }
                Ok((LogCheck::Verified { entries: checks }, bodies, time))
            }
        }
    }

    fn check_signer(&self, n: &Normalized<'_>, trusted_time: Option<i64>) -> Result<Signed, Failure> {
        match &n.material {
            Material::Key { hint } => {
                if self.policy.keys.is_empty() {
                    return fail(
                        FailureReason::UnknownKey,
                        "the attestation is signed with a key (it carries no certificate), but the policy has no keys",
                    );
                }
                let candidates: Vec<&PublicKey> = match hint {
                    Some(h) => self.policy.keys.iter().filter(|k| k.key_id() == h).collect(),
                    None => self.policy.keys.iter().collect(),
                };
                if candidates.is_empty() {
                    return fail(
                        FailureReason::UnknownKey,
                        format!(
                            "the attestation names key {}, which is not a trusted key (trusted: {})",
                            hint.as_deref().unwrap_or_default(),
                            self.key_ids()
                        ),
                    );
                }
                let (index, key, scheme, signature) = verify_content(&n.content, &candidates)?;
                Ok(Signed {
                    signer: Signer::Key { key_id: key.key_id().to_string() },
                    scheme,
                    index,
                    signature,
                    spki: key.spki_der().to_vec(),
                    cert: None,
                    verified_time: None,
                })
            }
            Material::Certificate { leaf } => {
                let cert = CertificateInfo::from_der(leaf).map_err(Failure::from)?;
                // A certificate whose key the user trusts directly verifies as that key (cosign `--key`).
                if let Some(key) = self.policy.keys.iter().find(|k| k.spki_der() == cert.public_key.spki_der()) {
                    let (index, key, scheme, signature) = verify_content(&n.content, &[key])?;
                    return Ok(Signed {
                        signer: Signer::Key { key_id: key.key_id().to_string() },
                        scheme,
                        index,
                        signature,
                        spki: key.spki_der().to_vec(),
                        cert: Some(cert),
                        verified_time: None,
                    });
                }
                if self.policy.identities.is_empty() {
                    return fail(
                        FailureReason::NoIdentityPolicy,
                        "the attestation is signed with a certificate, but the policy names no certificate identity \
                         and issuer to accept",
                    );
                }
                let at = match trusted_time {
                    Some(t) => t,
                    None if self.policy.insecure_ignore_tlog => self.policy.verification_time.unwrap_or_else(now),
                    None => {
                        return fail(
                            FailureReason::NoTrustedTime,
                            "no log entry with a verified signed entry timestamp, and no RFC 3161 timestamp verified \
                             against a trusted-root timestamp authority, gives a signing time to check the \
                             certificate at",
                        );
                    }
                };
                let authority = self.check_chain(&cert, at)?;
                let (index, _, scheme, signature) = verify_content(&n.content, &[&cert.public_key])?;
                Ok(Signed {
                    signer: Signer::Certificate {
                        identity: String::new(),
                        sans: cert.sans.clone(),
                        issuer: cert.oidc_issuer.clone().unwrap_or_default(),
                        authority,
                        certificate_sha256: hex::encode(Sha256::digest(&cert.der)),
                    },
                    scheme,
                    index,
                    signature,
                    spki: cert.public_key.spki_der().to_vec(),
                    cert: Some(cert),
                    verified_time: Some(at),
                })
            }
        }
    }

    // Try each CA valid at `at`; report the most specific failure when none accepts the chain.
    fn check_chain(&self, cert: &CertificateInfo, at: i64) -> Result<String, Failure> {
        cert.check_usable_at(at)?;
        let authorities = self.material.authorities_at(at);
        if authorities.is_empty() {
            return fail(
                FailureReason::UntrustedChain,
                format!("the trusted root has no certificate authority valid at {}", fmt_time(at)),
            );
        }
        // Paths are built only from each authority's own chain, as sigstore-go does: an intermediate the
        // attestation supplies (legacy chain annotation, bundle chain) could re-admit a CA the trusted root
        // retired.
        let mut worst: Option<Failure> = None;
        for a in authorities {
            match verify_chain(cert, &[a.chain.as_slice()], at) {
                Ok(()) => return Ok(a.name.clone()),
                Err(f) => {
                    if worst.as_ref().is_none_or(|w| w.reason == FailureReason::UntrustedChain) {
                        worst = Some(f);
                    }
                }
            }
        }
        Err(worst.unwrap_or_else(|| Failure::new(FailureReason::UntrustedChain, "no certificate authority matched")))
    }

    // Returns the SAN that matched.
    fn check_identity(&self, cert: &CertificateInfo) -> Result<String, Failure> {
        let mut san_matched = false;
        for id in &self.policy.identities {
            if let Some(san) = id.matching_san(cert) {
                san_matched = true;
                if id.issuer_matches(cert) {
                    return Ok(san.value().to_string());
                }
            }
        }
        let sans: Vec<&str> = cert.sans.iter().map(|s| s.value()).collect();
        let wanted: Vec<String> = self.policy.identities.iter().map(|i| i.to_string()).collect();
        if san_matched {
            fail(
                FailureReason::IssuerMismatch,
                format!(
                    "certificate OIDC issuer {:?} is not accepted for its identity (policy: {})",
                    cert.oidc_issuer.as_deref().unwrap_or("<none>"),
                    wanted.join("; ")
                ),
            )
        } else {
            fail(
                FailureReason::IdentityMismatch,
                format!("certificate identities {sans:?} match no policy identity ({})", wanted.join("; ")),
            )
        }
    }

    fn key_ids(&self) -> String {
        self.policy.keys.iter().map(|k| k.key_id()).collect::<Vec<_>>().join(", ")
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

// Any signature under any candidate key; returns (signature index, key, scheme, signature bytes).
fn verify_content<'k>(
    content: &Content<'_>,
    keys: &[&'k PublicKey],
) -> Result<(usize, &'k PublicKey, SignatureScheme, Vec<u8>), Failure> {
    match content {
        Content::Dsse { envelope, .. } => {
            if envelope.signatures.is_empty() {
                return fail(FailureReason::Malformed, "DSSE envelope has no signatures");
            }
            let pae = envelope.pae();
            for (i, sig) in envelope.signatures.iter().enumerate() {
                for key in keys {
                    if let Some(scheme) = key.verify(&pae, &sig.sig) {
                        return Ok((i, key, scheme, sig.sig.clone()));
                    }
                }
            }
            fail(
                FailureReason::SignatureInvalid,
                format!(
                    "none of the envelope's {} signature(s) verifies over its payload under {} candidate key(s) \
                     ({}); the payload was changed or another key signed it",
                    envelope.signatures.len(),
                    keys.len(),
                    keys.iter().map(|k| k.key_id()).collect::<Vec<_>>().join(", ")
                ),
            )
        }
        Content::Message { payload, sha256, signature } => {
            for key in keys {
                let scheme = match payload {
                    Some(p) => key.verify(p, signature),
                    None => key.verify_sha256_prehashed(sha256, signature),
                };
                if let Some(scheme) = scheme {
                    return Ok((0, key, scheme, signature.clone()));
                }
            }
            fail(
                FailureReason::SignatureInvalid,
                format!(
                    "the signature does not verify over the signed payload (sha256:{}) under {} candidate key(s) ({})",
                    hex::encode(sha256),
                    keys.len(),
                    keys.iter().map(|k| k.key_id()).collect::<Vec<_>>().join(", ")
                ),
            )
        }
    }
}

fn binding<'a>(n: &'a Normalized<'_>, s: &'a Signed) -> Binding<'a> {
    let (layer_sha256, message_sha256, payload_sha256) = match &n.content {
        Content::Dsse { envelope, raw, .. } => {
            (raw.map(|r| hex::encode(Sha256::digest(r))), None, Some(hex::encode(Sha256::digest(&envelope.payload))))
        }
        Content::Message { payload, sha256, .. } => {
            let hex_digest = hex::encode(sha256);
            (payload.map(|_| hex_digest.clone()), Some(hex_digest), None)
        }
    };
    Binding {
        layer_sha256,
        message_sha256,
        payload_sha256,
        signature: &s.signature,
        cert_der: s.cert.as_ref().map(|c| c.der.as_slice()),
        spki_der: &s.spki,
    }
}

fn check_subject(content: &Content<'_>, image: &Digest) -> Result<(SubjectMatch, Option<String>), Failure> {
    match content {
        Content::Dsse { envelope, statement, .. } => {
            // As sigstore-go: an attestation's envelope must declare an in-toto payload. Parsing any
            // other payload as a statement would let a signature over something else pass as one.
            if !envelope.is_in_toto() {
                let shown: String = envelope.payload_type.chars().take(100).collect();
                return fail(
                    FailureReason::Malformed,
                    format!("DSSE payloadType is {shown:?}, not application/vnd.in-toto+json"),
                );
            }
            let parsed;
            let statement = match statement {
                Some(statement) => *statement,
                None => {
                    parsed = Statement::parse(&envelope.payload)
                        .map_err(|e| Failure::from(e).context("the signed DSSE payload"))?;
                    &parsed
                }
            };
            match statement.matching_subject(image) {
                Some(s) => Ok((
                    SubjectMatch { name: s.name.clone(), digest: image.to_string() },
                    Some(statement.predicate_type.clone()),
                )),
                None => {
                    let listed: Vec<String> = statement
                        .subjects
                        .iter()
                        .map(|s| {
                            let digests: Vec<String> = s.digest.iter().map(|(a, v)| format!("{a}:{v}")).collect();
                            format!("{} [{}]", s.name, digests.join(", "))
                        })
                        .collect();
                    fail(
                        FailureReason::SubjectMismatch,
                        format!("no statement subject matches image {image}; subjects: {}", listed.join("; ")),
                    )
                }
            }
        }
        Content::Message { payload: Some(p), .. } => {
            let ss = SimpleSigning::parse(p).map_err(|e| Failure::from(e).context("the signed payload"))?;
            if ss.matches(image) {
                Ok((SubjectMatch { name: ss.docker_reference, digest: image.to_string() }, None))
            } else {
                fail(
                    FailureReason::SubjectMismatch,
                    format!("the signature is for image {}, not {image}", ss.image_digest),
                )
            }
        }
        Content::Message { payload: None, .. } => fail(
            FailureReason::Malformed,
            "a message-signature bundle binds an image only through its signed payload, which was not given",
        ),
    }
}
