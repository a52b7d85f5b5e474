//! Seeds a registry with a benchmark fleet (used by `bench/migrate.sh`).
//!
//! ```sh
//! cargo run --release --example bench_store -- HOST REPOSITORY COUNT [SBOM_BYTES] [FIRST] [ATTACHMENTS]
//! ```
//! Pushes COUNT distinct images (numbers FIRST.., default 0, so that several repositories can hold
//! different images) over plain HTTP — with ATTACHMENTS (a repository of HOST), their legacy tags go
//! there instead, as cosign's `COSIGN_REPOSITORY` stores them — each with a legacy `.att` holding a ~1.5 MB SPDX
//! SBOM and the 785-byte SLSA text, both signed with the RSA-4096 test key
//! (`fixtures/keys/rsa-4096.pub.pem`). The same COUNT gives the same bytes on every run.
//!
//! Prints one line per image on stdout, `ATT_TAG ATT_MANIFEST_BYTES ATT_BLOB_BYTES IMAGE_TAG IMAGE_BYTES`,
//! where the blob bytes are the `.att` config plus its layers (what a migration must read at least once)
//! and the image bytes its manifest, config and layers (what a copy of the image moves).

use std::time::{Duration, Instant};

use att2ref::demo::{self, AttachmentKind, Scenario};
use att2ref::store::registry::RegistryRepository;
use att2ref::store::registry::{ClientConfig, PlainHttp, RegistryClient, RetryPolicy};
use rayon::prelude::*;

/// Images generated (CPU) and pushed (network) per round.
const BATCH: usize = 8;

fn main() -> att2ref::Result<()> {
    let usage = "usage: bench_store HOST REPOSITORY COUNT [SBOM_BYTES] [FIRST] [ATTACHMENTS]";
    let mut args = std::env::args().skip(1);
    let host = args.next().expect(usage);
    let repository = args.next().expect(usage);
    let count: u32 = args.next().and_then(|n| n.parse().ok()).expect(usage);
    let sbom_bytes: usize = args.next().map_or(demo::ARTICLE_SBOM_BYTES, |n| n.parse().expect(usage));
    let first: u32 = args.next().map_or(0, |n| n.parse().expect(usage));
    let attachments = args.next();

    let client = RegistryClient::new(ClientConfig {
        plain_http: PlainHttp::Hosts(vec![host.clone()]),
        retry: RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            ..RetryPolicy::default()
        },
        ..ClientConfig::default()
    })?;
    let repo = client.repository(&host, &repository);
    let attachments = attachments.map(|a| client.repository(&host, &a));
    let runtime = tokio::runtime::Runtime::new().expect("starting the tokio runtime");
    let start = Instant::now();
    let indexes: Vec<u32> = (first..first + count).collect();
    for chunk in indexes.chunks(BATCH) {
        // The statements name the repository the images are pushed to, as cosign's would.
        let name = format!("{host}/{repository}");
        let scenarios: Vec<Scenario> = chunk
            .par_iter()
            .map(|&i| demo::article_like_numbered(&name, i, sbom_bytes))
            .collect::<att2ref::Result<_>>()?;
        runtime.block_on(push_all(&repo, attachments.as_ref(), &scenarios))?;
        for s in &scenarios {
            println!("{}", describe(s));
        }
    }
    let stats = client.stats();
    eprintln!(
        "bench_store: {count} images into {host}/{repository} in {:.1}s ({} requests, {} bytes uploaded)",
        start.elapsed().as_secs_f64(),
        stats.requests,
        stats.bytes_uploaded
    );
    Ok(())
}

async fn push_all(
    repo: &RegistryRepository,
    attachments: Option<&RegistryRepository>,
    scenarios: &[Scenario],
) -> att2ref::Result<()> {
    let pushes = scenarios.iter().map(|s| async move {
        match attachments {
            Some(a) => s.push_split(repo, a).await,
            None => s.repo.push_to(repo).await,
        }
    });
    futures_util::future::try_join_all(pushes).await.map(|_| ())
}

/// `ATT_TAG ATT_MANIFEST_BYTES ATT_BLOB_BYTES IMAGE_TAG IMAGE_BYTES` of the scenario.
fn describe(s: &Scenario) -> String {
    let att = s.attachment_for(&s.image, AttachmentKind::Attestations).expect("every fleet image has an .att");
    let manifest = s.repo.manifest(&att.manifest).expect("the .att manifest was generated");
    let config: u64 = serde_json::from_slice::<serde_json::Value>(&manifest.bytes)
        .ok()
        .and_then(|m| m["config"]["size"].as_u64())
        .unwrap_or(0);
    let layers: u64 = att.layers.iter().map(|l| l.size).sum();
    let image = s.repo.manifest(&s.image).expect("the image manifest was generated");
    let tag = image.tags.first().expect("every fleet image is tagged");
    let parsed: serde_json::Value = serde_json::from_slice(&image.bytes).expect("the image manifest is JSON");
    let image_blobs: u64 = std::iter::once(&parsed["config"])
        .chain(parsed["layers"].as_array().into_iter().flatten())
        .filter_map(|d| d["size"].as_u64())
        .sum();
    format!("{} {} {} {tag} {}", att.tag, manifest.bytes.len(), config + layers, image.bytes.len() as u64 + image_blobs)
}
