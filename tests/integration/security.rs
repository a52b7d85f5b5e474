//! Security guarantees (docs/SECURITY.md), each proven end to end: TLS is verified unless the user says
//! otherwise, credentials never reach a log at any level, registry data cannot steer a write to another
//! host or repository, and every size cap can be set.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use att2ref::model::digest::Digest;
use att2ref::store::Repository;
use att2ref::store::registry::{ClientConfig, Credential, PlainHttp, RegistryClient, RegistryRepository};
use base64::Engine as _;
use bytes::Bytes;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::cli::{att2ref, att2ref_with};
use crate::registries::{DistributionConfig, TEST_PASSWORD, TEST_USER, TestRegistry};

fn rsa_key() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/rsa-4096.pub.pem").display().to_string()
}

/// A test CA and a certificate for 127.0.0.1 it issued, written as PEM files into `dir`.
/// Returns (ca.pem, server.pem, server.key).
fn test_pki(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "att2ref test CA (test-only)");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);

    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
    let server_cert = params.signed_by(&server_key, &issuer).unwrap();

    let (ca, cert, key) = (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    std::fs::write(&cert, server_cert.pem()).unwrap();
    std::fs::write(&key, server_key.serialize_pem()).unwrap();
    (ca, cert, key)
}

#[tokio::test]
async fn tls_is_verified_by_default_and_a_private_ca_can_be_trusted() {
    let pki = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_pki(pki.path());
    let registry =
        TestRegistry::distribution_with(DistributionConfig { tls: Some((cert, key)), ..DistributionConfig::default() });
    let ca_pem = std::fs::read(&ca).unwrap();
    let client = registry.client_with(|c| {
        c.plain_http = PlainHttp::Never;
        c.ca_certificates = vec![ca_pem];
    });
    let scenario = att2ref::demo::demo().unwrap();
    scenario.repo.push_to(&client.repository(&registry.host, "tls/app")).await.unwrap();
    let image = format!("{}/tls/app@{}", registry.host, scenario.image);

    // No flag: the certificate is checked against the system roots and refused.
    let run = att2ref(&["inspect", &image]);
    assert_eq!(run.code, 2, "an unverifiable certificate must fail the run: {}", run.stderr);
    assert!(run.stderr.contains(&image), "the error names the image: {}", run.stderr);
    assert!(
        ["certificate", "UnknownIssuer", "tls", "TLS"].iter().any(|w| run.stderr.contains(w)),
        "the error says it is about TLS: {}",
        run.stderr
    );

    // The private CA, trusted explicitly: verified TLS works.
    let run = att2ref(&["inspect", "--ca-file", ca.to_str().unwrap(), &image, "-o", "json"]);
    assert_eq!(run.code, 0, "--ca-file: {}", run.stderr);
    assert_eq!(run.json()["images"][0]["legacy"]["attestations"]["layers"].as_array().unwrap().len(), 2);

    // A CA file that holds no certificate is a clear error, not a silent fallback.
    let not_pem = pki.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let run = att2ref(&["inspect", "--ca-file", not_pem.to_str().unwrap(), &image]);
    assert_eq!(run.code, 2, "an unusable --ca-file is a usage error (could not check): {}", run.stderr);
    assert!(run.stderr.contains("CA certificate"), "{}", run.stderr);

    // Only an explicit --insecure skips verification.
    let run = att2ref(&["inspect", "--insecure", &image]);
    assert_eq!(run.code, 0, "--insecure: {}", run.stderr);
}

