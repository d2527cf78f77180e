"""What a batch keeps of its runs: the scores read from the Evaluation Report node's UI output
(the real node's), the --resume check of an earlier run folder, and the summary files."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest
from PIL import Image

from intenttuner.batch.results import (
    FAILED,
    SKIPPED,
    SUCCESS,
    RunRecord,
    finished_record,
    flatten_scores,
    save_record,
    start_run,
)
from intenttuner.batch.summary import write_summary
from intenttuner.evaluation.preview import BAD
from tests.batch_fake_server import report_of, workflow


def test_the_report_node_hands_its_scores_to_the_history(pack, models_root):
    """The real Evaluation Report node's UI output carries the report as a dict, and the batch
    reads it into {label: {metric: score}} (None where a metric does not apply)."""
    types = sys.modules[f"{pack.__name__}.intenttuner.evaluation.types"]  # the nodes' copy
    Test, Result = types.Test, types.MetricResult
    intent = types.EvalScores(label="intent LoRA", results={
        "stability": Result(metric=Test.STABILITY, applicable=True, score=0.75),
        "leakage": Result.not_applicable(Test.LEAKAGE, "nothing to delete")})
    plain = types.EvalScores(label="plain LoRA", results={
        "controllability": Result(metric=Test.CONTROLLABILITY, applicable=True, score=0.5)})
    out = pack.NODE_CLASS_MAPPINGS["IntentTunerEvaluationReport"]().report(intent, "t",
                                                                            run_2=plain)
    (report,) = out["ui"]["it_scores"]
    assert report == json.loads(out["result"][1])  # the node's JSON output, as a dict
    json.dumps(out["ui"])  # the history is JSON
    assert flatten_scores({"9": out["ui"]}) == {
        "intent LoRA": {"stability": 0.75, "controllability": None, "leakage": None},
        "plain LoRA": {"stability": None, "controllability": 0.5, "leakage": None}}


def test_labels_of_two_report_nodes_are_told_apart():
    ui = {"it_scores": [report_of({"label": "lora", "stability": 0.5})]}
    other = {"it_scores": [report_of({"label": "lora", "stability": 0.9,
                                      "measure_leakage": True})]}
    assert flatten_scores({"4": ui, "7": other, "2": {"images": []}}) == {
        "lora": {"stability": 0.5, "controllability": None, "leakage": None},
        "lora (node 7)": {"stability": 0.9, "controllability": None, "leakage": 0.25}}


def test_resume_keeps_only_a_success_with_the_same_prompt(tmp_path):
    prompt = workflow()
    start_run(tmp_path, "run-01", prompt)
    save_record(tmp_path, RunRecord("run-01", {"1.width": "8"}, status=SUCCESS, seconds=2.0,
                                    scores={"lora": {"stability": 0.5}}))
    kept = finished_record(tmp_path, "run-01", prompt)
    assert kept.status == SKIPPED and kept.scores == {"lora": {"stability": 0.5}}
    changed = workflow()
    changed["1"]["inputs"]["width"] = 9
    assert finished_record(tmp_path, "run-01", changed) is None
    assert finished_record(tmp_path, "run-02", prompt) is None  # never ran
    save_record(tmp_path, RunRecord("run-01", {}, status=FAILED, error="boom"))
    assert finished_record(tmp_path, "run-01", prompt) is None
    (tmp_path / "runs" / "run-01" / "result.json").write_text("{not json")
    assert finished_record(tmp_path, "run-01", prompt) is None


def test_start_run_clears_the_outputs_of_an_earlier_try(tmp_path):
    folder = start_run(tmp_path, "run-01", {"a": 1})
    (folder / "old.png").write_bytes(b"x")
    folder = start_run(tmp_path, "run-01", {"a": 2})
    assert sorted(p.name for p in folder.iterdir()) == ["prompt.json"]
    assert json.loads((folder / "prompt.json").read_text()) == {"a": 2}


@pytest.fixture
def runs():
    both = {"intent": {"stability": 0.812345, "controllability": None, "leakage": 0.1},
            "plain": {"stability": 0.4, "controllability": 0.6, "leakage": 0.3}}
    return [
        RunRecord("run-01_rank=4", {"rank": "4"}, SUCCESS, "http://a:1", None, 12.34, both,
                  ["x.png"]),
        RunRecord("run-02_rank=8", {"rank": "8"}, FAILED, "http://b:2",
                  "node 7 (KSampler) failed: RuntimeError: out of memory", 3.0),
        RunRecord("run-03_rank=16", {"rank": "16"}, SKIPPED, "http://a:1", None, 5.0,
                  {"intent": {"stability": 0.9, "controllability": 0.8, "leakage": None}}),
    ]


def test_summary_csv_has_a_row_per_run_and_model(tmp_path, runs):
    csv_path, _, _ = write_summary(tmp_path, runs, ["rank"], "Batch")
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["run", "rank", "model", "stability", "controllability", "leakage",
                             "status", "seconds", "server"]
    assert [(r["run"], r["model"], r["status"]) for r in rows] == [
        ("run-01_rank=4", "intent", "success"), ("run-01_rank=4", "plain", "success"),
        ("run-02_rank=8", "", "failed"), ("run-03_rank=16", "intent", "skipped")]
    assert rows[0]["stability"] == "0.812345" and rows[0]["controllability"] == ""
    assert rows[1]["controllability"] == "0.6" and rows[1]["rank"] == "4"
    assert rows[2]["server"] == "http://b:2" and rows[2]["seconds"] == "3.0"


def test_summary_markdown_shows_scores_and_failures(tmp_path, runs):
    _, md_path, _ = write_summary(tmp_path, runs, ["rank"], "Batch: wf.json")
    text = md_path.read_text()
    assert text.startswith("# Batch: wf.json\n")
    assert "3 run(s): 1 succeeded, 1 kept from an earlier call (--resume), 1 failed" in text
    assert "| run-01_rank=4 | 4 | intent | 0.812 | n/a | 0.100 | success | 12.3 | http://a:1 |" \
        in text
    assert "| run-02_rank=8 | 8 |  |  |  |  | failed | 3.0 | http://b:2 |" in text
    assert "## Failures\n\n- run-02_rank=8: node 7 (KSampler) failed: RuntimeError: out of " \
           "memory" in text


def test_summary_image_draws_failed_runs_in_red(tmp_path, runs):
    *_, png = write_summary(tmp_path, runs, ["rank"], "Batch")
    failed = np.asarray(Image.open(png).convert("RGB"))
    *_, png = write_summary(tmp_path, [runs[0], runs[2]], ["rank"], "Batch")
    fine = np.asarray(Image.open(png).convert("RGB"))
    red = np.array(BAD)
    assert (failed == red).all(axis=-1).sum() > 50  # the failed row and its note
    assert (fine == red).all(axis=-1).sum() == 0
    assert failed.shape[0] > fine.shape[0]  # one more row, one more note
