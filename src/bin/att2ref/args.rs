//! Command-line definition: exactly what the user typed, nothing resolved yet.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Read, verify and migrate cosign legacy attestations into OCI 1.1 referrers.
#[derive(Debug, Parser)]
#[command(name = "att2ref", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Print nothing but results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show every signature, attestation and referrer attached to an image, legacy and new layouts.
    ///
    /// TARGET is an image reference (REGISTRY/REPO[:TAG][@DIGEST]) or an OCI layout
    /// (ocidir://PATH[:TAG|@DIGEST]); with --all-tags, a repository whose tagged images are all inspected.
    Inspect(InspectArgs),
    /// Verify every attestation and legacy signature of an image, with keys or keyless, fully offline.
    ///
    /// Checks each legacy .att layer, each .sig layer and each Sigstore-bundle or DSSE referrer: the
    /// signature, the subject digest, and (unless --insecure-ignore-tlog) the transparency-log entry; for
    /// certificates, the chain to the trusted root at signing time and the identity and issuer.
    Verify(VerifyArgs),
    /// Fetch ONE attestation by predicate type, downloading nothing else, verified.
    ///
    /// Referrers are chosen by their index annotations (dev.sigstore.bundle.predicateType, and
    /// dev.att2ref.content.hint for --hint), so only the chosen manifest and bundle are downloaded; the
    /// legacy .att is consulted only when referrers give nothing, reading only layers whose predicateType
    /// annotation matches (cosign < 2.0 wrote none: those layers must all be read). The newest match unless
    /// --all. Verified with the same flags as `verify`; exit 1 when nothing matches and verifies.
    Get(GetArgs),
    /// Turn each image's legacy .att into one verified Sigstore-bundle referrer per attestation.
    ///
    /// TARGET is an image (REGISTRY/REPO@DIGEST or :TAG), a repository (REGISTRY/REPO: every image with a
    /// sha256-*.att tag), a registry host with --all-repos, or an ocidir:// layout. Every layer is verified
    /// with the same flags as `verify`; an image is migrated all or nothing, read back and re-verified.
    /// Legacy tags are never modified. A rerun writes nothing.
    Migrate(MigrateArgs),
    /// Where each image stands: legacy-only, migrated, partly-migrated, referrers-only, orphaned or
    /// nothing-attached, with counts per repository and in total.
    ///
    /// TARGET as in `migrate`; a repository covers every image a legacy or referrers tag names and every
    /// tagged image. Reads manifests only (the image, the legacy .att, the referrers listing and each
    /// referrer's manifest): a legacy layer counts as migrated when a referrer carries att2ref's
    /// dev.att2ref.legacy.layer.digest annotation naming it. Also shows the bytes a consumer of one
    /// attestation downloads before and after, and what each consumer (cosign v2/v3, Kyverno,
    /// policy-controller, gh attestation verify) sees. Exit 0 when everything could be read, 2 otherwise.
    Status(StatusArgs),
    /// Remove the referrers `migrate` wrote, back to the legacy layout; never an attestation: dry run
    /// unless --apply.
    ///
    /// TARGET as in `migrate` (a repository: every image with a .att). A referrer goes only when its manifest
    /// carries att2ref's dev.att2ref.legacy.layer.digest annotation AND it is exactly what the image's legacy
    /// .att converts to now (its layer still there and verifying under the same flags as `verify`); anything
    /// else is kept, with the reason. An image whose conversion is not completely listed (a migrate in
    /// flight) is left alone. Without the referrers API, entries leave the tag-schema index first and an
    /// index left empty is deleted. Exit 0 when nothing failed.
    Rollback(RollbackArgs),
    /// Copy images to another registry, repository or layout, their attestations converted on the way.
    ///
    /// SRC and DST are an image (REGISTRY/REPO:TAG or @DIGEST), a repository (every tagged image), an
    /// ocidir:// layout, or with --all-repos registry hosts (DST may add a path prefix). Per image: the
    /// manifest or index with every platform, blobs streamed (mounted on one registry, skipped when DST has
    /// them), digests preserved; each legacy .att converted into verified Sigstore-bundle referrers (same
    /// trust flags as `verify`, all or nothing per image; --legacy keep|both to copy it as it is); .sig and
    /// .sbom tags and existing referrers (any type, and their referrers) copied as they are; tags last. A
    /// rerun writes nothing.
    Copy(CopyArgs),
    /// Remove what migration left behind, never an attestation: dry run unless --apply.
    ///
    /// Finds legacy .att manifests whose every layer has a migrated referrer that verifies now (same
    /// flags as `verify`) and carries the same payload; legacy tags, referrers and referrers indexes whose
    /// image is gone (a definite not-found); duplicate referrers; index entries naming missing
    /// manifests. TARGET as in `migrate`. With --apply, each removal is re-checked just before it is made;
    /// a digest another tag still holds is never deleted. Exit 0 when nothing failed.
    Prune(PruneArgs),
    /// Show what a registry really does: auth, catalog and tag paging, the referrers API and its filter.
    ///
    /// TARGET is REGISTRY or REGISTRY/REPO. Read-only by default (GET requests only). With --write-test
    /// (needs a repository) it also pushes a tiny test image tagged att2ref-probe-<random hex> and test
    /// referrers of it, checks whether they are listed, whether OCI-Subject is honest, whether an index is
    /// accepted as a subject, whether If-Match is enforced and in which order deletes work, then deletes
    /// everything it pushed. Exit 0 when the probe ran, whatever it found; 2 when the registry could not be
    /// reached or refused the credentials, or when --write-test could not remove a manifest or tag it wrote.
    Probe(ProbeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout: `att2ref man > att2ref.1`.
    Man,
    /// Build the embedded demo store (test keys only) in a temporary OCI layout, migrate it (showing what
    /// each attestation costs to download before and after) and inspect the result.
    Demo(DemoArgs),
}

