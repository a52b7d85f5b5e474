//! Predicate contents: the synthetic SPDX SBOM, the hand-written SLSA text of the article-like store,
//! and predicate bodies shaped the way each cosign generation wrapped them (FORMATS.md §1.7).

use serde_json::{Map, Value, json};

use super::gojson::to_pretty_one_space;
use super::prng::Prng;

/// Predicate type URIs as cosign writes them.
pub mod predicate_type {
    /// `--type custom` in cosign v1.x: no scheme.
    pub const CUSTOM_V1: &str = "cosign.sigstore.dev/attestation/v1";
    /// `--type custom` since cosign v2.0.0.
    pub const CUSTOM: &str = "https://cosign.sigstore.dev/attestation/v1";
    /// SLSA provenance v0.2 (`slsaprovenance`, `slsaprovenance02`).
    pub const SLSA_V02: &str = "https://slsa.dev/provenance/v0.2";
    /// SLSA provenance v1 (`slsaprovenance1`).
    pub const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
    /// SPDX (`spdx`, `spdxjson`).
    pub const SPDX: &str = "https://spdx.dev/Document";
    /// cosign vulnerability scan (`vuln`).
    pub const VULN: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";
}

/// The article-like SLSA v0.2 provenance file (785 bytes). It is not valid JSON — it has a `//`
/// comment — which is why it had to travel in the custom `Data` wrapper; it also contains `&&`,
/// which Go escapes as `\u0026` inside the signed payload. `get` must return exactly these bytes.
pub const ARTICLE_SLSA_TEXT: &str = r#"{
  "_type": "https://in-toto.io/Statement/v0.1",
  "subject": [
    {
      "name": "flasksample:v1",
      "digest": { "sha256": "1234..." }
    }
  ],
  "predicateType": "https://slsa.dev/provenance/v0.2",
  "predicate": {
    "builder": { "id": "https://ci.example.test/runner" },
    "buildType": "https://ci.example.test/build@v1",
    "invocation": {
      "configSource": {
        "uri": "https://git.example.test/demo/flasksample",
        "digest": { "sha1": "4f1c2a9e7b3d5c8a0e6f2b1d9c7a5e3b1f0d8c6a" },
        "entryPoint": "Dockerfile"
      },
      "parameters": { "target": "app" }   // docker build --pull && make check ran.
    },
    "materials": [
      {
        "uri": "pkg:docker/python@3.10-slim",
        "digest": { "sha256": "9a8b..." }
      }
    ]
  }
}"#;

/// The custom predicate wrapper (`{"Data":"<file as string>","Timestamp":"<RFC 3339>"}`), used by
/// `--type custom` in every version and by v1.x for SBOM types (with an empty timestamp).
pub fn custom(data: impl Into<Value>, timestamp: &str) -> Value {
    json!({"Data": data.into(), "Timestamp": timestamp})
}

/// Sort object keys recursively, as Go does when it marshals a parsed `map[string]interface{}`
/// (cosign v2 `spdxjson`/`cyclonedx` predicates).
pub fn go_sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, go_sorted(v))).collect::<Map<_, _>>())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(go_sorted).collect()),
        other => other,
    }
}

/// A SLSA v0.2 predicate object in in-toto-golang's struct field order (what cosign v2
/// `--type slsaprovenance` re-marshals).
pub fn slsa_v02(prng: &mut Prng, source_repo: &str, invocation: &str) -> Value {
    json!({
        "builder": {"id": "https://ci.example.test/builders/docker@v2"},
        "buildType": "https://ci.example.test/buildtypes/container@v1",
        "invocation": {
            "configSource": {
                "uri": format!("git+{source_repo}@refs/heads/main"),
                "digest": {"sha1": prng.hex(40)},
                "entryPoint": ".ci/build.yml"
            },
            "parameters": {"platform": "linux/amd64", "push": true},
            "environment": {"runner": "linux-large"}
        },
        "metadata": {
            "buildInvocationID": invocation,
            "buildStartedOn": "2024-01-01T00:00:00Z",
            "buildFinishedOn": "2024-01-01T00:04:10Z",
            "completeness": {"parameters": true, "environment": false, "materials": false},
            "reproducible": false
        },
        "materials": [
            {"uri": format!("git+{source_repo}"), "digest": {"sha1": prng.hex(40)}},
            {"uri": "pkg:docker/alpine@3.19", "digest": {"sha256": prng.hex(64)}}
        ]
    })
}

