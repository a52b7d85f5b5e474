//! The Kubernetes manifests in `deploy/kubernetes/`: they parse (written as JSON-compatible YAML, so
//! any YAML 1.2 parser and `serde_json` read them), their wiring is consistent (Secret → DOCKER_CONFIG,
//! shard count = completions), and their command lines run as written against a real registry — with
//! the registry host, `/etc/att2ref` and `/tmp` pointed at test locations, and `--plain-http` and
//! `--insecure-ignore-tlog` added (a local registry; a demo store never logged).

use std::path::{Path, PathBuf};

use att2ref::demo;
use att2ref::store::Repository;
use serde_json::Value;

use crate::cli::{Run, att2ref_with};
use crate::registries::TestRegistry;

const PLACEHOLDER_HOST: &str = "registry.example.com";
/// Where the pods write metrics: node-exporter's textfile directory on the node (a hostPath volume).
const TEXTFILE_DIR: &str = "/var/lib/node-exporter/textfile";

fn manifest(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON-compatible YAML: {e}"))
}

/// The pod spec of a Job or CronJob.
fn pod(m: &Value) -> &Value {
    match m["kind"].as_str().unwrap() {
        "CronJob" => &m["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        "Job" => &m["spec"]["template"]["spec"],
        other => panic!("unexpected kind {other}"),
    }
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"].as_array().unwrap().iter().find(|e| e["name"] == name)
}

/// Registry credentials come from the `att2ref-registry` Secret, mounted where DOCKER_CONFIG points.
fn check_wiring(m: &Value) {
    let pod = pod(m);
    assert_eq!(pod["restartPolicy"], "Never");
    let container = &pod["containers"][0];
    let docker_config = env_value(container, "DOCKER_CONFIG").unwrap()["value"].as_str().unwrap();
    let mount = container["volumeMounts"].as_array().unwrap().iter().find(|v| v["mountPath"] == docker_config).unwrap();
    let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == mount["name"]).unwrap();
    assert_eq!(volume["secret"]["secretName"], "att2ref-registry");
    assert_eq!(volume["secret"]["items"][0]["key"], ".dockerconfigjson");
    assert_eq!(volume["secret"]["items"][0]["path"], "config.json");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
}

/// The container's arguments with `$(VAR)` expanded as the kubelet would, and test locations swapped in.
fn command_line(m: &Value, vars: &[(&str, &str)], host: &str, root: &Path) -> (Vec<String>, PathBuf) {
    let container = &pod(m)["containers"][0];
    let local = |s: &str| {
        let mut s = match s.strip_prefix("/tmp/") {
            Some(rest) => root.join("tmp").join(rest).display().to_string(),
            None => s.to_owned(),
        };
        s = s
            .replace(PLACEHOLDER_HOST, host)
            .replace("/etc/att2ref", &root.display().to_string())
            .replace(TEXTFILE_DIR, &root.join("textfile").display().to_string());
        for (k, v) in vars {
            s = s.replace(&format!("$({k})"), v);
        }
        s
    };
    let mut args: Vec<String> =
        container["args"].as_array().unwrap().iter().map(|a| local(a.as_str().unwrap())).collect();
    // Test-only: the local registry speaks plain HTTP, and the demo store was never logged in Rekor.
    args.extend(["--plain-http".into(), "--insecure-ignore-tlog".into()]);
    let docker_config = PathBuf::from(local(env_value(container, "DOCKER_CONFIG").unwrap()["value"].as_str().unwrap()));
    (args, docker_config)
}

/// `/etc/att2ref` as the pod sees it: the policy ConfigMap (the test key) and the credentials Secret.
fn fake_mounts() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("policy")).unwrap();
    std::fs::create_dir_all(root.path().join("docker")).unwrap();
    std::fs::create_dir_all(root.path().join("tmp")).unwrap();
    std::fs::create_dir_all(root.path().join("textfile")).unwrap();
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/rsa-4096.pub.pem");
    std::fs::copy(key, root.path().join("policy/cosign.pub")).unwrap();
    std::fs::write(root.path().join("docker/config.json"), r#"{"auths":{}}"#).unwrap();
    root
}

fn run(args: &[String], docker_config: &Path) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    att2ref_with(&args, None, &[("DOCKER_CONFIG", docker_config.to_str().unwrap())])
}

