//! OCI image layout store (`ocidir://PATH`), per the image-spec's `image-layout.md`:
//!
//! ```text
//! PATH/oci-layout         {"imageLayoutVersion":"1.0.0"}
//! PATH/index.json         an image index; tags are org.opencontainers.image.ref.name annotations
//! PATH/blobs/<alg>/<hex>  every blob and every manifest, named by its digest
//! PATH/index.json.lock    ours: serialises index.json updates across processes
//! ```
//!
//! Decisions, and why:
//! - **Writes are atomic.** Blobs, manifests and `index.json` go to a temporary file in the same
//!   directory and are renamed into place, so a reader never sees a torn file and needs no lock.
//! - **`index.json` updates are serialised.** Each update takes an exclusive lock on
//!   `index.json.lock`, then reads, edits and replaces `index.json`, so two processes adding tags
//!   both keep their tag. Other tools' entries and unknown fields are carried over unchanged.
//! - **Untagged manifests stay listed.** A manifest pushed without a tag (a referrer, say) gets an
//!   `index.json` entry without `ref.name`, as regclient and oras keep theirs: otherwise nothing
//!   would reach it and a garbage collector would take it for garbage.
//! - **Deleting a manifest removes its `index.json` entries but not its file.** The same bytes may be
//!   the child of an index or a blob of another manifest, which `index.json` alone cannot tell, so
//!   removing the file could break content we cannot see. The bytes stay readable by digest until a
//!   garbage collector that walks the whole graph (`regctl`, `oras`, `umoci gc`) drops them.
//! - **Referrers use the tag schema.** A layout has no referrers API: the referrers of a subject are
//!   the index tagged `<alg>-<hex>`; the caller maintains it as it would on a registry without the API.
//! - **Nothing from the data becomes a path.** File names come only from validated digests (fixed
//!   algorithm names and lowercase hex); tags and annotations are only ever compared, never joined
//!   to a path.
//! - **Reads are checked.** Manifests are capped at `max_manifest_bytes`, blobs at the caller's cap,
//!   and both are hashed: a corrupted file is an [`ErrorKind::DigestMismatch`] naming it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;

use super::{BlobPrefix, BlobState, PutManifest, Referrers, ReferrersCapability, Repository};
use crate::error::{Error, ErrorKind, Result};
use crate::limits::Limits;
use crate::model::digest::Digest;
use crate::model::media_type as mt;
use crate::model::oci::{Descriptor, Index, RawManifest, to_canonical_bytes};
use crate::model::reference::LAYOUT_SCHEME;

mod blob;
mod files;
mod index;
mod manifest;
mod stream;

use files::{FileLock, read_capped, write_atomic};

/// The layout marker file.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// The layout's top-level index.
pub const INDEX_FILE: &str = "index.json";
/// The lock file serialising `index.json` updates (never removed: see [`LayoutRepository`]).
pub const LOCK_FILE: &str = "index.json.lock";
/// The directory holding blobs and manifests.
pub const BLOBS_DIR: &str = "blobs";
/// The layout version written to new layouts.
pub const IMAGE_LAYOUT_VERSION: &str = "1.0.0";

/// `oci-layout` is a one-field JSON object; anything bigger is not one.
const MAX_MARKER_BYTES: u64 = 64 * 1024;

/// An OCI image layout directory used as a [`Repository`].
///
/// Cheap to clone (clones share the directory and limits). File I/O runs on tokio's blocking pool,
/// so the methods must be awaited inside a tokio runtime.
#[derive(Clone, Debug)]
pub struct LayoutRepository {
    inner: Arc<Layout>,
}

/// The synchronous core; the [`Repository`] impl runs its methods on the blocking pool.
#[derive(Debug)]
struct Layout {
    root: PathBuf,
    limits: Limits,
}

impl LayoutRepository {
    /// Open an existing layout: `path` must be a directory with a supported `oci-layout` file and a
    /// readable `index.json`.
    pub fn open(path: impl Into<PathBuf>, limits: Limits) -> Result<LayoutRepository> {
        let layout = Layout { root: path.into(), limits };
        layout.check().map_err(|e| e.context(format!("opening {}", layout.name())))?;
        Ok(LayoutRepository { inner: Arc::new(layout) })
    }

    /// Open the layout at `path`, creating it (and missing parent directories) first if needed.
    ///
    /// An existing directory that is not a layout is only initialised if it is empty or holds
    /// nothing but layout files (a layout whose creation was interrupted); anything else is refused
    /// rather than scattering layout files among someone else's.
    pub fn create(path: impl Into<PathBuf>, limits: Limits) -> Result<LayoutRepository> {
        let layout = Layout { root: path.into(), limits };
        layout.init().map_err(|e| e.context(format!("creating {}", layout.name())))?;
        Ok(LayoutRepository { inner: Arc::new(layout) })
    }