#[tokio::test]
async fn no_credential_reaches_the_log_with_every_crate_at_trace() {
    let registry = TestRegistry::distribution_with_basic_auth();
    let client = registry.client_with(|c| {
        c.explicit_credentials = BTreeMap::from([(
            registry.host.clone(),
            Credential::Basic { username: TEST_USER.into(), password: TEST_PASSWORD.into() },
        )])
    });
    let scenario = att2ref::demo::demo().unwrap();
    scenario.repo.push_to(&client.repository(&registry.host, "private/app")).await.unwrap();
    let image = format!("{}/private/app@{}", registry.host, scenario.image);

    // RUST_LOG=trace turns on every crate's tracing (HTTP client, TLS, connection pool), not just ours.
    let run = att2ref_with(
        &["verify", "--plain-http", &image, "-u", TEST_USER, "--password-stdin", "--key", &rsa_key()],
        Some(&format!("{TEST_PASSWORD}\n")),
        &[("RUST_LOG", "trace")],
    );
    // Exit 1, not 2: the registry was reachable with the credential and every layer was read and checked;
    // the demo store was never logged, and without --insecure-ignore-tlog that fails each of its three.
    assert_eq!(run.code, 1, "the registry was reachable with the credential: {}", run.stderr);
    assert!(run.stderr.contains("error: 3 of 3 failed verification"), "{}", run.stderr);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{TEST_USER}:{TEST_PASSWORD}"));
    for secret in [TEST_PASSWORD, basic.as_str()] {
        assert!(!run.stderr.contains(secret) && !run.stdout.contains(secret), "a credential leaked at trace level");
    }
    assert!(run.stderr.lines().count() > 20, "trace logging was on: {}", run.stderr);
}

#[tokio::test]
async fn a_bearer_token_never_reaches_the_log_with_every_crate_at_trace() {
    const TOKEN: &str = "test-only-bearer-token-4f1c2a";
    let server = MockServer::start().await;
    let realm = format!("{}/token", server.uri());
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({ "token": TOKEN, "expires_in": 300 })),
        )
        .mount(&server)
        .await;
    Mock::given(path_regex("^/v2/.*"))
        .and(wiremock::matchers::header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            serde_json::json!({ "errors": [{ "code": "MANIFEST_UNKNOWN", "message": "manifest unknown" }] }),
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path_regex("^/v2/.*"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "WWW-Authenticate",
            format!(r#"Bearer realm="{realm}",service="test",scope="repository:app:pull""#).as_str(),
        ))
        .with_priority(2)
        .mount(&server)
        .await;
    let host = server.uri().trim_start_matches("http://").to_owned();
    let run = att2ref_with(
        &["inspect", "--plain-http", &format!("{host}/app:v1"), "-u", "robot", "--password-stdin"],
        Some("test-only-password-for-the-token-endpoint\n"),
        &[("RUST_LOG", "trace")],
    );
    assert_eq!(run.code, 2, "the manifest does not exist: {}", run.stderr);
    let used_token = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .any(|r| r.headers.get("authorization").is_some_and(|v| v.to_str().unwrap_or("").contains(TOKEN)));
    assert!(used_token, "the token was fetched and used");
    for secret in [TOKEN, "test-only-password-for-the-token-endpoint"] {
        assert!(!run.stderr.contains(secret) && !run.stdout.contains(secret), "{secret} leaked at trace level");
    }
}

