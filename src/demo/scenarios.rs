//! The scenarios: each builds a complete legacy store (subject images plus `.sig`/`.att`).

use serde_json::Value;

use super::build::{Att, Builder, Signing};
use super::content::{self, ARTICLE_SLSA_TEXT, predicate_type as pt};
use super::keys::{Scheme, TestKey, TestSigner};
use super::oci::{GO_ZERO_TIME, GeneratedLayer, subject_image};
use super::pki::KeylessIdentity;
use super::prng::Prng;
use super::rekor::TestLog;
use super::{AttachmentKind, LayerInfo, Scenario, TlogKind};
use crate::error::Result;
use crate::model::digest::Digest;

/// Size of the article-like SBOM file (the article's was 1,515,902 bytes).
pub const ARTICLE_SBOM_BYTES: usize = 1_520_000;
/// Size of the demo store's SBOM file.
pub const DEMO_SBOM_BYTES: usize = 200_000;

/// The article's layout (cosign v1.x, no transparency log): a `.sig` and an `.att` with two
/// custom-wrapped layers — a ~1.5 MB SPDX-2.2 SBOM and the 785-byte SLSA text — signed with the
/// RSA-4096 test key (PKCS#1 v1.5). Deterministic.
pub fn article_like() -> Result<Scenario> {
    article_shape(
        "article_like",
        "cosign v1.x store like the article's: .sig + .att with SBOM and SLSA in custom Data wrappers, RSA-4096 key",
        "registry.test/cssc/flasksample",
        ARTICLE_SBOM_BYTES,
    )
}

/// What `att2ref demo` shows: the article's shape with a 200 KB SBOM so it builds instantly.
/// Deterministic.
pub fn demo() -> Result<Scenario> {
    article_shape(
        "demo",
        "a small article-like cosign v1.x store: .sig + .att (SBOM, SLSA) signed with the RSA-4096 test key",
        "registry.test/demo/flasksample",
        DEMO_SBOM_BYTES,
    )
}

fn article_shape(name: &'static str, summary: &'static str, repository: &str, sbom_bytes: usize) -> Result<Scenario> {
    let mut b = Builder::new(repository);
    let image = subject_image(&format!("{repository}:v1 (att2ref test image)"), "linux", "amd64", None);
    let image = b.image(&image, &["v1"]);
    let key = Signing::key(TestKey::Rsa4096.signer());

    let sig = b.signature(&image, key.clone())?;
    b.attach(AttachmentKind::Signatures, &image, vec![sig], "2023-03-14T09:14:59.265358979-07:00");

    let mut prng = Prng::from_label(repository);
    let sbom = content::spdx_sbom(&mut prng, &format!("{repository}-v1"), "2023-03-14T16:05:12.718281828Z", sbom_bytes);
    let sbom = b.attestation(custom_v1(&image, sbom, "2023-03-14T16:20:31Z", &key))?;
    let slsa = b.attestation(custom_v1(&image, ARTICLE_SLSA_TEXT.to_owned(), "2023-03-14T16:21:07Z", &key))?;
    b.attach(AttachmentKind::Attestations, &image, vec![sbom, slsa], "2023-03-14T09:21:07.141421356-07:00");
    Ok(b.finish(name, summary, image))
}

/// Image number `index` of a benchmark fleet: one small subject image and a legacy `.att` with the
/// article's two layers (a `sbom_bytes` SPDX SBOM and the 785-byte SLSA text, custom-wrapped, RSA-4096
/// test key, no log), every byte different per index and the same on every run. No `.sig`, so the
/// store holds exactly what a migration reads and a copy of the `.att` moves.
pub fn article_like_numbered(repository: &str, index: u32, sbom_bytes: usize) -> Result<Scenario> {
    let mut b = Builder::new(repository);
    let tag = format!("v{index}");
    let image = subject_image(&format!("{repository}:{tag} (att2ref bench image)"), "linux", "amd64", None);
    let image = b.image(&image, &[tag.as_str()]);
    let key = Signing::key(TestKey::Rsa4096.signer());
    let mut prng = Prng::from_label(&format!("{repository}#{index}"));
    let sbom =
        content::spdx_sbom(&mut prng, &format!("{repository}-{tag}"), "2023-03-14T16:05:12.718281828Z", sbom_bytes);
    let sbom = b.attestation(custom_v1(&image, sbom, "2023-03-14T16:20:31Z", &key))?;
    let slsa = b.attestation(custom_v1(&image, ARTICLE_SLSA_TEXT.to_owned(), "2023-03-14T16:21:07Z", &key))?;
    b.attach(AttachmentKind::Attestations, &image, vec![sbom, slsa], "2023-03-14T09:21:07.141421356-07:00");
    Ok(b.finish(
        "article_like_numbered",
        "one image of a benchmark fleet: .att with SBOM and SLSA, RSA-4096 key",
        image,
    ))
}

