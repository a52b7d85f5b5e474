//! Credentials end to end against a real registry that requires basic auth (distribution + htpasswd):
//! `--username/--password-stdin`, `--authfile`, `$DOCKER_CONFIG`, and secrets never in the logs.

use att2ref::store::registry::Credential;
use base64::Engine as _;

use crate::cli::att2ref_with;
use crate::registries::{TEST_PASSWORD, TEST_USER, TestRegistry};

async fn registry_with_demo_store() -> (TestRegistry, String) {
    let registry = TestRegistry::distribution_with_basic_auth();
    let client = registry.client_with(|c| {
        c.explicit_credentials = std::collections::BTreeMap::from([(
            registry.host.clone(),
            Credential::Basic { username: TEST_USER.into(), password: TEST_PASSWORD.into() },
        )])
    });
    let scenario = att2ref::demo::demo().unwrap();
    scenario.repo.push_to(&client.repository(&registry.host, "private/app")).await.unwrap();
    let image = format!("{}/private/app@{}", registry.host, scenario.image);
    (registry, image)
}

fn docker_config(host: &str, password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{TEST_USER}:{password}"));
    format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#)
}

#[tokio::test]
async fn anonymous_access_is_refused_with_a_clear_error() {
    let (_registry, image) = registry_with_demo_store().await;
    let run = att2ref_with(&["inspect", "--plain-http", &image, "-o", "json"], None, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.json()["errors"][0]["errorKind"], "unauthorized");
    assert!(run.stderr.contains(&image), "{}", run.stderr);
}

#[tokio::test]
async fn password_from_stdin_works_and_never_appears_in_logs() {
    let (_registry, image) = registry_with_demo_store().await;
    let run = att2ref_with(
        &["inspect", "-vvv", "--plain-http", &image, "-u", TEST_USER, "--password-stdin", "-o", "json"],
        Some(&format!("{TEST_PASSWORD}\n")),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["images"][0]["legacy"]["attestations"]["layers"].as_array().unwrap().len(), 2);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{TEST_USER}:{TEST_PASSWORD}"));
    for secret in [TEST_PASSWORD, basic.as_str()] {
        assert!(
            !run.stderr.contains(secret) && !run.stdout.contains(secret),
            "a credential leaked into the output at trace level"
        );
    }
    assert!(run.stderr.len() > 100, "trace logging was on, so requests were logged: {}", run.stderr);

    let wrong =
        att2ref_with(&["inspect", "--plain-http", &image, "-u", TEST_USER, "--password-stdin"], Some("nope\n"), &[]);
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(!wrong.stderr.contains("nope"), "{}", wrong.stderr);
}

#[tokio::test]
async fn credentials_from_docker_config_files() {
    let (registry, image) = registry_with_demo_store().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), docker_config(&registry.host, TEST_PASSWORD)).unwrap();

    let run =
        att2ref_with(&["inspect", "--plain-http", &image], None, &[("DOCKER_CONFIG", dir.path().to_str().unwrap())]);
    assert_eq!(run.code, 0, "$DOCKER_CONFIG: {}", run.stderr);

    let authfile = dir.path().join("auth.json");
    std::fs::write(&authfile, docker_config(&registry.host, TEST_PASSWORD)).unwrap();
    let run = att2ref_with(&["inspect", "--plain-http", &image, "--authfile", authfile.to_str().unwrap()], None, &[]);
    assert_eq!(run.code, 0, "--authfile: {}", run.stderr);

    let run =
        att2ref_with(&["inspect", "--plain-http", &image], None, &[("REGISTRY_AUTH_FILE", authfile.to_str().unwrap())]);
    assert_eq!(run.code, 0, "$REGISTRY_AUTH_FILE: {}", run.stderr);
}

/// A second registry that asks for a bearer token from its own realm, recording every token request:
/// whatever `-u` meant for another registry must never reach it.
async fn token_registry() -> (wiremock::MockServer, String) {
    use wiremock::matchers::{method, path, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let realm = format!("{}/token", server.uri());
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({ "token": "anonymous", "expires_in": 300 })),
        )
        .mount(&server)
        .await;
    Mock::given(path_regex("^/v2/.*"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "WWW-Authenticate",
            format!(r#"Bearer realm="{realm}",service="other",scope="repository:app:pull""#).as_str(),
        ))
        .mount(&server)
        .await;
    let host = server.uri().trim_start_matches("http://").to_owned();
    (server, host)
}

