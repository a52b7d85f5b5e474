//! The library's target resolution (`att2ref::targets`): the catalog is streamed page by page (work
//! starts before the listing is complete), shards split it, a failed page is an error after what was
//! already yielded, and image targets resolve tags against a real registry.

use att2ref::store::Repository;
use att2ref::targets::{self, Shard, TargetOptions};
use futures_util::StreamExt;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::registries::TestRegistry;
use crate::registry_client::mock_client;

/// A catalog of three pages (`a0..a2`, `b0..b2`, `c0..c2`) linked with `Link` headers; the third page
/// answers `third` instead when given.
async fn paged_catalog(third: Option<ResponseTemplate>) -> MockServer {
    let server = MockServer::start().await;
    let page = |names: &[&str], next: Option<&str>| {
        let mut t = ResponseTemplate::new(200).set_body_json(serde_json::json!({ "repositories": names }));
        if let Some(next) = next {
            t = t.insert_header("Link", format!("<{next}>; rel=\"next\"").as_str());
        }
        t
    };
    Mock::given(method("GET"))
        .and(path("/v2/_catalog"))
        .and(query_param("n", "1000"))
        .respond_with(page(&["a0", "a1", "a2"], Some("/v2/_catalog?last=a2&n=1000")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/_catalog"))
        .and(query_param("last", "a2"))
        .respond_with(page(&["b0", "b1", "b2"], Some("/v2/_catalog?last=b2&n=1000")))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/_catalog"))
        .and(query_param("last", "b2"))
        .respond_with(third.unwrap_or_else(|| page(&["c0", "c1", "c2"], None)))
        .with_priority(1)
        .mount(&server)
        .await;
    server
}

async fn catalog_requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().iter().filter(|r| r.url.path() == "/v2/_catalog").count()
}

#[tokio::test]
async fn the_catalog_is_streamed_page_by_page() {
    let server = paged_catalog(None).await;
    let client = mock_client(|_| {});
    let host = server.address().to_string();
    let given = vec![host.clone()];
    let options = TargetOptions { all_repos: true, ..TargetOptions::default() };
    let mut stream = std::pin::pin!(targets::resolve(&given, &options, &client));

    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.repository_name(), format!("{host}/a0"));
    assert_eq!(first.target, host);
    assert!(first.images.is_none());
    assert_eq!(catalog_requests(&server).await, 1, "the first repository comes before the second page is asked for");

    let mut rest = Vec::new();
    while let Some(next) = stream.next().await {
        rest.push(next.unwrap().repository_name());
    }
    let expected: Vec<String> =
        ["a1", "a2", "b0", "b1", "b2", "c0", "c1", "c2"].iter().map(|n| format!("{host}/{n}")).collect();
    assert_eq!(rest, expected);
    assert_eq!(catalog_requests(&server).await, 3);
}

#[tokio::test]
async fn shards_split_the_catalog_exactly() {
    let server = paged_catalog(None).await;
    let client = mock_client(|_| {});
    let host = server.address().to_string();
    let given = vec![host.clone()];
    let all: Vec<&str> = vec!["a0", "a1", "a2", "b0", "b1", "b2", "c0", "c1", "c2"];
    let mut seen = Vec::new();
    for index in 0..3 {
        let options =
            TargetOptions { all_repos: true, shard: Some(Shard::new(index, 3).unwrap()), ..Default::default() };
        let got: Vec<String> = targets::resolve(&given, &options, &client)
            .map(|t| t.unwrap().repo.name().trim_start_matches(&format!("{host}/")).to_owned())
            .collect()
            .await;
        let expected: Vec<String> = all.iter().filter(|n| Shard::of(n, 3) == index).map(|n| (*n).to_owned()).collect();
        assert_eq!(got, expected, "shard {index}");
        seen.extend(got);
    }
    seen.sort();
    assert_eq!(seen, all, "every repository in exactly one shard");
}

