#!/usr/bin/env python3
"""Turns the measurements of benchmarks/run into a markdown report and a PNG chart.

    report.py MEASUREMENTS.tsv META.json OUT.md OUT.png [NOTES.md]

MEASUREMENTS.tsv: one line per value: workload, system, variant, iteration, metric, value.
Every figure in the report is the median over iterations (min and max beside it where more
than one iteration ran); ratios are MirrorGate's median over the peer's median.
"""
import json, os, re, statistics, sys
from collections import defaultdict

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

SYSTEMS = ["mirrorgate", "distribution", "nginx"]
LABEL = {"mirrorgate": "MirrorGate", "distribution": "distribution proxy", "nginx": "nginx (static)",
         "mirrorgate-ttl0": "MirrorGate, tags.ttl 0s", "mirrorgate-tls": "MirrorGate on TLS (no sendfile)",
         "mirrorgate-s3": "MirrorGate, blobs in S3 (streamed)", "mirrorgate-s3-redirect": "MirrorGate, blobs in S3 (307 redirect)",
         "mirrorgate-norefresh": "MirrorGate, refresh_after = ttl 10m (before)",
         "mirrorgate-replicas": "MirrorGate, 3 replicas (PostgreSQL, shared directory)"}
COLOR = {"mirrorgate": "#2b7bba", "distribution": "#e08a1e", "nginx": "#7a7a7a", "mirrorgate-ttl0": "#8cc0e8", "mirrorgate-norefresh": "#1d4f78", "mirrorgate-tls": "#5aa0d8", "mirrorgate-replicas": "#5aa469"}
BLOB_SYSTEMS = SYSTEMS + ["mirrorgate-tls"]
BLOB_VARIANTS = (("c8", "8 conns"), ("c64", "64 conns"), ("range-c8", "Range, 8 conns"))
MANIFEST_VARIANTS = (("manifest", "manifest by tag"), ("digest", "manifest by digest"), ("base", "GET /v2/"))

tsv, meta_file, out_md, out_png = sys.argv[1:5]
notes = open(sys.argv[5]).read().strip() if len(sys.argv) > 5 and os.path.exists(sys.argv[5]) else None
meta = json.load(open(meta_file))
values = defaultdict(list)  # (workload, system, variant, metric) -> [values]
by_iteration = {}  # (workload, system, variant, metric, iteration) -> value (the soak's rounds)
for line in open(tsv):
    w, s, v, it, m, x = line.rstrip("\n").split("\t")
    values[(int(w), s, v, m)].append(float(x))
    by_iteration[(int(w), s, v, m, int(it))] = float(x)


def med(w, s, v, m):
    xs = values.get((w, s, v, m))
    return statistics.median(xs) if xs else None


def spread(w, s, v, m):
    xs = values.get((w, s, v, m), [])
    return f"{min(xs):g}–{max(xs):g}" if len(xs) > 1 else ""


def fmt(x, digits=1):
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}" if abs(x) < 1e15 else str(x)


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


md = []
add = md.append
st = meta["settings"]
add(f"# MirrorGate benchmarks, {meta['date']}{' (smoke run: tiny sizes, not a measurement)' if meta['smoke'] else ''}")
add("")
add(f"Command: `{meta['command']}` — {st['iterations']} iteration(s), systems run in rotating order "
    f"(A B C, then B C A, …); every figure is the median over iterations, min–max beside it. "
    f"Total run time {meta['total_s'] / 60:.1f} min.")
add("")
add(f"![chart]({os.path.basename(out_png)})")
add("")
mc = meta["machine"]
add("## Machine and versions")
add("")
add(f"- CPU: {mc['cpu']}, {mc['cores']} cores ({mc['virtualization']} guest); memory {mc['memory']}; kernel {mc['kernel']}")
if "load" in mc:
    add(f"- Load average {mc['load']}: anything above the run's own load means other work shared the machine.")
