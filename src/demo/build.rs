//! The scenario builder: turns "attest this predicate with that signer" into legacy layers and
//! manifests in a [`GeneratedRepo`], recording what it made for the scenario description.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::dsse::{self, STATEMENT_V01};
use super::keys::{TestKey, TestSigner};
use super::oci::{self, GeneratedLayer, SubjectImage};
use super::pki::{self, KeylessIdentity};
use super::rekor::{self, EntryPosition, TestLog};
use super::repo::GeneratedRepo;
use super::{Attachment, AttachmentKind, LayerInfo, Scenario, SignedBy, TlogEntry, TlogKind};
use crate::error::Result;
use crate::model::digest::Digest;
use crate::model::media_type::{self as mt, annotations as ann};
use crate::model::oci::Annotations;

/// First log index handed out; entries count up from here.
const FIRST_LOG_INDEX: i64 = 7_000_000;

/// Who signs a layer and whether it was logged.
#[derive(Clone, Debug)]
pub(crate) struct Signing {
    /// Signed with a key, or keyless with a test-CA leaf certificate.
    pub by: SignedBy,
    /// The log entry kind to record, if any (`None` = `--tlog-upload=false` or pre-Rekor).
    pub tlog: Option<(TestLog, TlogKind)>,
}

impl Signing {
    pub fn key(signer: TestSigner) -> Signing {
        Signing { by: SignedBy::Key(signer), tlog: None }
    }

    pub fn logged(mut self, log: TestLog, kind: TlogKind) -> Signing {
        self.tlog = Some((log, kind));
        self
    }

    pub fn keyless(identity: KeylessIdentity, log: TestLog, kind: TlogKind) -> Signing {
        Signing { by: SignedBy::Keyless(identity), tlog: Some((log, kind)) }
    }

    fn signer(&self) -> TestSigner {
        match &self.by {
            SignedBy::Key(s) => *s,
            SignedBy::Keyless(_) => TestKey::FulcioLeaf.signer(),
        }
    }

    fn deterministic(&self) -> bool {
        self.signer().is_deterministic() && self.tlog.is_none_or(|(log, _)| log.signer().is_deterministic())
    }
}

/// One attestation to make.
pub(crate) struct Att<'a> {
    pub subject: &'a Digest,
    pub predicate_type: &'a str,
    pub predicate: Value,
    /// Write the `predicateType` layer annotation (cosign ≥ v2.0.0 `attest`).
    pub annotate: bool,
    pub signing: Signing,
}

/// Accumulates a scenario.
pub(crate) struct Builder {
    pub repo: GeneratedRepo,
    attachments: Vec<Attachment>,
    deterministic: bool,
    next_entry: i64,
}

impl Builder {
    pub fn new(repository: &str) -> Builder {
        Builder { repo: GeneratedRepo::new(repository), attachments: Vec::new(), deterministic: true, next_entry: 0 }
    }

    /// Push a subject image (config, layer, manifest) under `tags`.
    pub fn image(&mut self, image: &SubjectImage, tags: &[&str]) -> Digest {
        self.repo.add_blob(image.config.clone());
        self.repo.add_blob(image.layer.clone());
        let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
        self.repo.add_manifest(image.manifest.clone(), mt::OCI_MANIFEST, &tags)
    }

    /// Push an index over already pushed images under `tags`.
    pub fn index(&mut self, images: &[&SubjectImage], tags: &[&str]) -> Digest {
        let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
        self.repo.add_manifest(oci::image_index(images), mt::OCI_INDEX, &tags)
    }

    fn next_position(&mut self) -> EntryPosition {
        let n = self.next_entry;
        self.next_entry += 1;
        // Inside the leaf certificates' ten-minute window, one entry every five seconds.
        EntryPosition { log_index: FIRST_LOG_INDEX + n * 17, integrated_time: pki::LEAF_NOT_BEFORE_UNIX + 30 + 5 * n }
    }

    /// Certificate annotations and the verifier PEM for a signing.
    fn material(&self, signing: &Signing, annotations: &mut Annotations) -> Result<String> {
        match &signing.by {
            SignedBy::Key(s) => Ok(s.key().public_pem().to_owned()),
            SignedBy::Keyless(who) => {
                let leaf = pki::leaf(who)?;
                annotations.insert(ann::COSIGN_CERTIFICATE.into(), leaf.pem.clone());
                annotations.insert(ann::COSIGN_CHAIN.into(), pki::root()?.pem);
                Ok(leaf.pem)
            }
        }
    }

