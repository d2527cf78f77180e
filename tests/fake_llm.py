"""An OpenAI-compatible chat-completions server on loopback, scripted per test: valid or broken
answers, refusals, slow answers, HTTP errors, endpoints without structured-output support."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    content: str | None = None
    status: int = 200
    message: str = ""  # error message for status != 200
    delay: float = 0.0  # seconds before answering
    refusal: str | None = None


@dataclass
class FakeLLM:
    replies: list[Reply] = field(default_factory=list)  # consumed in order; the last repeats
    unsupported_formats: set[str] = field(default_factory=set)  # e.g. {"json_schema"}
    requests: list[dict] = field(default_factory=list)  # {"headers": ..., "body": ...}
    # When set, answers every request instead of `replies`: request body -> reply (or its text)
    respond: Callable[[dict], Reply | str] | None = None

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                      "body": body,
                                      "path": self.path})
                kind = (body.get("response_format") or {}).get("type")
                if kind in fake.unsupported_formats:
                    return self._error(400, f"response_format type '{kind}' is not supported")
                if fake.respond is not None:
                    reply = fake.respond(body)
                    reply = Reply(reply) if isinstance(reply, str) else reply
                else:
                    reply = fake.replies.pop(0) if len(fake.replies) > 1 else fake.replies[0]
                time.sleep(reply.delay)
                if reply.status != 200:
                    return self._error(reply.status, reply.message or "error")
                message = {"role": "assistant", "content": reply.content,
                           "refusal": reply.refusal}
                self._json(200, {"id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                                 "model": body.get("model"), "choices": [
                                     {"index": 0, "message": message, "finish_reason": "stop"}],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                                           "total_tokens": 2}})

            def _error(self, status: int, message: str):
                self._json(status, {"error": {"message": message, "type": "invalid_request_error",
                                              "code": None}})

            def _json(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def formats(self) -> list[str | None]:
        return [(r["body"].get("response_format") or {}).get("type") for r in self.requests]
