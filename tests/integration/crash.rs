//! `att2ref migrate` killed (SIGKILL) at seeded points of a 50-image run, then rerun with the same
//! journal: every rerun converges to the state an uninterrupted run leaves, byte for byte, with each
//! referrer listed once and the legacy data untouched. Every other point also cuts the journal's last
//! line in half, as a kill during its write leaves it: the rerun reads past it.
//!
//! The kill points are request numbers: the proxy in front of the registry kills the process when
//! request `k` arrives, either before forwarding it or after the registry acted on it. With `--jobs 1`
//! the request sequence is the same on every run, so a seed names exact points.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use att2ref::model::digest::Digest;
use serde_json::Value;

use crate::cli::att2ref;
use crate::fault_proxy::{FaultProxy, KillWhen};
use crate::fleet::{self, REPO};

/// Seed of the kill points; a failure names it and the point.
const SEED: u64 = 0xc4a5_4001;
/// Kill points.
const POINTS: usize = 20;
/// Cycles run at once (each has its own registry, proxy and processes).
const PARALLEL: usize = 3;

type State = BTreeMap<String, Vec<u8>>;

/// SplitMix64: a tiny seeded generator whose sequence never changes.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn run(args: &[String]) -> (crate::cli::Run, Value) {
    let run = att2ref(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let report = if run.stdout.trim().is_empty() { Value::Null } else { run.json() };
    (run, report)
}

fn journal_args(host: &str, journal: &Path, jobs: &str) -> Vec<String> {
    fleet::migrate_args(host, &["--jobs", jobs, "--journal", journal.to_str().unwrap()])
}

/// Start a migrate through `proxy` that the proxy kills at request `at`; wait until it is dead.
fn killed_run(proxy: &FaultProxy, journal: &Path, at: u64, when: KillWhen) {
    proxy.arm_kill(at, when);
    let args = journal_args(&proxy.host, journal, "1");
    let child = Command::new(env!("CARGO_BIN_EXE_att2ref"))
        .args(&args)
        .env_remove("RUST_LOG")
        .env("HOME", std::env::temp_dir())
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting att2ref");
    let status = proxy.run_child(child, Duration::from_secs(120));
    assert!(proxy.killed(), "request #{at} never came: the run ended first ({status})");
    // Dead by the proxy's SIGKILL, not by an exit of its own (the proxy drops requests after the kill).
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "killed at request #{at}, the run ended with {status} instead"
    );
    proxy.disarm();
}

/// The rerun after a kill: same proxy host (the journal is keyed by registry and repository), same
/// journal; it must finish every image.
fn rerun(proxy: &FaultProxy, journal: &Path, context: &str) -> (crate::cli::Run, Value) {
    let (out, report) = run(&journal_args(&proxy.host, journal, "4"));
    assert_eq!(out.code, 0, "{context}: the rerun failed:\n{}", out.stderr);
    let images = report["images"].as_array().unwrap_or_else(|| panic!("{context}: no report"));
    assert_eq!(images.len(), fleet::IMAGES as usize, "{context}");
    for image in images {
        assert!(
            ["migrated", "already-migrated"].contains(&image["outcome"].as_str().unwrap_or("")),
            "{context}: {image:#}"
        );
    }
    (out, report)
}

struct Expected {
    legacy: State,
    migrated: State,
    images: Vec<Digest>,
}

fn check(after: &State, expected: &Expected, context: &str) {
    fleet::assert_legacy_untouched(after, &expected.legacy, context);
    fleet::assert_referrers_listed_once(after, &expected.images, 2, context);
    fleet::assert_same_state(after, &expected.migrated, context);
}

