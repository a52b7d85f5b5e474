//! Blobs: HEAD, capped and hashed GET, uploads (monolithic or chunked) and cross-repository mounts.

use bytes::Bytes;
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, HeaderName, HeaderValue, LOCATION, RANGE};
use reqwest::{Method, StatusCode};
use url::Url;

use super::errors::{is_not_found, status_error};
use super::http::{Call, Reply};
use super::{RegistryRepository, check_name};
use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::Digest;
use crate::model::oci::Descriptor;
use crate::store::{BlobPrefix, PrefixRead, Repository};

pub(super) const OCTET_STREAM: HeaderValue = HeaderValue::from_static("application/octet-stream");

pub(crate) async fn blob_size(repo: &RegistryRepository, digest: &Digest) -> Result<Option<u64>> {
    let what = format!("HEAD blob {}@{digest}", repo.name());
    let call = Call::new(&what, Method::HEAD, repo.url(&format!("blobs/{digest}"))?);
    let reply = repo.call(&repo.scope("pull"), &call).await?;
    if is_not_found(reply.status, &reply.body) {
        return Ok(None);
    }
    if !reply.status.is_success() {
        return Err(status_error(&what, reply.status, &reply.body));
    }
    // A registry that names the content must name the blob asked for (a HEAD is the only check some
    // callers make: migrate's read-back).
    if let Some(served) = reply.header("docker-content-digest").and_then(|v| v.parse::<Digest>().ok())
        && served.algorithm() == digest.algorithm()
        && &served != digest
    {
        return Err(Error::new(ErrorKind::DigestMismatch, format!("{what}: the registry names the content {served}")));
    }
    match reply.header("content-length").map(str::parse::<u64>) {
        Some(Ok(size)) => Ok(Some(size)),
        _ => Err(Error::new(
            ErrorKind::Registry,
            format!("{what}: the registry answered without a valid Content-Length"),
        )),
    }
}

pub(crate) async fn get_blob(repo: &RegistryRepository, descriptor: &Descriptor, max_bytes: u64) -> Result<Bytes> {
    let digest = &descriptor.digest;
    let what = format!("GET blob {}@{digest}", repo.name());
    if descriptor.size > max_bytes {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("{what}: declared size {} is more than the limit of {max_bytes}", descriptor.size),
        ));
    }
    // Capped at the declared size, not only the caller's limit: the read buffer is sized from the
    // answer's Content-Length, and a hostile registry must not make us reserve more than the descriptor.
    let call = Call::new(&what, Method::GET, repo.url(&format!("blobs/{digest}"))?)
        .cap(descriptor.size)
        .hash(digest.algorithm());
    let reply = repo.call(&repo.scope("pull"), &call).await.map_err(|e| {
        if e.kind() == ErrorKind::TooLarge {
            Error::new(
                ErrorKind::DigestMismatch,
                format!("{what}: the descriptor says {} bytes but the blob is larger ({e})", descriptor.size),
            )
        } else {
            e
        }
    })?;
    if !reply.status.is_success() {
        return Err(status_error(&what, reply.status, &reply.body));
    }
    match &reply.digest {
        Some(actual) if actual == digest => {}
        actual => {
            let actual = actual.as_ref().map_or_else(|| "nothing".to_owned(), Digest::to_string);
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!("{what}: content digest mismatch: got {actual}"),
            ));
        }
    }
    if reply.body.len() as u64 != descriptor.size {
        return Err(Error::new(
            ErrorKind::DigestMismatch,
            format!("{what}: the descriptor says {} bytes but the blob has {}", descriptor.size, reply.body.len()),
        ));
    }
    Ok(reply.body)
}

