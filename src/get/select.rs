//! Choosing what to download from what is already known without downloading it: referrer index entries
//! by their annotations, legacy layers by theirs (pure).
//!
//! Everything read here is unsigned. It is used only to *skip* downloads and to order candidates; whatever
//! is chosen is read and verified afterwards, and its signed statement must agree.

use crate::convert::annotations::CONTENT_HINT;
use crate::model::cosign::LegacyLayerAnnotations;
use crate::model::envelope_prefix::PrefixGuess;
use crate::model::media_type::{self as mt, annotations as ann};
use crate::model::oci::Descriptor;
use crate::model::predicate::predicate_matches;
use crate::model::time::parse_rfc3339;
use crate::read::legacy::READ_WHOLE_UP_TO;

/// What the caller asked for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Query<'a> {
    /// A cosign short name or a full predicate type URI.
    pub predicate_type: &'a str,
    /// A content hint id prefix (`slsa-provenance`), if any.
    pub hint: Option<&'a str>,
}

impl Query<'_> {
    /// Whether a (signed) predicate type is the one asked for.
    pub fn type_matches(&self, predicate_type: &str) -> bool {
        predicate_matches(self.predicate_type, predicate_type)
    }

    /// Whether a content hint id satisfies the hint asked for (always, when none was).
    pub fn hint_matches(&self, id: &str) -> bool {
        self.hint.is_none_or(|h| hint_matches(h, id))
    }
}

/// Whether the content hint id `id` (`slsa-provenance-v0.2`) starts with the user's `query`
/// (`slsa-provenance`), ignoring ASCII case.
pub fn hint_matches(query: &str, id: &str) -> bool {
    let query = query.trim();
    !query.is_empty() && id.len() >= query.len() && id.as_bytes()[..query.len()].eq_ignore_ascii_case(query.as_bytes())
}

/// Whether the start of legacy layer `layer` (with predicate type annotation `annotated_type`) is worth
/// reading before deciding to read it whole: it is large, and the manifest leaves open whether it matches
/// (no type annotation, or a content hint was asked for, which no legacy annotation states).
pub(crate) fn wants_prefix(layer: &Descriptor, annotated_type: Option<&str>, query: &Query<'_>) -> bool {
    layer.size > READ_WHOLE_UP_TO && (annotated_type.is_none() || query.hint.is_some())
}

/// What an (unsigned) prefix guess means for a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PrefixVerdict {
    /// Read it whole: it may match (or the prefix did not say).
    Read,
    /// Leave it unread, for this reason.
    Skip(String),
}

/// Decide on a prefix guess: skip only what the prefix positively names as something else. A hint that
/// lacks the detail asked for (`spdx` where `spdx-2.2` was asked) is not a mismatch: more bytes may add it.
pub(crate) fn judge_prefix(guess: &PrefixGuess, query: &Query<'_>) -> PrefixVerdict {
    if let Some(t) = &guess.predicate_type
        && !query.type_matches(t)
    {
        return PrefixVerdict::Skip(format!("its prefix says predicate type {t}"));
    }
    if let (Some(asked), Some(hint)) = (query.hint, &guess.hint) {
        let id = hint.id();
        // A cut predicate is compared by family only: the rest may change its version.
        let compared = if guess.partial { family(&id) } else { id.as_str() };
        let less_detailed = asked.trim().to_ascii_lowercase().starts_with(compared);
        if !hint_matches(asked, compared) && !less_detailed {
            return PrefixVerdict::Skip(format!("its prefix looks like {id}"));
        }
    }
    PrefixVerdict::Read
}

/// The family of a content hint id, without its version: `spdx-2.2` → `spdx`, `slsa-provenance-v0.2` →
/// `slsa-provenance`, `cyclonedx-1.4` → `cyclonedx`.
fn family(id: &str) -> &str {
    ["slsa-provenance", "spdx", "cyclonedx"].into_iter().find(|f| id.starts_with(f)).unwrap_or(id)
}

