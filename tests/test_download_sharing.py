"""Downloads that processes share: one download of a file at a time (a lock beside the target),
waiting that honours Cancel, and failures that leave no empty folders or lock files behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock

from intenttuner import runtime
from intenttuner.errors import ChecksumMismatchError, DownloadError, OfflineError
from intenttuner.weights import download
from intenttuner.weights.download import ensure_entry
from tests.download_helpers import hub_entry, url_entry
from tests.loopback import Served, sha256

pytestmark = pytest.mark.usefixtures("hf_home")  # downloads on, from a loopback server

REPO = Path(__file__).resolve().parents[1]
DATA = os.urandom(6 << 20)
SLOW = 0.01  # seconds per 64 KiB: DATA takes about a second to serve, so downloads overlap


class Interrupted(Exception):
    """What a host's Cancel raises (ComfyUI: InterruptProcessingException)."""


class Recording(runtime.TorchRuntime):
    """The plain runtime, recording download events; Cancel "pressed" after ``cancel_after``
    calls of the interrupt hook."""

    def __init__(self, models_dir, cancel_after: int | None = None):
        super().__init__(models_dir=models_dir)
        self.states: list[str] = []
        self.checks = 0
        self.cancel_after = cancel_after

    def send_event(self, event, data):
        self.states.append(data["state"])

    def check_interrupted(self):
        self.checks += 1
        if self.cancel_after is not None and self.checks > self.cancel_after:
            raise Interrupted




def leftovers(root: Path) -> list[str]:
    """Everything under ``root``, as sorted relative paths (folders end with '/')."""
    return sorted(p.relative_to(root).as_posix() + ("/" if p.is_dir() else "")
                  for p in root.rglob("*"))


def _worker_env(models_root: Path, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "INTENTTUNER_"))}
    env.update(INTENTTUNER_MODELS_DIR=str(models_root), HF_HOME=str(tmp_path / "hf-home"),
               HF_HUB_CACHE=str(tmp_path / "hf-cache"), PYTHONPATH=str(REPO))
    return env


