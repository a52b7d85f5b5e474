//! `status` as a job of the batch engine ([`crate::batch`]): every image of every repository the targets
//! name — the images their legacy tags and referrers tag-schema tags name, and every tagged image (an index
//! with its platform manifests) — each reported once per repository.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use serde::Serialize;

use super::{ImageStatus, status_image_verified};
use crate::batch::{self, BatchOutcome, Job, Progress};
use crate::error::Result;
use crate::limits::Limits;
use crate::model::cosign::TagKind;
use crate::model::digest::Digest;
use crate::model::oci::Manifest;
use crate::read::referrers::is_buildkit_attestation;
use crate::store::attachments::is_attachment_tag;
use crate::store::{AnyRepository, Repository};
use crate::targets::{RepositoryTarget, TargetError};
use crate::verification::Verifier;

/// One thing to look at in a repository.
#[derive(Clone, Debug)]
pub enum StatusUnit {
    /// An image by digest (named by a target, a legacy tag or a referrers tag-schema tag).
    Image(Digest),
    /// A tag, resolved when its turn comes (an index covers its platform manifests).
    Tag(String),
}

/// What looking at one unit gave.
#[derive(Clone, Debug, Serialize)]
pub struct UnitStatus {
    /// The repository.
    pub repository: String,
    /// The tag or digest looked at.
    pub reference: String,
    /// The images it covered that no earlier unit of the repository reported.
    pub images: Vec<ImageStatus>,
    /// What could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<TargetError>,
}

/// Reporting status, as the batch engine runs it.
#[derive(Default)]
pub struct StatusJob {
    /// The images reported so far, by repository; a repository's go when it is finished, so that what
    /// the run holds does not grow with the catalog.
    seen: Mutex<HashMap<String, HashSet<Digest>>>,
    verifier: Option<Arc<Verifier>>,
    limits: Limits,
}

impl StatusJob {
    /// A job that has reported nothing yet, reading manifests only.
    pub fn new() -> StatusJob {
        StatusJob::default()
    }

    /// A job that also verifies each referrer's claim to convert a legacy layer (`status --verify`).
    pub fn verifying(verifier: Arc<Verifier>, limits: Limits) -> StatusJob {
        StatusJob { verifier: Some(verifier), limits, ..StatusJob::default() }
    }

    /// Whether `image` of `repo` is this call's to report (each image once per repository).
    fn claim(&self, repo: &str, image: &Digest) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.entry(repo.to_owned()).or_default().insert(image.clone())
    }

    /// Give back a claim whose status could not be read, so that another unit naming the image tries.
    fn unclaim(&self, repo: &str, image: &Digest) {
        if let Some(images) = self.seen.lock().unwrap_or_else(|p| p.into_inner()).get_mut(repo) {
            images.remove(image);
        }
    }

    /// How many images the job holds as reported, over every repository (what its memory grows with).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).values().map(HashSet::len).sum()
    }

    async fn images_of(&self, repo: &AnyRepository, unit: &StatusUnit) -> Result<Vec<Digest>> {
        let digest = match unit {
            StatusUnit::Image(d) => return Ok(vec![d.clone()]),
            StatusUnit::Tag(tag) => match repo.get_manifest(tag).await? {
                Some(raw) => raw,
                // Deleted since it was listed: nothing to report.
                None => return Ok(Vec::new()),
            },
        };
        let mut images = vec![digest.digest.clone()];
        if let Manifest::Index(index) = &digest.manifest {
            images.extend(index.manifests.iter().filter(|e| !is_buildkit_attestation(e)).map(|e| e.digest.clone()));
        }
        Ok(images)
    }
}

impl Job for StatusJob {
    type Unit = StatusUnit;
    type Report = UnitStatus;
    type Event = ();

    fn named(&self, images: Vec<Digest>) -> Vec<StatusUnit> {
        images.into_iter().map(StatusUnit::Image).collect()
    }

