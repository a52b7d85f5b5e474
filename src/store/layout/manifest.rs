//! Manifests, tags and referrers of a layout.

use bytes::Bytes;
use serde::Deserialize;

use super::files::file_size;
use super::{Layout, index};
use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::{Algorithm, Digest};
use crate::model::oci::{Descriptor, Manifest, RawManifest};
use crate::model::reference::is_valid_tag;
use crate::store::{PutManifest, Referrers, ReferrersSource};

/// What a `reference` argument names.
#[derive(Debug, PartialEq)]
enum Target {
    Tag(String),
    Digest(Digest),
}

/// A reference starting with a digest algorithm we know is a digest and must parse as one; anything
/// else is looked up as a `ref.name` exactly as written (other tools' names are not always tags by
/// the distribution grammar, and a lookup never turns the name into a path).
fn parse_target(reference: &str) -> Result<Target> {
    if reference.is_empty() {
        return Err(Error::invalid_input("the manifest reference is empty"));
    }
    let is_digest = [Algorithm::Sha256, Algorithm::Sha512]
        .iter()
        .any(|a| reference.strip_prefix(a.as_str()).is_some_and(|rest| rest.starts_with(':')));
    if is_digest {
        let digest = reference
            .parse()
            .map_err(|e: Error| Error::invalid_input(format!("invalid manifest digest: {}", e.message())))?;
        Ok(Target::Digest(digest))
    } else {
        Ok(Target::Tag(reference.to_owned()))
    }
}

/// The manifest's own `artifactType` field (not the config-media-type fallback): what a registry
/// copies into a referrers listing and what `index.json` entries carry.
pub(super) fn own_artifact_type(manifest: &Manifest) -> Option<String> {
    match manifest {
        Manifest::Image(m) => m.artifact_type.clone(),
        Manifest::Index(i) => i.artifact_type.clone(),
        Manifest::Artifact(a) => a.artifact_type.clone(),
    }
}

/// The body's own `mediaType`, if it has one.
fn body_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Probe>(bytes).ok()?.media_type
}

impl Layout {
    pub(super) fn get_manifest(&self, reference: &str) -> Result<Option<RawManifest>> {
        let max = self.limits.max_manifest_bytes;
        match parse_target(reference)? {
            Target::Digest(digest) => {
                let Some(bytes) = self.read_verified(&digest, max)? else {
                    return Ok(None);
                };
                // A body without mediaType leaves the type to the referring descriptor, which here
                // can only be an index.json entry.
                let declared = match body_media_type(&bytes) {
                    Some(_) => None,
                    None => index::media_type_of(&self.read_index()?, &digest).map(str::to_owned),
                };
                self.raw_manifest(bytes, digest, declared.as_deref()).map(Some)
            }
            Target::Tag(tag) => {
                let Some(entry) = index::resolve_tag(&self.read_index()?, &tag)? else {
                    return Ok(None);
                };
                // The index names it, so a missing file is a broken layout, not an absent manifest:
                // answering "absent" would invite the caller to write over the tag.
                let bytes = self.read_verified(&entry.digest, max)?.ok_or_else(|| {
                    Error::invalid_format(format!(
                        "index.json tags {tag:?} as {} but {} is missing",
                        entry.digest,
                        self.blob_path(&entry.digest).display()
                    ))
                })?;
                let declared = Some(entry.media_type.as_str()).filter(|t| !t.is_empty());
                self.raw_manifest(bytes, entry.digest, declared).map(Some)
            }
        }
    }

    fn raw_manifest(&self, bytes: Vec<u8>, digest: Digest, declared: Option<&str>) -> Result<RawManifest> {
        let (manifest, media_type) =
            Manifest::parse(&bytes, declared).map_err(|e| e.context(self.blob_path(&digest).display()))?;
        // Built by hand rather than with RawManifest::parse, which assumes SHA-256: the digest here
        // is the one the file was checked against.
        Ok(RawManifest { bytes: Bytes::from(bytes), digest, media_type, manifest, etag: None })
    }