/// The start of a blob: a `Range` request, and on a registry that ignores it (200 with the whole blob) the
/// body is cut after the bytes asked for and the connection dropped, so little more than asked arrives.
pub(crate) async fn get_blob_prefix(
    repo: &RegistryRepository,
    descriptor: &Descriptor,
    max_bytes: u64,
) -> Result<BlobPrefix> {
    let digest = &descriptor.digest;
    let want = max_bytes.min(descriptor.size);
    if want == 0 {
        let whole = descriptor.size == 0;
        return Ok(BlobPrefix { bytes: Bytes::new(), whole, transferred: 0, read: PrefixRead::Range });
    }
    let what = format!("GET the first {want} bytes of blob {}@{digest}", repo.name());
    let range = HeaderValue::from_str(&format!("bytes=0-{}", want - 1))
        .map_err(|e| Error::new(ErrorKind::Registry, format!("{what}: {e}")))?;
    let call =
        Call::new(&what, Method::GET, repo.url(&format!("blobs/{digest}"))?).header(RANGE, range).cap(want).truncate();
    let reply = repo.call(&repo.scope("pull"), &call).await?;
    let read = match reply.status {
        StatusCode::PARTIAL_CONTENT => {
            // The part served must be the start: anything else is not the prefix asked for.
            let starts_at_zero = reply.header(CONTENT_RANGE.as_str()).is_some_and(|r| r.starts_with("bytes 0-"));
            if !starts_at_zero {
                return Err(Error::invalid_format(format!(
                    "{what}: the registry answered 206 with Content-Range {:?}, not the start of the blob",
                    reply.header(CONTENT_RANGE.as_str()).unwrap_or("(none)")
                )));
            }
            PrefixRead::Range
        }
        StatusCode::OK => PrefixRead::RangeIgnored,
        status => return Err(status_error(&what, status, &reply.body)),
    };
    let whole = descriptor.size <= max_bytes && reply.body.len() as u64 == descriptor.size;
    Ok(BlobPrefix { bytes: reply.body, whole, transferred: reply.received, read })
}

/// What a `POST .../blobs/uploads/` achieved.
pub(super) enum Start {
    Mounted,
    Session(Url),
}

/// The upload session URL a reply points to. It must stay on this registry: the body we send next goes
/// there (with our credentials), and registry data must never steer a write to another host. Under
/// `/v2/` it must also be this repository's upload path, so that it cannot steer a write into another
/// repository. A path outside the API is the registry's own upload endpoint, which the distribution spec
/// allows: Google Artifact Registry answers `/artifacts-uploads/namespaces/<project>/repositories/<repo>/
/// uploads/<id>` (oras-project/rust-oci-client#175). Such a path may hold no percent escape (a front
/// could decode it into the API), and a write sent there is never redirected into the API (see
/// `http::in_registry_api`).
fn location(repo: &RegistryRepository, reply: &Reply, what: &str) -> Result<Url> {
    let text = reply.header(LOCATION.as_str()).ok_or_else(|| {
        Error::new(ErrorKind::Registry, format!("{what}: the registry answered {} without a Location", reply.status))
    })?;
    let url = reply
        .url
        .join(text)
        .map_err(|e| Error::new(ErrorKind::Registry, format!("{what}: invalid upload Location: {e}")))?;
    let uploads = repo.url("blobs/uploads/")?;
    // `..` segments (also as `%2e`) are resolved by the URL parser; an encoded separator is not, and a
    // registry could decode it behind the prefix check. Nor are doubled slashes, which a registry may fold.
    let path = url.path().to_ascii_lowercase();
    let encoded_separator = path.contains("%2f") || path.contains("%5c");
    let elsewhere_in_api = super::http::in_registry_api(url.path()) && !url.path().starts_with(uploads.path());
    if url.origin() != uploads.origin() || encoded_separator || elsewhere_in_api {
        // Bad data from the registry, never worth restarting the upload for.
        return Err(Error::new(
            ErrorKind::InvalidFormat,
            format!(
                "{what}: refusing the upload Location {url}: a session must be under {}{} or outside `/v2/` on \
                 that host, with no encoded separator (this one points at another host or repository)",
                uploads.origin().ascii_serialization(),
                uploads.path()
            ),
        ));
    }
    Ok(url)
}

pub(super) async fn start_upload(repo: &RegistryRepository, mount: Option<(&Digest, &str)>) -> Result<Start> {
    let mount = mount.filter(|(_, from)| !refused_before(repo, from));
    match open_upload(repo, mount).await {
        Err(e) if mount.is_some() && mount_refused(&e) => {
            tracing::info!(error = %e, "blob mount refused; uploading instead");
            if let Some((_, from)) = mount {
                repo.inner().remember_refused_mount(repo.host(), from);
            }
            open_upload(repo, None).await
        }
        other => other,
    }
}

/// A mount the registry refused from that repository before is not asked for again: a copy of many
/// images would otherwise pay one refused request per blob.
fn refused_before(repo: &RegistryRepository, from: &str) -> bool {
    repo.inner().mount_refused_before(repo.host(), from)
}

/// A mount is an offer: a registry that refuses it outright (one without mounts answering 404 or 405, a
/// token that may not read the other repository answering 401 or 403) still takes an upload.
fn mount_refused(e: &Error) -> bool {
    e.http_status().is_some_and(|s| (400..500).contains(&s) && s != 429)
}

