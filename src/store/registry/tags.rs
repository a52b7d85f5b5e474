//! Tag listing and `_catalog`, following `Link: <…>; rel="next"` pages, with guards for registries
//! that ignore `n` and `last` (distribution 2.8 returns every tag, unsorted, on each page).

use std::collections::HashSet;

use reqwest::Method;
use reqwest::header::{HeaderMap, LINK};
use serde::Deserialize;
use url::Url;

use super::errors::status_error;
use super::http::Call;
use super::{Inner, RegistryRepository};
use crate::error::{Error, ErrorKind, Result};
use crate::store::Repository;

/// Entries asked for per page (registries may give fewer, or ignore it).
const PAGE_SIZE: usize = 1000;
/// Most bytes accepted for one listing page.
const MAX_PAGE_BYTES: u64 = 32 * 1024 * 1024;

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

/// Fetch every page from `first`, stopping at the last `Link`, or at a page that brings nothing new
/// (a registry ignoring `last` would otherwise loop forever).
async fn paged(inner: &Inner, host: &str, scopes: &[String], first: Url, what: &str) -> Result<Vec<String>> {
    let limits = &inner.config.limits;
    let mut url = first;
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    for page_no in 1.. {
        if page_no > limits.max_pages {
            return Err(Error::new(ErrorKind::TooLarge, format!("{what}: more than {} pages", limits.max_pages)));
        }
        let call = Call::new(what, Method::GET, url.clone()).cap(MAX_PAGE_BYTES);
        let reply = inner.call(host, scopes, &call).await?;
        if !reply.status.is_success() {
            return Err(status_error(what, reply.status, &reply.body));
        }
        let page: Page = serde_json::from_slice(&reply.body)
            .map_err(|e| Error::invalid_format(format!("{what}: invalid listing JSON: {e}")))?;
        let entries = page.tags.or(page.repositories).unwrap_or_default();
        let before = all.len();
        for entry in entries {
            if seen.insert(entry.clone()) {
                all.push(entry);
            }
        }
        if all.len() > limits.max_tags {
            return Err(Error::new(ErrorKind::TooLarge, format!("{what}: more than {} entries", limits.max_tags)));
        }
        let next = match next_link(&reply.headers) {
            Some(next) if all.len() > before => next,
            _ => break,
        };
        url = reply
            .url
            .join(&next)
            .map_err(|e| Error::new(ErrorKind::Registry, format!("{what}: invalid Link target {next:?}: {e}")))?;
    }
    Ok(all)
}

pub(crate) async fn list_tags(repo: &RegistryRepository) -> Result<Vec<String>> {
    let what = format!("GET tags of {}", repo.name());
    let mut url = repo.url("tags/list")?;
    url.query_pairs_mut().append_pair("n", &PAGE_SIZE.to_string());
    paged(repo.inner(), &repo.host, &repo.scope("pull"), url, &what).await
}

/// Every repository of `host`; the entry cap is `limits.max_tags`, as for tags.
pub(crate) async fn catalog(inner: &Inner, host: &str) -> Result<Vec<String>> {
    let what = format!("GET catalog of {host}");
    let mut url =
        inner.base_url(host)?.join("v2/_catalog").map_err(|e| Error::invalid_input(format!("{what}: {e}")))?;
    url.query_pairs_mut().append_pair("n", &PAGE_SIZE.to_string());
    paged(inner, host, &["registry:catalog:*".to_owned()], url, &what).await
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