/// `att2ref inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Image reference, repository (with --all-tags) or ocidir:// layout.
    pub target: String,

    /// Inspect every tagged image of the repository, plus orphaned legacy attachments.
    #[arg(long)]
    pub all_tags: bool,

    /// Read and digest-check every layer whole. By default only the first 2 KiB of a legacy .att layer
    /// larger than 4 KiB are read: enough for its predicate type and content hint (marked "from a
    /// prefix"), not for its subjects and signatures.
    #[arg(long)]
    pub full: bool,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `att2ref get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Image reference or ocidir:// layout (tag or digest; a digest saves one request).
    pub target: String,

    /// Predicate type: a cosign short name (custom, slsaprovenance, slsaprovenance02, slsaprovenance1, spdx,
    /// spdxjson, cyclonedx, vuln, openvex, link; custom matches both custom URIs) or a full URI: with a
    /// scheme (https:, urn:, …) or a scheme-less host/path as cosign 1.x wrote (cosign.sigstore.dev/…).
    /// Anything else is a usage error. Compared with the signed statement.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    pub predicate_type: String,

    /// Choose among matches by content hint (prefix of a hint id such as slsa-provenance-v0.2, spdx-2.2,
    /// cyclonedx, openvex). The hint is an UNSIGNED guess at the content: it only selects among
    /// attestations that match the signed type and verify, and never makes anything trusted.
    #[arg(long, value_name = "HINT")]
    pub hint: Option<String>,

    /// Every match, not only the newest: a JSON array on stdout (or --output), or files in --output-dir.
    #[arg(long)]
    pub all: bool,

    /// What to write: the predicate (byte for byte as signed; for cosign's custom wrapper, the original
    /// attested file), the in-toto statement, the DSSE envelope, or the Sigstore bundle (referrers only).
    #[arg(long, value_enum, default_value_t = EmitArg::Predicate)]
    pub emit: EmitArg,

    /// Write to FILE instead of stdout.
    #[arg(long, value_name = "FILE", conflicts_with = "output_dir")]
    pub output: Option<PathBuf>,

    /// Write each attestation to its own file in DIR (names built only from safe characters; existing
    /// files are never overwritten).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// On stderr: requests made, body bytes downloaded, and what the legacy path cost or would cost.
    #[arg(long, value_enum, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "text")]
    pub stats: Option<Format>,

    /// Skip verification (a warning is printed): the output may have been written by anyone with push
    /// access. Without it, get refuses to run with no verification material.
    #[arg(long, conflicts_with_all = ["keys", "trusted_root"])]
    pub unverified: bool,

    #[command(flatten)]
    pub trust: TrustArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// What `get` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EmitArg {
    /// The predicate, byte for byte as signed (original attested text for custom-wrapped predicates).
    Predicate,
    /// The in-toto statement (exact signed payload).
    Statement,
    /// The DSSE envelope.
    Envelope,
    /// The Sigstore bundle (referrers only).
    Bundle,
}

/// `att2ref verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Image reference or ocidir:// layout (tag or digest).
    pub target: String,

    /// Only attestations of this predicate type: a cosign short name (custom, slsaprovenance,
    /// slsaprovenance02, slsaprovenance1, spdx, spdxjson, cyclonedx, vuln, openvex, link) or a full URI:
    /// with a scheme (https:, urn:, …) or a scheme-less host/path as cosign 1.x wrote
    /// (cosign.sigstore.dev/…). Anything else is a usage error.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    pub predicate_type: Option<String>,

    #[command(flatten)]
    pub trust: TrustArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// What a batch command works on (migrate, prune).
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Images, repositories or ocidir:// layouts (registry hosts with --all-repos).
    #[arg(required_unless_present = "from_file")]
    pub targets: Vec<String>,

    /// Read more targets from FILE, one per line (blank lines and # comments ignored).
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,

    /// Targets are registry hosts: every repository of their catalog (GET /v2/_catalog).
    #[arg(long)]
    pub all_repos: bool,

    /// Only repositories in shard I of N (0-based): FNV-1a 64 of the repository name, modulo N.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<att2ref::targets::Shard>,
}

