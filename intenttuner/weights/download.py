"""Fetching missing weights: resumable, checksummed, atomic, with progress and clear failures.

`ensure_entry` is the one entry point: it returns the local path of a manifest entry, reusing
what users already have (``locate.py``) and downloading only what is missing. A download goes to
``<file>.part`` (kept across interruptions and resumed with an HTTP Range request), is checked
against the manifest's sha256 (or, when no public source states one, the checksum the Hugging
Face Hub declares for the file, read with huggingface_hub: ``hub.py``) and is renamed into place
only when it is whole. Each download holds ``<file>.lock``, so processes sharing a models folder
take turns (``locking.py``). A failed download leaves no lock file, and removes the folders it
created if they are empty; its ``.part`` stays for a resume after a dropped connection, Cancel or
a full disk, and is deleted when the checksum is wrong.

The bytes are streamed here rather than by huggingface_hub (whose downloader writes into its own
cache) for what it lacks: progress through the runtime, Cancel, resuming our ``.part``, the
sha256 check for non-Hub sources, and errors that name the file, its URL and the target folder.

Environment: ``HF_ENDPOINT`` (mirror), ``HF_TOKEN`` (gated repos; sent only to the Hub, never
logged), ``HF_HUB_OFFLINE=1`` (no Hub downloads), ``INTENTTUNER_OFFLINE=1`` (no downloads).
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import logging
import os
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import (
    ChecksumMismatchError,
    DownloadError,
    ModelsFolderError,
    OfflineError,
)
from ..runtime import get_runtime
from .folders import MODEL_FOLDERS
from .hub import http_error, hub_file_metadata, is_hub, token_for
from .locate import file_complete, find_entry
from .locking import download_lock, new_dirs_removed_on_failure
from .manifest import Manifest, WeightEntry, WeightFile, load_manifest

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT_S = 30.0
RETRIES = 3  # resumed attempts after a connection drops mid-file
FREE_SPACE_MARGIN = 64 << 20
_TRUTHY = {"1", "true", "yes", "on"}


def ensure_entry(entry: WeightEntry, manifest: Manifest | None = None) -> Path:
    """Return the local path of ``entry`` (and of the entries it requires), downloading what
    is missing. Raises OfflineError when it is missing and cannot be downloaded."""
    manifest = manifest or load_manifest()
    _check_downloadable(entry, manifest)
    return _ensure(entry, manifest)


def _check_downloadable(entry: WeightEntry, manifest: Manifest) -> None:
    """Raise one OfflineError naming every missing file of ``entry`` and of the entries it
    requires, when any of them cannot be downloaded: fetching stops at the first it cannot get,
    so offline a missing groundingdino_swint_ogc.pth was reported as a missing BERT tokenizer
    alone, and the user learnt about the checkpoint only on the next run."""
    missing = [e for e in manifest.with_requirements(entry) if find_entry(e) is None]
    reasons = {e.id: downloads_blocked(e) for e in missing}
    if not any(reasons.values()):
        return
    rt = get_runtime()
    raise OfflineError("\n\n".join(
        manual_instructions(e, rt.download_dir(e.folder),
                            reasons[e.id] or "is needed too: fetch it with the rest")
        for e in missing))


def _ensure(entry: WeightEntry, manifest: Manifest) -> Path:
    for required in entry.requires:
        _ensure(manifest.get(required), manifest)
    found = find_entry(entry)
    if found is not None:
        return found
    rt = get_runtime()
    folder_dir = rt.download_dir(entry.folder)
    reason = downloads_blocked(entry)
    if reason:
        raise OfflineError(manual_instructions(entry, folder_dir, reason))
    missing = [f for f in entry.files if not file_complete(entry.destination(folder_dir, f), f.size)]
    with new_dirs_removed_on_failure([entry.destination(folder_dir, f) for f in missing]):
        _prepare_folder(folder_dir, entry, missing)
        for file in missing:
            _download_announced(entry, file, folder_dir)
    return entry.local_path(folder_dir)


def _download_announced(entry: WeightEntry, file: WeightFile, folder_dir: Path) -> None:
    # Websocket events (intenttuner.download) let a UI say what is being fetched and why a node
    # waits ("waiting": another process is downloading it); the progress bar comes from
    # rt.progress.
    rt = get_runtime()
    event = {"id": entry.id, "file": file.name, "size": file.size}
    rt.send_event("intenttuner.download", {**event, "state": "start"})
    try:
        download_file(
            entry.url(file), entry.destination(folder_dir, file), file,
            on_unreachable=lambda why: manual_instructions(entry, folder_dir, why),
            on_wait=lambda: rt.send_event("intenttuner.download", {**event, "state": "waiting"}),
        )
    except Exception as exc:
        reason = (str(exc) or type(exc).__name__).splitlines()[0]  # Cancel has no message
        rt.send_event("intenttuner.download", {**event, "state": "failed", "error": reason})
        raise
    rt.send_event("intenttuner.download", {**event, "state": "done"})


def downloads_blocked(entry: WeightEntry) -> str | None:
    """Why downloads of ``entry`` are switched off, or None if they are allowed."""
    if os.environ.get("INTENTTUNER_OFFLINE", "").lower() in _TRUTHY:
        return "downloads are switched off (INTENTTUNER_OFFLINE is set)"
    if entry.hf_repo and os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUTHY:
        return "Hugging Face downloads are switched off (HF_HUB_OFFLINE is set)"
    return None


def manual_instructions(entry: WeightEntry, folder_dir: Path, reason: str) -> str:
    lines = [f"{entry.title} ('{entry.id}') is not on this machine and {reason}.",
             f"Download it yourself from {entry.source_page()} and put it here:"]
    for f in entry.files:
        size = f"{f.size:,} bytes" if f.size else "size not published"
        check = f", sha256 {f.sha256}" if f.sha256 else ""
        lines.append(f"  {entry.url(f)}\n    -> {entry.destination(folder_dir, f)} ({size}{check})")
    lines.append(f"(models/{entry.folder} holds {MODEL_FOLDERS[entry.folder].purpose}.)")
    return "\n".join(lines)


@dataclass
class _Expected:
    size: int | None
    sha256: str | None
    git_sha1: str | None  # git blob hash the Hub declares for small (non-LFS) files
    url: str  # what to GET: the original URL, or where the Hub's redirects lead


def download_file(url: str, dest: Path, file: WeightFile, *,
                  on_unreachable: Callable[[str], str] | None = None,
                  on_wait: Callable[[], None] | None = None) -> Path:
    """Download ``url`` to ``dest`` via ``dest.part``, resuming and verifying; return ``dest``.

    Holds ``dest``'s download lock throughout: if another process (or thread) is downloading
    the same file, this waits for it (calling ``on_wait()`` once) and then uses its result.
    ``on_unreachable(reason) -> str`` builds the message of the OfflineError raised when the
    server cannot be reached at all.
    """
    unreachable = on_unreachable or (lambda reason: reason)
    with download_lock(dest, file.size, on_wait) as waited:
        if file_complete(dest, file.size):  # finished by another process meanwhile
            _check_finished_elsewhere(dest, file, waited)
            return dest
        part = dest.with_name(dest.name + ".part")
        try:
            expected = _probe(url, file)
        except OfflineError as exc:
            raise OfflineError(unreachable(str(exc))) from None
        _fetch_with_retries(url, part, expected, unreachable)
        _verify(part, expected, url)
        os.replace(part, dest)
        log.info("downloaded %s (%s bytes)", dest, dest.stat().st_size)
        return dest


class _Dropped(Exception):
    """The connection broke mid-file; the part file is intact and can be resumed."""


class _Unreachable(_Dropped):
    """The server did not answer at all."""


def _probe(url: str, file: WeightFile) -> _Expected:
    """What the server will send, before downloading: for the Hub, what it declares (size,
    sha256 or git blob hash, CDN location; see ``hub.py``); elsewhere, the manifest alone."""
    if not is_hub(url):
        return _Expected(file.size, file.sha256, None, url)
    declared = hub_file_metadata(url)
    if declared is None:  # the server refuses HEAD: rely on the manifest alone
        return _Expected(file.size, file.sha256, None, url)
    if file.sha256 and declared.sha256 and declared.sha256 != file.sha256:
        raise ChecksumMismatchError(
            f"{url}: the server now serves a file with sha256 {declared.sha256}, but the manifest "
            f"expects {file.sha256}. The source changed; the file was not downloaded."
        )
    return _Expected(file.size or declared.size, file.sha256 or declared.sha256,
                     declared.git_sha1, declared.location)


def _fetch_with_retries(url: str, part: Path, expected: _Expected,
                        unreachable: Callable[[str], str]) -> None:
    for attempt in range(RETRIES + 1):
        try:
            _fetch_into(expected.url, part, expected)
            return
        except _Unreachable as exc:
            if attempt == 0:
                reason = f"the download server could not be reached ({exc})"
                raise OfflineError(unreachable(reason)) from None
            dropped = exc
        except _Dropped as exc:
            dropped = exc
        if attempt == RETRIES:
            raise DownloadError(
                f"Downloading {url} failed {RETRIES + 1} times ({dropped}). The partial file "
                f"{part} is kept; run the workflow again to resume."
            ) from None
        log.warning("download of %s dropped (%s); resuming", part.name, dropped)
        time.sleep(min(2**attempt, 8) * 0.1)


def _check_finished_elsewhere(dest: Path, file: WeightFile, waited: bool) -> None:
    """``dest`` appeared after `ensure_entry` found it missing, written by another process:
    its size is right (`file_complete`); check its sha256 too, where the manifest states one."""
    if file.sha256 and (actual := _digest(dest, "sha256")) != file.sha256:
        raise ChecksumMismatchError(
            f"Delete {dest} and run again: another process wrote it while this one was about to "
            f"download it, but its sha256 is {actual}, not {file.sha256}."
        )
    log.info("%s was downloaded by another process%s; using it", dest,
             " while this one waited" if waited else "")


def _fetch_into(url: str, part: Path, expected: _Expected) -> None:
    start = part.stat().st_size if part.exists() else 0
    if expected.size is not None and start > expected.size:
        part.unlink()  # longer than the whole file: not a prefix of it
        start = 0
    if expected.size is not None and start == expected.size:
        return
    request = _request(url)
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # range past the end: start over
            part.unlink()
            raise _Dropped("server refused to resume") from None
        raise http_error(url, exc.code, exc.reason) from None
    except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
        raise _Unreachable(_reason(exc)) from None
    with response:
        if start and response.status != 206:
            log.info("server ignored the resume request; downloading %s from the start", url)
            start = 0
        total = expected.size or (start + (_int(response.headers.get("Content-Length")) or 0))
        _stream(response, part, start, total or None)


def _stream(response, part: Path, start: int, total: int | None) -> None:
    rt = get_runtime()
    mode = "ab" if start else "wb"
    with rt.progress(total, f"Downloading {part.name.removesuffix('.part')}", unit="B") as bar:
        bar.update(start)
        try:
            with open(part, mode) as out:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
                    rt.check_interrupted()  # Cancel keeps the part file for a later resume
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DownloadError(
                    f"The disk is full while writing {part}. Free at least "
                    f"{_mb((total or 0) - part.stat().st_size)} MB there and run again: the "
                    "partial download is kept and will resume."
                ) from None
            if isinstance(exc, (ConnectionError, socket.timeout)):
                raise _Dropped(_reason(exc)) from None
            raise
        except http.client.IncompleteRead as exc:
            raise _Dropped(f"connection closed early: {exc}") from None
    received = part.stat().st_size
    if total is not None and received < total:
        # http.client returns b"" instead of raising when a server hangs up early.
        raise _Dropped(f"connection closed after {received:,} of {total:,} bytes")


def _verify(part: Path, expected: _Expected, url: str) -> None:
    size = part.stat().st_size
    problem = None
    if expected.size is not None and size != expected.size:
        problem = f"it has {size:,} bytes instead of {expected.size:,}"
    elif expected.sha256 and (actual := _digest(part, "sha256")) != expected.sha256:
        problem = f"its sha256 is {actual}, expected {expected.sha256}"
    elif expected.git_sha1 and _git_blob_sha1(part) != expected.git_sha1:
        problem = f"its git blob hash differs from the one the Hub declares ({expected.git_sha1})"
    elif not (expected.sha256 or expected.git_sha1):
        log.warning("no checksum is known for %s; only its size was checked", url)
    if problem:
        part.unlink()
        raise ChecksumMismatchError(
            f"The file downloaded from {url} is damaged: {problem}. It was deleted; run again to "
            "download it afresh (a proxy or mirror rewriting files is a common cause)."
        )


def _prepare_folder(folder_dir: Path, entry: WeightEntry, missing: list[WeightFile]) -> None:
    try:
        folder_dir.mkdir(parents=True, exist_ok=True)
        # A unique name: other threads and processes may be probing the same folder.
        fd, probe = tempfile.mkstemp(prefix=".intenttuner-write-test-", dir=folder_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ModelsFolderError(
            f"Cannot write to {folder_dir} ({exc.strerror or exc}), so '{entry.id}' cannot be "
            f"downloaded. Make the folder writable, point ComfyUI's extra_model_paths.yaml (or "
            f"INTENTTUNER_MODELS_DIR) at a writable models folder, or put the files there by hand:"
            f"\n{manual_instructions(entry, folder_dir, 'the folder is read-only')}"
        ) from None
    needed = FREE_SPACE_MARGIN + sum(  # what partial downloads already hold is not needed again
        max(0, (f.size or 0) - _part_size(entry.destination(folder_dir, f))) for f in missing)
    free = shutil.disk_usage(folder_dir).free
    if free < needed:
        raise DownloadError(
            f"Not enough disk space for '{entry.id}' in {folder_dir}: {_mb(needed)} MB needed, "
            f"{_mb(free)} MB free. Free some space or move the models folder."
        )


def _part_size(dest: Path) -> int:
    part = dest.with_name(dest.name + ".part")
    return part.stat().st_size if part.is_file() else 0


def _request(url: str) -> urllib.request.Request:
    request = urllib.request.Request(url)
    request.add_header("User-Agent", "ComfyUI-IntentTuner")
    if token := token_for(url):
        # Unredirected: the token must not follow a redirect to another server.
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    return request


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _git_blob_sha1(path: Path) -> str:
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())  # noqa: S324 - git's own hash
    h.update(path.read_bytes())
    return h.hexdigest()


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", None) or exc) or type(exc).__name__


def _mb(n: int) -> int:
    return max(0, n) // (1 << 20)
