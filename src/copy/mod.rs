//! `copy`: an image (or an index with every platform) from one store to another with its attestations,
//! cosign's legacy `.att` converted on the way into verified Sigstore-bundle referrers.
//!
//! Per image, in this order, so that a failure leaves nothing a consumer would take for a finished
//! copy:
//! 1. **Plan the conversion** of each subject's legacy `.att` (the image and, for an index, each platform
//!    manifest): read, verify and convert exactly as `migrate` does ([`crate::rewrite::prepare_image`],
//!    through a [`view::ConversionView`] that reads the source and lists the destination). Any layer
//!    that does not verify blocks the whole image: nothing is written for it.
//! 2. **The image** ([`transfer`]): blobs (present ones skipped, same-registry ones mounted, the rest
//!    streamed), then manifests, children first; digests preserved byte for byte.
//! 3. **Existing referrers** ([`referrers`]): any artifact type, and referrers of referrers, copied as
//!    they are and listed in the destination's referrers API or tag schema.
//! 4. **Legacy tags** kept as they are: `.sig` (a bundle cannot carry its signed `docker-reference`) and
//!    `.sbom` always, `.att` with [`LegacyMode::Keep`] or [`LegacyMode::Both`]. A legacy tag the
//!    destination holds with other content is left alone (it may hold attestations this copy does not
//!    have) and reported.
//! 5. **The converted referrers** written and read back in the destination
//!    ([`crate::rewrite::complete_image`]).
//! 6. **The tags**, last: only a complete copy is reachable under its tag.
//!
//! Every step looks before it writes, so a rerun writes nothing; [`batch`] runs copies over whole
//! repositories and registries through the batch engine, with a journal to resume from.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use att2ref::copy::{CopyOptions, copy_image, report::CopyOutcome};
//! use att2ref::store::{Repository, layout::LayoutRepository};
//! use att2ref::verification::{Policy, PublicKey, Verifier};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> att2ref::Result<()> {
//! let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
//! let scenario = att2ref::demo::demo()?; // an image with a cosign 1.x .att: an SBOM and a SLSA provenance
//! let source = LayoutRepository::create(from.path(), att2ref::Limits::default())?;
//! scenario.repo.push_to(&source).await?;
//! let destination = LayoutRepository::create(to.path(), att2ref::Limits::default())?;
//!
//! let key = PublicKey::from_pem(att2ref::demo::TestKey::Rsa4096.public_pem().as_bytes())?; // TEST-ONLY key
//! let verifier = Arc::new(Verifier::new(Policy::new().with_key(key).insecure_ignore_tlog(true))?);
//! let image = scenario.image.to_string();
//! let report = copy_image(&source, &destination, &image, &[], &verifier, &CopyOptions::default()).await;
//! assert_eq!(report.outcome, CopyOutcome::Copied, "{:?}", report.reasons);
//! // The attestations arrive as one referrer each, found the way any consumer finds them.
//! assert_eq!(destination.referrers(&scenario.image, None).await?.descriptors.len(), 2);
//! // A second run writes nothing.
//! let again = copy_image(&source, &destination, &image, &[], &verifier, &CopyOptions::default()).await;
//! assert_eq!(again.outcome, CopyOutcome::AlreadyCopied);
//! # Ok(())
//! # }
//! ```

pub mod batch;
pub mod referrers;
pub mod report;
pub mod transfer;
pub mod view;

use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::keyed_locks::KeyedLocks;
use crate::model::cosign::TagKind;
use crate::model::digest::Digest;
use crate::model::oci::{Manifest, RawManifest};
use crate::model::predicate::predicate_matches;
use crate::read::referrers::is_buildkit_attestation;
use crate::rewrite::{self, MigrateOptions, Outcome, PreparedImage};
use crate::store::Repository;
use crate::store::tag_schema::IndexOptions;
use crate::verification::Verifier;

pub use batch::{CopyJob, Destination, copy_batch, copy_batch_streamed};
pub use referrers::{CopiedReferrer, LeftBehind, ReferrerFilter};
pub use report::{CopyOutcome, CopyReport, ImageCopy};
pub use transfer::TransferStats;
use view::ConversionView;

