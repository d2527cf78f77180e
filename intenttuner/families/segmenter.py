"""Segment Anything (SAM): box prompts in, one binary mask per box out.

Weights are the original ``sam_vit_{b,l,h}_*.pth`` files (plain state dicts with
``image_encoder.*``, ``prompt_encoder.*`` and ``mask_decoder.*`` tensors) or a ``.safetensors``
copy of one, in ``models/sams``. segment_anything's ``build_sam*`` helpers unpickle checkpoints
with a bare ``torch.load``, so they are never given a file: the architecture is read off the
tensor shapes (`infer_arch`), built empty, and filled from `safe_load.load_state_dict`. The same
code therefore loads ViT-B/L/H and the tiny test model.

    sam = FAMILY.load(models_dir / "sams" / "sam_vit_b_01ec64.pth")
    masks = sam.masks_for_boxes(rgb, np.array([[10, 20, 200, 240]]))  # (1, H, W) bool
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError, WeightsCorruptError, WrongModelFamilyError
from ..imageio import to_rgb_array
from ..runtime import ManagedModel, get_runtime
from ..weights import safe_load
from .base import Family, Package, check_family, resolve_dtype, synthetic_image

log = logging.getLogger(__name__)

# Post-processing upsamples low-res masks to full image size in float; doing it for a few boxes
# at a time bounds memory on large photos with many boxes (50 boxes x 12 MP x 4 B = 2.4 GB).
_POSTPROCESS_CHUNK = 8

_BLOCK_RE = re.compile(r"^image_encoder\.blocks\.(\d+)\.")
_DECODER_LAYER_RE = re.compile(r"^mask_decoder\.transformer\.layers\.(\d+)\.")
_IOU_LAYER_RE = re.compile(r"^mask_decoder\.iou_prediction_head\.layers\.(\d+)\.weight$")


@dataclass(frozen=True)
class SamArch:
    """The hyper-parameters of a SAM model (segment_anything's ``_build_sam`` arguments)."""

    embed_dim: int  # ViT width: 768 (B), 1024 (L), 1280 (H)
    depth: int  # number of ViT blocks: 12, 24, 32
    num_heads: int  # ViT attention heads: 12, 16, 16
    global_attn_indexes: tuple[int, ...]  # blocks with global (not windowed) attention
    window_size: int = 14  # side of the attention windows of the other blocks, in patches
    patch_size: int = 16  # ViT patch side, in pixels
    image_size: int = 1024  # side of the square the image is resized and padded to
    mlp_ratio: float = 4.0  # ViT MLP hidden width / embed_dim
    prompt_embed_dim: int = 256  # image-embedding channels = prompt encoder/decoder width
    mask_in_chans: int = 16  # channels of the mask-prompt downscaler
    decoder_depth: int = 2  # two-way transformer layers in the mask decoder
    decoder_mlp_dim: int = 2048  # MLP width of those layers
    # Not recoverable from tensor shapes (heads split one projection); every SAM release uses 8.
    decoder_heads: int = 8
    attention_downsample_rate: int = 2  # decoder cross-attention width = prompt_embed_dim / this
    num_multimask_outputs: int = 3  # masks per prompt in multimask mode
    iou_head_depth: int = 3  # layers of the mask-quality head
    iou_head_hidden_dim: int = 256  # width of the mask-quality head

    @property
    def variant(self) -> str:
        """``"vit_b"``, ``"vit_l"`` or ``"vit_h"`` for the released models, else ``"custom"``."""
        return next((name for name, arch in KNOWN_VARIANTS.items() if arch == self), "custom")


# The three released models (segment_anything/build_sam.py).
KNOWN_VARIANTS: dict[str, SamArch] = {
    "vit_b": SamArch(768, 12, 12, (2, 5, 8, 11)),
    "vit_l": SamArch(1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": SamArch(1280, 32, 16, (7, 15, 23, 31)),
}


def sniff(tensor_names: Iterable[str]) -> bool:
    """True for SAM checkpoints: a ViT image encoder with patch embedding plus a mask decoder."""
    names = set(tensor_names)
    return "image_encoder.patch_embed.proj.weight" in names and any(
        n.startswith("mask_decoder.") for n in names
    )


def infer_arch(shapes: Mapping[str, Sequence[int]]) -> SamArch:
    """Read a `SamArch` off ``{tensor name: shape}`` of a SAM state dict.

    Raises KeyError naming the first expected tensor that is missing.
    """
    embed_dim, _, patch, _ = shapes["image_encoder.patch_embed.proj.weight"]
    grid = shapes["image_encoder.pos_embed"][1]  # (1, grid, grid, embed_dim)
    depth = _count(shapes, _BLOCK_RE)
    head_dim = shapes["image_encoder.blocks.0.attn.rel_pos_h"][1]
    # rel_pos_h has 2*size-1 rows: size is the full grid for global blocks, else the window.
    sizes = [(shapes[f"image_encoder.blocks.{i}.attn.rel_pos_h"][0] + 1) // 2 for i in range(depth)]
    windows = {s for s in sizes if s != grid}
    prompt_dim = shapes["image_encoder.neck.0.weight"][0]
    cross_attn = "mask_decoder.transformer.layers.0.cross_attn_token_to_image"
    cross_dim = shapes[f"{cross_attn}.q_proj.weight"][0]
    return SamArch(
        embed_dim=embed_dim,
        depth=depth,
        num_heads=embed_dim // head_dim,
        global_attn_indexes=tuple(i for i, s in enumerate(sizes) if s == grid),
        window_size=windows.pop() if windows else 0,
        patch_size=patch,
        image_size=grid * patch,
        mlp_ratio=shapes["image_encoder.blocks.0.mlp.lin1.weight"][0] / embed_dim,
        prompt_embed_dim=prompt_dim,
        mask_in_chans=shapes["prompt_encoder.mask_downscaling.3.weight"][0],
        decoder_depth=_count(shapes, _DECODER_LAYER_RE),
        decoder_mlp_dim=shapes["mask_decoder.transformer.layers.0.mlp.lin1.weight"][0],
        attention_downsample_rate=prompt_dim // cross_dim,
        num_multimask_outputs=shapes["mask_decoder.mask_tokens.weight"][0] - 1,
        iou_head_depth=_count(shapes, _IOU_LAYER_RE),
        iou_head_hidden_dim=shapes["mask_decoder.iou_prediction_head.layers.0.weight"][0],
    )


def _count(shapes: Mapping[str, object], pattern: re.Pattern) -> int:
    indexes = {int(m.group(1)) for name in shapes if (m := pattern.match(name))}
    if not indexes:
        raise KeyError(pattern.pattern)
    return max(indexes) + 1


def build_sam(arch: SamArch) -> torch.nn.Module:
    """An untrained ``segment_anything.modeling.Sam`` with architecture ``arch``.

    The image encoder (almost all parameters) is created on the meta device: it costs no memory
    or init time and must be filled with ``load_state_dict(..., assign=True)``. The small prompt
    encoder and mask decoder are real, so the non-persistent ``pixel_mean``/``pixel_std``
    buffers and everything else exist on CPU.
    """
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    grid = arch.image_size // arch.patch_size
    with torch.device("meta"):
        encoder = ImageEncoderViT(
            img_size=arch.image_size, patch_size=arch.patch_size, embed_dim=arch.embed_dim,
            depth=arch.depth, num_heads=arch.num_heads, mlp_ratio=arch.mlp_ratio,
            out_chans=arch.prompt_embed_dim, qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
            window_size=arch.window_size, global_attn_indexes=arch.global_attn_indexes,
        )
    prompt_encoder = PromptEncoder(
        embed_dim=arch.prompt_embed_dim, image_embedding_size=(grid, grid),
        input_image_size=(arch.image_size, arch.image_size), mask_in_chans=arch.mask_in_chans,
    )
    transformer = TwoWayTransformer(
        depth=arch.decoder_depth, embedding_dim=arch.prompt_embed_dim,
        mlp_dim=arch.decoder_mlp_dim, num_heads=arch.decoder_heads,
        attention_downsample_rate=arch.attention_downsample_rate,
    )
    decoder = MaskDecoder(
        transformer_dim=arch.prompt_embed_dim, transformer=transformer,
        num_multimask_outputs=arch.num_multimask_outputs, iou_head_depth=arch.iou_head_depth,
        iou_head_hidden_dim=arch.iou_head_hidden_dim,
    )
    return Sam(image_encoder=encoder, prompt_encoder=prompt_encoder, mask_decoder=decoder,
               pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])


def load(path: str | Path, precision: str = "auto") -> SamSegmenter:
    """Load a SAM checkpoint (any size) from ``path``; see the module docstring.

    ``precision``: ``"auto"`` (fp16 image encoder on CUDA, fp32 elsewhere), ``"fp32"``,
    ``"fp16"`` or ``"bf16"``. Only the image encoder is cast; the prompt encoder and mask decoder
    (4 M parameters) stay fp32 because segment_anything builds their inputs in fp32.
    """
    FAMILY.require()
    path = Path(path)
    state = safe_load.load_state_dict(path)
    check_family(FAMILY, path, state.keys())
    try:
        arch = infer_arch({name: tuple(t.shape) for name, t in state.items()})
    except (KeyError, IndexError, ValueError) as exc:
        raise WeightsCorruptError(
            f"{path} looks like a Segment Anything checkpoint but lacks tensors every SAM model "
            f"has (first missing: {exc}). Download the file again."
        ) from None
    model = build_sam(arch)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        detail = "; ".join(line.strip().rstrip(".") for line in str(exc).splitlines()[1:3])
        raise WrongModelFamilyError(
            f"{path} is a Segment Anything variant this pack cannot load (SAM-HQ, MobileSAM and "
            f"fine-tunes with extra layers are not supported): {detail}. "
            "Use an original SAM checkpoint such as sam_vit_b_01ec64.pth."
        ) from None
    del state
    runtime = get_runtime()
    dtype = resolve_dtype(precision, runtime.torch_device())
    model.float().eval()  # assign=True kept the file's dtype; the decoder must be fp32
    model.image_encoder.to(dtype)
    log.info("loaded SAM %s (%s, image encoder %s) from %s", arch.variant, arch, dtype, path)
    return SamSegmenter(runtime.manage(model), arch, dtype)


class SamSegmenter:
    """A loaded SAM model. Embeds each image once and decodes all its boxes in one call.

    Follows segment_anything's ``SamPredictor`` (``set_image`` then ``predict_torch``): resize
    the long side to ``arch.image_size``, normalise and pad, encode, then decode box prompts
    mapped into the resized frame; written out here so the image encoder can run in fp16.
    """

    def __init__(self, managed: ManagedModel, arch: SamArch, dtype: torch.dtype):
        self._managed = managed
        self.arch = arch
        self.variant: str = arch.variant
        self.dtype = dtype

    def masks_for_boxes(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """One mask per box prompt.

        ``image``: HxWx3 uint8 RGB (other layouts and dtypes are converted, see
        `intenttuner.imageio`). ``boxes``: (N, 4) float XYXY in pixels of ``image``; boxes are
        clipped to the image, a box entirely outside it gets an empty mask. Returns (N, H, W)
        bool masks (single-mask output); N == 0 gives (0, H, W) without running the model.
        """
        rgb = to_rgb_array(image)
        height, width = rgb.shape[:2]
        boxes = _check_boxes(boxes, width, height)
        masks = np.zeros((len(boxes), height, width), dtype=bool)
        inside = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        if not inside.all():
            log.warning("%d of %d boxes are empty or outside the %dx%d image; their masks are "
                        "empty", int((~inside).sum()), len(boxes), width, height)
        if inside.any():
            masks[inside] = self._predict(rgb, boxes[inside])
        return masks

    def _predict(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        from segment_anything.utils.transforms import ResizeLongestSide

        get_runtime().check_interrupted()
        model = self._managed.load()
        device = model.device  # Sam exposes the device its parameters are on
        transform = ResizeLongestSide(self.arch.image_size)
        original_size = rgb.shape[:2]
        with torch.inference_mode():
            resized = torch.as_tensor(transform.apply_image(rgb), device=device)
            pixels = resized.permute(2, 0, 1).unsqueeze(0).float()
            input_size = tuple(pixels.shape[-2:])
            features = model.image_encoder(model.preprocess(pixels).to(self.dtype)).float()
            box_t = transform.apply_boxes_torch(torch.as_tensor(boxes, device=device),
                                                original_size)
            sparse, dense = model.prompt_encoder(points=None, boxes=box_t, masks=None)
            low_res, _ = model.mask_decoder(
                image_embeddings=features, image_pe=model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                multimask_output=False,
            )
            threshold = model.mask_threshold
            chunks = [
                model.postprocess_masks(chunk, input_size, original_size)[:, 0] > threshold
                for chunk in low_res.split(_POSTPROCESS_CHUNK)
            ]
            return torch.cat(chunks).cpu().numpy()


def _check_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Validate (N, 4) XYXY pixel boxes and clip them to the image; returns float32 (N, 4)."""
    array = np.asarray(boxes, dtype=np.float32)
    if array.size == 0:
        return np.zeros((0, 4), dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != 4:
        raise InputError(f"boxes must have shape (N, 4) (XYXY pixels), got {array.shape}.")
    if not np.isfinite(array).all():
        raise InputError("boxes contain NaN or infinite coordinates.")
    flipped = (array[:, 2] < array[:, 0]) | (array[:, 3] < array[:, 1])
    if flipped.any():
        raise InputError(
            f"box {array[flipped][0].tolist()} has x2 < x1 or y2 < y1; boxes must be XYXY "
            "(left, top, right, bottom) in pixels."
        )
    return np.clip(array, 0, [width, height, width, height]).astype(np.float32)


def exercise(sam: SamSegmenter) -> str:
    """Segment two boxes of a synthetic image; describe the masks."""
    image = np.asarray(synthetic_image(64, 48))
    masks = sam.masks_for_boxes(image, np.array([[4, 4, 40, 30], [20, 10, 60, 44]]))
    return f"{len(masks)} masks {masks.shape[2]}x{masks.shape[1]} ({sam.variant})"


FAMILY = Family(
    name="segmenter",
    title="Segment Anything (SAM)",
    folder="sams",
    packages=(Package("segment_anything", "segment-anything"),),
    load=load,
    sniff=sniff,
    exercise=exercise,
)
