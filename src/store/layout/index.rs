//! Pure edits of a layout's `index.json`: tags are `org.opencontainers.image.ref.name` annotations
//! on its entries.
//!
//! Other tools' entries are kept as they are (the [`Index`] and [`Descriptor`] types keep unknown
//! fields); only entries carrying the tag being moved, or the digest being deleted, are touched.

use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::media_type::{self as mt, annotations::OCI_REF_NAME};
use crate::model::oci::{Descriptor, Index};

/// The tag of an entry, if it has one.
pub(super) fn ref_name(entry: &Descriptor) -> Option<&str> {
    entry.annotation(OCI_REF_NAME)
}

/// Every tag, sorted and without duplicates (the order registries list them in).
pub(super) fn tags(index: &Index) -> Vec<String> {
    let mut tags: Vec<String> = index.manifests.iter().filter_map(ref_name).map(str::to_owned).collect();
    tags.sort();
    tags.dedup();
    tags
}

/// The manifest a tag names, `Ok(None)` when no entry carries it.
///
/// The image-layout spec lets one name label several entries (its own example tags an index and an
/// XML document alike), so entries of non-manifest media types are skipped. Two different manifests
/// under one name cannot be resolved safely and are an error rather than a guess.
pub(super) fn resolve_tag(index: &Index, tag: &str) -> Result<Option<Descriptor>> {
    let named: Vec<&Descriptor> = index.manifests.iter().filter(|d| ref_name(d) == Some(tag)).collect();
    let Some(first) = named.first() else {
        return Ok(None);
    };
    let manifests: Vec<&Descriptor> = named
        .iter()
        .copied()
        .filter(|d| d.media_type.is_empty() || mt::MANIFEST_ACCEPT.contains(&d.media_type.as_str()))
        .collect();
    let Some(chosen) = manifests.first() else {
        return Err(Error::invalid_format(format!(
            "tag {tag:?} in index.json names {} content, not a manifest",
            first.media_type
        )));
    };
    if let Some(other) = manifests.iter().find(|d| d.digest != chosen.digest) {
        return Err(Error::invalid_format(format!(
            "tag {tag:?} in index.json names two different manifests ({} and {}); fetch one by digest",
            chosen.digest, other.digest
        )));
    }
    Ok(Some((*chosen).clone()))
}

/// Point `tag` at `entry` (a descriptor without the tag annotation). Every other entry carrying the
/// tag is dropped, as a registry moves a tag; the new entry takes the place of the first of them so
/// the file's order stays stable. An untagged entry of ours for the same digest is dropped too, as
/// the tagged one now keeps the manifest listed. Returns whether anything changed.
pub(super) fn set_tag(index: &mut Index, mut entry: Descriptor, tag: &str) -> bool {
    let digest = entry.digest.clone();
    entry.annotations.insert(OCI_REF_NAME.to_owned(), tag.to_owned());
    let before = index.manifests.clone();
    let mut kept = Vec::with_capacity(before.len() + 1);
    let mut slot = None;
    for d in before.iter() {
        if ref_name(d) == Some(tag) {
            slot.get_or_insert(kept.len());
        } else if !(is_plain_untagged(d) && d.digest == digest) {
            kept.push(d.clone());
        }
    }
    kept.insert(slot.unwrap_or(kept.len()), entry);
    index.manifests = kept;
    index.manifests != before
}

/// Keep a manifest pushed without a tag listed (so it is neither lost nor taken for garbage) unless
/// an entry with its digest is already there. Returns whether anything changed.
pub(super) fn add_untagged(index: &mut Index, entry: Descriptor) -> bool {
    if index.manifests.iter().any(|d| d.digest == entry.digest) {
        return false;
    }
    index.manifests.push(entry);
    true
}

/// Drop every entry for `digest`, tagged or not, as a registry drops every tag of a deleted
/// manifest. Returns how many entries went.
pub(super) fn remove_digest(index: &mut Index, digest: &Digest) -> usize {
    let before = index.manifests.len();
    index.manifests.retain(|d| &d.digest != digest);
    before - index.manifests.len()
}

/// The media type `index.json` should declare for another tool's entry with `digest`, if any.
pub(super) fn media_type_of<'a>(index: &'a Index, digest: &Digest) -> Option<&'a str> {
    index.manifests.iter().find(|d| &d.digest == digest && !d.media_type.is_empty()).map(|d| d.media_type.as_str())
}

