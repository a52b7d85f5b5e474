//! The engine's promises, with a job whose listing and units are scripted: work starts before a
//! listing is complete, the pool bound holds across repositories, the finishing step runs once per
//! repository after its last unit, and the journal hears of every unit and of what finishing changed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::Notify;

use super::*;
use crate::store::layout::LayoutRepository;

/// Units are `"repo/n"` strings; a repository's listing is its pages, optionally gated.
#[derive(Default)]
struct Scripted {
    pages: HashMap<String, Vec<Vec<String>>>,
    /// The listing of this repository waits before its second page until the unit named runs.
    gate: Option<(String, String, Arc<Notify>)>,
    pages_read: Arc<AtomicUsize>,
    running: AtomicUsize,
    most_running: AtomicUsize,
    finished: Mutex<Vec<(String, Vec<String>)>>,
    /// A unit whose report finishing changes (its journal event is recorded again).
    changed_by_finish: Option<String>,
    /// This unit does not end until notified.
    hold: Option<(String, Arc<Notify>)>,
    /// This repository's finishing step takes a while.
    slow_finish: Option<String>,
    /// This repository's finishing step does not end until notified.
    hold_finish: Option<(String, Arc<Notify>)>,
    /// Units run so far.
    units_run: AtomicUsize,
    /// Every unit waits, in the middle, for a permit of this (work the units share).
    shared_wait: Option<Arc<tokio::sync::Semaphore>>,
    waiting_now: AtomicUsize,
    most_waiting: AtomicUsize,
    /// Reading each page takes this long.
    slow_pages: Option<Duration>,
    /// Pages being read now, and the most at once.
    reading_now: Arc<AtomicUsize>,
    most_reading: Arc<AtomicUsize>,
    /// Every unit holds a permit of this for a moment (a registry's request slot).
    request_slot: Option<Arc<tokio::sync::Semaphore>>,
}

impl Scripted {
    fn with_repos(repos: &[(&str, Vec<Vec<&str>>)]) -> Scripted {
        let pages = repos
            .iter()
            .map(|(name, pages)| {
                let pages = pages.iter().map(|p| p.iter().map(|u| format!("{name}/{u}")).collect()).collect();
                (name.to_string(), pages)
            })
            .collect();
        Scripted { pages, ..Scripted::default() }
    }
}

fn short_name(repo: &AnyRepository) -> String {
    repo.name().rsplit('/').next().unwrap_or_default().to_owned()
}

impl Job for Scripted {
    type Unit = String;
    type Report = String;
    type Event = String;

    fn named(&self, images: Vec<Digest>) -> Vec<String> {
        images.iter().map(ToString::to_string).collect()
    }

