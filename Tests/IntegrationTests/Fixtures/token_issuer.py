#!/usr/bin/env python3
"""A test-only registry token issuer that behaves like Docker Hub's auth.docker.io
(distribution's token auth spec, docs/content/spec/auth/{token,oauth,scope}.md).

    token_issuer.py --listen 127.0.0.1:PORT --state-dir DIR [--config users.json]
                    [--user NAME:PASSWORD ...] [--public PATTERN ...]
                    [--service registry.docker.io] [--issuer auth.docker.io]
                    [--expires-in 300] [--no-post] [--alg RS256|ES256] [--key-ref x5c|kid]

At start it makes a fresh key and a self-signed certificate for it and writes
`DIR/issuer.crt` (PEM; give it to the registry as `auth.token.rootcertbundle`) and
`DIR/issuer.key`. Every token is a JWT signed with that key; the certificate is in the
JWT header `x5c` (or, with `--key-ref kid`, the header names the key by its libtrust key
id, as Docker Hub does).

Endpoints:
    GET  /token?service=S&scope=repository:NAME:pull[,push][&scope=...][&offline_token=true]
         optional `Authorization: Basic`. Answers 200
         {"token", "access_token", "expires_in", "issued_at"[, "refresh_token"]}.
         Wrong credentials: 401 {"details": "incorrect username or password"}.
         Scopes the caller may not have are simply left out of the token (a partial grant),
         as real issuers do: anonymous callers get `pull` on public repositories only.
    POST /token  (OAuth2, application/x-www-form-urlencoded) grant_type=password with
         username/password, or grant_type=refresh_token with refresh_token; service,
         client_id, space-separated scope, access_type=offline for a refresh_token.
         Answers 200 {"access_token", "token", "expires_in", "issued_at"[, "refresh_token"]};
         400 {"error": "invalid_request"|"unsupported_grant_type"}, 401 {"error":
         "invalid_grant"}. With --no-post: 404 (as realms that only take GET).
    GET  /_issuer/log    every request so far, a JSON array (same entries as DIR/requests.jsonl)
    POST /_issuer/clear  empties the log
    GET  /_issuer/health 200

Each log entry: {"time", "method", "path", "query": [[k, v], ...], "host",
"authorization": null|"basic"|"bearer"|"other", "user": basic or form user or null,
"form": {fields, password and refresh_token never included}, "status",
"subject": the user the token was issued to ("" for anonymous), "granted": [scopes]}.
Passwords are never logged.

Users: `--user NAME:PASSWORD` (pull and push on every repository), or `--config FILE` with
    {"users": {"alice": {"password": "pw", "repositories": ["private/*"],
                          "actions": ["pull", "push"]}},
     "public": ["library/*", "public/app"]}
Repository patterns are fnmatch patterns ("*" matches "/" too).
"""
import argparse
import base64
import datetime
import fnmatch
import hashlib
import json
import os
import secrets
import threading
import time
import http.server
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509.oid import NameOID