/// The referrer entries of one kind to fetch, in the order to try them.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReferrerPlan {
    /// Entries whose annotations say they match, newest first: first those whose hint annotation matches
    /// (or every type match when no hint was asked), then type matches without a hint annotation.
    pub annotated: Vec<Descriptor>,
    /// Entries without a predicate type annotation (other writers), newest first: fetched only when
    /// nothing annotated matches.
    pub unannotated: Vec<Descriptor>,
    /// Entries of this kind in the listing.
    pub listed: usize,
    /// Entries with a predicate type annotation.
    pub annotated_count: usize,
    /// Entries skipped because their predicate type annotation is another type.
    pub skipped_type: usize,
    /// Entries skipped because their content hint annotation is another kind.
    pub skipped_hint: usize,
}

/// A candidate: its position, its creation time (seconds, nanoseconds) when known, and what it is.
type Timed<T> = (usize, Option<(i64, u32)>, T);

/// Sort key for "newest first": the `org.opencontainers.image.created` annotation when it parses, then
/// position (later entries were appended later).
fn newest_first<T>(items: &mut [Timed<T>]) {
    items.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
}

fn created_key(d: &Descriptor) -> Option<(i64, u32)> {
    d.annotation(ann::OCI_CREATED).and_then(|c| parse_rfc3339(c).ok())
}

/// Which referrers a plan is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReferrerKind {
    /// Sigstore bundles v0.1–v0.3, whichever media type spelling their artifactType uses
    /// (`dev.sigstore.bundle.predicateType`).
    Bundle,
    /// Bare DSSE envelopes (`in-toto.io/predicate-type`): `migrate --format dsse`, and other tools'
    /// ([`mt::is_dsse_artifact_type`]).
    Dsse,
}

impl ReferrerKind {
    /// Bundles before DSSE envelopes: the order kinds are tried in.
    pub const ALL: [ReferrerKind; 2] = [ReferrerKind::Bundle, ReferrerKind::Dsse];

    /// The kind of a listed entry; `None` for other artifacts (SBOM files, signatures, …). An entry
    /// without an artifactType (go-containerregistry < 0.22.1 dropped it from tag-schema indexes), or
    /// listed with the empty config's media type (Harbor before 2.11 lists the config's media type
    /// whatever the manifest's artifactType, goharbor/harbor#19867; no attestation has that type), can
    /// only be told by its predicate annotation, and is a bundle candidate when it has none, so that it
    /// is planned, and fetched, once.
    pub fn of(entry: &Descriptor) -> Option<ReferrerKind> {
        match entry.artifact_type.as_deref().filter(|t| *t != mt::OCI_EMPTY) {
            Some(t) if mt::is_bundle(t) => Some(ReferrerKind::Bundle),
            Some(t) if mt::is_dsse_artifact_type(t) => Some(ReferrerKind::Dsse),
            Some(_) => None,
            None if entry.annotation(ann::BUNDLE_PREDICATE_TYPE).is_none()
                && entry.annotation(ann::IN_TOTO_PREDICATE_TYPE).is_some() =>
            {
                Some(ReferrerKind::Dsse)
            }
            None => Some(ReferrerKind::Bundle),
        }
    }

    fn predicate_annotation(self) -> &'static str {
        match self {
            ReferrerKind::Bundle => ann::BUNDLE_PREDICATE_TYPE,
            ReferrerKind::Dsse => ann::IN_TOTO_PREDICATE_TYPE,
        }
    }
}

