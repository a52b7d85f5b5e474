//! Tag listing and `_catalog`, following `Link: <…>; rel="next"` pages, with guards for registries
//! that ignore `n` and `last` (distribution 2.8 returns every tag, unsorted, on each page).

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use reqwest::Method;
use reqwest::header::{HeaderMap, LINK};
use serde::Deserialize;
use url::Url;

use super::errors::{parse_error_body, status_error};
use super::http::Call;
use super::{Inner, RegistryRepository};
use crate::error::{Error, ErrorKind, Result};
use crate::store::Repository;

/// Entries asked for per page (registries may give fewer, or ignore it).
const PAGE_SIZE: usize = 1000;
/// Most bytes accepted for one listing page.
const MAX_PAGE_BYTES: u64 = 32 * 1024 * 1024;
/// Empty pages followed in a row (a cursor past entries the registry filtered out) before the listing
/// is given up as one that cannot be completed.
pub(crate) const MAX_EMPTY_PAGES: usize = 10;

/// The target of the first `rel="next"` link in the `Link` headers (RFC 8288): several links per
/// header and several headers are allowed; `rel` may be quoted and list several relation types.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    headers.get_all(LINK).iter().filter_map(|v| v.to_str().ok()).find_map(parse_next_link)
}

pub(crate) fn parse_next_link(value: &str) -> Option<String> {
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let close = open + rest[open..].find('>')?;
        let target = &rest[open + 1..close];
        rest = &rest[close + 1..];
        // Parameters run to the next comma outside quotes.
        let mut end = rest.len();
        let mut quoted = false;
        for (i, c) in rest.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let params = &rest[..end];
        rest = &rest[end..];
        let is_next = params.split(';').filter_map(|p| p.split_once('=')).any(|(k, v)| {
            k.trim().eq_ignore_ascii_case("rel")
                && v.trim().trim_matches('"').split_whitespace().any(|r| r.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.trim().to_owned());
        }
    }
    None
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

/// A listing read page by page: each call to [`Pager::next_page`] fetches one page and returns the
/// entries not on the page before. It stops at the last `Link`, or at the page cap; a registry that
/// stops advancing (a page repeating the one before, a link back to a page already served) ends the
/// listing only when one more request shows that it serves everything each time (see
/// [`Pager::settle_repeat`], which names the one case it cannot tell apart), and is an error otherwise.
/// It keeps one page and the addresses of the pages read in memory, never the whole listing.
pub(crate) struct Pager {
    inner: Arc<Inner>,
    host: String,
    scopes: Vec<String>,
    what: String,
    /// The first page's address, for the probe of [`Pager::settle_repeat`].
    first: Url,
    next: Option<Url>,
    page_no: usize,
    previous: HashSet<String>,
    /// Every page address requested: a link back to one of them is a cycle, whatever the pages hold
    /// (bounded by `limits.max_pages`).
    requested: HashSet<Url>,
    /// Empty pages in a row, each linking a next one.
    empty_in_a_row: usize,
    /// A page that brings nothing new while the registry links a next one is an error, not the end:
    /// for listings whose completeness decisions rest on (the catalog that orphans are searched in).
    strict: bool,
    /// A first page answered `404 NAME_UNKNOWN` is an empty listing (a catalog entry without tags).
    unknown_is_empty: bool,
}

impl Pager {
    pub(crate) fn new(inner: Arc<Inner>, host: &str, scopes: Vec<String>, first: Url, what: String) -> Pager {
        Pager {
            inner,
            host: host.to_owned(),
            scopes,
            what,
            first: first.clone(),
            next: Some(first),
            page_no: 0,
            previous: HashSet::new(),
            requested: HashSet::new(),
            empty_in_a_row: 0,
            strict: false,
            unknown_is_empty: false,
        }
    }

    /// See the `strict` field.
    pub(crate) fn strict(mut self) -> Pager {
        self.strict = true;
        self
    }

    fn stalled(&self) -> Error {
        Error::new(
            ErrorKind::Registry,
            format!(
                "{}: page {} brings no new entry, or links back to a page already read, although the registry \
                 links a next page (it ignores `last`?): the listing cannot be completed",
                self.what, self.page_no
            ),
        )
    }

    /// The next page's new entries; `None` once the listing is complete. An empty `Some` is a page that
    /// brought nothing new while the listing goes on (an empty page of a cursor-paged registry).
    pub(crate) async fn next_page(&mut self) -> Result<Option<Vec<String>>> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        self.page_no += 1;
        if self.page_no > self.inner.config.limits.max_pages {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("{}: more than {} pages", self.what, self.inner.config.limits.max_pages),
            ));
        }
        self.requested.insert(url.clone());
        let Some((entries, linked)) = self.fetch(url).await? else {
            return Ok(Some(Vec::new()));
        };
        let fresh: Vec<String> = entries.iter().filter(|e| !self.previous.contains(*e)).cloned().collect();
        let served = entries.len();
        self.previous = entries.into_iter().collect();
        let Some(next) = linked else {
            return Ok(Some(fresh));
        };
        let cycles = self.requested.contains(&next);
        self.empty_in_a_row = if served == 0 { self.empty_in_a_row + 1 } else { 0 };
        if served == 0 && self.empty_in_a_row > MAX_EMPTY_PAGES {
            return Err(Error::new(
                ErrorKind::Registry,
                format!(
                    "{}: the registry served {} empty pages in a row, each linking a next one: the listing cannot \
                     be completed",
                    self.what, self.empty_in_a_row
                ),
            ));
        }
        if served == 0 && cycles && !self.strict {
            // An empty page linking back to a page already read hides nothing: the listing is complete.
            return Ok(Some(fresh));
        }
        if !cycles && (!fresh.is_empty() || served == 0) {
            // New entries, or an empty page on the way to more (a cursor past filtered entries): go on.
            self.next = Some(next);
            return Ok(Some(fresh));
        }
        // The registry links a next page but no longer advances.
        self.settle_repeat(served).await?;
        Ok(Some(fresh))
    }

    /// One page: its entries and the resolved `rel="next"` link; `None` for a first page answered
    /// `404 NAME_UNKNOWN` where that means "no tags".
    async fn fetch(&self, url: Url) -> Result<Option<(Vec<String>, Option<Url>)>> {
        let what = &self.what;
        let call = Call::new(what, Method::GET, url.clone()).cap(MAX_PAGE_BYTES);
        let mut reply = self.inner.call(&self.host, &self.scopes, &call).await?;
        // distribution since 2.8.2 refuses an `n` above its `catalog.maxentries` (400
        // PAGINATION_NUMBER_INVALID) instead of serving fewer: ask again without `n`, for its own page size.
        let refused_size = reply.status == reqwest::StatusCode::BAD_REQUEST
            && parse_error_body(&reply.body).iter().any(|e| e.code == "PAGINATION_NUMBER_INVALID");
        if refused_size && url.query_pairs().any(|(k, _)| k == "n") {
            let mut plain = url;
            let kept: Vec<(String, String)> =
                plain.query_pairs().filter(|(k, _)| k != "n").map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            plain.set_query(None);
            if !kept.is_empty() {
                plain.query_pairs_mut().extend_pairs(kept);
            }
            tracing::info!(listing = %what, "page size refused; asking for the registry's own");
            let call = Call::new(what, Method::GET, plain).cap(MAX_PAGE_BYTES);
            reply = self.inner.call(&self.host, &self.scopes, &call).await?;
        }
        if !reply.status.is_success() {
            let unknown = reply.status == reqwest::StatusCode::NOT_FOUND
                && parse_error_body(&reply.body).iter().any(|e| e.code == "NAME_UNKNOWN");
            if unknown && self.unknown_is_empty && self.page_no == 1 {
                return Ok(None);
            }
            return Err(status_error(what, reply.status, &reply.body));
        }
        let page: Page = serde_json::from_slice(&reply.body)
            .map_err(|e| Error::invalid_format(format!("{what}: invalid listing JSON: {e}")))?;
        let linked =
            match next_link(&reply.headers) {
                Some(next) => Some(reply.url.join(&next).map_err(|e| {
                    Error::new(ErrorKind::Registry, format!("{what}: invalid Link target {next:?}: {e}"))
                })?),
                None => None,
            };
        Ok(Some((page.tags.or(page.repositories).unwrap_or_default(), linked)))
    }

    /// A registry that keeps linking a next page without advancing (the last page, `served` entries,
    /// brought nothing new, or the link leads back to a page already read). Either it ignores `n` and
    /// `last` and serves everything every time — then the listing is complete — or it serves at most
    /// `served` entries a page and ignores `last`, and everything past them would be silently left out
    /// (images never migrated, a shared-digest check blind to the rest). One more request with
    /// `n = served − 1` tells the two apart: a registry that honours `n` answers with fewer entries.
    /// What no request can tell apart: a registry that caps its pages and ignores both `n` and `last`
    /// reads as complete. Strict listings (the catalog, whose completeness orphan decisions rest on) take
    /// no chance.
    async fn settle_repeat(&mut self, served: usize) -> Result<()> {
        let serves_everything = if self.strict || served == 0 || served == PAGE_SIZE {
            false
        } else if served > PAGE_SIZE || served == 1 {
            // More than asked for: `n` is ignored. One entry a page is no registry's cap.
            true
        } else {
            let mut probe = self.first.clone();
            let pairs: Vec<(String, String)> =
                probe.query_pairs().filter(|(k, _)| k != "n").map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            probe.query_pairs_mut().clear().extend_pairs(pairs).append_pair("n", &(served - 1).to_string());
            matches!(self.fetch(probe).await?, Some((entries, _)) if entries.len() >= served)
        };
        if serves_everything { Ok(()) } else { Err(self.stalled()) }
    }
}

