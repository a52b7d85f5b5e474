//! `--write-test`: push a tiny image and referrers of it, then check what the registry does with them.
//! Every object pushed is recorded as it is pushed, so [`super::cleanup`] removes exactly what exists,
//! whatever step failed.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, IF_MATCH};

use super::interpret::{self, Answer};
use super::read::{self, answer_of};
use super::report::{
    Acceptance, DeleteOrder, Fact, IfMatch, Listing, ObjectKind, ReferrersSupport, SubjectHeader, TagContent,
};
use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::Digest;
use crate::model::media_type::{OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};
use crate::model::oci::{Descriptor, ImageManifest, Index, Platform, to_canonical_bytes};
use crate::model::referrers_index::referrer_entry;
use crate::store::Repository;
use crate::store::registry::RegistryRepository;
use crate::store::registry::probe::RawRequest;

/// The artifact type of the test referrer.
pub const PROBE_ARTIFACT_TYPE: &str = "application/vnd.dev.att2ref.probe.v1+json";
/// The artifact type of the second test referrer, which a filtered listing must leave out.
pub const OTHER_ARTIFACT_TYPE: &str = "application/vnd.dev.att2ref.probe.other.v1+json";
const PROBE_CONFIG: &str = "application/vnd.dev.att2ref.probe.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// An entity tag no manifest has.
const STALE_ETAG: &str = "\"att2ref-probe-stale-etag\"";

/// One object pushed.
#[derive(Clone, Debug)]
pub(crate) struct Pushed {
    pub kind: ObjectKind,
    pub reference: String,
}

/// What has been pushed so far, and the test's working state.
pub(crate) struct Stage {
    pub tag: String,
    pub nonce: String,
    /// Objects in the order pushed.
    pub pushed: Vec<Pushed>,
    pub image: Option<Descriptor>,
    pub image_bytes: Option<Bytes>,
    pub image_config: Option<Descriptor>,
    /// An index of the test image, tagged `<tag>-index`, or the registry's refusal of it.
    pub index: Option<Descriptor>,
    pub index_refused: Option<Answer>,
    /// The test referrer (probe type) and the second one (other type).
    pub referrers: Vec<(Descriptor, ImageManifest)>,
    /// Whether the first referrer's PUT carried `OCI-Subject` naming the image.
    pub oci_subject: Option<bool>,
    /// DELETE answers already given, by digest (the delete-order check deletes the referrer early).
    pub deleted: BTreeMap<String, Answer>,
    /// Where the test stopped, if it did.
    pub stopped: Option<String>,
}

impl Stage {
    fn push(&mut self, kind: ObjectKind, reference: impl Into<String>) {
        let reference = reference.into();
        if !self.pushed.iter().any(|p| p.kind == kind && p.reference == reference) {
            self.pushed.push(Pushed { kind, reference });
        }
    }
}

/// What the checks after staging found.
pub(crate) struct Checks {
    pub listed: Fact<Listing>,
    pub oci_subject: Fact<SubjectHeader>,
    pub referrers_tag: Fact<TagContent>,
    pub index_as_subject: Fact<Acceptance>,
    pub if_match: Fact<IfMatch>,
    pub delete_order: Fact<DeleteOrder>,
}

/// How long to wait for a listing that lags writes, and how often to look again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Relisting {
    pub attempts: u32,
    pub delay: Duration,
}

async fn put_manifest(repo: &RegistryRepository, reference: &str, media_type: &str, bytes: &Bytes) -> Result<Answer> {
    Ok(put_manifest_reply(repo, reference, media_type, bytes, None).await?.0)
}

/// A manifest PUT; also returns the `OCI-Subject` header.
async fn put_manifest_reply(
    repo: &RegistryRepository,
    reference: &str,
    media_type: &str,
    bytes: &Bytes,
    if_match: Option<&str>,
) -> Result<(Answer, Option<String>)> {
    let path = format!("manifests/{reference}");
    let mut request = RawRequest::new(Method::PUT, &path).header(CONTENT_TYPE, media_type)?.body(bytes.clone());
    if let Some(etag) = if_match {
        request = request.header(IF_MATCH, etag)?;
    }
    let reply = repo.raw("pull,push", request).await?;
    Ok((answer_of(&reply), reply.header("oci-subject").map(str::to_owned)))
}

