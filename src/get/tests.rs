//! `get` over stores in memory: what is read, and what a misleading prefix costs.

use std::sync::Arc;

use super::*;
use crate::demo::{self, TestKey};
use crate::store::memory::MemoryRepository;
use crate::verification::{Policy, PublicKey, Verifier};

fn verifier() -> Arc<Verifier> {
    let key = PublicKey::from_pem(TestKey::Rsa4096.public_pem().as_bytes()).unwrap();
    Arc::new(Verifier::new(Policy::new().with_key(key).insecure_ignore_tlog(true)).unwrap())
}

#[tokio::test]
async fn a_prefix_that_lies_costs_one_read_and_is_never_returned() {
    let scenario = demo::prefix_decoy().unwrap();
    let repo = MemoryRepository::default();
    scenario.repo.push_to(&repo).await.unwrap();
    let image = scenario.image.to_string();
    let options = GetOptions::new("custom").with_hint("slsa-provenance");
    let result = get_attestation(&repo, &image, &options, &verifier()).await.unwrap();

    // The real provenance (layer 1), verified; the decoy (layer 0) was read whole, found to be SPDX by its
    // signed content and dropped; the SBOM (layer 2) was never read past its start.
    let answer = result.attestation().expect("the real SLSA provenance");
    assert!(matches!(answer.source, AnswerSource::Legacy { layer: 1, .. }), "{:?}", answer.source);
    assert_eq!(answer.hint, "slsa-provenance-v0.2");
    assert!(answer.is_verified());
    assert_eq!(result.attestations.len(), 1);
    assert_eq!(result.stats.read_not_matching, 1, "the decoy, read whole and not matching");
    let legacy = result.stats.legacy.as_ref().unwrap();
    assert_eq!((legacy.layers_read_partially, legacy.layers_skipped_by_prefix, legacy.layers_read), (3, 1, 2));
    let said: Vec<_> = legacy.prefixes.iter().map(|p| (p.layer, p.hint.clone(), p.outcome.as_str())).collect();
    assert_eq!(
        said,
        [
            (0, Some("slsa-provenance-v0.2".to_owned()), "read-whole"),
            (1, Some("slsa-provenance-v0.2".to_owned()), "read-whole"),
            (2, Some("spdx-2.2".to_owned()), "skipped: its prefix looks like spdx-2.2"),
        ]
    );
    // Bytes: three starts (the memory store has no partial reads: it reads whole and keeps the start)
    // plus two whole layers.
    let sizes: Vec<u64> = legacy.prefixes.iter().map(|p| p.size).collect();
    assert_eq!(legacy.bytes_read, sizes[0] + sizes[1]);
    assert!(legacy.prefixes.iter().all(|p| p.bytes == 2048 && p.read == crate::store::PrefixRead::Whole));

    // Asking for SPDX: the decoy's start says SLSA, so it is skipped although its whole content is SPDX;
    // the SBOM is the answer. (A lying prefix can hide a layer from a hint query, never add one.)
    let options = GetOptions::new("custom").with_hint("spdx");
    let result = get_attestation(&repo, &image, &options, &verifier()).await.unwrap();
    let answer = result.attestation().expect("the SBOM");
    assert!(matches!(answer.source, AnswerSource::Legacy { layer: 2, .. }), "{:?}", answer.source);
    assert_eq!(answer.hint, "spdx-2.2");

    // Without a hint nothing is skipped by content: every custom layer is a candidate, the newest wins
    // (the decoy, by its signed Timestamp).
    let result = get_attestation(&repo, &image, &GetOptions::new("custom"), &verifier()).await.unwrap();
    assert!(matches!(result.attestation().unwrap().source, AnswerSource::Legacy { layer: 0, .. }));
    assert_eq!(result.stats.legacy.as_ref().unwrap().layers_skipped_by_prefix, 0);
}
