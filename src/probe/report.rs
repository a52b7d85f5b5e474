//! The probe report: plain data, serialised as `att2ref probe -o json`
//! (`schemas/probe-report.schema.json`) and rendered as a table for people.

use serde::Serialize;

/// Version of the JSON report format; bumped on incompatible changes.
pub const REPORT_FORMAT: &str = "att2ref.dev/probe/v1";

/// What a registry (and optionally one repository of it) really does.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeReport {
    /// Always [`REPORT_FORMAT`].
    pub format: &'static str,
    /// The registry host as given.
    pub registry: String,
    /// The repository probed, when one was given.
    pub repository: Option<String>,
    /// `GET /v2/`: reachable, which auth, whether the credentials in use got through.
    pub api: ApiFact,
    /// Catalog access (`GET /v2/_catalog?n=1`).
    pub catalog: Fact<Access>,
    /// Whether the catalog pages with `Link`.
    pub catalog_paging: Fact<Paging>,
    /// Whether tag listings page with `Link` (`tags/list?n=1`); `None` without a repository.
    pub tag_paging: Option<Fact<Paging>>,
    /// The referrers API; `None` without a repository.
    pub referrers_api: Option<Fact<ReferrersSupport>>,
    /// Whether the registry applies and signals the `artifactType` filter; `None` without a repository.
    pub artifact_type_filter: Option<Fact<FilterSupport>>,
    /// Whether referrers listings were paged with `Link`; `None` without a repository.
    pub referrers_paging: Option<Fact<Paging>>,
    /// What the referrers tag (`sha256-<hex>`) of an image reads as; `None` without a repository.
    pub referrers_tag: Option<Fact<TagReading>>,
    /// Whether blob reads honour `Range`; `None` without a repository.
    pub range_requests: Option<Fact<RangeSupport>>,
    /// Documented size limits of the registry's family, or none known.
    pub size_limits: SizeLimits,
    /// The write test (`--write-test`), when run.
    pub write_test: Option<WriteTest>,
}

/// One observed fact: what it means, the HTTP status it rests on (if one), and the evidence in words.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fact<V> {
    /// The fact.
    pub value: V,
    /// The status of the answer it rests on.
    pub status: Option<u16>,
    /// The distribution error code of that answer, if it had one.
    pub code: Option<String>,
    /// What was seen.
    pub detail: String,
}

impl<V> Fact<V> {
    /// A fact without an HTTP answer behind it.
    pub fn new(value: V, detail: impl Into<String>) -> Fact<V> {
        Fact { value, status: None, code: None, detail: detail.into() }
    }

    /// The same fact resting on an answer with this status.
    pub fn status(mut self, status: u16) -> Fact<V> {
        self.status = Some(status);
        self
    }

    /// The same fact with the answer's error code.
    pub fn code(mut self, code: Option<String>) -> Fact<V> {
        self.code = code;
        self
    }
}

/// `GET /v2/`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiFact {
    /// Status of the first, anonymous request.
    pub anonymous_status: u16,
    /// Status after answering the challenge with the credentials in use (the same when none was needed).
    pub status: u16,
    /// The scheme the registry asked for in `WWW-Authenticate`.
    pub auth_scheme: AuthScheme,
    /// Which credentials were in use.
    pub credentials: Credentials,
    /// Whether the registry let those credentials through.
    pub granted: bool,
    /// What was seen.
    pub detail: String,
}

/// An authentication scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthScheme {
    /// No challenge: open to anonymous requests.
    None,
    /// `Basic`.
    Basic,
    /// `Bearer` (a token service).
    Bearer,
    /// Another scheme, or a 401 without a usable challenge.
    Other,
}

/// Credentials in use for the probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Credentials {
    /// None found.
    Anonymous,
    /// Given on the command line or found in a Docker-style config file.
    Configured,
}

/// Access to an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// 200.
    Allowed,
    /// 401 or 403.
    Denied,
    /// 404: the endpoint is not served.
    NotFound,
    /// Another answer (the status says which).
    Other,
}

