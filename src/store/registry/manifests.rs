//! Manifests: GET / HEAD / PUT / DELETE, always with the full Accept list, size-capped and
//! digest-checked.

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};

use super::errors::{is_not_found, parse_error_body, status_error};
use super::http::{Call, Reply};
use super::{Reference, RegistryRepository};
use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::Digest;
use crate::model::media_type::MANIFEST_ACCEPT;
use crate::model::oci::{Descriptor, RawManifest};
use crate::store::{DeleteSupport, PutManifest, Repository};

fn accept() -> HeaderValue {
    // Distribution answers 404 to an OCI manifest unless the OCI types are accepted.
    HeaderValue::from_str(&MANIFEST_ACCEPT.join(", ")).unwrap_or_else(|_| HeaderValue::from_static("*/*"))
}

/// The media type of a `Content-Type` value, without parameters.
pub(crate) fn content_type(reply: &Reply) -> Option<String> {
    reply
        .header(CONTENT_TYPE.as_str())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `Docker-Content-Digest`, when present.
fn header_digest(reply: &Reply, what: &str) -> Result<Option<Digest>> {
    reply
        .header("docker-content-digest")
        .filter(|v| !v.is_empty())
        .map(|v| v.parse::<Digest>().map_err(|e| e.context(format!("{what}: invalid Docker-Content-Digest header"))))
        .transpose()
}

fn not_found(reply: &Reply) -> bool {
    is_not_found(reply.status, &reply.body)
}

fn path_of(repo: &RegistryRepository, reference: &Reference) -> Result<url::Url> {
    match reference {
        Reference::Tag(t) => repo.url(&format!("manifests/{t}")),
        Reference::Digest(d) => repo.url(&format!("manifests/{d}")),
    }
}

pub(crate) async fn get(repo: &RegistryRepository, reference: &str) -> Result<Option<RawManifest>> {
    let what = format!("GET manifest {}{}{reference}", repo.name(), separator(reference));
    let parsed = repo.reference(reference)?;
    let limit = repo.inner().config.limits.max_manifest_bytes;
    let call = Call::new(&what, Method::GET, path_of(repo, &parsed)?).header(ACCEPT, accept()).cap(limit);
    let reply = repo.call(&repo.scope("pull"), &call).await?;
    if not_found(&reply) {
        return Ok(None);
    }
    if !reply.status.is_success() {
        return Err(status_error(&what, reply.status, &reply.body));
    }
    // By digest the bytes must hash to it; by tag, to what the registry says it served.
    let (expected, by_digest) = match parsed {
        Reference::Digest(d) => (Some(d), true),
        Reference::Tag(_) => (header_digest(&reply, &what)?, false),
    };
    if let Some(d) = &expected {
        d.verify(&reply.body).map_err(|e| e.context(&what))?;
    }
    let declared = content_type(&reply);
    let mut raw = RawManifest::parse(reply.body.clone(), declared.as_deref()).map_err(|e| e.context(&what))?;
    raw.etag = reply.header("etag").filter(|v| !v.is_empty()).map(str::to_owned);
    if let (Some(d), true) = (expected, by_digest) {
        // Keep the caller's algorithm (sha512 references stay sha512).
        raw.digest = d;
    }
    Ok(Some(raw))
}

pub(crate) async fn head(repo: &RegistryRepository, reference: &str) -> Result<Option<Descriptor>> {
    let what = format!("HEAD manifest {}{}{reference}", repo.name(), separator(reference));
    let parsed = repo.reference(reference)?;
    let call = Call::new(&what, Method::HEAD, path_of(repo, &parsed)?).header(ACCEPT, accept());
    let reply = repo.call(&repo.scope("pull"), &call).await?;
    if not_found(&reply) {
        return Ok(None);
    }
    if !reply.status.is_success() {
        return Err(status_error(&what, reply.status, &reply.body));
    }
    let digest = match parsed {
        Reference::Digest(d) => Some(d),
        Reference::Tag(_) => header_digest(&reply, &what)?,
    };
    let size = reply.header("content-length").and_then(|v| v.parse::<u64>().ok());
    let media_type = content_type(&reply);
    match (digest, size, media_type) {
        (Some(digest), Some(size), Some(media_type)) => {
            let mut d = Descriptor::of(&media_type, b"");
            (d.digest, d.size) = (digest, size);
            Ok(Some(d))
        }
        // Some registries leave out a header on HEAD: the body tells everything.
        _ => Ok(get(repo, reference).await?.map(|raw| raw.descriptor())),
    }
}

pub(crate) async fn put(
    repo: &RegistryRepository,
    bytes: Bytes,
    media_type: &str,
    tag: Option<&str>,
    if_match: Option<&str>,
) -> Result<PutManifest> {
    let digest = Digest::sha256(&bytes);
    let reference = tag.map(str::to_owned).unwrap_or_else(|| digest.to_string());
    let what = format!("PUT manifest {}{}{reference}", repo.name(), separator(&reference));
    let limit = repo.inner().config.limits.max_manifest_bytes;
    if bytes.len() as u64 > limit {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("{what}: {} bytes, more than the limit of {limit}", bytes.len()),
        ));
    }
    let parsed = repo.reference(&reference)?;
    let content_type = HeaderValue::from_str(media_type)
        .map_err(|_| Error::invalid_input(format!("{what}: invalid media type {media_type:?}")))?;
    let mut call =
        Call::new(&what, Method::PUT, path_of(repo, &parsed)?).header(CONTENT_TYPE, content_type).body(bytes);
    if let Some(etag) = if_match {
        let value = HeaderValue::from_str(etag)
            .map_err(|_| Error::invalid_input(format!("{what}: entity tag {etag:?} is not a valid header value")))?;
        call = call.header(reqwest::header::IF_MATCH, value);
    }
    if tag.is_some_and(|t| Digest::from_referrers_tag(t).is_some()) {
        // A referrers-index push carries a merge of what was read just before: sent again after a
        // back-off it would erase what other writers added meanwhile (their read-back and confirmation
        // already done). `If-Match` does not make a resend safe: distribution sends an ETag with every
        // manifest and ignores the header on PUT. The tag-schema update reads and merges again instead.
        call = call.no_retry();
    }
    let reply = repo.call(&repo.scope("pull,push"), &call).await?;
    if reply.status == reqwest::StatusCode::PRECONDITION_FAILED {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("{what}: the tag changed since it was read (If-Match {} failed)", if_match.unwrap_or("")),
        ));
    }
    if !reply.status.is_success() {
        return Err(status_error(&what, reply.status, &reply.body));
    }
    if let Some(confirmed) = header_digest(&reply, &what)?.filter(|d| d.algorithm() == digest.algorithm())
        && confirmed != digest
    {
        return Err(Error::new(
            ErrorKind::DigestMismatch,
            format!("{what}: pushed {digest} but the registry stored {confirmed}"),
        ));
    }
    let oci_subject = reply
        .header("oci-subject")
        .filter(|v| !v.is_empty())
        .map(|v| v.parse::<Digest>().map_err(|e| e.context(format!("{what}: invalid OCI-Subject header"))))
        .transpose()?;
    // The header is NOT taken as referrers API support: ECR (sigstore-js#1183) and Docker Hub
    // (docker/hub-feedback#2372) sent it while their listing did not work. Support is learnt from a listing.
    Ok(PutManifest { digest, oci_subject })
}