/// A SLSA v1 predicate object.
pub fn slsa_v1(prng: &mut Prng, source_repo: &str) -> Value {
    json!({
        "buildDefinition": {
            "buildType": "https://ci.example.test/buildtypes/container@v2",
            "externalParameters": {"repository": source_repo, "ref": "refs/tags/v1.0.0"},
            "internalParameters": {"runner": "linux-large"},
            "resolvedDependencies": [{"uri": format!("git+{source_repo}@refs/tags/v1.0.0"), "digest": {"gitCommit": prng.hex(40)}}]
        },
        "runDetails": {
            "builder": {"id": "https://ci.example.test/builders/docker@v2"},
            "metadata": {"invocationId": format!("run-{}", prng.hex(12)), "startedOn": "2024-01-01T00:00:00Z", "finishedOn": "2024-01-01T00:03:00Z"}
        }
    })
}

/// A cosign vulnerability-scan predicate (field order of cosign's `CosignVulnPredicate`).
pub fn vuln(prng: &mut Prng) -> Value {
    json!({
        "invocation": {"parameters": null, "uri": "https://ci.example.test/scan/1", "event_id": prng.hex(8), "builder.id": "scanner-ci"},
        "scanner": {
            "uri": "pkg:generic/scanner@0.1.0",
            "version": "0.1.0",
            "db": {"uri": "https://db.example.test/vulns", "version": "2024-01-01"},
            "result": {"matches": [{"id": "CVE-2024-00001", "severity": "LOW", "package": "zlib"}]}
        },
        "metadata": {"scanStartedOn": "2024-01-01T00:05:00Z", "scanFinishedOn": "2024-01-01T00:05:30Z"}
    })
}

const SYLLABLES: &[&str] = &[
    "lib", "ap", "ta", "zor", "ex", "mu", "fen", "quo", "ri", "sto", "gra", "vel", "nix", "pro", "ul", "da", "ker",
    "bo",
];
const LICENSES: &[&str] =
    &["MIT", "Apache-2.0", "BSD-3-Clause", "GPL-2.0-only", "LGPL-2.1-or-later", "ISC", "NOASSERTION"];
const DIRS: &[&str] = &["/usr/lib", "/usr/share/doc", "/etc", "/usr/bin", "/usr/share/man/man1", "/var/lib"];
const PEOPLE: &[&str] = &["Ada Example", "Bo Sample", "Cy Placeholder", "Di Fixture", "Ed Testcase"];

/// A synthetic SPDX-2.2 JSON document in syft's layout (one-space indentation, packages with CPE and
/// purl references, files, `CONTAINS` relationships) of at least `target_bytes`. Purls carry `&`
/// and originators `<…>`, as real ones do, so Go's payload escaping shows up in the statement.
pub fn spdx_sbom(prng: &mut Prng, image_name: &str, created: &str, target_bytes: usize) -> String {
    let mut parts = SbomParts { layer_id: format!("sha256:{}", prng.hex(64)), ..SbomParts::default() };
    let namespace = format!("https://example.test/spdx/{image_name}-{}", prng.hex(32));
    loop {
        // Sizes are estimated per item; aim slightly high so one pass nearly always suffices.
        while parts.estimate < target_bytes + target_bytes / 50 + 1024 {
            parts.add_package(prng);
        }
        let doc = json!({
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": image_name,
            "spdxVersion": "SPDX-2.2",
            "creationInfo": {"created": created, "creators": ["Organization: att2ref test data", "Tool: att2ref-demo-0"], "licenseListVersion": "3.18"},
            "dataLicense": "CC0-1.0",
            "documentNamespace": namespace,
            "packages": parts.packages,
            "files": parts.files,
            "relationships": parts.relationships,
        });
        // Our own values serialise to UTF-8 JSON; from_utf8 cannot fail.
        let text = String::from_utf8(to_pretty_one_space(&doc)).unwrap_or_default();
        if text.len() >= target_bytes {
            return text;
        }
        parts.estimate = text.len();
    }
}

#[derive(Default)]
struct SbomParts {
    layer_id: String,
    packages: Vec<Value>,
    files: Vec<Value>,
    relationships: Vec<Value>,
    estimate: usize,
}

