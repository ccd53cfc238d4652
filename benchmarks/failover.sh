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
. "$(dirname "$0")/lib.sh"
bench_init failover

upstream() { # $1 = name → a docker-registry; sets ${name}_port and ${name}_pid
  local port; port=$(free_port)
  start_registry "$1" "$port"; eval "${1}_port=$port"
}
gateway() { # $1 = name, $2 = threshold, $3... = upstream URLs → sets ${name}_port and ${name}_pid
  local name=$1 threshold=$2; shift 2
  local port; port=$(free_port)
  { echo "listen: 127.0.0.1:$port"; echo "storage: {path: $work/cache-$name}"; echo "tags: {ttl: 0s}"
    echo "health: {interval: 1s, timeout: 1s, failure_threshold: $threshold}"
    echo "registries:"; echo "  docker.io:"; echo "    upstreams:"
    local i=1; for u in "$@"; do echo "      - {name: up$i, url: \"$u\"}"; i=$((i+1)); done; } > "$work/$name.yaml"
  start_gateway "$name" "$port"; eval "${name}_port=$port"
}
head_ms() { curl -s -o /dev/null -w '%{time_total}\n' -I -H "Accept: application/vnd.oci.image.manifest.v1+json" "$1" | awk '{printf "%.2f\n", $1 * 1000}'; }

upstream upa; upstream upb
python3 "$here/make-oci-layout.py" "$work/layout" v1 100 > /dev/null
for p in $upa_port $upb_port; do
  skopeo copy -q --insecure-policy --preserve-digests --dest-tls-verify=false "oci:$work/layout:v1" "docker://127.0.0.1:$p/library/big:v1"
done
closed=$(free_port)

# 1. Refused connection: tags.ttl 0s makes every HEAD by tag go upstream.
gateway base 1000 "http://127.0.0.1:$upa_port"
gateway refused 1000 "http://127.0.0.1:$closed" "http://127.0.0.1:$upa_port"
head_ms "http://127.0.0.1:$base_port/v2/library/big/manifests/v1" > /dev/null
head_ms "http://127.0.0.1:$refused_port/v2/library/big/manifests/v1" > /dev/null
b=(); r=()
for _ in $(seq "$N"); do
  b+=("$(head_ms "http://127.0.0.1:$base_port/v2/library/big/manifests/v1")")
  r+=("$(head_ms "http://127.0.0.1:$refused_port/v2/library/big/manifests/v1")")
done
mb=$(printf '%s\n' "${b[@]}" | median); mr=$(printf '%s\n' "${r[@]}" | median)
echo "1. refused first upstream: median HEAD by tag ${mr} ms vs ${mb} ms with one upstream (+$(awk -v a="$mr" -v b="$mb" 'BEGIN { printf "%.2f", a - b }') ms, $N requests each)"

# 2. Hung first upstream (SIGSTOP), failure_threshold 1.
gateway hung 1 "http://127.0.0.1:$upa_port" "http://127.0.0.1:$upb_port"
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
gateway slow 3 "http://127.0.0.1:$upa_port" "http://127.0.0.1:$upb_port"
# Pace upa by pausing it most of the time, and stop it for good once the gateway holds 20 MiB.
t0=$(now)
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
took=$(elapsed "$t0")
kill -CONT "$upa_pid"
got="sha256:$(sha256sum "$work/blob" | cut -c1-64)"
size=$(stat -c %s "$work/blob")
head -c 300 "$work/blob" | grep -a errors || true
verdict=$([ "$got" = "$digest" ] && echo "whole and correct" || echo "WRONG ($got)")
printf '3. 100 MiB blob, upstream stopped after %s bytes had reached the gateway, client at 20 MiB/s: %s bytes, %s, %.1f s\n' "${stopped_at:-(never)}" "$size" "$verdict" "$took"
grep -o 'skipped=[^[]*' "$work/slow.log" | head -2 || true
