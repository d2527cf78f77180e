"""What a batch keeps of each run: OUT/runs/<run_id>/prompt.json (the exact API prompt sent),
result.json (id, swept values, server, status, error, seconds, scores, files, prompt id) and
the output files the server made, and how ``--resume`` reads them back."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import InputError

log = logging.getLogger(__name__)

SUCCESS, FAILED, SKIPPED = "success", "failed", "skipped"  # skipped: done by an earlier call
METRICS = ("stability", "controllability", "leakage")  # the report's three scores
SCORES_KEY = "it_scores"  # the Evaluation Report node's UI output holding its report JSON


@dataclass
class RunRecord:
    """One run of the batch and how it went."""

    run_id: str  # e.g. "run-01_IntentTunerLoRATrain.rank=4"
    values: dict[str, str]  # {"NODE.INPUT": value as written} of the sweeps
    status: str = FAILED  # SUCCESS | FAILED | SKIPPED
    server: str | None = None  # the server that ran it (last tried, for a failure)
    error: str | None = None  # why it failed, for a person to read
    seconds: float = 0.0  # from queueing the prompt to its outputs collected
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)  # label -> metric
    files: list[str] = field(default_factory=list)  # collected outputs, relative to its folder
    prompt_id: str | None = None
    lost_servers: list[str] = field(default_factory=list)  # servers lost while running it

    @property
    def ok(self) -> bool:
        return self.status in (SUCCESS, SKIPPED)


@dataclass
class BatchResult:
    runs: list[RunRecord]  # one per expanded run, in sweep order
    summary_csv: Path
    summary_md: Path
    summary_png: Path
    dropped_servers: dict[str, str] = field(default_factory=dict)  # server -> why it left

    @property
    def failures(self) -> list[RunRecord]:
        return [run for run in self.runs if not run.ok]


def run_folder(out: Path, run_id: str) -> Path:
    return out / "runs" / run_id


def check_out_folder(out: Path, resume: bool) -> None:
    """Refuse to mix a new batch into an old one's folder unless ``--resume`` asks for it."""
    runs = out / "runs"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder for the batch's results.")
    if not resume and runs.is_dir() and any(runs.iterdir()):
        raise InputError(f"--out {out} already holds the runs of a batch: add --resume to keep "
                         "its finished runs and run the others, or give a new --out folder.")


def start_run(out: Path, run_id: str, prompt: dict) -> Path:
    """An empty folder for the run (outputs of an earlier try removed) with its prompt.json."""
    folder = run_folder(out, run_id)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "prompt.json").write_text(json.dumps(prompt, indent=2), encoding="utf-8")
    return folder


def save_record(out: Path, record: RunRecord) -> Path:
    path = run_folder(out, record.run_id) / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(record), indent=2), encoding="utf-8")
    return path


def finished_record(out: Path, run_id: str, prompt: dict) -> RunRecord | None:
    """The earlier record of ``run_id`` when it succeeded with this very ``prompt`` (so
    ``--resume`` can keep it), else None: it runs again."""
    folder = run_folder(out, run_id)
    try:
        saved = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        sent = json.loads((folder / "prompt.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if saved.get("status") not in (SUCCESS, SKIPPED) or sent != prompt:
        return None
    known = set(RunRecord.__dataclass_fields__)
    try:
        record = RunRecord(**{k: v for k, v in saved.items() if k in known})
    except TypeError:  # a result.json of another shape: run it again
        return None
    record.status = SKIPPED
    return record


def flatten_scores(outputs: dict) -> dict[str, dict[str, float | None]]:
    """{model label: {metric: score, None where not applicable}} of every Evaluation Report
    node in a prompt's history outputs ({node id: ui dict}). A label two report nodes share
    is told apart by its node id."""
    scores: dict[str, dict[str, float | None]] = {}
    for node_id, ui in sorted(outputs.items()):
        for report in (ui or {}).get(SCORES_KEY) or []:
            for run in report.get("runs") or []:
                label = str(run.get("label", "model"))
                if label in scores:
                    label = f"{label} (node {node_id})"
                results = run.get("results") or {}
                scores[label] = {metric: _score(results.get(metric)) for metric in METRICS}
    return scores


def _score(result: dict | None) -> float | None:
    if not result or not result.get("applicable") or result.get("score") is None:
        return None
    return float(result["score"])