/// How legacy attestations become referrers: the flags `migrate` and `copy` share.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Referrer format: Sigstore bundles (cosign v3, GitHub) or zero-copy DSSE referrers.
    #[arg(long = "format", id = "referrer_format", value_enum, default_value_t = ReferrerFormatArg::Bundle)]
    pub referrer_format: ReferrerFormatArg,

    /// Rekor base URL to fetch inclusion proofs from (logged entries need one in v0.3 bundles). An
    /// explicit http:// URL allows plain HTTP to that host only.
    #[arg(long, value_name = "URL")]
    pub rekor_url: Option<String>,

    /// Convert the attestations of images whose legacy .sig does not verify under the policy (cosign >= 3
    /// would then verify such an image through its bundles only).
    #[arg(long)]
    pub allow_signature_switch: bool,

    /// What is read back after writing, before an image counts as done. `digest` (default): every
    /// referrer listed, its manifest byte-identical, its bundle blob present with the right size (HEAD);
    /// the bundle bytes were verified before upload and the registry checked their digest. In an OCI
    /// layout the bundle file is hashed against its digest (cheap on local files). A rerun writes again a
    /// bundle found missing or damaged this way. `full`: also download every bundle again and re-verify it
    /// (twice the reads). `prune` always does the full check before deleting anything.
    #[arg(long, value_enum, default_value_t = ReadBackArg::Digest)]
    pub readback: ReadBackArg,

    /// How long read-back waits, in seconds, for the referrers listing of the registry written to show
    /// what it accepted. Only a lagging or cached listing costs any of it (Quay cached listings up to
    /// 60 s); an image whose referrers are still not listed then fails, its legacy .att untouched.
    #[arg(long, value_name = "SECONDS", default_value_t = att2ref::rewrite::DEFAULT_LISTING_WAIT.as_secs())]
    pub listing_wait: u64,
}

