"""The GPU section of bench/train_lora.py (``--gpu``): our trainer on the full-size
architectures with random weights, on CUDA.

Cases: SD 1.5 at 512 px with batch 1 and 8, SDXL at 1024 px with batch 1; each with our
trainer's own defaults (bf16 frozen weights, gradient checkpointing, rank 16, min-SNR 5),
latents cached in memory only. Per case: images/s over the steps after the warm-up, peak VRAM
(``torch.cuda.max_memory_allocated``, the whole run: caching included), and the achieved
TFLOP/s: the FLOPs of the last step counted with ``torch.utils.flop_counter.FlopCounterMode``
(every op that ran: the recomputation of gradient checkpointing counts, so this is hardware
FLOP/s, not model FLOP/s) times the measured steps/s, as a fraction of the bf16 matmul rate
measured in the same run (a large bf16 matmul loop). The issue aims at >= 30 % for SD 1.5
batch 8.

The modules come from `intenttuner.tiny.full_size` (bf16, built on the CPU); nothing is
downloaded. Without CUDA the section says so and is skipped.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

CASES = (("sd15", 512, 1), ("sd15", 512, 8), ("sdxl", 1024, 1))
STEPS, WARMUP = 12, 3  # the last step is the counted one, so it is not timed
MATMUL_SIZE, MATMUL_ITERS = 8192, 50


def run_gpu_section() -> None:
    import torch

    if not torch.cuda.is_available():
        print("GPU section skipped: CUDA is not available here (it trains full-size SD 1.5 at "
              "512 px, batch 1 and 8, and SDXL at 1024 px, batch 1, on a CUDA GPU).")
        return
    peak = matmul_tflops()
    print(f"GPU: {torch.cuda.get_device_name()}, bf16 matmul {peak:.0f} TFLOP/s "
          f"({MATMUL_SIZE}^3, {MATMUL_ITERS} iterations); our trainer, random weights, "
          f"{STEPS} steps ({WARMUP} warm-up):")
    print(f"  {'case':22} {'images/s':>9} {'peak VRAM GiB':>14} {'TFLOP/s':>8} {'of bf16':>8}")
    for kind, resolution, batch in CASES:
        row = measure_case(kind, resolution, batch)
        fraction = row["tflops"] / peak
        note = f"  (aim >= 30 %: {'PASS' if fraction >= 0.3 else 'FAIL'})" if batch == 8 else ""
        print(f"  {kind} {resolution} px batch {batch:<4} {row['images_per_s']:9.2f} "
              f"{row['peak_gib']:14.1f} {row['tflops']:8.1f} {fraction:8.0%}{note}", flush=True)


def matmul_tflops() -> float:
    """The bf16 matmul rate of this GPU, measured."""
    import torch

    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE, device="cuda", dtype=torch.bfloat16)
    b = torch.randn_like(a)
    out = torch.empty_like(a)
    for _ in range(5):
        torch.mm(a, b, out=out)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(MATMUL_ITERS):
        torch.mm(a, b, out=out)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return 2 * MATMUL_SIZE ** 3 * MATMUL_ITERS / seconds / 1e12


def random_base_model(kind: str):
    """A `BaseModel` of the full-size ``kind`` architecture, random bf16 weights, on the CPU."""
    import torch

    from intenttuner.families import sd_configs
    from intenttuner.families.sd_folder import load_scheduler, load_tokenizer
    from intenttuner.families.sd_model import BaseModel
    from intenttuner.tiny.full_size import full_size_components

    modules = full_size_components(kind, dtype=torch.bfloat16)
    with tempfile.TemporaryDirectory() as tmp:
        config_dir = sd_configs.write_config_dir(Path(tmp), kind)
        tokenizers = {name: load_tokenizer(config_dir / name)
                      for name in ("tokenizer", "tokenizer_2") if (config_dir / name).is_dir()}
        scheduler = load_scheduler(config_dir)
    return BaseModel(kind=kind, source=Path(f"{kind}-random"), scheduler=scheduler,
                     **modules, **tokenizers)


def measure_case(kind: str, resolution: int, batch: int) -> dict[str, float]:
    """Train one case with our trainer; images/s, peak VRAM and achieved TFLOP/s."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from bench.train_lora import write_images
    from intenttuner import runtime
    from intenttuner.training.config import make_config
    from intenttuner.training.trainer import train

    with tempfile.TemporaryDirectory(prefix="bench-train-lora-gpu-") as tmp:
        work = Path(tmp)
        runtime.set_runtime(runtime.TorchRuntime(models_dir=work / "models", output_dir=work))
        write_images(work / "set", max(8, batch), resolution)
        model = random_base_model(kind)
        config = make_config(base_model=str(model.source), training_set=str(work / "set"),
                             run_name=f"{kind}-{batch}", output_dir=str(work / "loras"),
                             resolution=resolution, batch_size=batch, max_train_steps=STEPS,
                             cache_latents_to_disk=False)
        ends: list[float] = []
        counter = FlopCounterMode(display=False)

        def on_step(info) -> None:
            torch.cuda.synchronize()
            ends.append(time.perf_counter())
            # The counter runs from the end of the last-but-one step to the end of the last.
            if info.step == STEPS - 1:
                counter.__enter__()
            elif info.step == STEPS:
                counter.__exit__(None, None, None)

        torch.cuda.reset_peak_memory_stats()
        train(config, base_model=model, on_step=on_step)
        peak = torch.cuda.max_memory_allocated()
        del model
        torch.cuda.empty_cache()
    timed = ends[WARMUP - 1:-1]
    steps_per_s = (len(timed) - 1) / (timed[-1] - timed[0])
    return {"images_per_s": batch * steps_per_s, "peak_gib": peak / 2**30,
            "tflops": counter.get_total_flops() * steps_per_s / 1e12}