pub(crate) async fn delete(repo: &RegistryRepository, digest: &Digest) -> Result<()> {
    let what = format!("DELETE manifest {}@{digest}", repo.name());
    let call = Call::new(&what, Method::DELETE, path_of(repo, &Reference::Digest(digest.clone()))?);
    let reply = repo.call(&repo.scope("pull,push,delete"), &call).await?;
    if reply.status.is_success() {
        return Ok(());
    }
    // An earlier attempt got a 5xx or no answer and the manifest is now unknown: that attempt deleted it.
    // A not-found on the first attempt still means it was not there to delete.
    if reply.replayed && not_found(&reply) {
        tracing::info!(%digest, "DELETE repeated after a failed answer found nothing: the earlier attempt applied it");
        return Ok(());
    }
    Err(status_error(&what, reply.status, &reply.body))
}

/// Ask the registry to delete a manifest nobody stored: "unknown" means deletes work, 405 or
/// `UNSUPPORTED` that the registry refuses them (GHCR answers 405 `UNSUPPORTED` "The operation is
/// unsupported.": sigstore/cosign#3434, containers/skopeo#1880).
pub(crate) async fn probe_delete(repo: &RegistryRepository) -> DeleteSupport {
    let absent = Digest::sha256(b"att2ref: a manifest nobody stored, deleted to learn whether deletes work");
    let what = format!("DELETE manifest {}@{absent} (probing whether the registry deletes manifests)", repo.name());
    let Ok(path) = path_of(repo, &Reference::Digest(absent.clone())) else { return DeleteSupport::Unknown };
    let reply = match repo.call(&repo.scope("pull,push,delete"), &Call::new(&what, Method::DELETE, path)).await {
        Ok(r) => r,
        Err(_) => return DeleteSupport::Unknown,
    };
    let unsupported = parse_error_body(&reply.body).iter().any(|e| e.code == "UNSUPPORTED");
    match reply.status.as_u16() {
        status if status == 405 || unsupported => {
            DeleteSupport::Refused(status_error(&what, reply.status, &reply.body).to_string())
        }
        200..=299 | 404 => DeleteSupport::Allowed,
        _ => DeleteSupport::Unknown,
    }
}

/// `name@digest` or `name:tag`, as references are written.
fn separator(reference: &str) -> char {
    if reference.contains(':') { '@' } else { ':' }
}
