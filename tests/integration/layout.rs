//! The OCI image-layout store, through its public `Repository` API and the files it leaves behind.

use std::fs;
use std::path::Path;

use att2ref::model::digest::Digest;
use att2ref::model::media_type as mt;
use att2ref::model::oci::{Descriptor, Index, to_canonical_bytes};
use att2ref::store::layout::LayoutRepository;
use att2ref::store::{ReferrersCapability, ReferrersSource, Repository};
use att2ref::{ErrorKind, Limits};
use bytes::Bytes;
use serde_json::{Value, json};

const REF_NAME: &str = mt::annotations::OCI_REF_NAME;

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn blob_path(root: &Path, d: &Digest) -> std::path::PathBuf {
    root.join("blobs").join(d.algorithm().as_str()).join(d.hex())
}

/// An OCI image manifest with one layer holding `layer`, optionally an artifact with a subject.
fn manifest(layer: &[u8], artifact_type: Option<&str>, subject: Option<&Descriptor>) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "config": Descriptor::empty_config(),
        "layers": [Descriptor::of("application/octet-stream", layer)],
    });
    if let Some(a) = artifact_type {
        m["artifactType"] = json!(a);
    }
    if let Some(s) = subject {
        m["subject"] = json!(s);
    }
    serde_json::to_vec(&m).unwrap()
}

async fn push_image(repo: &LayoutRepository, layer: &[u8], tag: Option<&str>) -> (Digest, Vec<u8>) {
    repo.put_blob(Bytes::from_static(b"{}")).await.unwrap();
    repo.put_blob(Bytes::copy_from_slice(layer)).await.unwrap();
    let body = manifest(layer, None, None);
    let put = repo.put_manifest(Bytes::from(body.clone()), mt::OCI_MANIFEST, tag).await.unwrap();
    assert_eq!(put.digest, Digest::sha256(&body));
    assert_eq!(put.oci_subject, None);
    (put.digest, body)
}

#[test]
fn create_writes_a_layout_other_tools_accept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nested/out");
    let repo = LayoutRepository::create(&root, Limits::default()).unwrap();
    assert_eq!(repo.name(), format!("ocidir://{}", root.display()));
    assert_eq!(repo.referrers_capability(), ReferrersCapability::Unsupported);

    assert_eq!(fs::read_to_string(root.join("oci-layout")).unwrap(), r#"{"imageLayoutVersion":"1.0.0"}"#);
    let index = read_json(&root.join("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], mt::OCI_INDEX);
    assert_eq!(index["manifests"], json!([]));
    assert!(root.join("blobs").is_dir());

    // Creating again opens it; opening works too.
    LayoutRepository::create(&root, Limits::default()).unwrap();
    LayoutRepository::open(&root, Limits::default()).unwrap();
}

#[test]
fn open_and_create_refuse_what_is_not_a_layout() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    assert_eq!(LayoutRepository::open(&missing, Limits::default()).unwrap_err().kind(), ErrorKind::NotFound);

    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let err = LayoutRepository::open(&empty, Limits::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("oci-layout"), "{err}");

    let foreign = dir.path().join("foreign");
    fs::create_dir(&foreign).unwrap();
    fs::write(foreign.join("notes.txt"), b"mine").unwrap();
    let err = LayoutRepository::create(&foreign, Limits::default()).unwrap_err();
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert_eq!(fs::read_dir(&foreign).unwrap().count(), 1, "nothing may be written into a foreign directory");

    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    let err = LayoutRepository::open(&file, Limits::default()).unwrap_err();
    assert_eq!(err.kind(), att2ref::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().ends_with(&format!("{} is not a directory", file.display())), "{err}");

    let future = dir.path().join("future");
    fs::create_dir(&future).unwrap();
    fs::write(future.join("oci-layout"), br#"{"imageLayoutVersion":"2.0.0"}"#).unwrap();
    fs::write(future.join("index.json"), br#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
    assert_eq!(LayoutRepository::open(&future, Limits::default()).unwrap_err().kind(), ErrorKind::Unsupported);

    // An interrupted creation (index.json but no marker) is completed, keeping the index.
    let partial = dir.path().join("partial");
    fs::create_dir(&partial).unwrap();
    fs::write(partial.join("index.json"), br#"{"schemaVersion":2,"manifests":[],"keep":1}"#).unwrap();
    LayoutRepository::create(&partial, Limits::default()).unwrap();
    assert_eq!(read_json(&partial.join("index.json"))["keep"], 1);
    assert!(partial.join("oci-layout").is_file());
}

#[tokio::test]
async fn blobs_round_trip_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let repo = LayoutRepository::create(dir.path(), Limits::default()).unwrap();
    let body = Bytes::from_static(b"layer bytes");
    let digest = repo.put_blob(body.clone()).await.unwrap();
    assert_eq!(digest, Digest::sha256(&body));
    assert_eq!(repo.put_blob(body.clone()).await.unwrap(), digest, "pushing twice is a no-op");
    assert_eq!(repo.blob_size(&digest).await.unwrap(), Some(body.len() as u64));
    let desc = Descriptor::of("application/octet-stream", &body);
    assert_eq!(repo.get_blob(&desc, 1024).await.unwrap(), body);

    assert_eq!(repo.get_blob(&desc, 4).await.unwrap_err().kind(), ErrorKind::TooLarge);
    let absent = Descriptor::of("application/octet-stream", b"absent");
    assert_eq!(repo.blob_size(&absent.digest).await.unwrap(), None);
    assert_eq!(repo.get_blob(&absent, 1024).await.unwrap_err().kind(), ErrorKind::NotFound);

    let path = blob_path(dir.path(), &digest);
    fs::write(&path, b"layer bytez").unwrap();
    let err = repo.get_blob(&desc, 1024).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DigestMismatch);
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    // Pushing again repairs a corrupted copy.
    repo.put_blob(body.clone()).await.unwrap();
    assert_eq!(repo.get_blob(&desc, 1024).await.unwrap(), body);
}

#[cfg(unix)]
#[tokio::test]
async fn a_planted_symlink_is_replaced_not_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    let repo = LayoutRepository::create(&root, Limits::default()).unwrap();
    let outside = dir.path().join("outside");
    fs::write(&outside, b"precious").unwrap();
    let body = Bytes::from_static(b"payload");
    let path = blob_path(&root, &Digest::sha256(&body));
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&outside, &path).unwrap();
    repo.put_blob(body.clone()).await.unwrap();
    assert_eq!(fs::read(&outside).unwrap(), b"precious");
    assert_eq!(fs::read(&path).unwrap(), body);
}

