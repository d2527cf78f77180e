"""DINO self-supervised ViT: identity features, the standard for subject fidelity.

DreamBooth's benchmark (Ruiz et al., CVPR 2023, section 4.1) scores subject fidelity as the
cosine similarity of DINO ViT-S/16 CLS embeddings of generated and real images, and prefers it
to CLIP-I: DINO is trained self-supervised to tell images apart, so unlike CLIP (trained to
match captions) it does not ignore the differences between two subjects of the same class. This
is the encoder StabilityScore uses by default; an open_clip encoder also plugs in (CLIP-I).

A model is a Hugging Face ViT folder in ``models/identity_encoders/<name>/``: ``config.json``
(``model_type`` "vit"), ``model.safetensors`` or ``pytorch_model.bin`` and, optionally,
``preprocessor_config.json`` (its ``image_mean``/``image_std`` are used). The default is
``facebook/dino-vits16`` (the safetensors conversion on its ``refs/pr/1``). Weights are read with
`safe_load` (a ``.bin`` only through ``torch.load(weights_only=True)``), a ``ViTModel`` is built
from the config without its pooler (DINO's pooler was never trained: the embedding is the CLS
token of the last hidden state) and filled with a strict load.

Preprocessing follows the DINO/DreamBooth evaluation protocol (DINO's ``eval_linear.py``):
resize the shorter side to 256/224 of the model's input size (bicubic), centre-crop the input
size, normalise with ImageNet's mean and std.

    enc = FAMILY.load(models_dir / "identity_encoders" / "dino-vits16")
    vectors = enc.embed_images(crops)   # (N, 384) float32, unit length
    similarity = vectors @ vectors.T
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import WeightsCorruptError, WeightsNotFoundError, WrongModelFamilyError
from ..imageio import to_rgb_pil
from ..runtime import ManagedModel, get_runtime
from ..weights import safe_load
from .base import (
    Family,
    Package,
    check_family,
    read_json_object,
    resolve_dtype,
    synthetic_image,
)
from .embedding import device_of, embed_in_batches

log = logging.getLogger(__name__)

MODEL_TYPE = "vit"
SOURCE = "facebook/dino-vits16"
REDOWNLOAD = f"Download the identity encoder folder again (e.g. {SOURCE})."
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_RATIO = 256 / 224  # DINO evaluates 224 px crops of images resized to 256 px
_PREFIX = "vit."  # ViTFor* checkpoints nest the backbone under it, beside their task head
_CLS = "embeddings.cls_token"
_FIRST_QUERY = ("encoder.layer.0.attention.attention.query.weight",  # the Hub's layout
                "layers.0.attention.q_proj.weight")  # transformers 5's module names
# transformers 5 renamed ViT's modules; Hub checkpoints (and what save_pretrained writes) keep
# the old names. These are the renames of transformers' own ViTModel conversion mapping
# (transformers/conversion_mapping.py), in its order; used only when the installed ViTModel has
# the new names, so transformers 4 loads the files as they are.
_LEGACY_RENAMES = (
    (r"encoder\.layer\.", "layers."),
    (r"attention\.query", "q_proj"),
    (r"attention\.key", "k_proj"),
    (r"attention\.value", "v_proj"),
    (r"attention\.output\.dense", "attention.o_proj"),
    (r"intermediate\.dense", "mlp.fc1"),
    (r"output\.dense", "mlp.fc2"),
)


def sniff(tensor_names: Iterable[str]) -> bool:
    """True for ViT weights (a CLS token and the first block's attention query), bare or under
    ``vit.``, in the Hub's layout or transformers 5's."""
    names = {n.removeprefix(_PREFIX) for n in tensor_names}
    return _CLS in names and any(q in names for q in _FIRST_QUERY)


def load(path: str | Path, precision: str = "auto") -> DinoEncoder:
    """Load the ViT folder ``path`` (a file inside it is accepted too).

    ``precision``: ``"auto"`` (fp16 on CUDA, fp32 elsewhere), ``"fp32"``, ``"fp16"``, ``"bf16"``.
    Raises WrongModelFamilyError for a file or folder of another kind of model,
    WeightsCorruptError for missing, unreadable or mismatched files.
    """
    FAMILY.require()
    from transformers import ViTConfig, ViTModel

    folder = _model_folder(Path(path))
    config = read_json_object(folder / "config.json", REDOWNLOAD)
    weights = _weights_file(folder)
    raw = safe_load.load_state_dict(weights)
    check_family(FAMILY, weights, raw.keys())
    state = backbone_state(raw)
    del raw
    if config.get("model_type") != MODEL_TYPE:
        raise WrongModelFamilyError(
            f"{folder} holds a '{config.get('model_type')}' model, not a ViT: identity encoders "
            f"here are DINO ViT folders (model_type 'vit'), e.g. {SOURCE}."
        )
    vit_config = ViTConfig.from_dict(config)
    side = _side(vit_config.image_size, folder)  # before building: ViT takes non-square too
    model = ViTModel(vit_config, add_pooling_layer=False)
    _load_weights(model, state, weights)
    del state
    runtime = get_runtime()
    dtype = resolve_dtype(precision, runtime.torch_device())
    model.to(dtype).eval()
    mean, std = _normalisation(folder / "preprocessor_config.json")
    log.info("loaded DINO identity encoder %s (%s) from %s", folder.name, dtype, folder)
    return DinoEncoder(runtime.manage(model), folder.name, int(vit_config.hidden_size), side,
                       mean, std, dtype)


def _model_folder(path: Path) -> Path:
    """The model folder ``path`` names; a single weight file is refused, naming the family it
    belongs to when it is another kind of model."""
    if path.is_dir():
        return path
    if path.is_file() and (path.parent / "config.json").is_file():
        return path.parent
    if not path.is_file():
        raise WeightsNotFoundError(f"Identity encoder folder not found: {path}")
    check_family(FAMILY, path, safe_load.tensor_names(path))
    raise WeightsCorruptError(
        f"{path} is a single ViT weight file; identity encoders are Hugging Face folders. Put "
        f"it in models/{FAMILY.folder}/<name>/ with the config.json and "
        f"preprocessor_config.json of its model, e.g. all files of {SOURCE}."
    )


def _weights_file(folder: Path) -> Path:
    found = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if found is None:
        raise WeightsCorruptError(
            f"{folder} has a config.json but no weights ({' or '.join(WEIGHT_FILES)}). The "
            f"download is incomplete: download the identity encoder folder again."
        )
    return found


def backbone_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ViT backbone's tensors under ``ViTModel``'s names: the ``vit.`` prefix of ViTFor*
    checkpoints stripped (their task heads dropped), the untrained pooler dropped."""
    if any(n.startswith(_PREFIX) for n in state):
        state = {n.removeprefix(_PREFIX): t for n, t in state.items() if n.startswith(_PREFIX)}
    return {n: t for n, t in state.items() if not n.startswith("pooler.")}


def to_model_names(state: dict[str, torch.Tensor],
                   model_names: set[str]) -> dict[str, torch.Tensor]:
    """``state`` renamed to the installed ViTModel's names (see ``_LEGACY_RENAMES``)."""
    if set(state) <= model_names:
        return state
    renamed = {}
    for name, tensor in state.items():
        for pattern, replacement in _LEGACY_RENAMES:
            name = re.sub(pattern, replacement, name)
        renamed[name] = tensor
    return renamed


def _load_weights(model: torch.nn.Module, state: dict, path: Path) -> None:
    state = to_model_names(state, set(model.state_dict()))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = "; ".join(line.strip() for line in str(exc).splitlines()[1:3]) or str(exc)
        raise WeightsCorruptError(
            f"{path} does not fit the ViT its config.json describes ({detail}). Download the "
            "folder's config.json and weights again, from the same model."
        ) from None


def _normalisation(path: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``image_mean``/``image_std`` of ``preprocessor_config.json``; ImageNet's without one."""
    if not path.is_file():
        return IMAGENET_MEAN, IMAGENET_STD
    config = read_json_object(path, REDOWNLOAD)
    values = [config.get("image_mean", IMAGENET_MEAN), config.get("image_std", IMAGENET_STD)]
    for value in values:
        if not (isinstance(value, list | tuple) and len(value) == 3
                and all(isinstance(v, int | float) for v in value)):
            raise WeightsCorruptError(
                f"{path}: image_mean and image_std must be lists of 3 numbers, got {value!r}.")
    mean, std = (tuple(float(v) for v in value) for value in values)
    if min(std) <= 0:
        raise WeightsCorruptError(f"{path}: image_std must be positive, got {list(std)}.")
    return mean, std


def _side(image_size: object, folder: Path) -> int:
    """The square input side of ``config.image_size`` (an int, or a pair of equal ints)."""
    sides = set(image_size) if isinstance(image_size, list | tuple) else {image_size}
    if len(sides) != 1 or not isinstance(next(iter(sides)), int):
        raise WeightsCorruptError(
            f"{folder}/config.json: image_size must be one number (square inputs), got "
            f"{image_size!r}.")
    return sides.pop()


def dino_transform(image: Image.Image, size: int, mean: Sequence[float],
                   std: Sequence[float]) -> torch.Tensor:
    """The DINO evaluation transform: (3, size, size) float32 pixels of ``image`` (any PIL mode,
    alpha composited on white), normalised.

    Same arithmetic as torchvision's ``Resize(round(size * 256 / 224), BICUBIC)``,
    ``CenterCrop(size)``, ``ToTensor()``, ``Normalize(mean, std)`` on PIL images, without
    importing torchvision.
    """
    rgb = to_rgb_pil(image)
    target = round(size * RESIZE_RATIO)
    width, height = rgb.size
    if width <= height:
        resized = (target, int(target * height / width))
    else:
        resized = (int(target * width / height), target)
    rgb = rgb.resize(resized, Image.BICUBIC)
    left = int(round((resized[0] - size) / 2.0))
    top = int(round((resized[1] - size) / 2.0))
    rgb = rgb.crop((left, top, left + size, top + size))
    pixels = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (pixels - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


class DinoEncoder:
    """A loaded DINO ViT: batched, L2-normalised CLS embeddings of images.

    Embeddings are (N, D) float32 CPU tensors with unit L2 norm (D = ``embed_dim``: 384 for
    ViT-S/16), so cosine similarity is a plain dot product. Images only: there is no text
    tower (controllability needs an open_clip encoder).
    """

    def __init__(self, managed: ManagedModel, arch: str, embed_dim: int, image_size: int,
                 mean: Sequence[float], std: Sequence[float], dtype: torch.dtype):
        self._managed = managed
        self.arch = arch  # the model folder's name, e.g. "dino-vits16"
        self.embed_dim = embed_dim
        self.image_size = image_size  # side of the square crop the model sees, in pixels
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.dtype = dtype

    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> torch.Tensor:
        """Embed PIL images of any mode and size (see `dino_transform`). Returns (N, D)
        float32, unit length; progress and Cancel per batch."""
        return embed_in_batches(self._managed, images, batch_size, "Embedding identity",
                                self._encode, self.embed_dim)

    def _encode(self, model: torch.nn.Module, images: list) -> torch.Tensor:
        pixels = torch.stack([dino_transform(image, self.image_size, self.mean, self.std)
                              for image in images])
        output = model(pixel_values=pixels.to(device_of(model), self.dtype))
        return output.last_hidden_state[:, 0]


def exercise(encoder: DinoEncoder) -> str:
    """Embed a synthetic image; describe the embedding."""
    vectors = encoder.embed_images([synthetic_image()])
    return (f"{encoder.arch}: image {tuple(vectors.shape)}, CLS of a "
            f"{encoder.image_size}x{encoder.image_size} crop")


FAMILY = Family(
    name="identity_encoder",
    title="DINO self-supervised ViT (identity features)",
    folder="identity_encoders",
    packages=(Package("transformers", "transformers"),),
    load=load,
    sniff=sniff,
    exercise=exercise,
)