/// Fetch every page of `pager`, without duplicates, up to `limits.max_tags` entries.
async fn paged(inner: &Arc<Inner>, mut pager: Pager) -> Result<Vec<String>> {
    let max = inner.config.limits.max_tags;
    let what = pager.what.clone();
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    while let Some(page) = pager.next_page().await? {
        let (before, advanced) = (all.len(), !page.is_empty());
        all.extend(page.into_iter().filter(|e| seen.insert(e.clone())));
        if all.len() > max {
            return Err(Error::new(ErrorKind::TooLarge, format!("{what}: more than {max} entries")));
        }
        if all.len() == before && advanced {
            // Nothing new over the whole listing: pages served before, under new addresses.
            return Err(pager.stalled());
        }
    }
    Ok(all)
}

pub(crate) async fn list_tags(repo: &RegistryRepository) -> Result<Vec<String>> {
    paged(&repo.client.inner, tags_pager(repo)?).await
}

fn tags_pager(repo: &RegistryRepository) -> Result<Pager> {
    let what = format!("GET tags of {}", repo.name());
    let mut url = repo.url("tags/list")?;
    url.query_pairs_mut().append_pair("n", &PAGE_SIZE.to_string());
    let mut pager = Pager::new(repo.client.inner.clone(), &repo.host, repo.scope("pull"), url, what);
    pager.unknown_is_empty = repo.in_catalog;
    Ok(pager)
}

