//! RFC 6962 §2.1 Merkle trees written out with SHA-256 directly, so the roots and audit paths the tests
//! serve do not come from the code that verifies them.

use sha2::{Digest as _, Sha256};

/// MTH({d}) = SHA-256(0x00 ‖ d).
pub fn leaf(entry: &[u8]) -> [u8; 32] {
    Sha256::new().chain_update([0u8]).chain_update(entry).finalize().into()
}

fn node(left: &[u8], right: &[u8]) -> [u8; 32] {
    Sha256::new().chain_update([1u8]).chain_update(left).chain_update(right).finalize().into()
}

/// k: the largest power of two smaller than n (n > 1).
fn split(n: usize) -> usize {
    let mut k = 1;
    while 2 * k < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]) over leaf hashes.
pub fn root(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves {
        [one] => *one,
        _ => {
            let k = split(leaves.len());
            node(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]): the siblings from leaf m up to the root.
pub fn path(m: usize, leaves: &[[u8; 32]]) -> Vec<Vec<u8>> {
    if leaves.len() == 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    let (mut path, sibling) =
        if m < k { (path(m, &leaves[..k]), &leaves[k..]) } else { (path(m - k, &leaves[k..]), &leaves[..k]) };
    path.push(root(sibling).to_vec());
    path
}
