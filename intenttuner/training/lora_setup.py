"""Putting a base model into training shape and back: LoRA adapters on kohya's target layers,
frozen weights in the training precision, gradient checkpointing; then exactly the model it was.

The `BaseModel` is shared with the rest of the graph (ComfyUI caches loaded models), so
training must leave no trace on it. Removing the adapters and restoring the frozen tensors is
cheaper than copying the model: before the frozen weights are cast (fp32 -> bf16, or fp16 ->
bf16, both lossy), the original tensors are kept by reference on the offload device (where they
already were: nothing is copied), and `remove_lora` puts those very tensors back.

Targets (kohya's ``networks/lora.py`` defaults, so files behave like kohya's):

* UNet: every Linear and 1x1 conv inside a ``Transformer2DModel`` (attn1/attn2 to_q, to_k,
  to_v, to_out.0; proj_in, proj_out; ff.net.0.proj, ff.net.2);
* with ``conv_rank > 0`` (LoCon) also the modules of ``ResnetBlock2D``, ``Downsample2D`` and
  ``Upsample2D``: 3x3 convs at conv_rank / conv_alpha, their Linear and 1x1 convs
  (time_emb_proj, conv_shortcut) at rank / alpha, as kohya does with ``conv_dim``;
* text encoders (``train_text_encoder``): q/k/v/out_proj, fc1, fc2 of every CLIP layer.

Adapters are injected with peft's ``inject_adapter_in_model`` on each component, the same call
diffusers' ``unet.add_adapter`` makes (transformers' own ``add_adapter`` needs peft >= 0.22),
so ``get_peft_model_state_dict`` names are module paths relative to the component.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import InputError
from ..families.sd_model import BaseModel
from .config import TrainConfig
from .kohya_keys import alpha_key

ADAPTER = "intenttuner"
UNET_TRANSFORMER_BLOCKS = ("Transformer2DModel",)
UNET_CONV_BLOCKS = ("ResnetBlock2D", "Downsample2D", "Upsample2D")
TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
TEXT_ENCODERS = ("text_encoder", "text_encoder_2")


@dataclass
class ComponentState:
    """What training changes on one component, to be put back by `remove_lora`."""

    module: nn.Module
    tensors: dict[str, torch.Tensor]     # parameters and buffers as they were (references)
    requires_grad: dict[str, bool]
    training: bool
    checkpointing: bool


@dataclass
class LoraSetup:
    """The adapters added to a model: `add_lora`'s result."""

    components: dict[str, nn.Module]            # component name -> module with adapters
    param_groups: list[dict]                    # for the optimizer: params, lr, name
    alphas: dict[str, float]                    # "<component>:<module path>" -> alpha
    weight_dtype: torch.dtype
    saved: dict[str, ComponentState] = field(default_factory=dict, repr=False)

    def parameters(self) -> list[nn.Parameter]:
        return [p for group in self.param_groups for p in group["params"]]


def unet_targets(unet: nn.Module, conv_rank: int) -> tuple[list[str], list[str]]:
    """(linear-rank targets, conv-rank targets) as module paths of ``unet``."""
    linear: list[str] = []
    conv: list[str] = []
    blocks = UNET_TRANSFORMER_BLOCKS + (UNET_CONV_BLOCKS if conv_rank else ())
    for block_name, block in unet.named_modules():
        if type(block).__name__ not in blocks:
            continue
        for name, module in block.named_modules():
            path = f"{block_name}.{name}"
            if isinstance(module, nn.Linear) or is_conv(module, (1, 1)):
                linear.append(path)
            elif is_conv(module, (3, 3)):
                conv.append(path)
    # A block nested in another block (none in SD, but cheap to guard) must not count twice.
    return sorted(set(linear)), sorted(set(conv))


def text_targets(encoder: nn.Module) -> list[str]:
    return [name for name, module in encoder.named_modules()
            if name.rsplit(".", 1)[-1] in TEXT_TARGETS and isinstance(module, nn.Linear)]


def is_conv(module: nn.Module, kernel: tuple[int, int]) -> bool:
    return isinstance(module, nn.Conv2d) and tuple(module.kernel_size) == kernel


def add_lora(model: BaseModel, config: TrainConfig, weight_dtype: torch.dtype) -> LoraSetup:
    """Freeze ``model``'s trained components (the UNet, and the text encoders when
    ``train_text_encoder``), cast their frozen weights to ``weight_dtype``, add LoRA (fp32
    parameters) and turn on gradient checkpointing when configured. The components stay on the
    device they are on (offload them first so the originals are kept there); the trainer loads
    them afterwards. On any failure the model is put back as it was before raising."""
    names = ["unet", *(n for n in TEXT_ENCODERS
                       if config.train_text_encoder and getattr(model, n) is not None)]
    setup = LoraSetup(components={}, param_groups=[], alphas={}, weight_dtype=weight_dtype)
    try:
        for name in names:
            add_component_lora(setup, name, getattr(model, name), config)
    except BaseException:
        remove_lora(setup)
        raise
    return setup


