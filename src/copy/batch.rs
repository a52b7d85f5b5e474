//! `copy` as a job of the batch engine ([`crate::batch`]): one unit per image (a tag of a listed
//! repository, or the image a target names), `jobs` images in flight across all repositories, each
//! source repository mapped to its destination repository, the settle pass of the destination's
//! referrers tag schema once per repository, each finished image recorded in the journal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use super::report::{CopyOutcome, ImageCopy, IndexEntries};
use super::{CopyOptions, copy_image_in_turn};
use crate::batch::{self, BatchOutcome, Job, Journal, Progress};
use crate::error::{Error, Result};
use crate::keyed_locks::KeyedLocks;
use crate::limits::Limits;
use crate::model::digest::Digest;
use crate::store::attachments::is_attachment_tag;
use crate::store::layout::LayoutRepository;
use crate::store::registry::RegistryClient;
use crate::store::tag_schema::{self, IndexOptions};
use crate::store::{AnyRepository, ReferrersCapability, Repository};
use crate::targets::{RepositoryTarget, TargetError};
use crate::verification::Verifier;

/// Where copies go.
#[derive(Clone, Debug)]
pub enum Destination {
    /// One repository (a registry repository or an OCI layout) for every source repository.
    Repository(Arc<AnyRepository>),
    /// A registry, each source repository's path appended to `prefix` (`--all-repos`: a whole
    /// registry to another, or under a path of it).
    Registry {
        /// The client for the destination registry.
        client: RegistryClient,
        /// The registry host.
        host: String,
        /// The path every repository goes under (empty for the same paths).
        prefix: String,
    },
}

impl Destination {
    /// An OCI layout at `path`, created when missing.
    pub fn layout(path: &std::path::Path, limits: Limits) -> Result<Destination> {
        Ok(Destination::Repository(Arc::new(AnyRepository::Layout(LayoutRepository::create(path, limits)?))))
    }

    /// Whether `source` is a repository this destination writes to: a whole registry copied under a path
    /// of itself (`--all-repos HOST HOST/mirror`) lists its own copies in its catalog, and copying those
    /// again would nest `mirror/mirror/…` run after run.
    fn holds_copies_of(&self, source: &AnyRepository) -> bool {
        let (Destination::Registry { client, host, prefix }, AnyRepository::Registry(s)) = (self, source) else {
            return false;
        };
        let prefix = prefix.trim_matches('/');
        let name = s.repository_name();
        // Copies go to `prefix/<name>`: a repository named `prefix` itself is a source like any other.
        !prefix.is_empty()
            && client.repository(host, prefix).host() == s.host()
            && name.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
    }

    fn for_source(&self, source: &AnyRepository) -> Result<Arc<AnyRepository>> {
        match self {
            Destination::Repository(r) => Ok(r.clone()),
            Destination::Registry { client, host, prefix } => {
                let AnyRepository::Registry(s) = source else {
                    return Err(Error::invalid_input(format!(
                        "{}: a layout source needs a destination repository, not a registry",
                        source.name()
                    )));
                };
                let path = if prefix.is_empty() {
                    s.repository_name().to_owned()
                } else {
                    format!("{}/{}", prefix.trim_end_matches('/'), s.repository_name())
                };
                Ok(Arc::new(AnyRepository::Registry(client.repository(host, &path))))
            }
        }
    }
}

/// One image to copy.
#[derive(Clone, Debug)]
pub struct CopyUnit {
    /// A tag or digest of the source repository.
    pub reference: String,
    /// Tags to push it under in the destination.
    pub tags: Vec<String>,
}

