//! Attachments kept in another repository (`--attachments-repository`, cosign's `COSIGN_REPOSITORY`), on
//! distribution 2.8.2 (referrers tag schema) and ferro-oci-server (referrers API).
//!
//! The layout: the image is in `app`; its legacy `.sig` and `.att` are in `sigs`, which also holds an image
//! of its own with its own `.att`. Every command must find app's attachments only through the setting,
//! write nothing beside the image, and never touch what belongs to `sigs` itself.

use att2ref::demo::{self, Scenario};
use att2ref::model::digest::Digest;
use att2ref::model::oci::Manifest;
use att2ref::store::Repository;
use att2ref::store::attachments::is_attachment_tag;
use att2ref::store::registry::RegistryRepository;
use serde_json::Value;

use crate::cli::{Run, att2ref, att2ref_with};
use crate::fault_proxy::{Fault, FaultProxy};
use crate::get::test_key;
use crate::registries::TestRegistry;
use crate::schema::assert_valid;

/// The two repositories and what was pushed into them.
struct Layout {
    app: RegistryRepository,
    sigs: RegistryRepository,
    /// The demo image, in `app`; its legacy tags in `sigs`.
    image: Digest,
    /// The image `sigs` holds of its own, with its own `.att` beside it.
    own: Digest,
    /// `sigs`'s tags right after the push, sorted.
    sigs_tags: Vec<String>,
}

impl Layout {
    fn app_ref(&self) -> String {
        format!("{}/{}", self.app.host(), self.app.repository_name())
    }

    fn sigs_ref(&self) -> String {
        format!("{}/{}", self.sigs.host(), self.sigs.repository_name())
    }

    fn image_ref(&self) -> String {
        format!("{}@{}", self.app_ref(), self.image)
    }
}

/// Push `scenario` split the way `COSIGN_REPOSITORY` stores it: the image manifests under their tags into
/// `images`, the legacy manifests under theirs into `attachments` (every blob into both: each side then
/// has what its manifests name).
async fn push_split(scenario: &Scenario, images: &RegistryRepository, attachments: &RegistryRepository) {
    let mut image_side = demo::GeneratedRepo::new(scenario.repo.repository.clone());
    let mut attachment_side = image_side.clone();
    for repo in [&mut image_side, &mut attachment_side] {
        repo.blobs = scenario.repo.blobs.clone();
    }
    for m in &scenario.repo.manifests {
        // Superseded legacy manifests are untagged: the scenario still knows them as attachments.
        let attached =
            m.tags.iter().any(|t| is_attachment_tag(t)) || scenario.attachments.iter().any(|a| a.manifest == m.digest);
        let side = if attached { &mut attachment_side } else { &mut image_side };
        side.manifests.push(m.clone());
    }
    image_side.push_to(images).await.unwrap();
    attachment_side.push_to(attachments).await.unwrap();
}

async fn layout(registry: &TestRegistry) -> Layout {
    let app = registry.repository("team/app");
    let sigs = registry.repository("team/sigs");
    let scenario = demo::demo().unwrap();
    push_split(&scenario, &app, &sigs).await;
    let own = demo::article_like_numbered("registry.test/team/sigs", 1, 4_000).unwrap();
    own.repo.push_to(&sigs).await.unwrap();
    assert_ne!(own.image, scenario.image);
    let mut sigs_tags = sigs.list_tags().await.unwrap();
    sigs_tags.sort();
    let hex = scenario.image.hex();
    let own_hex = own.image.hex();
    let mut expected = vec![
        format!("sha256-{hex}.att"),
        format!("sha256-{hex}.sig"),
        format!("sha256-{own_hex}.att"),
        "v1".to_owned(),
    ];
    expected.sort();
    assert_eq!(sigs_tags, expected, "{}", registry.kind_name());
    assert_eq!(app.list_tags().await.unwrap(), ["v1"]);
    Layout { app, sigs, image: scenario.image, own: own.image, sigs_tags }
}

fn with_key(args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(["--key".to_owned(), test_key(), "--insecure-ignore-tlog".to_owned()]);
    all
}

fn run(args: &[String], env: &[(&str, &str)]) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    att2ref_with(&args, None, env)
}

/// The `.att` layer count inspect shows for the one image of a report, or `None` without a `.att`.
fn att_layers(report: &Value) -> Option<usize> {
    report["images"][0]["legacy"]["attestations"]["layers"].as_array().map(Vec::len)
}

