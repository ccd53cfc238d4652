#!/usr/bin/env bash
# Memory under load: 16 concurrent cold GETs of one 1 GiB blob through MirrorGate and through
# distribution's proxy mode (curl into sha256sum, every copy verified): peak RSS (VmHWM) of
# each server, upstream bytes, wall time.
#
#   benchmarks/rss-1gib.sh [CLIENTS] [MIB]     (defaults 16 1024; needs: make release)
set -euo pipefail
CLIENTS=${1:-16}; MIB=${2:-1024}
. "$(dirname "$0")/lib.sh"
bench_init rss
up=$(free_port); start_registry upstream "$up"
python3 "$here/make-oci-layout.py" "$work/layout" v1 "$MIB" > /dev/null
skopeo copy -q --insecure-policy --preserve-digests --dest-tls-verify=false "oci:$work/layout:v1" "docker://127.0.0.1:$up/library/huge:v1"
rm -rf "$work/layout"
digest=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$up/v2/library/huge/manifests/v1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])')

run() { # port → wall seconds; every client's sha256 checked
  local t0 i
  t0=$(now)
  for i in $(seq "$CLIENTS"); do
    ( got=$(curl -sf "http://127.0.0.1:$1/v2/library/huge/blobs/$digest" | sha256sum | cut -c1-64); [ "sha256:$got" = "$digest" ] || { echo "client $i got $got" >&2; exit 1; } ) &
  done
  wait_clients || exit 1
  elapsed "$t0"
}

pp=$(free_port); start_registry proxy "$pp" "http://127.0.0.1:$up"
from=$(log_lines "$work/upstream.access")
dt=$(run "$pp"); sleep 0.3; db=$(access_bytes "$work/upstream.access" "$from"); dr=$(peak_rss_mib "$proxy_pid"); stop_pid "$proxy_pid"

gp=$(free_port)
gateway_yaml "$gp" "$work/mg-cache" "http://127.0.0.1:$up" > "$work/gw.yaml"; start_gateway gw "$gp"
idle=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$gw_pid/status")
from=$(log_lines "$work/upstream.access")
mt=$(run "$gp"); sleep 0.3; mb=$(access_bytes "$work/upstream.access" "$from"); mr=$(peak_rss_mib "$gw_pid")
echo "$CLIENTS concurrent cold GETs of one $MIB MiB blob (curl | sha256sum, all verified)"
printf '%-26s %14s %10s %14s\n' "system" "upstream MiB" "wall s" "peak RSS MiB"
printf '%-26s %14s %10.2f %14s\n' "distribution proxy 2.8" "$(mib "$db")" "$dt" "$dr"
printf '%-26s %14s %10.2f %14s\n' "MirrorGate" "$(mib "$mb")" "$mt" "$mr"
echo "(MirrorGate idle RSS before the run: $idle MiB)"
