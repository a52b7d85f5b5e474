//! Turning arguments and the environment into library objects: logging, registry client, targets.
//! This is the only place that reads environment variables.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use att2ref::Limits;
use att2ref::convert::OutputFormat;
use att2ref::model::reference::{ImageReference, Reference};
use att2ref::model::trust::TrustedRoot;
use att2ref::rewrite::{MigrateOptions, ReadBack, RekorClient};
use att2ref::store::AnyRepository;
use att2ref::store::attachments::{COSIGN_REPOSITORY, parse_repository};
use att2ref::store::layout::LayoutRepository;
use att2ref::store::registry::{
    ClientConfig, ConfigEnv, Credential, CredentialSource, PlainHttp, RegistryClient, config_search_paths,
};
use att2ref::verification::{CertificateIdentity, Matcher, Policy, PublicKey, Verifier, reject_kms_reference};
use att2ref::verify::report::PolicySummary;

use crate::args::{ConvertArgs, ReadBackArg, ReferrerFormatArg, RegistryArgs, TargetArgs, TrustArgs};
use crate::exit::usage;

/// Log to stderr: `RUST_LOG` if set, else by `-v` count.
pub fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "att2ref=info",
        (_, 2) => "att2ref=debug",
        _ => "att2ref=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// Caps from the arguments.
pub fn limits(args: &RegistryArgs) -> Limits {
    Limits {
        max_blob_bytes: args.max_blob_size,
        max_legacy_bytes: args.max_legacy_size,
        max_manifest_bytes: args.max_manifest_size,
        ..Limits::default()
    }
}

/// A registry client configured from the arguments and the environment, for a command whose targets
/// name `registries` (see [`registries_of`]): `-u` logs in to the one they name.
pub fn registry_client(args: &RegistryArgs, registries: &[String]) -> Result<RegistryClient> {
    registry_client_with(args, &[], registries)
}

/// The registries that `targets` name, in order, each once: the registry of each image or repository
/// reference, or each host with `--all-repos`; layouts name none, and a target that does not parse is
/// left to the command to report.
pub fn registries_of(targets: &[String], all_repos: bool) -> Vec<String> {
    let mut registries: Vec<String> = Vec::new();
    for target in targets {
        let registry = if all_repos {
            Some(target.trim_end_matches('/').to_owned()).filter(|_| !target.starts_with("ocidir://"))
        } else {
            match Reference::parse(target) {
                Ok(Reference::Registry(r)) => Some(r.registry().to_owned()),
                _ => None,
            }
        };
        if let Some(registry) = registry {
            add_registry(&mut registries, &registry);
        }
    }
    registries
}

/// Add `registry` to `registries` unless it is one of them already, under another of its names.
pub fn add_registry(registries: &mut Vec<String>, registry: &str) {
    let key = registry_key(registry);
    if !registries.iter().any(|r| registry_key(r) == key) {
        registries.push(registry.to_owned());
    }
}

/// A registry as the credential is keyed by: no scheme or trailing slash, Docker Hub's aliases as
/// `docker.io`.
fn registry_key(registry: &str) -> String {
    let bare = registry.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/');
    match bare {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        other => other.to_owned(),
    }
}

/// The registry `-u` logs in to: `--credentials-for`, which must be one of the run's, else the one
/// registry the run reaches. Several, or a `--credentials-for` that is none of them, is a usage error: a
/// password must never reach a registry it was not meant for, nor a token service that registry names,
/// and one that goes nowhere must not leave the run anonymous without a word.
fn credentials_registry(args: &RegistryArgs, registries: &[String]) -> Result<String> {
    let usage = |why: String| anyhow::Error::msg(crate::exit::Usage(why));
    if let Some(registry) = &args.credentials_for {
        let key = registry_key(registry);
        if registries.iter().any(|r| registry_key(r) == key) {
            return Ok(key);
        }
        return Err(usage(format!(
            "--credentials-for {registry}: no target (or attachments or search repository) of this run is on \
             that registry; they are on: {}",
            if registries.is_empty() { "none (layouts only)".to_owned() } else { registries.join(", ") }
        )));
    }
    match registries {
        [] => Err(usage(
            "-u/--password-stdin: no target (or attachments or search repository) of this run is on a registry"
                .to_owned(),
        )),
        [one] => Ok(registry_key(one)),
        several => Err(usage(format!(
            "-u/--password-stdin log in to one registry, and this run reaches {}: {}; say which with \
             --credentials-for REGISTRY (the others use the credentials files, or go anonymous)",
            several.len(),
            several.join(", ")
        ))),
    }
}

