"""The model folders this pack reads and writes, declared once.

Names are ComfyUI folder keys (``folder_paths`` names), so users of other packs find their files
where they already keep them: ``grounding-dino`` and ``sams`` are the folders the popular
GroundingDINO+SAM packs use, ``inpaint`` the one ComfyUI's inpainting packs use,
``checkpoints``/``diffusers``/``loras`` are ComfyUI's own.
"""

from __future__ import annotations

from dataclasses import dataclass

# Single-file weight formats we are willing to open. Pickle-based ones are only ever read with
# torch.load(weights_only=True).
SAFE_FILE_EXTENSIONS = (".safetensors", ".sft")
PICKLE_FILE_EXTENSIONS = (".pth", ".pt", ".bin", ".ckpt")


@dataclass(frozen=True)
class ModelFolder:
    name: str  # ComfyUI folder key and sub-folder of the models root
    extensions: tuple[str, ...]  # single-file weights listed from this folder
    holds_directories: bool  # Hugging Face-style model folders (config.json + weights) live here
    purpose: str  # shown in messages: "put it in models/<name> (<purpose>)"
    aliases: tuple[str, ...] = ()  # other sub-folders searched (never written to)


MODEL_FOLDERS: dict[str, ModelFolder] = {
    f.name: f
    for f in (
        ModelFolder("grounding-dino", (".safetensors", ".pth"), True,
                    "GroundingDINO open-vocabulary detectors"),
        ModelFolder("sams", (".pth", ".safetensors"), False, "Segment Anything mask models"),
        ModelFolder("image_encoders", (".safetensors", ".bin", ".pt", ".pth"), True,
                    "open_clip image/text encoders"),
        ModelFolder("captioners", (), True, "image captioning models (Hugging Face folders)"),
        ModelFolder("checkpoints", (".safetensors", ".sft", ".ckpt"), False,
                    "Stable Diffusion single-file checkpoints"),
        ModelFolder("diffusers", (), True, "Stable Diffusion models in diffusers folder layout"),
        ModelFolder("loras", (".safetensors",), False, "LoRA files"),
        # Where ComfyUI's inpainting packs (comfyui-inpaint-nodes, LaMa removers) keep LaMa and
        # MAT. ``.pt`` is listed so a TorchScript big-lama.pt shows up and is refused with the
        # fix, rather than missing from the dropdown without a word; ``.ckpt`` for LaMa's own
        # Lightning training checkpoint (best.ckpt), which loads.
        ModelFolder("inpaint", (".safetensors", ".pt", ".pth", ".ckpt"), False,
                    "inpainting models (LaMa) that remove deleted concepts"),
        # The BERT tokenizer the original GroundingDINO checkpoints need; the GroundingDINO+SAM
        # packs keep it at models/bert-base-uncased.
        ModelFolder("bert-base-uncased", (), True, "BERT tokenizer for original GroundingDINO"),
        # Instruction-tuned language models run in-process (Load Local LLM); the folder other
        # packs (LLM/VLM nodes) keep Hugging Face language-model folders in.
        ModelFolder("LLM", (), True, "instruction-tuned language models (Hugging Face folders)"),
        # The evaluation's models: DINO for subject identity (StabilityScore), and the LAION
        # aesthetic MLP that scores CLIP ViT-L/14 image embeddings for quality.
        ModelFolder("identity_encoders", (), True,
                    "DINO identity encoders (Hugging Face ViT folders)"),
        ModelFolder("aesthetic", (".pth", ".safetensors"), False,
                    "aesthetic / human-preference predictors"),
        # Prompt adaptation: GPT-2 models that rewrite plain prompts for Stable Diffusion.
        ModelFolder("prompt_adapters", (), True,
                    "prompt-adaptation language models (Promptist-style GPT-2 folders)"),
        # Reward models the pack trains from people's good/bad marks (Train Reward Model).
        ModelFolder("reward_models", (".safetensors",), False,
                    "reward models trained from your good/bad marks"),
    )
}