lock = threading.Lock()
log_entries = []
refresh_tokens = {}  # opaque refresh token -> user name


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(public_key):
    """libtrust's key id: SHA-256 of the DER SubjectPublicKeyInfo, first 240 bits,
    base32, in 12 groups of 4 separated by ':' (what distribution matches `kid` against)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.sha256(der).digest()[:30]
    encoded = base64.b32encode(digest).decode().rstrip("=")
    return ":".join(encoded[i:i + 4] for i in range(0, 48, 4))


class Signer:
    def __init__(self, alg, issuer, key_ref, state_dir):
        if alg == "ES256":
            self.key = ec.generate_private_key(ec.SECP256R1())
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.alg = alg
        self.key_ref = key_ref
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=False,
                    encipher_only=False, decipher_only=False),
                critical=True)
            .sign(self.key, hashes.SHA256())
        )
        os.makedirs(state_dir, exist_ok=True)
        with open(os.path.join(state_dir, "issuer.crt.tmp"), "wb") as f:
            f.write(self.cert.public_bytes(serialization.Encoding.PEM))
        with open(os.path.join(state_dir, "issuer.key"), "wb") as f:
            f.write(self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        # The certificate appears atomically: its presence means the issuer is configured.
        os.replace(os.path.join(state_dir, "issuer.crt.tmp"), os.path.join(state_dir, "issuer.crt"))

    def sign(self, claims):
        header = {"typ": "JWT", "alg": self.alg}
        if self.key_ref == "kid":
            header["kid"] = libtrust_key_id(self.key.public_key())
        else:
            header["x5c"] = [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode())).encode()
        if self.alg == "ES256":
            der = self.key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
            r, s = utils.decode_dss_signature(der)
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            signature = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return signing_input.decode() + "." + b64url(signature)


def parse_scope(scope):
    """`repository:<name>:<actions>` -> (type, name, [actions]); the name may hold a
    `host:port`, so the type ends at the first ':' and the actions start after the last."""
    first = scope.find(":")
    last = scope.rfind(":")
    if first < 0 or last <= first:
        return None
    kind = scope[:first]
    if "(" in kind:  # resource class, e.g. repository(plugin)
        kind = kind[:kind.index("(")]
    actions = [a for a in scope[last + 1:].split(",") if a]
    return kind, scope[first + 1:last], actions


class Issuer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    config = None  # set in main()

    def log_message(self, *args):
        pass

    # --- replies -----------------------------------------------------------------

    def reply(self, status, obj, extra_headers=()):
        body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in extra_headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def record(self, entry):
        entry["time"] = time.time()
        with lock:
            log_entries.append(entry)
            with open(self.config["log_path"], "a") as f:
                f.write(json.dumps(entry) + "\n")

    # --- authorization -----------------------------------------------------------

    def authorization(self):
        """(kind, user, password) from the Authorization header."""
        value = self.headers.get("Authorization")
        if value is None:
            return None, None, None
        scheme, _, rest = value.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(rest.strip()).decode().partition(":")
            except Exception:
                return "basic", None, None
            return "basic", user, password
        if scheme.lower() == "bearer":
            return "bearer", None, None
        return "other", None, None

    def check_password(self, user, password):
        record = self.config["users"].get(user)
        return record is not None and secrets.compare_digest(record["password"], password or "")

    def grant(self, subject, scopes):
        """The scopes (strings) and the JWT access list granted to `subject` ("" = anonymous)."""
        access = {}
        user = self.config["users"].get(subject) if subject else None
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None or parsed[0] != "repository":
                continue
            _, name, actions = parsed
            allowed = set()
            if any(fnmatch.fnmatchcase(name, p) for p in self.config["public"]):
                allowed.add("pull")
            if user is not None and any(fnmatch.fnmatchcase(name, p) for p in user["repositories"]):
                allowed.update(user["actions"])
            wanted = ["pull", "push", "delete"] if "*" in actions and "*" not in allowed else actions
            granted = [a for a in wanted if a in allowed or "*" in allowed]
            if granted:
                current = access.setdefault(name, [])
                current.extend(a for a in granted if a not in current)
        entries = [{"type": "repository", "name": n, "actions": a} for n, a in access.items()]
        return [f"repository:{n}:{','.join(a)}" for n, a in access.items()], entries

    def issue(self, subject, service, scopes, offline):
        now = time.time()
        expires_in = self.config["expires_in"]
        granted, access = self.grant(subject, scopes)
        claims = {
            "iss": self.config["issuer"],
            "sub": subject,
            "aud": service,
            "exp": int(now) + expires_in,
            "nbf": int(now) - 1,
            "iat": int(now),
            "jti": secrets.token_hex(16),
            "access": access,
        }
        token = self.config["signer"].sign(claims)
        issued_at = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {"token": token, "access_token": token, "expires_in": expires_in, "issued_at": issued_at}
        if offline and subject:
            refresh = secrets.token_urlsafe(24)
            with lock:
                refresh_tokens[refresh] = subject
            body["refresh_token"] = refresh
        return body, granted

    # --- endpoints ---------------------------------------------------------------

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/_issuer/log":
            with lock:
                return self.reply(200, list(log_entries))
        if url.path == "/_issuer/health":
            return self.reply(200, {})
        query = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        kind, user, password = self.authorization()
        entry = {"method": "GET", "path": url.path, "query": query, "host": self.headers.get("Host"),
                 "authorization": kind, "user": user, "form": None, "subject": None, "granted": []}
        if url.path != "/token":
            entry["status"] = 404
            self.record(entry)
            return self.reply(404, {"details": "not found"})
        subject = ""
        if kind == "basic":
            if not self.check_password(user, password):
                entry["status"] = 401
                self.record(entry)
                return self.reply(401, {"details": "incorrect username or password"},
                                  [("WWW-Authenticate", 'Basic realm="token issuer"')])
            subject = user
        service = next((v for k, v in query if k == "service"), "")
        scopes = [s for k, v in query if k == "scope" for s in v.split(" ") if s]
        offline = any(k == "offline_token" and v == "true" for k, v in query)
        body, granted = self.issue(subject, service, scopes, offline)
        entry.update(status=200, subject=subject, granted=granted)
        self.record(entry)
        self.reply(200, body)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length", "0") or 0)
        raw = self.rfile.read(length) if length else b""
        if url.path == "/_issuer/clear":
            with lock:
                log_entries.clear()
                open(self.config["log_path"], "w").close()
            return self.reply(200, {})
        kind, header_user, _ = self.authorization()
        form = dict(urllib.parse.parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
        logged_form = {k: v for k, v in form.items() if k not in ("password", "refresh_token")}
        entry = {"method": "POST", "path": url.path,
                 "query": urllib.parse.parse_qsl(url.query, keep_blank_values=True),
                 "host": self.headers.get("Host"), "authorization": kind,
                 "user": form.get("username") or header_user, "form": logged_form,
                 "subject": None, "granted": []}
        if url.path != "/token" or not self.config["allow_post"]:
            entry["status"] = 404
            self.record(entry)
            return self.reply(404, {"details": "404 page not found"})
        grant_type = form.get("grant_type", "")
        if grant_type == "password":
            user = form.get("username", "")
            if not user or "password" not in form:
                entry["status"] = 400
                self.record(entry)
                return self.reply(400, {"error": "invalid_request"})
            if not self.check_password(user, form["password"]):
                entry["status"] = 401
                self.record(entry)
                return self.reply(401, {"error": "invalid_grant", "error_description": "incorrect username or password"})
            subject = user
        elif grant_type == "refresh_token":
            with lock:
                subject = refresh_tokens.get(form.get("refresh_token", ""))
            if subject is None:
                entry["status"] = 401
                self.record(entry)
                return self.reply(401, {"error": "invalid_grant"})
            entry["user"] = subject
        else:
            entry["status"] = 400
            self.record(entry)
            return self.reply(400, {"error": "unsupported_grant_type"})
        scopes = [s for s in form.get("scope", "").split(" ") if s]
        offline = form.get("access_type") == "offline"
        body, granted = self.issue(subject, form.get("service", ""), scopes, offline)
        entry.update(status=200, subject=subject, granted=granted)
        self.record(entry)
        self.reply(200, body)

    def do_HEAD(self):
        self.reply(405, {})

    do_PUT = do_DELETE = do_PATCH = do_HEAD


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True, help="HOST:PORT, e.g. 127.0.0.2:5555")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--config", help="JSON file with users and public repositories")
    parser.add_argument("--user", action="append", default=[], help="NAME:PASSWORD (pull, push on all)")
    parser.add_argument("--public", action="append", default=[], help="repository pattern anyone may pull")
    parser.add_argument("--service", default="registry.docker.io")
    parser.add_argument("--issuer", default="auth.docker.io")
    parser.add_argument("--expires-in", type=int, default=300)
    parser.add_argument("--no-post", action="store_true", help="answer 404 to POST /token")
    parser.add_argument("--alg", choices=["RS256", "ES256"], default="RS256")
    parser.add_argument("--key-ref", choices=["x5c", "kid"], default="x5c")
    args = parser.parse_args()

    users = {}
    public = list(args.public)
    if args.config:
        with open(args.config) as f:
            data = json.load(f)
        for name, record in data.get("users", {}).items():
            users[name] = {"password": record["password"],
                           "repositories": record.get("repositories", ["*"]),
                           "actions": record.get("actions", ["pull", "push"])}
        public += data.get("public", [])
    for spec in args.user:
        name, _, password = spec.partition(":")
        users[name] = {"password": password, "repositories": ["*"], "actions": ["pull", "push"]}

    Issuer.config = {
        "users": users,
        "public": public,
        "service": args.service,
        "issuer": args.issuer,
        "expires_in": args.expires_in,
        "allow_post": not args.no_post,
        "log_path": os.path.join(args.state_dir, "requests.jsonl"),
        "signer": Signer(args.alg, args.issuer, args.key_ref, args.state_dir),
    }
    open(Issuer.config["log_path"], "a").close()
    host, port = args.listen.rsplit(":", 1)
    server = http.server.ThreadingHTTPServer((host, int(port)), Issuer)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
