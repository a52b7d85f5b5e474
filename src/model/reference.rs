//! Image references: `REGISTRY/REPO[:TAG][@DIGEST]` for registries and `ocidir://PATH[:TAG][@DIGEST]`
//! for OCI image layouts.
//!
//! Registry references are normalised the way docker, regctl and oras do it, so that `ubuntu`,
//! `docker.io/ubuntu` and `index.docker.io/library/ubuntu` are the same repository
//! (`docker.io/library/ubuntu`). A missing tag stays missing: whether "no tag" means `latest` or
//! "every tag" is the caller's decision, not the parser's.

use std::fmt;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::digest::Digest;
use crate::error::{Error, Result};

/// The registry name short references resolve to.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// Scheme prefix of OCI image-layout references.
pub const LAYOUT_SCHEME: &str = "ocidir://";

/// Legacy and API host names that mean Docker Hub; normalised to [`DOCKER_HUB`].
const DOCKER_HUB_ALIASES: &[&str] = &["index.docker.io", DOCKER_HUB_API_HOST];
/// Docker's cap on `registry/repository`, which registries and clients share.
const MAX_NAME_LEN: usize = 255;
/// Distribution-spec cap on a tag (1 leading character plus up to 127).
const MAX_TAG_LEN: usize = 128;

/// A parsed reference to a registry repository or an OCI image layout.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reference {
    /// `REGISTRY/REPO[:TAG][@DIGEST]`.
    Registry(ImageReference),
    /// `ocidir://PATH[:TAG][@DIGEST]`.
    Layout(LayoutReference),
}

impl Reference {
    /// Parse either form: `ocidir://` selects a layout, anything without a scheme is a registry
    /// reference, and any other scheme is refused.
    pub fn parse(input: &str) -> Result<Reference> {
        if input.starts_with(LAYOUT_SCHEME) {
            return LayoutReference::parse(input).map(Reference::Layout);
        }
        ImageReference::parse(input).map(Reference::Registry)
    }

    /// The tag, if one was given.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Reference::Registry(r) => r.tag(),
            Reference::Layout(l) => l.tag(),
        }
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Reference::Registry(r) => r.digest(),
            Reference::Layout(l) => l.digest(),
        }
    }

    /// What to ask the store for: the digest when there is one (it pins the content), else the tag.
    pub fn manifest_reference(&self) -> Option<String> {
        manifest_reference(self.tag(), self.digest())
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Registry(r) => r.fmt(f),
            Reference::Layout(l) => l.fmt(f),
        }
    }
}

