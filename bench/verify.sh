#!/usr/bin/env bash
# Verification throughput on the article's real .att layers, beside sha256sum over the same bytes, in one run.
# Usage: bench/verify.sh [ITERATIONS]     (results appended to bench/results/verify.md)
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-20}
corpus=../shared/corpus
[ -d "$corpus" ] || { echo "needs ../shared/corpus beside the repository" >&2; exit 2; }
mkdir -p bench/results
cargo build --release --quiet --example bench_verify

# sha256sum over exactly the bytes verification reads: both layers, ITERATIONS times.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
layers=("$corpus"/toddysm-cssc-pipeline/sigstore-test/sigstore-attestation/*.tar.gz)
for _ in $(seq "$iterations"); do cat "${layers[@]}"; done > "$tmp/bytes"
sha256sum "$tmp/bytes" >/dev/null  # warm the page cache
bytes=$(stat -c %s "$tmp/bytes")
start=$(date +%s.%N); sha256sum "$tmp/bytes" >/dev/null; end=$(date +%s.%N)
sha_line="sha256sum $bytes $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.6f", b-a}')"

results=$(target/release/examples/bench_verify "$corpus" "$iterations")
{
  echo "## $(date -u +%Y-%m-%dT%H:%M:%SZ) — $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1 /proc/loadavg)"
  echo
  echo "| measurement | bytes | seconds | MB/s | vs sha256sum |"
  echo "|---|---:|---:|---:|---:|"
  sha_rate=$(echo "$sha_line" | awk '{printf "%.1f", $2/$3/1e6}')
  printf '%s\n%s\n' "$sha_line" "$results" | while read -r name b s _; do
    rate=$(awk -v b="$b" -v s="$s" 'BEGIN{printf "%.1f", b/s/1e6}')
    ratio=$(awk -v r="$rate" -v x="$sha_rate" 'BEGIN{printf "%.2f", r/x}')
    echo "| $name | $b | $s | $rate | $ratio |"
  done
  echo
} | tee -a bench/results/verify.md
