#!/usr/bin/env bash
# Migration at scale on local CNCF distribution 2.8.2, beside skopeo copy of the same .att artifacts, in one run.
# Usage: bench/migrate.sh [N...]     (default: $BENCH_N or "100 1000"; results appended to bench/results/migrate.md)
# Environment: BENCH_JOBS (parallelism of migrate and skopeo, default 4), BENCH_SBOM_BYTES (default ~1.5 MB),
#              BENCH_ROUNDS (rounds per N, each on fresh registries: the table gives the median time of each
#              tool and every round's ratio; default 5 for N <= 100, else 1),
#              BENCH_READBACK (migrate's --readback: digest, the default, or full),
#              BENCH_TIMEOUT (seconds any one step may take before the run fails, default 3600),
#              DOCKER_REGISTRY (default: docker-registry on PATH), SKOPEO (default: skopeo on PATH).
# Unattended: every step has a time limit, each N gets fresh registries whose storage is removed once it is
# measured (disk use is that of the largest N), and the registries are stopped on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a sizes <<< "${*:-${BENCH_N:-100 1000}}"
jobs=${BENCH_JOBS:-4}
sbom_bytes=${BENCH_SBOM_BYTES:-1520000}
step_timeout=${BENCH_TIMEOUT:-3600}
readback=${BENCH_READBACK:-digest}
# The least the settle pass waits, once per repository, for a stale concurrent writer of a referrers index to
# land (`store::tag_schema::CONFIRM_DELAY`, 200–400 ms with jitter); skopeo maintains no index and has no such
# wait. The table shows the ratio with this much taken off as well.
settle_wait=0.20
need_skopeo=1 need_time=1
. bench/lib.sh

# Per image: the legacy .att and its bundles in A (~2 × 2.3 MB), the skopeo copy in B (~2.3 MB). Each N runs on
# fresh registries removed afterwards, so the largest N (or the three --jobs runs of the smallest) sets the need.
if [ -n "${BENCH_ROUNDS:-}" ] && ! [[ "$BENCH_ROUNDS" =~ ^[1-9][0-9]*$ ]]; then
  echo "BENCH_ROUNDS must be a positive whole number, not '$BENCH_ROUNDS'" >&2; exit 2
fi
rounds_for() { if [ -n "${BENCH_ROUNDS:-}" ]; then echo "$BENCH_ROUNDS"; elif [ "$1" -le 100 ]; then echo 5; else echo 1; fi; }
images=$((3 * ${sizes[0]})); for n in "${sizes[@]}"; do [ "$n" -gt "$images" ] && images=$n; done
need_disk $((images * 5 * sbom_bytes / 1000000 + 200))

# Body bytes the registry served to att2ref from byte offset $2 of access log $1 (cross-check of its counters).
served_bytes() { tail -c +"$(($2 + 1))" "$1" | awk '$6=="\"GET" && /att2ref/ && $10 ~ /^[0-9]+$/ {s+=$10} END {printf "%.0f", s}'; }

# seed REPO N: push N fleet images; tags and byte counts go to $work/REPO.tags.
seed() { limited "$store" "$host" "$1" "$2" "$sbom_bytes" > "$work/$1.tags" 2> "$work/$1.seed.log"; }

# migrate REPO JOBS: timed, with peak RSS; report in $work/REPO.json, time -v in $work/REPO.time, seconds in
# $migrate_s. Only the migrate process is timed: the check after it starts a Python interpreter, which
# alone takes 0.15-0.3 s on a loaded two-core machine (earlier runs counted it, against migrate).
migrate() {
  local start; start=$(now)
  limited /usr/bin/time -v -o "$work/$1.time" "$att2ref" migrate "${verify[@]}" --readback "$readback" --jobs "$2" -q -o json "$host/$1" \
    > "$work/$1.json"
  migrate_s=$(elapsed "$start" "$(now)")
  [ "$(json "$work/$1.json" "d['totals']['outcomes'].get('migrated', 0)")" = "$(wc -l < "$work/$1.tags")" ] \
    || { echo "migrate of $1 did not migrate every image: $work/$1.json" >&2; exit 1; }
}

