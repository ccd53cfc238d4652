#!/usr/bin/env bash
# 16 concurrent cold pulls (skopeo copy) of one ~300 MiB image through MirrorGate and through
# distribution's proxy mode (Debian's docker-registry, `proxy: remoteurl:`), each against its
# own fresh cache and the same upstream registry: upstream bytes sent, wall time, peak RSS.
#
#   benchmarks/concurrent-cold.sh [CLIENTS]     (default 16; needs: make release)
set -euo pipefail
CLIENTS=${1:-16}
. "$(dirname "$0")/lib.sh"
bench_init cold
up=$(free_port); start_registry upstream "$up"
python3 "$here/make-oci-layout.py" "$work/layout" v1 60 60 60 60 60 > /dev/null
skopeo copy -q --insecure-policy --preserve-digests --dest-tls-verify=false "oci:$work/layout:v1" "docker://127.0.0.1:$up/library/big:v1"
image_bytes=$(du -cb "$work"/layout/blobs/sha256/* | tail -1 | cut -f1)

run_clients() { # port → wall seconds
  local t0 wall i
  t0=$(now)
  for i in $(seq "$CLIENTS"); do
    skopeo copy -q --insecure-policy --preserve-digests --src-tls-verify=false "docker://127.0.0.1:$1/library/big:v1" "dir:$work/out$i" &
  done
  wait_clients || exit 1
  wall=$(elapsed "$t0")
  for i in $(seq "$CLIENTS"); do
    for f in "$work/out$i"/*; do case "$(basename "$f")" in manifest.json|version) ;; *) [ "sha256:$(sha256sum "$f" | cut -c1-64)" = "sha256:$(basename "$f")" ] || { echo "client $i: bad digest $f" >&2; exit 1; };; esac; done
    rm -rf "$work/out$i"
  done
  echo "$wall"
}

# distribution's proxy mode
pp=$(free_port); start_registry proxy "$pp" "http://127.0.0.1:$up"
from=$(log_lines "$work/upstream.access")
dist_time=$(run_clients "$pp"); sleep 0.3
dist_bytes=$(access_bytes "$work/upstream.access" "$from"); dist_rss=$(peak_rss_mib "$proxy_pid")
stop_pid "$proxy_pid"

# MirrorGate
gp=$(free_port)
gateway_yaml "$gp" "$work/mg-cache" "http://127.0.0.1:$up" > "$work/gw.yaml"; start_gateway gw "$gp"
from=$(log_lines "$work/upstream.access")
mg_time=$(run_clients "$gp"); sleep 0.3
mg_bytes=$(access_bytes "$work/upstream.access" "$from"); mg_rss=$(peak_rss_mib "$gw_pid")

echo "$CLIENTS concurrent cold skopeo pulls of a $(mib "$image_bytes") MiB image (5 layers), all digests verified"
printf '%-28s %16s %12s %14s\n' "system" "upstream MiB" "wall s" "peak RSS MiB"
printf '%-28s %16s %12.2f %14s\n' "distribution proxy 2.8" "$(mib "$dist_bytes")" "$dist_time" "$dist_rss"
printf '%-28s %16s %12.2f %14s\n' "MirrorGate" "$(mib "$mg_bytes")" "$mg_time" "$mg_rss"
