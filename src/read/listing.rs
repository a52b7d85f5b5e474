//! Which images of a repository have a legacy `.att`: the work list of `migrate` and `rollback` over a
//! whole repository, read from its tag listing.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};

use crate::error::Result;
use crate::model::cosign::TagKind;
use crate::model::digest::Digest;
use crate::store::{AnyRepository, Repository};

/// Every image of `repo` with a legacy `.att` tag, in tag order.
pub async fn images_with_attestations<R: Repository>(repo: &R) -> Result<Vec<Digest>> {
    let mut images: Vec<Digest> = repo
        .list_tags()
        .await?
        .iter()
        .filter_map(|t| TagKind::parse_tag(t))
        .filter(|(_, kind)| *kind == TagKind::Attestation)
        .map(|(d, _)| d)
        .collect();
    images.dedup();
    Ok(images)
}

/// The images of `repo` with a legacy `.att` tag, page by page of its tag listing, each image once.
pub fn attestation_pages(repo: Arc<AnyRepository>) -> impl Stream<Item = Result<Vec<Digest>>> + Send + 'static {
    repo.owned_tag_pages().scan(HashSet::new(), |seen, page| {
        let page = page.map(|tags| {
            tags.iter()
                .filter_map(|t| TagKind::parse_tag(t))
                .filter(|(d, kind)| *kind == TagKind::Attestation && seen.insert(d.clone()))
                .map(|(d, _)| d)
                .collect()
        });
        futures_util::future::ready(Some(page))
    })
}