add(f"- The load generators (wrk with {st['wrk_threads']} thread(s), skopeo, curl, python) run on the same "
    f"{mc['cores']} cores as the server under test; nginx runs `worker_processes auto`, distribution is one Go process "
    f"(GOMAXPROCS = cores), MirrorGate one process with NIO's default event loops.")
for k, v in meta["versions"].items():
    add(f"- {k}: {v}")
add("")
add("Workload sizes: image of " + " + ".join(st["layers_mib"].split()) +
    f" MiB layers ({st['image_bytes'] / 1048576:.1f} MiB with config and manifest); warm blob = its first layer "
    f"({st['blob_bytes'] / 1048576:.1f} MiB); wrk runs of {st['wrk_duration']}; {st['clients']} concurrent cold pulls; "
    f"tag-heavy set of {st['repos']} repositories x {st['tags']} tags, {st['rounds']} rounds.")
add("")

# ---- goals
g = []
for c in ("c8", "c64"):
    r = ratio(med(1, "mirrorgate", c, "mib_per_s"), med(1, "distribution", c, "mib_per_s"))
    g.append((f"warm blob throughput ≥ 1.3× distribution ({c[1:]} connections)", f"{fmt(r, 2)}×", r is not None and r >= 1.3))
for c in ("c8", "c64"):
    r = ratio(med(1, "mirrorgate", c, "mib_per_s"), med(1, "nginx", c, "mib_per_s"))
    g.append((f"warm blob throughput ≥ 0.8× nginx ({c[1:]} connections)", f"{fmt(r, 2)}×", r is not None and r >= 0.8))
for c, name in (("c8", "whole blob, 8 connections"), ("range-c8", "Range, 8 connections")):
    r = ratio(med(1, "mirrorgate", c, "cpu_s_per_gib"), med(1, "nginx", c, "cpu_s_per_gib"))
    g.append((f"warm blob CPU per GiB ≤ 1.2× nginx's ({name})", f"{fmt(r, 2)}×", r is not None and r <= 1.2))
    r = ratio(med(1, "mirrorgate", c, "mib_per_s"), med(1, "nginx", c, "mib_per_s"))
    g.append((f"warm blob throughput ≥ 0.9× nginx ({name})", f"{fmt(r, 2)}×", r is not None and r >= 0.9))
for v, name in (("manifest", "by tag"), ("digest", "by digest")):
    r = ratio(med(2, "mirrorgate", v, "requests_per_s"), med(2, "mirrorgate", "base", "requests_per_s"))
    g.append((f"cached manifest {name} ≥ 0.6× the requests/s of GET /v2/ on the same gateway", f"{fmt(r, 2)}×", r is not None and r >= 0.6))
a, b = med(2, "mirrorgate", "manifest", "p99_ms"), med(2, "distribution", "manifest", "p99_ms")
g.append(("manifest p99 no worse than distribution", f"{fmt(a, 2)} ms vs {fmt(b, 2)} ms", a is not None and b is not None and a <= b))
cv = f"c{st['clients']}"
copies = values.get((4, "mirrorgate", cv, "upstream_copies"), [])
g.append((f"upstream bytes of {st['clients']} concurrent cold pulls = one copy of the image (≤ 1.01)",
          f"{max(copies):.3f} copies (worst iteration)" if copies else "n/a", bool(copies) and max(copies) <= 1.01))
phases = (("c8", "blob 8"), ("c64", "blob 64"), ("manifest", "manifest"))
rss = {(s, v): med(5, s, v, "peak_rss_mib") for s in SYSTEMS for v, _ in phases}
g.append(("peak RSS in each phase of workloads 1 and 2 no higher than distribution's",
          "; ".join(f"{name}: {fmt(rss[('mirrorgate', v)])} vs {fmt(rss[('distribution', v)])} MiB" for v, name in phases),
          all(rss[("mirrorgate", v)] is not None and rss[("distribution", v)] is not None
              and rss[("mirrorgate", v)] <= rss[("distribution", v)] for v, _ in phases)))
