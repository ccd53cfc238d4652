#!/usr/bin/env python3
"""A hostile upstream registry for tests, and an "internal service" beside it: what no
Debian package provides, an upstream that answers as an attack needs.

    hostile_upstream.py --listen 127.0.0.1:0 --internal 127.0.0.5:0 --log FILE [--config JSON]

Both listeners take port 0 (the kernel picks a free one) and print, once they listen,
"listening on HOST:PORT" and "internal listening on HOST:PORT" to standard output.
--config applies a configuration at start, as `POST /_hostile/config` would.

The upstream picks a behaviour from the first component of the repository name,
`/v2/<mode>/...` (so `/v2/redir/x/tags/list` is answered by the mode `redir`), as the
security review's hostile.py did. `GET /v2/` answers 200 `{}`. Modes, with their
parameters and defaults (a parameter set in the configuration replaces the default):

    notfound    404 with an OCI error envelope (MANIFEST_UNKNOWN, BLOB_UNKNOWN or
                NAME_UNKNOWN). The default for a first component no mode is named after.
    retryafter  {"status": 429, "retry_after": "9223372036854775807"}: every request gets
                that status, `Retry-After` and a TOOMANYREQUESTS envelope.
    rlwindow    {"limit": "100;w=9223372036854775807", "remaining": "0;w=9223372036854775807"}:
                manifests (GET and HEAD) get 200 with `ratelimit-limit` and
                `ratelimit-remaining`, an OCI image manifest and its Docker-Content-Digest;
                anything else is `notfound`.
    redir       {"status": 302, "location": "{internal}/internal/{tail}"}: every request
                gets that status and Location (a template, see below).
    realm       {"realm": "{internal}/token", "service": "hostile", "scheme": "Bearer",
                 "authorized": "notfound"}: a request without Authorization gets 401 with
                `WWW-Authenticate: <scheme> realm="<realm>",service="<service>",
                scope="repository:<name>:pull"` (Basic: only the realm); one with
                Authorization is answered by the mode named in "authorized".
    serve       {"status": 200, "body": "{}", "content_type": "application/octet-stream",
                 "digest": null, "headers": {}}: every GET gets that status and body (HEAD:
                the head only), with Content-Length, Docker-Content-Digest when "digest" is
                true (the body's sha256) or a string (sent as it is), and extra headers.
                Serves mismatching digests, arbitrary media types, counted HEADs and GETs.
    html        `serve` with {"content_type": "text/html", "digest": true,
                 "body": "<script>alert(document.domain)</script>"}: a manifest whose
                digest matches its HTML body.
    stall       {"length": 1048576, "hold": 120}: 200 with that Content-Length, then no body
                byte for "hold" seconds, then the connection is closed.
    drip        {"length": 1048576, "interval": 1.0, "body": null}: 200 with that
                Content-Length, then one byte every "interval" seconds (the bytes of "body",
                else zeros).
    huge        {"length": "100000000000000000", "send": 0, "hold": 0}: 200 with that
                Content-Length (any string, sent as it is), "send" zero bytes, then holds
                the connection "hold" seconds and closes it.
    endless     {"chunk": 65536, "interval": 0}: 200 with a chunked body that never ends
                (until the client goes away), a chunk of zeros every "interval" seconds.

Templates (location, realm, body) replace `{internal}` with the internal listener's
origin (`http://127.0.0.5:PORT`), `{self}` with this listener's origin, `{path}` with
the request's path, `{name}` with the repository name and `{tail}` with the part of the
path from the endpoint on (`tags/list`, `manifests/latest`, `blobs/sha256:…`).

Configuration (`POST /_hostile/config` with a JSON object; each key given replaces
that part, `GET /_hostile/config` returns it all):
    {"modes": {"NAME": {"behaviour": "redir", ...parameters}}}
                            defines or redefines mode NAME (a built-in mode's name alone,
                            without "behaviour", changes that mode's parameters)
    {"routes": {"privorg": "realm"}}
                            first components that are answered by another mode (the review
                            pulled `privorg/app` through a hostile upstream)
    {"default": "notfound"} the mode for first components that are neither a mode nor routed

The internal listener stands for a service on the gateway's network that must never be
reached through it: it answers every request 200 `INTERNAL-SECRET-<path>` (text/plain).

Every request to either listener (control requests excepted) is logged before it is
answered, one JSON object per line in FILE and in `GET /_hostile/log` (a JSON array):
{"time", "listener": "upstream"|"internal", "method", "path", "headers": [[name, value],
...] as received (Authorization included), "body": the request body as text (at most
64 KiB), "mode": the mode that answered (null on the internal listener)}.
`POST /_hostile/clear` empties the log.
"""
import argparse
import copy
import hashlib
import http.server
import json
import re
import threading
import time
import urllib.parse

