//! Table tests of reference parsing.

use super::*;
use crate::error::ErrorKind;

const D: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

fn reg(s: &str) -> ImageReference {
    ImageReference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn normalises_like_docker() {
    // input, registry, repository, tag, digest?, canonical
    type Row<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, bool, &'a str);
    let table: &[Row] = &[
        ("ubuntu", "docker.io", "library/ubuntu", None, false, "docker.io/library/ubuntu"),
        ("ubuntu:22.04", "docker.io", "library/ubuntu", Some("22.04"), false, "docker.io/library/ubuntu:22.04"),
        ("docker.io/ubuntu", "docker.io", "library/ubuntu", None, false, "docker.io/library/ubuntu"),
        ("index.docker.io/ubuntu", "docker.io", "library/ubuntu", None, false, "docker.io/library/ubuntu"),
        ("registry-1.docker.io/a/b", "docker.io", "a/b", None, false, "docker.io/a/b"),
        ("user/app:v1", "docker.io", "user/app", Some("v1"), false, "docker.io/user/app:v1"),
        ("ghcr.io/org/app", "ghcr.io", "org/app", None, false, "ghcr.io/org/app"),
        ("ghcr.io/org/sub/app:tag", "ghcr.io", "org/sub/app", Some("tag"), false, "ghcr.io/org/sub/app:tag"),
        ("localhost/app", "localhost", "app", None, false, "localhost/app"),
        ("localhost:5000/app:1", "localhost:5000", "app", Some("1"), false, "localhost:5000/app:1"),
        ("127.0.0.1:5001/a/b", "127.0.0.1:5001", "a/b", None, false, "127.0.0.1:5001/a/b"),
        ("[::1]:5000/app:t", "[::1]:5000", "app", Some("t"), false, "[::1]:5000/app:t"),
        ("[fe80::1]/app", "[fe80::1]", "app", None, false, "[fe80::1]/app"),
        ("Registry/app", "Registry", "app", None, false, "Registry/app"),
        ("a.b/c__d/e-f---g.h_i", "a.b", "c__d/e-f---g.h_i", None, false, "a.b/c__d/e-f---g.h_i"),
    ];
    for &(input, registry, repository, tag, has_digest, canonical) in table {
        let r = reg(input);
        assert_eq!(r.registry(), registry, "{input}");
        assert_eq!(r.repository(), repository, "{input}");
        assert_eq!(r.tag(), tag, "{input}");
        assert_eq!(r.digest().is_some(), has_digest, "{input}");
        assert_eq!(r.to_string(), canonical, "{input}");
        assert_eq!(reg(canonical), r, "canonical form of {input} must parse back to itself");
    }
}

#[test]
fn digests_and_tags_together() {
    let r = reg(&format!("quay.io/a/b:v1@{D}"));
    assert_eq!(r.tag(), Some("v1"));
    assert_eq!(r.digest().map(ToString::to_string).as_deref(), Some(D));
    assert_eq!(r.manifest_reference().as_deref(), Some(D));
    assert_eq!(r.to_string(), format!("quay.io/a/b:v1@{D}"));

    let r = reg(&format!("alpine@{D}"));
    assert_eq!(r.to_string(), format!("docker.io/library/alpine@{D}"));
    assert_eq!(r.tag(), None);

    let r = reg("localhost:5000/x");
    assert_eq!(r.manifest_reference(), None);
    let tagged = r.with_tag("t1").unwrap();
    assert_eq!(tagged.manifest_reference().as_deref(), Some("t1"));
    let pinned = tagged.with_digest(D.parse().unwrap());
    assert_eq!(pinned.to_string(), format!("localhost:5000/x:t1@{D}"));
    assert_eq!(pinned.with_tag("t2").unwrap().to_string(), "localhost:5000/x:t2");
    assert_eq!(pinned.repository_only().to_string(), "localhost:5000/x");
    let err = r.with_tag("bad tag").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(r#"tag "bad tag" contains ' '"#), "{err}");
}

#[test]
fn api_host() {
    assert_eq!(reg("alpine").api_host(), "registry-1.docker.io");
    assert_eq!(reg("ghcr.io/a/b").api_host(), "ghcr.io");
    assert_eq!(reg("localhost:5000/a").api_host(), "localhost:5000");
    assert_eq!(reg("alpine").name(), "docker.io/library/alpine");
}

#[test]
fn new_validates_and_normalises() {
    assert_eq!(ImageReference::new("index.docker.io", "alpine").unwrap().to_string(), "docker.io/library/alpine");
    assert_eq!(ImageReference::new("ghcr.io", "a/b").unwrap().to_string(), "ghcr.io/a/b");
    let err = ImageReference::new("ghcr.io", "A").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(r#"repository "A" must be lowercase"#), "{err}");
    let err = ImageReference::new("bad host", "a").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(r#"registry "bad host" is not a valid host[:port]"#), "{err}");
}

#[test]
fn rejects_bad_registry_references() {
    // input, fragment the message must contain
    let table: &[(&str, &str)] = &[
        ("", "empty"),
        ("ghcr.io/Org/app", "lowercase"),
        ("ghcr.io/", "empty"),
        ("ghcr.io//app", "invalid path component"),
        ("ghcr.io/app/", "invalid path component"),
        ("app-", "invalid path component"),
        ("a..b", "invalid path component"),
        ("a___b", "invalid path component"),
        ("a_-b", "invalid path component"),
        (".a", "invalid path component"),
        ("ghcr.io/a:", "tag is empty"),
        ("ghcr.io/a:-x", "must start"),
        ("ghcr.io/a:x+y", "contains '+'"),
        ("ghcr.io/a@sha256:abc", "bad digest"),
        ("ghcr.io/a@", "bad digest"),
        ("ghcr.io/a@md5:00", "bad digest"),
        ("docker://alpine", "unsupported scheme"),
        ("https://ghcr.io/a", "unsupported scheme"),
        ("ghcr io/a", "character ' '"),
        ("ghcr.io/a\n", "character '\\n'"),
        ("host:port/a", "port"),
        ("host:70000/a", "port"),
        ("-host.io/a", "labels"),
        ("a..io/b", "labels"),
        ("[::1/a", "unclosed"),
        ("[zz::1]:5000/a", "IPv6"),
        ("[::1]x/a", "after ']'"),
        ("ghcr.io/a@sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a@x", "bad digest"),
    ];
    for &(input, fragment) in table {
        let err = ImageReference::parse(input).expect_err(input);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{input}");
        let msg = err.to_string();
        assert!(msg.contains(&format!("{input:?}")), "message must quote the input: {msg}");
        assert!(msg.contains(fragment), "{input}: {msg} should mention {fragment:?}");
    }
}

#[test]
fn length_limits() {
    let long_tag = format!("ghcr.io/a:{}", "t".repeat(128));
    assert!(ImageReference::parse(&long_tag).is_ok());
    let too_long_tag = format!("ghcr.io/a:{}", "t".repeat(129));
    assert!(ImageReference::parse(&too_long_tag).unwrap_err().to_string().contains("more than 128"));
    let long_name = format!("ghcr.io/{}", "a".repeat(255 - 8));
    assert!(ImageReference::parse(&long_name).is_ok());
    let too_long_name = format!("ghcr.io/{}", "a".repeat(255 - 7));
    assert!(ImageReference::parse(&too_long_name).unwrap_err().to_string().contains("more than 255"));
}

#[test]
fn path_component_grammar() {
    for ok in ["a", "0", "a.b", "a_b", "a__b", "a-b", "a---b", "a1.b2_c3__d4-e5"] {
        assert!(is_path_component(ok), "{ok}");
    }
    for bad in ["", "A", "a.", "_a", "a._b", "a-_b", "a.-b", "a__", "a b", "é"] {
        assert!(!is_path_component(bad), "{bad}");
    }
    assert!(is_valid_tag("_x.Y-1"));
    assert!(!is_valid_tag(".x"));
    assert!(!is_valid_tag("é"));
}

#[test]
fn layout_references() {
    // input, path, tag, digest?
    let table: &[(&str, &str, Option<&str>, bool)] = &[
        ("ocidir://out", "out", None, false),
        ("ocidir://out:v1", "out", Some("v1"), false),
        ("ocidir:///abs/dir:latest", "/abs/dir", Some("latest"), false),
        ("ocidir://./rel/dir", "./rel/dir", None, false),
        ("ocidir://dir:with:colons/x", "dir:with:colons/x", None, false),
        ("ocidir://dir:with/x:t", "dir:with/x", Some("t"), false),
        ("ocidir://a@b/x", "a@b/x", None, false),
        (&format!("ocidir://out@{D}"), "out", None, true),
        (&format!("ocidir://out:v1@{D}"), "out", Some("v1"), true),
        ("ocidir://out/", "out/", None, false),
    ];
    for (input, path, tag, has_digest) in table {
        let r = LayoutReference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.path(), Path::new(path), "{input}");
        assert_eq!(r.tag(), *tag, "{input}");
        assert_eq!(r.digest().is_some(), *has_digest, "{input}");
        assert_eq!(r.to_string(), *input);
        assert_eq!(Reference::parse(input).unwrap(), Reference::Layout(r));
    }
    let r = LayoutReference::new("x").with_tag("t").unwrap().with_digest(D.parse().unwrap());
    assert_eq!(r.to_string(), format!("ocidir://x:t@{D}"));
    assert_eq!(r.manifest_reference().as_deref(), Some(D));
    assert_eq!(r.with_tag("u").unwrap().manifest_reference().as_deref(), Some("u"));
}

#[test]
fn rejects_bad_layout_references() {
    let table: &[(&str, &str)] = &[
        ("ocidir://", "path is empty"),
        ("ocidir://:tag", "path is empty"),
        ("ocidir://out:", "tag is empty"),
        ("ocidir://out:a/b:", "tag is empty"),
        ("ocidir://out:bad+tag", "contains '+'"),
        ("ocidir://out@sha256:zz", "bad digest"),
        ("ocidir://out\u{0}", "character"),
    ];
    for &(input, fragment) in table {
        let err = Reference::parse(input).expect_err(input);
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let msg = err.to_string();
        assert!(msg.contains(&format!("{input:?}")) && msg.contains(fragment), "{input}: {msg}");
    }
    assert!(LayoutReference::parse("out").unwrap_err().to_string().contains("does not start with ocidir://"));
}

#[test]
fn reference_dispatch() {
    let r: Reference = "ghcr.io/a/b:t".parse().unwrap();
    assert!(matches!(r, Reference::Registry(_)));
    assert_eq!(r.tag(), Some("t"));
    assert_eq!(r.to_string(), "ghcr.io/a/b:t");
    let r: Reference = format!("ocidir://x@{D}").parse().unwrap();
    assert_eq!(r.digest().map(ToString::to_string).as_deref(), Some(D));
    assert_eq!(r.manifest_reference().as_deref(), Some(D));
    // Not mistaken for a layout: only `ocidir://` is one, so this is an image reference with a scheme.
    let err = Reference::parse("oci://x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(r#"unsupported scheme "oci://""#), "{err}");
}