#[tokio::test]
async fn manifests_and_tags() {
    let dir = tempfile::tempdir().unwrap();
    let repo = LayoutRepository::create(dir.path(), Limits::default()).unwrap();
    let (d1, body1) = push_image(&repo, b"one", Some("v1")).await;
    let (d2, body2) = push_image(&repo, b"two", Some("v2")).await;

    let got = repo.get_manifest("v1").await.unwrap().unwrap();
    assert_eq!(got.bytes, body1);
    assert_eq!(got.digest, d1);
    assert_eq!(got.media_type, mt::OCI_MANIFEST);
    assert_eq!(repo.get_manifest(&d2.to_string()).await.unwrap().unwrap().bytes, body2);
    let head = repo.head_manifest("v2").await.unwrap().unwrap();
    assert_eq!((head.digest, head.size, head.media_type.as_str()), (d2.clone(), body2.len() as u64, mt::OCI_MANIFEST));
    assert!(repo.get_manifest("nope").await.unwrap().is_none());
    assert!(repo.head_manifest(&Digest::sha256(b"nope").to_string()).await.unwrap().is_none());
    assert_eq!(repo.list_tags().await.unwrap(), ["v1", "v2"]);

    // Moving a tag replaces its entry; a second tag on the same digest is a second entry.
    repo.put_manifest(Bytes::from(body2.clone()), mt::OCI_MANIFEST, Some("v1")).await.unwrap();
    assert_eq!(repo.get_manifest("v1").await.unwrap().unwrap().digest, d2);
    let index = read_json(&dir.path().join("index.json"));
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for e in entries {
        assert_eq!(e["digest"], d2.to_string());
        assert_eq!(e["mediaType"], mt::OCI_MANIFEST);
        assert_eq!(e["size"], body2.len());
    }
    // The manifest that lost its tag is no longer listed, but its bytes stay readable by digest.
    assert!(repo.get_manifest(&d1.to_string()).await.unwrap().is_some());

    // A fresh handle sees the same state.
    let reopened = LayoutRepository::open(dir.path(), Limits::default()).unwrap();
    assert_eq!(reopened.list_tags().await.unwrap(), ["v1", "v2"]);
}

