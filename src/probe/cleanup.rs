//! Removing what the write test pushed, referrers before what they refer to and indexes before what
//! they list (registries such as GAR and Harbor refuse to delete a manifest an index still lists), then
//! checking that each tag is really gone, then the blobs.

use reqwest::Method;

use super::interpret::Answer;
use super::read::{self, answer_of};
use super::report::{BlobCleanup, Cleanup, Fact, ObjectKind, WrittenObject};
use super::write::{Stage, delete_manifest};
use crate::store::registry::RegistryRepository;
use crate::store::registry::probe::RawRequest;

fn object(kind: ObjectKind, reference: &str, answer: Option<&Answer>, removed: bool, detail: String) -> WrittenObject {
    WrittenObject {
        kind,
        reference: reference.to_owned(),
        removed,
        status: answer.map(|a| a.status),
        code: answer.and_then(Answer::code),
        detail,
    }
}

/// What a DELETE answer means for the object.
fn deleted(kind: ObjectKind, reference: &str, answer: &Answer) -> WrittenObject {
    if (200..=299).contains(&answer.status) {
        object(kind, reference, Some(answer), true, "deleted".to_owned())
    } else if answer.is_not_found() {
        object(kind, reference, Some(answer), true, "already gone".to_owned())
    } else {
        object(kind, reference, Some(answer), false, format!("DELETE refused: {}", answer.describe()))
    }
}

/// Delete every object of `stage`, newest manifest first, and say what became of each.
pub(crate) async fn remove(repo: &RegistryRepository, stage: &Stage) -> Cleanup {
    let mut objects = Vec::new();
    // Manifests in the reverse order of their pushes: referrers and indexes before what they name.
    for pushed in stage.pushed.iter().rev().filter(|p| p.kind == ObjectKind::Manifest) {
        let reference = &pushed.reference;
        if let Some(answer) = stage.deleted.get(reference).filter(|a| (200..=299).contains(&a.status)) {
            objects.push(object(
                ObjectKind::Manifest,
                reference,
                Some(answer),
                true,
                "deleted by the delete-order check".to_owned(),
            ));
            continue;
        }
        objects.push(match delete_manifest(repo, reference).await {
            Ok(answer) => deleted(ObjectKind::Manifest, reference, &answer),
            Err(e) => object(ObjectKind::Manifest, reference, None, false, format!("DELETE failed: {e}")),
        });
    }
    // A registry drops the tags of a deleted manifest; a tag that still answers is left over.
    for pushed in stage.pushed.iter().filter(|p| p.kind == ObjectKind::Tag) {
        let tag = &pushed.reference;
        objects.push(match read::get_manifest_raw(repo, tag).await {
            Ok(reply) => {
                let answer = answer_of(&reply);
                if answer.is_not_found() {
                    object(ObjectKind::Tag, tag, None, true, "gone with its manifest".to_owned())
                } else {
                    let detail = format!("still answers ({}) after its manifests were deleted", answer.describe());
                    object(ObjectKind::Tag, tag, Some(&answer), false, detail)
                }
            }
            Err(e) => object(ObjectKind::Tag, tag, None, false, format!("could not check: {e}")),
        });
    }
    let mut blobs = 0;
    for pushed in stage.pushed.iter().rev().filter(|p| p.kind == ObjectKind::Blob) {
        blobs += 1;
        let path = format!("blobs/{}", pushed.reference);
        objects.push(match repo.raw("pull,push,delete", RawRequest::new(Method::DELETE, &path)).await {
            Ok(reply) => {
                let mut o = deleted(ObjectKind::Blob, &pushed.reference, &answer_of(&reply));
                if !o.removed {
                    o.detail.push_str(": left for the registry's garbage collection");
                }
                o
            }
            Err(e) => object(ObjectKind::Blob, &pushed.reference, None, false, format!("DELETE failed: {e}")),
        });
    }
    let complete = objects.iter().filter(|o| o.kind != ObjectKind::Blob).all(|o| o.removed);
    let left = objects.iter().filter(|o| o.kind == ObjectKind::Blob && !o.removed).count();
    let blobs = match (blobs, left) {
        (0, _) => Fact::new(BlobCleanup::NoneWritten, "no blob was written"),
        (n, 0) => Fact::new(BlobCleanup::Deleted, format!("all {n} blobs deleted")),
        (n, left) => Fact::new(
            BlobCleanup::LeftForGarbageCollection,
            format!(
                "{left} of {n} blobs could not be deleted: they stay until the registry collects unreferenced blobs"
            ),
        ),
    };
    Cleanup { complete, blobs, objects }
}
