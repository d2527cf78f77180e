"""Scoring images with a trained reward model: P(a person marks it good) for its prompt, and a
table of the scores with each image's thumbnail.

    scores = score_images(reward_model, clip, images, prompts)   # (N,) in (0, 1)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw

from ..drawing import fit_text, font
from ..errors import InputError
from ..families.reward_model import RewardModel
from ..imageio import to_rgb_pil

THUMB = 64  # px, the thumbnails' longer side
PAD = 16
ROW = THUMB + 8
MAX_ROWS = 60
BACKGROUND, TEXT, MUTED = (250, 250, 250), (30, 30, 30), (110, 110, 110)
GOOD, BAD = (30, 140, 60), (190, 40, 40)


def score_images(reward_model: RewardModel, encoder, images: Sequence[Image.Image],
                 prompts: Sequence[str], batch_size: int = 32) -> torch.Tensor:
    """(N,) float32 P(good) of each image for its prompt (``prompts[i]`` for ``images[i]``).

    The encoder is checked first (InputError when it is not the one the model was trained
    with); the lengths must match and no prompt may be empty (InputError naming the item).
    """
    reward_model.check_encoder(encoder)
    images, prompts = list(images), list(prompts)
    if len(images) != len(prompts):
        raise InputError(f"Reward scoring needs one prompt per image: got {len(images)} "
                         f"image(s) and {len(prompts)} prompt(s).")
    empty = [i for i, p in enumerate(prompts) if not isinstance(p, str) or not p.strip()]
    if empty:
        raise InputError(f"Prompt(s) {', '.join(map(str, empty[:5]))} (counting from 0) are "
                         "empty: a reward scores an image for its prompt, so give each image "
                         "the prompt it was generated from.")
    image_emb = encoder.embed_images(images, batch_size)
    text_emb = encoder.embed_texts([p.strip() for p in prompts])
    return reward_model.score_embeddings(image_emb, text_emb)


def render_scores(images: Sequence[Image.Image], prompts: Sequence[str],
                  scores: Sequence[float], title: str) -> Image.Image:
    """A table: thumbnail, prompt and P(good) per image (at most `MAX_ROWS`, the rest counted);
    above 0.5 in green, below in red."""
    shown = list(zip(images, prompts, scores, strict=True))[:MAX_ROWS]
    text_font, head_font = font(14), font(20)
    prompt_width = 520
    width = PAD * 3 + THUMB + prompt_width + 90
    top = PAD + 34 + (18 if len(shown) < len(images) else 0)
    canvas = Image.new("RGB", (width, top + ROW * len(shown) + PAD), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((PAD, PAD), title, fill=TEXT, font=head_font)
    if len(shown) < len(images):
        draw.text((PAD, PAD + 30), f"showing the first {len(shown)} of {len(images)} images",
                  fill=MUTED, font=font(13))
    for r, (image, prompt, score) in enumerate(shown):
        y = top + r * ROW
        thumb = to_rgb_pil(image).copy()
        thumb.thumbnail((THUMB, THUMB))
        canvas.paste(thumb, (PAD, y))
        x = PAD * 2 + THUMB
        draw.text((x, y + THUMB // 2 - 8), fit_text(f"{r}. {prompt}", text_font, prompt_width),
                  fill=TEXT, font=text_font)
        draw.text((x + prompt_width + PAD, y + THUMB // 2 - 8), f"{score:.3f}",
                  fill=GOOD if score > 0.5 else BAD, font=text_font)
    return canvas
