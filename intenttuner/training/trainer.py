"""`train(config)`: the one entry point of LoRA training (LoRATrain node, CLI, bench).

    inputs checked -> host models freed -> latents (and text) cached -> LoRA added ->
    steps (checkpoints every N) -> final LoRA file -> base model restored

The base model may be the graph's own (ComfyUI caches it for other nodes), so whatever
happens (success, Cancel, NaN, disk full, any error) the adapters come out and its original
tensors go back before `train` returns or raises. Only the main process writes files.

Failures say what is left: a NaN/inf loss stops before the bad step is applied and names the
last good checkpoint; a full disk names the file that could not be written and the last intact
checkpoint; Cancel saves a checkpoint of the last finished step first, so it can be resumed.

An observer (`observer.TrainObserver`, e.g. the training monitor) follows the run through
`run_hooks`: every step, a checkpoint at each of its sample points and the final file, and the
end however it comes; asked between steps, it can stop the run early, which then ends like a
finished one (the final file of the steps done).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..dataset.kohya_read import read_training_set
from ..dataset.training_set import write_text_atomic
from ..errors import DiskFullError, InputError, TrainingDivergedError
from ..families.sd_model import BaseModel
from ..runtime import get_runtime
from . import checkpoints as ckpt
from .batches import BatchStream, epoch_plan
from .config import CONFIG_FILE, TrainConfig
from .distributed import Distributed, setup_distributed
from .grad_mode import grad_enabled, ordinary_tensors
from .init_lora import base_probe, load_init_lora
from .kohya_keys import kohya_state_dict
from .latent_cache import ENCODE_BATCH, LatentCache, cache_latents
from .loop import NonFiniteLoss, StepInfo, TrainContext, run_steps
from .lora_file import save_lora_file
from .lora_metadata import bucket_info, training_metadata
from .lora_setup import LoraSetup, adapter_state
from .model_setup import (
    PRECISION_NAMES,
    add_seeded_lora,
    check_base_model,
    load_base,
    place,
    restore_model,
)
from .observer import TrainObserver
from .optim import make_optimizer, make_schedule, weight_dtype
from .run_folder import (
    RunFolder,
    checkpoint_file,
    is_step_record,
    new_run_folder,
    read_metrics,
    restart_metrics,
    resumed_run_folder,
    write_metrics,
)
from .run_hooks import RunHooks
from .text_cache import TextCache

log = logging.getLogger(__name__)

LATENT_CACHE = ("intenttuner", "cache", "latents")  # under the runtime's output folder


@dataclass
class TrainResult:
    run_name: str
    lora_path: Path              # models/loras/<run>.safetensors (final)
    run_dir: Path                # models/loras/<run>/ : config.json, metrics.jsonl, checkpoints
    checkpoints: list[Path]      # models/loras/<run>/<run>-step000100.safetensors ...
    steps: int
    losses: list[float]          # per optimizer step (mean over accumulation)
    warnings: list[str] = field(default_factory=list)
    stopped: bool = False        # ended early by the observer (steps < the planned steps)


@dataclass
class Run:
    """One training session: the context plus what saving needs to know."""

    ctx: TrainContext
    folder: RunFolder
    training_set: object
    total_steps: int
    optimizer_name: str
    started_at: float
    saved_step: int = 0
    last_checkpoint: Path | None = None
    base_probe: list[float] = field(default_factory=list)   # init_lora.base_probe


def train(config: TrainConfig, base_model: BaseModel | None = None, training_set=None,
          on_step: Callable[[StepInfo], None] | None = None,
          dist: Distributed | None = None, observer: TrainObserver | None = None) -> TrainResult:
    """Train a LoRA as ``config`` says (see the module docstring). ``base_model`` /
    ``training_set``: already loaded by the graph, else loaded from the config's paths;
    ``on_step``: called after every optimizer step; ``dist``: the process group (default:
    from the launcher's environment, a single process without one); ``observer``: follows
    the run and may stop it (main process; see `observer`)."""
    runtime = get_runtime()
    own_dist = dist is None
    dist = dist or setup_distributed(runtime.torch_device())
    try:
        # Hosts may call this under torch.inference_mode (ComfyUI runs every node so): turn
        # autograd back on, and make a graph-loaded model's inference tensors trainable.
        with grad_enabled():
            return _train(config, base_model, training_set, RunHooks(observer, dist, on_step),
                          dist)
    finally:
        if own_dist:
            dist.close()


def _train(config, base_model, training_set, hooks: RunHooks, dist: Distributed) -> TrainResult:
    runtime = get_runtime()
    training_set = training_set if training_set is not None else \
        read_training_set(config.training_set)
    if not training_set.items:
        raise InputError("The training set has no images; add images to its <repeats>_<name> "
                         "folders (or choose another set) before training.")
    checkpoint = checkpoint_file(config) if config.resume_from else None
    state = ckpt.read_state(checkpoint) if checkpoint else None
    dtype = weight_dtype(config, dist.device)
    if base_model is not None:
        check_base_model(base_model)  # refused before the host's models are freed for it
        ordinary_tensors(base_model.modules().values())
    runtime.free_memory()  # the host's cached models leave the GPU before ours arrive
    model = base_model if base_model is not None else load_base(config, dtype)
    scheduler = check_base_model(model)
    # Encoding no more images at once than a training step holds keeps caching's memory peak
    # under training's (bench/train_lora.py: 0.67x -> 0.50x the reference's peak on CPU).
    cache = cache_latents(model, training_set, config, latent_cache_dir(config),
                          batch_size=min(ENCODE_BATCH, config.batch_size))
    text = None if config.train_text_encoder else TextCache(
        model, [image.caption for image in cache.images], model.managed("text_encoder").device)
    warnings = list(training_set.all_warnings())
    probe = base_probe(model)  # before LoRA wraps (and the run's dtype casts) its layers
    setup = add_seeded_lora(model, config, dtype)
    try:
        for name in setup.saved:
            place(model, name, dist.device)
        if config.init_lora and state is None:  # a resume's checkpoint holds the weights
            warnings += load_init_lora(model, config, setup, probe)
        ctx = build_context(config, model, setup, scheduler, cache, text, dist, dtype)
        steps = total_steps(config, ctx.stream)
        ctx.schedule = make_schedule(ctx.optimizer, config, steps)
        if state is not None:  # before any folder is made: a checkpoint that does not fit
            warnings += ckpt.restore_state(ctx, state, checkpoint)
        run = Run(ctx=ctx, folder=choose_folder(config, training_set, checkpoint, dist),
                  training_set=training_set, total_steps=steps,
                  optimizer_name=ctx.optimizer_name, started_at=time.time(),
                  saved_step=ctx.step, last_checkpoint=checkpoint, base_probe=probe)
        history = resume_history(run, checkpoint) if checkpoint else []
        if dist.is_main and not (run.folder.run_dir / CONFIG_FILE).exists():
            config.save(run.folder.run_dir)
        elif dist.is_main:  # a resume in the run's own folder keeps the run's first config
            write_text_atomic(run.folder.run_dir / f"config.resume-step{ctx.step:06d}.json",
                              config.to_json() + "\n")
        try:
            hooks.start(run.folder, steps, ctx.step, config, training_set)
            losses = history + train_steps(run, hooks)
            lora_path = finish(run, hooks)
        except BaseException as exc:
            hooks.fail(exc, ctx.step)
            raise
        return TrainResult(run_name=run.folder.name, lora_path=lora_path,
                           run_dir=run.folder.run_dir,
                           checkpoints=ckpt.list_checkpoints(run.folder.run_dir, run.folder.name),
                           steps=ctx.step, losses=losses, warnings=warnings,
                           stopped=ctx.step < steps)
    finally:
        restore_model(model, setup)


def latent_cache_dir(config: TrainConfig) -> Path | None:
    if not config.cache_latents_to_disk:
        return None
    return get_runtime().output_dir().joinpath(*LATENT_CACHE)


def build_context(config: TrainConfig, model: BaseModel, setup: LoraSetup, scheduler,
                  cache: LatentCache, text: TextCache | None, dist: Distributed,
                  dtype: torch.dtype) -> TrainContext:
    repeats = [image.repeats for image in cache.images]
    by_bucket = cache.by_bucket()

    def plan_for(epoch: int):
        return epoch_plan(by_bucket, repeats, config.seed, epoch,
                          config.batch_size * dist.world_size, config.flip, config.caption_dropout)

    optimizer, name = make_optimizer(setup.param_groups, config, dist.device)
    scaler = torch.amp.GradScaler("cuda") if (dtype == torch.float16
                                              and dist.device.type == "cuda") else None
    ctx = TrainContext(config=config, model=model, setup=setup, unet=dist.wrap(model.unet),
                       scheduler=scheduler, optimizer=optimizer, schedule=None, cache=cache,
                       text=text, stream=BatchStream(plan_for), dist=dist, device=dist.device,
                       weight_dtype=dtype, scaler=scaler, optimizer_name=name)
    ctx.generator.manual_seed(config.seed)
    ctx.mark_step_done()
    return ctx


def total_steps(config: TrainConfig, stream: BatchStream) -> int:
    if not config.epochs:
        return config.max_train_steps
    steps = math.ceil(config.epochs * stream.batches_per_epoch / config.gradient_accumulation_steps)
    if config.lr_warmup_steps >= steps:
        raise InputError(f"lr_warmup_steps ({config.lr_warmup_steps}) must be fewer than the "
                         f"{steps} steps of {config.epochs} epoch(s).")
    return steps


def choose_folder(config: TrainConfig, training_set, checkpoint: Path | None,
                  dist: Distributed) -> RunFolder:
    """The run folder, chosen (and created) by the main process and shared with the others."""
    folder = None
    if dist.is_main:
        if checkpoint is None:
            folder = new_run_folder(config, training_set)
        else:
            own = ckpt.list_checkpoints(checkpoint.parent, checkpoint.parent.name)
            folder = resumed_run_folder(checkpoint, newest=bool(own) and own[-1] == checkpoint)
    return dist.broadcast(folder)


def resume_history(run: Run, checkpoint: Path) -> list[float]:
    """The losses up to the checkpoint (its run's step records; the monitor's records carry an
    "event" key and are no losses), whose records also start this run's metrics.jsonl (steps
    after the checkpoint are trained again). Resumed in its own folder, the run keeps the
    earlier session's monitor records too: its sample points, whose images are in that folder,
    stay the run's history. A new run from another's checkpoint keeps the steps only: those
    events name the other run and its images."""
    records = read_metrics(checkpoint.parent / "metrics.jsonl", run.ctx.step)
    steps = [r for r in records if is_step_record(r)]
    if run.ctx.dist.is_main:
        own = checkpoint.parent == run.folder.run_dir
        restart_metrics(run.folder, records if own else steps)
    return [float(r["loss"]) if r.get("loss") is not None else math.nan for r in steps]


def train_steps(run: Run, hooks: RunHooks) -> list[float]:
    """The loop with metrics, checkpoints, sample points and the hooks after each step."""
    ctx, config = run.ctx, run.ctx.config

    def after_step(info: StepInfo) -> None:
        if ctx.dist.is_main:
            write_metrics(run.folder, asdict(info))
        hooks.step(info)
        every = config.save_every_steps
        if every and info.step % every == 0 and info.step < run.total_steps:
            save_step_checkpoint(run)
        if hooks.sample_due(info.step, run.total_steps):
            path, save_seconds = step_checkpoint(run)
            hooks.point(info.step, path, ctx.model, final=False, save_seconds=save_seconds)

    try:
        return run_steps(ctx, run.total_steps, after_step, should_stop=hooks.stop_requested)
    except NonFiniteLoss as exc:
        raise TrainingDivergedError(
            f"Training stopped: {exc}, so that step was not applied. The last good checkpoint "
            f"is {describe(run.last_checkpoint)}. Resume from it with a lower learning_rate "
            "(or max_grad_norm 1, min_snr_gamma 5), or check the training images.") from None
    except DiskFullError:
        raise
    except BaseException:
        # Cancel (or any other stop between steps): keep what was trained.
        if ctx.step > run.saved_step:
            try:
                save_step_checkpoint(run)
            except Exception:  # noqa: BLE001 - the original error is the one to report
                log.exception("could not save a checkpoint after training stopped")
        raise


def describe(checkpoint: Path | None) -> str:
    if checkpoint is None:
        return "none (no checkpoint was saved yet; set save_every_steps to keep some)"
    return str(checkpoint)


def file_tensors_and_metadata(run: Run, finished: bool) -> tuple[dict, dict[str, str]]:
    ctx = run.ctx
    model, config = ctx.model, ctx.config
    tensors = kohya_state_dict(adapter_state(ctx.setup), model.kind, ctx.setup.alphas,
                               unet_config=dict(model.unet.config))
    epoch, done = ctx.last_position
    images = ctx.cache.images
    metadata = training_metadata(
        config, kind=model.kind, training_set=run.training_set, steps=ctx.step,
        epoch=epoch + (done >= ctx.stream.batches_per_epoch), started_at=run.started_at,
        finished_at=time.time() if finished else None, resolution=config.resolution_for(
            model.kind), optimizer=run.optimizer_name,
        bucket_info=bucket_info([i.bucket for i in images], [i.repeats for i in images]),
        base_model_name=str(model.source), run_name=run.folder.name,
        mixed_precision=PRECISION_NAMES[ctx.weight_dtype], world_size=ctx.dist.world_size,
        batches_per_epoch=ctx.stream.batches_per_epoch, max_steps=run.total_steps,
        base_probe=run.base_probe)
    return tensors, metadata


def save_step_checkpoint(run: Run) -> None:
    """Checkpoint of the last finished step (main process), pruned to keep_checkpoints."""
    ctx = run.ctx
    if ctx.dist.is_main:
        path = ckpt.checkpoint_path(run.folder.run_dir, run.folder.name, ctx.step)
        tensors, metadata = file_tensors_and_metadata(run, finished=False)
        with disk_full_report(run, path):
            ckpt.save_checkpoint(path, tensors, metadata, ckpt.training_state(ctx))
        run.last_checkpoint = path
        ckpt.prune_checkpoints(run.folder.run_dir, run.folder.name,
                               ctx.config.keep_checkpoints)
    run.saved_step = ctx.step


def step_checkpoint(run: Run) -> tuple[Path, float]:
    """The checkpoint of the last finished step, saved now unless it already is, and the
    seconds this call spent saving it: a save made only for a sample point is part of the
    monitoring's cost (0 when save_every_steps had saved it anyway)."""
    seconds = 0.0
    if run.saved_step != run.ctx.step:
        began = time.perf_counter()
        save_step_checkpoint(run)
        seconds = time.perf_counter() - began
    return ckpt.checkpoint_path(run.folder.run_dir, run.folder.name, run.ctx.step), seconds


