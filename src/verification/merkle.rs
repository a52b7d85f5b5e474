//! RFC 6962 inclusion proofs and the signed-note checkpoints Rekor v1 attaches to them.
//!
//! Both are pure functions over bytes so each can be tested alone and called from the verifier with the
//! log key it picked from the trusted root.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

use super::keys::PublicKey;

/// Why an inclusion proof or checkpoint did not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProofError {
    /// The index is not inside the tree, or the path has the wrong length for (index, size).
    BadShape(String),
    /// The recomputed root differs from the claimed root.
    RootMismatch {
        /// Root recomputed from the leaf and the audit path.
        computed: Vec<u8>,
        /// Root the proof claims.
        claimed: Vec<u8>,
    },
    /// The checkpoint text is not a signed note of the expected shape.
    MalformedCheckpoint(String),
    /// The checkpoint's tree size or root differ from the proof's.
    CheckpointMismatch(String),
    /// No signature line of the checkpoint verifies under the log key.
    CheckpointSignature,
}

impl std::fmt::Display for ProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProofError::BadShape(m) => write!(f, "inclusion proof has the wrong shape: {m}"),
            ProofError::RootMismatch { computed, claimed } => write!(
                f,
                "inclusion proof recomputes root {} but claims {}",
                hex::encode(computed),
                hex::encode(claimed)
            ),
            ProofError::MalformedCheckpoint(m) => write!(f, "checkpoint is malformed: {m}"),
            ProofError::CheckpointMismatch(m) => {
                write!(f, "checkpoint does not match the proof: {m}")
            }
            ProofError::CheckpointSignature => f.write_str("no checkpoint signature verifies under the log key"),
        }
    }
}

