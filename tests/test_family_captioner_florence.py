"""Florence-2 captioner: the tiny random model in the florence-community layout, loaded through
the real loading code; batched captions, detail levels, input images, refusals."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from intenttuner import loading
from intenttuner.errors import (
    InputError,
    MissingDependencyError,
    WeightsCorruptError,
    WrongModelFamilyError,
)
from intenttuner.families import captioner
from intenttuner.families.captioner import DETAILS, FAMILY
from intenttuner.families.captioner_florence import MIN_TRANSFORMERS, TASKS
from intenttuner.imageio import to_rgb_pil
from intenttuner.runtime import get_runtime
from intenttuner.tiny import TINY_BUILDERS
from intenttuner.tiny.captioner_florence import TINY_DIR, make_tiny

TOKENS = 6  # random models rarely stop early; short captions keep the file fast
FILES = ["config.json", "generation_config.json", "model.safetensors",
         "preprocessor_config.json", "processor_config.json", "tokenizer.json",
         "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
         "added_tokens.json"]


@pytest.fixture(scope="module")
def tiny_template(tmp_path_factory):
    return make_tiny(tmp_path_factory.mktemp("florence"))


@pytest.fixture
def tiny_dir(models_root, tiny_template):
    """A fresh copy per test (tests damage it); building once keeps the file fast."""
    return Path(shutil.copytree(tiny_template, models_root / "captioners" / TINY_DIR))


@pytest.fixture
def florence(tiny_dir):
    return loading.load_model("captioner", TINY_DIR)


def _noise(height: int, width: int, seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).random((height, width, 3)) * 255
    return Image.fromarray(pixels.astype(np.uint8))


def _images() -> list[Image.Image]:
    return [_noise(64, 64, 2), _noise(100, 30, 3), Image.new("RGB", (17, 90), (0, 0, 255))]


def test_tiny_folder_has_the_converted_checkpoint_layout(models_root):
    assert TINY_BUILDERS["captioner"] is make_tiny  # Florence-2 is the default captioner
    tiny_dir = make_tiny(models_root / "captioners")
    assert tiny_dir == models_root / "captioners" / TINY_DIR
    assert sorted(p.name for p in tiny_dir.iterdir()) == sorted(FILES)
    config = json.loads((tiny_dir / "config.json").read_text())
    assert config["model_type"] == "florence2" and "auto_map" not in config
    tokenizer = json.loads((tiny_dir / "tokenizer_config.json").read_text())
    assert tokenizer["extra_special_tokens"] == {"image_token": "<image>"}
    assert "<loc_999>" in json.loads((tiny_dir / "added_tokens.json").read_text())


def test_loads_through_the_registry_with_kind_and_identity(florence, tiny_dir):
    assert florence.kind == "florence2"
    assert florence.identity == f"florence2:{TINY_DIR}"
    assert FAMILY.load(tiny_dir).identity == florence.identity  # stable across loads
    assert loading.load_model("captioner", TINY_DIR) is florence


@pytest.mark.parametrize("detail", DETAILS)
def test_batched_captions_match_one_by_one_at_each_detail(florence, detail):
    images = _images()
    batched = florence.caption(images, detail=detail, max_new_tokens=TOKENS, batch_size=3)
    single = [florence.caption([image], detail=detail, max_new_tokens=TOKENS)[0]
              for image in images]
    assert batched == single
    assert all(isinstance(c, str) and c for c in batched)
    assert len(set(batched)) > 1  # captions depend on the image


@pytest.mark.parametrize("detail", DETAILS)
def test_each_detail_asks_its_task_and_parses_the_generation(florence, detail):
    """The caption is the processor's parse of what generate wrote for the detail's task."""
    image = _noise(48, 48, 4)
    caption = florence.caption([image], detail=detail, max_new_tokens=TOKENS, num_beams=1)[0]

    task = TASKS[detail]
    processor = florence._processor
    inputs = processor(text=[task], images=[image], return_tensors="pt")
    with torch.inference_mode():
        out = florence._managed.load().generate(**inputs, max_new_tokens=TOKENS, num_beams=1,
                                                do_sample=False)
    text = processor.batch_decode(out, skip_special_tokens=True)[0]
    expected = processor.post_process_generation(text, task=task, image_size=image.size)[task]
    assert caption == expected.strip() and caption


def test_details_write_different_prompts(florence, monkeypatch):
    seen = []
    processor = florence._processor
    call = type(processor).__call__
    monkeypatch.setattr(type(processor), "__call__",
                        lambda self, *a, **kw: seen.append(kw["text"]) or call(self, *a, **kw))
    for detail in DETAILS:
        florence.caption([_noise(20, 20, 5)] * 2, detail=detail, max_new_tokens=2)
    assert seen == [[TASKS[d]] * 2 for d in DETAILS]


def test_default_length_depends_on_detail(florence):
    assert florence.max_tokens["short"] < florence.max_tokens["detailed"]
    assert florence.max_tokens["detailed"] < florence.max_tokens["more_detailed"]
    assert isinstance(florence.caption([_noise(16, 16, 6)], detail="short", num_beams=1)[0], str)


def test_images_of_any_mode_are_captioned_as_rgb(florence):
    rgba = _noise(40, 60, 0).convert("RGBA")
    rgba.putalpha(128)
    grey = _noise(50, 30, 1).convert("L")
    deep = Image.fromarray(np.arange(40 * 40, dtype=np.uint16).reshape(40, 40) * 40)
    assert deep.mode == "I;16"
    deep_rgb = (np.random.default_rng(7).random((30, 30, 3)) * 65535).astype(np.uint16)
    images = [rgba, grey, deep, deep_rgb]
    captions = florence.caption(images, max_new_tokens=TOKENS)
    assert captions == florence.caption([to_rgb_pil(i) for i in images], max_new_tokens=TOKENS)
    assert all(isinstance(c, str) and c for c in captions)


def test_empty_list_gives_no_captions(florence):
    assert florence.caption([]) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"detail": "long"}, "detail 'long' is not one of short, detailed, more_detailed"),
    ({"batch_size": 0}, "at least 1"),
    ({"num_beams": 0}, "at least 1"),
    ({"max_new_tokens": 0}, "at least 1"),
])
def test_bad_settings_are_rejected(florence, kwargs, message):
    with pytest.raises(InputError, match=message):
        florence.caption([_noise(8, 8, 5)], **kwargs)


def test_one_generate_per_batch_with_progress_and_cancel(florence, monkeypatch):
    model = florence._managed.load()
    calls, updates = [], []
    generate = model.generate
    monkeypatch.setattr(model, "generate", lambda **kw: calls.append(1) or generate(**kw))
    runtime = get_runtime()
    progress = runtime.progress

    def recording_progress(*args, **kwargs):
        bar = progress(*args, **kwargs)
        update = bar.update
        bar.update = lambda n=1: updates.append(n) or update(n)
        return bar

    monkeypatch.setattr(runtime, "progress", recording_progress)
    florence.caption([_noise(8, 8, i) for i in range(5)], batch_size=2, max_new_tokens=2)
    assert len(calls) == 3 and updates == [2, 2, 1]

    class Cancelled(Exception):
        pass

    checks = []

    def cancel_on_second_batch():
        checks.append(1)
        if len(checks) == 2:
            raise Cancelled

    calls.clear()
    monkeypatch.setattr(runtime, "check_interrupted", cancel_on_second_batch)
    with pytest.raises(Cancelled):
        florence.caption([_noise(8, 8, i) for i in range(5)], batch_size=2, max_new_tokens=2)
    assert len(calls) == 1


@pytest.mark.parametrize("missing", [
    ["tokenizer.json", "vocab.json", "merges.txt"], ["tokenizer_config.json"],
    ["preprocessor_config.json"]])
def test_missing_tokenizer_or_processor_files_are_named(tiny_dir, missing):
    for name in missing:
        (tiny_dir / name).unlink()
    with pytest.raises(WeightsCorruptError, match="incomplete") as info:
        FAMILY.load(tiny_dir)
    assert missing[0] in str(info.value) and "Download" in str(info.value)


def test_slow_tokenizer_files_are_enough(tiny_dir):
    images = [_noise(20, 20, 8)]
    expected = FAMILY.load(tiny_dir).caption(images, max_new_tokens=TOKENS)
    (tiny_dir / "tokenizer.json").unlink()
    assert FAMILY.load(tiny_dir).caption(images, max_new_tokens=TOKENS) == expected


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors"])
def test_missing_config_or_weights_are_reported(tiny_dir, missing):
    (tiny_dir / missing).unlink()
    with pytest.raises(WeightsCorruptError, match="(?i)download"):
        FAMILY.load(tiny_dir)


def test_truncated_weights_are_reported_corrupt(tiny_dir):
    weights = tiny_dir / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsCorruptError, match="truncated or corrupt"):
        FAMILY.load(tiny_dir)


def _remote_code_config(config: dict) -> dict:
    """config.json as microsoft/Florence-2-base has it (its modelling code in the repo)."""
    return {**config, "auto_map": {
        "AutoConfig": "configuration_florence2.Florence2Config",
        "AutoModelForCausalLM": "modeling_florence2.Florence2ForConditionalGeneration"},
        "vision_config": {"model_type": "davit", "dim_embed": [128, 256, 512, 1024],
                          "depths": [1, 1, 9, 1], "window_size": 12}}


@pytest.mark.parametrize("layout", ["config", "code files"])
def test_microsoft_remote_code_folder_is_refused(tiny_dir, layout):
    config_path = tiny_dir / "config.json"
    if layout == "config":
        config_path.write_text(json.dumps(_remote_code_config(json.loads(config_path.read_text()))))
    else:
        (tiny_dir / "modeling_florence2.py").write_text("raise SystemExit('never run')\n")
    with pytest.raises(WrongModelFamilyError, match="trust_remote_code") as info:
        FAMILY.load(tiny_dir)
    assert "florence-community/Florence-2-base" in str(info.value)


def test_folder_of_another_model_type_is_rejected(tiny_dir):
    config = json.loads((tiny_dir / "config.json").read_text())
    config.update(model_type="clip", architectures=["CLIPModel"])
    (tiny_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(WrongModelFamilyError, match="holds a 'clip' model .CLIPModel."):
        FAMILY.load(tiny_dir)


def test_florence_config_with_other_weights_is_rejected(tiny_dir):
    from safetensors.torch import save_file

    save_file({"vision_model.embeddings.patch_embedding.weight": torch.zeros(2, 3),
               "text_decoder.bert.embeddings.word_embeddings.weight": torch.zeros(2, 2)},
              str(tiny_dir / "model.safetensors"))
    with pytest.raises(WrongModelFamilyError, match="not a Florence-2 image captioner"):
        FAMILY.load(tiny_dir)


def test_transformers_without_florence2_gets_the_minimum_version(tiny_dir, monkeypatch):
    old = types.ModuleType("transformers")
    old.__version__ = "4.55.4"
    old.__spec__ = importlib.util.find_spec("transformers")
    monkeypatch.setitem(sys.modules, "transformers", old)
    with pytest.raises(MissingDependencyError, match=f"transformers {MIN_TRANSFORMERS} or newer"
                       ) as info:
        FAMILY.load(tiny_dir)
    assert "4.55.4" in str(info.value) and "BLIP" in str(info.value)


def test_sniff(tiny_dir):
    from intenttuner.weights.safe_load import tensor_names

    names = tensor_names(tiny_dir / "model.safetensors")
    assert captioner.sniff(names) and captioner.sniff_florence(names)
    assert not captioner.sniff_blip(names)
    # Microsoft's remote-code layout has other names
    assert not captioner.sniff(["vision_tower.convs.0.proj.weight", "image_projection",
                                "language_model.model.encoder.layers.0.fc1.weight"])