/// How a listing pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Paging {
    /// A `Link: <…>; rel="next"` header led to the next page.
    Link,
    /// More entries than `n` asked for came back: `n` is ignored (the whole list in one answer).
    NIgnored,
    /// Exactly `n` entries and no `Link`, while there are more: the rest cannot be reached.
    CutWithoutLink,
    /// Too few entries to tell.
    NotEnoughEntries,
    /// No `Link` was seen (listings that take no `n`: it may page only longer lists).
    NotSeen,
    /// The listing is not served here.
    NotApplicable,
    /// The listing failed (the status says how).
    Unknown,
}

/// The referrers API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferrersSupport {
    /// 200 with an image index.
    Supported,
    /// The router's 404, 405, 406, a redirect or a non-JSON page: no API (the tag schema is used).
    Unsupported,
    /// An answer that says nothing certain (a distribution error for an unknown repository, a denial, 400,
    /// 5xx).
    Unknown,
}

/// The `artifactType` filter of referrers listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilterSupport {
    /// `OCI-Filters-Applied: artifactType`, and (with `--write-test`) the listing is filtered.
    Honoured,
    /// No `OCI-Filters-Applied` header (read-only: whether it filters is unknown; att2ref filters itself).
    NotSignalled,
    /// No header and the filtered listing still holds other types (`--write-test`).
    Ignored,
    /// The listing was filtered without the header saying so (`--write-test`).
    FilteredUnsignalled,
    /// The header says it filtered, but other types are listed (`--write-test`).
    Misreported,
    /// No referrers API.
    NotApplicable,
}

/// What a `sha256-<hex>` tag reads as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TagReading {
    /// No such tag (the usual answer for an image without tag-schema referrers).
    Absent,
    /// An image index (a tag-schema referrers index).
    Index,
    /// The image itself: the registry reads the tag as a digest (GitLab, oras#2148); the tag schema
    /// cannot be used there.
    ResolvesToSubject,
    /// Something else.
    Other,
    /// No image to check it with.
    NotChecked,
}

/// `Range` on blob reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RangeSupport {
    /// 206 with the bytes asked for.
    Honoured,
    /// 200 with the whole blob.
    Ignored,
    /// Another answer.
    Unknown,
    /// No blob to check it with.
    NotChecked,
}

/// Size limits documented for the registry's family.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SizeLimits {
    /// The registry family recognised from the host name, if any.
    pub family: Option<String>,
    /// Largest manifest, when documented.
    pub manifest_bytes: Option<DocumentedLimit>,
    /// Largest layer blob, when documented.
    pub layer_bytes: Option<DocumentedLimit>,
    /// What is and is not known.
    pub note: String,
}

/// A documented limit and where it is written.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentedLimit {
    /// The limit in bytes.
    pub bytes: u64,
    /// The documentation it comes from.
    pub source: String,
}

/// What `--write-test` pushed, what it found, and what it removed.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteTest {
    /// The test image's tag (`att2ref-probe-<random hex>`).
    pub tag: String,
    /// The test image.
    pub image: Option<String>,
    /// The test referrer of the image.
    pub referrer: Option<String>,
    /// Whether the referrer is listed: by the API, by the tag-schema index, or not at all.
    pub referrer_listed: Fact<Listing>,
    /// Whether an `OCI-Subject` header on the referrer's PUT was backed by the API listing.
    pub oci_subject: Fact<SubjectHeader>,
    /// What the image's `sha256-<hex>` tag reads as after the tag-schema index was written.
    pub referrers_tag: Fact<TagContent>,
    /// Whether an image index is accepted as a referrer's subject.
    pub index_as_subject: Fact<Acceptance>,
    /// Whether `If-Match` on a manifest PUT is enforced.
    pub if_match: Fact<IfMatch>,
    /// Whether a referrer still listed can be deleted, and in which order deletes work.
    pub delete_order: Fact<DeleteOrder>,
    /// What was removed and what was left.
    pub cleanup: Cleanup,
}

