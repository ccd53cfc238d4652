#!/usr/bin/env bash
# 16 concurrent cold pulls (skopeo copy) of one ~300 MiB image through MirrorGate and through
# distribution's proxy mode (Debian's docker-registry, `proxy: remoteurl:`), each against its
# own fresh cache and the same upstream registry: upstream bytes sent, wall time, peak RSS.
#
#   benchmarks/concurrent-cold.sh [CLIENTS]     (default 16; needs: make release)
set -euo pipefail
CLIENTS=${1:-16}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
gateway_bin=${MIRRORGATE_BIN:-$root/.build/release/mirrorgate}
[ -x "$gateway_bin" ] || { echo "build first: make release" >&2; exit 1; }
work=$(mktemp -d /tmp/mirrorgate-cold.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { for _ in $(seq 150); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }
registry() { # name port [proxy-remote]
  { echo "version: 0.1"; echo "log: {level: error, formatter: text, accesslog: {disabled: false}}"
    echo "storage: {filesystem: {rootdirectory: $work/$1}}"; echo "http: {addr: 127.0.0.1:$2}"
    [ -n "${3:-}" ] && echo "proxy: {remoteurl: $3}"; true; } > "$work/$1.yml"
  docker-registry serve "$work/$1.yml" >> "$work/$1.access" 2> "$work/$1.log" & pids+=($!)
  eval "${1}_pid=$!"
  wait_http "http://127.0.0.1:$2/v2/"
}
# Bytes the upstream sent: the size field of its combined-format access log lines.
upstream_bytes() { tr -d '\000' < "$work/upstream.access" | awk '{ if ($9 ~ /^2/) s += $10 } END { printf "%.0f\n", s + 0 }'; }
peak_rss_mib() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

up=$(free_port); registry upstream "$up"
python3 "$here/make-oci-layout.py" "$work/layout" v1 60 60 60 60 60 > /dev/null
skopeo copy -q --insecure-policy --preserve-digests --dest-tls-verify=false "oci:$work/layout:v1" "docker://127.0.0.1:$up/library/big:v1"
image_bytes=$(du -cb "$work"/layout/blobs/sha256/* | tail -1 | cut -f1)

run_clients() { # port → wall seconds
  local t0 t1 i
  t0=$(date +%s.%N)
  for i in $(seq "$CLIENTS"); do
    skopeo copy -q --insecure-policy --preserve-digests --src-tls-verify=false "docker://127.0.0.1:$1/library/big:v1" "dir:$work/out$i" &
  done
  wait_clients
  t1=$(date +%s.%N)
  for i in $(seq "$CLIENTS"); do
    for f in "$work/out$i"/*; do case "$(basename "$f")" in manifest.json|version) ;; *) [ "sha256:$(sha256sum "$f" | cut -c1-64)" = "sha256:$(basename "$f")" ] || { echo "client $i: bad digest $f" >&2; exit 1; };; esac; done
    rm -rf "$work/out$i"
  done
  echo "$t1 - $t0" | bc
}
wait_clients() { local failed=0; for job in $(jobs -p); do case " ${pids[*]} " in *" $job "*) ;; *) wait "$job" || failed=1;; esac; done; [ $failed -eq 0 ] || { echo "a client failed" >&2; exit 1; }; }

# distribution's proxy mode
pp=$(free_port); registry proxy "$pp" "http://127.0.0.1:$up"
: > "$work/upstream.access"
dist_time=$(run_clients "$pp")
dist_bytes=$(upstream_bytes); dist_rss=$(peak_rss_mib "$proxy_pid")
kill "$proxy_pid"

# MirrorGate
gp=$(free_port)
printf 'listen: 127.0.0.1:%s\nstorage: {path: %s}\nregistries:\n  docker.io:\n    upstreams:\n      - {name: upstream, url: "http://127.0.0.1:%s"}\n' "$gp" "$work/mg-cache" "$up" > "$work/gw.yaml"
"$gateway_bin" serve --config "$work/gw.yaml" --log-level error > "$work/gw.log" 2>&1 & pids+=($!); gw_pid=$!
wait_http "http://127.0.0.1:$gp/v2/"
: > "$work/upstream.access"
mg_time=$(run_clients "$gp")
mg_bytes=$(upstream_bytes); mg_rss=$(peak_rss_mib "$gw_pid")

mib() { echo "scale=1; $1 / 1048576" | bc; }
echo "$CLIENTS concurrent cold skopeo pulls of a $(mib "$image_bytes") MiB image (5 layers), all digests verified"
printf '%-28s %16s %12s %14s\n' "system" "upstream MiB" "wall s" "peak RSS MiB"
printf '%-28s %16s %12.2f %14s\n' "distribution proxy 2.8" "$(mib "$dist_bytes")" "$dist_time" "$dist_rss"
printf '%-28s %16s %12.2f %14s\n' "MirrorGate" "$(mib "$mg_bytes")" "$mg_time" "$mg_rss"