BUILTIN = {
    "notfound": {},
    "retryafter": {"status": 429, "retry_after": "9223372036854775807"},
    "rlwindow": {"limit": "100;w=9223372036854775807", "remaining": "0;w=9223372036854775807"},
    "redir": {"status": 302, "location": "{internal}/internal/{tail}"},
    "realm": {"realm": "{internal}/token", "service": "hostile", "scheme": "Bearer", "authorized": "notfound"},
    "serve": {"status": 200, "body": "{}", "content_type": "application/octet-stream", "digest": None, "headers": {}},
    "html": {"status": 200, "body": "<script>alert(document.domain)</script>", "content_type": "text/html",
             "digest": True, "headers": {}, "behaviour": "serve"},
    "stall": {"length": 1 << 20, "hold": 120},
    "drip": {"length": 1 << 20, "interval": 1.0, "body": None},
    "huge": {"length": "100000000000000000", "send": 0, "hold": 0},
    "endless": {"chunk": 1 << 16, "interval": 0},
}
BEHAVIOURS = {name for name, params in BUILTIN.items() if "behaviour" not in params}

lock = threading.Lock()
config = {"modes": {}, "routes": {}, "default": "notfound"}
log = []
origins = {"self": "", "internal": ""}
log_file = None

ENDPOINT = re.compile(r"^/v2/(?P<name>.+?)/(?P<tail>(?:manifests|blobs|tags|referrers)/.*)$")
# An image manifest (empty config, no layers): what `rlwindow` serves as a manifest.
MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
               "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
    "layers": [],
}, separators=(",", ":")).encode()


def apply_config(body):
    """Applies a `POST /_hostile/config` body (or --config); raises ValueError on a bad one."""
    if not isinstance(body, dict) or not set(body) <= {"modes", "routes", "default"}:
        raise ValueError("expected an object with modes, routes and/or default")
    modes = body.get("modes", {})
    for name, params in modes.items():
        behaviour = params.get("behaviour", BUILTIN.get(name, {}).get("behaviour", name))
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"mode {name!r}: unknown behaviour {behaviour!r}")
    with lock:
        if "modes" in body:
            config["modes"].update(copy.deepcopy(modes))
        if "routes" in body:
            config["routes"] = dict(body["routes"])
        if "default" in body:
            config["default"] = str(body["default"])


def resolve_mode(name):
    """(mode name, behaviour, parameters) for a mode name, `notfound` for an unknown one
    (called with `lock` held)."""
    if name not in BUILTIN and name not in config["modes"]:
        name = "notfound"
    own = dict(BUILTIN.get(name, {}))
    own.update(config["modes"].get(name, {}))
    behaviour = own.pop("behaviour", name)
    # A mode defined on a behaviour starts from that behaviour's defaults.
    params = {k: v for k, v in BUILTIN[behaviour].items() if k != "behaviour"}
    params.update(own)
    return name, behaviour, params


def record(listener, handler, body, mode):
    entry = {"time": time.time(), "listener": listener, "method": handler.command, "path": handler.path,
             "headers": [[k, v] for k, v in handler.headers.items()],
             "body": body.decode("utf-8", "replace"), "mode": mode}
    line = json.dumps(entry)
    with lock:
        log.append(entry)
        if log_file:
            with open(log_file, "a") as f:
                f.write(line + "\n")