fn refused(what: &str, answer: &Answer) -> Error {
    Error::new(ErrorKind::Registry, format!("{what}: the registry answered {}", answer.describe()))
}

async fn put_blob(
    repo: &RegistryRepository,
    stage: &mut Stage,
    media_type: &str,
    bytes: Vec<u8>,
) -> Result<Descriptor> {
    let descriptor = Descriptor::of(media_type, &bytes);
    let digest = repo.put_blob(Bytes::from(bytes)).await?;
    stage.push(ObjectKind::Blob, digest.to_string());
    Ok(descriptor)
}

/// A referrer of `subject` of `artifact_type`, with its own config and layer (no blob shared with
/// anything else, so every blob can be deleted afterwards).
async fn push_referrer(
    repo: &RegistryRepository,
    stage: &mut Stage,
    subject: &Descriptor,
    artifact_type: &str,
    n: u32,
) -> Result<(Descriptor, ImageManifest, Option<String>, Answer)> {
    let config =
        put_blob(repo, stage, PROBE_CONFIG, format!(r#"{{"att2refProbe":"{}"}}"#, stage.nonce).into_bytes()).await?;
    let layer =
        put_blob(repo, stage, artifact_type, format!(r#"{{"att2refProbe":"{}","n":{n}}}"#, stage.nonce).into_bytes())
            .await?;
    let mut manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        artifact_type: Some(artifact_type.to_owned()),
        config,
        layers: vec![layer],
        subject: Some(subject.clone()),
        annotations: BTreeMap::new(),
        extra: BTreeMap::new(),
    };
    manifest.annotations.insert("dev.att2ref.probe".to_owned(), stage.nonce.clone());
    let bytes = Bytes::from(to_canonical_bytes(&manifest));
    let descriptor = Descriptor::of(OCI_MANIFEST, &bytes);
    let (answer, header) = put_manifest_reply(repo, &descriptor.digest.to_string(), OCI_MANIFEST, &bytes, None).await?;
    if (200..=299).contains(&answer.status) {
        stage.push(ObjectKind::Manifest, descriptor.digest.to_string());
    }
    Ok((descriptor, manifest, header, answer))
}

/// Push the test image (config, one layer, manifest under `tag`) and two referrers of it. Stops at the
/// first failure, noting it; what was pushed before stays recorded.
pub(crate) async fn stage(repo: &RegistryRepository, nonce: &str) -> Stage {
    let mut stage = Stage {
        tag: format!("att2ref-probe-{nonce}"),
        nonce: nonce.to_owned(),
        pushed: Vec::new(),
        image: None,
        image_bytes: None,
        image_config: None,
        index: None,
        index_refused: None,
        referrers: Vec::new(),
        oci_subject: None,
        deleted: BTreeMap::new(),
        stopped: None,
    };
    if let Err(e) = push_all(repo, &mut stage).await {
        stage.stopped = Some(format!("{e}"));
    }
    stage
}

async fn push_all(repo: &RegistryRepository, stage: &mut Stage) -> Result<()> {
    let layer = put_blob(repo, stage, LAYER, format!("att2ref probe {}\n", stage.nonce).into_bytes()).await?;
    let config_json = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"dev.att2ref.probe":"{}"}}}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        stage.nonce, layer.digest
    );
    let config = put_blob(repo, stage, OCI_CONFIG, config_json.into_bytes()).await?;
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        artifact_type: None,
        config: config.clone(),
        layers: vec![layer],
        subject: None,
        annotations: BTreeMap::new(),
        extra: BTreeMap::new(),
    };
    let bytes = Bytes::from(to_canonical_bytes(&manifest));
    let image = Descriptor::of(OCI_MANIFEST, &bytes);
    let answer = put_manifest(repo, &stage.tag, OCI_MANIFEST, &bytes).await?;
    if !(200..=299).contains(&answer.status) {
        return Err(refused("pushing the test image", &answer));
    }
    stage.push(ObjectKind::Manifest, image.digest.to_string());
    stage.push(ObjectKind::Tag, stage.tag.clone());
    (stage.image, stage.image_bytes, stage.image_config) = (Some(image.clone()), Some(bytes), Some(config));
    push_index(repo, stage, &image).await?;
    // Migrate lists a subject's referrers before it writes one; a registry that caches listings (Quay,
    // quay#6510) then serves the stale one. Look once before writing, as migrate does, so the listing
    // check below sees such a cache. The answer itself does not matter here.
    let _ = read::list_referrers(repo, &image.digest, None).await;
    for (n, artifact_type) in [(1, PROBE_ARTIFACT_TYPE), (2, OTHER_ARTIFACT_TYPE)] {
        let (descriptor, manifest, header, answer) = push_referrer(repo, stage, &image, artifact_type, n).await?;
        if !(200..=299).contains(&answer.status) {
            return Err(refused("pushing a test referrer", &answer));
        }
        if n == 1 {
            stage.oci_subject = Some(header.is_some_and(|h| h == image.digest.to_string()));
        }
        stage.referrers.push((descriptor, manifest));
    }
    Ok(())
}

