"""LoRA training speed and memory: our trainer vs the plain diffusers + peft reference loop.

Both train the same tiny SD 1.5 model (random weights, written by
`intenttuner.tiny.base_model.make_tiny_sd15_checkpoint`, loaded with `load_base_model` in fp32)
on the same images (a kohya folder this script writes: ``--images`` square PNGs of
``--source`` px, trained at ``--resolution``) with the same batch size, rank (alpha = rank, as
the reference script sets), learning rate, steps and seed, fp32 on the CPU. The reference
(bench/train_lora_reference.py) does what diffusers' ``train_text_to_image_lora.py`` does at
its defaults on every step (decode + resize each image, VAE encode, text encoder, UNet);
ours is `intenttuner.training.trainer.train` with its own defaults otherwise (latents and
text cached once, gradient checkpointing on, its LoRA targets: both sets are printed).

Each trainer runs in its own subprocess, ``--runs`` times, alternating. A worker imports
everything first, then resets the peak-RSS mark (``/proc/self/clear_refs``), so its peak is
what loading the model and training cost above that baseline. steps/s is measured over the
steps after ``--warmup``; "incl. setup" counts from before the LoRA setup (ours: also the
latent/text caching) to the last step; the one-off setup time is shown apart. Medians, ratios
and the issue's targets (>= 1.5x throughput at <= 0.6x peak memory) are printed; the per-run
values show the noise (other jobs may share the CPU), and steps per CPU-second of the worker
is a figure other jobs' load stretches less than wall time.

RSS depends on the allocator: glibc's default raises its mmap threshold after large frees, so
memory freed by one phase (the VAE, a step's activations) stays resident and the reference's
peak grows over its first steps. ``--mmap-threshold 131072`` pins it, so RSS follows live
memory more closely; run both to see how much of a peak is the allocator's.

At 256 px the reference spends ~20-25 % of each step in the tiny VAE; for the full-size SD 1.5
at 512 px the VAE encode is ~39 % of the FLOPs of a LoRA step (FlopCounterMode), so the tiny
model understates what caching saves.

    .venv/bin/python bench/train_lora.py [--runs 3] [--resolution 256] [--batch 2] [--steps 12]
    .venv/bin/python bench/train_lora.py --quick      # smoke run, < 2 minutes
    .venv/bin/python bench/train_lora.py --gpu        # + full-size models on CUDA (skipped on CPU)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script (python bench/train_lora.py)
    sys.path.insert(0, str(ROOT))

TRAINERS = ("reference", "ours")
TARGET_SPEED = 1.5   # ours / reference steps/s, at least
TARGET_MEMORY = 0.6  # ours / reference peak memory, at most
TRIGGER = "ohwx"


# -- data --------------------------------------------------------------------------------------
def write_images(folder: Path, count: int, size: int) -> Path:
    """A kohya set ``folder/1_subject/img_<i>.png`` + captions: smooth gradients with a bright
    square and mild noise (PNG decoding costs what a real photo's would, roughly)."""
    import numpy as np
    from PIL import Image

    group = folder / "1_subject"
    group.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        rng = np.random.default_rng(i)
        a, b = rng.uniform(0, 255, size=(2, 3))
        t = np.linspace(0, 1, size)[None, :, None]
        array = np.broadcast_to(a * (1 - t) + b * t, (size, size, 3)).copy()
        x, y = rng.integers(0, size // 2, size=2)
        array[y:y + size // 3, x:x + size // 3] = rng.uniform(128, 255, size=3)
        array += rng.normal(0, 4, array.shape)
        Image.fromarray(array.clip(0, 255).astype(np.uint8)).save(group / f"img_{i}.png")
        (group / f"img_{i}.txt").write_text(f"{TRIGGER}, pattern {i}", encoding="utf-8")
    return folder


# -- the parent: runs, medians, ratios -----------------------------------------------------------
def spawn(trainer: str, args: argparse.Namespace, work: Path) -> dict:
    """One run of ``trainer`` in a fresh process (CPU only: CUDA hidden)."""
    command = [sys.executable, "-m", "bench.train_lora", "--worker", trainer,
               "--workdir", str(work), "--model-file", args.model_file,
               "--resolution", str(args.resolution), "--batch", str(args.batch),
               "--rank", str(args.rank), "--lr", str(args.lr), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--seed", str(args.seed),
               "--threads", str(args.threads),
               *(f"--ours-set={value}" for value in args.ours_set)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    if args.mmap_threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = str(args.mmap_threshold)
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode:
        raise SystemExit(f"the {trainer} worker failed (exit {done.returncode}):\n"
                         f"{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def allocator(args: argparse.Namespace) -> str:
    if args.mmap_threshold:
        return f"MALLOC_MMAP_THRESHOLD_={args.mmap_threshold}"
    return "glibc's default malloc (freed memory may stay resident)"


def describe_targets(targets: dict[str, int], parameters: int) -> str:
    kinds = ", ".join(f"{kind} x{count}" for kind, count in targets.items())
    return f"{sum(targets.values())} modules, {parameters:,} parameters: {kinds}"


def report(results: dict[str, list[dict]], args: argparse.Namespace) -> None:
    ref, ours = results["reference"], results["ours"]
    threads = ref[0]["threads"]
    print(f"LoRA training, tiny SD 1.5 (random weights), {args.images} images {args.source} px "
          f"-> {args.resolution} px, batch {args.batch}, rank {args.rank} alpha {args.rank}, "
          f"lr {args.lr:g}, {args.steps} steps ({args.warmup} warm-up), fp32 CPU, "
          f"{threads} thread{'s' if threads != 1 else ''}, {allocator(args)}; "
          f"median of {len(ref)} runs each, alternating:")
    report_table(ref, ours)
    report_ratios(ref, ours)
    report_details(ref, ours)


def report_table(ref: list[dict], ours: list[dict]) -> None:
    print(f"  {'trainer':10} {'steps/s':>8} {'per CPU-s':>9} {'incl. setup':>11} {'setup s':>8} "
          f"{'peak MiB':>9} {'(setup':>7} {'steps)':>7}  per-run steps/s | peak MiB")
    columns = (("steps_per_s", 8, 2), ("steps_per_cpu_s", 9, 2), ("whole_steps_per_s", 11, 2),
               ("setup_s", 8, 2), ("peak_mib", 9, 0), ("peak_setup_mib", 7, 0),
               ("peak_steps_mib", 7, 0))
    for name, runs in (("reference", ref), ("ours", ours)):
        cells = " ".join(f"{median(runs, key):{width}.{digits}f}"
                         for key, width, digits in columns)
        samples = " ".join(f"{r['steps_per_s']:.2f}" for r in runs)
        peaks = " ".join(f"{r['peak_mib']:.0f}" for r in runs)
        print(f"  {name:10} {cells}  {samples} | {peaks}")


def report_ratios(ref: list[dict], ours: list[dict]) -> None:
    def ratio(key: str) -> float:
        return median(ours, key) / median(ref, key)

    speed, memory = ratio("steps_per_s"), ratio("peak_mib")
    print(f"  ours/reference: throughput {speed:4.2f}x (target >= {TARGET_SPEED}x: "
          f"{verdict(speed >= TARGET_SPEED)}), by CPU time {ratio('steps_per_cpu_s'):4.2f}x, "
          f"incl. setup and caching {ratio('whole_steps_per_s'):4.2f}x; peak memory "
          f"{memory:4.2f}x (target <= {TARGET_MEMORY}x: {verdict(memory <= TARGET_MEMORY)})")


def report_details(ref: list[dict], ours: list[dict]) -> None:
    phases = {k: statistics.median(r["phase_s"][k] for r in ref) for k in ref[0]["phase_s"]}
    total = sum(phases.values())
    print("  reference time per phase: " + ", ".join(f"{k} {v / total:.0%}" for k, v in
                                                     phases.items())
          + " (unet: forward, backward, optimizer)")
    caching = {k: statistics.median(r["caching_s"].get(k, 0.0) for r in ours)
               for k in ours[0]["caching_s"]}
    print("  ours' one-off caching (inside its setup): " + (", ".join(
        f"{k} {v:.2f} s" for k, v in caching.items()) or "not measured"))
    for name, run in (("reference", ref[0]), ("ours", ours[0])):
        print(f"  LoRA targets, {name + ':':10} "
              f"{describe_targets(run['targets'], run['lora_parameters'])}")
    print(f"  ours' settings otherwise: {json.dumps(ours[0]['config'])}")
    last = {name: statistics.median(r["losses"][-1] for r in runs)
            for name, runs in (("reference", ref), ("ours", ours))}
    print(f"  final loss (median over runs): reference {last['reference']:.4f}, ours "
          f"{last['ours']:.4f}; memory baseline after imports {median(ref, 'baseline_mib'):.0f}"
          f" / {median(ours, 'baseline_mib'):.0f} MiB"
          + ("" if ref[0]["peak_resettable"] else " (peak not resettable: lifetime ru_maxrss)"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per trainer (median)")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--source", type=int, default=0, help="image side, px (0: 1.5 x res)")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rank", type=int, default=4, help="rank; alpha = rank for both")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2, help="steps not timed (>= 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per worker (0: torch's default); one keeps a shared "
                             "CPU's noise small, two threads on two busy cores are ~6x slower")
    parser.add_argument("--mmap-threshold", type=int, default=0, metavar="BYTES",
                        help="MALLOC_MMAP_THRESHOLD_ for the workers (e.g. 131072: large "
                             "tensors go back to the OS when freed, so RSS follows live memory)")
    parser.add_argument("--ours-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a TrainConfig setting for ours (e.g. gradient_checkpointing=false)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--gpu", action="store_true", help="also the full-size CUDA section")
    parser.add_argument("--worker", choices=TRAINERS, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--model-file", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.images, args.resolution, args.steps, args.warmup = 1, 4, 128, 5, 2
    args.source = args.source or args.resolution * 3 // 2
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not 1 <= args.warmup < args.steps - 1:
        parser.error("--warmup must be at least 1 and leave two timed steps")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        from bench.train_lora_worker import worker

        print(json.dumps(worker(args)))
        return
    from intenttuner.tiny.base_model import make_tiny_sd15_checkpoint

    with tempfile.TemporaryDirectory(prefix="bench-train-lora-") as tmp:
        work = Path(tmp)
        args.model_file = make_tiny_sd15_checkpoint(work / "models" / "checkpoints").name
        write_images(work / "set", args.images, args.source)
        results: dict[str, list[dict]] = {name: [] for name in TRAINERS}
        for run in range(args.runs):
            # Alternating the order spreads slow drifts of a shared machine over both.
            for name in TRAINERS if run % 2 == 0 else TRAINERS[::-1]:
                results[name].append(spawn(name, args, work))
        report(results, args)
    if args.gpu:
        from bench.train_lora_gpu import run_gpu_section

        run_gpu_section()


if __name__ == "__main__":
    main()
