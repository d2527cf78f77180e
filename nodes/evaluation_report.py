"""Evaluation Report: up to four models' scores side by side, as a table and bar chart image and
as JSON, the JSON also saved under ComfyUI's output folder so runs can be compared later."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..intenttuner.dataset.naming import slug
from ..intenttuner.evaluation.report import report_image, report_json
from ..intenttuner.imageio import pils_to_batch
from ..intenttuner.runtime import get_runtime
from . import types
from .schema import ROOT_CATEGORY

CATEGORY = f"{ROOT_CATEGORY}/Evaluation"
RUNS = 4  # run_1 .. run_4
SUBFOLDER = ("intenttuner", "evaluations")  # under the output folder


def save_json(text: str, title: str) -> Path:
    """``text`` as ``<output>/intenttuner/evaluations/<title>_NNNNN.json``, numbered one past the
    highest that exists (as ComfyUI's save nodes number files), never overwriting one."""
    folder = get_runtime().output_dir().joinpath(*SUBFOLDER)
    folder.mkdir(parents=True, exist_ok=True)
    stem = slug(title, "report")
    numbered = re.compile(rf"^{re.escape(stem)}_(\d{{5}})\.json$")
    taken = [int(m[1]) for p in folder.iterdir() if (m := numbered.match(p.name))]
    number = max(taken, default=0) + 1
    while True:
        path = folder / f"{stem}_{number:05d}.json"
        try:
            with path.open("x", encoding="utf-8") as f:  # "x": another run may have taken it
                f.write(text)
            return path
        except FileExistsError:
            number += 1


class EvaluationReport:
    DISPLAY_NAME = "Evaluation Report"
    DESCRIPTION = (
        "Compares up to four models (LoRAs, checkpoints, training steps) side by side: a table "
        "of stability, controllability and delete leakage (lower is better) with the identity, "
        "quality and balanced-accuracy parts, and a bar chart of the three scores per model; "
        "a metric that does not apply is drawn as n/a, never as 0. The same numbers as JSON, "
        "also saved in output/intenttuner/evaluations/.")
    CATEGORY = CATEGORY
    FUNCTION = "report"
    OUTPUT_NODE = True
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("report", "json")
    OUTPUT_TOOLTIPS = (
        "The table and the bar chart.",
        "Every run's scores (without per-image records) and the table rows, as JSON.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        run = "The scores of one model, from the last score node of its chain."
        return {
            "required": {
                "run_1": (types.EVAL_SCORES, {"tooltip": run}),
                "title": ("STRING", {"default": "", "tooltip": "Heading of the report and name "
                                                               "of its JSON file. Empty: "
                                                               "'report'."}),
            },
            "optional": {f"run_{n}": (types.EVAL_SCORES, {"tooltip": f"{run} Optional."})
                         for n in range(2, RUNS + 1)},
        }

    def report(self, run_1, title, **more):
        runs = [run_1, *(more[f"run_{n}"] for n in range(2, RUNS + 1)
                        if more.get(f"run_{n}") is not None)]
        text = report_json(runs)  # first: it refuses duplicate labels before anything is saved
        image = report_image(runs, title.strip())
        path = save_json(text, title)
        summary = f"Saved {path}"
        # it_scores: the numbers for a client reading the prompt's history (the batch runner's
        # summary), so it needs neither the JSON file on the server's disk nor the image.
        ui = {"images": get_runtime().save_ui_images([image], "evaluation_report"),
              "text": [summary], "it_scores": [json.loads(text)]}
        return {"ui": ui, "result": (pils_to_batch([image]), text)}


NODES = [EvaluationReport]
