"""Command line of the IntentTuner library.

    python -m intenttuner smoke [--models-dir DIR]   # tiny model of every family: build, load, run
    python -m intenttuner train CONFIG [--resume CHECKPOINT] [--steps N] [--models-dir DIR]
        # train the LoRA a config.json describes (LoRATrain writes one into every run folder,
        # models/loras/<run>/config.json); on several GPUs:
        #   torchrun --nproc_per_node N -m intenttuner train CONFIG
        #   accelerate launch --multi_gpu --num_processes N -m intenttuner train CONFIG
        # with --monitor-every N [--intent INTENT_JSON] [--detector ... --monitor-prompts K]:
        # samples and scores the run by its intent every N steps and keeps the best checkpoint
        # (models/loras/<run>_best.safetensors)
    python -m intenttuner eval-prompts INTENT_JSON --out PLAN_JSON [--prompts-per-test N ...]
        # the evaluation plan of an intent: every prompt and seed to generate, with its item id
    python -m intenttuner evaluate --plan PLAN_JSON --intent INTENT_JSON --images DIR [--out DIR]
        # score the images generated from the plan (each file named after its item id:
        # stability-000.png, stability-000_00001_.png...): stability, controllability, delete
        # leakage -> scores.json, report.png and a preview per metric
    python -m intenttuner run [--images DIR --intent TEXT_OR_FILE --references IMG... --boxes J]
        --out DIR [--smoke]
        # the whole pipeline headless (intent -> detection -> crops and inpainting -> captions
        # -> LoRA training with the monitor -> evaluation): OUT/dataset, OUT/lora, OUT/report.png,
        # OUT/report.json, OUT/curves.png; defaults: the shipped example (examples/milo)
    python -m intenttuner batch WORKFLOW.json --server URL [--server URL ...]
        [--set NODE.INPUT=VALUE ...] [--sweep NODE.INPUT=A,B,C ...] --out DIR [--resume]
        # run a saved workflow on one or several ComfyUI servers, one run per server at a time;
        # OUT/summary.csv, OUT/summary.md, OUT/summary.png: the scores of every run
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from . import cli_evaluate
from .cli_common import add_model_flags, use_models_dir
from .errors import InputError, IntentTunerError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m intenttuner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    smoke = sub.add_parser("smoke", help="check the model stack with tiny random models")
    smoke.add_argument("--models-dir", type=Path,
                       help="where the tiny models are written (default: a temporary folder)")
    train = sub.add_parser("train", help="train a LoRA from a config.json (one or more processes)")
    train.add_argument("config", type=Path,
                       help="a config.json (or the run folder holding it) as LoRATrain writes it")
    train.add_argument("--resume", type=Path, metavar="CHECKPOINT",
                       help="continue from this checkpoint (models/loras/<run>/<run>-stepN"
                            ".safetensors, with its .train-state beside it)")
    train.add_argument("--steps", type=int, metavar="N",
                       help="train N optimizer steps in all (instead of the config's "
                            "max_train_steps / epochs)")
    train.add_argument("--models-dir", type=Path,
                       help="the models root (default: $INTENTTUNER_MODELS_DIR, or ComfyUI's "
                            "models/ when this pack sits in its custom_nodes)")
    _add_monitor_flags(train)
    cli_evaluate.add_parsers(sub)
    # The whole pipeline headless, and saved workflows on ComfyUI servers: their own modules
    # (light to import: each imports its stage only when it runs).
    from . import cli_batch, cli_run  # noqa: I001

    cli_run.add_parser(sub)
    cli_batch.add_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        if args.command == "smoke":
            return _smoke(args.models_dir)
        if args.command == "train":
            return _train(args)
        if args.command == "eval-prompts":
            return cli_evaluate.eval_prompts(args)
        if args.command == "evaluate":
            return cli_evaluate.evaluate(args)
        if args.command == "run":
            return cli_run.main(args)
        if args.command == "batch":
            return cli_batch.main(args)
    except IntentTunerError as exc:
        print(f"error{_rank_note()}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 2


def _smoke(models_dir: Path | None) -> int:
    from .smoke import format_table, run_smoke

    with tempfile.TemporaryDirectory(prefix="intenttuner-smoke-") as tmp:
        results = run_smoke(models_dir or Path(tmp))
        print(format_table(results))
    print(f"smoke check passed: {len(results)} model families loaded and ran")
    return 0


def _train(args) -> int:
    config_path, resume, steps = args.config, args.resume, args.steps
    if _rank():
        # One voice: the other processes of a multi-process run log only warnings and draw no
        # progress bars. tqdm reads TQDM_DISABLE when first imported (torch imports it), so
        # this comes before anything that imports torch.
        os.environ["TQDM_DISABLE"] = "1"
        logging.getLogger().setLevel(logging.WARNING)
    from .runtime import get_runtime
    from .training.config import load_config, make_config
    from .training.distributed import setup_distributed

    use_models_dir(args.models_dir)
    config = load_config(config_path)
    overrides: dict = {}
    if resume is not None:
        if not resume.is_file():
            raise InputError(f"--resume {resume}: no such checkpoint. Pass one of the "
                             "<run>-stepNNNNNN.safetensors files in the run folder.")
        overrides["resume_from"] = str(resume.resolve())
    if steps is not None:
        overrides.update(max_train_steps=steps, epochs=0)
    if overrides:  # validated like the file itself: a bad --steps is named
        config = make_config(**{**config.model_dump(), **overrides})
    settings = _monitor_settings(args)  # bad flags are named before anything loads
    dist = setup_distributed(get_runtime().torch_device())
    monitor = None
    try:
        from .training.trainer import train  # diffusers, peft: after the config is known good

        # The main process samples and scores; the others train along (the trainer shares
        # its sample points with them), so only it loads the scoring models. Without
        # --monitor-every it still observes the run by its loss: the run folder gets its
        # start and end records (the panel's run list and history) and TensorBoard.
        if settings is not None and dist.is_main:
            monitor = _monitor(args, config, settings)
        elif dist.is_main:
            from .monitor.monitor import TrainingMonitor

            monitor = TrainingMonitor(None, emit=_debug_event)
        result = train(config, dist=dist, observer=monitor)
    finally:
        dist.close()
    if dist.is_main:
        final = f"{result.losses[-1]:.6g}" if result.losses else "n/a"
        print(f"LoRA: {result.lora_path}")
        print(f"final loss: {final} after {result.steps} steps ({dist.world_size} process(es))")
        for warning in result.warnings:
            print(f"warning: {warning}")
        if settings is not None:  # the loss-only observer has nothing to add to the above
            for line in monitor.summary_lines():
                print(line)
            if monitor.best is not None:
                print(f"best LoRA: {monitor.best['path']}")
    return 0


MONITOR_MODEL_FLAGS = ("detector", "identity_encoder", "clip", "quality", "quality_clip")


def _add_monitor_flags(train) -> None:
    # Defaults stay MonitorSettings' own (None here): importing it would import torch before
    # _train has set TQDM_DISABLE for the other ranks.
    train.add_argument("--monitor-every", type=int, metavar="N",
                       help="sample and score the run by its intent every N steps (0: at the "
                            "end only) and keep the best checkpoint as <run>_best.safetensors")
    train.add_argument("--intent", type=Path, metavar="INTENT_JSON",
                       help="the intent to score by (default: the config's, else the "
                            "training set's own)")
    train.add_argument("--monitor-prompts", type=int, metavar="K",
                       help="evaluation prompts per test at each point (default: the "
                            "Training Monitor node's)")
    train.add_argument("--sample-steps", type=int, metavar="S",
                       help="denoising steps per sample image (default: the Training Monitor "
                            "node's)")
    add_model_flags(train)


def _monitor_settings(args):
    """The monitor's settings of the train flags; None without --monitor-every."""
    from .monitor.settings import MonitorSettings

    if args.monitor_every is None:
        given = [f"--{name.replace('_', '-')}" for name in ("intent", *MONITOR_MODEL_FLAGS,
                                                             "monitor_prompts", "sample_steps")
                 if getattr(args, name) is not None]
        if given:
            raise InputError(f"{', '.join(given)} only act with --monitor-every N (sample and "
                             "score every N steps); add it, or leave them out.")
        return None
    given = {"prompts_per_test": args.monitor_prompts, "sample_steps": args.sample_steps}
    return MonitorSettings(sample_every_steps=args.monitor_every,
                           **{k: v for k, v in given.items() if v is not None})


