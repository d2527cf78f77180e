"""The training monitor's cost: the share of a run's wall time spent sampling and scoring, and
batched sampling vs one image per pipeline call (the naive baseline: how kohya's trainer and
most training scripts draw their samples), in the same run.

Three ways train the same tiny SD 1.5 (random weights, `make_tiny_sd15_checkpoint`, fp32 on
the CPU) on the same images with the same settings and seed, taking turns ``--runs`` times:

- ``no monitor``: the trainer alone (the run's loss is all there is);
- ``monitor``: `TrainingMonitor` sampling the intent's evaluation prompts every
  ``--every`` steps and at the end, ``--batch`` images per pipeline call, scored with the tiny
  detector, DINO and CLIP of the real families (stability, controllability, leakage);
- ``monitor, batch 1``: the same, one image per pipeline call.

Printed: each way's wall time, the monitor's own overhead figure (monitoring seconds / run
seconds, as the panel shows it), the monitoring seconds per sample point, and the ratio of the
naive baseline's monitoring time to the batched one's. Medians of the runs, and each run's.

    OMP_NUM_THREADS=2 .venv/bin/python bench/train_monitor.py [--runs 3] [--steps 20]
        [--every 5] [--prompts 1] [--sample-steps 8] [--batch 8] [--resolution 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # read when tqdm is first imported: no bars per stage
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script (python bench/train_monitor.py)
    sys.path.insert(0, str(ROOT))

DESCRIPTION = ("trigger: ohwx. Keep his face. His hair colour should switch between red hair "
               "and blue hair. Never a necklace.")
WAYS = ("no monitor", "monitor", "monitor, batch 1")


def setup(tmp: Path, args: argparse.Namespace):
    """The tiny base model, the training set and the scoring models, loaded once."""
    from bench.train_lora import write_images
    from intenttuner import runtime
    from intenttuner.dataset.kohya_read import read_training_set
    from intenttuner.evaluation.evaluate import EvalModels
    from intenttuner.families.base_model import load_base_model
    from intenttuner.intent.parse import parse_intent
    from intenttuner.loading import load_model
    from intenttuner.tiny import TINY_BUILDERS
    from intenttuner.tiny.base_model import make_tiny_sd15_checkpoint

    models_dir = tmp / "models"
    runtime.set_runtime(runtime.TorchRuntime(models_dir=models_dir))
    model = load_base_model(make_tiny_sd15_checkpoint(tmp / "base"), precision="fp32")
    training_set = read_training_set(write_images(tmp / "set", 4, args.resolution))
    from intenttuner.families import FAMILIES

    def tiny(family: str):
        folder = models_dir / FAMILIES[family].folder
        return load_model(family, TINY_BUILDERS[family](folder).relative_to(folder).as_posix())

    models = EvalModels(detector=tiny("detector"), identity_encoder=tiny("identity_encoder"),
                        clip=tiny("image_encoder"))
    return model, training_set, models, parse_intent(DESCRIPTION)


def one_run(way: str, run: int, model, training_set, models, intent,
            args: argparse.Namespace) -> dict:
    from intenttuner.monitor.monitor import TrainingMonitor
    from intenttuner.monitor.settings import MonitorSettings, MonitorSpec
    from intenttuner.training.config import make_config
    from intenttuner.training.trainer import train

    config = make_config(base_model="tiny", training_set=training_set.root,
                         resolution=args.resolution, max_train_steps=args.steps,
                         gradient_checkpointing=False, cache_latents_to_disk=False,
                         run_name=f"bench-{way.replace(' ', '').replace(',', '-')}-{run}")
    monitor = None
    if way != "no monitor":
        settings = MonitorSettings(sample_every_steps=args.every, prompts_per_test=args.prompts,
                                   sample_steps=args.sample_steps, box_threshold=0.0,
                                   batch_size=1 if way.endswith("batch 1") else args.batch)
        monitor = TrainingMonitor(MonitorSpec(intent, models, settings), emit=lambda *_: None,
                                  save_thumbnails=lambda images, prefix: [])
    started = time.perf_counter()
    train(config, base_model=model, training_set=training_set, observer=monitor)
    wall = time.perf_counter() - started
    if monitor is None:
        return {"wall": wall}
    return {"wall": wall, "overhead": monitor.overhead, "monitor_s": monitor.monitor_seconds,
            "points": len(monitor.points),
            "images": sum(len(p["images"]) for p in monitor.points)}


def report(results: dict[str, list[dict]]) -> None:
    def med(way: str, key: str) -> float:
        return statistics.median(r[key] for r in results[way])

    print(f"\n{'way':<18} {'wall s':>8} {'monitor s':>10} {'overhead':>9} {'s/point':>8}")
    for way in WAYS:
        if way == "no monitor":
            print(f"{way:<18} {med(way, 'wall'):8.2f}")
            continue
        per_point = med(way, "monitor_s") / max(results[way][0]["points"], 1)
        print(f"{way:<18} {med(way, 'wall'):8.2f} {med(way, 'monitor_s'):10.2f} "
              f"{med(way, 'overhead'):9.1%} {per_point:8.2f}")
    batched, naive = results["monitor"], results["monitor, batch 1"]
    ratios = [n["monitor_s"] / b["monitor_s"] for n, b in zip(naive, batched, strict=True)]
    print(f"\n{batched[0]['points']} sample points x {batched[0]['images'] // batched[0]['points']}"
          f" image(s) per run")
    print(f"monitoring overhead (batched): median {med('monitor', 'overhead'):.1%} of the run "
          f"(runs: {', '.join(format(r['overhead'], '.1%') for r in batched)})")
    print(f"batched vs one image per call, monitoring time: median "
          f"{statistics.median(ratios):.2f}x faster (runs: "
          f"{', '.join(format(r, '.2f') + 'x' for r in ratios)})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--every", type=int, default=5, help="steps between sample points")
    parser.add_argument("--prompts", type=int, default=1, help="prompts per test")
    parser.add_argument("--sample-steps", type=int, default=8, help="denoising steps")
    parser.add_argument("--batch", type=int, default=8, help="images per pipeline call")
    parser.add_argument("--resolution", type=int, default=64)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.steps < 1 or args.every < 1:
        parser.error("--runs, --steps and --every must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    import torch

    args = parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        loaded = setup(Path(tmp), args)
        results: dict[str, list[dict]] = {way: [] for way in WAYS}
        for run in range(args.runs):
            for way in WAYS:
                results[way].append(one_run(way, run, *loaded, args))
                print(f"run {run + 1} {way}: {results[way][-1]['wall']:.2f} s", flush=True)
        report(results)


if __name__ == "__main__":
    main()
