"""Reward model family: the tiny random model through the real loading code, its scores against
the recipe written out by hand, the encoder check (another encoder refused naming both, the
same one accepted), saving without overwriting, refusals of damaged files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from intenttuner import loading
from intenttuner.errors import InputError, WeightsCorruptError
from intenttuner.families import reward_model
from intenttuner.families.image_encoder import FAMILY as CLIP_FAMILY
from intenttuner.families.reward_model import FAMILY, RewardMLP, encoder_signature
from intenttuner.reward.model_file import save_reward_model
from intenttuner.tiny import TINY_BUILDERS
from intenttuner.tiny.image_encoder import make_tiny as make_tiny_clip
from intenttuner.tiny.reward_model import TINY_FILE, make_tiny
from intenttuner.weights.safe_load import read_safetensors_header


@pytest.fixture(scope="module")
def tiny_template(tmp_path_factory, clip):
    return make_tiny(tmp_path_factory.mktemp("reward"), encoder=clip)


@pytest.fixture
def tiny_path(models_root, tiny_template):
    folder = models_root / "reward_models"
    folder.mkdir()
    return Path(shutil.copy(tiny_template, folder / TINY_FILE))


@pytest.fixture
def model(tiny_path):
    return loading.load_model("reward_model", TINY_FILE)


def _recipe(state: dict[str, torch.Tensor], images: torch.Tensor, texts: torch.Tensor):
    """The model by hand: normalise, standardise, concat(img, txt, img*txt), ReLU MLP."""
    p = reward_model.PREFIX
    img = nn_norm(images)
    txt = nn_norm(texts)
    img = (img - state[p + "image_mean"]) / state[p + "image_std"]
    txt = (txt - state[p + "text_mean"]) / state[p + "text_std"]
    x = torch.cat([img, txt, img * txt], dim=-1)
    for i in (0, 3):
        x = torch.relu(x @ state[f"{p}layers.{i}.weight"].T + state[f"{p}layers.{i}.bias"])
    x = x @ state[f"{p}layers.6.weight"].T + state[f"{p}layers.6.bias"]
    return torch.sigmoid(x[:, 0])


def nn_norm(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def test_tiny_builder_is_registered_and_records_the_encoder(tiny_path, clip):
    assert TINY_BUILDERS["reward_model"] is make_tiny
    _, metadata = read_safetensors_header(tiny_path)
    assert metadata["format"] == reward_model.FORMAT
    signature = json.loads(metadata["encoder"])
    assert signature == encoder_signature(clip)
    assert (signature["arch"], signature["tag"], signature["embed_dim"]) == (
        "IntentTuner-Tiny-ViT", "random", 32)
    assert len(signature["probe"]) == reward_model.PROBE_VALUES


def test_scores_follow_the_recipe(model, tiny_path):
    assert (model.name, model.embed_dim) == ("tiny-reward", 32)
    # a non-trivial standardisation, so the recipe checks it is applied
    state = load_file(str(tiny_path))
    generator = torch.Generator().manual_seed(1)
    for name in ("image_mean", "text_mean"):
        state[reward_model.PREFIX + name] = torch.randn(32, generator=generator) * 0.1
    for name in ("image_std", "text_std"):
        state[reward_model.PREFIX + name] = torch.rand(32, generator=generator) + 0.5
    _, metadata = read_safetensors_header(tiny_path)
    save_file(state, str(tiny_path), metadata)
    model = FAMILY.load(tiny_path)
    images, texts = torch.randn(2, 6, 32, generator=generator)
    scores = model.score_embeddings(images, texts)
    assert scores.shape == (6,) and scores.dtype == torch.float32
    torch.testing.assert_close(scores, _recipe(state, images, texts), atol=1e-5, rtol=0)
    assert ((scores > 0) & (scores < 1)).all()
    torch.testing.assert_close(model.score_embeddings(images * 3, texts), scores)
    assert len(set(scores.tolist())) == 6


def test_bad_embeddings_are_refused(model):
    assert model.score_embeddings(torch.zeros(0, 32), torch.zeros(0, 32)).shape == (0,)
    with pytest.raises(InputError, match=r"\(N, 32\) image embeddings .*got shape \(2, 512\)"):
        model.score_embeddings(torch.zeros(2, 512), torch.zeros(2, 32))
    with pytest.raises(InputError, match="got 2 image and 3 text embeddings"):
        model.score_embeddings(torch.zeros(2, 32), torch.zeros(3, 32))


def test_the_encoder_it_was_trained_with_is_accepted(model, clip):
    model.check_encoder(clip)  # no error


def test_another_architecture_is_refused_naming_both(model, clip, monkeypatch):
    monkeypatch.setattr(clip, "arch", "ViT-B-32")
    monkeypatch.setattr(clip, "tag", "laion2b_s34b_b79k")
    with pytest.raises(InputError) as info:
        model.check_encoder(clip)
    message = str(info.value)
    assert "trained with image encoder IntentTuner-Tiny-ViT.random (32 values)" in message
    assert "ViT-B-32.laion2b_s34b_b79k" in message
    assert "Load Image Encoder" in message


def test_the_same_architecture_with_other_weights_is_refused(model, tmp_path):
    other = CLIP_FAMILY.load(make_tiny_clip(tmp_path, seed=1))  # same name, other weights
    with pytest.raises(InputError, match="same architecture and tag but other weights"):
        model.check_encoder(other)


def test_save_never_overwrites_and_numbers_taken_names(models_root, clip):
    mlp = RewardMLP(32, 8)
    metadata = {"encoder": json.dumps(encoder_signature(clip))}
    first = save_reward_model("my model", mlp, metadata)
    second = save_reward_model("my model", mlp, metadata)
    assert first == models_root / "reward_models" / "my_model.safetensors"
    assert second.name == "my_model_00002.safetensors"
    assert FAMILY.load(second).name == "my_model_00002"
    with pytest.raises(InputError, match="already exists"):
        save_reward_model(first, mlp, metadata)
    with pytest.raises(InputError, match="no letters or digits"):
        save_reward_model("???", mlp, metadata)
    assert sorted(p.name for p in first.parent.iterdir()) == [first.name, second.name]


def test_a_file_without_our_metadata_is_refused(tiny_path):
    save_file(load_file(str(tiny_path)), str(tiny_path), {"format": "something-else"})
    with pytest.raises(WeightsCorruptError, match="not its metadata"):
        FAMILY.load(tiny_path)


def test_a_file_without_the_encoder_is_refused(tiny_path):
    _, metadata = read_safetensors_header(tiny_path)
    del metadata["encoder"]
    save_file(load_file(str(tiny_path)), str(tiny_path), metadata)
    with pytest.raises(WeightsCorruptError, match="does not record the image encoder"):
        FAMILY.load(tiny_path)


def test_shapes_that_do_not_chain_are_reported(tiny_path):
    state = load_file(str(tiny_path))
    _, metadata = read_safetensors_header(tiny_path)
    state[reward_model.PREFIX + "layers.3.weight"] = torch.zeros(16, 7)
    save_file(state, str(tiny_path), metadata)
    with pytest.raises(WeightsCorruptError, match="do not form a reward model"):
        FAMILY.load(tiny_path)


@pytest.mark.parametrize(("names", "expected"), [
    (sorted(reward_model.EXPECTED_NAMES), True),
    (sorted(reward_model.EXPECTED_NAMES - {"reward_mlp.text_std"}), False),
    ([n.removeprefix("reward_mlp.") for n in reward_model.EXPECTED_NAMES], False),
])
def test_sniff(names, expected):
    assert reward_model.sniff(names) is expected


def test_exercise_describes_the_scores(model):
    assert FAMILY.exercise(model).startswith("tiny-reward: 4 pairs of 32-value embeddings, "
                                             "P(good) 0.")
