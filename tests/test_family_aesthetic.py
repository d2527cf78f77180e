"""LAION aesthetic predictor: the tiny random MLP in the released file's format, loaded through the
real loading code and checked against the recipe written out by hand; the scorer with its CLIP
encoder; the embedding-width mismatch; the loader node; refusals."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from intenttuner import loading
from intenttuner.errors import InputError, WeightsCorruptError, WrongModelFamilyError
from intenttuner.families import aesthetic
from intenttuner.families.aesthetic import FAMILY, AestheticScorer
from intenttuner.tiny import TINY_BUILDERS
from intenttuner.tiny.aesthetic import TINY_FILE, make_tiny
from intenttuner.tiny.image_encoder import make_tiny as make_tiny_clip
from intenttuner.weights.manifest import load_manifest

# The released predictor's layers: (weight shape) per Linear, as in sac+logos+ava1-l14-linearMSE.
RELEASED_SHAPES = {"layers.0": (1024, 768), "layers.2": (128, 1024), "layers.4": (64, 128),
                   "layers.6": (16, 64), "layers.7": (1, 16)}


@pytest.fixture(scope="module")
def tiny_template(tmp_path_factory):
    return make_tiny(tmp_path_factory.mktemp("aesthetic"))


@pytest.fixture
def tiny_path(models_root, tiny_template):
    """A fresh copy per test (tests damage it); building once keeps the file fast."""
    folder = models_root / "aesthetic"
    folder.mkdir()
    return Path(shutil.copy(tiny_template, folder / TINY_FILE))


@pytest.fixture
def predictor(tiny_path):
    return loading.load_model("aesthetic", TINY_FILE)


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    rgb = [Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8))
           for h, w in [(64, 64), (120, 40), (33, 200)]]
    return [*rgb, rgb[0].convert("RGBA"), Image.new("RGB", (50, 50), (200, 30, 30))]


def _recipe(state: dict[str, torch.Tensor], vectors: torch.Tensor) -> torch.Tensor:
    """The LAION recipe by hand: normalise, then the five affine layers (no activations)."""
    x = vectors / vectors.norm(dim=-1, keepdim=True)
    for layer in RELEASED_SHAPES:
        x = x @ state[f"{layer}.weight"].T + state[f"{layer}.bias"]
    return x[:, 0]


def test_tiny_file_has_the_released_layout_with_the_tiny_clips_width(tiny_path):
    assert TINY_BUILDERS["aesthetic"] is make_tiny
    state = torch.load(tiny_path, weights_only=True)
    assert set(state) == {f"{layer}.{kind}" for layer in RELEASED_SHAPES
                          for kind in ("weight", "bias")}
    shapes = {layer: tuple(state[f"{layer}.weight"].shape) for layer in RELEASED_SHAPES}
    assert shapes == {**RELEASED_SHAPES, "layers.0": (1024, 32)}


def test_scores_follow_the_laion_recipe(predictor, tiny_path):
    assert (predictor.name, predictor.input_dim) == ("tiny-aesthetic", 32)
    vectors = torch.randn(6, 32, generator=torch.Generator().manual_seed(1))
    scores = predictor.score_embeddings(vectors)
    assert scores.shape == (6,) and scores.dtype == torch.float32
    expected = _recipe(torch.load(tiny_path, weights_only=True), vectors)
    torch.testing.assert_close(scores, expected, atol=1e-5, rtol=0)
    # normalised first: the length of an embedding does not change its score
    torch.testing.assert_close(predictor.score_embeddings(vectors * 3.0), scores)
    assert len(set(scores.tolist())) == 6  # the tiny model tells inputs apart


def test_a_safetensors_copy_scores_the_same(predictor, tiny_path):
    from safetensors.torch import save_file

    copy = tiny_path.with_suffix(".safetensors")
    save_file(torch.load(tiny_path, weights_only=True), str(copy))
    vectors = torch.randn(3, 32)
    torch.testing.assert_close(FAMILY.load(copy).score_embeddings(vectors),
                               predictor.score_embeddings(vectors))


def test_bad_embeddings_are_refused(predictor):
    assert predictor.score_embeddings(torch.zeros(0, 32)).shape == (0,)
    with pytest.raises(InputError, match=r"scores \(N, 32\) image embeddings, got shape \(2, 512\)"):
        predictor.score_embeddings(torch.zeros(2, 512))
    with pytest.raises(InputError, match="got shape"):
        predictor.score_embeddings(torch.zeros(32))


def test_scorer_embeds_with_its_clip_and_scores_each_image(predictor, clip):
    scorer = AestheticScorer(predictor, clip)
    assert (scorer.name, scorer.clip) == ("tiny-aesthetic", "IntentTuner-Tiny-ViT")
    images = _images()
    scores = scorer.score_images(images, batch_size=2)
    assert scores.shape == (len(images),) and scores.dtype == torch.float32
    torch.testing.assert_close(scores, predictor.score_embeddings(clip.embed_images(images)))
    one_by_one = torch.cat([scorer.score_images([image]) for image in images])
    torch.testing.assert_close(scores, one_by_one, atol=1e-4, rtol=0)


def test_a_clip_of_another_width_is_refused_with_the_fix(tmp_path, clip):
    wide = FAMILY.load(make_tiny(tmp_path, input_dim=768))
    with pytest.raises(InputError) as info:
        AestheticScorer(wide, clip)
    message = str(info.value)
    assert "needs ViT-L-14 image embeddings (768 values)" in message
    assert "IntentTuner-Tiny-ViT gives 32" in message
    assert "load ViT-L-14.openai" in message


def test_shapes_that_do_not_chain_are_reported(tiny_path):
    state = torch.load(tiny_path, weights_only=True)
    state["layers.2.weight"] = torch.zeros(128, 512)  # takes 512 values, layer 0 gives 1024
    torch.save(state, tiny_path)
    with pytest.raises(WeightsCorruptError, match="do not form its MLP"):
        FAMILY.load(tiny_path)


def test_two_outputs_are_not_a_score(tiny_path):
    state = torch.load(tiny_path, weights_only=True)
    state["layers.7.weight"], state["layers.7.bias"] = torch.zeros(2, 16), torch.zeros(2)
    torch.save(state, tiny_path)
    with pytest.raises(WeightsCorruptError, match="one score out"):
        FAMILY.load(tiny_path)


def test_pickled_python_objects_are_never_loaded(tiny_path):
    torch.save({"layers.0.weight": torch.zeros(2, 2), "note": Path("x")}, tiny_path)
    with pytest.raises(WeightsCorruptError, match="Python objects other than tensors"):
        FAMILY.load(tiny_path)


def test_another_mlp_is_not_taken_for_the_predictor(tiny_path):
    state = torch.load(tiny_path, weights_only=True)
    state["layers.8.weight"] = torch.zeros(1, 1)
    torch.save(state, tiny_path)
    with pytest.raises(WrongModelFamilyError, match="match no model family"):
        FAMILY.load(tiny_path)


@pytest.mark.parametrize(("names", "expected"), [
    (sorted(aesthetic.EXPECTED_NAMES), True),
    (sorted(aesthetic.EXPECTED_NAMES - {"layers.7.bias"}), False),
    ([*aesthetic.EXPECTED_NAMES, "layers.9.weight"], False),
    ([f"mlp.{n}" for n in aesthetic.EXPECTED_NAMES], False),
])
def test_sniff(names, expected):
    assert aesthetic.sniff(names) is expected


def test_default_entry_brings_the_clip_it_needs(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    manifest = load_manifest()
    entry = manifest.default_for("aesthetic")
    assert (entry.folder, entry.target) == ("aesthetic", "sac+logos+ava1-l14-linearMSE.pth")
    assert entry.url(entry.files[0]) == ("https://huggingface.co/trl-lib/ddpo-aesthetic-predictor"
                                         "/resolve/main/aesthetic-model.pth")
    needed = manifest.with_requirements(entry)
    assert [e.target for e in needed] == ["sac+logos+ava1-l14-linearMSE.pth",
                                          "ViT-L-14.openai.safetensors"]


def test_exercise_describes_the_scores(predictor):
    assert FAMILY.exercise(predictor).startswith("tiny-aesthetic: 4 scores of 32-value embeddings")


def test_quality_scorer_node_takes_a_clip_and_no_precision(pack, models_root, tiny_path):
    nodes = pack.NODE_CLASS_MAPPINGS
    required = nodes["IntentTunerLoadQualityScorer"].INPUT_TYPES()["required"]
    assert list(required) == ["model", "clip"]
    assert TINY_FILE in required["model"][0]
    assert required["model"][1]["default"] == "sac+logos+ava1-l14-linearMSE.pth"
    assert required["clip"][0] == "IT_IMAGE_ENCODER"
    assert "ViT-L-14.openai" in required["clip"][1]["tooltip"]
    clip_folder = models_root / "image_encoders"
    clip_widget = make_tiny_clip(clip_folder).relative_to(clip_folder).as_posix()
    clip = nodes["IntentTunerLoadImageEncoder"]().load(clip_widget, "auto")[0]

    scorer = nodes["IntentTunerLoadQualityScorer"]().load(TINY_FILE, clip)[0]

    assert nodes["IntentTunerLoadQualityScorer"].RETURN_TYPES == ("IT_QUALITY_SCORER",)
    assert scorer.score_images(_images()[:2]).shape == (2,)
    wide = make_tiny(models_root / "aesthetic" / "wide", input_dim=768)
    input_error = sys.modules[f"{pack.__name__}.intenttuner.errors"].InputError
    with pytest.raises(input_error, match="768 values"):
        nodes["IntentTunerLoadQualityScorer"]().load(f"wide/{wide.name}", clip)
