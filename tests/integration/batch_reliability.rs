//! The reliability tests of faults.rs, crash.rs and races.rs, on a batch: six repositories of 2–5 legacy
//! images each, the first image of each the same one in all of them, migrated in ONE `--all-repos` run.
//! A batch adds what one repository cannot show: the catalog and the per-repository listings can fail
//! too, one repository's settle pass runs beside the next one's images, and the journal must keep
//! repositories apart (the shared image is journaled in one repository long before it is done in another).
//!
//! What a run did is read from the registry's side (the proxy's request log), never from att2ref's own
//! report alone: an image was worked on by a run when that run read its legacy `.att` manifest (a GET;
//! a journaled image only has its `.att` digest checked, with a HEAD).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use att2ref::model::digest::Digest;
use att2ref::model::media_type as mt;
use att2ref::model::oci::{Manifest, to_canonical_bytes};
use att2ref::store::Repository;
use att2ref::store::tag_schema::{CONFIRM_DELAY, IndexOptions, add_to_index};
use bytes::Bytes;
use serde_json::Value;

use crate::cli::att2ref;
use crate::crash::Rng;
use crate::fault_proxy::{Fault, FaultPlan, FaultProxy, KillWhen};
use crate::fleet;
use crate::registries::TestRegistry;

/// Images per repository `batch/r0`, `batch/r1`, … (18 in all).
const COUNTS: [u32; 6] = [2, 3, 2, 4, 2, 5];
/// Referrers every image gets (its `.att` has two layers).
const PER_IMAGE: usize = 2;

type State = BTreeMap<String, Vec<u8>>;
/// A repository (`batch/rN`) and an image digest in it.
type Image = (String, String);
type Repos = Vec<(String, Vec<Digest>)>;

/// Every image of the batch, once per repository holding it.
fn all_images(repos: &Repos) -> BTreeSet<Image> {
    repos.iter().flat_map(|(r, images)| images.iter().map(move |i| (r.clone(), i.to_string()))).collect()
}

/// Every repository's state ([`fleet::dump_state`], or [`fleet::dump_manifests`] without `blobs`).
async fn dump_all(registry: &TestRegistry, repos: &Repos, blobs: bool) -> BTreeMap<String, State> {
    let mut states = BTreeMap::new();
    for (repo, _) in repos {
        let state =
            if blobs { fleet::dump_state(registry, repo).await } else { fleet::dump_manifests(registry, repo).await };
        states.insert(repo.clone(), state);
    }
    states
}

/// Every repository: legacy data untouched, each image's two referrers listed once, and byte for byte
/// the state of the reference run.
fn check_states(
    after: &BTreeMap<String, State>,
    reference: &BTreeMap<String, State>,
    legacy: &BTreeMap<String, State>,
    repos: &Repos,
    context: &str,
) {
    assert_eq!(after.keys().collect::<Vec<_>>(), reference.keys().collect::<Vec<_>>(), "{context}");
    for (repo, images) in repos {
        let context = format!("{context}, {repo}");
        fleet::assert_legacy_untouched(&after[repo], &legacy[repo], &context);
        fleet::assert_referrers_listed_once(&after[repo], images, PER_IMAGE, &context);
        fleet::assert_same_state(&after[repo], &reference[repo], &context);
    }
}

fn run(args: &[String]) -> (crate::cli::Run, Value) {
    let run = att2ref(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let report = if run.stdout.trim().is_empty() { Value::Null } else { run.json() };
    (run, report)
}

fn batch_args(host: &str, jobs: &str, journal: Option<&Path>) -> Vec<String> {
    let mut extra = vec!["--jobs", jobs];
    if let Some(j) = journal {
        extra.extend(["--journal", j.to_str().unwrap()]);
    }
    fleet::migrate_all_args(host, &extra)
}

/// `host/batch/r0` → `batch/r0`.
fn repo_of(reported: &str) -> String {
    reported.split_once('/').map_or(reported, |(_, r)| r).to_owned()
}

/// The report's images, in report order: image, outcome, and whether the journal is why it was skipped.
fn reported(report: &Value) -> Vec<(Image, String, bool)> {
    let images = report["images"].as_array().unwrap_or_else(|| panic!("no images in the report: {report:#}"));
    images
        .iter()
        .map(|i| {
            let image = (repo_of(i["repository"].as_str().unwrap()), i["image"].as_str().unwrap().to_owned());
            let journal = i["reasons"].to_string().contains("recorded as migrated in the journal");
            (image, i["outcome"].as_str().unwrap().to_owned(), journal)
        })
        .collect()
}

/// The images a journal file records as done, read as the journal's format says: the last event of an
/// image wins, an unreadable line (cut by a kill) counts for nothing.
fn journaled(journal: &Path) -> BTreeSet<Image> {
    let mut done = BTreeSet::new();
    for line in std::fs::read_to_string(journal).unwrap_or_default().lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else { continue };
        let image = (repo_of(event["repository"].as_str().unwrap()), event["image"].as_str().unwrap().to_owned());
        let finished = matches!(event["outcome"].as_str(), Some("migrated" | "already-migrated"));
        if finished && event["legacy_manifest"].is_string() {
            done.insert(image);
        } else {
            done.remove(&image);
        }
    }
    done
}

