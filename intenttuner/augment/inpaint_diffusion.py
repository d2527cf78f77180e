"""The diffusion backend: inpainting with the user's own SD 1.5 / SDXL base model.

diffusers' ``StableDiffusionInpaintPipeline`` (``StableDiffusionXLInpaintPipeline`` for SDXL)
is built over the very modules of the loaded `BaseModel` (nothing copied or reloaded). It
handles both UNet kinds: a 9-channel inpainting UNet is conditioned on the mask and the masked
image (the better choice), a regular 4-channel one inpaints by latent blending (the known part
of the latents is reset to the noised original after every step). Strength is 1.0: the object
must not survive in the start latents.

Prompts: ``settings.prompt`` or `NEUTRAL_PROMPT`, and a negative prompt naming what was removed
from that image (plus ``settings.negative``), so the model paints surroundings rather than the
deleted concept again. The work region (mask box plus context) is rescaled so its longer side
is the model's native resolution (512 px for SD 1.5, 1024 px for SDXL; ``work_side`` overrides
it): SD paints badly far from it. Regions of one work size go through the pipeline together;
each region has its own generator, seeded ``settings.seed + i`` for training image i (its
source index), so its result depends neither on its batch mates nor on the other images' masks.
A mask covering the whole image leaves nothing known: the model then paints the prompt from
scratch (`masks` warns about such images).
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import InputError
from ..families.sd_model import BaseModel
from ..runtime import get_runtime
from .inpaint_base import Backend, Box, Crop, InpaintSettings, Region, learned_region

log = logging.getLogger(__name__)

NEUTRAL_PROMPT = "empty background, nothing in front, seamless, natural continuation"
MULTIPLE = 8  # the VAE's downscale factor: latents need whole pixels


def native_side(model: BaseModel) -> int:
    """The model's training resolution in pixels (UNet sample size x VAE scale factor)."""
    factor = 2 ** (len(model.vae.config.block_out_channels) - 1)
    return int(model.unet.config.sample_size) * factor


def _region(box: Box, size: tuple[int, int], settings: InpaintSettings,
            model: BaseModel) -> Region:
    return learned_region(box, size, settings, settings.work_side or native_side(model),
                          MULTIPLE, MULTIPLE, upscale=True)


def _fill(crops: list[Crop], settings: InpaintSettings, model: BaseModel) -> list[np.ndarray]:
    import torch
    from PIL import Image

    for name in model.modules():
        model.managed(name).load()
    pipe = inpaint_pipeline(model)
    height, width = crops[0].image.shape[:2]
    rt = get_runtime()

    def on_step(pipeline, step, timestep, tensors):
        rt.check_interrupted()  # Cancel between denoising steps, not only between batches
        return tensors

    extra = settings.negative.strip()
    with torch.inference_mode():
        out = pipe(
            prompt=[settings.prompt.strip() or NEUTRAL_PROMPT] * len(crops),
            negative_prompt=[", ".join(t for t in (c.negative, extra) if t) for c in crops],
            image=[Image.fromarray(c.image) for c in crops],
            mask_image=[Image.fromarray(c.mask.astype(np.uint8) * 255) for c in crops],
            height=height, width=width, strength=1.0,
            num_inference_steps=settings.steps, guidance_scale=settings.guidance,
            generator=[torch.Generator().manual_seed(c.seed) for c in crops],
            output_type="np", callback_on_step_end=on_step,
        ).images
    return [np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8) for image in out]


def inpaint_pipeline(model: BaseModel):
    """An SD(XL) inpainting pipeline over ``model``'s modules, with its own scheduler."""
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline

    scheduler = type(model.scheduler).from_config(model.scheduler.config)
    common = dict(vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer,
                  unet=model.unet, scheduler=scheduler)
    if model.kind == "sd15":
        pipe = StableDiffusionInpaintPipeline(**common, safety_checker=None,
                                              feature_extractor=None,
                                              requires_safety_checker=False)
    else:
        pipe = StableDiffusionXLInpaintPipeline(**common, text_encoder_2=model.text_encoder_2,
                                                tokenizer_2=model.tokenizer_2,
                                                requires_aesthetics_score=False,
                                                add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    log.debug("diffusion inpainting with a %d-channel %s UNet", model.unet.config.in_channels,
              model.kind)
    return pipe


def _check(model) -> None:
    if not isinstance(model, BaseModel):
        raise InputError(f"The diffusion backend needs a base model (from Load Base Model), got "
                         f"{type(model).__name__}.")
    channels = model.unet.config.in_channels
    if channels not in (4, 9):
        raise InputError(f"The base model's UNet takes {channels} input channels; diffusion "
                         "inpainting works with regular (4) or inpainting (9) UNets.")


BACKEND = Backend(name="diffusion", title="Stable Diffusion inpainting", needs="base_model",
                  region=_region, fill=_fill, batched=True, check=_check)
