#!/usr/bin/env bash
# Memory under load: 16 concurrent cold GETs of one 1 GiB blob through MirrorGate and through
# distribution's proxy mode (curl into sha256sum, every copy verified): peak RSS (VmHWM) of
# each server, upstream bytes, wall time.
#
#   benchmarks/rss-1gib.sh [CLIENTS] [MIB]     (defaults 16 1024; needs: make release)
set -euo pipefail
CLIENTS=${1:-16}; MIB=${2:-1024}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
gateway_bin=${MIRRORGATE_BIN:-$root/.build/release/mirrorgate}
[ -x "$gateway_bin" ] || { echo "build first: make release" >&2; exit 1; }
work=$(mktemp -d /tmp/mirrorgate-rss.XXXXXX)
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
upstream_bytes() { tr -d '\000' < "$work/upstream.access" | awk '{ if ($9 ~ /^2/) s += $10 } END { printf "%.0f\n", s + 0 }'; }
peak_rss_mib() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

up=$(free_port); registry upstream "$up"
python3 "$here/make-oci-layout.py" "$work/layout" v1 "$MIB" > /dev/null
skopeo copy -q --insecure-policy --preserve-digests --dest-tls-verify=false "oci:$work/layout:v1" "docker://127.0.0.1:$up/library/huge:v1"
rm -rf "$work/layout"
digest=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$up/v2/library/huge/manifests/v1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])')

run() { # port → wall seconds; every client's sha256 checked
  local t0 t1 i bad=0
  t0=$(date +%s.%N)
  for i in $(seq "$CLIENTS"); do
    ( got=$(curl -sf "http://127.0.0.1:$1/v2/library/huge/blobs/$digest" | sha256sum | cut -c1-64); [ "sha256:$got" = "$digest" ] || { echo "client $i got $got" >&2; exit 1; } ) &
  done
  for job in $(jobs -p); do case " ${pids[*]} " in *" $job "*) ;; *) wait "$job" || bad=1;; esac; done
  [ $bad -eq 0 ] || { echo "a client failed" >&2; exit 1; }
  t1=$(date +%s.%N); echo "$t1 - $t0" | bc
}

pp=$(free_port); registry proxy "$pp" "http://127.0.0.1:$up"
: > "$work/upstream.access"
dt=$(run "$pp"); db=$(upstream_bytes); dr=$(peak_rss_mib "$proxy_pid"); kill "$proxy_pid"

gp=$(free_port)
printf 'listen: 127.0.0.1:%s\nstorage: {path: %s}\nregistries:\n  docker.io:\n    upstreams:\n      - {name: upstream, url: "http://127.0.0.1:%s"}\n' "$gp" "$work/mg-cache" "$up" > "$work/gw.yaml"
"$gateway_bin" serve --config "$work/gw.yaml" --log-level error > "$work/gw.log" 2>&1 & pids+=($!); gw_pid=$!
wait_http "http://127.0.0.1:$gp/v2/"
idle=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$gw_pid/status")
: > "$work/upstream.access"
mt=$(run "$gp"); mb=$(upstream_bytes); mr=$(peak_rss_mib "$gw_pid")

mib() { echo "scale=1; $1 / 1048576" | bc; }
echo "$CLIENTS concurrent cold GETs of one $MIB MiB blob (curl | sha256sum, all verified)"
printf '%-26s %14s %10s %14s\n' "system" "upstream MiB" "wall s" "peak RSS MiB"
printf '%-26s %14s %10.2f %14s\n' "distribution proxy 2.8" "$(mib "$db")" "$dt" "$dr"
printf '%-26s %14s %10.2f %14s\n' "MirrorGate" "$(mib "$mb")" "$mt" "$mr"
echo "(MirrorGate idle RSS before the run: $idle MiB)"