/// What becomes of the legacy `.att` tags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LegacyMode {
    /// Converted into verified Sigstore-bundle referrers; the `.att` tag is not copied.
    #[default]
    Convert,
    /// Copied as they are; nothing converted (nothing verified either).
    Keep,
    /// Both: converted, and copied as they are.
    Both,
}

impl LegacyMode {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            LegacyMode::Convert => "convert",
            LegacyMode::Keep => "keep",
            LegacyMode::Both => "both",
        }
    }

    fn converts(self) -> bool {
        matches!(self, LegacyMode::Convert | LegacyMode::Both)
    }

    fn keeps_att(self) -> bool {
        matches!(self, LegacyMode::Keep | LegacyMode::Both)
    }
}

/// How to copy.
#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    /// Conversion of legacy attestations: trust, format, limits, read-back, index retries (its `jobs`
    /// is the number of images copied at once; `dry_run` is not used).
    pub migrate: MigrateOptions,
    /// What becomes of legacy `.att` tags.
    pub legacy: LegacyMode,
    /// Which attestations and referrers are carried over.
    pub filter: ReferrerFilter,
}

impl CopyOptions {
    /// A digest of the settings that decide what "copied" means: the conversion's
    /// ([`MigrateOptions::settings_fingerprint`]), the legacy mode and the referrer filter. The copy
    /// journal skips an image on resume only under the same settings.
    pub fn settings_fingerprint(&self, verifier: &Verifier) -> String {
        let text = format!(
            "conversion {}\nlegacy {:?}\nfilter {:?}\n",
            self.migrate.settings_fingerprint(verifier),
            self.legacy,
            self.filter
        );
        Digest::sha256(text.as_bytes()).to_string()
    }
}

/// Copy one image of `source` (`reference`: a tag or digest) into `destination`, with its attestations,
/// and push it there under each of `tags`. Never fails: what went wrong is in the report.
pub async fn copy_image<S: Repository, D: Repository>(
    source: &S,
    destination: &D,
    reference: &str,
    tags: &[String],
    verifier: &Arc<Verifier>,
    options: &CopyOptions,
) -> ImageCopy {
    copy_image_mounting(source, destination, reference, tags, None, verifier, options).await
}

/// [`copy_image`], mounting blobs from `mount_from` (the source's repository path, when source and
/// destination are on one registry).
pub async fn copy_image_mounting<S: Repository, D: Repository>(
    source: &S,
    destination: &D,
    reference: &str,
    tags: &[String],
    mount_from: Option<&str>,
    verifier: &Arc<Verifier>,
    options: &CopyOptions,
) -> ImageCopy {
    copy_image_in_turn(source, destination, reference, tags, mount_from, verifier, options, None).await
}

/// [`copy_image_mounting`], one image at a time per destination repository and digest when `turns` is
/// given: a batch holds one image under several tags as several units, and those run after each other
/// (the first copies, the others find it all there and push their tags) rather than each reading,
/// verifying and converting the same attestations at once, which with a fresh inclusion proof each
/// would also list every attestation once per tag.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn copy_image_in_turn<S: Repository, D: Repository>(
    source: &S,
    destination: &D,
    reference: &str,
    tags: &[String],
    mount_from: Option<&str>,
    verifier: &Arc<Verifier>,
    options: &CopyOptions,
    turns: Option<&KeyedLocks>,
) -> ImageCopy {
    let asked = tags.first().map_or(reference, String::as_str).to_owned();
    // A digest is the image already (a named image is resolved to one); a tag is known once read.
    let mut report = ImageCopy::new(source.name(), destination.name(), asked, reference.parse().ok());
    let raw = match transfer::fetch(source, reference).await {
        Ok(raw) => raw,
        Err(e) => {
            report.fail(&e);
            return report;
        }
    };
    report.image = Some(raw.digest.clone());
    let _turn = match turns {
        // The unit's `--jobs` place is given back while it waits for its turn (`slots::waiting`).
        Some(turns) => Some(crate::slots::waiting(turns.take(&format!("{} {}", destination.name(), raw.digest))).await),
        None => None,
    };
    let mount = transfer::Mount { from: mount_from };
    if let Err(e) = copy_with(source, destination, &raw, tags, mount, verifier, options, &mut report).await {
        report.fail(&e.context(format!("copying {}@{}", source.name(), raw.digest)));
    }
    report
}

