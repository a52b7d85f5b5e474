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
need_skopeo=1
. bench/lib.sh
largest=0; for n in "${sizes[@]}"; do [ "$n" -gt "$largest" ] && largest=$n; done
need_disk $((largest * 8 * sbom_bytes / 1000000 + 200))

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
  result_heading
  echo
  echo "distribution $("$registry_bin" --version 2>/dev/null | awk '{print $NF}'), $("$skopeo_bin" --version), $("$att2ref" --version); SBOM $sbom_bytes B + SLSA 785 B per image, RSA-4096"
  echo
  echo "| N | jobs | att2ref copy s | skopeo copy s | copy/skopeo | bytes moved | minimum | bytes/minimum | requests |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
  echo
} | tee -a bench/results/copy.md