    /// The layout directory.
    pub fn path(&self) -> &Path {
        &self.inner.root
    }

    /// The caps applied to reads.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Run `f` on the blocking pool, prefixing errors with `what` and the layout's name.
    async fn run<T, F>(&self, what: String, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Layout) -> Result<T> + Send + 'static,
    {
        let layout = Arc::clone(&self.inner);
        let context = format!("{what} in {}", self.inner.name());
        match tokio::task::spawn_blocking(move || f(&layout)).await {
            Ok(result) => result.map_err(|e| e.context(context)),
            Err(join) => Err(Error::new(ErrorKind::Io, format!("{context}: the worker task failed: {join}"))),
        }
    }
}

impl Repository for LayoutRepository {
    fn name(&self) -> String {
        self.inner.name()
    }

    async fn get_manifest(&self, reference: &str) -> Result<Option<RawManifest>> {
        let reference = reference.to_owned();
        self.run(format!("reading manifest {reference}"), move |l| l.get_manifest(&reference)).await
    }

    async fn head_manifest(&self, reference: &str) -> Result<Option<Descriptor>> {
        // A layout is local: reading the manifest is cheap and lets the answer carry the body's own
        // media type and artifactType, checked against its digest.
        let reference = reference.to_owned();
        self.run(format!("resolving manifest {reference}"), move |l| {
            Ok(l.get_manifest(&reference)?.map(|raw| {
                let mut d = raw.descriptor();
                d.artifact_type = manifest::own_artifact_type(&raw.manifest);
                d
            }))
        })
        .await
    }

    async fn put_manifest(&self, bytes: Bytes, media_type: &str, tag: Option<&str>) -> Result<PutManifest> {
        let media_type = media_type.to_owned();
        let tag = tag.map(str::to_owned);
        let what = match &tag {
            Some(t) => format!("writing manifest under tag {t}"),
            None => "writing manifest".to_owned(),
        };
        self.run(what, move |l| l.put_manifest(&bytes, &media_type, tag.as_deref())).await
    }

    async fn delete_manifest(&self, digest: &Digest) -> Result<()> {
        let digest = digest.clone();
        self.run(format!("deleting manifest {digest}"), move |l| l.delete_manifest(&digest)).await
    }

    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        let digest = digest.clone();
        self.run(format!("looking up blob {digest}"), move |l| l.blob_size(&digest)).await
    }

    async fn blob_state(&self, descriptor: &Descriptor) -> Result<BlobState> {
        // A local file is cheap to hash, and a same-size file of other bytes is exactly what a size check
        // cannot see (a torn copy, a disk error).
        let descriptor = descriptor.clone();
        self.run(format!("checking blob {}", descriptor.digest), move |l| l.blob_state(&descriptor)).await
    }

    async fn get_blob(&self, descriptor: &Descriptor, max_bytes: u64) -> Result<Bytes> {
        let descriptor = descriptor.clone();
        self.run(format!("reading blob {}", descriptor.digest), move |l| l.get_blob(&descriptor, max_bytes)).await
    }

    async fn get_blob_prefix(&self, descriptor: &Descriptor, max_bytes: u64) -> Result<BlobPrefix> {
        let descriptor = descriptor.clone();
        self.run(format!("reading the start of blob {}", descriptor.digest), move |l| {
            l.get_blob_prefix(&descriptor, max_bytes)
        })
        .await
    }

    async fn put_blob(&self, bytes: Bytes) -> Result<Digest> {
        // Hashed once, in store_blob: blobs may be large.
        let what = format!("writing a blob of {} bytes", bytes.len());
        self.run(what, move |l| l.store_blob(&bytes)).await
    }

    async fn read_blob_stream(&self, descriptor: &Descriptor) -> Result<super::BlobChunks> {
        self.inner.read_blob_stream(descriptor).await
    }

    async fn put_blob_stream(&self, descriptor: &Descriptor, chunks: super::BlobChunks) -> Result<Digest> {
        self.inner.put_blob_stream(descriptor, chunks).await
    }

    async fn list_tags(&self) -> Result<Vec<String>> {
        self.run("listing tags".to_owned(), |l| l.list_tags()).await
    }

    async fn referrers(&self, subject: &Digest, artifact_type: Option<&str>) -> Result<Referrers> {
        let subject = subject.clone();
        let artifact_type = artifact_type.map(str::to_owned);
        self.run(format!("listing referrers of {subject}"), move |l| l.referrers(&subject, artifact_type.as_deref()))
            .await
    }

    fn referrers_capability(&self) -> ReferrersCapability {
        ReferrersCapability::Unsupported
    }
}

impl Layout {
    fn name(&self) -> String {
        format!("{LAYOUT_SCHEME}{}", self.root.display())
    }

    fn index_path(&self) -> PathBuf {
        self.root.join(INDEX_FILE)
    }

