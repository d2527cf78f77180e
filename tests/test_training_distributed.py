"""Several training processes (torchrun, accelerate launch) on the CPU with gloo: they end with
identical LoRA weights, and only the main process writes files. One process needs no launcher
and creates no process group.

Each launcher run costs two processes that import the training stack, so there are two: torchrun
running tests/train_ranks.py (identical weights, the file rank 0 saved, files written once) and
`accelerate launch --multi_gpu` running the command line (it prints the LoRA once, for two
processes, and writes files once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from intenttuner.errors import InputError
from intenttuner.training.distributed import Distributed, setup_distributed
from tests.comfyui_harness import free_port
from tests.conftest import PACK_DIR
from tests.training_helpers import make_kohya_set

BIN = Path(sys.executable).parent
LAUNCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
              "ACCELERATE_USE_CPU")


@pytest.fixture
def no_launcher(monkeypatch):
    for name in LAUNCH_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_one_process_needs_no_launcher_and_changes_nothing(no_launcher):
    dist = setup_distributed(torch.device("cpu"))
    assert (dist.rank, dist.world_size, dist.is_main, dist.enabled) == (0, 1, True, False)
    module = torch.nn.Linear(2, 2)
    assert dist.wrap(module) is module
    with dist.no_sync(module, active=True):
        pass
    assert dist.shard([1, 2, 3]) == [1, 2, 3]
    assert dist.mean(0.25) == 0.25 and dist.broadcast("x") == "x"
    dist.barrier()
    dist.close()
    assert not torch.distributed.is_initialized()


def test_a_launch_environment_without_its_rendezvous_is_named(no_launcher):
    no_launcher.setenv("WORLD_SIZE", "2")
    no_launcher.setenv("RANK", "0")
    with pytest.raises(InputError, match="MASTER_ADDR is not set.*torchrun --nproc_per_node"):
        setup_distributed(torch.device("cpu"))
    no_launcher.setenv("RANK", "first")
    with pytest.raises(InputError, match="RANK is 'first', not a whole number"):
        setup_distributed(torch.device("cpu"))


def launch_environment(monkeypatch, world_size: int = 2) -> None:
    """What torchrun exports for rank 0 (no other process will come: tests fake or own the
    group)."""
    for name, value in (("WORLD_SIZE", str(world_size)), ("RANK", "0"), ("LOCAL_RANK", "0"),
                        ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", str(free_port()))):
        monkeypatch.setenv(name, value)


def test_several_processes_on_mps_train_on_the_cpu_and_say_so(no_launcher, caplog):
    launch_environment(no_launcher)
    made, ended = [], []
    no_launcher.setattr(torch.distributed, "is_initialized", lambda: bool(made) and not ended)
    no_launcher.setattr(torch.distributed, "init_process_group",
                        lambda **kwargs: made.append(kwargs))
    no_launcher.setattr(torch.distributed, "destroy_process_group", lambda: ended.append(1))
    with caplog.at_level("WARNING", logger="intenttuner.training.distributed"):
        dist = setup_distributed(torch.device("mps"))
    assert dist.device == torch.device("cpu") and made[0]["backend"] == "gloo"
    assert "every process trains on the CPU (gloo) instead" in caplog.text
    dist.close()
    dist.close()
    assert ended == [1]  # the group it made, ended once


def test_a_process_group_made_by_someone_else_is_left_open(no_launcher, tmp_path):
    launch_environment(no_launcher)
    torch.distributed.init_process_group("gloo", init_method=(tmp_path / "store").as_uri(),
                                         rank=0, world_size=1)
    try:
        dist = setup_distributed(torch.device("cpu"))
        assert dist.enabled
        dist.close()
        assert torch.distributed.is_initialized()
    finally:
        torch.distributed.destroy_process_group()


def test_shards_of_a_global_batch_cover_it_once():
    batch = list(range(7))
    shards = [Distributed(rank=r, world_size=3).shard(batch) for r in range(3)]
    assert sorted(i for s in shards for i in s) == batch
    assert shards[0] == [0, 3, 6]


def run(command: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "INTENTTUNER_OFFLINE": "1",
           "PYTHONPATH": str(PACK_DIR), "OMP_NUM_THREADS": "1"}
    for name in LAUNCH_ENV:
        env.pop(name, None)
    out = subprocess.run(command, cwd=PACK_DIR, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]
    return out


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def torchrun(*args: str) -> list[str]:
    return [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", *args]


def test_ddp_averages_gradients_so_processes_stay_identical():
    """The module alone: different seeds and different shards per process; wrapping gives all
    rank 0's weights, and after three accumulated steps they are still the same, while an
    unwrapped copy from the same start and data (no all-reduce) drifts apart."""
    ranks = {r["rank"]: r for r in json_lines(
        run(torchrun("tests/distributed_check.py")).stdout)}
    assert sorted(ranks) == [0, 1]
    assert ranks[0]["seeded"] != ranks[1]["seeded"]
    assert ranks[0]["started"] == ranks[1]["started"] == ranks[0]["seeded"]
    assert ranks[0]["weights"] == ranks[1]["weights"] != ranks[0]["started"]
    assert ranks[0]["alone"] != ranks[1]["alone"]
    # Inside no_sync the gradient is this process's own; the last micro-step reduces it.
    assert ranks[0]["grads"]["local"] != ranks[1]["grads"]["local"]
    assert ranks[0]["grads"]["synced"] == ranks[1]["grads"]["synced"]
    assert ranks[0]["shard"] == [0, 2, 4] and ranks[1]["shard"] == [1, 3, 5]
    assert ranks[0]["mean"] == ranks[1]["mean"] == 0.5
    assert ranks[0]["broadcast"] == ranks[1]["broadcast"] == "r0"
    assert ranks[0]["is_main"] and not ranks[1]["is_main"]


@pytest.fixture
def run_config(tmp_path):
    """A tiny SD 1.5 checkpoint, four 64 px images, and a config of three steps that trains the
    text encoder too (its gradients are averaged outside DDP) and checkpoints at step 2."""
    from intenttuner.tiny.base_model import make_tiny_sd15_checkpoint
    from intenttuner.training.config import make_config

    models = tmp_path / "models"
    checkpoint = make_tiny_sd15_checkpoint(models / "checkpoints")
    training_set = make_kohya_set(tmp_path / "set", count=4)
    config = make_config(base_model=str(checkpoint), training_set=str(training_set),
                         run_name="pair", rank=4, alpha=2.0, resolution=64, batch_size=1,
                         max_train_steps=3, save_every_steps=2, train_text_encoder=True,
                         learning_rate=1e-3, seed=7)
    return config.save(tmp_path / "config"), models


def written_files(models: Path) -> list[str]:
    loras = models / "loras"
    return sorted(p.relative_to(loras).as_posix() for p in loras.rglob("*") if p.is_file())


def check_one_run_written(models: Path, steps: int) -> None:
    """What a single process writes, written once: no second run folder, no duplicate lines."""
    files = written_files(models)
    assert "pair.safetensors" in files and not any(f.startswith("pair-2") for f in files), files
    assert {"pair/config.json", "pair/metrics.jsonl", "pair/pair-step000002.safetensors",
            "pair/pair-step000002.train-state"} <= set(files), files
    metrics = (models / "loras" / "pair" / "metrics.jsonl").read_text().splitlines()
    # one step record per step, written once (the monitor's start/end records name an event)
    records = [json.loads(line) for line in metrics]
    steps_logged = [r["step"] for r in records if "event" not in r]
    assert steps_logged == list(range(1, steps + 1)), metrics


def test_two_processes_end_with_identical_lora_weights(run_config, tmp_path):
    from safetensors.torch import load_file

    from intenttuner.training.kohya_keys import adapters_from_kohya
    from intenttuner.training.lora_file import read_lora_file

    config, models = run_config
    out = tmp_path / "ranks"
    reports = json_lines(run(torchrun("tests/train_ranks.py", str(config), str(models),
                                      str(out))).stdout)
    main = next(r for r in reports if r["rank"] == 0)
    ranks = [load_file(out / f"rank{r}.safetensors") for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    assert {k.split("/")[0] for k in ranks[0]} == {"unet", "text_encoder"}
    for key, value in ranks[0].items():
        assert torch.equal(value, ranks[1][key]), key
    # The weights compared are the trained ones: lora_B starts at zero and moved...
    assert all(v.abs().max() > 0 for k, v in ranks[0].items() if "lora_B" in k)
    # ...and they are what rank 0 saved (the file holds them in fp16).
    tensors, _ = read_lora_file(Path(main["lora_path"]))
    adapters, _ = adapters_from_kohya(tensors, "sd15")
    # (peft's own state dict of a CLIPTextModel names its layers without "text_model.")
    saved = {f"{c}/{k}".replace("/text_model.", "/"): v
             for c, state in adapters.items() for k, v in state.items()}
    assert saved.keys() == ranks[0].keys()
    for key, value in saved.items():
        torch.testing.assert_close(value.float(), ranks[0][key], atol=2e-3, rtol=2e-3)
    assert main["steps"] == 3 and len(main["losses"]) == 3
    check_one_run_written(models, steps=3)


def test_the_command_line_under_accelerate_launch_saves_once(run_config):
    """`accelerate launch --multi_gpu` runs torchrun underneath; without CUDA our code picks
    gloo. (`accelerate launch --cpu --num_processes 2` would start ONE process: CPU
    multi-process needs MPI there.)"""
    config, models = run_config
    out = run([str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()), "-m", "intenttuner",
               "train", str(config), "--models-dir", str(models), "--steps", "3"])
    lora_lines = [line for line in out.stdout.splitlines() if line.startswith("LoRA: ")]
    assert lora_lines == [f"LoRA: {models / 'loras' / 'pair.safetensors'}"], out.stdout
    assert "after 3 steps (2 process(es))" in out.stdout
    check_one_run_written(models, steps=3)