class Base(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        length = int(self.headers.get("Content-Length", "0") or 0)
        data = self.rfile.read(length) if length else b""
        return data[:64 << 10]

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class Internal(Base):
    def handle_any(self):
        record("internal", self, self.read_body(), None)
        self.reply(200, f"INTERNAL-SECRET-{self.path}".encode(), [("Content-Type", "text/plain")])

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


class Hostile(Base):
    def handle_any(self):
        if self.path.startswith("/_hostile/"):
            return self.control()
        body = self.read_body()
        path = urllib.parse.urlsplit(self.path).path
        if path in ("/v2", "/v2/"):
            record("upstream", self, body, None)
            return self.reply(200, b"{}", [("Content-Type", "application/json")])
        first = path[len("/v2/"):].split("/", 1)[0] if path.startswith("/v2/") else ""
        with lock:
            name = first if first in BUILTIN or first in config["modes"] else config["routes"].get(first, config["default"])
            mode, behaviour, params = resolve_mode(name)
        record("upstream", self, body, mode)
        try:
            getattr(self, "mode_" + behaviour)(params)
        except (BrokenPipeError, ConnectionResetError):
            # The gateway gave up on a stalled, dripping or endless body.
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def control(self):
        if self.path == "/_hostile/config" and self.command == "POST":
            try:
                apply_config(json.loads(self.read_body() or b"{}"))
            except (ValueError, AttributeError, TypeError) as error:
                return self.reply(400, json.dumps({"error": str(error)}).encode())
            return self.reply(200, b"{}")
        if self.path == "/_hostile/config":
            with lock:
                text = json.dumps(config)
            return self.reply(200, text.encode(), [("Content-Type", "application/json")])
        if self.path == "/_hostile/log":
            with lock:
                text = json.dumps(log)
            return self.reply(200, text.encode(), [("Content-Type", "application/json")])
        if self.path == "/_hostile/clear" and self.command == "POST":
            with lock:
                log.clear()
                if log_file:
                    open(log_file, "w").close()
            return self.reply(200, b"{}")
        self.reply(404, b"{}")

    # --- helpers ----------------------------------------------------------------------

    def parts(self):
        match = ENDPOINT.match(urllib.parse.urlsplit(self.path).path)
        return (match["name"], match["tail"]) if match else ("", "")

    def template(self, text):
        name, tail = self.parts()
        return (str(text).replace("{internal}", origins["internal"]).replace("{self}", origins["self"])
                .replace("{path}", self.path).replace("{name}", name).replace("{tail}", tail))

    def envelope(self, status, code, message):
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        return status, body

    def hold_then_close(self, seconds):
        self.wfile.flush()
        time.sleep(float(seconds))
        self.close_connection = True

    # --- behaviours -------------------------------------------------------------------

    def mode_notfound(self, params):
        tail = self.parts()[1]
        code = "MANIFEST_UNKNOWN" if tail.startswith("manifests/") else "BLOB_UNKNOWN" if tail.startswith("blobs/") else "NAME_UNKNOWN"
        status, body = self.envelope(404, code, "not here (hostile upstream)")
        self.reply(status, body, [("Content-Type", "application/json")])

    def mode_retryafter(self, params):
        status, body = self.envelope(int(params["status"]), "TOOMANYREQUESTS", "slow down (hostile upstream)")
        self.reply(status, body, [("Content-Type", "application/json"), ("Retry-After", str(params["retry_after"]))])

    def mode_rlwindow(self, params):
        if not self.parts()[1].startswith("manifests/"):
            return self.mode_notfound(params)
        self.reply(200, MANIFEST, [
            ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
            ("Docker-Content-Digest", "sha256:" + hashlib.sha256(MANIFEST).hexdigest()),
            ("ratelimit-limit", str(params["limit"])), ("ratelimit-remaining", str(params["remaining"])),
        ])

    def mode_redir(self, params):
        self.reply(int(params["status"]), b"", [("Location", self.template(params["location"]))])

    def mode_realm(self, params):
        if self.headers.get("Authorization") is not None:
            with lock:
                _, behaviour, inner = resolve_mode(str(params["authorized"]))
            if behaviour == "realm":  # would challenge forever
                behaviour, inner = "notfound", {}
            return getattr(self, "mode_" + behaviour)(inner)
        realm = self.template(params["realm"])
        if str(params["scheme"]).lower() == "basic":
            challenge = f'Basic realm="{realm}"'
        else:
            challenge = (f'{params["scheme"]} realm="{realm}",service="{self.template(params["service"])}",'
                         f'scope="repository:{self.parts()[0]}:pull"')
        status, body = self.envelope(401, "UNAUTHORIZED", "authentication required (hostile upstream)")
        self.reply(status, body, [("Content-Type", "application/json"), ("WWW-Authenticate", challenge)])

    def mode_serve(self, params):
        body = self.template(params["body"]).encode()
        headers = [("Content-Type", str(params["content_type"]))]
        digest = params.get("digest")
        if digest is True:
            headers.append(("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest()))
        elif digest:
            headers.append(("Docker-Content-Digest", str(digest)))
        headers += [(k, str(v)) for k, v in (params.get("headers") or {}).items()]
        self.reply(int(params["status"]), body, headers)

    def mode_stall(self, params):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(params["length"]))
        self.end_headers()
        if self.command != "HEAD":
            self.hold_then_close(params["hold"])

    def mode_drip(self, params):
        length = int(params["length"])
        content = self.template(params["body"]).encode() if params.get("body") is not None else b"\0" * length
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command == "HEAD":
            return
        for i in range(len(content)):
            self.wfile.write(content[i:i + 1])
            self.wfile.flush()
            time.sleep(float(params["interval"]))

    def mode_huge(self, params):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(params["length"]))
        self.end_headers()
        if self.command == "HEAD":
            return
        self.wfile.write(b"\0" * int(params["send"]))
        self.hold_then_close(params["hold"])

    def mode_endless(self, params):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        chunk = b"\0" * int(params["chunk"])
        frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        while True:
            self.wfile.write(frame)
            if params["interval"]:
                self.wfile.flush()
                time.sleep(float(params["interval"]))


def serve(address, handler):
    """A server bound to HOST:PORT (port 0: any free one) and the address it got."""
    host, port = address.rsplit(":", 1)
    server = http.server.ThreadingHTTPServer((host, int(port)), handler)
    server.daemon_threads = True
    return server, f"{host}:{server.server_address[1]}"


def main():
    global log_file
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--internal", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--config", help="a JSON configuration applied at start, as POST /_hostile/config")
    args = parser.parse_args()
    log_file = args.log
    open(log_file, "w").close()
    if args.config:
        apply_config(json.loads(args.config))
    upstream, upstream_address = serve(args.listen, Hostile)
    internal, internal_address = serve(args.internal, Internal)
    origins["self"] = f"http://{upstream_address}"
    origins["internal"] = f"http://{internal_address}"
    threading.Thread(target=internal.serve_forever, daemon=True).start()
    print(f"internal listening on {internal_address}", flush=True)
    print(f"listening on {upstream_address}", flush=True)
    upstream.serve_forever()


if __name__ == "__main__":
    main()
