#!/usr/bin/env python3
"""A test double that stands in front of a real docker-registry, for what no Debian
package provides: an upstream that misbehaves on command.

    registry_front.py --listen 127.0.0.1:PORT --backend http://127.0.0.1:PORT

Requests are forwarded to the backend and answers streamed back unchanged, except when a
failure mode is set with `POST /_front/mode` and a JSON body:
    {"status": 500}                 every /v2/<name>/... request gets this status and an
                                    OCI error envelope (429 gets TOOMANYREQUESTS and
                                    Retry-After, as Docker Hub answers past its limit)
    {"status": 0}                   back to forwarding
    {"ignore_range": true}          forward without the Range header (a server that
                                    ignores ranges and answers 200 with the whole body)
`GET /_front/log` returns one line per request seen: "METHOD PATH STATUS".
"""
import argparse
import http.client
import http.server
import json
import threading
import urllib.parse

state = {"status": 0, "ignore_range": False, "log": []}
lock = threading.Lock()

CODES = {429: "TOOMANYREQUESTS", 500: "UNKNOWN", 502: "UNKNOWN", 503: "UNAVAILABLE", 404: "NAME_UNKNOWN", 401: "UNAUTHORIZED", 403: "DENIED"}


class Front(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    backend = None

    def log_message(self, *args):
        pass

    def record(self, status):
        with lock:
            state["log"].append(f"{self.command} {self.path} {status}")

    def control(self):
        if self.path == "/_front/mode" and self.command == "POST":
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            with lock:
                if "status" in body:
                    state["status"] = int(body["status"])
                if "ignore_range" in body:
                    state["ignore_range"] = bool(body["ignore_range"])
            self.reply(200, b"{}")
        elif self.path == "/_front/log":
            with lock:
                text = "\n".join(state["log"]).encode()
            self.reply(200, text)
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

    def forward(self):
        if self.path.startswith("/_front/"):
            return self.control()
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
        target = urllib.parse.urlsplit(self.backend)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        with lock:
            dropped = ("host", "connection", "range") if state["ignore_range"] else ("host", "connection")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
        length = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(length) if length else None
        conn.request(self.command, self.path, body=body, headers=headers)
        response = conn.getresponse()
        self.record(response.status)
        self.send_response(response.status)
        chunked = response.getheader("Content-Length") is None and self.command != "HEAD"
        for name, value in response.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "date", "server"):
                self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        while True:
            chunk = response.read(1 << 16)
            if not chunk:
                break
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
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    Front.backend = args.backend
    server = http.server.ThreadingHTTPServer((host, int(port)), Front)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
