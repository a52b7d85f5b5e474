//! Real registries for integration tests: CNCF distribution 2.8.2 (no referrers API) and
//! ferro-oci-server (referrers API). Each instance gets a free loopback port and its own temporary
//! storage, and is stopped by PID when dropped. `scripts/test` installs both binaries.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use att2ref::store::registry::{ClientConfig, PlainHttp, RegistryClient, RetryPolicy};

/// User of [`TestRegistry::distribution_with_basic_auth`].
pub const TEST_USER: &str = "robot";
/// Its password (test-only).
pub const TEST_PASSWORD: &str = "test-only-password";
const TEST_HTPASSWD: &str = "robot:$2a$05$Yoe.AOhzY/YJ8jqW7plpf.o/VbVpJDAzZdDaIykZeJHUQ3SAQT85.";

/// Which registry implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryKind {
    /// CNCF distribution 2.8.2 (Debian `docker-registry`).
    Distribution,
    /// ferro-oci-server 1.0.
    Ferro,
}

/// A running registry, stopped on drop.
pub struct TestRegistry {
    pub kind: RegistryKind,
    /// `127.0.0.1:PORT`.
    pub host: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Start CNCF distribution with filesystem storage and deletes enabled.
    pub fn distribution() -> TestRegistry {
        Self::distribution_with(DistributionConfig::default())
    }

    /// Start CNCF distribution with deletes disabled, as many production registries run it: a manifest
    /// DELETE answers 405 UNSUPPORTED.
    pub fn distribution_without_deletes() -> TestRegistry {
        Self::distribution_with(DistributionConfig { deletes: false, ..DistributionConfig::default() })
    }

    /// Start CNCF distribution requiring basic auth (htpasswd): user [`TEST_USER`], password
    /// [`TEST_PASSWORD`] (test-only credentials; the bcrypt hash below was made from them).
    pub fn distribution_with_basic_auth() -> TestRegistry {
        Self::distribution_with(DistributionConfig { htpasswd: Some(TEST_HTPASSWD), ..DistributionConfig::default() })
    }

    /// Start CNCF distribution as configured.
    pub fn distribution_with(config: DistributionConfig) -> TestRegistry {
        let bin = find_binary("docker-registry")
            .unwrap_or_else(|| missing("docker-registry", "CNCF distribution 2.8.2, Debian package docker-registry"));
        let tls = config.tls.is_some();
        let temp_in = config.temp_in.clone();
        Self::start(RegistryKind::Distribution, tls, temp_in, move |dir, port| {
            let data = dir.join("data");
            if let Some(seed) = &config.storage_from {
                copy_tree(seed, &data).expect("copying the seed storage");
            }
            let yaml_path = dir.join("config.yml");
            let mut yaml = format!(
                "version: 0.1\nlog:\n  level: {}\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                config.log_level,
                data.display(),
                config.deletes
            );
            if let Some((cert, key)) = &config.tls {
                yaml.push_str(&format!("  tls:\n    certificate: {}\n    key: {}\n", cert.display(), key.display()));
            }
            if let Some(max) = config.catalog_max_entries {
                yaml.push_str(&format!("catalog:\n  maxentries: {max}\n"));
            }
            if let Some(line) = config.htpasswd {
                let file = dir.join("htpasswd");
                std::fs::write(&file, format!("{line}\n")).expect("writing htpasswd");
                yaml.push_str(&format!("auth:\n  htpasswd:\n    realm: att2ref-test\n    path: {}\n", file.display()));
            }
            std::fs::write(&yaml_path, yaml).expect("writing the registry config");
            let mut cmd = Command::new(&bin);
            cmd.arg("serve").arg(&yaml_path);
            cmd
        })
    }

    /// Start ferro-oci-server with storage in a temporary directory.
    pub fn ferro() -> TestRegistry {
        let bin = find_binary("ferro-oci-server")
            .unwrap_or_else(|| missing("ferro-oci-server", "crates.io ferro-oci-server 1.0.0"));
        Self::start(RegistryKind::Ferro, false, None, |dir, port| {
            let mut cmd = Command::new(&bin);
            cmd.env("FERRO_OCI_LISTEN", format!("127.0.0.1:{port}")).env("FERRO_OCI_STORAGE_DIR", dir.join("data"));
            cmd
        })
    }