/// Every referrer of `subject` as a reader finds it in `repo`: the API listing on ferro-oci-server, the
/// tag-schema index on distribution (read directly, not through att2ref's discovery).
async fn listed(registry: &TestRegistry, repo: &RegistryRepository, subject: &Digest) -> Vec<Digest> {
    let mut digests: Vec<Digest> = if registry.has_referrers_api() {
        repo.referrers(subject, None).await.unwrap().descriptors.into_iter().map(|d| d.digest).collect()
    } else {
        match repo.get_manifest(&subject.referrers_tag()).await.unwrap() {
            None => Vec::new(),
            Some(raw) => {
                let Manifest::Index(index) = raw.manifest else { panic!("the referrers tag holds no index") };
                index.manifests.into_iter().map(|d| d.digest).collect()
            }
        }
    };
    digests.sort();
    digests
}

async fn reads_and_writes_attachments_in_the_attachments_repository(registry: TestRegistry) {
    let l = layout(&registry).await;
    let kind = registry.kind_name();
    let image = l.image_ref();
    let sigs = l.sigs_ref();
    let flag = ["--attachments-repository", sigs.as_str()];

    // Without the setting app's image has nothing attached: what follows is found only through it.
    let r = att2ref(&["inspect", "--plain-http", &image, "-o", "json"]);
    assert_eq!(r.code, 0, "{kind}: {}", r.stderr);
    assert_eq!(att_layers(&r.json()), None, "{kind}: {}", r.stdout);
    assert!(r.json().get("attachmentsRepository").is_none());
    let r = run(&with_key(&["verify", "--plain-http", &image]), &[]);
    assert_eq!(r.code, 1, "{kind}: {}", r.stderr);
    assert!(r.stderr.contains("no attestations or signatures to verify"), "{kind}: {}", r.stderr);

    // inspect through the flag: the .att with its two layers, read from sigs.
    let r = att2ref(&["inspect", "--plain-http", &image, flag[0], flag[1], "-o", "json"]);
    assert_eq!(r.code, 0, "{kind}: {}", r.stderr);
    let report = r.json();
    assert_valid("inspect.schema.json", &report);
    assert_eq!(att_layers(&report), Some(2), "{kind}: {}", r.stdout);
    assert_eq!(report["attachmentsRepository"], sigs.as_str());
    assert_eq!(report["images"][0]["subject"]["present"], true, "{kind}: {}", r.stdout);
    assert!(
        r.stderr.contains(&format!(
            "attachments (legacy tags and referrers) are in {sigs} (from --attachments-repository)"
        )),
        "{}",
        r.stderr
    );

    // inspect --all-tags: app's one image with its .att; sigs's own image is not app's and is left out.
    let app = l.app_ref();
    let r = att2ref(&["inspect", "--plain-http", &app, "--all-tags", flag[0], flag[1], "-o", "json"]);
    assert_eq!(r.code, 0, "{kind}: {}", r.stderr);
    let report = r.json();
    let images: Vec<&str> =
        report["images"].as_array().unwrap().iter().map(|i| i["digest"].as_str().unwrap()).collect();
    assert_eq!(images, [l.image.to_string()], "{kind}: {}", r.stdout);
    assert_eq!(att_layers(&report), Some(2), "{kind}: {}", r.stdout);
    assert_eq!(report["images"][0]["tags"], serde_json::json!(["v1"]), "{kind}: {}", r.stdout);

    // verify through COSIGN_REPOSITORY, and the flag over a variable that names nothing.
    let env = [("COSIGN_REPOSITORY", sigs.as_str())];
    let r = run(&with_key(&["verify", "--plain-http", &image, "-o", "json"]), &env);
    assert_eq!(r.code, 0, "{kind}: {}", r.stderr);
    let report = r.json();
    assert_valid("verify.schema.json", &report);
    assert_eq!(report["attachmentsRepository"], sigs.as_str());
    // The .att's two layers and the .sig's one.
    assert_eq!(report["images"][0]["results"].as_array().unwrap().len(), 3, "{kind}: {}", r.stdout);
    assert!(r.stderr.contains(&format!("are in {sigs} (from $COSIGN_REPOSITORY)")), "{}", r.stderr);
    let elsewhere = format!("{}/team/nowhere", registry.host);
    let r = run(&with_key(&["verify", "--plain-http", &image, flag[0], flag[1]]), &[("COSIGN_REPOSITORY", &elsewhere)]);
    assert_eq!(r.code, 0, "{kind}: {}", r.stderr);
    assert!(r.stderr.contains("(from --attachments-repository)"), "{}", r.stderr);

    // migrate the repository without the setting: app holds no legacy tag, so there is nothing to do.
    let r = run(&with_key(&["migrate", "--plain-http", &app, "-o", "json", "-q"]), &[]);
    assert_eq!(r.code, 0, "{kind}: {}", r.stderr);
    assert_eq!(r.json()["images"], serde_json::json!([]), "{kind}: {}", r.stdout);

    // migrate the repository: app's image is migrated into sigs; sigs's own image is not app's.
    let migrate = with_key(&["migrate", "--plain-http", &app, flag[0], flag[1], "-o", "json", "-q"]);
    let r = run(&migrate, &[]);
    assert_eq!(r.code, 0, "{kind}: {}\n{}", r.stdout, r.stderr);
    let report = r.json();
    assert_valid("migrate-report.schema.json", &report);
    assert_eq!(report["attachments_repository"], sigs.as_str());
    let outcomes = crate::prune::image_outcomes(&report);
    let mut expected =
        vec![(l.image.to_string(), "migrated".to_owned()), (l.own.to_string(), "not-in-image-repository".to_owned())];
    let mut got = outcomes.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "{kind}: {}", r.stdout);
    let mut written: Vec<Digest> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["outcome"] == "migrated")
        .flat_map(|i| i["referrers"].as_array().unwrap().iter().map(|r| r["digest"].as_str().unwrap().parse().unwrap()))
        .collect();
    written.sort();
    assert_eq!(written.len(), 2, "{kind}: {}", r.stdout);
    // Read directly: sigs lists them for app's image; nothing was written into app, nothing for sigs's own.
    assert_eq!(listed(&registry, &l.sigs, &l.image).await, written, "{kind}");
    assert_eq!(listed(&registry, &l.app, &l.image).await, Vec::<Digest>::new(), "{kind}");
    assert_eq!(listed(&registry, &l.sigs, &l.own).await, Vec::<Digest>::new(), "{kind}");
    for d in &written {
        assert!(l.sigs.head_manifest(&d.to_string()).await.unwrap().is_some(), "{kind}: {d}");
        assert!(l.app.head_manifest(&d.to_string()).await.unwrap().is_none(), "{kind}: {d}");
    }
    assert_eq!(l.app.list_tags().await.unwrap(), ["v1"], "{kind}");
    let r = run(&migrate, &[]);
    assert_eq!(r.code, 0, "{kind}: {}", r.stderr);
    assert_eq!(r.json()["totals"]["referrers_written"], 0, "{kind}: {}", r.stdout);
    assert_eq!(r.json()["totals"]["bytes_written"], 0, "{kind}: {}", r.stdout);

    // get: exactly the SLSA text, answered by a referrer in sigs.
    let get = with_key(&["get", "--plain-http", &image, "--type", "custom", "--hint", "slsa", "--stats=json"]);
    let r = run(&get, &env);
    assert_eq!(r.code, 0, "{kind}: {}", r.stderr);
    assert_eq!(r.stdout.as_bytes(), demo::content::ARTICLE_SLSA_TEXT.as_bytes(), "{kind}");
    assert!(r.stderr.contains("\"answeredBy\":\"referrer\""), "{kind}: {}", r.stderr);
    let r = run(&get, &[]);
    assert_eq!(r.code, 1, "{kind}: without the setting app has nothing: {}", r.stderr);

    // prune without the setting: app holds no legacy tag, and nothing anywhere is removed.
    let prune = with_key(&["prune", "--plain-http", &app, "--apply", "-o", "json", "-q"]);
    let mut before = l.sigs.list_tags().await.unwrap();
    before.sort();
    let r = run(&prune, &[]);
    assert_eq!(r.code, 0, "{kind}: {}\n{}", r.stdout, r.stderr);
    let removed = r.json()["items"].as_array().unwrap().iter().filter(|i| i["status"] == "removed").count();
    assert_eq!(removed, 0, "{kind}: {}", r.stdout);
    let mut now = l.sigs.list_tags().await.unwrap();
    now.sort();
    assert_eq!(now, before, "{kind}");

    // prune: app's migrated .att goes from sigs; sigs's own image and .att, and the .sig, stay.
    let r = run(&prune, &env);
    assert_eq!(r.code, 0, "{kind}: {}\n{}", r.stdout, r.stderr);
    let report = r.json();
    assert_valid("prune-report.schema.json", &report);
    assert_eq!(report["attachments_repository"], sigs.as_str());
    let items: Vec<(String, String, String)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or("").to_owned();
            (s("kind"), s("tag"), s("status"))
        })
        .collect();
    let att = format!("sha256-{}.att", l.image.hex());
    let own_att = format!("sha256-{}.att", l.own.hex());
    assert!(items.contains(&("legacy-attestation".into(), att.clone(), "removed".into())), "{kind}: {items:?}");
    assert!(items.contains(&("foreign-legacy".into(), own_att.clone(), "kept".into())), "{kind}: {items:?}");
    assert_eq!(items.iter().filter(|i| i.2 == "removed").count(), 1, "{kind}: {items:?}");
    let mut after = l.sigs.list_tags().await.unwrap();
    after.retain(|t| *t != l.image.referrers_tag());
    after.sort();
    let mut expected = l.sigs_tags.clone();
    expected.retain(|t| *t != att);
    assert_eq!(after, expected, "{kind}");
    assert_eq!(l.app.list_tags().await.unwrap(), ["v1"], "{kind}");
    assert!(l.sigs.head_manifest(&l.own.to_string()).await.unwrap().is_some(), "{kind}");
    // And the attestation is still there for whoever reads it the way cosign v3 does.
    let r = run(&get, &env);
    assert_eq!(r.code, 0, "{kind}: {}", r.stderr);
    assert_eq!(r.stdout.as_bytes(), demo::content::ARTICLE_SLSA_TEXT.as_bytes(), "{kind}");
}

