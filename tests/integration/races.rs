//! Concurrent writers of the referrers tag-schema index on distribution 2.8.2, which has no
//! compare-and-swap for tags: 2 and 4 real `att2ref migrate` processes over overlapping image sets of
//! one repository, while another tool (played by the library's index API) keeps adding its own
//! referrers to the same subjects. Afterwards every subject's index must list every referrer exactly
//! once: nothing lost, nothing doubled.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use att2ref::demo;
use att2ref::model::digest::Digest;
use att2ref::model::media_type as mt;
use att2ref::model::oci::{Descriptor, ImageManifest, Manifest, to_canonical_bytes};
use att2ref::store::Repository;
use att2ref::store::registry::RegistryRepository;
use att2ref::store::tag_schema::{IndexOptions, add_to_index};
use bytes::Bytes;
use serde_json::Value;

use crate::registries::TestRegistry;

const REPO: &str = "races/app";
/// Images per round.
const IMAGES: u32 = 6;
/// Third-party referrers per image and round.
pub(crate) const THEIRS: u32 = 2;
const THEIR_TYPE: &str = "application/vnd.example.scan-result+json";

/// One round: `writers` migrators, each given an overlapping window of the round's images (rotated by
/// `seed`), racing each other and the third-party writer.
struct Round {
    seed: u32,
    writers: u32,
}

