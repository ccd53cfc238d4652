#!/usr/bin/env bash
# Failover costs, measured against real docker-registry upstreams on 127.0.0.1:
#  1. what a refused connection to the first upstream adds to a request (circuit kept closed);
#  2. what a hung (SIGSTOPped) first upstream costs the first request, and later ones once
#     its circuit is open;
#  3. a 100 MiB blob whose upstream is stopped mid-way, read by a slow client (20 MiB/s):
#     does it arrive whole and correct, and how long does it take.
#
#   benchmarks/failover.sh [REQUESTS]     (default 40; needs a release build: make release)
set -euo pipefail
N=${1:-40}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
gateway_bin=${MIRRORGATE_BIN:-$root/.build/release/mirrorgate}
[ -x "$gateway_bin" ] || { echo "build first: make release" >&2; exit 1; }
work=$(mktemp -d /tmp/mirrorgate-failover.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

start_registry() { # $1 = name → sets port in ${name}_port, pid in ${name}_pid
  local port; port=$(free_port)
  cat > "$work/$1.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/$1}}
http: {addr: 127.0.0.1:$port}
YAML
  docker-registry serve "$work/$1.yml" > "$work/$1.log" 2>&1 &
  pids+=($!); eval "${1}_pid=$!; ${1}_port=$port"
  wait_http "http://127.0.0.1:$port/v2/"
}
start_gateway() { # $1 = name, $2 = threshold, $3... = upstream URLs
  local name=$1 threshold=$2; shift 2
  local port; port=$(free_port)
  { echo "listen: 127.0.0.1:$port"; echo "storage: {path: $work/cache-$name}"; echo "tags: {ttl: 0s}"
    echo "health: {interval: 1s, timeout: 1s, failure_threshold: $threshold}"
    echo "registries:"; echo "  docker.io:"; echo "    upstreams:"
    local i=1; for u in "$@"; do echo "      - {name: up$i, url: \"$u\"}"; i=$((i+1)); done; } > "$work/$name.yaml"
  "$gateway_bin" serve --config "$work/$name.yaml" --log-level error > "$work/$name.log" 2>&1 &
  pids+=($!); eval "${name}_port=$port; ${name}_pid=$!"
  wait_http "http://127.0.0.1:$port/v2/"
}
head_ms() { curl -s -o /dev/null -w '%{time_total}\n' -I -H "Accept: application/vnd.oci.image.manifest.v1+json" "$1" | awk '{printf "%.2f\n", $1 * 1000}'; }

start_registry upa; start_registry upb
python3 "$here/make-oci-layout.py" "$work/layout" v1 100 > /dev/null
for p in $upa_port $upb_port; do
  skopeo copy -q --insecure-policy --preserve-digests --dest-tls-verify=false "oci:$work/layout:v1" "docker://127.0.0.1:$p/library/big:v1"
done
closed=$(free_port)

# 1. Refused connection: tags.ttl 0s makes every HEAD by tag go upstream.
start_gateway base 1000 "http://127.0.0.1:$upa_port"
start_gateway refused 1000 "http://127.0.0.1:$closed" "http://127.0.0.1:$upa_port"
head_ms "http://127.0.0.1:$base_port/v2/library/big/manifests/v1" > /dev/null
head_ms "http://127.0.0.1:$refused_port/v2/library/big/manifests/v1" > /dev/null
b=(); r=()
for _ in $(seq "$N"); do
  b+=("$(head_ms "http://127.0.0.1:$base_port/v2/library/big/manifests/v1")")
  r+=("$(head_ms "http://127.0.0.1:$refused_port/v2/library/big/manifests/v1")")
done
mb=$(printf '%s\n' "${b[@]}" | median); mr=$(printf '%s\n' "${r[@]}" | median)
echo "1. refused first upstream: median HEAD by tag ${mr} ms vs ${mb} ms with one upstream (+$(echo "$mr - $mb" | bc) ms, $N requests each)"

# 2. Hung first upstream (SIGSTOP), failure_threshold 1.
start_gateway hung 1 "http://127.0.0.1:$upa_port" "http://127.0.0.1:$upb_port"
head_ms "http://127.0.0.1:$hung_port/v2/library/big/manifests/v1" > /dev/null
kill -STOP "$upa_pid"
first=$(head_ms "http://127.0.0.1:$hung_port/v2/library/big/manifests/v1")
later=()
for _ in $(seq 10); do later+=("$(head_ms "http://127.0.0.1:$hung_port/v2/library/big/manifests/v1")"); done
ml=$(printf '%s\n' "${later[@]}" | median)
kill -CONT "$upa_pid"
echo "2. hung first upstream (health.timeout 1s): first request ${first} ms; next 10 with its circuit open: median ${ml} ms"

# 3. 100 MiB blob, slow client, upstream stopped mid-way.
digest=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1]+'/index.json'))['manifests'][0]['digest'].split(':')[1]; print(json.load(open(sys.argv[1]+'/blobs/sha256/'+m))['layers'][0]['digest'])" "$work/layout")
start_gateway slow 3 "http://127.0.0.1:$upa_port" "http://127.0.0.1:$upb_port"
# Pace upa by pausing it most of the time, and stop it for good once the gateway holds 20 MiB.
t0=$(date +%s.%N)
curl -s --limit-rate 20M -o "$work/blob" "http://127.0.0.1:$slow_port/v2/library/big/blobs/$digest" & client=$!
stopped_at=""
while kill -0 "$client" 2>/dev/null; do
  if [ -z "$stopped_at" ]; then
    kill -STOP "$upa_pid"; sleep 0.05; kill -CONT "$upa_pid"; sleep 0.005
    held=$(du -sb "$work/cache-slow/tmp" 2>/dev/null | cut -f1)
    if [ "${held:-0}" -gt $((20 << 20)) ]; then kill -STOP "$upa_pid"; stopped_at=$held; fi
  else
    sleep 0.05
  fi
done
wait "$client" || true
t1=$(date +%s.%N)
kill -CONT "$upa_pid"
got="sha256:$(sha256sum "$work/blob" | cut -c1-64)"
size=$(stat -c %s "$work/blob")
head -c 300 "$work/blob" | grep -a errors || true
verdict=$([ "$got" = "$digest" ] && echo "whole and correct" || echo "WRONG ($got)")
printf '3. 100 MiB blob, upstream stopped after %s bytes had reached the gateway, client at 20 MiB/s: %s bytes, %s, %.1f s\n' "${stopped_at:-(never)}" "$size" "$verdict" "$(echo "$t1 - $t0" | bc)"
grep -o 'skipped=[^[]*' "$work/slow.log" | head -2 || true