    fn list(&self, repo: Arc<AnyRepository>) -> BoxStream<'static, Result<Vec<String>>> {
        let name = short_name(&repo);
        let pages = self.pages.get(&name).cloned().unwrap_or_default();
        let gate = self.gate.clone().filter(|(r, ..)| *r == name).map(|(_, _, n)| n);
        let read = self.pages_read.clone();
        let (slow, now, most) = (self.slow_pages, self.reading_now.clone(), self.most_reading.clone());
        futures_util::stream::iter(pages.into_iter().enumerate())
            .then(move |(i, page)| {
                let gate = gate.clone();
                let read = read.clone();
                let (now, most) = (now.clone(), most.clone());
                async move {
                    if i == 1
                        && let Some(gate) = gate
                    {
                        gate.notified().await;
                    }
                    if let Some(slow) = slow {
                        most.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                        tokio::time::sleep(slow).await;
                        now.fetch_sub(1, Ordering::SeqCst);
                    }
                    read.fetch_add(1, Ordering::SeqCst);
                    Ok(page)
                }
            })
            .boxed()
    }

    async fn run(&self, _repo: &AnyRepository, unit: &String) -> String {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_running.fetch_max(now, Ordering::SeqCst);
        if let Some((_, u, gate)) = &self.gate
            && u == unit
        {
            gate.notify_one();
        }
        if let Some((u, release)) = &self.hold
            && u == unit
        {
            release.notified().await;
        }
        if let Some(shared) = &self.shared_wait {
            self.running.fetch_sub(1, Ordering::SeqCst);
            let now = self.waiting_now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_waiting.fetch_max(now, Ordering::SeqCst);
            crate::slots::waiting(shared.acquire()).await.expect("never closed").forget();
            self.waiting_now.fetch_sub(1, Ordering::SeqCst);
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_running.fetch_max(now, Ordering::SeqCst);
        }
        if let Some(slot) = &self.request_slot {
            let _request = slot.acquire().await.expect("never closed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.units_run.fetch_add(1, Ordering::SeqCst);
        unit.clone()
    }

    async fn finish(&self, repo: &AnyRepository, reports: &mut [String]) -> Vec<usize> {
        if self.slow_finish.as_deref() == Some(short_name(repo).as_str()) {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        if let Some((name, release)) = &self.hold_finish
            && *name == short_name(repo)
        {
            release.notified().await;
        }
        self.finished.lock().unwrap().push((short_name(repo), reports.to_vec()));
        let mut changed = Vec::new();
        for (i, r) in reports.iter_mut().enumerate() {
            if Some(&*r) == self.changed_by_finish.as_ref() {
                r.push_str(" (settled)");
                changed.push(i);
            }
        }
        changed
    }

    fn unit_key(&self, unit: &String) -> Option<String> {
        Some(unit.clone())
    }

    fn event(&self, report: &String) -> Option<String> {
        Some(report.clone())
    }
}

/// Empty layouts named `names`, as whole-repository targets.
fn layouts(dir: &std::path::Path, names: &[&str]) -> Vec<std::result::Result<RepositoryTarget, TargetError>> {
    names
        .iter()
        .map(|name| {
            let repo = LayoutRepository::create(dir.join(name), crate::Limits::default()).unwrap();
            Ok(RepositoryTarget { target: name.to_string(), repo: AnyRepository::Layout(repo), images: None })
        })
        .collect()
}

#[tokio::test]
async fn work_starts_on_the_first_page_before_the_listing_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let mut job = Scripted::with_repos(&[("a", vec![vec!["1", "2"], vec!["3", "4"]])]);
    // The second page is only served once unit a/1 has run: an engine that waited for the whole
    // listing before starting work would never get there.
    job.gate = Some(("a".into(), "a/1".into(), Arc::new(Notify::new())));
    let targets = futures_util::stream::iter(layouts(dir.path(), &["a"]));
    let outcome = tokio::time::timeout(Duration::from_secs(10), run(&job, targets, 2, None, &()))
        .await
        .expect("the batch waited for the complete listing before starting work");
    assert_eq!(outcome.reports, ["a/1", "a/2", "a/3", "a/4"]);
    assert!(outcome.errors.is_empty());
}

#[tokio::test]
async fn jobs_bound_the_units_in_flight_across_repositories_and_finishing_runs_once_per_repository() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["a", "b", "c", "d", "e"];
    let repos: Vec<(&str, Vec<Vec<&str>>)> = names.iter().map(|n| (*n, vec![vec!["1", "2"], vec!["3"]])).collect();
    let job = Scripted::with_repos(&repos);
    let targets = futures_util::stream::iter(layouts(dir.path(), &names));
    let outcome = run(&job, targets, 3, None, &()).await;

    let expected: Vec<String> = names.iter().flat_map(|n| (1..=3).map(move |i| format!("{n}/{i}"))).collect();
    assert_eq!(outcome.reports, expected, "grouped by repository in target order, units in listing order");
    assert_eq!(job.most_running.load(Ordering::SeqCst), 3, "never more than the pool");
    let mut finished = job.finished.lock().unwrap().clone();
    finished.sort();
    let want: Vec<(String, Vec<String>)> =
        names.iter().map(|n| (n.to_string(), (1..=3).map(|i| format!("{n}/{i}")).collect())).collect();
    assert_eq!(finished, want, "once per repository, with every one of its reports");
    assert_eq!(job.pages_read.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn the_listing_is_read_no_further_than_the_pool_needs() {
    let dir = tempfile::tempdir().unwrap();
    let pages: Vec<Vec<String>> = (1..=50).map(|i| vec![i.to_string()]).collect();
    let pages: Vec<Vec<&str>> = pages.iter().map(|p| p.iter().map(String::as_str).collect()).collect();
    let mut job = Scripted::with_repos(&[("a", pages)]);
    let release = Arc::new(Notify::new());
    job.hold = Some(("a/1".into(), release.clone()));
    let targets = futures_util::stream::iter(layouts(dir.path(), &["a"]));
    let read_while_held = async {
        // The first unit holds the only job: the engine may queue one page ahead and have read the
        // next (so that nothing of the listing is left half done), no more.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let read = job.pages_read.load(Ordering::SeqCst);
        release.notify_one();
        read
    };
    let (outcome, read) = tokio::join!(run(&job, targets, 1, None, &()), read_while_held);
    assert_eq!(read, 3, "pages read while the pool was full");
    assert_eq!(outcome.reports.len(), 50);
}

#[tokio::test]
async fn the_pool_reaches_across_one_unit_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["a", "b", "c", "d", "e", "f"];
    let repos: Vec<(&str, Vec<Vec<&str>>)> = names.iter().map(|n| (*n, vec![vec!["1"]])).collect();
    let job = Scripted::with_repos(&repos);
    let targets = futures_util::stream::iter(layouts(dir.path(), &names));
    let outcome = run(&job, targets, 3, None, &()).await;
    assert_eq!(outcome.reports.len(), names.len());
    // One unit per repository: a pool bounded per repository would never run two at once.
    assert_eq!(job.most_running.load(Ordering::SeqCst), 3);
}

/// Most repositories of a registry hold few images: listed one after another, a run would spend a
/// listing's round trip per repository in a row whatever the pool. The next repositories are listed
/// while the first one's units run, as many at once as the pool, and no more.
#[tokio::test]
async fn the_next_repositories_are_listed_while_one_is_worked_on() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let repos: Vec<(&str, Vec<Vec<&str>>)> = names.iter().map(|n| (*n, vec![vec!["1"], vec!["2"]])).collect();
    let mut job = Scripted::with_repos(&repos);
    job.slow_pages = Some(Duration::from_millis(50));
    let targets = futures_util::stream::iter(layouts(dir.path(), &names));
    let outcome = run(&job, targets, 3, None, &()).await;
    let expected: Vec<String> = names.iter().flat_map(|n| (1..=2).map(move |i| format!("{n}/{i}"))).collect();
    assert_eq!(outcome.reports, expected, "still in target order");
    assert_eq!(job.most_reading.load(Ordering::SeqCst), 3, "listings at once");
    assert_eq!(job.pages_read.load(Ordering::SeqCst), 16);

    // One job: one repository listed at a time, as before.
    let mut job = Scripted::with_repos(&repos);
    job.slow_pages = Some(Duration::from_millis(20));
    let targets = futures_util::stream::iter(layouts(dir.path(), &names));
    assert_eq!(run(&job, targets, 1, None, &()).await.reports, expected);
    assert_eq!(job.most_reading.load(Ordering::SeqCst), 1);
}

