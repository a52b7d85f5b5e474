//! `att2ref copy` between the real test registries, in both directions (distribution 2.8.2: referrers tag
//! schema; ferro-oci-server: referrers API), through an OCI layout, and within one registry.
//!
//! The source is a multi-platform index whose index and amd64 manifest each carry a legacy `.att` (the
//! index also a `.sig`), plus a non-attestation referrer of the amd64 manifest and a referrer of that
//! referrer. Writes to the destination are counted by a pass-through proxy in front of it, not by att2ref.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use att2ref::demo::{self, Scenario};
use att2ref::model::digest::Digest;
use att2ref::model::oci::{Descriptor, Manifest};
use att2ref::store::Repository;
use att2ref::store::registry::RegistryRepository;
use att2ref::store::tag_schema::{self, IndexOptions};
use serde_json::{Value, json};

use crate::cli::{Run, att2ref};
use crate::fault_proxy::{Fault, FaultProxy};
use crate::registries::TestRegistry;
use crate::schema::assert_valid;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const SBOM_TYPE: &str = "application/vnd.example.sbom+json";
const SIG_TYPE: &str = "application/vnd.example.signature";

fn ed25519() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/ed25519.pub.pem")
}

/// The RSA-4096 test key the demo store is signed with.
fn rsa() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/rsa-4096.pub.pem")
}

/// What an image report left behind: each item with its reason.
fn left_behind(image: &Value) -> Vec<(String, String)> {
    image["left_behind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["item"].as_str().unwrap().to_owned(), l["reason"].as_str().unwrap().to_owned()))
        .collect()
}

/// `att2ref copy --plain-http SRC DST --key ed25519 --insecure-ignore-tlog -o json EXTRA…`, its report
/// checked against the schema.
fn copy(source: &str, destination: &str, extra: &[&str]) -> (Run, Value) {
    let key = ed25519();
    let mut args = vec![
        "copy",
        "--plain-http",
        source,
        destination,
        "--key",
        key.to_str().unwrap(),
        "--insecure-ignore-tlog",
        "-o",
        "json",
        "-q",
    ];
    args.extend_from_slice(extra);
    let run = att2ref(&args);
    let report = run.json();
    assert_valid("copy-report.schema.json", &report);
    (run, report)
}

/// Requests that write (`PUT`, `POST`, `PATCH`, `DELETE`) among those a proxy forwarded.
fn writes(proxy: &FaultProxy) -> Vec<String> {
    proxy
        .answered()
        .into_iter()
        .map(|(request, _)| request)
        .filter(|r| ["PUT ", "POST ", "PATCH ", "DELETE "].iter().any(|m| r.starts_with(m)))
        .collect()
}

/// A referrer of `subject` with `artifact_type` and one JSON layer, listed the way `repo` lists referrers.
pub(crate) async fn push_referrer(
    repo: &RegistryRepository,
    subject: &Descriptor,
    artifact_type: &str,
    body: &str,
) -> Digest {
    let config = repo.put_blob(bytes::Bytes::from_static(b"{}")).await.unwrap();
    let layer = repo.put_blob(bytes::Bytes::from(body.to_owned())).await.unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config.to_string(), "size": 2},
        "layers": [{"mediaType": "application/json", "digest": layer.to_string(), "size": body.len()}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest.to_string(), "size": subject.size},
    });
    let bytes = bytes::Bytes::from(serde_json::to_vec(&manifest).unwrap());
    let mut entry = Descriptor::of(OCI_MANIFEST, &bytes);
    entry.artifact_type = Some(artifact_type.to_owned());
    let put = repo.put_manifest(bytes, OCI_MANIFEST, None).await.unwrap();
    if repo.referrers(&subject.digest, None).await.unwrap().descriptors.iter().all(|d| d.digest != put.digest)
        && put.oci_subject.is_none()
    {
        tag_schema::add_to_index(repo, &subject.digest, &[entry], IndexOptions { repair: false, max_retries: 8 })
            .await
            .unwrap();
    }
    put.digest
}

/// The source: the multi-arch scenario, an SBOM-like referrer of its amd64 manifest and a signature-like
/// referrer of that referrer.
struct Source {
    scenario: Scenario,
    amd64: Digest,
    arm64: Digest,
    sbom: Digest,
    sbom_signature: Digest,
}

