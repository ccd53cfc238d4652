#!/usr/bin/env python3
"""A test double that stands in front of a real docker-registry, for what no Debian
package provides: an upstream that misbehaves on command.

    registry_front.py --listen 127.0.0.1:PORT --backend http://127.0.0.1:PORT
                      [--tls-cert CERT.pem --tls-key KEY.pem] [--mode JSON]

It may listen on any loopback address (127.0.0.2 stands for "another host" in tests).
With --tls-cert/--tls-key it speaks HTTPS (HTTP/1.1, no ALPN) with that certificate;
--mode sets a mode at start, as `POST /_front/mode` with that JSON would. Once it
listens it prints "listening on HOST:PORT" to standard output.

Requests are forwarded to the backend and answers streamed back unchanged, except when a
failure mode is set with `POST /_front/mode` and a JSON body:
    {"status": 500}                 every /v2/<name>/... request gets this status and an
                                    OCI error envelope (429 gets TOOMANYREQUESTS and
                                    Retry-After, as Docker Hub answers past its limit)
    {"status": 0}                   back to forwarding
    {"ignore_range": true}          forward without the Range header (a server that
                                    ignores ranges and answers 200 with the whole body)
    {"ratelimit": {"limit": N, "window": SECONDS}}
                                    Docker Hub's pull rate limit (see below); setting it
                                    starts a fresh count. Options besides limit/window:
                                    "headers": "x-" (x-ratelimit-* names), "head_429": true
                                    (HEADs get 429 too once exhausted), "per_user": true
                                    (one budget per Basic user or Bearer token `sub`)
    {"ratelimit": null}             no rate limit, no headers
    {"redirect_blobs": "http://127.0.0.2:PORT"}
                                    a blob GET or HEAD (`/v2/<name>/blobs/<digest>`) that
                                    the backend would answer 2xx (checked with a HEAD
                                    carrying the request's headers, so 401 and 404 still
                                    come from the backend) gets 307 with Location = that
                                    origin + the same path and query, as Docker Hub sends
                                    blob GETs to its CDN; null turns it off
    {"redirect_manifests": "http://127.0.0.2:PORT"}
                                    the same for manifest GETs and HEADs
                                    (`/v2/<name>/manifests/<ref>`; the spec lets a registry
                                    redirect any request), before and outside the rate
                                    limit; null turns it off
    {"redirect_loop": true}         every blob GET or HEAD gets 307 with Location = this
                                    front's own origin + the same path: a redirect loop
                                    (false turns it off; it wins over redirect_blobs)
    {"stall_redirects": true}       those 307s announce a 64-byte body (Content-Length: 64)
                                    and never send it, holding the connection for 120 s
                                    (false: empty bodies again)
    {"stall_manifest_bodies": true} manifest GETs get the backend's status and headers but
                                    never their body (the connection is held for 120 s;
                                    false forwards bodies again)
    {"blob_rate": BYTES_PER_SECOND} blob GET bodies (`/v2/<name>/blobs/<digest>`) are sent
                                    at most this fast (a slow upstream, so a test can act
                                    while a fetch is half done); 0 or null: full speed
`GET /_front/log` returns one line per request seen: "METHOD PATH STATUS".
`GET /_front/requests` returns the same requests as a JSON array of {"method", "path",
"status", "auth"}, where auth is the scheme of the request's Authorization header:
"basic", "bearer", "none" (no header) or "other".
`GET /_front/ratelimit` returns {"enabled", "limit", "window", "used", "remaining",
"headers", "head_429", "per_user", "users": {key: used}} (used/remaining: anonymous key
"" when per_user, else the single budget; users: every key with counted pulls).

The rate limit is Docker Hub's (docs.docker.com/docker-hub/usage/pulls): every response
to a manifest GET or HEAD (`/v2/<name>/manifests/<ref>`) that got past authentication
(anything but 401) carries `ratelimit-limit: N;w=W`, `ratelimit-remaining: R;w=W` and
`docker-ratelimit-source: <client IP or user>`. Only successful (2xx) manifest GETs count,
in a sliding window of W seconds; HEADs, blobs and failed GETs never do. Once N GETs were
counted, a manifest GET that would have succeeded (checked with a HEAD to the backend, so
401/404 still come from the backend) gets 429 TOOMANYREQUESTS with Hub's message and no
Retry-After; HEADs keep answering 200 with remaining 0 (unless head_429).
"""
import argparse
import base64
import http.client
import http.server
import json
import re
import ssl
import threading
import time
import urllib.parse

