//! The batch engine: `--jobs N` is images in flight across ALL repositories, not within one. Measured
//! from the registry's side (arrival order of requests at a pass-through proxy), with `--jobs 1` as the
//! control that must show no overlap.

use std::collections::BTreeMap;

use att2ref::demo;
use att2ref::store::Repository;

use crate::fault_proxy::FaultProxy;
use crate::prune::run_json;
use crate::registries::TestRegistry;

const REPOSITORIES: usize = 6;

/// The proxy's log as `(arrival number, method, repository under batch/, rest of the path)`.
fn requests(log: &[String]) -> Vec<(u64, String, String, String)> {
    let mut out = Vec::new();
    for line in log {
        let Some((n, rest)) = line.strip_prefix('#').and_then(|l| l.split_once(' ')) else { continue };
        let mut words = rest.split_whitespace();
        let (Some(method), Some(path)) = (words.next(), words.next()) else { continue };
        let Some((repo, what)) = path.strip_prefix("/v2/batch/").and_then(|p| p.split_once('/')) else { continue };
        out.push((n.parse().unwrap(), method.to_owned(), repo.to_owned(), what.to_owned()));
    }
    out
}

/// Per repository, from the first request that `starts` to the last that `ends` (arrival numbers).
fn spans(
    log: &[String],
    starts: impl Fn(&str, &str) -> bool,
    ends: impl Fn(&str, &str) -> bool,
) -> BTreeMap<String, (u64, u64)> {
    let mut first: BTreeMap<String, u64> = BTreeMap::new();
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for (n, method, repo, what) in requests(log) {
        if starts(&method, &what) {
            first.entry(repo.clone()).or_insert(n);
        }
        if ends(&method, &what) {
            let e = last.entry(repo).or_insert(n);
            *e = (*e).max(n);
        }
    }
    first.into_iter().filter_map(|(repo, s)| last.get(&repo).map(|e| (repo, (s, *e)))).collect()
}

/// For each repository of the batch, when its image's migration ran as the registry saw it: from the
/// first read of its legacy `.att` to the last push of a referrer manifest by digest. Tag listings
/// (prefetched for the next repository) and the index settle pass (which runs after the image, beside
/// the next ones) are left out on purpose.
fn intervals(log: &[String]) -> BTreeMap<String, (u64, u64)> {
    spans(
        log,
        |_, what| what.starts_with("manifests/sha256-") && what.ends_with(".att"),
        |method, what| method == "PUT" && what.starts_with("manifests/sha256:"),
    )
}

fn overlapping_pairs(intervals: &BTreeMap<String, (u64, u64)>) -> usize {
    let v: Vec<&(u64, u64)> = intervals.values().collect();
    let mut n = 0;
    for i in 0..v.len() {
        for j in i + 1..v.len() {
            if v[i].0 < v[j].1 && v[j].0 < v[i].1 {
                n += 1;
            }
        }
    }
    n
}