soak = st.get("soak", {})
soak_rounds = int(soak.get("rounds", 0))
idle_rss = {x: by_iteration.get((7, x, "idle_end", "rss_mib", soak_rounds)) for x in SYSTEMS[:2]}
g.append(("RSS at idle after the last soak round no higher than distribution's",
          f"{fmt(idle_rss['mirrorgate'])} vs {fmt(idle_rss['distribution'])} MiB",
          None not in idle_rss.values() and idle_rss["mirrorgate"] <= idle_rss["distribution"]))
first, last = (by_iteration.get((7, "mirrorgate", "idle_end", "anon_mib", r)) for r in (1, soak_rounds))
g.append(("anonymous memory at idle does not grow from round to round (last ≤ first + 10 % + 2 MiB)",
          f"{fmt(first)} → {fmt(last)} MiB", first is not None and last is not None and last <= first * 1.1 + 2))
rv = f"c{st.get('replica_clients', 0)}"
copies9 = values.get((9, "mirrorgate-replicas", rv, "upstream_copies"), [])
g.append((f"upstream bytes of {st.get('replica_clients', 0)} concurrent cold pulls across 3 replicas = one copy of the image (≤ 1.01)",
          f"{max(copies9):.3f} copies (worst iteration)" if copies9 else "n/a", bool(copies9) and max(copies9) <= 1.01))
add("## Goals")
add("")
add("| goal | measured | met |")
add("|---|---|---|")
for name, measured, ok in g:
    # A goal whose figures are all missing was not measured (a --workloads subset), not missed.
    figures = re.findall(r"n/a|\d+(?:\.\d+)?(?=\s*(?:×|ms|MiB|copies|→))", measured)
    unmeasured = bool(figures) and all(f == "n/a" for f in figures)
    add(f"| {name} | {measured} | {'not measured in this run' if unmeasured else 'yes' if ok else '**no**'} |")
add("")


def table(header, rows):
    add("| " + " | ".join(header) + " |")
    add("|" + "---|" * len(header))
    for r in rows:
        add("| " + " | ".join(r) + " |")
    add("")


add("## 1. Warm blob throughput")
add("")
add(f"`wrk -t{st['wrk_threads']} -c8|64 -d{st['wrk_duration']}` on `GET /v2/library/bench/blobs/sha256:…` "
    "(the blob is in every system's cache; nginx serves the upstream registry's own data file with sendfile); "
    "Range: the middle half of the blob (`Range: bytes=…`, 206). MirrorGate on TLS is a second gateway with a "
    "`tls:` listener, which cannot use sendfile. CPU per GiB is the server's utime + stime over the run.")
add("")
rows = []
def blob_systems(c):
    """TLS is not run at 64 connections (none of 64 whole blobs finishes within a wrk run)."""
    return [s for s in BLOB_SYSTEMS if not (s == "mirrorgate-tls" and c == "c64")]


for c, name in BLOB_VARIANTS:
    for s in blob_systems(c):
        m = med(1, s, c, "mib_per_s")
        rows.append([name, LABEL[s], fmt(m), spread(1, s, c, "mib_per_s"), fmt(med(1, s, c, "requests_per_s"), 2),
                     fmt(med(1, s, c, "cpu_s_per_gib"), 3),
                     fmt(ratio(med(1, "mirrorgate", c, "mib_per_s"), m), 2) + "×" if s != "mirrorgate" else "",
                     fmt(ratio(med(1, "mirrorgate", c, "cpu_s_per_gib"), med(1, s, c, "cpu_s_per_gib")), 2) + "×" if s != "mirrorgate" else ""])
table(["load", "system", "MiB/s", "min–max", "requests/s", "CPU s/GiB", "MirrorGate MiB/s ÷ this", "MirrorGate CPU/GiB ÷ this"], rows)

