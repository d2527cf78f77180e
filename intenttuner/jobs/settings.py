"""`RunSettings`: every setting of a headless pipeline run, one section per stage, each section
the stage's own settings object with the defaults its ComfyUI node shows (Concept Detect's
thresholds, IntentCrop's crop rules, LoRA Train's config, the Training Monitor's...). Checked
when made, so a bad value is refused before any model loads.

A section's field is changed from text with ``SECTION.NAME=VALUE`` (`RunSettings.with_values`,
the command line's ``--set``): ``detect.box_threshold=0.3``, ``train.rank=8``,
``monitor.sample_every_steps=50``, ``models.detector=groundingdino_swinb_cogcoor.pth``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..augment.inpaint import AUTO, BACKENDS
from ..augment.inpaint_base import InpaintSettings
from ..augment.masks import MaskSettings
from ..augment.plan import CropSettings
from ..captions.caption_set import CaptionSettings
from ..dataset.image_decode import DecodePolicy
from ..dataset.kohya import MAX_REPEATS
from ..detection.detect import DetectSettings
from ..detection.ref_filter import FilterSettings
from ..errors import InputError
from ..evaluation.controllability import ControlSettings
from ..evaluation.leakage import LeakageSettings
from ..evaluation.prompts import PlanSettings
from ..evaluation.stability import StabilitySettings
from ..intent.parse import ON_LLM_FAILURE, ON_UNPLACED
from ..llm import LLMSettings
from ..monitor.settings import MonitorSettings
from ..training.config import TrainConfig, make_config

NONE = "none"  # as the name of an optional model (segmenter, inpainter, quality): leave it out
# LoRA Train settings the pipeline sets itself (what it trains on, where the LoRA goes).
PIPELINE_TRAIN_FIELDS = ("version", "base_model", "training_set", "output_dir", "intent",
                         "resume_from")


@dataclass(frozen=True)
class ModelChoices:
    """The model of each family, as its loader node lists it (a file or folder name in the
    family's models folder, or a manifest entry, downloaded on first use); None: the family's
    default (the manifest's), as the loader node's default."""

    detector: str | None = None  # Load Concept Detector (GroundingDINO)
    segmenter: str | None = None  # Load Segment Anything; "none": boxes only, no masks
    image_encoder: str | None = None  # Load Image Encoder: Reference Filter and the scores' CLIP
    captioner: str | None = None  # Load Captioner
    base_model: str | None = None  # Load Base Model for Training (SD 1.5 / SDXL)
    base_precision: str = "auto"  # its precision widget
    inpainter: str | None = None  # Load Inpaint Model (LaMa); "none": no LaMa (auto: classical)
    identity_encoder: str | None = None  # Load Identity Encoder (DINO), for stability
    quality: str | None = None  # Load Quality Scorer; "none": stability without its quality term
    quality_clip: str | None = None  # the CLIP the quality predictor reads (default: as evaluate)
    local_llm: str | None = None  # Load Local LLM; None: no local LLM (see RunSettings.llm)


@dataclass(frozen=True)
class IntentSettings:
    on_unplaced: str = "error"  # Intent Parse's on_unplaced: stop on sentences it cannot place
    on_llm_failure: str = "error"  # its if_llm_fails: stop, or fall back to the offline parser

    def __post_init__(self) -> None:
        for name, choices in (("on_unplaced", ON_UNPLACED), ("on_llm_failure", ON_LLM_FAILURE)):
            if getattr(self, name) not in choices:
                raise InputError(f"intent.{name} must be one of {', '.join(choices)}, got "
                                 f"{getattr(self, name)!r}.")


@dataclass(frozen=True)
class ImageSettings:
    max_side: int = DecodePolicy().max_side  # Load Training Images: larger images downscaled
    recursive: bool = False  # also the images in subfolders

    def __post_init__(self) -> None:
        if self.max_side < 0:
            raise InputError(f"images.max_side must be 0 (full size) or more, got "
                             f"{self.max_side}.")


@dataclass(frozen=True)
class DatasetSettings:
    max_repeats: int = MAX_REPEATS  # Save Training Set's cap on a group's balancing repeats
    repeat_multiplier: int = 1  # and its multiplier of every group's repeats

    def __post_init__(self) -> None:
        if self.max_repeats < 1 or self.repeat_multiplier < 1:
            raise InputError("dataset.max_repeats and dataset.repeat_multiplier must be 1 or "
                             "more.")


@dataclass(frozen=True)
class GenerateSettings:
    """Generation from the evaluation prompts after training (the base model, then with the
    LoRA): the Training Monitor's sampler settings, so the final images are made as its
    sample points were."""

    steps: int = MonitorSettings().sample_steps  # denoising steps per image
    guidance_scale: float = MonitorSettings().guidance_scale
    size: int = 0  # px, square, a multiple of 8; 0: the run's training resolution
    batch_size: int = MonitorSettings().batch_size  # images per pipeline call

    def __post_init__(self) -> None:
        try:
            self.sampling()
        except InputError as exc:
            raise InputError(f"generate: {exc}".replace("sample_steps", "steps")
                             .replace("sample_size", "size")) from None

    def sampling(self) -> MonitorSettings:
        """The settings `monitor.sampling.generate` reads (its steps, guidance and batch)."""
        return MonitorSettings(sample_steps=self.steps, guidance_scale=self.guidance_scale,
                               sample_size=self.size, batch_size=self.batch_size)


@dataclass(frozen=True)
class RunSettings:
    """Every setting of `jobs.pipeline.run_pipeline`, stage by stage (see the module
    docstring). ``train``: LoRA Train settings (`TrainConfig` fields) that differ from its
    defaults; the pipeline sets what it trains on and where the LoRA goes."""

    models: ModelChoices = field(default_factory=ModelChoices)
    llm: LLMSettings | None = None  # an OpenAI-compatible endpoint (LLM Settings) for parsing
    # and captions; None: the local LLM of models.local_llm, else the offline parser and rules
    intent: IntentSettings = field(default_factory=IntentSettings)
    images: ImageSettings = field(default_factory=ImageSettings)
    detect: DetectSettings = field(default_factory=DetectSettings)
    ref_filter: FilterSettings = field(default_factory=FilterSettings)
    crop: CropSettings = field(default_factory=CropSettings)
    inpaint_backend: str = AUTO  # Intent Inpaint's backend: auto = LaMa when there is one
    masks: MaskSettings = field(default_factory=MaskSettings)
    inpaint: InpaintSettings = field(default_factory=InpaintSettings)
    dataset: DatasetSettings = field(default_factory=DatasetSettings)
    captions: CaptionSettings = field(default_factory=CaptionSettings)
    train: Mapping[str, Any] = field(default_factory=dict)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    plan: PlanSettings = field(default_factory=PlanSettings)  # Evaluation Prompts
    generate: GenerateSettings = field(default_factory=GenerateSettings)
    stability: StabilitySettings = field(default_factory=StabilitySettings)
    controllability: ControlSettings = field(default_factory=ControlSettings)
    leakage: LeakageSettings = field(default_factory=LeakageSettings)

    def __post_init__(self) -> None:
        if self.inpaint_backend not in (AUTO, *BACKENDS):
            raise InputError(f"inpaint_backend must be one of {', '.join([AUTO, *BACKENDS])}, "
                             f"got {self.inpaint_backend!r}.")
        if self.llm is not None and self.models.local_llm is not None:
            raise InputError("Both an LLM endpoint and a local LLM are set: choose one.")
        self.train_config(base_model="-", training_set="-")  # refused now, not after hours

    def train_config(self, **pipeline_values: Any) -> TrainConfig:
        """LoRA Train's config: its defaults, ``train``'s values and the pipeline's own."""
        _check_train_keys(self.train)
        return make_config(**{**self.train, **pipeline_values})

    def with_values(self, assignments: Sequence[str]) -> RunSettings:
        """A copy with each ``SECTION.NAME=VALUE`` (or ``NAME=VALUE`` of a top-level setting
        such as ``inpaint_backend``) applied, the value read as the field's type ("null" for
        None where it may be None, also "none" where that is not a name); `InputError`
        naming a bad key or value."""
        changes: dict[str, Any] = {}
        sections: dict[str, dict[str, Any]] = {}
        for text in assignments:
            key, sep, raw = text.partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not section:
                raise InputError(f"setting {text!r}: write SECTION.NAME=VALUE, e.g. "
                                 "detect.box_threshold=0.3 or train.rank=8.")
            if not dot:
                changes[section] = _top_level(self, section, raw.strip())
            else:
                sections.setdefault(section, {})[name] = raw.strip()
        for section, values in sections.items():
            changes[section] = _section(self, section, values)
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Every setting, JSON-ready (for OUT/run.json)."""
        return dataclasses.asdict(self)


SECTION_HELP = "; ".join(f.name for f in dataclasses.fields(RunSettings) if f.name != "llm")


def _top_level(settings: RunSettings, name: str, raw: str) -> Any:
    names = {f.name for f in dataclasses.fields(settings)} - {"llm", "train"}
    if name not in names or dataclasses.is_dataclass(getattr(settings, name)):
        raise InputError(f"setting {name!r} is not a single setting: write SECTION.NAME=VALUE "
                         f"with one of the sections {SECTION_HELP}.")
    return _read(raw, _hints(RunSettings)[name], name)


def _section(settings: RunSettings, section: str, values: dict[str, str]) -> Any:
    current = getattr(settings, section, None)
    if section == "train":
        _check_train_keys(values)
        # pydantic reads "8", "1e-4" and "true" as the fields' types; the typed values are kept
        merged = {**current, **{n: (None if v.lower() in (NONE, "null") else v)
                                for n, v in values.items()}}
        config = make_config(base_model="-", training_set="-", **merged)
        return {name: getattr(config, name) for name in merged}
    if section == "llm" or not dataclasses.is_dataclass(current):
        raise InputError(f"{section!r} is not a settings section; the sections are "
                         f"{SECTION_HELP}.")
    hints = _hints(type(current))
    names = {f.name for f in dataclasses.fields(current)}
    unknown = [n for n in values if n not in names]
    if unknown:
        raise InputError(f"{section}.{unknown[0]} is not a setting of {section}; it has "
                         f"{', '.join(sorted(names))}.")
    changed = {n: _read(v, hints[n], f"{section}.{n}") for n, v in values.items()}
    try:
        return dataclasses.replace(current, **changed)
    except InputError as exc:  # the section's own check, named by the section
        raise InputError(f"{section} settings: {exc}") from None


def _check_train_keys(names) -> None:
    """Refuse what is no LoRA Train setting, or one the pipeline sets itself."""
    unknown = [n for n in names if n not in TrainConfig.model_fields]
    if unknown:
        raise InputError(f"train.{unknown[0]} is not a LoRA Train setting; see "
                         "intenttuner/training/config.py for them all (rank, alpha, "
                         "max_train_steps, learning_rate, resolution...).")
    taken = sorted(set(names) & set(PIPELINE_TRAIN_FIELDS))
    if taken:
        raise InputError(f"train.{taken[0]} is set by the pipeline itself (it trains on the "
                         "training set it writes, into OUT/lora); leave it out.")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _read(raw: str, hint: Any, key: str) -> Any:
    """``raw`` as a value of type ``hint`` (bool, int, float, str, or one of them | None)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    # "null": None (a model's default); "none" too, except where it is a name: the models'
    # "none" leaves an optional model out.
    if type(None) in options and raw.lower() in ("null", *(() if str in options else (NONE,))):
        return None
    kind = next(t for t in options if t is not type(None))
    try:
        if kind is bool:
            return {"true": True, "1": True, "yes": True, "on": True, "false": False,
                    "0": False, "no": False, "off": False}[raw.lower()]
        return kind(raw)
    except (KeyError, ValueError, TypeError):
        raise InputError(f"{key}={raw!r}: the value must be {KINDS.get(kind, kind)}.") from None


KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


# Smoke settings: tiny random models on a CPU in a few minutes. Every box the tiny detector
# proposes is kept (its scores mean nothing) and crops may be small; inpainting is classical
# (LaMa cannot be shrunk: 51 M parameters, seconds per image on a CPU); training is 2 steps at
# 64 px, sampled and scored after each; every test gets one prompt, sampled without
# classifier-free guidance (half the UNet work).
SMOKE_VALUES = (
    "images.max_side=128",
    "detect.box_threshold=0", "detect.text_threshold=0", "detect.max_per_phrase=2",
    "ref_filter.threshold=-1", "ref_filter.top_k=1",
    "crop.min_size=32",
    "models.inpainter=none",
    "captions.max_new_tokens=12",
    "train.max_train_steps=2", "train.resolution=64", "train.rank=4", "train.alpha=4",
    "train.learning_rate=1e-3", "train.gradient_checkpointing=false",
    "train.upscale_small_images=true", "train.cache_latents_to_disk=false",
    "monitor.sample_every_steps=1", "monitor.sample_steps=2", "monitor.sample_size=64",
    "monitor.guidance_scale=1", "monitor.batch_size=8", "monitor.box_threshold=0",
    "plan.prompts_per_test=1", "plan.images_per_prompt=1",
    "generate.steps=2", "generate.size=64", "generate.guidance_scale=1", "generate.batch_size=8",
    "stability.box_threshold=0", "controllability.box_threshold=0", "leakage.box_threshold=0",
)


def smoke_settings(models: ModelChoices) -> RunSettings:
    """The smoke run's settings with ``models`` (the tiny models' names)."""
    return RunSettings(models=models).with_values(SMOKE_VALUES)