/// A registry reference, normalised: `registry` is never empty, Docker Hub is always `docker.io`
/// and its single-component repositories carry `library/`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageReference {
    /// Parse `[REGISTRY/]REPO[:TAG][@DIGEST]`.
    ///
    /// The first path component is a registry only if it contains `.` or `:`, is `localhost`, or
    /// has uppercase letters (which a repository cannot); otherwise the registry is `docker.io`.
    pub fn parse(input: &str) -> Result<ImageReference> {
        let fail = |why: String| Error::invalid_input(format!("invalid image reference {input:?}: {why}"));
        if input.is_empty() {
            return Err(fail("it is empty".into()));
        }
        if let Some(c) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail(format!("it contains the character {c:?}")));
        }
        if let Some((scheme, _)) = input.split_once("://") {
            return Err(fail(format!(
                "unsupported scheme \"{scheme}://\" (use REGISTRY/REPO[:TAG][@DIGEST], or {LAYOUT_SCHEME}PATH for a layout)"
            )));
        }

        let (name_tag, digest) = match input.split_once('@') {
            Some((rest, d)) => (rest, Some(parse_digest(d).map_err(fail)?)),
            None => (input, None),
        };
        let (name, tag) = split_tag(name_tag);
        if let Some(t) = tag {
            check_tag(t).map_err(fail)?;
        }
        let (registry, repository) = split_registry(name);
        let normalised = ImageReference::from_parts(registry, repository).map_err(fail)?;
        Ok(ImageReference { tag: tag.map(str::to_owned), digest, ..normalised })
    }

    /// A reference to a whole repository (no tag, no digest), validated and normalised like
    /// [`parse`](Self::parse).
    pub fn new(registry: &str, repository: &str) -> Result<ImageReference> {
        ImageReference::from_parts(Some(registry), repository)
            .map_err(|why| Error::invalid_input(format!("invalid repository {registry}/{repository}: {why}")))
    }

    fn from_parts(registry: Option<&str>, repository: &str) -> Result<ImageReference, String> {
        let registry = match registry {
            Some(r) if DOCKER_HUB_ALIASES.contains(&r) => DOCKER_HUB,
            Some(r) => r,
            None => DOCKER_HUB,
        };
        check_host(registry)?;
        check_repository(repository)?;
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_owned()
        };
        let total = registry.len() + 1 + repository.len();
        if total > MAX_NAME_LEN {
            return Err(format!(
                "the name {registry}/{repository} is {total} characters long, more than {MAX_NAME_LEN}"
            ));
        }
        Ok(ImageReference { registry: registry.to_owned(), repository, tag: None, digest: None })
    }

    /// The registry as written in references (`docker.io`, `ghcr.io`, `localhost:5000`, `[::1]:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path (`library/ubuntu`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if one was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host to send API requests to: Docker Hub's API lives on `registry-1.docker.io`, every other
    /// registry on its own name.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB { DOCKER_HUB_API_HOST } else { &self.registry }
    }

    /// What to ask the registry for: the digest when there is one (it pins the content), else the tag.
    pub fn manifest_reference(&self) -> Option<String> {
        manifest_reference(self.tag(), self.digest())
    }

    /// The same reference pinned to `digest`. The tag is kept for display; the digest takes
    /// precedence when fetching.
    pub fn with_digest(&self, digest: Digest) -> ImageReference {
        ImageReference { digest: Some(digest), ..self.clone() }
    }

    /// The same repository at `tag`, with any digest dropped (a digest would override the tag).
    pub fn with_tag(&self, tag: &str) -> Result<ImageReference> {
        check_tag(tag).map_err(|why| Error::invalid_input(format!("invalid tag for {}: {why}", self.name())))?;
        Ok(ImageReference { tag: Some(tag.to_owned()), digest: None, ..self.clone() })
    }

    /// The same repository without tag or digest.
    pub fn repository_only(&self) -> ImageReference {
        ImageReference { tag: None, digest: None, ..self.clone() }
    }
}

impl FromStr for ImageReference {
    type Err = Error;

    fn from_str(s: &str) -> Result<ImageReference> {
        ImageReference::parse(s)
    }
}

impl fmt::Display for ImageReference {
    /// The canonical form: `registry/repository[:tag][@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        write_tag_digest(f, self.tag(), self.digest())
    }
}

/// A reference into an OCI image layout directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LayoutReference {
    path: PathBuf,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl LayoutReference {
    /// Parse `ocidir://PATH[:TAG][@DIGEST]`. The digest is what follows an `@` after the last `/`;
    /// the tag is what follows the last `:` after the last `/`, so paths may contain `:` and `@` in
    /// their directory parts.
    pub fn parse(input: &str) -> Result<LayoutReference> {
        let fail = |why: String| Error::invalid_input(format!("invalid layout reference {input:?}: {why}"));
        let rest =
            input.strip_prefix(LAYOUT_SCHEME).ok_or_else(|| fail(format!("it does not start with {LAYOUT_SCHEME}")))?;
        if let Some(c) = rest.chars().find(|c| c.is_control()) {
            return Err(fail(format!("it contains the character {c:?}")));
        }
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (path_tag, digest) = match rest[last_slash..].find('@') {
            Some(at) => {
                let at = last_slash + at;
                (&rest[..at], Some(parse_digest(&rest[at + 1..]).map_err(fail)?))
            }
            None => (rest, None),
        };
        let (path, tag) = split_tag(path_tag);
        if let Some(t) = tag {
            check_tag(t).map_err(fail)?;
        }
        if path.is_empty() {
            return Err(fail("the path is empty".into()));
        }
        Ok(LayoutReference { path: PathBuf::from(path), tag: tag.map(str::to_owned), digest })
    }

    /// A reference to a whole layout (no tag, no digest).
    pub fn new(path: impl Into<PathBuf>) -> LayoutReference {
        LayoutReference { path: path.into(), tag: None, digest: None }
    }

    /// The layout directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tag (`org.opencontainers.image.ref.name` in `index.json`), if one was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the layout for: the digest when there is one, else the tag.
    pub fn manifest_reference(&self) -> Option<String> {
        manifest_reference(self.tag(), self.digest())
    }

    /// The same reference pinned to `digest` (the tag is kept for display).
    pub fn with_digest(&self, digest: Digest) -> LayoutReference {
        LayoutReference { digest: Some(digest), ..self.clone() }
    }

    /// The same layout at `tag`, with any digest dropped.
    pub fn with_tag(&self, tag: &str) -> Result<LayoutReference> {
        check_tag(tag).map_err(|why| {
            Error::invalid_input(format!("invalid tag for {LAYOUT_SCHEME}{}: {why}", self.path.display()))
        })?;
        Ok(LayoutReference { tag: Some(tag.to_owned()), digest: None, ..self.clone() })
    }
}

