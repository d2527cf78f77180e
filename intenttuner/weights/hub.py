"""The Hugging Face Hub's side of a download: its URLs, its token, and what it declares about a
file before we fetch it.

The Hub's metadata protocol is huggingface_hub's (`get_hf_file_metadata`): a HEAD of
``/resolve/`` that follows the Hub's same-host redirects (small files go through
``/api/resolve-cache/``) and stops at an LFS file's redirect to its CDN, whose headers carry the
file's sha256 (``X-Linked-Etag``) and size (``X-Linked-Size``); a small file's ``ETag`` is its
git blob sha1. We use only that metadata. The bytes are streamed by ``download.py``, because
huggingface_hub's own downloader writes into its cache and has none of what we need there: our
progress bar through the runtime, Cancel, our ``.part`` resumed with Range, and errors that name
the file, URL and target folder.

Environment, read at every call: ``HF_ENDPOINT`` (huggingface_hub itself reads it only once, at
import, so it is passed explicitly) and ``HF_TOKEN``. A token saved by ``hf auth login`` is never
read: with no HF_TOKEN, huggingface_hub is told to send none.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass
from urllib.parse import urljoin, urlparse

from ..errors import DownloadError, OfflineError

log = logging.getLogger(__name__)

DEFAULT_HF_ENDPOINT = "https://huggingface.co"
HEAD_TIMEOUT_S = 30.0


def hf_endpoint() -> str:
    """The Hub (or mirror) to download from: ``HF_ENDPOINT``, as huggingface_hub reads it."""
    return os.environ.get("HF_ENDPOINT", DEFAULT_HF_ENDPOINT).rstrip("/")


def hub_url(repo: str, revision: str, filename: str) -> str:
    """The ``/resolve/`` URL of ``filename`` in model repo ``repo`` at ``revision``."""
    from huggingface_hub import hf_hub_url

    return hf_hub_url(repo, filename, revision=revision, endpoint=hf_endpoint())


def is_hub(url: str) -> bool:
    """Whether ``url`` is served by the Hub itself (the host of HF_ENDPOINT), not its CDN."""
    return urlparse(url).netloc == urlparse(hf_endpoint()).netloc


def token_for(url: str) -> str | None:
    """HF_TOKEN if ``url`` is on the Hub; None elsewhere (CDNs and other servers never get it)."""
    return (os.environ.get("HF_TOKEN") or None) if is_hub(url) else None


@dataclass(frozen=True)
class HubFile:
    """What the Hub declares about one file, before any byte of it is fetched."""

    size: int | None  # bytes: X-Linked-Size, or Content-Length of a non-redirected answer
    sha256: str | None  # LFS files: hex sha256 (X-Linked-Etag)
    git_sha1: str | None  # small (non-LFS) files: hex git blob hash (ETag)
    location: str  # where to GET the bytes: the CDN for LFS files, else the Hub URL reached
    commit: str | None  # X-Repo-Commit: the commit the revision resolved to


def hub_file_metadata(url: str) -> HubFile | None:
    """HEAD ``url`` (a ``/resolve/`` URL) through huggingface_hub; None if HEAD is refused (405).

    Raises OfflineError whose message is a reason ("... could not be reached (...)"), for the
    caller to build its instructions around, and DownloadError on HTTP errors.
    """
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    try:
        meta = huggingface_hub.get_hf_file_metadata(
            url, token=token_for(url) or False, timeout=HEAD_TIMEOUT_S,
            user_agent="ComfyUI-IntentTuner", endpoint=hf_endpoint(),
        )
    except OfflineModeIsEnabled:  # huggingface_hub read HF_HUB_OFFLINE when it was imported
        raise OfflineError("Hugging Face downloads are switched off (HF_HUB_OFFLINE was set when "
                           "huggingface_hub was imported)") from None
    except HfHubHTTPError as exc:
        response = exc.response
        status = getattr(response, "status_code", 0)
        if status == 405:
            return None
        reason = getattr(response, "reason_phrase", None) or getattr(response, "reason", "")
        raise http_error(url, status, reason) from None
    except _network_errors() as exc:
        why = str(exc) or type(exc).__name__
        raise OfflineError(f"the download server could not be reached ({why})") from None
    etag = meta.etag
    sha256 = _hex(etag, 64)
    if meta.commit_hash:
        log.debug("%s resolves to commit %s", url, meta.commit_hash)
    return HubFile(
        size=meta.size, sha256=sha256, git_sha1=None if sha256 else _hex(etag, 40),
        location=urljoin(url, meta.location) if meta.location else url, commit=meta.commit_hash,
    )


def http_error(url: str, status: int, reason: str = "") -> DownloadError:
    """The error for a download that ``url`` refused with HTTP ``status``."""
    if status in (401, 403):
        return DownloadError(
            f"{url} refused access (HTTP {status}). If the model is gated, accept its licence on "
            "its Hugging Face page and set the HF_TOKEN environment variable before starting "
            "ComfyUI."
        )
    if status == 404:
        return DownloadError(f"{url} does not exist (HTTP 404); the source may have moved.")
    return DownloadError(f"{url} failed with HTTP {status} {reason}".rstrip() + "; try again later.")


def _network_errors() -> tuple[type[BaseException], ...]:
    """What "could not connect" raises under huggingface_hub: OSError (refused sockets,
    timeouts), plus the request errors of the HTTP library it runs on, which depends on its
    version (requests before 1.0, then httpx, then httpx2)."""
    found: list[type[BaseException]] = [OSError]
    for module, name in (("httpx2", "RequestError"), ("httpx", "RequestError"),
                         ("requests", "RequestException")):
        error = getattr(sys.modules.get(module), name, None)
        if isinstance(error, type) and issubclass(error, BaseException):
            found.append(error)
    return tuple(found)


def _hex(value: str | None, length: int) -> str | None:
    value = (value or "").strip().removeprefix("W/").strip('"').lower()
    return value if re.fullmatch(f"[0-9a-f]{{{length}}}", value) else None