/// The image and, for an index, each platform manifest (BuildKit attestation manifests are not
/// platforms): the subjects whose attestations are copied.
fn subjects_of(raw: &RawManifest) -> Vec<Digest> {
    let mut subjects = vec![raw.digest.clone()];
    if let Manifest::Index(index) = &raw.manifest {
        for entry in index.manifests.iter().filter(|e| !is_buildkit_attestation(e)) {
            if !subjects.contains(&entry.digest) {
                subjects.push(entry.digest.clone());
            }
        }
    }
    subjects
}

#[allow(clippy::too_many_arguments)]
async fn copy_with<S: Repository, D: Repository>(
    source: &S,
    destination: &D,
    raw: &RawManifest,
    tags: &[String],
    mount: transfer::Mount<'_>,
    verifier: &Arc<Verifier>,
    options: &CopyOptions,
    report: &mut ImageCopy,
) -> Result<()> {
    report.subjects = subjects_of(raw);
    report.transfer.bytes_read += raw.bytes.len() as u64;
    let index = IndexOptions { repair: false, max_retries: options.migrate.index_retries };
    let mut migrate_options = options.migrate.clone();
    migrate_options.dry_run = false;

    // 1. Plan every conversion first: a layer that does not verify stops the image before any write.
    let view = ConversionView::new(source, destination, report.subjects.iter().cloned());
    let mut prepared: Vec<PreparedImage> = Vec::new();
    if options.legacy.converts() {
        for subject in &report.subjects {
            let mut plan = rewrite::prepare_image(&view, subject, verifier, &migrate_options).await?;
            match plan.report.outcome {
                Outcome::Planned => {}
                Outcome::NothingToMigrate => continue,
                Outcome::Blocked | Outcome::SkippedSignatureSwitch => {
                    report.outcome = CopyOutcome::Blocked;
                    report.reasons.push(format!(
                        "the legacy attestations of {subject} cannot be converted ({}): nothing written",
                        plan.report.outcome.as_str()
                    ));
                    report.reasons.extend(plan.report.reasons.iter().cloned());
                    report.converted.push(plan.report);
                    return Ok(());
                }
                other => {
                    return Err(Error::new(
                        ErrorKind::InvalidFormat,
                        format!(
                            "the legacy attestations of {subject}: {}: {}",
                            other.as_str(),
                            plan.report.reasons.join("; ")
                        ),
                    ));
                }
            }
            if let Some(query) = &options.filter.predicate_type {
                let unwanted: Vec<String> =
                    plan.predicate_types().filter(|t| !predicate_matches(query, t)).map(str::to_owned).collect();
                plan.retain(|t| predicate_matches(query, t));
                for t in unwanted {
                    report.left_behind.push(LeftBehind {
                        item: format!("legacy attestation {t} of {subject}"),
                        reason: format!("predicate type {t} is not {query}"),
                    });
                }
                if plan.report.referrers.is_empty() {
                    continue;
                }
            }
            prepared.push(plan);
        }
    }

    // 2. The image itself.
    report.transfer.add(&transfer::copy_manifest(source, destination, raw, mount).await?);

    // 3. The referrers it already has.
    for subject in report.subjects.clone() {
        let settings = referrers::ReferrerCopySettings {
            filter: &options.filter,
            limits: &options.migrate.limits,
            mount,
            index,
            listing_wait: options.migrate.listing_wait,
        };
        let copied = referrers::copy_referrers(source, destination, &subject, settings).await?;
        report.transfer.add(&copied.stats);
        report.referrers.extend(copied.copied);
        report.left_behind.extend(copied.left_behind);
    }

    // 4. Legacy tags kept as they are.
    for subject in report.subjects.clone() {
        copy_legacy_tags(source, destination, &subject, options, mount, report).await?;
    }

    // 5. The conversions, written and read back where the referrers now live (DSSE-format referrers reuse
    //    the legacy envelope blobs, which the destination needs first).
    view.read_blobs_from_destination();
    for mut plan in prepared {
        let subject = plan.report.image.clone();
        // What step 3 copied may be this very conversion, done in the source by an earlier migration.
        plan.adopt_listed(&view, verifier, &options.migrate.limits).await?;
        let reused = plan.reused_blobs();
        let reused: Vec<&crate::model::oci::Descriptor> = reused.iter().collect();
        report.transfer.add(&transfer::copy_blobs(source, destination, &reused, mount).await?);
        match rewrite::complete_image(&view, plan, verifier, &migrate_options).await {
            Ok(done) => report.converted.push(done),
            // ECR stores no referrer whose subject is an image index (aws/containers-roadmap#2783): the
            // index's attestations go over as its legacy `.att`, so that nothing is lost, and its platform
            // manifests' conversions and the tags go on.
            Err(e)
                if e.kind() == ErrorKind::Unsupported
                    && subject == raw.digest
                    && matches!(raw.manifest, Manifest::Index(_))
                    && destination.facts().index_subject_refused().is_some() =>
            {
                // With `--type`, the `.att` as it is would bring the attestations the filter left out.
                let filtered = options.filter.predicate_type.is_some();
                let instead = if options.legacy.keeps_att() {
                    "its legacy .att is copied as it is"
                } else if filtered {
                    "its legacy .att is not copied either: it holds predicate types --type leaves out"
                } else {
                    "its legacy .att is copied as it is instead"
                };
                report.left_behind.push(LeftBehind {
                    item: format!("the converted attestations of the index {subject}"),
                    reason: format!("{e}; {instead}"),
                });
                if !options.legacy.keeps_att() && !filtered {
                    copy_legacy_tag(source, destination, &TagKind::Attestation.tag_for(&subject), mount, report)
                        .await?;
                }
            }
            Err(e) => return Err(e),
        }
    }

    // 6. The tags, last.
    for tag in tags {
        let there = destination.head_manifest(tag).await?;
        if let Some(previous) = there.as_ref().filter(|d| d.digest != raw.digest) {
            report.reasons.push(format!(
                "tag {tag} moved from {} to {} in {} (the image it named stays, untagged)",
                previous.digest,
                raw.digest,
                destination.name()
            ));
        }
        if there.is_none_or(|d| d.digest != raw.digest) {
            destination.put_manifest(raw.bytes.clone(), &raw.media_type, Some(tag)).await?;
            report.transfer.manifests_written += 1;
            report.transfer.bytes_written += raw.bytes.len() as u64;
        }
        report.tags.push(tag.clone());
    }

    let converted_writes = report.converted.iter().any(|c| c.outcome == Outcome::Migrated);
    report.outcome =
        if report.transfer.wrote() || converted_writes { CopyOutcome::Copied } else { CopyOutcome::AlreadyCopied };
    Ok(())
}