#[tokio::test]
async fn attachments_repository_on_distribution() {
    reads_and_writes_attachments_in_the_attachments_repository(TestRegistry::distribution()).await;
}

#[tokio::test]
async fn attachments_repository_on_ferro() {
    reads_and_writes_attachments_in_the_attachments_repository(TestRegistry::ferro()).await;
}

#[test]
fn a_bad_cosign_repository_is_a_usage_error_naming_the_variable() {
    let r = att2ref_with(
        &["inspect", "--plain-http", "127.0.0.1:1/team/app:v1"],
        None,
        &[("COSIGN_REPOSITORY", "bad$repo")],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("parsing $COSIGN_REPOSITORY: invalid repository \"bad$repo\""), "{}", r.stderr);
    let dir = tempfile::tempdir().unwrap();
    let layout = format!("ocidir://{}", dir.path().display());
    let r = att2ref(&["inspect", &layout, "--attachments-repository", "127.0.0.1:1/sigs"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("an OCI layout keeps its own attachments"), "{}", r.stderr);
    let r = att2ref(&[
        "migrate",
        "127.0.0.1:1/team/app",
        "--attachments-repository",
        "127.0.0.1:1/sigs:v1",
        "--key",
        &test_key(),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("parsing --attachments-repository: invalid repository"), "{}", r.stderr);
    assert!(r.stderr.contains("takes no tag or digest"), "{}", r.stderr);
}

/// An image index in `app`, the `.att`s of the index and of its amd64 manifest in `sigs`: the platform
/// manifests are read from the index in `app`, each one's legacy tags and referrers are in `sigs`.
async fn an_index_and_its_platforms(registry: TestRegistry) {
    let kind = registry.kind_name();
    let app = registry.repository("multi/app");
    let sigs = registry.repository("multi/sigs");
    let scenario = demo::multi_arch().unwrap();
    push_split(&scenario, &app, &sigs).await;
    let Manifest::Index(index) = app.get_manifest(&scenario.image.to_string()).await.unwrap().unwrap().manifest else {
        panic!("the multi-arch scenario's image is an index")
    };
    let platforms: Vec<Digest> = index.manifests.iter().map(|m| m.digest.clone()).collect();
    let ed25519 = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/ed25519.pub.pem");
    let sigs_ref = format!("{}/multi/sigs", registry.host);
    let target = format!("{}/multi/app:1.0", registry.host);
    let args = |command: &str| -> Vec<String> {
        [
            command,
            "--plain-http",
            &target,
            "--key",
            ed25519.to_str().unwrap(),
            "--insecure-ignore-tlog",
            "-o",
            "json",
            "-q",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect()
    };
    let env = [("COSIGN_REPOSITORY", sigs_ref.as_str())];

    let r = run(&args("migrate"), &env);
    assert_eq!(r.code, 0, "{kind}: {}\n{}", r.stdout, r.stderr);
    let outcomes = crate::prune::image_outcomes(&r.json());
    assert_eq!(
        outcomes,
        vec![
            (scenario.image.to_string(), "migrated".to_owned()),
            (platforms[0].to_string(), "migrated".to_owned()),
            (platforms[1].to_string(), "nothing-to-migrate".to_owned()),
        ],
        "{kind}: {}",
        r.stdout
    );
    for d in [&scenario.image, &platforms[0]] {
        assert_eq!(listed(&registry, &sigs, d).await.len(), 1, "{kind}: {d}: one referrer in sigs");
        assert_eq!(listed(&registry, &app, d).await, Vec::<Digest>::new(), "{kind}: {d}: none in app");
    }
    assert_eq!(app.list_tags().await.unwrap(), ["1.0"], "{kind}");

    let r = run(&args("verify"), &env);
    assert_eq!(r.code, 0, "{kind}: {}", r.stderr);
    let r = run(&args("prune").into_iter().chain(["--apply".to_owned()]).collect::<Vec<_>>(), &env);
    assert_eq!(r.code, 0, "{kind}: {}\n{}", r.stdout, r.stderr);
    for d in [&scenario.image, &platforms[0]] {
        assert!(sigs.head_manifest(&d.cosign_tag("att")).await.unwrap().is_none(), "{kind}: {d}: .att pruned");
    }
    assert!(sigs.head_manifest(&scenario.image.cosign_tag("sig")).await.unwrap().is_some(), "{kind}: .sig kept");
}

#[tokio::test]
async fn an_index_and_its_platforms_on_distribution() {
    an_index_and_its_platforms(TestRegistry::distribution()).await;
}

#[tokio::test]
async fn an_index_and_its_platforms_on_ferro() {
    an_index_and_its_platforms(TestRegistry::ferro()).await;
}

/// Every request the proxy saw, as (method, path without query).
fn seen(proxy: &FaultProxy) -> Vec<(String, String)> {
    proxy
        .log()
        .iter()
        .filter_map(|line| {
            let mut words = line.split_whitespace().skip(1);
            let (method, path) = (words.next()?, words.next()?);
            Some((method.to_owned(), path.split('?').next()?.to_owned()))
        })
        .collect()
}

/// (repository, image, outcome) of each image of a migrate report, sorted.
fn rows(report: &Value) -> Vec<(String, String, String)> {
    let mut rows: Vec<_> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap().to_owned();
            (s("repository"), s("image"), s("outcome"))
        })
        .collect();
    rows.sort();
    rows
}

/// Several image repositories sharing one attachments repository, on distribution behind a counting
/// proxy: each repository works on its own images only (no `not-in-image-repository` row per other
/// repository's image, no look-up of another repository's image), the attachments repository is listed
/// once as such, and an image no repository of the run tags is reported once and left alone.
#[tokio::test]
async fn repositories_sharing_an_attachments_repository_each_take_their_own_images() {
    let registry = TestRegistry::distribution();
    let proxy = FaultProxy::counting(&registry.host);
    let sigs = registry.repository("shared/sigs");
    let mut images = Vec::new();
    for (i, name) in ["shared/a", "shared/b", "shared/c"].into_iter().enumerate() {
        let mut scenario = demo::article_like_numbered(&format!("registry.test/{name}"), i as u32 + 1, 600).unwrap();
        if name == "shared/c" {
            // Pushed by digest only: no tag of the run's repositories names it.
            let image = scenario.image.clone();
            scenario.repo.manifests.iter_mut().filter(|m| m.digest == image).for_each(|m| m.tags.clear());
        }
        scenario.push_split(&registry.repository(name), &sigs).await.unwrap();
        images.push((format!("{}/{name}", proxy.host), scenario.image));
    }
    // c's one tag names an image whose attachments are kept elsewhere (distribution lists no tags of a
    // repository without any).
    let other = demo::article_like_numbered("registry.test/shared/c", 5, 600).unwrap();
    other.push_split(&registry.repository("shared/c"), &registry.repository("shared/elsewhere")).await.unwrap();
    // The attachments repository's own image, its .att beside it.
    let own = demo::article_like_numbered("registry.test/shared/sigs", 4, 600).unwrap();
    own.repo.push_to(&sigs).await.unwrap();
    let sigs_ref = format!("{}/shared/sigs", proxy.host);
    let (a, b, c) = (&images[0], &images[1], &images[2]);
    // `COMMAND ARGS…` with the attachments in sigs, a JSON report.
    let shared_run = |args: &[&str]| {
        let tail = ["--plain-http", "--attachments-repository", sigs_ref.as_str(), "-o", "json", "-q"];
        run(&with_key(&[args, &tail[..]].concat()), &[])
    };

    let r = shared_run(&["migrate", "--all-repos", &proxy.host, "--jobs", "4"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let report = r.json();
    assert_valid("migrate-report.schema.json", &report);
    let row = |(repo, image): &(String, Digest)| (repo.clone(), image.to_string(), "migrated".to_owned());
    let mut expected = vec![row(a), row(b), row(&(sigs_ref.clone(), own.image.clone()))];
    expected.sort();
    assert_eq!(rows(&report), expected, "one row per image, in its own repository: {}", r.stdout);
    let unclaimed = serde_json::json!([{ "image": c.1.to_string(), "tags": [c.1.cosign_tag("att")] }]);
    assert_eq!(report["unclaimed_attachments"], unclaimed);
    assert!(
        r.stderr.contains(&format!("warning: 1 image(s) with attachments in {sigs_ref} are tagged or named by no")),
        "{}",
        r.stderr
    );

    let requests = seen(&proxy);
    // Listed once for the run's attachments, once as the image repository it also is.
    let sigs_listings = requests.iter().filter(|(m, p)| m == "GET" && p == "/v2/shared/sigs/tags/list").count();
    assert_eq!(sigs_listings, 2, "{requests:#?}");
    // No repository was asked for another repository's image.
    for (repo, _) in [a, b, c] {
        let path = repo.trim_start_matches(&format!("{}/", proxy.host));
        for (_, other) in images.iter().filter(|(r, _)| r != repo) {
            let asked = format!("/v2/{path}/manifests/{other}");
            assert!(!requests.iter().any(|(_, p)| *p == asked), "{asked} was requested");
        }
    }
    // The untagged image was left alone: nothing written for it.
    assert!(sigs.head_manifest(&c.1.referrers_tag()).await.unwrap().is_none());
    assert!(!requests.iter().any(|(m, p)| m == "PUT" && p.ends_with(&c.1.referrers_tag())));

    // Named by digest, it is its repository's; what the run covers no more is reported instead.
    let named = format!("{}@{}", c.0, c.1);
    let r = shared_run(&["migrate", &a.0, &named]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let report = r.json();
    let mut expected = vec![
        (a.0.clone(), a.1.to_string(), "already-migrated".to_owned()),
        (c.0.clone(), c.1.to_string(), "migrated".to_owned()),
    ];
    expected.sort();
    assert_eq!(rows(&report), expected, "{}", r.stdout);
    let mut left: Vec<&str> =
        report["unclaimed_attachments"].as_array().unwrap().iter().map(|u| u["image"].as_str().unwrap()).collect();
    left.sort();
    let mut expected = vec![b.1.to_string(), own.image.to_string()];
    expected.sort();
    assert_eq!(left, expected);

    // prune over the registry: each repository's items are about its own images only.
    let r = shared_run(&["prune", "--all-repos", &proxy.host]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let report = r.json();
    assert_valid("prune-report.schema.json", &report);
    let items = report["items"].as_array().unwrap();
    let mine = |repo: &str, subject: &str| {
        (repo == a.0 && subject == a.1.to_string())
            || (repo == b.0 && subject == b.1.to_string())
            || (repo == sigs_ref && subject == own.image.to_string())
    };
    assert!(!items.is_empty(), "{}", r.stdout);
    for item in items {
        let (repo, subject) = (item["repository"].as_str().unwrap(), item["subject"].as_str().unwrap_or(""));
        assert!(mine(repo, subject), "an item about another repository's image: {item}");
    }
    // c's image, untagged, is the only one left over: migrated, but tagged by no repository.
    let left: Vec<&str> =
        report["unclaimed_attachments"].as_array().unwrap().iter().map(|u| u["image"].as_str().unwrap()).collect();
    assert_eq!(left, [c.1.to_string()], "{}", r.stdout);

    // The shared-digest guard reads every tag of sigs. The repositories planned from one read of it (c's
    // .att is HEADed by nothing else: no repository of the run claims c's image); each repository that
    // deletes takes a read of it that began after it asked, before acting.
    let c_att = format!("/v2/shared/sigs/manifests/{}", c.1.cosign_tag("att"));
    let heads_of_c_att = || seen(&proxy).iter().filter(|(m, p)| m == "HEAD" && *p == c_att).count();
    let deleting = |report: &Value, status: &str| {
        let items = report["items"].as_array().unwrap();
        let repos: std::collections::BTreeSet<&str> =
            items.iter().filter(|i| i["status"] == status).map(|i| i["repository"].as_str().unwrap()).collect();
        repos.len()
    };
    let planning = deleting(&report, "planned");
    assert_eq!(planning, 3, "a, b and sigs each plan deletes: {}", r.stdout);
    // Each image tag of a repository is asked for once per plan: the listing asks what it holds to find
    // the repository's images, and the plan's resolution of every tag takes that answer.
    let own_tags: Vec<String> = registry.repository("shared/a").list_tags().await.unwrap();
    let own_tags: Vec<String> = own_tags.into_iter().filter(|t| !is_attachment_tag(t)).collect();
    assert!(!own_tags.is_empty());
    let heads_of_own_tags = || -> Vec<usize> {
        let log = seen(&proxy);
        let path = |t: &String| format!("/v2/shared/a/manifests/{t}");
        own_tags.iter().map(|t| log.iter().filter(|(m, p)| m == "HEAD" && *p == path(t)).count()).collect()
    };
    let (before, own_before) = (heads_of_c_att(), heads_of_own_tags());
    let r = shared_run(&["prune", "--all-repos", &proxy.host]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(deleting(&r.json(), "planned"), planning);
    assert_eq!(heads_of_c_att() - before, 1, "one read for the plans of {planning} repositories");
    let asked: Vec<usize> = heads_of_own_tags().iter().zip(&own_before).map(|(after, before)| after - before).collect();
    assert_eq!(asked, vec![1; own_tags.len()], "each of {own_tags:?} asked for once");
    // With that tag slow to read and one job: the first repository to plan deletes reads sigs for the
    // plans, asks for a read before deleting and, while that read runs, gives its place back, so the
    // other repositories of the catalog (five) plan one after another and the two others that delete
    // ask for theirs while it runs. A read under way when one asks is never its own: they share the next.
    // Three reads in all. Repositories that kept their place while waiting would delete one after
    // another, each with its own read: four. (Each caller getting a read begun after it asked is
    // `store::attachments::fresh`'s tests; the pool's places are `batch`'s.)
    let before = heads_of_c_att();
    proxy.delay_request("HEAD", &c_att, std::time::Duration::from_secs(5));
    let r = shared_run(&["prune", "--all-repos", &proxy.host, "--apply", "--jobs", "1"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let acting = deleting(&r.json(), "removed");
    assert_eq!(acting, planning, "{}", r.stdout);
    let reads = heads_of_c_att() - before;
    assert_eq!(reads, 3, "one read for the plans, one for the first of the {acting} acting, one for the others");
    assert!(sigs.head_manifest(&c.1.cosign_tag("att")).await.unwrap().is_some(), "c's .att, unclaimed, stays");
}

/// The prune report's item for `tag`.
fn item_for(r: &Run, tag: &str) -> Value {
    let report = r.json();
    let found = report["items"].as_array().unwrap().iter().find(|i| i["tag"] == tag).cloned();
    found.unwrap_or_else(|| panic!("no item for {tag}: {}", r.stdout))
}

/// In a run that shares the attachments repository, each repository lists only its own images'
/// attachments, but a delete there drops every tag on the digest: the shared-digest guard must still
/// see the tags of the other repositories' images. Here image Y (in `b`) carries the very same `.att`
/// manifest as image X (in `a`), as `cosign attach attestation` of one envelope to both gives.
#[tokio::test]
async fn a_shared_run_keeps_a_legacy_manifest_another_repositorys_image_holds() {
    let registry = TestRegistry::distribution();
    let sigs = registry.repository("guard/sigs");
    let x = demo::article_like_numbered("registry.test/guard/a", 1, 600).unwrap();
    let y = demo::article_like_numbered("registry.test/guard/b", 2, 600).unwrap();
    x.push_split(&registry.repository("guard/a"), &sigs).await.unwrap();
    y.push_split(&registry.repository("guard/b"), &sigs).await.unwrap();
    let (x_att, y_att) = (x.image.cosign_tag("att"), y.image.cosign_tag("att"));
    let shared = sigs.get_manifest(&x_att).await.unwrap().unwrap();
    sigs.put_manifest(shared.bytes.clone(), &shared.media_type, Some(&y_att)).await.unwrap();
    assert_eq!(sigs.head_manifest(&y_att).await.unwrap().unwrap().digest, shared.digest);

    let sigs_ref = format!("{}/guard/sigs", registry.host);
    let a = format!("{}/guard/a", registry.host);
    let r = run(
        &with_key(&["migrate", "--plain-http", &a, "--attachments-repository", &sigs_ref, "-o", "json", "-q"]),
        &[],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(rows(&r.json()).contains(&(a.clone(), x.image.to_string(), "migrated".to_owned())), "{}", r.stdout);

    // A tag of sigs that cannot be resolved when the guard reads them all: the delete is not planned
    // (nothing shows that no other tag needs the digest); the rest of the plan stands.
    let own = demo::article_like_numbered("registry.test/guard/sigs", 4, 600).unwrap();
    own.repo.push_to(&sigs).await.unwrap();
    let proxy = FaultProxy::start(&registry.host, None);
    proxy.fault_next("HEAD", "/v2/guard/sigs/manifests/v4", Fault::LostBehind(403));
    let [pa, pb, psigs] = ["a", "b", "sigs"].map(|r| format!("{}/guard/{r}", proxy.host));
    let r = run(
        &with_key(&["prune", "--plain-http", &pa, &pb, "--attachments-repository", &psigs, "-o", "json", "-q"]),
        &[],
    );
    assert_eq!(proxy.injected().values().sum::<u64>(), 1, "the fault was met");
    let item = item_for(&r, &x_att);
    assert_eq!(item["status"], "could-not-check", "{item}");
    assert!(item["reasons"].to_string().contains("could not check whether other tags hold it"), "{item}");

    let args = ["prune", "--plain-http", "--all-repos", &registry.host, "--attachments-repository", &sigs_ref];
    let r = run(&with_key(&[&args[..], &["--apply", "-o", "json", "-q"]].concat()), &[]);
    let item = item_for(&r, &x_att);
    assert_eq!(item["status"], "kept", "{item}");
    let reasons = item["reasons"].to_string();
    assert!(reasons.contains("other tag(s) hold the same manifest digest") && reasons.contains(&y_att), "{item}");
    for tag in [&x_att, &y_att] {
        assert_eq!(sigs.head_manifest(tag).await.unwrap().map(|d| d.digest), Some(shared.digest.clone()), "{tag}");
    }
}

/// An image tagged in two repositories sharing one attachments repository is the first one's, in
/// catalog order, in every run, even with several jobs and the first repository's tag slow to resolve:
/// the listings that claim the images their tags name are not read at once. (Today a sharing listing's
/// first page, the one read ahead, names only the images targets named by digest, so this also holds
/// for a batch that did list such repositories at once; it fails if a first page ever claims tags.)
#[tokio::test]
async fn an_image_tagged_in_two_repositories_is_the_first_ones_whatever_the_timing() {
    let registry = TestRegistry::distribution();
    let proxy = FaultProxy::counting(&registry.host);
    let sigs = registry.repository("promo/sigs");
    let scenario = demo::article_like_numbered("registry.test/promo/a", 1, 600).unwrap();
    scenario.push_split(&registry.repository("promo/a"), &sigs).await.unwrap();
    scenario.push_split(&registry.repository("promo/b"), &sigs).await.unwrap();
    proxy.delay_request("HEAD", "/v2/promo/a/manifests/v1", std::time::Duration::from_millis(400));
    let sigs_ref = format!("{}/promo/sigs", proxy.host);
    let args = with_key(&[
        "migrate",
        "--all-repos",
        &proxy.host,
        "--jobs",
        "4",
        "--plain-http",
        "--attachments-repository",
        &sigs_ref,
        "-o",
        "json",
        "-q",
    ]);
    let r = run(&args, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let expected = vec![(format!("{}/promo/a", proxy.host), scenario.image.to_string(), "migrated".to_owned())];
    assert_eq!(rows(&r.json()), expected, "{}", r.stdout);
}

/// An image tagged in two repositories that share an attachments repository has one set of referrers
/// there: only the repository that took the image plans removals among them. Before, each repository
/// found the same duplicate and both deleted it at once (one of them failing on a 404, or putting back an
/// index entry for a referrer the other had just deleted).
#[tokio::test]
async fn a_duplicate_among_shared_attachments_is_planned_by_one_repository() {
    let registry = TestRegistry::distribution();
    let sigs = registry.repository("dup/sigs");
    let scenario = demo::article_like_numbered("registry.test/dup/a", 1, 600).unwrap();
    scenario.push_split(&registry.repository("dup/a"), &sigs).await.unwrap();
    scenario.push_split(&registry.repository("dup/b"), &sigs).await.unwrap();
    let sigs_ref = format!("{}/dup/sigs", registry.host);
    let shared = |command: &str, extra: &[&str]| {
        let mut args = vec![command, "--all-repos", &registry.host, "--jobs", "4", "--plain-http"];
        args.extend(["--attachments-repository", &sigs_ref, "-o", "json", "-q"]);
        args.extend(extra);
        run(&with_key(&args), &[])
    };
    let r = shared("migrate", &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let copy = crate::prune::add_copy(&registry, &sigs, &scenario.image, |copy| {
        copy.annotations.insert("example.test/copy".into(), "1".into());
    })
    .await;

    let r = shared("prune", &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let report = r.json();
    let planned: Vec<&Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "duplicate-referrer" && i["status"] == "planned")
        .collect();
    assert_eq!(planned.len(), 1, "{report:#}");
    assert_eq!(planned[0]["digest"], copy.to_string(), "{report:#}");

    let r = shared("prune", &["--apply"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(crate::prune::count(&r.json(), "duplicate-referrer", "removed"), 1, "{}", r.stdout);
    assert!(sigs.get_manifest(&copy.to_string()).await.unwrap().is_none());
}
