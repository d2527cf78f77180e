"""LoRA Train and Apply Trained LoRA as ComfyUI calls them (the pack loaded as ComfyUI loads
it), without ComfyUI itself: schemas, and a short run on a tiny SD 1.5 model. (Inside the real
ComfyUI: tests/test_training_comfyui.py.)"""

from __future__ import annotations

import math
import typing

import pytest
import torch

from tests.dataset_helpers import module
from tests.training_helpers import make_kohya_set

# TrainConfig settings that are not widgets: what is trained on comes in through sockets, and
# the rest are expert settings a config.json may still set (init_lora: the LoRA a run starts
# from, which Reward Fine-Tune sets).
NOT_WIDGETS = {"version", "base_model", "training_set", "output_dir", "weight_decay",
               "max_grad_norm", "cache_latents_to_disk", "init_lora"}


def node(pack, name):
    return pack.NODE_CLASS_MAPPINGS[f"IntentTuner{name}"]


def widgets(pack) -> dict[str, tuple]:
    schema = node(pack, "LoRATrain").INPUT_TYPES()
    return {**schema["required"], **schema["optional"]}


def config_class(pack):
    return module(f"{pack.__name__}.intenttuner", "training.config").TrainConfig


@pytest.mark.parametrize("name", ["LoRATrain", "ApplyTrainedLoRA"])
def test_every_input_has_a_tooltip_and_the_category_is_training(pack, name):
    cls = node(pack, name)
    schema = cls.INPUT_TYPES()
    for kind, section in schema.items():
        for input_name, spec in section.items():
            # hidden inputs (the node's id) are filled in by ComfyUI, never shown
            assert kind == "hidden" or spec[1].get("tooltip"), input_name
    assert cls.CATEGORY == "IntentTuner/Training"
    assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES)


def test_the_widgets_are_the_configs_settings_with_its_defaults(pack):
    fields = config_class(pack).model_fields
    inputs = widgets(pack)
    settings = set(inputs) - {"training_set", "base_model", "intent", "monitor"}
    assert settings == set(fields) - NOT_WIDGETS - {"intent"}
    for name in settings:
        kind, options = inputs[name]
        expected = fields[name].default
        if name == "text_encoder_lr":  # None in the config: "half the learning rate", 0 here
            assert expected is None and options["default"] == 0.0
            continue
        assert options["default"] == expected, name
        if isinstance(kind, list):  # a combo lists exactly the values the config accepts
            assert kind == list(typing.get_args(fields[name].annotation)), name
    assert inputs["rank"][1]["min"] == 1 and inputs["resolution"][1]["step"] == 64
    assert inputs["training_set"][0] == "TRAINING_SET"
    assert inputs["base_model"][0] == "IT_BASE_MODEL"
    assert node(pack, "LoRATrain").RETURN_TYPES[:4] == ("IT_LORA", "STRING", "IMAGE", "STRING")
    assert "IT_LORA" in node(pack, "ApplyTrainedLoRA").INPUT_TYPES()["required"]["lora"]
    assert {p.module for p in node(pack, "LoRATrain").requires()} == {
        "diffusers", "transformers", "peft"}


def settings(pack, **overrides) -> dict:
    """Every widget at its default, as ComfyUI passes them, with ``overrides``."""
    values = {name: options.get("default") for name, (_, options) in widgets(pack).items()
              if name not in ("training_set", "base_model", "intent", "monitor")}
    return {**values, **overrides}


@pytest.fixture
def inputs(pack, tmp_path, models_root):
    return graph_inputs(pack, tmp_path, models_root)


def graph_inputs(pack, tmp_path, models_root):
    """(library package name, a tiny SD 1.5 loaded as the graph's loader does, a 2-image set)."""
    lib = f"{pack.__name__}.intenttuner"
    checkpoint = module(lib, "tiny.base_model").make_tiny_sd15_checkpoint(
        models_root / "checkpoints")
    with torch.inference_mode():  # as ComfyUI runs every node, the loader included
        base_model = module(lib, "families.base_model").load_base_model(checkpoint,
                                                                         precision="fp32")
    training_set = module(lib, "dataset.kohya_read").read_training_set(
        make_kohya_set(tmp_path / "pia", count=2))
    return lib, base_model, training_set


