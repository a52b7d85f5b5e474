//! What a batch command works on, resolved here so that every caller gets the command line's rules.
//!
//! A target is an image (`host/repo:tag`, `host/repo@sha256:…`), a repository (`host/repo`), an OCI
//! layout (`ocidir://PATH`, optionally with `:tag` or `@digest`), or — with
//! [`TargetOptions::all_repos`] — a registry host, meaning every repository of its catalog.
//! [`resolve`] turns a list of targets into a stream of [`RepositoryTarget`]s. The catalog is read
//! page by page and each page's repositories are yielded before the next page is fetched, so work can
//! start at once and memory holds one page, not the whole catalog. Image targets cost a manifest read
//! each; a few are read at once, and yielded in the order given. [`Shard`] keeps a stable share of
//! the repositories, so several jobs split a registry without talking to each other.
//!
//! ```no_run
//! use att2ref::store::registry::{ClientConfig, RegistryClient};
//! use att2ref::targets::{self, Shard, TargetOptions};
//! use futures_util::StreamExt;
//!
//! # async fn example() -> att2ref::Result<()> {
//! let client = RegistryClient::new(ClientConfig::default())?;
//! // Shard 0 of 4 of every repository of a registry, plus one image.
//! let given = vec!["registry.example".to_owned()];
//! let options = TargetOptions { all_repos: true, shard: Some(Shard::new(0, 4)?), ..TargetOptions::default() };
//! let mut repositories = std::pin::pin!(targets::resolve(&given, &options, &client));
//! while let Some(next) = repositories.next().await {
//!     match next {
//!         Ok(t) => println!("{} ({:?})", t.repository_name(), t.images),
//!         Err(e) => eprintln!("{}: {}", e.target, e.message),
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::{Stream, StreamExt};
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::limits::Limits;
use crate::model::digest::Digest;
use crate::model::oci::{Index, Manifest};
use crate::model::reference::{ImageReference, Reference};
use crate::read::referrers::is_buildkit_attestation;
use crate::store::attachments::SharedAttachments;
use crate::store::layout::LayoutRepository;
use crate::store::registry::RegistryClient;
use crate::store::{AnyRepository, Repository};

/// One share of the repositories: those whose name hashes to `index` modulo `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Shard `index` of `count` (0-based).
    pub fn new(index: u32, count: u32) -> Result<Shard> {
        if count == 0 || index >= count {
            return Err(Error::invalid_input(format!("shard {index}/{count}: the index must be below the count")));
        }
        Ok(Shard { index, count })
    }

    /// `I/N`, as `--shard` takes it.
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = |why: &str| Error::invalid_input(format!("shard {text:?}: {why} (expected I/N, e.g. 0/4)"));
        let (i, n) = text.split_once('/').ok_or_else(|| bad("no '/'"))?;
        let index = i.trim().parse().map_err(|_| bad("the index is not a number"))?;
        let count = n.trim().parse().map_err(|_| bad("the count is not a number"))?;
        Shard::new(index, count)
    }

    /// Which of `count` shards a repository belongs to: FNV-1a (64-bit) of its name, modulo `count`.
    /// Stable across runs, machines and versions.
    pub fn of(repository: &str, count: u32) -> u32 {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let hash = repository.bytes().fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
        (hash % u64::from(count.max(1))) as u32
    }

    /// Whether `repository` (its path for a registry, its directory for a layout) is in this shard.
    pub fn contains(&self, repository: &str) -> bool {
        Shard::of(repository, self.count) == self.index
    }

    /// The shard index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The number of shards.
    pub fn count(&self) -> u32 {
        self.count
    }
}

