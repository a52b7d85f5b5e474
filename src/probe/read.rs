//! The read-only facts: `GET /v2/`, the catalog, and for a repository its tag listing, the referrers
//! API, its filter and pages, the referrers tag of an image and `Range` on a blob. Every request is a
//! GET: nothing here changes the registry.

use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, RANGE};
use serde::Deserialize;

use super::interpret::{self, Answer};
use super::report::{
    ApiFact, AuthScheme, Credentials, Fact, FilterSupport, Paging, RangeSupport, ReferrersSupport, TagReading,
};
use crate::error::{ErrorKind, Result};
use crate::model::digest::Digest;
use crate::model::media_type::{MANIFEST_ACCEPT, OCI_INDEX};
use crate::model::oci::{Descriptor, Index, Manifest, RawManifest};
use crate::store::registry::probe::{RawReply, RawRequest};
use crate::store::registry::{RegistryClient, RegistryRepository};

/// Most pages of one referrers listing followed.
const MAX_REFERRER_PAGES: usize = 100;

pub(crate) fn answer_of(reply: &RawReply) -> Answer {
    Answer {
        status: reply.status,
        codes: reply.error_codes(),
        content_type: reply
            .header(CONTENT_TYPE.as_str())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned())
            .filter(|v| !v.is_empty()),
        challenges: reply.challenge_schemes(),
        link: reply.next_link().is_some(),
    }
}

/// A fact for a request that got no answer at all (or one the client refused).
fn failed<V>(value: V, what: &str, error: &crate::Error) -> Fact<V> {
    Fact::new(value, format!("{what} failed: {error}"))
}

/// `GET /v2/`: anonymous first (the registry's own word on auth), then with the credentials in use. A
/// registry that cannot be reached is an error; one that refuses is a fact.
pub(crate) async fn api(client: &RegistryClient, registry: &str) -> Result<ApiFact> {
    let anonymous = client.raw_registry(registry, &[], RawRequest::new(Method::GET, ""), true).await?;
    let first = answer_of(&anonymous);
    let auth_scheme = interpret::auth_scheme(&first);
    let credentials =
        if client.has_credential(registry).await? { Credentials::Configured } else { Credentials::Anonymous };
    let mut fact = ApiFact {
        anonymous_status: first.status,
        status: first.status,
        auth_scheme,
        credentials,
        granted: first.status == 200,
        detail: String::new(),
    };
    if first.status == 401 {
        match client.raw_registry(registry, &[], RawRequest::new(Method::GET, ""), false).await {
            Ok(reply) => {
                fact.status = reply.status;
                fact.granted = reply.status == 200;
            }
            // A token service that refuses is a denial, not an unreachable registry.
            Err(e) if e.kind() == ErrorKind::Unauthorized => fact.detail = format!("{e}"),
            Err(e) => return Err(e),
        }
    }
    if fact.detail.is_empty() {
        fact.detail = match (fact.granted, auth_scheme) {
            (true, AuthScheme::None) => "open to anonymous requests".to_owned(),
            (true, _) => format!("{} credentials accepted", credentials_word(credentials)),
            (false, _) => format!(
                "{} credentials refused ({} after the {} challenge)",
                credentials_word(credentials),
                fact.status,
                scheme_word(auth_scheme)
            ),
        };
    }
    Ok(fact)
}

fn credentials_word(c: Credentials) -> &'static str {
    match c {
        Credentials::Anonymous => "anonymous",
        Credentials::Configured => "configured",
    }
}

fn scheme_word(s: AuthScheme) -> &'static str {
    match s {
        AuthScheme::None => "no",
        AuthScheme::Basic => "basic",
        AuthScheme::Bearer => "bearer",
        AuthScheme::Other => "unknown",
    }
}