state = {"status": 0, "ignore_range": False, "log": [], "ratelimit": None,
         "redirect_blobs": None, "redirect_manifests": None, "redirect_loop": False,
         "stall_redirects": False, "stall_manifest_bodies": False}
lock = threading.Lock()

MANIFEST_PATH = re.compile(r"^/v2/.+/manifests/[^/]+$")
# A blob by digest (`algorithm:encoded`), never an upload session.
BLOB_PATH = re.compile(r"^/v2/.+/blobs/[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
HUB_429_MESSAGE = ("You have reached your pull rate limit. You may increase the limit by authenticating "
                   "and upgrading: https://www.docker.com/increase-rate-limit")


def new_ratelimit(spec):
    """The rate-limit state for a `{"ratelimit": {...}}` request (None turns it off)."""
    if spec is None:
        return None
    headers = spec.get("headers", "") or ""
    if headers not in ("", "x-"):
        raise ValueError("headers must be \"\" or \"x-\"")
    return {
        "limit": int(spec["limit"]),
        "window": int(spec["window"]),
        "headers": headers,
        "head_429": bool(spec.get("head_429", False)),
        "per_user": bool(spec.get("per_user", False)),
        "pulls": {},  # key -> [monotonic times of counted GETs]
    }


def prune(rl, key):
    """The counted pulls of `key` still inside the window (called with `lock` held)."""
    horizon = time.monotonic() - rl["window"]
    pulls = [t for t in rl["pulls"].get(key, []) if t > horizon]
    if pulls:
        rl["pulls"][key] = pulls
    else:
        rl["pulls"].pop(key, None)
    return pulls


def ratelimit_snapshot():
    with lock:
        rl = state["ratelimit"]
        if rl is None:
            return {"enabled": False, "limit": None, "window": None, "used": 0, "remaining": None,
                    "headers": None, "head_429": False, "per_user": False, "users": {}}
        users = {}
        for key in list(rl["pulls"]):
            count = len(prune(rl, key))
            if count:
                users[key] = count
        used = users.get("", 0) if rl["per_user"] else sum(users.values())
        return {"enabled": True, "limit": rl["limit"], "window": rl["window"], "used": used,
                "remaining": max(0, rl["limit"] - used), "headers": rl["headers"],
                "head_429": rl["head_429"], "per_user": rl["per_user"], "users": users}


def apply_mode(body):
    """Applies a `POST /_front/mode` body (or --mode); raises ValueError on a bad one."""
    try:
        ratelimit = new_ratelimit(body["ratelimit"]) if "ratelimit" in body else None
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"bad ratelimit: {error!r}")
    redirects = {}
    for key in ("redirect_blobs", "redirect_manifests"):
        redirect = body.get(key)
        if redirect is not None:
            parts = urllib.parse.urlsplit(str(redirect))
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
                raise ValueError(f"{key} must be an origin like http://127.0.0.2:5000, not {redirect!r}")
            redirect = f"{parts.scheme}://{parts.netloc}"
        redirects[key] = redirect
    with lock:
        if "status" in body:
            state["status"] = int(body["status"])
        if "ignore_range" in body:
            state["ignore_range"] = bool(body["ignore_range"])
        if "ratelimit" in body:
            state["ratelimit"] = ratelimit
        for key, redirect in redirects.items():
            if key in body:
                state[key] = redirect
        if "redirect_loop" in body:
            state["redirect_loop"] = bool(body["redirect_loop"])
        if "stall_redirects" in body:
            state["stall_redirects"] = bool(body["stall_redirects"])
        if "stall_manifest_bodies" in body:
            state["stall_manifest_bodies"] = bool(body["stall_manifest_bodies"])
        if "blob_rate" in body:
            state["blob_rate"] = int(body["blob_rate"] or 0)


def auth_scheme(value):
    """"basic", "bearer", "none" or "other" for an Authorization header value (or None)."""
    if value is None:
        return "none"
    scheme = value.strip().partition(" ")[0].lower()
    return scheme if scheme in ("basic", "bearer") else "other"


CODES = {429: "TOOMANYREQUESTS", 500: "UNKNOWN", 502: "UNKNOWN", 503: "UNAVAILABLE", 404: "NAME_UNKNOWN", 401: "UNAUTHORIZED", 403: "DENIED"}


