"""Writing and reading LoRA files: kohya-format safetensors with kohya's model hashes.

A LoRA file is written once and never replaced: through a temporary file in the same folder
(fsynced), published with a hard link, which fails instead of overwriting when the name is
taken, so a crash or a full disk never leaves half a file under the final name and an earlier
run's file is never lost. A full disk or quota becomes `DiskFullError` naming the file, with the
temporary file removed and nothing else touched. `write_new_file` is the one atomic writer of the
training package (checkpoints and the latent cache use it too; the cache with ``replace=True``).

``sshs_model_hash`` / ``sshs_legacy_hash`` are computed the way kohya's
``train_util.precalculate_safetensors_hashes`` does (for sd-webui-additional-networks and
civitai): the file serialised with only the ``ss_*`` metadata, then sha256 of everything after
the header, and sha256 of the 64 KiB at offset 1 MiB (first 8 hex digits).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import uuid
from collections.abc import Mapping
from pathlib import Path

import torch

from ..errors import DiskFullError, InputError, WeightsError
from ..weights.safe_load import read_safetensors_header
from .kohya_keys import ALPHA, DOWN, PREFIXES, UP, unpaired_keys

log = logging.getLogger(__name__)

DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}  # no EDQUOT on Windows
_CHUNK = 16 << 20
_LORA_PREFIXES = tuple(sorted({p + "_" for kind in PREFIXES.values() for p in kind.values()}))


def lora_hashes(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> tuple[str, str]:
    """(sshs_model_hash, sshs_legacy_hash) of ``tensors`` as kohya computes them."""
    from safetensors.torch import save

    data = save(dict(tensors), {k: v for k, v in metadata.items() if k.startswith("ss_")})
    view = memoryview(data)
    header = int.from_bytes(data[:8], "little")
    model_hash = hashlib.sha256(view[8 + header:]).hexdigest()
    legacy_hash = hashlib.sha256(view[0x100000:0x110000]).hexdigest()[:8]
    return model_hash, legacy_hash


def save_lora_file(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor],
                   metadata: Mapping[str, str]) -> Path:
    """Write ``tensors`` (kohya names) with ``metadata`` (strings) plus the kohya hashes to
    ``path``, a new file. An existing ``path`` -> `InputError`; disk full -> `DiskFullError`."""
    from safetensors.torch import save

    path = Path(path)
    if path.exists():
        raise InputError(f"{path} already exists; a LoRA file is never replaced. Choose another "
                         "run name, or move the old file away first.")
    bad = sorted(k for k, v in metadata.items() if not isinstance(v, str))
    if bad:
        raise ValueError(f"safetensors metadata values must be strings: {', '.join(bad)}")
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    model_hash, legacy_hash = lora_hashes(cpu, metadata)
    data = save(cpu, {**metadata, "sshs_model_hash": model_hash, "sshs_legacy_hash": legacy_hash})
    write_new_file(path, data)
    log.info("wrote LoRA %s (%d tensors, %.1f MB)", path, len(cpu), len(data) / 1e6)
    return path


def write_new_file(path: Path, data: bytes, replace: bool = False) -> None:
    """Write ``data`` as the new file ``path``, atomically and without replacing anything; with
    ``replace`` an existing ``path`` is swapped for the new bytes (still atomically)."""
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o644)
        try:
            view = memoryview(data)
            for start in range(0, len(view), _CHUNK):
                chunk = view[start:start + _CHUNK]
                while chunk:  # os.write may write less than asked
                    chunk = chunk[os.write(fd, chunk):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(temp, path)
        else:
            _publish(temp, path)
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise _disk_full(path, exc) from exc
        raise
    finally:
        temp.unlink(missing_ok=True)
    _sync_folder(path.parent)


def _publish(temp: Path, path: Path) -> None:
    taken = InputError(f"{path} appeared while it was being written; a LoRA file is never "
                       "replaced. Choose another run name.")
    try:
        os.link(temp, path)  # atomic, and refuses an existing name
    except FileExistsError:
        raise taken from None
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise
        # No hard links on this file system (FAT, some shares): rename after checking again;
        # the window is tiny, and on Windows rename itself refuses an existing name.
        if path.exists():
            raise taken from None
        try:
            os.rename(temp, path)
        except FileExistsError:
            raise taken from None


def _sync_folder(folder: Path) -> None:
    """Make the new name itself durable (POSIX); not possible or needed everywhere."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _disk_full(path: Path, exc: OSError) -> DiskFullError:
    error = DiskFullError(f"Could not write {path}: the disk is full or over quota "
                          f"({os.strerror(exc.errno)}). The partial file was removed and earlier "
                          "files are intact; free some space and save again or resume from the "
                          "last checkpoint.")
    error.errno = exc.errno
    return error


def read_lora_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a kohya-format LoRA file; `InputError` for anything else."""
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise InputError(f"{path} is not a .safetensors file; LoRAs are read from .safetensors.")
    if not path.is_file():
        raise InputError(f"No LoRA file at {path}.")
    try:
        header, metadata = read_safetensors_header(path)
    except WeightsError as exc:
        raise InputError(str(exc)) from None
    check_lora_names(list(header), path)
    return load_file(str(path), device="cpu"), metadata


def check_lora_names(names: list[str], path: Path) -> None:
    """Refuse tensor names that are not a kohya LoRA's, saying what the file is instead."""
    if not names:
        raise InputError(f"{path} holds no tensors, so it is not a LoRA.")
    if any(n.startswith(("model.diffusion_model.", "first_stage_model.")) for n in names):
        raise InputError(f"{path} is a full model checkpoint, not a LoRA: load it as a base "
                         "model (models/checkpoints).")
    foreign = [n for n in names if not (n.startswith(_LORA_PREFIXES) and n.endswith((DOWN, UP,
                                                                                     ALPHA)))]
    if foreign:
        kind = "a diffusers/PEFT-format LoRA" if any(".lora_A" in n or ".lora.down" in n
                                                    for n in foreign) else "not a kohya LoRA"
        raise InputError(f"{path} is {kind} (e.g. tensor '{foreign[0]}'); expected kohya keys "
                         "lora_unet_... / lora_te_... with .lora_down/.lora_up/.alpha.")
    unpaired = unpaired_keys(names)
    if unpaired:
        key, partner = unpaired[0]
        raise InputError(f"{path} is damaged: '{key}' has no matching '{partner}'. Save or "
                         "download the LoRA again.")