async fn batch_of_one_image_repositories(jobs: &str) -> (serde_json::Value, BTreeMap<String, (u64, u64)>) {
    let registry = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    for i in 0..REPOSITORIES {
        scenario.repo.push_to(&registry.repository(&format!("batch/r{i}"))).await.unwrap();
    }
    let proxy = FaultProxy::start(&registry.host, None);
    let (run, report) = run_json("migrate", &proxy.host, &["--all-repos", "--jobs", jobs]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outcomes = crate::prune::repository_outcomes(&report);
    let expected: Vec<String> = (0..REPOSITORIES).map(|i| format!("{}/batch/r{i}", proxy.host)).collect();
    assert_eq!(
        outcomes,
        expected.iter().map(|r| (r.clone(), "migrated".to_owned())).collect::<Vec<_>>(),
        "every repository's image migrated, reported in catalog order"
    );
    for i in 0..REPOSITORIES {
        let listed = registry.repository(&format!("batch/r{i}")).referrers(&scenario.image, None).await.unwrap();
        assert_eq!(listed.descriptors.len(), 2, "r{i}: both referrers listed in its index");
    }
    let log = proxy.log();
    // Distribution's router has no referrers route: that is learnt once for the registry, not once per
    // repository (with several jobs, the first repositories may ask before the first answer is in).
    let probes = requests(&log).iter().filter(|(_, _, _, what)| what.starts_with("referrers/")).count();
    let most = jobs.parse::<usize>().unwrap();
    assert!((1..=most).contains(&probes), "{probes} referrers API requests at --jobs {jobs}");
    if jobs == "1" {
        assert_eq!(probes, 1, "one probe for the whole registry");
        // The referrers' shared empty config blob is uploaded into the first repository and mounted
        // for each of the two referrers of every other one (one request each), not checked and
        // uploaded again.
        let mounts: Vec<String> = requests(&log)
            .into_iter()
            .filter(|(_, m, _, what)| m == "POST" && what.contains("?mount="))
            .map(|(_, _, repo, _)| repo)
            .collect();
        let expected: Vec<String> = (1..REPOSITORIES).flat_map(|i| [format!("r{i}"), format!("r{i}")]).collect();
        assert_eq!(mounts, expected);
        // A blob migrate found missing is uploaded without the store asking again: exactly one HEAD of
        // it in its repository before its upload (read-back may HEAD it again afterwards).
        let reqs = requests(&log);
        let uploads: Vec<(u64, String, String)> = reqs
            .iter()
            .filter(|(_, m, _, what)| m == "PUT" && what.starts_with("blobs/uploads/"))
            .map(|(n, _, repo, what)| {
                let digest = what.split("digest=").nth(1).unwrap().split('&').next().unwrap();
                (*n, repo.clone(), digest.replace("%3A", ":").replace("%3a", ":"))
            })
            .collect();
        // The first repository uploads the config and both bundles; every other one uploads only the
        // large bundle and mounts the two small blobs (counted above).
        assert_eq!(uploads.len(), 3 + (REPOSITORIES - 1), "{uploads:?}");
        for (at, repo, digest) in &uploads {
            let blob = format!("blobs/{digest}");
            let heads =
                reqs.iter().filter(|(n, m, r, what)| n < at && m == "HEAD" && r == repo && *what == blob).count();
            assert_eq!(heads, 1, "{repo}: HEADs of {digest} before its upload");
        }
    }
    let intervals = intervals(&log);
    assert_eq!(intervals.len(), REPOSITORIES, "{intervals:?}");
    (report, intervals)
}

#[tokio::test]
async fn jobs_are_images_in_flight_across_repositories() {
    let (_, sequential) = batch_of_one_image_repositories("1").await;
    assert_eq!(overlapping_pairs(&sequential), 0, "--jobs 1: one repository after another: {sequential:?}");
    let (_, parallel) = batch_of_one_image_repositories("4").await;
    assert!(
        overlapping_pairs(&parallel) >= 3,
        "--jobs 4 over one-image repositories: several repositories in flight at once: {parallel:?}"
    );
}

/// For each repository, its prune as the registry saw it: from its tag listing to its last DELETE.
fn prune_intervals(log: &[String]) -> BTreeMap<String, (u64, u64)> {
    spans(log, |_, what| what.starts_with("tags/list"), |method, _| method == "DELETE")
}

/// `prune --jobs N` prunes N repositories at once; each one's removals are all made, reported in
/// catalog order. `--jobs 1` is the control.
#[tokio::test]
async fn prune_jobs_are_repositories_at_once() {
    let registry = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    for i in 0..REPOSITORIES {
        scenario.repo.push_to(&registry.repository(&format!("batch/r{i}"))).await.unwrap();
    }
    let (run, _) = run_json("migrate", &registry.host, &["--all-repos"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut seen = Vec::new();
    for jobs in ["1", "4"] {
        let proxy = FaultProxy::start(&registry.host, None);
        // The dry run plans every .att; the overlap is measured on the same plan made with --apply below
        // only for the last --jobs (the first --apply removes everything).
        let apply: &[&str] = if jobs == "4" { &["--apply"] } else { &[] };
        let (run, report) = run_json("prune", &proxy.host, &[&["--all-repos", "--jobs", jobs][..], apply].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
        let repos: Vec<&str> =
            report["items"].as_array().unwrap().iter().map(|i| i["repository"].as_str().unwrap()).collect();
        let expected: Vec<String> = (0..REPOSITORIES).map(|i| format!("{}/batch/r{i}", proxy.host)).collect();
        assert_eq!(repos, expected, "one .att item per repository, in catalog order: {report:#}");
        let status = if jobs == "4" { "removed" } else { "planned" };
        assert!(report["items"].as_array().unwrap().iter().all(|i| i["status"] == status), "{report:#}");
        seen.push(proxy.log());
    }
    // A dry run deletes nothing, so its span runs from the tag listing to its last request.
    let dry = spans(&seen[0], |_, what| what.starts_with("tags/list"), |_, _| true);
    assert_eq!(overlapping_pairs(&dry), 0, "--jobs 1: one repository after another: {dry:?}");
    let applied = prune_intervals(&seen[1]);
    assert_eq!(applied.len(), REPOSITORIES, "{applied:?}");
    assert!(overlapping_pairs(&applied) >= 3, "--jobs 4: several repositories pruned at once: {applied:?}");
    for i in 0..REPOSITORIES {
        let att =
            registry.repository(&format!("batch/r{i}")).head_manifest(&scenario.image.cosign_tag("att")).await.unwrap();
        assert!(att.is_none(), "r{i}: the migrated .att was pruned");
    }
}

/// Targets that name the same repository and the same image several times (two tags on one digest, and
/// the whole repository) are one repository of the batch and one unit each: the image is migrated once,
/// not by three units racing on its own index, and reported once. Counted at the registry's door.
#[tokio::test]
async fn a_repository_and_an_image_named_by_several_targets_are_done_once() {
    let registry = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    let repo = registry.repository("batch/same");
    scenario.repo.push_to(&repo).await.unwrap();
    let image = repo.get_manifest(&scenario.image.to_string()).await.unwrap().expect("the image");
    repo.put_manifest(image.bytes.clone(), &image.media_type, Some("1.0")).await.unwrap();
    repo.put_manifest(image.bytes.clone(), &image.media_type, Some("latest")).await.unwrap();

    let proxy = FaultProxy::start(&registry.host, None);
    let (tag_a, tag_b, whole) = (
        format!("{}/batch/same:1.0", proxy.host),
        format!("{}/batch/same:latest", proxy.host),
        format!("{}/batch/same", proxy.host),
    );
    let key = crate::prune::rsa_key();
    let run = crate::cli::att2ref(&[
        "migrate",
        "--plain-http",
        "--key",
        &key,
        "--insecure-ignore-tlog",
        "-o",
        "json",
        "--jobs",
        "4",
        &tag_a,
        &tag_b,
        &whole,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    let rows: Vec<(&str, &str)> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["image"].as_str().unwrap(), i["outcome"].as_str().unwrap()))
        .collect();
    let digest = scenario.image.to_string();
    assert_eq!(rows, vec![(digest.as_str(), "migrated")], "one row for the one image");

    let reqs = requests(&proxy.log());
    let index_tag = format!("manifests/{}", scenario.image.referrers_tag());
    let index_pushes = reqs.iter().filter(|(_, m, _, what)| m == "PUT" && *what == index_tag).count();
    let referrer_pushes =
        reqs.iter().filter(|(_, m, _, what)| m == "PUT" && what.starts_with("manifests/sha256:")).count();
    assert_eq!((index_pushes, referrer_pushes), (1, 2), "one migration: its two referrers and one index push");
    assert_eq!(repo.referrers(&scenario.image, None).await.unwrap().descriptors.len(), 2);
}

/// The report is written as the run goes, repository by repository: the `--report` file holds exactly
/// the bytes stdout got, and a reader of stdout that goes away at once (a pipe into `head`) stops
/// nothing else: the file is still whole.
#[tokio::test]
async fn the_report_file_is_whole_when_the_reader_of_stdout_goes_away() {
    use std::process::{Command, Stdio};
    let registry = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    for i in 0..3 {
        scenario.repo.push_to(&registry.repository(&format!("stream/r{i}"))).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    // `status` only reads: both runs give the same report.
    let status = |file: &std::path::Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_att2ref"));
        c.args(["status", "--plain-http", "--all-repos", &registry.host, "-o", "json", "--report"]).arg(file);
        c
    };
    let (whole, cut) = (dir.path().join("whole.json"), dir.path().join("cut.json"));
    let out = status(&whole).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&whole).unwrap(), out.stdout, "the file holds what stdout got");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let repositories: Vec<&str> =
        report["images"].as_array().unwrap().iter().map(|i| i["repository"].as_str().unwrap()).collect();
    let mut expected: Vec<String> = Vec::new();
    for i in 0..3 {
        let name = format!("{}/stream/r{i}", registry.host);
        let n = repositories.iter().filter(|r| **r == name).count();
        assert!(n > 0, "{name} has images in the report");
        expected.extend(std::iter::repeat_n(name, n));
    }
    assert_eq!(repositories, expected, "grouped by repository, in catalog order");

    let mut child = status(&cut).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(0), "a closed pipe is not an error: {}", String::from_utf8_lossy(&done.stderr));
    assert_eq!(std::fs::read(&cut).unwrap(), out.stdout, "the file is whole although stdout went away");
}

/// Targets looked up ahead of the pool never hold the registry's request slots while the engine is not
/// reading them: with one request at a time and one job, the units still get every slot they wait for
/// and the run ends. (A look-up that was handed the slot but never polled again held it for good.)
#[tokio::test]
async fn targets_looked_up_ahead_never_starve_the_units_of_requests() {
    const TARGETS: usize = 10;
    let registry = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    let mut targets = Vec::new();
    for i in 0..TARGETS {
        scenario.repo.push_to(&registry.repository(&format!("ahead/r{i}"))).await.unwrap();
        targets.push(format!("{}/ahead/r{i}@{}", registry.host, scenario.image));
    }
    let key = crate::prune::rsa_key();
    let mut args = vec!["migrate", "--plain-http", "--key", &key, "--insecure-ignore-tlog", "-o", "json"];
    args.extend(["--jobs", "1", "--concurrent-requests", "1"]);
    args.extend(targets.iter().map(String::as_str));
    let run = crate::cli::att2ref_within(&args, std::time::Duration::from_secs(90));
    assert_eq!(run.code, 0, "the run ended (-1: killed after 90 s)\n{}", run.stderr);
    let report = run.json();
    let rows = crate::prune::repository_outcomes(&report);
    let expected: Vec<String> = (0..TARGETS).map(|i| format!("{}/ahead/r{i}", registry.host)).collect();
    assert_eq!(rows, expected.iter().map(|r| (r.clone(), "migrated".to_owned())).collect::<Vec<_>>());
}

/// A repository's listing costs a round trip, and most repositories of a registry hold few images:
/// listed one after another, a run over a remote registry would spend one round trip per repository in
/// a row, whatever `--jobs` says. Every tag listing is held 300 ms at a proxy, so listings made one
/// after another arrive at least that far apart, and listings made together arrive together.
#[tokio::test]
async fn the_next_repositories_are_listed_while_earlier_ones_are_migrated() {
    const HELD: std::time::Duration = std::time::Duration::from_millis(300);
    let registry = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    for i in 0..REPOSITORIES {
        scenario.repo.push_to(&registry.repository(&format!("listed/r{i}"))).await.unwrap();
    }
    let proxy = FaultProxy::counting(&registry.host);
    let listings: Vec<String> = (0..REPOSITORIES).map(|i| format!("GET /v2/listed/r{i}/tags/list")).collect();
    for i in 0..REPOSITORIES {
        proxy.delay_request("GET", &format!("/v2/listed/r{i}/tags/list"), HELD);
    }
    let (run, report) = run_json("migrate", &proxy.host, &["--all-repos", "--jobs", "4"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let expected: Vec<(String, String)> =
        (0..REPOSITORIES).map(|i| (format!("{}/listed/r{i}", proxy.host), "migrated".to_owned())).collect();
    assert_eq!(crate::prune::repository_outcomes(&report), expected);

    // The first listing request of each repository.
    let mut first: Vec<(std::time::Duration, String)> = Vec::new();
    for (at, what) in proxy.arrivals() {
        if listings.contains(&what) && !first.iter().any(|(_, w)| *w == what) {
            first.push((at, what));
        }
    }
    assert_eq!(first.len(), REPOSITORIES, "{first:?}");
    let together = first.windows(2).filter(|w| w[1].0 - w[0].0 < HELD / 2).count();
    assert!(together >= 3, "listings arriving together: {together} ({first:?})");
}

/// Listings read ahead never hold the registry's only request slot from the running images: with one
/// request at a time and four jobs (four repositories listed at once), the run over a whole registry
/// still ends with every image migrated.
#[tokio::test]
async fn listings_read_ahead_never_starve_the_units_of_requests() {
    let registry = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    for i in 0..REPOSITORIES {
        scenario.repo.push_to(&registry.repository(&format!("starve/r{i}"))).await.unwrap();
    }
    let key = crate::prune::rsa_key();
    let mut args = vec!["migrate", "--plain-http", "--key", &key, "--insecure-ignore-tlog", "-o", "json"];
    args.extend(["--all-repos", "--jobs", "4", "--concurrent-requests", "1", &registry.host]);
    let run = crate::cli::att2ref_within(&args, std::time::Duration::from_secs(90));
    assert_eq!(run.code, 0, "the run ended (-1: killed after 90 s)\n{}", run.stderr);
    let expected: Vec<(String, String)> =
        (0..REPOSITORIES).map(|i| (format!("{}/starve/r{i}", registry.host), "migrated".to_owned())).collect();
    assert_eq!(crate::prune::repository_outcomes(&run.json()), expected);
}
