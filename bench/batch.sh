#!/usr/bin/env bash
# The batch engine on local CNCF distribution 2.8.2: N repositories of 1 image each against 1 repository of
# N images (distinct images, same bytes per image), migrated with the same --jobs, in one run.
# Then the wide case: R repositories × 10 images each, the whole registry at once (--all-repos, the catalog
# streamed), at --jobs 8, for R = 100 and 1000, then R = 100 again: time ratio (against the mean of the
# smaller size's runs before and after the larger) and peak RSS of the larger; per image, requests, the CPU of
# att2ref and of the registry, and the machine's idle, I/O wait and stolen time.
# Usage: bench/batch.sh [N...]     (default: $BENCH_N or "64 1000"; results appended to bench/results/batch.md)
# Environment: BENCH_JOBS (default 4), BENCH_SBOM_BYTES (default ~1.5 MB), BENCH_TIMEOUT (seconds per step,
#              default 3600), DOCKER_REGISTRY (default: docker-registry on PATH); for the wide case
#              BENCH_WIDE (default "100 1000"; empty skips it), BENCH_WIDE_IMAGES (10), BENCH_WIDE_JOBS (8),
#              BENCH_WIDE_SBOM_BYTES (default 16000: 10,000 images of 1.5 MB would need ~30 GB of disk; the
#              wide case measures per-repository and per-image overhead and memory, not bytes); for the
#              shared case BENCH_SHARED (default "10 100"; empty skips it): R repositories × 2 images whose
#              legacy tags are all in one attachments repository (cosign's COSIGN_REPOSITORY), migrated with
#              --all-repos --attachments-repository, then pruned with --apply (every repository deletes its
#              migrated .att tags); requests counted in the registry's access log.
# Targets (issue "batch engine"): time(N × 1) / time(1 × N) <= 1.2 (before the batch engine, repositories
# were migrated one after another and --jobs worked only inside one: 5.3 at N = 32); wide:
# time(1000 × 10) / time(100 × 10) <= 10.5 and peak RSS <= 200 MB at --jobs 8.
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a sizes <<< "${*:-${BENCH_N:-64 1000}}"
read -r -a wide <<< "${BENCH_WIDE-100 1000}"
read -r -a shared <<< "${BENCH_SHARED-10 100}"
wide_images=${BENCH_WIDE_IMAGES:-10}
wide_jobs=${BENCH_WIDE_JOBS:-8}
wide_sbom=${BENCH_WIDE_SBOM_BYTES:-16000}
jobs=${BENCH_JOBS:-4}
sbom_bytes=${BENCH_SBOM_BYTES:-1520000}
step_timeout=${BENCH_TIMEOUT:-3600}
need_time=1
. bench/lib.sh

# migrate NAME TARGET...: timed; every image must be migrated.
migrate() {
  local name=$1; shift
  local start; start=$(now)
  limited "$att2ref" migrate "${verify[@]}" --jobs "$jobs" -q -o json "$@" > "$work/$name.json"
  migrate_s=$(elapsed "$start" "$(now)")
  local migrated; migrated=$(json "$work/$name.json" "d['totals']['outcomes'].get('migrated', 0)")
  [ "$migrated" = "$expected" ] || { echo "$name: $migrated of $expected images migrated ($work/$name.json)" >&2; exit 1; }
}

rows=()
for n in "${sizes[@]}"; do
  start_registry "n-$n"
  limited "$store" "$host" single "$n" "$sbom_bytes" 0 > /dev/null 2> "$work/seed.log"
  : > "$work/many.list"
  for i in $(seq 0 $((n - 1))); do
    limited "$store" "$host" "many/r$i" 1 "$sbom_bytes" $((n + i)) > /dev/null 2>> "$work/seed.log"
    echo "$host/many/r$i" >> "$work/many.list"
  done
  expected=$n
  migrate single "$host/single"; single_s=$migrate_s
  migrate many --from-file "$work/many.list"; many_s=$migrate_s
  rows+=("| $n | $jobs | $single_s | $many_s | **$(ratio "$many_s" "$single_s")** |")
  echo "N=$n: 1 × N ${single_s}s, N × 1 ${many_s}s" >&2
  stop_registry "n-$n"
done

# The wide case: the whole registry (--all-repos) of R repositories × $wide_images images.
declare -A wide_time wide_rss
wide_rows=()
# The idle, iowait and steal ticks of /proc/stat's all-cores line.
machine_ticks() { awk '$1 == "cpu" {print $5, $6, $9}' /proc/stat; }

