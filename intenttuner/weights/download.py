"""Fetching missing weights: resumable, checksummed, atomic, with progress and clear failures.

`ensure_entry` is the one entry point: it returns the local path of a manifest entry, reusing
what users already have (``locate.py``) and downloading only what is missing. A download goes to
``<file>.part`` (kept across interruptions and resumed with an HTTP Range request), is checked
against the manifest's sha256 (or, when no public source states one, the checksum the Hugging
Face Hub declares for the file) and is renamed into place only when it is whole.

Environment: ``HF_ENDPOINT`` (mirror), ``HF_TOKEN`` (gated repos; sent only to the Hub, never
logged), ``HF_HUB_OFFLINE=1`` (no Hub downloads), ``INTENTTUNER_OFFLINE=1`` (no downloads).
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import logging
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlparse

from ..errors import (
    ChecksumMismatchError,
    DownloadError,
    ModelsFolderError,
    OfflineError,
)
from ..runtime import get_runtime
from .folders import MODEL_FOLDERS
from .locate import file_complete, find_entry
from .manifest import Manifest, WeightEntry, WeightFile, hf_endpoint, load_manifest

log = logging.getLogger(__name__)

CHUNK = 1 << 20
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
TIMEOUT_S = 30.0
RETRIES = 3  # resumed attempts after a connection drops mid-file
FREE_SPACE_MARGIN = 64 << 20
_TRUTHY = {"1", "true", "yes", "on"}
_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def ensure_entry(entry: WeightEntry, manifest: Manifest | None = None) -> Path:
    """Return the local path of ``entry`` (and of the entries it requires), downloading what
    is missing. Raises OfflineError when it is missing and cannot be downloaded."""
    manifest = manifest or load_manifest()
    for required in entry.requires:
        ensure_entry(manifest.get(required), manifest)
    found = find_entry(entry)
    if found is not None:
        return found
    rt = get_runtime()
    folder_dir = rt.download_dir(entry.folder)
    reason = downloads_blocked(entry)
    if reason:
        raise OfflineError(manual_instructions(entry, folder_dir, reason))
    missing = [f for f in entry.files if not file_complete(entry.destination(folder_dir, f), f.size)]
    _prepare_folder(folder_dir, entry, missing)
    for file in missing:
        # Websocket events (intenttuner.download) let a UI say what is being fetched and why
        # a node waits; the progress bar itself comes from rt.progress.
        event = {"id": entry.id, "file": file.name, "size": file.size}
        rt.send_event("intenttuner.download", {**event, "state": "start"})
        try:
            download_file(
                entry.url(file), entry.destination(folder_dir, file), file,
                on_unreachable=lambda why: manual_instructions(entry, folder_dir, why),
            )
        except Exception as exc:
            reason = (str(exc) or type(exc).__name__).splitlines()[0]  # Cancel has no message
            rt.send_event("intenttuner.download", {**event, "state": "failed", "error": reason})
            raise
        rt.send_event("intenttuner.download", {**event, "state": "done"})
    return entry.local_path(folder_dir)


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
    url: str  # what to GET: the original URL, or where its same-host redirects lead


def download_file(url: str, dest: Path, file: WeightFile, *, on_unreachable=None) -> Path:
    """Download ``url`` to ``dest`` via ``dest.part``, resuming and verifying; return ``dest``.

    ``on_unreachable(reason) -> str`` builds the message of the OfflineError raised when the
    server cannot be reached at all.
    """
    with _lock_for(dest):
        if file_complete(dest, file.size):
            return dest
        part = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            expected = _probe(url, file)
        except OfflineError as exc:
            raise OfflineError(on_unreachable(str(exc)) if on_unreachable else str(exc)) from None
        for attempt in range(RETRIES + 1):
            try:
                _fetch_into(expected.url, part, expected)
                break
            except _Dropped as exc:
                if attempt == RETRIES:
                    raise DownloadError(
                        f"Downloading {url} failed {RETRIES + 1} times ({exc}). The partial file "
                        f"{part} is kept; run the workflow again to resume."
                    ) from None
                log.warning("download of %s dropped (%s); resuming", dest.name, exc)
                time.sleep(min(2**attempt, 8) * 0.1)
        _verify(part, expected, url)
        os.replace(part, dest)
        log.info("downloaded %s (%s bytes)", dest, dest.stat().st_size)
        return dest


class _Dropped(Exception):
    """The connection broke mid-file; the part file is intact and can be resumed."""


def _probe(url: str, file: WeightFile) -> _Expected:
    """Ask the server what it will send (size, declared checksums) without downloading.

    Redirects are walked by hand because that is where the Hugging Face Hub puts its metadata:
    ``/resolve/`` answers an LFS file with a redirect to its CDN carrying the file's sha256
    (``X-Linked-Etag``) and size; a small file with a same-host redirect (``/api/resolve-cache``)
    whose target reports the git blob hash (``ETag``). Same-host redirects are followed (with
    the token); a cross-host one ends the walk, and the CDN is fetched without the token. A
    redirect's own Content-Length (its message body) is never taken for the file's size.
    """
    linked = linked_size = None
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        answer = _head(current)
        if answer is None:  # the server refuses HEAD: rely on the manifest alone
            return _Expected(file.size, file.sha256, None, url)
        status, headers = answer
        linked = linked or _hex(headers.get("X-Linked-Etag"), 64)
        linked_size = linked_size or _int(headers.get("X-Linked-Size"))
        if status in _REDIRECTS:
            target = urljoin(current, headers.get("Location", ""))
            if urlparse(target).netloc == urlparse(current).netloc:
                current = target
                continue
            size, git_sha1, current = linked_size, None, target
        else:
            size = linked_size or _int(headers.get("Content-Length"))
            git_sha1 = _hex(headers.get("ETag"), 40) if _is_hub(url) and not linked else None
        break
    else:
        raise DownloadError(f"{url} redirects more than {MAX_REDIRECTS} times.")
    if file.sha256 and linked and linked != file.sha256:
        raise ChecksumMismatchError(
            f"{url}: the server now serves a file with sha256 {linked}, but the manifest expects "
            f"{file.sha256}. The source changed; the file was not downloaded."
        )
    return _Expected(file.size or size, file.sha256 or linked, git_sha1, current)


def _head(url: str) -> tuple[int, object] | None:
    """(status, headers) of a HEAD request, redirects not followed; None if HEAD is refused."""
    try:
        response = _NO_REDIRECT.open(_request(url, method="HEAD"), timeout=TIMEOUT_S)
        response.close()
        return response.status, response.headers
    except urllib.error.HTTPError as exc:
        if exc.code in _REDIRECTS:
            return exc.code, exc.headers
        if exc.code == 405:
            return None
        raise _http_error(exc, url) from None
    except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
        raise OfflineError(f"the download server could not be reached ({_reason(exc)})") from None


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
        raise _http_error(exc, url) from None
    except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
        raise _Dropped(_reason(exc)) from None
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
    elif expected.sha256 and _digest(part, "sha256") != expected.sha256:
        problem = f"its sha256 is {_digest(part, 'sha256')}, expected {expected.sha256}"
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
        probe = folder_dir / f".intenttuner-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
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


def _request(url: str, method: str = "GET") -> urllib.request.Request:
    request = urllib.request.Request(url, method=method)
    request.add_header("User-Agent", "ComfyUI-IntentTuner")
    token = os.environ.get("HF_TOKEN")
    if token and _is_hub(url):
        # Unredirected: the token must not follow the Hub's redirect to its CDN.
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    return request


def _is_hub(url: str) -> bool:
    return urlparse(url).netloc == urlparse(hf_endpoint()).netloc


def _http_error(exc: urllib.error.HTTPError, url: str) -> DownloadError:
    if exc.code in (401, 403):
        return DownloadError(
            f"{url} refused access (HTTP {exc.code}). If the model is gated, accept its licence on "
            "its Hugging Face page and set the HF_TOKEN environment variable before starting "
            "ComfyUI."
        )
    if exc.code == 404:
        return DownloadError(f"{url} does not exist (HTTP 404); the source may have moved.")
    return DownloadError(f"{url} failed with HTTP {exc.code} {exc.reason}; try again later.")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003 - urllib's signature
        return None


_NO_REDIRECT = urllib.request.build_opener(_NoRedirect)


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path.resolve(), threading.Lock())


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


def _hex(value: str | None, length: int) -> str | None:
    value = (value or "").strip().strip('"').removeprefix("W/").strip('"').lower()
    return value if re.fullmatch(f"[0-9a-f]{{{length}}}", value) else None


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", None) or exc) or type(exc).__name__


def _mb(n: int) -> int:
    return max(0, n) // (1 << 20)
