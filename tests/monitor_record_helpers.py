"""Run folders written by hand the way a monitored run writes them (the payloads of
/tmp/design/contract.md, "Events"): the trainer's step records, the monitor's event records,
sample PNGs. Used by tests/test_monitor_records.py, test_monitor_api.py, test_monitor_images.py."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from intenttuner.monitor import events
from intenttuner.monitor.runlog import RunLog


def start(run: str, node: str | None = "7", total: int = 40, time: float = 1000.0,
          start_step: int = 0, enabled: bool = True, notes=()) -> dict:
    return {"run": run, "node": node, "prompt_id": "p1", "time": time, "total_steps": total,
            "start_step": start_step, "run_dir": f"/loras/{run}",
            "monitor": {"enabled": enabled, "sample_every_steps": 10, "images_per_point": 2,
                        "formula": "best = (1*stability + 1*controllability + 1*(1 - leakage))"
                                   " / 3 over the applicable metrics",
                        "weights": {"stability": 1, "controllability": 1, "leakage": 1},
                        "metrics": ["stability", "controllability"],
                        "concepts": {"stability": ["face"], "controllability": ["hair"]},
                        "notes": list(notes)},
            "tensorboard": None}


def step(n: int, loss: float | None = 0.5, lr: float = 1e-4, total: int = 40) -> dict:
    """A trainer step record (StepInfo's fields; no "event" key)."""
    return {"step": n, "total_steps": total, "loss": loss, "lr": lr, "epoch": 1,
            "images_per_s": 2.0}


def image_path(n: int, item: str) -> str:
    return f"samples/step{n:06d}/{item}.png"


def sample(run: str, n: int, score: float | None, stability: float | None = 0.8,
           controllability: float | None = 0.6, leakage: float | None = None,
           items=("s0", "c0"), node: str | None = "7") -> dict:
    """A SAMPLE payload; a metric given as None is not applicable (n/a)."""
    def metric(value, concept):
        return {"applicable": value is not None, "score": value,
                "concepts": {concept: value} if value is not None else {}}

    return {"run": run, "node": node, "time": 1000.0 + n, "step": n, "final": False,
            "checkpoint": f"{run}-step{n:06d}.safetensors", "seconds": 1.5, "overhead": 0.2,
            "score": score,
            "scores": {"stability": metric(stability, "face"),
                       "controllability": metric(controllability, "hair"),
                       "leakage": metric(leakage, "necklace")},
            "images": [{"filename": f"{run}_{n}_{item}.png", "subfolder": "intenttuner/train",
                        "type": "temp", "path": image_path(n, item), "item": item,
                        "test": "stability", "prompt": f"photo of ohwx, {item}", "seed": i}
                       for i, item in enumerate(items)],
            "warnings": []}


def end(run: str, status: str = "finished", n: int = 40, best_step: int | None = 20,
        score: float | None = 0.7) -> dict:
    best = None if best_step is None else {
        "step": best_step, "score": score, "lora_name": f"{run}_best.safetensors",
        "path": f"/loras/{run}_best.safetensors", "reason": "highest combined score"}
    return {"run": run, "node": "7", "time": 2000.0, "status": status, "step": n, "best": best,
            "overhead": 0.2, "monitor_seconds": 10.0, "total_seconds": 50.0, "message": "done"}


def write_run(run_dir: Path, records: list[tuple[str, dict]], pngs: bool = True) -> Path:
    """``records``: (event name, payload) in order; STEP payloads are appended as the trainer
    appends them, the others through RunLog. With ``pngs``, every sample image's PNG is
    written (a 64x48 image in a colour of its own)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log = RunLog(run_dir)
    for name, payload in records:
        if name == events.STEP:
            with (run_dir / "metrics.jsonl").open("a", encoding="utf-8") as out:
                out.write(json.dumps(payload) + "\n")
        else:
            log.write(name, payload)
        for i, image in enumerate(payload.get("images", []) if pngs else []):
            path = run_dir / image["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (64, 48), (40 * i + 20, 200, 90)).save(path)
    return run_dir
