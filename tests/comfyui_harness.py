"""Running the pack inside a real ComfyUI for integration tests.

``COMFYUI_PATH`` points at a ComfyUI checkout; ``COMFYUI_PYTHON`` at a Python that has ComfyUI's
and this pack's requirements (default: ``$COMFYUI_PATH/.venv/bin/python``). Without them the
integration tests skip, except in CI, where they fail (``tests.conftest.require``). Each server
gets its own ``--base-directory`` (custom_nodes with a link to this pack, models, output), so the
checkout itself is never modified.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.conftest import PACK_DIR, require

PACK_FOLDER_NAME = "ComfyUI-IntentTuner"


def comfyui_location() -> tuple[Path, Path]:
    """(checkout, python) or skip the calling test."""
    path = os.environ.get("COMFYUI_PATH")
    require(bool(path) and (Path(path) / "main.py").is_file(),
            "no ComfyUI checkout: set COMFYUI_PATH (scripts/test.sh does, from COMFYUI_SRC)")
    python = Path(os.environ.get("COMFYUI_PYTHON") or Path(path) / ".venv" / "bin" / "python")
    require(python.is_file(), f"COMFYUI_PYTHON {python} does not exist")
    return Path(path), python


def make_base_dir(base: Path) -> Path:
    """A ComfyUI base directory whose custom_nodes holds (a link to) this pack."""
    (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
    link = base / "custom_nodes" / PACK_FOLDER_NAME
    if not link.exists():
        link.symlink_to(PACK_DIR, target_is_directory=True)
    (base / "models").mkdir(exist_ok=True)
    return base


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """A headless ComfyUI server on loopback (CPU), started and stopped by a test."""

    def __init__(self, base: Path, extra_env: dict[str, str] | None = None,
                 extra_args: tuple[str, ...] = (), api_nodes: bool = False):
        self.checkout, self.python = comfyui_location()
        # ComfyUI's ~120 paid API nodes are left out unless a test asks for them: they are no
        # test's subject, loading them costs each start about 4 s, and without them the
        # frontend never reaches the internet (tests use loopback only).
        self.extra_args = (*(() if api_nodes else ("--disable-api-nodes",)), *extra_args)
        self.base = make_base_dir(base)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "comfyui.log"
        self.env = {**os.environ, **(extra_env or {})}

    def __enter__(self) -> ComfyServer:
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [str(self.python), "main.py", "--cpu", "--listen", "127.0.0.1", "--port",
             str(self.port), "--disable-auto-launch", "--base-directory", str(self.base),
             *self.extra_args],
            cwd=self.checkout, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited early:\n{self.log()[-3000:]}")
            try:
                self.get("/system_stats")
                return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"ComfyUI did not start in time:\n{self.log()[-3000:]}")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.loads(response.read())

    def post(self, path: str, data: object):
        request = urllib.request.Request(self.url + path, data=json.dumps(data).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def wait_for_history(self, count: int = 1, timeout: float = 120) -> dict:
        """The newest finished history entry, once ``count`` prompts have finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [h for h in self.get("/history").values()
                    if h.get("status", {}).get("completed")
                    or h.get("status", {}).get("status_str") == "error"]
            if len(done) >= count:
                return done[-1]
            time.sleep(0.5)
        raise TimeoutError(f"{count} prompt(s) did not finish in {timeout:.0f} s")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def run_in_comfyui(script: Path, base: Path, *args: str, timeout: int = 600) -> dict:
    """Run ``script`` with ComfyUI's Python, its cwd the checkout; it prints JSON last."""
    checkout, python = comfyui_location()
    out = subprocess.run([str(python), str(script), str(checkout), str(base), *args],
                         cwd=checkout, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
