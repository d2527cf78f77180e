"""Command line of the IntentTuner library.

    python -m intenttuner smoke [--models-dir DIR]   # tiny model of every family: build, load, run
    python -m intenttuner train CONFIG [--resume CHECKPOINT] [--steps N] [--models-dir DIR]
        # train the LoRA a config.json describes (LoRATrain writes one into every run folder,
        # models/loras/<run>/config.json); on several GPUs:
        #   torchrun --nproc_per_node N -m intenttuner train CONFIG
        #   accelerate launch --multi_gpu --num_processes N -m intenttuner train CONFIG
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        if args.command == "smoke":
            return _smoke(args.models_dir)
        if args.command == "train":
            return _train(args.config, args.resume, args.steps, args.models_dir)
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


def _train(config_path: Path, resume: Path | None, steps: int | None,
           models_dir: Path | None) -> int:
    if _rank():
        # One voice: the other processes of a multi-process run log only warnings and draw no
        # progress bars. tqdm reads TQDM_DISABLE when first imported (torch imports it), so
        # this comes before anything that imports torch.
        os.environ["TQDM_DISABLE"] = "1"
        logging.getLogger().setLevel(logging.WARNING)
    from .runtime import TorchRuntime, get_runtime, set_runtime
    from .training.config import load_config, make_config
    from .training.distributed import setup_distributed

    if models_dir is not None:
        set_runtime(TorchRuntime(models_dir=models_dir))
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
    dist = setup_distributed(get_runtime().torch_device())
    try:
        from .training.trainer import train  # diffusers, peft: after the config is known good

        result = train(config, dist=dist)
    finally:
        dist.close()
    if dist.is_main:
        final = f"{result.losses[-1]:.6g}" if result.losses else "n/a"
        print(f"LoRA: {result.lora_path}")
        print(f"final loss: {final} after {result.steps} steps ({dist.world_size} process(es))")
        for warning in result.warnings:
            print(f"warning: {warning}")
    return 0


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
