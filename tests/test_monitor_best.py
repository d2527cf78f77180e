"""The best checkpoint by intent (`monitor.best`): the combined score, the pick, the file it is
copied to, the copy a resumed run takes over (`monitor.resume`), and a whole run where the
intent score and the loss disagree."""

from __future__ import annotations

from pathlib import Path

import pytest

from intenttuner.evaluation.evaluate import EvalModels
from intenttuner.evaluation.types import EvalScores, MetricResult, Test
from intenttuner.monitor import registry, resume
from intenttuner.monitor.best import BestCopy, best_path, combined, formula, pick
from intenttuner.monitor.events import END, SAMPLE
from intenttuner.monitor.monitor import TrainingMonitor
from intenttuner.monitor.settings import MonitorSettings, MonitorSpec
from intenttuner.training import checkpoints as ckpt
from intenttuner.training import loop
from intenttuner.training.trainer import train
from tests import monitor_record_helpers as rec
from tests.evaluation_helpers import ColourClip, MarkerDetector, MeanColourEncoder, intent
from tests.training_run_helpers import fast_config, load_tiny, training_set

pytestmark = pytest.mark.usefixtures("one_thread")

WEIGHTS = {"stability": 1.0, "controllability": 1.0, "leakage": 1.0}
VINCENT = ("trigger: ohwx. Keep his face [1]. His hair colour should switch between red hair "
           "and blue hair. Never a necklace.")


def scored(stability=None, controllability=None, leakage=None) -> dict:
    """A SAMPLE ``scores`` dict: None = not applicable."""
    return {name: {"applicable": value is not None, "score": value, "concepts": {}}
            for name, value in (("stability", stability), ("controllability", controllability),
                                ("leakage", leakage))}


def test_the_combined_score_is_the_weighted_mean_of_the_applicable_metrics():
    assert combined(scored(0.8, 0.6, 0.1), WEIGHTS) == pytest.approx((0.8 + 0.6 + 0.9) / 3)
    # Leakage counts as 1 - leakage; weights scale; a weight of 0 leaves a metric out.
    assert combined(scored(0.8, 0.6, 0.1), {"stability": 2.0, "controllability": 0.0,
                                            "leakage": 1.0}) == pytest.approx((1.6 + 0.9) / 3)
    # A metric that does not apply neither helps nor hurts.
    assert combined(scored(0.8, None, 0.1), WEIGHTS) == pytest.approx((0.8 + 0.9) / 2)
    applicable_without_score = {**scored(0.5), "leakage": {"applicable": True, "score": None}}
    assert combined(applicable_without_score, WEIGHTS) == pytest.approx(0.5)
    assert combined(scored(), WEIGHTS) is None
    assert combined(scored(None, 0.7), {**WEIGHTS, "controllability": 0.0}) is None


def test_the_formula_names_what_the_score_is_made_of():
    assert formula(WEIGHTS) == ("best = (1*stability + 1*controllability + 1*(1 - leakage)) / 3 "
                                "over the applicable metrics")
    assert formula({"stability": 2.0, "leakage": 0.5}, ["stability", "leakage"]) == (
        "best = (2*stability + 0.5*(1 - leakage)) / 2.5 over the applicable metrics")
    assert "no intent score" in formula(WEIGHTS, [])


def test_the_best_point_is_the_highest_score_and_the_earliest_of_equals():
    points = [{"step": 2, "score": None}, {"step": 4, "score": 0.7}, {"step": 6, "score": 0.9},
              {"step": 8, "score": 0.9}, {"step": 10, "score": float("nan")}]
    assert pick(points)["step"] == 6
    assert pick(points[:2])["step"] == 4
    assert pick([{"step": 2, "score": None}]) is None and pick([]) is None


def test_the_best_copy_never_lands_on_a_file_it_did_not_write(tmp_path):
    loras = tmp_path / "loras"
    loras.mkdir()
    (loras / "run_best.safetensors").write_bytes(b"another run's LoRA")
    (loras / "run_best-2").mkdir()  # a run folder named so writes run_best-2.safetensors
    assert best_path(loras, "run") == loras / "run_best-3.safetensors"
    copy = BestCopy(loras, "run")
    assert copy.path == loras / "run_best-3.safetensors"
    # Someone takes the chosen name before the first copy: the copy moves on.
    (loras / "run_best-3.safetensors").write_bytes(b"appeared meanwhile")
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    first.write_bytes(b"checkpoint of step 2")
    second.write_bytes(b"checkpoint of step 4, longer")
    assert copy.update(first) == loras / "run_best-4.safetensors"
    assert copy.update(second) == loras / "run_best-4.safetensors"  # its own file: replaced
    assert (loras / "run_best-4.safetensors").read_bytes() == second.read_bytes()
    assert (loras / "run_best.safetensors").read_bytes() == b"another run's LoRA"
    assert (loras / "run_best-3.safetensors").read_bytes() == b"appeared meanwhile"
    assert sorted(p.name for p in loras.iterdir()) == [  # no temporary file left behind
        "run_best-2", "run_best-3.safetensors", "run_best-4.safetensors",
        "run_best.safetensors"]


