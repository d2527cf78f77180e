"""VAE latents of every training image, encoded once per image and bucket (and flip).

Training then never runs the VAE: each step reads latents from memory. With a cache folder the
latents are also kept on disk, one safetensors file per (image content, bucket, flip) under a
folder named by the VAE's fingerprint, so a later run on the same images and VAE encodes
nothing, and a different VAE (or a different encoding recipe, `LATENT_FORMAT`) never reuses
them. A damaged cache file is encoded again, never trusted and never fatal.

We cache ``latent_dist.mean`` (times the VAE's scaling factor), not a sample: kohya caches one
``latent_dist.sample()`` per image, which freezes a single random draw for the whole run anyway,
so the mean loses nothing and makes the cache deterministic (the same files for every seed,
identical across processes of a multi-GPU run).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from ..dataset.folders import sha256_of
from ..errors import InputError, TrainingError
from ..families.sd_model import BaseModel
from ..runtime import get_runtime
from .buckets import Size, cover_crop, load_for_bucket, plan_buckets
from .config import TrainConfig
from .lora_file import write_new_file

log = logging.getLogger(__name__)

# Part of the VAE fingerprint: change it when the pixels -> latents recipe changes (resampling,
# cropping, mean vs sample), so old cache files are not reused.
LATENT_FORMAT = "mean-bicubic-aa-v1"
ENCODE_BATCH = 4  # images per VAE call: fast, and small enough for a 1024 px SDXL batch
FINGERPRINT_SAMPLE = 64  # values hashed per VAE tensor: cheap, yet differs for any fine-tune
TENSOR_KEY = "latents"


@dataclass
class CachedImage:
    index: int                    # position in training_set.items
    bucket: Size                  # (w, h) px
    latents: torch.Tensor         # [4, h/8, w/8], CPU, float32, already x scaling_factor
    latents_flipped: torch.Tensor | None   # only when config.flip
    original_size: tuple[int, int]         # (h, w)
    crop_top_left: tuple[int, int]         # (top, left)
    caption: str
    repeats: int
    loss_weight: float = 1.0      # factor on its loss (TrainingItem.loss_weight)


@dataclass
class LatentCache:
    images: list[CachedImage]

    def by_bucket(self) -> dict[Size, list[int]]:
        """bucket -> positions in ``images`` (buckets sorted, positions in order)."""
        groups: dict[Size, list[int]] = {}
        for position, image in enumerate(self.images):
            groups.setdefault(image.bucket, []).append(position)
        return dict(sorted(groups.items()))


def cache_latents(model: BaseModel, training_set, config: TrainConfig, cache_dir: Path | None,
                  batch_size: int = ENCODE_BATCH) -> LatentCache:
    """Latents of every item of ``training_set`` in its bucket (see the module docstring).

    ``cache_dir``: the disk cache's root, or None for memory only. The VAE is loaded through
    ``model.managed("vae")`` only if something must be encoded, and offloaded at the end."""
    if not training_set.items:
        raise InputError("the training set has no images; add images to its <repeats>_<name> "
                         "folders (or choose another set) before training.")
    plan = plan_buckets(training_set, config, model.kind)
    variants = (False, True) if config.flip else (False,)
    vae = model.vae
    encode_dtype = torch.float32 if vae.config.get("force_upcast", False) else vae.dtype
    store = DiskCache(Path(cache_dir), vae_fingerprint(vae, encode_dtype)) if cache_dir else None
    shapes = [latent_shape(vae, bucket) for _, bucket in plan]
    keys = [store.image_key(training_set, item) if store else "" for item in training_set.items]
    found: dict[tuple[int, bool], torch.Tensor] = {}
    if store:
        for index, (key, (_, bucket)) in enumerate(zip(keys, plan, strict=True)):
            for flip in variants:
                latents = store.read(key, bucket, flip, shapes[index])
                if latents is not None:
                    found[index, flip] = latents
    missing = {index: [flip for flip in variants if (index, flip) not in found]
               for index in range(len(plan))}
    missing = {index: flips for index, flips in missing.items() if flips}
    try:
        if missing:
            encoded = encode_images(model, training_set, plan, missing, encode_dtype, batch_size)
            for (index, flip), latents in encoded.items():
                found[index, flip] = latents
                if store:
                    store.write(keys[index], plan[index][1], flip, latents)
    finally:
        model.managed("vae").offload()
    return LatentCache([cached_image(training_set, index, size, bucket, found, config.flip)
                        for index, (size, bucket) in enumerate(plan)])


def cached_image(training_set, index: int, size: Size, bucket: Size,
                 found: dict[tuple[int, bool], torch.Tensor], flip: bool) -> CachedImage:
    item = training_set.items[index]
    _, crop = cover_crop(size, bucket)  # what load_for_bucket cropped, without decoding again
    return CachedImage(index=index, bucket=bucket, latents=found[index, False],
                       latents_flipped=found[index, True] if flip else None,
                       original_size=(size[1], size[0]), crop_top_left=crop,
                       caption=item.caption, repeats=item.repeats,
                       loss_weight=item.loss_weight)


def encode_images(model: BaseModel, training_set, plan: list[tuple[Size, Size]],
                  missing: dict[int, list[bool]], encode_dtype: torch.dtype,
                  batch_size: int) -> dict[tuple[int, bool], torch.Tensor]:
    """Encode the ``missing`` (index -> flips) images in batches of one bucket each; the VAE
    runs in ``encode_dtype`` and gets its own dtype back afterwards (the graph shares it)."""
    runtime = get_runtime()
    vae = model.managed("vae").load()
    device, own_dtype = next(vae.parameters()).device, vae.dtype
    encoded: dict[tuple[int, bool], torch.Tensor] = {}
    try:
        if encode_dtype != own_dtype:  # .to() is not free, and diffusers warns on every call
            vae.to(encode_dtype)
        with runtime.progress(len(missing), "Caching latents") as bar:
            for bucket, indices in batches(plan, list(missing), batch_size):
                runtime.check_interrupted()
                pixels = torch.stack([load_for_bucket(training_set.image_path(
                    training_set.items[i]), bucket)[0] for i in indices])
                for flip in (False, True):
                    rows = [n for n, i in enumerate(indices) if flip in missing[i]]
                    if not rows:
                        continue
                    batch = pixels[rows].flip(-1) if flip else pixels[rows]
                    names = [training_set.items[indices[n]].image for n in rows]
                    latents = encode_batch(vae, batch, device, names)
                    for n, row in zip(rows, latents, strict=True):
                        encoded[indices[n], flip] = row
                bar.update(len(indices))
    finally:
        if vae.dtype != own_dtype:
            vae.to(own_dtype)
    return encoded


def batches(plan: list[tuple[Size, Size]], indices: list[int],
            batch_size: int) -> Iterator[tuple[Size, list[int]]]:
    """(bucket, up to ``batch_size`` indices) of ``indices``, one bucket per batch."""
    by_bucket: dict[Size, list[int]] = {}
    for index in indices:
        by_bucket.setdefault(plan[index][1], []).append(index)
    for bucket, members in sorted(by_bucket.items()):
        for start in range(0, len(members), batch_size):
            yield bucket, members[start:start + batch_size]


def encode_batch(vae, pixels: torch.Tensor, device: torch.device,
                 names: list[str]) -> list[torch.Tensor]:
    """Latents (mean x scaling factor, CPU float32) of a [B, 3, h, w] batch in [-1, 1]."""
    dtype = vae.dtype
    with torch.inference_mode():
        mean = vae.encode(pixels.to(device, dtype)).latent_dist.mean
        shift = vae.config.get("shift_factor") or 0.0
        latents = ((mean - shift) * vae.config.scaling_factor).float().cpu()
    bad = [name for name, row in zip(names, latents, strict=True) if not torch.isfinite(row).all()]
    if bad:
        raise TrainingError(f"The VAE turned {', '.join(bad)} into NaN/inf latents (in "
                            f"{dtype}). Load the base model in fp32, or use a VAE fixed for "
                            "half precision.")
    # Clones made outside inference mode are ordinary tensors, so the training step may use
    # them in autograd (an inference tensor cannot be saved for backward).
    return [row.clone() for row in latents]


def latent_shape(vae, bucket: Size) -> tuple[int, int, int]:
    """[C, h/f, w/f] of a (w, h) bucket; f = 8 for SD's VAEs (one halving per extra level)."""
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    return (vae.config.latent_channels, bucket[1] // factor, bucket[0] // factor)


def vae_fingerprint(vae, encode_dtype: torch.dtype) -> str:
    """A short hash of the VAE's config, a sample of every weight, the dtype it encodes in and
    `LATENT_FORMAT`: cheap (no full pass over the weights), but any other VAE or fine-tune
    differs. Config keys starting with '_' (versions, paths) are left out: the same VAE loaded
    from a single file or a diffusers folder shares the cache."""
    digest = hashlib.sha256(f"{LATENT_FORMAT}|{encode_dtype}".encode())
    config = {k: v for k, v in dict(vae.config).items() if not k.startswith("_")}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(vae.state_dict().items()):
        sample = tensor.detach().flatten()[:FINGERPRINT_SAMPLE].float().cpu()
        digest.update(f"{name}{tuple(tensor.shape)}".encode())
        digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]


