//! Media types and annotation keys that att2ref reads or writes.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Obsolete OCI artifact manifest (removed before image-spec 1.1.0; still stored by some registries).
pub const OCI_ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI empty descriptor (`{}`).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Legacy cosign `.att` layer: a DSSE envelope.
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// Legacy cosign `.sig` layer: a simple-signing payload.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// in-toto statement media type; also the DSSE `payloadType` and the artifactType of DSSE referrers.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// The Sigstore bundle v0.3 media type att2ref writes.
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The Sigstore bundle v0.2 media type (GitHub's attest action before v0.3; @sigstore/oci uses a bundle's
/// own media type as the referrer's artifactType).
pub const BUNDLE_V02: &str = "application/vnd.dev.sigstore.bundle+json;version=0.2";
/// The Sigstore bundle v0.1 media type.
pub const BUNDLE_V01: &str = "application/vnd.dev.sigstore.bundle+json;version=0.1";
/// Prefix shared by every Sigstore bundle media type spelling.
pub const BUNDLE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
/// BuildKit attestation manifest artifactType (BuildKit ≥ 0.32).
pub const DOCKER_ATTESTATION_MANIFEST: &str = "application/vnd.docker.attestation.manifest.v1+json";

/// Every manifest media type we can read; sent as the `Accept` list (distribution answers 404 to an
/// OCI manifest without it).
pub const MANIFEST_ACCEPT: &[&str] =
    &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_ARTIFACT_MANIFEST];

/// Annotation keys (exact spellings as written by their tools).
pub mod annotations {
    /// `.sig` signature (base64); present but `""` on `.att` layers.
    pub const COSIGN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
    /// PEM leaf certificate.
    pub const COSIGN_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
    /// PEM chain (intermediates + root).
    pub const COSIGN_CHAIN: &str = "dev.sigstore.cosign/chain";
    /// Legacy Rekor bundle JSON.
    pub const COSIGN_BUNDLE: &str = "dev.sigstore.cosign/bundle";
    /// RFC 3161 timestamp JSON.
    pub const COSIGN_RFC3161: &str = "dev.sigstore.cosign/rfc3161timestamp";
    /// Predicate type (cosign ≥ 2.0 `attest`; unsigned).
    pub const COSIGN_PREDICATE_TYPE: &str = "predicateType";
    /// SBOM scope (spec only).
    pub const SBOM_SCOPE: &str = "dev.sigstore.sbom.scope";
    /// Bundle content kind on referrer manifests: `dsse-envelope` | `message-signature`.
    pub const BUNDLE_CONTENT: &str = "dev.sigstore.bundle.content";
    /// Predicate type on bundle referrer manifests.
    pub const BUNDLE_PREDICATE_TYPE: &str = "dev.sigstore.bundle.predicateType";
    /// Creation time (RFC 3339).
    pub const OCI_CREATED: &str = "org.opencontainers.image.created";
    /// Layer title.
    pub const OCI_TITLE: &str = "org.opencontainers.image.title";
    /// Reference name in an OCI layout's `index.json`.
    pub const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";
    /// BuildKit: kind of index entry (`attestation-manifest`).
    pub const DOCKER_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
    /// BuildKit: the platform manifest an attestation manifest belongs to.
    pub const DOCKER_REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
    /// BuildKit: predicate type of an attestation layer.
    pub const IN_TOTO_PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
}

/// True for every Sigstore bundle media type spelling (v0.3 form and `+json;version=` forms).
pub fn is_bundle(media_type: &str) -> bool {
    media_type.starts_with(BUNDLE_PREFIX)
}

/// True for the artifactTypes DSSE-envelope referrers are written with: `application/vnd.in-toto+json`
/// (att2ref `--format dsse`, `oras attach`), the DSSE envelope type itself, and the in-toto
/// specification's `application/vnd.in-toto.<predicate>+dsse`.
pub fn is_dsse_artifact_type(artifact_type: &str) -> bool {
    artifact_type == IN_TOTO
        || artifact_type == DSSE_ENVELOPE
        || (artifact_type.starts_with("application/vnd.in-toto.") && artifact_type.ends_with("+dsse"))
}

/// True for manifest media types that are indexes.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}
