//! Fetching a legacy entry's inclusion proof from Rekor v1 and verifying it before it goes into a bundle.
//!
//! The legacy `dev.sigstore.cosign/bundle` annotation only carried a signed entry timestamp; v0.2+ bundles
//! need an inclusion proof too (FORMATS finding 1). The proof comes from `GET {url}/api/v1/log/entries?
//! logIndex=N` (Rekor is not an OCI registry: a plain GET, made through the registry client so that it
//! gets the same TLS settings, timeouts and retries). It is trusted only after three checks:
//! it describes the very entry whose SET was verified ([`RekorEntry::check_same_entry`]), its Merkle path
//! leads from the entry body to the proof's root, and the checkpoint over that root is signed by the
//! key the trusted root lists for the entry's log.

use url::Url;

use crate::convert::RekorEntry;
use crate::error::{Error, ErrorKind, Result};
use crate::model::rekor::RekorBundle;
use crate::model::trust::TrustedRoot;
use crate::store::registry::RegistryClient;
use crate::verification::{PublicKey, leaf_hash, verify_checkpoint, verify_inclusion};

/// A Rekor entry response is a few KB; a cap keeps a hostile endpoint from filling memory.
const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// A Rekor v1 log reachable over HTTPS (or plain HTTP where the client allows it).
#[derive(Clone, Debug)]
pub struct RekorClient {
    base: Url,
    http: RegistryClient,
}