/// The checks after staging: listing, `OCI-Subject`, the referrers tag, an index as subject,
/// `If-Match`, and the delete order. `api` is what the read-only probe found.
pub(crate) async fn check(
    repo: &RegistryRepository,
    stage: &mut Stage,
    api: ReferrersSupport,
    relisting: Relisting,
) -> Checks {
    let not_checked = |why: &str| Checks {
        listed: Fact::new(Listing::NotChecked, why),
        oci_subject: Fact::new(SubjectHeader::NotChecked, why),
        referrers_tag: Fact::new(TagContent::NotWritten, why),
        index_as_subject: Fact::new(Acceptance::NotChecked, why),
        if_match: Fact::new(IfMatch::NotChecked, why),
        delete_order: Fact::new(DeleteOrder::NotChecked, why),
    };
    let (Some(image), None) = (stage.image.clone(), stage.stopped.clone()) else {
        let why = format!("the test stopped: {}", stage.stopped.as_deref().unwrap_or("no test image"));
        return not_checked(&why);
    };
    let referrer = stage.referrers[0].0.digest.clone();
    let (listed, referrers_tag, tag_index) = if api == ReferrersSupport::Supported {
        (
            api_listing(repo, &image.digest, &referrer, relisting).await,
            Fact::new(TagContent::NotWritten, "the registry has the referrers API"),
            false,
        )
    } else {
        let (listed, content) = tag_schema(repo, stage, &image.digest, relisting).await;
        (listed, content, true)
    };
    let oci_subject = match stage.oci_subject {
        Some(true) if matches!(listed.value, Listing::Api | Listing::ApiAfterDelay) => {
            Fact::new(SubjectHeader::Honest, "OCI-Subject on the PUT, and the API lists the referrer")
        }
        Some(true) => Fact::new(
            SubjectHeader::Unbacked,
            "OCI-Subject on the PUT, but the referrers API did not list the referrer within the wait: the header proves \
             nothing here",
        ),
        _ => Fact::new(SubjectHeader::Absent, "no OCI-Subject header on the referrer's PUT"),
    };
    let index_as_subject = index_as_subject(repo, stage).await;
    let if_match = if_match(repo, stage).await;
    let delete_order = delete_order(repo, stage, &image.digest, tag_index).await;
    Checks { listed, oci_subject, referrers_tag, index_as_subject, if_match, delete_order }
}

/// Whether the API lists `referrer`, looking again after a delay when it does not at once.
async fn api_listing(
    repo: &RegistryRepository,
    subject: &Digest,
    referrer: &Digest,
    relisting: Relisting,
) -> Fact<Listing> {
    for attempt in 0..=relisting.attempts {
        if attempt > 0 {
            tokio::time::sleep(relisting.delay).await;
        }
        match read::list_referrers(repo, subject, None).await {
            Ok(l) if l.entries.as_ref().is_some_and(|e| e.iter().any(|d| d.digest == *referrer)) => {
                return if attempt == 0 {
                    Fact::new(Listing::Api, "listed by the referrers API at once").status(200)
                } else {
                    let waited = relisting.delay * attempt;
                    Fact::new(
                        Listing::ApiAfterDelay,
                        format!("listed by the referrers API only after {} ms", waited.as_millis()),
                    )
                    .status(200)
                };
            }
            Ok(_) => {}
            Err(e) => return Fact::new(Listing::NotListed, format!("listing the referrers failed: {e}")),
        }
    }
    let waited = relisting.delay * relisting.attempts;
    Fact::new(Listing::NotListed, format!("the referrers API did not list it within {} ms", waited.as_millis()))
}

