"""LoRA set-up on the tiny SD 1.5 model: kohya's targets, peft names, exact restoration of the
shared base model; the optimizer, the schedule and the precision resolver."""

from __future__ import annotations

import pytest
import torch
from peft.tuners.lora import LoraLayer

from intenttuner.errors import InputError
from intenttuner.training import optim
from intenttuner.training.config import make_config
from intenttuner.training.kohya_keys import kohya_state_dict
from intenttuner.training.lora_setup import (
    adapter_state,
    add_lora,
    load_adapter_state,
    remove_lora,
    unet_targets,
)
from tests.training_run_helpers import load_tiny, single_thread

TRANSFORMER_LEAVES = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q",
                      "attn2.to_k", "attn2.to_v", "attn2.to_out.0", "ff.net.0.proj", "ff.net.2")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    yield from single_thread()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_tiny(tmp_path_factory.mktemp("base"))


def config(**values):
    return make_config(base_model="tiny", training_set="set", **values)


def snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def assert_restored(module, before, training=False):
    after = module.state_dict()
    assert set(after) == set(before)
    for key, tensor in before.items():
        assert after[key].dtype == tensor.dtype, key
        assert torch.equal(after[key], tensor), key
    assert not any(isinstance(m, LoraLayer) for m in module.modules())
    assert not hasattr(module, "peft_config")
    assert module.training is training


def test_unet_targets_are_kohya_defaults(model):
    linear, conv = unet_targets(model.unet, conv_rank=0)
    assert conv == []
    blocks = {p.split(".transformer_blocks.")[0] for p in linear if ".transformer_blocks." in p}
    for block in blocks:
        for leaf in TRANSFORMER_LEAVES:
            assert f"{block}.transformer_blocks.0.{leaf}" in linear
        assert f"{block}.proj_in" in linear and f"{block}.proj_out" in linear
    # Only Transformer2DModel blocks: no resnet, time embedding or conv_in/out.
    assert all(".attentions." in p for p in linear)
    assert len(linear) == len(blocks) * (len(TRANSFORMER_LEAVES) + 2)


def test_locon_adds_resnet_and_sampler_convs(model):
    before = snapshot(model.unet)
    setup = add_lora(model, config(rank=4, alpha=2, conv_rank=2, conv_alpha=1),
                     torch.float32)
    try:
        state = adapter_state(setup)["unet"]
        conv = "down_blocks.0.resnets.0.conv1"
        assert state[f"{conv}.lora_A.weight"].shape == (2, 32, 3, 3)   # conv_rank, 3x3 down
        assert state[f"{conv}.lora_B.weight"].shape == (32, 2, 1, 1)   # kohya's 1x1 up
        assert "down_blocks.0.downsamplers.0.conv.lora_A.weight" in state
        assert any(k.startswith("up_blocks.0.upsamplers.0.conv.") for k in state)
        assert setup.alphas[f"unet:{conv}"] == 1
        # kohya's conv_dim also trains the resnets' linear / 1x1 layers at the main rank.
        assert state["down_blocks.0.resnets.0.time_emb_proj.lora_A.weight"].shape[0] == 4
        assert setup.alphas["unet:down_blocks.0.resnets.0.time_emb_proj"] == 2
        attn = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
        assert setup.alphas[f"unet:{attn}"] == 2
        # Every adapter module has its alpha, and FORMAT can name every one of them.
        tensors = kohya_state_dict(adapter_state(setup), "sd15", setup.alphas)
        assert len(tensors) == 3 * len(setup.alphas)
    finally:
        remove_lora(setup)
    assert_restored(model.unet, before)


def test_adapters_start_as_a_no_op_and_names_are_component_paths(model):
    torch.manual_seed(0)
    x, t, h = torch.randn(1, 4, 8, 8), torch.tensor([500]), torch.randn(1, 77, 32)
    with torch.no_grad():
        reference = model.unet(x, t, encoder_hidden_states=h).sample
    setup = add_lora(model, config(rank=4, gradient_checkpointing=False), torch.float32)
    try:
        model.unet.eval()
        with torch.no_grad():
            assert torch.equal(model.unet(x, t, encoder_hidden_states=h).sample, reference)
        state = adapter_state(setup)["unet"]
        assert all(k.startswith(("down_blocks.", "up_blocks.", "mid_block.")) for k in state)
        assert all(k.endswith((".lora_A.weight", ".lora_B.weight")) for k in state)
        assert all(v.dtype == torch.float32 for v in state.values())
        assert all(not v.any() for k, v in state.items() if ".lora_B." in k)  # kohya: up = 0
        assert [g["name"] for g in setup.param_groups] == ["unet"]
    finally:
        remove_lora(setup)