/// An entry as [`add_untagged`] writes it: no annotations at all. Entries with annotations belong to
/// another tool's bookkeeping and are left alone.
fn is_plain_untagged(d: &Descriptor) -> bool {
    d.annotations.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body: &[u8], media_type: &str) -> Descriptor {
        Descriptor::of(media_type, body)
    }

    fn tagged(body: &[u8], media_type: &str, tag: &str) -> Descriptor {
        let mut d = entry(body, media_type);
        d.annotations.insert(OCI_REF_NAME.to_owned(), tag.to_owned());
        d
    }

    fn index_of(entries: Vec<Descriptor>) -> Index {
        Index { manifests: entries, ..Index::empty() }
    }

    #[test]
    fn set_tag_moves_the_tag_in_place() {
        let mut index = index_of(vec![
            tagged(b"a", mt::OCI_MANIFEST, "one"),
            tagged(b"b", mt::OCI_MANIFEST, "two"),
            tagged(b"c", mt::OCI_MANIFEST, "three"),
        ]);
        assert!(set_tag(&mut index, entry(b"z", mt::OCI_MANIFEST), "two"));
        let names: Vec<_> = index.manifests.iter().map(|d| ref_name(d).unwrap()).collect();
        assert_eq!(names, ["one", "two", "three"]);
        assert_eq!(index.manifests[1].digest, Digest::sha256(b"z"));
        // The same again is a no-op.
        assert!(!set_tag(&mut index, entry(b"z", mt::OCI_MANIFEST), "two"));
        // A new tag is appended.
        assert!(set_tag(&mut index, entry(b"z", mt::OCI_MANIFEST), "four"));
        assert_eq!(tags(&index), ["four", "one", "three", "two"]);
    }

    #[test]
    fn set_tag_collapses_duplicates_and_plain_untagged_entries() {
        let mut foreign = entry(b"x", mt::OCI_MANIFEST);
        foreign.annotations.insert("tool.example/kind".into(), "keep".into());
        let mut index = index_of(vec![
            entry(b"x", mt::OCI_MANIFEST),
            tagged(b"a", mt::OCI_MANIFEST, "t"),
            foreign.clone(),
            tagged(b"b", "application/xml", "t"),
        ]);
        assert!(set_tag(&mut index, entry(b"x", mt::OCI_MANIFEST), "t"));
        assert_eq!(index.manifests.len(), 2);
        assert_eq!(index.manifests[0], tagged(b"x", mt::OCI_MANIFEST, "t"));
        assert_eq!(index.manifests[1], foreign);
    }

    #[test]
    fn untagged_entries_are_added_once() {
        let mut index = index_of(vec![tagged(b"a", mt::OCI_MANIFEST, "t")]);
        assert!(!add_untagged(&mut index, entry(b"a", mt::OCI_MANIFEST)));
        assert!(add_untagged(&mut index, entry(b"b", mt::OCI_MANIFEST)));
        assert!(!add_untagged(&mut index, entry(b"b", mt::OCI_MANIFEST)));
        assert_eq!(index.manifests.len(), 2);
        assert_eq!(tags(&index), ["t"]);
    }

    #[test]
    fn remove_digest_drops_every_entry() {
        let mut index = index_of(vec![
            tagged(b"a", mt::OCI_MANIFEST, "t1"),
            tagged(b"b", mt::OCI_MANIFEST, "t2"),
            tagged(b"a", mt::OCI_MANIFEST, "t3"),
            entry(b"a", mt::OCI_MANIFEST),
        ]);
        assert_eq!(remove_digest(&mut index, &Digest::sha256(b"a")), 3);
        assert_eq!(tags(&index), ["t2"]);
        assert_eq!(remove_digest(&mut index, &Digest::sha256(b"a")), 0);
    }

    #[test]
    fn resolve_tag_skips_non_manifests_and_refuses_ambiguity() {
        let index = index_of(vec![
            tagged(b"xml", "application/xml", "stable"),
            tagged(b"i", mt::OCI_INDEX, "stable"),
            tagged(b"m", "", "bare"),
            tagged(b"xml", "application/xml", "doc"),
            tagged(b"m1", mt::OCI_MANIFEST, "twice"),
            tagged(b"m2", mt::OCI_MANIFEST, "twice"),
            tagged(b"m1", mt::OCI_MANIFEST, "same"),
            tagged(b"m1", mt::OCI_MANIFEST, "same"),
        ]);
        assert_eq!(resolve_tag(&index, "stable").unwrap().unwrap().digest, Digest::sha256(b"i"));
        assert_eq!(resolve_tag(&index, "bare").unwrap().unwrap().digest, Digest::sha256(b"m"));
        assert_eq!(resolve_tag(&index, "same").unwrap().unwrap().digest, Digest::sha256(b"m1"));
        assert!(resolve_tag(&index, "missing").unwrap().is_none());
        let err = resolve_tag(&index, "doc").unwrap_err();
        assert!(err.to_string().contains("application/xml"), "{err}");
        let err = resolve_tag(&index, "twice").unwrap_err();
        assert!(err.to_string().contains("two different manifests"), "{err}");
    }

    #[test]
    fn media_type_lookup() {
        let index = index_of(vec![entry(b"a", ""), entry(b"a", mt::OCI_INDEX)]);
        assert_eq!(media_type_of(&index, &Digest::sha256(b"a")), Some(mt::OCI_INDEX));
        assert_eq!(media_type_of(&index, &Digest::sha256(b"b")), None);
    }
}