/// The tags of `repo` page by page, one page in memory; the same caps as [`list_tags`] (pages, and
/// `limits.max_tags` entries over the whole listing), so a registry cannot stream without end.
pub(crate) fn tag_pages(repo: &RegistryRepository) -> BoxStream<'static, Result<Vec<String>>> {
    let max = repo.client.inner.config.limits.max_tags;
    let start = tags_pager(repo).map(|pager| (pager, 0usize));
    futures_util::stream::unfold(Some(start), move |state| async move {
        let (mut pager, seen) = match state? {
            Ok(state) => state,
            Err(e) => return Some((Err(e), None)),
        };
        match pager.next_page().await {
            Ok(Some(page)) if seen + page.len() > max => {
                let e = Error::new(ErrorKind::TooLarge, format!("{}: more than {max} entries", pager.what));
                Some((Err(e), None))
            }
            Ok(Some(page)) => {
                let seen = seen + page.len();
                Some((Ok(page), Some(Ok((pager, seen)))))
            }
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    })
    .boxed()
}

/// Every repository of `host`; the entry cap is `limits.max_tags`, as for tags.
pub(crate) async fn catalog(inner: &Arc<Inner>, host: &str) -> Result<Vec<String>> {
    paged(inner, catalog_pager(inner, host)?).await
}

/// The catalog of `host`, page by page; strict (a page that does not advance is an error), since
/// orphans may be deleted on its completeness and whole registries migrated from it.
pub(crate) fn catalog_pager(inner: &Arc<Inner>, host: &str) -> Result<Pager> {
    let what = format!("GET catalog of {host}");
    let mut url =
        inner.base_url(host)?.join("v2/_catalog").map_err(|e| Error::invalid_input(format!("{what}: {e}")))?;
    url.query_pairs_mut().append_pair("n", &PAGE_SIZE.to_string());
    Ok(Pager::new(inner.clone(), host, vec!["registry:catalog:*".to_owned()], url, what).strict())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_next_among_several_links() {
        assert_eq!(
            parse_next_link(r#"</v2/_catalog?last=a%2Fb&n=1>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=a%2Fb&n=1")
        );
        assert_eq!(
            parse_next_link(r#"<https://r.example/v2/x/tags/list?last=b>; rel="prev", <https://r.example/v2/x/tags/list?last=c>; title="a, b"; rel=next"#)
                .as_deref(),
            Some("https://r.example/v2/x/tags/list?last=c")
        );
        assert_eq!(parse_next_link(r#"</p2>; rel="prefetch next""#).as_deref(), Some("/p2"));
        assert_eq!(parse_next_link(r#"</p1>; rel="prev""#), None);
        assert_eq!(parse_next_link("garbage <unterminated"), None);
        assert_eq!(parse_next_link(""), None);
    }

    #[test]
    fn reads_link_from_several_headers() {
        let mut h = HeaderMap::new();
        h.append(LINK, r#"</a>; rel="prev""#.parse().unwrap());
        h.append(LINK, r#"</b>; rel="next""#.parse().unwrap());
        assert_eq!(next_link(&h).as_deref(), Some("/b"));
    }
}
