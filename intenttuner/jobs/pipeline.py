"""`run_pipeline`: the whole IntentTuner pipeline headless, in-process, the stages of the full
ComfyUI workflow top to bottom:

    parse intent -> load images -> detect concepts -> reference filter -> intent crops ->
    inpaint deleted -> save training set -> captions -> train LoRA (with the monitor) ->
    generate (base) -> generate (LoRA) -> evaluate -> report

Writes into ``out``: dataset/ (the captioned kohya training set), lora/ (the LoRA, its best
checkpoint and run folder), generated/ (the evaluation plan and both models' images),
report.png and report.json (both models' stability, controllability and delete leakage side by
side), curves.png (the monitor's curves), intent.json (the parsed intent, with its reference
crops) and run.json (settings, stage times, scores). See `inputs` for what happens when ``out``
already holds a run's results.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..evaluation.files import save_plan
from ..evaluation.prompts import build_plan
from ..evaluation.report import SCORES, table_rows
from ..runtime import get_runtime, set_runtime
from . import prepare, train_eval
from .inputs import (
    CURVES_PNG,
    DATASET,
    GENERATED,
    INTENT_JSON,
    LORA,
    REPORT_JSON,
    REPORT_PNG,
    RUN_JSON,
    check_boxes,
    prepare_out,
    reference_images,
)
from .models import RunModels
from .progress import StageRuntime, Stages
from .settings import RunSettings

log = logging.getLogger(__name__)

STAGES = ("parse intent", "load images", "detect concepts", "reference filter", "intent crops",
          "inpaint deleted", "save training set", "captions", "train LoRA", "generate (base)",
          "generate (LoRA)", "evaluate", "report")


@dataclass(frozen=True)
class RunOutputs:
    dataset: Path  # OUT/dataset: the captioned training set
    lora: Path  # OUT/lora: the LoRA files and the run folder
    report_png: Path
    report_json: Path
    curves_png: Path
    generated: Path | None = None  # OUT/generated: the plan and both models' images
    run_json: Path | None = None  # OUT/run.json: settings, stage times, scores
    lora_file: Path | None = None  # the LoRA evaluated (the best checkpoint, else the final)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    summary: tuple[str, ...] = ()  # the lines the command prints


def run_pipeline(images: Path, intent: str, out: Path, settings: RunSettings, *,
                 references: Sequence[Path] = (), boxes: str = "", progress: bool = True,
                 overwrite: bool = False) -> RunOutputs:
    """Run every stage (see the module docstring) on the training images in ``images`` for
    the ``intent`` text, with ``references`` (reference image files, or folders of them) and
    ``boxes`` (the box editor's JSON, box n is [n] in the intent). ``progress``: a bar per
    stage. ``overwrite``: replace an earlier run's results in ``out`` (else refused)."""
    images, out = Path(images), Path(out)
    references = [Path(p) for p in references]
    if not images.is_dir():
        raise InputError(f"The training images folder {images} does not exist; give the "
                         "folder that holds the training images.")
    reference_pils = reference_images(references)
    check_boxes(boxes, references, len(reference_pils))
    previous = get_runtime()
    runtime = StageRuntime(models_dir=previous.models_root, output_dir=previous.output_dir())
    set_runtime(runtime)
    try:
        with Stages(STAGES, runtime, progress) as stages:
            return _run(images, intent, out, settings, reference_pils, boxes, stages,
                        overwrite, [images, *references])
    finally:
        set_runtime(previous)


def _run(images: Path, text: str, out: Path, settings: RunSettings, reference_pils: list,
         boxes: str, stages: Stages, overwrite: bool, inputs: list[Path]) -> RunOutputs:
    models = RunModels(settings.models)
    # The cheap stages first: a bad intent or an empty images folder is refused before an
    # earlier run's results are replaced.
    with stages("parse intent"):
        intent = prepare.parse(text, reference_pils, boxes, models, settings)
        plan = build_plan(intent, settings.plan)  # an intent with nothing to test: refused now
    with stages("load images"):
        loaded = prepare.load_images(images, settings)
    out = prepare_out(out, overwrite, inputs)
    intent.save(out / INTENT_JSON)
    (out / GENERATED).mkdir()
    save_plan(plan, out / GENERATED / train_eval.PLAN_FILE)
    with stages("detect concepts"):
        detections = prepare.detect(loaded, intent, models, settings)
    with stages("reference filter"):
        detections = prepare.filter_references(loaded, detections, intent, models, settings)
    with stages("intent crops"):
        augmented = prepare.crops(loaded, detections, intent, settings)
    with stages("inpaint deleted"):
        augmented = prepare.inpaint(augmented, detections, intent, models, settings).augmented
    with stages("save training set"):
        training_set = prepare.save_set(augmented, intent, out, DATASET, settings)
    with stages("captions"):
        training_set, captions = prepare.caption(training_set, intent, models, settings)
    with stages("train LoRA"):
        model, eval_models = models.base_model(), models.eval_models()
        trained = train_eval.train_lora(training_set, intent, model, eval_models, settings,
                                        out / LORA)
        trained.monitor.curves_image().save(out / CURVES_PNG)
    with stages("generate (base)"):
        base = train_eval.generate(model, plan, settings, trained.config,
                                   out / GENERATED / "base")
    with stages("generate (LoRA)"):
        tuned = train_eval.generate(model, plan, settings, trained.config,
                                    out / GENERATED / "lora", lora=trained.lora)
    with stages("evaluate"):
        runs = [train_eval.score(base, intent, eval_models, train_eval.BASE_LABEL,
                                 training_set, settings),
                train_eval.score(tuned, intent, eval_models, trained.label, training_set,
                                 settings)]
    with stages("report"):
        title = f"{' '.join(intent.trigger_words)}: base model vs {trained.label}"
        train_eval.write_report(runs, title, out / REPORT_PNG, out / REPORT_JSON)
    summary = _summary(out, training_set, captions, trained, runs, stages.seconds)
    record = {"inputs": {"images": str(images), "references": [str(p) for p in inputs[1:]],
                         "intent": text},
              "settings": settings.as_dict(), "stage_seconds": stages.seconds,
              "training": _training_record(trained), "scores": _scores(runs),
              "summary": summary}
    (out / RUN_JSON).write_text(json.dumps(record, indent=2, default=str) + "\n",
                                encoding="utf-8")
    return RunOutputs(dataset=out / DATASET, lora=out / LORA, report_png=out / REPORT_PNG,
                      report_json=out / REPORT_JSON, curves_png=out / CURVES_PNG,
                      generated=out / GENERATED, run_json=out / RUN_JSON,
                      lora_file=trained.lora, stage_seconds=dict(stages.seconds),
                      summary=tuple(summary))


def _scores(runs: list) -> dict[str, dict[str, float | None]]:
    """{model label: {metric: score or None}} (leakage: lower is better)."""
    return {row["label"]: {column.key: row[column.key] for column in SCORES}
            for row in table_rows(runs)}


def _training_record(trained: train_eval.Trained) -> dict[str, Any]:
    result = trained.result
    return {"run": result.run_name, "steps": result.steps,
            "final_loss": result.losses[-1] if result.losses else None,
            "lora": str(result.lora_path), "evaluated": str(trained.lora),
            "best": trained.monitor.best, "warnings": result.warnings}


def _summary(out: Path, training_set, captions, trained: train_eval.Trained, runs: list,
             seconds: dict[str, float]) -> list[str]:
    """What the command prints: where things are, the scores side by side, the time."""
    result = trained.result
    lines = [f"training set: {out / DATASET} ({len(training_set.items)} images, "
             f"{len(captions.items)} captions)",
             f"LoRA: {result.lora_path} ({result.steps} steps)",
             f"evaluated: {trained.lora}"]
    lines += [f"  {line}" for line in trained.monitor.summary_lines()]
    scores = _scores(runs)
    width = max(len(label) for label in scores)
    header = "  ".join(f"{column.key:>15}" for column in SCORES)
    lines.append(f"{'':<{width}}  {header}")
    for label, values in scores.items():
        cells = "  ".join(f"{_number(values[column.key]):>15}" for column in SCORES)
        lines.append(f"{label:<{width}}  {cells}")
    lines.append("(leakage: lower is better; n/a: see report.png for why)")
    lines.append(f"report: {out / REPORT_PNG}, {out / REPORT_JSON}; curves: {out / CURVES_PNG}")
    lines.append(f"total {sum(seconds.values()):.1f} s: " + ", ".join(
        f"{name} {s:.1f} s" for name, s in seconds.items()))
    return lines


def _number(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "n/a"
