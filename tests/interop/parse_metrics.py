"""Parse a Prometheus text-format file with the reference parser (prometheus_client) and print its samples
as JSON lines: {"name": ..., "labels": {...}, "value": ...}. Exit 1 when the file does not parse."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        for family in text_string_to_metric_families(text):
            if family.type != "gauge":
                raise ValueError(f"{family.name}: type {family.type}, expected gauge")
            for sample in family.samples:
                print(json.dumps({"name": sample.name, "labels": sample.labels, "value": sample.value}))
    except Exception as e:  # the parser raises ValueError and others on malformed input
        print(f"does not parse: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