/// For `get`'s prefix reads (tests only): cosign 1.x layers without annotations, each larger than a
/// prefix read — first a decoy whose first KiB looks like SLSA provenance (`builder`, `buildType`) while
/// the whole file is an SPDX document (`spdxVersion` further on, which the full hint reads first), then a
/// real SLSA provenance, then an SPDX SBOM. RSA-4096 test key, no log. Deterministic.
#[cfg(test)]
pub(crate) fn prefix_decoy() -> Result<Scenario> {
    let repository = "registry.test/decoy/app";
    let mut b = Builder::new(repository);
    let image = subject_image(&format!("{repository}:v1 (att2ref test image)"), "linux", "amd64", None);
    let image = b.image(&image, &["v1"]);
    let key = Signing::key(TestKey::Rsa4096.signer());
    let mut prng = Prng::from_label(repository);
    let padding = "x".repeat(6000);
    let decoy = format!(
        "{{\"builder\": {{\"id\": \"https://decoy.test\"}}, \"buildType\": \"https://decoy.test/t\", \
         \"comment\": \"{padding}\", \"spdxVersion\": \"SPDX-2.3\", \"SPDXID\": \"SPDXRef-DOCUMENT\"}}"
    );
    let mut slsa = content::slsa_v02(&mut prng, "https://example.test/app", "decoy");
    slsa["metadata"] = serde_json::json!({"buildInvocationId": padding});
    let slsa = serde_json::to_string_pretty(&slsa).map_err(|e| crate::error::Error::invalid_format(e.to_string()))?;
    let sbom = content::spdx_sbom(&mut prng, "decoy-app", "2024-05-01T00:00:00Z", 20_000);
    let layers = vec![
        b.attestation(custom_v1(&image, decoy, "2024-05-01T00:00:03Z", &key))?,
        b.attestation(custom_v1(&image, slsa, "2024-05-01T00:00:02Z", &key))?,
        b.attestation(custom_v1(&image, sbom, "2024-05-01T00:00:01Z", &key))?,
    ];
    b.attach(AttachmentKind::Attestations, &image, layers, "2024-05-01T00:00:04Z");
    Ok(b.finish("prefix_decoy", "a decoy layer whose start looks like SLSA provenance", image))
}

fn custom_v1<'a>(subject: &'a Digest, data: String, timestamp: &str, signing: &Signing) -> Att<'a> {
    Att {
        subject,
        predicate_type: pt::CUSTOM_V1,
        predicate: content::custom(data, timestamp),
        annotate: false,
        signing: signing.clone(),
    }
}

fn att<'a>(subject: &'a Digest, predicate_type: &'a str, predicate: Value, signing: &Signing) -> Att<'a> {
    Att { subject, predicate_type, predicate, annotate: true, signing: signing.clone() }
}