const ROUNDS: &[Round] = &[
    Round { seed: 1, writers: 2 },
    Round { seed: 2, writers: 4 },
    Round { seed: 3, writers: 2 },
    Round { seed: 4, writers: 4 },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrators_and_another_tool_lose_no_index_entries_on_distribution() {
    let started = Instant::now();
    let registry = TestRegistry::distribution();
    let repo = registry.repository(REPO);
    for round in ROUNDS {
        run_round(&registry, &repo, round).await;
    }
    eprintln!("races: {} rounds in {:?}", ROUNDS.len(), started.elapsed());
}

async fn run_round(registry: &TestRegistry, repo: &RegistryRepository, round: &Round) {
    // Fresh images per round: an image already migrated would be a no-op, not a race.
    let mut images = Vec::new();
    for i in 0..IMAGES {
        let scenario = demo::article_like_numbered(REPO, round.seed * 100 + i, 3_000).unwrap();
        scenario.repo.push_to(repo).await.unwrap();
        images.push(scenario.image);
    }

    // Each migrator takes a window of 4 images (of 6) starting at a seed-dependent offset: every image
    // is migrated by at least two processes at once.
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/rsa-4096.pub.pem");
    let mut children = Vec::new();
    for w in 0..round.writers {
        let start = (round.seed + w * IMAGES / round.writers) % IMAGES;
        let mine: Vec<String> =
            (0..4).map(|k| format!("{}/{REPO}@{}", registry.host, images[((start + k) % IMAGES) as usize])).collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_att2ref"));
        cmd.args(["migrate", "--plain-http", "--insecure-ignore-tlog", "-o", "json", "--key"])
            .arg(&key)
            .args(&mine)
            .env_remove("RUST_LOG")
            .env("HOME", std::env::temp_dir())
            .env_remove("DOCKER_CONFIG")
            .env_remove("REGISTRY_AUTH_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        children.push(cmd.spawn().expect("starting att2ref migrate"));
    }

    // Meanwhile another tool attaches its own referrers to the same images.
    let theirs = third_party_writer(repo, &images, round.seed).await;

    let mut ours: BTreeMap<Digest, BTreeSet<Digest>> = BTreeMap::new();
    for child in children {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "seed {}: a migrator failed:\n{stdout}\n{stderr}", round.seed);
        assert!(!stderr.contains("panicked"), "{stderr}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        for image in report["images"].as_array().unwrap() {
            let outcome = image["outcome"].as_str().unwrap();
            assert!(matches!(outcome, "migrated" | "already-migrated"), "seed {}: {image:#}", round.seed);
            let subject: Digest = image["image"].as_str().unwrap().parse().unwrap();
            for r in image["referrers"].as_array().unwrap() {
                ours.entry(subject.clone()).or_default().insert(r["digest"].as_str().unwrap().parse().unwrap());
            }
        }
    }

    for subject in &images {
        let listed = listed(repo, subject).await;
        let unique: BTreeSet<&Digest> = listed.iter().collect();
        assert_eq!(unique.len(), listed.len(), "seed {}: {subject}: an entry is listed twice: {listed:?}", round.seed);
        let mine = ours.get(subject).cloned().unwrap_or_default();
        assert_eq!(mine.len(), 2, "seed {}: {subject}: both attestations were migrated: {mine:?}", round.seed);
        for d in mine.iter().chain(&theirs[subject]) {
            assert!(
                unique.contains(d),
                "seed {}: {subject}: entry {d} was lost; the index lists {listed:?}",
                round.seed
            );
        }
        assert_eq!(listed.len(), 2 + THEIRS as usize, "seed {}: {subject}: {listed:?}", round.seed);
        // The way a consumer finds them agrees.
        let found = repo.referrers(subject, None).await.unwrap().descriptors.len();
        assert_eq!(found, 2 + THEIRS as usize);
    }
}

/// The digests the subject's tag-schema index lists, in order.
async fn listed(repo: &RegistryRepository, subject: &Digest) -> Vec<Digest> {
    let raw = repo.get_manifest(&subject.referrers_tag()).await.unwrap().expect("the tag-schema index exists");
    let Manifest::Index(index) = raw.manifest else { panic!("{subject}: the referrers tag holds no index") };
    index.manifests.into_iter().map(|m| m.digest).collect()
}

/// Push `THEIRS` referrers per image, listing each through the library's index API, at jittered
/// moments while the migrators run. Returns what it listed per subject.
pub(crate) async fn third_party_writer(
    repo: &RegistryRepository,
    images: &[Digest],
    seed: u32,
) -> BTreeMap<Digest, BTreeSet<Digest>> {
    let config = repo.put_blob(Bytes::from_static(b"{}")).await.unwrap();
    assert_eq!(config, Descriptor::empty_config().digest);
    let mut theirs: BTreeMap<Digest, BTreeSet<Digest>> = BTreeMap::new();
    let mut tasks = Vec::new();
    for j in 0..THEIRS {
        for (i, subject) in images.iter().enumerate() {
            let (repo, subject) = (repo.clone(), subject.clone());
            let delay = Duration::from_millis(u64::from((seed * 37 + j * 101 + i as u32 * 53) % 400));
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let entry = push_third_party(&repo, &subject, seed, j).await;
                let options = IndexOptions { repair: false, max_retries: 8 };
                add_to_index(&repo, &subject, std::slice::from_ref(&entry), options).await.unwrap();
                (subject, entry.digest)
            }));
        }
    }
    for t in tasks {
        let (subject, digest) = t.await.unwrap();
        theirs.entry(subject).or_default().insert(digest);
    }
    theirs
}