/// The registry client and, with `--rekor-url`, the Rekor client on it (same retries, CA files and
/// timeouts). An explicit `http://` Rekor URL is the user's choice of plain HTTP for that host only.
pub fn registry_and_rekor(
    args: &RegistryArgs,
    rekor_url: Option<&str>,
    registries: &[String],
) -> Result<(RegistryClient, Option<RekorClient>)> {
    let plain_http: Vec<String> = rekor_url
        .and_then(|u| url::Url::parse(u).ok())
        .filter(|u| u.scheme() == "http")
        .and_then(|u| u.host_str().map(|h| u.port().map_or_else(|| h.to_owned(), |p| format!("{h}:{p}"))))
        .into_iter()
        .collect();
    let client = registry_client_with(args, &plain_http, registries)?;
    let rekor = rekor_url.map(|url| RekorClient::new(url, client.clone())).transpose().context("--rekor-url")?;
    Ok((client, rekor))
}

/// What the conversion flags ask of `migrate` and `copy`, `jobs` images at once.
pub fn convert_options(
    args: &ConvertArgs,
    registry: &RegistryArgs,
    rekor: Option<RekorClient>,
    jobs: u32,
) -> MigrateOptions {
    MigrateOptions {
        format: match args.referrer_format {
            ReferrerFormatArg::Bundle => OutputFormat::Bundle,
            ReferrerFormatArg::Dsse => OutputFormat::Dsse,
        },
        limits: limits(registry),
        allow_signature_switch: args.allow_signature_switch,
        rekor,
        jobs: jobs as usize,
        readback: match args.readback {
            ReadBackArg::Digest => ReadBack::Digest,
            ReadBackArg::Full => ReadBack::Full,
        },
        listing_wait: std::time::Duration::from_secs(args.listing_wait),
        ..MigrateOptions::default()
    }
}

/// A registry client that also speaks plain HTTP to `plain_http_hosts` (`host[:port]`): the hosts of
/// URLs the user gave with an explicit `http://` scheme, such as `--rekor-url`.
fn registry_client_with(
    args: &RegistryArgs,
    plain_http_hosts: &[String],
    registries: &[String],
) -> Result<RegistryClient> {
    let env_path = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let credentials = match &args.authfile {
        Some(file) => CredentialSource::ConfigFiles(vec![file.clone()]),
        None => CredentialSource::ConfigFiles(config_search_paths(&ConfigEnv {
            registry_auth_file: env_path("REGISTRY_AUTH_FILE"),
            docker_config: env_path("DOCKER_CONFIG"),
            xdg_runtime_dir: env_path("XDG_RUNTIME_DIR"),
            home: env_path("HOME"),
        })),
    };
    let explicit = match (&args.username, args.password_stdin) {
        (Some(username), true) => {
            // The attachments repository is reached with the same client: its registry is one of the run's.
            let mut reached = registries.to_vec();
            if let Some(a) = attachments(args)? {
                add_registry(&mut reached, a.registry());
            }
            let registry = credentials_registry(args, &reached)?;
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password).context("reading the password from stdin")?;
            let password = password.trim_end_matches(['\n', '\r']).to_owned();
            if password.is_empty() {
                bail!("--password-stdin: standard input was empty");
            }
            BTreeMap::from([(registry, Credential::Basic { username: username.clone(), password })])
        }
        _ => BTreeMap::new(),
    };
    let ca_certificates = args
        .ca_file
        .iter()
        .map(|f| std::fs::read(f).with_context(|| format!("--ca-file {}", f.display())))
        .collect::<Result<Vec<_>>>()?;
    let mut config = ClientConfig {
        plain_http: match (args.plain_http, plain_http_hosts) {
            (true, _) => PlainHttp::All,
            (false, []) => PlainHttp::Never,
            (false, hosts) => PlainHttp::Hosts(hosts.to_vec()),
        },
        insecure: args.insecure,
        ca_certificates,
        credentials,
        explicit_credentials: explicit,
        limits: limits(args),
        user_agent: format!("att2ref/{}", env!("CARGO_PKG_VERSION")),
        request_timeout: Some(std::time::Duration::from_secs(args.timeout)),
        max_concurrent_requests: usize::from(args.concurrent_requests),
        ..ClientConfig::default()
    };
    config.retry.max_attempts = args.retries.max(1);
    RegistryClient::new(config).context("setting up the registry client")
}