def _monitor(args, config, settings):
    """The training monitor of ``--monitor-every``: the intent, the scoring models, events to
    the log (no UI headless)."""
    from .evaluation.models import load_eval_models
    from .monitor.events import log_event
    from .monitor.monitor import TrainingMonitor
    from .monitor.settings import MonitorSpec

    intent = _monitor_intent(args.intent, config)
    models = load_eval_models(*(getattr(args, name) for name in MONITOR_MODEL_FLAGS))
    return TrainingMonitor(MonitorSpec(intent=intent, models=models, settings=settings),
                           emit=log_event)


def _monitor_intent(path: Path | None, config):
    from .evaluation.files import read_text
    from .intent.schema import Intent

    if path is not None:
        return Intent.from_json(read_text(path, "intent JSON"), what=str(path))
    if config.intent is not None:
        return Intent.from_data(config.intent, what="the config's intent")
    from .dataset.kohya_read import read_training_set

    own = read_training_set(config.training_set).intent
    if own is None:
        raise InputError("--monitor-every scores the run by an intent, but neither the config "
                         "nor its training set has one: pass --intent INTENT_JSON (saved with "
                         "Save Intent).")
    return Intent.from_data(own, what=f"the intent of the training set {config.training_set}")


def _debug_event(event: str, data: dict) -> None:
    """The loss-only observer's events: the run folder has them all; the log only on
    request (every step would drown the progress bar)."""
    logging.getLogger("intenttuner.monitor").debug("%s %s", event, data)


def _rank() -> int:
    """This process's rank in a run started by torchrun / accelerate launch (0 otherwise); a
    RANK that is not a whole number -> `InputError`, as `training.distributed` says it. (Read
    here without that module: it imports torch, which must come after TQDM_DISABLE.)"""
    value = os.environ.get("RANK", "")
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        raise InputError(f"The environment variable RANK is {value!r}, not a whole number; it "
                         "is set by torchrun / accelerate launch.") from None


def _rank_note() -> str:
    """" (rank N)" in the non-main processes of a multi-process run, so one rank's own failure
    can be told from the same error printed by all."""
    try:
        rank = _rank()
    except InputError:  # the error being reported may be this one
        return ""
    return f" (rank {rank})" if rank else ""


if __name__ == "__main__":
    sys.exit(main())
