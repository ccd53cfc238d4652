#!/usr/bin/env python3
"""The tag-heavy workload of benchmarks/run (workload 6): many small images under many tags.

    tag-heavy.py push UPSTREAM STATE REPOS TAGS
        Pushes REPOS x TAGS tiny single-layer images (each tag its own content) to the
        registry at UPSTREAM (http://host:port) as library/tagsN:tM, plus, for the first tag
        of every repository, a second image the tag is moved to half-way through a run.
        Writes what it pushed to the JSON file STATE.

    tag-heavy.py run UPSTREAM STATE TARGET ROUNDS [GAP]
        Puts every tag back on its first image (PUT of the manifest, on UPSTREAM), then pulls
        every tag's manifest ROUNDS times from TARGET (the system under test), a round every
        GAP seconds (default 0: back to back), moving the moved tags upstream at the start
        of round ROUNDS/2. A pull is either a GET by tag (skopeo,
        docker) or a HEAD by tag and a GET by digest (containerd), alternating. Prints JSON:
        {"pulls", "requests", "stale", "errors"}; stale = answers naming a digest the tag no
        longer has upstream.

Manifest GETs and HEADs that reach the upstream are counted by the caller from the
upstream registry's access log (this script only PUTs there).
"""
import hashlib, http.client, json, os, sys, time, urllib.parse

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json"])
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


class Client:
    """One keep-alive connection to a registry."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    def request(self, method, path, body=None, headers=None):
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        data = r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def upload_blob(c, repo, data):
    d = digest_of(data)
    status, headers, _ = c.request("POST", f"/v2/{repo}/blobs/uploads/")
    assert status == 202, f"upload start: {status}"
    loc = urllib.parse.urlsplit(headers["location"])
    query = (loc.query + "&" if loc.query else "") + "digest=" + d
    status, _, body = c.request("PUT", f"{loc.path}?{query}", body=data,
                                headers={"Content-Type": "application/octet-stream"})
    assert status == 201, f"upload finish: {status} {body[:200]!r}"
    return {"digest": d, "size": len(data)}


def make_image(c, repo, label):
    layer = upload_blob(c, repo, os.urandom(4096))
    config = upload_blob(c, repo, json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Labels": {"tag": label}},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
    return json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"),
        "layers": [dict(layer, mediaType="application/vnd.oci.image.layer.v1.tar")]})


def put_manifest(c, repo, tag, manifest):
    status, _, body = c.request("PUT", f"/v2/{repo}/manifests/{tag}", body=manifest.encode(),
                                headers={"Content-Type": MANIFEST_TYPE})
    assert status == 201, f"manifest put {repo}:{tag}: {status} {body[:200]!r}"
    return digest_of(manifest.encode())


def push(upstream, state_file, repos, tags):
    c = Client(upstream)
    state = []
    for r in range(1, repos + 1):
        repo = f"library/tags{r}"
        for t in range(1, tags + 1):
            entry = {"repo": repo, "tag": f"t{t}", "first": make_image(c, repo, f"{r}-{t}")}
            if t == 1:
                entry["moved"] = make_image(c, repo, f"{r}-{t}-moved")
            put_manifest(c, repo, entry["tag"], entry["first"])
            state.append(entry)
    with open(state_file, "w") as f:
        json.dump(state, f)
    print(f"pushed {len(state)} tags in {repos} repositories")


def run(upstream, state_file, target, rounds, gap=0.0):
    state = json.load(open(state_file))
    up = Client(upstream)
    current = {}
    for e in state:
        current[(e["repo"], e["tag"])] = put_manifest(up, e["repo"], e["tag"], e["first"])
    c = Client(target)
    pulls = requests = stale = errors = 0
    start = time.monotonic()
    for rnd in range(rounds):
        # Rounds start on a fixed schedule (like pods starting through the day), whatever
        # each took.
        wait = start + rnd * gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if rnd == rounds // 2:
            for e in state:
                if "moved" in e:
                    current[(e["repo"], e["tag"])] = put_manifest(up, e["repo"], e["tag"], e["moved"])
        for i, e in enumerate(state):
            repo, tag = e["repo"], e["tag"]
            pulls += 1
            if (rnd + i) % 2 == 0:
                status, headers, body = c.request("GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
                requests += 1
                got = digest_of(body) if status == 200 else None
            else:
                status, headers, _ = c.request("HEAD", f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
                requests += 1
                got = headers.get("docker-content-digest") if status == 200 else None
                if got:
                    status, _, body = c.request("GET", f"/v2/{repo}/manifests/{got}", headers={"Accept": ACCEPT})
                    requests += 1
                    if status != 200 or digest_of(body) != got:
                        got = None
            if got is None:
                errors += 1
            elif got != current[(repo, tag)]:
                stale += 1
    print(json.dumps({"pulls": pulls, "requests": requests, "stale": stale, "errors": errors,
                      "seconds": round(time.monotonic() - start, 1)}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "push":
        push(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "run":
        run(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6]) if len(sys.argv) > 6 else 0.0)
    else:
        sys.exit(__doc__)