/// Plan which listed referrers of `kind` to fetch. `entries` is the whole, unfiltered listing; entries of
/// another kind ([`ReferrerKind::of`]) are left out.
pub(crate) fn plan_referrers_of(kind: ReferrerKind, entries: &[Descriptor], query: &Query<'_>) -> ReferrerPlan {
    let mut plan = ReferrerPlan::default();
    let mut hinted = Vec::new();
    let mut unhinted = Vec::new();
    let mut unannotated = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if ReferrerKind::of(e) != Some(kind) {
            continue;
        }
        plan.listed += 1;
        let item = (i, created_key(e), e.clone());
        let Some(predicate_type) = e.annotation(kind.predicate_annotation()) else {
            unannotated.push(item);
            continue;
        };
        plan.annotated_count += 1;
        if !query.type_matches(predicate_type) {
            plan.skipped_type += 1;
            continue;
        }
        match (query.hint, e.annotation(CONTENT_HINT)) {
            (None, _) => hinted.push(item),
            (Some(_), Some(id)) if query.hint_matches(id) => hinted.push(item),
            (Some(_), Some(_)) => plan.skipped_hint += 1,
            (Some(_), None) => unhinted.push(item),
        }
    }
    for list in [&mut hinted, &mut unhinted, &mut unannotated] {
        newest_first(list);
    }
    plan.annotated = hinted.into_iter().chain(unhinted).map(|(_, _, d)| d).collect();
    plan.unannotated = unannotated.into_iter().map(|(_, _, d)| d).collect();
    plan
}

/// The legacy `.att` layers to read, in the order to read them.
#[derive(Clone, Debug, Default)]
pub(crate) struct LegacyPlan {
    /// Layer positions to read.
    pub read: Vec<usize>,
    /// Whether the first accepted layer is the newest, so reading may stop there: true only when every
    /// layer to read has a `predicateType` annotation and a Rekor integrated time to order by.
    pub ordered: bool,
    /// Layers with a `predicateType` annotation (cosign ≥ 2.0).
    pub annotated: usize,
    /// Layers skipped because their annotation names another type.
    pub skipped_type: usize,
    /// Layers that must be read only to learn their type (no annotation: cosign < 2.0).
    pub unannotated: usize,
}