/// How targets are resolved.
#[derive(Clone, Debug, Default)]
pub struct TargetOptions {
    /// Targets are registry hosts: every repository of each one's catalog.
    pub all_repos: bool,
    /// Only repositories of this shard.
    pub shard: Option<Shard>,
    /// Caps for the OCI layouts opened (registry repositories take the client's).
    pub limits: Limits,
    /// Where the legacy tags and referrers of every repository's images are kept when not beside them
    /// (cosign's `COSIGN_REPOSITORY`; see [`crate::store::attachments`]). A repository target then means
    /// the images of that repository whose legacy tags are in this one.
    pub attachments: Option<ImageReference>,
    /// With `attachments`: one listing of it shared by every repository of the run (see
    /// [`TargetOptions::share_attachments`]). Keep a clone to ask, after the run, which images with
    /// attachments no repository of the run tags or names ([`SharedAttachments::unclaimed`]).
    pub shared_attachments: Option<Arc<SharedAttachments>>,
}

impl TargetOptions {
    /// Share one listing of the attachments repository when the run covers several repositories
    /// (`all_repos`, or more than one target): each repository then lists only the attachments of the
    /// images its tags name (and of images a target names in it by digest), one manifest HEAD per tag,
    /// instead of looking for every attachment of the shared repository in every repository. With one
    /// target, every image with attachments there is still looked for in it by digest, tagged or not.
    pub fn share_attachments(mut self, targets: &[String]) -> TargetOptions {
        if self.attachments.is_some() && (self.all_repos || targets.len() > 1) {
            self.shared_attachments = Some(SharedAttachments::new());
        }
        self
    }
}

/// One repository to work on, and the images a target named in it.
#[derive(Clone, Debug)]
pub struct RepositoryTarget {
    /// The target it came from, as given.
    pub target: String,
    /// The repository.
    pub repo: AnyRepository,
    /// The images the target named (a tag resolved to its digest; an image index followed by its
    /// platform manifests); `None` for the whole repository.
    pub images: Option<Vec<Digest>>,
}

impl RepositoryTarget {
    /// The repository's display name (`host/repo` or `ocidir://PATH`).
    pub fn repository_name(&self) -> String {
        self.repo.name()
    }
}

/// A target that could not be resolved, as reports record it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetError {
    /// The target, as given.
    pub target: String,
    /// The error kind's name.
    pub error_kind: String,
    /// What went wrong.
    pub message: String,
}

impl TargetError {
    /// The record for `error` while resolving `target`.
    pub fn new(target: &str, error: &Error) -> TargetError {
        TargetError {
            target: target.to_owned(),
            error_kind: error.kind().name().to_owned(),
            message: format!("{error:#}"),
        }
    }
}

/// The targets given, followed by those of `from_file` (one per line; blank lines and `#` comments
/// ignored). No target at all is an error.
pub fn read_targets(given: &[String], from_file: Option<&Path>) -> Result<Vec<String>> {
    let mut targets = given.to_vec();
    if let Some(path) = from_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::new(ErrorKind::Io, format!("reading the target list {}: {e}", path.display())))?;
        // Editors on Windows start a UTF-8 file with a byte order mark, which `trim` keeps.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        targets.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned));
    }
    if targets.is_empty() {
        return Err(Error::invalid_input("no targets: give images, repositories, layouts or a list file"));
    }
    // A target named twice is done once (a long list assembled from several sources repeats lines):
    // the batch would otherwise do its work again and count it twice once the first was finished.
    let mut seen = std::collections::HashSet::new();
    targets.retain(|t| seen.insert(t.clone()));
    Ok(targets)
}

