"""BLIP captioner: folder checks, loading through the registry, batched and prompted captions.
(Florence-2, the default captioner: test_family_captioner_florence.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from intenttuner import loading
from intenttuner.errors import InputError, WeightsCorruptError, WrongModelFamilyError
from intenttuner.families import captioner
from intenttuner.families.captioner import DETAILS, FAMILY
from intenttuner.imageio import to_rgb_pil
from intenttuner.tiny.captioner import TINY_DIR, make_tiny

# Random models rarely stop early; short captions keep the file fast.
TOKENS = 6


@pytest.fixture(scope="module")
def tiny_template(tmp_path_factory):
    return make_tiny(tmp_path_factory.mktemp("blip"))


@pytest.fixture
def tiny_dir(models_root, tiny_template):
    """A fresh copy per test (tests damage it); building once keeps the file fast."""
    return Path(shutil.copytree(tiny_template, models_root / "captioners" / TINY_DIR))


@pytest.fixture
def blip(tiny_dir):
    return FAMILY.load(tiny_dir)


def _noise(height: int, width: int, seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).random((height, width, 3)) * 255
    return Image.fromarray(pixels.astype(np.uint8))


def test_tiny_folder_has_the_real_file_layout(models_root):
    tiny_dir = make_tiny(models_root / "captioners")
    assert tiny_dir == models_root / "captioners" / TINY_DIR
    for name in ["config.json", "model.safetensors", "preprocessor_config.json", "vocab.txt",
                 "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
        assert (tiny_dir / name).is_file(), name


def test_loads_through_the_registry_with_kind_and_identity(tiny_dir):
    blip = loading.load_model("captioner", TINY_DIR)
    assert blip.kind == "blip"
    assert blip.identity == f"blip:{TINY_DIR}"
    assert FAMILY.load(tiny_dir).identity == blip.identity


def test_images_of_any_mode_are_captioned_as_rgb(blip):
    rgba = _noise(40, 60, 0).convert("RGBA")
    rgba.putalpha(128)
    grey = _noise(50, 30, 1).convert("L")
    deep = Image.fromarray(np.arange(30 * 50, dtype=np.uint16).reshape(30, 50) * 40)  # I;16
    images = [rgba, grey, deep]
    captions = blip.caption(images, max_new_tokens=TOKENS)
    assert captions == blip.caption([to_rgb_pil(i) for i in images], max_new_tokens=TOKENS)
    assert all(isinstance(c, str) and c for c in captions)


def test_detail_is_checked_but_blip_has_one_style(blip):
    image = [_noise(32, 32, 9)]
    captions = {blip.caption(image, detail=d, max_new_tokens=TOKENS)[0] for d in DETAILS}
    assert len(captions) == 1
    with pytest.raises(InputError, match="detail 'long' is not one of"):
        blip.caption(image, detail="long")


def test_batched_captions_match_one_by_one_for_mixed_sizes(blip):
    images = [_noise(64, 64, 2), _noise(100, 30, 3), Image.new("RGB", (17, 90), (0, 0, 255))]
    batched = blip.caption(images, max_new_tokens=TOKENS, batch_size=3)
    assert batched == [blip.caption([image], max_new_tokens=TOKENS)[0] for image in images]
    assert len(set(batched)) > 1  # captions depend on the image


def test_prompt_is_stripped_from_the_caption(blip):
    """The caption is exactly what the model generated after the prompt."""
    image = _noise(48, 48, 4)
    prompt = "A photography of"
    caption = blip.caption([image], prompt=prompt, max_new_tokens=TOKENS, num_beams=1)[0]

    processor = blip._processor
    inputs = processor(images=[image], text=[prompt], return_tensors="pt")
    with torch.inference_mode():
        full = blip._managed.load().generate(**inputs, max_new_tokens=TOKENS, num_beams=1)
    decoded = processor.batch_decode(full, skip_special_tokens=True)[0]
    assert decoded.startswith("a photography of")
    assert caption and decoded == f"a photography of {caption}"
    assert not caption.startswith("a photography of")


def test_empty_list_gives_no_captions(blip):
    assert blip.caption([]) == []


@pytest.mark.parametrize("setting", ["num_beams", "batch_size", "max_new_tokens"])
def test_bad_generation_settings_are_rejected(blip, setting):
    with pytest.raises(InputError, match="at least 1"):
        blip.caption([_noise(8, 8, 5)], **{setting: 0})


def test_a_file_inside_the_folder_loads_the_folder(tiny_dir):
    images = [_noise(8, 8, 6), _noise(20, 12, 7)]
    from_file = FAMILY.load(tiny_dir / "model.safetensors").caption(images, max_new_tokens=2)
    assert from_file == FAMILY.load(tiny_dir).caption(images, max_new_tokens=2)


def test_folder_of_another_model_type_is_rejected(tiny_dir):
    config = json.loads((tiny_dir / "config.json").read_text())
    config["model_type"] = "clip"
    config["architectures"] = ["CLIPModel"]
    (tiny_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(WrongModelFamilyError, match="holds a 'clip' model .CLIPModel."):
        FAMILY.load(tiny_dir)


def test_blip_without_caption_decoder_is_rejected(tiny_dir):
    from safetensors.torch import load_file, save_file

    weights = tiny_dir / "model.safetensors"
    tensors = {k: v for k, v in load_file(str(weights)).items() if k.startswith("vision_model.")}
    save_file(tensors, str(weights))
    with pytest.raises(WrongModelFamilyError, match="not a BLIP image captioner"):
        FAMILY.load(tiny_dir)


def test_truncated_weights_are_reported_corrupt(tiny_dir):
    weights = tiny_dir / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsCorruptError, match="truncated or corrupt"):
        FAMILY.load(tiny_dir)


@pytest.mark.parametrize("missing", [
    ["config.json"], ["model.safetensors"], ["preprocessor_config.json"],
    ["tokenizer_config.json"],
    ["tokenizer.json", "vocab.txt"],  # either one alone is enough for a tokenizer
])
def test_incomplete_folder_is_reported(tiny_dir, missing):
    for name in missing:
        (tiny_dir / name).unlink()
    with pytest.raises(WeightsCorruptError, match="(?i)download") as info:
        FAMILY.load(tiny_dir)
    assert missing[0] in str(info.value)


def test_sniff(tiny_dir):
    from intenttuner.weights.safe_load import tensor_names

    assert captioner.sniff(tensor_names(tiny_dir / "model.safetensors"))
    assert not captioner.sniff(["vision_model.embeddings.patch_embedding.weight",
                                "qformer.layer.0.weight", "language_model.lm_head.weight"])