impl FromStr for LayoutReference {
    type Err = Error;

    fn from_str(s: &str) -> Result<LayoutReference> {
        LayoutReference::parse(s)
    }
}

impl fmt::Display for LayoutReference {
    /// `ocidir://path[:tag][@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{LAYOUT_SCHEME}{}", self.path.display())?;
        write_tag_digest(f, self.tag(), self.digest())
    }
}

/// True when `tag` matches the distribution-spec tag grammar `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    check_tag(tag).is_ok()
}

fn manifest_reference(tag: Option<&str>, digest: Option<&Digest>) -> Option<String> {
    digest.map(Digest::to_string).or_else(|| tag.map(str::to_owned))
}

fn write_tag_digest(f: &mut fmt::Formatter<'_>, tag: Option<&str>, digest: Option<&Digest>) -> fmt::Result {
    if let Some(t) = tag {
        write!(f, ":{t}")?;
    }
    if let Some(d) = digest {
        write!(f, "@{d}")?;
    }
    Ok(())
}

fn parse_digest(s: &str) -> Result<Digest, String> {
    s.parse::<Digest>().map_err(|e| format!("bad digest: {}", e.message()))
}

/// Split `name[:tag]` at the last `:` that comes after the last `/`, so a registry port is never
/// mistaken for a tag.
fn split_tag(s: &str) -> (&str, Option<&str>) {
    let last_slash = s.rfind('/').map_or(0, |i| i + 1);
    match s[last_slash..].rfind(':') {
        Some(colon) => {
            let colon = last_slash + colon;
            (&s[..colon], Some(&s[colon + 1..]))
        }
        None => (s, None),
    }
}

/// Split off the registry following docker's rule for what looks like a host name.
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn check_tag(tag: &str) -> Result<(), String> {
    let bytes = tag.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err("the tag is empty".into());
    };
    if bytes.len() > MAX_TAG_LEN {
        return Err(format!("the tag is {} characters long, more than {MAX_TAG_LEN}", bytes.len()));
    }
    if !(first.is_ascii_alphanumeric() || first == b'_') {
        return Err(format!("tag {tag:?} must start with a letter, digit or '_'"));
    }
    if let Some(c) = tag.chars().find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        return Err(format!("tag {tag:?} contains {c:?} (allowed: letters, digits, '_', '.', '-')"));
    }
    Ok(())
}

fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("the repository name is empty".into());
    }
    if repository.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("repository {repository:?} must be lowercase"));
    }
    for component in repository.split('/') {
        if !is_path_component(component) {
            return Err(format!(
                "repository {repository:?} has an invalid path component {component:?} \
                 (lowercase letters and digits, separated by '.', '_', '__' or dashes)"
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, without a regex engine.
fn is_path_component(component: &str) -> bool {
    let b = component.as_bytes();
    let alnum = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !alnum(0) {
        return false;
    }
    let mut i = 0;
    loop {
        while alnum(i) {
            i += 1;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if !alnum(i) {
            return false;
        }
    }
}

/// `domain[:port]` where domain is dot-separated labels or a bracketed IPv6 address.
fn check_host(host: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("registry {host:?} is not a valid host[:port]: {why}"));
    let (domain, port) = if let Some(inner) = host.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return bad("unclosed '['");
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return bad("not an IPv6 address in brackets");
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (None, Some(p)),
                None => return bad("unexpected text after ']'"),
            },
        }
    } else {
        match host.split_once(':') {
            Some((d, p)) => (Some(d), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(domain) = domain {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !domain.split('.').all(label_ok) {
            return bad("labels must be letters, digits and inner dashes, separated by single dots");
        }
    }
    if let Some(port) = port {
        let ok = !port.is_empty() && port.len() <= 5 && port.bytes().all(|c| c.is_ascii_digit());
        if !ok || !port.parse::<u32>().is_ok_and(|p| p <= 65535) {
            return bad("the port must be a number up to 65535");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
