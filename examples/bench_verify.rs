//! Verification throughput on the article's real `.att` layers (used by `bench/verify.sh`).
//!
//! ```sh
//! cargo run --release --example bench_verify -- CORPUS_DIR [ITERATIONS]
//! ```
//! Prints one line per measurement: `name bytes seconds`. The script turns them into MB/s beside
//! `sha256sum` over the same bytes.

use std::time::Instant;

use att2ref::model::cosign::LegacyLayerAnnotations;
use att2ref::model::digest::Digest;
use att2ref::model::oci::Annotations;
use att2ref::verification::{Policy, PublicKey, SignedEntity, Verifier};
use rayon::prelude::*;

const IMAGE: &str = "sha256:9bd049b6b470118cc6a02d58595b86107407c9e288c0d556ce342ea8acbafdf4";
const LAYERS: [&str; 2] = [
    "toddysm-cssc-pipeline/sigstore-test/sigstore-attestation/c9880779c90158a29f7a69f29c492551261e7a3936247fc75f225171064d6d32.tar.gz",
    "toddysm-cssc-pipeline/sigstore-test/sigstore-attestation/ff626be9ff3158e9d2118072cd24481d990a5145d10109affec6064423d74cc4.tar.gz",
];

fn main() -> att2ref::Result<()> {
    let mut args = std::env::args().skip(1);
    let corpus = std::path::PathBuf::from(args.next().expect("usage: bench_verify CORPUS_DIR [ITERATIONS]"));
    let iterations: usize = args.next().map_or(20, |n| n.parse().expect("ITERATIONS is a number"));
    let read = |rel: &str| std::fs::read(corpus.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let key = PublicKey::from_pem(&read("toddysm-cssc-pipeline/derived/kms-rsa4096-public-key.recovered.pem"))?;
    let verifier = Verifier::new(Policy::new().with_key(key).insecure_ignore_tlog(true))?;
    let image: Digest = IMAGE.parse()?;
    let layers: Vec<Vec<u8>> = LAYERS.iter().map(|l| read(l)).collect();
    let bytes_per_round: usize = layers.iter().map(Vec::len).sum();
    let annotations = || {
        let mut a = Annotations::new();
        a.insert("dev.cosignproject.cosign/signature".into(), String::new());
        LegacyLayerAnnotations::from_annotations(&a)
    };
    let check = |layer: &Vec<u8>| {
        let entity = SignedEntity::legacy_attestation(layer.clone(), annotations());
        verifier.verify(&entity, &image).expect("the article's layers verify");
    };

    // Warm up (page cache, allocator).
    layers.iter().for_each(check);

    let start = Instant::now();
    for _ in 0..iterations {
        layers.iter().for_each(check);
    }
    println!("verify-1-thread {} {:.6}", bytes_per_round * iterations, start.elapsed().as_secs_f64());

    let work: Vec<&Vec<u8>> = (0..iterations).flat_map(|_| layers.iter()).collect();
    let start = Instant::now();
    work.par_iter().for_each(|l| check(l));
    println!(
        "verify-rayon-{}-threads {} {:.6}",
        rayon::current_num_threads(),
        bytes_per_round * iterations,
        start.elapsed().as_secs_f64()
    );

    // The small SLSA envelope alone: per-attestation overhead rather than bytes.
    let small = &layers[1];
    let n = iterations * 200;
    let start = Instant::now();
    for _ in 0..n {
        check(small);
    }
    println!("verify-small-envelopes {} {:.6} {n}", small.len() * n, start.elapsed().as_secs_f64());
    Ok(())
}