impl RekorClient {
    /// A client for the log at `base_url` (e.g. `https://rekor.sigstore.dev`), whose requests go through
    /// `http` (its CA files, timeouts, retries and plain-HTTP policy).
    pub fn new(base_url: &str, http: RegistryClient) -> Result<RekorClient> {
        let mut base = Url::parse(base_url)
            .map_err(|e| Error::invalid_input(format!("Rekor URL {base_url:?} is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::invalid_input(format!("Rekor URL {base_url:?}: only http and https are supported")));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(RekorClient { base, http })
    }

    /// Fetch the entry at global `log_index`, unverified.
    pub async fn fetch(&self, log_index: i64) -> Result<RekorEntry> {
        let mut url = self
            .base
            .join("api/v1/log/entries")
            .map_err(|e| Error::invalid_input(format!("building the Rekor URL: {e}")))?;
        url.query_pairs_mut().append_pair("logIndex", &log_index.to_string());
        let what = format!("GET {url}");
        let (status, body) = self.http.get_url(url, &what, MAX_RESPONSE_BYTES).await?;
        if status == 404 {
            return Err(Error::new(ErrorKind::NotFound, format!("{what}: log entry {log_index} not found")));
        }
        if !(200..300).contains(&status) {
            let kind = if status >= 500 { ErrorKind::Registry } else { ErrorKind::Unsupported };
            return Err(Error::new(kind, format!("{what}: HTTP {status}")));
        }
        RekorEntry::parse_response(&body).map_err(|e| e.context(what))
    }
}

/// Check that `fetched` is the entry of `legacy` and that its inclusion proof verifies under the log key
/// `root` lists for that log. A verified entry may be given to the conversion as `inclusion_proof`.
pub fn verify_fetched(fetched: &RekorEntry, legacy: &RekorBundle, root: Option<&TrustedRoot>) -> Result<()> {
    fetched.check_same_entry(legacy)?;
    let index = legacy.payload.log_index;
    let failed = |msg: String| Error::new(ErrorKind::VerificationFailed, format!("Rekor entry {index}: {msg}"));
    let proof = fetched.inclusion_proof.as_ref().ok_or_else(|| failed("the log returned no inclusion proof".into()))?;
    let root = root.ok_or_else(|| {
        Error::invalid_input(format!(
            "Rekor entry {index}: a trusted root (--trusted-root) is needed to check the checkpoint's signature"
        ))
    })?;
    let log = root
        .tlogs
        .iter()
        .find(|t| t.log_id.key_id == legacy.log_id)
        .ok_or_else(|| failed(format!("log {} is not in the trusted root", hex::encode(&legacy.log_id))))?;
    let key = PublicKey::from_spki_der(&log.public_key.raw_bytes)
        .map_err(|e| e.context(format!("trusted root: key of log {}", log.base_url)))?;
    let leaf_index = u64::try_from(proof.log_index).map_err(|_| failed("negative proof index".into()))?;
    let size = u64::try_from(proof.tree_size).map_err(|_| failed("negative tree size".into()))?;
    verify_inclusion(leaf_index, size, &leaf_hash(&fetched.body), &proof.hashes, &proof.root_hash)
        .map_err(|e| failed(e.to_string()))?;
    let checkpoint =
        verify_checkpoint(&proof.checkpoint.envelope, &key, &legacy.log_id).map_err(|e| failed(e.to_string()))?;
    if checkpoint.tree_size != size || checkpoint.root_hash != proof.root_hash {
        return Err(failed(format!(
            "checkpoint is for tree size {} root {}, the proof for size {size} root {}",
            checkpoint.tree_size,
            hex::encode(&checkpoint.root_hash),
            hex::encode(&proof.root_hash)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{self, TestKey};
    use crate::model::cosign::LegacyLayerAnnotations;
    use crate::model::dsse::encode_base64;
    use crate::model::oci::Manifest;

    /// A legacy `dsse/0.0.1` entry of the keyless fixture, and the trusted root of its log.
    fn keyless_entry() -> (RekorBundle, TrustedRoot) {
        let scenario = demo::keyless().unwrap();
        let att = scenario.repo.manifest_by_tag(&scenario.image.cosign_tag("att")).unwrap();
        let Manifest::Image(m) = Manifest::parse(&att.bytes, None).unwrap().0 else { panic!("image manifest") };
        let legacy = LegacyLayerAnnotations::from_descriptor(&m.layers[1]).rekor_bundle().unwrap().clone();
        let root = TrustedRoot::parse(&demo::trusted_root_json().unwrap()).unwrap();
        (legacy, root)
    }

    /// Rekor's answer with a one-leaf tree (root = leaf hash) and a checkpoint signed by `log_key`.
    fn response(legacy: &RekorBundle, log_key: TestKey, root: [u8; 32]) -> RekorEntry {
        proof_response(legacy, log_key, 0, 1, &[], root)
    }

    /// Rekor's answer with the entry at `index` of a tree of `size` leaves, its audit path `hashes` and
    /// `root`, and a checkpoint over that size and root signed by `log_key`.
    fn proof_response(
        legacy: &RekorBundle,
        log_key: TestKey,
        index: u64,
        size: u64,
        hashes: &[Vec<u8>],
        root: [u8; 32],
    ) -> RekorEntry {
        let text = format!("rekor.test - 1\n{size}\n{}\n", encode_base64(&root));
        let mut signed = legacy.log_id[..4].to_vec();
        signed.extend(log_key.signer().sign(text.as_bytes()).unwrap());
        let json = serde_json::json!({"u": {
            "body": legacy.payload.body, "integratedTime": legacy.payload.integrated_time,
            "logID": legacy.payload.log_id, "logIndex": legacy.payload.log_index,
            "verification": {"inclusionProof": {
                "checkpoint": format!("{text}\n\u{2014} rekor.test {}\n", encode_base64(&signed)),
                "hashes": hashes.iter().map(hex::encode).collect::<Vec<_>>(), "logIndex": index,
                "rootHash": hex::encode(root), "treeSize": size
            }}
        }});
        RekorEntry::parse_response(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_proof_is_used_only_once_verified() {
        let (legacy, root) = keyless_entry();
        let leaf = leaf_hash(&legacy.body_bytes);
        verify_fetched(&response(&legacy, TestKey::RekorEd25519, leaf), &legacy, Some(&root)).unwrap();

        let cases = [
            (response(&legacy, TestKey::RekorEd25519, [7; 32]), "recomputes root"),
            (response(&legacy, TestKey::Ed25519, leaf), "no checkpoint signature verifies"),
        ];
        for (entry, want) in cases {
            let err = verify_fetched(&entry, &legacy, Some(&root)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::VerificationFailed);
            assert!(err.to_string().contains(want), "{want:?} not in {err}");
        }
        let good = response(&legacy, TestKey::RekorEd25519, leaf);
        let err = verify_fetched(&good, &legacy, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("a trusted root (--trusted-root) is needed"), "{err}");
        let mut no_proof = good.clone();
        no_proof.inclusion_proof = None;
        let err = verify_fetched(&no_proof, &legacy, Some(&root)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::VerificationFailed, "{err}");
        assert!(err.to_string().contains("the log returned no inclusion proof"), "{err}");
        let mut other = legacy.clone();
        other.payload.log_index += 1;
        let err = verify_fetched(&good, &other, Some(&root)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::VerificationFailed, "another entry's proof is refused");
        assert!(err.to_string().contains("log index"), "{err}");
    }

    // RFC 6962 §2.1, written out from the RFC with SHA-256 directly, so the expected values do not come
    // from the code under test: MTH over leaf hashes, and PATH(m, D[n]).
    fn rfc_node(left: &[u8], right: &[u8]) -> [u8; 32] {
        use sha2::{Digest as _, Sha256};
        Sha256::new().chain_update([1u8]).chain_update(left).chain_update(right).finalize().into()
    }

    /// The largest power of two smaller than `n` (n > 1).
    fn split(n: usize) -> usize {
        1 << (usize::BITS - 1 - (n - 1).leading_zeros())
    }

    fn rfc_root(leaves: &[[u8; 32]]) -> [u8; 32] {
        match leaves {
            [one] => *one,
            _ => {
                let k = split(leaves.len());
                rfc_node(&rfc_root(&leaves[..k]), &rfc_root(&leaves[k..]))
            }
        }
    }

    fn rfc_path(m: usize, leaves: &[[u8; 32]]) -> Vec<Vec<u8>> {
        if leaves.len() == 1 {
            return Vec::new();
        }
        let k = split(leaves.len());
        let (mut path, sibling) = if m < k {
            (rfc_path(m, &leaves[..k]), &leaves[k..])
        } else {
            (rfc_path(m - k, &leaves[k..]), &leaves[..k])
        };
        path.push(rfc_root(sibling).to_vec());
        path
    }

    /// The entry's leaf inside a seven-leaf tree, neither first nor last, so the path mixes left and right
    /// siblings and includes the unbalanced right edge.
    #[test]
    fn a_proof_in_a_seven_leaf_tree_verifies_and_a_tampered_path_fails() {
        use sha2::{Digest as _, Sha256};
        let (legacy, root) = keyless_entry();
        let (index, size) = (2usize, 7usize);
        let leaves: Vec<[u8; 32]> = (0..size)
            .map(|i| {
                let entry =
                    if i == index { legacy.body_bytes.clone() } else { format!("other entry {i}").into_bytes() };
                Sha256::new().chain_update([0u8]).chain_update(&entry).finalize().into()
            })
            .collect();
        let tree_root = rfc_root(&leaves);
        let path = rfc_path(index, &leaves);
        assert_eq!(path.len(), 3, "a leaf of a seven-leaf tree left of the split has three siblings");
        let entry = |hashes: &[Vec<u8>], root: [u8; 32]| {
            proof_response(&legacy, TestKey::RekorEd25519, index as u64, size as u64, hashes, root)
        };
        verify_fetched(&entry(&path, tree_root), &legacy, Some(&root)).unwrap();

        for (which, h) in path.iter().enumerate() {
            let mut tampered = path.clone();
            tampered[which] = h.iter().map(|b| b ^ 0x80).collect();
            let err = verify_fetched(&entry(&tampered, tree_root), &legacy, Some(&root)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::VerificationFailed);
            assert!(err.to_string().contains("inclusion proof recomputes root"), "hash {which}: {err}");
        }
        let mut swapped = path.clone();
        swapped.swap(0, 1);
        let err = verify_fetched(&entry(&swapped, tree_root), &legacy, Some(&root)).unwrap_err();
        assert!(err.to_string().contains("inclusion proof recomputes root"), "{err}");
        let err = verify_fetched(&entry(&path[..2], tree_root), &legacy, Some(&root)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::VerificationFailed);
        assert!(err.to_string().contains("audit path is shorter than the tree is deep"), "{err}");
        // The path of the last leaf is a level shorter: refused by its shape, before any hashing.
        let err = verify_fetched(&entry(&rfc_path(size - 1, &leaves), tree_root), &legacy, Some(&root)).unwrap_err();
        assert!(err.to_string().contains("audit path is shorter than the tree is deep"), "{err}");
        // The path of the next leaf, at the same depth: right for its shape, wrong for this entry.
        let err = verify_fetched(&entry(&rfc_path(index + 1, &leaves), tree_root), &legacy, Some(&root)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::VerificationFailed);
        assert!(err.to_string().contains("inclusion proof recomputes root"), "{err}");
        // The right path, claimed for the next index: hashed on the wrong sides.
        let moved = proof_response(&legacy, TestKey::RekorEd25519, index as u64 + 1, size as u64, &path, tree_root);
        let err = verify_fetched(&moved, &legacy, Some(&root)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::VerificationFailed);
        assert!(err.to_string().contains("inclusion proof recomputes root"), "{err}");
    }

    #[test]
    fn urls_are_checked() {
        let http = RegistryClient::new(Default::default()).unwrap();
        assert!(RekorClient::new("https://rekor.example/", http.clone()).is_ok());
        for (bad, why) in [("ftp://rekor.example", "only http and https"), ("not a url", "is not a URL")] {
            let err = RekorClient::new(bad, http.clone()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
    }
}
