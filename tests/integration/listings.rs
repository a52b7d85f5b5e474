//! Tag and catalog listings against scripted registries (wiremock): `Link` pages, and registries
//! that stop advancing — where ending the listing would silently leave entries out.

use att2ref::store::Repository;
use futures_util::StreamExt;
use wiremock::matchers::{header, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::registry_client::{bearer_challenge, host, mock_client};

/// A page of `body` whose `Link` header names `next` as the next page.
fn linked(body: serde_json::Value, next: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body).insert_header("Link", format!(r#"<{next}>; rel="next""#))
}

#[tokio::test]
async fn tags_from_a_registry_ignoring_n_and_last_do_not_loop() {
    let server = MockServer::start().await;
    // Every page is the full, unsorted list, always with a `next` link.
    Mock::given(path("/v2/app/tags/list"))
        .respond_with(linked(
            serde_json::json!({"name": "app", "tags": ["b", "v1", "a"]}),
            "/v2/app/tags/list?last=a&n=1000",
        ))
        .expect(3)
        .mount(&server)
        .await;
    // The third request asks for fewer entries: still the whole list, so `n` is ignored, not a cap.
    let tags = mock_client(|_| {}).repository(&host(&server), "app").list_tags().await.unwrap();
    assert_eq!(tags, ["b", "v1", "a"]);
}

/// A registry that honours `n` but ignores `last` serves its first page again and again: that listing
/// cannot be completed, and saying so beats a silent first thousand (tags never migrated, a
/// shared-digest check blind to the rest). One that ignores `n` too (more than a page each time) is
/// complete.
#[tokio::test]
async fn tags_from_a_registry_honouring_n_but_ignoring_last_are_an_error() {
    for (count, complete) in [(1000, false), (1001, true)] {
        let server = MockServer::start().await;
        let tags: Vec<String> = (0..count).map(|i| format!("t{i:04}")).collect();
        Mock::given(path("/v2/app/tags/list"))
            .respond_with(linked(
                serde_json::json!({"name": "app", "tags": tags}),
                "/v2/app/tags/list?last=t0999&n=1000",
            ))
            .mount(&server)
            .await;
        let listed = mock_client(|_| {}).repository(&host(&server), "app").list_tags().await;
        match (listed, complete) {
            (Ok(listed), true) => assert_eq!(listed, tags),
            (Err(e), false) => assert!(e.to_string().contains("the listing cannot be completed"), "{e}"),
            (other, _) => panic!("{count} tags a page: {:?}", other.map(|t| t.len())),
        }
    }
}

#[tokio::test]
async fn catalog_follows_relative_and_absolute_links_with_catalog_scope() {
    let server = MockServer::start().await;
    let page = |repos: &[&str], link: Option<String>| {
        let t = ResponseTemplate::new(200).set_body_json(serde_json::json!({ "repositories": repos }));
        match link {
            Some(l) => t.insert_header("Link", l.as_str()),
            None => t,
        }
    };
    Mock::given(path("/v2/_catalog"))
        .and(query_param("last", "b"))
        .and(header("authorization", "Bearer cat"))
        .respond_with(page(&["c", "d"], Some(format!(r#"<{}/v2/_catalog?last=d&n=2>; rel="next""#, server.uri()))))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/_catalog"))
        .and(query_param("last", "d"))
        .and(header("authorization", "Bearer cat"))
        .respond_with(page(&["e"], None))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/_catalog"))
        .and(header("authorization", "Bearer cat"))
        .respond_with(page(&["a", "b"], Some(r#"</v2/_catalog?last=b&n=2>; rel="next""#.to_owned())))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(path("/v2/_catalog"))
        .respond_with(bearer_challenge(&server, "registry:catalog:*"))
        .with_priority(3)
        .mount(&server)
        .await;
    Mock::given(path("/token"))
        .and(query_param("scope", "registry:catalog:*"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": "cat"})))
        .expect(1)
        .mount(&server)
        .await;
    let repos = mock_client(|_| {}).catalog(&host(&server)).await.unwrap();
    assert_eq!(repos, ["a", "b", "c", "d", "e"]);
}

/// A registry paging with cursors may serve an empty page (entries it filtered out) that still links
/// the next one: the listing goes on past it.
#[tokio::test]
async fn tags_past_an_empty_cursor_page_are_listed() {
    let server = MockServer::start().await;
    let page = |tags: &[&str], next: Option<&str>| {
        let t = ResponseTemplate::new(200).set_body_json(serde_json::json!({"name": "app", "tags": tags}));
        match next {
            Some(cursor) => t.insert_header("Link", format!(r#"</v2/app/tags/list?next_page={cursor}>; rel="next""#)),
            None => t,
        }
    };
    for (cursor, tags, next) in [("c1", &[][..], Some("c2")), ("c2", &["b", "c"][..], None)] {
        Mock::given(path("/v2/app/tags/list"))
            .and(query_param("next_page", cursor))
            .respond_with(page(tags, next))
            .with_priority(1)
            .expect(2)
            .mount(&server)
            .await;
    }
    // Each page once per listing: the listing, then the streamed one.
    Mock::given(path("/v2/app/tags/list"))
        .respond_with(page(&["a"], Some("c1")))
        .with_priority(2)
        .expect(2)
        .mount(&server)
        .await;
    let repo = mock_client(|_| {}).repository(&host(&server), "app");
    assert_eq!(repo.list_tags().await.unwrap(), ["a", "b", "c"]);
    // The streamed listing (what a batch reads) goes past it too.
    let pages: Vec<Vec<String>> = repo.tag_pages().map(|p| p.unwrap()).collect().await;
    assert_eq!(pages.concat(), ["a", "b", "c"]);
}

/// A registry that serves at most 100 tags a page and ignores `last` repeats its first page: fewer
/// than the 1000 asked for, so it could also be serving everything. Asking for 99 tells them apart —
/// it honours `n` — and the listing is an error, not a silent first hundred.
#[tokio::test]
async fn tags_from_a_registry_capping_pages_and_ignoring_last_are_an_error() {
    let server = MockServer::start().await;
    let tags = |n: usize| -> Vec<String> { (0..n).map(|i| format!("t{i:03}")).collect() };
    Mock::given(path("/v2/app/tags/list"))
        .and(query_param("n", "99"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"name": "app", "tags": tags(99)})))
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/app/tags/list"))
        .respond_with(linked(
            serde_json::json!({"name": "app", "tags": tags(100)}),
            "/v2/app/tags/list?last=t099&n=100",
        ))
        .with_priority(2)
        .expect(2)
        .mount(&server)
        .await;
    let repo = mock_client(|_| {}).repository(&host(&server), "app");
    let err = repo.list_tags().await.unwrap_err();
    assert!(err.to_string().contains("the listing cannot be completed"), "{err}");
}

/// A catalog whose pages link back to one already read (A, B, A, …) is an error at the first link
/// back, not a stream that starts the same repositories again until the page cap.
#[tokio::test]
async fn a_catalog_linking_back_to_a_page_already_read_is_an_error_at_once() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/_catalog"))
        .and(query_param("last", "a"))
        .respond_with(linked(serde_json::json!({"repositories": ["b"]}), "/v2/_catalog?n=1000"))
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/_catalog"))
        .respond_with(linked(serde_json::json!({"repositories": ["a"]}), "/v2/_catalog?last=a&n=1000"))
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    let pages: Vec<_> = mock_client(|_| {}).catalog_pages(&host(&server)).collect().await;
    let [Ok(first), Err(err)] = pages.as_slice() else {
        panic!("a page and an error, not {pages:?}");
    };
    assert_eq!(first, &["a"]);
    assert!(err.to_string().contains("links back to a page already read"), "{err}");
}

/// An empty page that links back to a page already read hides nothing: the tag listing is complete.
#[tokio::test]
async fn an_empty_page_linking_back_ends_a_tag_listing() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/app/tags/list"))
        .and(query_param("next_page", "c1"))
        .respond_with(linked(serde_json::json!({"name": "app", "tags": []}), "/v2/app/tags/list?n=1000"))
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/app/tags/list"))
        .respond_with(linked(serde_json::json!({"name": "app", "tags": ["a"]}), "/v2/app/tags/list?next_page=c1"))
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    let repo = mock_client(|_| {}).repository(&host(&server), "app");
    assert_eq!(repo.list_tags().await.unwrap(), ["a"]);
}

/// A registry that keeps serving empty pages, each linking a new one, is given up after ten, not
/// followed to the page cap (10,000 requests for one repository).
#[tokio::test]
async fn a_run_of_empty_pages_is_an_error_after_ten() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/app/tags/list"))
        .respond_with(|request: &wiremock::Request| {
            let page: u32 =
                request.url.query_pairs().find(|(k, _)| k == "page").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
            let tags: Vec<&str> = if page == 0 { vec!["a"] } else { Vec::new() };
            linked(serde_json::json!({"name": "app", "tags": tags}), &format!("/v2/app/tags/list?page={}", page + 1))
        })
        .expect(12)
        .mount(&server)
        .await;
    let repo = mock_client(|_| {}).repository(&host(&server), "app");
    let err = repo.list_tags().await.unwrap_err();
    assert!(err.to_string().contains("11 empty pages in a row"), "{err}");
}