def test_lora_train_runs_and_returns_the_lora_its_name_and_a_chart(pack, inputs, models_root,
                                                                  monkeypatch):
    lib, base_model, training_set = inputs
    runtime = module(lib, "runtime").get_runtime()
    events = []
    monkeypatch.setattr(runtime, "send_event", lambda event, data: events.append((event, data)))
    with torch.inference_mode():  # ComfyUI's executor runs the node so
        out = node(pack, "LoRATrain")().train(
            training_set=training_set, base_model=base_model,
            **settings(pack, rank=4, alpha=2.0, resolution=64, max_train_steps=3,
                       gradient_checkpointing=False))
    lora, lora_name, chart, report = out["result"][:4]
    assert lora_name == "pia.safetensors"  # the training set's name; as LoraLoader lists it
    assert lora.lora_path == models_root / "loras" / lora_name and lora.lora_path.is_file()
    assert (lora.run_dir / "config.json").is_file() and lora.steps == 3
    assert chart.ndim == 4 and chart.shape[0] == 1 and chart.shape[-1] == 3
    assert float(chart.min()) < 0.5 < float(chart.max())  # a drawn chart, not a blank image
    assert "Trained pia: 3 step(s)." in report and "python -m intenttuner train" in report
    assert out["ui"]["text"] == [report]
    steps = [data for event, data in events if event == "intenttuner.train.step"]
    assert [d["step"] for d in steps] == [1, 2, 3]
    assert all(d["total_steps"] == 3 and d["loss"] == pytest.approx(loss)
               for d, loss in zip(steps, lora.losses, strict=True))
    # The graph's base model is left as it was: no adapters remain on it.
    assert not any("lora_" in name for name, _ in base_model.unet.named_parameters())


def test_a_setting_that_cannot_work_is_named_before_training(pack, inputs):
    lib, base_model, training_set = inputs
    errors = module(lib, "errors")
    with pytest.raises(errors.InputError, match="resolution 100 is not a multiple of 64"):
        node(pack, "LoRATrain")().train(training_set=training_set, base_model=base_model,
                                        **settings(pack, resolution=100))
    with pytest.raises(errors.InputError, match="lr_warmup_steps"):
        node(pack, "LoRATrain")().train(training_set=training_set, base_model=base_model,
                                        **settings(pack, lr_warmup_steps=5, max_train_steps=5))


def test_apply_at_zero_strength_returns_model_and_clip_untouched(pack):
    model, clip = object(), object()
    assert node(pack, "ApplyTrainedLoRA")().apply(model, clip, None, 0.0, 0.0) == (model, clip)


def test_the_loss_chart_draws_what_it_gets():
    import types

    import numpy as np

    from intenttuner.training.report import loss_chart, smooth, step_event

    assert smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])  # no pull towards 0
    blue = [np.asarray(loss_chart(values, "run")).reshape(-1, 3) for values in
            ([], [0.5], [0.3, float("nan"), 0.2, 0.1])]
    assert [int(((b[:, 2] > 150) & (b[:, 0] < 100)).sum() > 0) for b in blue] == [0, 1, 1]
    info = types.SimpleNamespace(step=2, loss=float("inf"), tensors=[1])
    assert step_event(info) == {"step": 2, "loss": None}  # JSON-safe, plain values only


@pytest.mark.parametrize("values", [[0.1, math.nextafter(0.1, 1.0)], [0.1, 0.1], [1e-9],
                                    [-3.0, 1e9]])
def test_the_loss_chart_has_ticks_for_any_range(values):
    """(Near-)equal losses once made the tick loop add a step too small to move a float."""
    import numpy as np

    from intenttuner.training.report import loss_chart

    grey = (np.asarray(loss_chart(values, "run")) == (228, 228, 228)).all(axis=-1)
    assert grey.sum(axis=1).max() > 300  # at least one grid line across the plot


def test_the_summary_names_the_step_of_the_lowest_loss():
    import types

    from intenttuner.training.report import run_summary

    result = types.SimpleNamespace(run_name="pia", steps=5, run_dir="/runs/pia", checkpoints=[],
                                   warnings=[], losses=[float("nan"), float("nan"), 0.3, 0.1, 0.2])
    assert "lowest 0.1 at step 4." in run_summary(result, "pia.safetensors")
