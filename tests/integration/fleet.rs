//! A fleet of legacy images for the robustness tests (faults, crashes): many small deterministic
//! images in one repository of a real distribution registry, the `att2ref migrate` command line for
//! it, and a byte-for-byte dump of a repository's state to compare runs with.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use att2ref::demo;
use att2ref::model::digest::Digest;
use att2ref::model::oci::{Descriptor, Manifest};
use att2ref::store::Repository;
use futures_util::{StreamExt, TryStreamExt};

use crate::registries::{DistributionConfig, TestRegistry};

/// The repository every fleet image lives in.
pub const REPO: &str = "fleet/app";
/// Images in a fleet.
pub const IMAGES: u32 = 50;
/// SBOM size per image: small, so the suite stays fast; what is exercised is the request pattern.
pub const SBOM_BYTES: usize = 1_500;

/// The RSA-4096 test key the fleet is signed with (TEST-ONLY, committed under `fixtures/keys`).
pub fn key() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/rsa-4096.pub.pem")
}

/// Where registry storage goes: a RAM disk when there is one. A fleet's storage is thousands of small
/// files, and removing them from a disk mounted with `discard` takes seconds per copy.
fn temp_in() -> Option<PathBuf> {
    let shm = Path::new("/dev/shm");
    (shm.is_dir() && tempfile::tempdir_in(shm).is_ok()).then(|| shm.to_owned())
}

/// A distribution registry seeded with [`IMAGES`] legacy images in [`REPO`], and their digests.
pub async fn seed() -> (TestRegistry, Vec<Digest>) {
    let registry = TestRegistry::distribution_with(DistributionConfig { temp_in: temp_in(), ..Default::default() });
    let repo = registry.repository(REPO);
    let scenarios = tokio::task::spawn_blocking(|| {
        (0..IMAGES)
            .map(|i| demo::article_like_numbered(&format!("registry.test/{REPO}"), i, SBOM_BYTES))
            .collect::<att2ref::Result<Vec<_>>>()
    })
    .await
    .expect("generating the fleet")
    .expect("generating the fleet");
    futures_util::stream::iter(&scenarios)
        .map(|s| s.repo.push_to(&repo))
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await
        .expect("seeding the fleet");
    let images = scenarios.iter().map(|s| s.image.clone()).collect();
    (registry, images)
}

/// A new distribution instance over a copy of `seeded`'s storage (stop writing to `seeded` first).
pub fn copy_of(seeded: &TestRegistry) -> TestRegistry {
    copy_of_storage(&seeded.storage_dir())
}

/// A new distribution instance over a copy of the registry storage at `storage`.
pub fn copy_of_storage(storage: &Path) -> TestRegistry {
    TestRegistry::distribution_with(DistributionConfig {
        storage_from: Some(storage.to_owned()),
        temp_in: temp_in(),
        ..Default::default()
    })
}

