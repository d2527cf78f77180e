"""DINO identity encoder: the tiny random model in facebook/dino-vits16's layout, loaded through the
real loading code and checked against transformers' own loading and torchvision's transform;
unit-length, batch-independent CLS embeddings; the .bin variant; refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from intenttuner import loading, runtime
from intenttuner.errors import InputError, WeightsCorruptError, WrongModelFamilyError
from intenttuner.families import identity_encoder
from intenttuner.families.identity_encoder import FAMILY, dino_transform
from intenttuner.tiny import TINY_BUILDERS
from intenttuner.tiny.identity_encoder import TINY_CONFIG, TINY_DIR, make_tiny
from intenttuner.tiny.image_encoder import make_tiny as make_tiny_clip
from intenttuner.weights import safe_load
from intenttuner.weights.manifest import load_manifest
from tests.embedding_checks import assert_embedding_contract

HUB_QUERY = "encoder.layer.0.attention.attention.query.weight"


@pytest.fixture(scope="module")
def tiny_template(tmp_path_factory):
    return make_tiny(tmp_path_factory.mktemp("dino"))


@pytest.fixture
def tiny_dir(models_root, tiny_template):
    """A fresh copy per test (tests damage it); building once keeps the file fast."""
    return Path(shutil.copytree(tiny_template, models_root / "identity_encoders" / TINY_DIR))


@pytest.fixture
def encoder(tiny_dir):
    return loading.load_model("identity_encoder", TINY_DIR)


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    rgb = [Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8))
           for h, w in [(64, 64), (120, 40), (33, 200), (300, 300)]]
    return [*rgb, rgb[0].convert("RGBA"), rgb[1].convert("L"), rgb[2].convert("P")]


def _state(folder: Path) -> dict[str, torch.Tensor]:
    return safe_load.load_state_dict(folder / "model.safetensors")


def test_tiny_folder_has_the_hub_layout(tiny_dir):
    assert TINY_BUILDERS["identity_encoder"] is make_tiny
    assert sorted(p.name for p in tiny_dir.iterdir()) == [
        "config.json", "model.safetensors", "preprocessor_config.json"]
    config = json.loads((tiny_dir / "config.json").read_text())
    assert config["model_type"] == "vit" and config["architectures"] == ["ViTModel"]
    names = set(_state(tiny_dir))
    assert {"embeddings.cls_token", HUB_QUERY} <= names  # the Hub's names, whatever transformers
    assert not any(n.startswith("pooler.") for n in names)


def test_loads_through_the_registry_as_the_folder_names_it(encoder):
    assert (encoder.arch, encoder.embed_dim, encoder.image_size) == (TINY_DIR, 32, 32)
    assert (encoder.mean, encoder.std) == (identity_encoder.IMAGENET_MEAN,
                                           identity_encoder.IMAGENET_STD)
    assert not hasattr(encoder, "embed_texts")  # images only: no text tower


@pytest.mark.parametrize("size", [(64, 64), (120, 40), (33, 200), (7, 5)])
@pytest.mark.parametrize("image_size", [32, 224])
def test_transform_matches_torchvisions_dino_evaluation_transform(size, image_size):
    transforms = pytest.importorskip("torchvision.transforms")
    reference = transforms.Compose([
        transforms.Resize(round(image_size * 256 / 224),
                          interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(image_size),
        transforms.ToTensor(),
        transforms.Normalize(identity_encoder.IMAGENET_MEAN, identity_encoder.IMAGENET_STD),
    ])
    rng = np.random.default_rng(1)
    image = Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8))
    ours = dino_transform(image, image_size, identity_encoder.IMAGENET_MEAN,
                          identity_encoder.IMAGENET_STD)
    assert ours.shape == (3, image_size, image_size)
    torch.testing.assert_close(ours, reference(image), atol=1e-6, rtol=0)


def test_embeddings_are_the_cls_token_of_transformers_own_loading(encoder, tiny_dir):
    from transformers import ViTModel

    reference = ViTModel.from_pretrained(tiny_dir, add_pooling_layer=False).eval()
    images = _images()
    pixels = torch.stack([dino_transform(i, 32, encoder.mean, encoder.std) for i in images])
    with torch.no_grad():
        cls = reference(pixel_values=pixels).last_hidden_state[:, 0]
    expected = torch.nn.functional.normalize(cls, dim=-1)
    torch.testing.assert_close(encoder.embed_images(images), expected, atol=1e-5, rtol=0)


def test_image_embeddings_keep_the_embedding_contract(encoder):
    assert_embedding_contract(encoder, _images(), 32, unrelated_below=0.95)


def test_empty_input_and_bad_batch_size(encoder):
    assert encoder.embed_images([]).shape == (0, 32)
    with pytest.raises(InputError, match="batch_size"):
        encoder.embed_images(_images(), batch_size=0)


def test_embedding_honours_cancel_between_batches(encoder, monkeypatch):
    calls = []

    def interrupted():
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt("cancelled")

    monkeypatch.setattr(runtime.get_runtime(), "check_interrupted", interrupted)
    with pytest.raises(KeyboardInterrupt):
        encoder.embed_images(_images(), batch_size=2)
    assert len(calls) == 2


def test_fp16_embeddings_are_close_to_fp32(tiny_dir, encoder):
    half = FAMILY.load(tiny_dir, precision="fp16")
    images = _images()[:3]
    torch.testing.assert_close(half.embed_images(images), encoder.embed_images(images),
                               atol=5e-3, rtol=0)


def test_pytorch_model_bin_with_a_vit_prefix_and_heads_loads_the_same(tiny_dir, encoder):
    """A ViTForImageClassification-style .bin: backbone under ``vit.``, a pooler and a classifier
    head beside it; read with weights_only, the heads ignored."""
    state = {f"vit.{n}": t for n, t in _state(tiny_dir).items()}
    state["vit.pooler.dense.weight"] = torch.zeros(32, 32)
    state["classifier.weight"] = torch.zeros(10, 32)
    (tiny_dir / "model.safetensors").unlink()
    torch.save(state, tiny_dir / "pytorch_model.bin")
    images = _images()[:3]
    torch.testing.assert_close(FAMILY.load(tiny_dir).embed_images(images),
                               encoder.embed_images(images))


def test_pickled_python_objects_are_never_loaded(tiny_dir):
    (tiny_dir / "model.safetensors").unlink()
    torch.save({"embeddings.cls_token": torch.zeros(1), "payload": Path("x")},
               tiny_dir / "pytorch_model.bin")
    with pytest.raises(WeightsCorruptError, match="Python objects other than tensors"):
        FAMILY.load(tiny_dir)


def test_mean_and_std_come_from_the_preprocessor_config(tiny_dir, encoder):
    path = tiny_dir / "preprocessor_config.json"
    config = json.loads(path.read_text())
    config["image_mean"], config["image_std"] = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
    path.write_text(json.dumps(config))
    custom = FAMILY.load(tiny_dir)
    assert (custom.mean, custom.std) == ((0.5,) * 3, (0.25,) * 3)
    images = _images()[:2]
    assert not torch.allclose(custom.embed_images(images), encoder.embed_images(images))
    path.unlink()  # optional: ImageNet's values without it
    assert FAMILY.load(tiny_dir).mean == identity_encoder.IMAGENET_MEAN
    path.write_text(json.dumps({"image_mean": [0.5, 0.5], "image_std": [1, 1, 1]}))
    with pytest.raises(WeightsCorruptError, match="lists of 3 numbers"):
        FAMILY.load(tiny_dir)


@pytest.mark.parametrize(("damage", "error", "match"), [
    (lambda d: (d / "config.json").unlink(), WeightsCorruptError, "no config.json"),
    (lambda d: (d / "model.safetensors").unlink(), WeightsCorruptError,
     "no weights \\(model.safetensors or pytorch_model.bin\\)"),
    (lambda d: (d / "config.json").write_text("{not json"), WeightsCorruptError, "valid JSON"),
    (lambda d: _edit_config(d, hidden_size=64, intermediate_size=128), WeightsCorruptError,
     "does not fit the ViT its config.json describes"),
    (lambda d: _edit_config(d, model_type="dinov2"), WrongModelFamilyError,
     "'dinov2' model, not a ViT"),
    (lambda d: _edit_config(d, image_size=[32, 48]), WeightsCorruptError,
     "image_size must be one number"),
])
def test_damaged_folders_are_reported(tiny_dir, damage, error, match):
    damage(tiny_dir)
    with pytest.raises(error, match=match) as info:
        FAMILY.load(tiny_dir)
    assert str(tiny_dir) in str(info.value)


def _edit_config(folder: Path, **changes) -> None:
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_truncated_weights_are_reported_corrupt(tiny_dir):
    weights = tiny_dir / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsCorruptError, match="truncated or corrupt"):
        FAMILY.load(tiny_dir)


def test_folder_holding_another_familys_weights_names_its_folder(tiny_dir, tmp_path):
    clip = make_tiny_clip(tmp_path)
    shutil.copy(clip, tiny_dir / "model.safetensors")  # config.json still says "vit"
    with pytest.raises(WrongModelFamilyError, match="open_clip.*models/image_encoders"):
        FAMILY.load(tiny_dir)


def test_a_lone_vit_weight_file_is_told_to_live_in_its_folder(models_root, tiny_template):
    lone = models_root / "identity_encoders" / "dino.safetensors"
    lone.parent.mkdir(parents=True)
    shutil.copy(tiny_template / "model.safetensors", lone)
    with pytest.raises(WeightsCorruptError, match="single ViT weight file.*facebook/dino-vits16"):
        FAMILY.load(lone)
    # A file inside a complete folder names that folder.
    assert FAMILY.load(tiny_template / "model.safetensors").arch == TINY_DIR


@pytest.mark.parametrize(("names", "expected"), [
    (["embeddings.cls_token", HUB_QUERY, "layernorm.weight"], True),
    (["vit.embeddings.cls_token", f"vit.{HUB_QUERY}", "classifier.weight"], True),
    (["embeddings.cls_token", "layers.0.attention.q_proj.weight"], True),  # transformers 5 names
    ([HUB_QUERY, "embeddings.patch_embeddings.projection.weight"], False),  # no CLS token
    (["visual.class_embedding", "logit_scale", "token_embedding.weight"], False),  # open_clip
    (["model.vit.embeddings.cls_token", f"model.vit.{HUB_QUERY}"], False),  # nested elsewhere
])
def test_sniff(names, expected):
    assert identity_encoder.sniff(names) is expected


def test_transformers_renames_are_applied_only_where_the_installed_vit_needs_them():
    from transformers import ViTConfig, ViTModel

    model = ViTModel(ViTConfig(**TINY_CONFIG), add_pooling_layer=False)
    wanted = set(model.state_dict())
    hub_names = {"embeddings.cls_token": 0, HUB_QUERY: 1,
                 "encoder.layer.0.attention.output.dense.weight": 2,
                 "encoder.layer.0.intermediate.dense.weight": 3,
                 "encoder.layer.0.output.dense.weight": 4}
    renamed = identity_encoder.to_model_names(hub_names, wanted)
    assert set(renamed) <= wanted
    assert sorted(renamed.values()) == [0, 1, 2, 3, 4]  # five tensors, five distinct names
    own = {name: i for i, name in enumerate(wanted)}
    assert identity_encoder.to_model_names(own, wanted) is own


def test_default_weights_come_from_the_safetensors_pr_ref(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    entry = load_manifest().default_for("identity_encoder")
    assert (entry.folder, entry.target, entry.revision) == (
        "identity_encoders", "dino-vits16", "refs/pr/1")
    urls = {f.name: entry.url(f) for f in entry.files}
    # The slashes of a PR ref are escaped inside the revision, as huggingface_hub does.
    assert urls["model.safetensors"] == (
        "https://huggingface.co/facebook/dino-vits16/resolve/refs%2Fpr%2F1/model.safetensors")
    assert set(urls) == {"model.safetensors", "config.json", "preprocessor_config.json"}


def test_exercise_describes_the_embedding(encoder):
    assert FAMILY.exercise(encoder) == "tiny-dino: image (1, 32), CLS of a 32x32 crop"


def test_identity_encoder_node_lists_and_loads_the_folder(pack, tiny_dir):
    node = pack.NODE_CLASS_MAPPINGS["IntentTunerLoadIdentityEncoder"]
    required = node.INPUT_TYPES()["required"]
    assert TINY_DIR in required["model"][0]
    assert required["model"][1]["default"] == "dino-vits16"
    assert node.RETURN_TYPES == ("IT_IDENTITY_ENCODER",)
    encoder = node().load(TINY_DIR, "fp32")[0]
    assert encoder.embed_images(_images()[:2]).shape == (2, 32)
