#!/usr/bin/env python3
"""A small HTTP proxy in front of a test registry that can misbehave.

  proxy.py --upstream http://127.0.0.1:PORT --port-file F [--log FILE]
           [--corrupt-layers] [--fail-blobs N] [--drop-blobs N]
           [--lie-digest]

--log           one line per request: METHOD PATH STATUS REQUEST-BODY-BYTES
--corrupt-layers  flips a byte of every gzip blob (a layer) sent to clients,
                keeping its length
--fail-blobs N  answers the first N blob GETs with 503 (Retry-After: 1)
--drop-blobs N  sends half of the first N blob GETs, then closes the connection
--lie-digest    sends a wrong Docker-Content-Digest with manifests fetched by tag
Writes its port to --port-file once it listens; runs until killed.
"""

import argparse
import http.client
import http.server
import re
import sys
import threading
import urllib.parse

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
       "upgrade"}
BLOB_GET = re.compile(r"^/v2/.+/blobs/sha256:[0-9a-f]{64}$")
MANIFEST_TAG = re.compile(r"^/v2/.+/manifests/[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class State:
    lock = threading.Lock()
    fails = 0
    drops = 0


def make_handler(opts):
    up = urllib.parse.urlsplit(opts.upstream)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def record(self, status, nbody):
            if opts.log:
                with State.lock, open(opts.log, "a") as f:
                    f.write(f"{self.command} {self.path} {status} {nbody}\n")

        def relay(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            path = urllib.parse.urlsplit(self.path).path
            is_blob_get = self.command == "GET" and BLOB_GET.match(path)
            if is_blob_get and opts.fail_blobs:
                with State.lock:
                    fail = State.fails < opts.fail_blobs
                    State.fails += fail
                if fail:
                    self.record(503, n)
                    self.send_response(503)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            rheaders = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP]
            if is_blob_get and resp.status == 200:
                if opts.corrupt_layers and data[:2] == b"\x1f\x8b" and len(data) > 2:
                    data = data[:-1] + bytes([data[-1] ^ 1])
                if opts.drop_blobs:
                    with State.lock:
                        drop = State.drops < opts.drop_blobs
                        State.drops += drop
                    if drop and len(data) > 1:
                        self.record("dropped", n)
                        self.send_response(200)
                        for k, v in rheaders:
                            if k.lower() != "content-length":
                                self.send_header(k, v)
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                        return
            if opts.lie_digest and self.command == "GET" and MANIFEST_TAG.match(path):
                rheaders = [(k, v) for k, v in rheaders if k.lower() != "docker-content-digest"]
                rheaders.append(("Docker-Content-Digest", "sha256:" + "0" * 64))
            self.record(resp.status, n)
            self.send_response(resp.status)
            for k, v in rheaders:
                if k.lower() != "content-length":
                    self.send_header(k, v)
            if self.command == "HEAD":
                cl = resp.getheader("Content-Length")
                if cl is not None:
                    self.send_header("Content-Length", cl)
            else:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = relay

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--corrupt-layers", action="store_true")
    ap.add_argument("--fail-blobs", type=int, default=0)
    ap.add_argument("--drop-blobs", type=int, default=0)
    ap.add_argument("--lie-digest", action="store_true")
    opts = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(opts))
    srv.daemon_threads = True
    with open(opts.port_file + ".tmp", "w") as f:
        f.write(f"{srv.server_address[1]}\n")
    import os
    os.rename(opts.port_file + ".tmp", opts.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