/// Where the test referrer was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Listing {
    /// The referrers API lists it at once.
    Api,
    /// The referrers API lists it only after a wait (a listing that lags writes).
    ApiAfterDelay,
    /// The tag-schema index written by the probe lists it when read back.
    TagSchema,
    /// Not listed anywhere.
    NotListed,
    /// The test stopped before this check.
    NotChecked,
}

/// The `OCI-Subject` header on a referrer PUT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectHeader {
    /// Present, and the API lists the referrer.
    Honest,
    /// Present, but the API does not list the referrer (ECR and Docker Hub in 2024).
    Unbacked,
    /// Not sent.
    Absent,
    /// The test stopped before this check.
    NotChecked,
}

/// What the referrers tag holds after the probe wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TagContent {
    /// Byte for byte what was written.
    Identical,
    /// The image itself (GitLab, oras#2148).
    ResolvesToSubject,
    /// Other bytes.
    Different,
    /// Nothing under the tag.
    Absent,
    /// Not written: the registry has the referrers API.
    NotWritten,
}

/// Whether a write was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Acceptance {
    /// 2xx.
    Accepted,
    /// Refused (status and code say how).
    Refused,
    /// The test stopped before this check.
    NotChecked,
}

/// `If-Match` on a manifest PUT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IfMatch {
    /// 412 for a stale entity tag.
    Enforced,
    /// The PUT with a stale entity tag was accepted.
    Ignored,
    /// No `ETag` is served on a manifest GET.
    NoEtag,
    /// Another answer.
    Unknown,
    /// The test stopped before this check.
    NotChecked,
}

/// Manifest DELETE and its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeleteOrder {
    /// A referrer still listed was deleted.
    WhileListed,
    /// Refused while listed; accepted once its index entry was removed.
    IndexEntryFirst,
    /// Refused, also after its index entry was removed (or with none to remove).
    Refused,
    /// Manifest DELETE is unsupported (405 or `UNSUPPORTED`).
    Unsupported,
    /// The test stopped before this check.
    NotChecked,
}

/// What the probe removed after the write test.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cleanup {
    /// Every manifest and tag written was removed (blobs are counted apart: see `blobs`).
    pub complete: bool,
    /// Whether the blobs were deleted or left for the registry's garbage collection.
    pub blobs: Fact<BlobCleanup>,
    /// Each object written, in the order removed, and what became of it.
    pub objects: Vec<WrittenObject>,
}

/// What became of the blobs written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlobCleanup {
    /// Every blob DELETE was accepted.
    Deleted,
    /// Some or all were refused: they stay until the registry collects unreferenced blobs (if it does).
    LeftForGarbageCollection,
    /// Nothing was written.
    NoneWritten,
}

/// One object the write test pushed.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WrittenObject {
    /// What it is.
    pub kind: ObjectKind,
    /// Its digest, or its tag for a tag.
    pub reference: String,
    /// Whether it is gone.
    pub removed: bool,
    /// The status of the DELETE (none for a tag, which goes with its manifest).
    pub status: Option<u16>,
    /// The error code of a refused DELETE.
    pub code: Option<String>,
    /// What happened.
    pub detail: String,
}

/// Kinds of objects the write test pushes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectKind {
    /// A manifest or index.
    Manifest,
    /// A tag.
    Tag,
    /// A blob.
    Blob,
}

impl ProbeReport {
    /// Whether the registry let the credentials in use through `GET /v2/`.
    pub fn reached(&self) -> bool {
        self.api.granted
    }

    /// The objects the write test could not remove (blobs included), when it ran.
    pub fn leftovers(&self) -> Vec<&WrittenObject> {
        self.write_test.iter().flat_map(|w| w.cleanup.objects.iter().filter(|o| !o.removed)).collect()
    }
}
