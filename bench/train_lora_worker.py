"""The worker side of bench/train_lora.py: one training run of one trainer in this process,
with its peak memory above the post-import baseline and its step times (see that module's
docstring for what is measured and why)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

# The settings of ours that the report shows (with any --ours-set ones).
SHOWN_SETTINGS = ("rank", "alpha", "buckets", "mixed_precision", "gradient_checkpointing",
                  "min_snr_gamma", "cache_latents_to_disk")


# -- memory ------------------------------------------------------------------------------------
def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class PeakMeter:
    """Peak resident memory above a baseline. Linux: VmHWM after resetting it through
    ``/proc/self/clear_refs``; elsewhere ``ru_maxrss`` (the lifetime peak: imports included)."""

    def __init__(self):
        self.resettable = self.reset()
        self.baseline_kib = self.rss_kib()

    @staticmethod
    def reset() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    @staticmethod
    def rss_kib() -> int:
        try:
            return status_kib("VmRSS")
        except (OSError, KeyError):
            return 0

    def peak_mib(self) -> float:
        """Peak since the last reset, above the baseline."""
        try:
            peak = status_kib("VmHWM")
        except (OSError, KeyError):
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return (peak - self.baseline_kib) / 1024


# -- workers -----------------------------------------------------------------------------------
def import_common() -> None:
    """What either trainer imports, loaded before the baseline so it counts for neither."""
    import diffusers  # noqa: F401
    import peft  # noqa: F401
    import torch  # noqa: F401
    import torchvision.transforms  # noqa: F401
    import transformers  # noqa: F401
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel  # noqa: F401
    from transformers import CLIPTextModel  # noqa: F401

    import bench.train_lora_reference  # noqa: F401
    import intenttuner.families.base_model  # noqa: F401
    import intenttuner.training.trainer  # noqa: F401


def worker(args: argparse.Namespace) -> dict:
    """One training run of ``args.worker`` in this process; its measurements as a dict."""
    import gc

    import torch

    from intenttuner import runtime

    import_common()
    from intenttuner.dataset.kohya_read import read_training_set
    from intenttuner.families.base_model import load_base_model

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    work = Path(args.workdir)
    out = Path(tempfile.mkdtemp(prefix=f"{args.worker}-", dir=work))
    runtime.set_runtime(runtime.TorchRuntime(models_dir=out / "models", output_dir=out))
    gc.collect()
    meter = PeakMeter()
    model = load_base_model(work / "models" / "checkpoints" / args.model_file, precision="fp32")
    training_set = read_training_set(work / "set")
    step_ends: list[float] = []
    cpu_ends: list[float] = []  # process CPU time: what another job's load does not stretch
    peaks: dict[str, float] = {}

    def on_step() -> None:
        step_ends.append(time.perf_counter())
        cpu_ends.append(time.process_time())
        if len(step_ends) == 1:  # the setup (ours: caching) and first step, apart from the rest
            peaks["setup"] = meter.peak_mib()
            meter.reset()

    started = time.perf_counter()
    if args.worker == "reference":
        facts = run_reference(model, training_set, args, out, on_step)
    else:
        facts = run_ours(model, training_set, args, out, on_step)
    finished = time.perf_counter()
    peaks["steps"] = meter.peak_mib()
    timed, cpu = step_ends[args.warmup - 1:], cpu_ends[args.warmup - 1:]
    steady = (len(timed) - 1) / (timed[-1] - timed[0])
    return {"trainer": args.worker, "steps": len(step_ends), "steps_per_s": steady,
            "steps_per_cpu_s": (len(cpu) - 1) / (cpu[-1] - cpu[0]),
            "whole_steps_per_s": len(step_ends) / (step_ends[-1] - started),
            "setup_s": step_ends[0] - started - 1 / steady,
            "run_s": finished - started,
            "peak_mib": max(peaks.values()), "peak_setup_mib": peaks["setup"],
            "peak_steps_mib": peaks["steps"], "baseline_mib": meter.baseline_kib / 1024,
            "peak_resettable": meter.resettable, "threads": torch.get_num_threads(), **facts}


def run_reference(model, training_set, args, out: Path, on_step) -> dict:
    from bench.train_lora_reference import Settings, train_reference

    settings = Settings(resolution=args.resolution, batch_size=args.batch, rank=args.rank,
                        learning_rate=args.lr, steps=args.steps, seed=args.seed)
    result = train_reference(model, training_set, settings, out, on_step=lambda _: on_step())
    return {"losses": result.losses, "targets": target_kinds(result.lora_modules),
            "lora_parameters": result.lora_parameters, "phase_s": result.phase_seconds}


def run_ours(model, training_set, args, out: Path, on_step) -> dict:
    from intenttuner.training.config import make_config
    from intenttuner.training.trainer import train

    overrides = dict(value.split("=", 1) for value in args.ours_set)
    config = make_config(
        base_model=str(model.source), training_set=str(training_set.root), run_name="bench",
        output_dir=str(out / "loras"), rank=args.rank, alpha=float(args.rank),
        learning_rate=args.lr, max_train_steps=args.steps, batch_size=args.batch,
        resolution=args.resolution, min_snr_gamma=0.0, seed=args.seed, **overrides)
    caching = time_caching()
    result = train(config, base_model=model, training_set=training_set,
                   on_step=lambda _: on_step())
    return {"losses": result.losses, **lora_file_facts(result.lora_path), "caching_s": caching,
            "config": {k: v for k, v in config.model_dump().items()
                       if k in SHOWN_SETTINGS or k in overrides}}


def time_caching() -> dict[str, float]:
    """Seconds the trainer spends in latent and text caching, filled in as it runs: its
    ``cache_latents`` and ``TextCache`` are wrapped with timers (names it imports)."""
    from intenttuner.training import trainer

    seconds: dict[str, float] = {}
    for name, key in (("cache_latents", "latents"), ("TextCache", "text")):
        original = getattr(trainer, name, None)
        if original is None:
            continue

        def timed(*args, _original=original, _key=key, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                seconds[_key] = seconds.get(_key, 0.0) + time.perf_counter() - started

        setattr(trainer, name, timed)
    return seconds


def lora_file_facts(path: Path) -> dict:
    """LoRA target kinds and parameter count of a kohya-format file."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
        count = sum(f.get_slice(k).get_shape()[0] * f.get_slice(k).get_shape()[1] *
                    _kernel(f.get_slice(k).get_shape()) for k in keys if ".lora_" in k)
    modules = [k.removesuffix(".lora_down.weight") for k in keys if k.endswith(".lora_down.weight")]
    return {"targets": target_kinds(modules), "lora_parameters": count}


def _kernel(shape: list[int]) -> int:
    return shape[2] * shape[3] if len(shape) == 4 else 1


def target_kinds(modules: list[str]) -> dict[str, int]:
    """Module paths (diffusers dotted or kohya underscored) -> kind -> count, the kind being
    the path inside its transformer or resnet block ("attn1_to_q", "ff_net_0_proj")."""
    import re

    kinds: dict[str, int] = {}
    for name in modules:
        path = re.sub(r"^lora_(unet|te\d?)_", "", name.replace(".", "_"))
        for anchor in ("transformer_blocks_", "attentions_", "resnets_", "samplers_", "layers_"):
            if anchor in path:
                path = re.sub(r"^\d+_", "", path.rsplit(anchor, 1)[1])
                break
        kinds[path] = kinds.get(path, 0) + 1
    return dict(sorted(kinds.items()))