def finish(run: Run, hooks: RunHooks) -> Path:
    """The final file (of every step, or of those done when the observer stopped the run),
    its sample point while the LoRA is still in the model, then the run's end. A run stopped
    before its first step has no point: its file holds the untrained LoRA, nothing to judge
    (a resumed run stopped at once holds the checkpoint's steps and is sampled)."""
    ctx = run.ctx
    lora_path = save_final(run) if ctx.dist.is_main else run.folder.lora_path
    if ctx.step > 0:
        hooks.point(ctx.step, lora_path, ctx.model, final=True)
    ctx.dist.barrier()
    hooks.end("stopped" if ctx.step < run.total_steps else "finished", ctx.step, lora_path)
    return lora_path


def save_final(run: Run) -> Path:
    tensors, metadata = file_tensors_and_metadata(run, finished=True)
    with disk_full_report(run, run.folder.lora_path):
        return save_lora_file(run.folder.lora_path, tensors, metadata)


class disk_full_report:
    """Turn FORMAT's DiskFullError into one that also says where training stands."""

    def __init__(self, run: Run, path: Path):
        self.run, self.path = run, path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if isinstance(exc, DiskFullError):
            error = DiskFullError(
                f"Could not write {self.path}: the disk is full or over quota. Training stopped "
                f"at step {self.run.ctx.step}; nothing of this file was left behind and the last "
                f"intact checkpoint is {describe(self.run.last_checkpoint)}. Free some space, "
                "then resume_from that checkpoint.")
            error.errno = getattr(exc, "errno", None)
            raise error from exc
        return False

