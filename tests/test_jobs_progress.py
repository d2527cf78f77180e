"""A headless run's progress: one bar per stage named after it, the library's own progress
drawn on it, each stage timed, a failing stage marked so."""

from __future__ import annotations

import io

import pytest

from intenttuner.jobs.progress import StageRuntime, Stages


def test_each_stage_has_its_bar_and_the_library_progress_fills_it(monkeypatch):
    import tqdm.auto

    stream = io.StringIO()
    made = []

    class Recorded(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "file": stream})
            made.append(self)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recorded)
    runtime = StageRuntime()
    with Stages(["load", "detect"], runtime, show=True) as stages:
        with stages("load"):
            with runtime.progress(3, "Loading images") as bar:
                bar.update(2)
                bar.update(1)
        with pytest.raises(ValueError), stages("detect"):
            runtime.progress(5, "Detecting").update(1)
            raise ValueError("boom")
    assert [bar.desc for bar in made] == ["[1/2] load", "[2/2] detect"]
    assert (made[0].n, made[0].total) == (3, 3) and (made[1].n, made[1].total) == (1, 5)
    text = stream.getvalue()
    assert "Loading images" in text and "done in" in text and "failed after" in text
    assert list(stages.seconds) == ["load", "detect"] and runtime.bar is None


def test_without_progress_nothing_is_drawn(capsys):
    runtime = StageRuntime()
    with Stages(["load"], runtime, show=False) as stages, stages("load"):
        assert runtime.bar is None
        with runtime.progress(2, "Loading") as bar:
            bar.update(2)
        assert bar.current == 2
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    assert stages.seconds["load"] >= 0
