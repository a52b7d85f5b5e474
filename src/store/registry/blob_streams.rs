//! Blobs too large to hold in memory: a GET whose body is handed on as it arrives, a monolithic PUT
//! whose body is a stream, and cross-repository mounts for [`Repository`](crate::store::Repository).
//!
//! Both directions check size and digest on the way (see `store::chunks`). A streamed body can be sent
//! once, so nothing here is retried after the bytes started to move: the caller starts over by
//! opening its source again.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use url::Url;

use super::blobs::{self, OCTET_STREAM, Start};
use super::errors::status_error;
use super::http::{Call, body_error};
use super::{Inner, RegistryRepository};
use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::Digest;
use crate::model::oci::Descriptor;
use crate::store::{BlobChunks, Repository, chunks};

/// The slowest transfer rate a streamed blob is given time for, in bytes per second.
const FLOOR_RATE: u64 = 1024 * 1024;

/// The timeout of a streamed blob's request: the client's, plus a second per MiB of the blob. The
/// client's timeout covers a whole exchange and suits manifests and small blobs; it would cut a
/// multi-GB layer off mid-way, while this still ends a transfer that stalled.
fn transfer_timeout(repo: &RegistryRepository, size: u64) -> Option<Duration> {
    let base = repo.inner().config.request_timeout?;
    Some(base.saturating_add(Duration::from_secs(size / FLOOR_RATE)))
}

pub(crate) async fn read_blob_stream(repo: &RegistryRepository, descriptor: &Descriptor) -> Result<BlobChunks> {
    let digest = &descriptor.digest;
    let what = format!("GET blob {}@{digest}", repo.name());
    let call = Call::new(&what, Method::GET, repo.url(&format!("blobs/{digest}"))?)
        .unbuffered()
        .timeout(transfer_timeout(repo, descriptor.size));
    let mut reply = repo.call(&repo.scope("pull"), &call).await?;
    if !reply.status.is_success() {
        return Err(status_error(&what, reply.status, &reply.body));
    }
    // A length that is not the descriptor's is refused before a byte is read.
    if let Some(declared) = reply.header(CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok())
        && declared != descriptor.size
    {
        return Err(Error::new(
            ErrorKind::DigestMismatch,
            format!("{what}: the descriptor says {} bytes but the registry serves {declared}", descriptor.size),
        ));
    }
    let response = reply
        .response
        .take()
        .ok_or_else(|| Error::new(ErrorKind::Registry, format!("{what}: the answer has no body to read")))?;
    let inner = Arc::clone(&repo.client.inner);
    let context = what.clone();
    let body = response
        .bytes_stream()
        .map(move |chunk| match chunk {
            Ok(chunk) => {
                inner.count_downloaded(chunk.len());
                Ok(chunk)
            }
            Err(e) => Err(body_error(&context, e)),
        })
        .boxed();
    Ok(chunks::checked(descriptor, what, body))
}

/// Store `descriptor` from the chunks `open` gives, awaited only once the upload session exists (see
/// [`Repository::put_blob_stream_from`]).
pub(crate) async fn put_blob_stream_from<F: Future<Output = Result<BlobChunks>>>(
    repo: &RegistryRepository,
    descriptor: &Descriptor,
    open: F,
) -> Result<Digest> {
    let digest = &descriptor.digest;
    // As for a blob held in memory: one this client stored in another repository of the registry is
    // mounted from there (the source is then never opened).
    let stored_elsewhere = repo.inner().stored_blob_source(repo.host(), digest, repo.repository_name());
    match blobs::start_upload(repo, stored_elsewhere.as_deref().map(|from| (digest, from))).await? {
        Start::Mounted => {}
        Start::Session(session) => {
            let chunks = match open.await {
                Ok(chunks) => chunks,
                Err(e) => {
                    blobs::cancel(repo, session).await;
                    return Err(e);
                }
            };
            upload(repo, session, descriptor, chunks).await?
        }
    }
    repo.inner().remember_stored_blob(repo.host(), digest, descriptor.size, repo.repository_name());
    Ok(digest.clone())
}

/// The first error of a request body's stream, kept for the caller: the transport only says that the
/// body broke off.
type Failure = Arc<Mutex<Option<Error>>>;

/// One PUT to `session` whose body is `chunks`; on failure the session is cancelled.
async fn upload(repo: &RegistryRepository, session: Url, descriptor: &Descriptor, chunks: BlobChunks) -> Result<()> {
    let digest = &descriptor.digest;
    let what = format!("uploading blob {}@{digest}", repo.name());
    let failure = Failure::default();
    let body = request_body(Arc::clone(&repo.client.inner), chunks::checked(descriptor, &what, chunks), &failure);
    let Err(e) = put(repo, &session, descriptor, &what, body).await else {
        return Ok(());
    };
    let cause = failure.lock().unwrap_or_else(PoisonError::into_inner).take();
    if cause.is_none() && blobs::restartable(&e) && stored(repo, descriptor).await {
        tracing::debug!(%digest, error = %e, "the streamed upload broke but the registry has the blob");
        return Ok(());
    }
    blobs::cancel(repo, session).await;
    Err(cause.unwrap_or(e))
}

/// Whether the registry has the blob, for an upload whose answer was lost: a false "no" only costs the
/// caller a second transfer, so a failed check counts as one.
async fn stored(repo: &RegistryRepository, descriptor: &Descriptor) -> bool {
    matches!(blobs::blob_size(repo, &descriptor.digest).await, Ok(Some(size)) if size == descriptor.size)
}

/// `chunks` as a request body, counted as they are sent. An error is kept in `failure` and the
/// transport given a copy: it only aborts the request with it.
fn request_body(
    inner: Arc<Inner>,
    chunks: BlobChunks,
    failure: &Failure,
) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
    let failure = Arc::clone(failure);
    chunks.map(move |item| match item {
        Ok(chunk) => {
            inner.count_uploaded(chunk.len());
            Ok(chunk)
        }
        Err(e) => {
            let copy = Error::new(e.kind(), e.message());
            failure.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(e);
            Err(copy)
        }
    })
}

/// The closing `PUT <session>?digest=…` with the whole blob as its body.
async fn put(
    repo: &RegistryRepository,
    session: &Url,
    descriptor: &Descriptor,
    what: &str,
    body: impl Stream<Item = Result<Bytes>> + Send + 'static,
) -> Result<()> {
    let mut url = session.clone();
    url.query_pairs_mut().append_pair("digest", &descriptor.digest.to_string());
    let call = Call::new(what, Method::PUT, url)
        .header(CONTENT_TYPE, OCTET_STREAM)
        .header(CONTENT_LENGTH, HeaderValue::from(descriptor.size))
        .stream_body(reqwest::Body::wrap_stream(body))
        .timeout(transfer_timeout(repo, descriptor.size));
    let reply = repo.call(&repo.scope("pull,push"), &call).await?;
    blobs::check_stored(what, &reply, &descriptor.digest)
}

/// [`Repository::mount_blob`]: a mount the registry accepted is remembered like a stored blob, so the
/// next repository that needs it mounts it too.
pub(crate) async fn mount(repo: &RegistryRepository, descriptor: &Descriptor, from: &str) -> Result<bool> {
    let mounted = blobs::mount_blob(repo, &descriptor.digest, from).await?;
    if mounted {
        repo.inner().remember_stored_blob(repo.host(), &descriptor.digest, descriptor.size, repo.repository_name());
    }
    Ok(mounted)
}
