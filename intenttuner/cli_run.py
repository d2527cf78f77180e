"""``python -m intenttuner run``: the whole pipeline headless (`intenttuner.jobs`), from
training images and an intent to a captioned training set, a LoRA and the evaluation report.

    python -m intenttuner run --smoke --out output/example_run      # the shipped example,
                                                                    # tiny models, CPU, minutes
    python -m intenttuner run --images photos/ --intent intent.txt \\
        --references ref.png --boxes boxes.json --out runs/vincent  # real models (downloaded
                                                                    # on first use)

Without --images the shipped example runs (examples/milo: its images, intent, reference image
and boxes; each flag replaces its part). With --images, --intent is needed too. Settings:
the common ones have flags (--steps, --monitor-every...); every other one is
``--set SECTION.NAME=VALUE`` (see intenttuner/jobs/settings.py).

``--smoke`` builds a tiny random model of every family the pipeline needs (the same on-disk
formats and loaders as the real weights) into ``--models-dir`` (default: OUT/models, reused by
later smoke runs) and uses small settings (jobs.settings.SMOKE_VALUES), offline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from .cli_common import use_models_dir

SMOKE_MODELS_FILE = "smoke-models.json"  # in the models folder: family -> the tiny model's name
# Family -> the ModelChoices field its tiny model goes to.
# (No LaMa: the smoke settings inpaint classically, see jobs.settings.SMOKE_VALUES.)
SMOKE_FAMILIES = {"detector": "detector", "segmenter": "segmenter",
                  "image_encoder": "image_encoder", "captioner": "captioner",
                  "base_model": "base_model", "identity_encoder": "identity_encoder",
                  "aesthetic": "quality"}
NAMED = "a name its loader node lists"
MODEL_FLAGS = {  # flag -> (ModelChoices field, help); default: the manifest's model
    "--detector": ("detector", "the concept detector (GroundingDINO)"),
    "--segmenter": ("segmenter", "Segment Anything (none: boxes only, no masks)"),
    "--image-encoder": ("image_encoder", "the CLIP image/text encoder of the reference filter "
                                         "and the scores"),
    "--captioner": ("captioner", "the captioner (Florence-2 / BLIP)"),
    "--base-model": ("base_model", "the SD 1.5 / SDXL base model the LoRA is trained on"),
    "--inpainter": ("inpainter", "LaMa, for the deleted concepts (none: classical "
                                 "inpainting)"),
    "--identity-encoder": ("identity_encoder", "the identity encoder of stability (DINO)"),
    "--quality": ("quality", "the quality predictor of stability (none: identity only)"),
    "--quality-clip": ("quality_clip", "the CLIP the quality predictor reads (default: as "
                                       "the evaluate command picks it)"),
}
SHORTCUTS = {  # flag -> (the setting it sets, metavar, help)
    "--steps": ("train.max_train_steps", "N", "training steps"),
    "--rank": ("train.rank", "R", "LoRA rank"),
    "--resolution": ("train.resolution", "PX", "training resolution (0: the model's)"),
    "--run-name": ("train.run_name", "NAME", "the LoRA's name (default: the trigger word)"),
    "--monitor-every": ("monitor.sample_every_steps", "N",
                        "sample and score the LoRA every N steps (0: at the end only)"),
    "--prompts-per-test": ("plan.prompts_per_test", "N",
                           "evaluation prompts per test of the final report"),
    "--inpaint-backend": ("inpaint_backend", "NAME", "auto, classical, lama or diffusion"),
}


def add_parser(sub) -> None:
    """The ``run`` subcommand (light: the stages are imported when it runs)."""
    run = sub.add_parser("run", help="the whole pipeline headless: training set, LoRA, "
                         "evaluation report", description=__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--images", type=Path, metavar="DIR",
                     help="the training images (default: the shipped example's)")
    run.add_argument("--intent", metavar="TEXT_OR_FILE",
                     help="what to keep, change and never produce, or a file holding it "
                          "(default: the shipped example's intent.txt)")
    run.add_argument("--references", type=Path, nargs="*", metavar="IMG",
                     help="reference images (or folders of them) the boxes are drawn on; "
                          "given without a value: none (default: the example's)")
    run.add_argument("--boxes", metavar="JSON_OR_FILE",
                     help='reference boxes, the box editor\'s JSON [{"image": 0, "box": [x1, '
                          'y1, x2, y2], "label": "..."}] or a file holding it; box n is [n] '
                          "in the intent (default: the example's with its references)")
    run.add_argument("--out", type=Path, required=True, metavar="DIR",
                     help="the folder for the results (dataset/, lora/, report.png, "
                          "report.json, curves.png...)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace an earlier run's results in --out (else the run is "
                          "refused); nothing else in the folder is touched")
    run.add_argument("--smoke", action="store_true",
                     help="tiny random models and small settings: the whole pipeline on a "
                          "CPU in minutes, offline")
    run.add_argument("--models-dir", type=Path, metavar="DIR",
                     help="the models root (default: $INTENTTUNER_MODELS_DIR, or ComfyUI's "
                          "models/; with --smoke: OUT/models)")
    for flag, (_, what) in MODEL_FLAGS.items():
        default = "" if "default:" in what else "; default: the manifest's"
        run.add_argument(flag, metavar="NAME", help=f"{what}: {NAMED}{default}")
    run.add_argument("--local-llm", metavar="NAME", help="a local LLM for the intent and the "
                                                         f"captions: {NAMED} (default: none, "
                                                         "the offline parser and rules)")
    run.add_argument("--precision", metavar="NAME", help="the base model's precision (auto, "
                                                         "fp32, fp16, bf16; default auto)")
    run.add_argument("--llm-url", metavar="URL", help="an OpenAI-compatible endpoint for the "
                                                      "intent and captions (default: offline)")
    run.add_argument("--llm-model", metavar="NAME", help="the endpoint's model name")
    run.add_argument("--llm-api-key-env", metavar="NAME", default="OPENAI_API_KEY",
                     help="the environment variable holding its key (default %(default)s)")
    for flag, (_, metavar, what) in SHORTCUTS.items():
        run.add_argument(flag, metavar=metavar, help=what)
    run.add_argument("--set", action="append", default=[], metavar="SECTION.NAME=VALUE",
                     help="any other setting, e.g. detect.box_threshold=0.3, train.rank=8, "
                          "captions.detail=short (repeatable)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")


def main(args) -> int:
    from .errors import InputError
    from .jobs.inputs import boxes_text, intent_text
    from .jobs.pipeline import run_pipeline
    from .runtime import get_runtime, set_runtime

    if args.llm_model and not args.llm_url:
        raise InputError("--llm-model needs --llm-url (the endpoint that serves it).")
    images, intent, references, boxes = _inputs(args)
    intent, boxes = intent_text(intent), boxes_text(boxes)
    previous = get_runtime()
    try:
        with _offline(args.smoke):
            settings = _settings(args)  # with --models-dir / --smoke: that folder's runtime
            outputs = run_pipeline(images, intent, args.out, settings, references=references,
                                   boxes=boxes, progress=not args.no_progress,
                                   overwrite=args.overwrite)
    finally:
        set_runtime(previous)
    for line in outputs.summary:
        print(line)
    return 0


@contextlib.contextmanager
def _offline(on: bool) -> Iterator[None]:
    """With --smoke every model is on disk: no download, no Hub look-up (environment put back
    afterwards, for callers in the same process)."""
    names = ("HF_HUB_OFFLINE", "INTENTTUNER_OFFLINE") if on else ()
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: "1" for name in names})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _inputs(args) -> tuple[Path, str, list[Path], str]:
    """(images, intent, references, boxes): the flags, the shipped example where left out."""
    from .errors import InputError
    from .examples import shipped_example

    if args.images is not None and args.intent is None:
        raise InputError("--images needs --intent too: say what the model should keep, "
                         "change and never produce (text, or a file holding it).")
    example = shipped_example()
    references = args.references
    boxes = args.boxes
    if references is None:  # the example's references, and their boxes unless --boxes
        references = example.reference_images() if args.images is None else []
        if boxes is None and args.images is None:
            boxes = str(example.boxes_file)
    images = args.images if args.images is not None else example.images
    intent = args.intent if args.intent is not None else str(example.intent_file)
    return images, intent, list(references), boxes or ""


def _settings(args):
    """The run's settings: the smoke or default ones, then the flags, then every --set."""
    from dataclasses import replace

    from .jobs.settings import RunSettings, smoke_settings
    from .llm import LLMSettings

    if args.smoke:
        models_dir = args.models_dir or args.out / "models"
        settings = smoke_settings(build_smoke_models(models_dir))
        use_models_dir(models_dir)
    else:
        settings = RunSettings()
        use_models_dir(args.models_dir)
    given = {field: getattr(args, flag[2:].replace("-", "_"))
             for flag, (field, _) in [*MODEL_FLAGS.items(), ("--local-llm", ("local_llm", ""))]}
    given = {field: value for field, value in given.items() if value is not None}
    if args.precision is not None:
        given["base_precision"] = args.precision
    llm = None
    if args.llm_url:
        llm = LLMSettings(base_url=args.llm_url, model=args.llm_model or "",
                          api_key_env=args.llm_api_key_env)
    settings = replace(settings, models=replace(settings.models, **given), llm=llm) \
        if given or llm else settings
    shortcuts = [f"{field}={getattr(args, flag[2:].replace('-', '_'))}"
                 for flag, (field, _, _) in SHORTCUTS.items()
                 if getattr(args, flag[2:].replace("-", "_")) is not None]
    return settings.with_values([*shortcuts, *args.set])