/// What the journal records of a finished image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyEvent {
    /// The source repository.
    pub source: String,
    /// The tag copied (the first, when it was pushed under several), or the digest when no tag was.
    pub reference: String,
    /// The image it named; absent when a tag of the source could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Digest>,
    /// The destination repository.
    pub destination: String,
    /// The outcome.
    pub outcome: CopyOutcome,
    /// The run's [`CopyOptions::settings_fingerprint`] (absent in journals of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
    /// For `copied`: the referrers it wrote, by subject. A run resuming from this line settles them
    /// again (this run may stop before its settle pass) and copies the image again if one is gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<IndexEntries>,
    /// For `copied` and `already-copied`: every referrer of the source's the image has in the
    /// destination from this copy, written or found there, by subject (absent in journals of earlier
    /// versions). A run resuming from this line copies the image again if one is gone. Each line
    /// replaces the image's earlier ones: it lists what the image relies on now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub served: Vec<IndexEntries>,
}

/// A copy journal: what earlier runs finished, and the file this run appends to.
#[derive(Debug)]
pub struct CopyJournal {
    /// The file.
    pub events: Journal<CopyEvent>,
    done: HashMap<(String, String), Done>,
    settings: String,
}

/// An image an earlier run finished: what it was, where it went, and the referrers it wrote there.
#[derive(Debug)]
struct Done {
    image: Digest,
    destination: String,
    /// Written by the copy: settled again when resumed.
    entries: Vec<IndexEntries>,
    /// Written or found: each must still be served for the image to be resumed.
    served: Vec<IndexEntries>,
}

impl CopyJournal {
    /// Open (or create) the journal at `path` for a run with these `settings`
    /// ([`CopyOptions::settings_fingerprint`]): only images finished under the same settings (the same
    /// conversion, trust policy, legacy mode and filter) are skipped.
    pub fn open(path: &std::path::Path, settings: impl Into<String>) -> Result<CopyJournal> {
        let settings = settings.into();
        let (events, earlier) = Journal::open(path)?;
        // The last event of an image decides: a later failure (a settle pass that could not restore an
        // entry, say) means it must be copied again.
        let mut done: HashMap<(String, String), Done> = HashMap::new();
        for e in earlier {
            let e: CopyEvent = e;
            let key = (e.source, e.reference);
            match (e.outcome, e.image) {
                (CopyOutcome::Copied | CopyOutcome::AlreadyCopied, Some(image))
                    if e.settings.as_deref() == Some(&settings) =>
                {
                    let served = if e.served.is_empty() { e.entries.clone() } else { e.served };
                    done.insert(key, Done { image, destination: e.destination, entries: e.entries, served });
                }
                (CopyOutcome::Resumed, _) => {}
                // A failure, or a copy under other settings, means it must be copied (again).
                (CopyOutcome::Copied | CopyOutcome::AlreadyCopied | CopyOutcome::Blocked | CopyOutcome::Failed, _) => {
                    done.remove(&key);
                }
            }
        }
        Ok(CopyJournal { events, done, settings })
    }

    /// Lines of earlier runs that could not be read.
    pub fn skipped_lines(&self) -> usize {
        self.events.skipped_lines
    }
}

/// Copying images, as the batch engine runs it.
pub struct CopyJob<'a> {
    /// Where they go.
    pub destination: &'a Destination,
    /// Verifies every legacy layer before it is converted.
    pub verifier: &'a Arc<Verifier>,
    /// How to copy.
    pub options: &'a CopyOptions,
    /// Tags for the image a target names (`SRC:tag`, or the destination's tag).
    pub named_tags: Vec<String>,
    /// What earlier runs completed.
    pub journal: Option<&'a CopyJournal>,
    destinations: Mutex<HashMap<String, Arc<AnyRepository>>>,
    /// One unit at a time per image and destination (see [`copy_image_in_turn`]).
    images: KeyedLocks,
}

