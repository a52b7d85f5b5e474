//! The hostile-input corpus: every case is planted in one real distribution 2.8.2 (each in its own
//! repository), then `inspect`, `verify` and `migrate` run on it as an administrator would. Each must
//! give the documented exit code (0 ok, 1 the data failed a check, 2 could not check), an error on
//! stderr that names the image and the reason, no panic, and — for `migrate` — nothing written for
//! that image (compared in the registry's storage: tags, manifest revisions and blob links).
//!
//! The table is [`CASES`]; the planting is in [`cases`] and [`kit`].

mod cases;
mod kit;

use std::time::Instant;

use crate::cli::{Run, att2ref};
use kit::Kit;

/// Which command a case runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `inspect TARGET`.
    Inspect,
    /// `verify TARGET --key ed25519 --insecure-ignore-tlog`.
    Verify,
    /// `verify TARGET --key ed25519 --trusted-root test-root` (transparency log checked).
    VerifyTlog,
    /// `migrate TARGET --key ed25519 --insecure-ignore-tlog`.
    Migrate,
    /// `migrate TARGET --key ed25519 --trusted-root test-root` (transparency log checked).
    MigrateTlog,
}

/// One expectation: the command exits with `code` and its output (stderr, or the JSON report)
/// contains `says` (case-insensitive).
pub struct Expect(pub Cmd, pub i32, pub &'static str);

/// One hostile input.
pub struct Case {
    /// Also the repository it is planted in (`hostile/<name>`).
    pub name: &'static str,
    /// Plants the data; returns the image digest to target, or `None` for the whole repository.
    pub plant: fn(&Kit, &str) -> Option<att2ref::model::digest::Digest>,
    pub expect: &'static [Expect],
}

pub use cases::CASES;

/// Cases where `migrate` fails only when the registry refuses the index update, after the referrer
/// manifests were pushed (untagged, harmless, reused by a rerun): only tags are compared there.
const UNTAGGED_WRITES_OK: &[&str] = &["referrers-index-10000-entries"];

fn tags_only(snapshot: &[String]) -> Vec<String> {
    snapshot.iter().filter(|s| s.starts_with("tag ")).cloned().collect()
}

#[test]
fn hostile_corpus_on_distribution() {
    assert!(CASES.len() >= 40, "the corpus has {} cases", CASES.len());
    let started = Instant::now();
    // While working on one case: `HOSTILE_CASE=name cargo test hostile`. A filter that matches nothing
    // (a typo, a renamed case) must fail, or the test would pass having checked nothing.
    let only = std::env::var("HOSTILE_CASE").ok();
    let selected = select(CASES, only.as_deref());
    assert!(
        !selected.is_empty(),
        "HOSTILE_CASE={:?} matches none of the {} cases",
        only.unwrap_or_default(),
        CASES.len()
    );
    let kit = Kit::new();
    let mut failures = Vec::new();
    for case in &selected {
        let t = Instant::now();
        let repo = format!("hostile/{}", case.name);
        let image = (case.plant)(&kit, &repo);
        let planted = t.elapsed();
        let target = match &image {
            Some(d) => format!("{}/{repo}@{d}", kit.registry.host),
            None => format!("{}/{repo}", kit.registry.host),
        };
        for Expect(cmd, code, says) in case.expect {
            let before = kit.snapshot(&repo);
            let t_cmd = Instant::now();
            let run = run(&kit, *cmd, &target);
            let took = t_cmd.elapsed();
            let output = format!("{}\n{}", run.stdout, run.stderr);
            let mut wrong = Vec::new();
            if run.code != *code {
                wrong.push(format!("exit {} (expected {code})", run.code));
            }
            // A failure must explain itself on stderr; a success shows what it found in its report.
            let explained = if *code == 0 { &output } else { &run.stderr };
            if !explained.to_lowercase().contains(&says.to_lowercase()) {
                wrong.push(format!("{} lacks {says:?}", if *code == 0 { "output" } else { "stderr" }));
            }
            if output.contains("panicked") {
                wrong.push("it panicked".into());
            }
            if *code != 0 && !run.stderr.to_lowercase().contains("error") {
                wrong.push("no error on stderr".into());
            }
            if let Some(d) = &image
                && *code != 0
                && !run.stderr.contains(&d.to_string())
            {
                wrong.push("the error does not name the image".into());
            }
            if matches!(cmd, Cmd::Migrate | Cmd::MigrateTlog) && *code != 0 {
                let after = kit.snapshot(&repo);
                let (before, after) = if UNTAGGED_WRITES_OK.contains(&case.name) {
                    (tags_only(&before), tags_only(&after))
                } else {
                    (before.clone(), after)
                };
                if after != before {
                    let added: Vec<&String> = after.iter().filter(|a| !before.contains(a)).collect();
                    wrong.push(format!("migrate wrote something: {added:?}"));
                }
            }
            if only.is_some() {
                eprintln!("{} / {cmd:?}: exit {} in {took:?}\n{}", case.name, run.code, run.stderr);
            }
            if !wrong.is_empty() {
                failures.push(format!(
                    "{} / {cmd:?}: {}\n  stderr: {}\n  stdout: {}",
                    case.name,
                    wrong.join("; "),
                    run.stderr.trim(),
                    run.stdout.chars().take(600).collect::<String>()
                ));
            }
        }
        eprintln!("hostile: {:<44} {:>6} ms (planting {} ms)", case.name, t.elapsed().as_millis(), planted.as_millis());
    }
    eprintln!("hostile: {} of {} cases in {:?}", selected.len(), CASES.len(), started.elapsed());
    assert!(failures.is_empty(), "{} expectation(s) failed:\n{}", failures.len(), failures.join("\n"));
}

/// The cases whose name contains `only`, or all of them.
fn select<'a>(cases: &'a [Case], only: Option<&str>) -> Vec<&'a Case> {
    cases.iter().filter(|c| only.is_none_or(|o| c.name.contains(o))).collect()
}

#[test]
fn hostile_case_filter_selects_by_name_and_can_select_nothing() {
    assert_eq!(select(CASES, None).len(), CASES.len());
    let first = CASES[0].name;
    assert!(select(CASES, Some(first)).iter().all(|c| c.name.contains(first)));
    assert!(!select(CASES, Some(first)).is_empty());
    assert!(select(CASES, Some("no-such-hostile-case")).is_empty());
}

fn run(kit: &Kit, cmd: Cmd, target: &str) -> Run {
    let key = kit.key();
    let root = kit.trusted_root();
    let mut args = match cmd {
        Cmd::Inspect => vec!["inspect", "--plain-http", target],
        Cmd::Verify => vec!["verify", "--plain-http", target, "--key", &key, "--insecure-ignore-tlog"],
        Cmd::VerifyTlog => vec!["verify", "--plain-http", target, "--key", &key, "--trusted-root", &root],
        Cmd::Migrate => vec!["migrate", "--plain-http", target, "--key", &key, "--insecure-ignore-tlog"],
        Cmd::MigrateTlog => vec!["migrate", "--plain-http", target, "--key", &key, "--trusted-root", &root],
    };
    // One attempt per request: distribution answers 500 for manifests it cannot parse, and retrying
    // those only slows the corpus down.
    args.extend(["--retries", "1", "-o", "json"]);
    att2ref(&args)
}
