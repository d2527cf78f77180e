"""Builders shared by the dataset tests: an intent, hand-made augment plans with their source
images, and hostile image files. ``lib`` is the library's package name: ``"intenttuner"``, or
the pack's own copy (``f"{pack.__name__}.intenttuner"``) for node tests, whose classes differ."""

from __future__ import annotations

import importlib
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def module(lib: str, name: str):
    return importlib.import_module(f"{lib}.{name}")


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def sample_intent(lib: str = "intenttuner", trigger_words=("ohwx", "man")):
    intent_cls = module(lib, "intent.schema").Intent
    return intent_cls.model_validate({
        "description": f"{trigger_words[0]}: keep his face, switch jackets, never a necklace.",
        "trigger_words": list(trigger_words), "domain": "portrait",
        "concepts": [
            {"name": "face", "phrase": "face", "granularity": "instance", "operation": "keep"},
            {"name": "jacket", "phrase": "jacket", "granularity": "instance",
             "operation": "modify", "values": [{"text": "black leather jacket"},
                                               {"text": "red wool coat"}]},
            {"name": "necklace", "phrase": "necklace", "granularity": "instance",
             "operation": "delete"},
        ],
    })


SOURCE_NAMES = ["shoot/IMG 0042.final.jpg", "été 2.png", "写真.png"]


def sample_augmented(lib: str = "intenttuner"):
    """3 originals, 1 face crop (keep), 2 jacket crops (modify: one per value): groups
    original 3, jacket 2, face 1."""
    types = module(lib, "augment.types")
    sources = [noise(200, 160, 1), noise(180, 120, 2), noise(160, 160, 3)]
    item = types.CropItem
    items = [item(source_index=i, source_name=SOURCE_NAMES[i], operation="original",
                  region=(0, 0, *s.size), out_size=s.size, resample="none", group="original",
                  removed=["necklace"] if i == 0 else [])
             for i, s in enumerate(sources)]
    items += [
        item(source_index=0, source_name=SOURCE_NAMES[0], operation="keep", concept="face",
             region=(20, 10, 120, 110), box=(40.0, 30.0, 100.0, 90.0), out_size=(128, 128),
             resample="lanczos", group="face", removed=["necklace"]),
        item(source_index=1, source_name=SOURCE_NAMES[1], operation="modify", concept="jacket",
             value="black leather jacket", region=(10, 20, 90, 100), box=(20.0, 30.0, 80.0, 90.0),
             out_size=(80, 80), resample="none", group="jacket"),
        item(source_index=2, source_name=SOURCE_NAMES[2], operation="modify", concept="jacket",
             value="red wool coat", region=(0, 40, 120, 160), out_size=(96, 96),
             resample="bicubic", group="jacket"),
    ]
    plan = types.AugmentPlan(items=items, skipped=["été 2.png: face not found"],
                             settings={"margin": 0.25})
    return types.Augmented(plan=plan, sources=sources, inpaint={"backend": "opencv"})


# --- hostile files ------------------------------------------------------------------------------


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming width x height, with almost no pixel data: what a
    decompression bomb's header looks like to a reader."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b""))


def truncated(image: Image.Image, fmt: str) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, fmt)
    data = buffer.getvalue()
    return data[: len(data) // 2]


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
