//! Faults a real registry will not produce on demand, from a scripted fake (wiremock).

use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::cli::att2ref;
use crate::schema::assert_valid;

const IMAGE: &str = "sha256:9bd049b6b470118cc6a02d58595b86107407c9e288c0d556ce342ea8acbafdf4";
const HEX: &str = "9bd049b6b470118cc6a02d58595b86107407c9e288c0d556ce342ea8acbafdf4";

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404)
        .set_body_raw(r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#, "application/json")
}

#[tokio::test]
async fn a_401_on_the_fallback_tag_is_an_error_never_an_empty_list() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).and(path("/v2/")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    // No referrers API: distribution's router 404.
    Mock::given(path_regex(r"^/v2/app/referrers/.*"))
        .respond_with(ResponseTemplate::new(404).set_body_raw("404 page not found\n", "text/plain"))
        .mount(&server)
        .await;
    // The fallback tag is refused.
    Mock::given(path(format!("/v2/app/manifests/sha256-{HEX}")))
        .respond_with(
            ResponseTemplate::new(401).insert_header("WWW-Authenticate", r#"Basic realm="fake""#).set_body_raw(
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                "application/json",
            ),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    // Everything else (the image, the legacy tags) does not exist.
    Mock::given(path_regex(r"^/v2/app/manifests/.*")).respond_with(not_found()).with_priority(10).mount(&server).await;

    let host = server.address().to_string();
    let run = att2ref(&["inspect", "--plain-http", &format!("{host}/app@{IMAGE}"), "-o", "json"]);
    assert_eq!(run.code, 2, "an authorization failure is 'could not check'\n{}", run.stderr);
    let report = run.json();
    assert_valid("inspect.schema.json", &report);
    assert!(report["images"].as_array().unwrap().is_empty(), "never an empty answer: {report:#}");
    assert_eq!(report["errors"][0]["errorKind"], "unauthorized");
    let message = report["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(IMAGE), "the error names the image: {message}");
    assert!(message.contains(&format!("sha256-{HEX}")), "the error names the fallback tag: {message}");
}

#[tokio::test]
async fn a_layer_whose_bytes_do_not_match_its_digest_fails_the_image() {
    use att2ref::model::digest::Digest;
    let server = MockServer::start().await;
    let envelope = br#"{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}"#;
    let layer = Digest::sha256(envelope);
    let config = Digest::sha256(b"{}");
    let att = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.dsse.envelope.v1+json", "digest": layer.to_string(),
                    "size": envelope.len(), "annotations": {"dev.cosignproject.cosign/signature": ""}}]
    });
    let att = serde_json::to_vec(&att).unwrap();
    Mock::given(path(format!("/v2/app/manifests/sha256-{HEX}.att")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(att, "application/vnd.oci.image.manifest.v1+json"))
        .with_priority(1)
        .mount(&server)
        .await;
    // A hostile or broken registry: same length, different bytes.
    let mut tampered = envelope.to_vec();
    tampered[3] = b'X';
    Mock::given(path(format!("/v2/app/blobs/{layer}")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(tampered, "application/octet-stream"))
        .mount(&server)
        .await;
    Mock::given(path_regex(r"^/v2/app/manifests/.*")).respond_with(not_found()).with_priority(10).mount(&server).await;
    Mock::given(path_regex(r"^/v2/app/referrers/.*"))
        .respond_with(ResponseTemplate::new(404).set_body_raw("404 page not found\n", "text/plain"))
        .mount(&server)
        .await;

    let run = att2ref(&["inspect", "--plain-http", &format!("{}/app@{IMAGE}", server.address()), "-o", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    assert_valid("inspect.schema.json", &report);
    assert!(report["images"].as_array().unwrap().is_empty());
    assert_eq!(report["errors"][0]["errorKind"], "digest-mismatch");
    let message = report["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(IMAGE) && message.contains(&layer.to_string()), "{message}");
}
