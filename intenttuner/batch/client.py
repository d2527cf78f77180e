"""One ComfyUI server's HTTP and websocket API, as the batch runner uses it.

    GET  /object_info             the installed node types and their inputs
    POST /prompt                  {"prompt": API prompt, "client_id"} -> {"prompt_id"}; a
                                  rejected prompt answers 400 {"error", "node_errors"}
    GET  /history/<prompt_id>     {prompt_id: {"outputs": {node: ui}, "status": {...}}} once run
    GET  /view?filename=&subfolder=&type=   an output file's bytes
    POST /interrupt, POST /queue {"delete": [id]}   stop a run that ran out of time
    WS   /ws?clientId=<client_id> the progress of this client's prompts (JSON text frames;
                                  binary frames are preview images)

HTTP through the standard library (a handful of JSON calls need nothing more); the websocket
through ``websocket-client``, the well-kept synchronous client. A refused, reset or closed
connection raises `ServerLost`: the scheduler then gives the run to another server.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import InputError, IntentTunerError, MissingDependencyError

HTTP_TIMEOUT = 30.0  # seconds for one HTTP call (a large /object_info included)
# What a server that went away looks like from here: refused, reset, closed mid-answer.
LOST = (ConnectionError, http.client.RemoteDisconnected, http.client.IncompleteRead,
        socket.timeout, TimeoutError)


class ServerLost(IntentTunerError):
    """The server cannot be reached any more (refused, reset, closed the websocket)."""


class ServerError(IntentTunerError):
    """The server answered, but not as ComfyUI does (an HTTP error, a body that is not JSON)."""


class PromptRejected(IntentTunerError):
    """The server refused the prompt (validation failed); the message lists its node errors."""


def normalise_url(url: str) -> str:
    """``host:port`` or ``http(s)://host:port[/]`` -> ``http(s)://host:port``; anything else
    -> `InputError`."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InputError(f"--server {url!r} is not a ComfyUI server address: give it as "
                         "http://HOST:PORT (for example http://127.0.0.1:8188).")
    try:
        parsed.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise InputError(f"--server {url!r}: the port is not a number; give it as "
                         "http://HOST:PORT.") from None
    return f"{parsed.scheme}://{parsed.netloc}{parsed.path.rstrip('/')}"


class ComfyClient:
    """The calls the batch runner makes to the ComfyUI server at ``url``."""

    def __init__(self, url: str, timeout: float = HTTP_TIMEOUT):
        self.url = normalise_url(url)
        self.timeout = timeout

    def object_info(self) -> dict:
        return self._json("GET", "/object_info")

    def submit(self, prompt: dict, client_id: str) -> str:
        """Queue ``prompt``; its prompt id, or `PromptRejected` with the server's reasons."""
        try:
            answer = self._json("POST", "/prompt", {"prompt": prompt, "client_id": client_id})
        except urllib.error.HTTPError as exc:
            raise PromptRejected(rejection_text(_body(exc), exc.code)) from None
        if answer.get("node_errors"):
            # ComfyUI queues a prompt when some of its outputs are valid and leaves the others
            # out; a batch run wants all of them, so it is taken back.
            self.cancel(str(answer["prompt_id"]))
            raise PromptRejected(rejection_text(answer, 200))
        return str(answer["prompt_id"])

    def history(self, prompt_id: str) -> dict | None:
        """The history entry of ``prompt_id`` once it has run (success or error), else None."""
        answer = self._json("GET", f"/history/{urllib.parse.quote(prompt_id)}")
        return answer.get(prompt_id)

    def download(self, ref: dict, target: Path) -> None:
        """Write the output file ``ref`` ({"filename", "subfolder", "type"}) to ``target``."""
        query = urllib.parse.urlencode({"filename": ref["filename"],
                                        "subfolder": ref.get("subfolder", ""),
                                        "type": ref.get("type", "output")})
        target.write_bytes(self._request("GET", f"/view?{query}"))

    def cancel(self, prompt_id: str) -> None:
        """Take ``prompt_id`` off the queue, or interrupt it when it is running (this runner
        keeps one prompt at a time on a server, so the running one is its own)."""
        self._json("POST", "/queue", {"delete": [prompt_id]})
        self._json("POST", "/interrupt", {"prompt_id": prompt_id})

    def websocket(self, client_id: str, timeout: float):
        """The progress websocket of ``client_id``; ``recv`` times out after ``timeout`` s."""
        try:
            import websocket
        except ImportError:
            raise MissingDependencyError("websocket-client", "The batch runner",
                                         "websocket-client") from None
        address = urllib.parse.urlsplit(self.url)
        scheme = "wss" if address.scheme == "https" else "ws"
        ws_url = f"{scheme}://{address.netloc}{address.path}/ws?clientId={client_id}"
        try:
            return websocket.create_connection(ws_url, timeout=timeout)
        except (OSError, websocket.WebSocketException) as exc:
            raise ServerLost(f"{self.url}: the websocket /ws cannot be opened ({exc})") from None

    def _json(self, method: str, path: str, data: object | None = None):
        body = self._request(method, path, data)
        try:
            return json.loads(body) if body else {}
        except ValueError:
            raise ServerError(f"{self.url}{path} answered something that is not JSON: is "
                              "this address a ComfyUI server?") from None

    def _request(self, method: str, path: str, data: object | None = None) -> bytes:
        """The body of the answer; `ServerLost` when the server is gone, the `HTTPError` of
        a refused ``/prompt`` for its reasons, `ServerError` for other refusals."""
        body = json.dumps(data).encode() if data is not None else None
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            if path == "/prompt":
                raise
            raise ServerError(f"{self.url} answered HTTP {exc.code} to {method} "
                              f"{path.split('?')[0]}") from None
        except urllib.error.URLError as exc:
            raise ServerLost(f"{self.url} does not answer ({exc.reason})") from None
        except LOST as exc:
            raise ServerLost(f"{self.url} does not answer ({exc or type(exc).__name__})") \
                from None


def _body(exc: urllib.error.HTTPError) -> dict:
    try:
        return json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        return {}


def rejection_text(answer: dict, status: int) -> str:
    """The server's refusal as lines a person reads: its error, then one line per node error
    ("node 3 (CheckpointLoaderSimple): Value not in list: ckpt_name: 'x.safetensors' not in
    [...]")."""
    error = answer.get("error") or {}
    if isinstance(error, dict):
        head = error.get("message") or error.get("type") or f"HTTP {status}"
        if error.get("details"):
            head += f": {error['details']}"
    else:
        head = str(error) or f"HTTP {status}"
    lines = [f"the server rejected the prompt: {head}"]
    for node_id, node in (answer.get("node_errors") or {}).items():
        kind = node.get("class_type", "?")
        for item in node.get("errors") or [{}]:
            text = item.get("message") or item.get("type") or "invalid"
            if item.get("details"):
                text += f": {item['details']}"
            lines.append(f"  node {node_id} ({kind}): {text}")
    return "\n".join(lines)
