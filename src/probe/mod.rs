//! `att2ref probe`: what a registry really does, measured rather than assumed.
//!
//! Read-only by default: `GET /v2/` (auth), the catalog and its paging, and for a repository its tag
//! paging, the referrers API, its `artifactType` filter and pages, the referrers tag of an image and
//! `Range` on a blob. Every request is a GET.
//!
//! With [`ProbeOptions::write_test`] it also pushes a tiny test image tagged `att2ref-probe-<random
//! hex>`, two referrers of it (artifact types [`PROBE_ARTIFACT_TYPE`] and [`OTHER_ARTIFACT_TYPE`]) and
//! checks what the registry does with them: whether the referrer is listed (re-listing a while when it
//! is not at once, for listings that lag writes), whether `OCI-Subject` is backed by the listing, what
//! the referrers tag holds, whether an index is accepted as a subject, whether `If-Match` is enforced,
//! and whether a referrer still listed can be deleted. It then removes everything it pushed and says
//! what it could not. The read-only facts are measured while the test image exists, so that tag and
//! referrers paging have entries to page.
//!
//! The answers are read into facts by pure functions (`interpret`); each fact keeps the status and
//! error code it rests on.

mod cleanup;
mod interpret;
mod limits;
mod read;
pub mod report;
mod write;

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

pub use report::ProbeReport;
pub use write::{OTHER_ARTIFACT_TYPE, PROBE_ARTIFACT_TYPE};

use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::store::registry::RegistryClient;
use report::{Fact, Paging, RangeSupport, ReferrersSupport, TagReading, WriteTest};

/// How to probe.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// Push a test image and referrers, check what the registry does with them, and remove them.
    pub write_test: bool,
    /// Times a listing that does not show a write at once is read again.
    pub relisting_attempts: u32,
    /// Wait before each of those reads.
    pub relisting_delay: Duration,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions { write_test: false, relisting_attempts: 3, relisting_delay: Duration::from_millis(500) }
    }
}

/// Probe `registry` (`host[:port]`), and `repository` of it when given. A registry that cannot be reached
/// is an error; one that refuses the credentials in use is reported (`report.api.granted` false) with
/// nothing else probed. `--write-test` without a repository is [`crate::ErrorKind::InvalidInput`].
pub async fn probe_registry(
    client: &RegistryClient,
    registry: &str,
    repository: Option<&str>,
    options: &ProbeOptions,
) -> Result<ProbeReport> {
    if options.write_test && repository.is_none() {
        return Err(Error::invalid_input(format!(
            "the write test needs a repository to write to: give {registry}/<repository>"
        )));
    }
    let api = read::api(client, registry).await.map_err(|e| e.context(format!("probing {registry}")))?;
    let mut report = ProbeReport {
        format: report::REPORT_FORMAT,
        registry: registry.to_owned(),
        repository: repository.map(str::to_owned),
        api,
        catalog: Fact::new(report::Access::Other, "not probed: /v2/ was refused"),
        catalog_paging: Fact::new(Paging::NotApplicable, "not probed: /v2/ was refused"),
        tag_paging: None,
        referrers_api: None,
        artifact_type_filter: None,
        referrers_paging: None,
        referrers_tag: None,
        range_requests: None,
        size_limits: limits::documented(registry),
        write_test: None,
    };
    if !report.api.granted {
        return Ok(report);
    }
    (report.catalog, report.catalog_paging) = read::catalog(client, registry).await;
    let Some(name) = repository else { return Ok(report) };
    let repo = client.repository(registry, name);
    let mut stage = if options.write_test { Some(write::stage(&repo, &nonce()).await) } else { None };

    let (tag_paging, tags) = read::tag_paging(&repo).await;
    report.tag_paging = Some(tag_paging);
    let staged = stage.as_ref().and_then(|s| {
        s.image.as_ref().map(|i| read::Subject { digest: i.digest.clone(), blob: s.image_config.clone() })
    });
    let subject = match staged {
        Some(s) => Some(s),
        None => read::find_subject(&repo, &tags).await,
    };
    // With no image, an absent digest still tells a router's 404 from an index.
    let subject_digest = subject
        .as_ref()
        .map(|s| s.digest.clone())
        .unwrap_or_else(|| Digest::sha256(b"att2ref probe: a subject nobody stored"));
    let referrers = read::referrers(&repo, &subject_digest, PROBE_ARTIFACT_TYPE).await;
    let api_support = referrers.api.value;
    report.referrers_api = Some(referrers.api);
    report.artifact_type_filter = Some(referrers.filter);
    report.referrers_paging = Some(referrers.paging);
    report.referrers_tag = Some(match &subject {
        Some(s) => read::referrers_tag(&repo, &s.digest).await,
        None => Fact::new(TagReading::NotChecked, "no image in the repository to read the tag of"),
    });
    report.range_requests = Some(match subject.as_ref().and_then(|s| s.blob.as_ref()) {
        Some(blob) => read::range(&repo, blob).await,
        None => Fact::new(RangeSupport::NotChecked, "no image blob in the repository to read"),
    });

    if let Some(stage) = stage.as_mut() {
        let relisting = write::Relisting { attempts: options.relisting_attempts, delay: options.relisting_delay };
        let api = if api_support == ReferrersSupport::Supported { api_support } else { ReferrersSupport::Unsupported };
        let checks = write::check(&repo, stage, api, relisting).await;
        let cleanup = cleanup::remove(&repo, stage).await;
        report.write_test = Some(WriteTest {
            tag: stage.tag.clone(),
            image: stage.image.as_ref().map(|i| i.digest.to_string()),
            referrer: stage.referrers.first().map(|(d, _)| d.digest.to_string()),
            referrer_listed: checks.listed,
            oci_subject: checks.oci_subject,
            referrers_tag: checks.referrers_tag,
            index_as_subject: checks.index_as_subject,
            if_match: checks.if_match,
            delete_order: checks.delete_order,
            cleanup,
        });
    }
    Ok(report)
}

/// 16 hex characters that differ per run: the test objects of two probes never collide.
fn nonce() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}
