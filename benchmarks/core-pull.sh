#!/usr/bin/env bash
# Cold and warm skopeo pulls of a 3-layer ~100 MiB image: straight from a docker-registry
# upstream vs through MirrorGate (median of N runs), and the upstream request counts for a
# cold pull, a warm pull within tags.ttl and a warm pull after it.
#
#   benchmarks/core-pull.sh [RUNS]      (default 5; needs a release build: make release)
set -euo pipefail
RUNS=${1:-5}
. "$(dirname "$0")/lib.sh"
bench_init bench

up_port=$(free_port); gw_port=$(free_port)
REGISTRY_LOG_LEVEL=info start_registry registry "$up_port" # its "response completed" lines count requests
python3 "$here/make-oci-layout.py" "$work/layout" v1 60 30 10 > /dev/null
skopeo copy -q --insecure-policy --preserve-digests --dest-tls-verify=false "oci:$work/layout:v1" "docker://127.0.0.1:$up_port/library/bench:v1"

gateway() { # $1 = ttl
  gateway_yaml "$gw_port" "$work/cache" "http://127.0.0.1:$up_port" "tags: {ttl: $1}" > "$work/gateway.yaml"
  GATEWAY_LOG_LEVEL=warning start_gateway gateway "$gw_port"
}
stop_gateway() { stop_pid "$gateway_pid"; }
pull() { # $1 = host:port/name  → seconds
  rm -rf "$work/out"; local t0; t0=$(now)
  skopeo copy -q --insecure-policy --src-tls-verify=false "docker://$1:v1" "oci:$work/out:v1"
  elapsed "$t0"
}
upstream_requests() { grep -c 'response completed' "$work/registry.log" || true; }

direct=(); cold=(); warm=()
for i in $(seq "$RUNS"); do
  direct+=("$(pull "127.0.0.1:$up_port/library/bench")")
  rm -rf "$work/cache"; gateway 10m
  cold+=("$(pull "127.0.0.1:$gw_port/library/bench")")
  warm+=("$(pull "127.0.0.1:$gw_port/library/bench")")
  stop_gateway
done

rm -rf "$work/cache"; gateway 2s
c0=$(upstream_requests); pull "127.0.0.1:$gw_port/library/bench" > /dev/null; c1=$(upstream_requests)
pull "127.0.0.1:$gw_port/library/bench" > /dev/null; c2=$(upstream_requests)
sleep 2.5
pull "127.0.0.1:$gw_port/library/bench" > /dev/null; c3=$(upstream_requests)
stop_gateway

md=$(printf '%s\n' "${direct[@]}" | median); mc=$(printf '%s\n' "${cold[@]}" | median); mw=$(printf '%s\n' "${warm[@]}" | median)
echo "image: 3 layers (60+30+10 MiB), $RUNS runs, median seconds of skopeo copy"
printf 'direct from upstream: %.3f s\n' "$md"
printf 'gateway cold:         %.3f s (%.2fx direct)\n' "$mc" "$(awk -v a="$mc" -v b="$md" 'BEGIN { print a / b }')"
printf 'gateway warm:         %.3f s (%.2fx direct)\n' "$mw" "$(awk -v a="$mw" -v b="$md" 'BEGIN { print a / b }')"
echo "upstream requests: cold pull $((c1 - c0)), warm within ttl $((c2 - c1)), warm after ttl $((c3 - c2))"
grep 'response completed' "$work/registry.log" | tail -n $((c3 - c2)) | grep -o '"[A-Z]* /v2/[^"]*"\|http.request.method=[A-Z]* http.request.remoteaddr=[^ ]* http.request.uri="[^"]*"' | sed 's/^/  after-ttl: /' || true