def test_two_processes_downloading_one_file_share_one_download(server, models_root, tmp_path):
    server.files["/files/shared.pth"] = Served(DATA, chunk_delay=SLOW)
    spec = json.dumps({"url": server.start() + "/files/shared.pth", "name": "shared.pth",
                       "size": len(DATA), "sha256": sha256(DATA), "target": "shared.pth"})
    go = tmp_path / "go"
    workers = [subprocess.Popen(
        [sys.executable, "-m", "tests.download_worker", spec, str(tmp_path / f"ready{i}"), str(go)],
        cwd=REPO, env=_worker_env(models_root, tmp_path), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for i in range(2)]
    deadline = time.monotonic() + 180  # two fresh interpreters importing torch on a busy machine
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline, "the workers did not start"
        assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
        time.sleep(0.05)
    go.touch()  # both start their download now
    outputs = [w.communicate(timeout=120) for w in workers]

    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert [r.get("error") for r in results] == [None, None], outputs
    dest = models_root / "sams" / "shared.pth"
    assert [r["path"] for r in results] == [str(dest)] * 2
    assert sha256(dest.read_bytes()) == sha256(DATA)
    # One of them waited for the other (so they really overlapped) and then used its file.
    assert sorted(r["waited"] for r in results) == [False, True], outputs
    waiter = next(err for (_, err), r in zip(outputs, results, strict=True) if r["waited"])
    assert "waiting for another process that is downloading shared.pth" in waiter
    assert [r[1] for r in server.requests if r[0] == "GET"] == ["/files/shared.pth"]
    assert server.body_bytes["/files/shared.pth"] == len(DATA)  # served once, not appended twice
    assert leftovers(models_root) == ["sams/", "sams/shared.pth"]  # no .part, no .lock


def test_two_threads_downloading_one_file_share_one_download(server, models_root):
    server.files["/files/shared.pth"] = Served(DATA, chunk_delay=SLOW)
    entry = url_entry(server.start(), "/files/shared.pth", sha=sha256(DATA), size=len(DATA))
    results: list[object] = []

    def fetch():
        try:
            results.append(ensure_entry(entry))
        except Exception as exc:  # collected for the assertion below
            results.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert results == [models_root / "sams" / "shared.pth"] * 2
    assert server.body_bytes["/files/shared.pth"] == len(DATA)
    assert leftovers(models_root) == ["sams/", "sams/shared.pth"]


def _wait_for(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("finished", ["correct", "damaged"])
def test_file_finished_by_the_lock_holder_is_checked_and_used(server, models_root, finished):
    """Someone else holds the lock and finishes the file: the waiter uses it, without a request,
    but only if its sha256 is right."""
    server.files["/files/sam_test.pth"] = Served(DATA)
    entry = url_entry(server.start(), sha=sha256(DATA), size=len(DATA))
    rt = Recording(models_root)
    runtime.set_runtime(rt)
    dest = models_root / "sams" / "sam_test.pth"
    dest.parent.mkdir(parents=True)
    other = FileLock(str(dest) + ".lock")  # the other download (its own file descriptor)
    other.acquire()
    outcome: list[object] = []
    waiter = threading.Thread(target=lambda: outcome.append(_call(ensure_entry, entry)))
    waiter.start()
    _wait_for(lambda: "waiting" in rt.states, "the download waits for the lock")
    body = DATA if finished == "correct" else DATA[:-1] + b"!"
    dest.write_bytes(body)
    other.release()
    waiter.join(20)

    if finished == "correct":
        assert outcome == [dest]
    else:
        assert isinstance(outcome[0], ChecksumMismatchError)
        assert str(outcome[0]).startswith(f"Delete {dest} and run again")
        assert dest.read_bytes() == body  # someone else's file: reported, not deleted
    assert server.requests == []
    assert not (dest.parent / "sam_test.pth.lock").exists()


def _call(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # returned for the assertion
        return exc


def test_cancel_while_waiting_for_another_download(server, models_root):
    server.files["/files/sam_test.pth"] = Served(DATA)
    entry = url_entry(server.start(), sha=sha256(DATA), size=len(DATA))
    rt = Recording(models_root, cancel_after=3)
    runtime.set_runtime(rt)
    dest = models_root / "sams" / "sam_test.pth"
    dest.parent.mkdir(parents=True)
    other = FileLock(str(dest) + ".lock")
    other.acquire()
    try:
        started = time.monotonic()
        with pytest.raises(Interrupted):
            ensure_entry(entry)
        assert time.monotonic() - started < 5  # a few polls, not a wait for the other download
    finally:
        other.release()

    assert rt.states == ["start", "waiting", "failed"]
    assert server.requests == []


def test_lock_file_left_by_a_dead_process_does_not_block(server, models_root):
    """A crash leaves ``.lock`` (and ``.part``) behind; the OS released the lock itself, so the
    next run resumes at once and cleans up."""
    server.files["/files/sam_test.pth"] = Served(DATA)
    entry = url_entry(server.start(), sha=sha256(DATA), size=len(DATA))
    folder = models_root / "sams"
    folder.mkdir()
    (folder / "sam_test.pth.lock").write_bytes(b"")
    (folder / "sam_test.pth.part").write_bytes(DATA[:5000])

    assert ensure_entry(entry).read_bytes() == DATA

    assert [r[2].get("Range") for r in server.requests if r[0] == "GET"] == ["bytes=5000-"]
    assert leftovers(models_root) == ["sams/", "sams/sam_test.pth"]


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("failure", ["404", "500", "checksum", "unreachable", "disk space"])
def test_failed_download_leaves_no_folders_or_lock(server, models_root, monkeypatch, failure):
    status = {"404": 404, "500": 500}.get(failure, 200)
    server.files["/files/sam_test.pth"] = Served(DATA, status=status)
    base = server.start() if failure != "unreachable" else f"http://127.0.0.1:{_dead_port()}"
    sha = sha256(b"other bytes") if failure == "checksum" else sha256(DATA)
    if failure == "disk space":
        monkeypatch.setattr(download.shutil, "disk_usage", lambda p: type("U", (), {"free": 0})())
    runtime.set_runtime(runtime.TorchRuntime(models_dir=models_root / "new" / "root"))

    with pytest.raises((DownloadError, OfflineError)):
        ensure_entry(url_entry(base, sha=sha, size=len(DATA)))

    assert leftovers(models_root) == []  # not even the models root it had to create


def test_failed_hub_download_removes_the_model_folder_it_created(server, models_root,
                                                                 monkeypatch):
    server.files["/org/tiny-repo/resolve/abc123/config.json"] = Served(b"{}", token="hf_gated")
    monkeypatch.setenv("HF_ENDPOINT", server.start())
    (models_root / "captioners").mkdir()  # there before: stays

    with pytest.raises(DownloadError, match="HTTP 401"):
        ensure_entry(hub_entry({"config.json": (None, None)}))

    assert leftovers(models_root) == ["captioners/"]


@pytest.mark.parametrize("failure", ["dropping", "cancel"])
def test_failure_after_some_bytes_keeps_only_the_part_file(server, models_root, failure):
    """The existing resume contract: a partial download stays for the next run (so does its
    folder), but no lock file does."""
    server.files["/files/sam_test.pth"] = Served(
        DATA, drop_after=100_000 if failure == "dropping" else None, drops_left=99)
    entry = url_entry(server.start(), sha=sha256(DATA), size=len(DATA))
    runtime.set_runtime(Recording(models_root, cancel_after=1 if failure == "cancel" else None))

    with pytest.raises(DownloadError if failure == "dropping" else Interrupted):
        ensure_entry(entry)

    assert leftovers(models_root) == ["sams/", "sams/sam_test.pth.part"]
    assert 0 < (models_root / "sams" / "sam_test.pth.part").stat().st_size < len(DATA)