/// `att2ref migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub targets: TargetArgs,

    /// Images migrated at once, across all repositories of the run.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,

    #[command(flatten)]
    pub convert: ConvertArgs,

    /// Also fill in missing artifactType/annotations of other tools' referrers-index entries (cosign#5098);
    /// att2ref's own entries are always filled in when found without them.
    #[arg(long)]
    pub repair_index: bool,

    /// Show the full plan and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Journal (JSON Lines): resume a run, skipping images recorded as migrated whose .att is unchanged.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,

    /// Write Prometheus metrics (text format) to FILE, atomically, for node-exporter's textfile collector.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,

    #[command(flatten)]
    pub trust: TrustArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `att2ref status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub targets: TargetArgs,

    /// Images read at once, across all repositories of the run.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,

    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write Prometheus metrics (text format) to FILE, atomically, for node-exporter's textfile collector.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,

    /// Also download each referrer that claims to convert a legacy layer, verify it (trust flags as in
    /// `verify`) and compare its payload with the layer's: a claim that does not hold converts nothing.
    #[arg(long)]
    pub verify: bool,

    #[command(flatten)]
    pub trust: TrustArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `att2ref rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub targets: TargetArgs,

    /// Remove. Without it, only the plan is shown.
    #[arg(long)]
    pub apply: bool,

    /// Images rolled back at once, across all repositories of the run.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,

    /// Rekor base URL the inclusion proofs were fetched from at migration (keyless attestations). An
    /// explicit http:// URL allows plain HTTP to that host only.
    #[arg(long, value_name = "URL")]
    pub rekor_url: Option<String>,

    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Audit journal (JSON Lines, appended): one line per image rolled back, with the referrers removed.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,

    #[command(flatten)]
    pub trust: TrustArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `att2ref copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// What to copy: an image, a repository, an ocidir:// layout, or a registry host with --all-repos.
    pub source: String,

    /// Where to: a repository (with :TAG for a single image), an ocidir:// layout, or with --all-repos a
    /// registry host, optionally with a path prefix (REGISTRY/PREFIX).
    pub destination: String,

    /// SRC is a registry host: copy every repository of its catalog.
    #[arg(long)]
    pub all_repos: bool,

    /// Only repositories in shard I of N (0-based), as in `migrate`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<att2ref::targets::Shard>,

    /// Images copied at once, across all repositories of the run.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,

    /// What becomes of legacy .att tags: converted into verified bundle referrers (default), copied as they
    /// are (keep), or both.
    #[arg(long, value_enum, default_value_t = LegacyArg::Convert)]
    pub legacy: LegacyArg,

    /// Only attestations of this predicate type (a cosign short name or a URI, as in `get`): legacy layers
    /// by their signed statement, referrers by the statement they hold. Everything else is left behind
    /// and reported.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    pub predicate_type: Option<String>,

    /// Only referrers of this artifact type.
    #[arg(long, value_name = "TYPE")]
    pub artifact_type: Option<String>,

    #[command(flatten)]
    pub convert: ConvertArgs,

    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Journal (JSON Lines): resume a run, skipping images recorded as copied that DST still serves.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,

    #[command(flatten)]
    pub trust: TrustArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// What `copy` does with legacy `.att` tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LegacyArg {
    /// Convert into verified Sigstore-bundle referrers.
    Convert,
    /// Copy as they are.
    Keep,
    /// Both.
    Both,
}

/// `att2ref prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub targets: TargetArgs,

    /// Delete. Without it, only the plan is shown (what, why, size).
    #[arg(long, conflicts_with = "dry_run")]
    pub apply: bool,

    /// Show the plan and delete nothing (the default; for explicit scripts).
    #[arg(long)]
    pub dry_run: bool,

    /// Repositories pruned at once (each one's removals stay in order).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,

    /// Also delete orphans (legacy tags, referrers and referrers indexes whose image is absent from
    /// their repository) — but only those whose image is definitely absent (404) from EVERY repository
    /// searched: the registry's whole catalog (listed again right before deleting), or the
    /// --search-repository list. A refused or incomplete catalog, a 401/403/5xx anywhere keeps the orphan
    /// as could-not-check. Only what the credentials can see is searched, and never another registry: do
    /// not use this flag where images live on another registry than their attachments. Without it orphans
    /// are reported and kept (cosign's COSIGN_REPOSITORY stores attachments apart from their images).
    /// Costs one manifest GET per repository per orphaned image, when planning and again before deleting.
    #[arg(long)]
    pub delete_orphans: bool,

    /// With --delete-orphans: search these repositories (host/name or ocidir://PATH; repeat the flag or
    /// separate with commas) instead of the registry's catalog, for registries that refuse /v2/_catalog.
    /// The pruned repository is always searched too. Each must exist (a mistyped name is a usage error).
    #[arg(long = "search-repository", value_name = "REPO", value_delimiter = ',', requires = "delete_orphans")]
    pub search_repositories: Vec<String>,

    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Audit journal (JSON Lines, appended): one line per removal attempted with --apply, written as it
    /// happens, so an interrupted run still leaves a record.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,

    /// Write Prometheus metrics (text format) to FILE, atomically, for node-exporter's textfile collector.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,

    #[command(flatten)]
    pub trust: TrustArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Referrer formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReferrerFormatArg {
    /// One Sigstore bundle v0.3 per DSSE signature.
    Bundle,
    /// One DSSE referrer per layer, reusing the legacy envelope blob.
    Dsse,
}

