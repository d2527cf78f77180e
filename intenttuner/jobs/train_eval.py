"""The stages after the training set: LoRA training watched by the intent-aware monitor (LoRA
Train + Training Monitor), generation from the intent's evaluation prompts with the base model
alone and with the trained LoRA (what the workflows do with KSampler), their scores
(Stability, Controllability, Delete Leakage) and the report comparing them (Evaluation
Report). One base model serves training and both generations; one set of scoring models
serves the monitor and the final scores."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..dataset.naming import MAX_NAME, slug
from ..dataset.training_set import TrainingSet
from ..evaluation.evaluate import EvalModels, evaluate
from ..evaluation.pairing import Generated, pair_images
from ..evaluation.report import report_image, report_json
from ..evaluation.types import EvalPlan, EvalScores
from ..families.sd_model import BaseModel
from ..intent.schema import Intent
from ..monitor import sampling
from ..monitor.events import log_event
from ..monitor.monitor import TrainingMonitor
from ..monitor.scoring import training_references
from ..monitor.settings import MonitorSpec
from ..runtime import get_runtime
from ..training.config import TrainConfig
from ..training.lora_apply import lora_applied
from ..training.trainer import TrainResult, train
from .settings import RunSettings

log = logging.getLogger(__name__)

BASE_LABEL = "base"
PLAN_FILE = "plan.json"  # in OUT/generated, beside the images


@dataclass
class Trained:
    """A finished run and what the evaluation uses of it."""

    result: TrainResult
    monitor: TrainingMonitor
    config: TrainConfig
    lora: Path  # the LoRA evaluated: the monitor's best checkpoint, else the final file
    label: str  # its name in the report


def train_lora(training_set: TrainingSet, intent: Intent, model: BaseModel,
               eval_models: EvalModels, settings: RunSettings, loras: Path) -> Trained:
    """LoRA Train with a Training Monitor: the LoRA and its run folder in ``loras``; the
    monitor samples and scores every ``monitor.sample_every_steps`` steps and keeps the best
    checkpoint. The run is named after the trigger word unless ``train.run_name`` says."""
    values = dict(base_model=str(model.source), training_set=str(training_set.root),
                  intent=intent.public_dict(), output_dir=str(loras))
    if not str(settings.train.get("run_name") or "").strip():
        values["run_name"] = slug(" ".join(intent.trigger_words), "lora", MAX_NAME)
    config = settings.train_config(**values)
    monitor = TrainingMonitor(MonitorSpec(intent=intent, models=eval_models,
                                          settings=settings.monitor), emit=log_event)
    result = train(config, base_model=model, training_set=training_set, observer=monitor)
    for warning in result.warnings:
        log.warning("training: %s", warning)
    best = monitor.best
    lora = Path(best["path"]) if best else result.lora_path
    label = f"{result.run_name} LoRA" + (f" (step {best['step']})" if best else "")
    return Trained(result=result, monitor=monitor, config=config, lora=lora, label=label)


def generate(model: BaseModel, plan: EvalPlan, settings: RunSettings, config: TrainConfig,
             folder: Path, lora: Path | None = None) -> list[Generated]:
    """The plan's images from ``model`` (with the LoRA file ``lora`` applied, when given),
    saved as ``folder/<item id>.png`` (the names the evaluate command pairs by) and paired
    with the plan. Each item's noise comes from its own seed, so both models start every
    image from the same noise."""
    size = settings.generate.size or config.resolution_for(model.kind)
    if lora is None:
        pictures = _sample(model, plan, settings, size)
    else:
        with lora_applied(model, config, lora):
            pictures = _sample(model, plan, settings, size)
    folder.mkdir(parents=True, exist_ok=False)
    for item, picture in zip(plan.items, pictures, strict=True):
        picture.save(folder / f"{item.id}.png")
    return pair_images(plan, pictures)


def _sample(model: BaseModel, plan: EvalPlan, settings: RunSettings,
            size: int) -> list[Image.Image]:
    """`monitor.sampling.generate` batch by batch, so the stage's bar counts the images."""
    runtime = get_runtime()
    sampler = settings.generate.sampling()
    device = runtime.torch_device()
    items, step = plan.items, settings.generate.batch_size
    pictures: list[Image.Image] = []
    with runtime.progress(len(items), "Generating", unit="img") as bar:
        for start in range(0, len(items), step):
            batch = items[start:start + step]
            pictures += sampling.generate(model, batch, sampler, size, device)
            bar.update(len(batch))
    return pictures


def score(generated: list[Generated], intent: Intent, eval_models: EvalModels, label: str,
          training_set: TrainingSet, settings: RunSettings) -> EvalScores:
    """Stability, controllability and delete leakage of one model's images; stability
    compares with the training set's original images, as the monitor did."""
    return evaluate(generated, intent, eval_models, label,
                    reference_images=training_references(training_set) or None,
                    stability=settings.stability, controllability=settings.controllability,
                    leakage=settings.leakage)


def write_report(runs: list[EvalScores], title: str, png: Path, json_path: Path) -> None:
    """Evaluation Report: both models side by side, as an image and as JSON."""
    text = report_json(runs)  # first: it refuses duplicate labels before anything is written
    report_image(runs, title).save(png)
    json_path.write_text(text + "\n", encoding="utf-8")