    fn list(&self, repo: Arc<AnyRepository>) -> BoxStream<'static, Result<Vec<StatusUnit>>> {
        unit_pages(repo).boxed()
    }

    async fn finish(&self, repo: &AnyRepository, _reports: &mut [UnitStatus]) -> Vec<usize> {
        // A target naming the repository again once it is finished starts it anew (see `crate::batch`),
        // and reports its images again: the price of not holding every image of the run.
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).remove(&repo.name());
        Vec::new()
    }

    async fn run(&self, repo: &AnyRepository, unit: &StatusUnit) -> UnitStatus {
        let name = repo.name();
        let reference = match unit {
            StatusUnit::Image(d) => d.to_string(),
            StatusUnit::Tag(t) => t.clone(),
        };
        let mut out =
            UnitStatus { repository: name.clone(), reference: reference.clone(), images: Vec::new(), error: None };
        let result = async {
            for image in self.images_of(repo, unit).await? {
                if self.claim(&name, &image) {
                    match status_image_verified(repo, &image, self.verifier.as_ref(), &self.limits).await {
                        Ok(status) => out.images.push(status),
                        Err(e) => {
                            self.unclaim(&name, &image);
                            return Err(e);
                        }
                    }
                }
            }
            Ok::<_, crate::Error>(())
        }
        .await;
        if let Err(e) = result {
            out.error = Some(TargetError::new(&format!("{name}@{reference}"), &e));
        }
        out
    }
}

/// The units of `repo`, page by page: each image a legacy or referrers tag-schema tag names (once), and
/// every other tag.
fn unit_pages(repo: Arc<AnyRepository>) -> impl Stream<Item = Result<Vec<StatusUnit>>> + Send + 'static {
    repo.owned_tag_pages().scan(HashSet::new(), |named, page| {
        let page = page.map(|tags| {
            let mut units = Vec::new();
            for tag in tags {
                let subject = match TagKind::parse_tag(&tag) {
                    Some((digest, _)) => Some(digest),
                    None if is_attachment_tag(&tag) => tag.replacen('-', ":", 1).parse::<Digest>().ok(),
                    None => None,
                };
                match subject {
                    Some(d) if named.insert(d.clone()) => units.push(StatusUnit::Image(d)),
                    Some(_) => {}
                    None => units.push(StatusUnit::Tag(tag)),
                }
            }
            units
        });
        futures_util::future::ready(Some(page))
    })
}

/// The status of every image the targets name, `jobs` images at once across all repositories (`job`:
/// [`StatusJob::new`], or [`StatusJob::verifying`]).
pub async fn status_batch<S>(
    targets: S,
    job: &StatusJob,
    jobs: usize,
    progress: &dyn Progress<UnitStatus>,
) -> BatchOutcome<UnitStatus>
where
    S: Stream<Item = std::result::Result<RepositoryTarget, TargetError>> + Send,
{
    batch::run(job, targets, jobs, None, progress).await
}

/// [`status_batch`], handing each repository's units to `deliver` as soon as they are final (target
/// order, see [`batch::run_streamed`]) instead of holding them all until the end. Returns the targets
/// and listings that failed.
pub async fn status_batch_streamed<S>(
    targets: S,
    job: &StatusJob,
    jobs: usize,
    progress: &dyn Progress<UnitStatus>,
    deliver: &mut (dyn FnMut(Vec<UnitStatus>) + Send),
) -> Vec<TargetError>
where
    S: Stream<Item = std::result::Result<RepositoryTarget, TargetError>> + Send,
{
    batch::run_streamed(job, targets, jobs, None, progress, deliver).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::layout::LayoutRepository;

    /// Each image is reported once per repository, and a finished repository's images are let go: what
    /// the job holds at the end of a run is nothing, not every image of the catalog.
    #[tokio::test]
    async fn a_finished_repository_lets_go_of_the_images_it_reported() {
        let dir = tempfile::tempdir().unwrap();
        let scenario = crate::demo::demo().unwrap();
        let mut targets = Vec::new();
        for name in ["a", "b", "c"] {
            let repo = LayoutRepository::create(dir.path().join(name), Limits::default()).unwrap();
            scenario.repo.push_to(&repo).await.unwrap();
            targets.push(Ok(RepositoryTarget { target: name.into(), repo: AnyRepository::Layout(repo), images: None }));
        }
        let job = StatusJob::new();
        let outcome = crate::batch::run(&job, futures_util::stream::iter(targets), 2, None, &()).await;
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        let mut reported: HashMap<String, Vec<Digest>> = HashMap::new();
        for unit in &outcome.reports {
            assert_eq!(unit.error, None);
            reported.entry(unit.repository.clone()).or_default().extend(unit.images.iter().map(|i| i.image.clone()));
        }
        assert_eq!(reported.len(), 3);
        for (repo, images) in &reported {
            assert_eq!(images, std::slice::from_ref(&scenario.image), "{repo}: the demo's one image, once");
        }
        assert_eq!(job.held(), 0, "images still held after their repositories finished");
    }
}