/// Open the repository a reference names, and the tag or digest within it (if any).
pub fn open(reference: &Reference, args: &RegistryArgs) -> Result<(AnyRepository, Option<String>)> {
    match reference {
        Reference::Registry(r) => {
            let client = registry_client(args, &[r.registry().to_owned()])?;
            let repo = registry_repository(&client, r, args)?;
            Ok((repo, r.manifest_reference()))
        }
        Reference::Layout(l) => {
            if let Some(a) = attachments(args)? {
                return Err(anyhow::Error::msg(crate::exit::Usage(format!(
                    "{}: an OCI layout keeps its own attachments; the attachments repository {} applies to \
                     registry repositories only (drop --attachments-repository, or unset $COSIGN_REPOSITORY, for layouts)",
                    l.path().display(),
                    a.name()
                ))));
            }
            let repo = LayoutRepository::open(l.path(), limits(args))
                .with_context(|| format!("opening OCI layout {}", l.path().display()))?;
            Ok((AnyRepository::Layout(repo), l.manifest_reference()))
        }
    }
}

/// The repository an image reference names, with its attachments where the arguments or the
/// environment keep them.
pub fn registry_repository(client: &RegistryClient, r: &ImageReference, args: &RegistryArgs) -> Result<AnyRepository> {
    let repo = AnyRepository::Registry(client.repository(r.registry(), r.repository()));
    match attachments(args)? {
        Some(a) => Ok(repo.with_attachments_in(client.repository(a.registry(), a.repository()))?),
        None => Ok(repo),
    }
}

/// The attachments repository: `--attachments-repository`, else cosign's `COSIGN_REPOSITORY` when set and
/// not empty (cosign ignores an empty value too). Said once on stderr, with where it came from, since it
/// changes where everything attached is read and written.
pub fn attachments(args: &RegistryArgs) -> Result<Option<ImageReference>> {
    static SAID: std::sync::Once = std::sync::Once::new();
    let (value, from) = match &args.attachments_repository {
        Some(v) => (v.clone(), "--attachments-repository".to_owned()),
        None => match std::env::var(COSIGN_REPOSITORY) {
            Ok(v) if !v.is_empty() => (v, format!("${COSIGN_REPOSITORY}")),
            _ => return Ok(None),
        },
    };
    let parsed = usage(parse_repository(&value), || format!("parsing {from}"))?;
    SAID.call_once(|| {
        eprintln!("note: attachments (legacy tags and referrers) are in {} (from {from})", parsed.name());
    });
    Ok(Some(parsed))
}

/// How the batch commands resolve `targets` (those given and those of the list file).
pub fn target_options(
    args: &TargetArgs,
    registry: &RegistryArgs,
    targets: &[String],
) -> Result<att2ref::targets::TargetOptions> {
    let options = att2ref::targets::TargetOptions {
        all_repos: args.all_repos,
        shard: args.shard,
        limits: limits(registry),
        attachments: attachments(registry)?,
        shared_attachments: None,
    };
    Ok(options.share_attachments(targets))
}