fn index_bytes(entries: &[&(Descriptor, ImageManifest)]) -> Bytes {
    let mut index = Index::empty();
    index.manifests = entries.iter().map(|(d, m)| referrer_entry(d, m)).collect();
    Bytes::from(to_canonical_bytes(&index))
}

/// Write the tag-schema index listing both referrers, as att2ref's store writes it (canonical JSON,
/// entries with `artifactType` and annotations), and read it back.
async fn tag_schema(
    repo: &RegistryRepository,
    stage: &mut Stage,
    subject: &Digest,
    relisting: Relisting,
) -> (Fact<Listing>, Fact<TagContent>) {
    let tag = subject.referrers_tag();
    let bytes = index_bytes(&stage.referrers.iter().collect::<Vec<_>>());
    let digest = Digest::sha256(&bytes);
    match put_manifest(repo, &tag, OCI_INDEX, &bytes).await {
        Ok(a) if (200..=299).contains(&a.status) => {
            stage.push(ObjectKind::Manifest, digest.to_string());
            stage.push(ObjectKind::Tag, tag.clone());
        }
        Ok(a) => {
            let why = format!("the tag-schema index PUT answered {}", a.describe());
            return (
                Fact::new(Listing::NotListed, &why).status(a.status).code(a.code()),
                Fact::new(TagContent::Absent, why),
            );
        }
        Err(e) => {
            let why = format!("the tag-schema index PUT failed: {e}");
            return (Fact::new(Listing::NotListed, &why), Fact::new(TagContent::Absent, why));
        }
    }
    let referrer = stage.referrers[0].0.digest.clone();
    let mut last = (Fact::new(Listing::NotListed, "not read back"), Fact::new(TagContent::Absent, "not read back"));
    for attempt in 0..=relisting.attempts {
        if attempt > 0 {
            tokio::time::sleep(relisting.delay).await;
        }
        let reply = match read::get_manifest_raw(repo, &tag).await {
            Ok(r) => r,
            Err(e) => {
                let why = format!("reading the tag back failed: {e}");
                return (Fact::new(Listing::NotListed, &why), Fact::new(TagContent::Absent, why));
            }
        };
        let answer = answer_of(&reply);
        let content = if reply.status != 200 {
            let value = if answer.is_not_found() { TagContent::Absent } else { TagContent::Different };
            Fact::new(value, format!("the tag answered {}", answer.describe()))
        } else if reply.body == bytes {
            Fact::new(TagContent::Identical, "the tag holds the index byte for byte as written")
        } else if Digest::sha256(&reply.body) == *subject {
            Fact::new(
                TagContent::ResolvesToSubject,
                "the tag answers with the image itself (read as a digest, as GitLab does): the tag schema cannot be used",
            )
        } else {
            Fact::new(
                TagContent::Different,
                format!("the tag holds {} bytes that differ from the index written", reply.body.len()),
            )
        };
        let content = content.status(answer.status).code(answer.code());
        let lists = serde_json::from_slice::<Index>(&reply.body)
            .is_ok_and(|i| i.manifests.iter().any(|d| d.digest == referrer));
        if reply.status == 200 && lists {
            return (
                Fact::new(Listing::TagSchema, format!("the tag-schema index {tag} lists it")).status(200),
                content,
            );
        }
        last = (Fact::new(Listing::NotListed, format!("the tag {tag} does not list it when read back")), content);
        if content_is_final(&last.1) {
            break;
        }
    }
    last
}

/// Reading again will not change a tag that answers with the image itself.
fn content_is_final(content: &Fact<TagContent>) -> bool {
    content.value == TagContent::ResolvesToSubject
}

/// Push an index of the test image, tagged `<tag>-index` (also a second tag for the tag-paging check).
async fn push_index(repo: &RegistryRepository, stage: &mut Stage, image: &Descriptor) -> Result<()> {
    let mut entry = image.clone();
    entry.platform =
        Some(Platform { architecture: "amd64".into(), os: "linux".into(), variant: None, extra: BTreeMap::new() });
    let mut index = Index::empty();
    index.manifests = vec![entry];
    let bytes = Bytes::from(to_canonical_bytes(&index));
    let descriptor = Descriptor::of(OCI_INDEX, &bytes);
    let index_tag = format!("{}-index", stage.tag);
    let answer = put_manifest(repo, &index_tag, OCI_INDEX, &bytes).await?;
    if (200..=299).contains(&answer.status) {
        stage.push(ObjectKind::Manifest, descriptor.digest.to_string());
        stage.push(ObjectKind::Tag, index_tag);
        stage.index = Some(descriptor);
    } else {
        stage.index_refused = Some(answer);
    }
    Ok(())
}

