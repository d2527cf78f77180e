"""The evaluation's models by name, for callers without loader nodes (the command line, the
training monitor): each name is what a loader widget lists, None is the family's manifest
default, and every model is loaded once (`loading.load_model` shares it while it is held).

    models = load_eval_models()                      # every default, quality term included
    models = load_eval_models(clip="ViT-L-14.openai.safetensors", quality=NO_QUALITY)
"""

from __future__ import annotations

from ..errors import InputError
from ..families.aesthetic import CLIP_FOR_WIDTH, AestheticScorer
from ..loading import default_choice, load_model
from ..weights.manifest import load_manifest
from .evaluate import EvalModels

NO_QUALITY = "none"  # as the quality name: stability without its quality term


def load_eval_models(detector: str | None = None, identity_encoder: str | None = None,
                     clip: str | None = None, quality: str | None = None,
                     quality_clip: str | None = None) -> EvalModels:
    """Load the detector, the identity encoder (DINO), the CLIP image/text encoder and, unless
    ``quality`` is `NO_QUALITY`, the aesthetic quality scorer with the CLIP it reads.

    ``quality_clip``: the CLIP image encoder the quality predictor was trained on; by default
    ``clip`` itself when its width fits the predictor, else the image encoder the predictor's
    manifest entry requires (ViT-L-14 for the LAION predictor).
    """
    clip_model = load_model("image_encoder", clip)
    return EvalModels(detector=load_model("detector", detector),
                      identity_encoder=load_model("identity_encoder", identity_encoder),
                      clip=clip_model,
                      quality=_quality_scorer(quality, quality_clip, clip_model))


def _quality_scorer(name: str | None, clip_name: str | None, clip) -> AestheticScorer | None:
    if name == NO_QUALITY:
        return None
    predictor = load_model("aesthetic", name)
    if clip_name is not None:
        encoder = load_model("image_encoder", clip_name)
    elif clip.embed_dim == predictor.input_dim:
        encoder = clip
    else:
        encoder = load_model("image_encoder", _required_clip(name or default_choice("aesthetic"),
                                                             predictor.input_dim))
    return AestheticScorer(predictor, encoder)


def _required_clip(name: str, width: int) -> str:
    """The image encoder the manifest entry of quality predictor ``name`` requires."""
    manifest = load_manifest()
    entry = next((e for e in manifest.for_family("aesthetic") if e.target == name), None)
    required = [] if entry is None else [manifest.get(r) for r in entry.requires]
    encoders = [e.target for e in required if e.family == "image_encoder"]
    if not encoders:
        known = f" ({CLIP_FOR_WIDTH[width]}'s)" if width in CLIP_FOR_WIDTH else ""
        raise InputError(f"Which CLIP encoder feeds the quality predictor {name}? It reads "
                         f"{width}-value image embeddings{known}: name that image encoder as "
                         "its quality CLIP (--quality-clip on the command line).")
    return encoders[0]