/// `att2ref migrate` arguments for the fleet behind `host` (a registry or a proxy in front of one).
pub fn migrate_args(host: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> =
        ["migrate", "--plain-http", &format!("{host}/{REPO}"), "--key"].iter().map(|s| s.to_string()).collect();
    args.push(key().display().to_string());
    args.extend(["--insecure-ignore-tlog", "-o", "json"].iter().map(|s| s.to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Everything a client can read from `repo`, byte for byte: `tag <name>` → the digest it points at;
/// `manifest <digest>` → the manifest's bytes, for every manifest reachable from a tag (index children
/// included); `blob <digest>` → the bytes of every blob those manifests reference.
pub async fn dump_state(registry: &TestRegistry, repo: &str) -> BTreeMap<String, Vec<u8>> {
    dump(registry, repo, true).await
}

/// [`dump_state`] without the blobs: tags and manifests only. A registry accepts a manifest only with
/// its blobs present, and every blob is named by digest in a manifest compared here.
pub async fn dump_manifests(registry: &TestRegistry, repo: &str) -> BTreeMap<String, Vec<u8>> {
    dump(registry, repo, false).await
}

async fn dump(registry: &TestRegistry, repo: &str, with_blobs: bool) -> BTreeMap<String, Vec<u8>> {
    let r = registry.repository(repo);
    let mut state = BTreeMap::new();
    let mut tags = r.list_tags().await.unwrap_or_else(|e| panic!("listing tags of {repo}: {e}"));
    tags.sort();
    let mut seen = BTreeSet::new();
    let mut blobs: BTreeMap<Digest, Descriptor> = BTreeMap::new();
    // Round one by tag, then by digest what the indexes list, until nothing new is referenced.
    let mut next: Vec<(Option<String>, String)> = tags.into_iter().map(|t| (Some(t.clone()), t)).collect();
    while !next.is_empty() {
        let fetched: Vec<_> = futures_util::stream::iter(std::mem::take(&mut next))
            .map(|(tag, reference)| {
                let r = &r;
                async move {
                    let raw =
                        r.get_manifest(&reference).await.unwrap_or_else(|e| panic!("GET manifest {reference}: {e}"));
                    (tag, raw.unwrap_or_else(|| panic!("manifest {reference} is listed or referenced but missing")))
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        for (tag, raw) in fetched {
            if let Some(tag) = tag {
                state.insert(format!("tag {tag}"), raw.digest.to_string().into_bytes());
            }
            if !seen.insert(raw.digest.clone()) {
                continue;
            }
            match &raw.manifest {
                Manifest::Index(index) => next.extend(
                    index.manifests.iter().filter(|m| !seen.contains(&m.digest)).map(|m| (None, m.digest.to_string())),
                ),
                Manifest::Image(image) => {
                    for d in std::iter::once(&image.config).chain(&image.layers) {
                        blobs.insert(d.digest.clone(), d.clone());
                    }
                }
                Manifest::Artifact(_) => {}
            }
            state.insert(format!("manifest {}", raw.digest), raw.bytes.to_vec());
        }
        next.sort();
        next.dedup();
    }
    if !with_blobs {
        return state;
    }
    let fetched: Vec<(Digest, Vec<u8>)> = futures_util::stream::iter(blobs.into_values())
        .map(|d| {
            let r = &r;
            async move {
                let bytes = r.get_blob(&d, 64 << 20).await.unwrap_or_else(|e| panic!("GET blob {}: {e}", d.digest));
                (d.digest, bytes.to_vec())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for (digest, bytes) in fetched {
        state.insert(format!("blob {digest}"), bytes);
    }
    state
}

/// Panic, naming the first differences, unless two dumps are equal.
pub fn assert_same_state(actual: &BTreeMap<String, Vec<u8>>, expected: &BTreeMap<String, Vec<u8>>, context: &str) {
    if actual == expected {
        return;
    }
    let missing: Vec<&String> = expected.keys().filter(|k| !actual.contains_key(*k)).take(5).collect();
    let extra: Vec<&String> = actual.keys().filter(|k| !expected.contains_key(*k)).take(5).collect();
    let differ: Vec<&String> =
        expected.iter().filter(|(k, v)| actual.get(*k).is_some_and(|a| a != *v)).map(|(k, _)| k).take(5).collect();
    panic!(
        "{context}: the registry state differs from a fault-free run's ({} vs {} entries)\n  missing: {missing:?}\n  \
         unexpected: {extra:?}\n  different bytes: {differ:?}",
        actual.len(),
        expected.len()
    );
}

/// Panic unless every entry of `before` (the legacy data) is still there, byte for byte.
pub fn assert_legacy_untouched(after: &BTreeMap<String, Vec<u8>>, before: &BTreeMap<String, Vec<u8>>, context: &str) {
    // A dump without blobs is compared with the legacy manifests and tags only.
    let with_blobs = after.keys().any(|k| k.starts_with("blob "));
    for (key, bytes) in before.iter().filter(|(k, _)| with_blobs || !k.starts_with("blob ")) {
        assert!(after.get(key) == Some(bytes), "{context}: legacy {key} changed or disappeared");
    }
}

/// Per subject image: its referrers as listed by the tag-schema index. Each digest must be listed once
/// and there must be `per_image` of them.
pub fn assert_referrers_listed_once(
    state: &BTreeMap<String, Vec<u8>>,
    images: &[Digest],
    per_image: usize,
    context: &str,
) {
    for image in images {
        let tag = format!("tag {}", image.referrers_tag());
        let digest = state.get(&tag).unwrap_or_else(|| panic!("{context}: image {image} has no referrers index"));
        let digest = String::from_utf8_lossy(digest);
        let bytes = &state[&format!("manifest {digest}")];
        let (Manifest::Index(index), _) = Manifest::parse(bytes, None).expect("the referrers index parses") else {
            panic!("{context}: {tag} is not an index");
        };
        let listed: Vec<String> = index.manifests.iter().map(|m| m.digest.to_string()).collect();
        let unique: BTreeSet<&String> = listed.iter().collect();
        assert_eq!(unique.len(), listed.len(), "{context}: image {image} lists a referrer twice: {listed:?}");
        assert_eq!(listed.len(), per_image, "{context}: image {image} has {} referrers: {listed:?}", listed.len());
    }
}

/// A batch of repositories, `batch/r0`, `batch/r1`, …: repository `i` holds `counts[i]` legacy images.
/// The first image of every repository is the same one (same digest everywhere), so a journal or a
/// report that mixed repositories up would show; the others are its own.
pub async fn push_batch(registry: &TestRegistry, counts: &[u32]) -> Vec<(String, Vec<Digest>)> {
    let counts = counts.to_vec();
    let scenarios = tokio::task::spawn_blocking(move || {
        counts
            .iter()
            .enumerate()
            .map(|(r, &count)| {
                let repo = format!("batch/r{r}");
                let images = (0..count)
                    .map(|i| match i {
                        0 => demo::article_like_numbered("registry.test/batch/shared", 0, SBOM_BYTES),
                        _ => demo::article_like_numbered(&format!("registry.test/{repo}"), i, SBOM_BYTES),
                    })
                    .collect::<att2ref::Result<Vec<_>>>()?;
                Ok((repo, images))
            })
            .collect::<att2ref::Result<Vec<_>>>()
    })
    .await
    .expect("generating the batch")
    .expect("generating the batch");
    let pushes = scenarios.iter().flat_map(|(repo, images)| images.iter().map(move |s| (repo, s)));
    futures_util::stream::iter(pushes)
        .map(|(repo, s)| async move { s.repo.push_to(&registry.repository(repo)).await })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await
        .expect("seeding the batch");
    scenarios.into_iter().map(|(repo, images)| (repo, images.into_iter().map(|s| s.image).collect())).collect()
}

/// A distribution registry (storage on a RAM disk when there is one) seeded by [`push_batch`].
pub async fn seed_batch(counts: &[u32]) -> (TestRegistry, Vec<(String, Vec<Digest>)>) {
    let registry = TestRegistry::distribution_with(DistributionConfig { temp_in: temp_in(), ..Default::default() });
    let repos = push_batch(&registry, counts).await;
    (registry, repos)
}

/// `att2ref migrate --all-repos` arguments: every repository of the catalog of `host` in one run.
pub fn migrate_all_args(host: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["migrate", "--plain-http", "--all-repos", host, "--key"].map(String::from).to_vec();
    args.push(key().display().to_string());
    args.extend(["--insecure-ignore-tlog", "-o", "json"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}