def add_component_lora(setup: LoraSetup, name: str, module: nn.Module,
                       config: TrainConfig) -> None:
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig, inject_adapter_in_model

    if getattr(module, "peft_config", None):
        raise InputError(f"The base model's {name} already carries peft adapters "
                         f"({', '.join(module.peft_config)}); load the base model afresh "
                         "(without LoRAs applied) to train on it.")
    if name == "unet":
        linear, conv = unet_targets(module, config.conv_rank)
    else:
        linear, conv = text_targets(module), []
    setup.saved[name] = freeze(module, setup.weight_dtype)
    lora_config = LoraConfig(
        r=config.rank, lora_alpha=config.alpha, init_lora_weights=True,
        target_modules=linear + conv,
        rank_pattern={re.escape(p): config.conv_rank for p in conv},
        alpha_pattern={re.escape(p): config.conv_alpha for p in conv})
    inject_adapter_in_model(lora_config, module, adapter_name=ADAPTER)
    # get/set_peft_model_state_dict read the config from here (diffusers' add_adapter stores
    # it the same way); removed again by remove_lora.
    module.peft_config = {ADAPTER: lora_config}
    cast_training_params(module, dtype=torch.float32)
    setup.components[name] = module
    setup.alphas.update({alpha_key(name, p): config.alpha for p in linear})
    setup.alphas.update({alpha_key(name, p): config.conv_alpha for p in conv})
    lr = config.learning_rate if name == "unet" else config.te_lr()
    setup.param_groups.append({"params": [p for p in module.parameters() if p.requires_grad],
                               "lr": lr, "name": name})
    if config.gradient_checkpointing:
        enable_checkpointing(module)


def freeze(module: nn.Module, dtype: torch.dtype) -> ComponentState:
    """Record the module's state, then freeze it and cast it to ``dtype`` (new tensors: the
    recorded ones stay exactly as they were)."""
    tensors = dict(module.named_parameters())
    tensors.update(dict(module.named_buffers()))
    state = ComponentState(
        module=module, tensors={k: v.data for k, v in tensors.items()},
        requires_grad={k: p.requires_grad for k, p in module.named_parameters()},
        training=module.training, checkpointing=is_checkpointing(module))
    module.requires_grad_(False)
    if any(p.dtype != dtype for p in module.parameters() if p.is_floating_point()):
        # nn.Module.to, not diffusers' override: that one warns about fp32-only modules, which
        # SD UNets do not have.
        nn.Module.to(module, dtype=dtype)
    module.train()
    return state


def is_checkpointing(module: nn.Module) -> bool:
    flag = getattr(module, "is_activation_checkpointing", None)  # transformers >= 5
    if flag is None:
        flag = getattr(module, "is_gradient_checkpointing", False)
    return bool(flag)


def enable_checkpointing(module: nn.Module) -> None:
    # Non-reentrant: the frozen embedding's output needs no grad for LoRA inside to learn.
    kwargs = {"use_reentrant": False}
    if hasattr(module, "activation_checkpointing_enable"):  # transformers >= 5
        module.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    elif hasattr(module, "gradient_checkpointing_enable"):  # transformers 4.x
        module.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    else:  # diffusers
        module.enable_gradient_checkpointing()


def disable_checkpointing(module: nn.Module) -> None:
    disable = (getattr(module, "activation_checkpointing_disable", None)
               or getattr(module, "gradient_checkpointing_disable", None)
               or module.disable_gradient_checkpointing)
    disable()


def adapter_state(setup: LoraSetup) -> dict[str, dict[str, torch.Tensor]]:
    """The adapters as FORMAT's ``Adapters``: component -> peft state dict (fp32 CPU copies)."""
    from peft import get_peft_model_state_dict

    return {name: {k: v.detach().to("cpu", torch.float32, copy=True)
                   for k, v in get_peft_model_state_dict(module, adapter_name=ADAPTER).items()}
            for name, module in setup.components.items()}


def load_adapter_state(setup: LoraSetup, adapters: dict[str, dict[str, torch.Tensor]]) -> None:
    """Put saved adapters (from `adapter_state`) back, exactly; InputError when they do not fit
    these adapters (another rank, other targets)."""
    from peft import set_peft_model_state_dict

    if set(adapters) != set(setup.components):
        raise InputError(f"The checkpoint trains {sorted(adapters)}, this run "
                         f"{sorted(setup.components)}; resume with the same train_text_encoder "
                         "setting.")
    for name, module in setup.components.items():
        expected = {k: tuple(v.shape) for k, v in
                    adapter_state_of(module).items()}
        given = {k: tuple(v.shape) for k, v in adapters[name].items()}
        if expected != given:
            raise InputError(f"The checkpoint's {name} adapters do not match this run's (rank, "
                             "conv_rank or targets differ); resume with the checkpoint's own "
                             "config.json settings.")
        with torch.no_grad():
            set_peft_model_state_dict(module, adapters[name], adapter_name=ADAPTER)


def adapter_state_of(module: nn.Module) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(module, adapter_name=ADAPTER)


def remove_lora(setup: LoraSetup) -> None:
    """Undo `add_lora`: adapters out, the original tensors (dtype, device, values), grad flags,
    train/eval mode and checkpointing setting back. Safe to call after a failure half-way."""
    from diffusers.utils.peft_utils import recurse_remove_peft_layers

    for state in setup.saved.values():
        module = state.module
        recurse_remove_peft_layers(module)
        if hasattr(module, "peft_config"):
            del module.peft_config
        if is_checkpointing(module) and not state.checkpointing:
            disable_checkpointing(module)
        params = dict(module.named_parameters())
        buffers = dict(module.named_buffers())
        with torch.no_grad():
            for key, tensor in state.tensors.items():
                target = params.get(key, buffers.get(key))
                if target is not None:
                    target.data = tensor
        for key, param in params.items():
            param.grad = None
            param.requires_grad_(state.requires_grad.get(key, param.requires_grad))
        module.train(state.training)
    setup.components.clear()
    setup.saved.clear()

