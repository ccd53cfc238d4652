#!/usr/bin/env bash
# Cold and warm skopeo pulls of a 3-layer ~100 MiB image: straight from a docker-registry
# upstream vs through MirrorGate (median of N runs), and the upstream request counts for a
# cold pull, a warm pull within tags.ttl and a warm pull after it.
#
#   benchmarks/core-pull.sh [RUNS]      (default 5; needs a release build: make release)
set -euo pipefail
RUNS=${1:-5}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
gateway_bin=${MIRRORGATE_BIN:-$root/.build/release/mirrorgate}
[ -x "$gateway_bin" ] || { echo "build first: make release" >&2; exit 1; }
work=$(mktemp -d /tmp/mirrorgate-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

up_port=$(free_port); gw_port=$(free_port)
cat > "$work/registry.yml" <<YAML
version: 0.1
log: {level: info, formatter: text, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $work/upstream}}
http: {addr: 127.0.0.1:$up_port}
YAML
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$up_port/v2/"

python3 "$here/make-oci-layout.py" "$work/layout" v1 60 30 10 > /dev/null
skopeo copy -q --insecure-policy --preserve-digests --dest-tls-verify=false "oci:$work/layout:v1" "docker://127.0.0.1:$up_port/library/bench:v1"

start_gateway() { # $1 = ttl
  cat > "$work/gateway.yaml" <<YAML
listen: 127.0.0.1:$gw_port
storage: {path: $work/cache}
tags: {ttl: $1}
registries:
  docker.io:
    upstreams:
      - {name: upstream, url: "http://127.0.0.1:$up_port"}
YAML
  "$gateway_bin" serve --config "$work/gateway.yaml" --log-level warning > "$work/gateway.log" 2>&1 & gw_pid=$!
  pids+=($gw_pid)
  wait_http "http://127.0.0.1:$gw_port/v2/"
}
stop_gateway() { kill "$gw_pid"; wait "$gw_pid" 2>/dev/null || true; }
pull() { # $1 = host:port/name  → seconds
  rm -rf "$work/out"; local t0; t0=$(now)
  skopeo copy -q --insecure-policy --src-tls-verify=false "docker://$1:v1" "oci:$work/out:v1"
  echo "$(now) - $t0" | bc
}
upstream_requests() { grep -c 'response completed' "$work/registry.log" || true; }

direct=(); cold=(); warm=()
for i in $(seq "$RUNS"); do
  direct+=("$(pull "127.0.0.1:$up_port/library/bench")")
  rm -rf "$work/cache"; start_gateway 10m
  cold+=("$(pull "127.0.0.1:$gw_port/library/bench")")
  warm+=("$(pull "127.0.0.1:$gw_port/library/bench")")
  stop_gateway
done

rm -rf "$work/cache"; start_gateway 2s
c0=$(upstream_requests); pull "127.0.0.1:$gw_port/library/bench" > /dev/null; c1=$(upstream_requests)
pull "127.0.0.1:$gw_port/library/bench" > /dev/null; c2=$(upstream_requests)
sleep 2.5
pull "127.0.0.1:$gw_port/library/bench" > /dev/null; c3=$(upstream_requests)
stop_gateway

md=$(printf '%s\n' "${direct[@]}" | median); mc=$(printf '%s\n' "${cold[@]}" | median); mw=$(printf '%s\n' "${warm[@]}" | median)
echo "image: 3 layers (60+30+10 MiB), $RUNS runs, median seconds of skopeo copy"
printf 'direct from upstream: %.3f s\n' "$md"
printf 'gateway cold:         %.3f s (%.2fx direct)\n' "$mc" "$(echo "$mc / $md" | bc -l)"
printf 'gateway warm:         %.3f s (%.2fx direct)\n' "$mw" "$(echo "$mw / $md" | bc -l)"
echo "upstream requests: cold pull $((c1 - c0)), warm within ttl $((c2 - c1)), warm after ttl $((c3 - c2))"
grep 'response completed' "$work/registry.log" | tail -n $((c3 - c2)) | grep -o '"[A-Z]* /v2/[^"]*"\|http.request.method=[A-Z]* http.request.remoteaddr=[^ ]* http.request.uri="[^"]*"' | sed 's/^/  after-ttl: /' || true
