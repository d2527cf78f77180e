"""One run on one server: queue its prompt, follow it on the websocket, read its history, collect
its output files.

The websocket says what runs now (executing / progress / executed / execution_error /
execution_success); the history is what counts: it is read when the websocket says the prompt
ended, and also whenever the websocket has been quiet for a while, so a missed message only
delays the end of a run, never hangs it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .client import ComfyClient, PromptRejected, ServerLost
from .overrides import RunPlan

QUIET = 2.0  # seconds without a websocket message before the history is read
HISTORY_POLL = 0.1  # seconds between reads of the history once the prompt has ended
RESERVED = ("prompt.json", "result.json")  # the run folder's own files
END_MESSAGES = ("execution_success", "execution_error", "execution_interrupted")


@dataclass
class Outcome:
    """How the run went on the server; ``error`` None when it succeeded."""

    prompt_id: str | None
    error: str | None
    outputs: dict = field(default_factory=dict)  # {node id: ui output} of the history
    files: list[str] = field(default_factory=list)  # downloaded, relative to the run folder


def execute_run(client: ComfyClient, plan: RunPlan, folder: Path, timeout: float,
                progress: Callable[[str], None]) -> Outcome:
    """Run ``plan`` on ``client``'s server and collect its outputs into ``folder``.
    `ServerLost` when the server goes away meanwhile (the run may go to another server);
    a rejected prompt, a failing node or the ``timeout`` (seconds) is an `Outcome` error."""
    client_id = uuid.uuid4().hex
    ws = client.websocket(client_id, QUIET)
    try:
        try:
            prompt_id = client.submit(plan.prompt, client_id)
        except PromptRejected as exc:
            return Outcome(None, str(exc))
        progress(f"queued as {prompt_id}")
        deadline = time.monotonic() + timeout
        entry = _wait(client, ws, prompt_id, plan.prompt, deadline, progress)
        if entry is None:
            client.cancel(prompt_id)
            return Outcome(prompt_id, f"timed out after {timeout:g} s (--timeout); the server "
                                      "was asked to stop the prompt")
    finally:
        ws.close()
    outputs = entry.get("outputs") or {}
    error = history_error(entry, plan.prompt)
    if error is not None:
        return Outcome(prompt_id, error, outputs)
    return Outcome(prompt_id, None, outputs, collect_files(client, outputs, folder))


def _wait(client: ComfyClient, ws, prompt_id: str, prompt: dict, deadline: float,
          progress: Callable[[str], None]) -> dict | None:
    """The history entry of ``prompt_id`` once it has ended; None past ``deadline``."""
    import websocket

    while time.monotonic() < deadline:
        try:
            frame = ws.recv()
        except websocket.WebSocketTimeoutException:
            entry = client.history(prompt_id)  # quiet: maybe a message was missed
            if entry is not None and _ended(entry):
                return entry
            continue
        except (websocket.WebSocketException, OSError) as exc:
            raise ServerLost(f"{client.url}: the websocket closed while the prompt ran "
                             f"({exc or type(exc).__name__})") from None
        if not frame and not ws.connected:  # websocket-client's answer to a close frame
            raise ServerLost(f"{client.url}: the websocket closed while the prompt ran")
        if not isinstance(frame, str) or not frame:  # a preview image
            continue
        try:
            message = json.loads(frame)
        except ValueError:
            continue
        data = message.get("data") if isinstance(message, dict) else None
        if not isinstance(data, dict) or data.get("prompt_id") != prompt_id:
            continue  # another prompt's (another client's), or the queue status
        kind = message.get("type")
        if kind in END_MESSAGES or (kind == "executing" and data.get("node") is None):
            return _history_when_ready(client, prompt_id, deadline)
        _report(kind, data, prompt, progress)
    return None


def _history_when_ready(client: ComfyClient, prompt_id: str, deadline: float) -> dict | None:
    """The prompt has ended; its history entry follows right after (ComfyUI sends the end
    message just before it stores the entry)."""
    while time.monotonic() < deadline:
        entry = client.history(prompt_id)
        if entry is not None and _ended(entry):
            return entry
        time.sleep(HISTORY_POLL)
    return None


def _ended(entry: dict) -> bool:
    status = entry.get("status") or {}
    return bool(status.get("completed")) or status.get("status_str") in ("success", "error")


def _report(kind: str, data: dict, prompt: dict, progress: Callable[[str], None]) -> None:
    node = str(data.get("node") or data.get("display_node") or "")
    what = f"node {node} ({prompt.get(node, {}).get('class_type', '?')})"
    if kind == "executing":
        progress(f"{what} running")
    elif kind == "progress" and data.get("max"):
        progress(f"{what} {data.get('value')}/{data['max']}")
    elif kind == "execution_cached" and data.get("nodes"):
        progress(f"{len(data['nodes'])} node(s) cached")


def history_error(entry: dict, prompt: dict) -> str | None:
    """Why the prompt failed, from its history ("node 7 (KSampler) failed: RuntimeError: ..."),
    or None when it succeeded."""
    status = entry.get("status") or {}
    if status.get("status_str", "success") == "success" and status.get("completed", True):
        return None
    for kind, data in status.get("messages") or []:
        if kind in ("execution_error", "execution_interrupted"):
            node = str(data.get("node_id", "?"))
            node_type = data.get("node_type") or prompt.get(node, {}).get("class_type", "?")
            if kind == "execution_interrupted":
                return f"node {node} ({node_type}) was interrupted"
            message = str(data.get("exception_message", "")).strip()
            return f"node {node} ({node_type}) failed: {data.get('exception_type', 'error')}: " \
                   f"{message}"
    return "the server reports the prompt as failed, without saying which node failed"


def collect_files(client: ComfyClient, outputs: dict, folder: Path) -> list[str]:
    """Download every file the outputs name ({"filename", "subfolder", "type"}: images,
    videos, audio...) into ``folder``; a name taken already gets its node id in front."""
    taken = set(RESERVED)
    files = []
    for node_id, ui in outputs.items():
        for items in (ui or {}).values():
            for ref in items if isinstance(items, list) else []:
                if not isinstance(ref, dict) or not ref.get("filename"):
                    continue
                name = _free_name(Path(str(ref["filename"])).name, node_id, taken)
                taken.add(name)
                client.download(ref, folder / name)
                files.append(name)
    return files


def _free_name(name: str, node_id: str, taken: set[str]) -> str:
    """``name`` (a bare file name: never a path out of the folder), else ``<node>_name``,
    else ``<node>_2_name``..."""
    candidate, number = name, 1
    while candidate in taken:
        prefix = node_id if number == 1 else f"{node_id}_{number}"
        candidate, number = f"{prefix}_{name}", number + 1
    return candidate