async fn open_upload(repo: &RegistryRepository, mount: Option<(&Digest, &str)>) -> Result<Start> {
    let mut url = repo.url("blobs/uploads/")?;
    let mut scopes = repo.scope("pull,push");
    let what = match mount {
        Some((digest, from)) => {
            check_name(from)?;
            url.query_pairs_mut().append_pair("mount", &digest.to_string()).append_pair("from", from);
            // The token must also cover reading the source, or the registry silently declines.
            scopes.push(format!("repository:{from}:pull"));
            format!("POST blob mount {}@{digest} from {from}", repo.name())
        }
        None => format!("POST blob upload {}", repo.name()),
    };
    let reply = repo.call(&scopes, &Call::new(&what, Method::POST, url)).await?;
    match reply.status {
        StatusCode::CREATED if mount.is_some() => Ok(Start::Mounted),
        StatusCode::ACCEPTED => Ok(Start::Session(location(repo, &reply, &what)?)),
        status => Err(status_error(&what, status, &reply.body)),
    }
}

/// Send `bytes` through an upload session; on failure the session is cancelled.
async fn upload(repo: &RegistryRepository, session: Url, bytes: Bytes, digest: &Digest) -> Result<()> {
    let mut at = session;
    let result = send(repo, &mut at, bytes, digest).await;
    if result.is_err() {
        cancel(repo, at).await;
    }
    result
}

/// One PUT, or PATCH chunks then a closing PUT. `at` follows the session as the registry moves it.
async fn send(repo: &RegistryRepository, at: &mut Url, bytes: Bytes, digest: &Digest) -> Result<()> {
    let what = format!("uploading blob {}@{digest}", repo.name());
    let scopes = repo.scope("pull,push");
    let chunk = usize::try_from(repo.inner().config.upload_chunk_size.max(1)).unwrap_or(usize::MAX);
    let mut tail = bytes.clone();
    if bytes.len() > chunk {
        let mut offset = 0;
        while offset < bytes.len() {
            let end = (offset + chunk).min(bytes.len());
            let range = HeaderValue::from_str(&format!("{offset}-{}", end - 1))
                .map_err(|e| Error::invalid_input(e.to_string()))?;
            let call = Call::new(&what, Method::PATCH, at.clone())
                .header(CONTENT_TYPE, OCTET_STREAM)
                .header(HeaderName::from_static("content-range"), range)
                .body(bytes.slice(offset..end));
            let reply = repo.call(&scopes, &call).await?;
            if reply.status != StatusCode::ACCEPTED {
                return Err(status_error(&what, reply.status, &reply.body));
            }
            // Registries move the session (distribution re-signs its state) with every chunk.
            if reply.header(LOCATION.as_str()).is_some() {
                *at = location(repo, &reply, &what)?;
            }
            offset = end;
        }
        tail = Bytes::new();
    }
    let mut put = at.clone();
    put.query_pairs_mut().append_pair("digest", &digest.to_string());
    let call = Call::new(&what, Method::PUT, put).header(CONTENT_TYPE, OCTET_STREAM).body(tail);
    let reply = repo.call(&scopes, &call).await?;
    check_stored(&what, &reply, digest)
}

/// The answer to an upload's closing PUT: a success, naming (if at all) the digest asked for.
pub(super) fn check_stored(what: &str, reply: &Reply, digest: &Digest) -> Result<()> {
    if !reply.status.is_success() {
        return Err(status_error(what, reply.status, &reply.body));
    }
    match reply.header("docker-content-digest").and_then(|v| v.parse::<Digest>().ok()) {
        Some(d) if d.algorithm() == digest.algorithm() && &d != digest => {
            Err(Error::new(ErrorKind::DigestMismatch, format!("{what}: the registry stored {d}")))
        }
        _ => Ok(()),
    }
}

/// Best-effort cancel of an upload session, so neither a failure nor a declined mount leaves it open.
pub(super) async fn cancel(repo: &RegistryRepository, session: Url) {
    let what = format!("DELETE upload session of {}", repo.name());
    match repo.call(&repo.scope("pull,push"), &Call::new(&what, Method::DELETE, session)).await {
        Ok(reply) if reply.status.is_success() => {}
        Ok(reply) => tracing::debug!(status = reply.status.as_u16(), "cancelling an upload session was refused"),
        Err(e) => tracing::debug!(error = %e, "cancelling an upload session failed"),
    }
}

/// Upload sequences started again (from the POST) after one broke.
const UPLOAD_RESTARTS: u32 = 3;

