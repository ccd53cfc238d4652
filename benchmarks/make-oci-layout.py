#!/usr/bin/env python3
"""Writes an OCI image layout with random layers: make-oci-layout.py DIR TAG SIZE_MIB [SIZE_MIB...]

Prints the manifest digest. Layers are random bytes (incompressible), media type
application/vnd.oci.image.layer.v1.tar; registries and skopeo copy them without unpacking.
"""
import hashlib, json, os, sys

root, tag, sizes = sys.argv[1], sys.argv[2], [float(s) for s in sys.argv[3:]]
os.makedirs(root + "/blobs/sha256", exist_ok=True)

def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(f"{root}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)

layers = [put(os.urandom(int(mib * (1 << 20)))) for mib in sizes]
config = put(json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [l[0] for l in layers]}, "config": {}}).encode())
manifest = put(json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config[0], "size": config[1]},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s} for d, s in layers],
}).encode())
with open(root + "/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(root + "/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest[0], "size": manifest[1],
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)
print(manifest[0])
