//! `att2ref get` end to end: one attestation by predicate type, downloading nothing else, on both real
//! registries (distribution 2.8.2: tag schema; ferro: the referrers API) and on OCI layouts. Request and
//! byte counts are taken from the registry's side — distribution's access log, or a counting proxy in front
//! of ferro — and must equal the registry client's own counters (`--stats=json`).

use std::path::{Path, PathBuf};

use att2ref::demo::{self, GeneratedRepo};
use att2ref::model::digest::Digest;
use att2ref::model::media_type as mt;
use serde_json::{Value, json};

use crate::cli::{Run, att2ref};
use crate::corpus::{self, ARTICLE_IMAGE, WRITER_IMAGE};
use crate::fault_proxy::FaultProxy;
use crate::registries::{DistributionConfig, RegistryKind, TestRegistry};
use crate::schema::assert_valid;

const SLSA_FILE: &str = "toddysm-cssc-pipeline/sigstore-test/flasksample-v1.slsa";
const ARTICLE_KEY: &str = "toddysm-cssc-pipeline/derived/kms-rsa4096-public-key.recovered.pem";
const COSIGN_BUNDLE: &str = "sigstore-cosign/oci-attestation.sigstore.json";
const COSIGN_ROOT: &str = "sigstore-cosign/trusted_root_pgi.json";
const COSIGN_IMAGE: &str = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4";

/// The public half of the demo stores' TEST-ONLY RSA-4096 key.
pub(crate) fn test_key() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/rsa-4096.pub.pem").display().to_string()
}

fn corpus_path(rel: &str) -> String {
    corpus::path(rel).display().to_string()
}

/// The `--stats=json` line on stderr.
pub(crate) fn stats(run: &Run) -> Value {
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("{\"answeredBy\""))
        .unwrap_or_else(|| panic!("no --stats=json line on stderr:\n{}", run.stderr));
    serde_json::from_str(line).unwrap()
}

/// A registry whose traffic is counted on its side: distribution with its access log on (`info`), or
/// ferro behind a counting proxy. `host` is where clients go.
struct Counted {
    registry: TestRegistry,
    proxy: Option<FaultProxy>,
    host: String,
}

/// Requests and response-body bytes, as the registry saw them: the number of requests, and each
/// answered request (`METHOD path[?query]`) with its body bytes.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    requests: u64,
    answers: Vec<(String, u64)>,
}

impl Counted {
    fn distribution() -> Counted {
        let registry = TestRegistry::distribution_with(DistributionConfig { log_level: "info", ..Default::default() });
        let host = registry.host.clone();
        Counted { registry, proxy: None, host }
    }

    fn ferro() -> Counted {
        let registry = TestRegistry::ferro();
        let proxy = FaultProxy::counting(&registry.host);
        let host = proxy.host.clone();
        Counted { registry, proxy: Some(proxy), host }
    }

    /// Everything counted so far; a run's traffic is the difference of two marks.
    fn mark(&self) -> Seen {
        match &self.proxy {
            Some(p) => Seen { requests: p.requests(), answers: p.answered() },
            None => {
                assert_eq!(self.registry.kind, RegistryKind::Distribution);
                access_log(&self.registry)
            }
        }
    }

    /// What the registry saw since `before`. distribution writes each access-log line once the answer is
    /// sent, so a line can land just after the client has exited: wait until the log is quiet.
    fn since(&self, before: &Seen) -> Seen {
        let mut now = self.mark();
        for _ in 0..20 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let again = self.mark();
            if again == now {
                break;
            }
            now = again;
        }
        Seen { requests: now.requests - before.requests, answers: now.answers[before.answers.len()..].to_vec() }
    }

    /// Assert what the registry saw of a `get --stats=json` run: exactly `requests` requests of its own,
    /// with att2ref's request and byte counters equal to them, plus — when referrers answered — the one
    /// request `--stats` makes after counting, for the `.att` manifest behind `legacyWouldCost` (made
    /// whether or not the tag exists). Returns the bytes of the get's own requests.
    fn assert_get(&self, before: &Seen, stats: &Value, requests: u64) -> u64 {
        let seen = self.since(before);
        let context =
            format!("{}: the registry saw {seen:#?}\natt2ref's --stats: {stats:#}", self.registry.kind_name());
        assert_eq!(seen.requests as usize, seen.answers.len(), "every request was answered whole: {context}");
        let mut own = seen.answers.clone();
        // The request `--stats` adds comes after all of the get's own: the last one.
        if stats["answeredBy"] == "referrer" {
            let (request, bytes) = own.pop().unwrap_or_default();
            assert!(request.starts_with("GET ") && request.ends_with(".att"), "the .att manifest last: {context}");
            if let Some(manifest_bytes) = stats["legacyWouldCost"]["manifestBytes"].as_u64() {
                assert_eq!(bytes, manifest_bytes, "legacyWouldCost.manifestBytes: {context}");
            }
        }
        let bytes: u64 = own.iter().map(|(_, b)| b).sum();
        assert_eq!(own.len() as u64, requests, "{context}");
        assert_eq!(stats["requests"].as_u64(), Some(requests), "att2ref's request count: {context}");
        assert_eq!(stats["bytesDownloaded"].as_u64(), Some(bytes), "att2ref's byte count: {context}");
        bytes
    }

    /// Like [`Counted::assert_get`], when the client cut one answer short and dropped its connection:
    /// `cut` is that request (`METHOD path`) and the bytes the client says it took in of it. The registry
    /// sent more; every other answer is counted on the registry's side as before. Returns the bytes the
    /// client took in.
    fn assert_get_cut(&self, before: &Seen, stats: &Value, requests: u64, cut: (&str, u64)) -> u64 {
        let seen = self.since(before);
        let context =
            format!("{}: the registry saw {seen:#?}\natt2ref's --stats: {stats:#}", self.registry.kind_name());
        // The request `--stats` adds after a referrer answered (see `assert_get`) is not the get's own.
        let own: Vec<(String, u64)> = match stats["answeredBy"] == "referrer" {
            true => seen.answers[..seen.answers.len() - 1].to_vec(),
            false => seen.answers.clone(),
        };
        assert_eq!(own.len() as u64, requests, "{context}");
        assert_eq!(own.iter().filter(|(r, _)| r == cut.0).count(), 1, "the cut request once: {context}");
        let bytes: u64 = own.iter().map(|(r, b)| if r == cut.0 { cut.1 } else { *b }).sum();
        assert_eq!(stats["requests"].as_u64(), Some(requests), "att2ref's request count: {context}");
        assert_eq!(stats["bytesDownloaded"].as_u64(), Some(bytes), "att2ref's byte count: {context}");
        bytes
    }
}

