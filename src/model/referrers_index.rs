//! Edits of the referrers tag-schema index (`sha256-<hex>`), for registries without the referrers API
//! (distribution-spec 1.1, "Pushing Manifests with Subject").
//!
//! Pure functions from the current index to the next one: [`crate::store::tag_schema`] fetches the tag (404 → `None`),
//! applies one of these, and pushes only when the change is not a no-op. Entries other than the one
//! edited, their order and every unknown field are kept exactly (the model's `extra` maps).

use serde::Serialize;

use crate::model::digest::Digest;
use crate::model::oci::{Descriptor, ImageManifest, Index, to_canonical_bytes};

/// What an edit did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum IndexChange {
    /// Nothing to write: the entry was already listed and complete, or (removal) not listed.
    Unchanged,
    /// The entry was appended.
    Appended,
    /// Existing entries got their missing `artifactType`/annotations filled in.
    Repaired {
        /// How many entries changed.
        entries: usize,
    },
    /// Entries with the digest were removed.
    Removed {
        /// How many.
        entries: usize,
    },
}

/// The index after an edit, and what changed.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexUpdate {
    /// The resulting index.
    pub index: Index,
    /// What changed.
    pub change: IndexChange,
}

impl IndexUpdate {
    /// True when nothing needs to be written.
    pub fn is_noop(&self) -> bool {
        self.change == IndexChange::Unchanged
    }

    /// The index's canonical bytes, to push under the tag.
    pub fn to_bytes(&self) -> Vec<u8> {
        to_canonical_bytes(&self.index)
    }
}

/// The tag-schema entry for a referrer manifest: its descriptor plus `artifactType` (else the config
/// media type, as the spec says) and all of the manifest's annotations.
pub fn referrer_entry(descriptor: &Descriptor, manifest: &ImageManifest) -> Descriptor {
    let mut entry = Descriptor::of(&descriptor.media_type, b"");
    entry.digest = descriptor.digest.clone();
    entry.size = descriptor.size;
    entry.artifact_type =
        manifest.artifact_type.clone().or_else(|| Some(manifest.config.media_type.clone()).filter(|t| !t.is_empty()));
    entry.annotations = manifest.annotations.clone();
    entry
}

/// Add `entry` (from [`referrer_entry`]) to the index; `None` means the tag does not exist yet.
///
/// A digest already listed is not added again. With `repair`, its listed entries get whatever
/// `artifactType`/annotations they lack from `entry` (tools that dropped them, cosign#5098); values
/// already there are never overwritten.
pub fn add_referrer(current: Option<Index>, entry: &Descriptor, repair: bool) -> IndexUpdate {
    let mut index = current.unwrap_or_else(Index::empty);
    if !index.manifests.iter().any(|m| m.digest == entry.digest) {
        index.manifests.push(entry.clone());
        return IndexUpdate { index, change: IndexChange::Appended };
    }
    if !repair {
        return IndexUpdate { index, change: IndexChange::Unchanged };
    }
    repair_entries(index, std::slice::from_ref(entry))
}

/// Fill missing `artifactType`/annotations of listed entries whose manifest content is known (`known`:
/// entries from [`referrer_entry`]). Entries not in `known` and values already present stay untouched.
pub fn repair_entries(mut index: Index, known: &[Descriptor]) -> IndexUpdate {
    let mut changed = 0;
    for m in &mut index.manifests {
        let Some(k) = known.iter().find(|k| k.digest == m.digest) else {
            continue;
        };
        let mut touched = false;
        if m.artifact_type.is_none() && k.artifact_type.is_some() {
            m.artifact_type = k.artifact_type.clone();
            touched = true;
        }
        for (key, value) in &k.annotations {
            if !m.annotations.contains_key(key) {
                m.annotations.insert(key.clone(), value.clone());
                touched = true;
            }
        }
        changed += usize::from(touched);
    }
    let change = if changed == 0 { IndexChange::Unchanged } else { IndexChange::Repaired { entries: changed } };
    IndexUpdate { index, change }
}

/// Remove every entry for `digest` (after deleting that referrer, when cleaning up). An index left
/// empty is returned as such; whether to delete the tag is the caller's decision.
pub fn remove_referrer(current: Option<Index>, digest: &Digest) -> IndexUpdate {
    remove_referrers(current, std::slice::from_ref(digest))
}

