"""A loopback HTTP file server for download tests, with Hugging Face-like redirects and
injectable failures (dropped connections, wrong bytes, HTTP errors)."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    data: bytes
    declared_sha256: str | None = None  # sent as X-Linked-Etag on the /resolve/ redirect
    declared_git_sha1: str | None = None  # sent as ETag on a non-LFS /resolve/ answer
    drop_after: int | None = None  # close the connection after this many body bytes...
    drops_left: int = 0  # ...this many times
    status: int = 200  # e.g. 401, 404, 500 to refuse
    token: str | None = None  # a gated file: answer 401 unless this bearer token comes along


@dataclass
class FileServer:
    files: dict[str, Served] = field(default_factory=dict)
    requests: list[tuple[str, str, dict]] = field(default_factory=list)  # (method, path, headers)

    def start(self) -> str:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_HEAD(self):
                self._answer(head=True)

            def do_GET(self):
                self._answer(head=False)

            def _answer(self, head: bool):
                server.requests.append((self.command, self.path, dict(self.headers)))
                served = server.lookup(self.path)
                if served is None:
                    return self._status(404)
                if served.status != 200:
                    return self._status(served.status)
                hub = "/resolve/" in self.path and not self.path.startswith(("/cdn/", "/api/"))
                if served.token and (hub or self.path.startswith("/api/")) and \
                        self.headers.get("Authorization") != f"Bearer {served.token}":
                    return self._status(401)
                if hub and served.declared_sha256:
                    # Like the Hub: an LFS file redirects to its CDN (another host) and
                    # declares its sha256 and size on the redirect.
                    host, port = self.server.server_address
                    return self._redirect(302, f"http://localhost:{port}/cdn{self.path}", {
                        "X-Linked-Etag": f'"{served.declared_sha256}"',
                        "X-Linked-Size": str(len(served.data))})
                if hub and served.declared_git_sha1:
                    # A small file: a same-host redirect whose own body must not be mistaken
                    # for the file; its target declares the git blob hash.
                    return self._redirect(307, "/api/resolve-cache" + self.path, {})
                return self._send_body(served, head)

            def _redirect(self, code: int, location: str, headers: dict):
                body = f"Redirecting to {location}".encode()
                self.send_response(code)
                self.send_header("Location", location)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _send_body(self, served: Served, head: bool):
                data, start = served.data, 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        return self._status(416)
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(data) - start))
                if served.declared_git_sha1 and self.path.startswith("/api/resolve-cache/"):
                    self.send_header("ETag", f'"{served.declared_git_sha1}"')
                self.end_headers()
                if head:
                    return None
                body = data[start:]
                if served.drop_after is not None and served.drops_left > 0:
                    served.drops_left -= 1
                    self.wfile.write(body[: served.drop_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                self.wfile.write(body)
                return None

            def _status(self, code: int):
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self._httpd = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        host, port = self._httpd.server_address
        return f"http://{host}:{port}"

    def lookup(self, path: str) -> Served | None:
        # CDN and resolve-cache paths serve the bytes of the /resolve/ path they came from.
        return self.files.get(path.removeprefix("/cdn").removeprefix("/api/resolve-cache"))

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
