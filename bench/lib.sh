# Shared by the benchmarks (sourced, not run): tool checks, the release build, a work directory removed on
# exit, local CNCF distribution instances on free loopback ports, step time limits, timing and JSON helpers.
# The sourcing script sets `step_timeout` first and may set `need_skopeo=1` / `need_time=1`.

registry_bin=${DOCKER_REGISTRY:-$(command -v docker-registry || true)}
skopeo_bin=${SKOPEO:-$(command -v skopeo || true)}
[ -x "$registry_bin" ] || { echo "needs docker-registry (CNCF distribution 2.8.2, Debian package docker-registry)" >&2; exit 2; }
[ -z "${need_skopeo:-}" ] || [ -x "$skopeo_bin" ] || { echo "needs skopeo" >&2; exit 2; }
[ -z "${need_time:-}" ] || [ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package time) for peak RSS" >&2; exit 2; }
command -v python3 >/dev/null || { echo "needs python3 (free ports, JSON)" >&2; exit 2; }
command -v timeout >/dev/null || { echo "needs timeout (coreutils)" >&2; exit 2; }
mkdir -p bench/results
cargo build --release --quiet --bin att2ref --example bench_store
# BENCH_ATT2REF: another build to measure (e.g. an earlier commit's), for before/after comparisons.
att2ref=${BENCH_ATT2REF:-target/release/att2ref}
store=target/release/examples/bench_store
verify=(--plain-http --key fixtures/keys/rsa-4096.pub.pem --insecure-ignore-tlog)

work=$(mktemp -d)
pids=()
declare -A registry_pid
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# need_disk MB: stop unless the work directory's file system has that much free.
need_disk() {
  local free_mb; free_mb=$(df -Pm "$work" | awk 'NR==2 {print $4}')
  [ "$free_mb" -gt "$1" ] || { echo "needs ~$1 MB free under $work (TMPDIR), has $free_mb" >&2; exit 2; }
}

# limited CMD...: CMD with the step time limit.
limited() { timeout --kill-after=30 "$step_timeout" "$@"; }

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_registry NAME: a distribution instance on a free loopback port with its own storage and config (a
# port taken between the probe and the bind is retried). Sets $host; its access log (Apache combined
# format, on stdout) is $work/NAME/access.log.
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

# stop_registry NAME: stop that instance and remove its storage.
stop_registry() {
  local pid=${registry_pid[$1]}
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  rm -rf "$work/$1/data"
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }
# median X...: the middle value (the mean of the two middle ones for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {printf "%.2f", NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
cpu_s() { awk -F': ' '/User time|System time/ {s+=$2} END {printf "%.2f", s}' "$1"; }
peak_rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$1"; }

# The heading of a result section: when, on what, how loaded.
result_heading() {
  echo "## $(date -u +%Y-%m-%dT%H:%M:%SZ) — $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
}