impl<'a> CopyJob<'a> {
    /// A job copying into `destination`.
    pub fn new(
        destination: &'a Destination,
        verifier: &'a Arc<Verifier>,
        options: &'a CopyOptions,
        named_tags: Vec<String>,
        journal: Option<&'a CopyJournal>,
    ) -> CopyJob<'a> {
        CopyJob {
            destination,
            verifier,
            options,
            named_tags,
            journal,
            destinations: Mutex::new(HashMap::new()),
            images: KeyedLocks::default(),
        }
    }

    /// The destination of `source`, one handle per repository for the run (it remembers what it learnt
    /// of the registry, like whether it serves the referrers API).
    fn destination_of(&self, source: &AnyRepository) -> Result<Arc<AnyRepository>> {
        let mut known = self.destinations.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = known.get(&source.name()) {
            return Ok(d.clone());
        }
        let d = self.destination.for_source(source)?;
        known.insert(source.name(), d.clone());
        Ok(d)
    }

    async fn resumed(&self, source: &AnyRepository, destination: &AnyRepository, unit: &CopyUnit) -> Option<ImageCopy> {
        // Events are keyed by the tag copied (or the digest when no tag was): a named image's unit holds
        // its digest as the reference and its tag apart.
        let done = &self.journal?.done;
        let key = unit.tags.first().unwrap_or(&unit.reference);
        let Done { image, destination: dest, entries, served } = done.get(&(source.name(), key.clone()))?;
        if *dest != destination.name() {
            return None;
        }
        let probe = unit.tags.first().cloned().unwrap_or_else(|| image.to_string());
        // Still the same image in the source (a moved tag is a new image to copy), still served in the
        // destination.
        match source.head_manifest(&unit.reference).await {
            Ok(Some(d)) if d.digest == *image => {}
            _ => return None,
        }
        match destination.head_manifest(&probe).await {
            Ok(Some(d)) if d.digest == *image => {}
            _ => return None,
        }
        // And every referrer it wrote or found still served: an index listing lags deletions on some
        // registries, and a rollback in between removes them.
        for digest in served.iter().flat_map(|e| &e.referrers) {
            match destination.head_manifest(&digest.to_string()).await {
                Ok(Some(d)) if d.digest == *digest => {}
                _ => return None,
            }
        }
        let mut r = ImageCopy::new(source.name(), destination.name(), key.clone(), Some(image.clone()));
        r.outcome = CopyOutcome::Resumed;
        r.resumed_entries = entries.clone();
        r.tags = unit.tags.clone();
        r.reasons.push("recorded as copied in the journal; the destination still serves it".into());
        Some(r)
    }
}

/// Same registry host: blobs can be mounted from the source repository instead of transferred.
fn mount_source(source: &AnyRepository, destination: &AnyRepository) -> Option<String> {
    match (source, destination) {
        (AnyRepository::Registry(s), AnyRepository::Registry(d)) if s.host() == d.host() => {
            Some(s.repository_name().to_owned())
        }
        _ => None,
    }
}

impl Job for CopyJob<'_> {
    type Unit = CopyUnit;
    type Report = ImageCopy;
    type Event = CopyEvent;

    fn named(&self, images: Vec<Digest>) -> Vec<CopyUnit> {
        // A named index comes with its platform manifests: the index's copy covers them all.
        images
            .into_iter()
            .take(1)
            .map(|d| CopyUnit { reference: d.to_string(), tags: self.named_tags.clone() })
            .collect()
    }

    fn list(&self, repo: Arc<AnyRepository>) -> BoxStream<'static, Result<Vec<CopyUnit>>> {
        if self.destination.holds_copies_of(&repo) {
            tracing::warn!(
                repository = %repo.name(),
                "not copied: it lies under the destination path, so it is an earlier copy, not a source"
            );
            return futures_util::stream::empty().boxed();
        }
        image_tag_pages(repo).boxed()
    }

    async fn run(&self, repo: &AnyRepository, unit: &CopyUnit) -> ImageCopy {
        let destination = match self.destination_of(repo) {
            Ok(d) => d,
            Err(e) => {
                let asked = unit.tags.first().unwrap_or(&unit.reference).clone();
                let mut r = ImageCopy::new(repo.name(), String::new(), asked, unit.reference.parse().ok());
                r.fail(&e);
                return r;
            }
        };
        if let Some(r) = self.resumed(repo, &destination, unit).await {
            return r;
        }
        let mount = mount_source(repo, &destination);
        copy_image_in_turn(
            repo,
            &*destination,
            &unit.reference,
            &unit.tags,
            mount.as_deref(),
            self.verifier,
            self.options,
            Some(&self.images),
        )
        .await
    }

    async fn finish(&self, repo: &AnyRepository, reports: &mut [ImageCopy]) -> Vec<usize> {
        let Ok(destination) = self.destination_of(repo) else {
            return Vec::new();
        };
        let changed = settle(&destination, reports, self.options).await;
        // The repository is done: its handle goes, so what the run holds does not grow with the catalog
        // (a later target naming it again opens a new one).
        self.destinations.lock().unwrap_or_else(|p| p.into_inner()).remove(&repo.name());
        changed
    }

    fn unit_key(&self, unit: &CopyUnit) -> Option<String> {
        // The same image under other tags is other work (those tags are pushed too).
        Some(format!("{} {}", unit.reference, unit.tags.join(",")))
    }

    fn event(&self, report: &ImageCopy) -> Option<CopyEvent> {
        Some(CopyEvent {
            source: report.source.clone(),
            reference: report.reference.clone(),
            image: report.image.clone(),
            destination: report.destination.clone(),
            outcome: report.outcome,
            settings: self.journal.map(|j| j.settings.clone()),
            entries: match report.outcome {
                CopyOutcome::Copied => report.written_entries(),
                _ => Vec::new(),
            },
            served: match report.outcome {
                CopyOutcome::Copied | CopyOutcome::AlreadyCopied => report.destination_entries(),
                _ => Vec::new(),
            },
        })
    }
}

