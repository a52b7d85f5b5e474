//! Turning what the readers found into report entries (pure).

use crate::model::cosign::LegacyLayerAnnotations;
use crate::model::cosign::SimpleSigning;
use crate::model::digest::Digest;
use crate::model::envelope_prefix::PrefixGuess;
use crate::model::intoto::Statement;
use crate::model::oci::Descriptor;
use crate::model::predicate::{self, ContentHint, hint_predicate, hint_statement};
use crate::model::time::format_unix;
use crate::read::legacy::{LayerContent, LegacyLayer};
use crate::read::referrers::{Referrer, ReferrerContent};

use super::report::{Anomaly, ContentHintReport, LegacyLayerReport as LayerReport, LogEntryInfo, ReferrerReport};

/// Report entry for one legacy layer, plus the anomalies it shows.
pub(crate) fn legacy_layer(image: &Digest, layer: &LegacyLayer, tag: &str) -> (LayerReport, Vec<Anomaly>) {
    let mut anomalies = Vec::new();
    let a = &layer.annotations;
    for problem in a.problems() {
        anomalies.push(Anomaly::new(
            "bad-layer-annotation",
            format!("{tag} layer {}: annotation {}: {}", layer.index, problem.key, problem.message),
        ));
    }
    let log_entry = a.rekor_bundle().map(|b| LogEntryInfo {
        kind: format!("{}/{}", b.body.kind, b.body.api_version),
        log_index: b.payload.log_index,
        integrated_time: format_unix(b.payload.integrated_time)
            .unwrap_or_else(|_| b.payload.integrated_time.to_string()),
        log_id: b.payload.log_id.clone(),
    });
    let mut report = LayerReport {
        index: layer.index,
        digest: layer.descriptor.digest.clone(),
        size: layer.descriptor.size,
        media_type: layer.descriptor.media_type.clone(),
        content: "unknown".into(),
        predicate_type: None,
        predicate_short_name: None,
        predicate_type_annotation: a.predicate_type.clone(),
        statement_type: None,
        subject_digests: Vec::new(),
        subject_matches: None,
        signer: signer_kind(a).into(),
        certificate_identity: None,
        certificate_issuer: None,
        signatures: 0,
        log_entry,
        rfc3161_timestamp: a.rfc3161_timestamp.is_some(),
        hint: None,
        custom_timestamp: None,
        read: "whole".into(),
        prefix_bytes: None,
    };
    match a.certificate_der() {
        Ok(Some(der)) => match certificate_summary(&der) {
            Ok((identity, issuer)) => (report.certificate_identity, report.certificate_issuer) = (identity, issuer),
            Err(e) => anomalies.push(Anomaly::new("bad-certificate", format!("{tag} layer {}: {e}", layer.index))),
        },
        Ok(None) => {}
        Err(e) => anomalies.push(Anomaly::new("bad-certificate", format!("{tag} layer {}: {e}", layer.index))),
    }
    match &layer.content {
        LayerContent::Attestation(att) => {
            report.content = "dsse-envelope".into();
            anomalies.extend(media_type_anomaly(tag, layer.index, &layer.descriptor.media_type));
            report.signatures = att.envelope().signatures.len();
            fill_statement(&mut report, att.statement(), image);
            if let Some(annotated) = &a.predicate_type
                && annotated != &att.statement().predicate_type
            {
                anomalies.push(Anomaly::new(
                    "predicate-type-annotation-mismatch",
                    format!(
                        "{tag} layer {}: unsigned annotation says {annotated:?} but the signed statement says {:?}",
                        layer.index,
                        att.statement().predicate_type
                    ),
                ));
            }
            if report.subject_matches == Some(false) {
                anomalies.push(Anomaly::new(
                    "subject-mismatch",
                    format!("{tag} layer {}: the statement's subjects do not name {image}", layer.index),
                ));
            }
        }
        LayerContent::SimpleSigning { payload, .. } => {
            report.content = "simple-signing".into();
            report.signatures = usize::from(a.signature.as_deref().is_some_and(|s| !s.is_empty()));
            fill_simple_signing(&mut report, payload, image);
            if report.subject_matches == Some(false) {
                anomalies.push(Anomaly::new(
                    "subject-mismatch",
                    format!("{tag} layer {}: docker-manifest-digest does not name {image}", layer.index),
                ));
            }
        }
        LayerContent::NotRead => {
            report.content = "sbom".into();
            report.signer = "none".into();
        }
    }
    (report, anomalies)
}

/// `certificate` when the layer carries one (keyless or a user certificate), else `key`.
fn signer_kind(a: &LegacyLayerAnnotations) -> &'static str {
    if a.certificate_pem.as_deref().is_some_and(|c| !c.is_empty()) { "certificate" } else { "key" }
}

/// The first SAN and the Fulcio OIDC issuer of a certificate, for display (not verified here).
fn certificate_summary(der: &[u8]) -> crate::Result<(Option<String>, Option<String>)> {
    let info = crate::verification::CertificateInfo::from_der(der)?;
    Ok((info.sans.first().map(|s| s.value().to_owned()), info.oidc_issuer))
}

