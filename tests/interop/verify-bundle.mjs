// Verify Sigstore bundles offline with sigstore-js (@sigstore/verify), under a public key.
//
// Usage: node verify-bundle.mjs JOB.json   (or the job on stdin)
// The job is a JSON array of {"bundlePath": "...", "publicKeyPemPath": "..."}.
// Prints one JSON line per bundle, {"path", "ok", "error"}, and exits 1 if any failed (2 on a bad job).
//
// `sigstore.verify()` cannot run offline (it fetches the trust root, and always wants a timestamp),
// so this takes the path it uses inside: bundleFromJSON -> toSignedEntity -> Verifier.verify, with
// trust material that holds no CA, TSA or log, only the given key. No threshold is relaxed beyond
// what a key-signed bundle without a log entry needs: 0 log entries, 0 SCTs, 0 timestamps.
//
// The key is handed out only for the hint cosign and sigstore-go compute (standard base64 of
// SHA-256 over the SPKI DER), so a bundle whose hint names another key fails.

import { readFileSync } from 'node:fs';
import { createHash, createPublicKey } from 'node:crypto';

import { bundleFromJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity } from '@sigstore/verify';

function readJob() {
  const source = process.argv[2];
  const text = source ? readFileSync(source, 'utf8') : readFileSync(0, 'utf8');
  const job = JSON.parse(text);
  if (!Array.isArray(job) || job.length === 0) {
    throw new Error('the job must be a non-empty JSON array of {bundlePath, publicKeyPemPath}');
  }
  for (const item of job) {
    if (typeof item?.bundlePath !== 'string' || typeof item?.publicKeyPemPath !== 'string') {
      throw new Error(`job entry ${JSON.stringify(item)} lacks bundlePath or publicKeyPemPath`);
    }
  }
  return job;
}

function keyHint(publicKey) {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

function trustMaterialFor(publicKey) {
  const expected = keyHint(publicKey);
  return {
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
    publicKey(hint) {
      if (hint !== expected) {
        throw new Error(`bundle key hint ${JSON.stringify(hint)} is not the given key's (${expected})`);
      }
      return { publicKey, validFor: () => true };
    },
  };
}

function verifyOne({ bundlePath, publicKeyPemPath }) {
  const publicKey = createPublicKey(readFileSync(publicKeyPemPath, 'utf8'));
  const bundle = bundleFromJSON(JSON.parse(readFileSync(bundlePath, 'utf8')));
  const verifier = new Verifier(trustMaterialFor(publicKey), {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  verifier.verify(toSignedEntity(bundle));
}

function describe(err) {
  const code = err?.code ? `${err.code}: ` : '';
  return `${err?.name ?? 'Error'}: ${code}${err?.message ?? String(err)}`;
}

let job;
try {
  job = readJob();
} catch (err) {
  console.error(`verify-bundle: bad job: ${describe(err)}`);
  process.exit(2);
}

let failed = 0;
for (const item of job) {
  let error = null;
  try {
    verifyOne(item);
  } catch (err) {
    error = describe(err);
    failed += 1;
  }
  console.log(JSON.stringify({ path: item.bundlePath, ok: error === null, error }));
}
process.exit(failed === 0 ? 0 : 1);