/// `-u` over targets on two registries: refused until `--credentials-for` says which one it logs in to;
/// then the password goes to that registry only, never to the other's token service.
#[tokio::test]
async fn a_password_from_stdin_goes_to_one_registry_only() {
    let (registry, image) = registry_with_demo_store().await;
    let (other, other_host) = token_registry().await;
    let elsewhere = format!("{other_host}/app:v1");

    let run = att2ref_with(
        &["status", "--plain-http", &image, &elsewhere, "-u", TEST_USER, "--password-stdin", "-o", "json"],
        Some(&format!("{TEST_PASSWORD}\n")),
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--credentials-for")
            && run.stderr.contains(&registry.host)
            && run.stderr.contains(&other_host),
        "{}",
        run.stderr
    );
    assert!(other.received_requests().await.unwrap().is_empty(), "nothing was asked before the usage error");

    let run = att2ref_with(
        &[
            "status",
            "--plain-http",
            &image,
            &elsewhere,
            "-u",
            TEST_USER,
            "--password-stdin",
            "--credentials-for",
            &registry.host,
            "-o",
            "json",
        ],
        Some(&format!("{TEST_PASSWORD}\n")),
        &[],
    );
    // The other registry's image does not exist (its every answer is 401): exit 2, while the image of the
    // registry the password was for was read.
    assert_eq!(run.code, 2, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["images"].as_array().map(Vec::len), Some(1), "{report:#}");
    assert_eq!(report["images"][0]["state"], "legacy-only", "{report:#}");
    let requests = other.received_requests().await.unwrap();
    let token_requests: Vec<_> = requests.iter().filter(|r| r.url.path() == "/token").collect();
    assert!(!token_requests.is_empty(), "the other registry's token service was asked: {requests:#?}");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{TEST_USER}:{TEST_PASSWORD}"));
    for r in &requests {
        let sent = r.headers.get("authorization").map(|v| v.to_str().unwrap_or("").to_owned()).unwrap_or_default();
        assert!(!sent.contains(&basic), "the password reached {} {}", r.method, r.url);
    }
}

/// A credential helper's tokens expire (ECR's after 12 hours, Artifact Registry's after one): a run that
/// outlives one must ask the helper again when the registry refuses it, not fail every repository after.
/// Emulated: a helper that hands out a stale password the first time and the current one after.
#[tokio::test]
async fn a_credential_helper_is_asked_again_when_its_credential_is_refused() {
    let (registry, image) = registry_with_demo_store().await;
    let (dir, calls) = expiring_helper(&registry.host);
    let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap_or_default());
    let run = att2ref_with(
        &["inspect", "--plain-http", &image, "-o", "json"],
        None,
        &[("DOCKER_CONFIG", dir.path().to_str().unwrap()), ("PATH", &path)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["images"][0]["legacy"]["attestations"]["layers"].as_array().unwrap().len(), 2);
    assert_eq!(std::fs::read_to_string(&calls).unwrap().trim(), "2", "the helper was asked once more");
    assert!(!run.stderr.contains("expired") && !run.stdout.contains(TEST_PASSWORD));
}