fn fill_statement(report: &mut LayerReport, statement: &Statement, image: &Digest) {
    report.predicate_type = Some(statement.predicate_type.clone());
    report.predicate_short_name = predicate::short_name(&statement.predicate_type).map(str::to_owned);
    report.statement_type = Some(statement.version.type_uri().to_owned());
    report.subject_digests =
        statement.subjects.iter().flat_map(|s| s.digest.iter().map(|(alg, hex)| format!("{alg}:{hex}"))).collect();
    report.subject_matches = Some(statement.matches(image));
    // The outline, as `migrate` reads the hint and the created time from it: the same answers.
    let value = predicate::predicate_outline(statement);
    report.hint = Some(hint_report(hint_predicate(&statement.predicate_type, value.as_ref())));
    report.custom_timestamp =
        value.as_ref().and_then(predicate::unwrap_cosign_data).and_then(|w| w.timestamp).map(str::to_owned);
}

fn fill_simple_signing(report: &mut LayerReport, payload: &SimpleSigning, image: &Digest) {
    report.subject_digests = vec![payload.image_digest.to_string()];
    report.subject_matches = Some(payload.matches(image));
}

fn hint_report(h: ContentHint) -> ContentHintReport {
    ContentHintReport { id: h.id(), label: h.label(), unsigned: true, from_prefix: false }
}

/// An `.att` layer that is not typed as a DSSE envelope is still read as one, and said so.
fn media_type_anomaly(tag: &str, index: usize, media_type: &str) -> Option<Anomaly> {
    (media_type != crate::model::media_type::DSSE_ENVELOPE).then(|| {
        Anomaly::new(
            "unexpected-layer-media-type",
            format!(
                "{tag} layer {index}: media type {media_type:?} is not the DSSE envelope type; read as an envelope by \
                 its content, as cosign does"
            ),
        )
    })
}

/// Report entry for an `.att` layer of which only the first `bytes` were read (see
/// [`guess_envelope_prefix`](crate::model::envelope_prefix::guess_envelope_prefix)): what its annotations
/// say, and the predicate type and hint its start names. Nothing of it was checked.
pub(crate) fn legacy_layer_from_prefix(
    image: &Digest,
    descriptor: &Descriptor,
    index: usize,
    guess: &PrefixGuess,
    bytes: u64,
    tag: &str,
) -> (LayerReport, Vec<Anomaly>) {
    let layer = LegacyLayer {
        index,
        descriptor: descriptor.clone(),
        annotations: LegacyLayerAnnotations::from_descriptor(descriptor),
        content: LayerContent::NotRead,
    };
    // Only what the annotations show can be wrong here; the content's anomalies need `--full`.
    let (mut report, mut anomalies) = legacy_layer(image, &layer, tag);
    anomalies.extend(media_type_anomaly(tag, index, &descriptor.media_type));
    report.content = "dsse-envelope".into();
    report.signer = signer_kind(&layer.annotations).into();
    report.predicate_type = guess.predicate_type.clone();
    report.predicate_short_name = guess.predicate_type.as_deref().and_then(predicate::short_name).map(str::to_owned);
    report.hint = guess.hint.clone().map(|h| ContentHintReport { from_prefix: true, ..hint_report(h) });
    report.read = "prefix".into();
    report.prefix_bytes = Some(bytes);
    if let (Some(annotated), Some(read)) = (&layer.annotations.predicate_type, &guess.predicate_type)
        && annotated != read
    {
        anomalies.push(Anomaly::new(
            "predicate-type-annotation-mismatch",
            format!(
                "{tag} layer {index}: unsigned annotation says {annotated:?} but the statement's first bytes say \
                 {read:?} (unchecked; --full reads and checks it)"
            ),
        ));
    }
    (report, anomalies)
}

