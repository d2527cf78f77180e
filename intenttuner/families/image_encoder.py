"""open_clip image/text encoders: L2-normalised embeddings for image/text similarity.

Weight files are open_clip state dicts (``open_clip_model.safetensors`` of a Hugging Face
open_clip repo, or a ``.bin``/``.pt``/``.pth`` with the same tensors) in
``models/image_encoders``, named ``<architecture>.<pretrained tag>.<ext>`` so the file says
what it is:

    models/image_encoders/ViT-B-32.laion2b_s34b_b79k.safetensors   (default)
    models/image_encoders/ViT-L-14.openai.safetensors              (QuickGELU, from the tag)

The architecture is the part of the file name before the first dot when open_clip knows that
name; otherwise it is inferred from the tensor shapes; ``arch=`` overrides both. The pretrained
tag selects the activation (OpenAI's models use QuickGELU) and preprocessing from open_clip's
own table of released weights. The model is built with ``open_clip.create_model(arch,
pretrained=None)`` and filled through `safe_load`, so nothing is downloaded or unpickled.
Architectures this pack adds (the tiny test model) are JSON files in ``models/configs/open_clip``.

    enc = FAMILY.load(models_dir / "image_encoders" / "ViT-B-32.laion2b_s34b_b79k.safetensors")
    image_vecs = enc.embed_images(pil_images)      # (N, 512) float32, unit length
    text_vecs = enc.embed_texts(["a red backpack"])
    similarity = image_vecs @ text_vecs.T
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import torch
from PIL import Image

from ..errors import InputError, WeightsCorruptError
from ..imageio import to_rgb_pil
from ..runtime import ManagedModel, get_runtime
from ..weights import safe_load
from .base import Family, Package, check_family, resolve_dtype, synthetic_image
from .embedding import check_batch_size, device_of, embed_in_batches

log = logging.getLogger(__name__)

BUNDLED_CONFIG_DIR = Path(__file__).resolve().parents[2] / "models" / "configs" / "open_clip"

_VISION_BLOCK_RE = re.compile(r"^visual\.transformer\.resblocks\.(\d+)\.")
_TEXT_BLOCK_RE = re.compile(r"^transformer\.resblocks\.(\d+)\.")
# Config keys of plain ViT CLIPs, the only ones whose shapes `infer_arch` can compare; other
# keys (timm/HF towers, attentional pooling, ...) change tensor names or shapes in ways it
# does not model, so those configs are only reachable by file name or ``arch=``.
_PLAIN_TOP_KEYS = {"embed_dim", "vision_cfg", "text_cfg", "quick_gelu"}
_PLAIN_VISION_KEYS = {"image_size", "layers", "width", "patch_size", "head_width", "mlp_ratio"}
_PLAIN_TEXT_KEYS = {"context_length", "vocab_size", "width", "heads", "layers"}


def sniff(tensor_names: Iterable[str]) -> bool:
    """True for open_clip CLIP state dicts: an image tower under ``visual.`` and the logit
    scale and text tower at the top level (SD checkpoints nest CLIP under a prefix)."""
    names = set(tensor_names)
    return (
        "logit_scale" in names
        and any(n.startswith("visual.") for n in names)
        and ("token_embedding.weight" in names or any(n.startswith("text.") for n in names))
    )


def register_bundled_configs(config_dir: Path = BUNDLED_CONFIG_DIR) -> list[str]:
    """Make the architectures in ``config_dir/*.json`` known to open_clip by name.

    Only names open_clip does not already know are added (through its public
    ``add_model_config``), so repeated calls are no-ops and built-in configs are never
    shadowed. Returns the names added by this call.
    """
    import open_clip

    known = set(open_clip.list_models())
    added = []
    for config in sorted(config_dir.glob("*.json")):
        if config.stem not in known:
            open_clip.add_model_config(config)
            added.append(config.stem)
    if added:
        log.debug("registered open_clip configs %s", added)
    return added


def split_file_name(path: Path) -> tuple[str, str | None]:
    """``ViT-L-14.openai.safetensors`` → ``("ViT-L-14", "openai")``; no tag → ``None``."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    arch, _, tag = stem.partition(".")
    return arch, tag or None


def infer_arch(shapes: Mapping[str, Sequence[int]]) -> str | None:
    """The open_clip architecture whose config produces these tensor shapes, if any.

    Text attention heads do not show in shapes, so configs differing only there are
    indistinguishable; the shortest name without ``-quickgelu`` wins (activation is not
    visible either, see `resolve_quick_gelu`).
    """
    import open_clip

    try:
        wanted = _state_signature(shapes)
    except (KeyError, IndexError, ValueError):
        return None
    matches = [name for name in open_clip.list_models()
               if _config_signature(open_clip.get_model_config(name)) == wanted]
    matches.sort(key=lambda name: ("quickgelu" in name, len(name), name))
    if len(matches) > 1:
        log.debug("tensor shapes fit open_clip configs %s; using %s", matches, matches[0])
    return matches[0] if matches else None


def _state_signature(shapes: Mapping[str, Sequence[int]]) -> tuple:
    width, _, patch, _ = shapes["visual.conv1.weight"]
    return (
        shapes["visual.proj"][1],  # joint embedding size
        width, patch, shapes["visual.positional_embedding"][0], _count(shapes, _VISION_BLOCK_RE),
        *shapes["token_embedding.weight"],  # vocab size, text width
        shapes["positional_embedding"][0], _count(shapes, _TEXT_BLOCK_RE),
    )


def _config_signature(config: dict | None) -> tuple | None:
    if not config or set(config) - _PLAIN_TOP_KEYS:
        return None
    vision, text = config["vision_cfg"], config["text_cfg"]
    if set(vision) - _PLAIN_VISION_KEYS or set(text) - _PLAIN_TEXT_KEYS:
        return None
    if not isinstance(vision.get("layers"), int) or not isinstance(vision.get("image_size"), int):
        return None  # ResNet towers and non-square inputs
    grid = vision["image_size"] // vision["patch_size"]
    return (
        config["embed_dim"], vision["width"], vision["patch_size"], grid * grid + 1,
        vision["layers"], text["vocab_size"], text["width"], text["context_length"],
        text["layers"],
    )


def _count(shapes: Mapping[str, object], pattern: re.Pattern) -> int:
    return len({m.group(1) for name in shapes if (m := pattern.match(name))})


def resolve_quick_gelu(arch: str, tag: str | None, quick_gelu: bool | None) -> bool:
    """QuickGELU or GELU: explicit choice > open_clip's record for ``arch``/``tag`` > an
    ``openai`` tag (all OpenAI CLIPs use QuickGELU) > the architecture's own config."""
    import open_clip

    if quick_gelu is not None:
        return quick_gelu
    if tag:
        recorded = open_clip.get_pretrained_cfg(arch, tag).get("quick_gelu")
        if recorded is not None:
            return bool(recorded)
        if "openai" in tag.lower():
            return True
    return bool((open_clip.get_model_config(arch) or {}).get("quick_gelu", False))


def load(path: str | Path, arch: str | None = None, quick_gelu: bool | None = None,
         precision: str = "auto") -> OpenClipEncoder:
    """Load the open_clip weights in ``path`` (see the module docstring for naming).

    ``arch``: open_clip architecture name, overriding the file name and shape inference.
    ``quick_gelu``: force the activation (default: from the pretrained tag in the file name).
    ``precision``: ``"auto"`` (fp16 on CUDA, fp32 elsewhere), ``"fp32"``, ``"fp16"``, ``"bf16"``.
    """
    FAMILY.require()
    import open_clip

    register_bundled_configs()
    path = Path(path)
    if path.is_dir():
        raise InputError(
            f"{path} is a folder; open_clip encoders here are single files. Move its weights "
            "(open_clip_model.safetensors) to models/image_encoders/<architecture>.<pretrained "
            "tag>.safetensors, e.g. ViT-B-32.laion2b_s34b_b79k.safetensors."
        )
    state = safe_load.load_state_dict(path)
    check_family(FAMILY, path, state.keys())
    arch, tag = _resolve_arch(path, state, arch)
    _check_shapes_fit(arch, state, path)
    quick_gelu = resolve_quick_gelu(arch, tag, quick_gelu)
    runtime = get_runtime()
    dtype = resolve_dtype(precision, runtime.torch_device())
    tag_preprocess = open_clip.get_pretrained_cfg(arch, tag) if tag else {}
    with quiet_random_init_warning():
        model = open_clip.create_model(
            arch, pretrained=None, precision=_OPEN_CLIP_PRECISION[dtype], device="cpu",
            force_quick_gelu=quick_gelu, force_preprocess_cfg=tag_preprocess,
        )
    _load_weights(model, state, path, arch)
    del state
    model.eval()
    log.info("loaded open_clip %s (tag %s, quick_gelu=%s, %s) from %s",
             arch, tag, quick_gelu, dtype, path)
    return OpenClipEncoder(runtime.manage(model), arch, tag, dtype, model.visual.preprocess_cfg)


_OPEN_CLIP_PRECISION = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


def _resolve_arch(path: Path, state: Mapping[str, torch.Tensor],
                  arch: str | None) -> tuple[str, str | None]:
    import open_clip

    name_arch, tag = split_file_name(path)
    known = set(open_clip.list_models())
    if arch is not None:
        if arch not in known:
            raise InputError(f"arch '{arch}' is not an open_clip architecture. Known ones include "
                             f"ViT-B-32, ViT-B-16, ViT-L-14, ViT-H-14.")
        return arch, tag if name_arch == arch else None
    if name_arch in known:
        return name_arch, tag
    inferred = infer_arch({name: tuple(t.shape) for name, t in state.items()})
    if inferred is None:
        raise InputError(
            f"Cannot tell which open_clip architecture {path.name} is: its name does not start "
            "with one and its tensor shapes match no plain ViT config. Rename it "
            "'<architecture>.<pretrained tag>.safetensors' (e.g. ViT-B-32.laion2b_s34b_b79k) "
            "or pass arch=."
        )
    log.warning("%s: architecture %s inferred from tensor shapes; name the file "
                "'%s.<pretrained tag>%s' so the activation (QuickGELU for OpenAI weights) is "
                "known too", path, inferred, inferred, path.suffix)
    return inferred, None


def _check_shapes_fit(arch: str, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Fail before building the model when a plain-ViT ``arch`` cannot hold these tensors."""
    import open_clip

    expected = _config_signature(open_clip.get_model_config(arch))
    if expected is None:
        return  # not a plain ViT config: the strict load decides
    try:
        found = _state_signature({name: tuple(t.shape) for name, t in state.items()})
    except (KeyError, IndexError, ValueError):
        found = None
    # Index 3 is the image token count: open_clip resizes position tables for other inputs.
    if found is None or found[:3] + found[4:] != expected[:3] + expected[4:]:
        guess = infer_arch({name: tuple(t.shape) for name, t in state.items()})
        raise WeightsCorruptError(
            f"{path} does not fit open_clip architecture {arch} (its tensor shapes "
            f"{'fit ' + guess if guess else 'fit no plain ViT config'}). If the file is intact, "
            "its name (or arch=) names the wrong architecture."
        )


def _load_weights(model: torch.nn.Module, state: dict, path: Path, arch: str) -> None:
    """Strict load, after the same harmless fix-ups open_clip's ``load_checkpoint`` applies
    (scalar vs 1-d logit scale, position tables for another input size)."""
    from open_clip.model import resize_pos_embed, resize_text_pos_embed

    if "logit_scale" in state and state["logit_scale"].ndim != model.logit_scale.ndim:
        state["logit_scale"] = state["logit_scale"].reshape(model.logit_scale.shape)
    try:
        resize_pos_embed(state, model)
        resize_text_pos_embed(state, model)  # asserts when the text width differs
        model.load_state_dict(state, strict=True)
    except (RuntimeError, AssertionError) as exc:
        detail = "; ".join(str(exc).splitlines()[1:3]) or str(exc)
        raise WeightsCorruptError(
            f"{path} does not fit open_clip architecture {arch}: {detail}. If the file is "
            "intact, its name (or arch=) names the wrong architecture."
        ) from None


@contextlib.contextmanager
def quiet_random_init_warning() -> Iterator[None]:
    """Hide open_clip's "No pretrained weights loaded ... initialized randomly" warning: we
    build without weights on purpose and load them right after."""
    def keep(record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()

    root = logging.getLogger()  # open_clip logs through the root logger
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


class OpenClipEncoder:
    """A loaded open_clip model: batched, L2-normalised image and text embeddings.

    Embeddings are (N, D) float32 CPU tensors with unit L2 norm (D = ``embed_dim``: 512 for
    ViT-B-32, 768 for ViT-L-14), so cosine similarity is a plain dot product.
    """

    def __init__(self, managed: ManagedModel, arch: str, tag: str | None, dtype: torch.dtype,
                 preprocess_cfg: dict):
        import open_clip
        from open_clip.transform import PreprocessCfg, image_transform_v2

        self._managed = managed
        self.arch = arch
        self.tag = tag
        self.dtype = dtype
        self.embed_dim: int = open_clip.get_model_config(arch)["embed_dim"]
        self._preprocess = image_transform_v2(PreprocessCfg(**preprocess_cfg), is_train=False)
        self._tokenizer = open_clip.get_tokenizer(arch)  # BPE vocab ships with open_clip

    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> torch.Tensor:
        """Embed PIL images of any mode and size (converted to RGB, alpha composited on white,
        then open_clip's resize + centre crop + normalisation). Returns (N, D) float32."""
        return embed_in_batches(self._managed, images, batch_size, "Embedding images",
                                self._encode_images, self.embed_dim)

    def embed_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Embed strings (truncated to the model's 77-token context). Returns (N, D) float32."""
        check_batch_size(batch_size)
        texts = list(texts)
        bad = next((t for t in texts if not isinstance(t, str)), None)
        if bad is not None:
            raise InputError(f"embed_texts takes strings, got {type(bad).__name__}: {bad!r}.")
        return embed_in_batches(self._managed, texts, batch_size, "Embedding texts",
                                self._encode_texts, self.embed_dim)

    def _encode_images(self, model: torch.nn.Module, images: list) -> torch.Tensor:
        pixels = torch.stack([self._preprocess(to_rgb_pil(image)) for image in images])
        return model.encode_image(pixels.to(device_of(model), self.dtype))

    def _encode_texts(self, model: torch.nn.Module, texts: list[str]) -> torch.Tensor:
        return model.encode_text(self._tokenizer(texts).to(device_of(model)))


def exercise(encoder: OpenClipEncoder) -> str:
    """Embed a synthetic image and two texts; describe the embeddings."""
    image = encoder.embed_images([synthetic_image()])
    texts = encoder.embed_texts(["a photo of a cat", "a painting"])
    return f"{encoder.arch}: image {tuple(image.shape)}, texts {tuple(texts.shape)}"


FAMILY = Family(
    name="image_encoder",
    title="open_clip image/text encoder",
    folder="image_encoders",
    packages=(Package("open_clip", "open_clip_torch"),),
    load=load,
    sniff=sniff,
    exercise=exercise,
)