async fn seed(repo: &RegistryRepository) -> Source {
    let scenario = demo::multi_arch().unwrap();
    scenario.repo.push_to(repo).await.unwrap();
    let raw = repo.get_manifest(&scenario.image.to_string()).await.unwrap().unwrap();
    let Manifest::Index(index) = &raw.manifest else { panic!("the multi-arch image is an index") };
    let (amd64, arm64) = (index.manifests[0].clone(), index.manifests[1].clone());
    let sbom = push_referrer(repo, &amd64, SBOM_TYPE, r#"{"sbom":"example"}"#).await;
    let sbom_descriptor = repo.head_manifest(&sbom.to_string()).await.unwrap().unwrap();
    let sbom_signature = push_referrer(repo, &sbom_descriptor, SIG_TYPE, r#"{"signature":"example"}"#).await;
    Source { scenario, amd64: amd64.digest, arm64: arm64.digest, sbom, sbom_signature }
}

/// `get --type TYPE` of `image` with the scenario's key: its exit code and stdout.
fn get(image: &str, predicate_type: &str) -> (i32, String) {
    let key = ed25519();
    let run = att2ref(&[
        "get",
        "--plain-http",
        image,
        "--type",
        predicate_type,
        "--key",
        key.to_str().unwrap(),
        "--insecure-ignore-tlog",
        "-q",
    ]);
    (run.code, run.stdout)
}

fn digests(values: &Value) -> Vec<String> {
    let mut out: Vec<String> =
        values.as_array().unwrap().iter().map(|v| v["digest"].as_str().unwrap().to_owned()).collect();
    out.sort();
    out
}

async fn index_with_platform_attestations(from: TestRegistry, to: TestRegistry) {
    let context = format!("{} -> {}", from.kind_name(), to.kind_name());
    let repo = from.repository("multi/app");
    let source = seed(&repo).await;
    let proxy = FaultProxy::counting(&to.host);
    let src = format!("{}/multi/app:1.0", from.host);
    let dst = format!("{}/copied/app", proxy.host);
    let (run, report) = copy(&src, &dst, &[]);
    assert_eq!(run.code, 0, "{context}: {}", run.stderr);
    let image = &report["images"][0];
    assert_eq!(report["images"].as_array().unwrap().len(), 1, "{context}");
    assert_eq!(image["outcome"], "copied", "{context}: {image:#}");
    assert_eq!(image["image"], source.scenario.image.to_string(), "{context}");
    assert_eq!(image["tags"], json!(["1.0"]), "{context}");
    let subjects: Vec<&str> = image["subjects"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let (index_s, amd64_s, arm64_s) =
        (source.scenario.image.to_string(), source.amd64.to_string(), source.arm64.to_string());
    assert_eq!(subjects, [index_s.as_str(), amd64_s.as_str(), arm64_s.as_str()], "{context}");
    // The index's SLSA provenance and the amd64 SPDX document, each converted into one referrer.
    let converted: Vec<(String, String, usize)> = image["converted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["image"].as_str().unwrap().to_owned(),
                c["outcome"].as_str().unwrap().to_owned(),
                c["referrers"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        converted,
        [(index_s.clone(), "migrated".to_owned(), 1), (amd64_s.clone(), "migrated".to_owned(), 1)],
        "{context}"
    );
    assert_eq!(
        digests(&image["referrers"]),
        {
            let mut d = vec![source.sbom.to_string(), source.sbom_signature.to_string()];
            d.sort();
            d
        },
        "{context}: the SBOM referrer and the referrer of that referrer"
    );
    assert_eq!(image["legacyTags"].as_array().map(Vec::len), None, "{context}: snake_case report");
    assert_eq!(image["legacy_tags"], json!([format!("sha256-{}.sig", source.scenario.image.hex())]), "{context}");
    assert_eq!(image["left_behind"], json!([]), "{context}");

    // What the destination serves, read directly.
    let copied = to.repository("copied/app");
    assert_eq!(copied.head_manifest("1.0").await.unwrap().unwrap().digest, source.scenario.image, "{context}");
    for platform in [&source.amd64, &source.arm64] {
        assert!(copied.head_manifest(&platform.to_string()).await.unwrap().is_some(), "{context}: {platform}");
    }
    let mut tags = copied.list_tags().await.unwrap();
    tags.sort();
    let mut expected = vec!["1.0".to_owned(), format!("sha256-{}.sig", source.scenario.image.hex())];
    if !to.has_referrers_api() {
        expected.extend([
            source.scenario.image.referrers_tag(),
            source.amd64.referrers_tag(),
            source.sbom.referrers_tag(),
        ]);
    }
    expected.sort();
    assert_eq!(tags, expected, "{context}: no .att in the destination, referrers listed as it lists them");
    let sbom_listing = copied.referrers(&source.sbom, None).await.unwrap();
    assert_eq!(
        sbom_listing.descriptors.iter().map(|d| d.digest.clone()).collect::<Vec<_>>(),
        std::slice::from_ref(&source.sbom_signature),
        "{context}"
    );

    // A consumer gets the same attested bytes from the copy as from the source.
    for (subject, predicate_type) in [(&source.scenario.image, "slsaprovenance"), (&source.amd64, "spdx")] {
        let (code, from_source) = get(&format!("{}/multi/app@{subject}", from.host), predicate_type);
        assert_eq!(code, 0, "{context}: get on the source");
        let (code, from_copy) = get(&format!("{}/copied/app@{subject}", to.host), predicate_type);
        assert_eq!(code, 0, "{context}: get on the copy");
        assert!(!from_copy.is_empty(), "{context}");
        assert_eq!(from_copy, from_source, "{context}: {predicate_type} of {subject}");
    }

    // A rerun writes nothing.
    let before = writes(&proxy).len();
    let (run, report) = copy(&src, &dst, &[]);
    assert_eq!(run.code, 0, "{context}: {}", run.stderr);
    assert_eq!(report["images"][0]["outcome"], "already-copied", "{context}");
    assert_eq!(writes(&proxy)[before..], [] as [String; 0], "{context}: the rerun wrote");
}

#[tokio::test]
async fn an_index_with_platform_attestations_from_distribution_to_ferro() {
    index_with_platform_attestations(TestRegistry::distribution(), TestRegistry::ferro()).await;
}

#[tokio::test]
async fn an_index_with_platform_attestations_from_ferro_to_distribution() {
    index_with_platform_attestations(TestRegistry::ferro(), TestRegistry::distribution()).await;
}

/// The converted bundles in the destination pass sigstore-js (verified with the key) and sigstore-models.
#[tokio::test]
async fn copied_bundles_pass_the_interop_checks() {
    let from = TestRegistry::distribution();
    seed(&from.repository("multi/app")).await;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("copy");
    let (run, report) = copy(&format!("{}/multi/app:1.0", from.host), &format!("ocidir://{}", layout.display()), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let blobs = layout.join("blobs/sha256");
    let mut job = Vec::new();
    for converted in report["images"][0]["converted"].as_array().unwrap() {
        for referrer in converted["referrers"].as_array().unwrap() {
            let digest: Digest = referrer["digest"].as_str().unwrap().parse().unwrap();
            let manifest: Value = serde_json::from_slice(&std::fs::read(blobs.join(digest.hex())).unwrap()).unwrap();
            let bundle: Digest = manifest["layers"][0]["digest"].as_str().unwrap().parse().unwrap();
            job.push((blobs.join(bundle.hex()), ed25519()));
        }
    }
    assert_eq!(job.len(), 2, "one bundle per legacy layer");
    crate::interop::assert_all_ok("sigstore-js", &crate::interop::sigstore_js(&job));
    let paths: Vec<PathBuf> = job.iter().map(|(b, _)| b.clone()).collect();
    crate::interop::assert_all_ok("sigstore-models", &crate::interop::sigstore_models(&paths));
}

/// Air-gapped transfer: registry → layout → registry, attestations converted on the first leg and copied
/// as referrers on the second; `get` on the far side equals `get` on the source.
#[tokio::test]
async fn through_a_layout_and_back() {
    let from = TestRegistry::ferro();
    let to = TestRegistry::distribution();
    let source = seed(&from.repository("multi/app")).await;
    let dir = tempfile::tempdir().unwrap();
    let layout = format!("ocidir://{}", dir.path().join("transfer").display());
    let (run, report) = copy(&format!("{}/multi/app:1.0", from.host), &layout, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["images"][0]["outcome"], "copied");
    let (run, report) = copy(&format!("{layout}:1.0"), &format!("{}/far/app", to.host), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let image = &report["images"][0];
    assert_eq!(image["outcome"], "copied", "{image:#}");
    // The layout holds no .att: the second leg finds the conversions as referrers and copies them.
    assert_eq!(image["converted"], json!([]));
    assert_eq!(image["referrers"].as_array().unwrap().len(), 4, "2 converted + the SBOM + its signature: {image:#}");
    for (subject, predicate_type) in [(&source.scenario.image, "slsaprovenance"), (&source.amd64, "spdx")] {
        let (_, from_source) = get(&format!("{}/multi/app@{subject}", from.host), predicate_type);
        let (code, far) = get(&format!("{}/far/app@{subject}", to.host), predicate_type);
        assert_eq!(code, 0);
        assert!(!far.is_empty());
        assert_eq!(far, from_source, "{predicate_type} of {subject}");
    }
}

/// A legacy attestation that does not verify (wrong key) blocks the image: exit 1 and not one write.
#[tokio::test]
async fn an_attestation_that_does_not_verify_blocks_the_image_and_nothing_is_written() {
    let from = TestRegistry::distribution();
    let to = TestRegistry::ferro();
    seed(&from.repository("multi/app")).await;
    let proxy = FaultProxy::counting(&to.host);
    let rsa = rsa();
    let run = att2ref(&[
        "copy",
        "--plain-http",
        &format!("{}/multi/app:1.0", from.host),
        &format!("{}/copied/app", proxy.host),
        "--key",
        rsa.to_str().unwrap(),
        "--insecure-ignore-tlog",
        "-o",
        "json",
        "-q",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["images"][0]["outcome"], "blocked");
    assert!(run.stderr.contains("blocked"), "{}", run.stderr);
    assert_eq!(writes(&proxy), [] as [String; 0]);
}

/// `--type` and `--artifact-type` filters, and `--legacy keep` / `both`.
#[tokio::test]
async fn filters_and_legacy_modes() {
    let from = TestRegistry::distribution();
    let to = TestRegistry::distribution();
    let source = seed(&from.repository("multi/app")).await;
    let src = format!("{}/multi/app:1.0", from.host);

    // Only SLSA provenance: the index's is converted; the amd64 SPDX document and the non-attestation
    // referrer (with the referrer of it) stay behind, each named.
    let (run, report) = copy(&src, &format!("{}/slsa/app", to.host), &["--type", "slsaprovenance"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let image = &report["images"][0];
    let converted: Vec<&str> =
        image["converted"].as_array().unwrap().iter().map(|c| c["image"].as_str().unwrap()).collect();
    assert_eq!(converted, [source.scenario.image.to_string()]);
    let left: Vec<String> =
        image["left_behind"].as_array().unwrap().iter().map(|l| l["item"].as_str().unwrap().to_owned()).collect();
    assert_eq!(
        left,
        [
            format!("legacy attestation https://spdx.dev/Document of {}", source.amd64),
            format!("referrer {}", source.sbom),
        ],
        "{image:#}"
    );
    assert_eq!(image["referrers"], json!([]));
    assert!(run.stderr.contains("left behind"), "{}", run.stderr);

    // Only the SBOM artifact type: that referrer and the referrer of it (unfiltered below the first level);
    // a referrer of another type is left behind, named.
    let amd64 = from.repository("multi/app").head_manifest(&source.amd64.to_string()).await.unwrap().unwrap();
    let other = push_referrer(&from.repository("multi/app"), &amd64, "application/example", "{}").await;
    let (run, report) =
        copy(&src, &format!("{}/sbom/app", to.host), &["--artifact-type", SBOM_TYPE, "--legacy", "keep"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let image = &report["images"][0];
    let left = left_behind(image);
    let (item, reason) = (format!("referrer {other}"), format!("artifact type application/example is not {SBOM_TYPE}"));
    assert_eq!(left, [(item, reason)], "{image:#}");
    assert!(run.stderr.contains("left behind"), "{}", run.stderr);
    assert_eq!(digests(&image["referrers"]), {
        let mut d = vec![source.sbom.to_string(), source.sbom_signature.to_string()];
        d.sort();
        d
    });
    // keep: the .att tags travel as they are, nothing converted.
    assert_eq!(image["converted"], json!([]));
    let mut legacy: Vec<String> =
        image["legacy_tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect();
    legacy.sort();
    let mut expected = vec![
        format!("sha256-{}.att", source.scenario.image.hex()),
        format!("sha256-{}.sig", source.scenario.image.hex()),
        format!("sha256-{}.att", source.amd64.hex()),
    ];
    expected.sort();
    assert_eq!(legacy, expected);
    let copied = to.repository("sbom/app");
    let original = from.repository("multi/app");
    for tag in &expected {
        assert_eq!(
            copied.head_manifest(tag).await.unwrap().unwrap().digest,
            original.head_manifest(tag).await.unwrap().unwrap().digest,
            "{tag} copied byte for byte"
        );
    }

    // both: converted and kept.
    let (run, report) = copy(&src, &format!("{}/both/app", to.host), &["--legacy", "both"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let image = &report["images"][0];
    assert_eq!(image["converted"].as_array().unwrap().len(), 2);
    assert_eq!(image["legacy_tags"].as_array().unwrap().len(), 3);
}

/// Within one registry, blobs are mounted, never transferred (counted in distribution's access log).
#[tokio::test]
async fn within_one_registry_blobs_are_mounted() {
    let registry = TestRegistry::distribution();
    seed(&registry.repository("multi/app")).await;
    let (run, report) =
        copy(&format!("{}/multi/app:1.0", registry.host), &format!("{}/mirror/app", registry.host), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let transfer = &report["images"][0]["transfer"];
    assert_eq!(transfer["blobs_copied"], 0, "{transfer:#}");
    let log = std::fs::read_to_string(registry.log_path()).unwrap();
    let mounts =
        log.lines().filter(|l| l.contains("\"POST /v2/mirror/app/blobs/uploads/?") && l.contains("mount=")).count();
    let uploads = log
        .lines()
        .filter(|l| {
            l.contains("\"PATCH /v2/mirror/app/blobs/uploads/") || (l.contains("\"PUT /v2/mirror/app/blobs/uploads/"))
        })
        .count();
    assert_eq!(transfer["blobs_mounted"].as_u64().unwrap() as usize, mounts, "{transfer:#}");
    assert!(mounts > 0);
    // Only the converted bundles (new content) are uploaded: two bundles.
    assert_eq!(uploads, 2, "{transfer:#}");
}

/// A whole registry to another under a prefix (`--all-repos`), then resumed from the journal.
#[tokio::test]
async fn a_whole_registry_and_a_resumed_run() {
    let from = TestRegistry::ferro();
    let to = TestRegistry::distribution();
    let source = seed(&from.repository("multi/app")).await;
    let demo = demo::demo().unwrap();
    demo.repo.push_to(&from.repository("demo/flasksample")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("copy.jsonl");
    let journal = journal.to_str().unwrap();
    let rsa = rsa();
    let args = ["--all-repos", "--journal", journal, "--key", rsa.to_str().unwrap()];
    let (run, report) = copy(&from.host, &format!("{}/mirror", to.host), &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut outcomes: Vec<(String, String)> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["destination"].as_str().unwrap().to_owned(), i["outcome"].as_str().unwrap().to_owned()))
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            (format!("{}/mirror/demo/flasksample", to.host), "copied".to_owned()),
            (format!("{}/mirror/multi/app", to.host), "copied".to_owned()),
        ]
    );
    assert_eq!(
        to.repository("mirror/multi/app").head_manifest("1.0").await.unwrap().unwrap().digest,
        source.scenario.image
    );
    assert_eq!(to.repository("mirror/demo/flasksample").head_manifest("v1").await.unwrap().unwrap().digest, demo.image);
    // A concurrent writer's stale index push drops one of the demo's two entries after the journal
    // recorded the image (what a run stopped before its settle pass leaves unrepaired): the resumed run
    // settles what the journal says was written, and lists it again.
    let mirrored = to.repository("mirror/demo/flasksample");
    let raw = mirrored.get_manifest(&demo.image.referrers_tag()).await.unwrap().expect("the demo's index");
    let Manifest::Index(mut index) = raw.manifest else { panic!("not an index") };
    assert_eq!(index.manifests.len(), 2);
    let dropped = index.manifests.pop().unwrap().digest;
    let stale = bytes::Bytes::from(att2ref::model::oci::to_canonical_bytes(&index));
    mirrored
        .put_manifest(stale, att2ref::model::media_type::OCI_INDEX, Some(&demo.image.referrers_tag()))
        .await
        .unwrap();
    let (run, report) = copy(&from.host, &format!("{}/mirror", to.host), &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outcomes: Vec<&str> =
        report["images"].as_array().unwrap().iter().map(|i| i["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["resumed", "resumed"]);
    let listed: Vec<Digest> =
        mirrored.referrers(&demo.image, None).await.unwrap().descriptors.into_iter().map(|d| d.digest).collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.contains(&dropped), "the dropped entry {dropped} is listed again: {listed:?}");
    // The same journal under another conversion: nothing it recorded was done that way, so nothing is
    // skipped on its word.
    let dsse = [&args[..], &["--format", "dsse"]].concat();
    let (run, report) = copy(&from.host, &format!("{}/mirror", to.host), &dsse);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outcomes: Vec<&str> =
        report["images"].as_array().unwrap().iter().map(|i| i["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes.len(), 2, "{report:#}");
    assert!(outcomes.iter().all(|o| *o != "resumed"), "{outcomes:?}");
}

/// On a destination with the referrers API, a run that resumes every image from the journal writes
/// nothing: the settle pass of the images it resumed learns the API is there (one listing) rather than
/// push a tag-schema index nobody reads.
#[tokio::test]
async fn a_resumed_run_into_a_registry_with_the_referrers_api_writes_nothing() {
    let from = TestRegistry::distribution();
    let to = TestRegistry::ferro();
    let demo = demo::demo().unwrap();
    demo.repo.push_to(&from.repository("demo/app")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("copy.jsonl");
    let rsa = rsa();
    let args = ["--journal", journal.to_str().unwrap(), "--key", rsa.to_str().unwrap()];
    // Through a proxy that logs what the destination is asked.
    let proxy = FaultProxy::start(&to.host, None);
    let (source, destination) = (format!("{}/demo/app", from.host), format!("{}/demo/app", proxy.host));
    let (run, report) = copy(&source, &destination, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["images"][0]["outcome"], "copied", "{report:#}");
    let tags_before = to.repository("demo/app").list_tags().await.unwrap();
    let asked_before = proxy.log().len();

    let (run, report) = copy(&source, &destination, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["images"][0]["outcome"], "resumed", "{report:#}");
    let writes: Vec<String> = proxy.log()[asked_before..]
        .iter()
        .filter(|l| ["PUT ", "POST ", "PATCH ", "DELETE "].iter().any(|m| l.starts_with(m)))
        .cloned()
        .collect();
    assert_eq!(writes, Vec::<String>::new());
    assert_eq!(to.repository("demo/app").list_tags().await.unwrap(), tags_before);
}

/// A source layer whose stored bytes no longer match its digest: the copy fails naming the image and the
/// reason (exit 1: the data failed a check, as in `migrate`), and the destination serves nothing under the
/// tag (tags are pushed last).
#[tokio::test]
async fn a_corrupted_source_layer_fails_the_image_and_leaves_no_tag() {
    let from = TestRegistry::distribution();
    let to = TestRegistry::ferro();
    let scenario = demo::demo().unwrap();
    let repo = from.repository("demo/app");
    scenario.repo.push_to(&repo).await.unwrap();
    let Manifest::Image(image) = repo.get_manifest("v1").await.unwrap().unwrap().manifest else {
        panic!("the demo image is an image manifest")
    };
    let layer = &image.layers[0].digest;
    let hex = layer.hex();
    let path = from.storage_dir().join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let rsa = rsa();
    let (run, report) = copy(
        &format!("{}/demo/app:v1", from.host),
        &format!("{}/demo/app", to.host),
        &["--key", rsa.to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let failed = &report["images"][0];
    assert_eq!(failed["outcome"], "failed", "{failed:#}");
    assert_eq!(failed["error_kind"], "digest-mismatch", "{failed:#}");
    let reasons = failed["reasons"].to_string();
    assert!(reasons.contains(&layer.to_string()) && reasons.contains(&scenario.image.to_string()), "{reasons}");
    assert!(run.stderr.contains(&scenario.image.to_string()), "{}", run.stderr);
    assert_eq!(to.repository("demo/app").head_manifest("v1").await.unwrap(), None);
}

/// A copy killed (SIGKILL) just before it tags its second image resumes from the journal: the first image
/// is skipped as recorded, the second (complete but for its tag) and third are copied, and every image
/// ends up in the destination with its attestations.
#[tokio::test]
async fn a_killed_copy_resumes_from_its_journal() {
    let from = TestRegistry::distribution();
    let to = TestRegistry::distribution();
    let repo = from.repository("fleet/app");
    let mut images = Vec::new();
    for i in 0..3 {
        let s = demo::article_like_numbered(&format!("{}/fleet/app", from.host), i, 2_000).unwrap();
        s.repo.push_to(&repo).await.unwrap();
        images.push(s.image);
    }
    let proxy = FaultProxy::start(&to.host, None);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("copy.jsonl");
    let rsa = rsa();
    let args: Vec<String> = [
        "copy",
        "--plain-http",
        &format!("{}/fleet/app", from.host),
        &format!("{}/mirror/app", proxy.host),
        "--key",
        rsa.to_str().unwrap(),
        "--insecure-ignore-tlog",
        "--jobs",
        "1",
        "--journal",
        journal.to_str().unwrap(),
        "-q",
        "-o",
        "json",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    // distribution lists tags in storage order, not sorted: the copy goes in that order.
    let order: Vec<String> = repo.list_tags().await.unwrap().into_iter().filter(|t| t.starts_with('v')).collect();
    assert_eq!(order.len(), 3);
    let kill = format!("PUT /v2/mirror/app/manifests/{}", order[1]);
    proxy.arm_kill_on(&kill, 1, crate::fault_proxy::KillWhen::BeforeForwarding);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_att2ref"))
        .args(&args)
        .env("HOME", std::env::temp_dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = proxy.run_child(child, Duration::from_secs(120));
    assert!(proxy.killed(), "{kill} never came ({status})");
    proxy.disarm_counting();
    let recorded: Vec<Value> =
        std::fs::read_to_string(journal).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["reference"], order[0].as_str());
    assert_eq!(recorded[0]["outcome"], "copied");

    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = att2ref(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    let outcomes: Vec<(&str, &str)> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["tags"][0].as_str().unwrap(), i["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [(order[0].as_str(), "resumed"), (order[1].as_str(), "copied"), (order[2].as_str(), "copied")]
    );
    let mirror = to.repository("mirror/app");
    for (i, image) in images.iter().enumerate() {
        assert_eq!(mirror.head_manifest(&format!("v{i}")).await.unwrap().unwrap().digest, *image);
        assert_eq!(mirror.referrers(image, None).await.unwrap().descriptors.len(), 2, "v{i}");
    }
}

/// A named image (`SRC:tag`) recorded in the journal is skipped on the next run while DST still serves it.
#[tokio::test]
async fn a_named_image_resumes_from_the_journal_too() {
    let from = TestRegistry::distribution();
    let to = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    scenario.repo.push_to(&from.repository("demo/app")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("copy.jsonl");
    let rsa = rsa();
    let args = ["--key", rsa.to_str().unwrap(), "--journal", journal.to_str().unwrap()];
    let (src, dst) = (format!("{}/demo/app:v1", from.host), format!("{}/demo/app", to.host));
    let (run, report) = copy(&src, &dst, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["images"][0]["outcome"], "copied");
    let (run, report) = copy(&src, &dst, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["images"][0]["outcome"], "resumed", "{report:#}");
    assert_eq!(report["images"][0]["tags"], json!(["v1"]));
}

/// The demo in a source registry behind a counting proxy, copied with a journal into a second registry.
struct JournaledCopy {
    _from: TestRegistry,
    to: TestRegistry,
    proxy: FaultProxy,
    scenario: Scenario,
    journal: PathBuf,
    _dir: tempfile::TempDir,
    src: String,
    dst: String,
}

impl JournaledCopy {
    async fn new() -> JournaledCopy {
        let from = TestRegistry::distribution();
        let to = TestRegistry::distribution();
        let scenario = demo::demo().unwrap();
        scenario.repo.push_to(&from.repository("demo/app")).await.unwrap();
        let proxy = FaultProxy::counting(&from.host);
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("copy.jsonl");
        let (src, dst) = (format!("{}/demo/app", proxy.host), format!("{}/demo/app", to.host));
        JournaledCopy { _from: from, to, proxy, scenario, journal, _dir: dir, src, dst }
    }

    /// `copy SRC DST --key rsa --journal FILE`.
    fn run(&self) -> (Run, Value) {
        let rsa = rsa();
        copy(&self.src, &self.dst, &["--key", rsa.to_str().unwrap(), "--journal", self.journal.to_str().unwrap()])
    }
}

/// An image whose source cannot be read is reported by what was asked (its tag) and no image digest
/// (never one made up), and its journal line is found by the next run: an image recorded as copied and
/// failed since is copied again, not resumed.
#[tokio::test]
async fn an_image_that_cannot_be_read_is_reported_and_recorded_by_its_tag() {
    let c = JournaledCopy::new().await;
    let (proxy, scenario, journal, src) = (&c.proxy, &c.scenario, &c.journal, &c.src);
    let (run, report) = c.run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["images"].as_array().unwrap().len(), 1, "{report:#}");
    assert_eq!(report["images"][0]["outcome"], "copied");
    assert_eq!(report["images"][0]["reference"], "v1");
    assert_eq!(report["images"][0]["image"], scenario.image.to_string());

    // The next run cannot read it: neither the journal's check nor the copy's fetch.
    proxy.fault_next("HEAD", "/v2/demo/app/manifests/v1", Fault::LostBehind(403));
    proxy.fault_next("GET", "/v2/demo/app/manifests/v1", Fault::LostBehind(403));
    let (run, report) = c.run();
    assert_ne!(run.code, 0, "{}", run.stderr);
    let image = &report["images"][0];
    assert_eq!((image["outcome"].as_str(), image["reference"].as_str()), (Some("failed"), Some("v1")), "{report:#}");
    assert!(image.get("image").is_none(), "no digest is made up: {image:#}");
    assert!(run.stderr.contains(&format!("error: {src}:v1: failed: ")), "{}", run.stderr);
    let last: Value = serde_json::from_str(std::fs::read_to_string(journal).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!((last["reference"].as_str(), last["outcome"].as_str()), (Some("v1"), Some("failed")), "{last}");
    assert!(last.get("image").is_none(), "{last}");

    // The failure is the image's last line: it is copied again (nothing left to write), not resumed.
    let (run, report) = c.run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["images"][0]["outcome"], "already-copied", "{report:#}");
}

/// A journal line of an image copied again and found complete (`already-copied`, nothing written) lists
/// what the image has in the destination, the first copy's referrers included: a run after it still
/// checks those are served before it skips the image, and copies it again when one was deleted.
#[tokio::test]
async fn a_later_already_copied_line_keeps_what_the_first_copy_wrote() {
    let c = JournaledCopy::new().await;
    let proxy = &c.proxy;
    let (run, report) = c.run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["images"][0]["outcome"], "copied");
    let written = report["images"][0]["converted"][0]["referrers"][0]["digest"].as_str().unwrap().to_owned();

    // The journal's check of the source fails once: the image is copied again, and nothing is missing.
    proxy.fault_next("HEAD", "/v2/demo/app/manifests/v1", Fault::LostBehind(403));
    let (run, report) = c.run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["images"][0]["outcome"], "already-copied", "{report:#}");

    // A referrer the first run wrote is deleted (a rollback, say): the next run copies it again.
    c.to.repository("demo/app").delete_manifest(&written.parse::<Digest>().unwrap()).await.unwrap();
    let (run, report) = c.run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["images"][0]["outcome"], "copied", "{report:#}");
    assert!(c.to.repository("demo/app").head_manifest(&written).await.unwrap().is_some(), "{written} is back");
    // Its line lists what the image has in the destination now: the run after it resumes.
    let (run, report) = c.run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["images"][0]["outcome"], "resumed", "{report:#}");
}

/// The settle pass reads each copied image's referrers index again, `--jobs` images at once: on a
/// remote registry a thousand images one after another would be a thousand round trips end to end.
/// Every read of those indexes is held 300 ms at a proxy in front of the destination, so reads made
/// one after another arrive at least that far apart, and reads made together arrive together.
#[tokio::test]
async fn the_settle_pass_reads_the_indexes_of_several_images_at_once() {
    const IMAGES: u32 = 6;
    const HELD: Duration = Duration::from_millis(300);
    let from = TestRegistry::distribution();
    let to = TestRegistry::distribution();
    let source = from.repository("fleet/app");
    let mut images = Vec::new();
    for i in 0..IMAGES {
        let scenario = demo::article_like_numbered("registry.test/fleet/app", i, 1_500).unwrap();
        scenario.repo.push_to(&source).await.unwrap();
        images.push(scenario.image);
    }
    let proxy = FaultProxy::counting(&to.host);
    let index_reads: Vec<String> =
        images.iter().map(|d| format!("/v2/mirror/manifests/{}", d.referrers_tag())).collect();
    for path in &index_reads {
        proxy.delay_request("GET", path, HELD);
    }
    let rsa = rsa();
    let (run, report) = copy(
        &format!("{}/fleet/app", from.host),
        &format!("{}/mirror", proxy.host),
        &["--key", rsa.to_str().unwrap(), "--jobs", "4"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outcomes: Vec<&str> =
        report["images"].as_array().unwrap().iter().map(|i| i["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["copied"; IMAGES as usize], "{report:#}");

    // The settle pass reads each image's index once, last of all.
    let reads: Vec<Duration> = proxy
        .arrivals()
        .into_iter()
        .filter(|(_, what)| index_reads.iter().any(|p| *what == format!("GET {p}")))
        .map(|(at, _)| at)
        .collect();
    assert!(reads.len() > IMAGES as usize, "index reads: {reads:?}");
    let settle = &reads[reads.len() - IMAGES as usize..];
    let together = settle.windows(2).filter(|w| w[1] - w[0] < HELD / 2).count();
    assert!(together >= 3, "settle reads arriving together: {together} (index reads {reads:?})");
}

/// A whole registry copied under a path of itself: the catalog then lists the copies too, and they are
/// not sources. Run twice, as a scheduled mirror job would, it still holds exactly one copy of each
/// repository (never `mirror/mirror/…`).
#[tokio::test]
async fn a_registry_copied_under_a_path_of_itself_does_not_copy_its_copies() {
    let registry = TestRegistry::distribution();
    let demo = demo::demo().unwrap();
    demo.repo.push_to(&registry.repository("demo/flasksample")).await.unwrap();
    // A repository named like the destination path is a source all the same (copies go under it).
    demo.repo.push_to(&registry.repository("mirror")).await.unwrap();
    let source = seed(&registry.repository("multi/app")).await;
    let rsa = rsa();
    let args = ["--all-repos", "--key", rsa.to_str().unwrap()];
    for run_no in 1..=2 {
        let (run, report) = copy(&registry.host, &format!("{}/mirror", registry.host), &args);
        assert_eq!(run.code, 0, "run {run_no}: {}", run.stderr);
        let mut destinations: Vec<&str> =
            report["images"].as_array().unwrap().iter().map(|i| i["destination"].as_str().unwrap()).collect();
        destinations.sort();
        assert_eq!(
            destinations,
            [
                format!("{}/mirror/demo/flasksample", registry.host),
                format!("{}/mirror/mirror", registry.host),
                format!("{}/mirror/multi/app", registry.host)
            ],
            "run {run_no}: {report:#}"
        );
    }
    let mut catalog = registry.client().catalog(&registry.host).await.unwrap();
    catalog.sort();
    assert_eq!(
        catalog,
        ["demo/flasksample", "mirror", "mirror/demo/flasksample", "mirror/mirror", "mirror/multi/app", "multi/app"]
    );
    assert_eq!(
        registry.repository("mirror/multi/app").head_manifest("1.0").await.unwrap().unwrap().digest,
        source.scenario.image
    );
}

/// A source migrated earlier, whose `.att` has been rewritten since (a later `cosign attest` rewrites it
/// whole): its referrers are copied as they are, and converting its `.att` again adopts them rather
/// than list each attestation a second time under another digest.
#[tokio::test]
async fn a_source_migrated_before_is_not_listed_twice_in_the_destination() {
    let from = TestRegistry::distribution();
    let to = TestRegistry::distribution();
    let demo = demo::demo().unwrap();
    let source = from.repository("demo/app");
    demo.repo.push_to(&source).await.unwrap();
    let rsa = rsa();
    let rsa = rsa.to_str().unwrap();
    let image = format!("{}/demo/app@{}", from.host, demo.image);
    let migrated = att2ref(&["migrate", "--plain-http", &image, "--key", rsa, "--insecure-ignore-tlog", "-q"]);
    assert_eq!(migrated.code, 0, "{}", migrated.stderr);
    let listed = |repo: RegistryRepository| async move {
        let mut d: Vec<Digest> = repo
            .referrers(&demo::demo().unwrap().image, None)
            .await
            .unwrap()
            .descriptors
            .into_iter()
            .map(|d| d.digest)
            .collect();
        d.sort();
        d
    };
    let in_source = listed(from.repository("demo/app")).await;
    assert_eq!(in_source.len(), 2, "{in_source:?}");

    let tag = demo.image.cosign_tag("att");
    let raw = source.get_manifest(&tag).await.unwrap().unwrap();
    let Manifest::Image(mut att) = raw.manifest else { panic!("the .att is an image manifest") };
    att.annotations.insert("rewritten-by".into(), "a later cosign attest".into());
    let rewritten = bytes::Bytes::from(att2ref::model::oci::to_canonical_bytes(&att));
    source.put_manifest(rewritten, &raw.media_type, Some(&tag)).await.unwrap();

    let (run, report) = copy(&image, &format!("{}/mirror:v1", to.host), &["--key", rsa]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["images"][0]["outcome"], "copied", "{report:#}");
    assert_eq!(listed(to.repository("mirror")).await, in_source, "{report:#}");
}

/// An entry of the source's index whose manifest names another subject (stale, or planted) is no
/// referrer of the image: it is left behind with the reason, not copied into a destination that indexes
/// referrers itself, where it would never be listed for the image and every run would wait for it.
#[tokio::test]
async fn an_index_entry_naming_another_subject_is_left_behind() {
    let from = TestRegistry::distribution();
    let to = TestRegistry::ferro();
    let repo = from.repository("multi/app");
    let source = seed(&repo).await;
    // A referrer of the arm64 manifest, listed in the amd64 manifest's index as well.
    let arm64 = repo.head_manifest(&source.arm64.to_string()).await.unwrap().unwrap();
    let stray = push_referrer(&repo, &arm64, SIG_TYPE, r#"{"signature":"of arm64"}"#).await;
    let stray_entry =
        repo.referrers(&source.arm64, None).await.unwrap().descriptors.into_iter().find(|d| d.digest == stray).unwrap();
    tag_schema::add_to_index(&repo, &source.amd64, &[stray_entry], IndexOptions { repair: false, max_retries: 8 })
        .await
        .unwrap();

    let image = format!("{}/multi/app:1.0", from.host);
    let (run, report) = copy(&image, &format!("{}/mirror:1.0", to.host), &["--listing-wait", "5"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let left = left_behind(&report["images"][0]);
    let item = format!("referrer {stray}");
    let reason = format!("listed in the source, but its manifest names the subject {}", source.arm64);
    assert_eq!(left, [(item, reason)], "{report:#}");
    // Under its own subject it is copied all the same.
    let mirrored = to.repository("mirror");
    let listed = |subject: Digest| {
        let mirrored = &mirrored;
        async move {
            mirrored
                .referrers(&subject, None)
                .await
                .unwrap()
                .descriptors
                .into_iter()
                .map(|d| d.digest)
                .collect::<Vec<_>>()
        }
    };
    assert!(!listed(source.amd64.clone()).await.contains(&stray));
    assert_eq!(listed(source.arm64.clone()).await, [stray]);
}

/// A registry that refuses blob mounts outright (404 or 405 where mounts are not implemented, 401 or 403
/// for a token that may not read the other repository) gets the blobs uploaded instead: a mount is an
/// offer, not a requirement. A refusal is remembered for the repository mounted from, so the next blobs
/// are uploaded without asking again.
#[tokio::test]
async fn a_refused_mount_falls_back_to_an_upload() {
    for status in [403, 405] {
        let registry = TestRegistry::distribution();
        let source = seed(&registry.repository("multi/app")).await;
        let proxy = FaultProxy::counting(&registry.host);
        proxy.refuse("/v2/mirror/app/blobs/uploads/?mount=", status);
        let (run, report) = copy(&format!("{}/multi/app:1.0", proxy.host), &format!("{}/mirror/app", proxy.host), &[]);
        assert_eq!(run.code, 0, "{status}: {}", run.stderr);
        let transfer = &report["images"][0]["transfer"];
        assert_eq!(transfer["blobs_mounted"], 0, "{status}: {transfer:#}");
        assert!(transfer["blobs_copied"].as_u64().unwrap() > 0, "{status}: {transfer:#}");
        // Asked again only by the blobs already on their way when the first refusal came back (four
        // at once within a manifest), not once per blob: eight were copied.
        let refused = proxy.log().iter().filter(|l| l.contains("refused with")).count();
        assert_eq!(transfer["blobs_copied"], 8, "{status}: {transfer:#}");
        assert!((1..=4).contains(&refused), "{status}: {refused} mounts refused: {:?}", proxy.log());
        assert_eq!(
            registry.repository("mirror/app").head_manifest("1.0").await.unwrap().unwrap().digest,
            source.scenario.image
        );
    }
}

/// One image under three tags is three units of the batch: they take turns (the first copies, the
/// others find everything there and push their tags), so nothing is converted or written three times
/// at once. Counted at a proxy: every manifest is pushed once, and each tag once.
#[tokio::test]
async fn units_of_one_image_under_several_tags_take_turns() {
    let from = TestRegistry::distribution();
    let to = TestRegistry::distribution();
    let demo = demo::demo().unwrap();
    let source = from.repository("demo/app");
    demo.repo.push_to(&source).await.unwrap();
    let raw = source.get_manifest(&demo.image.to_string()).await.unwrap().unwrap();
    for tag in ["v2", "v3"] {
        source.put_manifest(raw.bytes.clone(), &raw.media_type, Some(tag)).await.unwrap();
    }
    let proxy = FaultProxy::counting(&to.host);
    let rsa = rsa();
    let (run, report) = copy(
        &format!("{}/demo/app", from.host),
        &format!("{}/mirror", proxy.host),
        &["--key", rsa.to_str().unwrap(), "--jobs", "4"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Each unit pushes its tag (so each is `copied`); the attestations are converted by the first only.
    let mut converted: Vec<&str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["converted"].as_array().unwrap())
        .map(|c| c["outcome"].as_str().unwrap())
        .collect();
    converted.sort();
    assert_eq!(converted, ["already-migrated", "already-migrated", "migrated"], "{report:#}");
    let mut pushes: BTreeMap<String, usize> = BTreeMap::new();
    for write in writes(&proxy).into_iter().filter(|w| w.starts_with("PUT /v2/mirror/manifests/")) {
        *pushes.entry(write).or_default() += 1;
    }
    let repeated: Vec<_> = pushes.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "manifests pushed more than once: {repeated:?}");
    for tag in ["v1", "v2", "v3"] {
        assert_eq!(pushes.get(&format!("PUT /v2/mirror/manifests/{tag}")), Some(&1), "{pushes:?}");
    }
}

/// Referrers of referrers are copied down to `MAX_DEPTH` levels below the image; one deeper is named in
/// the report as left behind, not dropped unseen.
#[tokio::test]
async fn referrers_deeper_than_the_copy_goes_are_named() {
    let from = TestRegistry::distribution();
    let to = TestRegistry::distribution();
    let repo = from.repository("multi/app");
    let source = seed(&repo).await;
    // amd64 ← sbom ← sbom_signature (levels 1 and 2) ← level 3 ← level 4 ← level 5.
    let mut subject = repo.head_manifest(&source.sbom_signature.to_string()).await.unwrap().unwrap();
    let mut chain = Vec::new();
    for level in 3..=5 {
        let digest = push_referrer(&repo, &subject, SIG_TYPE, &format!(r#"{{"level":{level}}}"#)).await;
        subject = repo.head_manifest(&digest.to_string()).await.unwrap().unwrap();
        chain.push(digest);
    }
    assert_eq!(att2ref::copy::referrers::MAX_DEPTH, 4);
    let (run, report) = copy(&format!("{}/multi/app:1.0", from.host), &format!("{}/mirror:1.0", to.host), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let image = &report["images"][0];
    let copied = digests(&image["referrers"]);
    assert!(copied.contains(&chain[1].to_string()), "level 4 copied: {image:#}");
    assert!(!copied.contains(&chain[2].to_string()), "level 5 not copied: {image:#}");
    let left = left_behind(image);
    let item = format!("referrer {}", chain[2]);
    let reason = "more than 4 levels of referrers below the image (not copied)".to_owned();
    assert_eq!(left, [(item, reason)], "{image:#}");
}

/// ECR stores no referrer whose subject is an image index (aws/containers-roadmap#2783). A copy of a
/// multi-arch image attested on its index used to fail as a whole there, on every rerun: the platforms'
/// attestations were never converted and the tag never pushed. Now the index's attestations go over as its
/// legacy `.att` (nothing lost, and said in `left_behind`), and the rest of the copy goes on. Emulated:
/// distribution behind a proxy refusing index subjects as ECR does.
#[tokio::test]
async fn an_index_whose_referrers_the_destination_refuses_keeps_its_legacy_att() {
    let from = TestRegistry::distribution();
    let source = seed(&from.repository("multi/app")).await;
    let (to, report) = copy_into_ecr(&from).await;
    let image = &report["images"][0];
    let index = source.scenario.image.to_string();
    let converted: Vec<&str> =
        image["converted"].as_array().unwrap().iter().map(|c| c["image"].as_str().unwrap()).collect();
    assert_eq!(converted, [source.amd64.to_string()], "the platform's conversion went on: {image:#}");
    let left: Vec<&str> =
        image["left_behind"].as_array().unwrap().iter().map(|l| l["item"].as_str().unwrap()).collect();
    assert!(left.iter().any(|l| l.contains(&index)), "{image:#}");
    let copied = to.repository("ecr/app");
    let att = source.scenario.image.cosign_tag("att");
    let there = copied.head_manifest(&att).await.unwrap().expect("the index's .att, copied as it is");
    let here = from.repository("multi/app").head_manifest(&att).await.unwrap().unwrap();
    assert_eq!(there.digest, here.digest);
    assert_eq!(copied.head_manifest("1.0").await.unwrap().map(|d| d.digest), Some(source.scenario.image.clone()));
}

/// The same destination, and a referrer the index already has in the source (a signature pushed as a
/// referrer of the index, as cosign v3 does): it stays behind, said, and the rest of the copy goes on.
#[tokio::test]
async fn an_index_referrer_the_destination_refuses_is_left_behind() {
    let from = TestRegistry::distribution();
    let repo = from.repository("multi/app");
    let source = seed(&repo).await;
    let index = repo.head_manifest(&source.scenario.image.to_string()).await.unwrap().unwrap();
    let on_index = push_referrer(&repo, &index, SIG_TYPE, r#"{"signature":"of the index"}"#).await;
    let (to, report) = copy_into_ecr(&from).await;
    let image = &report["images"][0];
    let left: Vec<&str> =
        image["left_behind"].as_array().unwrap().iter().map(|l| l["item"].as_str().unwrap()).collect();
    assert!(left.contains(&format!("referrer {on_index}").as_str()), "{image:#}");
    let copied = digests(&image["referrers"]);
    let mut expected = vec![source.sbom.to_string(), source.sbom_signature.to_string()];
    expected.sort();
    assert_eq!(copied, expected, "the platform's referrers went over: {image:#}");
    let there = to.repository("ecr/app");
    assert_eq!(there.head_manifest("1.0").await.unwrap().map(|d| d.digest), Some(source.scenario.image.clone()));
}

/// `copy` of `multi/app:1.0` of `from` into `ecr/app` of a fresh distribution behind a proxy refusing
/// index subjects as ECR does, which must succeed with the image copied: the destination and the report.
async fn copy_into_ecr(from: &TestRegistry) -> (TestRegistry, Value) {
    let to = TestRegistry::distribution();
    let proxy = FaultProxy::counting(&to.host);
    proxy.refuse_index_subjects();
    let (run, report) = copy(&format!("{}/multi/app:1.0", from.host), &format!("{}/ecr/app", proxy.host), &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(report["images"][0]["outcome"], "copied", "{report:#}");
    (to, report)
}
