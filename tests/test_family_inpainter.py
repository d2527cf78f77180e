"""LaMa through the family loader: the same model as spandrel's own loader gives, every tensor
layout found in the wild, and clear refusals (TorchScript, 16-bit, incomplete files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from intenttuner.errors import InputError, WeightsCorruptError
from intenttuner.families import guess_family
from intenttuner.families.inpainter import FAMILY, TORCHSCRIPT_HINT, is_torchscript
from intenttuner.tiny.inpainter import make_random_lama, random_lama_state


@pytest.fixture(scope="module")
def state():
    return random_lama_state(seed=1)


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((1, 3, 48, 64), dtype=np.float32))
    mask = torch.zeros(1, 1, 48, 64)
    mask[:, :, 10:30, 20:40] = 1
    return image, mask


def test_matches_spandrels_own_loader(tmp_path, inputs):
    from spandrel import ModelLoader

    path = make_random_lama(tmp_path)
    ours = FAMILY.load(path)
    reference = ModelLoader().load_from_file(str(path)).eval()
    assert reference.architecture.id == "LaMa"
    image, mask = inputs
    with torch.inference_mode():
        expected = reference(image, mask)
    torch.testing.assert_close(ours.inpaint(image, mask), expected)
    assert guess_family(random_lama_state()) is FAMILY


@pytest.mark.parametrize(("prefix", "suffix", "wrap"), [
    ("generator.model.", ".pth", False),  # the TorchScript archive's / training names
    ("model.", ".safetensors", False),  # conversions that strip the generator prefix
    ("generator.model.", ".ckpt", True),  # the Lightning training checkpoint, best.ckpt
])
def test_every_tensor_layout_loads_to_the_same_model(tmp_path, state, inputs, prefix, suffix,
                                                     wrap):
    from safetensors.torch import save_file

    renamed = {prefix + k.removeprefix("model.model."): v for k, v in state.items()}
    renamed["discriminator.model.0.weight"] = torch.zeros(4, 4)  # training extras are dropped
    path = tmp_path / f"lama{suffix}"
    if suffix == ".safetensors":
        save_file(renamed, str(path))
    else:
        torch.save({"state_dict": renamed, "epoch": 40} if wrap else renamed, path)
    reference_path = tmp_path / "reference.safetensors"
    save_file(state, str(reference_path))

    image, mask = inputs
    torch.testing.assert_close(FAMILY.load(path).inpaint(image, mask),
                               FAMILY.load(reference_path).inpaint(image, mask))


def test_torchscript_big_lama_pt_is_refused_with_the_fix(tmp_path):
    class Tiny(torch.nn.Module):
        def forward(self, x):
            return x * 2

    path = tmp_path / "big-lama.pt"
    torch.jit.save(torch.jit.trace(Tiny(), torch.zeros(1)), str(path))
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(1)}, plain)
    assert is_torchscript(path) and not is_torchscript(plain)

    with pytest.raises(WeightsCorruptError) as info:
        FAMILY.load(path)
    assert "TorchScript" in str(info.value) and TORCHSCRIPT_HINT in str(info.value)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_16_bit_precision_is_refused(tmp_path, precision):
    with pytest.raises(InputError, match="fp32 only"):
        FAMILY.load(tmp_path / "big-lama.safetensors", precision=precision)


def test_an_incomplete_generator_is_reported(tmp_path, state):
    from safetensors.torch import save_file

    partial = dict(state)
    partial.pop("model.model.5.conv1.ffc.convl2l.weight")
    path = tmp_path / "partial.safetensors"
    save_file(partial, str(path))
    with pytest.raises(WeightsCorruptError, match="not a complete big-lama generator"):
        FAMILY.load(path)


def test_batches_need_sides_in_multiples_of_8(tmp_path):
    model = FAMILY.load(make_random_lama(tmp_path))
    with pytest.raises(InputError, match="multiples of 8"):
        model.inpaint(torch.zeros(1, 3, 20, 24), torch.zeros(1, 1, 20, 24))


def test_loader_node_offers_only_the_precisions_lama_runs_in_and_lists_best_ckpt(
        pack, models_root, state):
    folder = models_root / "inpaint"
    folder.mkdir()
    lightning = {"generator.model." + k.removeprefix("model.model."): v for k, v in state.items()}
    torch.save({"state_dict": lightning, "epoch": 40}, folder / "best.ckpt")
    loader = pack.NODE_CLASS_MAPPINGS["IntentTunerLoadInpainter"]
    required = loader.INPUT_TYPES()["required"]
    options, spec = required["precision"]
    assert options == ["auto", "fp32"] and spec["default"] == "auto"
    assert "fp32 only" in spec["tooltip"] and "fp16" not in spec["tooltip"]
    assert "best.ckpt" in required["model"][0]
    for precision in options:  # every precision offered loads
        assert loader().load("best.ckpt", precision)[0].dtype == torch.float32
    # the other loaders keep their 16-bit choices
    other = pack.NODE_CLASS_MAPPINGS["IntentTunerLoadSegmenter"].INPUT_TYPES()["required"]
    assert "fp16" in other["precision"][0]
