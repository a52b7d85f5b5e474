//! Size limits a registry family documents. Only figures found in a registry's own documentation are
//! listed, with their source; everything else is "not known" (never a guess: the distribution spec only
//! asks registries to accept manifests of at least 4 MB, which is no limit).

use super::report::{DocumentedLimit, SizeLimits};

const ECR_QUOTAS: &str = "https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html";

/// The documented limits for a registry host.
pub(crate) fn documented(host: &str) -> SizeLimits {
    let host = host.to_ascii_lowercase();
    let host = host.split(':').next().unwrap_or_default();
    let private_ecr =
        host.contains(".dkr.ecr.") && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"));
    if private_ecr {
        return SizeLimits {
            family: Some("amazon-ecr".to_owned()),
            manifest_bytes: None,
            // "Maximum layer size: 52,000 MiB", not adjustable.
            layer_bytes: Some(DocumentedLimit { bytes: 52_000 * 1024 * 1024, source: ECR_QUOTAS.to_owned() }),
            note: "layer size from Amazon ECR's service quotas; no manifest size limit is documented".to_owned(),
        };
    }
    SizeLimits {
        family: None,
        manifest_bytes: None,
        layer_bytes: None,
        note: "not known: no size limit is documented for this registry (att2ref reads manifests up to \
               --max-manifest-size)"
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_documented_figures_are_given() {
        let ecr = documented("123456789012.dkr.ecr.eu-west-1.amazonaws.com");
        assert_eq!(ecr.family.as_deref(), Some("amazon-ecr"));
        assert_eq!(ecr.layer_bytes.as_ref().map(|l| l.bytes), Some(54_525_952_000));
        assert!(ecr.manifest_bytes.is_none());
        for other in ["ghcr.io", "127.0.0.1:5000", "registry-1.docker.io", "evil.dkr.ecr.example.com"] {
            let limits = documented(other);
            assert!(
                limits.family.is_none() && limits.layer_bytes.is_none() && limits.manifest_bytes.is_none(),
                "{other}"
            );
            assert!(limits.note.starts_with("not known"), "{other}");
        }
    }
}
