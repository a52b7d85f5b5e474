//! A generated repository: blobs and manifests in push order, and pushing them to any store.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::Digest;
use crate::store::Repository;

/// One manifest of a generated repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedManifest {
    /// Exact bytes.
    pub bytes: Bytes,
    /// Media type to push it with.
    pub media_type: String,
    /// Digest of `bytes`.
    pub digest: Digest,
    /// Tags pointing at it in the final store (a tag moved to a later manifest is listed there only).
    pub tags: Vec<String>,
}

/// A generated repository: everything a legacy store holds, ready to push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedRepo {
    /// The repository name the signed statements and payloads refer to (`registry/path`). Pushing
    /// elsewhere is fine: verifiers ignore that name and match by digest.
    pub repository: String,
    /// Every blob (configs and layers), by digest.
    pub blobs: BTreeMap<Digest, Bytes>,
    /// Manifests in push order: a manifest comes after everything it refers to (subjects before
    /// their attachments, platform manifests before their index).
    pub manifests: Vec<GeneratedManifest>,
}

impl GeneratedRepo {
    /// An empty repository.
    pub fn new(repository: impl Into<String>) -> GeneratedRepo {
        GeneratedRepo { repository: repository.into(), blobs: BTreeMap::new(), manifests: Vec::new() }
    }

    /// Add a blob; returns its digest.
    pub fn add_blob(&mut self, bytes: impl Into<Bytes>) -> Digest {
        let bytes = bytes.into();
        let digest = Digest::sha256(&bytes);
        self.blobs.entry(digest.clone()).or_insert(bytes);
        digest
    }

    /// Add a manifest and move `tags` to it. Adding the same bytes twice only merges tags.
    pub fn add_manifest(&mut self, bytes: impl Into<Bytes>, media_type: &str, tags: &[String]) -> Digest {
        let bytes = bytes.into();
        let digest = Digest::sha256(&bytes);
        for m in &mut self.manifests {
            m.tags.retain(|t| !tags.contains(t));
        }
        if let Some(existing) = self.manifests.iter_mut().find(|m| m.digest == digest) {
            existing.tags.extend(tags.iter().cloned());
        } else {
            self.manifests.push(GeneratedManifest {
                bytes,
                media_type: media_type.to_owned(),
                digest: digest.clone(),
                tags: tags.to_vec(),
            });
        }
        digest
    }

    /// The manifest with this digest.
    pub fn manifest(&self, digest: &Digest) -> Option<&GeneratedManifest> {
        self.manifests.iter().find(|m| &m.digest == digest)
    }

    /// The manifest a tag points at.
    pub fn manifest_by_tag(&self, tag: &str) -> Option<&GeneratedManifest> {
        self.manifests.iter().find(|m| m.tags.iter().any(|t| t == tag))
    }

    /// A blob by digest.
    pub fn blob(&self, digest: &Digest) -> Option<&Bytes> {
        self.blobs.get(digest)
    }

    /// Every tag, in push order.
    pub fn tags(&self) -> Vec<&str> {
        self.manifests.iter().flat_map(|m| m.tags.iter().map(String::as_str)).collect()
    }

    /// Total bytes of blobs and manifests.
    pub fn total_bytes(&self) -> u64 {
        let blobs: usize = self.blobs.values().map(Bytes::len).sum();
        let manifests: usize = self.manifests.iter().map(|m| m.bytes.len()).sum();
        (blobs + manifests) as u64
    }

    /// Push everything to `repo`: blobs first, then each manifest by digest and under each of its
    /// tags, in order. Fails if the store reports a digest other than ours.
    pub async fn push_to<R: Repository>(&self, repo: &R) -> Result<()> {
        for (digest, bytes) in &self.blobs {
            let got = repo
                .put_blob(bytes.clone())
                .await
                .map_err(|e| e.context(format!("pushing blob {digest} to {}", repo.name())))?;
            check_digest(digest, &got, "blob", &repo.name())?;
        }
        for m in &self.manifests {
            let tags = std::iter::once(None).chain(m.tags.iter().map(|t| Some(t.as_str())));
            for tag in tags {
                let what = || match tag {
                    Some(t) => format!("pushing manifest {} as {}:{t}", m.digest, repo.name()),
                    None => format!("pushing manifest {} to {}", m.digest, repo.name()),
                };
                let put =
                    repo.put_manifest(m.bytes.clone(), &m.media_type, tag).await.map_err(|e| e.context(what()))?;
                check_digest(&m.digest, &put.digest, "manifest", &repo.name())?;
            }
        }
        Ok(())
    }
}

fn check_digest(expected: &Digest, got: &Digest, what: &str, repo: &str) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::new(ErrorKind::DigestMismatch, format!("{repo} stored {what} {expected} as {got}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::media_type as mt;

    #[test]
    fn tags_move_and_duplicates_merge() {
        let mut r = GeneratedRepo::new("registry.test/x");
        let a = r.add_manifest(&b"{\"a\":1}"[..], mt::OCI_MANIFEST, &["t".into()]);
        let b = r.add_manifest(&b"{\"b\":1}"[..], mt::OCI_MANIFEST, &["t".into(), "u".into()]);
        assert_eq!(r.manifest_by_tag("t").unwrap().digest, b);
        assert!(r.manifest(&a).unwrap().tags.is_empty());
        r.add_manifest(&b"{\"a\":1}"[..], mt::OCI_MANIFEST, &["v".into()]);
        assert_eq!(r.manifests.len(), 2);
        assert_eq!(r.tags(), ["v", "t", "u"]);
        let d = r.add_blob(&b"x"[..]);
        assert_eq!(r.blob(&d).unwrap().as_ref(), b"x");
    }
}
