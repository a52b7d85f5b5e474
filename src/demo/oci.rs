//! OCI bytes for generated stores: small real subject images (config + one uncompressed tar layer),
//! image indexes, and cosign's legacy `.sig`/`.att` manifests and configs.
//!
//! Legacy manifests are written the way go-containerregistry serialises them (descriptor fields
//! `mediaType`, `size`, `digest`, `annotations`; Go HTML-safe escaping), so their bytes look like a
//! registry's copy of cosign's push.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::gojson::to_go_json;
use crate::model::digest::Digest;
use crate::model::media_type as mt;
use crate::model::oci::{Annotations, Descriptor, ImageManifest, Index, Platform, to_canonical_bytes};

/// OCI uncompressed tar layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// The zero time Go writes for an unset `time.Time`; cosign ≥ v2.2.0 configs use it.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One layer of a legacy cosign manifest.
#[derive(Clone, Debug)]
pub struct GeneratedLayer {
    /// Layer media type (DSSE envelope or simple signing).
    pub media_type: &'static str,
    /// Layer bytes.
    pub bytes: Vec<u8>,
    /// Layer annotations (sorted, as Go marshals maps).
    pub annotations: Annotations,
}

impl GeneratedLayer {
    /// The descriptor the manifest holds for this layer.
    pub fn descriptor(&self) -> Descriptor {
        let mut d = Descriptor::of(self.media_type, &self.bytes);
        d.annotations = self.annotations.clone();
        d
    }
}

/// cosign's config for a legacy manifest: go-containerregistry's `ConfigFile` with empty
/// architecture/os, one zero-time history entry per layer, and the layer digests as diff ids (layers
/// are stored uncompressed). `created` is the signing time for cosign ~v1.10 – v2.1,
/// [`GO_ZERO_TIME`] otherwise.
pub fn legacy_config(diff_ids: &[Digest], created: &str) -> Vec<u8> {
    let history: Vec<Value> = diff_ids.iter().map(|_| json!({"created": GO_ZERO_TIME})).collect();
    let diff_ids: Vec<String> = diff_ids.iter().map(Digest::to_string).collect();
    to_go_json(&json!({
        "architecture": "",
        "created": created,
        "history": history,
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    }))
}

/// The config and manifest cosign pushes for `layers`: `(manifest, config)`.
pub fn legacy_manifest_and_config(layers: &[GeneratedLayer], created: &str) -> (Vec<u8>, Vec<u8>) {
    let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::sha256(&l.bytes)).collect();
    let config = legacy_config(&diff_ids, created);
    (legacy_manifest(&config, layers), config)
}

/// A legacy manifest around `config` and `layers`, in go-containerregistry's field order.
pub fn legacy_manifest(config: &[u8], layers: &[GeneratedLayer]) -> Vec<u8> {
    let ggcr = |media_type: &str, bytes: &[u8], annotations: &Annotations| {
        let mut d = json!({"mediaType": media_type, "size": bytes.len(), "digest": Digest::sha256(bytes).to_string()});
        if !annotations.is_empty() {
            d["annotations"] = json!(annotations);
        }
        d
    };
    let layers: Vec<Value> = layers.iter().map(|l| ggcr(l.media_type, &l.bytes, &l.annotations)).collect();
    to_go_json(&json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "config": ggcr(mt::OCI_CONFIG, config, &Annotations::new()),
        "layers": layers,
    }))
}

/// The simple-signing payload `cosign sign` signs (`optional` is `null` without `-a` annotations).
pub fn simple_signing_payload(
    docker_reference: &str,
    image: &Digest,
    optional: Option<&BTreeMap<String, String>>,
) -> Vec<u8> {
    to_go_json(&json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": image.to_string()},
            "type": "cosign container image signature",
        },
        "optional": optional,
    }))
}

/// A subject image: manifest, config and its one layer.
#[derive(Clone, Debug)]
pub struct SubjectImage {
    /// Manifest bytes.
    pub manifest: Vec<u8>,
    /// Manifest digest (what signatures and attestations name).
    pub digest: Digest,
    /// Config bytes.
    pub config: Vec<u8>,
    /// Layer bytes (an uncompressed tar with one file).
    pub layer: Vec<u8>,
    /// The platform it was built for.
    pub platform: Platform,
}

/// A tiny real image for `os`/`architecture` whose only file says `message`.
pub fn subject_image(message: &str, os: &str, architecture: &str, variant: Option<&str>) -> SubjectImage {
    let layer = tar_one_file("hello.txt", format!("{message}\n").as_bytes());
    let mut config = serde_json::Map::new();
    config.insert("created".into(), json!("2024-01-01T00:00:00Z"));
    config.insert("architecture".into(), json!(architecture));
    config.insert("os".into(), json!(os));
    if let Some(v) = variant {
        config.insert("variant".into(), json!(v));
    }
    config.insert(
        "config".into(),
        json!({"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/hello.txt"]}),
    );
    config.insert("rootfs".into(), json!({"type": "layers", "diff_ids": [Digest::sha256(&layer).to_string()]}));
    config.insert(
        "history".into(),
        json!([{"created": "2024-01-01T00:00:00Z", "created_by": "COPY hello.txt / # buildkit", "comment": "buildkit.dockerfile.v0"}]),
    );
    let config = to_go_json(&Value::Object(config));
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(mt::OCI_MANIFEST.to_owned()),
        artifact_type: None,
        config: Descriptor::of(mt::OCI_CONFIG, &config),
        layers: vec![Descriptor::of(OCI_LAYER_TAR, &layer)],
        subject: None,
        annotations: Annotations::new(),
        extra: BTreeMap::new(),
    };
    let manifest = to_canonical_bytes(&manifest);
    let platform = Platform {
        architecture: architecture.to_owned(),
        os: os.to_owned(),
        variant: variant.map(str::to_owned),
        extra: BTreeMap::new(),
    };
    SubjectImage { digest: Digest::sha256(&manifest), manifest, config, layer, platform }
}

