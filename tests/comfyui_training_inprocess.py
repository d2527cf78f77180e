# ruff: noqa: I001
"""Train a LoRA inside a real ComfyUI (booted in this process, the pack loaded by ComfyUI's own
custom-node loader, prompts run by its executor) and use it through ComfyUI's own LoRA path.
Prints one JSON line. Run by tests/test_training_comfyui.py with ComfyUI's Python:

    python comfyui_training_inprocess.py <comfyui checkout> <base directory>

1. A plain graph (Load Checkpoint -> KSampler) leaves ComfyUI's SD 1.5 model loaded.
2. Load Training Set -> Load Base Model -> LoRA Train -> Apply Trained LoRA on Load Checkpoint's
   MODEL/CLIP -> KSampler -> Save Image: step events, the models loaded at the first step, the
   LoRA in ComfyUI's LoRA list, and how many of its keys ComfyUI's loader maps.
3. A long run cancelled (ComfyUI's interrupt) at step 3: its checkpoint, loaded the same way.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path

# Boots ComfyUI from sys.argv (checkout, base directory), as tests/comfyui_inprocess.py does.
import comfyui_inprocess as boot  # noqa: E402

import comfy.model_management as mm  # noqa: E402
import comfy.utils  # noqa: E402
import execution  # noqa: E402
import folder_paths  # noqa: E402
import nodes  # noqa: E402
import server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.training_comfy_model import make_comfy_sd15_checkpoint  # noqa: E402
from tests.training_helpers import make_kohya_set  # noqa: E402

STEP_EVENT = "intenttuner.train.step"
CANCEL_AT = 3


class LoraKeyLog(logging.Handler):
    """Collects ComfyUI's "lora key not loaded" warnings (how a wrong key format shows)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.unmapped: list[str] = []

    def emit(self, record):
        if "lora key not loaded" in record.getMessage():
            self.unmapped.append(record.getMessage())


class Server(boot.ServerStandIn):
    """Collects events; at the first step notes what ComfyUI holds loaded; cancels on demand."""

    def __init__(self):
        self.steps: list[dict] = []
        self.step_clients: list[str | None] = []  # the client id each step event went to
        self.loaded_at_first_step: list[str] | None = None
        self.cancel_at: int | None = None

    def send_sync(self, event, data, sid=None):
        if event != STEP_EVENT:
            return
        self.steps.append(data)
        self.step_clients.append(sid)
        if data["step"] == 1 and self.loaded_at_first_step is None:
            self.loaded_at_first_step = loaded_models()
        if self.cancel_at is not None and data["step"] == self.cancel_at:
            nodes.interrupt_processing(True)  # what the Cancel button does


def loaded_models() -> list[str]:
    """Class names of the models ComfyUI's manager holds loaded (ours show as _Holder)."""
    return sorted(type(lm.model.model).__name__ for lm in mm.current_loaded_models if lm.model)


def sample_graph(model_ref, clip_ref, prefix: str) -> dict:
    return {
        "20": {"class_type": "CLIPTextEncode", "inputs": {"text": "ohwx, pattern 1",
                                                         "clip": clip_ref}},
        "21": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": clip_ref}},
        "22": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64,
                                                            "batch_size": 1}},
        "23": {"class_type": "KSampler", "inputs": {
            "model": model_ref, "seed": 1, "steps": 2, "cfg": 5.0, "sampler_name": "euler",
            "scheduler": "normal", "positive": ["20", 0], "negative": ["21", 0],
            "latent_image": ["22", 0], "denoise": 1.0}},
        "24": {"class_type": "VAEDecode", "inputs": {"samples": ["23", 0], "vae": ["10", 2]}},
        "25": {"class_type": "SaveImage", "inputs": {"images": ["24", 0],
                                                     "filename_prefix": prefix}},
    }


def train_inputs(set_path: str, checkpoint: str, **settings) -> dict:
    return {
        "1": {"class_type": "IntentTunerLoadTrainingSet",
              "inputs": {"folder": "(type a path below)", "path": set_path}},
        "2": {"class_type": "IntentTunerLoadBaseModel",
              "inputs": {"model": checkpoint, "precision": "fp32"}},
        "3": {"class_type": "IntentTunerLoRATrain", "inputs": {
            "training_set": ["1", 0], "base_model": ["2", 0], "rank": 4, "alpha": 4.0,
            "learning_rate": 0.01, "lr_scheduler": "constant", "lr_warmup_steps": 0,
            "batch_size": 1, "resolution": 64, "mixed_precision": "no", "seed": 0,
            "gradient_checkpointing": False, **settings}},
    }


def run(executor, prompt: dict, prompt_id: str, outputs: list[str],
        client_id: str | None = None) -> dict:
    executor.execute(prompt, prompt_id, {"client_id": client_id} if client_id else {}, outputs)
    messages = [m[0] for m in executor.status_messages]
    result = executor.history_result.get("outputs", {}) if executor.success else {}
    errors = [m[1].get("exception_message") for m in executor.status_messages
              if m[0] == "execution_error"]
    return {"ok": executor.success, "messages": messages, "outputs": result,
            "error": str(errors[-1]) if errors else ""}