    fn start(
        kind: RegistryKind,
        tls: bool,
        temp_in: Option<PathBuf>,
        command: impl Fn(&Path, u16) -> Command,
    ) -> TestRegistry {
        let mut last_log = String::new();
        // A port found free can be taken before the registry binds it: try a few.
        for _ in 0..3 {
            let dir = match &temp_in {
                Some(parent) => tempfile::tempdir_in(parent),
                None => tempfile::tempdir(),
            }
            .expect("creating a temp dir");
            std::fs::create_dir_all(dir.path().join("data")).expect("creating registry storage");
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("registry.log")).expect("creating the registry log");
            let mut cmd = command(dir.path(), port);
            cmd.stdin(Stdio::null()).stdout(log.try_clone().expect("cloning the log handle")).stderr(log);
            let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {kind:?} registry: {e}"));
            let mut registry = TestRegistry { kind, host: format!("127.0.0.1:{port}"), child, dir };
            if registry.wait_ready(tls, Duration::from_secs(30)) {
                return registry;
            }
            last_log = std::fs::read_to_string(registry.dir.path().join("registry.log")).unwrap_or_default();
        }
        panic!("{kind:?} registry did not start; its log:\n{last_log}");
    }

    /// Poll `GET /v2/` until it answers; false if the process exits or time runs out. A TLS listener
    /// answers this plain-HTTP probe with a 400, which is enough to know it is up.
    fn wait_ready(&mut self, tls: bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut stream) = TcpStream::connect(&self.host) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let request = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.host);
                let mut answer = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut answer).is_ok()
                    // 401: a registry that requires credentials is up too.
                    && (["HTTP/1.1 200", "HTTP/1.0 200", "HTTP/1.1 401", "HTTP/1.0 401"].iter().any(|s| answer.starts_with(s))
                        || (tls && answer.starts_with("HTTP/1.0 400")))
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The registry's storage directory (distribution: its filesystem driver root), for tests that
    /// plant data a well-behaved registry would refuse, or copy a seeded state.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Where the registry's stdout and stderr go (distribution writes its access log there at `info`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// A repository of this registry through [`TestRegistry::client`].
    pub fn repository(&self, name: &str) -> att2ref::store::registry::RegistryRepository {
        self.client().repository(&self.host, name)
    }

    /// Whether this implementation serves the referrers API.
    pub fn has_referrers_api(&self) -> bool {
        self.kind == RegistryKind::Ferro
    }

    /// For messages.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            RegistryKind::Distribution => "distribution 2.8.2",
            RegistryKind::Ferro => "ferro-oci-server",
        }
    }

    /// A plain-HTTP client for this registry with quick retries.
    pub fn client(&self) -> RegistryClient {
        self.client_with(|_| {})
    }

    /// Like [`TestRegistry::client`], after `adjust` has changed the configuration.
    pub fn client_with(&self, adjust: impl FnOnce(&mut ClientConfig)) -> RegistryClient {
        let mut config = ClientConfig {
            plain_http: PlainHttp::Hosts(vec![self.host.clone()]),
            retry: RetryPolicy {
                max_attempts: 3,
                base_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(200),
                throttled_patience: Duration::from_secs(2),
            },
            ..ClientConfig::default()
        };
        adjust(&mut config);
        RegistryClient::new(config).expect("building a registry client")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        // Child::kill signals exactly this PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to start distribution.
#[derive(Clone, Debug)]
pub struct DistributionConfig {
    /// One htpasswd line: require basic auth.
    pub htpasswd: Option<&'static str>,
    /// Whether manifest and blob DELETE are enabled.
    pub deletes: bool,
    /// Serve HTTPS with this certificate and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Start over a copy of this storage directory (another instance's [`TestRegistry::storage_dir`]).
    pub storage_from: Option<PathBuf>,
    /// distribution's log level (`info` includes the access log).
    pub log_level: &'static str,
    /// Create the instance's directory (config and storage) under this one instead of the system's
    /// temporary directory (a RAM disk makes storage of many small files quick to copy and remove).
    pub temp_in: Option<PathBuf>,
    /// `catalog.maxentries`: the most repositories a catalog page may hold (a larger `n` is refused).
    pub catalog_max_entries: Option<usize>,
}

impl Default for DistributionConfig {
    fn default() -> Self {
        DistributionConfig {
            htpasswd: None,
            deletes: true,
            tls: None,
            storage_from: None,
            log_level: "warn",
            temp_in: None,
            catalog_max_entries: None,
        }
    }
}

/// Copy a directory tree (files and directories only; distribution's storage has nothing else).
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("finding a free loopback port")
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(cargo_home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(cargo_home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo").join("bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn missing(binary: &str, what: &str) -> ! {
    panic!("`{binary}` ({what}) is not installed or not on PATH: run scripts/test, which installs it");
}