add("## 2. Warm manifest by tag")
add("")
add(f"`wrk -t{st['wrk_threads']} -c16 -d{st['wrk_duration']} --latency` on `GET /v2/library/bench/manifests/v1` (by tag), "
    "on the same manifest by digest, and on `GET /v2/` (each server's floor), with the full OCI + Docker `Accept` "
    "list. distribution's proxy mode asks the upstream about the tag on every request (HEAD); MirrorGate answers "
    "from its cache within `tags.ttl` (default 10m); nginx serves a file.")
add("")
rows = []
for v, name in MANIFEST_VARIANTS:
    for s in SYSTEMS:
        rows.append([name, LABEL[s], fmt(med(2, s, v, "requests_per_s")), spread(2, s, v, "requests_per_s"),
                     fmt(med(2, s, v, "p50_ms"), 3), fmt(med(2, s, v, "p99_ms"), 3), fmt(med(2, s, v, "cpu_us_per_request"), 1),
                     fmt(ratio(med(2, "mirrorgate", v, "requests_per_s"), med(2, s, v, "requests_per_s")), 2) + "×"
                     if s != "mirrorgate" else fmt(ratio(med(2, s, v, "requests_per_s"), med(2, s, "base", "requests_per_s")), 2) + "× of /v2/"])
table(["request", "system", "requests/s", "min–max", "p50 ms", "p99 ms", "CPU µs/request", "MirrorGate rps ÷ this"], rows)

add("## 3. Cold pull")
add("")
add("One `skopeo copy docker://… dir:…` of the whole image through a fresh server with an empty cache "
    "(a new process and directory every iteration). Upstream requests and bytes are read from the upstream "
    "registry's access log.")
add("")
rows = [[LABEL[s], fmt(med(3, s, "c1", "wall_s"), 2), spread(3, s, "c1", "wall_s"), fmt(med(3, s, "c1", "upstream_requests"), 0),
         fmt(med(3, s, "c1", "upstream_mib"), 1), fmt(med(3, s, "c1", "cpu_s_per_gib"), 2), fmt(med(3, s, "c1", "peak_rss_mib"), 0)]
        for s in SYSTEMS[:2]]
table(["system", "wall s", "min–max", "upstream requests", "upstream MiB", "CPU s/GiB served", "peak RSS MiB"], rows)

add(f"## 4. {st['clients']} concurrent cold pulls of one image")
add("")
add(f"{st['clients']} `skopeo copy` at once through a fresh server; every blob each client wrote is checked "
    f"against its digest afterwards. One copy of the image is {st['image_bytes'] / 1048576:.2f} MiB.")
add("")
rows = [[LABEL[s], fmt(med(4, s, cv, "upstream_mib"), 1), fmt(med(4, s, cv, "upstream_copies"), 3),
         fmt(med(4, s, cv, "upstream_requests"), 0), fmt(med(4, s, cv, "wall_s"), 2), spread(4, s, cv, "wall_s"),
         fmt(med(4, s, cv, "peak_rss_mib"), 0), fmt(med(4, s, cv, "cpu_s_per_gib"), 2)] for s in SYSTEMS[:2]]
table(["system", "upstream MiB", "copies of the image", "upstream requests", "wall s", "min–max", "peak RSS MiB", "CPU s/GiB served"], rows)

add("## 5. Memory and CPU during workloads 1 and 2")
add("")
add("Peak RSS is VmHWM of the server (nginx: master + workers, summed), reset before each wrk run by writing 5 to "
    "`/proc/PID/clear_refs`, so each figure is the peak during that run alone; the servers are not restarted between "
    "runs. CPU is utime + stime from `/proc/PID/stat` before and after the run.")
add("")
rows = []
names = {"c8": "blob, 8 conns", "c64": "blob, 64 conns", "range-c8": "blob Range, 8 conns", "manifest": "manifest by tag, 16 conns",
         "digest": "manifest by digest, 16 conns", "base": "GET /v2/, 16 conns"}