/// The image tags of `repo`, page by page (legacy and referrers tag-schema tags travel with their images).
fn image_tag_pages(repo: Arc<AnyRepository>) -> impl Stream<Item = Result<Vec<CopyUnit>>> + Send + 'static {
    repo.owned_tag_pages().map(|page| {
        page.map(|tags| {
            tags.into_iter()
                .filter(|t| !is_attachment_tag(t))
                .map(|t| CopyUnit { reference: t.clone(), tags: vec![t] })
                .collect()
        })
    })
}

/// The settle pass in the destination: once every image of a repository is done, make sure the
/// referrers tag-schema indexes this run wrote to still list what it listed there (a concurrent writer
/// may have dropped an entry). An image whose entries cannot be restored becomes `failed`.
async fn settle(destination: &AnyRepository, reports: &mut [ImageCopy], options: &CopyOptions) -> Vec<usize> {
    // What this run wrote, and what a run the journal resumes from wrote (it may have been stopped
    // before its settle pass).
    let to_settle = |r: &ImageCopy| match r.outcome {
        CopyOutcome::Copied => r.written_entries(),
        CopyOutcome::Resumed => r.resumed_entries.clone(),
        _ => Vec::new(),
    };
    let Some(first) = reports.iter().flat_map(to_settle).next() else {
        return Vec::new();
    };
    // A run that resumed every image asked nothing that tells whether the destination serves the
    // referrers API: one listing does, before anything is settled in a tag schema it would not read.
    if destination.referrers_capability() == ReferrersCapability::Unknown {
        let _ = destination.referrers(&first.subject, None).await;
    }
    if destination.referrers_capability() == ReferrersCapability::Supported {
        return Vec::new();
    }
    tokio::time::sleep(tag_schema::confirm_delay()).await;
    let index = IndexOptions { repair: false, max_retries: options.migrate.index_retries };
    // One image's subjects in turn, `jobs` images at once: a repository of a thousand images is a
    // thousand index reads, each a round trip to a remote registry.
    let changed = Mutex::new(Vec::new());
    let changed_ref = &changed;
    futures_util::stream::iter(reports.iter_mut().enumerate())
        .for_each_concurrent(options.migrate.jobs.max(1), |(i, report)| async move {
            for entries in to_settle(report) {
                if let Err(e) = tag_schema::settle(destination, &entries.subject, &entries.referrers, index).await {
                    report.fail(&e);
                    changed_ref.lock().unwrap_or_else(|p| p.into_inner()).push(i);
                    break;
                }
            }
        })
        .await;
    let mut changed = changed.into_inner().unwrap_or_else(|p| p.into_inner());
    changed.sort_unstable();
    changed
}