#[tokio::test]
async fn manifest_input_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { max_manifest_bytes: 600, ..Limits::default() };
    let repo = LayoutRepository::create(dir.path(), limits).unwrap();
    let body = Bytes::from(manifest(b"x", None, None));
    let bad_tag = repo.put_manifest(body.clone(), mt::OCI_MANIFEST, Some("../escape")).await.unwrap_err();
    assert_eq!(bad_tag.kind(), ErrorKind::InvalidInput);
    let wrong_type = repo.put_manifest(body.clone(), mt::OCI_INDEX, None).await.unwrap_err();
    assert_eq!(wrong_type.kind(), ErrorKind::InvalidInput);
    let not_json = repo.put_manifest(Bytes::from_static(b"nope"), mt::OCI_MANIFEST, None).await.unwrap_err();
    assert_eq!(not_json.kind(), ErrorKind::InvalidFormat);
    let huge = Bytes::from(manifest(&[b'x'; 1000], Some(&"a".repeat(500)), None));
    assert_eq!(repo.put_manifest(huge, mt::OCI_MANIFEST, None).await.unwrap_err().kind(), ErrorKind::TooLarge);
    assert_eq!(repo.get_manifest("sha256:abc").await.unwrap_err().kind(), ErrorKind::InvalidInput);
    assert!(read_json(&dir.path().join("index.json"))["manifests"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn untagged_manifests_stay_listed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = LayoutRepository::create(dir.path(), Limits::default()).unwrap();
    let subject = Descriptor::of(mt::OCI_MANIFEST, b"subject");
    let body = manifest(b"sig", Some(mt::BUNDLE_V03), Some(&subject));
    let put = repo.put_manifest(Bytes::from(body.clone()), mt::OCI_MANIFEST, None).await.unwrap();
    repo.put_manifest(Bytes::from(body.clone()), mt::OCI_MANIFEST, None).await.unwrap();

    let index = read_json(&dir.path().join("index.json"));
    assert_eq!(
        index["manifests"],
        json!([{"mediaType": mt::OCI_MANIFEST, "digest": put.digest, "size": body.len(), "artifactType": mt::BUNDLE_V03}])
    );
    assert!(repo.list_tags().await.unwrap().is_empty());
    let head = repo.head_manifest(&put.digest.to_string()).await.unwrap().unwrap();
    assert_eq!(head.artifact_type.as_deref(), Some(mt::BUNDLE_V03));

    // Tagging it later replaces the untagged entry rather than listing it twice.
    repo.put_manifest(Bytes::from(body), mt::OCI_MANIFEST, Some("t")).await.unwrap();
    let index = read_json(&dir.path().join("index.json"));
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["annotations"][REF_NAME], "t");
    assert_eq!(entries[0]["artifactType"], mt::BUNDLE_V03);
}

#[tokio::test]
async fn delete_drops_every_tag_and_keeps_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let repo = LayoutRepository::create(dir.path(), Limits::default()).unwrap();
    let (d, body) = push_image(&repo, b"one", Some("a")).await;
    repo.put_manifest(Bytes::from(body), mt::OCI_MANIFEST, Some("b")).await.unwrap();
    let (_, _) = push_image(&repo, b"two", Some("c")).await;

    repo.delete_manifest(&d).await.unwrap();
    assert_eq!(repo.list_tags().await.unwrap(), ["c"]);
    assert!(repo.get_manifest("a").await.unwrap().is_none());
    assert!(blob_path(dir.path(), &d).is_file(), "the file may be another manifest's blob; it stays");
    // Deleting what is already unlisted is fine; deleting what never existed is NotFound.
    repo.delete_manifest(&d).await.unwrap();
    let err = repo.delete_manifest(&Digest::sha256(b"never")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn corrupted_or_missing_manifest_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let repo = LayoutRepository::create(dir.path(), Limits::default()).unwrap();
    let (d, _) = push_image(&repo, b"one", Some("t")).await;
    let path = blob_path(dir.path(), &d);

    fs::write(&path, b"{}").unwrap();
    for reference in ["t".to_owned(), d.to_string()] {
        let err = repo.get_manifest(&reference).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DigestMismatch, "{reference}");
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    }

    fs::remove_file(&path).unwrap();
    let err = repo.get_manifest("t").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidFormat, "a tag whose file is gone is a broken layout, not an absent tag");
    assert!(repo.get_manifest(&d.to_string()).await.unwrap().is_none());
}