    fn log(
        &mut self,
        signing: &Signing,
        body: impl FnOnce() -> Value,
        annotations: &mut Annotations,
    ) -> Result<Option<TlogEntry>> {
        let Some((log, kind)) = signing.tlog else {
            return Ok(None);
        };
        let position = self.next_position();
        annotations.insert(ann::COSIGN_BUNDLE.into(), log.legacy_bundle(&body(), position)?);
        Ok(Some(TlogEntry {
            kind,
            log_key: log.key(),
            log_index: position.log_index,
            integrated_time: position.integrated_time,
        }))
    }

    /// Build one `.att` layer.
    pub fn attestation(&mut self, att: Att<'_>) -> Result<(GeneratedLayer, LayerInfo)> {
        self.deterministic &= att.signing.deterministic();
        let payload =
            dsse::statement(STATEMENT_V01, &self.repo.repository, att.subject, att.predicate_type, &att.predicate);
        let env = dsse::sign_envelope(payload, &att.signing.signer())?;
        let mut annotations = Annotations::new();
        annotations.insert(ann::COSIGN_SIGNATURE.into(), String::new());
        if att.annotate {
            annotations.insert(ann::COSIGN_PREDICATE_TYPE.into(), att.predicate_type.to_owned());
        }
        let verifier = self.material(&att.signing, &mut annotations)?;
        let body = || match att.signing.tlog.map(|(_, k)| k) {
            Some(TlogKind::Intoto) => rekor::intoto_body(&env.bytes, &env.payload, &verifier),
            _ => rekor::dsse_body(&env.bytes, &env.payload, &env.signature, &verifier),
        };
        let tlog = self.log(&att.signing, body, &mut annotations)?;
        let layer = GeneratedLayer { media_type: mt::DSSE_ENVELOPE, bytes: env.bytes, annotations };
        let info = LayerInfo {
            digest: Digest::sha256(&layer.bytes),
            size: layer.bytes.len() as u64,
            predicate_type: Some(att.predicate_type.to_owned()),
            annotated: att.annotate,
            signed_by: att.signing.by,
            tlog,
        };
        Ok((layer, info))
    }

    /// Build one `.sig` layer over the simple-signing payload for `subject`.
    pub fn signature(&mut self, subject: &Digest, signing: Signing) -> Result<(GeneratedLayer, LayerInfo)> {
        self.deterministic &= signing.deterministic();
        let payload = oci::simple_signing_payload(&self.repo.repository, subject, None);
        let sig = signing.signer().sign(&payload)?;
        let mut annotations = Annotations::new();
        annotations.insert(ann::COSIGN_SIGNATURE.into(), STANDARD.encode(&sig));
        let verifier = self.material(&signing, &mut annotations)?;
        let tlog = self.log(&signing, || rekor::hashedrekord_body(&payload, &sig, &verifier), &mut annotations)?;
        let layer = GeneratedLayer { media_type: mt::SIMPLE_SIGNING, bytes: payload, annotations };
        let info = LayerInfo {
            digest: Digest::sha256(&layer.bytes),
            size: layer.bytes.len() as u64,
            predicate_type: None,
            annotated: false,
            signed_by: signing.by,
            tlog,
        };
        Ok((layer, info))
    }

    /// Push a legacy `.att`/`.sig` manifest for `subject` and move its tag to it.
    pub fn attach(
        &mut self,
        kind: AttachmentKind,
        subject: &Digest,
        layers: Vec<(GeneratedLayer, LayerInfo)>,
        created: &str,
    ) -> Digest {
        let (legacy, infos): (Vec<GeneratedLayer>, Vec<LayerInfo>) = layers.into_iter().unzip();
        let (manifest, config) = oci::legacy_manifest_and_config(&legacy, created);
        self.repo.add_blob(config);
        for l in legacy {
            self.repo.add_blob(l.bytes);
        }
        let tag = subject.cosign_tag(kind.suffix());
        let digest = self.repo.add_manifest(manifest, mt::OCI_MANIFEST, std::slice::from_ref(&tag));
        for a in &mut self.attachments {
            if a.tag == tag {
                a.current = false;
            }
        }
        self.attachments.push(Attachment {
            kind,
            subject: subject.clone(),
            tag,
            manifest: digest.clone(),
            current: true,
            layers: infos,
        });
        digest
    }

    pub fn finish(self, name: &'static str, summary: &'static str, image: Digest) -> Scenario {
        Scenario {
            name,
            summary,
            deterministic: self.deterministic,
            image,
            repo: self.repo,
            attachments: self.attachments,
        }
    }
}