/// Every target resolved into repositories, in order, as a stream (see the module documentation). A
/// target that cannot be resolved yields one [`TargetError`] and the stream goes on with the next;
/// with `all_repos`, a catalog page that fails ends that target with its error. Poll it within a tokio
/// runtime: image targets are looked up ahead, each as a task of its own.
pub fn resolve<'a>(
    targets: &'a [String],
    options: &'a TargetOptions,
    client: &'a RegistryClient,
) -> impl Stream<Item = std::result::Result<RepositoryTarget, TargetError>> + Send + 'a {
    if options.all_repos {
        return futures_util::stream::iter(targets)
            .flat_map(move |target| registry_repositories(target, options, client))
            .boxed();
    }
    // An image target costs a manifest read before it can be queued: a few are read at once, in order,
    // so a long `--from-file` list of images keeps the pool fed instead of feeding it one round trip at
    // a time. Each look-up is a task of its own: a reader of this stream stops reading while its pool
    // is full, and a look-up polled only through it would then keep whatever it was handed meanwhile
    // (a request slot of the registry, a token fetch's turn) from the units that need it to finish.
    futures_util::stream::iter(targets)
        .map(move |target| {
            let (target, options, client) = (target.clone(), options.clone(), client.clone());
            let task = tokio::spawn({
                let target = target.clone();
                async move { one_target(&target, &options, &client).await }
            });
            Lookup { target, task }
        })
        .buffered(TARGETS_AHEAD)
        .filter_map(|r| async move { r.transpose() })
        .boxed()
}

/// A target's look-up running as a task of its own, cancelled when the stream drops it.
struct Lookup {
    target: String,
    task: tokio::task::JoinHandle<std::result::Result<Option<RepositoryTarget>, TargetError>>,
}

impl std::future::Future for Lookup {
    type Output = std::result::Result<Option<RepositoryTarget>, TargetError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let lookup = &mut *self;
        std::pin::Pin::new(&mut lookup.task).poll(cx).map(|joined| match joined {
            Ok(looked_up) => looked_up,
            // A look-up that panicked takes the run down as it would have inline.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: the runtime is shutting down.
            Err(e) => Err(TargetError::new(&lookup.target, &Error::new(ErrorKind::Io, format!("looking it up: {e}")))),
        })
    }
}

impl Drop for Lookup {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Image and repository targets resolved at once, ahead of the batch that takes them.
const TARGETS_AHEAD: usize = 8;

/// Every repository of the registry `host`, page by page, in the shard.
fn registry_repositories<'a>(
    host: &'a str,
    options: &'a TargetOptions,
    client: &'a RegistryClient,
) -> impl Stream<Item = std::result::Result<RepositoryTarget, TargetError>> + Send + 'a {
    if host.contains('/') || host.starts_with("ocidir://") {
        let e = Error::invalid_input(format!(
            "--all-repos takes registry hosts (e.g. registry.example:5000), not {host:?}"
        ));
        return futures_util::stream::once(async move { Err(TargetError::new(host, &e)) }).boxed();
    }
    // A catalog that lists nothing is said so: a token whose catalog the registry filters by its
    // permissions sees an empty one, and a run over it would otherwise end "done" having done nothing.
    let listed = Arc::new(AtomicUsize::new(0));
    let counted = listed.clone();
    let catalog = client.catalog_pages(host).map(move |page| {
        // A failed page is an error of its own; it is not "no repository".
        counted.fetch_add(page.as_ref().map_or(1, Vec::len), Ordering::Relaxed);
        page
    });
    let said = futures_util::stream::once(async move {
        if listed.load(Ordering::Relaxed) == 0 {
            tracing::warn!(
                "the catalog of {host} lists no repository (a registry may list only the repositories the \
                 credentials can read); nothing to do"
            );
        }
    })
    .filter_map(|()| async { None });
    catalog
        .flat_map(move |page| {
            let items: Vec<_> = match page {
                Ok(names) => names
                    .into_iter()
                    .filter(|name| options.shard.is_none_or(|s| s.contains(name)))
                    .map(|name| {
                        let repo = AnyRepository::Registry(client.repository(host, &name).from_catalog());
                        let repo = with_attachments(repo, options, client).map_err(|e| TargetError::new(host, &e))?;
                        Ok(RepositoryTarget { target: host.to_owned(), repo, images: None })
                    })
                    .collect(),
                Err(e) => vec![Err(TargetError::new(host, &e.context(format!("listing the catalog of {host}"))))],
            };
            futures_util::stream::iter(items)
        })
        .chain(said)
        .boxed()
}