/// Read-back depths of `migrate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReadBackArg {
    /// Listing, byte-identical manifest, blob present with its size (in a layout: hashed).
    Digest,
    /// Also download and re-verify every bundle.
    Full,
}

/// A `--type` value: a short name or a URI (anything else would silently match nothing).
pub fn parse_type(s: &str) -> Result<String, String> {
    att2ref::model::predicate::check_type_query(s).map(|()| s.to_owned()).map_err(|e| e.to_string())
}

/// Parse `I/N` with I < N.
pub fn parse_shard(s: &str) -> Result<att2ref::targets::Shard, String> {
    att2ref::targets::Shard::parse(s).map_err(|e| e.to_string())
}

/// What to trust (the same flags as cosign).
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Trusted public key (PEM SPKI: ECDSA P-256/384/521, Ed25519, RSA 2048–8192). Repeatable.
    /// KMS URIs are not fetched: export the key first (`cosign public-key --key URI > key.pub`).
    #[arg(long = "key", value_name = "PATH")]
    pub keys: Vec<String>,

    /// Sigstore trusted_root.json (Fulcio CAs, Rekor keys) for keyless verification, fully offline.
    #[arg(long, value_name = "PATH")]
    pub trusted_root: Option<PathBuf>,

    /// Certificate identity (SAN) that must match exactly.
    #[arg(long, value_name = "IDENTITY", conflicts_with = "certificate_identity_regexp")]
    pub certificate_identity: Option<String>,

    /// Regular expression the certificate identity (SAN) must match.
    #[arg(long, value_name = "REGEX")]
    pub certificate_identity_regexp: Option<String>,

    /// OIDC issuer (Fulcio certificate extension) that must match exactly.
    #[arg(long, value_name = "URL", conflicts_with = "certificate_oidc_issuer_regexp")]
    pub certificate_oidc_issuer: Option<String>,

    /// Regular expression the OIDC issuer must match.
    #[arg(long, value_name = "REGEX")]
    pub certificate_oidc_issuer_regexp: Option<String>,

    /// Do not check the transparency log. The only way to accept an attestation without a log entry
    /// (such as one signed with a KMS key and never logged); results then say no log was checked.
    #[arg(long)]
    pub insecure_ignore_tlog: bool,
}

/// `att2ref demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo layout in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// `att2ref probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// REGISTRY or REGISTRY/REPO (no tag or digest).
    pub target: String,

    /// Push a test image and referrers to REPO, check what the registry does with them, and remove them.
    #[arg(long)]
    pub write_test: bool,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Output format.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format: a tree for people, or one JSON document.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable tree.
    Text,
    /// One JSON document (see schemas/).
    Json,
}

