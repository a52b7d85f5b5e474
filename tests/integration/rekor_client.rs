//! Rekor requests go through the registry client: its retries, counters and plain-HTTP policy.

use att2ref::ErrorKind;
use att2ref::rewrite::RekorClient;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::registry_client::mock_client;

#[tokio::test]
async fn a_503_from_rekor_is_retried_like_a_registry_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/log/entries"))
        .and(query_param("logIndex", "7"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/log/entries"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let client = mock_client(|_| {});
    let rekor = RekorClient::new(&server.uri(), client.clone()).unwrap();
    let err = rekor.fetch(7).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:#}");
    assert!(err.to_string().contains("log entry 7 not found"), "{err:#}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2, "the 503, then the retry");
    let stats = client.stats();
    assert_eq!((stats.requests, stats.retries), (2, 1), "counted with the registry requests");
}

#[tokio::test]
async fn plain_http_rekor_needs_the_plain_http_policy() {
    let server = MockServer::start().await;
    let client = mock_client(|c| c.plain_http = att2ref::store::registry::PlainHttp::Never);
    let rekor = RekorClient::new(&server.uri(), client).unwrap();
    let err = rekor.fetch(1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:#}");
    assert!(err.to_string().contains("refusing http://"), "{err:#}");
    assert!(server.received_requests().await.unwrap().is_empty(), "nothing was sent");
}
