"""Saving a trained reward model: a new ``.safetensors`` file, never over an existing one.

The bytes come from `families.reward_model.serialise`; the file is written by the training
package's one atomic writer (`training.lora_file.write_new_file`: temporary file, fsync, hard
link that refuses a taken name), so a crash leaves no half file and an earlier model is never
replaced. A name in use gets ``_00002``, ``_00003``... as ComfyUI numbers its saved files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..dataset.naming import MAX_NAME, slug
from ..errors import InputError
from ..families.reward_model import FAMILY, RewardMLP, serialise
from ..runtime import get_runtime
from ..training.lora_file import write_new_file

SUFFIX = ".safetensors"
MAX_NUMBER = 99999  # _00002 ... _99999, ComfyUI's five digits


def save_reward_model(path_or_name: str | os.PathLike, mlp: RewardMLP,
                      metadata: Mapping[str, str]) -> Path:
    """Write ``mlp`` with ``metadata`` (strings, with ``encoder``) as a new file; its path.

    A bare name (``"my_reward_model"``) is made file-safe and saved as
    ``models/reward_models/<name>.safetensors``, numbered when taken. A path (with a folder or
    ending in ``.safetensors``) is written exactly there, and refused (InputError) when it
    exists.
    """
    data = serialise(mlp, metadata)
    text = os.fspath(path_or_name)
    if text.endswith(SUFFIX) or "/" in text or "\\" in text:
        path = Path(text)
        if path.suffix != SUFFIX:
            path = path.with_name(path.name + SUFFIX)
        if path.exists():
            raise InputError(f"{path} already exists; a reward model is never replaced. "
                             "Choose another name, or move the old file away first.")
        write_new_file(path, data)
        return path
    stem = slug(text, "", MAX_NAME, lower=False)
    if not stem:
        raise InputError(f"Reward model name {text!r} has no letters or digits that are safe "
                         "in a file name; use ASCII letters, digits, '_' or '-'.")
    folder = get_runtime().download_dir(FAMILY.folder)
    for n in range(1, MAX_NUMBER + 1):
        path = folder / (f"{stem}{SUFFIX}" if n == 1 else f"{stem}_{n:05d}{SUFFIX}")
        if path.exists():
            continue
        try:
            write_new_file(path, data)
        except InputError:
            continue  # another save took the name between the check and the link
        return path
    raise InputError(f"Every name {stem}_00002 ... _{MAX_NUMBER} is taken in {folder}; choose "
                     "another reward model name.")
