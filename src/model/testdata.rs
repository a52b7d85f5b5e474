//! The shared real-data corpus, read in place by unit tests.
//!
//! The corpus lives beside the crate root in `../shared/corpus/`. It is never copied into the repository;
//! a test that needs it fails loudly when it is absent instead of passing without having checked anything.

use std::path::PathBuf;

const CSSC: &str = "toddysm-cssc-pipeline/sigstore-test";

/// The article's SLSA attestation layer (a DSSE envelope despite the file name).
pub const CSSC_SLSA_LAYER: &str = "toddysm-cssc-pipeline/sigstore-test/sigstore-attestation/ff626be9ff3158e9d2118072cd24481d990a5145d10109affec6064423d74cc4.tar.gz";
/// The article's SBOM attestation layer (a DSSE envelope despite the file name).
pub const CSSC_SBOM_LAYER: &str = "toddysm-cssc-pipeline/sigstore-test/sigstore-attestation/c9880779c90158a29f7a69f29c492551261e7a3936247fc75f225171064d6d32.tar.gz";
/// The 785-byte SLSA file wrapped in the SLSA layer.
pub const CSSC_SLSA_FILE: &str = "toddysm-cssc-pipeline/sigstore-test/flasksample-v1.slsa";
/// The `.sig` simple-signing payload blob.
pub const CSSC_SIG_PAYLOAD: &str = "toddysm-cssc-pipeline/sigstore-test/sigstore-signature/09b3e371137191b52fdd07bdf115824b2b297a2003882e68d68d66d0d35fe1fc.tar.gz";
/// The `.sig` manifest (pretty-printed).
pub const CSSC_SIG_MANIFEST: &str = "toddysm-cssc-pipeline/sigstore-test/flasksample-v1-signature-manifest.json";
/// The `.att` manifest (pretty-printed).
pub const CSSC_ATT_MANIFEST: &str = "toddysm-cssc-pipeline/sigstore-test/flasksample-v1-attestation-manifest.json";
/// The image the article signed.
pub const CSSC_IMAGE: &str = "sha256:9bd049b6b470118cc6a02d58595b86107407c9e288c0d556ce342ea8acbafdf4";
/// Legacy `.att` manifest written around securesystemslib envelopes.
pub const WRITER_LEGACY_MANIFEST: &str = "sigstore-oci-writer/legacy-att-manifest.json";
/// Its first layer.
pub const WRITER_LEGACY_ENVELOPE: &str = "sigstore-oci-writer/legacy-att-layer0-envelope.json";
/// A bundle v0.3 with a public-key hint and no log entries.
pub const WRITER_BUNDLE: &str = "sigstore-oci-writer/bundle-slsa1-ecdsa.json";
/// A real cosign `attest --new-bundle-format` bundle v0.3.
pub const COSIGN_BUNDLE: &str = "sigstore-cosign/oci-attestation.sigstore.json";
/// The public-good trusted root used with that bundle.
pub const COSIGN_TRUSTED_ROOT: &str = "sigstore-cosign/trusted_root_pgi.json";
/// Public-good trusted root.
pub const PUBLIC_GOOD_ROOT: &str = "sigstore-trusted-roots/public-good.trusted_root.json";
/// Staging trusted root.
pub const STAGING_ROOT: &str = "sigstore-trusted-roots/staging.trusted_root.json";

/// `cosign verify` output for keyless signature `n` (1–3) of the article.
pub fn cssc_keyless_verification(n: u8) -> String {
    format!("{CSSC}/sigstore-ephemeral-keys/flasksample-v{n}-ephemeral-verification.json")
}

fn corpus_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("shared").join("corpus")
}

/// Read a corpus file, panicking with a message that says the corpus is missing.
pub fn read(relative: &str) -> Vec<u8> {
    let path = corpus_root().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "real-data corpus file `{relative}` is unreadable ({e}): this test needs `../shared/corpus` next to the \
             crate root, and `../shared` is missing or incomplete"
        )
    })
}
