//! Where one image stands in a migration, decided from what its manifests say (pure: no I/O).
//!
//! A legacy layer counts as migrated when a referrer of the image carries att2ref's
//! `dev.att2ref.legacy.layer.digest` annotation naming that layer: the referrer was converted from exactly
//! those envelope bytes. That is what a manifest-only read can tell; `migrate` verified each referrer
//! before writing it, and `prune` verifies again before deleting anything.

use serde::Serialize;

use crate::convert::annotations;
use crate::model::digest::Digest;
use crate::model::media_type as mt;
use crate::model::oci::Descriptor;

/// The state of one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageState {
    /// A legacy `.att`, and no attestation referrer.
    LegacyOnly,
    /// A legacy `.att` whose every layer has an equivalent referrer.
    Migrated,
    /// A legacy `.att` and attestation referrers, but some layers have no equivalent: cosign v3 reads only
    /// the referrers and does not see those layers.
    PartlyMigrated,
    /// Attestation referrers and no legacy `.att` (it was pruned, or never existed).
    ReferrersOnly,
    /// Attachments (legacy tags or referrers) whose image this repository does not serve. Absent from here
    /// is not gone: with cosign's `COSIGN_REPOSITORY` they may belong to an image kept elsewhere.
    Orphaned,
    /// Neither a legacy `.att` nor an attestation referrer.
    NothingAttached,
}

impl ImageState {
    /// Every state, in report order.
    pub const ALL: [ImageState; 6] = [
        ImageState::LegacyOnly,
        ImageState::PartlyMigrated,
        ImageState::Migrated,
        ImageState::ReferrersOnly,
        ImageState::Orphaned,
        ImageState::NothingAttached,
    ];

    /// The name used in reports and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageState::LegacyOnly => "legacy-only",
            ImageState::Migrated => "migrated",
            ImageState::PartlyMigrated => "partly-migrated",
            ImageState::ReferrersOnly => "referrers-only",
            ImageState::Orphaned => "orphaned",
            ImageState::NothingAttached => "nothing-attached",
        }
    }
}

/// A referrer of the image, as its manifest describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferrerFacts {
    /// The listing's descriptor (digest, size, artifact type, annotations).
    pub listed: Descriptor,
    /// Its layers (one bundle or envelope for an attestation referrer).
    pub layers: Vec<Descriptor>,
    /// The manifest's annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl ReferrerFacts {
    /// Whether it holds an attestation: a Sigstore bundle or a DSSE envelope.
    pub fn is_attestation(&self) -> bool {
        let single = (self.layers.len() == 1).then(|| self.layers[0].media_type.as_str());
        single.is_some_and(|m| mt::is_bundle(m) || m == mt::DSSE_ENVELOPE)
            || self.listed.artifact_type.as_deref().is_some_and(|t| mt::is_bundle(t) || mt::is_dsse_artifact_type(t))
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).or_else(|| self.listed.annotations.get(key)).map(String::as_str)
    }

    /// Bytes a consumer downloads for this one attestation: its manifest and its layers.
    pub fn bytes(&self) -> u64 {
        self.listed.size + self.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// What was read of one image.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Whether the repository serves the image manifest.
    pub image_present: bool,
    /// The legacy `.att` manifest: its digest and size, and its layers.
    pub legacy: Option<(Digest, u64, Vec<Descriptor>)>,
    /// Whether other legacy tags (`.sig`, `.sbom`) exist.
    pub other_legacy_tags: bool,
    /// Every referrer listed for the image.
    pub referrers: Vec<ReferrerFacts>,
}

/// A legacy layer without an equivalent referrer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnmigratedLayer {
    /// Its position in the `.att`.
    pub index: usize,
    /// Its digest.
    pub digest: Digest,
    /// Its (unsigned) predicate type annotation, when the layer has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
}

/// Bytes a consumer of ONE attestation downloads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConsumerBytes {
    /// From the legacy layout: the whole `.att` (its manifest and every layer), whatever attestation is wanted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy: Option<u64>,
    /// From referrers: the smallest attestation referrer (manifest and layer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer_smallest: Option<u64>,
    /// From referrers: the largest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer_largest: Option<u64>,
}

