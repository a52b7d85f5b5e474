"""Strictly validate Sigstore bundle files with sigstore-models (PyPI).

Usage: python validate_bundles.py BUNDLE.json...

sigstore-models is strict by construction: unknown fields are rejected, protobuf uint64 values must be
JSON strings, exactly one key variant and one content variant must be set, `tlogEntries` is required,
and only the bundle media-type literals are accepted. On top of that, each bundle must survive a round
trip: what the model serialises back must equal the input as JSON values, so nothing was dropped and
every bytes field is canonical standard base64 (the model's decoder alone tolerates more).

Prints one JSON line per file, {"path", "ok", "mediaType", "error"}; exits 1 if any file failed,
2 on bad usage.
"""

import json
import sys

from sigstore_models.bundle.v1 import Bundle


def first_difference(a, b, path):
    """The JSON path of the first place `a` and `b` differ, with both values; None when equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key} (present only in {'input' if key in a else 'output'})"
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if a == b and type(a) is type(b):
        return None
    return f"{path or '.'}: input {json.dumps(a)[:120]}, output {json.dumps(b)[:120]}"


def validate(path):
    with open(path, "rb") as f:
        raw = f.read()
    bundle = Bundle.from_json(raw)
    original = json.loads(raw)
    again = json.loads(bundle.to_json())
    where = first_difference(original, again, "")
    if where is not None:
        raise ValueError(f"round trip through sigstore-models changed the bundle at {where}")
    return bundle.media_type


def main(argv):
    if not argv:
        print("usage: validate_bundles.py BUNDLE.json...", file=sys.stderr)
        return 2
    failed = 0
    for path in argv:
        media_type, error = None, None
        try:
            media_type = validate(path)
        except Exception as e:  # report every failure kind (I/O, JSON, pydantic) per file
            error = f"{type(e).__name__}: {e}"
            failed += 1
        print(json.dumps({"path": path, "ok": error is None, "mediaType": media_type, "error": error}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
