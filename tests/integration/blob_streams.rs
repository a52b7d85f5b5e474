//! Streamed blob copies (`read_blob_stream` → `put_blob_stream`) between the real test registries and
//! a layout, for blobs too large to hold: the digest survives every hop, and bytes that are not the
//! blob (other bytes, too many, too few, a source that breaks off) leave nothing stored.

use std::time::Duration;

use att2ref::ErrorKind;
use att2ref::limits::Limits;
use att2ref::model::digest::Digest;
use att2ref::model::oci::Descriptor;
use att2ref::store::Repository;
use att2ref::store::layout::LayoutRepository;
use att2ref::store::{BlobChunks, registry::RegistryRepository};

use bytes::Bytes;
use futures_util::StreamExt;
use wiremock::matchers::{body_bytes, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fault_proxy::{Fault, FaultProxy};
use crate::registries::{RegistryKind, TestRegistry};

/// Several MiB, not a multiple of any chunk size.
const SIZE: usize = 5 * 1024 * 1024 + 123;
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// `len` bytes that do not compress (a xorshift sequence), so no layer along the way can shrink them.
fn blob(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// `bytes` as a stream of chunks of `piece` bytes.
fn chunks_of(bytes: &[u8], piece: usize) -> BlobChunks {
    let chunks: Vec<att2ref::Result<Bytes>> = bytes.chunks(piece).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    futures_util::stream::iter(chunks).boxed()
}

fn layout() -> (tempfile::TempDir, LayoutRepository) {
    let dir = tempfile::tempdir().unwrap();
    let repo = LayoutRepository::create(dir.path().join("layout"), Limits::default()).unwrap();
    (dir, repo)
}

fn blob_file(layout: &LayoutRepository, digest: &Digest) -> std::path::PathBuf {
    layout.path().join("blobs").join(digest.algorithm().as_str()).join(digest.hex())
}

/// Every file in the layout's blob directory (a leftover temporary file would show here).
fn blob_files(layout: &LayoutRepository) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(layout.path().join("blobs").join("sha256")) else { return Vec::new() };
    let mut names: Vec<String> = entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Read a whole stream, checking that it came in more than one chunk (it was not collected first).
async fn read_all(repo: &impl Repository, descriptor: &Descriptor) -> Vec<u8> {
    let mut stream = repo.read_blob_stream(descriptor).await.unwrap();
    let (mut bytes, mut largest) = (Vec::new(), 0);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        largest = largest.max(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    assert!(largest < bytes.len(), "{}: one chunk of {largest} bytes", repo.name());
    bytes
}

/// Registry → registry, registry → layout, layout → registry, each hop a stream.
async fn copy_through(first: &TestRegistry, second: &TestRegistry) {
    let bytes = blob(SIZE);
    let d = Descriptor::of(LAYER, &bytes);
    let source = first.repository("streams/source");
    assert_eq!(source.put_blob_stream(&d, chunks_of(&bytes, 256 * 1024)).await.unwrap(), d.digest);
    assert_eq!(source.blob_size(&d.digest).await.unwrap(), Some(SIZE as u64));

    // Fresh clients, so their counters hold this copy alone: every byte once, nothing buffered twice.
    let (reader, writer) = (first.client(), second.client());
    let from = reader.repository(&first.host, "streams/source");
    let to = writer.repository(&second.host, "streams/copy");
    let copied = to.put_blob_stream(&d, from.read_blob_stream(&d).await.unwrap()).await.unwrap();
    assert_eq!(copied, d.digest);
    assert_eq!(reader.stats().bytes_downloaded, SIZE as u64);
    assert_eq!(writer.stats().bytes_uploaded, SIZE as u64);
    assert_eq!(to.blob_size(&d.digest).await.unwrap(), Some(SIZE as u64));
    assert!(read_all(&to, &d).await == bytes, "{}: other bytes came back", to.name());

    let (_dir, layout) = layout();
    assert_eq!(layout.put_blob_stream(&d, to.read_blob_stream(&d).await.unwrap()).await.unwrap(), d.digest);
    assert!(std::fs::read(blob_file(&layout, &d.digest)).unwrap() == bytes);
    assert_eq!(blob_files(&layout), vec![d.digest.hex().to_owned()]);

    let back = first.repository("streams/from-layout");
    assert_eq!(back.put_blob_stream(&d, layout.read_blob_stream(&d).await.unwrap()).await.unwrap(), d.digest);
    assert!(back.get_blob(&d, SIZE as u64).await.unwrap() == bytes);
}

#[tokio::test]
async fn distribution_to_ferro_and_through_a_layout_keeps_the_digest() {
    let (distribution, ferro) = (TestRegistry::distribution(), TestRegistry::ferro());
    copy_through(&distribution, &ferro).await;
}

#[tokio::test]
async fn ferro_to_distribution_and_through_a_layout_keeps_the_digest() {
    let (distribution, ferro) = (TestRegistry::distribution(), TestRegistry::ferro());
    copy_through(&ferro, &distribution).await;
}

/// Other bytes of the right length, one byte more, one byte less: each upload fails with the check's
/// own error, and neither the blob nor the bytes sent are stored.
async fn wrong_bytes_are_not_stored(registry: &TestRegistry) {
    let bytes = blob(SIZE);
    let d = Descriptor::of(LAYER, &bytes);
    let repo = registry.repository("streams/wrong");
    let mut other = bytes.clone();
    other[SIZE - 1] ^= 0xff;
    let mut longer = bytes.clone();
    longer.push(7);
    let shorter = bytes[..SIZE - 1].to_vec();
    let what = format!("uploading blob {}@{}", repo.name(), d.digest);
    let cases = [
        (
            "other bytes",
            &other,
            format!("{what}: content digest mismatch: expected {}, got {}", d.digest, Digest::sha256(&other)),
        ),
        ("one byte more", &longer, format!("{what}: more than the {SIZE} bytes its descriptor says arrived")),
        ("one byte less", &shorter, format!("{what}: {} bytes arrived but its descriptor says {SIZE}", SIZE - 1)),
    ];
    for (case, sent, message) in cases {
        let err = repo.put_blob_stream(&d, chunks_of(sent, 64 * 1024)).await.unwrap_err();
        assert_eq!((err.kind(), err.to_string()), (ErrorKind::DigestMismatch, message), "{case}");
        assert_eq!(repo.blob_size(&d.digest).await.unwrap(), None, "{case}: the blob is stored");
        assert_eq!(repo.blob_size(&Digest::sha256(sent)).await.unwrap(), None, "{case}: the bytes sent are stored");
    }
    // The registry took nothing amiss: the right bytes go through afterwards.
    assert_eq!(repo.put_blob_stream(&d, chunks_of(&bytes, 64 * 1024)).await.unwrap(), d.digest);
    assert_eq!(repo.blob_size(&d.digest).await.unwrap(), Some(SIZE as u64));
}

#[tokio::test]
async fn distribution_stores_nothing_from_a_wrong_stream() {
    wrong_bytes_are_not_stored(&TestRegistry::distribution()).await;
}

#[tokio::test]
async fn ferro_stores_nothing_from_a_wrong_stream() {
    wrong_bytes_are_not_stored(&TestRegistry::ferro()).await;
}

#[tokio::test]
async fn a_layout_keeps_nothing_from_a_wrong_stream() {
    let bytes = blob(SIZE);
    let d = Descriptor::of(LAYER, &bytes);
    let (_dir, layout) = layout();
    let mut other = bytes.clone();
    other[0] ^= 1;
    for sent in [other, [bytes.as_slice(), b"x"].concat(), bytes[1..].to_vec()] {
        let err = layout.put_blob_stream(&d, chunks_of(&sent, 100_000)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DigestMismatch, "{err}");
        assert_eq!(blob_files(&layout), Vec::<String>::new(), "{err}");
    }
}

/// A source that breaks off midway (the answer cut with its full length declared): the copy fails with
/// the source's error, the destination keeps nothing, and a second copy goes through.
#[tokio::test]
async fn a_source_that_breaks_off_leaves_nothing_behind() {
    let (distribution, ferro) = (TestRegistry::distribution(), TestRegistry::ferro());
    let bytes = blob(SIZE);
    let d = Descriptor::of(LAYER, &bytes);
    distribution.repository("streams/source").put_blob_stream(&d, chunks_of(&bytes, 1 << 20)).await.unwrap();
    let proxy = FaultProxy::counting(&distribution.host);
    let source: RegistryRepository =
        crate::registry_client::mock_client(|_| {}).repository(&proxy.host, "streams/source");
    let to = ferro.repository("streams/copy");
    let (_dir, layout) = layout();

    proxy.fault_next("GET", "/blobs/sha256:", Fault::Truncated);
    let err = to.put_blob_stream(&d, source.read_blob_stream(&d).await.unwrap()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    assert!(err.to_string().starts_with(&format!("GET blob {}/streams/source@{}: ", proxy.host, d.digest)), "{err}");
    assert_eq!(to.blob_size(&d.digest).await.unwrap(), None);

    proxy.fault_next("GET", "/blobs/sha256:", Fault::Truncated);
    let err = layout.put_blob_stream(&d, source.read_blob_stream(&d).await.unwrap()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    assert_eq!(blob_files(&layout), Vec::<String>::new());

    assert_eq!(to.put_blob_stream(&d, source.read_blob_stream(&d).await.unwrap()).await.unwrap(), d.digest);
    assert_eq!(layout.put_blob_stream(&d, source.read_blob_stream(&d).await.unwrap()).await.unwrap(), d.digest);
    assert_eq!(to.blob_size(&d.digest).await.unwrap(), Some(SIZE as u64));
    assert_eq!(blob_files(&layout), vec![d.digest.hex().to_owned()]);
}

/// `put_blob_stream_from` opens the source only once the destination's upload session exists (an
/// earlier GET would sit idle, its transfer time running, while the upload waits), cancels that session
/// when the source cannot be opened, and never opens the source for a blob it mounts instead. One proxy
/// in front of one registry sees both sides in order.
#[tokio::test]
async fn the_source_is_opened_once_the_destination_can_take_its_bytes() {
    let distribution = TestRegistry::distribution();
    // Small enough for the client to remember where it stored it, so it can mount it later.
    let bytes = blob(32 * 1024);
    let d = Descriptor::of(LAYER, &bytes);
    distribution.repository("order/source").put_blob_stream(&d, chunks_of(&bytes, 1 << 12)).await.unwrap();
    let proxy = FaultProxy::counting(&distribution.host);
    let client = crate::registry_client::mock_client(|_| {});
    let (source, to) = (client.repository(&proxy.host, "order/source"), client.repository(&proxy.host, "order/copy"));
    let stored =
        tokio::time::timeout(Duration::from_secs(30), to.put_blob_stream_from(&d, source.read_blob_stream(&d)));
    assert_eq!(stored.await.expect("in time").unwrap(), d.digest);
    let order: Vec<String> = proxy
        .arrivals()
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r.starts_with("POST /v2/order/copy/") || r.starts_with("GET /v2/order/source/blobs/"))
        .collect();
    assert_eq!(order.len(), 2, "{order:?}");
    assert!(order[0].starts_with("POST ") && order[1].starts_with("GET "), "session first, then the source: {order:?}");

    // A source that cannot be opened: the session is cancelled, nothing stored.
    let missing = Descriptor::of(LAYER, b"never stored");
    let err = to.put_blob_stream_from(&missing, source.read_blob_stream(&missing)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(proxy.arrivals().iter().any(|(_, r)| r.starts_with("DELETE /v2/order/copy/blobs/uploads/")), "cancelled");
    assert_eq!(to.blob_size(&missing.digest).await.unwrap(), None);

    // This client stored the blob in `order/copy`: another repository mounts it, the source unopened.
    let reads =
        |p: &FaultProxy| p.arrivals().iter().filter(|(_, r)| r.starts_with("GET /v2/order/source/blobs/")).count();
    let before = reads(&proxy);
    let third = client.repository(&proxy.host, "order/third");
    assert_eq!(third.put_blob_stream_from(&d, source.read_blob_stream(&d)).await.unwrap(), d.digest);
    assert_eq!(reads(&proxy), before, "a mounted blob never opens its source");
    assert_eq!(third.blob_size(&d.digest).await.unwrap(), Some(d.size));
}

/// A blob the registry does not have is not found before any byte; one whose descriptor names another
/// size is refused before any byte too.
async fn reads_are_refused_up_front(registry: &TestRegistry) {
    let repo = registry.repository("streams/reads");
    let missing = Descriptor::of(LAYER, b"never stored");
    let err = repo.read_blob_stream(&missing).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let bytes = blob(1 << 20);
    let d = Descriptor::of(LAYER, &bytes);
    repo.put_blob_stream(&d, chunks_of(&bytes, 1 << 16)).await.unwrap();
    let mut wrong_size = d.clone();
    wrong_size.size -= 1;
    let err = repo.read_blob_stream(&wrong_size).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::DigestMismatch, "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "GET blob {}@{}: the descriptor says {} bytes but the registry serves {}",
            repo.name(),
            d.digest,
            (1 << 20) - 1,
            1 << 20
        )
    );
}

#[tokio::test]
async fn distribution_refuses_reads_up_front() {
    reads_are_refused_up_front(&TestRegistry::distribution()).await;
}

#[tokio::test]
async fn ferro_refuses_reads_up_front() {
    reads_are_refused_up_front(&TestRegistry::ferro()).await;
}

#[tokio::test]
async fn distribution_mounts_between_repositories() {
    mounts_between_repositories(&TestRegistry::distribution()).await;
}

#[tokio::test]
async fn ferro_mounts_between_repositories() {
    mounts_between_repositories(&TestRegistry::ferro()).await;
}

async fn mounts_between_repositories(registry: &TestRegistry) {
    let client = registry.client();
    let bytes = blob(SIZE);
    let d = Descriptor::of(LAYER, &bytes);
    let a = client.repository(&registry.host, "team/a");
    let b = client.repository(&registry.host, "team/b");
    a.put_blob_stream(&d, chunks_of(&bytes, 1 << 20)).await.unwrap();
    // ferro-oci-server keeps one blob store for every repository, so the blob is visible there already,
    // and it declines mounts (it opens an upload session instead).
    let ferro = registry.kind == RegistryKind::Ferro;
    assert_eq!(b.blob_size(&d.digest).await.unwrap(), ferro.then_some(SIZE as u64));
    let uploaded = client.stats().bytes_uploaded;
    assert_eq!(Repository::mount_blob(&b, &d, "team/a").await.unwrap(), !ferro);
    assert_eq!(client.stats().bytes_uploaded, uploaded, "a mount sends no blob bytes");
    assert_eq!(b.blob_size(&d.digest).await.unwrap(), Some(SIZE as u64));
    assert!(read_all(&b, &d).await == bytes);

    // A source without the blob: the registry declines (the session it opened is cancelled).
    let other = Descriptor::of(LAYER, b"only in b");
    assert!(!Repository::mount_blob(&a, &other, "team/c").await.unwrap());
    let err = Repository::mount_blob(&b, &d, "team/../a").await.unwrap_err();
    assert_eq!(
        (err.kind(), err.to_string()),
        (ErrorKind::InvalidInput, r#"invalid repository name "team/../a""#.to_owned())
    );
}

/// The token the registry issued for the upload's POST is the one the streamed PUT carries, and the PUT
/// says the blob's length up front.
#[tokio::test]
async fn the_streamed_put_reuses_the_token_of_the_upload_session() {
    let server = MockServer::start().await;
    let bytes = blob(300_000);
    let d = Descriptor::of(LAYER, &bytes);
    Mock::given(method("POST"))
        .and(path("/v2/app/blobs/uploads/"))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(ResponseTemplate::new(202).insert_header("Location", "/v2/app/blobs/uploads/s1"))
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    let challenge = format!(r#"Bearer realm="{}/token",service="mock",scope="repository:app:pull,push""#, server.uri());
    Mock::given(method("POST"))
        .and(path("/v2/app/blobs/uploads/"))
        .respond_with(ResponseTemplate::new(401).insert_header("WWW-Authenticate", challenge.as_str()))
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": "tok-1", "expires_in": 300})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2/app/blobs/uploads/s1"))
        .and(query_param("digest", d.digest.to_string().as_str()))
        .and(header("authorization", "Bearer tok-1"))
        .and(header("content-length", "300000"))
        .and(header("content-type", "application/octet-stream"))
        .and(body_bytes(bytes.clone()))
        .respond_with(ResponseTemplate::new(201).insert_header("Docker-Content-Digest", d.digest.to_string().as_str()))
        .expect(1)
        .mount(&server)
        .await;
    let client = crate::registry_client::mock_client(|_| {});
    let repo = client.repository(&server.address().to_string(), "app");
    assert_eq!(repo.put_blob_stream(&d, chunks_of(&bytes, 4096)).await.unwrap(), d.digest);
    assert_eq!(client.stats().bytes_uploaded, 300_000);
}

/// A streamed PUT cannot be sent twice: a 503 is not retried (the caller starts over from its source),
/// and the session is cancelled.
#[tokio::test]
async fn a_refused_streamed_put_is_not_retried_and_its_session_is_cancelled() {
    let server = MockServer::start().await;
    let bytes = blob(10_000);
    let d = Descriptor::of(LAYER, &bytes);
    Mock::given(method("POST"))
        .and(path("/v2/app/blobs/uploads/"))
        .respond_with(ResponseTemplate::new(202).insert_header("Location", "/v2/app/blobs/uploads/s9"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2/app/blobs/uploads/s9"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    // The answer may have been lost after the registry stored the blob: it is checked for once.
    Mock::given(method("HEAD"))
        .and(path(format!("/v2/app/blobs/{}", d.digest)))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v2/app/blobs/uploads/s9"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let client = crate::registry_client::mock_client(|_| {});
    let repo = client.repository(&server.address().to_string(), "app");
    let err = repo.put_blob_stream(&d, chunks_of(&bytes, 1000)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Registry, "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "uploading blob {}@{}: registry answered HTTP 503",
            repo.name(),
            d.digest
        )),
        "{err}"
    );
    assert_eq!(client.stats().retries, 0);
}