def pixel_difference(first: Path, second: Path) -> float:
    """Mean absolute difference of two images' decoded pixels (0..255). Not their bytes:
    SaveImage embeds the prompt in the PNG, which differs between any two graphs."""
    import numpy as np
    from PIL import Image

    a, b = (np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
            for path in (first, second))
    return float(np.abs(a - b).mean()) if a.shape == b.shape else float("inf")


def apply_file(pack_name: str, path: Path, checkpoint: str, keys: LoraKeyLog) -> dict:
    """The file through Apply Trained LoRA's bridge call on a fresh Load Checkpoint output."""
    bridge = importlib.import_module(pack_name + ".nodes.comfy_bridge")
    model, clip, _ = nodes.CheckpointLoaderSimple().load_checkpoint(checkpoint)
    keys.unmapped.clear()
    patched_model, patched_clip = bridge.apply_lora(model, clip, path, 1.0, 1.0)
    modules = {k.split(".")[0] for k in comfy.utils.load_torch_file(str(path), safe_load=True)}
    return {"unet_modules": len([m for m in modules if m.startswith("lora_unet_")]),
            "patched_weights": len(patched_model.patches), "unmapped": list(keys.unmapped),
            "clip_patched": len(patched_clip.patcher.patches)}


def main() -> None:
    pack_name, _ = boot.load_pack()
    stand_in = Server()
    server.PromptServer.instance = stand_in  # where the runtime's send_event goes
    keys = LoraKeyLog()
    logging.getLogger().addHandler(keys)
    checkpoint = make_comfy_sd15_checkpoint(Path(folder_paths.models_dir) / "checkpoints").name
    set_path = str(make_kohya_set(Path(boot.BASE) / "input" / "sets" / "pia", count=2))
    executor = execution.PromptExecutor(stand_in, cache_args={"lru": 0, "ram": 0})
    loader = {"10": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}}}

    plain = run(executor, {**loader, **sample_graph(["10", 0], ["10", 1], "plain")}, "plain",
                ["25"])
    loaded_before = loaded_models()

    graph = {**loader, **train_inputs(set_path, checkpoint, run_name="comfy",
                                      max_train_steps=4, save_every_steps=2),
             "11": {"class_type": "IntentTunerApplyTrainedLoRA", "inputs": {
                 "model": ["10", 0], "clip": ["10", 1], "lora": ["3", 0],
                 "strength_model": 1.0, "strength_clip": 1.0}},
             **sample_graph(["11", 0], ["11", 1], "trained")}
    trained = run(executor, graph, "trained", ["3", "25"], client_id="tab-1")
    loras_dir = Path(folder_paths.get_folder_paths("loras")[0])
    result = {
        "plain_ok": plain["ok"], "loaded_before": loaded_before, "trained": {
            k: trained[k] for k in ("ok", "error")},
        "loaded_at_first_step": stand_in.loaded_at_first_step,
        "steps": [d["step"] for d in stand_in.steps], "step_event": stand_in.steps[-1:],
        "step_clients": sorted(set(stand_in.step_clients)),
        "ui_images": len(trained["outputs"].get("3", {}).get("images", [])),
        "report": trained["outputs"].get("3", {}).get("text", [""])[0],
        "lora_list": folder_paths.get_filename_list("loras"),
    }
    if trained["ok"]:
        images = [Path(folder_paths.get_output_directory()) / f"{name}_00001_.png"
                  for name in ("plain", "trained")]
        result["image_difference"] = pixel_difference(*images)
        result["applied"] = apply_file(pack_name, loras_dir / "comfy.safetensors", checkpoint,
                                       keys)

    stand_in.steps.clear()
    stand_in.cancel_at = CANCEL_AT
    cancelled = run(executor, train_inputs(set_path, checkpoint, run_name="cancelled",
                                           max_train_steps=200, save_every_steps=0),
                    "cancelled", ["3"])
    nodes.interrupt_processing(False)
    run_dir = loras_dir / "cancelled"
    result["cancel"] = {
        "ok": cancelled["ok"], "interrupted": "execution_interrupted" in cancelled["messages"],
        "steps": [d["step"] for d in stand_in.steps],
        "files": sorted(p.name for p in run_dir.iterdir()) if run_dir.is_dir() else [],
        "final_exists": (loras_dir / "cancelled.safetensors").exists(),
    }
    step_file = run_dir / f"cancelled-step{CANCEL_AT:06d}.safetensors"
    if step_file.is_file():
        result["cancel"]["applied"] = apply_file(pack_name, step_file, checkpoint, keys)
    print(json.dumps(result))  # noqa: T201 - the protocol: one JSON line


if __name__ == "__main__":
    main()
