#!/usr/bin/env bash
# migrate's own CPU: this tree's build against the build of a git revision, alternated round by round on
# fresh repositories of one local CNCF distribution 2.8.2, in one run. For what a change costs or saves in
# CPU, which wall time at small N does not show (it is bound by the registry's work and the machine's load).
# Usage: bench/cpu.sh REV [N] [ROUNDS]   (N images per repository, default 16; ROUNDS default 5; results
#        appended to bench/results/cpu.md)
# Environment: BENCH_JOBS (default 4), BENCH_SBOM_BYTES (default ~1.5 MB), BENCH_TIMEOUT (seconds per step,
#              default 3600), DOCKER_REGISTRY (default: docker-registry on PATH), BENCH_REV_TARGET (cargo
#              target directory for REV's build; default a temporary one, set it to keep that build).
set -euo pipefail
cd "$(dirname "$0")/.."

rev=${1:?usage: bench/cpu.sh REV [N] [ROUNDS]}
n=${2:-16}
rounds=${3:-5}
[[ "$n" =~ ^[1-9][0-9]*$ && "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "N and ROUNDS must be positive whole numbers" >&2; exit 2; }
jobs=${BENCH_JOBS:-4}
sbom_bytes=${BENCH_SBOM_BYTES:-1520000}
step_timeout=${BENCH_TIMEOUT:-3600}
need_time=1
. bench/lib.sh

commit=$(git rev-parse --verify "$rev^{commit}")
tree="$work/rev"
trap 'git worktree remove --force "$tree" 2>/dev/null || true; cleanup' EXIT
git worktree add --detach -q "$tree" "$commit"
rev_target=${BENCH_REV_TARGET:-$work/rev-target}
echo "building $rev ($commit) in $rev_target" >&2
(cd "$tree" && CARGO_TARGET_DIR="$rev_target" cargo build --release --quiet --bin att2ref)
builds=(rev this)
declare -A bin=([rev]="$rev_target/release/att2ref" [this]="$att2ref")

# One registry holds every round's repositories: each build migrates a fresh one of N images per round.
need_disk $((rounds * 2 * n * 5 * sbom_bytes / 1000000 + 200))
start_registry cpu

# run BUILD REPO: migrate REPO with that build under /usr/bin/time; appends to that build's series.
declare -A user sys wall
run() {
  limited /usr/bin/time -f "%U %S %e" -o "$work/$2.time" "${bin[$1]}" migrate "${verify[@]}" --jobs "$jobs" -q -o json \
    "$host/$2" > "$work/$2.json"
  [ "$(json "$work/$2.json" "d['totals']['outcomes'].get('migrated', 0)")" = "$n" ] \
    || { echo "$2: not every image was migrated ($work/$2.json)" >&2; exit 1; }
  read -r u s e < "$work/$2.time"
  user[$1]+="$u "; sys[$1]+="$s "; wall[$1]+="$e "
}

for r in $(seq "$rounds"); do
  for b in "${builds[@]}"; do limited "$store" "$host" "$b-r$r" "$n" "$sbom_bytes" > /dev/null 2>> "$work/seed.log"; done
  # Alternate which build goes first, so that neither always meets a registry warmed by the other.
  if [ $((r % 2)) = 1 ]; then order=(rev this); else order=(this rev); fi
  for b in "${order[@]}"; do run "$b" "$b-r$r"; done
  echo "round $r: user rev $(echo "${user[rev]}" | awk '{print $NF}') s, this $(echo "${user[this]}" | awk '{print $NF}') s" >&2
done

# medians BUILD: that build's median user, system and user + system seconds.
medians() {
  local u s
  # shellcheck disable=SC2086  # each series is a space-separated list of numbers
  u=$(median ${user[$1]}); s=$(median ${sys[$1]})
  echo "$u $s $(awk -v a="$u" -v b="$s" 'BEGIN{printf "%.2f", a+b}')"
}
row() { # row BUILD LABEL
  local u s c
  read -r u s c < <(medians "$1")
  # shellcheck disable=SC2086
  echo "| $2 | $u | $s | $c | $(median ${wall[$1]}) | ${user[$1]}|"
}
read -r rev_user _ rev_cpu < <(medians rev)
read -r this_user _ this_cpu < <(medians this)
{
  result_heading
  echo
  echo "\`bench/cpu.sh $rev $n $rounds\`: migrate of $n images (SBOM $sbom_bytes B + SLSA 785 B each, RSA-4096), \`--jobs $jobs\`, medians of $rounds rounds alternated"
  echo
  echo "| build | user s | system s | CPU s | wall s | user s by round |"
  echo "|---|---:|---:|---:|---:|---|"
  row rev "$rev (${commit:0:10})"
  row this "this tree ($(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ', modified'))"
  echo
  echo "CPU this/rev: **$(ratio "$this_cpu" "$rev_cpu")**; user this/rev: **$(ratio "$this_user" "$rev_user")**"
  echo
} | tee -a bench/results/cpu.md