    /// Where a blob or manifest lives. Both parts come from a validated [`Digest`] (a fixed
    /// algorithm name and lowercase hex), so the path cannot leave `blobs/`.
    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(BLOBS_DIR).join(digest.algorithm().as_str()).join(digest.hex())
    }

    /// `index.json` is local metadata that grows with every tag and referrer, so it gets the larger
    /// of the two caps rather than the manifest cap.
    fn max_index_bytes(&self) -> u64 {
        self.limits.max_manifest_bytes.max(self.limits.max_blob_bytes)
    }

    fn check(&self) -> Result<()> {
        match fs::metadata(&self.root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::invalid_input(format!("{} is not a directory", self.root.display())));
            }
            Err(e) => return Err(files::io_error("cannot open", &self.root, e)),
        }
        self.check_marker()?;
        self.read_index().map(drop)
    }

    fn check_marker(&self) -> Result<()> {
        #[derive(Deserialize)]
        struct Marker {
            #[serde(rename = "imageLayoutVersion")]
            version: String,
        }
        let path = self.root.join(OCI_LAYOUT_FILE);
        let bytes = read_capped(&path, MAX_MARKER_BYTES)?.ok_or_else(|| {
            Error::invalid_input(format!(
                "{} is not an OCI image layout: it has no {OCI_LAYOUT_FILE} file",
                self.root.display()
            ))
        })?;
        let marker: Marker = serde_json::from_slice(&bytes).map_err(|e| {
            Error::invalid_format(format!("{} is not a valid {OCI_LAYOUT_FILE} file: {e}", path.display()))
        })?;
        if !marker.version.starts_with("1.") {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("{}: image layout version {:?} is not supported (1.x is)", path.display(), marker.version),
            ));
        }
        Ok(())
    }

    fn init(&self) -> Result<()> {
        fs::create_dir_all(&self.root).map_err(|e| files::io_error("cannot create", &self.root, e))?;
        let marker = self.root.join(OCI_LAYOUT_FILE);
        if marker.exists() {
            return self.check();
        }
        self.refuse_foreign_directory()?;
        let lock = FileLock::acquire(&self.root.join(LOCK_FILE))?;
        // Another process may have finished creating it while we waited for the lock.
        if !marker.exists() {
            if self.read_index_opt()?.is_none() {
                self.write_index(&mut Index::empty())?;
            }
            let blobs = self.root.join(BLOBS_DIR);
            fs::create_dir_all(&blobs).map_err(|e| files::io_error("cannot create", &blobs, e))?;
            // Written last: its presence is what says the layout is complete.
            let content = format!("{{\"imageLayoutVersion\":\"{IMAGE_LAYOUT_VERSION}\"}}");
            write_atomic(&marker, content.as_bytes())?;
        }
        drop(lock);
        self.check()
    }

    fn refuse_foreign_directory(&self) -> Result<()> {
        let entries = fs::read_dir(&self.root).map_err(|e| files::io_error("cannot list", &self.root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| files::io_error("cannot list", &self.root, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ours = [INDEX_FILE, BLOBS_DIR, LOCK_FILE].contains(&name.as_ref())
                || (name.starts_with('.') && name.ends_with(".tmp"));
            if !ours {
                return Err(Error::invalid_input(format!(
                    "{} is not empty and not an OCI image layout (it holds {name:?}); refusing to create a layout there",
                    self.root.display()
                )));
            }
        }
        Ok(())
    }

    fn read_index_opt(&self) -> Result<Option<Index>> {
        let path = self.index_path();
        let Some(bytes) = read_capped(&path, self.max_index_bytes())? else {
            return Ok(None);
        };
        let index: Index = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid_format(format!("{} is not a valid image index: {e}", path.display())))?;
        if index.schema_version != 2 {
            return Err(Error::invalid_format(format!(
                "{} has schemaVersion {}, expected 2",
                path.display(),
                index.schema_version
            )));
        }
        Ok(Some(index))
    }

    fn read_index(&self) -> Result<Index> {
        self.read_index_opt()?.ok_or_else(|| {
            Error::invalid_format(format!("{} is missing: the layout is incomplete", self.index_path().display()))
        })
    }

    fn write_index(&self, index: &mut Index) -> Result<()> {
        // The spec's SHOULD; another tool's index without it gains it on our first update.
        index.media_type.get_or_insert_with(|| mt::OCI_INDEX.to_owned());
        write_atomic(&self.index_path(), &to_canonical_bytes(index))
    }

    /// Read-modify-write `index.json` under the lock; written only if `edit` changed something.
    fn update_index<T>(&self, edit: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _lock = FileLock::acquire(&self.root.join(LOCK_FILE))?;
        let mut index = self.read_index()?;
        let before = index.clone();
        let out = edit(&mut index)?;
        if index != before {
            self.write_index(&mut index)?;
        }
        Ok(out)
    }
}