/// Push a referrer whose subject is the test index.
async fn index_as_subject(repo: &RegistryRepository, stage: &mut Stage) -> Fact<Acceptance> {
    let Some(index) = stage.index.clone() else {
        return match &stage.index_refused {
            Some(a) => Fact::new(Acceptance::NotChecked, format!("the index itself was refused ({})", a.describe()))
                .status(a.status)
                .code(a.code()),
            None => Fact::new(Acceptance::NotChecked, "no test index"),
        };
    };
    match push_referrer(repo, stage, &index, PROBE_ARTIFACT_TYPE, 3).await {
        Ok((_, _, _, a)) if (200..=299).contains(&a.status) => {
            Fact::new(Acceptance::Accepted, "a referrer whose subject is an image index was accepted").status(a.status)
        }
        Ok((_, _, _, a)) => Fact::new(
            Acceptance::Refused,
            format!("a referrer whose subject is an image index was refused ({})", a.describe()),
        )
        .status(a.status)
        .code(a.code()),
        Err(e) => Fact::new(Acceptance::NotChecked, format!("pushing the referrer of the index failed: {e}")),
    }
}

/// Push the image manifest again under its tag with an `If-Match` the tag does not have.
async fn if_match(repo: &RegistryRepository, stage: &Stage) -> Fact<IfMatch> {
    let Some(bytes) = &stage.image_bytes else { return Fact::new(IfMatch::NotChecked, "no test image") };
    let etag = match read::get_manifest_raw(repo, &stage.tag).await {
        Ok(reply) => reply.header("etag").filter(|v| !v.is_empty()).map(str::to_owned),
        Err(e) => return Fact::new(IfMatch::NotChecked, format!("reading the test image failed: {e}")),
    };
    if etag.is_none() {
        return Fact::new(IfMatch::NoEtag, "no ETag on a manifest GET: there is nothing to make a PUT conditional on");
    }
    // The same bytes under the same tag: whether it is applied or refused, the tag does not change.
    match put_manifest_reply(repo, &stage.tag, OCI_MANIFEST, bytes, Some(STALE_ETAG)).await {
        Ok((answer, _)) => interpret::if_match(&answer),
        Err(e) => Fact::new(IfMatch::Unknown, format!("the conditional PUT failed: {e}")),
    }
}

pub(crate) async fn delete_manifest(repo: &RegistryRepository, digest: &str) -> Result<Answer> {
    let path = format!("manifests/{digest}");
    Ok(answer_of(&repo.raw("pull,push,delete", RawRequest::new(Method::DELETE, &path)).await?))
}

/// Delete the test referrer while it is listed; when refused (and not as unsupported), remove its
/// tag-schema index entry and delete it again.
async fn delete_order(
    repo: &RegistryRepository,
    stage: &mut Stage,
    subject: &Digest,
    tag_index: bool,
) -> Fact<DeleteOrder> {
    let referrer = stage.referrers[0].0.digest.to_string();
    let first = match delete_manifest(repo, &referrer).await {
        Ok(a) => a,
        Err(e) => return Fact::new(DeleteOrder::NotChecked, format!("the DELETE failed: {e}")),
    };
    stage.deleted.insert(referrer.clone(), first.clone());
    if (200..=299).contains(&first.status) || first.is_unsupported() || !tag_index {
        return interpret::delete_order(&first, None);
    }
    let bytes = index_bytes(&stage.referrers.iter().skip(1).collect::<Vec<_>>());
    match put_manifest(repo, &subject.referrers_tag(), OCI_INDEX, &bytes).await {
        Ok(a) if (200..=299).contains(&a.status) => {
            stage.push(ObjectKind::Manifest, Digest::sha256(&bytes).to_string())
        }
        _ => return interpret::delete_order(&first, None),
    }
    match delete_manifest(repo, &referrer).await {
        Ok(after) => {
            stage.deleted.insert(referrer, after.clone());
            interpret::delete_order(&first, Some(&after))
        }
        Err(e) => Fact::new(
            DeleteOrder::Refused,
            format!("refused while listed ({}); the DELETE after failed: {e}", first.describe()),
        ),
    }
}