/// The verdict on one image.
#[derive(Clone, Debug, PartialEq)]
pub struct StateAssessment {
    /// The state.
    pub state: ImageState,
    /// Legacy attestation layers.
    pub legacy_layers: usize,
    /// Attestation referrers.
    pub attestation_referrers: usize,
    /// Legacy layers without an equivalent referrer (for `partly-migrated`; every layer for `legacy-only`).
    pub unmigrated: Vec<UnmigratedLayer>,
    /// Download sizes for a consumer of one attestation.
    pub bytes: ConsumerBytes,
}

/// Decide the state of an image from what was read.
pub fn assess(observed: &Observed) -> StateAssessment {
    let attestations: Vec<&ReferrerFacts> = observed.referrers.iter().filter(|r| r.is_attestation()).collect();
    let converted: Vec<&str> =
        attestations.iter().filter_map(|r| r.annotation(annotations::LEGACY_LAYER_DIGEST)).collect();
    let unmigrated: Vec<UnmigratedLayer> = observed
        .legacy
        .iter()
        .flat_map(|(_, _, layers)| layers.iter().enumerate())
        .filter(|(_, l)| !converted.contains(&l.digest.to_string().as_str()))
        .map(|(index, l)| UnmigratedLayer {
            index,
            digest: l.digest.clone(),
            predicate_type: l.annotations.get(mt::annotations::COSIGN_PREDICATE_TYPE).cloned(),
        })
        .collect();
    let legacy_layers = observed.legacy.as_ref().map_or(0, |(_, _, l)| l.len());
    let state = if !observed.image_present
        && (observed.legacy.is_some() || observed.other_legacy_tags || !observed.referrers.is_empty())
    {
        ImageState::Orphaned
    } else {
        match (observed.legacy.is_some(), attestations.is_empty()) {
            (false, true) => ImageState::NothingAttached,
            (false, false) => ImageState::ReferrersOnly,
            (true, true) => ImageState::LegacyOnly,
            (true, false) if unmigrated.is_empty() => ImageState::Migrated,
            (true, false) => ImageState::PartlyMigrated,
        }
    };
    let sizes: Vec<u64> = attestations.iter().map(|r| r.bytes()).collect();
    let bytes = ConsumerBytes {
        legacy: observed.legacy.as_ref().map(|(_, size, layers)| size + layers.iter().map(|l| l.size).sum::<u64>()),
        referrer_smallest: sizes.iter().min().copied(),
        referrer_largest: sizes.iter().max().copied(),
    };
    StateAssessment { state, legacy_layers, attestation_referrers: attestations.len(), unmigrated, bytes }
}

/// What a consumer sees of an image in a state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsumerView {
    /// The consumer.
    pub consumer: &'static str,
    /// What it sees (from docs/COMPATIBILITY.md).
    pub sees: String,
}

