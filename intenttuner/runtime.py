"""Where the pipeline meets its host: devices, model folders, memory, progress and events.

The library never imports ComfyUI. It asks the *current runtime* for these services instead.
`TorchRuntime` (the default) uses plain torch, tqdm and a models folder given by an argument or
the ``INTENTTUNER_MODELS_DIR`` environment variable. Inside ComfyUI the pack's bridge module
(``nodes/comfy_bridge.py``) installs a runtime that routes the same calls through ComfyUI's
model manager, folder registry, progress bar and websocket server.

    from intenttuner import runtime
    rt = runtime.get_runtime()
    with rt.progress(total=len(images), desc="Detecting") as bar:
        for image in images:
            ...
            bar.update(1)
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .weights.folders import MODEL_FOLDERS

log = logging.getLogger(__name__)

MODELS_DIR_ENV = "INTENTTUNER_MODELS_DIR"
OUTPUT_DIR_ENV = "INTENTTUNER_OUTPUT_DIR"
INPUT_DIR_ENV = "INTENTTUNER_INPUT_DIR"


class ManagedModel:
    """A torch module whose placement the host decides: ``load()`` before use, then run it.

    The plain runtime simply moves the module to the compute device. ComfyUI's runtime lets its
    model manager do that, so our models are offloaded when the rest of the graph needs memory,
    exactly like ComfyUI's own models.
    """

    def __init__(self, module: nn.Module, load_device: torch.device, offload_device: torch.device):
        self.module = module
        self.load_device = load_device
        self.offload_device = offload_device

    def load(self) -> nn.Module:
        """Put the module on the compute device (if it is not there yet) and return it."""
        self.module.to(self.load_device)
        return self.module

    def offload(self) -> None:
        self.module.to(self.offload_device)

    @property
    def device(self) -> torch.device:
        return self.load_device


class Progress:
    """Console progress (tqdm) plus an optional host hook, used as a context manager.

    ``host_update(current, total)`` is called at most every ``host_interval`` seconds and on
    completion, so byte-level progress (downloads) does not flood the websocket. Hosts use the
    hook to raise on Cancel.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "it",
        host_update: Callable[[int, int], None] | None = None,
        host_interval: float = 0.1,
    ):
        from tqdm.auto import tqdm  # tqdm is light, but only the progress path needs it

        is_bytes = unit == "B"
        self.total = total
        self.current = 0
        self._bar = tqdm(
            total=total, desc=desc, unit=unit, unit_scale=is_bytes, unit_divisor=1024,
            leave=False, dynamic_ncols=True,
        )
        self._host_update = host_update
        self._host_interval = host_interval
        self._last_host = 0.0

    def update(self, n: int = 1) -> None:
        self.current += n
        self._bar.update(n)
        if self._host_update is None:
            return
        now = time.monotonic()
        done = self.total is not None and self.current >= self.total
        if done or now - self._last_host >= self._host_interval:
            self._last_host = now
            self._host_update(self.current, self.total or max(self.current, 1))

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TorchRuntime:
    """The runtime used outside ComfyUI: plain torch, tqdm and an explicit models folder."""

    name = "torch"

    def __init__(self, models_dir: str | os.PathLike | None = None,
                 output_dir: str | os.PathLike | None = None):
        self._models_root = Path(models_dir) if models_dir else default_models_root()
        self._output_dir = Path(output_dir or os.environ.get(OUTPUT_DIR_ENV) or "output")

    # -- devices ---------------------------------------------------------------------------
    def torch_device(self) -> torch.device:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")

    def intermediate_device(self) -> torch.device:
        """Where IMAGE/MASK tensors handed between stages live (CPU, as in ComfyUI)."""
        return torch.device("cpu")

    def offload_device(self) -> torch.device:
        return torch.device("cpu")

    # -- folders ---------------------------------------------------------------------------
    @property
    def models_root(self) -> Path:
        return self._models_root

    def model_dirs(self, folder: str) -> list[Path]:
        """Folders searched for models of kind ``folder`` (a key of MODEL_FOLDERS), in order."""
        spec = MODEL_FOLDERS[folder]
        return [self._models_root / name for name in (spec.name, *spec.aliases)]

    def download_dir(self, folder: str) -> Path:
        """The folder new downloads of kind ``folder`` go to."""
        return self.model_dirs(folder)[0]

    def output_dir(self) -> Path:
        return self._output_dir

    def input_dir(self) -> Path:
        return Path(os.environ.get(INPUT_DIR_ENV) or "input")

    # -- memory ----------------------------------------------------------------------------
    def manage(self, module: nn.Module) -> ManagedModel:
        """Hand a freshly loaded (CPU) module to the host's memory management."""
        return ManagedModel(module, self.torch_device(), self.offload_device())

    def free_memory(self) -> None:
        """Release every cached model's device memory (called before training)."""
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- progress, cancel, events ----------------------------------------------------------
    def progress(self, total: int | None, desc: str, unit: str = "it") -> Progress:
        return Progress(total, desc, unit=unit)

    def check_interrupted(self) -> None:
        """Raise if the user asked to stop. Outside ComfyUI only Ctrl-C stops work."""

    def is_cancel(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the user stopping work (here Ctrl-C), not a failure: a training
        run then ends "cancelled" rather than "failed"."""
        return isinstance(exc, KeyboardInterrupt)

    def send_event(self, event: str, data: dict[str, Any]) -> None:
        log.debug("event %s: %s", event, data)

    def save_ui_images(self, images: list, prefix: str) -> list[dict[str, str]]:
        """Store PIL ``images`` where the host's UI can show them; returns their descriptors
        (``{"filename", "subfolder", "type"}`` in ComfyUI). Without a UI: nothing, []."""
        return []

    def ui_image_exists(self, ref: dict[str, Any]) -> bool:
        """Whether the UI can still show ``ref`` (a descriptor `save_ui_images` returned); a
        host's temp folder is emptied on restart, so an old ref may point at nothing. Without
        a UI no ref is shown: False."""
        return False


def default_models_root() -> Path:
    """``$INTENTTUNER_MODELS_DIR``; else ComfyUI's ``models/`` when this pack sits in a ComfyUI
    checkout's ``custom_nodes/``; else ``~/.cache/intenttuner/models``."""
    env = os.environ.get(MODELS_DIR_ENV)
    if env:
        return Path(env).expanduser()
    pack_dir = Path(__file__).resolve().parent.parent
    if pack_dir.parent.name == "custom_nodes" and (pack_dir.parent.parent / "models").is_dir():
        return pack_dir.parent.parent / "models"
    return Path.home() / ".cache" / "intenttuner" / "models"


_current: Any = None


def get_runtime() -> TorchRuntime:
    """The runtime in effect (created on first use)."""
    global _current
    if _current is None:
        _current = TorchRuntime()
    return _current


def set_runtime(rt: Any) -> None:
    """Install ``rt`` (a TorchRuntime or an object with the same methods) as the runtime."""
    global _current
    _current = rt
    log.debug("runtime set to %s", getattr(rt, "name", type(rt).__name__))