/// distribution's access log (combined log format: `… "METHOD /path HTTP/1.1" STATUS BYTES "…" "…"`):
/// each request and its response-body bytes. A HEAD line counts 0 bytes: distribution logs the size of
/// the body it would have sent (e.g. a 404's error document), which Go's HTTP server drops from a HEAD
/// answer, so none of it reaches the client.
fn access_log(registry: &TestRegistry) -> Seen {
    let log = std::fs::read_to_string(registry.log_path()).unwrap();
    let mut seen = Seen { requests: 0, answers: Vec::new() };
    for line in log.lines().filter(|l| l.contains(" HTTP/1.1\" ")) {
        let (request, rest) = line.split_once("] \"").unwrap().1.split_once(" HTTP/1.1\" ").unwrap();
        let size = rest.split(' ').nth(1).unwrap();
        let size = size.parse::<u64>().unwrap_or_else(|_| panic!("access-log size {size:?} in {line}"));
        seen.requests += 1;
        seen.answers.push((request.to_owned(), if request.starts_with("HEAD ") { 0 } else { size }));
    }
    seen
}

fn get(args: &[&str]) -> Run {
    let mut all = vec!["get", "--plain-http"];
    all.extend_from_slice(args);
    att2ref(&all)
}

/// Push the article-shaped store and migrate it as `att2ref migrate` does.
async fn migrated_article(registry: &TestRegistry) -> (demo::Scenario, String) {
    let scenario = demo::article_like().unwrap();
    let repo = registry.repository("cssc/flasksample");
    scenario.repo.push_to(&repo).await.unwrap();
    let image = format!("{}/cssc/flasksample@{}", registry.host, scenario.image);
    let key = test_key();
    let run =
        att2ref(&["migrate", "--plain-http", &image, "--key", &key, "--insecure-ignore-tlog", "-o", "json", "-q"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["totals"]["referrers_written"], 2, "{}", run.stdout);
    (scenario, image)
}

async fn slsa_from_migrated_store(counted: Counted, requests: u64) {
    let (_, image) = migrated_article(&counted.registry).await;
    // Through the counting proxy when there is one.
    let image = image.replacen(&counted.registry.host, &counted.host, 1);
    let key = test_key();
    let trust = ["--key", key.as_str(), "--insecure-ignore-tlog"];

    let mut args = vec![image.as_str(), "--type", "custom", "--hint", "slsa-provenance", "--stats=json"];
    args.extend_from_slice(&trust);
    let before = counted.mark();
    let run = get(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, demo::content::ARTICLE_SLSA_TEXT, "exactly the 785 attested bytes");
    assert_eq!(run.stdout.len(), 785);
    let s = stats(&run);
    assert_eq!(s["answeredBy"], "referrer", "{s:#}");
    let bundle = s["read"]["blobBytes"].as_u64().unwrap();
    let downloaded = counted.assert_get(&before, &s, requests);
    eprintln!(
        "{}: get from migrated store: {requests} requests, {downloaded} bytes (bundle {bundle})",
        counted.registry.kind_name()
    );
    assert_eq!(s["read"]["blobsRead"], 1, "only the SLSA bundle: {s:#}");
    assert!(bundle < 10_000, "the small SLSA bundle, not the SBOM one: {bundle}");
    assert!(downloaded <= bundle + 4096, "{downloaded} bytes downloaded for a {bundle}-byte bundle: {s:#}");
    assert_eq!(s["read"]["referrersSkipped"], 1, "the SBOM referrer was skipped by its hint annotation");
    assert!(s["read"]["legacy"].is_null(), "the legacy path was not taken");
    let would = &s["legacyWouldCost"];
    assert!(would["layersBytes"].as_u64().unwrap() > 1_500_000, "{would}");

    // The other forms of the same attestation.
    let mut args = vec![image.as_str(), "--type", "custom", "--hint", "slsa", "--emit", "bundle"];
    args.extend_from_slice(&trust);
    let run = get(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let b = att2ref::model::bundle::Bundle::parse(run.stdout.as_bytes()).unwrap();
    assert_eq!(b.media_type(), mt::BUNDLE_V03);
    let mut args = vec![image.as_str(), "--type", "custom", "--hint", "slsa", "--emit", "statement"];
    args.extend_from_slice(&trust);
    let statement: Value = serde_json::from_str(&get(&args).stdout).unwrap();
    assert_eq!(statement["predicateType"], "cosign.sigstore.dev/attestation/v1");

    // --all: both custom attestations, a JSON array valid against its schema.
    let mut args = vec![image.as_str(), "--type", "custom", "--all"];
    args.extend_from_slice(&trust);
    let run = get(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let all = run.json();
    assert_valid("get-all.schema.json", &all);
    let hints: Vec<&str> = all.as_array().unwrap().iter().map(|a| a["contentHint"].as_str().unwrap()).collect();
    assert_eq!(hints.len(), 2);
    assert!(hints.contains(&"spdx-2.2") && hints.contains(&"slsa-provenance-v0.2"), "{hints:?}");
    assert!(all.as_array().unwrap().iter().all(|a| a["verified"] == true && a["source"]["writer"] == "att2ref"));

    // Nothing of that type: exit 1 with a clear message.
    let mut args = vec![image.as_str(), "--type", "spdxjson"];
    args.extend_from_slice(&trust);
    let run = get(&args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("no verified spdxjson attestation found"), "{}", run.stderr);
    // A wrong key: the matching attestation is rejected, never printed.
    let other = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/ed25519.pub.pem").display().to_string();
    let run = get(&[&image, "--type", "custom", "--hint", "slsa", "--key", &other, "--insecure-ignore-tlog"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("rejected"), "{}", run.stderr);
}

#[tokio::test]
async fn get_slsa_from_migrated_store_distribution() {
    // Referrers API (404), tag-schema index, the referrer manifest, the bundle.
    slsa_from_migrated_store(Counted::distribution(), 4).await;
}

#[tokio::test]
async fn get_slsa_from_migrated_store_ferro() {
    // Referrers API, the referrer manifest, the bundle.
    slsa_from_migrated_store(Counted::ferro(), 3).await;
}

/// The article's SBOM layer (2,225,736 bytes) and SLSA provenance layer (2,392 bytes), both `custom`.
const ARTICLE_SBOM_LAYER: &str = "sha256:c9880779c90158a29f7a69f29c492551261e7a3936247fc75f225171064d6d32";
const ARTICLE_SLSA_LAYER: &str = "sha256:ff626be9ff3158e9d2118072cd24481d990a5145d10109affec6064423d74cc4";
/// The budget of issue "get on stores nobody migrated": response bodies for the SLSA provenance.
const ARTICLE_BUDGET: u64 = 8 * 1024;
/// Most bytes a client may take in of a blob whose registry ignored `Range`, before it drops the
/// connection: its first read of the body (hyper reads at most 8 KiB into a fresh buffer) and the prefix.
const RANGE_IGNORED_MAX: u64 = 16 * 1024;

/// How the registry under test serves `Range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RangeSupport {
    /// 206 with the bytes asked for (distribution 2.8.2).
    Honoured,
    /// 200 with the whole blob (ferro-oci-server 1.0.0, or a proxy that strips the header).
    Ignored,
}

async fn article_legacy_store(counted: Counted, requests: u64, range: RangeSupport) {
    let registry = &counted.registry;
    let repo = registry.repository("cssc/flasksample");
    corpus::article_store("cssc/flasksample").push_to(&repo).await.unwrap();
    let image = format!("{}/cssc/flasksample@{ARTICLE_IMAGE}", counted.host);
    let key = corpus_path(ARTICLE_KEY);
    let before = counted.mark();
    let run = get(&[
        &image,
        "--type",
        "custom",
        "--hint",
        "slsa-provenance",
        "--key",
        &key,
        "--insecure-ignore-tlog",
        "--stats=json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.as_bytes(), corpus::read(SLSA_FILE), "exactly flasksample-v1.slsa");
    let s = stats(&run);
    assert_eq!(s["answeredBy"], "legacy", "{s:#}");
    let legacy = &s["read"]["legacy"];
    // The SLSA layer is small: read whole at once. Of the SBOM only the start was read, which says SPDX.
    let counts = ["layersRead", "layersReadToLearnType", "layersReadPartially", "layersSkippedByPrefix"]
        .map(|k| legacy[k].as_u64().unwrap_or_else(|| panic!("{k} in {legacy:#}")));
    assert_eq!(counts, [1, 1, 1, 1], "{legacy:#}");
    assert_eq!(legacy["bytesRead"].as_u64(), Some(2392), "{legacy:#}");
    let prefix = &legacy["prefixes"][0];
    assert_eq!(legacy["prefixes"].as_array().map(Vec::len), Some(1), "{legacy:#}");
    assert_eq!(
        (prefix["layer"].as_u64(), prefix["blob"].as_str(), prefix["size"].as_u64(), prefix["bytes"].as_u64()),
        (Some(0), Some(ARTICLE_SBOM_LAYER), Some(2_225_736), Some(2048)),
        "{prefix:#}"
    );
    assert_eq!(prefix["predicateType"], "cosign.sigstore.dev/attestation/v1", "{prefix:#}");
    assert_eq!(prefix["hint"], "spdx-2.2", "{prefix:#}");
    assert_eq!(prefix["outcome"], "skipped: its prefix looks like spdx-2.2", "{prefix:#}");
    let transferred = prefix["transferred"].as_u64().unwrap();
    let sbom_get = format!("GET /v2/cssc/flasksample/blobs/{ARTICLE_SBOM_LAYER}");
    let slsa_get = format!("GET /v2/cssc/flasksample/blobs/{ARTICLE_SLSA_LAYER}");
    let seen = counted.since(&before);
    let answered =
        |request: &str| -> Vec<u64> { seen.answers.iter().filter(|(r, _)| r == request).map(|(_, b)| *b).collect() };
    // Each layer asked for once: the SBOM's start, the SLSA provenance whole.
    assert_eq!(answered(&slsa_get), [2392], "{seen:#?}");
    match range {
        RangeSupport::Honoured => {
            assert_eq!(prefix["read"], "range", "{prefix:#}");
            assert_eq!(transferred, 2048, "{prefix:#}");
            assert_eq!(answered(&sbom_get), [2048], "the registry sent only the start: {seen:#?}");
            let downloaded = counted.assert_get(&before, &s, requests);
            assert!(downloaded <= ARTICLE_BUDGET, "{downloaded} bytes of response bodies: {seen:#?}");
            // The figure the README quotes: every answer of distribution 2.8.2 here is fixed.
            assert_eq!((requests, downloaded), (5, 5280), "{seen:#?}");
            eprintln!("get from the article's legacy store: {} requests, {downloaded} bytes", s["requests"]);
        }
        RangeSupport::Ignored => {
            assert_eq!(prefix["read"], "range-ignored", "{prefix:#}");
            // The registry sent the whole SBOM; the client took in only its start and dropped the connection.
            assert_eq!(answered(&sbom_get), [2_225_736], "{seen:#?}");
            assert!((2048..=RANGE_IGNORED_MAX).contains(&transferred), "{transferred} bytes taken in: {prefix:#}");
            let downloaded = counted.assert_get_cut(&before, &s, requests, (&sbom_get, transferred));
            assert!(downloaded <= ARTICLE_BUDGET + RANGE_IGNORED_MAX, "{downloaded} bytes: {seen:#?}");
            eprintln!(
                "get from the article's legacy store, Range ignored: {} requests, {downloaded} bytes taken in \
                 ({transferred} of the SBOM's 2225736)",
                s["requests"]
            );
        }
    }

    // Without verification material get refuses; --unverified warns.
    let run = get(&[&image, "--type", "custom", "--hint", "slsa"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("nothing to verify with"), "{}", run.stderr);
    let run = get(&[&image, "--type", "custom", "--hint", "slsa", "--unverified"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("warning: --unverified"), "{}", run.stderr);
    assert_eq!(run.stdout.as_bytes(), corpus::read(SLSA_FILE));

    // The SBOM by its hint: its start says SPDX, the SLSA layer is small and read whole to learn it.
    let before = counted.mark();
    let run = get(&[&image, "--type", "custom", "--hint", "spdx", "--key", &key, "--insecure-ignore-tlog", "--stats"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(Digest::sha256(run.stdout.as_bytes()), Digest::sha256(&sbom_text()), "the article's SPDX SBOM");
    assert!(run.stderr.contains("stats: legacy layer 0 (2225736 bytes): read its first 2048 bytes"), "{}", run.stderr);
    assert!(
        run.stderr.contains("it says: cosign.sigstore.dev/attestation/v1, looks like spdx-2.2; read-whole"),
        "{}",
        run.stderr
    );
    let seen = counted.since(&before);
    let sbom_reads: Vec<u64> = seen.answers.iter().filter(|(r, _)| *r == sbom_get).map(|(_, b)| *b).collect();
    let whole = match range {
        RangeSupport::Honoured => vec![2048, 2_225_736],
        RangeSupport::Ignored => vec![2_225_736, 2_225_736],
    };
    assert_eq!(sbom_reads, whole, "the start, then the whole layer: {seen:#?}");
}

/// The SPDX document inside the article's SBOM layer, as `get --hint spdx` emits it.
fn sbom_text() -> Vec<u8> {
    let layer = corpus::read(&format!(
        "toddysm-cssc-pipeline/sigstore-test/sigstore-attestation/{}.tar.gz",
        &ARTICLE_SBOM_LAYER[7..]
    ));
    let envelope: Value = serde_json::from_slice(&layer).unwrap();
    let payload = base64_decode(envelope["payload"].as_str().unwrap());
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    statement["predicate"]["Data"].as_str().unwrap().as_bytes().to_vec()
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

#[tokio::test]
async fn get_from_article_legacy_store_distribution() {
    // Referrers API (404), the tag-schema index (404), the `.att` manifest, the SBOM layer's first 2 KiB
    // (206), the SLSA layer whole. Referrers are listed once, unfiltered, for every kind (bundles of any
    // version, DSSE envelopes of any writer): this was 6 when the index was read once per artifactType
    // asked for (bundle v0.3, then DSSE).
    article_legacy_store(Counted::distribution(), 5, RangeSupport::Honoured).await;
}

#[tokio::test]
async fn get_from_article_legacy_store_distribution_ignoring_range() {
    // As above, behind a proxy that strips `Range`: the SBOM's start is cut from a 200.
    let mut counted = Counted::distribution();
    let proxy = FaultProxy::counting(&counted.registry.host);
    proxy.ignore_range();
    counted.host = proxy.host.clone();
    counted.proxy = Some(proxy);
    article_legacy_store(counted, 5, RangeSupport::Ignored).await;
}

#[tokio::test]
async fn get_from_article_legacy_store_ferro() {
    // Referrers API, the `.att` manifest, the SBOM's start (ferro ignores `Range`: 200, cut), the SLSA
    // layer whole. One unfiltered listing: this was 5 when the API was asked once per artifactType (bundle
    // v0.3, then DSSE).
    article_legacy_store(Counted::ferro(), 4, RangeSupport::Ignored).await;
}

async fn sigstore_oci_writer(counted: Counted, requests: u64) {
    let registry = &counted.registry;
    let repo = registry.repository("demo/app");
    corpus::sigstore_oci_writer_store("demo/app", !registry.has_referrers_api()).push_to(&repo).await.unwrap();
    let image = format!("{}/demo/app@{WRITER_IMAGE}", counted.host);
    let key = corpus_path("sigstore-oci-writer/ecdsa-p256.pub.pem");
    let before = counted.mark();
    let run = get(&[
        &image,
        "--type",
        "slsaprovenance1",
        "--emit",
        "bundle",
        "--key",
        &key,
        "--insecure-ignore-tlog",
        "--stats=json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.as_bytes(), corpus::read("sigstore-oci-writer/bundle-slsa1-ecdsa.json"));
    let s = stats(&run);
    assert_eq!(s["answeredBy"], "referrer", "{s:#}");
    counted.assert_get(&before, &s, requests);
    let run = get(&[&image, "--type", "slsaprovenance1", "--all", "--key", &key, "--insecure-ignore-tlog"]);
    let all = run.json();
    assert_valid("get-all.schema.json", &all);
    assert_eq!(all[0]["source"]["writer"], "@sigstore/oci");
    assert_eq!(all[0]["contentHint"], "slsa-provenance-v1");
}

#[tokio::test]
async fn get_sigstore_oci_referrer_distribution() {
    // Referrers API (404), the tag-schema index @sigstore/oci maintained, the referrer manifest, the bundle.
    sigstore_oci_writer(Counted::distribution(), 4).await;
}

#[tokio::test]
async fn get_sigstore_oci_referrer_ferro() {
    // Referrers API, the referrer manifest, the bundle.
    sigstore_oci_writer(Counted::ferro(), 3).await;
}

/// The predicate type of the other writers' referrers below.
const FOREIGN_TYPE: &str = "https://example.test/foreign/v1";

/// A referrer another tool wrote, as the only attestation of an image.
#[derive(Clone, Copy, Debug)]
enum Foreign {
    /// A Sigstore bundle v0.2 as @sigstore/oci attaches it (GitHub's attest action before bundle v0.3):
    /// the bundle's own media type as the artifactType and the layer's, predicate type annotated.
    BundleV02,
    /// A bare DSSE envelope as `oras attach --artifact-type application/vnd.dsse.envelope.v1+json`
    /// attaches it: no predicate type annotation, so only its content says what it is.
    DsseEnvelope,
}

/// What a foreign store holds: the image, the referrer manifest, its blob, and the predicate as signed.
struct ForeignStore {
    repo: GeneratedRepo,
    image: Digest,
    referrer: Digest,
    blob: Vec<u8>,
    predicate: &'static str,
}

fn foreign_store(repository: &str, kind: Foreign, with_tag_schema: bool) -> ForeignStore {
    use att2ref::demo::TestKey;
    use att2ref::demo::dsse::sign_envelope;
    use att2ref::demo::oci::subject_image;

    let mut repo = GeneratedRepo::new(repository);
    let image = subject_image(&format!("{kind:?} referrer (att2ref test image)"), "linux", "amd64", None);
    repo.add_blob(image.config.clone());
    repo.add_blob(image.layer.clone());
    let digest = repo.add_manifest(image.manifest.clone(), mt::OCI_MANIFEST, &[]);
    // Spaces and key order serde_json would not keep: the predicate comes back byte for byte or not at all.
    let predicate = match kind {
        Foreign::BundleV02 => "{ \"writer\" : \"@sigstore/oci\", \"bundle\": \"v0.2\" }",
        Foreign::DsseEnvelope => "{ \"writer\" : \"oras\", \"n\": 1.0 }",
    };
    let payload = format!(
        "{{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{{\"name\":\"foreign\",\"digest\":{{\"sha256\":\"{}\"}}}}],\"predicateType\":\"{FOREIGN_TYPE}\",\"predicate\":{predicate}}}",
        digest.hex()
    );
    let envelope = sign_envelope(payload.into_bytes(), &TestKey::Rsa4096.signer()).unwrap().bytes;
    let (artifact_type, blob, annotations) = match kind {
        Foreign::BundleV02 => {
            let envelope: Value = serde_json::from_slice(&envelope).unwrap();
            let bundle = json!({
                "mediaType": mt::BUNDLE_V02,
                "verificationMaterial": {"publicKey": {"hint": ""}, "tlogEntries": []},
                "dsseEnvelope": envelope,
            });
            let annotations = json!({
                "dev.sigstore.bundle.content": "dsse-envelope",
                "dev.sigstore.bundle.predicateType": FOREIGN_TYPE,
                "org.opencontainers.image.created": "2024-05-02T10:11:12.345Z",
            });
            (mt::BUNDLE_V02, serde_json::to_vec(&bundle).unwrap(), annotations)
        }
        Foreign::DsseEnvelope => {
            (mt::DSSE_ENVELOPE, envelope, json!({"org.opencontainers.image.created": "2024-05-02T10:11:12Z"}))
        }
    };
    let config = repo.add_blob(&b"{}"[..]);
    let layer = repo.add_blob(blob.clone());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": mt::OCI_EMPTY, "size": 2, "digest": config.to_string()},
        "layers": [{"mediaType": artifact_type, "size": blob.len(), "digest": layer.to_string()}],
        "subject": {"mediaType": mt::OCI_MANIFEST, "size": image.manifest.len(), "digest": digest.to_string()},
        "annotations": annotations,
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let size = bytes.len();
    let referrer = repo.add_manifest(bytes, mt::OCI_MANIFEST, &[]);
    if with_tag_schema {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI_INDEX,
            "manifests": [{
                "mediaType": mt::OCI_MANIFEST, "size": size, "digest": referrer.to_string(),
                "artifactType": artifact_type, "annotations": annotations,
            }],
        });
        repo.add_manifest(serde_json::to_vec(&index).unwrap(), mt::OCI_INDEX, &[digest.referrers_tag()]);
    }
    ForeignStore { repo, image: digest, referrer, blob, predicate }
}

async fn foreign_referrer(counted: Counted, kind: Foreign, requests: u64) {
    let registry = &counted.registry;
    let store = foreign_store("foreign/app", kind, !registry.has_referrers_api());
    store.repo.push_to(&registry.repository("foreign/app")).await.unwrap();
    let image = format!("{}/foreign/app@{}", counted.host, store.image);
    let key = test_key();
    let trust = ["--key", key.as_str(), "--insecure-ignore-tlog"];

    let mut args = vec![image.as_str(), "--type", FOREIGN_TYPE, "--stats=json"];
    args.extend_from_slice(&trust);
    let before = counted.mark();
    let run = get(&args);
    assert_eq!(run.code, 0, "{kind:?}: {}", run.stderr);
    assert_eq!(run.stdout, store.predicate, "{kind:?}: the predicate exactly as signed");
    let s = stats(&run);
    assert_eq!(s["answeredBy"], "referrer", "{kind:?}: {s:#}");
    let read = &s["read"];
    let annotated = u64::from(matches!(kind, Foreign::BundleV02));
    assert_eq!(read["referrersListed"], 1, "{kind:?}: {s:#}");
    assert_eq!(read["referrersAnnotated"], annotated, "{kind:?}: {s:#}");
    assert_eq!(read["referrersUnannotatedFetched"], 1 - annotated, "{kind:?}: chosen by content: {s:#}");
    assert_eq!((read["blobsRead"].as_u64(), read["blobBytes"].as_u64()), (Some(1), Some(store.blob.len() as u64)));
    assert!(read["legacy"].is_null(), "{kind:?}: the legacy path was not taken: {s:#}");
    counted.assert_get(&before, &s, requests);

    // Where it came from, and the stored form byte for byte.
    let mut args = vec![image.as_str(), "--type", FOREIGN_TYPE, "--all"];
    args.extend_from_slice(&trust);
    let all = get(&args).json();
    assert_valid("get-all.schema.json", &all);
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all:#}");
    assert_eq!(all[0]["verified"], true, "{all:#}");
    assert_eq!(all[0]["source"]["manifest"], store.referrer.to_string(), "{all:#}");
    assert_eq!(all[0]["source"]["bundle"], Digest::sha256(&store.blob).to_string(), "{all:#}");
    let emit = match kind {
        Foreign::BundleV02 => {
            assert_eq!(all[0]["source"]["writer"], "@sigstore/oci", "{all:#}");
            "bundle"
        }
        Foreign::DsseEnvelope => "envelope",
    };
    let mut args = vec![image.as_str(), "--type", FOREIGN_TYPE, "--emit", emit];
    args.extend_from_slice(&trust);
    let run = get(&args);
    assert_eq!(run.code, 0, "{kind:?}: {}", run.stderr);
    assert_eq!(run.stdout.as_bytes(), store.blob, "{kind:?}: --emit {emit}");
}

#[tokio::test]
async fn get_bundle_v02_referrer_distribution() {
    // Referrers API (404), the tag-schema index, the referrer manifest, the bundle.
    foreign_referrer(Counted::distribution(), Foreign::BundleV02, 4).await;
}

#[tokio::test]
async fn get_bundle_v02_referrer_ferro() {
    // Referrers API, the referrer manifest, the bundle.
    foreign_referrer(Counted::ferro(), Foreign::BundleV02, 3).await;
}

#[tokio::test]
async fn get_foreign_dsse_referrer_distribution() {
    // Referrers API (404), the tag-schema index, the referrer manifest, the envelope.
    foreign_referrer(Counted::distribution(), Foreign::DsseEnvelope, 4).await;
}

#[tokio::test]
async fn get_foreign_dsse_referrer_ferro() {
    // Referrers API, the referrer manifest, the envelope.
    foreign_referrer(Counted::ferro(), Foreign::DsseEnvelope, 3).await;
}

/// A referrer shaped as cosign v3's `WriteReferrer` writes it, around the corpus's real cosign bundle.
fn cosign_v3_store(repository: &str, with_tag_schema: bool) -> GeneratedRepo {
    let image: Digest = COSIGN_IMAGE.parse().unwrap();
    let mut repo = GeneratedRepo::new(repository);
    let config = repo.add_blob(&b"{}"[..]);
    let bundle = corpus::read(COSIGN_BUNDLE);
    let bundle_digest = repo.add_blob(bundle.clone());
    let annotations = json!({
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": "https://cosign.sigstore.dev/attestation/v1",
        "org.opencontainers.image.created": "2025-02-28T19:18:11Z",
    });
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "artifactType": mt::BUNDLE_V03,
        "config": {"mediaType": mt::OCI_EMPTY, "size": 2, "digest": config.to_string(), "artifactType": mt::BUNDLE_V03},
        "layers": [{"mediaType": mt::BUNDLE_V03, "size": bundle.len(), "digest": bundle_digest.to_string()}],
        "subject": {"mediaType": mt::OCI_MANIFEST, "size": 1234, "digest": image.to_string()},
        "annotations": annotations,
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let size = bytes.len();
    let digest = repo.add_manifest(bytes, mt::OCI_MANIFEST, &[]);
    if with_tag_schema {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI_INDEX,
            "manifests": [{
                "mediaType": mt::OCI_MANIFEST, "size": size, "digest": digest.to_string(),
                "artifactType": mt::BUNDLE_V03, "annotations": annotations,
            }],
        });
        repo.add_manifest(serde_json::to_vec(&index).unwrap(), mt::OCI_INDEX, &[image.referrers_tag()]);
    }
    repo
}

async fn cosign_v3(registry: TestRegistry) {
    let repo = registry.repository("cosign/v3");
    cosign_v3_store("cosign/v3", !registry.has_referrers_api()).push_to(&repo).await.unwrap();
    let image = format!("{}/cosign/v3@{COSIGN_IMAGE}", registry.host);
    let root = corpus_path(COSIGN_ROOT);
    let keyless = [
        "--trusted-root",
        root.as_str(),
        "--certificate-identity",
        "cody@soyland.com",
        "--certificate-oidc-issuer",
        "https://github.com/login/oauth",
    ];
    let mut args = vec![image.as_str(), "--type", "custom", "--emit", "bundle", "--stats=json"];
    args.extend_from_slice(&keyless);
    let run = get(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.as_bytes(), corpus::read(COSIGN_BUNDLE));
    assert_eq!(stats(&run)["answeredBy"], "referrer");
    let mut args = vec![image.as_str(), "--type", "custom", "--all"];
    args.extend_from_slice(&keyless);
    let all = get(&args).json();
    assert_valid("get-all.schema.json", &all);
    assert_eq!(all[0]["source"]["writer"], "cosign");
    assert_eq!(all[0]["verification"]["signer"]["identity"], "cody@soyland.com");
    // Another identity: rejected, nothing printed.
    let mut args = vec![image.as_str(), "--type", "custom"];
    args.extend_from_slice(&keyless);
    let n = args.len();
    args[n - 3] = "someone@example.com";
    let run = get(&args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[tokio::test]
async fn get_cosign_v3_bundle_distribution() {
    cosign_v3(TestRegistry::distribution()).await;
}

#[tokio::test]
async fn get_cosign_v3_bundle_ferro() {
    cosign_v3(TestRegistry::ferro()).await;
}

/// A legacy `.att` in a layout whose (unverified) statement carries a hostile predicate type: the files
/// written for it stay inside --output-dir.
#[tokio::test]
async fn output_dir_names_cannot_escape() {
    let image = Digest::sha256(b"some image");
    let hostile = "../../../../tmp/evil/..\\x";
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "subject": [{"name": "x", "digest": {"sha256": image.hex()}}],
        "predicateType": hostile,
        "predicate": {"Data": "../../escape", "Timestamp": ""},
    });
    let envelope = json!({
        "payloadType": "application/vnd.in-toto+json",
        "payload": att2ref::model::dsse::encode_base64(&serde_json::to_vec(&statement).unwrap()),
        "signatures": [{"keyid": "", "sig": "AAAA"}],
    });
    let mut repo = GeneratedRepo::new("x/y");
    let envelope = serde_json::to_vec(&envelope).unwrap();
    let layer = repo.add_blob(envelope.clone());
    let config = repo.add_blob(&b"{}"[..]);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "config": {"mediaType": mt::OCI_CONFIG, "size": 2, "digest": config.to_string()},
        "layers": [{
            "mediaType": mt::DSSE_ENVELOPE, "size": envelope.len(), "digest": layer.to_string(),
            "annotations": {"dev.cosignproject.cosign/signature": "", "predicateType": hostile}
        }],
    });
    repo.add_manifest(serde_json::to_vec(&manifest).unwrap(), mt::OCI_MANIFEST, &[image.cosign_tag("att")]);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let store = att2ref::store::layout::LayoutRepository::create(&layout, att2ref::Limits::default()).unwrap();
    repo.push_to(&store).await.unwrap();
    let out: PathBuf = dir.path().join("out");
    let target = format!("ocidir://{}@{image}", layout.display());
    let run = att2ref(&[
        "get",
        &target,
        "--type",
        hostile,
        "--all",
        "--unverified",
        "--output-dir",
        out.to_str().unwrap(),
        "--emit",
        "statement",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let written: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].parent(), Some(out.as_path()));
    let name = written[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(!name.contains("..") && !name.starts_with('.'), "{name}");
    assert_eq!(std::fs::read(&written[0]).unwrap(), serde_json::to_vec(&statement).unwrap());
    // Nothing appeared anywhere else in the temporary directory.
    let mut top: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    top.sort();
    assert_eq!(top, ["layout", "out"]);
    // A second run never overwrites.
    let run = att2ref(&[
        "get",
        &target,
        "--type",
        hostile,
        "--all",
        "--unverified",
        "--output-dir",
        out.to_str().unwrap(),
        "--emit",
        "statement",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("never overwritten"), "{}", run.stderr);
}

/// Stores migrated with `--format dsse` (bare DSSE referrers) are read too.
#[tokio::test]
async fn get_from_dsse_format_referrers() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = demo::demo().unwrap();
    demo::write_layout(&scenario, tmp.path()).await.unwrap();
    let target = format!("ocidir://{}@{}", tmp.path().display(), scenario.image);
    let key = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/rsa-4096.pub.pem");
    let key = key.to_str().unwrap();
    let run = crate::cli::att2ref(&["migrate", &target, "--format", "dsse", "--key", key, "--insecure-ignore-tlog"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = crate::cli::att2ref(&[
        "get",
        &target,
        "--type",
        "custom",
        "--hint",
        "slsa-provenance",
        "--key",
        key,
        "--insecure-ignore-tlog",
        "--stats=json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, demo::content::ARTICLE_SLSA_TEXT, "exactly the attested bytes, from a DSSE referrer");
    assert_eq!(stats(&run)["answeredBy"], "referrer", "not the legacy fallback: {}", run.stderr);
}

/// Predicates written in ways `serde_json` would change (number spelling, escapes, whitespace, key
/// order): `get --emit predicate` gives the exact bytes of the signed statement, from the legacy `.att`,
/// from a bundle referrer and from a bare DSSE referrer.
#[tokio::test]
async fn the_predicate_is_emitted_exactly_as_signed() {
    use att2ref::demo::oci::{GO_ZERO_TIME, GeneratedLayer, legacy_manifest_and_config, subject_image};
    use att2ref::demo::{TestKey, dsse::sign_envelope};

    // (predicate type, the predicate as signed, what --emit predicate must give)
    const JSON: &str = "{ \"z\" : 1.0,\n\t\"a\" : [1e2, -0.0, 123456789012345678901234, 0.1E-3],\n  \"s\":\"caf\\u00e9 \\/ \\\"q\\\"\", \"o\" : {} }";
    const DATA_JSON: &str = "{\"b\" : 1E+2, \"a\":\"\\u00e9\"}";
    let data_json = format!("{{\"Data\": {DATA_JSON} ,\"Timestamp\":\"2023-03-14T16:20:31Z\"}}");
    let data_text = "{\"Data\":\"line \\u00e9\\n\\/\",\"Timestamp\":\"2023-03-14T16:21:07Z\"}";
    let cases: [(&str, &str, &[u8]); 3] = [
        ("https://example.test/exact/v1", JSON, JSON.as_bytes()),
        ("https://spdx.dev/Document", &data_json, DATA_JSON.as_bytes()),
        ("https://cosign.sigstore.dev/attestation/v1", data_text, "line é\n/".as_bytes()),
    ];
    for raw in [JSON, DATA_JSON] {
        let again = serde_json::to_string(&serde_json::from_str::<Value>(raw).unwrap()).unwrap();
        assert_ne!(again, raw, "serde_json must change it, or the test proves nothing");
    }

    let mut store = GeneratedRepo::new("exact/predicate");
    let image = subject_image("exact predicate bytes (att2ref test image)", "linux", "amd64", None);
    store.add_blob(image.config.clone());
    store.add_blob(image.layer.clone());
    let digest = store.add_manifest(image.manifest.clone(), mt::OCI_MANIFEST, &["v1".to_owned()]);
    let mut layers = Vec::new();
    for (predicate_type, predicate, _) in &cases {
        let payload = format!(
            "{{\"_type\":\"https://in-toto.io/Statement/v0.1\",\"predicateType\":\"{predicate_type}\",\"subject\":[{{\"name\":\"exact\",\"digest\":{{\"sha256\":\"{}\"}}}}],\"predicate\" : {predicate}\n}}",
            digest.hex()
        );
        let envelope = sign_envelope(payload.into_bytes(), &TestKey::Rsa4096.signer()).unwrap();
        let mut annotations = att2ref::model::oci::Annotations::new();
        annotations.insert("dev.cosignproject.cosign/signature".into(), String::new());
        layers.push(GeneratedLayer { media_type: mt::DSSE_ENVELOPE, bytes: envelope.bytes, annotations });
    }
    let (manifest, config) = legacy_manifest_and_config(&layers, GO_ZERO_TIME);
    store.add_blob(config);
    for l in &layers {
        store.add_blob(l.bytes.clone());
    }
    store.add_manifest(manifest, mt::OCI_MANIFEST, &[digest.cosign_tag("att")]);

    let registry = TestRegistry::distribution();
    let key = test_key();
    let check = |image: &str, answered_by: &str| {
        for (predicate_type, _, expected) in &cases {
            let run = crate::cli::att2ref(&[
                "get",
                "--plain-http",
                image,
                "--type",
                predicate_type,
                "--key",
                &key,
                "--insecure-ignore-tlog",
                "--stats=json",
            ]);
            assert_eq!(run.code, 0, "{predicate_type}: {}", run.stderr);
            assert_eq!(stats(&run)["answeredBy"], answered_by, "{predicate_type}");
            assert_eq!(run.stdout.as_bytes(), *expected, "{predicate_type} from {answered_by} ({image})");
        }
    };
    for (name, format) in [("exact/bundle", "bundle"), ("exact/dsse", "dsse")] {
        store.push_to(&registry.repository(name)).await.unwrap();
        let image = format!("{}/{name}@{digest}", registry.host);
        check(&image, "legacy");
        let run = crate::cli::att2ref(&[
            "migrate",
            "--plain-http",
            &image,
            "--format",
            format,
            "--key",
            &key,
            "--insecure-ignore-tlog",
            "-o",
            "json",
        ]);
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        assert_eq!(run.json()["totals"]["referrers_written"], 3, "{}", run.stdout);
        check(&image, "referrer");
    }
}