/// One image, repository or layout target; `Ok(None)` when the shard leaves it out.
async fn one_target(
    target: &str,
    options: &TargetOptions,
    client: &RegistryClient,
) -> std::result::Result<Option<RepositoryTarget>, TargetError> {
    let fail = |e: Error| TargetError::new(target, &e);
    let parsed = Reference::parse(target).map_err(fail)?;
    // The shard decides before anything is opened: a target another shard owns is not this one's error.
    let name = match &parsed {
        Reference::Registry(r) => r.repository().to_owned(),
        Reference::Layout(l) => l.path().display().to_string(),
    };
    if options.shard.is_some_and(|s| !s.contains(&name)) {
        return Ok(None);
    }
    let (repo, reference) = match parsed {
        Reference::Registry(r) => {
            (AnyRepository::Registry(client.repository(r.registry(), r.repository())), r.manifest_reference())
        }
        Reference::Layout(l) => {
            let repo = LayoutRepository::open(l.path(), options.limits.clone())
                .map_err(|e| fail(e.context(format!("opening OCI layout {}", l.path().display()))))?;
            (AnyRepository::Layout(repo), l.manifest_reference())
        }
    };
    let Some(reference) = reference else {
        let repo = with_attachments(repo, options, client).map_err(fail)?;
        return Ok(Some(RepositoryTarget { target: target.to_owned(), repo, images: None }));
    };
    // The body decides whether it is an index (a HEAD's Content-Type could say otherwise).
    let images = match repo.get_manifest(&reference).await.map_err(fail)? {
        Some(raw) => match &raw.manifest {
            Manifest::Index(index) => {
                with_platform_manifests(raw.digest.clone(), index, &options.limits).map_err(fail)?
            }
            _ => vec![raw.digest.clone()],
        },
        // An absent digest stays the target: the commands report it (an orphaned `.att`, say).
        None => match reference.parse::<Digest>() {
            Ok(d) => vec![d],
            Err(_) => {
                let e = Error::new(ErrorKind::NotFound, format!("tag {reference:?} not found in {}", repo.name()));
                return Err(fail(e));
            }
        },
    };
    // The image was resolved where it lives; from here on its attachments are read where they are kept.
    // Named before its repository's listing starts when resolved ahead of it (targets are resolved a few
    // at once); a later one is done by its own units all the same.
    let name = repo.name();
    let repo = with_attachments(repo, options, client).map_err(fail)?;
    // Only a target that will have units claims its images (a failed one would hide them from the
    // repository that lists them, and from the unclaimed).
    if let Some(shared) = &options.shared_attachments {
        shared.name_images(&name, &images);
    }
    Ok(Some(RepositoryTarget { target: target.to_owned(), repo, images: Some(images) }))
}

/// `repo` with its attachments where the options keep them.
fn with_attachments(repo: AnyRepository, options: &TargetOptions, client: &RegistryClient) -> Result<AnyRepository> {
    let Some(a) = &options.attachments else { return Ok(repo) };
    let attachments = client.repository(a.registry(), a.repository());
    match &options.shared_attachments {
        Some(shared) => repo.sharing_attachments_in(attachments, shared.clone()),
        None => repo.with_attachments_in(attachments),
    }
}