#[derive(Deserialize)]
struct Listing {
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

fn entries(reply: &RawReply) -> Vec<String> {
    serde_json::from_slice::<Listing>(&reply.body).ok().and_then(|l| l.tags.or(l.repositories)).unwrap_or_default()
}

/// `GET /v2/_catalog?n=1`.
pub(crate) async fn catalog(client: &RegistryClient, registry: &str) -> (Fact<super::report::Access>, Fact<Paging>) {
    let scopes = ["registry:catalog:*".to_owned()];
    let request = RawRequest::new(Method::GET, "_catalog").query(&[("n", "1")]);
    match client.raw_registry(registry, &scopes, request, false).await {
        Ok(reply) => interpret::catalog(&answer_of(&reply), entries(&reply).len()),
        // A token service that refuses the catalog scope is a denial of the catalog.
        Err(e) if e.kind() == ErrorKind::Unauthorized => (
            failed(super::report::Access::Denied, "GET /v2/_catalog", &e),
            failed(Paging::NotApplicable, "GET /v2/_catalog", &e),
        ),
        Err(e) => (
            failed(super::report::Access::Other, "GET /v2/_catalog", &e),
            failed(Paging::Unknown, "GET /v2/_catalog", &e),
        ),
    }
}

/// `tags/list?n=1`, and the whole listing when one tag came back without a `Link` (to tell a cut list
/// from a short one). Also returns the tags of that first page.
pub(crate) async fn tag_paging(repo: &RegistryRepository) -> (Fact<Paging>, Vec<String>) {
    let first = match repo.raw("pull", RawRequest::new(Method::GET, "tags/list").query(&[("n", "1")])).await {
        Ok(r) => r,
        Err(e) => return (failed(Paging::Unknown, "GET tags/list?n=1", &e), Vec::new()),
    };
    let answer = answer_of(&first);
    let tags = entries(&first);
    let mut total = None;
    if answer.status == 200
        && !answer.link
        && tags.len() == 1
        && let Ok(all) = repo.raw("pull", RawRequest::new(Method::GET, "tags/list")).await
        && all.status == 200
    {
        total = Some(entries(&all).len());
    }
    (interpret::paging(&answer, tags.len(), 1, total), tags)
}

/// An image to probe referrers with: its digest and a blob of it.
#[derive(Clone, Debug)]
pub(crate) struct Subject {
    pub digest: Digest,
    pub blob: Option<Descriptor>,
}

/// The first tagged manifest of the repository that is not a cosign or referrers tag.
pub(crate) async fn find_subject(repo: &RegistryRepository, tags: &[String]) -> Option<Subject> {
    let tag = tags.iter().find(|t| !t.starts_with("sha256-"))?;
    let raw = get_manifest(repo, tag).await.ok()??;
    let blob = match &raw.manifest {
        Manifest::Image(m) => Some(m.config.clone()),
        _ => None,
    };
    Some(Subject { digest: raw.digest, blob })
}

/// A manifest by tag or digest, as served (digest of the bytes, not of any header). `None` when absent.
pub(crate) async fn get_manifest(repo: &RegistryRepository, reference: &str) -> Result<Option<RawManifest>> {
    let reply = get_manifest_raw(repo, reference).await?;
    if reply.status != 200 {
        return Ok(None);
    }
    let declared = reply.header(CONTENT_TYPE.as_str()).map(str::to_owned);
    Ok(RawManifest::parse(reply.body.clone(), declared.as_deref()).ok())
}

pub(crate) async fn get_manifest_raw(repo: &RegistryRepository, reference: &str) -> Result<RawReply> {
    let path = format!("manifests/{reference}");
    repo.raw("pull", RawRequest::new(Method::GET, &path).header(ACCEPT, &MANIFEST_ACCEPT.join(", "))?).await
}

/// A referrers listing followed through its pages.
pub(crate) struct ReferrersListing {
    /// The first page's answer.
    pub answer: Answer,
    /// Every entry of every page, when the first page was an index.
    pub entries: Option<Vec<Descriptor>>,
    /// `OCI-Filters-Applied: artifactType` on the first page.
    pub filtered: bool,
    /// Pages read.
    pub pages: usize,
}

pub(crate) async fn list_referrers(
    repo: &RegistryRepository,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Result<ReferrersListing> {
    let path = format!("referrers/{subject}");
    let query: Vec<(&str, &str)> = artifact_type.map(|t| ("artifactType", t)).into_iter().collect();
    let first = repo.raw("pull", RawRequest::new(Method::GET, &path).query(&query).header(ACCEPT, OCI_INDEX)?).await?;
    let answer = answer_of(&first);
    let filtered = first.header_list("oci-filters-applied").iter().any(|f| f == "artifactType");
    let mut listing = ReferrersListing { answer, entries: None, filtered, pages: 1 };
    let Some(index) = (first.status == 200).then(|| serde_json::from_slice::<Index>(&first.body).ok()).flatten() else {
        return Ok(listing);
    };
    let mut all = index.manifests;
    let (mut next, mut base) = (first.next_link(), first.url.clone());
    while let Some(link) = next.take() {
        if listing.pages >= MAX_REFERRER_PAGES {
            break;
        }
        let Ok(url) = base.join(&link) else { break };
        // The link names a path under the registry; ask for it with the same repository scope.
        let Some(rest) = url.path().strip_prefix(&format!("/v2/{}/", repo.repository_name())) else { break };
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let query: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let reply =
            repo.raw("pull", RawRequest::new(Method::GET, rest).query(&query).header(ACCEPT, OCI_INDEX)?).await?;
        listing.pages += 1;
        let Some(page) = (reply.status == 200).then(|| serde_json::from_slice::<Index>(&reply.body).ok()).flatten()
        else {
            break;
        };
        all.extend(page.manifests);
        (next, base) = (reply.next_link(), reply.url.clone());
    }
    listing.entries = Some(all);
    Ok(listing)
}

/// The facts about referrers of one repository.
pub(crate) struct ReferrersFacts {
    pub api: Fact<ReferrersSupport>,
    pub filter: Fact<FilterSupport>,
    pub paging: Fact<Paging>,
}

/// The referrers API on `subject`, its filter on `artifact_type`, and its pages.
pub(crate) async fn referrers(repo: &RegistryRepository, subject: &Digest, artifact_type: &str) -> ReferrersFacts {
    let listing = match list_referrers(repo, subject, None).await {
        Ok(l) => l,
        Err(e) => {
            let what = format!("GET referrers/{subject}");
            return ReferrersFacts {
                api: failed(ReferrersSupport::Unknown, &what, &e),
                filter: Fact::new(FilterSupport::NotApplicable, "the referrers listing failed"),
                paging: Fact::new(Paging::NotApplicable, "the referrers listing failed"),
            };
        }
    };
    let api = interpret::referrers(&listing.answer, listing.entries.is_some());
    if api.value != ReferrersSupport::Supported {
        return ReferrersFacts {
            api,
            filter: Fact::new(FilterSupport::NotApplicable, "no referrers API"),
            paging: Fact::new(Paging::NotApplicable, "no referrers API"),
        };
    }
    let count = listing.entries.as_ref().map_or(0, Vec::len);
    let paging = if listing.pages > 1 {
        Fact::new(Paging::Link, format!("{count} referrers over {} pages linked with Link", listing.pages)).status(200)
    } else {
        Fact::new(Paging::NotSeen, format!("{count} referrers in one answer, no Link")).status(200)
    };
    let filter = match list_referrers(repo, subject, Some(artifact_type)).await {
        Ok(filtered) => {
            let kinds = filtered.entries.as_ref().filter(|_| count > 0).map(|entries| {
                let wanted = entries.iter().any(|d| d.artifact_type.as_deref() == Some(artifact_type));
                let others = entries.iter().any(|d| d.artifact_type.as_deref() != Some(artifact_type));
                (wanted, others)
            });
            // Judging by the listing needs both kinds listed unfiltered: the write test pushes both.
            let both = listing.entries.as_ref().is_some_and(|e| {
                e.iter().any(|d| d.artifact_type.as_deref() == Some(artifact_type))
                    && e.iter().any(|d| d.artifact_type.as_deref() != Some(artifact_type))
            });
            interpret::filter(&filtered.answer, filtered.filtered, kinds.filter(|_| both))
        }
        Err(e) => failed(FilterSupport::NotSignalled, "the filtered referrers listing", &e),
    };
    ReferrersFacts { api, filter, paging }
}

/// What `sha256-<hex>` of `subject` reads as.
pub(crate) async fn referrers_tag(repo: &RegistryRepository, subject: &Digest) -> Fact<TagReading> {
    match get_manifest_raw(repo, &subject.referrers_tag()).await {
        Ok(reply) => {
            let served = Digest::sha256(&reply.body);
            let index = serde_json::from_slice::<Index>(&reply.body).is_ok_and(|i| {
                i.media_type.as_deref() == Some(OCI_INDEX) || reply.header(CONTENT_TYPE.as_str()) == Some(OCI_INDEX)
            });
            interpret::tag_reading(&answer_of(&reply), reply.status == 200 && served == *subject, index)
        }
        Err(e) => failed(TagReading::Other, "GET of the referrers tag", &e),
    }
}

/// `Range: bytes=0-0` on a blob.
pub(crate) async fn range(repo: &RegistryRepository, blob: &Descriptor) -> Fact<RangeSupport> {
    let path = format!("blobs/{}", blob.digest);
    let request = match RawRequest::new(Method::GET, &path).header(RANGE, "bytes=0-0") {
        Ok(r) => r,
        Err(e) => return failed(RangeSupport::Unknown, "building the Range request", &e),
    };
    match repo.raw("pull", request).await {
        Ok(reply) => interpret::range(&answer_of(&reply)),
        Err(e) => failed(RangeSupport::Unknown, "GET of a blob with Range", &e),
    }
}