#[tokio::test]
async fn a_failed_page_is_an_error_after_the_repositories_already_listed() {
    let refused = ResponseTemplate::new(403)
        .set_body_raw(r#"{"errors":[{"code":"DENIED","message":"denied"}]}"#, "application/json");
    let server = paged_catalog(Some(refused)).await;
    let client = mock_client(|_| {});
    let host = server.address().to_string();
    let given = vec![host.clone(), "not a reference!".to_owned()];
    let options = TargetOptions { all_repos: true, ..TargetOptions::default() };
    let results: Vec<_> = targets::resolve(&given, &options, &client).collect().await;
    assert_eq!(results.len(), 8, "six repositories, the failed page, the bad host");
    assert!(results[..6].iter().all(Result::is_ok));
    let page_error = results[6].as_ref().unwrap_err();
    assert_eq!(page_error.target, host);
    assert_eq!(page_error.error_kind, "unauthorized", "{page_error:?}");
    assert!(page_error.message.contains("catalog"), "{page_error:?}");
    let bad = results[7].as_ref().unwrap_err();
    assert_eq!(bad.target, "not a reference!");
    assert_eq!(bad.error_kind, "invalid-input", "{bad:?}");
}

#[tokio::test]
async fn image_targets_resolve_tags_on_a_real_registry() {
    let registry = TestRegistry::distribution();
    let scenario = att2ref::demo::demo().unwrap();
    let repo = registry.repository("targets/app");
    scenario.repo.push_to(&repo).await.unwrap();
    let tag = scenario.repo.tags().into_iter().find(|t| !t.starts_with("sha256-")).unwrap().to_owned();
    let client = registry.client();
    let given = vec![
        format!("{}/targets/app:{tag}", registry.host),
        format!("{}/targets/app@{}", registry.host, scenario.image),
        format!("{}/targets/app", registry.host),
        format!("{}/targets/app:no-such-tag", registry.host),
    ];
    let results: Vec<_> = targets::resolve(&given, &TargetOptions::default(), &client).collect().await;
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].as_ref().unwrap().images, Some(vec![scenario.image.clone()]), "the tag, resolved");
    assert_eq!(results[1].as_ref().unwrap().images, Some(vec![scenario.image.clone()]));
    assert_eq!(results[2].as_ref().unwrap().images, None, "the whole repository");
    let missing = results[3].as_ref().unwrap_err();
    assert_eq!(missing.error_kind, "not-found");
    assert!(missing.message.contains("no-such-tag"), "{missing:?}");
    assert!(repo.head_manifest(&tag).await.unwrap().is_some());
}

/// `migrate REPO:tag` of an image index covers the index and each platform manifest (each image still
/// all or nothing), and so does `prune`: the `.att` of the amd64 manifest is migrated and pruned too.
#[tokio::test]
async fn an_index_target_covers_its_platform_manifests() {
    use att2ref::model::oci::Manifest;

    let registry = TestRegistry::distribution();
    let scenario = att2ref::demo::multi_arch().unwrap();
    let repo = registry.repository("multi/app");
    scenario.repo.push_to(&repo).await.unwrap();
    let raw = repo.get_manifest(&scenario.image.to_string()).await.unwrap().unwrap();
    let Manifest::Index(index) = &raw.manifest else { panic!("the multi-arch scenario's image is an index") };
    let platforms: Vec<_> = index.manifests.iter().map(|m| m.digest.clone()).collect();
    assert_eq!(platforms.len(), 2);
    let with_att: Vec<_> = std::iter::once(&scenario.image)
        .chain(&platforms)
        .filter(|d| scenario.repo.manifest_by_tag(&d.cosign_tag("att")).is_some())
        .cloned()
        .collect();
    assert_eq!(with_att, vec![scenario.image.clone(), platforms[0].clone()], "the index and amd64 have a .att");

    let target = format!("{}/multi/app:1.0", registry.host);
    let ed25519 = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/ed25519.pub.pem");
    let key: &[&str] = &["--key", ed25519.to_str().unwrap()];
    let (run, report) = crate::prune::run_json("migrate", &target, key);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outcomes = crate::prune::image_outcomes(&report);
    assert_eq!(
        outcomes,
        vec![
            (scenario.image.to_string(), "migrated".to_owned()),
            (platforms[0].to_string(), "migrated".to_owned()),
            (platforms[1].to_string(), "nothing-to-migrate".to_owned()),
        ],
        "{report:#}"
    );
    for d in &with_att {
        assert_eq!(repo.referrers(d, None).await.unwrap().descriptors.len(), 1, "{d}: one referrer listed");
    }

    let (run, report) = crate::prune::run_json("prune", &target, &[key, &["--apply"]].concat());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(crate::prune::count(&report, "legacy-attestation", "removed"), 2, "{report:#}");
    for d in &with_att {
        assert!(repo.head_manifest(&d.cosign_tag("att")).await.unwrap().is_none(), "{d}: the .att is pruned");
    }
}

/// A registry that ignores `last` and serves page 1 again with a `Link`: the catalog cannot be
/// completed, and saying so is the only safe answer (a silently short catalog would let `prune
/// --delete-orphans` miss repositories, and `migrate --all-repos` skip them).
#[tokio::test]
async fn a_catalog_that_does_not_advance_is_an_error_not_a_short_list() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/_catalog"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({ "repositories": ["a0", "a1"] }))
                .insert_header("Link", "</v2/_catalog?last=a1&n=1000>; rel=\"next\""),
        )
        .mount(&server)
        .await;
    let client = mock_client(|_| {});
    let host = server.address().to_string();
    let err = client.catalog(&host).await.unwrap_err();
    assert_eq!(err.kind(), att2ref::ErrorKind::Registry, "{err:#}");
    assert!(err.to_string().contains("brings no new entry"), "{err:#}");

    let given = vec![host.clone()];
    let options = TargetOptions { all_repos: true, ..TargetOptions::default() };
    let results: Vec<_> = targets::resolve(&given, &options, &client).collect().await;
    assert_eq!(results.len(), 3, "two repositories, then the error");
    let e = results[2].as_ref().unwrap_err();
    assert_eq!(e.error_kind, "registry-error");
    assert!(e.message.contains("brings no new entry"), "{e:?}");
    assert_eq!(catalog_requests(&server).await, 4, "two pages each time");
}

