"""Training a model that was loaded under ``torch.inference_mode()``, as ComfyUI loads and runs
everything (intenttuner.training.grad_mode): without the helpers a LoRA step cannot even run
backward; with them it trains, the frozen weights are unchanged, and the caller's mode is back
afterwards."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from intenttuner.families.base_model import load_base_model
from intenttuner.tiny.base_model import make_tiny_sd15_checkpoint
from intenttuner.training.config import make_config
from intenttuner.training.grad_mode import grad_enabled, ordinary_tensors
from intenttuner.training.lora_setup import add_lora, remove_lora


@pytest.fixture
def inference_model(tmp_path):
    """The tiny SD 1.5 model loaded the way ComfyUI's executor runs a loader node."""
    checkpoint = make_tiny_sd15_checkpoint(tmp_path)
    with torch.inference_mode():
        model = load_base_model(checkpoint, precision="fp32")
    assert all(p.is_inference() for p in model.unet.parameters())
    return model


def lora_step(model) -> dict[str, bool]:
    """One LoRA training step on the UNet and text encoder; returns, per LoRA weight, whether it
    got a gradient and (lora_B, which starts at zero) moved. The adapters are removed again, as
    the trainer does."""
    config = make_config(base_model="base.safetensors", training_set="set", rank=4, alpha=4.0,
                         train_text_encoder=True)
    setup = add_lora(model, config, torch.float32)
    try:
        lora = {f"{component}.{name}": p for component, module in setup.components.items()
                for name, p in module.named_parameters() if "lora_" in name}
        before = {name: p.detach().clone() for name, p in lora.items()}
        tokens = model.tokenizer(["ohwx"], padding="max_length", max_length=77,
                                 return_tensors="pt").input_ids
        hidden = model.text_encoder(tokens)[0]
        latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
        prediction = model.unet(latents, torch.tensor([10]), encoder_hidden_states=hidden).sample
        prediction.pow(2).mean().backward()
        torch.optim.SGD(setup.parameters(), lr=1.0).step()
        return {name: p.grad is not None and ("lora_B" not in name or
                                              not torch.equal(before[name], p.detach()))
                for name, p in lora.items()}
    finally:
        remove_lora(setup)


def test_without_the_helpers_an_inference_loaded_model_cannot_train(inference_model):
    with torch.inference_mode():  # as the node runs: no autograd graph at all
        with pytest.raises(RuntimeError, match="does not require grad"):
            lora_step(inference_model)
        # Grad on, but the weights still inference tensors: autograd refuses them.
        with torch.inference_mode(False), torch.enable_grad():
            with pytest.raises(RuntimeError, match="(?i)inference tensor"):
                lora_step(inference_model)


def test_the_helpers_make_an_inference_loaded_model_trainable(inference_model):
    frozen = {k: v.clone() for k, v in inference_model.unet.state_dict().items()}
    with torch.inference_mode():  # as the node runs
        with grad_enabled():
            assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
            replaced = ordinary_tensors(inference_model.modules().values())
            trained = lora_step(inference_model)
        assert torch.is_inference_mode_enabled()  # the caller's mode is back
    assert replaced > 0
    assert {name.split(".")[0] for name in trained} == {"unet", "text_encoder"}
    assert all(trained.values()), [name for name, ok in trained.items() if not ok]
    for module in inference_model.modules().values():
        assert not any(t.is_inference() for t in [*module.parameters(), *module.buffers()])
    after = inference_model.unet.state_dict()
    assert after.keys() == frozen.keys()
    assert all(torch.equal(after[k], v) for k, v in frozen.items())  # same values, no LoRA left
    assert ordinary_tensors(inference_model.modules().values()) == 0  # nothing left to copy


def test_tied_weights_stay_tied_and_buffers_stay_buffers():
    with torch.inference_mode():
        embed, head = nn.Embedding(5, 3), nn.Linear(3, 5, bias=False)
        head.weight = embed.weight  # tied, as some text models tie input and output
        model = nn.ModuleDict({"embed": embed, "head": head})
        model.embed.register_buffer("ids", torch.arange(5), persistent=False)
        frozen = nn.Linear(2, 2).requires_grad_(False)
    # the shared weight once, the buffer, the frozen layer's weight and bias
    assert ordinary_tensors([model, frozen]) == 4
    assert model.head.weight is model.embed.weight and not model.embed.weight.is_inference()
    assert isinstance(model.head.weight, nn.Parameter) and model.head.weight.requires_grad
    assert "ids" in dict(model.embed.named_buffers()) and "ids" not in model.embed.state_dict()
    assert not any(p.requires_grad or p.is_inference() for p in frozen.parameters())


def test_train_runs_inside_inference_mode_on_a_graph_loaded_model(inference_model, tmp_path,
                                                                  models_root):
    """What the LoRATrain node does in ComfyUI: train() itself leaves inference mode and makes
    the graph's model trainable; the caller's mode is back afterwards."""
    from intenttuner.training.trainer import train
    from tests.training_run_helpers import fast_config, training_set

    items = training_set(tmp_path)
    with torch.inference_mode():
        result = train(fast_config(items, max_train_steps=2), base_model=inference_model,
                       training_set=items)
        assert torch.is_inference_mode_enabled()
    assert result.lora_path.is_file() and len(result.losses) == 2
    assert not any(p.is_inference() for p in inference_model.unet.parameters())