/// A target the listing side started resolving (a catalog page, a look-up) runs to its end even while
/// the engine wants no more units: it may have been handed the registry's only request slot, which the
/// running units wait for. Every fourth target here needs that slot, as a catalog's next page does.
#[tokio::test]
async fn targets_being_resolved_never_hold_what_the_units_wait_for() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..40).map(|i| format!("r{i:02}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let repos: Vec<(&str, Vec<Vec<&str>>)> = names.iter().map(|n| (*n, vec![vec!["1", "2"]])).collect();
    let slot = Arc::new(tokio::sync::Semaphore::new(1));
    let mut job = Scripted::with_repos(&repos);
    job.request_slot = Some(slot.clone());
    let targets =
        futures_util::stream::iter(layouts(dir.path(), &names).into_iter().enumerate()).then(move |(i, target)| {
            let slot = slot.clone();
            async move {
                if i % 4 == 3 {
                    let _request = slot.acquire().await.expect("never closed");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                target
            }
        });
    let outcome = tokio::time::timeout(Duration::from_secs(20), run(&job, targets, 2, None, &()))
        .await
        .expect("a target being resolved kept the request slot from the units");
    assert_eq!(outcome.reports.len(), 80);
}

#[tokio::test]
async fn targets_naming_one_repository_share_its_units_and_its_finish() {
    let dir = tempfile::tempdir().unwrap();
    let job = Scripted::with_repos(&[("a", vec![vec!["1", "2"], vec!["3"]]), ("b", vec![vec!["1"]])]);
    let mut targets = layouts(dir.path(), &["a", "b"]);
    // `a` again, as a whole and as one named image the listing also gives.
    let again = |images| {
        let repo = LayoutRepository::open(dir.path().join("a"), crate::Limits::default()).unwrap();
        Ok(RepositoryTarget { target: "a".into(), repo: AnyRepository::Layout(repo), images })
    };
    targets.insert(1, again(None));
    let named: Digest = "sha256:0000000000000000000000000000000000000000000000000000000000000001".parse().unwrap();
    targets.insert(2, again(Some(vec![named.clone()])));
    let outcome = run(&job, futures_util::stream::iter(targets), 1, None, &()).await;

    let reports: Vec<String> = outcome.reports;
    assert_eq!(reports, ["a/1", "a/2", "a/3", &named.to_string(), "b/1"], "each unit once, a's together");
    let finished: Vec<String> = job.finished.lock().unwrap().iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(finished, ["a", "b"], "a finished once, after all of its units");
}

#[tokio::test]
async fn the_journal_records_each_unit_and_what_finishing_changed() {
    let dir = tempfile::tempdir().unwrap();
    let mut job = Scripted::with_repos(&[("a", vec![vec!["1", "2"]]), ("b", vec![vec!["1"]])]);
    job.changed_by_finish = Some("a/2".into());
    let path = dir.path().join("journal.jsonl");
    let (journal, earlier) = Journal::<String>::open(&path).unwrap();
    assert!(earlier.is_empty());
    let targets = futures_util::stream::iter(layouts(dir.path(), &["a", "b"]));
    let outcome = run(&job, targets, 1, Some(&journal), &()).await;
    assert_eq!(outcome.reports, ["a/1", "a/2 (settled)", "b/1"]);
    drop(journal);
    let (_, mut recorded) = Journal::<String>::open(&path).unwrap();
    recorded.sort();
    assert_eq!(recorded, ["a/1", "a/2", "a/2 (settled)", "b/1"]);
}

#[tokio::test]
async fn a_failed_target_and_a_failed_listing_are_reported_and_the_others_run() {
    struct Failing(Scripted);
    impl Job for Failing {
        type Unit = String;
        type Report = String;
        type Event = String;
        fn named(&self, images: Vec<Digest>) -> Vec<String> {
            self.0.named(images)
        }
        fn list(&self, repo: Arc<AnyRepository>) -> BoxStream<'static, Result<Vec<String>>> {
            if short_name(&repo) == "broken" {
                let pages: Vec<Result<Vec<String>>> =
                    vec![Ok(vec!["broken/1".into()]), Err(crate::Error::invalid_format("page 2 is not JSON"))];
                return futures_util::stream::iter(pages).boxed();
            }
            self.0.list(repo)
        }
        async fn run(&self, repo: &AnyRepository, unit: &String) -> String {
            self.0.run(repo, unit).await
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let job = Failing(Scripted::with_repos(&[("ok", vec![vec!["1"]])]));
    let mut targets = layouts(dir.path(), &["broken", "ok"]);
    let resolve_error = crate::Error::new(crate::ErrorKind::NotFound, "tag \"x\" not found");
    targets.insert(1, Err(TargetError::new("registry.example/gone:x", &resolve_error)));
    let outcome = run(&job, futures_util::stream::iter(targets), 2, None, &()).await;
    assert_eq!(outcome.reports, ["broken/1", "ok/1"], "what was listed before the failure still runs");
    let errors: Vec<(&str, &str)> = outcome.errors.iter().map(|e| (e.target.as_str(), e.error_kind.as_str())).collect();
    assert_eq!(errors, [("broken", "invalid-format"), ("registry.example/gone:x", "not-found")]);
    assert!(outcome.errors[0].message.contains("page 2 is not JSON"), "{}", outcome.errors[0].message);
}

#[tokio::test]
async fn a_repository_is_delivered_while_later_ones_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["a", "b", "c"];
    let repos: Vec<(&str, Vec<Vec<&str>>)> = names.iter().map(|n| (*n, vec![vec!["1", "2"]])).collect();
    let mut job = Scripted::with_repos(&repos);
    // c/1 does not end until a's reports have been handed over: an engine that held every report until
    // the end of the run would never get there.
    let delivered_a = Arc::new(Notify::new());
    job.hold = Some(("c/1".into(), delivered_a.clone()));
    let targets = futures_util::stream::iter(layouts(dir.path(), &names));
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut deliver = |reports: Vec<String>| {
        if reports.first().is_some_and(|r| r.starts_with("a/")) {
            delivered_a.notify_one();
        }
        groups.push(reports);
    };
    let errors = tokio::time::timeout(Duration::from_secs(10), run_streamed(&job, targets, 2, None, &(), &mut deliver))
        .await
        .expect("no repository was delivered before the end of the run");
    assert!(errors.is_empty());
    let want: Vec<Vec<String>> = names.iter().map(|n| vec![format!("{n}/1"), format!("{n}/2")]).collect();
    assert_eq!(groups, want, "one delivery per repository, in target order");
}

#[tokio::test]
async fn deliveries_keep_target_order_when_a_later_repository_finishes_first() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["a", "b", "c"];
    let repos: Vec<(&str, Vec<Vec<&str>>)> = names.iter().map(|n| (*n, vec![vec!["1"]])).collect();
    let mut job = Scripted::with_repos(&repos);
    job.slow_finish = Some("a".into());
    let targets = futures_util::stream::iter(layouts(dir.path(), &names));
    let mut groups: Vec<Vec<String>> = Vec::new();
    let errors = run_streamed(&job, targets, 3, None, &(), &mut |reports| groups.push(reports)).await;
    assert!(errors.is_empty());
    let finish_order: Vec<String> = job.finished.lock().unwrap().iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(finish_order.last().map(String::as_str), Some("a"), "a's finishing step ended last: {finish_order:?}");
    assert_eq!(groups, [["a/1"], ["b/1"], ["c/1"]], "delivered in target order all the same");
}

#[tokio::test]
async fn repositories_finished_ahead_of_a_slow_one_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..MAX_FINISHED_AHEAD + 40).map(|i| format!("r{i:03}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let repos: Vec<(&str, Vec<Vec<&str>>)> = names.iter().map(|n| (*n, vec![vec!["1"]])).collect();
    let mut job = Scripted::with_repos(&repos);
    // The first repository cannot finish until released: everything after it waits to be delivered.
    let release = Arc::new(Notify::new());
    job.hold_finish = Some(("r000".into(), release.clone()));
    let targets = futures_util::stream::iter(layouts(dir.path(), &names));
    let jobs = 4;
    let mut delivered = 0usize;
    let held = async {
        // Until the work ahead of the held repository stops (no unit for a while), at most 20 s.
        let mut ran = 0;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = job.units_run.load(Ordering::SeqCst);
            if now == ran && now > 1 {
                break;
            }
            ran = now;
        }
        release.notify_one();
        ran
    };
    let mut deliver = |reports: Vec<String>| delivered += reports.len();
    let (errors, ran) = tokio::join!(run_streamed(&job, targets, jobs, None, &(), &mut deliver), held);
    assert!(errors.is_empty());
    // The held repository's unit, the ones finished ahead of it (the bound), and those already under way.
    assert!(ran <= 1 + MAX_FINISHED_AHEAD + 2 * jobs, "{ran} units ran while the first repository was held");
    assert!(ran > MAX_FINISHED_AHEAD, "work went on ahead of the held repository: {ran}");
    assert_eq!(delivered, names.len());
}

