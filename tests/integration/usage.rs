//! Usage errors exit 2 on every command that takes the flag, whatever the library's error kind: an
//! unreadable or malformed `--key` / `--trusted-root`, and a `--type` that is neither a short name nor a
//! URI. The target is a real layout, so the flag is the only thing wrong.

use std::path::Path;

use crate::cli::{Run, att2ref};

const SHORT_NAMES: &str =
    "custom, slsaprovenance, slsaprovenance02, slsaprovenance1, spdx, spdxjson, cyclonedx, vuln, openvex, link";

/// `att2ref COMMAND TARGET EXTRA…`, with what `get` needs besides.
fn run(command: &str, target: &str, extra: &[&str]) -> Run {
    let mut args = vec![command, target];
    if command == "get" && !extra.contains(&"--type") {
        args.extend(["--type", "custom"]);
    }
    args.extend_from_slice(extra);
    att2ref(&args)
}

async fn demo_layout(dir: &Path) -> String {
    let scenario = att2ref::demo::demo().unwrap();
    att2ref::demo::write_layout(&scenario, dir).await.unwrap();
    format!("ocidir://{}@{}", dir.display(), scenario.image)
}

#[tokio::test]
async fn an_unreadable_or_malformed_key_or_trusted_root_exits_2_on_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let target = demo_layout(&tmp.path().join("layout")).await;
    let missing = tmp.path().join("missing.pem");
    let not_pem = tmp.path().join("not-a-key.pem");
    std::fs::write(&not_pem, "not a key\n").unwrap();
    let not_root = tmp.path().join("trusted_root.json");
    std::fs::write(&not_root, "[1, 2]").unwrap();
    let (missing, not_pem, not_root, dir) = (
        missing.to_str().unwrap(),
        not_pem.to_str().unwrap(),
        not_root.to_str().unwrap(),
        tmp.path().to_str().unwrap(),
    );
    let keyless = ["--certificate-identity", "a@example.test", "--certificate-oidc-issuer", "https://x.test"];
    // (flags, the file named, the reason given)
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["--key", missing], missing, "No such file or directory"),
        (vec!["--key", dir], dir, "Is a directory"),
        (vec!["--key", not_pem], not_pem, "no PEM block found"),
        ([&["--trusted-root", missing][..], &keyless].concat(), missing, "No such file or directory"),
        ([&["--trusted-root", not_root][..], &keyless].concat(), not_root, "not a JSON object"),
    ];
    for command in ["verify", "migrate", "get", "prune"] {
        for (flags, file, reason) in &cases {
            let r = run(command, &target, flags);
            let what = format!("{command} {flags:?}: {}", r.stderr);
            assert_eq!(r.code, 2, "{what}");
            assert!(r.stderr.contains(&format!("{} {file}", flags[0])) && r.stderr.contains(reason), "{what}");
            assert_eq!(r.stderr.lines().count(), 1, "one line: {what}");
        }
    }
}

#[tokio::test]
async fn a_type_that_is_neither_a_short_name_nor_a_uri_exits_2_listing_the_names() {
    let tmp = tempfile::tempdir().unwrap();
    let target = demo_layout(&tmp.path().join("layout")).await;
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/rsa-4096.pub.pem");
    let key = key.to_str().unwrap();
    for command in ["verify", "get"] {
        for bogus in ["bogus", "slsa provenance"] {
            let r = run(command, &target, &["--type", bogus, "--key", key, "--insecure-ignore-tlog"]);
            assert_eq!(r.code, 2, "{command} --type {bogus}: {}", r.stderr);
            assert!(r.stderr.contains(&format!("{bogus:?}")) && r.stderr.contains(SHORT_NAMES), "{}", r.stderr);
            assert!(r.stdout.is_empty(), "{}", r.stdout);
        }
    }
    // A URI without a scheme, as cosign 1.x wrote its own types, is still a type: the demo's SLSA text.
    let r = run(
        "get",
        &target,
        &["--type", "cosign.sigstore.dev/attestation/v1", "--hint", "slsa", "--key", key, "--insecure-ignore-tlog"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, att2ref::demo::content::ARTICLE_SLSA_TEXT);
    // A URI with a scheme that nothing carries: a valid query that finds nothing (exit 1, not 2).
    let r = run("get", &target, &["--type", "urn:example:none", "--key", key, "--insecure-ignore-tlog"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no verified urn:example:none attestation found"), "{}", r.stderr);
}
