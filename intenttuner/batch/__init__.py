"""Saved ComfyUI workflows run on one or several ComfyUI servers: overrides and sweeps of
their inputs, one run per server at a time, results and a summary of the scores per run.

    from intenttuner.batch import run_batch
    result = run_batch(Path("workflows/full_pipeline.json"), ["http://127.0.0.1:8188"],
                       sets=["KSampler.steps=20"], sweeps=["IntentTunerLoRATrain.rank=4,8"],
                       out=Path("output/batch"))

(``python -m intenttuner batch`` is its command line.) The modules: `client` (a server's HTTP
and websocket API), `overrides` (--set / --sweep, the runs of a sweep), `execute` (one run on
one server), `scheduler` (the runs spread over the servers), `results` (each run's folder and
record, --resume), `summary` (CSV, Markdown, image), `runner` (`run_batch`).
"""

from .results import BatchResult, RunRecord
from .runner import run_batch

__all__ = ["BatchResult", "RunRecord", "run_batch"]
