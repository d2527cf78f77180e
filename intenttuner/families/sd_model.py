"""`BaseModel`: the components of a loaded Stable Diffusion 1.5 / SDXL model, whichever
on-disk form they came from (see `base_model` for loading)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from ..runtime import ManagedModel, get_runtime

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

Kind = Literal["sd15", "sdxl"]
# Ends the refusal of every other architecture: "... is a Flux checkpoint, which is <this>."
UNSUPPORTED = "not supported yet: SD1.5/SDXL only"


@dataclass
class BaseModel:
    """The components of a Stable Diffusion 1.5 or SDXL model, as loaded (on the CPU).

    ``unet`` (UNet2DConditionModel) predicts noise (epsilon) for latents ``[B, 4, H/8, W/8]``;
    ``vae`` (AutoencoderKL) maps images in [-1, 1] ``[B, 3, H, W]`` to latents (multiply by
    ``vae.config.scaling_factor``); ``text_encoder`` is CLIP ViT-L/14's text tower,
    ``text_encoder_2`` (SDXL only) OpenCLIP bigG's, with its ``tokenizer``/``tokenizer_2``
    (77 tokens; the second pads with id 0 like open_clip). SDXL's VAE overflows in fp16
    (``vae.config.force_upcast`` is true): run it in fp32 when encoding training images. Moving
    modules to a device is the caller's job, through `managed` (``model.managed("unet").load()``).
    """

    kind: Kind
    source: Path
    unet: Any = field(repr=False)
    vae: Any = field(repr=False)
    text_encoder: Any = field(repr=False)
    tokenizer: Any = field(repr=False)
    scheduler: Any = field(repr=False)
    text_encoder_2: Any = field(default=None, repr=False)
    tokenizer_2: Any = field(default=None, repr=False)
    _managed: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    def modules(self) -> dict[str, torch.nn.Module]:
        """The torch modules by component name (``text_encoder_2`` only for SDXL)."""
        names = ("unet", "vae", "text_encoder", "text_encoder_2")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def managed(self, name: str) -> ManagedModel:
        """The runtime handle of component ``name`` ("unet", "vae"...), created once, so the
        host's memory manager tracks one entry per module however often it is loaded."""
        if name not in self._managed:
            self._managed[name] = get_runtime().manage(self.modules()[name])
        return self._managed[name]

    def pipeline(self) -> DiffusionPipeline:
        """A StableDiffusion(XL)Pipeline over these very modules (nothing is copied or reloaded;
        it gets its own scheduler instance, so sampling cannot disturb ``self.scheduler``)."""
        from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

        scheduler = type(self.scheduler).from_config(self.scheduler.config)
        common = dict(vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer,
                      unet=self.unet, scheduler=scheduler)
        if self.kind == "sd15":
            return StableDiffusionPipeline(**common, safety_checker=None, feature_extractor=None,
                                           requires_safety_checker=False)
        return StableDiffusionXLPipeline(**common, text_encoder_2=self.text_encoder_2,
                                         tokenizer_2=self.tokenizer_2, add_watermarker=False)


INPAINTING_CHANNELS = 9  # latents 4 + mask 1 + masked-image latents 4


def inpainting_problem(channels: int) -> str:
    """What a UNet with ``channels`` input channels is, for the refusal message."""
    if channels == INPAINTING_CHANNELS:
        return ("an inpainting checkpoint (9-channel UNet input); it is accepted only for "
                "IntentInpaint's diffusion backend (allow_inpainting on Load Base Model)")
    return f"an instruct-pix2pix-type checkpoint (UNet input has {channels} channels, not 4)"
