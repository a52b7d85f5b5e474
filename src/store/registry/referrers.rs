//! Referrers: the API (`GET /v2/<name>/referrers/<digest>`) when the registry has it, else the
//! tag schema (`<alg>-<hex>` tag holding an index). Support is recorded per repository; a definite
//! "no such route" (the router's own 404, not a distribution error) is also recorded for the host,
//! since a router that has no referrers route has it for no repository: a batch over a thousand
//! repositories of such a registry probes once, not a thousand times.
//!
//! Only a definite not-found on the fallback tag means "no referrers": a denial, throttle or server
//! error there is an error, never an empty list a caller might merge into and write back.

use std::collections::HashSet;

use reqwest::header::{ACCEPT, HeaderValue};
use reqwest::{Method, StatusCode};

use super::RegistryRepository;
use super::auth::challenges_of;
use super::errors::{parse_error_body, status_error};
use super::http::{Call, Reply};
use super::manifests::{self, content_type};
use super::tags::{MAX_EMPTY_PAGES, next_link};
use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::Digest;
use crate::model::media_type::OCI_INDEX;
use crate::model::oci::{Descriptor, Index, Manifest};
use crate::store::{Referrers, ReferrersCapability, ReferrersSource, Repository, tag_schema};

pub(crate) async fn referrers(
    repo: &RegistryRepository,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Result<Referrers> {
    let key = repo.name();
    if repo.inner().capability(&key) == ReferrersCapability::Unknown
        && repo.inner().capability(&host_key(repo)) == ReferrersCapability::Unsupported
    {
        repo.inner().set_capability(&key, ReferrersCapability::Unsupported);
    }
    if repo.inner().capability(&key) != ReferrersCapability::Unsupported {
        match from_api(repo, subject, artifact_type).await? {
            Api::Listed(descriptors, filtered) => {
                repo.inner().set_capability(&key, ReferrersCapability::Supported);
                return Ok(Referrers {
                    subject: subject.clone(),
                    descriptors,
                    source: ReferrersSource::Api { filtered },
                });
            }
            Api::Unsupported { definite: true } => {
                repo.inner().set_capability(&key, ReferrersCapability::Unsupported);
                repo.inner().set_capability(&host_key(repo), ReferrersCapability::Unsupported);
            }
            Api::Unsupported { definite: false } => {}
        }
    }
    from_tag(repo, subject, artifact_type).await
}

/// The capability key of the whole registry (repository keys are `host/name`, never ending in `/`).
fn host_key(repo: &RegistryRepository) -> String {
    format!("{}/", repo.host())
}

/// True when an answer of the referrers endpoint means "this registry has no referrers API".
fn means_unsupported(reply: &Reply) -> bool {
    match reply.status.as_u16() {
        // Distribution's router answers 404 text/plain "404 page not found"; an unknown repository
        // (NAME_UNKNOWN) on a registry with the API also falls back, harmlessly: the tag is absent too.
        404 | 406 => true,
        // A 401 without a challenge is no auth problem we could solve: the route is not there.
        401 => challenges_of(&reply.headers).is_empty(),
        // A redirect we could not follow, or one that ended on a web page.
        300..=399 => true,
        200 => !content_type(reply).is_some_and(|t| t.contains("json")),
        _ => false,
    }
}

/// Whether a 200 body is a JSON object with no `manifests` at all (`{}`), rather than an index.
fn lists_nothing(body: &[u8]) -> bool {
    matches!(serde_json::from_slice::<serde_json::Value>(body),
        Ok(serde_json::Value::Object(o)) if o.get("manifests").is_none_or(serde_json::Value::is_null))
}

/// What the API said.
enum Api {
    /// Every entry (all pages), and whether the registry applied the artifactType filter.
    Listed(Vec<Descriptor>, bool),
    /// No API answer. `definite: false` when the answer was a distribution error (an unknown
    /// repository or subject), which says nothing certain about the registry.
    Unsupported { definite: bool },
}

async fn from_api(repo: &RegistryRepository, subject: &Digest, artifact_type: Option<&str>) -> Result<Api> {
    let what = format!("GET referrers of {}@{subject}", repo.name());
    let limits = &repo.inner().config.limits;
    let mut url = repo.url(&format!("referrers/{subject}"))?;
    if let Some(t) = artifact_type {
        url.query_pairs_mut().append_pair("artifactType", t);
    }
    let mut descriptors = Vec::new();
    let mut seen = HashSet::new();
    let mut filtered = false;
    // Every page address asked for, and the empty pages in a row: a registry that stops advancing while
    // it links a next page makes the listing an error, never a shorter listing taken as complete (prune
    // decides from it that nothing else refers to what it deletes).
    let mut requested = HashSet::new();
    let mut empty_in_a_row = 0;
    for page_no in 1.. {
        if page_no > limits.max_pages {
            return Err(Error::new(ErrorKind::TooLarge, format!("{what}: more than {} pages", limits.max_pages)));
        }
        requested.insert(url.clone());
        let call = Call::new(&what, Method::GET, url.clone())
            .header(ACCEPT, HeaderValue::from_static(OCI_INDEX))
            .cap(limits.max_manifest_bytes);
        let reply = repo.call(&repo.scope("pull"), &call).await?;
        if page_no == 1 && means_unsupported(&reply) {
            // A distribution error body (NAME_UNKNOWN, MANIFEST_UNKNOWN) comes from the registry's API
            // code, not its router: it says nothing definite about the API, so it is not cached.
            let from_api_code = !parse_error_body(&reply.body).is_empty();
            tracing::debug!(
                status = reply.status.as_u16(),
                from_api_code,
                "referrers API unavailable; using the tag schema"
            );
            return Ok(Api::Unsupported { definite: !from_api_code });
        }
        if reply.status != StatusCode::OK {
            return Err(status_error(&what, reply.status, &reply.body));
        }
        // Harbor 2.8–2.10 answer a subject the repository does not hold with 200 `{}`: no listing, and
        // nothing said about the API either (not cached). The tag schema answers for it.
        if page_no == 1 && lists_nothing(&reply.body) {
            tracing::debug!("referrers API answered an object without manifests; using the tag schema");
            return Ok(Api::Unsupported { definite: false });
        }
        if page_no == 1 {
            filtered = artifact_type.is_some()
                && reply
                    .headers
                    .get_all("oci-filters-applied")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .any(|f| f.trim() == "artifactType");
        }
        let index: Index = serde_json::from_slice(&reply.body)
            .map_err(|e| Error::invalid_format(format!("{what}: the answer is not an image index: {e}")))?;
        let (before, served) = (descriptors.len(), index.manifests.len());
        for d in index.manifests {
            if seen.insert(d.digest.clone()) {
                descriptors.push(d);
            }
        }
        if descriptors.len() > limits.max_referrers {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("{what}: more than {} referrers", limits.max_referrers),
            ));
        }
        let Some(next) = next_link(&reply.headers) else {
            break;
        };
        let next = reply
            .url
            .join(&next)
            .map_err(|e| Error::new(ErrorKind::Registry, format!("{what}: invalid Link target {next:?}: {e}")))?;
        // An empty page on the way to more (a cursor past entries the registry filtered out) is followed,
        // up to a bound; a page of entries already listed, or a link back to a page already read, is not.
        empty_in_a_row = if served == 0 { empty_in_a_row + 1 } else { 0 };
        let advanced = descriptors.len() > before || (served == 0 && empty_in_a_row <= MAX_EMPTY_PAGES);
        if !advanced || requested.contains(&next) {
            return Err(Error::new(
                ErrorKind::Registry,
                format!(
                    "{what}: page {page_no} brings no new referrer ({served} listed), or links back to a page \
                     already read, although the registry links a next page: the listing cannot be completed"
                ),
            ));
        }
        url = next;
    }
    // Filter here too: harmless when the registry did, necessary when it did not.
    Ok(Api::Listed(filter(descriptors, artifact_type), filtered))
}