impl SbomParts {
    fn add_package(&mut self, prng: &mut Prng) {
        let n = self.packages.len() + 1;
        let name: String = (0..prng.range(2, 3)).map(|_| *prng.pick(SYLLABLES)).collect::<String>() + &n.to_string();
        let version = format!("{}.{}.{}-{}", prng.range(0, 9), prng.range(0, 30), prng.range(0, 99), prng.range(1, 5));
        let license = *prng.pick(LICENSES);
        let pkg_id = format!("SPDXRef-{}", prng.hex(16));
        let mut has_files = Vec::new();
        for f in 0..prng.range(4, 30) {
            let file_id = format!("SPDXRef-{}", prng.hex(16));
            let file = json!({
                "SPDXID": file_id,
                "comment": format!("layerID: {}", self.layer_id),
                "licenseConcluded": "NOASSERTION",
                "fileName": format!("{}/{name}/{}-{f}.{}", prng.pick(DIRS), prng.hex(6), prng.pick(&["so", "txt", "conf", "gz"])),
            });
            let rel = json!({"spdxElementId": pkg_id, "relationshipType": "CONTAINS", "relatedSpdxElement": file_id});
            self.estimate += item_size(&file) + item_size(&rel);
            self.files.push(file);
            self.relationships.push(rel);
            has_files.push(Value::String(file_id));
        }
        let mut refs: Vec<Value> = (0..prng.range(1, 4))
            .map(|i| {
                let vendor = if i % 2 == 0 { name.clone() } else { format!("{name}_project") };
                json!({"referenceCategory": "SECURITY", "referenceLocator": format!("cpe:2.3:a:{vendor}:{name}:{version}:*:*:*:*:*:*:*"), "referenceType": "cpe23Type"})
            })
            .collect();
        refs.push(json!({"referenceCategory": "PACKAGE_MANAGER", "referenceLocator": format!("pkg:deb/debian/{name}@{version}?arch=amd64&distro=debian-12"), "referenceType": "purl"}));
        let person = *prng.pick(PEOPLE);
        let email = person.to_lowercase().replace(' ', ".");
        let pkg = json!({
            "SPDXID": pkg_id,
            "name": name,
            "licenseConcluded": license,
            "downloadLocation": "NOASSERTION",
            "externalRefs": refs,
            "filesAnalyzed": false,
            "hasFiles": has_files,
            "licenseDeclared": license,
            "originator": format!("Person: {person} <{email}@example.test>"),
            "sourceInfo": format!("acquired package info from DPKG DB: /usr/share/doc/{name}/copyright, /var/lib/dpkg/info/{name}.md5sums, /var/lib/dpkg/status"),
            "versionInfo": version,
        });
        self.estimate += item_size(&pkg);
        self.packages.push(pkg);
    }
}

/// Approximate pretty-printed size of an array item at depth 2 (two more spaces per line).
fn item_size(v: &Value) -> usize {
    let s = to_pretty_one_space(v);
    s.len() + 2 * s.iter().filter(|&&b| b == b'\n').count() + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slsa_text_is_785_bytes_and_not_json() {
        assert_eq!(ARTICLE_SLSA_TEXT.len(), 785);
        // The comment, not the `//` every URL in the text has.
        let (line, text) = ARTICLE_SLSA_TEXT.lines().enumerate().find(|(_, l)| l.contains(" // ")).unwrap();
        // Refused at the comment, not somewhere else in the text.
        let err = serde_json::from_str::<Value>(ARTICLE_SLSA_TEXT).unwrap_err();
        assert!(err.is_syntax(), "{err}");
        assert_eq!((err.line(), err.column()), (line + 1, text.find(" // ").unwrap() + 2), "{err}");
    }

    #[test]
    fn sbom_is_spdx_json_of_the_requested_size_and_stable() {
        let a = spdx_sbom(&mut Prng::from_label("t"), "img", "2024-01-01T00:00:00Z", 50_000);
        let b = spdx_sbom(&mut Prng::from_label("t"), "img", "2024-01-01T00:00:00Z", 50_000);
        assert_eq!(a, b);
        assert!((50_000..65_000).contains(&a.len()), "{}", a.len());
        let doc: Value = serde_json::from_str(&a).unwrap();
        assert_eq!(doc["spdxVersion"], "SPDX-2.2");
        assert!(a.contains("&distro=") && a.contains("<"), "purls and originators carry HTML characters");
        assert!(a.starts_with("{\n \"SPDXID\": \"SPDXRef-DOCUMENT\",\n"));
    }

    #[test]
    fn go_sorted_sorts_nested_keys() {
        let v = go_sorted(json!({"b": {"z": 1, "a": [{"y": 1, "x": 2}]}, "a": 0}));
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"a":0,"b":{"a":[{"x":2,"y":1}],"z":1}}"#);
    }
}