/// Another tool's referrer of `subject` (a scan result), pushed by digest; its index entry.
pub(crate) async fn push_third_party(repo: &RegistryRepository, subject: &Digest, seed: u32, j: u32) -> Descriptor {
    let layer = Bytes::from(format!("{{\"scan\":\"{subject}\",\"seed\":{seed},\"n\":{j}}}"));
    let layer_digest = repo.put_blob(layer.clone()).await.unwrap();
    let subject_desc = repo.head_manifest(&subject.to_string()).await.unwrap().unwrap();
    let mut layer_desc = Descriptor::of("application/json", &layer);
    layer_desc.digest = layer_digest;
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(mt::OCI_MANIFEST.into()),
        artifact_type: Some(THEIR_TYPE.into()),
        config: Descriptor::empty_config(),
        layers: vec![layer_desc],
        subject: Some(Descriptor {
            media_type: subject_desc.media_type.clone(),
            digest: subject_desc.digest.clone(),
            size: subject_desc.size,
            ..Descriptor::of(mt::OCI_MANIFEST, b"")
        }),
        annotations: [("org.example.seed".to_owned(), format!("{seed}-{j}"))].into_iter().collect(),
        extra: Default::default(),
    };
    let bytes = Bytes::from(to_canonical_bytes(&manifest));
    let put = repo.put_manifest(bytes.clone(), mt::OCI_MANIFEST, None).await.unwrap();
    let mut entry = Descriptor::of(mt::OCI_MANIFEST, &bytes);
    entry.digest = put.digest;
    entry.artifact_type = Some(THEIR_TYPE.into());
    entry.annotations = manifest.annotations.clone();
    entry
}

/// An index push the registry throttles is never sent again as it was: by the time the registry's pause
/// is over, another writer may have listed its own referrer and confirmed it, and the late copy of our
/// merge would erase it while our read-back (which looks only for our entries) reports success. The
/// push is merged again from a fresh read instead — whether the index is new, or exists already and our
/// push carries `If-Match` (which distribution ignores on PUT, so it protects nothing).
#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_index_push_is_merged_again_not_resent_late() {
    for (seed, existing) in [(900, false), (901, true)] {
        throttled_push_round(seed, existing).await;
    }
}

/// A fresh distribution with one image of `seed` and one referrer of it pushed (`ours`, not listed yet).
async fn subject_with_a_referrer(seed: u32) -> (TestRegistry, RegistryRepository, Digest, Descriptor) {
    let registry = TestRegistry::distribution();
    let direct = registry.repository(REPO);
    let scenario = demo::article_like_numbered(REPO, seed, 3_000).unwrap();
    scenario.repo.push_to(&direct).await.unwrap();
    let subject = scenario.image.clone();
    let config = direct.put_blob(Bytes::from_static(b"{}")).await.unwrap();
    assert_eq!(config, Descriptor::empty_config().digest);
    let ours = push_third_party(&direct, &subject, seed, 0).await;
    (registry, direct, subject, ours)
}

async fn throttled_push_round(seed: u32, existing: bool) {
    use crate::fault_proxy::{Fault, FaultProxy};

    let (registry, direct, subject, ours) = subject_with_a_referrer(seed).await;
    let theirs = push_third_party(&direct, &subject, seed, 1).await;
    let options = IndexOptions { repair: false, max_retries: 8 };
    let mut before = Vec::new();
    if existing {
        let first = push_third_party(&direct, &subject, seed, 2).await;
        add_to_index(&direct, &subject, std::slice::from_ref(&first), options).await.unwrap();
        before.push(first.digest);
    }

    let proxy = FaultProxy::start(&registry.host, None);
    proxy.fault_next("PUT", &format!("/manifests/{}", subject.referrers_tag()), Fault::TooManyRequests(1));
    let throttled = crate::registry_client::mock_client(|_| {}).repository(&proxy.host, REPO);
    let ours_task = {
        let (subject, ours) = (subject.clone(), ours.clone());
        tokio::spawn(async move { add_to_index(&throttled, &subject, &[ours], options).await })
    };
    // The other writer lists its referrer while our push waits out `Retry-After: 1`, and confirms it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.injected().values().sum::<u64>() == 0 {
        assert!(Instant::now() < deadline, "the index push was never throttled: {:?}", proxy.log());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    add_to_index(&direct, &subject, std::slice::from_ref(&theirs), options).await.unwrap();
    let mut expected = before.clone();
    expected.push(theirs.digest.clone());
    assert_eq!(listed(&direct, &subject).await, expected, "the other writer went first");

    ours_task.await.unwrap().unwrap();
    let now: BTreeSet<Digest> = listed(&direct, &subject).await.into_iter().collect();
    expected.push(ours.digest.clone());
    assert_eq!(now, expected.into_iter().collect::<BTreeSet<_>>(), "existing index: {existing}; {:?}", proxy.log());
    // Independently of the client: after the 429 the proxy saw the index read again before the next push.
    let tag = subject.referrers_tag();
    let on_tag: Vec<String> = proxy.log().into_iter().filter(|l| l.contains(&tag)).collect();
    let first_put = on_tag.iter().position(|l| l.contains(" PUT /")).expect("a push");
    assert!(on_tag[first_put].contains("429"), "{on_tag:?}");
    assert!(on_tag[first_put + 1].contains(" GET /"), "a read right after the throttled push: {on_tag:?}");
}