/// RFC 6962 leaf hash: SHA-256(0x00 ‖ entry).
pub fn leaf_hash(entry: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

fn node_hash(left: &[u8], right: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Recompute the root from a leaf hash and its audit path (RFC 9162 §2.1.3.2) and compare it with `root`.
///
/// `index` is the leaf's position in the tree the proof was made for (Rekor: the shard-local index).
pub fn verify_inclusion(
    index: u64,
    tree_size: u64,
    leaf: &[u8; 32],
    path: &[Vec<u8>],
    root: &[u8],
) -> Result<(), ProofError> {
    if index >= tree_size {
        return Err(ProofError::BadShape(format!("leaf index {index} is not below tree size {tree_size}")));
    }
    if let Some(bad) = path.iter().find(|p| p.len() != 32) {
        return Err(ProofError::BadShape(format!("a path hash is {} bytes, not 32", bad.len())));
    }
    let (mut fnode, mut snode) = (index, tree_size - 1);
    let mut r = *leaf;
    for p in path {
        if snode == 0 {
            return Err(ProofError::BadShape("audit path is longer than the tree is deep".into()));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::BadShape("audit path is shorter than the tree is deep".into()));
    }
    if r.as_slice() != root {
        return Err(ProofError::RootMismatch { computed: r.to_vec(), claimed: root.to_vec() });
    }
    Ok(())
}

/// A checkpoint whose signature verified: the signed note's first three lines, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// Origin line, e.g. `rekor.sigstore.dev - 1193050959916656506`.
    pub origin: String,
    /// Tree size.
    pub tree_size: u64,
    /// Root hash.
    pub root_hash: Vec<u8>,
}

/// Parse a checkpoint signed note and verify that one of its signatures is by `log_key`.
///
/// Note layout: `<origin>\n<size>\n<base64 root>\n[extension lines\n]\n— <name> <base64(hint ‖ sig)>\n…`.
/// The signed text is everything before the blank line, including its final newline. Rekor v1 uses the
/// first four bytes of its log id as the key hint; lines with that hint are tried first, then the rest
/// (witness co-signatures, or logs with another hint convention), so a hint never decides trust.
pub fn verify_checkpoint(note: &str, log_key: &PublicKey, log_id: &[u8]) -> Result<VerifiedCheckpoint, ProofError> {
    let split = note
        .find("\n\n")
        .ok_or_else(|| ProofError::MalformedCheckpoint("no blank line between text and signatures".into()))?;
    let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
    let mut lines = text.lines();
    let origin = lines.next().filter(|l| !l.is_empty()).ok_or_else(|| bad("empty origin line"))?;
    let tree_size = lines
        .next()
        .and_then(|l| l.parse::<u64>().ok())
        .ok_or_else(|| bad("second line is not a decimal tree size"))?;
    let root_hash = lines
        .next()
        .and_then(|l| STANDARD.decode(l).ok())
        .filter(|r| r.len() == 32)
        .ok_or_else(|| bad("third line is not a base64 SHA-256 root hash"))?;
    let mut signatures = Vec::new();
    for line in sigs.lines().filter(|l| !l.is_empty()) {
        let rest = line.strip_prefix("\u{2014} ").ok_or_else(|| bad("signature line does not start with `— `"))?;
        let (_name, b64) = rest.rsplit_once(' ').ok_or_else(|| bad("signature line has no key name"))?;
        let raw = STANDARD.decode(b64).map_err(|_| bad("signature is not base64"))?;
        if raw.len() < 5 {
            return Err(bad("signature is shorter than its key hint"));
        }
        signatures.push(raw);
    }
    if signatures.is_empty() {
        return Err(bad("no signature lines"));
    }
    let hinted = |raw: &Vec<u8>| log_id.len() >= 4 && raw[..4] == log_id[..4];
    signatures.sort_by_key(|raw| !hinted(raw));
    if signatures.iter().any(|raw| log_key.verify(text.as_bytes(), &raw[4..]).is_some()) {
        return Ok(VerifiedCheckpoint { origin: origin.to_string(), tree_size, root_hash });
    }
    Err(ProofError::CheckpointSignature)
}

fn bad(msg: &str) -> ProofError {
    ProofError::MalformedCheckpoint(msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Build a tree of n leaves the slow, obvious way (RFC 6962 MTH) and extract audit paths.
    fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
        if leaves.len() == 1 {
            return leaves[0];
        }
        let k = leaves.len().next_power_of_two() / 2;
        node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
    }

    fn path(m: usize, leaves: &[[u8; 32]]) -> Vec<Vec<u8>> {
        if leaves.len() == 1 {
            return vec![];
        }
        let k = leaves.len().next_power_of_two() / 2;
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]).to_vec());
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]).to_vec());
            p
        }
    }

    #[test]
    fn every_leaf_of_small_trees_verifies() {
        for n in 1..=17usize {
            let leaves: Vec<[u8; 32]> = (0..n).map(|i| leaf_hash(&[i as u8])).collect();
            let root = mth(&leaves);
            for m in 0..n {
                let p = path(m, &leaves);
                verify_inclusion(m as u64, n as u64, &leaves[m], &p, &root).unwrap();
                // Wrong index or corrupted path fails.
                if n > 1 {
                    let other = (m + 1) % n;
                    let err = verify_inclusion(other as u64, n as u64, &leaves[m], &p, &root).unwrap_err();
                    // In a tree that is not perfect, leaves sit at different depths: a path of the wrong
                    // length is refused by its shape before any hashing. Only a path of the right length
                    // reaches the hashing, and must then recompute another root.
                    if path(other, &leaves).len() == p.len() {
                        assert!(matches!(&err, ProofError::RootMismatch { claimed, .. } if claimed == &root), "{err}");
                    } else {
                        let why = if p.len() > path(other, &leaves).len() { "longer" } else { "shorter" };
                        assert_eq!(err, ProofError::BadShape(format!("audit path is {why} than the tree is deep")));
                    }
                    if let Some(first) = p.first() {
                        let mut q = p.clone();
                        q[0] = first.iter().map(|b| b ^ 1).collect();
                        let err = verify_inclusion(m as u64, n as u64, &leaves[m], &q, &root).unwrap_err();
                        assert!(matches!(&err, ProofError::RootMismatch { claimed, .. } if claimed == &root), "{err}");
                    }
                }
            }
        }
    }

    fn note_key() -> (aws_lc_rs::signature::EcdsaKeyPair, PublicKey, Vec<u8>) {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
        let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let spki: PublicKeyX509Der = kp.public_key().as_der().unwrap();
        let key = PublicKey::from_spki_der(spki.as_ref()).unwrap();
        let id = Sha256::digest(spki.as_ref()).to_vec();
        (kp, key, id)
    }

    fn signed_line(kp: &aws_lc_rs::signature::EcdsaKeyPair, hint: &[u8], text: &str) -> String {
        let sig = kp.sign(&aws_lc_rs::rand::SystemRandom::new(), text.as_bytes()).unwrap();
        let mut raw = hint[..4].to_vec();
        raw.extend_from_slice(sig.as_ref());
        format!("\u{2014} log.example {}\n", STANDARD.encode(raw))
    }

    #[test]
    fn checkpoints() {
        let (kp, key, id) = note_key();
        let (witness, _, witness_id) = note_key();
        let root = [7u8; 32];
        let text = format!("log.example - 1\n12\n{}\n", STANDARD.encode(root));
        let note = format!("{text}\n{}", signed_line(&kp, &id, &text));
        let cp = verify_checkpoint(&note, &key, &id).unwrap();
        assert_eq!((cp.origin.as_str(), cp.tree_size, cp.root_hash.as_slice()), ("log.example - 1", 12, &root[..]));
        // A witness line first, and a log line without the log-id hint, still verify.
        let note = format!("{text}\n{}{}", signed_line(&witness, &witness_id, &text), signed_line(&kp, &[0; 4], &text));
        verify_checkpoint(&note, &key, &id).unwrap();
        // Only the witness signed: rejected.
        let note = format!("{text}\n{}", signed_line(&witness, &id, &text));
        assert_eq!(verify_checkpoint(&note, &key, &id), Err(ProofError::CheckpointSignature));
        // Changed text: rejected.
        let note = format!("{}\n{}", text.replace("12", "13"), signed_line(&kp, &id, &text));
        assert_eq!(verify_checkpoint(&note, &key, &id), Err(ProofError::CheckpointSignature));
        let root_line = STANDARD.encode(root);
        for (bad_note, why) in [
            ("", "no blank line between text and signatures"),
            ("no blank line", "no blank line between text and signatures"),
            ("o\nx\nAAAA\n\n\u{2014} k AAAAAAAA\n", "second line is not a decimal tree size"),
            ("o\n1\nAAAA\n\n", "third line is not a base64 SHA-256 root hash"),
            (&format!("o\n1\n{root_line}\n\n"), "no signature lines"),
            (&format!("o\n1\n{root_line}\n\n- k AAAAAAAA\n"), "signature line does not start with `— `"),
            (&format!("o\n1\n{root_line}\n\n\u{2014} k AAAA\n"), "signature is shorter than its key hint"),
        ] {
            assert_eq!(verify_checkpoint(bad_note, &key, &id), Err(ProofError::MalformedCheckpoint(why.into())));
        }
    }

    #[test]
    fn shape_errors() {
        let leaf = leaf_hash(b"x");
        let shape = |why: &str| Err(ProofError::BadShape(why.into()));
        assert_eq!(verify_inclusion(1, 1, &leaf, &[], &leaf), shape("leaf index 1 is not below tree size 1"));
        assert_eq!(verify_inclusion(0, 2, &leaf, &[], &leaf), shape("audit path is shorter than the tree is deep"));
        assert_eq!(
            verify_inclusion(0, 1, &leaf, &[vec![0; 32]], &leaf),
            shape("audit path is longer than the tree is deep")
        );
        assert_eq!(verify_inclusion(0, 2, &leaf, &[vec![0; 31]], &leaf), shape("a path hash is 31 bytes, not 32"));
        verify_inclusion(0, 1, &leaf, &[], &leaf).unwrap();
    }
}
