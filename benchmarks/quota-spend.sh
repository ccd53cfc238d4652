#!/usr/bin/env bash
# Manifest GETs spent upstream (Docker Hub's pull unit) for one workload, MirrorGate vs
# distribution's proxy mode (Debian's docker-registry), side by side in one run.
#
# Workload: M images (each a 2-platform OCI index) x T tags, pulled round-robin with
# `skopeo copy --all` until N pulls are done; half-way one tag is re-pushed with new content
# (a moved tag must cost one new GET). Each system pulls from its own Docker Hub-style
# rate-limit front (Tests/IntegrationTests/Fixtures/registry_front.py) in front of one shared
# upstream registry; the fronts count successful manifest GETs (spends) and HEADs (free).
#
#   benchmarks/quota-spend.sh [N] [M] [T]      (defaults 60 3 2; needs: make release)
set -euo pipefail
N=${1:-60}; M=${2:-3}; T=${3:-2}
. "$(dirname "$0")/lib.sh"
bench_init quota
front_py="$root/Tests/IntegrationTests/Fixtures/registry_front.py"

front() { # port backend
  python3 "$front_py" --listen "127.0.0.1:$1" --backend "$2" > /dev/null 2>&1 & pids+=($!)
  wait_http "http://127.0.0.1:$1/v2/"
  curl -sf -X POST -H 'Content-Type: application/json' -d '{"ratelimit": {"limit": 100000, "window": 21600}}' "http://127.0.0.1:$1/_front/mode" > /dev/null
}
spent() { python3 -c 'import json,sys; print(json.load(sys.stdin)["used"])' < <(curl -sf "http://127.0.0.1:$1/_front/ratelimit"); }
heads() { curl -sf "http://127.0.0.1:$1/_front/log" | grep -c '^HEAD /v2/.*/manifests/' || true; }

up=$(free_port); start_registry upstream "$up"
make_image() { # dir tag → pushes an index of two 1-layer images
  python3 - "$1" <<'PY'
import hashlib, json, os, sys
root = sys.argv[1]; os.makedirs(root + "/blobs/sha256", exist_ok=True)
def put(b):
    d = hashlib.sha256(b).hexdigest(); open(f"{root}/blobs/sha256/{d}", "wb").write(b); return {"digest": "sha256:" + d, "size": len(b)}
children = []
for arch in ("amd64", "arm64"):
    layer = put(os.urandom(256 << 10))
    config = put(json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
    m = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"),
        "layers": [dict(layer, mediaType="application/vnd.oci.image.layer.v1.tar")]}).encode())
    children.append(dict(m, mediaType="application/vnd.oci.image.manifest.v1+json", platform={"architecture": arch, "os": "linux"}))
index = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": children}).encode())
open(root + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [dict(index, mediaType="application/vnd.oci.image.index.v1+json", annotations={"org.opencontainers.image.ref.name": "t"})]}, open(root + "/index.json", "w"))
PY
}
push() { skopeo copy -q --all --insecure-policy --preserve-digests --dest-tls-verify=false "oci:$1:t" "docker://127.0.0.1:$up/library/$2"; }
for m in $(seq "$M"); do
  make_image "$work/img$m"
  for t in $(seq "$T"); do push "$work/img$m" "app$m:v$t"; done
done

fd=$(free_port); front "$fd" "http://127.0.0.1:$up"
pd=$(free_port); start_registry proxy "$pd" "http://127.0.0.1:$fd"
run_gateway() { # ttl → sets gw_port and gw_front (runs in this shell so cleanup sees its PIDs)
  local f g; f=$(free_port); g=$(free_port); front "$f" "http://127.0.0.1:$up"
  gateway_yaml "$g" "$work/cache-$1" "http://127.0.0.1:$f" "tags: {ttl: $1}" > "$work/gw$1.yaml"
  start_gateway "gw$1" "$g"
  gw_port=$g; gw_front=$f
}
run_gateway 10m; g10=$gw_port; f10=$gw_front
run_gateway 0s; g0=$gw_port; f0=$gw_front

# A three-upstream MirrorGate, as the shipped gateway.yaml is meant to be used: a free mirror
# (its own registry, holding only app1, digests only), then "Hub anonymous" with a budget of 4
# pulls, then "Hub authenticated" (two more fronts on the shared upstream).
mp=$(free_port); start_registry mirror "$mp"
for t in $(seq "$T"); do skopeo copy -q --all --insecure-policy --preserve-digests --src-tls-verify=false --dest-tls-verify=false "docker://127.0.0.1:$up/library/app1:v$t" "docker://127.0.0.1:$mp/library/app1:v$t"; done
mf=$(free_port); front "$mf" "http://127.0.0.1:$mp"
fa=$(free_port); front "$fa" "http://127.0.0.1:$up"
fb=$(free_port); front "$fb" "http://127.0.0.1:$up"
g3=$(free_port)
cat > "$work/gwthree.yaml" <<YAML
listen: 127.0.0.1:$g3
storage: {path: $work/cache-three}
tags: {ttl: 0s}
registries:
  docker.io:
    upstreams:
      - {name: mirror, url: "http://127.0.0.1:$mf", resolve: false}
      - {name: hub-anonymous, url: "http://127.0.0.1:$fa", budget: {pulls: 4, window: 6h}}
      - {name: hub-authenticated, url: "http://127.0.0.1:$fb"}
YAML
start_gateway gwthree "$g3"

pull() { rm -rf "$work/out"; skopeo copy -q --all --insecure-policy --preserve-digests --src-tls-verify=false "docker://127.0.0.1:$1/library/$2" "dir:$work/out"; }
for i in $(seq 0 $((N - 1))); do
  m=$((i % M + 1)); t=$(((i / M) % T + 1))
  if [ "$i" -eq $((N / 2)) ]; then make_image "$work/moved"; push "$work/moved" "app1:v1"; fi
  for port in "$pd" "$g10" "$g0" "$g3"; do pull "$port" "app$m:v$t"; done
done

distinct=$((M * 3 + 3))
echo "workload: $N pulls (skopeo copy --all) over $M images x $T tags, 2-platform OCI indexes; app1:v1 moved half-way"
echo "distinct manifests in play: $distinct (tags of one image share content: M x (index + 2 platform manifests), plus the moved tag's 3)"
printf '%-34s %12s %10s\n' "system" "manifest GETs" "HEADs"
printf '%-34s %12s %10s\n' "distribution proxy (2.8)" "$(spent "$fd")" "$(heads "$fd")"
printf '%-34s %12s %10s\n' "MirrorGate, tags.ttl 10m" "$(spent "$f10")" "$(heads "$f10")"
printf '%-34s %12s %10s\n' "MirrorGate, tags.ttl 0s" "$(spent "$f0")" "$(heads "$f0")"
echo "MirrorGate with three upstreams (tags.ttl 0s; mirror holds app1 only, resolve: false; hub-anonymous budget 4):"
printf '  %-32s %12s %10s\n' "mirror (free)" "$(spent "$mf")" "$(heads "$mf")"
printf '  %-32s %12s %10s\n' "hub-anonymous" "$(spent "$fa")" "$(heads "$fa")"
printf '  %-32s %12s %10s\n' "hub-authenticated" "$(spent "$fb")" "$(heads "$fb")"