    pub(super) fn put_manifest(&self, bytes: &[u8], media_type: &str, tag: Option<&str>) -> Result<PutManifest> {
        if let Some(t) = tag.filter(|t| !is_valid_tag(t)) {
            return Err(Error::invalid_input(format!(
                "invalid tag {t:?}: tags are [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}"
            )));
        }
        let max = self.limits.max_manifest_bytes;
        if bytes.len() as u64 > max {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("the manifest is {} bytes, more than the limit of {max}", bytes.len()),
            ));
        }
        let declared = Some(media_type).filter(|t| !t.is_empty());
        let (manifest, parsed_type) = Manifest::parse(bytes, declared)?;
        if declared.is_some_and(|d| d != parsed_type) {
            return Err(Error::invalid_input(format!(
                "the manifest says its mediaType is {parsed_type:?} but it was given as {media_type:?}"
            )));
        }
        let digest = self.store_blob(bytes)?;
        let mut entry = Descriptor::of(&parsed_type, bytes);
        entry.artifact_type = own_artifact_type(&manifest);
        self.update_index(|i| {
            match tag {
                Some(t) => index::set_tag(i, entry, t),
                None => index::add_untagged(i, entry),
            };
            Ok(())
        })?;
        Ok(PutManifest { digest, oci_subject: None })
    }

    pub(super) fn delete_manifest(&self, digest: &Digest) -> Result<()> {
        let removed = self.update_index(|i| Ok(index::remove_digest(i, digest)))?;
        if removed == 0 && file_size(&self.blob_path(digest))?.is_none() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("manifest {digest} is neither listed in index.json nor stored in blobs"),
            ));
        }
        Ok(())
    }

    pub(super) fn list_tags(&self) -> Result<Vec<String>> {
        let tags = index::tags(&self.read_index()?);
        let max = self.limits.max_tags;
        if tags.len() > max {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("index.json has {} tags, more than the limit of {max}", tags.len()),
            ));
        }
        Ok(tags)
    }

    /// Referrers through the tag schema: the index tagged `<alg>-<hex>`, filtered here.
    pub(super) fn referrers(&self, subject: &Digest, artifact_type: Option<&str>) -> Result<Referrers> {
        let tag = subject.referrers_tag();
        let Some(raw) = self.get_manifest(&tag)? else {
            return Ok(Referrers {
                subject: subject.clone(),
                descriptors: Vec::new(),
                source: ReferrersSource::TagSchema { tag, index: None },
            });
        };
        let Manifest::Index(listing) = &raw.manifest else {
            return Err(Error::invalid_format(format!(
                "referrers tag {tag} holds a {}, not an image index",
                raw.media_type
            )));
        };
        let max = self.limits.max_referrers;
        if listing.manifests.len() > max {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "referrers tag {tag} lists {} referrers, more than the limit of {max}",
                    listing.manifests.len()
                ),
            ));
        }
        let descriptors = listing
            .manifests
            .iter()
            .filter(|d| artifact_type.is_none_or(|want| d.artifact_type.as_deref() == Some(want)))
            .cloned()
            .collect();
        Ok(Referrers {
            subject: subject.clone(),
            descriptors,
            source: ReferrersSource::TagSchema { tag, index: Some(raw) },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let d = Digest::sha256(b"x");
        assert_eq!(parse_target(&d.to_string()).unwrap(), Target::Digest(d));
        assert_eq!(parse_target("latest").unwrap(), Target::Tag("latest".into()));
        assert_eq!(
            parse_target("example.com/app:v1").unwrap(),
            Target::Tag("example.com/app:v1".into()),
            "other tools' full names are looked up as written"
        );
        assert_eq!(parse_target("sha256:abc").unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(parse_target("").unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(parse_target("sha256-abc").unwrap(), Target::Tag("sha256-abc".into()));
    }

    #[test]
    fn media_type_probe() {
        assert_eq!(body_media_type(br#"{"mediaType":"a","x":[1]}"#).as_deref(), Some("a"));
        assert_eq!(body_media_type(br#"{"schemaVersion":2}"#), None);
        assert_eq!(body_media_type(b"not json"), None);
    }
}
