#!/usr/bin/env bash
# att2ref copy beside skopeo copy of the same images plus their .att tags (a peer that converts nothing), in one run.
# Usage: bench/copy.sh [N...]     (default: $BENCH_N or "16 100"; results appended to bench/results/copy.md)
# Environment: BENCH_JOBS (parallelism of both, default 4), BENCH_SBOM_BYTES (default ~1.5 MB),
#              BENCH_TIMEOUT (seconds any one step may take, default 3600),
#              DOCKER_REGISTRY (default: docker-registry on PATH), SKOPEO (default: skopeo on PATH).
# Each N gets three fresh distribution 2.8.2 instances: A (the source), B (skopeo's destination), C (att2ref's);
# their storage is removed once the N is measured, and they are stopped on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a sizes <<< "${*:-${BENCH_N:-16 100}}"
jobs=${BENCH_JOBS:-4}
sbom_bytes=${BENCH_SBOM_BYTES:-1520000}
step_timeout=${BENCH_TIMEOUT:-3600}
registry_bin=${DOCKER_REGISTRY:-$(command -v docker-registry || true)}
skopeo_bin=${SKOPEO:-$(command -v skopeo || true)}
[ -x "$registry_bin" ] || { echo "needs docker-registry (CNCF distribution 2.8.2, Debian package docker-registry)" >&2; exit 2; }
[ -x "$skopeo_bin" ] || { echo "needs skopeo" >&2; exit 2; }
command -v python3 >/dev/null || { echo "needs python3 (free ports, JSON)" >&2; exit 2; }
command -v timeout >/dev/null || { echo "needs timeout (coreutils)" >&2; exit 2; }
mkdir -p bench/results
cargo build --release --quiet --bin att2ref --example bench_store
att2ref=target/release/att2ref
store=target/release/examples/bench_store
verify=(--plain-http --key fixtures/keys/rsa-4096.pub.pem --insecure-ignore-tlog)

work=$(mktemp -d)
largest=0; for n in "${sizes[@]}"; do [ "$n" -gt "$largest" ] && largest=$n; done
need_mb=$((largest * 8 * sbom_bytes / 1000000 + 200)); free_mb=$(df -Pm "$work" | awk 'NR==2 {print $4}')
[ "$free_mb" -gt "$need_mb" ] || { echo "needs ~$need_mb MB free under $work (TMPDIR), has $free_mb" >&2; rmdir "$work"; exit 2; }
pids=()
declare -A registry_pid
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
stop_registry() {
  local pid=${registry_pid[$1]}
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  rm -rf "$work/$1/data"
}
limited() { timeout --kill-after=30 "$step_timeout" "$@"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_registry NAME: a distribution instance on a free loopback port with its own storage. Sets $host.
start_registry() {
  local dir="$work/$1" port attempt
  for attempt in 1 2 3; do
    rm -rf "$dir"; mkdir -p "$dir/data"
    port=$(free_port)
    cat > "$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
    "$registry_bin" serve "$dir/config.yml" > "$dir/access.log" 2> "$dir/error.log" &
    pids+=("$!"); registry_pid[$1]=$!
    host=127.0.0.1:$port
    for _ in $(seq 100); do
      if curl -fsS -o /dev/null "http://$host/v2/" 2>/dev/null; then return 0; fi
      kill -0 "${pids[-1]}" 2>/dev/null || break
      sleep 0.1
    done
    kill "${pids[-1]}" 2>/dev/null || true
  done
  echo "registry $1 did not start:" >&2; cat "$dir/error.log" >&2; exit 1
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

rows=()
for n in "${sizes[@]}"; do
  repo=fleet-$n
  start_registry "a-$n"; a=$host
  start_registry "b-$n"; b=$host
  start_registry "c-$n"; c=$host
  limited "$store" "$a" "$repo" "$n" "$sbom_bytes" > "$work/$repo.tags" 2> "$work/$repo.seed.log"
  # Peer: skopeo copies each image and its .att tag as they are, J at a time.
  start=$(now)
  awk '{print $4; print $1}' "$work/$repo.tags" | limited xargs -P "$jobs" -I'{}' "$skopeo_bin" copy -q --retry-times 2 \
    --src-tls-verify=false --dest-tls-verify=false "docker://$a/$repo:{}" "docker://$b/$repo:{}"
  skopeo_s=$(elapsed "$start" "$(now)")
  # att2ref: the whole repository, each .att verified and converted into bundle referrers in C.
  start=$(now)
  limited "$att2ref" copy "${verify[@]}" --jobs "$jobs" -q -o json "$a/$repo" "$c/$repo" > "$work/$repo.json"
  copy_s=$(elapsed "$start" "$(now)")
  [ "$(json "$work/$repo.json" "d['totals']['outcomes'].get('copied', 0)")" = "$n" ] \
    || { echo "copy of $repo did not copy every image: $work/$repo.json" >&2; exit 1; }
  [ "$(json "$work/$repo.json" "d['totals']['referrers_converted']")" = "$((2 * n))" ] \
    || { echo "copy of $repo did not convert every attestation: $work/$repo.json" >&2; exit 1; }
  # The copy serves what the source serves: one image compared through get (legacy in A, bundle in C).
  first_tag=$(head -n1 "$work/$repo.tags" | cut -d' ' -f4)
  limited "$att2ref" get "${verify[@]}" --type custom --hint slsa -q --output "$work/a.out" "$a/$repo:$first_tag"
  limited "$att2ref" get "${verify[@]}" --type custom --hint slsa -q --output "$work/c.out" "$c/$repo:$first_tag"
  cmp -s "$work/a.out" "$work/c.out" || { echo "get gave different bytes from the source and the copy" >&2; exit 1; }
  stop_registry "a-$n"; stop_registry "b-$n"; stop_registry "c-$n"
  read -r downloaded uploaded requests < <(json "$work/$repo.json" \
    "'%d %d %d' % (d['requests']['bytes_downloaded'], d['requests']['bytes_uploaded'], d['requests']['requests'])")
  # Minimum: every image and .att byte read once, the image written once, and what att2ref wrote beyond the
  # image (bundles, referrer manifests, tag-schema indexes) written once.
  read -r att_bytes image_bytes < <(awk '{a+=$2+$3; i+=$5} END {printf "%.0f %.0f\n", a, i}' "$work/$repo.tags")
  minimum=$((att_bytes + image_bytes + uploaded))
  moved=$((downloaded + uploaded))
  rows+=("| $n | $jobs | $copy_s | $skopeo_s | **$(ratio "$copy_s" "$skopeo_s")** | $moved | $minimum | **$(ratio "$moved" "$minimum")** | $requests |")
  echo "N=$n: att2ref copy ${copy_s}s, skopeo ${skopeo_s}s" >&2
done

{
  echo "## $(date -u +%Y-%m-%dT%H:%M:%SZ) — $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "distribution $("$registry_bin" --version 2>/dev/null | awk '{print $NF}'), $("$skopeo_bin" --version), $("$att2ref" --version); SBOM $sbom_bytes B + SLSA 785 B per image, RSA-4096"
  echo
  echo "| N | jobs | att2ref copy s | skopeo copy s | copy/skopeo | bytes moved | minimum | bytes/minimum | requests |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
  echo
} | tee -a bench/results/copy.md