/// A registry answering the upload POST with a Location outside the repository's upload path.
async fn upload_redirected_to(location: impl Fn(&MockServer) -> String) -> (MockServer, att2ref::Error) {
    let server = MockServer::start().await;
    let target = location(&server);
    Mock::given(method("POST"))
        .and(path("/v2/team-a/app/blobs/uploads/"))
        .respond_with(ResponseTemplate::new(202).insert_header("Location", target.as_str()))
        .mount(&server)
        .await;
    Mock::given(method("PUT")).respond_with(ResponseTemplate::new(201)).mount(&server).await;
    Mock::given(method("PATCH")).respond_with(ResponseTemplate::new(202)).mount(&server).await;
    Mock::given(method("DELETE")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    let host = server.uri().trim_start_matches("http://").to_owned();
    let client = RegistryClient::new(ClientConfig { plain_http: PlainHttp::All, ..ClientConfig::default() }).unwrap();
    let err = client.repository(&host, "team-a/app").put_blob(Bytes::from_static(b"bundle bytes")).await.unwrap_err();
    (server, err)
}

#[tokio::test]
async fn an_upload_location_in_another_repository_or_host_is_refused() {
    for (case, location) in [
        (
            "another repository",
            Box::new(|_: &MockServer| "/v2/team-b/app/blobs/uploads/x".to_owned())
                as Box<dyn Fn(&MockServer) -> String>,
        ),
        ("a manifest endpoint", Box::new(|_: &MockServer| "/v2/team-a/app/manifests/latest".to_owned())),
        (
            "a path escape",
            Box::new(|_: &MockServer| "/v2/team-a/app/blobs/uploads/../../../team-b/app/blobs/uploads/x".to_owned()),
        ),
        ("another host", Box::new(|_: &MockServer| "http://127.0.0.2:9/v2/team-a/app/blobs/uploads/x".to_owned())),
        (
            "a doubled slash into another repository",
            Box::new(|_: &MockServer| "/.//v2/team-b/app/blobs/uploads/x".to_owned()),
        ),
        ("a percent-escaped API path", Box::new(|_: &MockServer| "/v%32/team-b/app/blobs/uploads/x".to_owned())),
        (
            "an encoded separator outside the API",
            Box::new(|_: &MockServer| "/uploads/..%2fv2%2fteam-b%2fapp%2fblobs%2fuploads%2fx".to_owned()),
        ),
    ] {
        let (server, err) = upload_redirected_to(location).await;
        assert!(err.to_string().contains("refusing the upload Location"), "{case}: {err}");
        let writes: Vec<String> = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.method.as_str() == "PUT" || r.method.as_str() == "PATCH")
            .map(|r| r.url.path().to_owned())
            .collect();
        assert!(writes.is_empty(), "{case}: a write followed the hostile Location: {writes:?}");
    }
}

/// An upload session outside `/v2/` (as Artifact Registry hands out) is followed, but a redirect of a
/// write sent there is not followed back into the API: a registry's answer never moves a write into
/// another repository.
#[tokio::test]
async fn a_write_to_a_session_outside_the_api_is_not_redirected_into_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/team-a/app/blobs/uploads/"))
        .respond_with(ResponseTemplate::new(202).insert_header("Location", "/artifacts-uploads/session-1"))
        .mount(&server)
        .await;
    Mock::given(path("/artifacts-uploads/session-1"))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", "/v2/team-b/app/blobs/uploads/x"))
        .mount(&server)
        .await;
    Mock::given(method("PUT")).respond_with(ResponseTemplate::new(201)).mount(&server).await;
    Mock::given(method("PATCH")).respond_with(ResponseTemplate::new(202)).mount(&server).await;
    Mock::given(method("DELETE")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    let host = server.uri().trim_start_matches("http://").to_owned();
    let client = RegistryClient::new(ClientConfig { plain_http: PlainHttp::All, ..ClientConfig::default() }).unwrap();
    let err = client.repository(&host, "team-a/app").put_blob(Bytes::from_static(b"bundle bytes")).await.unwrap_err();
    assert!(err.to_string().contains("refusing to follow a redirect"), "{err}");
    let requests = server.received_requests().await.unwrap();
    let followed: Vec<String> =
        requests.iter().filter(|r| r.url.path().starts_with("/v2/team-b")).map(|r| r.url.to_string()).collect();
    assert!(followed.is_empty(), "a write followed the redirect into another repository: {followed:?}");
}

/// Every tag of a repository and the exact bytes it serves.
async fn state(repo: &RegistryRepository) -> BTreeMap<String, Bytes> {
    let mut out = BTreeMap::new();
    for tag in repo.list_tags().await.unwrap() {
        let raw = repo.get_manifest(&tag).await.unwrap().unwrap();
        out.insert(tag, raw.bytes.clone());
    }
    out
}

