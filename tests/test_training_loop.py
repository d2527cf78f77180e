"""The loss, the batch order and the loop's stop paths on the tiny SD 1.5 model (CPU, fp32):
resume gives the weights of an uninterrupted run, Cancel leaves a resumable checkpoint, a NaN
loss stops before it is applied and names the last good checkpoint."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr

from intenttuner.errors import InputError, TrainingDivergedError
from intenttuner.runtime import get_runtime
from intenttuner.training import checkpoints as ckpt
from intenttuner.training import loop
from intenttuner.training.batches import BatchStream, epoch_plan
from intenttuner.training.lora_file import read_lora_file
from intenttuner.training.loss import add_noise, sample_losses, snr_weights, training_scheduler
from intenttuner.training.trainer import train
from tests.training_run_helpers import (
    assert_clean,
    fast_config,
    load_tiny,
    single_thread,
    training_set,
)

# Resumed and uninterrupted runs on the CPU in fp32 are deterministic; the tolerance allows
# for nothing more than float summation order (in practice the difference is exactly 0).
RESUME_TOLERANCE = 1e-6



@pytest.fixture(scope="module", autouse=True)
def one_thread():
    yield from single_thread()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """One tiny SD 1.5 model for the module, shared like the graph shares it (every run must
    give it back as it was)."""
    return load_tiny(tmp_path_factory.mktemp("base"))


class Cancelled(Exception):
    """What the host raises when the user presses Cancel."""


# -- the loss ---------------------------------------------------------------------------------

def test_noise_timesteps_and_offset_come_from_the_one_generator():
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    latents = torch.zeros(3, 4, 8, 8)
    first = add_noise(scheduler, latents, torch.Generator().manual_seed(7))
    again = add_noise(scheduler, latents, torch.Generator().manual_seed(7))
    assert torch.equal(first.noisy, again.noisy) and torch.equal(first.timesteps, again.timesteps)
    # epsilon target: the noise itself (zero latents leave only its scaled copy)
    scale = (1 - scheduler.alphas_cumprod[first.timesteps]).sqrt()[:, None, None, None]
    assert torch.allclose(first.noisy, scale * first.target, atol=1e-6)
    plain = add_noise(scheduler, latents, torch.Generator().manual_seed(7)).target
    offset = add_noise(scheduler, latents, torch.Generator().manual_seed(7), 0.1).target
    shift = offset - plain  # one value per sample and channel, as offset noise adds
    assert torch.allclose(shift, shift[:, :, :1, :1].expand_as(shift), atol=1e-6)
    assert shift.abs().max() > 0


def test_min_snr_weights_are_min_snr_over_snr():
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    timesteps = torch.tensor([0, 10, 100, 500, 999])
    snr = compute_snr(scheduler, timesteps)
    weights = snr_weights(scheduler, timesteps, 5.0)
    assert torch.allclose(weights, torch.minimum(snr, torch.tensor(5.0)) / snr)
    assert weights[0] < 1 and weights[-1] == pytest.approx(1.0)   # high SNR damped, low kept
    assert snr_weights(scheduler, timesteps, 0.0) is None
    prediction, target = torch.ones(2, 4, 2, 2), torch.zeros(2, 4, 2, 2)
    assert torch.equal(sample_losses(prediction, target, torch.tensor([0.5, 2.0])),
                       torch.tensor([0.5, 2.0]))


def test_v_prediction_is_refused():
    scheduler = DDPMScheduler(prediction_type="v_prediction")
    with pytest.raises(InputError, match="v_prediction"):
        training_scheduler(scheduler)


# -- the batch order --------------------------------------------------------------------------

def test_epoch_plan_is_deterministic_one_bucket_per_batch_with_repeats():
    by_bucket = {(64, 64): [0, 1, 2], (64, 128): [3, 4]}
    repeats = [2, 1, 1, 3, 2]
    plan = epoch_plan(by_bucket, repeats, seed=5, epoch=0, global_batch=2, flip=True,
                      caption_dropout=0.5)
    assert plan == epoch_plan(by_bucket, repeats, seed=5, epoch=0, global_batch=2, flip=True,
                              caption_dropout=0.5)
    assert plan != epoch_plan(by_bucket, repeats, seed=5, epoch=1, global_batch=2, flip=True,
                              caption_dropout=0.5)
    bucket_of = {p: b for b, ps in by_bucket.items() for p in ps}
    assert all(len(batch) == 2 and len({bucket_of[s.image] for s in batch}) == 1
               for batch in plan)
    counts = [sum(s.image == p for batch in plan for s in batch) for p in range(5)]
    # every repeat once; the second bucket's 5 entries topped up to 6 from the same bucket
    assert counts[:3] == [2, 1, 1] and counts[3] >= 3 and counts[4] >= 2
    assert sum(counts) == 10 and len(plan) == 5
    samples = [s for batch in plan for s in batch]
    assert any(s.flip for s in samples) and not all(s.flip for s in samples)
    assert any(s.drop_caption for s in samples)
    no_flip = epoch_plan(by_bucket, repeats, seed=5, epoch=0, global_batch=2)
    assert not any(s.flip or s.drop_caption for batch in no_flip for s in batch)


def test_stream_continues_exactly_after_seek():
    def plan_for(epoch):
        return epoch_plan({(64, 64): [0, 1, 2]}, [1, 1, 1], seed=1, epoch=epoch, global_batch=1)

    straight = BatchStream(plan_for)
    taken = [straight.next() for _ in range(7)]   # crosses two epoch boundaries
    resumed = BatchStream(plan_for)
    for _ in range(4):
        resumed.next()
    position = resumed.position
    fresh = BatchStream(plan_for)
    fresh.seek(*position)
    assert [fresh.next() for _ in range(3)] == taken[4:]


# -- stop paths and resume --------------------------------------------------------------------

def lora_state(checkpoint):
    return torch.load(ckpt.state_path(checkpoint), weights_only=True)["adapters"]


def max_difference(a, b):
    assert a.keys() == b.keys()
    return max((a[c][k] - b[c][k]).abs().max().item() for c in a for k in a[c])


def test_cancel_then_resume_gives_the_uninterrupted_weights(models_root, base, tmp_path,
                                                              monkeypatch):
    items = training_set(tmp_path)
    settings = dict(max_train_steps=8, save_every_steps=2, seed=3, noise_offset=0.05,
                    flip=True, caption_dropout=0.25, gradient_accumulation_steps=2,
                    batch_size=2, lr_scheduler="cosine", lr_warmup_steps=2)
    straight = train(fast_config(items, run_name="straight", **settings), base, items)
    assert straight.steps == 8 and len(straight.losses) == 8

    # Cancel pressed after step 3; the host raises in the middle of step 4, after its first
    # batch was taken and its noise drawn (the checkpoint must still be step 3's exact state).
    armed = []
    real_conditioning = loop.conditioning

    def check_interrupted():
        if armed:
            armed.append(True)
            if len(armed) > 2:   # not at the start of step 4, but inside it
                raise Cancelled("cancelled by the user")

    def conditioning_with_host_check(ctx, samples):
        get_runtime().check_interrupted()
        return real_conditioning(ctx, samples)

    with monkeypatch.context() as patch:
        patch.setattr(get_runtime(), "check_interrupted", check_interrupted)
        patch.setattr(loop, "conditioning", conditioning_with_host_check)
        with pytest.raises(Cancelled):
            train(fast_config(items, run_name="cut", **settings), base, items,
                  on_step=lambda info: armed.append(True) if info.step == 3 else None)
    assert_clean(base)
    run_dir = models_root / "loras" / "cut"
    kept = ckpt.list_checkpoints(run_dir, "cut")
    assert [ckpt.checkpoint_step(p) for p in kept] == [2, 3]   # step 3 saved on Cancel
    assert not (models_root / "loras" / "cut.safetensors").exists()
    read_lora_file(kept[-1])                                   # a loadable LoRA

    resumed = train(fast_config(items, run_name="cut", resume_from=str(kept[-1]), **settings),
                    base, items)
    assert resumed.run_name == "cut" and resumed.run_dir == run_dir   # continued in place
    assert resumed.steps == 8
    assert resumed.losses == pytest.approx(straight.losses, abs=RESUME_TOLERANCE)
    for step in (4, 6):
        a = lora_state(ckpt.checkpoint_path(straight.run_dir, "straight", step))
        b = lora_state(ckpt.checkpoint_path(run_dir, "cut", step))
        assert max_difference(a, b) <= RESUME_TOLERANCE
    final_a, _ = read_lora_file(straight.lora_path)
    final_b, _ = read_lora_file(resumed.lora_path)
    assert all(torch.allclose(final_a[k].float(), final_b[k].float(), atol=1e-3)
               for k in final_a)
    steps = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(steps) == 8   # steps after the checkpoint are not listed twice


def test_nan_loss_stops_before_the_step_and_names_the_last_good_checkpoint(
        models_root, base, tmp_path, monkeypatch):
    items = training_set(tmp_path)
    calls = []
    real = loop.sample_losses

    def losses_then_nan(prediction, target, weights):
        calls.append(1)
        result = real(prediction, target, weights)
        return result * float("nan") if len(calls) == 5 else result

    monkeypatch.setattr(loop, "sample_losses", losses_then_nan)
    with pytest.raises(TrainingDivergedError) as error:
        train(fast_config(items, run_name="nan", max_train_steps=8, save_every_steps=2),
              base, items)
    run_dir = models_root / "loras" / "nan"
    good = ckpt.checkpoint_path(run_dir, "nan", 4)
    message = str(error.value)
    assert "step 5" in message and str(good) in message and "learning_rate" in message
    assert [ckpt.checkpoint_step(p) for p in ckpt.list_checkpoints(run_dir, "nan")] == [2, 4]
    tensors, _ = read_lora_file(good)
    assert all(torch.isfinite(t).all() for t in tensors.values())
    assert ckpt.read_state(good)["step"] == 4
    assert not (models_root / "loras" / "nan.safetensors").exists()
    assert_clean(base)


def test_resume_from_the_final_file_or_a_missing_one_is_refused(models_root, base, tmp_path):
    items = training_set(tmp_path)
    with pytest.raises(InputError, match="no checkpoint at"):
        train(fast_config(items, resume_from="nowhere/x-step000002.safetensors"), base, items)
    final = models_root / "loras" / "done.safetensors"
    final.parent.mkdir(parents=True, exist_ok=True)
    final.write_bytes(b"")
    with pytest.raises(InputError, match="training state"):
        train(fast_config(items, resume_from=str(final)), base, items)


def test_ranks_draw_their_own_share_of_one_global_batch():
    """Two ranks get different noise and timesteps, together exactly what one process draws
    for the global batch (so N GPUs train like one with N times the batch)."""
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    latents = torch.zeros(2, 4, 8, 8)
    whole = add_noise(scheduler, torch.zeros(4, 4, 8, 8), torch.Generator().manual_seed(3))
    ranks = [add_noise(scheduler, latents, torch.Generator().manual_seed(3), rank=r,
                       world_size=2) for r in (0, 1)]
    assert not torch.equal(ranks[0].target, ranks[1].target)
    for r, part in enumerate(ranks):
        assert torch.equal(part.target, whole.target[r::2])
        assert torch.equal(part.timesteps, whole.timesteps[r::2])
