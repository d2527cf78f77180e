"""The whole pipeline headless (``python -m intenttuner run``): `run_pipeline` with
`RunSettings`, writing a captioned training set, the LoRA, the evaluation report and the
monitor's curves into one folder. See `pipeline` for the stages and the files."""

from .pipeline import STAGES, RunOutputs, run_pipeline
from .settings import RunSettings

__all__ = ["STAGES", "RunOutputs", "RunSettings", "run_pipeline"]