class Front(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    backend = None
    origin = None  # "http(s)://HOST:PORT" of this front

    def log_message(self, *args):
        pass

    def setup(self):
        # The TLS handshake happens here, in the connection's thread, not in accept().
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()

    def record(self, status):
        entry = {"method": self.command, "path": self.path, "status": status,
                 "auth": auth_scheme(self.headers.get("Authorization"))}
        with lock:
            state["log"].append(entry)

    def control(self):
        if self.path == "/_front/mode" and self.command == "POST":
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            try:
                apply_mode(body)
            except ValueError as error:
                return self.reply(400, json.dumps({"error": str(error)}).encode())
            self.reply(200, b"{}")
        elif self.path == "/_front/log":
            with lock:
                text = "\n".join(f"{e['method']} {e['path']} {e['status']}" for e in state["log"]).encode()
            self.reply(200, text)
        elif self.path == "/_front/requests":
            with lock:
                text = json.dumps(state["log"]).encode()
            self.reply(200, text, [("Content-Type", "application/json")])
        elif self.path == "/_front/ratelimit":
            self.reply(200, json.dumps(ratelimit_snapshot()).encode(), [("Content-Type", "application/json")])
        else:
            self.reply(404, b"{}")

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # --- Docker Hub rate limit -------------------------------------------------------

    def ratelimit_key(self, rl):
        """Whose budget a request spends: "" (anonymous, by IP) unless per_user is on and
        the request names a user (Basic user name, or the `sub` of a Bearer JWT)."""
        if not rl["per_user"]:
            return ""
        scheme, _, rest = (self.headers.get("Authorization") or "").partition(" ")
        try:
            if scheme.lower() == "basic":
                return base64.b64decode(rest.strip()).decode().partition(":")[0]
            if scheme.lower() == "bearer":
                payload = rest.strip().split(".")[1]
                payload += "=" * (-len(payload) % 4)
                return str(json.loads(base64.urlsafe_b64decode(payload)).get("sub") or "")
        except Exception:
            pass
        return ""

    def ratelimit_headers(self, rl, key, remaining):
        window = rl["window"]
        prefix = rl["headers"]
        return [
            (f"{prefix}ratelimit-limit", f"{rl['limit']};w={window}"),
            (f"{prefix}ratelimit-remaining", f"{remaining};w={window}"),
            ("docker-ratelimit-source", key or self.client_address[0]),
        ]

    def ratelimit_admit(self):
        """Decides a manifest GET or HEAD under the rate limit before it is forwarded:
        returns ("429", None) to refuse it, ("forward", reservation) otherwise. A GET
        within the limit reserves its pull at once (so concurrent GETs cannot overshoot);
        ``ratelimit_settle`` drops the reservation if the backend does not answer 2xx."""
        with lock:
            rl = state["ratelimit"]
            if rl is None or self.command not in ("GET", "HEAD"):
                return "forward", None
            key = self.ratelimit_key(rl)
            pulls = prune(rl, key)
            if len(pulls) < rl["limit"]:
                if self.command != "GET":
                    return "forward", None
                reservation = time.monotonic()
                pulls.append(reservation)
                rl["pulls"][key] = pulls
                return "forward", (rl, key, reservation)
            if self.command == "HEAD" and not rl["head_429"]:
                return "forward", None
        # Hub authenticates first: only a request that would have succeeded is refused
        # (a 401 or 404 still comes from the backend, with its body).
        probe = self.send_to_backend("HEAD", with_body=False)
        status = probe.status
        probe.read()
        probe.connection_to_close.close()
        return ("429", None) if 200 <= status < 300 else ("forward", None)

    def ratelimit_settle(self, status, reservation):
        """After the backend answered: keeps or drops the GET's reservation and returns
        the rate-limit headers for the response (none on a 401 or with the limit off)."""
        with lock:
            if reservation is not None and not 200 <= status < 300:
                rl, key, stamp = reservation
                pulls = rl["pulls"].get(key, [])
                if stamp in pulls:
                    pulls.remove(stamp)
            rl = state["ratelimit"]
            if rl is None or status == 401:
                return []
            key = self.ratelimit_key(rl)
            return self.ratelimit_headers(rl, key, max(0, rl["limit"] - len(prune(rl, key))))

    def answer_429(self):
        with lock:
            rl = state["ratelimit"]
            key = self.ratelimit_key(rl) if rl else ""
            headers = [("Content-Type", "application/json")] + (self.ratelimit_headers(rl, key, 0) if rl else [])
        body = json.dumps({"errors": [{"code": "TOOMANYREQUESTS", "message": HUB_429_MESSAGE}]}).encode()
        self.record(429)
        self.reply(429, body, headers)

    # --- Redirects ------------------------------------------------------------------

    def backend_would_serve(self):
        """Whether the backend answers this request (its headers, as a HEAD) with 2xx."""
        probe = self.send_to_backend("HEAD", with_body=False)
        status = probe.status
        probe.read()
        probe.connection_to_close.close()
        return 200 <= status < 300

    def redirect(self, location):
        self.record(307)
        with lock:
            stall = state["stall_redirects"]
        if not stall:
            return self.reply(307, b"", [("Location", location)])
        self.send_response(307)
        self.send_header("Location", location)
        self.send_header("Content-Length", "64")
        self.end_headers()
        self.wfile.flush()
        time.sleep(120)
        self.close_connection = True

    def send_to_backend(self, method, with_body=True):
        target = urllib.parse.urlsplit(self.backend)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        with lock:
            dropped = ("host", "connection", "range") if state["ignore_range"] else ("host", "connection")
        body = None
        if with_body:
            length = int(self.headers.get("Content-Length", "0") or 0)
            body = self.rfile.read(length) if length else None
        # Header by header, so repeated fields (skopeo sends one Accept per media type)
        # all reach the backend; http.client adds the backend's Host.
        names = {k.lower() for k in self.headers.keys()}
        conn.putrequest(method, self.path, skip_accept_encoding="accept-encoding" in names)
        for name, value in self.headers.items():
            if name.lower() not in dropped and not (not with_body and name.lower() == "content-length"):
                conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        response.connection_to_close = conn
        return response

    def forward(self):
        if self.path.startswith("/_front/"):
            return self.control()
        is_manifest = MANIFEST_PATH.match(urllib.parse.urlsplit(self.path).path) is not None
        with lock:
            forced = state["status"]
        if forced and self.path.startswith("/v2/") and self.path != "/v2/":
            code = CODES.get(forced, "UNKNOWN")
            body = json.dumps({"errors": [{"code": code, "message": f"forced {forced} by the test front"}]}).encode()
            headers = [("Content-Type", "application/json")]
            if forced == 429:
                headers.append(("Retry-After", "60"))
            self.record(forced)
            return self.reply(forced, body, headers)
        if self.command in ("GET", "HEAD") and BLOB_PATH.match(urllib.parse.urlsplit(self.path).path):
            with lock:
                loop, target = state["redirect_loop"], state["redirect_blobs"]
            if loop:
                return self.redirect(self.origin + self.path)
            if target and self.backend_would_serve():
                return self.redirect(target + self.path)
        if self.command in ("GET", "HEAD") and is_manifest:
            with lock:
                target = state["redirect_manifests"]
            if target and self.backend_would_serve():
                return self.redirect(target + self.path)
        reservation = None
        if is_manifest:
            decision, reservation = self.ratelimit_admit()
            if decision == "429":
                return self.answer_429()
        try:
            response = self.send_to_backend(self.command)
        except Exception:
            if is_manifest:
                self.ratelimit_settle(502, reservation)
            raise
        conn = response.connection_to_close
        extra = self.ratelimit_settle(response.status, reservation) if is_manifest else []
        self.record(response.status)
        self.send_response(response.status)
        chunked = response.getheader("Content-Length") is None and self.command != "HEAD"
        for name, value in response.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "date", "server"):
                self.send_header(name, value)
        for name, value in extra:
            self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            conn.close()
            return
        with lock:
            stall = is_manifest and state["stall_manifest_bodies"]
        if stall:
            self.wfile.flush()
            conn.close()
            time.sleep(120)
            self.close_connection = True
            return
        with lock:
            rate = state.get("blob_rate", 0) if "/blobs/" in self.path and self.command == "GET" else 0
        started, sent = time.monotonic(), 0
        while True:
            chunk = response.read(1 << 16)
            if not chunk:
                break
            if rate:
                # Sleep until this chunk is due at `rate` bytes per second.
                sent += len(chunk)
                due = started + sent / rate
                if due > time.monotonic():
                    time.sleep(max(0.0, due - time.monotonic()))
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self.wfile.write(chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        conn.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--mode", help="a JSON mode applied at start, as POST /_front/mode")
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    Front.backend = args.backend
    if args.mode:
        apply_mode(json.loads(args.mode))
    server = http.server.ThreadingHTTPServer((host, int(port)), Front)
    server.daemon_threads = True
    scheme = "http"
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        scheme = "https"
    Front.origin = f"{scheme}://{args.listen}"
    print(f"listening on {args.listen}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