def build_smoke_models(models_dir: Path):
    """The tiny model of every family the pipeline needs, under ``models_dir`` (reused when a
    run made them there before); returns the `ModelChoices` naming them."""
    from .families import FAMILIES
    from .jobs.settings import ModelChoices
    from .runtime import TorchRuntime
    from .tiny import TINY_BUILDERS

    record = models_dir / SMOKE_MODELS_FILE
    runtime = TorchRuntime(models_dir=models_dir)
    names = _recorded(record, runtime)
    if names is None:
        names = {}
        for family in SMOKE_FAMILIES:
            folder = runtime.download_dir(FAMILIES[family].folder)
            names[family] = TINY_BUILDERS[family](folder).relative_to(folder).as_posix()
        record.write_text(json.dumps(names, indent=2) + "\n", encoding="utf-8")
    return ModelChoices(**{SMOKE_FAMILIES[family]: name for family, name in names.items()},
                        base_precision="fp32")


def _recorded(record: Path, runtime) -> dict[str, str] | None:
    """The tiny models an earlier smoke run built, when they are all still there."""
    from .families import FAMILIES

    try:
        names = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(names, dict) or set(names) != set(SMOKE_FAMILIES):
        return None
    present = all((runtime.download_dir(FAMILIES[f].folder) / name).exists()
                  for f, name in names.items())
    return names if present else None