/// How to reach registries.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Allow plain HTTP (no TLS) to registries. Off by default.
    #[arg(long)]
    pub plain_http: bool,

    /// Skip TLS certificate verification. Off by default; prefer --ca-file.
    #[arg(long)]
    pub insecure: bool,

    /// Also trust the CA certificates in this PEM file (repeatable), for registries with a private CA.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Vec<PathBuf>,

    /// Repository holding the images' legacy signature/attestation tags and referrers, when not the
    /// images' own (cosign's COSIGN_REPOSITORY, which is read when this is not given): REGISTRY/REPO.
    #[arg(long, value_name = "REPO")]
    pub attachments_repository: Option<String>,

    /// Registry user name (the password is read from stdin with --password-stdin), for the one registry
    /// the run reaches (targets, attachments and search repositories), or the one --credentials-for
    /// names. It is never sent to another registry.
    #[arg(short = 'u', long, requires = "password_stdin", env = "ATT2REF_USERNAME")]
    pub username: Option<String>,

    /// The registry that -u/--password-stdin log in to (as references name it: ghcr.io,
    /// registry.example.com:5000), when the targets name several (copy between two registries, a target
    /// list spanning hosts). The other registries use the credentials files, or go anonymous.
    #[arg(long, value_name = "REGISTRY", requires = "username")]
    pub credentials_for: Option<String>,

    /// Read the registry password or token from standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,

    /// Docker-style credentials file to use instead of the default locations
    /// ($DOCKER_CONFIG/config.json, ~/.docker/config.json, $REGISTRY_AUTH_FILE).
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,

    /// Largest layer blob to download, in bytes (suffixes K, M, G, KiB, MiB, GiB).
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub max_blob_size: u64,

    /// Largest total of one image's legacy .att and .sig layers, read and held together while the image is
    /// verified and converted, in bytes (suffixes as above).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub max_legacy_size: u64,

    /// Largest manifest or index to read, in bytes (suffixes as above).
    #[arg(long, value_name = "SIZE", default_value = "4MiB", value_parser = parse_size)]
    pub max_manifest_size: u64,

    /// Attempts per request on 502, 503, 504, 500 on idempotent requests, and connection errors. 429
    /// answers are not counted: they are waited out for up to 180 s of waits per request.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub retries: u32,

    /// Timeout for one HTTP request, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub timeout: u64,

    /// Most requests in flight to one registry at once, whatever --jobs is. A 429 answer pauses every
    /// request to that registry for the wait it asks for and halves this number; it grows back as
    /// answers succeed.
    #[arg(long, value_name = "N", default_value_t = att2ref::store::registry::DEFAULT_CONCURRENT_REQUESTS as u16,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrent_requests: u16,
}

/// Parse `123`, `4K`, `64MiB`, `1G` into bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a size (e.g. 4194304, 4MiB, 64M)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} in {s:?}")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("10"), Ok(10));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert_eq!(parse_size("x"), Err(r#""x" is not a size (e.g. 4194304, 4MiB, 64M)"#.into()));
        assert_eq!(parse_size("1T"), Err(r#"unknown size unit "t" in "1T""#.into()));
        assert_eq!(parse_size("17179869184G"), Err(r#""17179869184G" is too large"#.into()));
    }

    #[test]
    fn shards() {
        use att2ref::targets::Shard;
        assert_eq!(parse_shard("0/4"), Ok(Shard::new(0, 4).unwrap()));
        assert_eq!(parse_shard("3/4"), Ok(Shard::new(3, 4).unwrap()));
        assert_eq!(parse_shard("4/4"), Err("shard 4/4: the index must be below the count".into()));
        assert_eq!(parse_shard("0/0"), Err("shard 0/0: the index must be below the count".into()));
        assert_eq!(parse_shard("x"), Err(r#"shard "x": no '/' (expected I/N, e.g. 0/4)"#.into()));
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