/// Plan which legacy layers to read.
pub(crate) fn plan_legacy(layers: &[Descriptor], query: &Query<'_>) -> LegacyPlan {
    let mut plan = LegacyPlan::default();
    let mut read = Vec::new();
    let mut all_timed = true;
    // Every layer is a candidate whatever its media type: cosign reads each `.att` layer as an envelope
    // by its content, and so do inspect, verify, migrate and prune (docs/FORMATS.md).
    for (i, layer) in layers.iter().enumerate() {
        let annotations = LegacyLayerAnnotations::from_descriptor(layer);
        match annotations.predicate_type.as_deref() {
            Some(t) => {
                plan.annotated += 1;
                if !query.type_matches(t) {
                    plan.skipped_type += 1;
                    continue;
                }
            }
            None => {
                plan.unannotated += 1;
                all_timed = false;
            }
        }
        let time = match &annotations.bundle {
            Some(Ok(b)) => Some((b.payload.integrated_time, 0)),
            _ => None,
        };
        all_timed &= time.is_some();
        read.push((i, time, ()));
    }
    plan.ordered = all_timed;
    if all_timed {
        newest_first(&mut read);
    }
    plan.read = read.into_iter().map(|(i, _, _)| i).collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::digest::Digest;
    use crate::model::predicate::{CUSTOM, CUSTOM_V1, SLSA_PROVENANCE_V1, SPDX};

    fn entry(n: u8, predicate_type: Option<&str>, hint: Option<&str>, created: Option<&str>) -> Descriptor {
        let mut d = Descriptor::of(mt::OCI_MANIFEST, &[n]);
        d.artifact_type = Some(mt::BUNDLE_V03.into());
        for (k, v) in [(ann::BUNDLE_PREDICATE_TYPE, predicate_type), (CONTENT_HINT, hint), (ann::OCI_CREATED, created)]
        {
            if let Some(v) = v {
                d.annotations.insert(k.into(), v.into());
            }
        }
        d
    }

    #[test]
    fn hints_match_by_prefix_ignoring_case() {
        assert!(hint_matches("slsa-provenance", "slsa-provenance-v0.2"));
        assert!(hint_matches("SLSA", "slsa-provenance-v1"));
        assert!(!hint_matches("spdx", "slsa-provenance-v1"));
        assert!(!hint_matches("", "spdx-2.2"));
        assert!(!hint_matches("slsa-provenance-v0.2-x", "slsa-provenance-v0.2"));
    }

    #[test]
    fn referrers_are_chosen_by_annotations_newest_first() {
        let entries = vec![
            entry(0, Some(CUSTOM_V1), Some("spdx-2.2"), Some("2023-03-14T16:20:31Z")),
            entry(1, Some(CUSTOM_V1), Some("slsa-provenance-v0.2"), Some("2023-03-14T16:21:07Z")),
            entry(2, Some(CUSTOM), None, Some("2024-01-01T00:00:00Z")),
            entry(3, Some(SPDX), None, None),
            entry(4, None, None, Some("2030-01-01T00:00:00Z")),
            entry(5, Some(CUSTOM_V1), Some("slsa-provenance-v0.2"), Some("2023-03-15T00:00:00.5Z")),
        ];
        let q = Query { predicate_type: "custom", hint: Some("slsa-provenance") };
        let plan = plan_referrers_of(ReferrerKind::Bundle, &entries, &q);
        let got: Vec<_> = plan.annotated.iter().map(|d| d.digest.clone()).collect();
        assert_eq!(got, [&entries[5], &entries[1], &entries[2]].map(|e| e.digest.clone()));
        assert_eq!(plan.unannotated, [entries[4].clone()]);
        assert_eq!((plan.annotated_count, plan.skipped_type, plan.skipped_hint), (5, 1, 1));

        // Without a hint every custom entry is a candidate, newest first.
        let plan = plan_referrers_of(ReferrerKind::Bundle, &entries, &Query { predicate_type: "custom", hint: None });
        let got: Vec<_> = plan.annotated.iter().map(|d| d.digest.clone()).collect();
        assert_eq!(got, [2, 5, 1, 0].map(|i| entries[i].digest.clone()));

        // A full URI matches only itself.
        let plan = plan_referrers_of(
            ReferrerKind::Bundle,
            &entries,
            &Query { predicate_type: SLSA_PROVENANCE_V1, hint: None },
        );
        assert!(plan.annotated.is_empty());
        assert_eq!(plan.skipped_type, 5);
    }

    #[test]
    fn non_bundle_entries_are_left_out() {
        let mut other = entry(9, Some(CUSTOM), None, None);
        other.artifact_type = Some(mt::IN_TOTO.into());
        let mut untyped = entry(8, None, None, None);
        untyped.artifact_type = None;
        let plan = plan_referrers_of(
            ReferrerKind::Bundle,
            &[other, untyped.clone()],
            &Query { predicate_type: "custom", hint: None },
        );
        assert!(plan.annotated.is_empty());
        assert_eq!(plan.unannotated, [untyped]);
    }

    /// An entry typed `artifact_type`, with `predicate_type` under the annotation its kind uses.
    fn typed(n: u8, artifact_type: Option<&str>, key: &str, predicate_type: Option<&str>, created: &str) -> Descriptor {
        let mut d = Descriptor::of(mt::OCI_MANIFEST, &[n]);
        d.artifact_type = artifact_type.map(str::to_owned);
        d.annotations.insert(ann::OCI_CREATED.into(), created.into());
        if let Some(t) = predicate_type {
            d.annotations.insert(key.into(), t.into());
        }
        d
    }

    fn digests(list: &[Descriptor]) -> Vec<Digest> {
        list.iter().map(|d| d.digest.clone()).collect()
    }

    #[test]
    fn every_bundle_version_and_dsse_artifact_type_is_planned_from_one_listing() {
        let (b, d) = (ann::BUNDLE_PREDICATE_TYPE, ann::IN_TOTO_PREDICATE_TYPE);
        let plus_dsse = "application/vnd.in-toto.provenance+dsse";
        let entries = vec![
            typed(0, Some(mt::BUNDLE_V01), b, Some(CUSTOM), "2023-01-01T00:00:00Z"),
            typed(1, Some(mt::BUNDLE_V02), b, Some(CUSTOM), "2024-01-01T00:00:00Z"),
            typed(2, Some(mt::BUNDLE_V03), b, Some(CUSTOM), "2022-01-01T00:00:00Z"),
            typed(3, Some(mt::BUNDLE_V02), b, Some(SPDX), "2030-01-01T00:00:00Z"),
            typed(4, Some(mt::BUNDLE_V01), b, None, "2021-01-01T00:00:00Z"),
            typed(5, Some(mt::IN_TOTO), d, Some(CUSTOM), "2023-06-01T00:00:00Z"),
            typed(6, Some(mt::DSSE_ENVELOPE), d, Some(CUSTOM), "2025-01-01T00:00:00Z"),
            typed(7, Some(plus_dsse), d, Some(CUSTOM_V1), "2024-06-01T00:00:00Z"),
            typed(8, Some(mt::DSSE_ENVELOPE), d, None, "2029-01-01T00:00:00Z"),
            // A bundle annotation means nothing on a DSSE referrer: it is unannotated there.
            typed(9, Some(mt::IN_TOTO), b, Some(CUSTOM), "2028-01-01T00:00:00Z"),
            // Not attestations: never planned, never counted.
            typed(10, Some("application/spdx+json"), d, Some(CUSTOM), "2031-01-01T00:00:00Z"),
            typed(11, Some(mt::DOCKER_ATTESTATION_MANIFEST), d, Some(CUSTOM), "2031-01-01T00:00:00Z"),
        ];
        let q = Query { predicate_type: "custom", hint: None };
        let bundles = plan_referrers_of(ReferrerKind::Bundle, &entries, &q);
        assert_eq!(digests(&bundles.annotated), digests(&[1, 0, 2].map(|i| entries[i].clone())));
        assert_eq!(digests(&bundles.unannotated), [entries[4].digest.clone()]);
        let counts = (bundles.listed, bundles.annotated_count, bundles.skipped_type, bundles.skipped_hint);
        assert_eq!(counts, (5, 4, 1, 0));
        let dsse = plan_referrers_of(ReferrerKind::Dsse, &entries, &q);
        assert_eq!(digests(&dsse.annotated), digests(&[6, 7, 5].map(|i| entries[i].clone())));
        assert_eq!(digests(&dsse.unannotated), digests(&[8, 9].map(|i| entries[i].clone())));
        assert_eq!((dsse.listed, dsse.annotated_count, dsse.skipped_type), (5, 3, 0));

        // A full URI: only the v0.2 SBOM bundle matches; the rest are skipped unread.
        let q = Query { predicate_type: SPDX, hint: None };
        let bundles = plan_referrers_of(ReferrerKind::Bundle, &entries, &q);
        assert_eq!(digests(&bundles.annotated), [entries[3].digest.clone()]);
        assert_eq!(bundles.skipped_type, 3);
        assert_eq!(plan_referrers_of(ReferrerKind::Dsse, &entries, &q).skipped_type, 3);
    }

    #[test]
    fn untyped_entries_are_planned_once_by_their_annotation() {
        let untyped = |n: u8, key: &str| typed(n, None, key, Some(CUSTOM), "2024-01-01T00:00:00Z");
        let dsse = untyped(0, ann::IN_TOTO_PREDICATE_TYPE);
        let bundle = untyped(1, ann::BUNDLE_PREDICATE_TYPE);
        let bare = typed(2, None, ann::BUNDLE_PREDICATE_TYPE, None, "2024-01-01T00:00:00Z");
        assert_eq!(ReferrerKind::of(&dsse), Some(ReferrerKind::Dsse));
        assert_eq!(ReferrerKind::of(&bundle), Some(ReferrerKind::Bundle));
        assert_eq!(ReferrerKind::of(&bare), Some(ReferrerKind::Bundle), "a bundle candidate, fetched once");
        let entries = [dsse.clone(), bundle.clone(), bare.clone()];
        let q = Query { predicate_type: "custom", hint: None };
        let b = plan_referrers_of(ReferrerKind::Bundle, &entries, &q);
        let d = plan_referrers_of(ReferrerKind::Dsse, &entries, &q);
        assert_eq!((b.annotated, b.unannotated), (vec![bundle], vec![bare]));
        assert_eq!((d.annotated, d.unannotated.len()), (vec![dsse], 0));
    }

    #[test]
    fn prefixes_skip_only_what_they_name_as_something_else() {
        use crate::model::predicate::{ContentHint, ContentKind, SlsaVersion};
        let guess = |t: Option<&str>, kind: Option<ContentKind>| PrefixGuess {
            predicate_type: t.map(str::to_owned),
            hint: kind.map(|kind| ContentHint { kind, relaxed: false }),
            statement_bytes: 1500,
            partial: false,
        };
        let slsa = Query { predicate_type: "custom", hint: Some("slsa-provenance") };
        let spdx22 = Query { predicate_type: "custom", hint: Some("spdx-2.2") };
        let sbom = guess(Some(CUSTOM_V1), Some(ContentKind::Spdx { version: Some("SPDX-2.2".into()) }));
        let provenance = guess(Some(CUSTOM_V1), Some(ContentKind::SlsaProvenance(SlsaVersion::V0_2)));
        assert_eq!(judge_prefix(&sbom, &slsa), PrefixVerdict::Skip("its prefix looks like spdx-2.2".into()));
        assert_eq!(judge_prefix(&provenance, &slsa), PrefixVerdict::Read);
        assert_eq!(judge_prefix(&sbom, &spdx22), PrefixVerdict::Read);
        // No version yet: it may still be SPDX-2.2.
        assert_eq!(judge_prefix(&guess(None, Some(ContentKind::Spdx { version: None })), &spdx22), PrefixVerdict::Read);
        assert_eq!(
            judge_prefix(&guess(Some(SPDX), None), &slsa),
            PrefixVerdict::Skip(format!("its prefix says predicate type {SPDX}"))
        );
        assert_eq!(judge_prefix(&guess(None, None), &slsa), PrefixVerdict::Read);
        // A cut predicate: only the family counts (keys not seen yet may make v0.2 a v0.1).
        let cut = PrefixGuess { partial: true, ..provenance.clone() };
        let v01 = Query { predicate_type: "custom", hint: Some("slsa-provenance-v0.1") };
        assert_eq!(
            judge_prefix(&provenance, &v01),
            PrefixVerdict::Skip("its prefix looks like slsa-provenance-v0.2".into())
        );
        assert_eq!(judge_prefix(&cut, &v01), PrefixVerdict::Read);
        assert_eq!(
            judge_prefix(&PrefixGuess { partial: true, ..sbom.clone() }, &slsa),
            PrefixVerdict::Skip("its prefix looks like spdx-2.2".into())
        );
        let big = |n: u64| Descriptor { size: n, ..Descriptor::of(mt::DSSE_ENVELOPE, b"x") };
        assert!(!wants_prefix(&big(READ_WHOLE_UP_TO), None, &slsa));
        assert!(wants_prefix(&big(READ_WHOLE_UP_TO + 1), None, &slsa));
        assert!(wants_prefix(&big(1 << 20), Some(CUSTOM), &slsa));
        assert!(!wants_prefix(&big(1 << 20), Some(CUSTOM), &Query { predicate_type: "custom", hint: None }));
    }

    #[test]
    fn legacy_layers_without_annotations_must_all_be_read() {
        let layer = |n: u8, t: Option<&str>| {
            let mut d = Descriptor::of(mt::DSSE_ENVELOPE, &[n]);
            d.annotations.insert(ann::COSIGN_SIGNATURE.into(), String::new());
            if let Some(t) = t {
                d.annotations.insert(ann::COSIGN_PREDICATE_TYPE.into(), t.into());
            }
            d
        };
        let q = Query { predicate_type: "custom", hint: None };
        let plan = plan_legacy(&[layer(0, None), layer(1, None)], &q);
        assert_eq!((plan.read.clone(), plan.ordered, plan.unannotated), (vec![0, 1], false, 2));
        let plan = plan_legacy(&[layer(0, Some(SPDX)), layer(1, Some(CUSTOM)), layer(2, None)], &q);
        assert_eq!((plan.read.clone(), plan.skipped_type, plan.annotated, plan.unannotated), (vec![1, 2], 1, 2, 1));
    }
}