def test_a_resumed_run_takes_over_only_its_own_best_copy(tmp_path):
    """`resume.take_over`: the best copy the earlier sample records name is adopted when it is
    this run's; gone, the best point's checkpoint is copied again; with neither, the earlier
    points are left out (and a note says why)."""
    loras, run_dir = tmp_path / "loras", tmp_path / "loras" / "run"
    run_dir.mkdir(parents=True)
    own, other = loras / "run_best.safetensors", loras / "other_best.safetensors"
    own.write_bytes(b"step 2")
    other.write_bytes(b"another run's")
    copy = BestCopy(loras, "run")
    assert not copy.adopt(other) and not copy.adopt(tmp_path / "run_best.safetensors")
    assert not copy.adopt(loras / "run_best-7.safetensors")  # no such file
    assert copy.path == loras / "run_best-2.safetensors" and not copy.written

    def write(best_path):
        best = {"step": 2, "score": 0.9, "lora_name": Path(best_path).name,
                "path": str(best_path), "reason": "r"}
        rec.write_run(run_dir, [(SAMPLE, {**rec.sample("run", 2, 0.9), "best": best}),
                                (SAMPLE, {**rec.sample("run", 4, 0.5), "best": best}),
                                (SAMPLE, rec.sample("run", 6, 0.99))], pngs=False)

    write(own)
    earlier = resume.take_over(run_dir, 5, BestCopy(loras, "run"))  # step 6 is after it
    assert [p["step"] for p in earlier.points] == [2, 4] and earlier.best["step"] == 2
    assert earlier.path == own and not earlier.note
    (run_dir / "metrics.jsonl").unlink()
    write(other)  # records naming another run's file: not taken over, the checkpoint is
    (run_dir / "run-step000002.safetensors").write_bytes(b"checkpoint 2")
    earlier = resume.take_over(run_dir, 5, BestCopy(loras, "run"))
    assert earlier.path == loras / "run_best-2.safetensors" and earlier.best["step"] == 2
    assert earlier.path.read_bytes() == b"checkpoint 2" and other.read_bytes() == b"another run's"
    (run_dir / "run-step000002.safetensors").unlink()
    earlier = resume.take_over(run_dir, 5, BestCopy(loras, "run"))
    assert earlier.points == [] and earlier.best is None and "step 2" in earlier.note


def peaking_scores(run_dir, run: str, by_step: dict[int, float], copies: dict[int, bytes]):
    """A score_fn: stability ``by_step[step]`` (leakage 0.2 throughout, controllability not
    applicable); it keeps the bytes of each step's checkpoint as they were when scored."""

    def score(generated, label: str) -> EvalScores:
        step = int(label.split()[-1])
        path = ckpt.checkpoint_path(run_dir, run, step)
        if path.is_file():
            copies[step] = path.read_bytes()
        result = EvalScores(label=label)
        for metric, value in ((Test.STABILITY, by_step[step]), (Test.LEAKAGE, 0.2)):
            result = result.with_result(MetricResult(metric=metric, applicable=True,
                                                     score=value))
        return result.with_result(MetricResult.not_applicable(Test.CONTROLLABILITY, "test"))

    return score


def test_the_best_checkpoint_is_chosen_by_intent_when_loss_and_score_disagree(
        models_root, tmp_path, monkeypatch):
    """The loss falls at every step, so the last checkpoint has the lowest loss; the intent
    score peaks at step 4. The best is step 4: <run>_best.safetensors is byte for byte that
    step's checkpoint, though keep_checkpoints=1 has pruned it from the run folder since, and
    the name another file holds already is left alone."""
    base = load_tiny(tmp_path / "base")
    items = training_set(tmp_path)
    real_step = loop.train_step
    # The reported loss falls 10 / step (training itself is unchanged).
    monkeypatch.setattr(loop, "train_step", lambda ctx: real_step(ctx) * 0 + 10.0 / (ctx.step))
    loras = models_root / "loras"
    loras.mkdir()
    (loras / "peak_best.safetensors").write_bytes(b"another run's LoRA")
    copies: dict[int, bytes] = {}
    score_fn = peaking_scores(loras / "peak", "peak", {2: 0.3, 4: 0.9, 6: 0.5, 8: 0.4}, copies)
    spec = MonitorSpec(intent=intent(VINCENT, [("red", (10, 10, 50, 50))]),
                       models=EvalModels(MarkerDetector(), MeanColourEncoder(), ColourClip()),
                       settings=MonitorSettings(sample_every_steps=2, sample_steps=1,
                                                sample_size=32))
    events = []
    monitor = TrainingMonitor(spec, emit=lambda e, d: events.append((e, d)), score_fn=score_fn)
    result = train(fast_config(items, max_train_steps=8, run_name="peak", save_every_steps=2,
                               keep_checkpoints=1), base, items, observer=monitor)
    assert result.losses == sorted(result.losses, reverse=True) and len(set(result.losses)) == 8
    samples = [d for e, d in events if e == SAMPLE]
    assert [(s["step"], s["final"]) for s in samples] == [(2, False), (4, False), (6, False),
                                                          (8, True)]
    assert [s["score"] for s in samples] == pytest.approx([0.55, 0.85, 0.65, 0.6])
    best = monitor.best
    assert best["step"] == 4 and best["score"] == pytest.approx(0.85)
    assert best["lora_name"] == "peak_best-2.safetensors"
    assert best["path"] == str(loras / "peak_best-2.safetensors")
    assert "highest combined score" in best["reason"] and "stability" in best["reason"]
    assert (loras / "peak_best-2.safetensors").read_bytes() == copies[4]
    assert not ckpt.checkpoint_path(loras / "peak", "peak", 4).exists()  # pruned meanwhile
    assert (loras / "peak_best.safetensors").read_bytes() == b"another run's LoRA"
    (end,) = [d for e, d in events if e == END]
    assert end["best"] == best and end["status"] == "finished"
    assert registry.get("peak") is None