/// One kill point: a fresh copy of the seeded registry, a run killed at request `at`, a rerun with the
/// same journal, a check of the state; then a third run that finds every image in the journal. With
/// `cut_journal`, the journal's last line is first cut in half, as a kill during its write leaves it.
fn cycle(storage: &Path, expected: &Expected, point: usize, at: u64, when: KillWhen, cut_journal: bool) -> Duration {
    let started = Instant::now();
    let context = format!("seed {SEED:#x}, point {point}: kill {when:?} request #{at}");
    let registry = fleet::copy_of_storage(storage);
    let proxy = FaultProxy::start(&registry.host, None);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    killed_run(&proxy, &journal, at, when);
    let text = std::fs::read_to_string(&journal).unwrap_or_default();
    let mut journaled = text.lines().count();
    let cut = cut_journal && journaled > 0;
    if cut {
        // The last event loses its second half and its newline: that image counts as not journaled.
        let lines: Vec<&str> = text.lines().collect();
        let last = lines[lines.len() - 1];
        let kept: String = lines[..lines.len() - 1].iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&journal, format!("{kept}{}", &last[..last.len() / 2])).unwrap();
        journaled -= 1;
    }
    let warning = "1 unreadable line(s) ignored";

    let (out, report) = rerun(&proxy, &journal, &context);
    assert_eq!(out.stderr.contains(warning), cut, "{context}: cut journal {cut}:\n{}", out.stderr);
    let skipped = report["images"].as_array().unwrap().iter().filter(|i| i["reasons"].to_string().contains("journal"));
    assert_eq!(skipped.count(), journaled, "{context}: the images journaled before the kill are skipped");
    let after = tokio::runtime::Handle::current().block_on(fleet::dump_manifests(&registry, REPO));
    check(&after, expected, &context);

    // The rerun's own events are readable, each on its own line: every image is found in the journal.
    let (out, report) = rerun(&proxy, &journal, &context);
    assert_eq!(out.stderr.contains(warning), cut, "{context}: only the cut line is unreadable:\n{}", out.stderr);
    let images = report["images"].as_array().unwrap();
    assert!(
        images.iter().all(|i| i["outcome"] == "already-migrated" && i["reasons"].to_string().contains("journal")),
        "{context}: a run after the rerun finds everything journaled: {report:#}"
    );
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_at_seeded_points_then_rerun_converges() {
    let (seeded, images) = fleet::seed().await;
    let legacy = fleet::dump_manifests(&seeded, REPO).await;

    // An uninterrupted run through the proxy: how many requests a run makes, and the final state.
    let clean = fleet::copy_of(&seeded);
    let proxy = FaultProxy::start(&clean.host, None);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    let args = journal_args(&proxy.host, &journal, "1");
    let started = Instant::now();
    let (out, _) = tokio::task::spawn_blocking(move || run(&args)).await.unwrap();
    assert_eq!(out.code, 0, "the uninterrupted run: {}", out.stderr);
    let clean_time = started.elapsed();
    let requests = proxy.requests();
    let expected = Expected { legacy, migrated: fleet::dump_manifests(&clean, REPO).await, images };
    drop((proxy, clean));

    // The kill points: anywhere in the run, both kinds.
    let mut rng = Rng(SEED);
    let points: Vec<(usize, u64, KillWhen)> = (0..POINTS)
        .map(|i| {
            let at = 1 + rng.next() % requests;
            let when = if rng.next() & 1 == 0 { KillWhen::BeforeForwarding } else { KillWhen::AfterForwarding };
            (i, at, when)
        })
        .collect();
    let storage = seeded.storage_dir();
    let expected = std::sync::Arc::new(expected);
    let started = Instant::now();
    // PARALLEL workers take the next point as each finishes its cycle.
    let queue = std::sync::Arc::new(std::sync::Mutex::new(points.clone()));
    let workers: Vec<_> = (0..PARALLEL)
        .map(|_| {
            let (storage, expected, queue) = (storage.clone(), expected.clone(), queue.clone());
            tokio::task::spawn_blocking(move || {
                let mut times = Vec::new();
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                    let Some((i, at, when)) = next else { return times };
                    let one = || cycle(&storage, &expected, i, at, when, i % 2 == 1);
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(one)) {
                        Ok(time) => times.push(time),
                        Err(panic) => {
                            // One failure is enough: the other workers stop after their current cycle.
                            queue.lock().unwrap_or_else(|p| p.into_inner()).clear();
                            std::panic::resume_unwind(panic);
                        }
                    }
                }
            })
        })
        .collect();
    let mut times = Vec::new();
    for worker in workers {
        times.extend(worker.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())));
    }
    assert_eq!(times.len(), POINTS);
    eprintln!(
        "seed {SEED:#x}: a clean run makes {requests} requests in {clean_time:.1?}; {POINTS} kill points {:?} in {:.1?} \
         (cycles {:.1?}..{:.1?})",
        points
            .iter()
            .map(|(_, at, w)| format!("{at}{}", if *w == KillWhen::BeforeForwarding { "b" } else { "a" }))
            .collect::<Vec<_>>(),
        started.elapsed(),
        times.iter().min().unwrap(),
        times.iter().max().unwrap(),
    );
}