for v, unit in [(c, "cpu_s_per_gib") for c, _ in BLOB_VARIANTS] + [(m, "cpu_us_per_request") for m, _ in MANIFEST_VARIANTS]:
    for s in (blob_systems(v) if unit == "cpu_s_per_gib" else SYSTEMS):
        rows.append([names[v], LABEL[s],
                     fmt(med(5, s, v, "peak_rss_mib")), fmt(med(5, s, v, "cpu_s"), 2),
                     (fmt(med(5, s, v, unit), 2) + " CPU s/GiB") if unit == "cpu_s_per_gib" else (fmt(med(5, s, v, unit), 1) + " CPU µs/request")])
table(["workload", "system", "peak RSS MiB", "CPU s", "CPU per unit of work"], rows)
add("RSS after the warm workloads: " + ", ".join(f"{LABEL[s]} {fmt(med(5, s, 'idle', 'rss_after_mib'))} MiB" for s in BLOB_SYSTEMS) + ".")
add("")

add("## 6. Tag-heavy: manifest GETs spent upstream")
add("")
dm = med(6, "distinct", "tags", "distinct_manifests")
add(f"{st['repos']} x {st['tags']} tags, each its own image, pulled {st['rounds']} times round-robin, a round every {st.get('tag_gap', 0):g} s; a pull is a GET by "
    "tag (skopeo, docker) or a HEAD by tag and a GET by digest (containerd), alternating. After half the rounds the "
    f"first tag of every repository is moved to new content upstream. Distinct manifests in play: {fmt(dm, 0)} "
    "(the least any cache must GET). Each system starts empty; upstream GETs and HEADs are counted in the upstream's "
    "access log. Stale = answers naming a digest the tag no longer had upstream. MirrorGate runs with the default "
    "`tags` (refresh_after 60s: older answers are served at once and revalidated in the background; ttl 10m), with "
    "`refresh_after` = `ttl` = 10m (no background revalidation, as before it existed) and with `ttl: 0s` (every "
    "request waits for a HEAD).")
add("")
rows = [[LABEL[s], fmt(med(6, s, "tags", "pulls"), 0), fmt(med(6, s, "tags", "upstream_manifest_gets"), 0),
         fmt(med(6, s, "tags", "upstream_manifest_heads"), 0), fmt(med(6, s, "tags", "stale"), 0), fmt(med(6, s, "tags", "errors"), 0),
         fmt(med(6, s, "tags", "seconds"), 1)]
        for s in ("mirrorgate", "mirrorgate-norefresh", "mirrorgate-ttl0", "distribution")]
table(["system", "pulls", "upstream manifest GETs", "upstream manifest HEADs", "stale answers", "errors", "run (s)"], rows)

add("## 7. Soak: memory at idle after load")
add("")
add(f"Fresh servers on the warm caches. {soak_rounds} round(s); in each, every system in turn (rotating order) gets "
    f"`wrk -c8` on the blob and `wrk -c16` on the manifest by tag for {soak.get('load', '?')} each, then a burst of "
    f"{soak.get('clients', '?')} connections on the blob for {soak.get('burst', '?')}; then both idle for "
    f"{soak.get('idle_s', '?')} s and are sampled {soak.get('early_s', '?')} s into the pause and at its end. RSS is "
    "VmRSS, anonymous memory RssAnon (`/proc/PID/status`): heap, arenas and stacks, without the mapped binary and "
    "page cache. Peak is VmHWM during the round's load. distribution (Go) gives freed memory back after its next "
    "forced GC (every 2 min), which is why the pause is longer than that.")
