"""LAION aesthetic predictor v2: an image-quality score (about 1 to 10) from a CLIP embedding.

StabilityScore reports it beside identity as its human-preference term. Why this predictor,
of those issue 11 names (the LAION predictor, HPSv2, PickScore):

- size: a 0.9 M-parameter MLP (3.5 MiB) on the CLIP ViT-L/14 image embedding, and ViT-L/14
  (``ViT-L-14.openai``) is already one of the pack's image encoders; HPSv2 and PickScore are
  whole ViT-H/14 CLIP models (about 1 B parameters, 2 GB in fp16) each.
- what it measures: the quality of the image alone, which is what a stability term beside
  identity needs. HPSv2 and PickScore score an image *for a prompt* (preference and prompt
  following mixed), and are the better judges of that: the LAION predictor learnt from
  aesthetic ratings only (SAC, LOGOS, AVA) and ignores the prompt.
- licence: Apache-2.0 (christophschuhmann/improved-aesthetic-predictor). The manifest
  downloads TRL's copy of the file (trl-lib/ddpo-aesthetic-predictor, the one TRL's DDPO
  trainer loads).

The file (``models/aesthetic/sac+logos+ava1-l14-linearMSE.pth``) is a ``torch.save``-d state
dict of the MLP ``layers``: Linear(768, 1024), Dropout(0.2), Linear(1024, 128), Dropout(0.2),
Linear(128, 64), Dropout(0.1), Linear(64, 16), Linear(16, 1), with no activations (as
trained). It is read with `safe_load` (``weights_only``); the widths come from the tensor
shapes. The recipe (the repository's ``simple_inference.py``): the CLIP ViT-L/14 image
embedding, L2-normalised, through the MLP.

    predictor = FAMILY.load(models_dir / "aesthetic" / "sac+logos+ava1-l14-linearMSE.pth")
    scorer = AestheticScorer(predictor, clip_vit_l_14)   # an open_clip OpenClipEncoder
    scorer.score_images(images)                           # (N,) float32, mostly 1..10
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..errors import InputError, WeightsCorruptError
from ..runtime import ManagedModel, get_runtime
from ..weights import safe_load
from .base import Family, check_family
from .embedding import device_of

log = logging.getLogger(__name__)

LINEAR_LAYERS = (0, 2, 4, 6, 7)  # indexes of the Linear layers in ``layers``
DROPOUTS = (0.2, 0.2, 0.1)  # after the first three Linear layers (inactive in eval)
EXPECTED_NAMES = frozenset(f"layers.{i}.{kind}" for i in LINEAR_LAYERS
                           for kind in ("weight", "bias"))
# CLIP models whose image embeddings the released predictors were trained on, by width.
CLIP_FOR_WIDTH = {768: "ViT-L-14"}


def sniff(tensor_names: Iterable[str]) -> bool:
    """True for the LAION aesthetic MLP: exactly the five Linear layers of ``layers``."""
    return set(tensor_names) == EXPECTED_NAMES


class AestheticMLP(nn.Module):
    """The predictor's MLP, module for module as trained (so its state dict keys match)."""

    def __init__(self, widths: Sequence[int]):
        super().__init__()
        linears = [nn.Linear(a, b) for a, b in itertools.pairwise(widths)]
        self.layers = nn.Sequential(
            linears[0], nn.Dropout(DROPOUTS[0]), linears[1], nn.Dropout(DROPOUTS[1]),
            linears[2], nn.Dropout(DROPOUTS[2]), linears[3], linears[4],
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def load(path: str | Path) -> AestheticPredictor:
    """Load the aesthetic predictor file ``path`` (``.pth`` or ``.safetensors``).

    Runs in fp32 on every device: the MLP is tiny. Raises WrongModelFamilyError for a file of
    another kind of model, WeightsCorruptError for an unreadable one or one whose layer widths
    do not chain.
    """
    path = Path(path)
    state = safe_load.load_state_dict(path)
    check_family(FAMILY, path, state.keys())
    widths = layer_widths({name: tuple(t.shape) for name, t in state.items()}, path)
    model = AestheticMLP(widths)
    model.load_state_dict({name: t.float() for name, t in state.items()}, strict=True)
    model.eval()
    name = path.name[: -len(path.suffix)] if path.suffix else path.name
    log.info("loaded aesthetic predictor %s (%s -> 1) from %s", name,
             " -> ".join(map(str, widths[:-1])), path)
    return AestheticPredictor(get_runtime().manage(model), name, widths[0])


def layer_widths(shapes: Mapping[str, Sequence[int]], path: Path) -> tuple[int, ...]:
    """(input, hidden..., 1): the widths the Linear layers' shapes chain through."""
    weights = [tuple(shapes[f"layers.{i}.weight"]) for i in LINEAR_LAYERS]
    biases = [tuple(shapes[f"layers.{i}.bias"]) for i in LINEAR_LAYERS]
    widths = [weights[0][-1] if weights[0] else 0]
    for weight, bias in zip(weights, biases, strict=True):
        if len(weight) != 2 or weight[1] != widths[-1] or bias != (weight[0],):
            break  # this layer does not take the previous one's output
        widths.append(weight[0])
    if len(widths) != len(LINEAR_LAYERS) + 1 or widths[-1] != 1:
        raise WeightsCorruptError(
            f"{path} has the aesthetic predictor's tensor names but shapes that do not form "
            f"its MLP (weights {weights}, one score out). Download it again."
        )
    return tuple(widths)


class AestheticPredictor:
    """A loaded aesthetic MLP: scores for CLIP image embeddings of width ``input_dim``."""

    def __init__(self, managed: ManagedModel, name: str, input_dim: int):
        self._managed = managed
        self.name = name  # the file's stem, e.g. "sac+logos+ava1-l14-linearMSE"
        self.input_dim = input_dim  # 768: CLIP ViT-L/14 image embeddings

    def score_embeddings(self, vectors: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Scores (N,) float32 CPU for image embeddings ``vectors`` (N, ``input_dim``).

        The vectors are L2-normalised first, as the predictor was trained (unit vectors, as the
        pack's encoders return them, are unchanged by it).
        """
        vectors = torch.as_tensor(vectors, dtype=torch.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.input_dim:
            raise InputError(
                f"the aesthetic predictor {self.name} scores (N, {self.input_dim}) image "
                f"embeddings, got shape {tuple(vectors.shape)}.")
        if len(vectors) == 0:
            return torch.zeros(0, dtype=torch.float32)
        model = self._managed.load()
        with torch.inference_mode():
            unit = nn.functional.normalize(vectors, dim=-1).to(device_of(model))
            return model(unit)[:, 0].float().cpu()


class AestheticScorer:
    """An aesthetic predictor with the CLIP encoder that feeds it: images in, scores out."""

    def __init__(self, predictor: AestheticPredictor, clip_encoder: Any):
        if clip_encoder.embed_dim != predictor.input_dim:
            wanted = CLIP_FOR_WIDTH.get(predictor.input_dim, f"{predictor.input_dim}-value")
            raise InputError(
                f"the aesthetic predictor needs {wanted} image embeddings "
                f"({predictor.input_dim} values); the connected image encoder "
                f"{clip_encoder.arch} gives {clip_encoder.embed_dim}: load ViT-L-14.openai "
                "in Load Image Encoder and connect that."
            )
        self.predictor = predictor
        self.encoder = clip_encoder
        self.name = predictor.name
        self.clip = clip_encoder.arch  # e.g. "ViT-L-14"

    def score_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> torch.Tensor:
        """Aesthetic scores (N,) float32 of PIL images of any mode and size (embedded by the
        CLIP encoder ``batch_size`` at a time, with its progress and Cancel)."""
        return self.predictor.score_embeddings(self.encoder.embed_images(images, batch_size))


def exercise(predictor: AestheticPredictor) -> str:
    """Score four random unit vectors; describe the scores."""
    generator = torch.Generator().manual_seed(0)
    scores = predictor.score_embeddings(torch.randn(4, predictor.input_dim, generator=generator))
    return (f"{predictor.name}: 4 scores of {predictor.input_dim}-value embeddings, "
            f"{float(scores.min()):.2f} to {float(scores.max()):.2f}")


FAMILY = Family(
    name="aesthetic",
    title="LAION aesthetic predictor (human-preference quality)",
    folder="aesthetic",
    packages=(),
    load=load,
    sniff=sniff,
    exercise=exercise,
)
