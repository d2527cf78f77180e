"""Memory each default model (and each captioner and local LLM) needs: parameters, weight memory in
fp16/fp32 and (with --run) the peak RAM of loading it and running it once on CPU.

Architectures are the real full-size ones, built with random weights (nothing is downloaded):
parameter counts come from the meta device (instant); --run writes a random checkpoint in the
real format to a temporary models folder in one process, then loads and runs it through the
real loader in a fresh one (so the peak is the loader's and the run's alone). Captioners
caption one 768x768 image (fp32, 3 beams, the "detailed" length: random weights never stop
early); local LLMs answer one short chat (8 tokens, with the tiny model's tokenizer).

    .venv/bin/python -m bench.model_memory            # parameters and weight memory
    .venv/bin/python -m bench.model_memory --run      # + peak RAM per model (minutes, ~6 GB)
    .venv/bin/python -m bench.model_memory --run florence-2-base blip-large   # some rows
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

# BLIP-large's published architecture (Salesforce/blip-image-captioning-large config.json).
BLIP_LARGE = {
    "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                      "num_attention_heads": 16, "image_size": 384, "patch_size": 16},
    "text_config": {"vocab_size": 30524, "hidden_size": 768, "num_hidden_layers": 12,
                    "num_attention_heads": 12, "intermediate_size": 3072},
}
# Florence-2's published architectures (microsoft/Florence-2-base|large config.json, as
# converted to florence-community/*): a DaViT vision tower, then BART. The embedding has
# 51328 rows (51289 tokens + <image>, padded to a multiple of 64 by the conversion).
FLORENCE = {
    "florence-2-base": {
        "vision": {"depths": [1, 1, 9, 1], "embed_dim": [128, 256, 512, 1024],
                   "num_heads": [4, 8, 16, 32], "num_groups": [4, 8, 16, 32],
                   "window_size": 12, "projection_dim": 768, "max_position_embeddings": 50,
                   "max_temporal_embeddings": 100},
        "text": {"vocab_size": 51328, "d_model": 768, "encoder_layers": 6, "decoder_layers": 6,
                 "encoder_attention_heads": 12, "decoder_attention_heads": 12,
                 "encoder_ffn_dim": 3072, "decoder_ffn_dim": 3072},
    },
    "florence-2-large": {
        "vision": {"depths": [1, 1, 9, 1], "embed_dim": [256, 512, 1024, 2048],
                   "num_heads": [8, 16, 32, 64], "num_groups": [8, 16, 32, 64],
                   "window_size": 12, "projection_dim": 1024, "max_position_embeddings": 50,
                   "max_temporal_embeddings": 100},
        "text": {"vocab_size": 51328, "d_model": 1024, "encoder_layers": 12,
                 "decoder_layers": 12, "encoder_attention_heads": 16,
                 "decoder_attention_heads": 16, "encoder_ffn_dim": 4096,
                 "decoder_ffn_dim": 4096},
    },
}
# Qwen2.5-Instruct's published architectures (Qwen/Qwen2.5-*-Instruct config.json; tied
# embeddings, 151936 rows).
QWEN = {
    "qwen2.5-1.5b-instruct": {"hidden_size": 1536, "intermediate_size": 8960,
                              "num_hidden_layers": 28, "num_attention_heads": 12,
                              "num_key_value_heads": 2, "vocab_size": 151936},
    "qwen2.5-0.5b-instruct": {"hidden_size": 896, "intermediate_size": 4864,
                              "num_hidden_layers": 24, "num_attention_heads": 14,
                              "num_key_value_heads": 2, "vocab_size": 151936},
}
# Row name -> family; "florence-2-base" is the captioner family's default, Qwen2.5 1.5B the
# local LLM's.
NAMES = {"detector": "detector", "segmenter": "segmenter", "image_encoder": "image_encoder",
         "florence-2-base": "captioner", "florence-2-large": "captioner",
         "blip-large": "captioner", "base_model": "base_model",
         "qwen2.5-1.5b-instruct": "local_llm", "qwen2.5-0.5b-instruct": "local_llm"}
RUNNABLE = ("segmenter", "image_encoder", "florence-2-base", "florence-2-large", "blip-large",
            "base_model", "qwen2.5-1.5b-instruct", "qwen2.5-0.5b-instruct")
CAPTION_IMAGE = 768  # px, square
IMAGE_TOKEN_ID = 51289  # of the real tokenizer; the random folders use their own tokenizer's


def florence_config(name: str, image_token_id: int = IMAGE_TOKEN_ID) -> dict:
    """config.json of a full-size Florence-2 checkpoint, as the conversion writes it."""
    from intenttuner.tiny.captioner_florence import checkpoint_config

    sizes = FLORENCE[name]
    return checkpoint_config(sizes["vision"], sizes["text"], image_token_id)


def build(name: str) -> dict[str, torch.nn.Module]:
    """The full-size modules of a default model on the meta device, by component."""
    with torch.device("meta"):
        if name == "detector":
            from transformers import GroundingDinoConfig, GroundingDinoForObjectDetection

            from intenttuner.families.detector import BUNDLED_CONFIG

            config = GroundingDinoConfig.from_dict(json.loads(BUNDLED_CONFIG.read_text()))
            return {"model": GroundingDinoForObjectDetection(config)}
        if name == "segmenter":
            from intenttuner.families.segmenter import KNOWN_VARIANTS, build_sam

            return {"model": build_sam(KNOWN_VARIANTS["vit_b"])}
        if name == "image_encoder":
            import open_clip

            return {"model": open_clip.create_model("ViT-B-32", device="meta")}
        if name in FLORENCE:
            from transformers import Florence2Config, Florence2ForConditionalGeneration

            config = Florence2Config.from_dict(florence_config(name))
            return {"model": Florence2ForConditionalGeneration(config)}
        if name == "blip-large":
            from transformers import BlipConfig, BlipForConditionalGeneration

            return {"model": BlipForConditionalGeneration(BlipConfig(**BLIP_LARGE))}
        if name == "base_model":
            from diffusers import AutoencoderKL, UNet2DConditionModel
            from transformers import CLIPTextConfig, CLIPTextModel

            from intenttuner.families.sd_configs import bundled_configs

            cfg = bundled_configs("sd15")
            return {"unet": UNet2DConditionModel.from_config(cfg["unet"]),
                    "vae": AutoencoderKL.from_config(cfg["vae"]),
                    "text_encoder": CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"]))}
        if name in QWEN:
            from transformers import Qwen2Config, Qwen2ForCausalLM

            return {"model": Qwen2ForCausalLM(Qwen2Config.from_dict(qwen_config(name)))}
    raise KeyError(name)


def qwen_config(name: str, bos_token_id: int = 151643, eos_token_id: int = 151645) -> dict:
    """config.json of a full-size Qwen2.5-Instruct model (ids: the real tokenizer's)."""
    from intenttuner.tiny.local_llm import checkpoint_config

    return checkpoint_config(QWEN[name], bos_token_id, eos_token_id)


def parameters(name: str) -> int:
    return sum(p.numel() for m in build(name).values() for p in m.parameters())


def peak_run(name: str, models_dir: Path) -> dict:
    """Write a random full-size checkpoint (one process), then load + run it in a fresh one."""
    write = f"""
import pathlib
from bench.model_memory import write_random
print(write_random({name!r}, pathlib.Path({str(models_dir)!r})))
"""
    path = _python(write).strip().splitlines()[-1]
    measure = f"""
import json, resource, time
from bench.model_memory import run_once
start = time.perf_counter()
out = run_once({name!r}, __import__('pathlib').Path({path!r}))
print(json.dumps({{"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.perf_counter() - start, "output": out}}))
"""
    return json.loads(_python(measure).strip().splitlines()[-1])


def _python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    return result.stdout


def write_random(name: str, models_dir: Path) -> Path:
    """A random full-size checkpoint of ``name`` in its real on-disk format."""
    from intenttuner import runtime
    from intenttuner.families import FAMILIES

    runtime.set_runtime(runtime.TorchRuntime(models_dir=models_dir))
    folder = runtime.get_runtime().download_dir(FAMILIES[NAMES[name]].folder)
    folder.mkdir(parents=True, exist_ok=True)
    modules = {k: m.to_empty(device="cpu") for k, m in build(name).items()}
    for module in modules.values():
        with torch.no_grad():
            for p in module.parameters():
                p.normal_(0, 0.02)
    return _save(name, modules, folder)


def _save(name: str, modules: dict, folder: Path) -> Path:
    if name in FLORENCE:
        from intenttuner.tiny import captioner_florence as florence

        path = folder / f"{name}-random"
        path.mkdir(exist_ok=True)
        # A small tokenizer in the real layout: ids past it are never needed for memory.
        tokens = florence.write_tokenizer(path)
        config = florence_config(name, tokens.image_token_id)
        florence.write_model(path, modules["model"], config)
        florence.write_processor(path, CAPTION_IMAGE)
        return path
    if name == "blip-large":
        from intenttuner.tiny import captioner as blip

        path = folder / f"{name}-random"
        path.mkdir(exist_ok=True)
        modules["model"].save_pretrained(str(path))
        blip.write_tokenizer(path, blip.tiny_vocab())
        blip.write_preprocessor(path, BLIP_LARGE["vision_config"]["image_size"])
        return path
    if name in QWEN:
        from intenttuner.tiny import local_llm

        path = folder / f"{name}-random"
        path.mkdir(exist_ok=True)
        # The tiny tokenizer in the real layout: ids past it are never needed for memory.
        _, ids = local_llm.write_tokenizer(path)
        config = qwen_config(name, ids[local_llm.PAD], ids[local_llm.EOS])
        local_llm.write_model(path, modules["model"], config)
        return path
    if name == "segmenter":
        path = folder / "sam_vit_b_random.pth"
        torch.save(modules["model"].state_dict(), path)
        return path
    if name == "image_encoder":
        from safetensors.torch import save_file

        path = folder / "ViT-B-32.random.safetensors"
        save_file({k: v.contiguous() for k, v in modules["model"].state_dict().items()}, path)
        return path
    if name == "base_model":
        from safetensors.torch import save_file

        from intenttuner.tiny.base_model import ldm_checkpoint

        path = folder / "sd15-random.safetensors"
        save_file(ldm_checkpoint("sd15", modules), path)
        return path
    raise NotImplementedError(f"--run is implemented for {', '.join(RUNNABLE)}; {name} was "
                              "measured by its family's own script")


def run_once(name: str, path: Path) -> str:
    from intenttuner.families import FAMILIES
    from intenttuner.families.base import synthetic_image

    family = FAMILIES[NAMES[name]]
    model = family.load(path, precision="fp32")
    if family.name == "captioner":
        image = synthetic_image(CAPTION_IMAGE, CAPTION_IMAGE)
        caption = model.caption([image], detail="detailed", num_beams=3)[0]
        return f"{model.kind}: {len(caption)} characters"
    return family.exercise(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="also measure peak RAM per model")
    parser.add_argument("names", nargs="*", help=f"rows to print: {', '.join(NAMES)} (all)")
    args = parser.parse_args()
    if unknown := sorted(set(args.names) - set(NAMES)):
        parser.error(f"unknown model {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    print(f"{'model':22} {'params':>13} {'fp16 MiB':>9} {'fp32 MiB':>9} {'peak RAM MiB':>13} "
          f"{'run s':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names or NAMES:
            count = parameters(name)
            peak = seconds = "-"
            if args.run and name in RUNNABLE:
                result = peak_run(name, Path(tmp))
                peak, seconds = f"{result['peak_mb']:.0f}", f"{result['seconds']:.0f}"
            print(f"{name:22} {count:13,} {count * 2 / 2**20:9.0f} {count * 4 / 2**20:9.0f} "
                  f"{peak:>13} {seconds:>6}", flush=True)


if __name__ == "__main__":
    main()