/// Copy the legacy tags of `subject` that are kept as they are.
async fn copy_legacy_tags<S: Repository, D: Repository>(
    source: &S,
    destination: &D,
    subject: &Digest,
    options: &CopyOptions,
    mount: transfer::Mount<'_>,
    report: &mut ImageCopy,
) -> Result<()> {
    let mut kinds = vec![TagKind::Signature, TagKind::Sbom];
    if options.legacy.keeps_att() {
        kinds.push(TagKind::Attestation);
    }
    for kind in kinds {
        copy_legacy_tag(source, destination, &kind.tag_for(subject), mount, report).await?;
    }
    Ok(())
}

/// Copy the legacy manifest under `tag` as it is, unless the destination holds another under it.
async fn copy_legacy_tag<S: Repository, D: Repository>(
    source: &S,
    destination: &D,
    tag: &str,
    mount: transfer::Mount<'_>,
    report: &mut ImageCopy,
) -> Result<()> {
    let Some(raw) = source.get_manifest(tag).await? else {
        return Ok(());
    };
    report.transfer.bytes_read += raw.bytes.len() as u64;
    match destination.head_manifest(tag).await? {
        Some(there) if there.digest == raw.digest => {
            report.legacy_tags.push(tag.to_owned());
            return Ok(());
        }
        Some(there) => {
            report.left_behind.push(LeftBehind {
                item: format!("legacy tag {tag}"),
                reason: format!(
                    "{} already holds {} under it (another copy's signatures or attestations): left alone",
                    destination.name(),
                    there.digest
                ),
            });
            return Ok(());
        }
        None => {}
    }
    report.transfer.add(&transfer::copy_tagged(source, destination, &raw, mount, tag).await?);
    report.legacy_tags.push(tag.to_owned());
    Ok(())
}

#[cfg(test)]
mod tests;
