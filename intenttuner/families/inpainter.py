"""LaMa, the learned object-removal model, loaded through spandrel (which ComfyUI ships).

LaMa ("Resolution-robust Large Mask Inpainting with Fourier Convolutions", Suvorov et al. 2021)
fills a masked region from the whole image's context; it is what object-removal tools use. The
"big-lama" generator has one size (51 M parameters, 0.2 GB in fp32): spandrel's `LaMa` class
fixes every width and depth, so there is nothing to infer from tensor shapes beyond the channels.

Weights live in ``models/inpaint``, the folder ComfyUI's inpainting packs use. What is found
there in the wild, and what this loader does with it:

* ``big-lama.safetensors`` (state-dict conversions published on the Hub): loaded. The manifest's
  default is such a file.
* ``.pth``/``.ckpt`` state dicts, including the original training checkpoint (``best.ckpt``,
  PyTorch Lightning, tensors under ``state_dict``): loaded through
  ``torch.load(weights_only=True)``; a checkpoint holding other Python objects is refused.
* ``big-lama.pt``, the file comfyui-inpaint-nodes and the LaMa remover packs link to: a
  TorchScript archive (a zip with ``code/`` and ``constants.pkl``). Those packs open it with
  ``torch.jit.load``, which compiles and can run the code inside the file, and torch refuses it
  with ``weights_only=True``. It is refused with a message that names the safetensors file to
  use instead (`TORCHSCRIPT_HINT`).

Tensor names differ between those files: the Lightning checkpoint and the TorchScript archive
prefix the generator with ``generator.model.``, spandrel with ``model.model.``, and some
conversions strip it to ``model.``; all are renamed to spandrel's names, other tensors
(discriminator, losses) are dropped, and the weights are then loaded strictly.

    lama = FAMILY.load(models_dir / "inpaint" / "big-lama.safetensors")
    filled = lama.inpaint(images, masks)  # [B, 3, H, W] in [0, 1]; masks [B, 1, H, W] in {0, 1}
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import InputError, WeightsCorruptError
from ..runtime import ManagedModel, get_runtime
from ..weights.folders import SAFE_FILE_EXTENSIONS
from ..weights.safe_load import load_state_dict, read_safetensors_header
from .base import Family, Package, check_family

log = logging.getLogger(__name__)

# spandrel's names for the generator's tensors, and the prefixes other files use for them.
SPANDREL_PREFIX = "model.model."
_PREFIXES = ("generator.model.", SPANDREL_PREFIX, "model.")
_MARKER = "1.bn_l.running_mean"  # the first Fourier block's norm: present in every LaMa
MULTIPLE = 8  # LaMa downsamples three times: height and width must be multiples of 8
MIN_SIDE = 16  # spandrel's size requirement for LaMa
PRECISIONS = ("auto", "fp32")  # LaMa runs in fp32 only (`load_inpainter`); auto = fp32
DEFAULT_FILE = "big-lama.safetensors"
TORCHSCRIPT_HINT = (
    f"Use a safetensors copy instead: pick {DEFAULT_FILE} in Load Inpaint Model (it downloads "
    "on first use), or put a state-dict conversion of big-lama in models/inpaint.")


@dataclass
class LamaModel:
    """A loaded LaMa generator (spandrel's module, fp32, on the CPU until used).

    `inpaint` takes batches: ``images`` [B, 3, H, W] float in [0, 1], ``masks`` [B, 1, H, W]
    with 1 where to fill; H and W multiples of 8 (`MULTIPLE`), at least 16. It returns the
    filled images (known pixels are passed through by LaMa itself) on the CPU, float32.
    Spandrel's descriptor call accepts one image at a time, so the module is called directly.
    """

    module: torch.nn.Module = field(repr=False)
    source: Path
    _managed: ManagedModel | None = field(default=None, repr=False, compare=False)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.module.parameters()).dtype

    def managed(self) -> ManagedModel:
        """The runtime handle of the module, created once (see `BaseModel.managed`)."""
        if self._managed is None:
            self._managed = get_runtime().manage(self.module)
        return self._managed

    def inpaint(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3 or masks.shape != (
                images.shape[0], 1, *images.shape[2:]):
            raise InputError(f"LaMa takes images [B, 3, H, W] and masks [B, 1, H, W]; got "
                             f"{tuple(images.shape)} and {tuple(masks.shape)}.")
        height, width = images.shape[2:]
        if height % MULTIPLE or width % MULTIPLE or min(height, width) < MIN_SIDE:
            raise InputError(f"LaMa needs sides that are multiples of {MULTIPLE} and at least "
                             f"{MIN_SIDE} px; got {width}x{height}. Pad the images first.")
        module = self.managed().load()
        device = next(module.parameters()).device
        with torch.inference_mode():
            out = module(images.to(device, self.dtype), masks.to(device, self.dtype))
        return out.float().clamp(0, 1).cpu()


def load_inpainter(path: Path, precision: str = "auto") -> LamaModel:
    """Load a LaMa checkpoint (see the module docstring for the formats).

    ``precision``: "auto" or "fp32" (LaMa runs in fp32 only: its Fourier convolutions lose too
    much in 16 bits, and at 0.2 GB fp32 costs little). Raises WeightsNotFoundError,
    WeightsCorruptError (TorchScript, truncated, incomplete), WrongModelFamilyError or InputError.
    """
    FAMILY.require()
    if precision not in PRECISIONS:
        raise InputError(f"LaMa runs in fp32 only (precision '{precision}' was asked for): its "
                         "Fourier convolutions lose too much precision in 16 bits. Pick auto "
                         "or fp32; the model is only 0.2 GB.")
    path = Path(path)
    if is_torchscript(path):
        raise WeightsCorruptError(
            f"{path} is a TorchScript program, not a plain checkpoint: opening it would run the "
            f"code inside it, so it is not opened. {TORCHSCRIPT_HINT}")
    state = None
    if path.suffix.lower() in SAFE_FILE_EXTENSIONS:
        names = list(read_safetensors_header(path)[0])  # the header tells, before 0.2 GB is read
    else:
        state = load_state_dict(path)
        names = list(state)
    check_family(FAMILY, path, names)
    if state is None:
        state = load_state_dict(path)
    return LamaModel(module=_build(spandrel_state_dict(state), path), source=path)


def sniff(names: Iterable[str]) -> bool:
    """True for LaMa generators (and training checkpoints that contain one), in any of the
    tensor layouts the module docstring lists."""
    names = set(names)
    return any(prefix + _MARKER in names for prefix in _PREFIXES)


def spandrel_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The generator's tensors of ``state`` under spandrel's names (``model.model.*``)."""
    prefix = next(p for p in _PREFIXES if p + _MARKER in state)
    return {SPANDREL_PREFIX + k.removeprefix(prefix): v for k, v in state.items()
            if k.startswith(prefix)}


def is_torchscript(path: Path) -> bool:
    """True if ``path`` is a TorchScript archive (``torch.jit.save``): a zip whose top folder
    holds ``constants.pkl`` and compiled ``code/``. Checked by listing the zip, nothing read."""
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def _build(state: dict[str, torch.Tensor], path: Path) -> torch.nn.Module:
    from spandrel.architectures.LaMa import LaMaArch

    try:
        descriptor = LaMaArch().load(state)  # builds the module and loads it strictly
    except (KeyError, RuntimeError) as exc:
        detail = str(exc).splitlines()[0][:300]
        raise WeightsCorruptError(f"{path} is not a complete big-lama generator ({detail}). "
                                  "Download the file again, or use big-lama.safetensors.") from None
    log.info("loaded LaMa from %s (%.1f M parameters)", path.name,
             sum(p.numel() for p in descriptor.model.parameters()) / 1e6)
    return descriptor.model.float().eval()


def exercise(model: LamaModel) -> str:
    """Fill a 24x16 hole in a 64x48 synthetic image; describe the result."""
    import numpy as np

    from .base import synthetic_image

    pixels = np.asarray(synthetic_image(64, 48), dtype=np.float32) / 255
    image = torch.from_numpy(pixels).permute(2, 0, 1)[None]
    mask = torch.zeros(1, 1, 48, 64)
    mask[:, :, 16:32, 20:44] = 1
    out = model.inpaint(image, mask)
    changed = int(((out - image).abs().amax(1) > 1 / 255).sum())
    return f"LaMa filled {changed} of {int(mask.sum())} masked px of a 64x48 image ({model.dtype})"


FAMILY = Family(
    name="inpainter",
    title="LaMa inpainting model",
    folder="inpaint",
    packages=(Package("spandrel", "spandrel"),),
    load=load_inpainter,
    sniff=sniff,
    exercise=exercise,
)