/// A directory holding `config.json` that names a credential helper for `host`, and the helper, which
/// answers an expired password on its first call and the current one after; and the file counting its
/// calls. Put the directory first on `PATH` and in `DOCKER_CONFIG`.
fn expiring_helper(host: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls");
    let helper = dir.path().join("docker-credential-att2ref-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n\
             read server\n\
             n=$(cat '{calls}' 2>/dev/null || echo 0); n=$((n + 1)); echo $n > '{calls}'\n\
             if [ $n -eq 1 ]; then secret=expired; else secret='{TEST_PASSWORD}'; fi\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{TEST_USER}\",\"Secret\":\"%s\"}}' \"$server\" \"$secret\"\n",
            calls = calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.path().join("config.json"), format!(r#"{{"credHelpers":{{"{host}":"att2ref-test"}}}}"#))
        .unwrap();
    (dir, calls)
}

/// The same behind a token service (GHCR, Artifact Registry, Quay…): the service refuses the expired
/// credential, the helper is asked again, and the token it then gives opens the repository.
#[tokio::test]
async fn a_token_service_refusing_a_helper_credential_gets_a_fresh_one() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let host = server.uri().trim_start_matches("http://").to_owned();
    let realm = format!("{}/token", server.uri());
    let fresh = base64::engine::general_purpose::STANDARD.encode(format!("{TEST_USER}:{TEST_PASSWORD}"));
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(header("authorization", format!("Basic {fresh}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "token": "granted" })))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/token")).respond_with(ResponseTemplate::new(401)).with_priority(2).mount(&server).await;
    Mock::given(path("/v2/app/tags/list"))
        .and(header("authorization", "Bearer granted"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "name": "app", "tags": [] })))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::path_regex("^/v2/.*"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("WWW-Authenticate", format!(r#"Bearer realm="{realm}",service="test""#).as_str()),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    status_through_an_expiring_helper(&host);
    let tokens = server.received_requests().await.unwrap().iter().filter(|r| r.url.path() == "/token").count();
    assert_eq!(tokens, 2, "one refused, one granted");
}

/// ECR answers an expired Basic credential (its helper's token lasts 12 hours) with 403 `DENIED` "Your
/// authorization token has expired", not with a new challenge (awslabs/amazon-ecr-credential-helper#7):
/// the helper is asked again on that answer too.
#[tokio::test]
async fn an_expired_basic_credential_refused_with_403_is_renewed() {
    use wiremock::matchers::{header, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let host = server.uri().trim_start_matches("http://").to_owned();
    let fresh = base64::engine::general_purpose::STANDARD.encode(format!("{TEST_USER}:{TEST_PASSWORD}"));
    let expired = base64::engine::general_purpose::STANDARD.encode(format!("{TEST_USER}:expired"));
    Mock::given(path("/v2/app/tags/list"))
        .and(header("authorization", format!("Basic {fresh}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "name": "app", "tags": [] })))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::path_regex("^/v2/.*"))
        .and(header("authorization", format!("Basic {expired}").as_str()))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({
            "errors": [{ "code": "DENIED", "message": "Your authorization token has expired. Reauthenticate and try again." }]
        })))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::path_regex("^/v2/.*"))
        .respond_with(ResponseTemplate::new(401).insert_header("WWW-Authenticate", r#"Basic realm="ecr""#))
        .with_priority(3)
        .mount(&server)
        .await;
    status_through_an_expiring_helper(&host);
    let denied = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.headers.get("authorization").is_some_and(|v| v.to_str().unwrap_or("").contains(&expired)))
        .count();
    assert_eq!(denied, 1, "the expired credential was sent once");
}

/// `-u` with an attachments repository on another registry is ambiguous as targets on two are; a
/// `--credentials-for` naming no registry of the run would send the password nowhere. Both stop the run
/// before any request (the hosts here answer nothing).
#[test]
fn the_registry_a_password_is_for_must_be_one_of_the_run() {
    let password = Some("test-only\n");
    let base = ["status", "--plain-http", "127.0.0.1:9/app", "-u", TEST_USER, "--password-stdin"];
    let mut args = base.to_vec();
    args.extend(["--attachments-repository", "127.0.0.2:9/sigs"]);
    let run = att2ref_with(&args, password, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("127.0.0.1:9, 127.0.0.2:9") && run.stderr.contains("--credentials-for"),
        "{}",
        run.stderr
    );

    let mut args = base.to_vec();
    args.extend(["--credentials-for", "127.0.0.3:9"]);
    let run = att2ref_with(&args, password, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--credentials-for 127.0.0.3:9") && run.stderr.contains("127.0.0.1:9"),
        "{}",
        run.stderr
    );

    // Docker Hub under two of its names is one registry, and a scheme is not part of a registry's name.
    // (Through a proxy that answers nothing: each run gets as far as its first request, and no further.)
    let hub = ["status", "docker.io/library/x", "index.docker.io/library/y", "-u", TEST_USER, "--password-stdin"];
    let quick = ["--timeout", "1", "--retries", "1"];
    for extra in [&[][..], &["--credentials-for", "https://registry-1.docker.io"][..]] {
        let args: Vec<&str> = hub.iter().chain(&quick).chain(extra).copied().collect();
        let run = att2ref_with(&args, password, &[("HTTPS_PROXY", "http://127.0.0.1:9")]);
        assert!(!run.stderr.contains("--credentials-for"), "{extra:?}: {}", run.stderr);
        assert!(run.stderr.contains("listing tags of registry-1.docker.io/library/x"), "{extra:?}: {}", run.stderr);
    }

    // A run that reaches no registry has nothing to log in to: `-u` there is a mistake, said as one.
    let dir = tempfile::tempdir().unwrap();
    let layout = format!("ocidir://{}", dir.path().display());
    let run = att2ref_with(&["status", &layout, "-u", TEST_USER, "--password-stdin"], password, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("no target"), "{}", run.stderr);
}

/// `status HOST/app` with credentials from [`expiring_helper`], which must succeed with the helper asked
/// exactly twice.
fn status_through_an_expiring_helper(host: &str) {
    let (dir, calls) = expiring_helper(host);
    let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap_or_default());
    let run = att2ref_with(
        &["status", "--plain-http", &format!("{host}/app"), "-o", "json"],
        None,
        &[("DOCKER_CONFIG", dir.path().to_str().unwrap()), ("PATH", &path)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&calls).unwrap().trim(), "2", "the helper was asked once more");
}