/// An image index followed by each of its platform manifests (what `inspect` shows: BuildKit
/// attestation manifests are not platforms; each digest once). Nested indexes are not followed: an
/// entry that is itself an index is one image here, as cosign signs it.
fn with_platform_manifests(image: Digest, index: &Index, limits: &Limits) -> Result<Vec<Digest>> {
    if index.manifests.len() > limits.max_index_entries {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "index {image} lists {} manifests, more than the limit of {}",
                index.manifests.len(),
                limits.max_index_entries
            ),
        ));
    }
    let mut images = vec![image];
    for entry in index.manifests.iter().filter(|e| !is_buildkit_attestation(e)) {
        if !images.contains(&entry.digest) {
            images.push(entry.digest.clone());
        }
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_fnv1a() {
        // FNV-1a 64 test vectors: "" → cbf29ce484222325, "a" → af63dc4c8601ec8c.
        assert_eq!(Shard::of("", 1 << 31), (0xcbf2_9ce4_8422_2325u64 % (1 << 31)) as u32);
        assert_eq!(Shard::of("a", 1 << 31), (0xaf63_dc4c_8601_ec8cu64 % (1 << 31)) as u32);
        let counts = (0..400).fold([0u32; 4], |mut c, i| {
            c[Shard::of(&format!("team/app-{i}"), 4) as usize] += 1;
            c
        });
        assert!(counts.iter().all(|&c| c > 60), "{counts:?}");
        assert_eq!(Shard::of("x", 0), 0);
    }

    #[test]
    fn shards_parse_strictly() {
        assert_eq!(Shard::parse("3/4").unwrap(), Shard { index: 3, count: 4 });
        assert_eq!(Shard::parse(" 0 / 1 ").unwrap(), Shard { index: 0, count: 1 });
        for bad in ["4/4", "0/0", "x", "1", "a/2", "1/b"] {
            assert_eq!(Shard::parse(bad).unwrap_err().kind(), ErrorKind::InvalidInput, "{bad}");
        }
        let s = Shard::new(1, 3).unwrap();
        let members = (0..30).map(|i| format!("r{i}")).filter(|r| s.contains(r)).count();
        assert_eq!(members, (0..30).filter(|i| Shard::of(&format!("r{i}"), 3) == 1).count());
    }

    /// A layout target that cannot be opened is the error of the shard that owns it only.
    #[tokio::test]
    async fn a_missing_layout_is_an_error_of_its_own_shard_only() {
        let dir = tempfile::tempdir().unwrap();
        let target = format!("ocidir://{}", dir.path().join("missing").display());
        let name = dir.path().join("missing").display().to_string();
        let client = RegistryClient::new(Default::default()).unwrap();
        let owner = Shard::of(&name, 2);
        for index in 0..2 {
            let options = TargetOptions { shard: Some(Shard::new(index, 2).unwrap()), ..TargetOptions::default() };
            let resolved = one_target(&target, &options, &client).await;
            match resolved {
                Err(e) if index == owner => assert!(e.message.contains("opening OCI layout"), "{}", e.message),
                Ok(None) if index != owner => {}
                other => panic!("shard {index} (owner {owner}): {:?}", other.map(|t| t.is_some())),
            }
        }
    }

    #[test]
    fn target_lists_skip_blanks_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("targets.txt");
        std::fs::write(&file, "# a list\nregistry.example/a\n\n  registry.example/b@sha256:00  \n").unwrap();
        let got = read_targets(&["x/y".to_owned()], Some(&file)).unwrap();
        assert_eq!(got, ["x/y", "registry.example/a", "registry.example/b@sha256:00"]);
        std::fs::write(&file, "registry.example/a\nx/y\n registry.example/a\n").unwrap();
        let got = read_targets(&["x/y".to_owned()], Some(&file)).unwrap();
        assert_eq!(got, ["x/y", "registry.example/a"], "a target named twice is kept once, first place");
        std::fs::write(&file, "\u{feff}# saved with a byte order mark\r\nregistry.example/a\r\n").unwrap();
        assert_eq!(read_targets(&[], Some(&file)).unwrap(), ["registry.example/a"]);
        std::fs::write(&file, "\u{feff}registry.example/b\n").unwrap();
        assert_eq!(read_targets(&[], Some(&file)).unwrap(), ["registry.example/b"]);
        assert_eq!(read_targets(&[], None).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(read_targets(&[], Some(&dir.path().join("missing"))).unwrap_err().kind(), ErrorKind::Io);
    }
}
