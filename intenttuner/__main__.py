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
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

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
    _add_evaluation_commands(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        if args.command == "smoke":
            return _smoke(args.models_dir)
        if args.command == "train":
            return _train(args)
        if args.command == "eval-prompts":
            return _eval_prompts(args)
        if args.command == "evaluate":
            return _evaluate(args)
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

    _use_models_dir(args.models_dir)
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
    _add_model_flags(train)


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
    from .monitor.monitor import TrainingMonitor
    from .monitor.settings import MonitorSpec

    intent = _monitor_intent(args.intent, config)
    models = load_eval_models(*(getattr(args, name) for name in MONITOR_MODEL_FLAGS))
    return TrainingMonitor(MonitorSpec(intent=intent, models=models, settings=settings),
                           emit=_log_event)


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


def _log_event(event: str, data: dict) -> None:
    """Headless, the monitor's events go to the log: each sample point and warning."""
    from .monitor.events import SAMPLE, WARNING

    log = logging.getLogger("intenttuner.monitor")
    if event == SAMPLE:
        score = data.get("score")
        log.info("step %s: score %s (%.1f s, monitoring %.0f%% of the run)", data.get("step"),
                 f"{score:.3f}" if score is not None else "n/a", data.get("seconds") or 0,
                 100 * (data.get("overhead") or 0))
    elif event == WARNING:
        log.warning("step %s: %s", data.get("step"), data.get("message"))


def _debug_event(event: str, data: dict) -> None:
    """The loss-only observer's events: the run folder has them all; the log only on
    request (every step would drown the progress bar)."""
    logging.getLogger("intenttuner.monitor").debug("%s %s", event, data)


def _add_evaluation_commands(sub) -> None:
    from .evaluation.prompts import PlanSettings

    prompts = sub.add_parser("eval-prompts", help="write the evaluation plan of an intent and "
                             "print its prompts")
    prompts.add_argument("intent", type=Path, metavar="INTENT_JSON",
                         help="an intent saved with its crops (Save Intent, Intent.save)")
    prompts.add_argument("--out", type=Path, required=True, metavar="PLAN_JSON",
                         help="the plan file to write (never overwritten)")
    for flag, field in (("--prompts-per-test", "prompts_per_test"),
                        ("--images-per-prompt", "images_per_prompt"), ("--seed", "seed")):
        prompts.add_argument(flag, type=int, metavar="N", default=getattr(PlanSettings, field),
                             help=f"{field} of the plan (default %(default)s)")

    evaluate = sub.add_parser("evaluate", help="score images generated from an evaluation plan")
    evaluate.add_argument("--plan", type=Path, required=True, help="the plan (eval-prompts)")
    evaluate.add_argument("--intent", type=Path, required=True,
                          help="the intent the plan was made from")
    evaluate.add_argument("--images", type=Path, required=True, metavar="DIR",
                          help="the generated images, each file name starting with its plan "
                               "item's id (stability-000.png, stability-000_00001_.png)")
    evaluate.add_argument("--label", help="the model's name in the report (default: the "
                                          "images folder's name)")
    evaluate.add_argument("--reference-images", type=Path, metavar="DIR",
                          help="the training images: kept concepts found there join the "
                               "intent's reference crops")
    evaluate.add_argument("--out", type=Path, metavar="DIR",
                          help="a new or empty folder for the results (default: a new "
                               "<images>-evaluation folder beside the images, numbered when "
                               "taken)")
    evaluate.add_argument("--models-dir", type=Path, help="the models root (as for train)")
    _add_model_flags(evaluate)


def _add_model_flags(parser) -> None:
    """The scoring models' flags (evaluate, and train with --monitor-every)."""
    for flag, family in (("--detector", "detector"), ("--identity-encoder", "identity encoder"),
                         ("--clip", "CLIP image/text encoder")):
        parser.add_argument(flag, metavar="NAME",
                            help=f"the {family}, as its loader lists it (default: the "
                                 "manifest's)")
    parser.add_argument("--quality", metavar="NAME|none",
                        help="the quality predictor (default: the manifest's, the LAION "
                             "aesthetic predictor on ViT-L-14); none: identity only")
    parser.add_argument("--quality-clip", metavar="NAME",
                        help="the CLIP image encoder the quality predictor reads (default: "
                             "--clip when its width fits, else the one the predictor's "
                             "manifest entry requires)")


def _eval_prompts(args) -> int:
    from .evaluation.files import read_text, save_plan
    from .evaluation.prompts import PlanSettings, build_plan
    from .intent.schema import Intent

    intent = Intent.from_json(read_text(args.intent, "intent JSON"), what=str(args.intent))
    settings = PlanSettings(prompts_per_test=args.prompts_per_test,
                            images_per_prompt=args.images_per_prompt, seed=args.seed)
    plan = build_plan(intent, settings)
    save_plan(plan, args.out)
    for item in plan.items:
        print(f"{item.id}  seed {item.seed}  {item.prompt}")
    for note in plan.notes:
        print(f"note: {note}")
    first = plan.items[0].id
    print(f"plan: {args.out} ({len(plan.items)} images). Name each image after its item id "
          f"({first}.png, or {first}_00001_.png for several), then run: python -m "
          f"intenttuner evaluate --plan {args.out} --intent {args.intent} --images DIR")
    return 0


def _evaluate(args) -> int:
    from .dataset.image_folder import load_image_folder
    from .evaluation.evaluate import evaluate
    from .evaluation.files import (
        load_generated,
        load_plan,
        output_folder,
        read_text,
        write_results,
    )
    from .evaluation.models import load_eval_models
    from .evaluation.pairing import check_intent
    from .intent.schema import Intent

    _use_models_dir(args.models_dir)
    plan = load_plan(args.plan)
    intent = Intent.from_json(read_text(args.intent, "intent JSON"), what=str(args.intent))
    check_intent(plan, intent)
    generated = load_generated(plan, args.images)
    references = None
    if args.reference_images:
        loaded = load_image_folder(args.reference_images)
        if loaded.skipped:  # say which training images the references leave out, and why
            print(loaded.report(), file=sys.stderr)
        references = loaded.images
    out = output_folder(args.out, args.images)  # refused before minutes of scoring, not after
    models = load_eval_models(args.detector, args.identity_encoder, args.clip, args.quality,
                              args.quality_clip)
    label = args.label or args.images.resolve().name
    scores = evaluate(generated, intent, models, label, references)
    if args.out is None:  # numbered when the results are ready: a run started meanwhile may
        out = output_folder(None, args.images)  # have taken the number picked before scoring
    paths = write_results(out, generated, scores)
    _print_scores(scores, len(generated))
    print(f"results: {out} ({', '.join(p.name for p in paths)})")
    return 0


def _print_scores(scores, images: int) -> None:
    """The report's table as text (one line per column), each metric's concepts under it."""
    from .evaluation.preview import concept_line
    from .evaluation.report import COLUMNS, table_rows

    (row,) = table_rows([scores])
    width = max(len(column.title) for column in COLUMNS)
    print(f"{scores.label}: {images} images")
    for column in COLUMNS:
        value = row[column.key]
        text = f"{value:.3f}" if value is not None else row["missing"][column.key]
        print(f"  {column.title:<{width}}  {text}")
        if column.part is None:
            for concept in scores.results[column.metric.value].concepts:
                print(f"      {concept_line(concept)}")
    for result in scores.results.values():
        for warning in result.warnings:
            print(f"warning: {warning}")


def _use_models_dir(models_dir: Path | None) -> None:
    if models_dir is not None:
        from .runtime import TorchRuntime, set_runtime

        set_runtime(TorchRuntime(models_dir=models_dir))


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