/// Waits until `count` units wait on the shared work (false after 10 s), then lets `release` of them go.
async fn when_waiting(job: &Scripted, count: usize, release: usize) -> bool {
    let reached = tokio::time::timeout(Duration::from_secs(10), async {
        while job.waiting_now.load(Ordering::SeqCst) < count {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .is_ok();
    job.shared_wait.as_ref().unwrap().add_permits(release);
    reached
}

#[tokio::test]
async fn units_waiting_on_shared_work_give_their_place_back() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let repos: Vec<(&str, Vec<Vec<&str>>)> = names.iter().map(|n| (*n, vec![vec!["1"]])).collect();
    let mut job = Scripted::with_repos(&repos);
    job.shared_wait = Some(Arc::new(tokio::sync::Semaphore::new(0)));
    let targets = futures_util::stream::iter(layouts(dir.path(), &names));
    // The shared work is only done once all ten wait for it: units that kept their places while
    // waiting would be two, and the run would never end.
    let (outcome, all_waited) =
        tokio::join!(tokio::time::timeout(Duration::from_secs(20), run(&job, targets, 2, None, &())), async {
            when_waiting(&job, 10, 10).await
        });
    assert!(all_waited, "only {} units waited at once", job.most_waiting.load(Ordering::SeqCst));
    let outcome = outcome.expect("the run ends once the shared work is done");
    assert_eq!(outcome.reports.len(), 10);
    assert_eq!(job.most_running.load(Ordering::SeqCst), 2, "never more units working than jobs");
}

#[tokio::test]
async fn units_started_beyond_jobs_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let units: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let mut job = Scripted::with_repos(&[("a", vec![units.iter().map(String::as_str).collect()])]);
    job.shared_wait = Some(Arc::new(tokio::sync::Semaphore::new(0)));
    let targets = futures_util::stream::iter(layouts(dir.path(), &["a"]));
    let bound = 2 + MAX_WAITING;
    let watch = async {
        let reached = when_waiting(&job, bound, 0).await;
        // Nothing more starts while every unit started waits.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let waiting = job.waiting_now.load(Ordering::SeqCst);
        job.shared_wait.as_ref().unwrap().add_permits(100);
        (reached, waiting)
    };
    let (outcome, (reached, waiting)) =
        tokio::join!(tokio::time::timeout(Duration::from_secs(20), run(&job, targets, 2, None, &())), watch);
    assert!(reached && waiting == bound, "{waiting} units waited at once, not {bound}");
    assert_eq!(outcome.expect("the run ends").reports.len(), 100);
    assert_eq!(job.most_waiting.load(Ordering::SeqCst), bound);
    assert_eq!(job.most_running.load(Ordering::SeqCst), 2);
}