/// One request as the proxy logged it: arrival number, the request (`METHOD path[?query]`, upload
/// sessions dropped: the key [`FaultProxy::arm_kill_on`] takes), and what happened.
struct Req {
    n: u64,
    key: String,
    what: String,
}

impl Req {
    fn method(&self) -> &str {
        self.key.split_once(' ').map_or("", |(m, _)| m)
    }

    fn path(&self) -> &str {
        let target = self.key.split_once(' ').map_or("", |(_, t)| t);
        target.split_once('?').map_or(target, |(p, _)| p)
    }

    /// `batch/rN` for a request under it.
    fn repo(&self) -> Option<String> {
        let rest = self.path().strip_prefix("/v2/batch/")?;
        Some(format!("batch/{}", rest.split_once('/')?.0))
    }

    fn is_write(&self) -> bool {
        matches!(self.method(), "PUT" | "POST" | "PATCH" | "DELETE")
    }

    /// The image whose legacy `.att` a GET reads.
    fn att_read(&self) -> Option<Image> {
        let hex = self.path().split("/manifests/sha256-").nth(1)?.strip_suffix(".att")?;
        (self.method() == "GET").then(|| (self.repo().unwrap(), format!("sha256:{hex}")))
    }

    /// Whether the request names `image` of its repository: the `.att`, its referrers index tag, the
    /// image manifest or its referrers.
    fn names(&self, (repo, image): &Image) -> bool {
        let hex = image.strip_prefix("sha256:").unwrap();
        self.repo().as_ref() == Some(repo) && self.path().contains(hex)
    }
}

/// The proxy's log from request number `after` on, in arrival order.
fn requests(proxy: &FaultProxy, after: u64) -> Vec<Req> {
    let mut out: Vec<Req> = proxy
        .log()
        .iter()
        .filter_map(|line| {
            let (n, rest) = line.strip_prefix('#')?.split_once(' ')?;
            let (key, what) = rest.split_once(" → ")?;
            Some(Req { n: n.parse().ok()?, key: key.to_owned(), what: what.to_owned() })
        })
        .filter(|r| r.n > after)
        .collect();
    out.sort_by_key(|r| r.n);
    out
}

/// The images whose `.att` was read, in order of the first read.
fn att_reads(reqs: &[Req]) -> Vec<Image> {
    let mut seen = BTreeSet::new();
    reqs.iter().filter_map(Req::att_read).filter(|i| seen.insert(i.clone())).collect()
}

// ---------------------------------------------------------------------------------------------------
// Faults

/// Seed of the fault schedule (see faults.rs); a failure names it.
const FAULT_SEED: u64 = 0xba7c_fa17;