fn filter(descriptors: Vec<Descriptor>, artifact_type: Option<&str>) -> Vec<Descriptor> {
    match artifact_type {
        Some(t) => descriptors.into_iter().filter(|d| d.artifact_type.as_deref() == Some(t)).collect(),
        None => descriptors,
    }
}

async fn from_tag(repo: &RegistryRepository, subject: &Digest, artifact_type: Option<&str>) -> Result<Referrers> {
    let tag = subject.referrers_tag();
    // `get` is `Ok(None)` only on a definite not-found; 401/403/429/5xx stay errors.
    let index =
        manifests::get(repo, &tag).await.map_err(|e| e.context(format!("reading the referrers tag of {subject}")))?;
    if let Some(e) = index.as_ref().and_then(|raw| tag_schema::fallback_is_subject(&repo.name(), &tag, raw)) {
        return Err(e);
    }
    let descriptors = match &index {
        None => Vec::new(),
        Some(raw) => match &raw.manifest {
            Manifest::Index(i) => filter(i.manifests.clone(), artifact_type),
            _ => {
                return Err(Error::invalid_format(format!(
                    "referrers tag {}:{tag} holds a {}, not an image index",
                    repo.name(),
                    raw.media_type
                )));
            }
        },
    };
    if descriptors.len() > repo.inner().config.limits.max_referrers {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("referrers tag {}:{tag} lists more than the limit of referrers", repo.name()),
        ));
    }
    Ok(Referrers { subject: subject.clone(), descriptors, source: ReferrersSource::TagSchema { tag, index } })
}
