"""Memory each default model needs: parameters, weight memory in fp16/fp32 and (with --run)
the peak RAM of loading it and running it once on CPU, each in a fresh process.

Architectures are the real full-size ones, built with random weights (nothing is downloaded):
parameter counts come from the meta device (instant); --run writes a random checkpoint in the
real format to a temporary models folder, then loads and runs it through the real loader.

    .venv/bin/python -m bench.model_memory            # parameters and weight memory
    .venv/bin/python -m bench.model_memory --run      # + peak RAM per model (minutes, ~6 GB)
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
        if name == "captioner":
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
    raise KeyError(name)


def parameters(name: str) -> int:
    return sum(p.numel() for m in build(name).values() for p in m.parameters())


def peak_run(name: str, models_dir: Path) -> dict:
    """Write a random full-size checkpoint, then load + run it in a fresh process."""
    code = f"""
import json, resource, time
from bench.model_memory import write_random, run_once
path = write_random({name!r}, __import__('pathlib').Path({str(models_dir)!r}))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
out = run_once({name!r}, path)
print(json.dumps({{"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.perf_counter() - start, "output": out}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_random(name: str, models_dir: Path) -> Path:
    """A random full-size checkpoint of ``name`` in its real on-disk format."""
    from intenttuner import runtime
    from intenttuner.families import FAMILIES

    runtime.set_runtime(runtime.TorchRuntime(models_dir=models_dir))
    folder = runtime.get_runtime().download_dir(FAMILIES[name].folder)
    folder.mkdir(parents=True, exist_ok=True)
    modules = {k: m.to_empty(device="cpu") for k, m in build(name).items()}
    for module in modules.values():
        with torch.no_grad():
            for p in module.parameters():
                p.normal_(0, 0.02)
    return _save(name, modules, folder)


def _save(name: str, modules: dict, folder: Path) -> Path:
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
    raise NotImplementedError(f"--run is implemented for segmenter, image_encoder and "
                              f"base_model; {name} was measured by its family's own script")


def run_once(name: str, path: Path) -> str:
    from intenttuner.families import FAMILIES

    family = FAMILIES[name]
    return family.exercise(family.load(path, precision="fp32"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="also measure peak RAM per model")
    args = parser.parse_args()
    names = ["detector", "segmenter", "image_encoder", "captioner", "base_model"]
    print(f"{'model':15} {'params':>12} {'fp16 MB':>9} {'fp32 MB':>9} {'peak RAM MB':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            count = parameters(name)
            peak = "-"
            if args.run and name in ("segmenter", "image_encoder", "base_model"):
                peak = f"{peak_run(name, Path(tmp))['peak_mb']:.0f}"
            print(f"{name:15} {count:12,} {count * 2 / 2**20:9.0f} {count * 4 / 2**20:9.0f} "
                  f"{peak:>12}")


if __name__ == "__main__":
    main()