#[tokio::test(flavor = "multi_thread")]
async fn faulty_proxy_batch_equals_a_fault_free_batch() {
    let started = Instant::now();
    let (seeded, repos) = fleet::seed_batch(&COUNTS).await;
    let legacy = dump_all(&seeded, &repos, true).await;
    let (clean, registry) = (fleet::copy_of(&seeded), fleet::copy_of(&seeded));
    drop(seeded);

    let plan = FaultPlan { seed: FAULT_SEED, per_mille: 100, slow: Duration::from_millis(300) };
    let proxy = FaultProxy::start(&registry.host, Some(plan));
    // The batch's own requests fail too, not only an image's: the catalog and one repository's listing.
    proxy.fault_next("GET", "/v2/_catalog", Fault::ServerError(503));
    proxy.fault_next("GET", "/v2/batch/r3/tags/list", Fault::LostResponse);
    let args = batch_args(&clean.host, "4", None);
    let reference = tokio::task::spawn_blocking(move || run(&args));
    let args = batch_args(&proxy.host, "4", None);
    let (out, report) = tokio::task::spawn_blocking(move || run(&args)).await.unwrap();
    let injected = proxy.injected();
    let context = format!("seed {FAULT_SEED:#x}, faults injected {injected:?}");
    let reqs = requests(&proxy, 0);
    let faulted: Vec<&Req> = reqs.iter().filter(|r| !r.what.chars().all(|c| c.is_ascii_digit())).collect();
    let listing: Vec<String> = faulted.iter().map(|r| format!("#{} {} → {}", r.n, r.key, r.what)).collect();
    assert_eq!(out.code, 0, "{context}\nstderr:\n{}\nfaults:\n{}", out.stderr, listing.join("\n"));

    // Every image of every repository, once, in catalog order, migrated.
    let expected: Vec<String> = repos.iter().flat_map(|(r, images)| images.iter().map(move |_| r.clone())).collect();
    let images = reported(&report);
    assert_eq!(images.iter().map(|((r, _), _, _)| r.clone()).collect::<Vec<_>>(), expected, "{context}");
    assert_eq!(images.iter().map(|(i, _, _)| i.clone()).collect::<BTreeSet<_>>(), all_images(&repos), "{context}");
    for (image, outcome, _) in &images {
        assert_eq!(outcome, "migrated", "{context}: {image:?}");
    }

    // The faults fell on the batch's own requests and on every repository's images.
    for key in ["GET /v2/_catalog?n=1000", "GET /v2/batch/r3/tags/list?n=1000"] {
        assert!(faulted.iter().any(|r| r.key == key), "{context}: {key} was not faulted:\n{}", listing.join("\n"));
    }
    for (repo, _) in &repos {
        let n = faulted.iter().filter(|r| r.repo().as_ref() == Some(repo) && !r.path().ends_with("tags/list")).count();
        assert!(n > 0, "{context}: no image request of {repo} was faulted:\n{}", listing.join("\n"));
    }
    // A fault the registry never saw (a 429, or anything before forwarding) costs the client one retry
    // or one restarted upload; one after forwarding may be absorbed without (an upload whose answer was
    // lost is found stored by a HEAD), and a slow answer is only slow.
    let total: u64 = injected.values().sum();
    let must_retry: u64 =
        injected.iter().filter(|(k, _)| k.starts_with("429") || k.ends_with("before forwarding")).map(|(_, n)| n).sum();
    let retries = report["requests"]["retries"].as_u64().unwrap();
    assert!(retries >= must_retry, "{context}: the report counts {retries} retries for {must_retry} such faults");

    let (ref_out, ref_report) = reference.await.unwrap();
    assert_eq!(ref_out.code, 0, "the fault-free run: {}", ref_out.stderr);
    assert!(reported(&ref_report).iter().all(|(_, o, _)| o == "migrated"), "{ref_report:#}");
    let after = dump_all(&registry, &repos, true).await;
    let reference = dump_all(&clean, &repos, true).await;
    check_states(&after, &reference, &legacy, &repos, &context);
    eprintln!(
        "batch faults, seed {FAULT_SEED:#x}: {} requests, {total} faults, {retries} retries, {:.1?}",
        proxy.requests(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------------
// kill -9 and resume

/// Seed of the kill points; a failure names it and the point.
const KILL_SEED: u64 = 0xba7c_4001;
/// Kill points, one in each of as many equal stretches of an uninterrupted run's requests.
const POINTS: usize = 6;
/// Cycles run at once (each has its own registry, proxy and processes).
const PARALLEL: usize = 2;

/// Start `att2ref ARGS…` for the proxy to kill.
fn spawn(args: &[String]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_att2ref"))
        .args(args)
        .env_remove("RUST_LOG")
        .env("HOME", std::env::temp_dir())
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting att2ref")
}

/// A `--jobs 1` batch with `journal` through `proxy`, SIGKILLed by the proxy when the `nth` `key`
/// request arrives; waits until it is dead.
fn killed_run(proxy: &FaultProxy, journal: &Path, key: &str, nth: u64, when: KillWhen, context: &str) {
    proxy.arm_kill_on(key, nth, when);
    let status = proxy.run_child(spawn(&batch_args(&proxy.host, "1", Some(journal))), Duration::from_secs(120));
    assert!(proxy.killed(), "{context}: the request never came: the run ended first ({status})");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "{context}: ended with {status}");
    proxy.disarm_counting();
}

/// The uninterrupted `--jobs 1` batch on a copy of the seeded storage, through a counting proxy: its
/// requests in arrival order, and the state it leaves.
async fn uninterrupted(storage: &Path, repos: &Repos) -> (Vec<Req>, BTreeMap<String, State>) {
    let registry = fleet::copy_of_storage(storage);
    let proxy = FaultProxy::start(&registry.host, None);
    let dir = tempfile::tempdir().unwrap();
    let args = batch_args(&proxy.host, "1", Some(&dir.path().join("journal.jsonl")));
    let (out, _) = tokio::task::spawn_blocking(move || run(&args)).await.unwrap();
    assert_eq!(out.code, 0, "the uninterrupted run: {}", out.stderr);
    let reqs = requests(&proxy, 0);
    assert_eq!(
        att_reads(&reqs).into_iter().collect::<BTreeSet<_>>(),
        all_images(repos),
        "an uninterrupted run reads every image's .att"
    );
    (reqs, dump_all(&registry, repos, false).await)
}

struct Expected {
    repos: Repos,
    legacy: BTreeMap<String, State>,
    migrated: BTreeMap<String, State>,
}

/// A journaled rerun through `proxy`: it finishes every image, skips exactly `journaled` (by the
/// report, and by the registry's log: it reads the `.att` of every other image, and of none of those),
/// and leaves the uninterrupted run's state (read back only with `check_state`). Returns its requests.
fn resume(
    proxy: &FaultProxy,
    registry: &TestRegistry,
    journal: &Path,
    journaled: &BTreeSet<Image>,
    expected: &Expected,
    check_state: bool,
    context: &str,
) -> (Vec<Req>, crate::cli::Run) {
    let mark = proxy.requests();
    let (out, report) = run(&batch_args(&proxy.host, "4", Some(journal)));
    assert_eq!(out.code, 0, "{context}: the rerun failed:\n{}", out.stderr);
    let images = reported(&report);
    let all = all_images(&expected.repos);
    assert_eq!(images.len(), all.len(), "{context}: {report:#}");
    assert_eq!(images.iter().map(|(i, _, _)| i.clone()).collect::<BTreeSet<_>>(), all, "{context}");
    for (image, outcome, _) in &images {
        assert!(["migrated", "already-migrated"].contains(&outcome.as_str()), "{context}: {image:?} {outcome}");
    }
    let skipped: BTreeSet<Image> = images.iter().filter(|(_, _, j)| *j).map(|(i, _, _)| i.clone()).collect();
    assert_eq!(&skipped, journaled, "{context}: the report's journal skips are the journal's images");

    let reqs = requests(proxy, mark);
    let read: BTreeSet<Image> = att_reads(&reqs).into_iter().collect();
    let expected_reads: BTreeSet<Image> = all.difference(journaled).cloned().collect();
    assert_eq!(read, expected_reads, "{context}: the rerun reads the .att of exactly the images not journaled");

    if !check_state {
        return (reqs, out);
    }
    let after = tokio::runtime::Handle::current().block_on(dump_all(registry, &expected.repos, false));
    check_states(&after, &expected.migrated, &expected.legacy, &expected.repos, context);
    (reqs, out)
}

/// One kill point: a fresh copy of the seeded registry, a batch killed at the `nth` `key` request, a
/// rerun with the same journal, then a third run that finds everything journaled and does nothing.
/// With `cut_journal`, the journal's last line is first cut in half, as a kill during its write leaves it.
fn cycle(storage: &Path, expected: &Expected, point: usize, key: &str, nth: u64, when: KillWhen, cut: bool) {
    let context = format!("seed {KILL_SEED:#x}, point {point}: kill {when:?} the #{nth} {key}");
    let registry = fleet::copy_of_storage(storage);
    let proxy = FaultProxy::start(&registry.host, None);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    killed_run(&proxy, &journal, key, nth, when, &context);
    let text = std::fs::read_to_string(&journal).unwrap_or_default();
    let cut = cut && !text.is_empty();
    if cut {
        let kept = text.trim_end_matches('\n');
        let last = kept.rfind('\n').map_or(0, |i| i + 1);
        std::fs::write(&journal, &kept[..last + (kept.len() - last) / 2]).unwrap();
    }
    let done = journaled(&journal);
    let context = format!("{context} ({} images journaled{})", done.len(), if cut { ", last line cut" } else { "" });
    let warning = "1 unreadable line(s) ignored";

    let (_, out) = resume(&proxy, &registry, &journal, &done, expected, true, &context);
    assert_eq!(out.stderr.contains(warning), cut, "{context}:\n{}", out.stderr);

    // Everything is journaled now: a third run reads no .att and writes nothing, in any repository (so
    // the state needs no second look).
    let all = all_images(&expected.repos);
    let (reqs, _) = resume(&proxy, &registry, &journal, &all, expected, false, &context);
    let writes: Vec<&str> = reqs.iter().filter(|r| r.is_write()).map(|r| r.key.as_str()).collect();
    assert!(writes.is_empty(), "{context}: a run with everything journaled wrote {writes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_killed_at_seeded_points_then_rerun_converges() {
    let started = Instant::now();
    let (seeded, repos) = fleet::seed_batch(&COUNTS).await;
    let legacy = dump_all(&seeded, &repos, false).await;
    let storage = seeded.storage_dir();
    let (clean, migrated) = uninterrupted(&storage, &repos).await;
    let expected = std::sync::Arc::new(Expected { repos, legacy, migrated });

    // One point in each stretch of the uninterrupted run, named by request and occurrence, so that it is
    // the same point of the run whatever a repository's listing or settle pass interleaves around it.
    // Which of an image's concurrent requests (uploads, referrer PUTs) falls at a seeded position can
    // change from run to run; a failure names the request and occurrence, which arm_kill_on reproduces.
    let mut rng = Rng(KILL_SEED);
    let points: Vec<(usize, String, u64, KillWhen)> = (0..POINTS)
        .map(|i| {
            let (from, to) = (i * clean.len() / POINTS, (i + 1) * clean.len() / POINTS);
            let at = from + (rng.next() as usize) % (to - from);
            let key = clean[at].key.clone();
            let nth = clean[..=at].iter().filter(|r| r.key == key).count() as u64;
            let when = if rng.next() & 1 == 0 { KillWhen::BeforeForwarding } else { KillWhen::AfterForwarding };
            (i, key, nth, when)
        })
        .collect();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(points.clone()));
    let workers: Vec<_> = (0..PARALLEL)
        .map(|_| {
            let (storage, expected, queue) = (storage.clone(), expected.clone(), queue.clone());
            tokio::task::spawn_blocking(move || {
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                    let Some((i, key, nth, when)) = next else { return };
                    let one = || cycle(&storage, &expected, i, &key, nth, when, i % 2 == 1);
                    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(one)) {
                        // One failure is enough: the other workers stop after their current cycle.
                        queue.lock().unwrap_or_else(|p| p.into_inner()).clear();
                        std::panic::resume_unwind(panic);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    }
    eprintln!(
        "batch kills, seed {KILL_SEED:#x}: {} requests uninterrupted; points {:?}; {:.1?}",
        clean.len(),
        points.iter().map(|(_, k, n, w)| format!("{k} #{n} {w:?}")).collect::<Vec<_>>(),
        started.elapsed()
    );
}

/// Where the resume test's kill falls: at the first read of the `.att` of the batch's image number
/// `KILL_AT` (0-based, in the order a `--jobs 1` run takes them): the second image of `batch/r3`, so that
/// r0, r1 and r2 are done, r3 is half done, r4 and r5 are not started.
const KILL_AT: usize = 8;
/// The repository the resume test migrates beforehand, without the journal.
const PRE_MIGRATED: &str = "batch/r5";

/// A batch killed when three repositories are done and a fourth is half done (the last one migrated
/// before by a run without the journal): the rerun with the same journal skips exactly the images
/// finished before the kill, in every repository, and touches none of them (no read of their `.att` or
/// image manifest, no write, nothing at all of the finished repositories' blobs), while it migrates
/// every other image, or finds it migrated, the shared image included where it was not journaled. Then a referrer is dropped from an index (as a concurrent writer could): the next resume,
/// whose journal now also holds the first resume's skips, migrates that image again.
#[tokio::test(flavor = "multi_thread")]
async fn resume_skips_what_the_journal_recorded_across_repositories() {
    let started = Instant::now();
    let (seeded, repos) = fleet::seed_batch(&COUNTS).await;
    let legacy = dump_all(&seeded, &repos, false).await;
    let storage = seeded.storage_dir();
    let (clean, migrated) = uninterrupted(&storage, &repos).await;
    let expected = Expected { repos, legacy, migrated };
    let repos = &expected.repos;

    // With --jobs 1 an image starts only once the one before it is done and journaled: killed when the
    // `.att` of image KILL_AT is first asked for, the run has finished exactly the images before it.
    let order = att_reads(&clean);
    let finished: BTreeSet<Image> = order[..KILL_AT].iter().cloned().collect();
    let done_repos: Vec<&String> = repos
        .iter()
        .filter(|(r, images)| images.iter().all(|i| finished.contains(&(r.clone(), i.to_string()))))
        .map(|(r, _)| r)
        .collect();
    assert_eq!(done_repos, ["batch/r0", "batch/r1", "batch/r2"], "the batch's order: {order:?}");
    let (kill_repo, kill_image) = order[KILL_AT].clone();
    assert_eq!(kill_repo, "batch/r3");
    assert_eq!(finished.iter().filter(|(r, _)| *r == kill_repo).count(), 1, "r3 is half done: {order:?}");
    let shared = repos[0].1[0].to_string();
    assert!(finished.contains(&("batch/r0".into(), shared.clone())));
    assert!(!finished.contains(&("batch/r4".into(), shared.clone())));

    let registry = fleet::copy_of_storage(&storage);
    let proxy = FaultProxy::start(&registry.host, None);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    // The last repository is migrated first by a run without the journal: done, but journaled nowhere.
    // A journal that mixed repositories up would skip its copy of the shared image (journaled in r0).
    let mut args: Vec<String> = ["migrate", "--plain-http"].map(String::from).to_vec();
    args.extend([format!("{}/{PRE_MIGRATED}", registry.host), "--key".into(), fleet::key().display().to_string()]);
    args.extend(["--insecure-ignore-tlog", "-o", "json"].map(String::from));
    let (out, _) = tokio::task::block_in_place(|| run(&args));
    assert_eq!(out.code, 0, "migrating {PRE_MIGRATED} alone: {}", out.stderr);

    let key = format!("GET /v2/{kill_repo}/manifests/{}.att", kill_image.replace(':', "-"));
    let context = format!("{PRE_MIGRATED} migrated without the journal, then a batch killed before {key}");
    tokio::task::block_in_place(|| killed_run(&proxy, &journal, &key, 1, KillWhen::BeforeForwarding, &context));
    let killed = requests(&proxy, 0);
    assert_eq!(att_reads(&killed), order[..=KILL_AT], "{context}: the killed run took the images in the same order");
    assert_eq!(
        journaled(&journal),
        finished,
        "{context}: the journal holds exactly the images finished before the kill"
    );

    let (reqs, out) =
        tokio::task::block_in_place(|| resume(&proxy, &registry, &journal, &finished, &expected, true, &context));
    for ((repo, digest), outcome, journal) in reported(&out.json()) {
        if repo == PRE_MIGRATED {
            assert_eq!((outcome.as_str(), journal), ("already-migrated", false), "{context}: {digest} of {repo}");
        }
    }
    for repo in &done_repos {
        let touched: Vec<&str> = reqs
            .iter()
            .filter(|r| r.repo().as_ref() == Some(*repo) && (r.is_write() || r.path().contains("/blobs/")))
            .map(|r| r.key.as_str())
            .collect();
        assert!(touched.is_empty(), "{context}: the rerun worked on {repo}, all of it journaled: {touched:?}");
    }
    for image in &finished {
        let (repo, digest) = image;
        let work: Vec<&str> = reqs
            .iter()
            .filter(|r| r.names(image))
            .filter(|r| r.is_write() || r.att_read().is_some() || r.path().ends_with(&format!("/manifests/{digest}")))
            .map(|r| r.key.as_str())
            .collect();
        assert!(work.is_empty(), "{context}: the rerun worked on journaled {digest} of {repo}: {work:?}");
    }
    for image in all_images(repos).difference(&finished).filter(|(r, _)| r != PRE_MIGRATED) {
        let (repo, digest) = image;
        let index = format!("PUT /v2/{repo}/manifests/{}", digest.replace(':', "-"));
        assert!(reqs.iter().any(|r| r.key == index), "{context}: the rerun did not write the index of {image:?}");
    }

    // A referrer of a journaled image of r1 drops out of its index. The journal now holds that image
    // twice: migrated by the killed run (with its referrers), skipped by the rerun.
    let (repo, image) = order.iter().find(|(r, _)| r == "batch/r1").cloned().unwrap();
    let subject: Digest = image.parse().unwrap();
    let store = registry.repository(&repo);
    let raw = store.get_manifest(&subject.referrers_tag()).await.unwrap().unwrap();
    let Manifest::Index(mut index) = raw.manifest else { panic!("{repo}: no referrers index of {image}") };
    assert_eq!(index.manifests.len(), PER_IMAGE);
    let dropped = index.manifests.pop().unwrap();
    let bytes = Bytes::from(to_canonical_bytes(&index));
    store.put_manifest(bytes, mt::OCI_INDEX, Some(&subject.referrers_tag())).await.unwrap();
    let context = format!("{context}, then {} dropped from the index of {image} in {repo}", dropped.digest);
    let mut journaled_now = all_images(repos);
    journaled_now.remove(&(repo.clone(), image.clone()));
    tokio::task::block_in_place(|| resume(&proxy, &registry, &journal, &journaled_now, &expected, true, &context));
    eprintln!("batch resume: {:.1?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------------
// Concurrent migrators

/// One round of concurrent migrators on a fresh registry: `windows` processes each given 4 of the 6
/// repositories as repository targets (windows rotated by `seed`, so they overlap), and with
/// `all_repos` one more over the whole catalog, all at once, while another tool lists its own referrers
/// on every image of every repository and a careless one erases our first write of each (see
/// [`stale_pusher`]). Afterwards every index lists each of our referrers and each of theirs exactly once
/// (theirs after their tools' own recovery, see below).
struct Round {
    seed: u32,
    windows: u32,
    all_repos: bool,
}

const ROUNDS: &[Round] =
    &[Round { seed: 1, windows: 2, all_repos: true }, Round { seed: 2, windows: 3, all_repos: false }];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batch_migrators_lose_no_index_entry_in_any_repository() {
    let started = Instant::now();
    for round in ROUNDS {
        // The careless tool must have caught at least one of our writes as it landed, or the round
        // proved nothing about stale pushes; on a loaded machine it can miss, so a round is run again
        // (on a fresh registry) up to twice before that fails the test.
        let mut caught = 0;
        for _ in 0..3 {
            caught = race_round(round).await;
            if caught > 0 {
                break;
            }
        }
        assert!(caught > 0, "round {}: the careless tool never caught a write as it landed", round.seed);
    }
    eprintln!("batch races: {} rounds in {:.1?}", ROUNDS.len(), started.elapsed());
}

/// One round; returns how many stale indexes the careless tool pushed over ours within the
/// confirmation delay (the pushes our settle pass must repair).
async fn race_round(round: &Round) -> usize {
    let (registry, repos) = fleet::seed_batch(&COUNTS).await;
    let names: Vec<&String> = repos.iter().map(|(r, _)| r).collect();
    let n = names.len() as u32;
    let mut runs: Vec<(Vec<String>, Vec<String>)> = (0..round.windows)
        .map(|w| {
            let start = round.seed + w * n / round.windows;
            let mine: Vec<String> = (0..4).map(|k| names[((start + k) % n) as usize].clone()).collect();
            (mine.clone(), repository_args(&registry.host, &mine))
        })
        .collect();
    if round.all_repos {
        runs.push((names.iter().map(|r| r.to_string()).collect(), batch_args(&registry.host, "4", None)));
    }
    let careless = careless_referrers(&registry, &repos, round.seed).await;
    let children: Vec<_> =
        runs.into_iter().map(|(mine, args)| (mine, tokio::task::spawn_blocking(move || run(&args)))).collect();

    // Meanwhile another tool attaches its own referrers to every image of every repository, and a
    // careless one pushes stale indexes over our first writes.
    let careful = futures_util::future::join_all(repos.iter().map(|(repo, images)| {
        let store = registry.repository(repo);
        async move { (repo.clone(), crate::races::third_party_writer(&store, images, round.seed).await) }
    }));
    let (theirs, stale) = tokio::join!(careful, stale_pusher(careless));

    // Per image of each repository, the referrers our migrators reported for it.
    let mut ours: BTreeMap<Image, BTreeSet<String>> = BTreeMap::new();
    let context = format!("round {}", round.seed);
    for (mine, child) in children {
        let (out, report) = child.await.unwrap();
        assert_eq!(out.code, 0, "{context}: a migrator of {mine:?} failed:\n{}", out.stderr);
        let expected: BTreeSet<Image> = all_images(&repos).into_iter().filter(|(r, _)| mine.contains(r)).collect();
        let images = reported(&report);
        assert_eq!(images.len(), expected.len(), "{context}: {mine:?}: {report:#}");
        assert_eq!(images.iter().map(|(i, _, _)| i.clone()).collect::<BTreeSet<_>>(), expected, "{context}");
        for (i, entry) in images.iter().zip(report["images"].as_array().unwrap()) {
            assert!(["migrated", "already-migrated"].contains(&i.1.as_str()), "{context}: {entry:#}");
            let digests = entry["referrers"].as_array().unwrap().iter().map(|r| r["digest"].as_str().unwrap().into());
            ours.entry(i.0.clone()).or_default().extend(digests);
        }
    }

    // A migrator that holds an index past the confirmation delay (an overloaded 2-core machine makes
    // that happen) can still drop a third-party entry: the residual risk the tag-schema module documents
    // for a registry without compare-and-swap, where only the entry's own tool can list it again. That
    // tool does so here, before the check; our entries get no such help.
    let mut relisted = 0;
    for (repo, images) in &repos {
        let store = registry.repository(repo);
        for subject in images {
            let pushed = stale.contains_key(&(repo.clone(), subject.to_string()));
            for j in (0..STALE).chain(pushed.then_some(STALE)) {
                let entry = crate::races::push_third_party(&store, subject, round.seed, j).await;
                let options = IndexOptions { repair: false, max_retries: 8 };
                relisted += u32::from(add_to_index(&store, subject, &[entry], options).await.unwrap().index_updated);
            }
        }
    }
    // The careless tool is told to push within STALE_HOLD of its read, but on a loaded machine its PUT
    // can land later than the confirmation delay: outside what a settle pass can see (the same
    // residual risk), where the documented recovery is the next run. Those indexes are checked after
    // one; every other index is checked now, with no help.
    let late: BTreeSet<Image> = stale.iter().filter(|(_, p)| p.hold >= CONFIRM_DELAY).map(|(i, _)| i.clone()).collect();
    eprintln!(
        "batch races, round {}: {} stale indexes pushed over ours ({} later than the confirmation delay, \
         longest hold {:?}); {relisted} third-party entries listed again by their tool",
        round.seed,
        stale.len(),
        late.len(),
        stale.values().map(|p| p.hold).max().unwrap_or_default(),
    );
    let check = async |image: &Image, context: &str| {
        let (repo, subject) = image;
        let store = registry.repository(repo);
        let subject: Digest = subject.parse().unwrap();
        let raw = store.get_manifest(&subject.referrers_tag()).await.unwrap().expect("a referrers index");
        let Manifest::Index(index) = raw.manifest else { panic!("{context}: the referrers tag holds no index") };
        let listed: Vec<String> = index.manifests.iter().map(|m| m.digest.to_string()).collect();
        let unique: BTreeSet<String> = listed.iter().cloned().collect();
        assert_eq!(unique.len(), listed.len(), "{context}: an entry is listed twice: {listed:?}");
        let mine = ours.get(image).cloned().unwrap_or_default();
        assert_eq!(mine.len(), PER_IMAGE, "{context}: both attestations were migrated: {mine:?}");
        let stale = stale.get(image).map(|p| p.referrer.clone());
        let (_, theirs) = theirs.iter().find(|(r, _)| r == repo).unwrap();
        let theirs = theirs[&subject].iter().map(|d| d.to_string()).chain(stale.clone());
        let wanted: BTreeSet<String> = mine.into_iter().chain(theirs).collect();
        assert_eq!(unique, wanted, "{context}: the index lists exactly ours and theirs (stale push {stale:?})");
        let count = PER_IMAGE + STALE as usize + usize::from(stale.is_some());
        assert_eq!(listed.len(), count, "{context}: {listed:?}");
    };
    let images = all_images(&repos);
    for image in images.difference(&late) {
        check(image, &format!("{context}: {image:?}")).await;
    }
    if !late.is_empty() {
        let again: BTreeSet<String> = late.iter().map(|(r, _)| r.clone()).collect();
        let args = repository_args(&registry.host, &again.into_iter().collect::<Vec<_>>());
        let (out, _) = tokio::task::spawn_blocking(move || run(&args)).await.unwrap();
        assert_eq!(out.code, 0, "{context}: the rerun after late stale pushes failed:\n{}", out.stderr);
        for image in &late {
            check(image, &format!("{context}: {image:?}, after a rerun (stale push held past the delay)")).await;
        }
    }
    stale.len() - late.len()
}

/// `migrate` of the given repositories of `host` as repository targets, 4 images at once.
fn repository_args(host: &str, repos: &[String]) -> Vec<String> {
    let mut args: Vec<String> = ["migrate", "--plain-http"].map(String::from).to_vec();
    args.extend(repos.iter().map(|r| format!("{host}/{r}")));
    args.extend(["--key".into(), fleet::key().display().to_string()]);
    args.extend(["--insecure-ignore-tlog", "-o", "json", "--jobs", "4"].map(String::from));
    args
}

/// The careless tool's referrer number (after the careful tool's `0..THEIRS`).
const STALE: u32 = crate::races::THEIRS;

/// A careless tool that read each image's index before our first write to it and pushes its merge
/// right after that write lands: the index less our referrers (as it was before), plus its own
/// referrer. It erases ours just after a migrator wrote them: the lost update the tag schema invites,
/// from a writer that held the index for a moment (it pushes only while at most [`STALE_HOLD`] has
/// passed since its read, shorter than the confirmation delay that the module's guarantees assume).
/// The migrator's settle pass must list ours again. Each image is polled by its own task, so that one
/// slow answer does not hold back the pushes of the others.
async fn stale_pusher(careless: Vec<Careless>) -> BTreeMap<Image, StalePush> {
    let writers = careless.into_iter().map(|c| tokio::spawn(careless_writer(c)));
    futures_util::future::join_all(writers).await.into_iter().filter_map(|r| r.unwrap()).collect()
}

/// What the careless tool pushed over one image's index.
struct StalePush {
    /// Its own referrer, listed by the push.
    referrer: String,
    /// From the start of its read that did not list ours to the end of its push.
    hold: Duration,
}

/// One image of [`stale_pusher`]: polls the index until ours are listed; pushes the stale index when
/// the poll before (no later than [`STALE_HOLD`] ago) did not list them yet.
async fn careless_writer(c: Careless) -> Option<(Image, StalePush)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut unlisted_read: Option<Instant> = None;
    loop {
        assert!(Instant::now() < deadline, "our referrers never showed up in the index of {:?}", c.image);
        let read = Instant::now();
        let raw = match c.store.get_manifest(&c.subject.referrers_tag()).await {
            Ok(raw) => raw,
            // distribution 2.8.2 answers 500 to a read that meets the tag being rewritten, and the index
            // tag is rewritten by every writer here; the client's three quick attempts can all meet one.
            // This tool saw no index this time (not an unlisted one): it polls again, as a poller would.
            Err(e) if e.http_status() == Some(500) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(e) => panic!("reading the index of {:?}: {e:#}", c.image),
        };
        let theirs = |m: &att2ref::model::oci::Descriptor| m.artifact_type == c.entry.artifact_type;
        match raw.map(|r| r.manifest) {
            Some(Manifest::Index(mut index)) if index.manifests.iter().filter(|m| !theirs(m)).count() >= PER_IMAGE => {
                let since = unlisted_read?;
                if since.elapsed() > STALE_HOLD {
                    return None;
                }
                index.manifests.retain(|m| theirs(m) && m.digest != c.entry.digest);
                index.manifests.push(c.entry.clone());
                let bytes = Bytes::from(to_canonical_bytes(&index));
                c.store.put_manifest(bytes, mt::OCI_INDEX, Some(&c.subject.referrers_tag())).await.unwrap();
                let push = StalePush { referrer: c.entry.digest.to_string(), hold: since.elapsed() };
                return Some((c.image, push));
            }
            _ => unlisted_read = Some(read),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Longest the careless tool holds an index between its read and its push.
const STALE_HOLD: Duration = Duration::from_millis(100);

/// What the careless tool pushes for one image: its referrer, stored beforehand.
struct Careless {
    store: att2ref::store::registry::RegistryRepository,
    image: Image,
    subject: Digest,
    entry: att2ref::model::oci::Descriptor,
}

/// Store the careless tool's referrer of every image, before the migrators start.
async fn careless_referrers(registry: &TestRegistry, repos: &Repos, seed: u32) -> Vec<Careless> {
    let mut out = Vec::new();
    for (repo, images) in repos {
        let store = registry.repository(repo);
        store.put_blob(Bytes::from_static(b"{}")).await.unwrap();
        for subject in images {
            let entry = crate::races::push_third_party(&store, subject, seed, STALE).await;
            out.push(Careless {
                store: store.clone(),
                image: (repo.clone(), subject.to_string()),
                subject: subject.clone(),
                entry,
            });
        }
    }
    out
}