#[tokio::test]
async fn referrers_come_from_the_tag_schema() {
    let dir = tempfile::tempdir().unwrap();
    let repo = LayoutRepository::create(dir.path(), Limits::default()).unwrap();
    let (subject_digest, subject_body) = push_image(&repo, b"image", Some("latest")).await;
    let subject = Descriptor::of(mt::OCI_MANIFEST, &subject_body);

    let none = repo.referrers(&subject_digest, None).await.unwrap();
    assert!(none.descriptors.is_empty());
    match none.source {
        ReferrersSource::TagSchema { tag, index } => {
            assert_eq!(tag, subject_digest.referrers_tag());
            assert!(index.is_none());
        }
        other => panic!("unexpected source {other:?}"),
    }

    let mut listing = Index::empty();
    for (layer, artifact_type) in [(&b"bundle"[..], mt::BUNDLE_V03), (b"sbom", "application/spdx+json")] {
        let body = manifest(layer, Some(artifact_type), Some(&subject));
        repo.put_manifest(Bytes::from(body.clone()), mt::OCI_MANIFEST, None).await.unwrap();
        let mut d = Descriptor::of(mt::OCI_MANIFEST, &body);
        d.artifact_type = Some(artifact_type.to_owned());
        listing.manifests.push(d);
    }
    let listing_bytes = to_canonical_bytes(&listing);
    let tag = subject_digest.referrers_tag();
    repo.put_manifest(Bytes::from(listing_bytes.clone()), mt::OCI_INDEX, Some(&tag)).await.unwrap();

    let all = repo.referrers(&subject_digest, None).await.unwrap();
    assert_eq!(all.subject, subject_digest);
    assert_eq!(all.descriptors, listing.manifests);
    let ReferrersSource::TagSchema { index: Some(raw), .. } = &all.source else { panic!("{:?}", all.source) };
    assert_eq!(raw.bytes, listing_bytes, "the raw index is kept for read-modify-write");

    let bundles = repo.referrers(&subject_digest, Some(mt::BUNDLE_V03)).await.unwrap();
    assert_eq!(bundles.descriptors, listing.manifests[..1]);
    assert!(repo.referrers(&subject_digest, Some("other/type")).await.unwrap().descriptors.is_empty());

    // A referrers tag on something that is not an index is an error, not "no referrers".
    let odd = Digest::sha256(b"odd");
    let body = manifest(b"x", None, None);
    repo.put_manifest(Bytes::from(body), mt::OCI_MANIFEST, Some(&odd.referrers_tag())).await.unwrap();
    assert_eq!(repo.referrers(&odd, None).await.unwrap_err().kind(), ErrorKind::InvalidFormat);
}

#[tokio::test]
async fn other_tools_entries_and_fields_survive() {
    let dir = tempfile::tempdir().unwrap();
    LayoutRepository::create(dir.path(), Limits::default()).unwrap();
    let foreign = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/xml",
            "digest": Digest::sha256(b"doc"),
            "size": 3,
            "annotations": {REF_NAME: "doc", "vendor.example/kind": "docs"},
            "vendor.example/extra": {"z": 1, "a": [true]}
        }],
        "annotations": {"vendor.example/owner": "someone"},
        "vendor.example/top": "kept"
    });
    fs::write(dir.path().join("index.json"), serde_json::to_vec(&foreign).unwrap()).unwrap();
    let repo = LayoutRepository::open(dir.path(), Limits::default()).unwrap();
    push_image(&repo, b"one", Some("v1")).await;

    let index = read_json(&dir.path().join("index.json"));
    assert_eq!(index["mediaType"], mt::OCI_INDEX, "the spec's SHOULD is filled in");
    assert_eq!(index["vendor.example/top"], "kept");
    assert_eq!(index["annotations"]["vendor.example/owner"], "someone");
    assert_eq!(index["manifests"][0], foreign["manifests"][0]);
    assert_eq!(repo.list_tags().await.unwrap(), ["doc", "v1"]);
    assert_eq!(repo.get_manifest("doc").await.unwrap_err().kind(), ErrorKind::InvalidFormat);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tag_writers_all_survive() {
    let dir = tempfile::tempdir().unwrap();
    LayoutRepository::create(dir.path(), Limits::default()).unwrap();
    const WRITERS: usize = 24;
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        // A separate handle per writer, as separate processes would have.
        let repo = LayoutRepository::open(dir.path(), Limits::default()).unwrap();
        tasks.push(tokio::spawn(async move {
            let body = manifest(format!("layer {i}").as_bytes(), None, None);
            repo.put_manifest(Bytes::from(body), mt::OCI_MANIFEST, Some(&format!("t{i:02}"))).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let repo = LayoutRepository::open(dir.path(), Limits::default()).unwrap();
    let tags = repo.list_tags().await.unwrap();
    let expected: Vec<String> = (0..WRITERS).map(|i| format!("t{i:02}")).collect();
    assert_eq!(tags, expected);
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