def test_half_precision_training_restores_the_exact_fp32_model(model):
    unet_before, te_before = snapshot(model.unet), snapshot(model.text_encoder)
    flags = {k: p.requires_grad for k, p in model.unet.named_parameters()}
    setup = add_lora(model, config(rank=4, train_text_encoder=True, learning_rate=1e-4,
                                   text_encoder_lr=3e-5), torch.bfloat16)
    try:
        frozen = model.unet.conv_in.weight
        assert frozen.dtype == torch.bfloat16 and not frozen.requires_grad
        assert all(p.dtype == torch.float32 and p.requires_grad for p in setup.parameters())
        assert model.unet.is_gradient_checkpointing
        groups = {g["name"]: g["lr"] for g in setup.param_groups}
        assert groups == {"unet": 1e-4, "text_encoder": 3e-5}
        te_keys = adapter_state(setup)["text_encoder"]
        assert any(".self_attn.q_proj.lora_A" in k for k in te_keys)
        assert any(".mlp.fc2.lora_B" in k for k in te_keys)
    finally:
        remove_lora(setup)
    assert_restored(model.unet, unet_before)
    assert_restored(model.text_encoder, te_before)
    assert not model.unet.is_gradient_checkpointing
    assert {k: p.requires_grad for k, p in model.unet.named_parameters()} == flags


def test_adapter_state_round_trip_and_mismatch(model):
    setup = add_lora(model, config(rank=4), torch.float32)
    try:
        state = adapter_state(setup)
        changed = {c: {k: v + 0.25 for k, v in d.items()} for c, d in state.items()}
        load_adapter_state(setup, changed)
        again = adapter_state(setup)
        assert all(torch.equal(again["unet"][k], changed["unet"][k]) for k in changed["unet"])
        wrong = {"unet": {k: v[:2] if ".lora_A." in k else v for k, v in state["unet"].items()}}
        with pytest.raises(InputError, match="rank"):
            load_adapter_state(setup, wrong)
        with pytest.raises(InputError, match="train_text_encoder"):
            load_adapter_state(setup, {**state, "text_encoder": {}})
    finally:
        remove_lora(setup)


def test_precision_resolver_and_optimizer_choice():
    cpu = torch.device("cpu")
    assert optim.weight_dtype(config(), cpu) == torch.float32          # auto on the CPU
    assert optim.weight_dtype(config(mixed_precision="bf16"), cpu) == torch.bfloat16
    assert optim.weight_dtype(config(mixed_precision="no"), cpu) == torch.float32
    assert optim.optimizer_name(config(optimizer="auto"), cpu) == "adamw"
    params = [torch.nn.Parameter(torch.zeros(3))]
    optimizer, name = optim.make_optimizer([{"params": params, "lr": 1e-3, "name": "unet"}],
                                           config(weight_decay=0.1), cpu)
    assert name == "AdamW" and isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.param_groups[0]["weight_decay"] == 0.1


def test_adamw8bit_without_bitsandbytes_says_how_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    with pytest.raises(InputError, match="pip install bitsandbytes"):
        optim.optimizer_name(config(optimizer="adamw8bit"), torch.device("cpu"))


@pytest.mark.parametrize("name", ["constant", "cosine", "linear"])
def test_schedules_warm_up_then_follow_their_shape(name):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1.0)
    schedule = optim.make_schedule(optimizer, config(lr_scheduler=name, lr_warmup_steps=2,
                                                     max_train_steps=10), total_steps=10)
    rates = []
    for _ in range(10):
        rates.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
    assert rates[0] == 0.0 and rates[1] == pytest.approx(0.5) and rates[2] == pytest.approx(1.0)
    if name == "constant":
        assert rates[2:] == [1.0] * 8
    else:
        assert rates[3] < 1.0 and rates[-1] < 0.2 and rates == rates[:2] + sorted(rates[2:],
                                                                                   reverse=True)