class DiskCache:
    """``root/<fingerprint>/<image sha256>_<w>x<h>[_flip].safetensors`` files."""

    def __init__(self, root: Path, fingerprint: str):
        self.folder = root / fingerprint
        self.writable = True

    def image_key(self, training_set, item) -> str:
        """The image file's content hash. Never the manifest's ``sha256``: that is free text
        from dataset.json (a name made of it could leave the cache folder) and may be stale
        (reusing another image's latents); hashing the bytes costs little next to the VAE."""
        return sha256_of(training_set.image_path(item))

    def path(self, key: str, bucket: Size, flip: bool) -> Path:
        return self.folder / f"{key}_{bucket[0]}x{bucket[1]}{'_flip' if flip else ''}.safetensors"

    def read(self, key: str, bucket: Size, flip: bool,
             shape: tuple[int, ...]) -> torch.Tensor | None:
        """The cached latents, or None when absent or unusable (a warning says which)."""
        path = self.path(key, bucket, flip)
        if not path.is_file():
            return None
        try:
            latents = load_file(path)[TENSOR_KEY]
            if tuple(latents.shape) != shape or latents.dtype != torch.float32:
                raise ValueError(f"holds {latents.dtype} {tuple(latents.shape)}, not "
                                 f"float32 {shape}")
            if not torch.isfinite(latents).all():
                raise ValueError("holds NaN/inf values")
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
            log.warning("latent cache file %s is unusable (%s); encoding the image again",
                        path, exc)
            return None
        return latents

    def write(self, key: str, bucket: Size, flip: bool, latents: torch.Tensor) -> None:
        """Store ``latents`` atomically (`write_new_file`). A failed write (disk full, read-only
        folder) only turns the disk cache off for this run: training needs it in memory only."""
        if not self.writable:
            return
        try:
            data = save({TENSOR_KEY: latents.contiguous()})
            write_new_file(self.path(key, bucket, flip), data, replace=True)
        except (OSError, SafetensorError) as exc:  # DiskFullError is an OSError
            self.writable = False
            log.warning("cannot write the latent cache under %s (%s); keeping latents in "
                        "memory only for this run", self.folder, exc)