/// Remove every entry for any of `digests`, in one edit (see [`remove_referrer`]).
pub fn remove_referrers(current: Option<Index>, digests: &[Digest]) -> IndexUpdate {
    let mut index = current.unwrap_or_else(Index::empty);
    let before = index.manifests.len();
    index.manifests.retain(|m| !digests.contains(&m.digest));
    let removed = before - index.manifests.len();
    let change = if removed == 0 { IndexChange::Unchanged } else { IndexChange::Removed { entries: removed } };
    IndexUpdate { index, change }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::media_type as mt;
    use crate::model::oci::Manifest;
    use crate::model::testdata;

    const INDEX_WITH_EXTRAS: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:03947ef44bf652406b554528bf986d79ed2cb9b36d5e09de84bbd4383e0d50ab","size":814,"future":{"z":1,"a":[2]}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e54e50cb87bb0e70120925d6d7495647e5652d9f7a6b5118a22c1b8d24a58068","size":812,"artifactType":"x/y","annotations":{"keep":"me"}}],"annotations":{"top":"level"},"vendor":true}"#;

    fn index(json: &str) -> Index {
        match Manifest::parse(json.as_bytes(), None).unwrap().0 {
            Manifest::Index(i) => i,
            other => panic!("not an index: {other:?}"),
        }
    }

    fn writer_entry() -> Descriptor {
        let bytes = testdata::read("sigstore-oci-writer/referrer-manifest-03947ef44bf6.json");
        let Manifest::Image(m) = Manifest::parse(&bytes, None).unwrap().0 else { panic!("image manifest") };
        let mut d = Descriptor::of(mt::OCI_MANIFEST, &bytes);
        d.digest = Digest::sha256(&bytes);
        referrer_entry(&d, &m)
    }

    #[test]
    fn entry_matches_what_sigstore_oci_wrote() {
        // The tag-schema index @sigstore/oci maintained lists exactly this entry for that manifest.
        let listed =
            index(std::str::from_utf8(&testdata::read("sigstore-oci-writer/tagschema-index-img1.json")).unwrap());
        let entry = writer_entry();
        assert_eq!(entry.digest.to_string(), "sha256:03947ef44bf652406b554528bf986d79ed2cb9b36d5e09de84bbd4383e0d50ab");
        assert_eq!(listed.manifests[0], entry);
    }

    #[test]
    fn entry_falls_back_to_the_config_media_type() {
        let mut m: ImageManifest = serde_json::from_str(
            r#"{"schemaVersion":2,"config":{"mediaType":"application/spdx+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#,
        )
        .unwrap();
        let d = Descriptor::of(mt::OCI_MANIFEST, b"m");
        assert_eq!(referrer_entry(&d, &m).artifact_type.as_deref(), Some("application/spdx+json"));
        m.config.media_type.clear();
        assert_eq!(referrer_entry(&d, &m).artifact_type, None);
    }

    #[test]
    fn add_appends_once_and_keeps_everything_else() {
        let entry =
            Descriptor { annotations: [("k".into(), "v".into())].into(), ..Descriptor::of(mt::OCI_MANIFEST, b"new") };
        let current = index(INDEX_WITH_EXTRAS);
        let update = add_referrer(Some(current.clone()), &entry, false);
        assert_eq!(update.change, IndexChange::Appended);
        assert_eq!(update.index.manifests[..2], current.manifests[..]);
        assert_eq!(update.index.manifests[2], entry);
        let text = String::from_utf8(update.to_bytes()).unwrap();
        for kept in [r#""future":{"z":1,"a":[2]}"#, r#""vendor":true"#, r#""top":"level""#, r#""keep":"me""#] {
            assert!(text.contains(kept), "{kept} lost: {text}");
        }
        let again = add_referrer(Some(update.index.clone()), &entry, true);
        assert!(again.is_noop());
        assert_eq!(again.index, update.index);

        let fresh = add_referrer(None, &entry, false);
        assert_eq!(fresh.change, IndexChange::Appended);
        assert_eq!(fresh.index.media_type.as_deref(), Some(mt::OCI_INDEX));
        assert_eq!(fresh.index.manifests, vec![entry]);
    }

    #[test]
    fn repair_fills_only_what_is_missing() {
        let entry = writer_entry();
        let current = index(INDEX_WITH_EXTRAS);
        // Without repair, a listed digest is a no-op even if its entry is incomplete.
        assert!(add_referrer(Some(current.clone()), &entry, false).is_noop());
        let update = add_referrer(Some(current.clone()), &entry, true);
        assert_eq!(update.change, IndexChange::Repaired { entries: 1 });
        let repaired = &update.index.manifests[0];
        assert_eq!(repaired.artifact_type.as_deref(), Some(mt::BUNDLE_V03));
        assert_eq!(repaired.annotations, entry.annotations);
        assert_eq!(repaired.extra, current.manifests[0].extra, "unknown fields kept");
        assert_eq!(update.index.manifests[1], current.manifests[1]);
        assert!(add_referrer(Some(update.index), &entry, true).is_noop());

        // An existing value is never overwritten.
        let mut other = entry.clone();
        other.digest = current.manifests[1].digest.clone();
        other.annotations.insert("keep".into(), "changed".into());
        let update = repair_entries(current.clone(), &[other.clone()]);
        assert_eq!(update.change, IndexChange::Repaired { entries: 1 });
        let e = &update.index.manifests[1];
        assert_eq!(e.artifact_type.as_deref(), Some("x/y"));
        assert_eq!(e.annotation("keep"), Some("me"));
        assert_eq!(e.annotation("dev.sigstore.bundle.content"), Some("dsse-envelope"));
        assert_eq!(repair_entries(current.clone(), &[]).change, IndexChange::Unchanged);
    }

    #[test]
    fn remove_drops_only_that_digest() {
        let current = index(INDEX_WITH_EXTRAS);
        let gone = current.manifests[0].digest.clone();
        let update = remove_referrer(Some(current.clone()), &gone);
        assert_eq!(update.change, IndexChange::Removed { entries: 1 });
        assert_eq!(update.index.manifests, current.manifests[1..]);
        assert_eq!(update.index.extra, current.extra);
        assert!(remove_referrer(Some(update.index.clone()), &gone).is_noop());
        let none = remove_referrer(None, &gone);
        assert!(none.is_noop() && none.index.manifests.is_empty());
        let emptied = remove_referrer(Some(update.index.clone()), &current.manifests[1].digest);
        assert!(emptied.index.manifests.is_empty());
        assert_eq!(serde_json::to_string(&emptied.change).unwrap(), r#"{"change":"removed","entries":1}"#);
    }
}
