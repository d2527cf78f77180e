"""Text conditioning for training: `encode_text`, the one place captions become embeddings,
and `TextCache`, every caption of a run encoded once when the text encoders stay frozen.

The embeddings are what the diffusers pipelines feed the UNet: SD 1.5 takes CLIP-L's last
hidden state (after the final layer norm); SDXL takes the penultimate hidden states of CLIP-L
and OpenCLIP bigG side by side, plus bigG's projected pooled embedding. Captions are padded to
the tokenizers' 77 tokens and truncated beyond, as in training scripts and at inference.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from ..families.sd_model import BaseModel
from ..runtime import get_runtime

TEXT_BATCH = 16


@dataclass
class TextEmbeddings:
    hidden: torch.Tensor          # [N, 77, D] (SDXL: both encoders' penultimate layer, concat)
    pooled: torch.Tensor | None   # [N, P], SDXL only (text_encoder_2's text_embeds)


def encoder_names(model: BaseModel) -> list[str]:
    """The text encoder components of ``model`` ("text_encoder"[, "text_encoder_2"])."""
    return ["text_encoder", "text_encoder_2"] if model.kind == "sdxl" else ["text_encoder"]


def encode_text(model: BaseModel, captions: list[str], device,
                grad: bool = False) -> TextEmbeddings:
    """Embeddings of ``captions`` on ``device`` in the encoders' dtype (module docstring).

    The text encoders must already be on ``device`` (``model.managed(name).load()``).
    ``grad=False`` runs under ``torch.no_grad()``, not inference mode: the outputs then stay
    ordinary tensors that a trained UNet may take in autograd. ``grad=True`` keeps the graph,
    for training LoRA on the text encoders."""
    with contextlib.nullcontext() if grad else torch.no_grad():
        ids = token_ids(model.tokenizer, captions, device)
        if model.kind == "sd15":
            return TextEmbeddings(model.text_encoder(ids).last_hidden_state, None)
        first = model.text_encoder(ids, output_hidden_states=True)
        second = model.text_encoder_2(token_ids(model.tokenizer_2, captions, device),
                                      output_hidden_states=True)
        hidden = torch.cat([first.hidden_states[-2], second.hidden_states[-2]], dim=-1)
        return TextEmbeddings(hidden, second.text_embeds)


def token_ids(tokenizer, captions: list[str], device) -> torch.Tensor:
    """[N, 77] token ids: padded to the tokenizer's length, longer captions truncated."""
    return tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length,
                     truncation=True, return_tensors="pt").input_ids.to(device)


class TextCache:
    """Every distinct caption (and "", for caption dropout) encoded once, kept on the CPU in
    float32; the text encoders are offloaded afterwards, as training no longer needs them."""

    def __init__(self, model: BaseModel, captions: list[str], device,
                 batch_size: int = TEXT_BATCH):
        runtime = get_runtime()
        unique = list(dict.fromkeys(["", *captions]))
        hidden, pooled = [], []
        try:
            for name in encoder_names(model):
                model.managed(name).load()
            with runtime.progress(len(unique), "Caching text embeddings") as bar:
                for start in range(0, len(unique), batch_size):
                    runtime.check_interrupted()
                    chunk = unique[start:start + batch_size]
                    embeddings = encode_text(model, chunk, device)
                    hidden.append(embeddings.hidden.float().cpu())
                    if embeddings.pooled is not None:
                        pooled.append(embeddings.pooled.float().cpu())
                    bar.update(len(chunk))
        finally:
            for name in encoder_names(model):
                model.managed(name).offload()
        self.positions = {caption: n for n, caption in enumerate(unique)}
        self.hidden = torch.cat(hidden)
        self.pooled = torch.cat(pooled) if pooled else None

    def __contains__(self, caption: str) -> bool:
        return caption in self.positions

    def get(self, captions: list[str]) -> TextEmbeddings:
        """The cached embeddings of ``captions``, stacked in their order (CPU, float32)."""
        unknown = [c for c in captions if c not in self.positions]
        if unknown:
            raise KeyError(f"captions not in the text cache (it holds the captions it was "
                           f"built with and ''): {unknown[:3]}")
        rows = torch.tensor([self.positions[c] for c in captions], dtype=torch.long)
        pooled = self.pooled[rows] if self.pooled is not None else None
        return TextEmbeddings(self.hidden[rows], pooled)


def sdxl_time_ids(original_size, crop_top_left, target_size) -> torch.Tensor:
    """SDXL's size/crop conditioning, [6] float32: (orig_h, orig_w, top, left, target_h,
    target_w), the order of diffusers' SDXL pipeline and training script. Every argument is
    an (h, w) / (top, left) pair; note a bucket is (w, h), so its target is (bucket[1],
    bucket[0])."""
    values = (*original_size, *crop_top_left, *target_size)
    if len(values) != 6:
        raise ValueError(f"sdxl_time_ids takes three pairs, got {values}")
    return torch.tensor(values, dtype=torch.float32)