/// What each consumer of docs/COMPATIBILITY.md sees of an image in `state`, with `hidden` legacy layers
/// that have no equivalent referrer.
pub fn consumers(state: ImageState, hidden: usize) -> Vec<ConsumerView> {
    use ImageState::*;
    let view = |consumer, sees: &str| ConsumerView { consumer, sees: sees.to_owned() };
    let partial = format!("only the referrers: {hidden} legacy attestation(s) hidden");
    match state {
        LegacyOnly => vec![
            view("cosign v2", "the legacy .att"),
            view("cosign v3", "the legacy .att"),
            view("kyverno", "the legacy .att"),
            view("kyverno bundle mode", "nothing"),
            view("policy-controller", "the legacy .att"),
            view("gh attestation verify", "nothing"),
        ],
        Migrated => vec![
            view("cosign v2", "the legacy .att"),
            view("cosign v3", "the bundles (all attestations)"),
            view("kyverno", "the legacy .att"),
            view("kyverno bundle mode", "the bundles (open bugs: kyverno#16678, #16854)"),
            view("policy-controller", "the legacy .att"),
            view("gh attestation verify", "the bundles"),
        ],
        PartlyMigrated => vec![
            view("cosign v2", "the legacy .att"),
            view("cosign v3", &partial),
            view("kyverno", "the legacy .att"),
            view("kyverno bundle mode", &partial),
            view("policy-controller", "the legacy .att"),
            view("gh attestation verify", &partial),
        ],
        ReferrersOnly => vec![
            view("cosign v2", "nothing"),
            view("cosign v3", "the bundles"),
            view("kyverno", "nothing"),
            view("kyverno bundle mode", "the bundles (open bugs: kyverno#16678, #16854)"),
            view("policy-controller", "nothing (bundle support open: policy-controller#1406)"),
            view("gh attestation verify", "the bundles"),
        ],
        Orphaned => vec![view(
            "every consumer",
            "nothing through this repository: it does not serve the image (it may live in another one, whose \
             attachments these are)",
        )],
        NothingAttached => vec![view("every consumer", "nothing")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(n: u8, size: u64) -> Descriptor {
        let mut d = Descriptor::of(mt::DSSE_ENVELOPE, &[n]);
        d.size = size;
        d.annotations.insert("predicateType".into(), format!("https://example.test/{n}"));
        d
    }

    fn bundle_for(legacy: Option<&Descriptor>, size: u64) -> ReferrerFacts {
        let mut listed = Descriptor::of(mt::OCI_MANIFEST, &size.to_be_bytes());
        listed.size = 500;
        listed.artifact_type = Some(mt::BUNDLE_V03.to_owned());
        let mut bundle = Descriptor::of(mt::BUNDLE_V03, &size.to_le_bytes());
        bundle.size = size;
        let mut annotations = std::collections::BTreeMap::new();
        if let Some(l) = legacy {
            annotations.insert(annotations::LEGACY_LAYER_DIGEST.to_owned(), l.digest.to_string());
        }
        ReferrerFacts { listed, layers: vec![bundle], annotations }
    }

    fn observed(layers: &[Descriptor], referrers: Vec<ReferrerFacts>) -> Observed {
        Observed {
            image_present: true,
            legacy: (!layers.is_empty()).then(|| (Digest::sha256(b"att"), 1000, layers.to_vec())),
            other_legacy_tags: false,
            referrers,
        }
    }

    #[test]
    fn each_state_from_what_was_read() {
        let (sbom, slsa) = (layer(1, 1_500_000), layer(2, 2_400));
        let a = assess(&observed(&[sbom.clone(), slsa.clone()], vec![]));
        assert_eq!((a.state, a.unmigrated.len()), (ImageState::LegacyOnly, 2));
        assert_eq!(a.bytes.legacy, Some(1000 + 1_500_000 + 2_400));
        let both = vec![bundle_for(Some(&sbom), 1_500_500), bundle_for(Some(&slsa), 3_000)];
        let a = assess(&observed(&[sbom.clone(), slsa.clone()], both.clone()));
        assert_eq!((a.state, a.unmigrated.len(), a.attestation_referrers), (ImageState::Migrated, 0, 2));
        assert_eq!((a.bytes.referrer_smallest, a.bytes.referrer_largest), (Some(3_500), Some(1_501_000)));
        let a = assess(&observed(&[sbom.clone(), slsa.clone()], vec![both[1].clone()]));
        assert_eq!(a.state, ImageState::PartlyMigrated);
        assert_eq!(
            a.unmigrated,
            [UnmigratedLayer {
                index: 0,
                digest: sbom.digest.clone(),
                predicate_type: Some("https://example.test/1".into())
            }]
        );
        // A bundle att2ref did not convert (cosign v3 attest) beside an unconverted .att: cosign v3 reads only
        // the bundle, so the image is partly migrated with every layer named.
        let a = assess(&observed(std::slice::from_ref(&sbom), vec![bundle_for(None, 900)]));
        assert_eq!((a.state, a.unmigrated.len()), (ImageState::PartlyMigrated, 1));
        let a = assess(&observed(&[], both));
        assert_eq!(a.state, ImageState::ReferrersOnly);
        assert_eq!(a.bytes.legacy, None);
        assert_eq!(assess(&observed(&[], vec![])).state, ImageState::NothingAttached);
        let mut gone = observed(&[slsa], vec![]);
        gone.image_present = false;
        assert_eq!(assess(&gone).state, ImageState::Orphaned);
    }

    #[test]
    fn a_non_attestation_referrer_is_not_a_migration() {
        let mut sbom = bundle_for(None, 10);
        sbom.layers[0].media_type = "application/spdx+json".into();
        sbom.listed.artifact_type = Some("application/spdx+json".into());
        assert_eq!(assess(&observed(&[], vec![sbom.clone()])).state, ImageState::NothingAttached);
        assert_eq!(assess(&observed(&[layer(1, 5)], vec![sbom])).state, ImageState::LegacyOnly);
    }

    #[test]
    fn a_partly_migrated_image_says_how_many_attestations_cosign_v3_misses() {
        let views = consumers(ImageState::PartlyMigrated, 2);
        let v3 = views.iter().find(|v| v.consumer == "cosign v3").unwrap();
        assert_eq!(v3.sees, "only the referrers: 2 legacy attestation(s) hidden");
    }
}