/// The images with attachments in a shared attachments repository that no repository of the run tags
/// or names, said once on stderr (they were left alone). `failed`: some target or listing failed, so
/// some of them may be in a repository that could not be listed.
pub fn unclaimed_attachments(
    options: &att2ref::targets::TargetOptions,
    failed: bool,
) -> Vec<att2ref::store::attachments::UnclaimedImage> {
    let (Some(shared), Some(a)) = (&options.shared_attachments, &options.attachments) else { return Vec::new() };
    let left = shared.unclaimed().unwrap_or_default();
    if !left.is_empty() {
        let shown: Vec<String> = left.iter().take(3).map(|u| u.image.to_string()).collect();
        let more =
            if left.len() > shown.len() { format!(" and {} more", left.len() - shown.len()) } else { String::new() };
        let why = if failed { ", repositories that could not be listed" } else { "" };
        eprintln!(
            "warning: {} image(s) with attachments in {} are tagged or named by no repository this run covered \
             (untagged images, repositories outside the run or its shard{why}) and were left alone: {}{more}; \
             name one as IMAGE_REPOSITORY@DIGEST to work on it",
            left.len(),
            a.name(),
            shown.join(", ")
        );
    }
    left
}

/// A verifier from the trust flags.
pub fn verifier(trust: &TrustArgs) -> Result<(Arc<Verifier>, PolicySummary)> {
    let mut policy = Policy::new().insecure_ignore_tlog(trust.insecure_ignore_tlog);
    let mut summary = PolicySummary { insecure_ignore_tlog: trust.insecure_ignore_tlog, ..PolicySummary::default() };
    // A key or root that cannot be read or parsed is a usage error (exit 2), not data failing a check.
    for key in &trust.keys {
        usage(reject_kms_reference(key), || format!("--key {key}"))?;
        let pem = usage(std::fs::read(key), || format!("reading --key {key}"))?;
        let key = usage(PublicKey::from_pem(&pem), || format!("--key {key}"))?;
        summary.keys.push(key.key_id().to_owned());
        policy = policy.with_key(key);
    }
    if let Some(path) = &trust.trusted_root {
        let bytes = usage(std::fs::read(path), || format!("reading --trusted-root {}", path.display()))?;
        let root = usage(TrustedRoot::parse(&bytes), || format!("--trusted-root {}", path.display()))?;
        policy = policy.with_trusted_root(root);
        summary.trusted_root = true;
    }
    let identity = match (&trust.certificate_identity, &trust.certificate_identity_regexp) {
        (Some(exact), _) => Some(Matcher::exact(exact)),
        (None, Some(re)) => Some(Matcher::regex(re).context("--certificate-identity-regexp")?),
        (None, None) => None,
    };
    let issuer = match (&trust.certificate_oidc_issuer, &trust.certificate_oidc_issuer_regexp) {
        (Some(exact), _) => Some(Matcher::exact(exact)),
        (None, Some(re)) => Some(Matcher::regex(re).context("--certificate-oidc-issuer-regexp")?),
        (None, None) => None,
    };
    match (identity, issuer) {
        (Some(identity), Some(issuer)) => {
            if trust.trusted_root.is_none() {
                bail!(
                    "--certificate-identity/--certificate-oidc-issuer need --trusted-root to check certificates against"
                );
            }
            summary.identities.push(format!(
                "identity {} issued by {}",
                trust.certificate_identity.as_deref().or(trust.certificate_identity_regexp.as_deref()).unwrap_or(""),
                trust
                    .certificate_oidc_issuer
                    .as_deref()
                    .or(trust.certificate_oidc_issuer_regexp.as_deref())
                    .unwrap_or("")
            ));
            policy = policy.with_identity(CertificateIdentity::new(identity, issuer));
        }
        (None, None) => {}
        _ => bail!("keyless verification needs both a certificate identity and an OIDC issuer (exact or regexp)"),
    }
    if trust.keys.is_empty() && trust.trusted_root.is_none() {
        bail!(
            "nothing to verify with: give --key PATH and/or --trusted-root PATH with --certificate-identity and --certificate-oidc-issuer"
        );
    }
    let verifier = Verifier::new(policy).context("verification policy")?;
    Ok((Arc::new(verifier), summary))
}