/// Report entry for one referrer, plus the anomalies it shows.
pub(crate) fn referrer(image: &Digest, r: &Referrer) -> (ReferrerReport, Vec<Anomaly>) {
    let mut anomalies = Vec::new();
    let short = r.raw.digest.short();
    let annotations = r.raw.manifest.annotations();
    let manifest_type = r.raw.manifest.effective_artifact_type().map(str::to_owned);
    let listed_type = r.listed.artifact_type.clone();
    if listed_type.is_none() {
        anomalies.push(Anomaly::new(
            "index-entry-without-artifact-type",
            format!("referrer {short}: its listing entry has no artifactType (older writers; cosign#5098)"),
        ));
    } else if listed_type != manifest_type {
        anomalies.push(Anomaly::new(
            "artifact-type-mismatch",
            format!(
                "referrer {short}: listed as {} but the manifest says {}",
                quoted(listed_type.as_deref()),
                quoted(manifest_type.as_deref())
            ),
        ));
    }
    for key in annotations.keys() {
        if r.listed.annotations.get(key) != annotations.get(key) {
            anomalies.push(Anomaly::new(
                "index-entry-annotation-missing",
                format!("referrer {short}: listing entry lacks or changes manifest annotation {key}"),
            ));
            break;
        }
    }
    match r.raw.manifest.subject() {
        // A manifest cannot name its own digest, but an index entry can list the image itself.
        _ if &r.raw.digest == image => anomalies.push(Anomaly::new(
            "referrer-is-its-subject",
            format!("referrer {short}: the listing names the image itself as one of its referrers"),
        )),
        Some(s) if &s.digest == image => {}
        Some(s) => anomalies.push(Anomaly::new(
            "referrer-subject-mismatch",
            format!("referrer {short}: listed for {image} but its subject is {}", s.digest),
        )),
        None => anomalies
            .push(Anomaly::new("referrer-without-subject", format!("referrer {short}: manifest has no subject"))),
    }
    if r.format == crate::read::referrers::ReferrerFormat::ArtifactManifest {
        anomalies.push(Anomaly::new(
            "obsolete-artifact-manifest",
            format!("referrer {short}: uses the artifact manifest removed before image-spec 1.1.0"),
        ));
    }
    let mut report = ReferrerReport {
        digest: r.raw.digest.clone(),
        size: r.raw.bytes.len() as u64,
        media_type: r.raw.media_type.clone(),
        artifact_type: listed_type.or(manifest_type),
        format: r.format.as_str().into(),
        bundle_version: None,
        bundle_content: annotations.get(crate::model::media_type::annotations::BUNDLE_CONTENT).cloned(),
        predicate_type: r.predicate_type().map(str::to_owned),
        predicate_type_annotation: r.predicate_type_annotation().map(str::to_owned),
        signer: None,
        certificate_identity: None,
        certificate_issuer: None,
        log_entries: None,
        inclusion_proofs: None,
        created: annotations.get(crate::model::media_type::annotations::OCI_CREATED).cloned(),
        layers_size: r.layers().iter().fold(0u64, |a, l| a.saturating_add(l.size)),
        writer_hint: crate::read::referrers::writer_hint(&r.raw.manifest).map(str::to_owned),
        hint: None,
    };
    let statement = match &r.content {
        Some(ReferrerContent::Bundle { bundle, statement, .. }) => {
            use crate::model::bundle::{BundleContent, VerificationKey};
            report.bundle_version = Some(format!("{:?}", bundle.version).replace('_', ".").to_lowercase());
            report.bundle_content = Some(
                match bundle.content {
                    BundleContent::DsseEnvelope(_) => "dsse-envelope",
                    BundleContent::MessageSignature(_) => "message-signature",
                }
                .into(),
            );
            let leaf = match &bundle.verification_material.key {
                VerificationKey::PublicKey(_) => None,
                VerificationKey::Certificate(c) => Some(c.raw_bytes.as_slice()),
                VerificationKey::X509CertificateChain(chain) => {
                    chain.certificates.first().map(|c| c.raw_bytes.as_slice())
                }
            };
            report.signer = Some(if leaf.is_some() { "certificate" } else { "key" }.into());
            if let Some(der) = leaf {
                match certificate_summary(der) {
                    Ok((identity, issuer)) => {
                        (report.certificate_identity, report.certificate_issuer) = (identity, issuer)
                    }
                    Err(e) => anomalies.push(Anomaly::new("bad-certificate", format!("referrer {short}: {e}"))),
                }
            }
            let entries = &bundle.verification_material.tlog_entries;
            report.log_entries = Some(entries.len());
            report.inclusion_proofs = Some(entries.iter().all(|e| e.inclusion_proof.is_some()));
            statement.as_ref()
        }
        Some(ReferrerContent::Dsse { statement, .. }) => Some(statement),
        None => None,
    };
    if let Some(statement) = statement {
        report.hint = Some(hint_report(hint_statement(statement)));
        if !statement.matches(image) {
            anomalies.push(Anomaly::new(
                "subject-mismatch",
                format!("referrer {short}: the statement's subjects do not name {image}"),
            ));
        }
        if let Some(annotated) = &report.predicate_type_annotation
            && annotated != &statement.predicate_type
        {
            anomalies.push(Anomaly::new(
                "predicate-type-annotation-mismatch",
                format!(
                    "referrer {short}: annotation says {annotated:?} but the signed statement says {:?}",
                    statement.predicate_type
                ),
            ));
        }
    }
    (report, anomalies)
}

/// A value for a message: quoted (control characters escaped), or `none`.
fn quoted(value: Option<&str>) -> String {
    value.map_or_else(|| "none".to_owned(), |v| format!("{v:?}"))
}

#[cfg(test)]
mod tests {
    use super::quoted;

    #[test]
    fn values_in_messages_are_quoted_or_none() {
        assert_eq!(quoted(Some("application/x-a")), "\"application/x-a\"");
        assert_eq!(quoted(Some("a\nb")), "\"a\\nb\"");
        assert_eq!(quoted(None), "none");
    }
}
