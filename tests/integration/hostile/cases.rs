//! The corpus: one row per hostile input, with how it is planted and what each command must answer.

use att2ref::demo::TestKey;
use att2ref::demo::dsse::{STATEMENT_V01, statement};
use att2ref::model::digest::Digest;
use att2ref::model::media_type::{self as mt, annotations as ann};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::kit::{self, Kit, envelope, envelope_json, good_layer, layer, layer_with, stmt};
use super::{Case, Cmd::*, Expect};

/// Every case. Exit codes: 0 ok, 1 the data failed a check, 2 could not check.
pub static CASES: &[Case] = &[
    // --- the legacy .att manifest itself ----------------------------------------------------------
    Case {
        name: "att-manifest-digest-mismatch",
        plant: att_manifest_digest_mismatch,
        expect: &[
            Expect(Inspect, 1, "content digest mismatch"),
            Expect(Verify, 1, "content digest mismatch"),
            Expect(Migrate, 1, "content digest mismatch"),
        ],
    },
    Case {
        name: "att-manifest-truncated-json",
        plant: |k, r| raw_att(k, r, &good_att_bytes(k, r)[..100]),
        expect: &[Expect(Inspect, 2, "HTTP 500"), Expect(Verify, 2, "HTTP 500"), Expect(Migrate, 2, "HTTP 500")],
    },
    Case {
        name: "att-manifest-not-utf8",
        plant: |k, r| raw_att(k, r, b"{\"schemaVersion\":2,\"mediaType\":\"\xff\xfe\",\"layers\":[]}"),
        expect: &[Expect(Inspect, 2, "HTTP 500"), Expect(Migrate, 2, "HTTP 500")],
    },
    Case {
        name: "att-manifest-nesting-bomb",
        plant: |k, r| raw_att(k, r, &bomb(100_000)),
        expect: &[Expect(Inspect, 2, "HTTP 500"), Expect(Verify, 2, "HTTP 500"), Expect(Migrate, 2, "HTTP 500")],
    },
    Case {
        name: "att-manifest-over-4mib",
        plant: att_manifest_over_4mib,
        expect: &[Expect(Inspect, 2, "HTTP 500"), Expect(Verify, 2, "HTTP 500"), Expect(Migrate, 2, "HTTP 500")],
    },
    Case {
        name: "att-manifest-4mib-accepted",
        plant: att_manifest_4mib,
        expect: &[Expect(Inspect, 0, "\"attestations\""), Expect(Migrate, 0, "migrated")],
    },
    Case {
        name: "att-manifest-is-an-index",
        plant: att_is_index,
        expect: &[
            Expect(Inspect, 1, "not the image manifest cosign writes"),
            Expect(Verify, 1, "not the image manifest cosign writes"),
            Expect(Migrate, 1, "not the image manifest cosign writes"),
        ],
    },
    Case {
        name: "att-index-served-as-manifest",
        plant: att_index_served_as_manifest,
        expect: &[Expect(Inspect, 1, "missing field `config`"), Expect(Migrate, 1, "missing field `config`")],
    },
    Case {
        name: "att-manifest-empty-object",
        plant: |k, r| raw_att(k, r, b"{}"),
        expect: &[Expect(Inspect, 2, "HTTP 500"), Expect(Migrate, 2, "HTTP 500")],
    },
    Case {
        name: "att-manifest-json-null",
        plant: |k, r| raw_att(k, r, b"null"),
        expect: &[Expect(Inspect, 2, "HTTP 500"), Expect(Migrate, 2, "HTTP 500")],
    },
    Case {
        name: "att-manifest-schema1",
        plant: |k, r| raw_att(k, r, br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[],"history":[]}"#),
        expect: &[Expect(Inspect, 1, "digest mismatch"), Expect(Migrate, 1, "digest mismatch")],
    },
    Case {
        name: "att-manifest-trailing-garbage",
        plant: |k, r| {
            let mut b = good_att_bytes(k, r);
            b.extend_from_slice(b"}{garbage");
            raw_att(k, r, &b)
        },
        expect: &[Expect(Inspect, 2, "HTTP 500"), Expect(Migrate, 2, "HTTP 500")],
    },
    Case {
        name: "att-manifest-duplicate-keys",
        plant: |k, r| {
            raw_att(k, r, br#"{"schemaVersion":2,"schemaVersion":3,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#)
        },
        expect: &[Expect(Inspect, 2, "HTTP 500"), Expect(Migrate, 2, "HTTP 500")],
    },
    // --- descriptors that lie ---------------------------------------------------------------------
    Case {
        name: "att-layer-absurd-size",
        plant: |k, r| att_edited(k, r, |v| v["layers"][0]["size"] = json!(u64::MAX / 2)),
        expect: &[
            Expect(Inspect, 1, "more than the limit"),
            Expect(Verify, 1, "more than the limit"),
            Expect(Migrate, 1, "more than the limit"),
        ],
    },
    Case {
        name: "att-layer-negative-size",
        plant: |k, r| att_edited(k, r, |v| v["layers"][0]["size"] = json!(-1)),
        expect: &[Expect(Inspect, 1, "expected u64"), Expect(Migrate, 1, "expected u64")],
    },
    Case {
        name: "att-layer-size-too-small",
        plant: |k, r| att_edited(k, r, |v| v["layers"][0]["size"] = json!(10)),
        expect: &[
            Expect(Verify, 1, "the descriptor says 10 bytes"),
            Expect(Migrate, 1, "the descriptor says 10 bytes"),
        ],
    },
    Case {
        name: "att-layer-size-too-big",
        plant: |k, r| {
            att_edited(k, r, |v| {
                let n = v["layers"][0]["size"].as_u64().unwrap();
                v["layers"][0]["size"] = json!(n + 100)
            })
        },
        expect: &[Expect(Verify, 1, "but the blob has"), Expect(Migrate, 1, "but the blob has")],
    },
    Case {
        name: "att-layer-blob-digest-mismatch",
        plant: att_layer_blob_digest_mismatch,
        expect: &[Expect(Verify, 1, "content digest mismatch"), Expect(Migrate, 1, "content digest mismatch")],
    },
    Case {
        name: "att-layer-blob-missing",
        plant: |k, r| att_edited(k, r, |v| v["layers"][0]["digest"] = json!(Digest::sha256(b"nowhere").to_string())),
        expect: &[Expect(Verify, 2, "BLOB_UNKNOWN"), Expect(Migrate, 2, "BLOB_UNKNOWN")],
    },
    Case {
        name: "att-layer-digest-not-hex",
        plant: |k, r| att_edited(k, r, |v| v["layers"][0]["digest"] = json!("sha256:zzzz")),
        expect: &[Expect(Inspect, 1, "64 lowercase hex"), Expect(Migrate, 1, "64 lowercase hex")],
    },
    Case {
        name: "att-layer-media-type-lies",
        plant: |k, r| {
            Some(k.image_with(r, |s| {
                let mut l = good_layer(s);
                l.media_type = "application/x-garbage";
                vec![l]
            }))
        },
        expect: &[Expect(Verify, 0, "\"verified\": true"), Expect(Migrate, 0, "migrated")],
    },
    Case {
        name: "att-1001-layers",
        plant: att_too_many_layers,
        expect: &[
            Expect(Inspect, 1, "more than the limit of 1000"),
            Expect(Verify, 1, "more than the limit of 1000"),
            Expect(Migrate, 1, "more than the limit of 1000"),
        ],
    },
    // --- the DSSE envelope in the layer -----------------------------------------------------------
    Case {
        name: "envelope-truncated-json",
        plant: |k, r| att_layer(k, r, |s| envelope(stmt(s))[..60].to_vec()),
        expect: &[Expect(Verify, 1, "EOF while parsing"), Expect(Migrate, 1, "EOF while parsing")],
    },
    Case {
        name: "envelope-not-utf8",
        plant: |k, r| att_layer(k, r, |_| b"{\"payloadType\":\"\xff\",\"payload\":\"\",\"signatures\":[]}".to_vec()),
        expect: &[Expect(Verify, 1, "invalid unicode"), Expect(Migrate, 1, "invalid unicode")],
    },
    Case {
        name: "envelope-nesting-bomb",
        plant: |k, r| att_layer(k, r, |_| bomb(200_000)),
        expect: &[Expect(Verify, 1, "recursion limit"), Expect(Migrate, 1, "recursion limit")],
    },
    Case {
        name: "envelope-invalid-base64-payload",
        plant: |k, r| att_layer(k, r, |_| envelope_json(mt::IN_TOTO, "%%%not base64%%%", "c2ln")),
        expect: &[Expect(Verify, 1, "`payload`: invalid base64"), Expect(Migrate, 1, "`payload`: invalid base64")],
    },
    Case {
        name: "envelope-invalid-base64-signature",
        plant: |k, r| att_layer(k, r, |s| envelope_json(mt::IN_TOTO, &B64.encode(stmt(s)), "!!!")),
        expect: &[Expect(Verify, 1, "`sig`: invalid base64"), Expect(Migrate, 1, "`sig`: invalid base64")],
    },
    Case {
        name: "envelope-payload-type-not-in-toto",
        plant: envelope_payload_type_text,
        expect: &[Expect(Verify, 1, "not an in-toto statement"), Expect(Migrate, 1, "not an in-toto statement")],
    },
    Case {
        name: "envelope-no-signatures",
        plant: |k, r| {
            att_layer(k, r, |s| {
                serde_json::to_vec(
                    &json!({"payloadType": mt::IN_TOTO, "payload": B64.encode(stmt(s)), "signatures": []}),
                )
                .unwrap()
            })
        },
        expect: &[Expect(Verify, 1, "no signatures"), Expect(Migrate, 1, "no signatures")],
    },
    Case {
        name: "envelope-garbage-signature",
        plant: |k, r| att_layer(k, r, |s| envelope_json(mt::IN_TOTO, &B64.encode(stmt(s)), &B64.encode([7u8; 512]))),
        expect: &[Expect(Verify, 1, "signature-invalid"), Expect(Migrate, 1, "signature-invalid")],
    },
    Case {
        name: "envelope-wrong-key-type",
        plant: |k, r| att_layer(k, r, |s| kit::envelope_by(stmt(s), TestKey::Rsa2048)),
        expect: &[Expect(Verify, 1, "signature-invalid"), Expect(Migrate, 1, "signature-invalid")],
    },
    Case {
        name: "statement-without-subject",
        plant: |k, r| {
            att_layer(k, r, |_| {
                envelope(
                    serde_json::to_vec(
                        &json!({"_type": STATEMENT_V01, "predicateType": kit::PREDICATE, "predicate": {}}),
                    )
                    .unwrap(),
                )
            })
        },
        expect: &[Expect(Verify, 1, "no subject"), Expect(Migrate, 1, "no subject")],
    },
    Case {
        name: "statement-subject-mismatch",
        plant: |k, r| att_layer(k, r, |_| envelope(stmt(&Digest::sha256(b"another image")))),
        expect: &[Expect(Verify, 1, "subject-mismatch"), Expect(Migrate, 1, "not about the subject")],
    },
    Case {
        name: "statement-not-json",
        plant: |k, r| att_layer(k, r, |_| envelope(b"this is not a statement".to_vec())),
        expect: &[
            Expect(Verify, 1, "in-toto statement: invalid JSON"),
            Expect(Migrate, 1, "in-toto statement: invalid JSON"),
        ],
    },
    Case {
        name: "statement-nesting-bomb",
        plant: |k, r| att_layer(k, r, |_| envelope(bomb(100_000))),
        expect: &[Expect(Verify, 1, "recursion limit"), Expect(Migrate, 1, "recursion limit")],
    },
    Case {
        name: "statement-subject-digest-garbage",
        plant: |k, r| {
            att_layer(k, r, |_| {
                envelope(serde_json::to_vec(&json!({"_type": STATEMENT_V01, "predicateType": kit::PREDICATE, "subject": [{"name": "x", "digest": {"sha256": 12}}], "predicate": {}})).unwrap())
            })
        },
        expect: &[Expect(Verify, 1, "is not a string"), Expect(Migrate, 1, "is not a string")],
    },
    // --- certificates and transparency-log material in the annotations ----------------------------
    Case {
        name: "certificate-not-pem",
        plant: |k, r| att_layer_ann(k, r, &[(ann::COSIGN_CERTIFICATE, "not a certificate")]),
        expect: &[Expect(Verify, 1, "expected one certificate"), Expect(Migrate, 1, "expected one certificate")],
    },
    Case {
        name: "certificate-pem-garbage-der",
        plant: |k, r| {
            att_layer_ann(
                k,
                r,
                &[(
                    ann::COSIGN_CERTIFICATE,
                    "-----BEGIN CERTIFICATE-----\nZ2FyYmFnZSBkZXI=\n-----END CERTIFICATE-----\n",
                )],
            )
        },
        expect: &[Expect(Verify, 1, "not a DER X.509 certificate"), Expect(Migrate, 1, "not a DER X.509 certificate")],
    },
    Case {
        name: "rekor-bundle-not-json",
        plant: |k, r| att_layer_ann(k, r, &[(ann::COSIGN_BUNDLE, "{{{{")]),
        expect: &[Expect(VerifyTlog, 1, "legacy Rekor bundle"), Expect(MigrateTlog, 1, "legacy Rekor bundle")],
    },
    Case {
        name: "rekor-bundle-garbage-set",
        plant: rekor_garbage_set,
        expect: &[Expect(VerifyTlog, 1, "set-invalid"), Expect(MigrateTlog, 1, "set-invalid")],
    },
    Case {
        name: "rekor-bundle-body-for-another-envelope",
        plant: rekor_other_envelope,
        expect: &[Expect(VerifyTlog, 1, "body-mismatch"), Expect(MigrateTlog, 1, "body-mismatch")],
    },
    Case {
        name: "rekor-bundle-body-not-base64",
        plant: rekor_body_not_base64,
        expect: &[
            Expect(VerifyTlog, 1, "`Payload.body`: invalid base64"),
            Expect(MigrateTlog, 1, "`Payload.body`: invalid base64"),
        ],
    },
    // --- subjects, referrers and their indexes ----------------------------------------------------
    Case {
        name: "referrers-tag-holds-a-manifest",
        plant: referrers_tag_holds_manifest,
        expect: &[Expect(Inspect, 1, "not an image index"), Expect(Migrate, 1, "not an image index")],
    },
    Case {
        name: "referrers-index-10000-entries",
        plant: referrers_index_10000,
        expect: &[Expect(Inspect, 2, "manifest is missing"), Expect(Migrate, 2, "no longer has")],
    },
    Case {
        name: "referrer-whose-subject-is-itself",
        plant: referrer_is_own_subject,
        expect: &[Expect(Inspect, 0, "referrer-is-its-subject"), Expect(Verify, 0, "\"verified\": true")],
    },
    Case {
        name: "referrer-subject-is-another-image",
        plant: referrer_for_another_image,
        expect: &[Expect(Inspect, 0, "referrer-subject-mismatch")],
    },
    Case {
        name: "referrers-index-entry-digest-garbage",
        plant: referrers_index_digest_garbage,
        expect: &[Expect(Inspect, 1, "64 lowercase hex"), Expect(Migrate, 1, "64 lowercase hex")],
    },
    Case { name: "referrer-bundle-garbage", plant: referrer_bundle_garbage, expect: &[Expect(Verify, 1, "bundle")] },
    Case {
        name: "referrer-manifest-missing",
        plant: referrer_missing,
        expect: &[Expect(Inspect, 2, "manifest is missing"), Expect(Verify, 2, "manifest is missing")],
    },
    Case {
        name: "referrer-manifest-digest-mismatch",
        plant: referrer_digest_mismatch,
        expect: &[Expect(Inspect, 1, "content digest mismatch"), Expect(Verify, 1, "content digest mismatch")],
    },
    Case {
        name: "subject-index-10000-entries",
        plant: subject_index_10000,
        expect: &[Expect(Inspect, 1, "more than the limit of 1000"), Expect(Verify, 0, "\"verified\": true")],
    },
    Case {
        name: "subject-missing-orphaned-att",
        plant: orphaned,
        expect: &[Expect(Migrate, 0, "orphaned"), Expect(Inspect, 0, "\"present\": false")],
    },
    Case { name: "sig-truncated-json", plant: sig_truncated, expect: &[Expect(Migrate, 2, "HTTP 500")] },
    Case { name: "repository-100000-tags", plant: tags_100000, expect: &[Expect(Migrate, 0, "migrated")] },
];

// --- planting ------------------------------------------------------------------------------------

/// A JSON nesting bomb: `depth` open arrays, closed.
fn bomb(depth: usize) -> Vec<u8> {
    let mut b = vec![b'['; depth];
    b.extend(std::iter::repeat_n(b']', depth));
    b
}

/// The bytes of a well-formed `.att` manifest for a fresh subject (its blobs pushed).
fn good_att_bytes(k: &Kit, repo: &str) -> Vec<u8> {
    let subject = k.subject(&format!("{repo}-src"));
    let l = good_layer(&subject);
    k.blob(repo, l.bytes.clone());
    let (manifest, config) = att2ref::demo::oci::legacy_manifest_and_config(&[l], "2024-01-01T00:00:00Z");
    k.blob(repo, config);
    manifest
}

/// A subject whose `.att` tag holds exactly `bytes` (stored on disk under their digest).
fn raw_att(k: &Kit, repo: &str, bytes: &[u8]) -> Option<Digest> {
    Some(k.image_with_raw_att(repo, bytes, None))
}

fn att_manifest_digest_mismatch(k: &Kit, repo: &str) -> Option<Digest> {
    let good = good_att_bytes(k, repo);
    let mut bad = good.clone();
    bad.extend_from_slice(b"   ");
    Some(k.image_with_raw_att(repo, &bad, Some(Digest::sha256(&good))))
}

fn att_manifest_over_4mib(k: &Kit, repo: &str) -> Option<Digest> {
    let good = good_att_bytes(k, repo);
    let mut v: Value = serde_json::from_slice(&good).unwrap();
    v["annotations"] = json!({"padding": "x".repeat(4 * 1024 * 1024 + 10)});
    raw_att(k, repo, &serde_json::to_vec(&v).unwrap())
}

fn att_is_index(k: &Kit, repo: &str) -> Option<Digest> {
    let subject = k.subject(repo);
    let index = json!({"schemaVersion": 2, "mediaType": mt::OCI_INDEX, "manifests": [{"mediaType": mt::OCI_MANIFEST, "digest": subject.to_string(), "size": 1}]});
    k.fs_manifest(
        repo,
        &Digest::sha256(index.to_string().as_bytes()),
        index.to_string().as_bytes(),
        &[&subject.cosign_tag("att")],
    );
    Some(subject)
}

fn att_index_served_as_manifest(k: &Kit, repo: &str) -> Option<Digest> {
    let subject = k.subject(repo);
    let body = json!({"schemaVersion": 2, "mediaType": mt::OCI_MANIFEST, "manifests": [{"mediaType": mt::OCI_MANIFEST, "digest": subject.to_string(), "size": 1}]});
    raw_att_for(k, repo, &subject, body.to_string().as_bytes());
    Some(subject)
}

fn raw_att_for(k: &Kit, repo: &str, subject: &Digest, bytes: &[u8]) {
    k.fs_manifest(repo, &Digest::sha256(bytes), bytes, &[&subject.cosign_tag("att")]);
}

/// A subject with a good layer, its `.att` manifest JSON edited, stored on disk.
fn att_edited(k: &Kit, repo: &str, edit: impl FnOnce(&mut Value)) -> Option<Digest> {
    let subject = k.subject(repo);
    let l = good_layer(&subject);
    k.blob(repo, l.bytes.clone());
    let (manifest, config) = kit::edited_att(&[l], edit);
    k.blob(repo, config);
    raw_att_for(k, repo, &subject, &manifest);
    Some(subject)
}

fn att_layer_blob_digest_mismatch(k: &Kit, repo: &str) -> Option<Digest> {
    let subject = k.subject(repo);
    let l = good_layer(&subject);
    let (manifest, config) =
        att2ref::demo::oci::legacy_manifest_and_config(std::slice::from_ref(&l), "2024-01-01T00:00:00Z");
    k.blob(repo, config);
    // Same length, one byte different: only the digest can tell.
    let mut bad = l.bytes.clone();
    let last = bad.len() - 3;
    bad[last] ^= 1;
    k.fs_blob(repo, &Digest::sha256(&l.bytes), &bad);
    raw_att_for(k, repo, &subject, &manifest);
    Some(subject)
}

fn att_too_many_layers(k: &Kit, repo: &str) -> Option<Digest> {
    Some(k.image_with(repo, |s| {
        let l = good_layer(s);
        vec![l; 1001]
    }))
}

/// A subject whose `.att` has one layer with the bytes `make(subject)`, pushed through the API.
fn att_layer(k: &Kit, repo: &str, make: impl FnOnce(&Digest) -> Vec<u8>) -> Option<Digest> {
    Some(k.image_with(repo, |s| vec![layer(make(s))]))
}

/// A subject whose `.att` has one good layer with extra annotations.
fn att_layer_ann(k: &Kit, repo: &str, extra: &[(&str, &str)]) -> Option<Digest> {
    Some(k.image_with(repo, |s| vec![layer_with(envelope(stmt(s)), extra)]))
}

fn envelope_payload_type_text(k: &Kit, repo: &str) -> Option<Digest> {
    att_layer(k, repo, |s| {
        let payload = stmt(s);
        let sig = kit::KEY.signer().sign(&att2ref::demo::dsse::pae("text/plain", &payload)).unwrap();
        envelope_json("text/plain", &B64.encode(&payload), &B64.encode(sig))
    })
}

fn rekor_garbage_set(k: &Kit, repo: &str) -> Option<Digest> {
    Some(k.image_with(repo, |s| {
        let env = envelope(stmt(s));
        let mut bundle: Value = serde_json::from_str(&kit::rekor_bundle(&kit::dsse_body_for(&env))).unwrap();
        bundle["SignedEntryTimestamp"] = json!(B64.encode([0x30u8, 0x03, 0x02, 0x01, 0x00]));
        vec![layer_with(env, &[(ann::COSIGN_BUNDLE, &bundle.to_string())])]
    }))
}

fn rekor_other_envelope(k: &Kit, repo: &str) -> Option<Digest> {
    Some(k.image_with(repo, |s| {
        let env = envelope(stmt(s));
        let other = envelope(statement(STATEMENT_V01, "x", s, "https://example.test/other", &json!({})));
        let bundle = kit::rekor_bundle(&kit::dsse_body_for(&other));
        vec![layer_with(env, &[(ann::COSIGN_BUNDLE, &bundle)])]
    }))
}

fn rekor_body_not_base64(k: &Kit, repo: &str) -> Option<Digest> {
    Some(k.image_with(repo, |s| {
        let env = envelope(stmt(s));
        let mut bundle: Value = serde_json::from_str(&kit::rekor_bundle(&kit::dsse_body_for(&env))).unwrap();
        bundle["Payload"]["body"] = json!("***not base64***");
        vec![layer_with(env, &[(ann::COSIGN_BUNDLE, &bundle.to_string())])]
    }))
}

/// An image manifest: the empty config and one layer.
fn artifact(
    k: &Kit,
    repo: &str,
    artifact_type: &str,
    layer: &[u8],
    layer_type: &str,
    subject: Option<&Digest>,
) -> Vec<u8> {
    k.blob(repo, &b"{}"[..]);
    k.blob(repo, layer.to_vec());
    let mut m = json!({
        "schemaVersion": 2, "mediaType": mt::OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": mt::OCI_EMPTY, "digest": Digest::sha256(b"{}").to_string(), "size": 2},
        "layers": [{"mediaType": layer_type, "digest": Digest::sha256(layer).to_string(), "size": layer.len()}],
    });
    if let Some(s) = subject {
        let size =
            k.rt.block_on(att2ref::store::Repository::head_manifest(&k.repo(repo), &s.to_string()))
                .unwrap()
                .unwrap()
                .size;
        m["subject"] = json!({"mediaType": mt::OCI_MANIFEST, "digest": s.to_string(), "size": size});
    }
    serde_json::to_vec(&m).unwrap()
}

fn tag_schema_index(entries: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": mt::OCI_INDEX, "manifests": entries})).unwrap()
}

fn referrers_tag_holds_manifest(k: &Kit, repo: &str) -> Option<Digest> {
    let subject = k.image_with(repo, |s| vec![good_layer(s)]);
    let m = artifact(k, repo, "application/x-not-an-index", b"x", "application/octet-stream", None);
    k.manifest(repo, m, mt::OCI_MANIFEST, Some(&subject.referrers_tag()));
    Some(subject)
}

fn referrers_index_10000(k: &Kit, repo: &str) -> Option<Digest> {
    let subject = k.image_with(repo, |s| vec![good_layer(s)]);
    let entries: Vec<Value> = (0..10_000u32)
        .map(|i| json!({"mediaType": mt::OCI_MANIFEST, "digest": Digest::sha256(&i.to_be_bytes()).to_string(), "size": 100, "artifactType": mt::BUNDLE_V03}))
        .collect();
    let index = tag_schema_index(&entries);
    k.fs_manifest(repo, &Digest::sha256(&index), &index, &[&subject.referrers_tag()]);
    Some(subject)
}

fn referrer_is_own_subject(k: &Kit, repo: &str) -> Option<Digest> {
    let subject = k.image_with(repo, |s| vec![good_layer(s)]);
    let size =
        k.rt.block_on(att2ref::store::Repository::head_manifest(&k.repo(repo), &subject.to_string()))
            .unwrap()
            .unwrap()
            .size;
    let index = tag_schema_index(&[
        json!({"mediaType": mt::OCI_MANIFEST, "digest": subject.to_string(), "size": size, "artifactType": mt::BUNDLE_V03}),
    ]);
    k.fs_manifest(repo, &Digest::sha256(&index), &index, &[&subject.referrers_tag()]);
    Some(subject)
}

fn referrer_bundle_garbage(k: &Kit, repo: &str) -> Option<Digest> {
    let subject = k.subject(repo);
    let m = artifact(k, repo, mt::BUNDLE_V03, b"{\"mediaType\": 17, garbage", mt::BUNDLE_V03, Some(&subject));
    let d = k.manifest(repo, m.clone(), mt::OCI_MANIFEST, None);
    let index = tag_schema_index(&[
        json!({"mediaType": mt::OCI_MANIFEST, "digest": d.to_string(), "size": m.len(), "artifactType": mt::BUNDLE_V03}),
    ]);
    k.fs_manifest(repo, &Digest::sha256(&index), &index, &[&subject.referrers_tag()]);
    Some(subject)
}

fn referrer_missing(k: &Kit, repo: &str) -> Option<Digest> {
    let subject = k.subject(repo);
    let index = tag_schema_index(&[
        json!({"mediaType": mt::OCI_MANIFEST, "digest": Digest::sha256(b"gone").to_string(), "size": 300, "artifactType": mt::BUNDLE_V03}),
    ]);
    k.fs_manifest(repo, &Digest::sha256(&index), &index, &[&subject.referrers_tag()]);
    Some(subject)
}

fn referrer_digest_mismatch(k: &Kit, repo: &str) -> Option<Digest> {
    let subject = k.subject(repo);
    let m = artifact(k, repo, mt::BUNDLE_V03, b"{}", mt::BUNDLE_V03, Some(&subject));
    let claimed = Digest::sha256(b"what the index says");
    k.fs_manifest(repo, &claimed, &m, &[]);
    let index = tag_schema_index(&[
        json!({"mediaType": mt::OCI_MANIFEST, "digest": claimed.to_string(), "size": m.len(), "artifactType": mt::BUNDLE_V03}),
    ]);
    k.fs_manifest(repo, &Digest::sha256(&index), &index, &[&subject.referrers_tag()]);
    Some(subject)
}

fn subject_index_10000(k: &Kit, repo: &str) -> Option<Digest> {
    let entries: Vec<Value> = (0..10_000u32)
        .map(|i| json!({"mediaType": mt::OCI_MANIFEST, "digest": Digest::sha256(&i.to_be_bytes()).to_string(), "size": 500, "platform": {"os": "linux", "architecture": format!("arch{i}")}}))
        .collect();
    let index = tag_schema_index(&entries);
    let d = Digest::sha256(&index);
    k.fs_manifest(repo, &d, &index, &["v1"]);
    let l = good_layer(&d);
    k.att(repo, &d, &[l]);
    Some(d)
}

fn orphaned(k: &Kit, repo: &str) -> Option<Digest> {
    let ghost = Digest::sha256(b"an image that was deleted");
    k.att(repo, &ghost, &[good_layer(&ghost)]);
    Some(ghost)
}

fn sig_truncated(k: &Kit, repo: &str) -> Option<Digest> {
    let subject = k.image_with(repo, |s| vec![good_layer(s)]);
    let bytes = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":"#;
    k.fs_manifest(repo, &Digest::sha256(bytes), bytes, &[&subject.cosign_tag("sig")]);
    Some(subject)
}

/// 100 000 tags (written on disk: pushing them would take minutes), one image with a good `.att`.
fn tags_100000(k: &Kit, repo: &str) -> Option<Digest> {
    let subject = k.image_with(repo, |s| vec![good_layer(s)]);
    k.fs_bulk_tags(repo, 100_000, &subject);
    None
}

fn att_manifest_4mib(k: &Kit, repo: &str) -> Option<Digest> {
    let subject = k.subject(repo);
    let l = good_layer(&subject);
    k.blob(repo, l.bytes.clone());
    let (manifest, config) = kit::edited_att(&[l], |v| v["annotations"] = json!({"padding": "p".repeat(4_190_000)}));
    k.blob(repo, config);
    k.manifest(repo, manifest, mt::OCI_MANIFEST, Some(&subject.cosign_tag("att")));
    Some(subject)
}

fn referrer_for_another_image(k: &Kit, repo: &str) -> Option<Digest> {
    let subject = k.image_with(repo, |s| vec![good_layer(s)]);
    let other = k.subject_labeled(repo, "another image");
    let m = artifact(k, repo, "application/x-scan", b"{}", "application/json", Some(&other));
    let d = k.manifest(repo, m.clone(), mt::OCI_MANIFEST, None);
    let index = tag_schema_index(&[
        json!({"mediaType": mt::OCI_MANIFEST, "digest": d.to_string(), "size": m.len(), "artifactType": "application/x-scan"}),
    ]);
    k.fs_manifest(repo, &Digest::sha256(&index), &index, &[&subject.referrers_tag()]);
    Some(subject)
}

fn referrers_index_digest_garbage(k: &Kit, repo: &str) -> Option<Digest> {
    let subject = k.image_with(repo, |s| vec![good_layer(s)]);
    let index = tag_schema_index(&[
        json!({"mediaType": mt::OCI_MANIFEST, "digest": "sha256:not-hex", "size": 3, "artifactType": mt::BUNDLE_V03}),
    ]);
    k.fs_manifest(repo, &Digest::sha256(&index), &index, &[&subject.referrers_tag()]);
    Some(subject)
}
