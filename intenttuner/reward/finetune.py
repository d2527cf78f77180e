"""Reward-weighted fine-tuning of a trained LoRA (Lee et al. 2023, stage 3): the LoRA goes on
training, from its own saved weights, on the generated images weighted by their marks or
predicted reward plus its original training set at weight beta (`weighted_set`), through the
very trainer LoRA Train uses: the same checkpoints, file format, Cancel and resume.

    old LoRA + feedback + original set -> weighted set -> train(init_lora=old) -> new LoRA
                                                      -> before / after comparison

The new run sits beside the old one: ``<old>-reward`` (``-reward-2``... when taken), its
network (rank, alpha, conv_rank, text encoder) and recipe (resolution, batch size, precision,
min-SNR...) the old run's, read from the old file's own metadata (its config.json as the
trainer wrote it) or, for a LoRA made elsewhere, from its tensors. Resuming a reward run reuses
the weighted set its checkpoint was trained on (its run folder's config.json names it), so a
resumed run trains on exactly the same images and weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..dataset.kohya_read import read_training_set
from ..errors import InputError
from ..training.config import TrainConfig, load_config, make_config
from ..training.init_lora import network_of
from ..training.kohya_keys import adapters_from_kohya
from ..training.lora_file import read_lora_file
from ..training.lora_metadata import CONFIG_KEY
from ..training.run_folder import checkpoint_file
from .compare import Comparison, LoraFile, compare_items, compare_loras
from .weighted_set import GENERATED_GROUP, WEIGHTINGS, WeightedSet, build_weighted_set

# The old run's recipe the fine-tune keeps (the network must match to continue its weights).
INHERITED = ("rank", "alpha", "conv_rank", "conv_alpha", "train_text_encoder", "text_encoder_lr",
             "lr_scheduler", "batch_size", "gradient_accumulation_steps", "optimizer",
             "weight_decay", "max_grad_norm", "resolution", "buckets", "flip", "mixed_precision",
             "gradient_checkpointing", "min_snr_gamma", "noise_offset", "caption_dropout",
             "cache_latents_to_disk", "intent", "output_dir")
RUN_SUFFIX = "-reward"


@dataclass(frozen=True)
class FinetuneSettings:
    weighting: str = "marks"      # weighted_set.WEIGHTINGS
    beta: float = 1.0             # the regulariser's weight (the paper's beta)
    max_train_steps: int = 200
    learning_rate: float = 5e-5   # below LoRA Train's 1e-4: a correction, not a new subject
    seed: int = 0
    save_every_steps: int = 0
    resume_from: str = ""         # a checkpoint of an earlier reward run
    run_name: str = ""            # empty: "<old LoRA>-reward"

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise InputError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got "
                             f"{self.weighting!r}.")


@dataclass
class FinetuneResult:
    train: object                 # training.trainer.TrainResult of the new run
    config: TrainConfig
    weighted: WeightedSet | None  # None when resumed (the set was made by the first session)
    old_lora: Path
    comparison: Comparison | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"Reward fine-tune of {self.old_lora.name}: {self.train.run_name}, "
                 f"{self.train.steps} step(s) (weighting {self.config_note()})."]
        if self.weighted is not None:
            lines.append(self.weighted.summary())
        if self.comparison is not None:
            lines.append(self.comparison.summary())
        return "\n".join(lines + [f"warning: {w}" for w in self.warnings])

    def config_note(self) -> str:
        if self.weighted is None:
            return "as the resumed run's"
        return f"{self.weighted.weighting}, beta {self.weighted.beta:g}"


def lora_settings(path: Path, run_config: TrainConfig | None = None) -> dict:
    """The `INHERITED` settings of the LoRA at ``path``: its run's config when given, else the
    config the trainer wrote into the file, else the network read off its tensors."""
    if run_config is not None:
        values = run_config.model_dump()
    else:
        tensors, metadata = read_lora_file(path)
        values = _json(metadata.get(CONFIG_KEY))
        if not values:
            kind = "sdxl" if any(k.startswith("lora_te1_") for k in tensors) else "sd15"
            try:
                adapters, alphas = adapters_from_kohya(tensors, kind)
            except ValueError as exc:
                raise InputError(f"{path.name} is not a LoRA this trainer can continue "
                                 f"({exc}).") from None
            found = network_of(adapters, alphas)
            values = {"rank": max(found["rank"], default=16),
                      "alpha": max(found["alpha"], default=8.0),
                      "conv_rank": max(found["conv_rank"], default=0),
                      "conv_alpha": max(found["conv_alpha"], default=1.0),
                      "train_text_encoder": any(c != "unet" for c in adapters)}
        values = {k: v for k, v in values.items() if k != "output_dir"}  # a name only
    return {k: values[k] for k in INHERITED if k in values}


def finetune_config(old_lora: Path, base_model, training_set, settings: FinetuneSettings,
                    inherited: dict) -> TrainConfig:
    """The new run's config: the old recipe, the fine-tune's steps, rate and seed, the adapters
    started from ``old_lora``. Small generated images are upscaled to their bucket rather than
    refused (samples are often made below the training resolution)."""
    return make_config(**{
        **inherited, "base_model": str(base_model.source), "training_set": training_set.root,
        "run_name": settings.run_name.strip() or f"{old_lora.stem}{RUN_SUFFIX}",
        "init_lora": str(old_lora), "max_train_steps": settings.max_train_steps, "epochs": 0,
        "lr_warmup_steps": 0, "learning_rate": settings.learning_rate, "seed": settings.seed,
        "save_every_steps": settings.save_every_steps, "upscale_small_images": True})


def resumed_config(settings: FinetuneSettings, probe: TrainConfig) -> TrainConfig:
    """A resume: the checkpoint's run config (its weighted set, its init_lora) with the
    checkpoint, more steps if asked."""
    checkpoint = checkpoint_file(probe)
    try:
        config = load_config(checkpoint.parent)
    except InputError:
        raise InputError(f"resume_from {settings.resume_from!r}: its run folder has no "
                         "config.json, so the weighted set it trained on is unknown; resume a "
                         "checkpoint of a Reward Fine-Tune run.") from None
    if not config.init_lora:
        raise InputError(f"resume_from {checkpoint.name} is a checkpoint of an ordinary LoRA "
                         "Train run; resume it with LoRA Train, or fine-tune its final LoRA.")
    return config.model_copy(update={"resume_from": str(checkpoint),
                                      "max_train_steps": max(settings.max_train_steps,
                                                             config.max_train_steps)})


def reward_finetune(old_lora: str | Path, base_model, original_set, feedback,
                    settings: FinetuneSettings = FinetuneSettings(), reward_model=None,
                    encoder=None, old_config: TrainConfig | None = None, observer=None,
                    compare_settings=None, monitor=None,
                    intent: dict | None = None) -> FinetuneResult:
    """Fine-tune ``old_lora`` (a file in models/loras or a path; ``old_config``: its run's
    config when known) on ``feedback`` (a `FeedbackSet`) with ``original_set`` (the set it
    was trained on) as the regulariser, on ``base_model`` (the one it was trained on: another
    is refused). ``observer``: as for `train` (the monitor, Stop). ``compare_settings``: a
    `MonitorSettings` to sample the before/after comparison with (None: no comparison);
    ``monitor``: a `MonitorSpec` to score both by the intent on its plan's prompts;
    ``intent``: Intent.public_dict() for the new file's metadata (default: the old run's)."""
    from ..training.trainer import train

    check_reward_model(reward_model, encoder)
    old_lora = Path(old_lora)
    if not old_lora.is_file():
        raise InputError(f"No LoRA file at {old_lora}; choose the LoRA to fine-tune (LoRA "
                         "Train's lora output, or a file in models/loras).")
    inherited = lora_settings(old_lora, old_config)
    if intent is not None:
        inherited["intent"] = intent
    weighted = None
    if settings.resume_from:
        probe = make_config(base_model=str(base_model.source), training_set=original_set.root,
                            resume_from=settings.resume_from,
                            output_dir=inherited.get("output_dir", ""))
        config = resumed_config(settings, probe)
        training_set = read_training_set(config.training_set)
    else:
        provenance = {"source_lora": old_lora.name}
        weighted = build_weighted_set(
            feedback, original_set, settings.run_name.strip() or old_lora.stem + RUN_SUFFIX,
            settings.weighting, settings.beta, reward_model, encoder, provenance)
        training_set = weighted.training_set
        config = finetune_config(old_lora, base_model, training_set, settings, inherited)
    result = train(config, base_model=base_model, training_set=training_set, observer=observer)
    outcome = FinetuneResult(train=result, config=config, weighted=weighted, old_lora=old_lora,
                             warnings=list(result.warnings))
    if compare_settings is not None:
        outcome.comparison = compare_runs(base_model, old_lora, result.lora_path, config,
                                          training_set, original_set, compare_settings,
                                          reward_model, encoder, monitor)
    return outcome


def check_reward_model(reward_model, encoder) -> None:
    """Before any step (a mismatch found after training would waste the run): a connected
    reward model needs the very encoder it was trained with, to weight the images and to
    score the comparison."""
    if reward_model is None:
        return
    if encoder is None:
        raise InputError(f"Reward model {getattr(reward_model, 'name', '')} is connected but no "
                         "image encoder: connect the encoder it was trained with (Load Image "
                         "Encoder), or disconnect the reward model.")
    reward_model.check_encoder(encoder)


def compare_runs(base_model, old_lora: Path, new_lora: Path, config: TrainConfig,
                 training_set, original_set, settings, reward_model, encoder,
                 monitor) -> Comparison:
    """`compare_loras` on the feedback's prompts (the generated items' captions), or the
    monitor's plan and scores when a monitor is given; with ``original_set``'s reproduction
    (its denoising loss) under both LoRAs."""
    from ..runtime import get_runtime

    size = settings.sample_size or config.resolution_for(base_model.kind)
    device = get_runtime().torch_device()
    plan = score = None
    if monitor is not None:
        from ..monitor.scoring import plan_of, scorer, training_references

        plan, _ = plan_of(monitor)
        references = monitor.reference_images or training_references(training_set) or None
        score = scorer(monitor, references) if plan is not None else None
    prompts = [i.caption for i in training_set.items if i.group == GENERATED_GROUP]
    items = compare_items(prompts or [i.caption for i in training_set.items], settings.seed)
    reproduce = [(original_set.image_path(i), i.caption) for i in original_set.items]
    return compare_loras(base_model, LoraFile(old_lora, config), LoraFile(new_lora, config),
                         items, settings, size, device, reward_model, encoder, score, plan,
                         reproduce)


def _json(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
