"""RunSettings: the nodes' defaults, SECTION.NAME=VALUE read as each field's type, and every bad
key or value refused by name before a run starts."""

from __future__ import annotations

import pytest

from intenttuner.augment.plan import CropSettings
from intenttuner.detection.detect import DetectSettings
from intenttuner.errors import InputError
from intenttuner.jobs.settings import SMOKE_VALUES, ModelChoices, RunSettings, smoke_settings
from intenttuner.monitor.settings import MonitorSettings
from intenttuner.training.config import TrainConfig


def test_the_defaults_are_the_stages_own():
    settings = RunSettings()
    assert settings.detect == DetectSettings() and settings.crop == CropSettings()
    assert settings.monitor == MonitorSettings()
    config = settings.train_config(base_model="b", training_set="t")
    assert config.rank == TrainConfig.model_fields["rank"].default
    assert settings.generate.steps == MonitorSettings().sample_steps


def test_values_are_read_as_the_fields_types():
    settings = RunSettings().with_values([
        "detect.box_threshold=0.2", "detect.max_per_phrase=3", "images.recursive=yes",
        "captions.max_new_tokens=null", "captions.detail=short", "inpaint_backend=classical",
        "models.segmenter=none", "models.detector=null", "train.rank=8", "train.flip=true",
        "train.text_encoder_lr=none"])
    assert settings.detect.box_threshold == 0.2 and settings.detect.max_per_phrase == 3
    assert settings.images.recursive is True and settings.captions.max_new_tokens is None
    assert settings.captions.detail == "short" and settings.inpaint_backend == "classical"
    # "none" is a model's name here (leave the segmenter out); "null" is its default
    assert settings.models.segmenter == "none" and settings.models.detector is None
    config = settings.train_config(base_model="b", training_set="t")
    assert (config.rank, config.flip, config.text_encoder_lr) == (8, True, None)
    assert RunSettings().detect.box_threshold != 0.2  # a copy: the original is unchanged


@pytest.mark.parametrize(("value", "message"), [
    ("box_threshold=0.3", "write SECTION.NAME=VALUE"),
    ("detect.box_threshold", "write SECTION.NAME=VALUE"),
    ("nosuch.value=1", "'nosuch' is not a settings section"),
    ("llm.model=x", "'llm' is not a settings section"),
    ("detect.nosuch=1", "detect.nosuch is not a setting of detect"),
    ("detect.max_per_phrase=many", "detect.max_per_phrase='many': the value must be a whole number"),
    ("images.recursive=maybe", "the value must be true or false"),
    ("detect.box_threshold=1.5", "detect settings: box_threshold must be between 0 and 1"),
    ("inpaint_backend=magic", "inpaint_backend must be one of auto"),
    ("detect=1", "'detect' is not a single setting"),
    ("train.nosuch=1", "train.nosuch is not a LoRA Train setting"),
    ("train.rank=0", "training setting rank"),
    ("train.output_dir=/tmp/x", "train.output_dir is set by the pipeline"),
    ("generate.size=30", "generate: size 30 must be a multiple of 8"),
])
def test_bad_values_are_refused_by_name(value, message):
    with pytest.raises(InputError) as error:
        RunSettings().with_values([value])
    assert message in str(error.value), str(error.value)


def test_the_smoke_settings_are_valid_and_small():
    settings = smoke_settings(ModelChoices(detector="tiny"))
    assert settings.models.detector == "tiny" and settings.models.inpainter == "none"
    config = settings.train_config(base_model="b", training_set="t")
    assert config.max_train_steps <= 4 and config.resolution == 64
    assert settings.detect.box_threshold == 0 and settings.plan.prompts_per_test == 1
    assert len(SMOKE_VALUES) == len(set(v.split("=")[0] for v in SMOKE_VALUES))


def test_settings_are_json_ready():
    import json

    data = RunSettings().with_values(["train.rank=8"]).as_dict()
    assert json.loads(json.dumps(data))["train"] == {"rank": 8}
    assert data["detect"]["box_threshold"] == DetectSettings().box_threshold
