"""``python -m intenttuner train CONFIG``: a run from a config file, and the messages for
configs that cannot work (each names the file or the setting and says what to do)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from intenttuner.__main__ import main
from tests.conftest import PACK_DIR
from tests.training_helpers import make_kohya_set


@pytest.fixture
def config_file(tmp_path, models_root):
    from intenttuner.tiny.base_model import make_tiny_sd15_checkpoint
    from intenttuner.training.config import make_config

    checkpoint = make_tiny_sd15_checkpoint(models_root / "checkpoints")
    training_set = make_kohya_set(tmp_path / "set", count=2)
    config = make_config(base_model=str(checkpoint), training_set=str(training_set),
                         run_name="cli", rank=4, alpha=4.0, resolution=64, max_train_steps=50,
                         save_every_steps=2, gradient_checkpointing=False)
    return config.save(tmp_path / "run")


def train(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["train", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_config_file_trains_and_says_where_the_lora_is(config_file, models_root, capsys):
    code, out, err = train(capsys, config_file, "--models-dir", models_root, "--steps", "3")
    assert code == 0, err
    loras = models_root / "loras"
    assert f"LoRA: {loras / 'cli.safetensors'}" in out and (loras / "cli.safetensors").is_file()
    assert "final loss: " in out and "after 3 steps (1 process(es))" in out
    saved = json.loads((loras / "cli" / "config.json").read_text())
    assert saved["max_train_steps"] == 3  # --steps replaces the file's 50, in the copy saved
    # The run folder instead of its config.json, resumed from its step-2 checkpoint: the run
    # has its final file, so the continuation is a new run beside it.
    checkpoint = loras / "cli" / "cli-step000002.safetensors"
    code, out, err = train(capsys, config_file.parent, "--models-dir", models_root,
                           "--resume", checkpoint, "--steps", "4")
    assert code == 0, err
    assert f"LoRA: {loras / 'cli-2.safetensors'}" in out and "after 4 steps" in out
    # Without --monitor-every the run is observed by its loss all the same: its folder gets
    # the start and end records (the panel's run list) and TensorBoard; nothing more is said.
    assert "Monitor" not in out and "best LoRA" not in out
    for name, records in (("cli", ["start", 1, 2, 3, "end"]),
                          ("cli-2", [1, 2, "start", 3, 4, "end"])):
        lines = (loras / name / "metrics.jsonl").read_text().splitlines()
        written = [json.loads(line) for line in lines]
        assert [r.get("event", r.get("step")) for r in written] == records
        start = next(r for r in written if r.get("event") == "start")
        assert not start["monitor"]["enabled"] and written[-1]["status"] == "finished"
        assert (start["tensorboard"] is None) == (not (loras / name / "tensorboard").is_dir())


def test_the_module_runs_as_a_program_with_exit_codes(tmp_path):
    missing = tmp_path / "nowhere" / "config.json"
    out = subprocess.run([sys.executable, "-m", "intenttuner", "train", str(missing)],
                         cwd=PACK_DIR, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert out.stderr.startswith(f"error: No training config at {missing}.")
    assert "models/loras/<run>/config.json" in out.stderr


@pytest.mark.parametrize("text, message", [
    ("{not json", "cannot be read"),
    ("[1, 2]", "must hold a JSON object of settings"),
    ('{"base_model": "a.safetensors"}', "setting training_set: Field required"),
    ('{"base_model": "a", "training_set": "b", "rank": 0}',
     "setting rank (got 0): Input should be greater than or equal to 1"),
    ('{"base_model": "a", "training_set": "b", "resolution": 500}',
     "resolution 500 is not a multiple of 64; use e.g. 512"),
    ('{"base_model": "a", "training_set": "b", "learning_rate": "fast"}',
     "setting learning_rate (got 'fast')"),
    ('{"base_model": "a", "training_set": "b", "ranks": 8}', "setting ranks"),
])
def test_a_bad_config_is_named_with_what_is_wrong(tmp_path, capsys, text, message):
    path = tmp_path / "config.json"
    path.write_text(text)
    code, out, err = train(capsys, path)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and str(path) in err and message in err, err


def test_bad_command_line_values_are_named(config_file, models_root, capsys):
    code, _, err = train(capsys, config_file, "--steps", "0")
    assert code == 1 and "training setting max_train_steps (got 0)" in err, err
    code, _, err = train(capsys, config_file, "--resume", config_file.parent / "nope.safetensors")
    assert code == 1 and "--resume" in err and "no such checkpoint" in err, err
    with pytest.raises(SystemExit):  # argparse: not a number
        main(["train", str(config_file), "--steps", "many"])


def test_a_rank_that_is_not_a_number_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RANK", "first")
    code, out, err = train(capsys, tmp_path / "config.json")
    assert code == 1 and out == ""
    assert err.startswith("error: The environment variable RANK is 'first', not a whole "
                          "number"), err