/// Image targets are resolved a few at once, in order: a `--from-file` list of thousands of images
/// would otherwise feed the pool one manifest round trip at a time. Counted at a proxy that answers
/// every request 200 ms late.
#[tokio::test]
async fn image_targets_are_resolved_several_at_once_in_order() {
    let registry = TestRegistry::distribution();
    let scenario = att2ref::demo::demo().unwrap();
    let repo = registry.repository("targets/many");
    scenario.repo.push_to(&repo).await.unwrap();
    let image = repo.get_manifest(&scenario.image.to_string()).await.unwrap().expect("the image");
    for i in 0..8 {
        repo.put_manifest(image.bytes.clone(), &image.media_type, Some(&format!("t{i}"))).await.unwrap();
    }
    let proxy = crate::fault_proxy::FaultProxy::start(&registry.host, None);
    proxy.delay_every_request(std::time::Duration::from_millis(200));
    let client = registry.client_with(|c| {
        c.plain_http = att2ref::store::registry::PlainHttp::All;
    });
    let given: Vec<String> = (0..8).map(|i| format!("{}/targets/many:t{i}", proxy.host)).collect();
    let options = TargetOptions::default();
    let resolved: Vec<_> = targets::resolve(&given, &options, &client).collect().await;
    let names: Vec<String> = resolved.into_iter().map(|t| t.unwrap().target).collect();
    assert_eq!(names, given, "in the order given");
    assert_eq!(proxy.max_in_flight(), 8, "every tag read at once (8 ahead)");
}

/// distribution lists in its catalog a repository whose manifests were all pushed by digest, and answers
/// its tag listing `404 NAME_UNKNOWN`: over the catalog that is a repository without tags, not a failed
/// run; named by the caller, the same answer is still an error (a mistyped name looks the same).
#[tokio::test]
async fn a_catalog_repository_without_tags_is_empty_not_an_error() {
    let registry = TestRegistry::distribution();
    let scenario = att2ref::demo::demo().unwrap();
    scenario.repo.push_to(&registry.repository("cat/tagged")).await.unwrap();
    let untagged = registry.repository("cat/untagged");
    let mut by_digest = scenario.repo.clone();
    by_digest.manifests.retain(|m| m.digest == scenario.image);
    by_digest.manifests.iter_mut().for_each(|m| m.tags.clear());
    by_digest.push_to(&untagged).await.unwrap();
    let e = untagged.list_tags().await.unwrap_err();
    assert!(e.to_string().contains("NAME_UNKNOWN"), "{e}");
    // As a catalog entry it lists no tags; what guards a delete still takes the answer as an error.
    let listed = untagged.clone().from_catalog();
    assert_eq!(listed.list_tags().await.unwrap(), Vec::<String>::new());
    let e = listed.delete_side_tags().await.unwrap_err();
    assert!(e.to_string().contains("NAME_UNKNOWN"), "{e}");

    let key = crate::prune::rsa_key();
    let common = ["--plain-http", "--key", key.as_str(), "--insecure-ignore-tlog", "-o", "json", "-q"];
    let r = crate::cli::att2ref(&[&["migrate", "--all-repos", registry.host.as_str()], &common[..]].concat());
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let report = r.json();
    assert_eq!(report["errors"], serde_json::json!([]), "{}", r.stdout);
    let rows = crate::prune::repository_outcomes(&report);
    let tagged = format!("{}/cat/tagged", registry.host);
    assert_eq!(rows, [(tagged, "migrated".to_owned())]);
    let r = crate::cli::att2ref(&[&["prune", "--all-repos", registry.host.as_str()], &common[..]].concat());
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["errors"], serde_json::json!([]), "{}", r.stdout);

    let named = format!("{}/cat/untagged", registry.host);
    let r = crate::cli::att2ref(&[&["migrate", named.as_str()], &common[..]].concat());
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.json()["errors"][0]["message"].as_str().unwrap().contains("NAME_UNKNOWN"), "{}", r.stdout);
}

/// An empty catalog is said so on stderr (a registry may list only what the credentials can read, so a
/// run over it would otherwise end as if done), and exits 0: an empty registry is no error. A catalog
/// that lists something is not warned about.
#[tokio::test]
async fn an_empty_catalog_is_said_so() {
    let registry = TestRegistry::distribution();
    let key = crate::prune::rsa_key();
    let run = || {
        crate::cli::att2ref(&[
            "migrate",
            "--all-repos",
            registry.host.as_str(),
            "--plain-http",
            "--key",
            key.as_str(),
            "--insecure-ignore-tlog",
            "-o",
            "json",
        ])
    };
    let r = run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let warning = format!("the catalog of {} lists no repository", registry.host);
    assert!(r.stderr.contains(&warning), "{}", r.stderr);

    att2ref::demo::demo().unwrap().repo.push_to(&registry.repository("app")).await.unwrap();
    let r = run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(!r.stderr.contains("lists no repository"), "{}", r.stderr);
}