rows=()
declare -A migrate_time
for n in "${sizes[@]}"; do
  rounds=$(rounds_for "$n")
  migrate_times=() skopeo_times=() round_ratios=()
  for r in $(seq "$rounds"); do
    repo=fleet-$n-r$r
    start_registry "a-$n"; a=$host
    start_registry "b-$n"; b=$host
    host=$a; seed "$repo" "$n"
    # Peer first: skopeo copies each .att (manifest, config, both layers) from A to B, J at a time.
    start=$(now)
    cut -d' ' -f1 "$work/$repo.tags" | limited xargs -P "$jobs" -I'{}' "$skopeo_bin" copy -q --retry-times 2 \
      --src-tls-verify=false --dest-tls-verify=false "docker://$a/$repo:{}" "docker://$b/$repo:{}"
    skopeo_s=$(elapsed "$start" "$(now)")
    log_offset=$(stat -c %s "$work/a-$n/access.log")
    migrate "$repo" "$jobs"
    served=$(served_bytes "$work/a-$n/access.log" "$log_offset")
    stop_registry "a-$n"; stop_registry "b-$n"
    migrate_times+=("$migrate_s"); skopeo_times+=("$skopeo_s"); round_ratios+=("$(ratio "$migrate_s" "$skopeo_s")")
    echo "N=$n round $r: migrate ${migrate_s}s, skopeo ${skopeo_s}s" >&2
  done
  # Bytes, requests, CPU and RSS are those of the last round (bytes and requests are the same in every round).
  migrate_s=$(median "${migrate_times[@]}"); skopeo_s=$(median "${skopeo_times[@]}")
  migrate_time[$n]=$migrate_s
  read -r downloaded uploaded requests < <(json "$work/$repo.json" \
    "'%d %d %d' % (d['requests']['bytes_downloaded'], d['requests']['bytes_uploaded'], d['requests']['requests'])")
  # Minimum: every .att manifest and blob read once, every bundle and referrer manifest written once. The bundle
  # blob sizes are the uploaded bytes less the referrer manifests (their sizes are in the report).
  read -r att_manifests att_blobs < <(awk '{m+=$2; b+=$3} END {printf "%.0f %.0f\n", m, b}' "$work/$repo.tags")
  referrer_manifests=$(json "$work/$repo.json" "sum(r['size'] for i in d['images'] for r in i['referrers'])")
  minimum=$((att_manifests + att_blobs + uploaded))
  rows+=("| $n | $jobs | $rounds | $migrate_s | $skopeo_s | **$(ratio "$migrate_s" "$skopeo_s")** | ${round_ratios[*]} | $(ratio "$(awk -v m="$migrate_s" -v w="$settle_wait" 'BEGIN{print m-w}')" "$skopeo_s") | $((downloaded + uploaded)) | $minimum | **$(ratio $((downloaded + uploaded)) "$minimum")** | $downloaded | $served | $(ratio "$downloaded" $((att_manifests + att_blobs))) | $requests | $(cpu_s "$work/$repo.time") | $(peak_rss_mb "$work/$repo.time") |")
  echo "N=$n: median migrate ${migrate_s}s, skopeo ${skopeo_s}s over $rounds round(s); referrer manifests $referrer_manifests B" >&2
done

# Peak RSS by --jobs, on fresh repositories of the smallest N.
small=${sizes[0]}
rss_rows=()
start_registry rss; a=$host
for j in 1 4 8; do
  repo=rss-j$j-$small
  seed "$repo" "$small"
  if [ "$j" = 8 ]; then
    # The legacy path, measured before this repository is migrated.
    att=$(head -n1 "$work/$repo.tags" | cut -d' ' -f1); image=sha256:${att#sha256-}; image=${image%.att}
    limited "$att2ref" get "${verify[@]}" --type custom --hint slsa --stats=json --output "$work/legacy.out" "$a/$repo@$image" \
      2> "$work/get-legacy.json"
  fi
  migrate "$repo" "$j"; s=$migrate_s
  rss_rows+=("| $j | $small | $s | $(cpu_s "$work/$repo.time") | **$(peak_rss_mb "$work/$repo.time")** |")
  if [ "$j" = 8 ]; then
    limited "$att2ref" get "${verify[@]}" --type custom --hint slsa --stats=json --output "$work/referrer.out" "$a/$repo@$image" \
      2> "$work/get-referrer.json"
    cmp -s "$work/legacy.out" "$work/referrer.out" || { echo "get gave different SLSA bytes before and after" >&2; exit 1; }
    bundle=$(json "$work/get-referrer.json" "d['read']['blobBytes']")
  fi
done

get_row() { # get_row NAME FILE
  json "$2" "'| $1 | %s | %d | %d | %d |' % (d['answeredBy'], d['requests'], d['bytesDownloaded'], d['bytesDownloaded'] - $bundle)"
}

{
  result_heading
  echo
  echo "distribution $("$registry_bin" --version 2>/dev/null | awk '{print $NF}'), $("$skopeo_bin" --version), $("$att2ref" --version) (\`migrate --readback $readback\`); SBOM $sbom_bytes B + SLSA 785 B per image, RSA-4096"
  echo
  echo "Times are medians over the rounds (each on fresh registries); \`migrate/skopeo\` is the ratio of the medians, followed by each round's own ratio."
  echo
  echo "| N | jobs | rounds | migrate s | skopeo copy s | migrate/skopeo | per round | (migrate − 0.2 s)/skopeo | bytes moved | minimum | bytes/minimum | bytes read | GET bytes in access log | read/legacy | requests | migrate CPU s | peak RSS MB |"
  echo "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
  echo
  if [ "${#sizes[@]}" -ge 2 ]; then
    first=${sizes[0]}; last=${sizes[-1]}
    echo "Growth: time($last)/time($first) = **$(ratio "${migrate_time[$last]}" "${migrate_time[$first]}")** ($(ratio "$last" "$first")× the images)"
    echo
  fi
  echo "| --jobs | N | migrate s | CPU s | peak RSS MB |"
  echo "|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rss_rows[@]}"
  echo
  echo "\`get --type custom --hint slsa\` of one image (bundle blob $bundle B):"
  echo
  echo "| path | answered by | requests | bytes downloaded | bytes beyond the bundle |"
  echo "|---|---|---:|---:|---:|"
  get_row "legacy .att (before migration)" "$work/get-legacy.json"
  get_row "referrer (after migration)" "$work/get-referrer.json"
  echo
} | tee -a bench/results/migrate.md