add("")
rounds = range(1, soak_rounds + 1)
rows = []
for x in SYSTEMS[:2]:
    for metric, name in (("rss_mib", "RSS MiB"), ("anon_mib", "anonymous MiB")):
        for v, when in (("idle_early", f"{soak.get('early_s', '?')} s into the pause"), ("idle_end", "end of the pause")):
            rows.append([LABEL[x], name, when, fmt(by_iteration.get((7, x, "start", metric, 1)))]
                        + [fmt(by_iteration.get((7, x, v, metric, r))) for r in rounds])
    rows.append([LABEL[x], "peak RSS MiB", "during the load", ""] + [fmt(by_iteration.get((7, x, "load", "peak_rss_mib", r))) for r in rounds])
    reqs = [sum(by_iteration.get((7, x, ph, "requests", r)) or 0 for ph in ("blob", "manifest", "burst")) for r in rounds]
    errs = [sum(by_iteration.get((7, x, ph, "errors", r)) or 0 for ph in ("blob", "manifest", "burst")) for r in rounds]
    rows.append([LABEL[x], "requests (errors)", "during the load", ""] + [f"{q:,.0f} ({e:,.0f})" for q, e in zip(reqs, errs)])
table(["system", "figure", "when", "before round 1"] + [f"round {r}" for r in rounds], rows)

add("## 8. Warm blob from S3")
add("")
add(f"MirrorGate with `storage.backend: s3` on a moto_server bucket, the blob cached there: `wrk -t{st['wrk_threads']} -c8 "
    f"-d{st['wrk_duration']}` on it, streamed from the bucket through the gateway, and with `storage.s3.redirect: true` "
    "answered 307 to a presigned URL (wrk does not follow it: the figures are the gateway's cost of the answer). "
    "moto (Python) is far slower than a real object store, so the streamed throughput is the bucket's.")
add("")
rows = [[LABEL[s], fmt(med(8, s, "c8", "mib_per_s")), fmt(med(8, s, "c8", "requests_per_s"), 1), fmt(med(8, s, "c8", "p50_ms"), 3),
         fmt(med(8, s, "c8", "p99_ms"), 3),
         (fmt(med(8, s, "c8", "cpu_s_per_gib"), 3) + " CPU s/GiB") if s == "mirrorgate-s3" else (fmt(med(8, s, "c8", "cpu_us_per_request"), 1) + " CPU µs/request")]
        for s in ("mirrorgate-s3", "mirrorgate-s3-redirect")]
table(["system", "MiB/s", "requests/s", "p50 ms", "p99 ms", "CPU per unit of work"], rows)
add("## 9. Replicas: PostgreSQL and a shared directory vs SQLite")
add("")
add(f"Three MirrorGate replicas share one PostgreSQL 15 database (`metadata.backend: postgres`, `cluster:` with a peer "
    "port each) and one `storage.path`; the peer is one MirrorGate on SQLite with its own directory, in the same run. "
    f"Cold: {st.get('replica_clients', 0)} `skopeo copy` at once, spread round-robin over the replicas (client i on "
    "replica i mod 3), a fresh database and directory every iteration; the single gateway gets the same number of "
    "pulls, fresh. Every blob each client wrote is checked against its digest; upstream bytes come from the upstream's "
    "access log. Peak RSS is each replica's VmHWM over the whole pull.")
add("")
rows = []
for s in ("mirrorgate-replicas", "mirrorgate"):
    rows.append([LABEL[s] if s != "mirrorgate" else "MirrorGate, 1 (SQLite)", fmt(med(9, s, rv, "upstream_mib"), 1),
                 fmt(med(9, s, rv, "upstream_copies"), 3), fmt(med(9, s, rv, "upstream_requests"), 0), fmt(med(9, s, rv, "wall_s"), 2),
                 spread(9, s, rv, "wall_s"),
                 " / ".join(fmt(med(9, s, rv, f"peak_rss_mib_replica{k}"), 0) for k in (1, 2, 3)) if s != "mirrorgate"
                 else fmt(med(9, s, rv, "peak_rss_mib"), 0)])