# wide_run R RUN: migrate a fresh registry of R repositories; sets wide_s. RUN names the run in the table.
wide_run() {
  local r=$1 run=$2 name=wide-$1-$2
  start_registry "$name"
  # First image number of repository i: i × images (distinct images across the registry).
  seq 0 $((r - 1)) | limited xargs -P 2 -I'{}' sh -c \
    '"$1" "$2" "wide/r$3" "$4" "$5" $(($3 * $4)) > /dev/null' _ "$store" "$host" '{}' "$wide_images" "$wide_sbom" \
    2>> "$work/seed.log"
  expected=$((r * wide_images))
  # Per image, independent of wall-clock noise: requests (the registry's access log), att2ref's CPU and
  # the registry's own CPU (/proc/PID/stat utime + stime). Constant per image = linear in the images.
  log="$work/$name/access.log"; pid=${registry_pid[$name]}
  requests_before=$(grep -c '"[A-Z]* /v2/' "$log" || true)
  registry_before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  # The whole machine's idle, I/O wait and stolen time over the run (all cores): time that no process's
  # CPU shows. More of it per image at one size is waiting (on latency, the disk, or the hypervisor).
  read -r idle_before iowait_before steal_before < <(machine_ticks)
  start=$(now)
  limited /usr/bin/time -v -o "$work/wide.time" "$att2ref" migrate "${verify[@]}" --jobs "$wide_jobs" -q -o json \
    --all-repos "$host" > "$work/wide.json"
  wide_s=$(elapsed "$start" "$(now)")
  registry_ticks=$(( $(awk '{print $14 + $15}' "/proc/$pid/stat") - registry_before ))
  read -r idle_after iowait_after steal_after < <(machine_ticks)
  sleep 0.5 # the access log is written after each answer
  requests=$(( $(grep -c '"[A-Z]* /v2/' "$log" || true) - requests_before ))
  per_image() { awk -v a="$1" -v n="$expected" -v k="$2" 'BEGIN{printf "%.2f", a * k / n}'; }
  ticks_ms() { per_image "$(awk -v t="$1" -v hz="$(getconf CLK_TCK)" 'BEGIN{print t / hz}')" 1000; }
  registry_ms=$(ticks_ms "$registry_ticks")
  machine_ms="$(ticks_ms $((idle_after - idle_before))) / $(ticks_ms $((iowait_after - iowait_before))) / $(ticks_ms $((steal_after - steal_before)))"
  migrated=$(json "$work/wide.json" "d['totals']['outcomes'].get('migrated', 0)")
  [ "$migrated" = "$expected" ] || { echo "wide $r: $migrated of $expected images migrated" >&2; exit 1; }
  wide_time[$r-$run]=$wide_s
  wide_rss[$r]=$(peak_rss_mb "$work/wide.time")
  wide_rows+=("| $r | $run | $wide_images | $wide_jobs | $wide_s | ${wide_rss[$r]} | $(per_image "$wide_s" 1000) | $(per_image "$requests" 1) | $(per_image "$(cpu_s "$work/wide.time")" 1000) | $registry_ms | $machine_ms |")
  echo "wide R=$r ($run): ${wide_s}s, ${wide_rss[$r]} MB" >&2
  stop_registry "$name"
}
for r in "${wide[@]}"; do wide_run "$r" first; done
# The smallest size once more, last: the machine's speed drifts over a run of many minutes (the CPU that the
# same work takes moves on att2ref's and the registry's side alike), so the largest size is compared with
# the smallest measured before it and after it, and with their mean.
if [ ${#wide[@]} -ge 2 ]; then wide_run "${wide[0]}" again; fi

# The shared case: R repositories × 2 images, every legacy tag in shared/sigs. Each repository must take
# only its own images: requests grow with the images, not with repositories × attachments.
declare -A shared_requests
# The guard's full reads of shared/sigs, in the access log: nothing else asks for the sentinel's tag (below).
sentinel_heads() { grep -c "\"HEAD /v2/shared/sigs/manifests/$sentinel " "$log" || true; }
shared_rows=()
for r in "${shared[@]}"; do
  start_registry "shared-$r"
  seq 0 $((r - 1)) | limited xargs -P 2 -I'{}' sh -c \
    '"$1" "$2" "shared/r$3" 2 "$4" $(($3 * 2)) shared/sigs > /dev/null' _ "$store" "$host" '{}' "$wide_sbom" \
    2>> "$work/seed.log"
  # A sentinel: one more image's legacy tag in shared/sigs, its image then deleted, so no repository claims
  # it and nothing but the reads of every tag of shared/sigs (what guards prune's deletes) asks for it.
  limited "$store" "$host" shared/sentinel 1 "$wide_sbom" $((r * 2)) shared/sigs > "$work/sentinel.tags" \
    2>> "$work/seed.log"
  sentinel=$(cut -d' ' -f1 "$work/sentinel.tags")
  sentinel_image=sha256:${sentinel#sha256-}; sentinel_image=${sentinel_image%.att}
  limited curl -fsS -X DELETE -o /dev/null "http://$host/v2/shared/sentinel/manifests/$sentinel_image"
  expected=$((r * 2))
  log="$work/shared-$r/access.log"
  before=$(grep -c '"[A-Z]* /v2/' "$log" || true)
  start=$(now)
  limited "$att2ref" migrate "${verify[@]}" --jobs "$wide_jobs" -q -o json --all-repos "$host" \
    --attachments-repository "$host/shared/sigs" > "$work/shared.json" 2> "$work/shared.err" || true
  shared_s=$(elapsed "$start" "$(now)")
  sleep 0.5 # the access log is written after each answer
  requests=$(( $(grep -c '"[A-Z]* /v2/' "$log" || true) - before ))
  migrated=$(json "$work/shared.json" "d['totals']['outcomes'].get('migrated', 0)")
  rows_n=$(json "$work/shared.json" "len(d['images'])")
  [ "$migrated" = "$expected" ] || { echo "shared $r: $migrated of $expected images migrated ($work/shared.json)" >&2; exit 1; }
  shared_requests[$r]=$requests
  # prune --apply: how many times the guard of the deletes read every tag of shared/sigs (one of those
  # reads is the plans'), counted as HEADs of the sentinel's tag.
  before=$(grep -c '"[A-Z]* /v2/' "$log" || true); heads_before=$(sentinel_heads)
  start=$(now)
  limited "$att2ref" prune "${verify[@]}" --apply --jobs "$wide_jobs" -q -o json --all-repos "$host" \
    --attachments-repository "$host/shared/sigs" > "$work/shared-prune.json" 2> "$work/shared-prune.err" || true
  prune_s=$(elapsed "$start" "$(now)")
  sleep 0.5
  prune_requests=$(( $(grep -c '"[A-Z]* /v2/' "$log" || true) - before ))
  reads=$(( $(sentinel_heads) - heads_before ))
  removed=$(json "$work/shared-prune.json" "sum(1 for i in d['items'] if i['status'] == 'removed')")
  repos_removing=$(json "$work/shared-prune.json" \
    "len({i['repository'] for i in d['items'] if i['status'] == 'removed'})")
  [ "$removed" = "$expected" ] && [ "$repos_removing" = "$r" ] || {
    echo "shared $r: prune removed $removed of $expected .att in $repos_removing of $r repositories" \
      "($work/shared-prune.json)" >&2
    exit 1
  }
  shared_rows+=("| $r | $expected | $wide_jobs | $shared_s | $requests | $(ratio "$requests" "$expected") | $rows_n \
| $prune_s | $prune_requests | $repos_removing | $reads |")
  echo "shared R=$r: ${shared_s}s, $requests requests, $rows_n report rows; prune --apply ${prune_s}s," \
    "$prune_requests requests, $reads reads of shared/sigs for $repos_removing repositories deleting" >&2
  stop_registry "shared-$r"
done

{
  echo
  result_heading
  echo
  echo "distribution $("$registry_bin" --version 2>/dev/null | awk '{print $NF}'), $("$att2ref" --version); SBOM $sbom_bytes B + SLSA 785 B per image, RSA-4096"
  if [ ${#rows[@]} -gt 0 ]; then
    echo
    echo "| N | --jobs | 1 repository × N images (s) | N repositories × 1 image (s) | ratio (≤ 1.2) |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
  fi
  if [ ${#wide_rows[@]} -gt 0 ]; then
    echo
    echo "Whole registry (\`--all-repos\`), $wide_images images per repository, SBOM $wide_sbom B:"
    echo
    echo "| repositories | run | images each | --jobs | time (s) | peak RSS MB (≤ 200) | ms per image | requests per image | att2ref CPU ms per image | registry CPU ms per image | machine idle / iowait / steal ms per image |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${wide_rows[@]}"
    if [ ${#wide[@]} -ge 2 ]; then
      first=${wide[0]}; last=${wide[${#wide[@]}-1]}
      before=${wide_time[$first-first]}; after=${wide_time[$first-again]}; large=${wide_time[$last-first]}
      mean=$(awk -v a="$before" -v b="$after" 'BEGIN{printf "%.2f", (a + b) / 2}')
      echo
      echo "time($last × $wide_images) / time($first × $wide_images) = **$(ratio "$large" "$mean")** against the mean of the runs before and after it (≤ 10.5; $(ratio "$last" "$first")× the images); $(ratio "$large" "$before") against the one before, $(ratio "$large" "$after") against the one after"
    fi
  fi
  if [ ${#shared_rows[@]} -gt 0 ]; then
    echo
    echo "Repositories sharing one attachments repository (\`--all-repos --attachments-repository\`), 2 images each, SBOM $wide_sbom B:"
    echo
    echo -n "| repositories | images | --jobs | time (s) | requests | requests per image | report rows "
    echo "| prune --apply (s) | prune requests | repositories deleting | reads of shared/sigs by prune |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${shared_rows[@]}"
    if [ ${#shared[@]} -ge 2 ]; then
      first=${shared[0]}; last=${shared[${#shared[@]}-1]}
      echo
      echo "requests($last) / requests($first) = **$(ratio "${shared_requests[$last]}" "${shared_requests[$first]}")** ($(ratio "$last" "$first")× the images, $(ratio $((last * last)) $((first * first)))× the repository × attachment pairs)"
    fi
  fi
} | tee -a bench/results/batch.md
