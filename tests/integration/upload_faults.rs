//! Regression tests for what the fault-injecting proxy found: writes whose answer is lost. A blob
//! upload is a sequence (POST, PUT) that one lost answer breaks; a manifest PUT answered 500 by a proxy
//! may be replayed. Scripted with wiremock, so each case is exact.

use att2ref::model::digest::Digest;
use att2ref::model::media_type as mt;
use att2ref::store::Repository;
use att2ref::store::registry::RegistryClient;
use bytes::Bytes;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client() -> RegistryClient {
    crate::registry_client::mock_client(|_| {})
}

const BLOB: &[u8] = b"a blob whose upload breaks";

/// `verb path` answers 500 once, then `then` once (each expected exactly once).
async fn fails_once_then(server: &MockServer, verb: &str, at: &str, then: ResponseTemplate) {
    Mock::given(method(verb))
        .and(path(at))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method(verb)).and(path(at)).respond_with(then).with_priority(2).expect(1).mount(server).await;
}

/// `HEAD` of the blob: absent `absent_times` times, then present.
async fn blob_head(server: &MockServer, digest: &Digest, absent_times: u64) {
    let blob_path = format!("/v2/app/blobs/{digest}");
    Mock::given(method("HEAD"))
        .and(path(blob_path.as_str()))
        .respond_with(ResponseTemplate::new(404))
        .up_to_n_times(absent_times)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("HEAD"))
        .and(path(blob_path.as_str()))
        .respond_with(ResponseTemplate::new(200).insert_header("Content-Length", BLOB.len().to_string().as_str()))
        .with_priority(2)
        .mount(server)
        .await;
}

/// The registry stored the blob, but the answer to the closing PUT was lost; the client's replay meets
/// the consumed session (404 BLOB_UPLOAD_UNKNOWN). The blob is there: success, without a new upload.
#[tokio::test]
async fn a_replayed_upload_put_that_meets_a_consumed_session_finds_the_blob_stored() {
    let server = MockServer::start().await;
    let digest = Digest::sha256(BLOB);
    blob_head(&server, &digest, 1).await;
    Mock::given(method("POST"))
        .and(path("/v2/app/blobs/uploads/"))
        .respond_with(ResponseTemplate::new(202).insert_header("Location", "/v2/app/blobs/uploads/s1"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2/app/blobs/uploads/s1"))
        .and(query_param("digest", digest.to_string().as_str()))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!(
            {"errors": [{"code": "BLOB_UPLOAD_UNKNOWN", "message": "blob upload unknown to registry"}]}
        )))
        .expect(1)
        .mount(&server)
        .await;
    // The failed session is cancelled, best effort.
    Mock::given(method("DELETE"))
        .and(path("/v2/app/blobs/uploads/s1"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let repo = client().repository(&server.address().to_string(), "app");
    assert_eq!(repo.put_blob(Bytes::from_static(BLOB)).await.unwrap(), digest);
}

/// A POST answered 500 (or a dropped connection) is not replayed by the transport — it may have opened
/// a session — so the upload starts again from a new POST, and the report counts it as a retry.
#[tokio::test]
async fn a_broken_upload_starts_again_from_a_new_session() {
    let server = MockServer::start().await;
    let digest = Digest::sha256(BLOB);
    blob_head(&server, &digest, 2).await;
    fails_once_then(
        &server,
        "POST",
        "/v2/app/blobs/uploads/",
        ResponseTemplate::new(202).insert_header("Location", "/v2/app/blobs/uploads/s2"),
    )
    .await;
    Mock::given(method("PUT"))
        .and(path("/v2/app/blobs/uploads/s2"))
        .and(query_param("digest", digest.to_string().as_str()))
        .respond_with(ResponseTemplate::new(201).insert_header("Docker-Content-Digest", digest.to_string().as_str()))
        .expect(1)
        .mount(&server)
        .await;
    let client = client();
    let repo = client.repository(&server.address().to_string(), "app");
    assert_eq!(repo.put_blob(Bytes::from_static(BLOB)).await.unwrap(), digest);
    assert_eq!(client.stats().retries, 1, "the restart is counted");
}

/// A refusal is not a broken sequence: no restart.
#[tokio::test]
async fn a_refused_upload_is_not_restarted() {
    let server = MockServer::start().await;
    let digest = Digest::sha256(BLOB);
    blob_head(&server, &digest, 1).await;
    Mock::given(method("POST"))
        .and(path("/v2/app/blobs/uploads/"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(serde_json::json!({"errors": [{"code": "DENIED", "message": "no push"}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let repo = client().repository(&server.address().to_string(), "app");
    let err = repo.put_blob(Bytes::from_static(BLOB)).await.unwrap_err();
    assert_eq!(err.kind(), att2ref::ErrorKind::Unauthorized, "{err}");
}

/// A PUT answered 500 is replayed (it is idempotent): the second attempt lands.
#[tokio::test]
async fn a_manifest_put_answered_500_is_retried() {
    let server = MockServer::start().await;
    let manifest = Bytes::from_static(
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
    );
    let digest = Digest::sha256(&manifest);
    fails_once_then(
        &server,
        "PUT",
        "/v2/app/manifests/t",
        ResponseTemplate::new(201).insert_header("Docker-Content-Digest", digest.to_string().as_str()),
    )
    .await;
    let client = client();
    let repo = client.repository(&server.address().to_string(), "app");
    assert_eq!(repo.put_manifest(manifest, mt::OCI_INDEX, Some("t")).await.unwrap().digest, digest);
    assert_eq!(client.stats().retries, 1);
}

/// A POST answered 500 is still not replayed by the transport itself (only a whole upload restarts).
#[tokio::test]
async fn a_post_answered_500_is_not_replayed_by_the_transport() {
    let server = MockServer::start().await;
    let digest = Digest::sha256(b"x");
    Mock::given(method("POST"))
        .and(path("/v2/app/blobs/uploads/"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    let repo = client().repository(&server.address().to_string(), "app");
    let err = repo.mount_blob(&digest, "other").await.unwrap_err();
    assert_eq!(err.kind(), att2ref::ErrorKind::Registry, "a 500 is the registry's error: {err}");
}