/// An SPDX document as a Go-parsed object predicate (cosign v2 `--type spdxjson`).
fn spdx_object(prng: &mut Prng, name: &str) -> Value {
    let text = content::spdx_sbom(prng, name, "2024-01-01T00:00:00Z", 20_000);
    content::go_sorted(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// cosign ≥ v2.2 `attest` with the Ed25519 test key: `predicateType` annotations, object
/// predicates (SLSA v0.2, SPDX), a custom `https://` predicate, a vulnerability scan, and a repeated
/// SLSA attestation appended as a second layer of the same type. Most layers carry a legacy Rekor
/// bundle from the Ed25519 test log (`dsse`, one `intoto`), two were made with
/// `--tlog-upload=false`. Plus a logged `.sig`. Deterministic.
pub fn cosign_v2_style() -> Result<Scenario> {
    let repository = "registry.test/v2/app";
    let mut b = Builder::new(repository);
    let mut prng = Prng::from_label(repository);
    let image = b.image(&subject_image("cosign v2 style app 1.0", "linux", "amd64", None), &["1.0"]);
    let key = Signing::key(TestKey::Ed25519.signer());
    let log = TestLog::ed25519();
    let logged = key.clone().logged(log, TlogKind::Dsse);
    let source = "https://git.example.test/demo/app";

    let sig = b.signature(&image, key.clone().logged(log, TlogKind::HashedRekord))?;
    b.attach(AttachmentKind::Signatures, &image, vec![sig], GO_ZERO_TIME);

    let layers = vec![
        b.attestation(att(&image, pt::SLSA_V02, content::slsa_v02(&mut prng, source, "build-1"), &logged))?,
        b.attestation(att(&image, pt::SPDX, spdx_object(&mut prng, repository), &logged))?,
        b.attestation(att(
            &image,
            pt::CUSTOM,
            content::custom("release notes: first & best", "2024-01-01T00:02:00Z"),
            &key,
        ))?,
        b.attestation(att(
            &image,
            pt::SLSA_V02,
            content::slsa_v02(&mut prng, source, "build-2"),
            &key.clone().logged(log, TlogKind::Intoto),
        ))?,
        b.attestation(att(&image, pt::VULN, content::vuln(&mut prng), &key))?,
    ];
    b.attach(AttachmentKind::Attestations, &image, layers, GO_ZERO_TIME);
    Ok(b.finish(
        "cosign_v2_style",
        "cosign v2 store: predicateType annotations, SLSA/SPDX/custom/vuln, repeated SLSA, Rekor bundles, Ed25519 key",
        image,
    ))
}

/// What `cosign attest --replace` does: the new layer first, then every layer whose signed
/// predicate type differs; same-type layers are dropped.
fn cosign_replace(
    old: &[(GeneratedLayer, LayerInfo)],
    new: (GeneratedLayer, LayerInfo),
) -> Vec<(GeneratedLayer, LayerInfo)> {
    let kept: Vec<_> = old.iter().filter(|(_, info)| info.predicate_type != new.1.predicate_type).cloned().collect();
    std::iter::once(new).chain(kept).collect()
}

/// A `.att` tag rewritten twice by `cosign attest --replace` (RSA-2048 PKCS#1 key). The store holds
/// all three manifests (the older two untagged, as a registry keeps them):
/// 1. `[custom v1 (no scheme), SLSA v0.2, SPDX]`
/// 2. `--replace --type slsaprovenance` → `[SLSA v0.2 (new), custom v1, SPDX]`
/// 3. `--replace --type custom` (v2, `https://`) → `[custom v2, SLSA v0.2 (new), custom v1, SPDX]`:
///    the v1 custom layer survives because its type string differs. Deterministic.
pub fn replace_history() -> Result<Scenario> {
    let repository = "registry.test/replace/app";
    let mut b = Builder::new(repository);
    let mut prng = Prng::from_label(repository);
    let image = b.image(&subject_image("replace history app", "linux", "amd64", None), &["latest"]);
    let key = Signing::key(TestSigner::new(TestKey::Rsa2048, Scheme::RsaPkcs1Sha256)?);
    let source = "https://git.example.test/demo/replace";

    let first = vec![
        b.attestation(custom_v1(&image, "v1-era custom note".to_owned(), "2023-05-01T12:00:00Z", &key))?,
        b.attestation(att(&image, pt::SLSA_V02, content::slsa_v02(&mut prng, source, "build-old"), &key))?,
        b.attestation(att(&image, pt::SPDX, spdx_object(&mut prng, repository), &key))?,
    ];
    b.attach(AttachmentKind::Attestations, &image, first.clone(), GO_ZERO_TIME);

    let new_slsa = b.attestation(att(&image, pt::SLSA_V02, content::slsa_v02(&mut prng, source, "build-new"), &key))?;
    let second = cosign_replace(&first, new_slsa);
    b.attach(AttachmentKind::Attestations, &image, second.clone(), GO_ZERO_TIME);

    let custom =
        b.attestation(att(&image, pt::CUSTOM, content::custom("v2 custom note", "2024-01-01T00:03:00Z"), &key))?;
    let third = cosign_replace(&second, custom);
    b.attach(AttachmentKind::Attestations, &image, third, GO_ZERO_TIME);
    Ok(b.finish(
        "replace_history",
        "an .att rewritten twice by cosign attest --replace (older manifests kept untagged)",
        image,
    ))
}

/// Keyless-style entries from the test CA and the deterministic Ed25519 test log.
pub fn keyless() -> Result<Scenario> {
    keyless_with_log(TestLog::ed25519())
}

/// Keyless-style entries: an `.att` whose layers carry the test-CA leaf certificate, the chain and
/// a legacy Rekor bundle — one `intoto/0.0.1` layer (cosign < v2.2, no annotation) and two
/// `dsse/0.0.1` layers — and a keyless `.sig` (`hashedrekord/0.0.1`) with a workflow identity.
/// Deterministic with [`TestLog::ed25519`]; [`TestLog::ecdsa_p256`] gives public-good-like SETs.
pub fn keyless_with_log(log: TestLog) -> Result<Scenario> {
    let repository = "registry.test/keyless/app";
    let mut b = Builder::new(repository);
    let mut prng = Prng::from_label(repository);
    let image = b.image(&subject_image("keyless app", "linux", "amd64", None), &["1.0"]);
    let email = KeylessIdentity::email();
    let source = "https://git.example.test/demo/keyless";

    let sig = b.signature(&image, Signing::keyless(KeylessIdentity::workflow(), log, TlogKind::HashedRekord))?;
    b.attach(AttachmentKind::Signatures, &image, vec![sig], GO_ZERO_TIME);

    let old = Att {
        subject: &image,
        predicate_type: pt::SLSA_V02,
        predicate: content::slsa_v02(&mut prng, source, "keyless-1"),
        annotate: false,
        signing: Signing::keyless(email.clone(), log, TlogKind::Intoto),
    };
    let dsse = Signing::keyless(email, log, TlogKind::Dsse);
    let layers = vec![
        b.attestation(old)?,
        b.attestation(att(&image, pt::SPDX, spdx_object(&mut prng, repository), &dsse))?,
        b.attestation(att(&image, pt::SLSA_V1, content::slsa_v1(&mut prng, source), &dsse))?,
    ];
    b.attach(AttachmentKind::Attestations, &image, layers, GO_ZERO_TIME);
    Ok(b.finish(
        "keyless",
        "keyless .sig and .att: test-CA certificates, chains and legacy Rekor bundles (intoto, dsse, hashedrekord)",
        image,
    ))
}

/// An OCI image index (linux/amd64, linux/arm64/v8): `.att` on the index and on the amd64
/// manifest, `.sig` on the index; Ed25519 key. `image` is the index digest. Deterministic.
pub fn multi_arch() -> Result<Scenario> {
    let repository = "registry.test/multi/app";
    let mut b = Builder::new(repository);
    let mut prng = Prng::from_label(repository);
    let amd64 = subject_image("multi-arch app", "linux", "amd64", None);
    let arm64 = subject_image("multi-arch app", "linux", "arm64", Some("v8"));
    let amd64_digest = b.image(&amd64, &[]);
    b.image(&arm64, &[]);
    let index = b.index(&[&amd64, &arm64], &["1.0"]);
    let key = Signing::key(TestKey::Ed25519.signer());

    let sig = b.signature(&index, key.clone())?;
    b.attach(AttachmentKind::Signatures, &index, vec![sig], GO_ZERO_TIME);
    let on_index = b.attestation(att(
        &index,
        pt::SLSA_V02,
        content::slsa_v02(&mut prng, "https://git.example.test/demo/multi", "multi-1"),
        &key,
    ))?;
    b.attach(AttachmentKind::Attestations, &index, vec![on_index], GO_ZERO_TIME);
    let on_platform = b.attestation(att(&amd64_digest, pt::SPDX, spdx_object(&mut prng, repository), &key))?;
    b.attach(AttachmentKind::Attestations, &amd64_digest, vec![on_platform], GO_ZERO_TIME);
    Ok(b.finish(
        "multi_arch",
        "an image index with .sig and .att on the index and an .att on the amd64 manifest",
        index,
    ))
}

/// Every key type, one image each (tag = key label): an `.att` with one custom attestation and a
/// `.sig`, signed with RSA-2048 PKCS#1, RSA-2048 PSS, RSA-4096 PKCS#1, ECDSA P-256, ECDSA P-384
/// and Ed25519. NOT deterministic (ECDSA and PSS signatures are randomised); `image` is the first.
pub fn key_types() -> Result<Scenario> {
    let repository = "registry.test/keys/app";
    let mut b = Builder::new(repository);
    let signers = [
        ("rsa-2048-pkcs1", TestSigner::new(TestKey::Rsa2048, Scheme::RsaPkcs1Sha256)?),
        ("rsa-2048-pss", TestSigner::new(TestKey::Rsa2048, Scheme::RsaPssSha256)?),
        ("rsa-4096-pkcs1", TestSigner::new(TestKey::Rsa4096, Scheme::RsaPkcs1Sha256)?),
        ("ecdsa-p256", TestKey::EcdsaP256.signer()),
        ("ecdsa-p384", TestKey::EcdsaP384.signer()),
        ("ed25519", TestKey::Ed25519.signer()),
    ];
    let mut first = None;
    for (label, signer) in signers {
        let image = b.image(&subject_image(&format!("key types app: {label}"), "linux", "amd64", None), &[label]);
        let key = Signing::key(signer);
        let sig = b.signature(&image, key.clone())?;
        b.attach(AttachmentKind::Signatures, &image, vec![sig], GO_ZERO_TIME);
        let note = content::custom(format!("signed with the {label} test key"), "2024-01-01T00:04:00Z");
        let layer = b.attestation(att(&image, pt::CUSTOM, note, &key))?;
        b.attach(AttachmentKind::Attestations, &image, vec![layer], GO_ZERO_TIME);
        first.get_or_insert(image);
    }
    let image = first.unwrap_or_else(|| Digest::sha256(b""));
    Ok(b.finish(
        "key_types",
        "one image per key type (RSA PKCS#1/PSS, ECDSA P-256/P-384, Ed25519), each with .sig and .att",
        image,
    ))
}
