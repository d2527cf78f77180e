"""open_clip encoder: file naming, shape inference, loading and normalised, batched embeddings."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from intenttuner.errors import InputError, WeightsCorruptError
from intenttuner.families import image_encoder
from intenttuner.families.image_encoder import FAMILY, infer_arch, resolve_quick_gelu
from intenttuner.tiny.image_encoder import TINY_ARCH, make_tiny
from tests.embedding_checks import assert_embedding_contract


@pytest.fixture(scope="module")
def tiny_template(tmp_path_factory):
    return make_tiny(tmp_path_factory.mktemp("clip"))


@pytest.fixture
def tiny_path(models_root, tiny_template):
    """A fresh copy per test (tests rename or truncate it); building once keeps the file fast."""
    folder = models_root / "image_encoders"
    folder.mkdir()
    return Path(shutil.copy(tiny_template, folder / tiny_template.name))


@pytest.fixture
def encoder(tiny_path):
    return FAMILY.load(tiny_path)


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    rgb = [Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8))
           for h, w in [(64, 64), (120, 40), (33, 200), (300, 300)]]
    return [*rgb, rgb[0].convert("RGBA"), rgb[1].convert("L"), rgb[2].convert("P")]


def _meta_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    import open_clip
    from open_clip.model import CLIP

    with torch.device("meta"):  # ViT-L-14 would need 1.7 GB; meta tensors need none
        model = CLIP(**open_clip.get_model_config(arch))
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


@pytest.mark.parametrize("name, arch, tag", [
    ("ViT-B-32.laion2b_s34b_b79k.safetensors", "ViT-B-32", "laion2b_s34b_b79k"),
    ("ViT-L-14.openai.safetensors", "ViT-L-14", "openai"),
    ("ViT-B-32.pt", "ViT-B-32", None),
])
def test_file_name_splits_into_arch_and_tag(name, arch, tag):
    assert image_encoder.split_file_name(Path(name)) == (arch, tag)


@pytest.mark.parametrize("arch, tag, expected", [
    ("ViT-L-14", "openai", True),  # recorded in open_clip's pretrained table
    ("ViT-B-32", "laion2b_s34b_b79k", False),
    ("ViT-B-32", "openai_finetuned_by_me", True),  # unknown tag: the openai rule
    ("ViT-B-32-quickgelu", None, True),  # from the architecture config
    ("ViT-B-32", None, False),
])
def test_quick_gelu_follows_the_tag(arch, tag, expected):
    assert resolve_quick_gelu(arch, tag, None) is expected


@pytest.mark.parametrize("arch", ["ViT-B-32", "ViT-L-14"])
def test_default_architectures_are_inferred_from_shapes(arch):
    assert infer_arch(_meta_shapes(arch)) == arch


def test_architecture_comes_from_the_file_name(encoder):
    assert (encoder.arch, encoder.tag, encoder.embed_dim) == (TINY_ARCH, "random", 32)


def test_unnamed_file_falls_back_to_shape_inference(tiny_path, encoder):
    renamed = tiny_path.rename(tiny_path.with_name("open_clip_model.safetensors"))
    loaded = FAMILY.load(renamed)
    assert loaded.arch == TINY_ARCH and loaded.tag is None
    image = _images()[:1]
    torch.testing.assert_close(loaded.embed_images(image), encoder.embed_images(image))


def test_explicit_arch_that_does_not_fit_is_reported(tiny_path):
    with pytest.raises(WeightsCorruptError, match="does not fit open_clip architecture ViT-B-32"):
        FAMILY.load(tiny_path, arch="ViT-B-32")
    with pytest.raises(InputError, match="not an open_clip architecture"):
        FAMILY.load(tiny_path, arch="ViT-Nonexistent")


def test_image_embeddings_keep_the_embedding_contract(encoder):
    assert_embedding_contract(encoder, _images(), 32, unrelated_below=0.999)


def test_text_embeddings_are_unit_length_and_batch_independent(encoder):
    texts = ["a red backpack", "a photo of a dog", "", "word " * 200]  # last one is truncated
    batched = encoder.embed_texts(texts, batch_size=3)
    assert batched.shape == (4, 32)
    torch.testing.assert_close(batched.norm(dim=1), torch.ones(4))
    one_by_one = torch.cat([encoder.embed_texts([t]) for t in texts])
    torch.testing.assert_close(batched, one_by_one, atol=1e-5, rtol=0)
    assert float(batched[0] @ batched[1]) < 0.999


def test_empty_inputs_give_empty_embeddings(encoder):
    assert encoder.embed_images([]).shape == (0, 32)
    assert encoder.embed_texts([]).shape == (0, 32)


def test_bad_inputs_are_rejected(encoder):
    with pytest.raises(InputError, match="strings"):
        encoder.embed_texts(["ok", 3])
    with pytest.raises(InputError, match="batch_size"):
        encoder.embed_images(_images(), batch_size=0)


def test_fp16_embeddings_are_close_to_fp32(tiny_path, encoder):
    half = FAMILY.load(tiny_path, precision="fp16")
    images = _images()[:3]
    out = half.embed_images(images)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, encoder.embed_images(images), atol=2e-3, rtol=0)


def test_registering_bundled_configs_twice_adds_nothing(encoder):
    import open_clip

    before = open_clip.list_models()
    assert image_encoder.register_bundled_configs() == []
    assert open_clip.list_models() == before
    assert TINY_ARCH in before and "ViT-B-32" in before


def test_folder_gets_a_renaming_hint(models_root):
    with pytest.raises(InputError, match="single files"):
        FAMILY.load(models_root)






def test_sniff():
    assert image_encoder.sniff(_meta_shapes("ViT-B-32"))
    # CLIP inside an SD checkpoint is nested under a prefix and is not an image encoder file
    nested = [f"cond_stage_model.model.{n}" for n in _meta_shapes("ViT-B-32")]
    assert not image_encoder.sniff(nested)