table(["system", "upstream MiB", "copies of the image", "upstream requests", "wall s", "min–max", "peak RSS MiB (per replica)"], rows)
add(f"Warm: `wrk -t{st['wrk_threads']}` (blob: `-c8|64 -d{st.get('blob9_duration', st['wrk_duration'])}`, manifest: `-c16 -d{st['wrk_duration']} --latency`) from replica 2, which fetched nothing itself (replica 1 "
    "was warmed with one pull): the blob's bytes come from the shared directory, the tag from PostgreSQL. CPU is utime + "
    "stime of the serving process over the run (`/proc/PID/stat`); PostgreSQL's own CPU is not in it.")
add("")
rows = []
for v in ("c8", "c64", "manifest"):
    for s in ("mirrorgate-replicas", "mirrorgate"):
        name = LABEL[s] if s != "mirrorgate" else "MirrorGate, 1 (SQLite)"
        per = (fmt(med(9, s, v, "cpu_s_per_gib"), 2) + " CPU s/GiB") if v != "manifest" else (fmt(med(9, s, v, "cpu_us_per_request"), 1) + " CPU µs/request")
        rows.append([{"c8": "blob, 8 conns", "c64": "blob, 64 conns", "manifest": "manifest by tag, 16 conns"}[v], name,
                     fmt(med(9, s, v, "mib_per_s")) if v != "manifest" else "", fmt(med(9, s, v, "requests_per_s")),
                     spread(9, s, v, "requests_per_s"), fmt(med(9, s, v, "p50_ms"), 3), fmt(med(9, s, v, "p99_ms"), 3), per,
                     fmt(med(9, s, v, "peak_rss_mib"))])
table(["workload", "system", "MiB/s", "requests/s", "min–max", "p50 ms", "p99 ms", "CPU per unit of work", "peak RSS MiB"], rows)
add("Statements sent to PostgreSQL (its log with `log_statement = all`, switched on for these requests only; each "
    "statement a replica sends is one round trip): a cold manifest by tag and then a cold layer blob through replica 1 "
    "(on an empty cache), then the same two through replica 2, warm. Each is counted from the request until "
    f"{st.get('pg_window', 3):g} s after it began (the pull ledger is written in batches once a second). The same "
    "window with no request, before and after, holds the three replicas' periodic work (budget and cache-usage polls, "
    "batched access-time updates) and postgres-nio's keep-alives (`SELECT 1;` on a pooled connection idle for 15 s); "
    "\"the request's own\" leaves out every statement whose text an idle window also has, and the keep-alives.")
add("")
rows = []
for m, name in (("cold_manifest", "cold manifest GET by tag (replica 1)"), ("cold_blob", "cold blob GET (replica 1)"),
                ("warm_manifest", "warm manifest GET by tag (replica 2)"), ("warm_blob", "warm blob GET (replica 2)"),
                ("idle_before", "no request (before)"), ("idle_after", "no request (after)")):
    own = med(9, "mirrorgate-replicas", "statements", m + "_own")
    rows.append([name, fmt(med(9, "mirrorgate-replicas", "statements", m), 0), fmt(own, 0) if not m.startswith("idle") else ""])
table(["request", "statements in the window", "the request's own"], rows)

add("## What changed")
add("")
add(notes if notes else "Nothing: this run measures the tree as it is.")
add("")

add("## All medians")
add("")
add("Every measured value (workload, system, variant, metric): median, min, max, number of iterations. "
    f"The raw values are in `{os.path.basename(out_md)[:-3]}.tsv`.")
add("")
add("| workload | system | variant | metric | median | min | max | n |")
add("|---|---|---|---|---|---|---|---|")
for (w, s, v, m), xs in sorted(values.items()):
    add(f"| {w} | {s} | {v} | {m} | {statistics.median(xs):g} | {min(xs):g} | {max(xs):g} | {len(xs)} |")
add("")
open(out_md, "w").write("\n".join(md))