/// An index push whose answer is lost after the registry stored it still gets the delayed confirmation:
/// the next round finds nothing to change (our entry is there), but a writer that read the index before
/// that push may yet push its stale copy. Seen at the proxy: after the lost push, the index is read, and
/// read once more a confirmation delay later.
#[tokio::test(flavor = "multi_thread")]
async fn a_push_whose_answer_was_lost_is_confirmed_too() {
    use crate::fault_proxy::{Fault, FaultProxy};
    use att2ref::store::tag_schema::CONFIRM_DELAY;

    let (registry, direct, subject, ours) = subject_with_a_referrer(950).await;

    let proxy = FaultProxy::start(&registry.host, None);
    let tag = subject.referrers_tag();
    proxy.fault_next("PUT", &format!("/manifests/{tag}"), Fault::LostResponse);
    let repo = crate::registry_client::mock_client(|_| {}).repository(&proxy.host, REPO);
    let options = IndexOptions { repair: false, max_retries: 8 };
    add_to_index(&repo, &subject, std::slice::from_ref(&ours), options).await.unwrap();
    assert_eq!(listed(&direct, &subject).await, vec![ours.digest.clone()]);

    let on_tag: Vec<(Duration, String)> =
        proxy.arrivals().into_iter().filter(|(_, what)| what.contains(&tag)).collect();
    let lost = on_tag.iter().position(|(_, what)| what.starts_with("PUT ")).expect("our push");
    let puts = on_tag.iter().filter(|(_, what)| what.starts_with("PUT ")).count();
    assert_eq!(puts, 1, "the push landed: nothing to push again: {on_tag:?}");
    let reads: Vec<Duration> =
        on_tag[lost + 1..].iter().filter(|(_, what)| what.starts_with("GET ")).map(|(at, _)| *at).collect();
    assert!(reads.len() >= 2, "read again, then confirmed: {on_tag:?}");
    assert!(reads[reads.len() - 1] - reads[0] >= CONFIRM_DELAY, "a confirmation delay apart: {on_tag:?}");
}

/// distribution answers a read of a tag another writer is rewriting with a 500 now and then; when the
/// client's own retries all meet it (three here), the index update reads again later instead of failing.
#[tokio::test(flavor = "multi_thread")]
async fn index_reads_answered_500_more_times_than_the_client_retries_are_read_again() {
    use crate::fault_proxy::{Fault, FaultProxy};

    let (registry, direct, subject, ours) = subject_with_a_referrer(960).await;

    let proxy = FaultProxy::start(&registry.host, None);
    let tag = subject.referrers_tag();
    for _ in 0..3 {
        proxy.fault_next("GET", &format!("/manifests/{tag}"), Fault::ServerError(500));
    }
    let repo = crate::registry_client::mock_client(|_| {}).repository(&proxy.host, REPO);
    let options = IndexOptions { repair: false, max_retries: 8 };
    let stats = add_to_index(&repo, &subject, std::slice::from_ref(&ours), options).await.unwrap();
    assert!(stats.index_updated);
    assert_eq!(listed(&direct, &subject).await, vec![ours.digest.clone()]);
    assert_eq!(proxy.injected().values().sum::<u64>(), 3, "{:?}", proxy.log());
}
