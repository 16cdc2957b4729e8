#!/usr/bin/env python3
"""A registry stand-in on 127.0.0.1 without a catalog, for the find tests
(python3 stdlib).

usage: no_catalog.py PORTFILE STATUS

Answers /v2/ with 200, /v2/_catalog with STATUS (404, or 401 with a Basic
challenge, as registries that keep their catalog to themselves do), and
/v2/hcs/test/tags/list with the tags ["v1", "v2"]; anything else is 404.
The port it listens on is written to PORTFILE.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORTFILE, STATUS = sys.argv[1], int(sys.argv[2])


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/v2/":
            self.reply(200, {})
        elif path == "/v2/_catalog":
            hdrs = [("WWW-Authenticate", 'Basic realm="no-catalog"')] if STATUS == 401 else []
            code = "UNAUTHORIZED" if STATUS == 401 else "NOT_FOUND"
            self.reply(STATUS, {"errors": [{"code": code, "message": "no catalog here"}]}, hdrs)
        elif path == "/v2/hcs/test/tags/list":
            self.reply(200, {"name": "hcs/test", "tags": ["v1", "v2"]})
        else:
            self.reply(404, {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]})

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os

os.rename(PORTFILE + ".tmp", PORTFILE)
server.serve_forever()