# ---- chart
fig, axes = plt.subplots(2, 5, figsize=(25, 8.5))
fig.suptitle(f"MirrorGate vs distribution proxy vs nginx — {meta['date']}, {mc['cores']} cores, medians of {st['iterations']}",
             fontsize=12)


def bars(ax, title, ylabel, groups, series, getter, digits=0):
    n = len(series)
    width = 0.8 / n
    for i, s in enumerate(series):
        raw = [getter(s, grp) for grp in groups]
        xs = [k + (i - (n - 1) / 2) * width for k in range(len(groups))]
        b = ax.bar(xs, [y or 0 for y in raw], width, label=LABEL[s], color=COLOR[s])
        ax.bar_label(b, labels=["" if y is None else f"{y:,.{digits}f}" for y in raw], fontsize=7)
    ax.set_xticks(range(len(groups)), [str(grp[1]) for grp in groups])
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)


bars(axes[0][0], "1. warm blob throughput", "MiB/s", list(BLOB_VARIANTS), BLOB_SYSTEMS,
     lambda s, grp: med(1, s, grp[0], "mib_per_s"))
axes[0][0].legend(fontsize=8)
bars(axes[0][1], "2. warm manifests and /v2/", "requests/s", [(v, n.replace("manifest ", "")) for v, n in MANIFEST_VARIANTS], SYSTEMS,
     lambda s, grp: med(2, s, grp[0], "requests_per_s"))
bars(axes[0][2], "2. manifest latency", "ms", [("p50_ms", "p50"), ("p99_ms", "p99")], SYSTEMS,
     lambda s, grp: med(2, s, "manifest", grp[0]), 2)
bars(axes[1][0], "3./4. cold pulls: wall time", "s", [(3, "1 pull"), (4, f"{st['clients']} concurrent")], SYSTEMS[:2],
     lambda s, grp: med(grp[0], s, "c1" if grp[0] == 3 else cv, "wall_s"), 2)
bars(axes[1][1], "4./6. upstream traffic", "count", [("copies", "image copies (4)"), ("gets", "manifest GETs (6)")],
     ["mirrorgate", "mirrorgate-ttl0", "distribution"],
     lambda s, grp: (med(4, s, cv, "upstream_copies") if grp[0] == "copies" else med(6, s, "tags", "upstream_manifest_gets")), 2)
bars(axes[1][2], "5. peak RSS", "MiB", [("c8", "blob 8"), ("c64", "blob 64"), ("manifest", "manifest")], SYSTEMS,
     lambda s, grp: med(5, s, grp[0], "peak_rss_mib"))
axes[1][1].legend(fontsize=8)
bars(axes[0][3], "7. soak: RSS at the end of each idle pause", "MiB", [(r, f"round {r}") for r in rounds], SYSTEMS[:2],
     lambda x, grp: by_iteration.get((7, x, "idle_end", "rss_mib", grp[0])))
bars(axes[1][3], "7. soak: anonymous memory at the end of each idle pause", "MiB", [(r, f"round {r}") for r in rounds],
     SYSTEMS[:2], lambda x, grp: by_iteration.get((7, x, "idle_end", "anon_mib", grp[0])))
bars(axes[0][4], "9. cold pulls: 3 replicas vs 1 (SQLite)", "", [("upstream_copies", "image copies"), ("wall_s", "wall s")],
     ["mirrorgate-replicas", "mirrorgate"], lambda s, grp: med(9, s, rv, grp[0]), 2)
axes[0][4].legend(fontsize=8)
bars(axes[1][4], "9. warm blob from a replica vs 1 (SQLite)", "MiB/s", [("c8", "8 conns"), ("c64", "64 conns")],
     ["mirrorgate-replicas", "mirrorgate"], lambda s, grp: med(9, s, grp[0], "mib_per_s"))
fig.tight_layout()
fig.savefig(out_png, dpi=100)
print(f"wrote {out_md} and {out_png}")
