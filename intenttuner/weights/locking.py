"""Sharing one models folder between processes: one download of a file at a time, and failures
that leave no empty folders behind.

Two ComfyUI instances, or ComfyUI and the command line, may want the same missing file at once.
A download holds ``<file>.lock`` beside its target (`filelock`: flock on POSIX, a locked handle
on Windows), so only one process ever appends to ``<file>.part``; the others wait, honouring
Cancel, and then find the finished file. The operating system releases such a lock when its
process dies, so a lock file left behind by a crash never blocks the next try.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import BaseFileLock, FileLock, Timeout, UnixFileLock

from ..runtime import get_runtime

log = logging.getLogger(__name__)

LOCK_POLL_S = 0.25  # how often a waiting download checks Cancel and the other one's progress


def lock_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".lock")


@contextmanager
def download_lock(dest: Path, size: int | None = None,
                  on_wait: Callable[[], None] | None = None) -> Iterator[bool]:
    """Hold the download lock of ``dest`` for the body; yields True if it had to wait for
    another holder (which may have finished ``dest`` meanwhile).

    While it waits it logs once, calls ``on_wait()`` once, shows the other download's progress
    (the size of its ``.part``; ``size`` is the whole file's, if known) and checks the runtime's
    interrupt hook, so Cancel stops the wait.
    """
    path = lock_path(dest)
    # One instance per call, never shared: threads of this process then queue on the lock
    # exactly as other processes do (each instance locks through its own file descriptor).
    lock = FileLock(path)
    waited = _acquire(lock, dest, size, on_wait)
    try:
        yield waited
    finally:
        _remove_lock_file(lock, path)
        lock.release()


def _acquire(lock: BaseFileLock, dest: Path, size: int | None,
             on_wait: Callable[[], None] | None) -> bool:
    rt = get_runtime()
    part = dest.with_name(dest.name + ".part")
    bar, shown = None, 0
    try:
        while True:
            # A peer whose download failed may just have removed this (then empty) folder.
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                lock.acquire(timeout=LOCK_POLL_S if bar else 0)
                return bar is not None
            except FileNotFoundError:
                continue
            except Timeout:
                pass
            except OSError as exc:
                # NFS: the lock file was deleted by its holder on another machine.
                if exc.errno != errno.ESTALE:
                    raise
                continue
            if bar is None:
                log.info("waiting for another process that is downloading %s (it holds %s); "
                         "Cancel stops waiting", dest.name, lock.lock_file)
                if on_wait:
                    on_wait()
                bar = rt.progress(size, f"Waiting for another download of {dest.name}", unit="B")
            done = _size(part)
            if done > shown:
                bar.update(done - shown)
                shown = done
            rt.check_interrupted()
    finally:
        if bar is not None:
            bar.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # not there (yet, or any more)
        return 0


def _remove_lock_file(lock: BaseFileLock, path: Path) -> None:
    """Delete the lock file while still holding the lock, so that none is left behind.

    filelock keeps POSIX lock files so that all waiters lock one and the same file. Deleting
    ours before releasing is safe when every process runs filelock >= 3.20.4: a waiter that then
    wins the lock of the deleted file sees it has no name left (``st_nlink == 0``) and starts
    over on a fresh file. (On NFS a deleted open file keeps a hidden name, so three processes on
    one client could briefly both hold it; the checksum check then refuses the mixed file.)
    Windows and fallback "soft" locks delete their file themselves on release.
    """
    if isinstance(lock, UnixFileLock):
        with suppress(OSError):
            path.unlink()


@contextmanager
def new_dirs_removed_on_failure(paths: Iterable[Path]) -> Iterator[None]:
    """If the body fails, remove the directories on the way to ``paths`` that did not exist
    before it and are empty now (deepest first). Folders that held something before, or that
    keep a ``.part`` for a later resume, stay."""
    created: set[Path] = set()
    for path in paths:
        for folder in path.parents:
            if folder.exists():
                break
            created.add(folder)
    try:
        yield
    except BaseException:
        for folder in sorted(created, key=lambda p: len(p.parts), reverse=True):
            with suppress(OSError):  # not empty, or already gone
                folder.rmdir()
        raise
