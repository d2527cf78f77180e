"""A loopback HTTP file server for download tests, with Hugging Face-like answers and
injectable failures (dropped connections, wrong bytes, HTTP errors, slow bodies).

Hub conventions imitated (as huggingface_hub reads them): every ``/resolve/`` answer carries
``X-Repo-Commit``; an LFS file answers with a 302 to its CDN (another host: ``localhost``
instead of ``127.0.0.1``) carrying ``X-Linked-Etag`` (its sha256), ``X-Linked-Size`` and an
``ETag`` of its own that is *not* the file's hash (the git hash of its LFS pointer); a small file
answers with a same-host 307 to ``/api/resolve-cache/...``, whose 200 declares the git blob hash
as ``ETag``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPO_COMMIT = "0123456789abcdef0123456789abcdef01234567"  # what the revision "resolves" to
BODY_CHUNK = 64 << 10  # bytes written at a time (and between delays, for slow bodies)


@dataclass
class Served:
    data: bytes
    declared_sha256: str | None = None  # sent as X-Linked-Etag on the /resolve/ redirect
    declared_git_sha1: str | None = None  # sent as ETag on a non-LFS /resolve/ answer
    drop_after: int | None = None  # close the connection after this many body bytes...
    drops_left: int = 0  # ...this many times
    status: int = 200  # e.g. 401, 404, 500 to refuse
    token: str | None = None  # a gated file: answer 401 unless this bearer token comes along
    redirect_to: str | None = None  # a plain (non-Hub) 302 to this path on the same server
    chunk_delay: float = 0.0  # seconds to sleep after each BODY_CHUNK: a slow download


@dataclass
class FileServer:
    files: dict[str, Served] = field(default_factory=dict)
    # (method, path, headers); headers as received, looked up case-insensitively
    requests: list[tuple[str, str, Message]] = field(default_factory=list)
    body_bytes: dict[str, int] = field(default_factory=dict)  # bytes of body sent, per path

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
                server.requests.append((self.command, self.path, self.headers))
                served = server.lookup(self.path)
                if served is None:
                    return self._status(404)
                if served.status != 200:
                    return self._status(served.status)
                if served.redirect_to:
                    return self._redirect(302, served.redirect_to, {})
                hub = "/resolve/" in self.path and not self.path.startswith(("/cdn/", "/api/"))
                hub_headers = {"X-Repo-Commit": REPO_COMMIT} if hub or \
                    self.path.startswith("/api/") else {}
                if served.token and hub_headers and \
                        self.headers.get("Authorization") != f"Bearer {served.token}":
                    return self._status(401)
                if hub and served.declared_sha256:
                    # An LFS file redirects to its CDN (another host) and declares its sha256
                    # and size on the redirect; the redirect's own ETag is not the file's hash.
                    host, port = self.server.server_address
                    return self._redirect(302, f"http://localhost:{port}/cdn{self.path}", {
                        **hub_headers,
                        "ETag": f'"{lfs_pointer_sha1(served.declared_sha256, len(served.data))}"',
                        "X-Linked-Etag": f'"{served.declared_sha256}"',
                        "X-Linked-Size": str(len(served.data))})
                if hub and served.declared_git_sha1:
                    # A small file: a same-host redirect whose own body must not be mistaken
                    # for the file; its target declares the git blob hash.
                    return self._redirect(307, "/api/resolve-cache" + self.path, hub_headers)
                return self._send_body(served, head, hub_headers)

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

            def _send_body(self, served: Served, head: bool, headers: dict):
                data, start = served.data, 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        return self._status(416)
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(data) - start))
                for key, value in headers.items():
                    self.send_header(key, value)
                if served.declared_git_sha1 and self.path.startswith("/api/resolve-cache/"):
                    self.send_header("ETag", f'"{served.declared_git_sha1}"')
                self.end_headers()
                if head:
                    return None
                body = data[start:]
                if served.drop_after is not None and served.drops_left > 0:
                    served.drops_left -= 1
                    self._write(body[: served.drop_after], served)
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                self._write(body, served)
                return None

            def _write(self, body: bytes, served: Served):
                key = server.key(self.path)
                for offset in range(0, len(body), BODY_CHUNK):
                    chunk = body[offset:offset + BODY_CHUNK]
                    try:
                        self.wfile.write(chunk)
                        # Counted before the delay: a client may finish reading the last chunk
                        # (and a test check the count) while this thread still sleeps.
                        server.body_bytes[key] = server.body_bytes.get(key, 0) + len(chunk)
                        if served.chunk_delay:
                            self.wfile.flush()
                            time.sleep(served.chunk_delay)
                    except (BrokenPipeError, ConnectionResetError):  # the client went away
                        self.close_connection = True
                        return

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

    @staticmethod
    def key(path: str) -> str:
        # CDN and resolve-cache paths serve the bytes of the /resolve/ path they came from.
        return path.removeprefix("/cdn").removeprefix("/api/resolve-cache")

    def lookup(self, path: str) -> Served | None:
        return self.files.get(self.key(path))

    def stop(self) -> None:
        if not hasattr(self, "_httpd"):  # never started
            return
        self._httpd.shutdown()
        self._httpd.server_close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def lfs_pointer_sha1(sha: str, size: int) -> str:
    """The git blob hash of the LFS pointer file that stands for a file in git."""
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {size}\n"
    return git_blob_sha1(pointer.encode())