/// An OCI image index over `images`.
pub fn image_index(images: &[&SubjectImage]) -> Vec<u8> {
    let mut index = Index::empty();
    for image in images {
        let mut d = Descriptor::of(mt::OCI_MANIFEST, &image.manifest);
        d.platform = Some(image.platform.clone());
        index.manifests.push(d);
    }
    to_canonical_bytes(&index)
}

/// A ustar archive holding one regular file, with fixed owner, mode and mtime so it is stable.
pub fn tar_one_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
    let name = &name.as_bytes()[..name.len().min(100)];
    put(&mut header, 0, name);
    put(&mut header, 100, b"0000644\0");
    put(&mut header, 108, b"0000000\0");
    put(&mut header, 116, b"0000000\0");
    put(&mut header, 124, format!("{:011o}\0", content.len()).as_bytes());
    // 2024-01-01T00:00:00Z.
    put(&mut header, 136, format!("{:011o}\0", 1_704_067_200u64).as_bytes());
    put(&mut header, 148, b"        ");
    header[156] = b'0';
    put(&mut header, 257, b"ustar\0");
    put(&mut header, 263, b"00");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    put(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    // End-of-archive: two zero blocks.
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_config_and_payload_match_the_article_bytes() {
        // Facts from the article's store (FORMATS.md §5): its `.att` config is 357 bytes with digest
        // 728e26b3…, its `.sig` config has digest 00ce5fed…, its simple-signing payload 09b3e371….
        let d = |hex: &str| format!("sha256:{hex}").parse::<Digest>().unwrap();
        let att = [
            d("c9880779c90158a29f7a69f29c492551261e7a3936247fc75f225171064d6d32"),
            d("ff626be9ff3158e9d2118072cd24481d990a5145d10109affec6064423d74cc4"),
        ];
        let config = legacy_config(&att, "2022-10-13T16:11:27.193412941-07:00");
        assert_eq!(config.len(), 357);
        assert_eq!(Digest::sha256(&config).hex(), "728e26b36817753d90d7de8420dacf4fa1bcf746da2b54bb8c59cd047a682198");
        let sig = [d("09b3e371137191b52fdd07bdf115824b2b297a2003882e68d68d66d0d35fe1fc")];
        let config = legacy_config(&sig, "2022-10-13T09:03:11.844138614-07:00");
        assert_eq!(Digest::sha256(&config).hex(), "00ce5fed483997c24aa0834081ab1960283ee9b2c9d46912bbccc3f9d18e335d");
        let image = d("9bd049b6b470118cc6a02d58595b86107407c9e288c0d556ce342ea8acbafdf4");
        let payload = simple_signing_payload("562077019569.dkr.ecr.us-west-2.amazonaws.com/flasksample", &image, None);
        assert_eq!(Digest::sha256(&payload).hex(), "09b3e371137191b52fdd07bdf115824b2b297a2003882e68d68d66d0d35fe1fc");
    }

    #[test]
    fn legacy_manifest_uses_ggcr_field_order() {
        let mut annotations = Annotations::new();
        annotations.insert("dev.cosignproject.cosign/signature".into(), String::new());
        let layers = [GeneratedLayer { media_type: mt::DSSE_ENVELOPE, bytes: b"{}".to_vec(), annotations }];
        let (m, _config) = legacy_manifest_and_config(&layers, GO_ZERO_TIME);
        let m = String::from_utf8(m).unwrap();
        assert!(m.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":"#), "{m}");
        assert!(m.contains(r#"{"mediaType":"application/vnd.dsse.envelope.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","annotations":{"dev.cosignproject.cosign/signature":""}}"#), "{m}");
    }

    #[test]
    fn tar_is_well_formed() {
        let t = tar_one_file("hello.txt", b"hi\n");
        assert_eq!(t.len(), 512 * 4);
        let sum: u32 =
            t[..512].iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) }).sum();
        assert_eq!(std::str::from_utf8(&t[148..154]).unwrap(), format!("{sum:06o}"));
        assert_eq!(&t[512..515], b"hi\n");
    }

    #[test]
    fn subject_images_are_stable_and_distinct() {
        let a = subject_image("a", "linux", "amd64", None);
        assert_eq!(a.digest, subject_image("a", "linux", "amd64", None).digest);
        assert_ne!(a.digest, subject_image("b", "linux", "amd64", None).digest);
        let index = String::from_utf8(image_index(&[&a])).unwrap();
        assert!(index.contains(r#""platform":{"architecture":"amd64","os":"linux"}"#), "{index}");
    }
}
