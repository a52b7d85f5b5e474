//! Registry credentials: docker / containers config files and credential helpers.
//!
//! The library never reads environment variables: [`ConfigEnv`] carries the values that decide where
//! config files live, and the CLI fills it in.

use std::fmt;
use std::path::{Path, PathBuf};

use docker_credential::{CredentialRetrievalError, DockerCredential};

use crate::error::{Error, ErrorKind, Result};

/// A credential for one registry. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Username and password (or a personal access token used as one).
    Basic {
        /// User name.
        username: String,
        /// Password or token.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken` in docker config), exchanged with a POST.
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic {{ username: {username:?}, password: <redacted> }}"),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// Where credentials are looked up when no explicit credential is configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CredentialSource {
    /// No lookup: anonymous unless an explicit credential is given.
    #[default]
    Anonymous,
    /// Docker-format config files, tried in order; the first with an entry for the registry wins.
    /// Missing files are skipped. See [`config_search_paths`].
    ConfigFiles(Vec<PathBuf>),
}

/// The environment values that decide where config files are, passed in by the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigEnv {
    /// `$REGISTRY_AUTH_FILE` (containers tools).
    pub registry_auth_file: Option<PathBuf>,
    /// `$DOCKER_CONFIG` (a directory holding `config.json`).
    pub docker_config: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR` (holds `containers/auth.json`).
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `$HOME`.
    pub home: Option<PathBuf>,
}

/// Config files to search, most explicit first: `$REGISTRY_AUTH_FILE`, then the docker config
/// (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), then the containers auth files
/// (`$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`).
pub fn config_search_paths(env: &ConfigEnv) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    paths.extend(env.registry_auth_file.clone());
    match (&env.docker_config, &env.home) {
        (Some(dir), _) => paths.push(dir.join("config.json")),
        (None, Some(home)) => paths.push(home.join(".docker").join("config.json")),
        (None, None) => {}
    }
    paths.extend(env.xdg_runtime_dir.as_ref().map(|d| d.join("containers").join("auth.json")));
    paths.extend(env.home.as_ref().map(|h| h.join(".config").join("containers").join("auth.json")));
    paths
}

/// The keys a registry's credentials may be stored under. Docker Hub is keyed by its v1 index URL
/// in docker config and by `docker.io` in containers auth files.
pub(crate) fn credential_keys(api_host: &str) -> Vec<String> {
    if api_host == super::DOCKER_HUB_API {
        vec!["https://index.docker.io/v1/".to_owned(), "docker.io".to_owned()]
    } else {
        vec![api_host.to_owned()]
    }
}

/// Find the credential for `api_host` in `paths`. Blocking: reads files and may run
/// `docker-credential-<helper> get`.
pub(crate) fn lookup(paths: &[PathBuf], api_host: &str) -> Result<Option<Credential>> {
    for path in paths {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Error::io(format!("reading registry credentials file {}", path.display()), e));
            }
        };
        for key in credential_keys(api_host) {
            match docker_credential::get_credential_from_reader(bytes.as_slice(), &key) {
                Ok(DockerCredential::UsernamePassword(username, password)) => {
                    return Ok(Some(Credential::Basic { username, password }));
                }
                Ok(DockerCredential::IdentityToken(token)) => {
                    return Ok(Some(Credential::IdentityToken(token)));
                }
                Err(CredentialRetrievalError::NoCredentialConfigured) => {}
                // A helper that simply has nothing for this registry: anonymous, as docker does.
                Err(CredentialRetrievalError::HelperFailure { stdout, .. })
                    if stdout.contains("credentials not found") => {}
                Err(e) => return Err(lookup_error(path, &key, &e)),
            }
        }
    }
    Ok(None)
}

/// Our message for a lookup failure. Helper output is left out: it may echo secrets.
fn lookup_error(path: &Path, key: &str, err: &CredentialRetrievalError) -> Error {
    let (kind, why) = match err {
        CredentialRetrievalError::ConfigReadError => {
            (ErrorKind::InvalidFormat, "the file is not a valid config JSON".to_owned())
        }
        CredentialRetrievalError::CredentialDecodingError => {
            (ErrorKind::InvalidFormat, "its `auth` field is not base64 of `user:password`".to_owned())
        }
        CredentialRetrievalError::CredentialMismatchError => {
            (ErrorKind::InvalidFormat, "its `auth` field disagrees with `username`/`password`".to_owned())
        }
        CredentialRetrievalError::HelperFailure { helper, .. } => {
            (ErrorKind::InvalidInput, format!("credential helper {helper} failed"))
        }
        CredentialRetrievalError::HelperCommunicationError => {
            (ErrorKind::InvalidInput, "the configured credential helper could not be run".to_owned())
        }
        CredentialRetrievalError::MalformedHelperResponse => (
            ErrorKind::InvalidInput,
            "the credential helper answered something that is not credentials JSON".to_owned(),
        ),
        other => (ErrorKind::InvalidInput, other.to_string()),
    };
    Error::new(kind, format!("looking up credentials for {key} in {}: {why}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn search_paths_follow_the_env_values() {
        let env = ConfigEnv {
            registry_auth_file: Some("/a/auth.json".into()),
            docker_config: None,
            xdg_runtime_dir: Some("/run/u".into()),
            home: Some("/h".into()),
        };
        let paths = config_search_paths(&env);
        let want: Vec<PathBuf> = [
            "/a/auth.json",
            "/h/.docker/config.json",
            "/run/u/containers/auth.json",
            "/h/.config/containers/auth.json",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(paths, want);
        let env = ConfigEnv { docker_config: Some("/d".into()), ..ConfigEnv::default() };
        assert_eq!(config_search_paths(&env), vec![PathBuf::from("/d/config.json")]);
    }

    #[test]
    fn reads_auths_and_identity_tokens_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        let first = write(dir.path(), "a.json", r#"{"auths":{"other.io":{"auth":"eDp5"}}}"#);
        // "dXNlcjpwYXNz" is base64 of "user:pass".
        let second = write(
            dir.path(),
            "b.json",
            r#"{"auths":{"reg.example":{"auth":"dXNlcjpwYXNz"},"https://index.docker.io/v1/":{"identitytoken":"refresh"}}}"#,
        );
        let paths = vec![missing, first, second];
        let basic = lookup(&paths, "reg.example").unwrap();
        assert_eq!(basic, Some(Credential::Basic { username: "user".into(), password: "pass".into() }));
        assert_eq!(
            lookup(&paths, super::super::DOCKER_HUB_API).unwrap(),
            Some(Credential::IdentityToken("refresh".into()))
        );
        assert_eq!(lookup(&paths, "nowhere.io").unwrap(), None);
        assert!(!format!("{basic:?}").contains("pass\""));
    }

    #[test]
    fn broken_config_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad = write(dir.path(), "bad.json", "{not json");
        let err = lookup(&[bad], "reg.example").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidFormat);
        assert!(err.message().contains("bad.json"), "{err}");
    }
}