pub(crate) async fn put_blob(repo: &RegistryRepository, bytes: Bytes, mount_from: Option<&str>) -> Result<Digest> {
    let digest = Digest::sha256(&bytes);
    let size = bytes.len() as u64;
    // A small blob this run already stored in another repository of the registry (the empty config of
    // every referrer) is mounted from there: one request instead of a check and an upload. The mount
    // answers 201 whether or not the blob was here already; a registry that declines opens a session.
    let stored_elsewhere = match mount_from {
        None => repo.inner().stored_blob_source(repo.host(), &digest, repo.repository_name()),
        Some(_) => None,
    };
    if stored_elsewhere.is_none() && blob_size(repo, &digest).await? == Some(size) {
        return Ok(digest);
    }
    store_blob(repo, bytes, digest, mount_from.or(stored_elsewhere.as_deref())).await
}

/// [`put_blob`] for a blob the caller found missing and hashed: no `HEAD`, no second hash (the
/// registry checks the digest on the final `PUT`).
pub(crate) async fn put_missing_blob(repo: &RegistryRepository, bytes: Bytes, digest: &Digest) -> Result<Digest> {
    let stored_elsewhere = repo.inner().stored_blob_source(repo.host(), digest, repo.repository_name());
    store_blob(repo, bytes, digest.clone(), stored_elsewhere.as_deref()).await
}

/// Upload or mount the blob, and remember where it now is (for mounts into the next repositories).
async fn store_blob(
    repo: &RegistryRepository,
    bytes: Bytes,
    digest: Digest,
    mount_from: Option<&str>,
) -> Result<Digest> {
    let size = bytes.len() as u64;
    let digest = upload_blob(repo, bytes, digest, mount_from).await?;
    repo.inner().remember_stored_blob(repo.host(), &digest, size, repo.repository_name());
    Ok(digest)
}

/// Upload (or mount) a blob the registry does not have, starting over when a lost answer broke it.
async fn upload_blob(
    repo: &RegistryRepository,
    bytes: Bytes,
    digest: Digest,
    mount_from: Option<&str>,
) -> Result<Digest> {
    let size = bytes.len() as u64;
    let mut restarts = 0;
    loop {
        let result = match start_upload(repo, mount_from.map(|from| (&digest, from))).await {
            Ok(Start::Mounted) => Ok(()),
            Ok(Start::Session(session)) => upload(repo, session, bytes.clone(), &digest).await,
            Err(e) => Err(e),
        };
        let Err(e) = result else {
            return Ok(digest);
        };
        if !restartable(&e) {
            return Err(e);
        }
        // An upload is a sequence (POST, PATCH…, PUT) that one lost answer breaks: a POST or PATCH is not
        // replayed, and a PUT replayed after the registry completed it meets a consumed session
        // (BLOB_UPLOAD_UNKNOWN). The blob may be stored all the same; if not, start over with a new session.
        match blob_size(repo, &digest).await {
            Ok(Some(stored)) if stored == size => {
                tracing::debug!(%digest, error = %e, "the upload broke but the registry has the blob");
                return Ok(digest);
            }
            Ok(_) => {}
            // The upload's own error says more about what broke than this check's.
            Err(head) => tracing::debug!(%digest, error = %head, "checking for a blob after a broken upload"),
        }
        if restarts >= UPLOAD_RESTARTS.min(repo.inner().config.retry.max_attempts.saturating_sub(1)) {
            return Err(e);
        }
        restarts += 1;
        repo.inner().count_retry();
        let wait = super::http::backoff(&repo.inner().config.retry, restarts);
        tracing::debug!(%digest, restarts, error = %e, "restarting a broken blob upload");
        tokio::time::sleep(wait).await;
    }
}

/// Whether a failed upload sequence is worth starting again: transient transport and server failures and
/// a lost session, not a refusal (credentials, size, digest, unsupported).
pub(super) fn restartable(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Network | ErrorKind::Registry | ErrorKind::RateLimited)
}

pub(crate) async fn mount_blob(repo: &RegistryRepository, digest: &Digest, from: &str) -> Result<bool> {
    if refused_before(repo, from) {
        return Ok(false);
    }
    match open_upload(repo, Some((digest, from))).await {
        Ok(Start::Mounted) => Ok(true),
        Ok(Start::Session(session)) => {
            cancel(repo, session).await;
            Ok(false)
        }
        Err(e) if mount_refused(&e) => {
            tracing::info!(error = %e, "blob mount refused; the blob is uploaded instead");
            repo.inner().remember_refused_mount(repo.host(), from);
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