#[tokio::test]
async fn migrate_writes_only_into_the_repository_of_the_image() {
    let registry = TestRegistry::distribution();
    let client = registry.client();
    let scenario = att2ref::demo::demo().unwrap();
    let (a, b) = (client.repository(&registry.host, "team-a/app"), client.repository(&registry.host, "team-b/app"));
    scenario.repo.push_to(&a).await.unwrap();
    scenario.repo.push_to(&b).await.unwrap();
    // In team-a the image is gone but its legacy `.att` stays: the attestations name an image that now
    // exists only in team-b. Migrating team-a must not follow them there.
    a.delete_manifest(&scenario.image).await.unwrap();
    let catalog_before = client.catalog(&registry.host).await.unwrap();
    let (a_before, b_before) = (state(&a).await, state(&b).await);

    let target = format!("{}/team-a/app", registry.host);
    let run =
        att2ref(&["migrate", "--plain-http", &target, "--key", &rsa_key(), "--insecure-ignore-tlog", "-o", "json"]);
    assert_eq!(run.code, 0, "an orphan is left alone, which is success: {}", run.stderr);
    let report = run.json();
    let outcomes: Vec<&str> =
        report["images"].as_array().unwrap().iter().map(|i| i["outcome"].as_str().unwrap()).collect();
    assert!(outcomes.contains(&"orphaned"), "{report:#}");

    assert_eq!(client.catalog(&registry.host).await.unwrap(), catalog_before, "no repository was created");
    assert_eq!(state(&b).await, b_before, "team-b was not touched");
    assert_eq!(state(&a).await, a_before, "nothing was written for the orphan");
    let image: Digest = scenario.image.clone();
    assert!(b.referrers(&image, None).await.unwrap().descriptors.is_empty(), "no referrer appeared in team-b");
}

#[tokio::test]
async fn size_caps_can_be_set_and_name_the_cap_when_hit() {
    let registry = TestRegistry::distribution();
    let scenario = att2ref::demo::demo().unwrap();
    scenario.repo.push_to(&registry.repository("caps/app")).await.unwrap();
    let image = format!("{}/caps/app@{}", registry.host, scenario.image);

    // Data over a cap is bad data for that image: exit 1, the image and the cap named.
    let run = att2ref(&["inspect", "--plain-http", &image, "--max-manifest-size", "64"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(&image) && run.stderr.contains("limit of 64"), "{}", run.stderr);

    let run = att2ref(&["inspect", "--plain-http", &image, "--max-blob-size", "1K", "-o", "json"]);
    assert_eq!(run.code, 1, "a blob over the cap is bad data: {}", run.stderr);
    assert!(
        run.stdout.contains("1024") || run.stderr.contains("1024"),
        "the error names the cap: {}\n{}",
        run.stdout,
        run.stderr
    );

    let run = att2ref(&["inspect", "--plain-http", &image, "--max-manifest-size", "1MiB", "--max-blob-size", "8MiB"]);
    assert_eq!(run.code, 0, "caps large enough: {}", run.stderr);
}

#[tokio::test]
async fn a_redirected_write_is_refused_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path_regex("^/v2/team-a/app/manifests/.*"))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", "/v2/team-b/app/manifests/latest"))
        .mount(&server)
        .await;
    Mock::given(method("PUT")).respond_with(ResponseTemplate::new(201)).mount(&server).await;
    let host = server.uri().trim_start_matches("http://").to_owned();
    let client = RegistryClient::new(ClientConfig { plain_http: PlainHttp::All, ..ClientConfig::default() }).unwrap();
    let manifest = Bytes::from_static(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#);
    let err = client
        .repository(&host, "team-a/app")
        .put_manifest(manifest, "application/vnd.oci.image.manifest.v1+json", Some("v1"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refusing to follow a redirect"), "{err}");
    let elsewhere: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| !r.url.path().starts_with("/v2/team-a/"))
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect();
    assert!(elsewhere.is_empty(), "a write followed the redirect: {elsewhere:?}");
}
