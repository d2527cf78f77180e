# ruff: noqa: I001
"""Check LoRA files against a real ComfyUI's own LoRA path. Prints one JSON line.

Run by tests/test_training_comfyui_keys.py with ComfyUI's Python:
    python comfyui_lora_keys.py <comfyui checkout> <base directory> <job.json>

The job has two optional parts:

* ``"keymaps"``: cases ``{"name", "kind", "checkpoint" | "shapes", "lora" | "lora_shapes"}``.
  The model is what ComfyUI builds for the checkpoint (its own model detection on the tensor
  names and shapes; tiny checkpoints match no ComfyUI model config by their sizes, so the
  ``kind``'s config class is used with the detected UNet config), on the meta device: only
  names and shapes matter. The LoRA goes through ComfyUI's key map
  (``model_lora_keys_unet`` + ``model_lora_keys_clip``, as ``load_lora_for_models`` builds it)
  and ``comfy.lora.load_lora``; reported: keys it did not load, modules patched, and patches
  whose LoRA shape does not fit the weight (ComfyUI always builds the full-size text encoders,
  so for tiny checkpoints only the UNet's shapes can fit).
* ``"loader"``: ``{"checkpoint", "lora"}`` file names in the base directory's models folders,
  loaded with the stock CheckpointLoaderSimple and LoraLoader nodes; reported: the "lora key
  not loaded" / "NOT LOADED" messages, patch counts, how much the UNet's and the text
  encoder's outputs change with the LoRA, and the seconds each part took.
"""

from __future__ import annotations

import json
import logging
import sys
import time

CHECKOUT, BASE, JOB = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, CHECKOUT)
sys.argv = [sys.argv[0], "--cpu", "--base-directory", BASE]

import comfy.options  # noqa: E402

comfy.options.enable_args_parsing()
import utils.extra_config  # noqa: E402,F401
import torch  # noqa: E402
import comfy.lora  # noqa: E402
import comfy.lora_convert  # noqa: E402
import comfy.model_detection  # noqa: E402
import comfy.model_management  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.supported_models  # noqa: E402
import comfy.utils  # noqa: E402

UNET_PREFIX = "model.diffusion_model."
CONFIG_CLASSES = {"sd15": comfy.supported_models.SD15, "sdxl": comfy.supported_models.SDXL}
META = torch.device("meta")


class Messages(logging.Handler):
    """Collects what ComfyUI logs (its LoRA loader only logs unmapped keys)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def lora_problems(self) -> list[str]:
        return [m for m in self.lines if "lora key not loaded" in m or "NOT LOADED" in m]


MESSAGES = Messages()
logging.getLogger().addHandler(MESSAGES)
logging.getLogger().setLevel(logging.INFO)


def state_dict_of(case: dict) -> dict:
    if "checkpoint" in case:
        return comfy.utils.load_torch_file(case["checkpoint"], safe_load=True)
    shapes = json.load(open(case["shapes"]))
    return {k: torch.empty(s, device=META, dtype=torch.float16) for k, s in shapes.items()}


def lora_of(case: dict) -> dict:
    if "lora" in case:
        return comfy.utils.load_torch_file(case["lora"], safe_load=True)
    # Names and shapes only: load_lora stores the tensors; .alpha it reads with .item().
    shapes = json.load(open(case["lora_shapes"]))
    return {k: torch.tensor(1.0) if k.endswith(".alpha") else torch.empty(s, device=META)
            for k, s in shapes.items()}


def check_keymap(case: dict) -> dict:
    sd = state_dict_of(case)
    unet_config = comfy.model_detection.detect_unet_config(sd, UNET_PREFIX)
    detected = comfy.model_detection.model_config_from_unet_config(unet_config, sd)
    model_config = detected or CONFIG_CLASSES[case["kind"]](unet_config)
    model = model_config.get_model(sd, UNET_PREFIX, device=META)
    clip = comfy.sd.CLIP(model_config.clip_target(state_dict=sd),
                         model_options={"initial_device": META})
    key_map = comfy.lora.model_lora_keys_unet(model, {})
    key_map = comfy.lora.model_lora_keys_clip(clip.cond_stage_model, key_map)
    lora = comfy.lora_convert.convert_lora(lora_of(case))
    MESSAGES.lines.clear()
    patches = comfy.lora.load_lora(lora, key_map)
    weights = {**model.state_dict(), **clip.cond_stage_model.state_dict()}
    mismatched: dict[str, list[str]] = {"unet": [], "clip": []}
    for target, adapter in patches.items():
        up, down = adapter.weights[0], adapter.weights[1]
        if (up.shape[0], *down.shape[1:]) != tuple(weights[target].shape):
            part = "unet" if target.startswith("diffusion_model.") else "clip"
            mismatched[part].append(f"{target}: lora {tuple(up.shape)} x {tuple(down.shape)}, "
                                    f"weight {tuple(weights[target].shape)}")
    return {"detected": type(detected).__name__ if detected else None,
            "modules": sum(k.endswith(".lora_down.weight") for k in lora),
            "patched": len(patches), "not_loaded": MESSAGES.lora_problems(),
            "unet_patched": sum(t.startswith("diffusion_model.") for t in patches),
            "clip_patched": sum(not t.startswith("diffusion_model.") for t in patches),
            "unet_shape_mismatch": mismatched["unet"],
            "clip_shape_mismatch": mismatched["clip"]}


def check_loader(job: dict) -> dict:
    import nodes

    seconds = {"start": time.monotonic()}
    MESSAGES.lines.clear()
    model, clip, _ = nodes.CheckpointLoaderSimple().load_checkpoint(job["checkpoint"])[:3]
    seconds["load_checkpoint"] = time.monotonic()
    loaded_messages = list(MESSAGES.lines)
    MESSAGES.lines.clear()
    model_l, clip_l = nodes.LoraLoader().load_lora(model, clip, job["lora"], 1.0, 1.0)
    problems = MESSAGES.lora_problems()
    seconds["load_lora"] = time.monotonic()

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 8, 8, generator=generator)
    sigma = torch.tensor([1.0])

    def cond(c):
        return c.encode_from_tokens(c.tokenize("ohwx, a photo of a pattern")).float()

    context = cond(clip)

    def unet_out(patcher):
        comfy.model_management.load_models_gpu([patcher])
        with torch.no_grad():
            return patcher.model.apply_model(x, sigma, c_crossattn=context).float()

    base, with_lora = unet_out(model), unet_out(model_l)
    clip_change = (cond(clip_l) - context).abs().max().item()
    seconds["outputs"] = time.monotonic()
    marks = list(seconds.items())
    return {"checkpoint_detected": type(model.model.model_config).__name__,
            "checkpoint_messages": [m for m in loaded_messages if "missing" in m or "left" in m],
            "lora_problems": problems,
            "unet_patched": len(model_l.patches), "clip_patched": len(clip_l.patcher.patches),
            "unet_change": (with_lora - base).abs().max().item(),
            "unet_finite": bool(torch.isfinite(with_lora).all()),
            "clip_change": clip_change,
            "seconds": {name: round(t - marks[i][1], 1) for i, (name, t) in enumerate(marks[1:])}}


def main() -> None:
    job = json.load(open(JOB))
    result = {"keymaps": {c["name"]: check_keymap(c) for c in job.get("keymaps", [])}}
    if job.get("loader"):
        result["loader"] = check_loader(job["loader"])
    sys.stdout.write(json.dumps(result) + "\n")  # the harness reads the last line


main()