/// Copy every image the targets name into `destination` (a whole repository: every tagged image), at
/// most `options.migrate.jobs` images at once across all repositories (see [`crate::batch`]).
pub async fn copy_batch<S>(targets: S, job: &CopyJob<'_>, progress: &dyn Progress<ImageCopy>) -> BatchOutcome<ImageCopy>
where
    S: Stream<Item = std::result::Result<RepositoryTarget, TargetError>> + Send,
{
    batch::run(job, targets, job.options.migrate.jobs, job.journal.map(|j| &j.events), progress).await
}

/// [`copy_batch`], handing each repository's image reports to `deliver` as soon as they are final
/// (target order, see [`batch::run_streamed`]). Returns the sources that could not be resolved or listed.
pub async fn copy_batch_streamed<S>(
    targets: S,
    job: &CopyJob<'_>,
    progress: &dyn Progress<ImageCopy>,
    deliver: &mut (dyn FnMut(Vec<ImageCopy>) + Send),
) -> Vec<TargetError>
where
    S: Stream<Item = std::result::Result<RepositoryTarget, TargetError>> + Send,
{
    batch::run_streamed(job, targets, job.options.migrate.jobs, job.journal.map(|j| &j.events), progress, deliver).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(image: &Digest, outcome: CopyOutcome, settings: &str, entries: &[&Digest], served: &[&Digest]) -> String {
        let at = |digests: &[&Digest]| -> Vec<IndexEntries> {
            if digests.is_empty() {
                return Vec::new();
            }
            vec![IndexEntries { subject: image.clone(), referrers: digests.iter().map(|d| (*d).clone()).collect() }]
        };
        let event = CopyEvent {
            source: "src/app".into(),
            reference: "v1".into(),
            image: Some(image.clone()),
            destination: "dst/app".into(),
            outcome,
            settings: Some(settings.into()),
            entries: at(entries),
            served: at(served),
        };
        serde_json::to_string(&event).unwrap()
    }

    /// The last line of an image decides what a resumed run settles again (what that copy wrote) and what
    /// must still be served for it to be skipped (what it wrote or found); a failure or other settings
    /// forget the image, and a line of an earlier version (no `served`) has its written referrers
    /// checked.
    #[test]
    fn the_last_line_of_an_image_decides_what_must_still_be_served() {
        let image = Digest::sha256(b"image");
        let (r1, r2) = (Digest::sha256(b"r1"), Digest::sha256(b"r2"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.jsonl");
        let read = |lines: &[String]| {
            std::fs::write(&path, lines.join("\n") + "\n").unwrap();
            let journal = CopyJournal::open(&path, "same").unwrap();
            journal.done.get(&("src/app".to_owned(), "v1".to_owned())).map(|d| {
                let all = |e: &[IndexEntries]| e.iter().flat_map(|e| e.referrers.clone()).collect::<Vec<_>>();
                (all(&d.entries), all(&d.served))
            })
        };
        let copied = line(&image, CopyOutcome::Copied, "same", &[&r1], &[&r1, &r2]);
        let again = line(&image, CopyOutcome::AlreadyCopied, "same", &[], &[&r1, &r2]);
        assert_eq!(read(std::slice::from_ref(&copied)), Some((vec![r1.clone()], vec![r1.clone(), r2.clone()])));
        assert_eq!(read(&[copied.clone(), again.clone()]), Some((vec![], vec![r1.clone(), r2.clone()])));
        let earlier_version = line(&image, CopyOutcome::Copied, "same", &[&r1], &[]);
        assert_eq!(read(&[earlier_version]), Some((vec![r1.clone()], vec![r1.clone()])));
        let failed = line(&image, CopyOutcome::Failed, "same", &[], &[]);
        assert_eq!(read(&[copied.clone(), failed]), None);
        let other_settings = line(&image, CopyOutcome::AlreadyCopied, "other", &[], &[&r1]);
        assert_eq!(read(&[copied, other_settings]), None);
    }
}
