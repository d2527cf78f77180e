"""Reward models trained from people's good/bad marks (Lee et al. 2023, stage 2).

The paper's reward function reads CLIP's image and text features and predicts whether a person
marked the image good for its prompt. Here that is a small MLP on the unit-length embeddings of
an open_clip encoder (`image_encoder.OpenClipEncoder`): the features are ``concat(img, txt,
img * txt)`` (the product lets a small MLP see image-text agreement directly, as CLIP's own
cosine does), then two hidden layers, then one logit; ``sigmoid(logit)`` is P(good).

A reward model only means something with the encoder it was trained on, so its file records that
encoder's signature (`encoder_signature`: architecture, pretrained tag, width, and a probe: the
first values of its embedding of a fixed text, which tells two encoders of the same
architecture apart). `RewardModel.check_encoder` refuses any other.

Files are safetensors in ``models/reward_models`` written by `intenttuner.reward.model_file`
(Train Reward Model): tensors ``reward_mlp.layers.{0,3,6}.{weight,bias}`` and ``reward_mlp.{image,text}_{mean,std}`` (the
input standardisation), metadata strings
``format`` (`FORMAT`), ``embed_dim``, ``hidden``, ``dropout``, ``encoder`` (JSON) plus how it
was trained.

    model = FAMILY.load(models_dir / "reward_models" / "my_reward_model.safetensors")
    model.check_encoder(clip)                           # the encoder it was trained with
    p_good = model.score_embeddings(clip.embed_images(images), clip.embed_texts(prompts))
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InputError, WeightsCorruptError
from ..runtime import ManagedModel, get_runtime
from ..weights import safe_load
from .base import Family, check_family
from .embedding import device_of

log = logging.getLogger(__name__)

FORMAT = "intenttuner.reward_model.v1"  # the ``format`` metadata value of our files
PREFIX = "reward_mlp."  # tensor name prefix: no other family's checkpoint uses it
LINEAR_LAYERS = (0, 3, 6)  # indexes of the Linear layers in ``RewardMLP.layers``
STANDARDISATION = tuple(f"{kind}_{stat}" for kind in ("image", "text") for stat in ("mean", "std"))
EXPECTED_NAMES = frozenset([*(f"{PREFIX}layers.{i}.{kind}" for i in LINEAR_LAYERS
                              for kind in ("weight", "bias")),
                            *(PREFIX + name for name in STANDARDISATION)])
STD_FLOOR = 1e-4  # a dimension that never varies in training is not divided by ~0
PROBE_TEXT = "a photo"
PROBE_VALUES = 8
# Largest difference between a recorded and a measured probe value of the same encoder. fp16
# (ComfyUI on a GPU) against fp32 (CPU) changes unit-vector components by about 1e-3; another
# encoder's components differ by about their own size (~1/sqrt(D), 0.036 for D = 768), so all
# eight staying within 0.02 by chance is about 0.3^8, 1e-4.
PROBE_TOLERANCE = 0.02


def sniff(tensor_names: Iterable[str]) -> bool:
    """True for our reward MLP: exactly its three Linear layers and its standardisation
    buffers under ``reward_mlp.``."""
    return set(tensor_names) == EXPECTED_NAMES


class RewardMLP(nn.Module):
    """``concat(img, txt, img * txt)`` (3 x ``embed_dim``) -> hidden -> hidden -> 1 logit.

    Inputs are (N, D) unit-length CLIP image and text embeddings; the output is (N,) logits
    (P(good) = sigmoid). Each input is first standardised with the per-dimension mean and
    spread of the training embeddings (buffers, saved with the weights; `set_standardisation`):
    CLIP embeddings of one kind share a large common direction (real CLIP images have a mean
    cosine of about 0.5 between them, the tiny test encoder's 0.98), which would otherwise
    drown the differences the marks depend on. Dropout acts in training only.
    """

    def __init__(self, embed_dim: int, hidden: int = 128, dropout: float = 0.2):
        super().__init__()
        self.embed_dim = embed_dim
        self.hidden = hidden
        self.dropout = dropout
        for kind in ("image", "text"):
            self.register_buffer(f"{kind}_mean", torch.zeros(embed_dim))
            self.register_buffer(f"{kind}_std", torch.ones(embed_dim))
        self.layers = nn.Sequential(
            nn.Linear(3 * embed_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def set_standardisation(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> None:
        """Standardise inputs by these (training) embeddings' mean and spread per dimension."""
        with torch.no_grad():
            for kind, vectors in (("image", image_emb), ("text", text_emb)):
                getattr(self, f"{kind}_mean").copy_(vectors.mean(dim=0))
                spread = vectors.std(dim=0) if len(vectors) > 1 else torch.ones(self.embed_dim)
                getattr(self, f"{kind}_std").copy_(spread.clamp_min(STD_FLOOR))

    def forward(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        image = (image_emb - self.image_mean) / self.image_std
        text = (text_emb - self.text_mean) / self.text_std
        return self.layers(torch.cat([image, text, image * text], dim=-1))[..., 0]


def encoder_signature(encoder: Any) -> dict:
    """What identifies an open_clip encoder: ``{"arch", "tag", "embed_dim", "probe"}``; the
    probe is the first `PROBE_VALUES` values of its embedding of `PROBE_TEXT`, rounded."""
    probe = encoder.embed_texts([PROBE_TEXT])[0, :PROBE_VALUES]
    return {"arch": encoder.arch, "tag": encoder.tag, "embed_dim": int(encoder.embed_dim),
            "probe": [round(float(v), 5) for v in probe]}


def describe_encoder(signature: Mapping[str, Any]) -> str:
    """``"ViT-B-32.laion2b_s34b_b79k (512 values)"``: an encoder as messages name it."""
    tag = signature.get("tag")
    name = f"{signature.get('arch')}.{tag}" if tag else str(signature.get("arch"))
    return f"{name} ({signature.get('embed_dim')} values)"


def serialise(mlp: RewardMLP, metadata: Mapping[str, str]) -> bytes:
    """``mlp`` as safetensors bytes: its tensors under `PREFIX` and ``metadata`` (strings; must
    hold ``encoder``, a JSON `encoder_signature`) plus the architecture keys `load` reads."""
    from safetensors.torch import save

    bad = sorted(k for k, v in metadata.items() if not isinstance(v, str))
    if bad:
        raise ValueError(f"safetensors metadata values must be strings: {', '.join(bad)}")
    if "encoder" not in metadata:
        raise ValueError("reward model metadata needs 'encoder' (a JSON encoder_signature)")
    state = {PREFIX + name: t.detach().to("cpu").float().contiguous()
             for name, t in mlp.state_dict().items()}
    return save(state, {**metadata, "format": FORMAT, "embed_dim": str(mlp.embed_dim),
                        "hidden": str(mlp.hidden), "dropout": str(mlp.dropout)})


def load(path: str | Path) -> RewardModel:
    """Load the reward model file ``path`` (a ``.safetensors`` written by Train Reward Model).

    Another family's file -> WrongModelFamilyError (naming its folder); a damaged file, or one
    whose metadata is missing or does not fit its tensors -> WeightsCorruptError.
    """
    path = Path(path)
    state = safe_load.load_state_dict(path)
    check_family(FAMILY, path, state.keys())
    if path.suffix != ".safetensors":
        raise WeightsCorruptError(f"{path} has a reward model's tensor names but is not a "
                                  ".safetensors file; train the reward model again.")
    _, metadata = safe_load.read_safetensors_header(path)
    stem = path.name[: -len(path.suffix)]
    mlp = _mlp_for(state, metadata, path)
    mlp.load_state_dict({name[len(PREFIX):]: t.float() for name, t in state.items()})
    model = build(mlp, stem, metadata, where=str(path))
    log.info("loaded reward model %s (%d -> %d -> 1, for %s) from %s", stem, 3 * mlp.embed_dim,
             mlp.hidden, describe_encoder(model.encoder), path)
    return model


def _mlp_for(state: Mapping[str, torch.Tensor], metadata: Mapping[str, str],
             path: Path) -> RewardMLP:
    """An empty `RewardMLP` of the widths the tensors have, checked against the metadata."""
    shapes = {name: tuple(t.shape) for name, t in state.items()}
    first = shapes[f"{PREFIX}layers.0.weight"]
    hidden, features = (first if len(first) == 2 else (0, 0))
    expected = {
        f"{PREFIX}layers.0.weight": (hidden, features), f"{PREFIX}layers.0.bias": (hidden,),
        f"{PREFIX}layers.3.weight": (hidden, hidden), f"{PREFIX}layers.3.bias": (hidden,),
        f"{PREFIX}layers.6.weight": (1, hidden), f"{PREFIX}layers.6.bias": (1,),
        **{PREFIX + name: (features // 3,) for name in STANDARDISATION},
    }
    if metadata.get("format") != FORMAT:
        raise WeightsCorruptError(
            f"{path} has a reward model's tensors but not its metadata (format "
            f"{metadata.get('format')!r}, expected {FORMAT!r}): it was not written by Train "
            "Reward Model, or by a newer version of this pack. Train the reward model again.")
    if shapes != expected or features % 3 or not hidden or \
            metadata.get("embed_dim") != str(features // 3):
        raise WeightsCorruptError(
            f"{path} has shapes that do not form a reward model ({shapes}; metadata embed_dim "
            f"{metadata.get('embed_dim')!r}). Train the reward model again.")
    try:
        dropout = float(metadata.get("dropout", "0"))
    except ValueError:
        dropout = 0.0  # only used in training; a loaded model scores in eval mode
    return RewardMLP(features // 3, hidden, dropout if 0 <= dropout < 1 else 0.0)


def build(mlp: RewardMLP, name: str, metadata: Mapping[str, str],
          where: str = "the trained reward model") -> RewardModel:
    """A `RewardModel` around ``mlp`` (put in eval mode), e.g. one just trained."""
    try:
        encoder = json.loads(metadata["encoder"])
        ok = (isinstance(encoder, dict) and encoder.get("embed_dim") == mlp.embed_dim
              and isinstance(encoder.get("probe"), list))
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise WeightsCorruptError(
            f"{where} does not record the image encoder it was trained with (metadata "
            f"'encoder' {metadata.get('encoder')!r}), so it cannot be checked against the "
            "connected one. Train the reward model again.")
    mlp.eval()
    return RewardModel(get_runtime().manage(mlp), name, dict(metadata), encoder)


class RewardModel:
    """A loaded reward model: P(good) for (image, prompt) embedding pairs of its encoder."""

    def __init__(self, managed: ManagedModel, name: str, metadata: dict[str, str],
                 encoder: dict):
        self._managed = managed
        self.name = name  # the file's stem, e.g. "my_reward_model"
        self.embed_dim: int = encoder["embed_dim"]
        self.metadata = metadata  # the file's metadata strings (how it was trained)
        self.encoder = encoder  # the signature of the encoder it was trained with

    def module(self) -> RewardMLP:
        """The MLP itself, on the compute device (for scoring outside `score_embeddings`)."""
        return self._managed.load()

    def logits(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """(N,) float32 CPU logits (sigmoid -> P(good)) of (N, D) image and text embeddings;
        both are L2-normalised first, as in training."""
        image_emb = self._check(image_emb, "image")
        text_emb = self._check(text_emb, "text")
        if len(image_emb) != len(text_emb):
            raise InputError(f"reward model {self.name} scores image-text pairs: got "
                             f"{len(image_emb)} image and {len(text_emb)} text embeddings.")
        if len(image_emb) == 0:
            return torch.zeros(0, dtype=torch.float32)
        model = self._managed.load()
        device = device_of(model)
        with torch.inference_mode():
            return model(nn.functional.normalize(image_emb, dim=-1).to(device),
                         nn.functional.normalize(text_emb, dim=-1).to(device)).float().cpu()

    def score_embeddings(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """(N,) float32 CPU P(good), in (0, 1), of (N, D) image and text embeddings."""
        return torch.sigmoid(self.logits(image_emb, text_emb))

    def check_encoder(self, encoder: Any) -> None:
        """Refuse (InputError) an encoder other than the one this model was trained with,
        naming both: another architecture, tag or width, or the same ones with other weights
        (the probe differs)."""
        if (encoder.arch, encoder.tag, int(encoder.embed_dim)) == (
                self.encoder.get("arch"), self.encoder.get("tag"), self.embed_dim):
            found = encoder_signature(encoder)["probe"]
            recorded = self.encoder["probe"]
            if len(found) == len(recorded) and all(
                    math.isclose(a, b, abs_tol=PROBE_TOLERANCE)
                    for a, b in zip(found, recorded, strict=True)):
                return
            detail = ("has the same architecture and tag but other weights (its embeddings "
                      "differ)")
        else:
            detail = f"is {describe_encoder(encoder_signature(encoder))}"
        raise InputError(
            f"Reward model {self.name} was trained with image encoder "
            f"{describe_encoder(self.encoder)}; the connected encoder {detail}. Connect the "
            "encoder it was trained with in Load Image Encoder, or train a reward model for "
            "this encoder.")

    def _check(self, vectors: Any, what: str) -> torch.Tensor:
        vectors = torch.as_tensor(vectors, dtype=torch.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.embed_dim:
            raise InputError(
                f"reward model {self.name} scores (N, {self.embed_dim}) {what} embeddings "
                f"(from {describe_encoder(self.encoder)}), got shape {tuple(vectors.shape)}.")
        return vectors


def exercise(model: RewardModel) -> str:
    """Score four random image-text pairs; describe the scores."""
    generator = torch.Generator().manual_seed(0)
    images, texts = torch.randn(2, 4, model.embed_dim, generator=generator)
    scores = model.score_embeddings(images, texts)
    return (f"{model.name}: 4 pairs of {model.embed_dim}-value embeddings, P(good) "
            f"{float(scores.min()):.2f} to {float(scores.max()):.2f}")


FAMILY = Family(
    name="reward_model",
    title="reward model (trained from your good/bad marks)",
    folder="reward_models",
    packages=(),
    load=load,
    sniff=sniff,
    exercise=exercise,
)
