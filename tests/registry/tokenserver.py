#!/usr/bin/env python3
"""A Docker-style token server for tests: docker-registry with token auth
sends clients here (WWW-Authenticate: Bearer realm=...) and trusts the JWTs
it signs (RS256, the signing certificate in the x5c header).

  tokenserver.py --port-file F --key KEY --cert CERT --issuer I --service S
                 --user USER:PASSWORD [--log FILE]

GET /token?service=S&scope=repository:NAME:ACTIONS...[&account=USER]
  valid Basic credentials: every requested action is granted;
  wrong credentials: 401; none: only "pull" is granted (anonymous reads).
--log gets one line per request: "token SCOPES -> GRANTED" or "denied".
"""

import argparse
import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--service", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--log")
    opts = ap.parse_args()
    der = subprocess.run(["openssl", "x509", "-in", opts.cert, "-outform", "DER"],
                         check=True, capture_output=True).stdout
    header = b64url(json.dumps({"typ": "JWT", "alg": "RS256",
                                "x5c": [base64.b64encode(der).decode()]}).encode())
    lock = threading.Lock()

    def sign(claims):
        payload = b64url(json.dumps(claims).encode())
        signing_input = f"{header}.{payload}".encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", opts.key],
                             input=signing_input, check=True, capture_output=True).stdout
        return f"{header}.{payload}.{b64url(sig)}"

    def log(line):
        if opts.log:
            with lock, open(opts.log, "a") as f:
                f.write(line + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def answer(self, status, body, extra=()):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/token":
                return self.answer(404, {"error": "not found"})
            q = urllib.parse.parse_qs(url.query)
            if q.get("service", [""])[0] != opts.service:
                return self.answer(400, {"error": "unknown service"})
            authed = False
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                try:
                    given = base64.b64decode(auth[6:]).decode()
                except Exception:
                    given = ""
                if given != opts.user:
                    log("denied")
                    return self.answer(401, {"details": "invalid credentials"},
                                       [("WWW-Authenticate", 'Basic realm="kiln-test-token"')])
                authed = True
            access = []
            for scope in q.get("scope", []):
                parts = scope.split(":")
                if len(parts) < 3 or parts[0] != "repository":
                    continue
                name, actions = ":".join(parts[1:-1]), parts[-1].split(",")
                granted = [a for a in actions if authed or a == "pull"]
                access.append({"type": "repository", "name": name, "actions": granted})
            now = int(time.time())
            claims = {"iss": opts.issuer, "sub": opts.user.split(":")[0] if authed else "",
                      "aud": opts.service, "exp": now + 300, "nbf": now - 10, "iat": now,
                      "jti": b64url(os.urandom(12)), "access": access}
            log("token " + " ".join(q.get("scope", [])) + " -> " +
                json.dumps(access, separators=(",", ":")))
            tok = sign(claims)
            self.answer(200, {"token": tok, "access_token": tok, "expires_in": 300})

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    with open(opts.port_file + ".tmp", "w") as f:
        f.write(f"{srv.server_address[1]}\n")
    os.rename(opts.port_file + ".tmp", opts.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