#[tokio::test]
async fn indexed_migrate_then_scheduled_prune_run_as_written() {
    let migrate = manifest("migrate-indexed-job.yaml");
    let prune = manifest("prune-cronjob.yaml");
    let example = manifest("secret-and-policy.example.yaml");
    assert_eq!(example["items"][0]["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(example["items"][0]["metadata"]["name"], "att2ref-registry");
    assert_eq!(example["items"][1]["metadata"]["name"], "att2ref-policy");
    assert!(example["items"][1]["data"]["cosign.pub"].is_string());

    // The Indexed Job: one shard per completion index, the index from the downward API.
    assert_eq!(migrate["kind"], "Job");
    assert_eq!(migrate["spec"]["completionMode"], "Indexed");
    check_wiring(&migrate);
    let completions = migrate["spec"]["completions"].as_u64().unwrap();
    let container = &pod(&migrate)["containers"][0];
    let shard_env = env_value(container, "SHARD_INDEX").unwrap();
    assert_eq!(
        shard_env["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
    let args: Vec<&str> = container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let shard = args[args.iter().position(|a| *a == "--shard").unwrap() + 1];
    assert_eq!(shard, format!("$(SHARD_INDEX)/{completions}"));

    // The CronJob: never two at once, deletes for real.
    assert_eq!(prune["kind"], "CronJob");
    assert_eq!(prune["spec"]["concurrencyPolicy"], "Forbid");
    check_wiring(&prune);

    // Run them against a registry with three repositories.
    let registry = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    let names = ["team/a", "team/b", "team/c"];
    for name in names {
        scenario.repo.push_to(&registry.repository(name)).await.unwrap();
    }
    let root = fake_mounts();
    let mut migrated = 0;
    for index in 0..completions {
        let index = index.to_string();
        let (args, docker_config) = command_line(&migrate, &[("SHARD_INDEX", &index)], &registry.host, root.path());
        let out = tokio::task::spawn_blocking(move || run(&args, &docker_config)).await.unwrap();
        assert_eq!(out.code, 0, "shard {index}: {}\n{}", out.stdout, out.stderr);
        let report = out.json();
        migrated += report["images"].as_array().unwrap().iter().filter(|i| i["outcome"] == "migrated").count();
        assert!(root.path().join("tmp/migrate-report.json").exists());
    }
    assert_eq!(migrated, names.len(), "every repository in exactly one shard");
    // One metrics file per shard, each series labelled with its shard, together counting every image.
    let mut from_metrics = 0.0;
    for index in 0..completions {
        let file = root.path().join(format!("textfile/att2ref-migrate-{index}.prom"));
        let samples = crate::status::parse_metrics(&file);
        let shard = format!("{index}/{completions}");
        assert!(samples.iter().all(|(_, labels, _)| labels["shard"] == shard.as_str()), "{samples:?}");
        from_metrics += samples
            .iter()
            .filter(|(n, labels, _)| n == "att2ref_images" && labels["outcome"] == "migrated")
            .map(|(_, _, v)| v)
            .sum::<f64>();
    }
    assert_eq!(from_metrics, names.len() as f64);

    // Attachments whose image is absent from their repository — here from the whole registry — in a
    // repository with images (team/a) and in an attachments-only one (team/sigs): the nightly job must
    // keep them, because it does not opt in to deleting orphans.
    let stray = demo::article_like().unwrap();
    let stray_tags: Vec<String> = ["sig", "att"]
        .iter()
        .map(|s| stray.image.cosign_tag(s))
        .filter(|t| stray.repo.manifest_by_tag(t).is_some())
        .collect();
    assert!(!stray_tags.is_empty());
    for name in ["team/a", "team/sigs"] {
        let repo = registry.repository(name);
        stray.repo.push_to(&repo).await.unwrap();
        repo.delete_manifest(&stray.image).await.unwrap();
    }

    let (args, docker_config) = command_line(&prune, &[], &registry.host, root.path());
    assert!(!args.iter().any(|a| a == "--delete-orphans"), "the scheduled job never deletes orphans: {args:?}");
    let out = tokio::task::spawn_blocking(move || run(&args, &docker_config)).await.unwrap();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    crate::schema::assert_valid("prune-report.schema.json", &report);
    assert_eq!(report["totals"]["statuses"]["removed"], names.len(), "{report:#}");
    assert_eq!(report["totals"]["statuses"]["kept"], 2 * stray_tags.len(), "{report:#}");
    let kept: Vec<&Value> = report["items"].as_array().unwrap().iter().filter(|i| i["status"] == "kept").collect();
    assert!(
        kept.iter().all(|i| i["kind"] == "orphan-legacy"
            && i["subject"] == stray.image.to_string()
            && i["reasons"].to_string().contains("COSIGN_REPOSITORY")),
        "only the stray orphans are kept, as orphans: {kept:#?}"
    );
    let samples = crate::status::parse_metrics(&root.path().join("textfile/att2ref-prune.prom"));
    let removed = samples.iter().find(|(n, _, _)| n == "att2ref_legacy_attestations_removed").map(|(_, _, v)| *v);
    assert_eq!(removed, Some(names.len() as f64), "{samples:?}");
    for name in names {
        let att = registry.repository(name).head_manifest(&scenario.image.cosign_tag("att")).await.unwrap();
        assert!(att.is_none(), "{name}: the migrated .att was pruned");
    }
    for name in ["team/a", "team/sigs"] {
        for tag in &stray_tags {
            let kept = registry.repository(name).head_manifest(tag).await.unwrap();
            assert!(kept.is_some(), "{name}: the orphaned {tag} is kept");
        }
    }
}
