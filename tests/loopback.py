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
                is_hub_lfs = "/resolve/" in self.path and served.declared_sha256
                if is_hub_lfs and not self.path.startswith("/cdn/"):
                    # Like the Hub: LFS files redirect to a CDN and declare their sha256.
                    self.send_response(302)
                    self.send_header("Location", "/cdn" + self.path)
                    self.send_header("X-Linked-Etag", f'"{served.declared_sha256}"')
                    self.send_header("X-Linked-Size", str(len(served.data)))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                return self._send_body(served, head)

            def _send_body(self, served: Served, head: bool):
                data, start = served.data, 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        return self._status(416)
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(data) - start))
                if served.declared_git_sha1:
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
        # CDN paths serve the same bytes as the /resolve/ path they were redirected from.
        return self.files.get(path.removeprefix("/cdn"))

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
