"""The safetensors header metadata of a trained LoRA: what kohya's sd-scripts write, so the
tools people use on LoRAs (A1111/Forge's tag list, civitai's uploader, metadata viewers) read
ours like theirs.

* ``ss_*``: kohya's training keys (``train_network.py``), all strings the way kohya writes them
  (``str(value)``; dicts as JSON). ``ss_tag_frequency`` counts each group folder's
  comma-separated caption tags, lowercased, once per image (kohya's ``set_tag_frequency``);
  A1111 builds its LoRA tag list from it.
* ``modelspec.*``: the SAI ModelSpec 1.0.1 keys with the strings kohya's ``sai_model_spec.py``
  writes for a LoRA (architecture ``stable-diffusion-v1/lora`` or
  ``stable-diffusion-xl-v1-base/lora``), the run name as title and the intent's trigger words
  as the trigger phrase.
* ``intenttuner.intent``: the intent without its reference crops (they often show a real
  person's face; the file is meant to be shared), ``intenttuner.config``: the TrainConfig.

Shared files must not leak the trainer's machine: the base model, the training set and any
other path are written as names (file / folder name) only, never absolute paths, and nothing
comes from the environment (no keys, no user names).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any

from .. import __version__
from .buckets import bucket_sizes
from .config import TrainConfig

NETWORK_MODULE = "networks.lora"  # kohya's module name; LoCon is the same module with conv_dim
BASE_MODEL_VERSION = {"sd15": "sd_v1", "sdxl": "sdxl_base_v1-0"}
ARCHITECTURE = {"sd15": "stable-diffusion-v1/lora", "sdxl": "stable-diffusion-xl-v1-base/lora"}
# kohya: "diffusers" for SD 1.x LoRA, Stability's generative-models (sgm) for SDXL LoRA.
IMPLEMENTATION = {"sd15": "diffusers", "sdxl": "https://github.com/Stability-AI/generative-models"}
INTENT_KEY, CONFIG_KEY = "intenttuner.intent", "intenttuner.config"
# A few frozen base-UNet weights (init_lora.base_probe): which base model the LoRA is for.
PROBE_KEY = "intenttuner.base_probe"
# Where the adapters started: the init_lora file's name, and for a reward fine-tune what it
# learnt from (the weighted set's "reward_finetune" settings: names and counts only).
INIT_KEY, REWARD_KEY = "intenttuner.init_lora", "intenttuner.reward_finetune"
REWARD_SETTINGS = "reward_finetune"  # the key in TrainingSet.settings

# Fields of an intent that hold pixels (base64 PNG crops); never written into a LoRA.
_PIXEL_FIELDS = {"crop_png"}
# A long unbroken base64 run or a data: URL is embedded binary, whatever its field is called.
_EMBEDDED_BINARY = re.compile(r"data:[\w/+.-]+;base64,|[A-Za-z0-9+/=]{512,}")
_PATH_FIELDS = ("base_model", "training_set", "output_dir", "resume_from", "init_lora")


def training_metadata(config: TrainConfig, *, kind: str, training_set, steps: int, epoch: int,
                      started_at: float, finished_at: float | None, resolution: int,
                      optimizer: str, bucket_info: Mapping, base_model_name: str,
                      run_name: str | None = None, mixed_precision: str | None = None,
                      world_size: int = 1, batches_per_epoch: int | None = None,
                      max_steps: int | None = None,
                      base_probe: list[float] | None = None) -> dict[str, str]:
    """The header metadata of a LoRA file (see the module docstring); every value a string.

    ``training_set``: the `TrainingSet` trained on; ``steps`` / ``epoch``: optimizer steps and
    epochs done when this file is written; ``started_at`` / ``finished_at``: unix times;
    ``bucket_info``: `bucket_info(...)`; ``base_model_name``: the base checkpoint (only its file
    or folder name is kept); ``run_name``: the resolved run name (default ``config.run_name``
    or the set's folder name); ``mixed_precision``: the resolved precision (default the
    config's); ``world_size``: processes training together; ``batches_per_epoch`` /
    ``max_steps``: the run's own counts (buckets round each bucket's batches up), else estimated;
    ``base_probe``: `init_lora.base_probe` of the base model (kept to refuse continuing the
    LoRA on another one).
    """
    if kind not in BASE_MODEL_VERSION:
        raise ValueError(f"unknown model kind '{kind}' (known: {', '.join(BASE_MODEL_VERSION)})")
    name = run_name or config.run_name or _name(training_set.root)
    images = sum(item.repeats for item in training_set.items)
    if batches_per_epoch is None:  # a file written outside a run: the one-bucket estimate
        batches_per_epoch = math.ceil(images / (config.batch_size * world_size)) if images else 0
    batches = batches_per_epoch
    updates_per_epoch = max(1, math.ceil(batches / config.gradient_accumulation_steps))
    if max_steps is None:
        max_steps = config.epochs * updates_per_epoch if config.epochs else config.max_train_steps
    sides = [side for size in bucket_sizes(resolution) for side in size]
    metadata: dict[str, Any] = {
        "ss_output_name": name,
        "ss_training_started_at": started_at,
        "ss_sd_model_name": _name(base_model_name),
        "ss_base_model_version": BASE_MODEL_VERSION[kind],
        "ss_v2": False,
        "ss_network_module": NETWORK_MODULE,
        "ss_network_dim": config.rank,
        "ss_network_alpha": config.alpha,
        "ss_learning_rate": config.learning_rate,
        "ss_unet_lr": config.learning_rate,
        "ss_text_encoder_lr": config.te_lr() if config.train_text_encoder else 0.0,
        "ss_lr_scheduler": config.lr_scheduler,
        "ss_lr_warmup_steps": config.lr_warmup_steps,
        "ss_optimizer": optimizer,
        "ss_max_grad_norm": config.max_grad_norm,
        "ss_mixed_precision": mixed_precision or config.mixed_precision,
        "ss_full_fp16": False,
        "ss_gradient_checkpointing": config.gradient_checkpointing,
        "ss_gradient_accumulation_steps": config.gradient_accumulation_steps,
        "ss_batch_size_per_device": config.batch_size,
        "ss_total_batch_size": config.batch_size * config.gradient_accumulation_steps * world_size,
        "ss_num_train_images": images,
        "ss_num_reg_images": 0,
        "ss_num_batches_per_epoch": batches,
        "ss_num_epochs": math.ceil(max_steps / updates_per_epoch),
        "ss_max_train_steps": max_steps,
        "ss_steps": steps,
        "ss_epoch": epoch,
        "ss_seed": config.seed,
        "ss_noise_offset": config.noise_offset,
        "ss_min_snr_gamma": config.min_snr_gamma,
        "ss_caption_dropout_rate": config.caption_dropout,
        "ss_clip_skip": None,  # kohya's default: the last layer (SD 1.5), penultimate (SDXL)
        "ss_cache_latents": True,
        "ss_resolution": (resolution, resolution),
        "ss_enable_bucket": config.buckets,
        "ss_bucket_no_upscale": not config.upscale_small_images,
        "ss_min_bucket_reso": min(sides),
        "ss_max_bucket_reso": max(sides),
        "ss_flip_aug": config.flip,
        "ss_color_aug": False,
        "ss_random_crop": False,
        "ss_shuffle_caption": False,
        "ss_keep_tokens": 0,
        "ss_bucket_info": json.dumps(bucket_info),
        "ss_tag_frequency": json.dumps(tag_frequency(training_set)),
        "ss_dataset_dirs": json.dumps(dataset_dirs(training_set)),
        "ss_reg_dataset_dirs": json.dumps({}),
    }
    if finished_at is not None:
        metadata["ss_training_finished_at"] = finished_at
    if config.conv_rank:  # kohya: --network_args conv_dim=N conv_alpha=A, values as typed
        metadata["ss_network_args"] = json.dumps(
            {"conv_dim": str(config.conv_rank), "conv_alpha": str(config.conv_alpha)})
    out = {key: str(value) for key, value in metadata.items()}
    intent = public_intent(config.intent if config.intent is not None else training_set.intent)
    out.update(model_spec(kind, title=name, resolution=resolution,
                          timestamp=finished_at or started_at, intent=intent))
    if intent is not None:
        out[INTENT_KEY] = json.dumps(intent, ensure_ascii=False, separators=(",", ":"))
    out[CONFIG_KEY] = shareable_config(config)
    out.update(provenance(config, training_set, base_probe))
    return out


def provenance(config: TrainConfig, training_set, base_probe: list[float] | None
               ) -> dict[str, str]:
    """The probe, the init_lora's name and a reward fine-tune's settings (names only)."""
    out = {}
    if base_probe:
        out[PROBE_KEY] = json.dumps(base_probe)
    if config.init_lora:  # a resume keeps it: the run still began from that file
        out[INIT_KEY] = _name(config.init_lora)
    reward = (getattr(training_set, "settings", None) or {}).get(REWARD_SETTINGS)
    if reward:
        out[REWARD_KEY] = json.dumps(_without_pixels(reward), ensure_ascii=False,
                                     separators=(",", ":"))
    return out


def model_spec(kind: str, *, title: str, resolution: int, timestamp: float,
               intent: Mapping | None) -> dict[str, str]:
    """The ``modelspec.*`` keys of a LoRA of a ``kind`` model (kohya's strings)."""
    spec = {
        "modelspec.sai_model_spec": "1.0.1",
        "modelspec.architecture": ARCHITECTURE[kind],
        "modelspec.implementation": IMPLEMENTATION[kind],
        "modelspec.implementation_version": f"intenttuner/{__version__}",
        "modelspec.title": title,
        "modelspec.resolution": f"{resolution}x{resolution}",
        "modelspec.prediction_type": "epsilon",
        "modelspec.date": datetime.fromtimestamp(int(timestamp), timezone.utc).isoformat(),
    }
    triggers = [w for w in (intent or {}).get("trigger_words") or [] if isinstance(w, str)]
    if triggers:
        spec["modelspec.trigger_phrase"] = ", ".join(triggers)
        spec["modelspec.usage_hint"] = f"Use the trigger word(s): {', '.join(triggers)}"
    return spec


def tag_frequency(training_set) -> dict[str, dict[str, int]]:
    """kohya's ``ss_tag_frequency``: group folder (``<repeats>_<name>``) -> tag -> images whose
    caption has it (comma-separated, stripped, lowercased)."""
    found: dict[str, dict[str, int]] = {}
    for item in training_set.items:
        counts = found.setdefault(_folder(item.image), {})
        for tag in item.caption.split(","):
            if tag := tag.strip().lower():
                counts[tag] = counts.get(tag, 0) + 1
    return found


def dataset_dirs(training_set) -> dict[str, dict[str, int]]:
    """kohya's ``ss_dataset_dirs``: group folder -> ``{"n_repeats", "img_count"}``."""
    found: dict[str, dict[str, int]] = {}
    for item in training_set.items:
        entry = found.setdefault(_folder(item.image), {"n_repeats": item.repeats, "img_count": 0})
        entry["img_count"] += 1
    return found


def bucket_info(buckets: Iterable[tuple[int, int]], repeats: Iterable[int]) -> dict:
    """kohya's ``ss_bucket_info`` from each item's (w, h) bucket and repeats: ``{"buckets":
    {index: {"resolution": [w, h], "count": images with repeats}}, "mean_img_ar_error": 0}``
    (buckets in size order; the aspect error is not tracked here)."""
    counts: dict[tuple[int, int], int] = {}
    for bucket, times in zip(buckets, repeats, strict=True):
        counts[tuple(bucket)] = counts.get(tuple(bucket), 0) + times
    return {"buckets": {i: {"resolution": list(b), "count": counts[b]}
                        for i, b in enumerate(sorted(counts))},
            "mean_img_ar_error": 0.0}


def public_intent(intent: Mapping | None) -> dict | None:
    """The intent as it may travel: no pixel fields at any depth, and no string that is
    embedded binary (a base64 image under another name)."""
    if intent is None:
        return None
    return _without_pixels(dict(intent))


def shareable_config(config: TrainConfig) -> str:
    """``config`` as JSON with every path cut to its last part (a file or folder name), and
    the intent as `public_intent`."""
    values = config.model_dump(mode="json")
    for field in _PATH_FIELDS:
        values[field] = _name(values[field]) if values[field] else values[field]
    values["intent"] = public_intent(values["intent"])
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def _without_pixels(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_pixels(v) for k, v in value.items()
                if k not in _PIXEL_FIELDS and not _is_binary(v)}
    if isinstance(value, list):
        return [_without_pixels(v) for v in value if not _is_binary(v)]
    return value


def _is_binary(value: Any) -> bool:
    return isinstance(value, str) and _EMBEDDED_BINARY.search(value) is not None


def _folder(image: str) -> str:
    return image.split("/", 1)[0]


def _name(path: str) -> str:
    """The last part of a path written on any OS (a Windows path read on Linux too)."""
    return PurePath(str(path).replace("\\", "/").rstrip("/")).name
